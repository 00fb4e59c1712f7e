package expathttp

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/attested-tls/go-expat/expat"
)

// The carriage of Exported Authenticator messages in HTTP (see the package
// documentation for the design). Every value is base64url without padding
// (RFC 4648, Section 5), strictly decoded.
const (
	// ALPN is the protocol id an attested client offers next to "h2" and
	// "http/1.1". An attested server refuses, with the TLS alert
	// no_application_protocol, every ClientHello that does not offer it,
	// and never selects it: the connection then speaks ordinary HTTP/2 or
	// HTTP/1.1, so that net/http's own client and server run unchanged.
	ALPN = "expat-http/1"

	// ExchangePath is the path of the attestation exchange: a POST to it
	// carries EA messages in headers and reaches no application handler.
	// Each attested connection starts with one (the setup exchange).
	ExchangePath = "/.well-known/expat"

	// HeaderRequest carries an EA request (a ClientCertificateRequest from
	// the client in an exchange, a CertificateRequest from the server in an
	// exchange response or a 401 challenge).
	HeaderRequest = "Expat-Request"

	// HeaderAuthenticator carries an answer to one request:
	// base64url(certificate_request_context) "." base64url(authenticator).
	// The context names the request answered (an empty authenticator, the
	// refusal of RFC 9261 Section 6, carries none of its own); it is only a
	// routing hint: the authenticator is validated against that request.
	HeaderAuthenticator = "Expat-Authenticator"

	// HeaderFormats carries capability discovery (use cases §4.4) on the
	// setup exchange, both ways: base64url of expat.EncodeFormats — the
	// CMW media types the sender accepts and produces. A side with no
	// format in common fails at once (expat.CheckFormats).
	HeaderFormats = "Expat-Formats"

	// HeaderAlert, on a 403 response, is the TLS alert (decimal) that the
	// server's refusal implies, as expat.Conn sends in a CLOSE frame.
	HeaderAlert = "Expat-Alert"

	// HeaderVersion marks every exchange request and response with the
	// version of this carriage, "1": a response without it comes from a
	// server that does not speak attested HTTP.
	HeaderVersion = "Expat-Version"
	version       = "1"

	// AuthScheme is the WWW-Authenticate scheme of a 401 challenge that
	// asks the client to attest (its EA request is in HeaderRequest).
	AuthScheme = "Expat"
)

// maxRequest bounds an EA request: message header, context (≤ 255) and
// extensions (< 2^16) (RFC 9261, Section 4).
const maxRequest = 4 + 1 + 255 + 2 + 65535

// Alerts used here (RFC 8446, Section 6).
const (
	alertHandshakeFailure tls.AlertError = 40
	alertIllegalParameter tls.AlertError = 47
	alertAccessDenied     tls.AlertError = 49
	alertInternalError    tls.AlertError = 80
)

// ErrUnsupported means the peer does not speak this package's attested
// HTTP: the server answered the setup exchange with something other than
// an attestation exchange response (an ordinary HTTPS server), or a request
// did not arrive over an attested connection.
var ErrUnsupported = errors.New("expathttp: peer does not speak attested HTTP")

func protocolError(what string, err error) error {
	return &expat.Error{Op: "parse " + what, Alert: alertIllegalParameter, Err: err}
}

// encodedLen is the length of n bytes in unpadded base64url.
func encodedLen(n int) int { return base64.RawURLEncoding.EncodedLen(n) }

// decode decodes one unpadded base64url value of at most max bytes,
// checking the length before decoding anything.
func decode(s string, max int) ([]byte, error) {
	if len(s) > encodedLen(max) {
		return nil, fmt.Errorf("value longer than %d bytes", max)
	}
	for i := 0; i < len(s); i++ {
		// encoding/base64 skips CR and LF: refuse them, and everything
		// else outside the alphabet, before decoding.
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return nil, errors.New("not unpadded base64url")
		}
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, errors.New("not unpadded base64url")
	}
	return b, nil
}

// single returns the only value of header name, "" if it is absent, or an
// error if it appears more than once.
func single(h http.Header, name string) (string, error) {
	v := h.Values(name)
	switch len(v) {
	case 0:
		return "", nil
	case 1:
		if v[0] == "" {
			return "", fmt.Errorf("empty %s", name)
		}
		return v[0], nil
	}
	return "", fmt.Errorf("%s repeated", name)
}

// parseRequestHeader returns the EA request in h, or nil if there is none.
func parseRequestHeader(h http.Header) ([]byte, error) {
	v, err := single(h, HeaderRequest)
	if err != nil || v == "" {
		return nil, wrapParse(HeaderRequest, err)
	}
	b, err := decode(v, maxRequest)
	if err != nil {
		return nil, wrapParse(HeaderRequest, err)
	}
	if len(b) == 0 {
		return nil, wrapParse(HeaderRequest, errors.New("empty request"))
	}
	return b, nil
}

func wrapParse(name string, err error) error {
	if err == nil {
		return nil
	}
	return protocolError(name, err)
}

// formatAuthenticator is the value of HeaderAuthenticator.
func formatAuthenticator(reqCtx, auth []byte) string {
	return base64.RawURLEncoding.EncodeToString(reqCtx) + "." + base64.RawURLEncoding.EncodeToString(auth)
}

// parseAuthenticatorHeader returns the context and authenticator in h;
// ok is false when there is none. maxAuth bounds the authenticator.
func parseAuthenticatorHeader(h http.Header, maxAuth int) (reqCtx, auth []byte, ok bool, err error) {
	v, err := single(h, HeaderAuthenticator)
	if err != nil || v == "" {
		return nil, nil, false, wrapParse(HeaderAuthenticator, err)
	}
	reqCtx, auth, err = parseAuthenticator(v, maxAuth)
	if err != nil {
		return nil, nil, false, wrapParse(HeaderAuthenticator, err)
	}
	return reqCtx, auth, true, nil
}

func parseAuthenticator(v string, maxAuth int) (reqCtx, auth []byte, err error) {
	c, a, found := strings.Cut(v, ".")
	if !found || strings.Contains(a, ".") {
		return nil, nil, errors.New("want context.authenticator")
	}
	if reqCtx, err = decode(c, 255); err != nil {
		return nil, nil, fmt.Errorf("context: %w", err)
	}
	if auth, err = decode(a, maxAuth); err != nil {
		return nil, nil, fmt.Errorf("authenticator: %w", err)
	}
	if len(auth) == 0 {
		return nil, nil, errors.New("empty authenticator field")
	}
	return reqCtx, auth, nil
}

// parseAlert reads HeaderAlert; ok is false when it is absent or malformed.
func parseAlert(h http.Header) (tls.AlertError, bool) {
	v, err := single(h, HeaderAlert)
	if err != nil || v == "" || len(v) > 3 {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 10, 8)
	if err != nil || n == 0 || strconv.FormatUint(n, 10) != v {
		return 0, false
	}
	return tls.AlertError(n), true
}

// alertOf returns the alert an error implies (internal_error by default).
func alertOf(err error) tls.AlertError {
	var e *expat.Error
	if errors.As(err, &e) && e.Alert != 0 {
		return e.Alert
	}
	return alertInternalError
}

// formatsHeader is cfg's HeaderFormats value, "" when it states nothing.
func formatsHeader(cfg *expat.Config) string {
	acc, prod := cfg.Formats()
	if len(acc) == 0 && len(prod) == 0 {
		return ""
	}
	return base64URL(expat.EncodeFormats(acc, prod))
}

// parseFormatsHeader reads the peer's HeaderFormats (none: nothing stated).
func parseFormatsHeader(h http.Header) (accepted, produced []string, err error) {
	v, err := single(h, HeaderFormats)
	if err != nil || v == "" {
		return nil, nil, wrapParse(HeaderFormats, err)
	}
	b, err := decode(v, expat.MaxFormatsLength)
	if err != nil {
		return nil, nil, protocolError(HeaderFormats, err)
	}
	if accepted, produced, err = expat.DecodeFormats(b); err != nil {
		return nil, nil, protocolError(HeaderFormats, err)
	}
	return accepted, produced, nil
}
