package expatquic

import (
	"errors"
	"io"

	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/expat/internal/frame"
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

	frameVersion = 0x01
	// frameVersionFormats is SETUP version 2, as expat.Conn's: version |
	// formats length (2) | formats (expat.EncodeFormats) | [EA request].
	frameVersionFormats = 0x02
	// maxRequestPayload bounds a request: message header, context (≤ 255)
	// and extensions (< 2^16), plus SETUP's version byte.
	maxRequestPayload = 1 + 4 + 1 + 255 + 2 + 65535
)

// frameError is a framing violation by the peer.
type frameError struct{ msg string }

func (e *frameError) Error() string { return "expatquic: framing: " + e.msg }

// limit is the largest payload accepted for each frame type.
func limit(maxAuth int) frame.Limit {
	return func(typ byte) (int, bool) {
		switch typ {
		case frameSetup:
			return maxRequestPayload + 2 + expat.MaxFormatsLength, true
		case frameRequest:
			return maxRequestPayload - 1, true
		case frameAuthenticator:
			return 1 + 255 + maxAuth, true
		case frameReady:
			return 1, true
		}
		return 0, false
	}
}

// readFrame reads one frame (expat/internal/frame: the claimed length is
// checked against its type's limit before anything is allocated, and a
// large payload is read as it arrives).
func readFrame(r io.Reader, maxAuth int) (typ byte, payload []byte, err error) {
	var hdr [frame.HeaderLen]byte
	typ, n, err := frame.ReadHeader(r, &hdr, limit(maxAuth))
	if err != nil {
		var fe *frame.Error
		if errors.As(err, &fe) {
			return 0, nil, &frameError{fe.Msg}
		}
		return 0, nil, err
	}
	if payload, err = frame.ReadPayload(r, n); err != nil {
		return 0, nil, err
	}
	if typ == frameReady && payload[0] != 0 {
		return 0, nil, &frameError{"malformed READY"}
	}
	return typ, payload, nil
}

// appendFrame appends a frame to dst.
func appendFrame(dst []byte, typ byte, payload ...[]byte) []byte {
	return frame.Append(dst, typ, payload...)
}
