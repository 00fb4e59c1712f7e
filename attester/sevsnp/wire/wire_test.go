package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/attested-tls/go-expat/attester/sevsnp/wire"
)

func sampleTable(t testing.TB) []byte {
	t.Helper()
	b, err := wire.CertTable{
		{GUID: wire.GUIDVCEK, Data: []byte("vcek-der")},
		{GUID: wire.GUIDASK, Data: []byte("ask-der")},
		{GUID: wire.GUIDARK, Data: []byte("ark")},
	}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sampleEvidence(t testing.TB, table bool) []byte {
	t.Helper()
	ev := &wire.Evidence{Report: bytes.Repeat([]byte{0xab}, wire.ReportSize)}
	if table {
		ev.CertTable = sampleTable(t)
	}
	b, err := ev.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cborBstr returns the CBOR encoding of a byte string.
func cborBstr(b []byte) []byte {
	switch n := len(b); {
	case n < 24:
		return append([]byte{0x40 | byte(n)}, b...)
	case n < 256:
		return append([]byte{0x58, byte(n)}, b...)
	default:
		return append([]byte{0x59, byte(n >> 8), byte(n)}, b...)
	}
}

func TestUnmarshal(t *testing.T) {
	report := bytes.Repeat([]byte{0xab}, wire.ReportSize)
	table := sampleTable(t)
	valid := sampleEvidence(t, true)
	concat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tests := []struct {
		name    string
		in      []byte
		wantErr bool
	}{
		{"valid with table", valid, false},
		{"valid without table", sampleEvidence(t, false), false},
		{"empty", nil, true},
		{"not a map", []byte{0x80}, true},
		{"trailing byte", append(bytes.Clone(valid), 0), true},
		{"keys out of order", concat([]byte{0xa2, 0x02}, cborBstr(table), []byte{0x01}, cborBstr(report)), true},
		{"duplicate key", concat([]byte{0xa2, 0x01}, cborBstr(report), []byte{0x01}, cborBstr(report)), true},
		{"unknown key", concat([]byte{0xa2, 0x01}, cborBstr(report), []byte{0x03}, cborBstr([]byte{1})), true},
		{"indefinite map", concat([]byte{0xbf, 0x01}, cborBstr(report), []byte{0xff}), true},
		{"indefinite bstr", concat([]byte{0xa1, 0x01, 0x5f}, cborBstr(report), []byte{0xff}), true},
		{"non-minimal key", concat([]byte{0xa1, 0x18, 0x01}, cborBstr(report)), true},
		{"text key", concat([]byte{0xa1, 0x61, '1'}, cborBstr(report)), true},
		{"tagged report", concat([]byte{0xa1, 0x01, 0xc2}, cborBstr(report)), true},
		{"short report", concat([]byte{0xa1, 0x01}, cborBstr(report[:100])), true},
		{"long report", concat([]byte{0xa1, 0x01}, cborBstr(append(bytes.Clone(report), 0))), true},
		{"empty table", concat([]byte{0xa2, 0x01}, cborBstr(report), []byte{0x02, 0x40}), true},
		{"padded table", concat([]byte{0xa2, 0x01}, cborBstr(report), []byte{0x02}, cborBstr(append(bytes.Clone(table), 0))), true},
		{"huge claimed length", []byte{0xa1, 0x01, 0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, true},
		{"oversized", make([]byte, wire.MaxEvidenceSize+1), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := wire.Unmarshal(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("got err %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil {
				if ev != nil {
					t.Error("non-nil result with an error")
				}
				if !errors.Is(err, wire.ErrFormat) {
					t.Errorf("error %v does not match ErrFormat", err)
				}
				return
			}
			re, err := ev.Marshal()
			if err != nil || !bytes.Equal(re, tc.in) {
				t.Errorf("re-marshal differs (%v)", err)
			}
		})
	}
}

func TestUnmarshalDoesNotAlias(t *testing.T) {
	in := sampleEvidence(t, true)
	ev, err := wire.Unmarshal(in)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		in[i] = 0
	}
	if ev.Report[0] != 0xab {
		t.Error("Report aliases the input")
	}
}

func header(entries ...[3]uint64) []byte {
	var b []byte
	for _, e := range entries {
		var h [24]byte
		h[0] = byte(e[0])
		binary.LittleEndian.PutUint32(h[16:], uint32(e[1]))
		binary.LittleEndian.PutUint32(h[20:], uint32(e[2]))
		b = append(b, h[:]...)
	}
	return append(b, make([]byte, 24)...)
}

func TestParseCertTable(t *testing.T) {
	valid := sampleTable(t)
	tests := []struct {
		name        string
		in          []byte
		canonicalOK bool
		hostOK      bool
		wantEntries int
	}{
		{"canonical", valid, true, true, 3},
		{"terminator only", make([]byte, 24), true, true, 0},
		{"page padding", append(bytes.Clone(valid), make([]byte, 4000)...), false, true, 3},
		{"gap between blobs", append(header([3]uint64{1, 48 + 8, 4}), make([]byte, 12)...), false, true, 1},
		{"empty", nil, false, false, 0},
		{"no terminator", bytes.Repeat([]byte{1}, 48), false, false, 0},
		{"entry inside header", append(header([3]uint64{1, 0, 4}), make([]byte, 8)...), false, false, 0},
		{"out of range", append(header([3]uint64{1, 48, 100}), make([]byte, 8)...), false, false, 0},
		{"offset overflow", append(header([3]uint64{1, 0xfffffff0, 0x20}), make([]byte, 8)...), false, false, 0},
		{"empty blob", append(header([3]uint64{1, 48, 0}), make([]byte, 8)...), false, false, 0},
		{"duplicate GUID", append(header([3]uint64{1, 72, 2}, [3]uint64{1, 74, 2}), make([]byte, 4)...), false, false, 0},
		{"too large", make([]byte, wire.MaxCertTableSize+1), false, false, 0},
	}
	var many [][3]uint64
	for i := range wire.MaxCertTableEntries + 1 {
		many = append(many, [3]uint64{uint64(i + 1), uint64(24*(wire.MaxCertTableEntries+2) + i), 1})
	}
	tests = append(tests, struct {
		name                string
		in                  []byte
		canonicalOK, hostOK bool
		wantEntries         int
	}{"too many entries", append(header(many...), make([]byte, len(many))...), false, false, 0})

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ct, err := wire.ParseCertTable(tc.in)
			if (err == nil) != tc.canonicalOK {
				t.Errorf("ParseCertTable: err %v, want ok=%v", err, tc.canonicalOK)
			}
			if err != nil && ct != nil {
				t.Error("ParseCertTable: result with error")
			}
			ht, err := wire.ParseHostCertTable(tc.in)
			if (err == nil) != tc.hostOK {
				t.Errorf("ParseHostCertTable: err %v, want ok=%v", err, tc.hostOK)
			}
			if err == nil && len(ht) != tc.wantEntries {
				t.Errorf("%d entries, want %d", len(ht), tc.wantEntries)
			}
			if err == nil {
				// Re-laid out, a host table becomes canonical.
				re, err := ht.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				if _, err := wire.ParseCertTable(re); err != nil {
					t.Errorf("canonical form rejected: %v", err)
				}
			}
		})
	}
}

func TestCertTableGet(t *testing.T) {
	ct, err := wire.ParseCertTable(sampleTable(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := ct.Get(wire.GUIDASK); string(got) != "ask-der" {
		t.Errorf("ASK = %q", got)
	}
	if ct.Get(wire.GUIDVLEK) != nil {
		t.Error("VLEK present")
	}
}

func ExampleEvidence_Marshal() {
	table, _ := wire.CertTable{{GUID: wire.GUIDVCEK, Data: []byte{0x30, 0x00}}}.Marshal()
	ev := &wire.Evidence{Report: make([]byte, wire.ReportSize), CertTable: table}
	b, _ := ev.Marshal()
	back, err := wire.Unmarshal(b)
	fmt.Println(len(b), err, len(back.Report))
	// Output: 1242 <nil> 1184
}

func FuzzUnmarshal(f *testing.F) {
	f.Add(sampleEvidence(f, true))
	f.Add(sampleEvidence(f, false))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := wire.Unmarshal(b)
		if err != nil {
			if ev != nil {
				t.Fatal("result with error")
			}
			return
		}
		re, err := ev.Marshal()
		if err != nil || !bytes.Equal(re, b) {
			t.Fatalf("round trip: %v", err)
		}
		for i := range b {
			if _, err := wire.Unmarshal(b[:i]); err == nil {
				t.Fatalf("strict prefix of %d bytes parses", i)
			}
		}
	})
}

func FuzzParseCertTable(f *testing.F) {
	f.Add(sampleTable(f))
	f.Add(append(sampleTable(f), make([]byte, 100)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		ht, herr := wire.ParseHostCertTable(b)
		if herr != nil && ht != nil {
			t.Fatal("host: result with error")
		}
		ct, err := wire.ParseCertTable(b)
		if err != nil {
			if ct != nil {
				t.Fatal("result with error")
			}
			return
		}
		if herr != nil {
			t.Fatal("canonical table rejected by the host parser")
		}
		re, err := ct.Marshal()
		if err != nil || !bytes.Equal(re, b) {
			t.Fatalf("round trip: %v", err)
		}
		for i := range b {
			if _, err := wire.ParseCertTable(b[:i]); err == nil {
				t.Fatalf("strict prefix of %d bytes parses", i)
			}
		}
	})
}
