package ea

import (
	"crypto/tls"
	"errors"
	"strings"
)

// TLS alert codes used by this package (RFC 8446, Section 6).
const (
	alertUnexpectedMessage   = tls.AlertError(10)
	alertHandshakeFailure    = tls.AlertError(40)
	alertBadCertificate      = tls.AlertError(42)
	alertCertificateExpired  = tls.AlertError(45)
	alertIllegalParameter    = tls.AlertError(47)
	alertUnknownCA           = tls.AlertError(48)
	alertDecodeError         = tls.AlertError(50)
	alertDecryptError        = tls.AlertError(51)
	alertProtocolVersion     = tls.AlertError(70)
	alertInternalError       = tls.AlertError(80)
	alertMissingExtension    = tls.AlertError(109)
	alertUnsupportedExt      = tls.AlertError(110)
	alertCertificateRequired = tls.AlertError(116)
)

// Sentinel errors, matched with errors.Is. Every error returned by this
// package for peer input is an *Error that wraps at most one of these.
var (
	// ErrEmptyAuthenticator reports a well-formed empty authenticator
	// (RFC 9261, Section 6): the peer refused to authenticate. It is never
	// a success.
	ErrEmptyAuthenticator = errors.New("ea: empty authenticator: peer declined to authenticate")
	// ErrContextUsed reports a certificate_request_context that was already
	// used on this session (replay, reuse across request types, a second
	// validation or a second authenticator for one request).
	ErrContextUsed = errors.New("ea: certificate_request_context already used on this connection")
	// ErrUnknownContext reports an authenticator whose context matches no
	// outstanding request of ours and that is not an acceptable spontaneous
	// authenticator.
	ErrUnknownContext = errors.New("ea: authenticator for no outstanding request")
	// ErrNotTLS13 reports a connection that did not negotiate TLS 1.3.
	ErrNotTLS13 = errors.New("ea: connection is not TLS 1.3")
	// ErrHandshakeIncomplete reports a connection whose handshake has not
	// completed (RFC 9261, Section 9).
	ErrHandshakeIncomplete = errors.New("ea: TLS handshake not complete")
	// ErrTooManyContexts reports that the session's record of contexts
	// (Config.MaxContexts) is full; the connection should be closed.
	ErrTooManyContexts = errors.New("ea: too many certificate_request_context values on this connection")
)

// Kind classifies a failure, for logs, metrics and test vectors. It is the
// "outcome" column of the vectors in testdata/ea.
type Kind string

// Failure kinds.
const (
	KindDecode               Kind = "decode"                // malformed framing or encoding
	KindCertificate          Kind = "certificate"           // certificate could not be parsed or did not chain
	KindScheme               Kind = "scheme"                // signature scheme not offered / not TLS 1.3 / wrong key
	KindSignature            Kind = "signature"             // CertificateVerify does not verify
	KindFinished             Kind = "finished"              // Finished MAC does not match
	KindUnsolicitedExtension Kind = "unsolicited_extension" // extension not offered by the request
	KindMissingExtension     Kind = "missing_extension"     // request lacks signature_algorithms
	KindContext              Kind = "context"               // unknown or reused context
	KindPolicy               Kind = "policy"                // refused by local policy (e.g. spontaneous)
	KindEmpty                Kind = "empty"                 // empty authenticator (refusal)
	KindState                Kind = "state"                 // connection not usable (TLS version, handshake)
	KindLocal                Kind = "local"                 // caller error or local failure (no peer fault)
)

// Error is the error type of this package. Alert is the TLS alert the
// specification implies for the failure; callers that carry EA messages
// over a TLS connection may send it before closing. errors.As(err,
// new(tls.AlertError)) also finds it.
type Error struct {
	Alert   tls.AlertError
	Kind    Kind
	Context []byte // the certificate_request_context concerned, when known
	msg     string
	err     error // a sentinel or an underlying cause, may be nil
}

func (e *Error) Error() string {
	s := "ea: " + e.msg
	if e.err != nil && !isSentinel(e.err) {
		s += ": " + e.err.Error()
	}
	return s
}

// Unwrap returns the wrapped sentinel or cause and the alert.
func (e *Error) Unwrap() []error {
	if e.err == nil {
		return []error{e.Alert}
	}
	return []error{e.err, e.Alert}
}

func isSentinel(err error) bool {
	switch err {
	case ErrEmptyAuthenticator, ErrContextUsed, ErrUnknownContext, ErrNotTLS13, ErrHandshakeIncomplete, ErrTooManyContexts:
		return true
	}
	return false
}

func newError(alert tls.AlertError, kind Kind, cause error, msg string) *Error {
	if isSentinel(cause) {
		// Keep the sentinel's text visible without its "ea: " prefix
		// twice, and never say the same thing twice.
		if text := cause.Error()[len("ea: "):]; !strings.Contains(msg, text) {
			msg = msg + " (" + text + ")"
		}
	}
	return &Error{Alert: alert, Kind: kind, msg: msg, err: cause}
}

func decodeError(msg string) *Error {
	return newError(alertDecodeError, KindDecode, nil, msg)
}

func localError(msg string) *Error {
	return newError(alertInternalError, KindLocal, nil, msg)
}

func (e *Error) withContext(ctx []byte) *Error {
	e.Context = append([]byte(nil), ctx...)
	return e
}
