package expat

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/attested-tls/go-expat/expat/internal/exchange"
)

// TLS alerts used by this package (RFC 8446, Section 6).
const (
	alertIllegalParameter     tls.AlertError = 47
	alertHandshakeFailure     tls.AlertError = 40
	alertBadCertificate       tls.AlertError = 42
	alertAccessDenied         tls.AlertError = 49
	alertInternalError        tls.AlertError = 80
	alertMissingExtension     tls.AlertError = 109
	alertUnsupportedExtension tls.AlertError = 110
)

var (
	// ErrNotAttested is returned by Read and Write when the attestation
	// that the local policy requires has not succeeded (or has failed).
	ErrNotAttested = errors.New("expat: peer not attested")
	// ErrPeerRefused means the peer answered an attestation request with
	// the empty authenticator (RFC 9261, Section 6).
	ErrPeerRefused = errors.New("expat: peer refused to attest")
	// ErrMissingAttestation means the peer's authenticator carried no
	// cmw_attestation extension although one was requested.
	ErrMissingAttestation = errors.New("expat: authenticator carries no attestation")
	// ErrResumed means the TLS session was resumed: a resumed session is
	// never treated as attested (draft -04, Section 7.2).
	ErrResumed = errors.New("expat: resumed TLS session: an attested connection needs a full handshake; build the tls.Config with ServerTLSConfig / ClientTLSConfig (or use Listen / Dial), which turn session tickets off")
	// ErrFraming is matched by every violation of the stream framing by the
	// peer (an *Error with Alert unexpected_message).
	ErrFraming = errors.New("expat: framing violation")
	// ErrTooManyRequests means the peer had more attestation requests
	// waiting or in progress than Config.MaxPeerRequests allows.
	ErrTooManyRequests = errors.New("expat: peer has too many attestation requests in progress")
	// ErrAttestationExpired means the latest attestation of the peer
	// passed its ValidUntil without a newer one (Config.MaxAttestationAge,
	// the Verifier's Result.Expires).
	ErrAttestationExpired = errors.New("expat: peer attestation expired")
	// ErrNotSent means Attest gave up (its ctx ended) before its request
	// was sent, while it waited for an earlier Attest or for a blocked
	// write: the connection is unchanged, and trying again is safe.
	ErrNotSent = exchange.ErrNotSent
	// ErrWriteClosed is returned by Write after CloseWrite.
	ErrWriteClosed = errors.New("expat: write after CloseWrite")
	// ErrClosed is returned on a connection closed locally or after a
	// failure; it matches net.ErrClosed. A clean close by the peer is
	// io.EOF, as for any net.Conn.
	ErrClosed = fmt.Errorf("expat: connection closed: %w", net.ErrClosed)
)

// Error is a failed attestation step. Alert is the TLS alert that the
// failure implies (sent to the peer in a CLOSE frame by Conn), or, when
// Remote is set, the alert the peer sent us; Err is the
// cause, which may match ErrPeerRefused, ErrMissingAttestation,
// verifier.ErrRejected, verifier.ErrUnavailable or an *ea.Error.
type Error struct {
	Op    string
	Alert tls.AlertError
	// Remote is true when the failure was the peer's: it closed the
	// connection with Alert (typically after rejecting our attestation).
	Remote bool
	Err    error
}

func (e *Error) Error() string {
	// The cause may be one of our own errors: say "expat: " once.
	return "expat: " + e.Op + ": " + strings.TrimPrefix(e.Err.Error(), "expat: ")
}
func (e *Error) Unwrap() error { return e.Err }

func wrapErr(op string, alert tls.AlertError, err error) error {
	return &Error{Op: op, Alert: alert, Err: err}
}

// framingError is a violation of the stream framing by the peer.
func framingError(msg string) error {
	return &Error{Op: "read", Alert: alertUnexpectedMessage, Err: fmt.Errorf("%w: %s", ErrFraming, msg)}
}
