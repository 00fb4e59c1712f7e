package expatquic

import (
	"fmt"
	"io"
)

// The control stream: the first bidirectional stream the client opens
// (stream 0) carries, in both directions, a sequence of frames
//
//	frame = type (1 byte) | length (3 bytes, big endian) | payload
//
//	type 0x01 SETUP          version (1 byte, 0x01) | [EA request]: the
//	                         first frame each side sends, exactly once; with
//	                         a request the sender requires attestation.
//	type 0x02 REQUEST        EA request (re-attestation)
//	type 0x03 AUTHENTICATOR  context length (1) | context | authenticator
//	                         (or the empty authenticator, a refusal)
//	type 0x06 READY          one byte 0x00: the sender's required attestation
//	                         of the peer has succeeded; from now on it
//	                         accepts the peer's application streams. Sent
//	                         once, after SETUP.
//
// This is expat's stream framing (expat/frame.go) without DATA and CLOSE:
// application data has streams of its own, and a failure closes the QUIC
// connection with an application error code carrying the TLS alert
// (ErrorCode). READY is needed because QUIC does not order streams: a peer
// may open application streams only after it received our READY, so a
// stream that arrives before we sent it is a violation, never a race.
const (
	frameSetup         byte = 0x01
	frameRequest       byte = 0x02
	frameAuthenticator byte = 0x03
	frameReady         byte = 0x06

	frameVersion   = 0x01
	frameHeaderLen = 4
	// maxRequestPayload bounds a request: message header, context (≤ 255)
	// and extensions (< 2^16), plus SETUP's version byte.
	maxRequestPayload = 1 + 4 + 1 + 255 + 2 + 65535
)

// frameError is a framing violation by the peer.
type frameError struct{ msg string }

func (e *frameError) Error() string { return "expatquic: framing: " + e.msg }

// readFrame reads one frame, checking the claimed length against the
// limit of its type before anything is allocated, and reading a large
// payload as it arrives.
func readFrame(r io.Reader, maxAuth int) (typ byte, payload []byte, err error) {
	var hdr [frameHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	typ = hdr[0]
	n := int(hdr[1])<<16 | int(hdr[2])<<8 | int(hdr[3])
	var limit int
	switch typ {
	case frameSetup:
		limit = maxRequestPayload
	case frameRequest:
		limit = maxRequestPayload - 1
	case frameAuthenticator:
		limit = 1 + 255 + maxAuth
	case frameReady:
		limit = 1
	default:
		return 0, nil, &frameError{fmt.Sprintf("unknown frame type 0x%02x", typ)}
	}
	if n == 0 || n > limit {
		return 0, nil, &frameError{fmt.Sprintf("frame type 0x%02x of %d bytes (limit %d)", typ, n, limit)}
	}
	payload = make([]byte, 0, min(n, 4096))
	for len(payload) < n {
		chunk := min(n-len(payload), 4096)
		start := len(payload)
		payload = append(payload, make([]byte, chunk)...)
		if _, err := io.ReadFull(r, payload[start:]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, nil, err
		}
	}
	if typ == frameReady && payload[0] != 0 {
		return 0, nil, &frameError{"malformed READY"}
	}
	return typ, payload, nil
}

// appendFrame appends a frame to dst.
func appendFrame(dst []byte, typ byte, payload ...[]byte) []byte {
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
