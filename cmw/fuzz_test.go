package cmw

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzDecode checks, for any input: no panic; a nil CMW with every error;
// for accepted input, that it was in its canonical encoding (re-marshaling
// gives exactly the input, which decodes to the same records), that no
// strict prefix of the input is accepted, and that DecodeRecord agrees with
// Decode and Record.Expect.
func FuzzDecode(f *testing.F) {
	seeds := [][]byte{
		mustMarshal(f, mustRecord(f, MediaTypeTestKit, []byte("evidence"), Evidence)),
		mustMarshal(f, sampleCollection(f, true)),
		unhex("da 63740101 41 01"),
		unhex("82 19 0108 41 01"),
		nestedCBOR(3),
		nestedJSON(3),
		[]byte(`["a/b","AQ",4]`),
		[]byte(`{"__cmwc_t":"1.2.3","x":["a/b","AQ",4],"y":{"z":[264,"AQ"]}}`),
		[]byte(`{"a":["a/b","AQ"],"a":["a/b","Ag"]}`),
		unhex("9f 63 612f62 41 01 ff"),
	}
	if j, err := sampleCollection(f, false).MarshalJSON(); err == nil {
		seeds = append(seeds, j)
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := Decode(in, nil)
		if err != nil {
			if c != nil {
				t.Fatal("non-nil CMW with an error")
			}
			return
		}
		out, err := c.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a decoded CMW: %v", err)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("accepted a non-canonical encoding: %x re-marshals to %x", in, out)
		}
		c2, err := Decode(out, nil)
		if err != nil {
			t.Fatalf("re-decode of %x: %v", out, err)
		}
		if !reflect.DeepEqual(flatten(t, c), flatten(t, c2)) || c.CollectionType() != c2.CollectionType() {
			t.Fatal("re-decoded CMW differs")
		}
		if r, ok := c.Record(); ok {
			got, err := DecodeRecord(in, r.MediaType, r.Indicator)
			if wantErr := r.Expect(r.MediaType, r.Indicator); (err == nil) != (wantErr == nil) {
				t.Fatalf("DecodeRecord: %v, Expect: %v", err, wantErr)
			}
			if err == nil && !reflect.DeepEqual(got, r) {
				t.Fatalf("DecodeRecord %+v, Decode %+v", got, r)
			}
		}
		if len(in) <= 4096 {
			for i := range len(in) {
				if p, err := Decode(in[:i], nil); err == nil || p != nil {
					t.Fatalf("strict prefix of %d bytes accepted", i)
				}
			}
		}
	})
}
