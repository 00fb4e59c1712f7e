// Package ea implements TLS Exported Authenticators (RFC 9261) on top of
// crypto/tls, for TLS 1.3 only.
//
// It is sans I/O: a Session needs the connection's TLS exporter and cipher
// suite (NewSession takes a *tls.ConnectionState after Handshake; New takes
// any Exporter, e.g. a QUIC connection's TLS state), and produces and
// consumes EA messages as byte slices that the application carries.
//
// The four operations of RFC 9261, Section 7:
//
//   - request: Session.NewRequest builds a CertificateRequest (13) on a
//     server or a ClientCertificateRequest (17) on a client, with a fresh
//     32-byte random context and signature_algorithms; ParseRequest parses
//     the peer's.
//   - get context: GetContext, for requests and authenticators.
//   - authenticate: Session.Authenticate answers the peer's request (or,
//     on a server, builds a spontaneous authenticator against the recorded
//     ClientHello); Session.Refuse builds the empty authenticator.
//   - validate: Session.Validate checks the peer's authenticator against
//     our outstanding request and the caller's choice of chain trust.
//
// Implemented: X.509 certificates only; signature schemes ECDSA
// P-256/P-384/P-521 (curve bound to the scheme), Ed25519, RSASSA-PSS with
// rsaEncryption (rsae) and id-RSASSA-PSS (pss) keys; SHA-256 and SHA-384
// suites (32- and 48-byte exported keys). RSASSA-PKCS1-v1_5, SHA-1 and
// SHA-224 schemes are never used (RFC 8446, Section 4.4.3). Opaque
// crypto.Signer keys (TPM, HSM) can sign.
//
// Not implemented: raw public keys, certificate compression, OCSP/SCT
// checking (status_request and signed_certificate_timestamp data are
// carried and returned, not interpreted), TLS 1.2, DTLS.
//
// Security properties and caveats:
//
//   - Contexts: one record per Session covers contexts we issued, answered
//     and validated, across both request types. Validate consumes a
//     context before checking anything else, so each context is accepted
//     at most once, including under concurrent calls.
//   - Roles: exporter labels follow the sender's role; a server answers
//     only ClientCertificateRequest (17), a client only CertificateRequest
//     (13); clients never send, and servers never accept, spontaneous
//     authenticators. A client accepts a spontaneous server authenticator
//     only with ValidateOptions.AllowSpontaneous and a record of its own
//     ClientHello (Config.ClientHello, see ClientHelloConn).
//   - An empty authenticator is reported as ErrEmptyAuthenticator, never as
//     success.
//   - Validate fails closed unless the caller chose exactly one way to
//     trust the chain (x509.VerifyOptions, a callback, a pinned key, or the
//     explicitly insecure skip).
//   - Peer input is parsed strictly with cryptobyte (no trailing bytes, no
//     duplicate extensions, exact Finished length, no extension that TLS
//     1.3 specifies for other messages only: illegal_parameter, RFC 8446,
//     Section 4.2, in requests and CertificateEntries); sizes are bounded
//     (Config.MaxAuthenticatorSize, MaxChainLength) before parsing, and
//     nothing is allocated from a length the peer claims.
//   - Resumption and 0-RTT are not refused here: an authenticator on a
//     resumed connection proves key possession now, bound to this
//     connection's exporter. Whether resumed connections may be used is
//     the caller's policy (package expat refuses them).
//   - Errors are *Error values carrying the TLS alert implied by the
//     specification and a Kind; sentinels are matched with errors.Is.
package ea
