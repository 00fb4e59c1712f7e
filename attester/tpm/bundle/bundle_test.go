package bundle

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/attested-tls/go-expat/cmw"
)

func sample(withKey bool) *Bundle {
	b := &Bundle{
		Quote:    bytes.Repeat([]byte{0xff, 0x54, 0x43, 0x47}, 20),
		QuoteSig: bytes.Repeat([]byte{0x18}, 72),
		AKPublic: bytes.Repeat([]byte{0x23}, 88),
		PCRAlg:   0x000B,
		PCRs:     map[uint32][]byte{0: make([]byte, 32), 7: bytes.Repeat([]byte{7}, 32), 23: bytes.Repeat([]byte{1}, 32)},
		AKChain:  [][]byte{{0x30, 0x01, 0x00}},
	}
	if withKey {
		b.Certify = []byte{1, 2, 3}
		b.CertifySig = []byte{4, 5, 6}
		b.KeyPublic = []byte{7, 8, 9}
		b.EventLog = []byte{0}
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	for _, withKey := range []bool{false, true} {
		enc, err := Marshal(sample(withKey))
		if err != nil {
			t.Fatal(err)
		}
		b, err := Unmarshal(enc)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := Marshal(b)
		if !bytes.Equal(again, enc) {
			t.Fatal("re-marshal differs")
		}
		w, err := Wrap(b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Unwrap(w); err != nil {
			t.Fatal(err)
		}
	}
}

func TestUnmarshalRejects(t *testing.T) {
	good, _ := Marshal(sample(true))
	mk := func(mod func(b *Bundle)) []byte {
		b := sample(true)
		mod(b)
		out, err := encMode.Marshal(b) // bypass Marshal's checks
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"trailing byte", append(bytes.Clone(good), 0)},
		{"missing quote", mk(func(b *Bundle) { b.Quote = nil })},
		{"missing PCRs", mk(func(b *Bundle) { b.PCRs = nil })},
		{"PCR index 24", mk(func(b *Bundle) { b.PCRs[24] = make([]byte, 32) })},
		{"PCR of wrong size", mk(func(b *Bundle) { b.PCRs[1] = make([]byte, 20) })},
		{"unknown bank", mk(func(b *Bundle) { b.PCRAlg = 0x0012 })},
		{"partial key attestation", mk(func(b *Bundle) { b.KeyPublic = nil })},
		{"empty certificate", mk(func(b *Bundle) { b.AKChain = [][]byte{{}} })},
		{"unknown key", []byte{0xa1, 0x18, 0x63, 0x40}},
		{"duplicate key", []byte{0xa2, 0x01, 0x41, 0x00, 0x01, 0x41, 0x00}},
		{"indefinite map", []byte{0xbf, 0x01, 0x41, 0x00, 0xff}},
		{"tag", append([]byte{0xd8, 0x18}, good...)},
		{"non-minimal length", append([]byte{0xb8, good[0] & 0x1f}, good[1:]...)},
		{"too large", make([]byte, MaxSize+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Unmarshal(tc.in)
			if err == nil || b != nil || !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, %v; want ErrMalformed", b, err)
			}
		})
	}
}

func TestUnwrapRejects(t *testing.T) {
	good, _ := Wrap(sample(false))
	enc, _ := Marshal(sample(false))
	record := func(typ string, ind cmw.Indicator) []byte {
		c, err := cmw.NewRecord(typ, enc, ind)
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.MarshalCBOR()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	collection := func() []byte {
		col, _ := cmw.NewCollection("")
		c, _ := cmw.NewRecord(cmw.MediaTypeTPM2, enc, cmw.Evidence)
		if err := col.Add(cmw.TextLabel("tpm"), c); err != nil {
			t.Fatal(err)
		}
		out, err := col.MarshalCBOR()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	jsonRecord := func() []byte {
		c, _ := cmw.NewRecord(cmw.MediaTypeTPM2, enc, cmw.Evidence)
		out, err := c.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if !bytes.Equal(record(cmw.MediaTypeTPM2, cmw.Evidence), good) {
		t.Fatal("test setup: record() differs from Wrap")
	}
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"JSON record", []byte(`["application/vnd.go-expat.tpm2-quote+cbor","AA",4]`)},
		{"JSON record of a valid bundle, not canonical", bytes.Replace(jsonRecord(), []byte(`",`), []byte(`", `), 1)},
		{"truncated", good[:len(good)-1]},
		{"trailing", append(bytes.Clone(good), 0)},
		{"other media type", record("application/vnd.go-expat.sev-snp-report+cbor", cmw.Evidence)},
		{"media type in other case", record(strings.ToUpper(cmw.MediaTypeTPM2), cmw.Evidence)},
		{"attestation-results indicator", record(cmw.MediaTypeTPM2, cmw.AttestationResults)},
		{"evidence and reference values", record(cmw.MediaTypeTPM2, cmw.Evidence|cmw.ReferenceValues)},
		{"collection", collection()},
		{"non-minimal type length", append([]byte{good[0], 0x79, 0}, good[2:]...)},
		{"too large", append(bytes.Clone(good), make([]byte, MaxSize)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if b, err := Unwrap(tc.in); err == nil || b != nil || !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, %v; want ErrMalformed", b, err)
			}
		})
	}
	// package cmw's one record rule admits the canonical JSON record and an
	// absent indicator.
	for name, in := range map[string][]byte{"JSON record": jsonRecord(), "no indicator": record(cmw.MediaTypeTPM2, 0)} {
		if b, err := Unwrap(in); err != nil || b == nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzUnmarshal(f *testing.F) {
	for _, withKey := range []bool{false, true} {
		enc, _ := Marshal(sample(withKey))
		f.Add(enc)
	}
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Unmarshal(data)
		if err != nil {
			if b != nil {
				t.Fatal("non-nil bundle with error")
			}
			return
		}
		again, err := Marshal(b)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("re-marshal: %v", err)
		}
		for i := 0; i < len(data); i++ {
			if _, err := Unmarshal(data[:i]); err == nil {
				t.Fatalf("strict prefix of %d bytes parsed", i)
			}
		}
	})
}

func FuzzUnwrap(f *testing.F) {
	w, _ := Wrap(sample(true))
	f.Add(w)
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Unwrap(data)
		if err != nil {
			if b != nil {
				t.Fatal("non-nil bundle with error")
			}
			return
		}
		again, err := Wrap(b)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("re-wrap: %v", err)
		}
		for i := 0; i < len(data); i++ {
			if _, err := Unwrap(data[:i]); err == nil {
				t.Fatalf("strict prefix of %d bytes unwrapped", i)
			}
		}
	})
}

// BenchmarkUnwrap: the strict CMW layer (package cmw) plus the bundle
// decode; BenchmarkUnmarshal, the bundle decode alone, is the same-run
// baseline.
func BenchmarkUnwrap(b *testing.B) {
	w, _ := Wrap(sample(true))
	for b.Loop() {
		if _, err := Unwrap(w); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshal(b *testing.B) {
	enc, _ := Marshal(sample(true))
	for b.Loop() {
		if _, err := Unmarshal(enc); err != nil {
			b.Fatal(err)
		}
	}
}
