package frame

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func limit(typ byte) (int, bool) {
	if typ == 1 {
		return 8, true
	}
	return 0, false
}

func TestReadHeader(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"good", Append(nil, 1, []byte("abc")), true},
		{"unknown type", Append(nil, 2, []byte("abc")), false},
		{"over the limit", Append(nil, 1, make([]byte, 9)), false},
		{"empty", Append(nil, 1), false},
	} {
		var hdr [HeaderLen]byte
		typ, n, err := ReadHeader(bytes.NewReader(tc.in), &hdr, limit)
		var fe *Error
		switch {
		case tc.ok && (err != nil || typ != 1 || n != len(tc.in)-HeaderLen):
			t.Errorf("%s: %v %v %v", tc.name, typ, n, err)
		case !tc.ok && !errors.As(err, &fe):
			t.Errorf("%s: %v, want a *frame.Error", tc.name, err)
		}
	}
}

func TestReadPayloadShort(t *testing.T) {
	for _, n := range []int{10, 10000} {
		if _, err := ReadPayload(bytes.NewReader(make([]byte, n-1)), n); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%d bytes: %v, want io.ErrUnexpectedEOF", n, err)
		}
		b, err := ReadPayload(bytes.NewReader(make([]byte, n)), n)
		if err != nil || len(b) != n {
			t.Errorf("%d bytes: %d, %v", n, len(b), err)
		}
	}
}
