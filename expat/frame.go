package expat

import (
	"bytes"
	"errors"
	"io"

	"github.com/attested-tls/go-expat/expat/internal/frame"
)

// The stream framing used by Conn.
//
// After the TLS 1.3 handshake, both directions of the TLS connection carry a
// sequence of frames:
//
//	frame = type (1 byte) | length (3 bytes, big endian) | payload (length bytes)
//
//	type 0x01 SETUP          payload = version (1 byte) | [formats] | [EA request]
//	                         version 0x01: no formats; version 0x02:
//	                         formats = length (2 bytes) | entries of
//	                         role (1: 1 accepts, 2 produces) | length (1) |
//	                         CMW media type (printable ASCII), see formats.go
//	                         The first frame each side sends, exactly once.
//	                         With a request (CertificateRequest from a server,
//	                         ClientCertificateRequest from a client, RFC 9261
//	                         handshake message with its 4-byte header) the
//	                         sender requires attestation before application
//	                         data; without, it requires nothing at setup.
//	type 0x02 REQUEST        payload = EA request (re-attestation)
//	type 0x03 AUTHENTICATOR  payload = context length (1 byte) | context |
//	                         EA authenticator (Certificate ||
//	                         CertificateVerify || Finished), or the empty
//	                         authenticator (Finished only) for a refusal.
//	                         The context names the request answered (the
//	                         empty authenticator carries none of its own);
//	                         it is only a routing hint: the authenticator is
//	                         validated against that request's own context.
//	type 0x04 DATA           payload = application data (1..16380 bytes)
//	type 0x05 CLOSE          payload = TLS alert description (1 byte); the
//	                         sender closes after it
//	type 0x06 END            payload = 0x00: the sender sends no more DATA
//	                         (half-close); other frames may still follow
//
// Unknown frame types, a second SETUP, a frame before SETUP, and payloads
// larger than the limits below are protocol errors that close the connection.
// The framing carries no meaning of its own beyond ordering and is meant to
// be replaced by a standard transport (draft-reddy-seat-expat-transport) when
// one exists; the sans-I/O Endpoint does not depend on it.
const (
	frameSetup         byte = 0x01
	frameRequest       byte = 0x02
	frameAuthenticator byte = 0x03
	frameData          byte = 0x04
	frameClose         byte = 0x05
	frameEnd           byte = 0x06

	frameVersion        = 0x01
	frameVersionFormats = 0x02

	frameHeaderLen = frame.HeaderLen
	// maxDataPayload is the largest DATA payload: a full frame fills one
	// TLS record (2^14 bytes of plaintext) exactly.
	maxDataPayload = 16384 - frameHeaderLen
	// maxRequestPayload bounds a request: context (≤ 255) and extensions
	// (≤ 2^16-1) plus headers.
	maxRequestPayload = 1 + 4 + 1 + 255 + 2 + 65535
)

// frameLimit is the largest payload accepted for each frame type.
func frameLimit(maxAuth int) frame.Limit {
	return func(typ byte) (int, bool) {
		switch typ {
		case frameSetup:
			return maxRequestPayload + 2 + maxFormatsLength, true
		case frameRequest:
			return maxRequestPayload - 1, true
		case frameAuthenticator:
			return maxAuth, true
		case frameData:
			return maxDataPayload, true
		case frameClose, frameEnd:
			return 1, true
		}
		return 0, false
	}
}

// readFrameHeader reads one frame header and checks the claimed length
// against the limit for its type before anything is allocated.
func readFrameHeader(r io.Reader, hdr *[frameHeaderLen]byte, limit frame.Limit) (typ byte, n int, err error) {
	typ, n, err = frame.ReadHeader(r, hdr, limit)
	if err != nil {
		// Declared here, not above: errors.As moves fe to the heap, and
		// this runs once per frame.
		var fe *frame.Error
		if errors.As(err, &fe) {
			return 0, 0, framingError(fe.Msg)
		}
	}
	return typ, n, err
}

// appendFrame appends a frame to dst.
func appendFrame(dst []byte, typ byte, payload ...[]byte) []byte {
	return frame.Append(dst, typ, payload...)
}

// parseFrames splits a buffer into frames; used by the fuzz target and tests
// to check that the reader's limits agree with the writer's output.
func parseFrames(b []byte, maxAuth int) ([][2][]byte, error) {
	var out [][2][]byte
	for len(b) > 0 {
		if len(b) < frameHeaderLen {
			return nil, framingError("truncated header")
		}
		var hdr [frameHeaderLen]byte
		typ, n, err := readFrameHeader(bytes.NewReader(b[:frameHeaderLen]), &hdr, frameLimit(maxAuth))
		if err != nil {
			return nil, err
		}
		b = b[frameHeaderLen:]
		if len(b) < n {
			return nil, framingError("truncated payload")
		}
		out = append(out, [2][]byte{{typ}, b[:n]})
		b = b[n:]
	}
	return out, nil
}
