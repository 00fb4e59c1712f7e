package ea

import (
	"bytes"
	"crypto"
	"crypto/hmac"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"runtime"
	"slices"

	"github.com/attested-tls/go-expat/internal/warm"
)

// Entry is one CertificateEntry of a validated authenticator.
type Entry struct {
	Certificate *x509.Certificate
	Extensions  []Extension
}

// Authenticated is what a valid authenticator proves: the peer holds the
// private key of Chain[0] and the TLS connection's exporter secret, for
// this context, and (unless InsecureSkipChainVerify) the chain is trusted
// the way ValidateOptions said.
type Authenticated struct {
	Request        *Request            // the request we sent (nil for spontaneous)
	Context        []byte              // certificate_request_context
	Chain          []*x509.Certificate // as sent, [0] is the end-entity
	Entries        []Entry             // per entry extensions, same order as Chain
	Extensions     []Extension         // the end-entity entry's extensions (== Entries[0].Extensions)
	VerifiedChains [][]*x509.Certificate
	Scheme         tls.SignatureScheme
	Spontaneous    bool
}

// ValidateOptions says how Validate trusts the peer's certificate chain.
// Exactly one of VerifyOptions, VerifyChain, PinnedKey and
// InsecureSkipChainVerify must be set; none or several is an error (fail
// closed).
type ValidateOptions struct {
	// VerifyOptions runs x509 chain validation of Chain[0] with Chain[1:]
	// added to the intermediates. As in crypto/x509, an empty KeyUsages
	// means ExtKeyUsageServerAuth: set ExtKeyUsageClientAuth to validate
	// a client. CurrentTime zero means now.
	VerifyOptions *x509.VerifyOptions
	// VerifyChain is called with the chain as sent; an error rejects it.
	VerifyChain func(chain []*x509.Certificate) error
	// PinnedKey: the end-entity public key must equal this key.
	PinnedKey crypto.PublicKey
	// InsecureSkipChainVerify trusts any chain. The signature and Finished
	// are still checked. For RA-only onboarding built on top of this
	// package, never a default.
	InsecureSkipChainVerify bool
	// AllowSpontaneous lets a client accept a spontaneous server
	// authenticator (RFC 9261, Section 5), checked against
	// Config.ClientHello. Servers never accept spontaneous authenticators:
	// clients must not send them.
	AllowSpontaneous bool
	// Parsed are certificates the caller has already parsed, typically
	// the peer's chain from the TLS handshake: an entry whose DER is that
	// of one of them is not parsed again (the result is the same).
	Parsed []*x509.Certificate
}

func (o *ValidateOptions) check() *Error {
	if o == nil {
		return localError("nil ValidateOptions: choose how to trust the chain")
	}
	n := 0
	if o.VerifyOptions != nil {
		n++
	}
	if o.VerifyChain != nil {
		n++
	}
	if o.PinnedKey != nil {
		n++
	}
	if o.InsecureSkipChainVerify {
		n++
	}
	if n != 1 {
		return localError("ValidateOptions must choose exactly one way to trust the chain")
	}
	return nil
}

// Validate checks an authenticator from the peer (RFC 9261, Sections 5 and
// 7.4). After the size limit and strict framing (message order, lengths,
// chain length, no trailing bytes, exact Finished length), the context of
// its Certificate must be that of one of our outstanding requests, or, for
// a client with AllowSpontaneous, a context never used on this session (a
// spontaneous server authenticator). A well-formed authenticator consumes
// its context atomically before anything else is checked: one attempt per
// context, whatever the outcome, so concurrent validations of one context
// accept at most one.
//
// Then, in this order: every entry's certificate parses and its
// extensions were offered by the request, the scheme was offered, is
// TLS 1.3-valid and matches the key, Finished (constant time),
// CertificateVerify, and the chain per opts. An empty authenticator matching an outstanding
// request yields an *Error wrapping ErrEmptyAuthenticator with the
// request's context; it consumes that request.
func (s *Session) Validate(auth []byte, opts *ValidateOptions) (*Authenticated, error) {
	a, err := s.validate(auth, opts, nil)
	if err != nil {
		return nil, err
	}
	return a, nil
}

// ValidateAlongside is Validate with f, the caller's own checks of the
// authenticator (typically the appraisal of the Evidence it carries), run
// alongside the costliest of Validate's: f is called once everything up to
// and including Finished has passed, so a is known to come from a holder of
// this connection's exporter secret, but before the CertificateVerify
// signature and the chain are checked. Those run concurrently with f when
// more than one CPU is available (runtime.GOMAXPROCS), and before f
// otherwise (f is then not called if they fail).
//
// f must treat a as unproven, and a is returned only if both pass: a
// signature or chain failure is returned whatever f returned (as the same
// *Error Validate returns), and an error from f is returned unchanged.
// f runs in the caller's goroutine, and so does a VerifyChain callback of
// opts, before f and never concurrently with it. a.VerifiedChains is not
// set in the authenticator f sees.
func (s *Session) ValidateAlongside(auth []byte, opts *ValidateOptions, f func(a *Authenticated) error) (*Authenticated, error) {
	if f == nil {
		return s.Validate(auth, opts)
	}
	var ferr error
	a, err := s.validate(auth, opts, func(a *Authenticated) { ferr = f(a) })
	if err != nil {
		return nil, err
	}
	if ferr != nil {
		return nil, ferr
	}
	return a, nil
}

func (s *Session) validate(auth []byte, opts *ValidateOptions, alongside func(*Authenticated)) (*Authenticated, *Error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	if len(auth) > s.cfg.maxAuthenticatorSize() {
		return nil, decodeError("authenticator larger than MaxAuthenticatorSize")
	}
	if len(auth) > 0 && auth[0] == TypeFinished {
		return nil, s.validateEmpty(auth)
	}

	// Framing first: only a well-formed authenticator names a context.
	ra, err := splitAuthenticator(auth, s.hash.Size(), s.cfg.maxChainLength())
	if err != nil {
		return nil, err
	}
	ctx := ra.cert.context
	senderIsServer := !s.isServer
	var of offer
	var req *Request
	spontaneous := false
	s.mu.Lock()
	st, known := s.contexts[string(ctx)]
	switch {
	case known && st == ctxOutstanding:
		p := s.pending[string(ctx)]
		s.unpend(ctx)
		s.contexts[string(ctx)] = ctxConsumed
		req = p.req
		of = requestOffer(p.req, p.raw)
	case known:
		s.mu.Unlock()
		return nil, newError(alertIllegalParameter, KindContext, ErrContextUsed, "authenticator for a used context").withContext(ctx)
	case s.isServer:
		s.mu.Unlock()
		return nil, newError(alertIllegalParameter, KindContext, ErrUnknownContext, "authenticator from a client for a request we never sent").withContext(ctx)
	case !opts.AllowSpontaneous:
		s.mu.Unlock()
		return nil, newError(alertIllegalParameter, KindPolicy, ErrUnknownContext, "spontaneous server authenticator not allowed").withContext(ctx)
	case s.cfg == nil || s.cfg.ClientHello == nil:
		s.mu.Unlock()
		return nil, newError(alertIllegalParameter, KindPolicy, ErrUnknownContext, "spontaneous server authenticator without a ClientHello record to check it against").withContext(ctx)
	case s.full():
		s.mu.Unlock()
		return nil, tooManyContexts().withContext(ctx)
	default:
		s.contexts[string(ctx)] = ctxConsumed
		spontaneous = true
		of = clientHelloOffer(s.cfg.ClientHello)
	}
	s.mu.Unlock()

	fail := func(e *Error) (*Authenticated, *Error) { return nil, e.withContext(ctx) }

	out := &Authenticated{Request: req.clone(), Context: ctx, Spontaneous: spontaneous, Scheme: ra.cv.scheme}
	for _, e := range ra.cert.entries {
		c := parsedAs(opts.Parsed, e.der)
		if c == nil {
			var perr error
			if c, perr = x509.ParseCertificate(e.der); perr != nil {
				return fail(newError(alertBadCertificate, KindCertificate, perr, "parsing certificate"))
			}
		}
		for _, x := range e.exts {
			if !of.hasExt(x.Type) {
				return fail(newError(alertUnsupportedExt, KindUnsolicitedExtension, nil, "certificate extension not offered by the request"))
			}
		}
		out.Chain = append(out.Chain, c)
		out.Entries = append(out.Entries, Entry{Certificate: c, Extensions: e.exts})
	}
	out.Extensions = out.Entries[0].Extensions

	// RFC 9261, Section 5.2.2: the scheme must have been offered, be valid
	// for TLS 1.3 and match the end-entity key.
	scheme := ra.cv.scheme
	if !slices.Contains(of.schemes, scheme) || !slices.Contains(s.cfg.schemes(), scheme) {
		return fail(newError(alertIllegalParameter, KindScheme, nil, "signature scheme not offered"))
	}
	key, kerr := certificateKey(out.Chain[0])
	if kerr != nil {
		return fail(newError(alertBadCertificate, KindCertificate, kerr, "end-entity public key"))
	}
	if !schemeMatchesKey(scheme, key) {
		return fail(newError(alertIllegalParameter, KindScheme, nil, "signature scheme does not match the end-entity key"))
	}

	hc, fk, err := s.keys(senderIsServer)
	if err != nil {
		return fail(err)
	}
	t := s.newTranscript(hc, fk, of.raw)
	t.add(ra.certMsg)
	content := signedContent(t.sum())
	t.add(ra.cvMsg)
	// RFC 9261, Section 5.2.3; constant-time comparison.
	if !hmac.Equal(t.finished(), ra.finished) {
		return fail(newError(alertDecryptError, KindFinished, nil, "Finished does not match"))
	}
	// The chain callback is the caller's code: it never runs concurrently
	// with alongside (also the caller's); the rest of the proof may.
	callback := opts.VerifyChain != nil
	proof := func() *Error {
		if !verify(key, scheme, content, ra.cv.signature) {
			return newError(alertDecryptError, KindSignature, nil, "CertificateVerify signature does not verify")
		}
		if callback {
			return nil
		}
		return s.trustChain(out, key, opts)
	}
	if callback && alongside != nil {
		if err := s.trustChain(out, key, opts); err != nil {
			return fail(err)
		}
	}
	switch {
	case alongside == nil:
		if err = proof(); err == nil && callback {
			err = s.trustChain(out, key, opts)
		}
	case runtime.GOMAXPROCS(0) > 1:
		cp := *out // the proof may set out.VerifiedChains meanwhile
		done := make(chan *Error, 1)
		warm.Go(func() { done <- proof() })
		alongside(&cp)
		err = <-done
	default:
		if err = proof(); err == nil {
			cp := *out
			cp.VerifiedChains = nil // as f sees it with more CPUs
			alongside(&cp)
		}
	}
	if err != nil {
		return fail(err)
	}
	return out, nil
}

// parsedAs returns the certificate of parsed whose DER is der, or nil.
func parsedAs(parsed []*x509.Certificate, der []byte) *x509.Certificate {
	for _, c := range parsed {
		if c != nil && bytes.Equal(c.Raw, der) {
			return c
		}
	}
	return nil
}

// trustChain applies the caller's choice of chain validation.
func (s *Session) trustChain(out *Authenticated, key leafKey, opts *ValidateOptions) *Error {
	switch {
	case opts.InsecureSkipChainVerify:
		return nil
	case opts.PinnedKey != nil:
		if !publicKeysEqual(key.pub, opts.PinnedKey) {
			return newError(alertBadCertificate, KindCertificate, nil, "end-entity key is not the pinned key")
		}
		return nil
	case opts.VerifyChain != nil:
		if err := opts.VerifyChain(slices.Clone(out.Chain)); err != nil {
			return newError(alertBadCertificate, KindCertificate, err, "chain rejected")
		}
		return nil
	}
	vo := *opts.VerifyOptions
	if vo.Intermediates == nil {
		vo.Intermediates = x509.NewCertPool()
	} else {
		vo.Intermediates = vo.Intermediates.Clone()
	}
	for _, c := range out.Chain[1:] {
		vo.Intermediates.AddCert(c)
	}
	chains, err := out.Chain[0].Verify(vo)
	if err != nil {
		alert := alertBadCertificate
		var ua x509.UnknownAuthorityError
		var ci x509.CertificateInvalidError
		switch {
		case errors.As(err, &ua):
			alert = alertUnknownCA
		case errors.As(err, &ci) && ci.Reason == x509.Expired:
			alert = alertCertificateExpired
		}
		return newError(alert, KindCertificate, err, "chain validation failed")
	}
	out.VerifiedChains = chains
	return nil
}

// validateEmpty handles a lone Finished (RFC 9261, Section 6). It carries
// no context, so it is matched against each outstanding request; the one
// it matches is consumed and reported as refused.
func (s *Session) validateEmpty(auth []byte) *Error {
	ra, err := splitAuthenticator(auth, s.hash.Size(), 0)
	if err != nil {
		return err
	}
	s.mu.Lock()
	cands := make([]outstanding, 0, len(s.pending))
	for _, p := range s.pending {
		cands = append(cands, p)
	}
	s.mu.Unlock()
	hc, fk, err := s.keys(!s.isServer)
	if err != nil {
		return err
	}
	var match *outstanding
	for i := range cands {
		t := s.newTranscript(hc, fk, cands[i].raw)
		t.add(emptyCertificate(cands[i].req.Context))
		if hmac.Equal(t.finished(), ra.finished) {
			match = &cands[i]
		}
	}
	if match == nil {
		return newError(alertDecryptError, KindFinished, nil, "empty authenticator matches no outstanding request")
	}
	ctx := match.req.Context
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.contexts[string(ctx)] != ctxOutstanding {
		return newError(alertIllegalParameter, KindContext, ErrContextUsed, "empty authenticator for a used context").withContext(ctx)
	}
	s.contexts[string(ctx)] = ctxConsumed
	s.unpend(ctx)
	return newError(alertCertificateRequired, KindEmpty, ErrEmptyAuthenticator, "peer sent the empty authenticator").withContext(ctx)
}
