// Package frame is the one codec of go-expat's stream framing, used by
// expat.Conn (a TLS byte stream) and expatquic (its control stream):
//
//	frame = type (1 byte) | length (3 bytes, big endian) | payload
//
// Each carrier names its frame types and the largest payload it accepts
// for each; this package reads and writes frames under those limits.
// Frame types and their meaning are the carriers' (expat/frame.go,
// expat/expatquic/frame.go).
package frame

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// HeaderLen is the length of a frame header.
const HeaderLen = 4

// MaxLen is the largest length a header can state.
const MaxLen = 1<<24 - 1

// Error is a framing violation by the peer: an unknown type, a length
// beyond the carrier's limit, an empty payload.
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

// Limit returns the largest payload accepted for frame type typ, and false
// for a type the carrier does not know.
type Limit func(typ byte) (max int, known bool)

// ReadHeader reads one frame header into hdr and checks the claimed length
// against limit before anything is allocated. Every frame has a non-empty
// payload.
func ReadHeader(r io.Reader, hdr *[HeaderLen]byte, limit Limit) (typ byte, n int, err error) {
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, 0, err
	}
	typ = hdr[0]
	n = int(hdr[1])<<16 | int(hdr[2])<<8 | int(hdr[3])
	max, known := limit(typ)
	switch {
	case !known:
		return 0, 0, &Error{fmt.Sprintf("unknown frame type 0x%02x", typ)}
	case n > max:
		return 0, 0, &Error{fmt.Sprintf("frame type 0x%02x of %d bytes exceeds %d", typ, n, max)}
	case n == 0:
		return 0, 0, &Error{fmt.Sprintf("empty frame of type 0x%02x", typ)}
	}
	return typ, n, nil
}

// ReadPayload reads n bytes, growing the buffer as bytes arrive rather
// than allocating what the peer claims up front. A stream that ends early
// is io.ErrUnexpectedEOF.
func ReadPayload(r io.Reader, n int) ([]byte, error) {
	if n <= 4096 {
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		return b, nil
	}
	var buf bytes.Buffer
	if _, err := io.CopyN(&buf, r, int64(n)); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf.Bytes(), nil
}

// Append appends a frame of type typ whose payload is the concatenation of
// payload to dst. The payload must not exceed MaxLen bytes (the carriers'
// own limits are far smaller).
func Append(dst []byte, typ byte, payload ...[]byte) []byte {
	n := 0
	for _, p := range payload {
		n += len(p)
	}
	dst = append(dst, typ, byte(n>>16), byte(n>>8), byte(n))
	for _, p := range payload {
		dst = append(dst, p...)
	}
	return dst
}
