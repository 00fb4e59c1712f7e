package ea

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/tls"
	"hash"
	"io"
	"sync"

	_ "crypto/sha256" // SHA-256 for TLS_AES_128_GCM_SHA256, TLS_CHACHA20_POLY1305_SHA256
	_ "crypto/sha512" // SHA-384 for TLS_AES_256_GCM_SHA384, and SHA-512 schemes
)

// Exporter is the TLS 1.3 exporter of a connection (RFC 8446, Section 7.5).
// *tls.ConnectionState satisfies it, and so does the TLS state of a QUIC
// connection (quic-go's ConnectionState().TLS).
type Exporter interface {
	ExportKeyingMaterial(label string, context []byte, length int) ([]byte, error)
}

var _ Exporter = (*tls.ConnectionState)(nil)

// Defaults for the zero values of Config.
const (
	DefaultMaxAuthenticatorSize   = 64 << 10
	DefaultMaxChainLength         = 8
	DefaultMaxOutstandingRequests = 64
	DefaultMaxContexts            = 4096
)

// Config configures a Session. The zero value (or a nil *Config) is usable.
// A Config must not be modified after it has been passed to New or
// NewSession.
type Config struct {
	// Rand is the source of request contexts and of signature randomness.
	// nil means crypto/rand.
	Rand io.Reader

	// SignatureSchemes are offered in our requests (in this order) and are
	// the only schemes we sign with or accept. Schemes that are not valid
	// for TLS 1.3 CertificateVerify or not implemented are dropped. nil
	// means SupportedSignatureSchemes(): ECDSA P-256/P-384/P-521, Ed25519,
	// RSA-PSS rsae and pss with SHA-256/384/512.
	SignatureSchemes []tls.SignatureScheme

	// MaxAuthenticatorSize bounds the size of an authenticator we accept;
	// it is checked before parsing. 0 means DefaultMaxAuthenticatorSize.
	MaxAuthenticatorSize int

	// MaxChainLength bounds the number of certificate entries we accept
	// (and send). 0 means DefaultMaxChainLength.
	MaxChainLength int

	// MaxOutstandingRequests bounds the number of our requests awaiting an
	// authenticator. 0 means DefaultMaxOutstandingRequests.
	MaxOutstandingRequests int

	// MaxContexts bounds the record of certificate_request_context values
	// seen on the session (ours and the peer's, outstanding, answered and
	// validated), which RFC 9261 requires to be unique per connection and
	// which therefore lives as long as the session. When it is full, new
	// requests and answers fail with ErrTooManyContexts: the connection must
	// then be closed (a peer flooding requests ends its own connection). 0
	// means DefaultMaxContexts (about 250 KiB at most).
	MaxContexts int

	// ClientHello stands in for the authenticator request of spontaneous
	// server authenticators (RFC 9261, Section 5.1 and 5.2.1).
	//
	// On a server, it is what the client offered (see RecordClientHello);
	// without it, Authenticate refuses to build a spontaneous authenticator.
	//
	// On a client, it is what this client sent in its ClientHello (see
	// RecordClientHelloConn); a spontaneous server authenticator is only
	// accepted when ValidateOptions.AllowSpontaneous is set, and its
	// scheme and extensions are then checked against it. Without it,
	// spontaneous authenticators are rejected.
	ClientHello *ClientHello
}

func (c *Config) rand() io.Reader {
	if c == nil || c.Rand == nil {
		return rand.Reader
	}
	return c.Rand
}

func (c *Config) maxAuthenticatorSize() int {
	if c == nil || c.MaxAuthenticatorSize <= 0 {
		return DefaultMaxAuthenticatorSize
	}
	return c.MaxAuthenticatorSize
}

func (c *Config) maxChainLength() int {
	if c == nil || c.MaxChainLength <= 0 {
		return DefaultMaxChainLength
	}
	return c.MaxChainLength
}

func (c *Config) maxOutstanding() int {
	if c == nil || c.MaxOutstandingRequests <= 0 {
		return DefaultMaxOutstandingRequests
	}
	return c.MaxOutstandingRequests
}

func (c *Config) maxContexts() int {
	if c == nil || c.MaxContexts <= 0 {
		return DefaultMaxContexts
	}
	return c.MaxContexts
}

func (c *Config) schemes() []tls.SignatureScheme {
	if c == nil || c.SignatureSchemes == nil {
		return defaultSchemes
	}
	var out []tls.SignatureScheme
	for _, s := range c.SignatureSchemes {
		if _, ok := tls13Scheme(s); ok {
			out = append(out, s)
		}
	}
	return out
}

// contextState is what a certificate_request_context has been used for on
// this session. One record covers both request types and both directions
// (RFC 9261, Section 4: contexts are unique per connection).
type contextState uint8

const (
	ctxOutstanding contextState = iota + 1 // our request, awaiting the peer's authenticator
	ctxConsumed                            // an authenticator was validated (or attempted) for it
	ctxAnswered                            // we built an authenticator (or refusal) for it
	ctxReserved                            // a peer request accepted by Reserve, not answered yet
	ctxCancelled                           // our request, cancelled before its answer arrived
)

// full reports whether the context record is at its bound; s.mu is held.
func (s *Session) full() bool { return len(s.contexts) >= s.cfg.maxContexts() }

func tooManyContexts() *Error {
	return newError(alertInternalError, KindState, ErrTooManyContexts, "context record full")
}

type outstanding struct {
	req *Request
	raw []byte // the framed request as sent
}

// Session is the Exported Authenticator state of one TLS 1.3 connection:
// its exporter and suite, our role, and the record of every context issued,
// answered and validated. Safe for concurrent use.
type Session struct {
	exp      Exporter
	suite    uint16
	hash     crypto.Hash
	isServer bool
	cfg      *Config

	mu       sync.Mutex
	contexts map[string]contextState
	pending  map[string]outstanding // nil when empty (a map keeps its memory)
}

// NewSession returns the Session of a connection from its state. It refuses
// connections that are not TLS 1.3 (ErrNotTLS13) or whose handshake has not
// completed (ErrHandshakeIncomplete; RFC 9261, Section 9: a server must
// have verified the client Finished first). Call it after Handshake
// returned, e.g. with conn.ConnectionState(). Resumption is not refused
// here; the caller decides whether a resumed session may authenticate.
func NewSession(cs *tls.ConnectionState, isServer bool, cfg *Config) (*Session, error) {
	if cs == nil {
		return nil, localError("nil connection state")
	}
	// An unfinished handshake has no version yet: say so first.
	if !cs.HandshakeComplete {
		return nil, newError(alertUnexpectedMessage, KindState, ErrHandshakeIncomplete, "TLS handshake not complete: call Handshake first")
	}
	if cs.Version != tls.VersionTLS13 {
		return nil, newError(alertProtocolVersion, KindState, ErrNotTLS13, "connection is not TLS 1.3")
	}
	c := *cs
	return New(&c, cs.CipherSuite, isServer, cfg)
}

// New returns a Session over any TLS 1.3 exporter (sans I/O: QUIC, tests).
// suite is the negotiated TLS 1.3 cipher suite; it fixes the hash and the
// length of the exported keys (32 bytes for SHA-256 suites, 48 for
// TLS_AES_256_GCM_SHA384).
func New(exp Exporter, suite uint16, isServer bool, cfg *Config) (*Session, error) {
	if exp == nil {
		return nil, localError("nil exporter")
	}
	h, ok := suiteHash(suite)
	if !ok {
		return nil, newError(alertProtocolVersion, KindState, ErrNotTLS13, "not a TLS 1.3 cipher suite")
	}
	return &Session{
		exp: exp, suite: suite, hash: h, isServer: isServer, cfg: cfg,
		contexts: make(map[string]contextState),
	}, nil
}

// suiteHash maps a TLS 1.3 cipher suite to its hash (RFC 8446, Appendix B.4).
func suiteHash(suite uint16) (crypto.Hash, bool) {
	switch suite {
	case tls.TLS_AES_128_GCM_SHA256, tls.TLS_CHACHA20_POLY1305_SHA256, 0x1304, 0x1305:
		return crypto.SHA256, true
	case tls.TLS_AES_256_GCM_SHA384:
		return crypto.SHA384, true
	}
	return 0, false
}

// Hash returns the hash of the session's cipher suite (SHA-256 or SHA-384).
func (s *Session) Hash() crypto.Hash { return s.hash }

// IsServer reports whether we are the TLS server of the connection.
func (s *Session) IsServer() bool { return s.isServer }

// CipherSuite returns the TLS 1.3 cipher suite the session was created with.
func (s *Session) CipherSuite() uint16 { return s.suite }

// Exporter labels, RFC 9261, Section 5.1. The label names the role of the
// party that sends the authenticator.
const (
	labelClientHC = "EXPORTER-client authenticator handshake context"
	labelClientFK = "EXPORTER-client authenticator finished key"
	labelServerHC = "EXPORTER-server authenticator handshake context"
	labelServerFK = "EXPORTER-server authenticator finished key"
)

// keys returns the handshake context and finished key for authenticators
// sent by the server (senderIsServer) or by the client: exporter outputs
// with an empty context and the suite's hash length.
func (s *Session) keys(senderIsServer bool) (hc, fk []byte, err *Error) {
	hcl, fkl := labelClientHC, labelClientFK
	if senderIsServer {
		hcl, fkl = labelServerHC, labelServerFK
	}
	n := s.hash.Size()
	hc, e1 := s.exp.ExportKeyingMaterial(hcl, nil, n)
	fk, e2 := s.exp.ExportKeyingMaterial(fkl, nil, n)
	if e1 != nil || e2 != nil || len(hc) != n || len(fk) != n {
		return nil, nil, newError(alertInternalError, KindLocal, nil, "exporter failed")
	}
	return hc, fk, nil
}

// transcript hashes HC || request || Certificate and, after the
// CertificateVerify is added, gives the Finished MAC (RFC 9261, 5.2.2-5.2.3).
// It hashes as messages are added: each byte is hashed once.
type transcript struct {
	h  crypto.Hash
	rh hash.Hash
	fk []byte
}

func (s *Session) newTranscript(hc, fk, request []byte) *transcript {
	t := &transcript{h: s.hash, rh: s.hash.New(), fk: fk}
	t.rh.Write(hc)
	t.rh.Write(request)
	return t
}

func (t *transcript) add(msg []byte) { t.rh.Write(msg) }

// sum is the hash of everything added so far; adding may continue.
func (t *transcript) sum() []byte { return t.rh.Sum(nil) }

func (t *transcript) finished() []byte {
	m := hmac.New(t.h.New, t.fk)
	m.Write(t.sum())
	return m.Sum(nil)
}

// emptyCertificate is the Certificate with no entries that an empty
// authenticator's Finished covers but does not carry (RFC 9261, Section 6).
func emptyCertificate(ctx []byte) []byte {
	b, _ := (&certificateMsg{context: ctx}).marshal()
	return b
}

func (s *Session) randomContext() ([]byte, *Error) {
	ctx := make([]byte, 32)
	if _, err := io.ReadFull(s.cfg.rand(), ctx); err != nil {
		return nil, newError(alertInternalError, KindLocal, err, "reading random context")
	}
	return ctx, nil
}

// NewRequest builds a request for the peer to authenticate: a
// CertificateRequest (13) if we are the server, a ClientCertificateRequest
// (17) if we are the client (RFC 9261, Section 4). Its context is 32 fresh
// random bytes, unique on this session. signature_algorithms comes first,
// from Config.SignatureSchemes; extra extensions follow in order (e.g. an
// empty cmw_attestation offer). extra must not repeat a type, contain
// signature_algorithms, or contain extensions TLS 1.3 defines for other
// messages (server_name is allowed in a ClientCertificateRequest). The
// request is recorded as outstanding until Validate consumes it.
func (s *Session) NewRequest(extra []Extension) (*Request, error) {
	schemes := s.cfg.schemes()
	if len(schemes) == 0 {
		return nil, localError("no signature schemes configured")
	}
	for _, e := range extra {
		if e.Type == ExtensionSignatureAlgorithms {
			return nil, localError("signature_algorithms is set from Config, not from extra extensions")
		}
	}
	sa, err := marshalSignatureAlgorithms(schemes)
	if err != nil {
		return nil, localError("marshalling signature_algorithms")
	}
	typ := TypeClientCertificateRequest
	if s.isServer {
		typ = TypeCertificateRequest
	}
	r := &Request{Type: typ, Extensions: append([]Extension{{Type: ExtensionSignatureAlgorithms, Data: sa}}, cloneExtensions(extra)...)}
	for attempt := 0; ; attempt++ {
		if attempt == 4 {
			return nil, localError("Rand keeps returning used contexts")
		}
		ctx, err := s.randomContext()
		if err != nil {
			return nil, err
		}
		r.Context = ctx
		raw, merr := r.Marshal()
		if merr != nil {
			return nil, merr
		}
		s.mu.Lock()
		if len(s.pending) >= s.cfg.maxOutstanding() {
			s.mu.Unlock()
			return nil, localError("too many outstanding requests")
		}
		if _, used := s.contexts[string(ctx)]; used {
			s.mu.Unlock()
			continue // a 2^-256 event, or a broken Rand: draw again
		}
		if s.full() {
			s.mu.Unlock()
			return nil, tooManyContexts()
		}
		s.contexts[string(ctx)] = ctxOutstanding
		s.pend(ctx, outstanding{req: r.clone(), raw: raw})
		s.mu.Unlock()
		return r, nil
	}
}

// Cancel forgets an outstanding request of ours; an authenticator for it
// is then rejected (ErrContextUsed), and LateAnswer reports it once. It
// reports whether the request was outstanding.
func (s *Session) Cancel(req *Request) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if req == nil || s.contexts[string(req.Context)] != ctxOutstanding {
		return false
	}
	s.contexts[string(req.Context)] = ctxCancelled
	s.unpend(req.Context)
	return true
}

// LateAnswer reports whether ctx names a request of ours that was
// cancelled and has not had a late answer yet, and records that answer: it
// reports true at most once per context. A carrier uses it to drop, without
// an error, the answer to a request its caller gave up on, while an answer
// to a request never sent, or a second answer, remains a protocol error.
func (s *Session) LateAnswer(ctx []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.contexts[string(ctx)] != ctxCancelled {
		return false
	}
	s.contexts[string(ctx)] = ctxConsumed
	return true
}

// pend records our outstanding request ctx. s.mu is held.
func (s *Session) pend(ctx []byte, o outstanding) {
	if s.pending == nil {
		s.pending = make(map[string]outstanding, 1)
	}
	s.pending[string(ctx)] = o
}

// unpend forgets our outstanding request ctx. The map is dropped when it
// becomes empty: Go maps do not shrink, and an idle session should not
// hold the memory of its last request. s.mu is held.
func (s *Session) unpend(ctx []byte) {
	delete(s.pending, string(ctx))
	if len(s.pending) == 0 {
		s.pending = nil
	}
}
