package wire

import (
	"bytes"
	"errors"
	"testing"
)

func validQuote() []byte {
	q := make([]byte, MinQuoteSize+100)
	q[0] = 4
	return q
}

func TestRoundTrip(t *testing.T) {
	for _, ev := range []*Evidence{
		{Quote: validQuote()},
		{Quote: validQuote(), FMSPC: []byte{0, 0x90, 0x6e, 0xd5, 0, 0}},
	} {
		b, err := ev.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Quote, ev.Quote) || !bytes.Equal(got.FMSPC, ev.FMSPC) {
			t.Fatal("round trip changed the value")
		}
		got.Quote[0] ^= 1
		if b2, _ := ev.Marshal(); !bytes.Equal(b, b2) {
			t.Fatal("parsed value aliases its input")
		}
	}
}

func TestParseRejects(t *testing.T) {
	good, _ := (&Evidence{Quote: validQuote()}).Marshal()
	hdr := good[:4] // a1 01 59 hh ll: map(1), key 1, bstr with 2-byte length
	_ = hdr
	big := make([]byte, MaxQuoteSize+1)
	bigEnc := append([]byte{0xa1, 0x01, 0x5a, 0, 0, 0x40, 0x01}, big...)
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"not a map", []byte{0x80}},
		{"trailing byte", append(append([]byte{}, good...), 0)},
		{"indefinite map", append(append([]byte{0xbf}, good[1:]...), 0xff)},
		{"duplicate key", append([]byte{0xa2}, append(append([]byte{}, good[1:]...), good[1:]...)...)},
		{"unknown key", append(append([]byte{0xa2}, good[1:]...), 0x03, 0x40)},
		{"missing quote", []byte{0xa1, 0x02, 0x46, 0, 0, 0, 0, 0, 0}},
		{"short quote", []byte{0xa1, 0x01, 0x43, 1, 2, 3}},
		{"oversized", bigEnc},
		{"bad fmspc", append(append([]byte{0xa2}, good[1:]...), 0x02, 0x41, 0x00)},
		{"non-minimal length", append([]byte{0xa1, 0x01, 0x5a, 0, 0, byte(len(validQuote()) >> 8), byte(len(validQuote()))}, validQuote()...)},
		{"tagged", append([]byte{0xc0}, good...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := Parse(tc.in)
			if ev != nil || !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse = %v, %v", ev, err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	good, _ := (&Evidence{Quote: validQuote()}).Marshal()
	f.Add(good)
	withHint, _ := (&Evidence{Quote: validQuote(), FMSPC: []byte{1, 2, 3, 4, 5, 6}}).Marshal()
	f.Add(withHint)
	f.Add([]byte{0xa1, 0x01, 0x40})
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := Parse(b)
		if err != nil {
			if ev != nil {
				t.Fatal("non-nil result with an error")
			}
			return
		}
		re, err := ev.Marshal()
		if err != nil || !bytes.Equal(re, b) {
			t.Fatalf("re-marshal differs: %v", err)
		}
		for i := 0; i < len(b); i++ {
			if p, err := Parse(b[:i]); err == nil || p != nil {
				t.Fatalf("strict prefix of %d bytes parsed", i)
			}
		}
	})
}
