package expat

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/ea"
	"github.com/attested-tls/go-expat/verifier"
)

// Attestation is a verified attestation of the peer.
type Attestation struct {
	// Seq numbers the verified attestations of this connection from 1, in
	// the order their verification completed.
	Seq uint64
	// Context is the certificate_request_context of the exchange.
	Context []byte
	// Chain is the peer's Exported Authenticator chain ([0] is the end
	// entity whose key the Evidence is bound to).
	Chain []*x509.Certificate
	// Challenge is what the Evidence was checked to contain.
	Challenge attester.Challenge
	// Result is the Verifier's appraisal: model, status, claims,
	// measurements, the EAR when there is one.
	Result *verifier.Result
	// VerifiedAt is when the verification completed (Config.Time).
	VerifiedAt time.Time
	// ValidUntil, when not zero, is when this attestation stops being
	// relied on: the earlier of Result.Expires and VerifiedAt +
	// Config.MaxAttestationAge. A Conn re-attests before it
	// (Config.ReattestBefore) or treats the peer as unattested after it.
	ValidUntil time.Time
}

// Endpoint is the sans-I/O core of an attested connection: it makes
// attestation requests, answers the peer's, and verifies the peer's
// authenticators, leaving the carriage of the messages to the caller (Conn,
// or an application that carries them in HTTP headers, gRPC metadata or a
// QUIC stream). It is safe for concurrent use.
type Endpoint struct {
	cfg      *Config
	sess     *ea.Session
	exp      ea.Exporter
	isServer bool
	// handshakePeer is the peer's handshake leaf when crypto/tls verified a
	// chain for it; the default PeerIdentity compares against it.
	handshakePeer *x509.Certificate
	// handshakeChain is the chain the peer presented in the handshake,
	// parsed by crypto/tls; an EA chain equal to it shares its certificates.
	handshakeChain []*x509.Certificate
	// spki is the DER SubjectPublicKeyInfo of Config.Certificate's leaf,
	// parsed once.
	spki []byte
}

// newEndpoint completes an Endpoint's construction.
func newEndpoint(e *Endpoint) (*Endpoint, error) {
	if c := e.cfg.Certificate; c != nil {
		leaf := c.Leaf
		if leaf == nil || !bytes.Equal(leaf.Raw, c.Certificate[0]) {
			var err error
			if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
				return nil, fmt.Errorf("expat: Config.Certificate: %w", err)
			}
		}
		e.spki = leaf.RawSubjectPublicKeyInfo
	}
	return e, nil
}

// NewEndpoint returns an Endpoint for an established TLS 1.3 connection
// whose state is cs. isServer is our role on that connection. It refuses
// incomplete handshakes, TLS versions other than 1.3 and resumed sessions.
func NewEndpoint(cs *tls.ConnectionState, isServer bool, cfg *Config) (*Endpoint, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if err := checkState(cs); err != nil {
		return nil, err
	}
	sess, err := ea.NewSession(cs, isServer, cfg.eaConfig())
	if err != nil {
		return nil, fmt.Errorf("expat: %w", err)
	}
	var peer *x509.Certificate
	if len(cs.VerifiedChains) > 0 && len(cs.PeerCertificates) > 0 {
		peer = cs.PeerCertificates[0]
	}
	return newEndpoint(&Endpoint{cfg: cfg, sess: sess, exp: cs, isServer: isServer, handshakePeer: peer, handshakeChain: cs.PeerCertificates})
}

// checkState refuses connection states no attestation may be bound to.
func checkState(cs *tls.ConnectionState) error {
	switch {
	case cs == nil:
		return errors.New("expat: nil connection state")
	case !cs.HandshakeComplete:
		return fmt.Errorf("expat: %w: run the TLS handshake (tls.Conn.Handshake) before wrapping the connection", ea.ErrHandshakeIncomplete)
	case cs.DidResume:
		return ErrResumed
	}
	return nil
}

// NewEndpointFromSession returns an Endpoint over an existing ea.Session
// whose exporter is exp (for QUIC and other non-crypto/tls carriers).
// verifiedPeer is the peer's handshake certificate if, and only if, the
// caller's TLS stack verified it; it is what the default PeerIdentity
// compares against (nil makes the default identity policy reject every
// authenticator). When exp is a *tls.ConnectionState (as quic-go's
// ConnectionState().TLS is), an incomplete handshake or a resumed session
// is refused as by NewEndpoint; a caller passing another Exporter vouches
// that its session was not resumed.
func NewEndpointFromSession(sess *ea.Session, exp ea.Exporter, verifiedPeer *x509.Certificate, cfg *Config) (*Endpoint, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if sess == nil || exp == nil {
		return nil, errors.New("expat: NewEndpointFromSession needs a session and its exporter")
	}
	if cs, ok := exp.(*tls.ConnectionState); ok {
		if err := checkState(cs); err != nil {
			return nil, err
		}
	}
	return newEndpoint(&Endpoint{cfg: cfg, sess: sess, exp: exp, isServer: sess.IsServer(), handshakePeer: verifiedPeer})
}

// Request is an attestation request made by an Endpoint: its
// certificate_request_context and the message to send. The Endpoint keeps
// it outstanding until its answer is verified or it is cancelled.
type Request struct {
	Context []byte
	Message []byte
}

// NewRequest returns a new attestation request (a CertificateRequest from
// a server, a ClientCertificateRequest from a client) with a fresh
// context, offering cmw_attestation empty (draft -04, Section 4). Verify
// or VerifyFor consumes it; Cancel abandons it.
func (e *Endpoint) NewRequest() (*Request, error) {
	req, err := e.sess.NewRequest([]ea.Extension{{Type: e.cfg.extType(), Data: []byte{}}})
	if err != nil {
		return nil, wrapErr("request", alertOf(err, alertInternalError), err)
	}
	msg, err := req.Marshal()
	if err != nil {
		return nil, wrapErr("request", alertInternalError, err)
	}
	return &Request{Context: req.Context, Message: msg}, nil
}

// Cancel abandons our outstanding request with context reqContext: an
// answer to it is then never verified, and LateAnswer reports the first
// one. It reports whether the request was outstanding.
func (e *Endpoint) Cancel(reqContext []byte) bool {
	return e.sess.Cancel(&ea.Request{Context: reqContext})
}

// LateAnswer reports whether reqContext names a request cancelled with
// Cancel whose answer has not arrived before; it reports true at most
// once per context, so that a carrier can drop one late answer quietly and
// still treat a second one, or an answer to a request never sent, as a
// protocol violation.
func (e *Endpoint) LateAnswer(reqContext []byte) bool { return e.sess.LateAnswer(reqContext) }

// Request returns the message of a new attestation request (see
// NewRequest, which also returns its context).
func (e *Endpoint) Request() ([]byte, error) {
	r, err := e.NewRequest()
	if err != nil {
		return nil, err
	}
	return r.Message, nil
}

// ReleaseGate says what Config.Release requires before our Evidence goes
// to the peer: nothing (waitForPeer false, err nil), the peer's own
// verified attestation on this connection (waitForPeer true: the carrier
// answers once it has committed one, or refuses at the answer's bound),
// or it is never released on this connection (err; the carrier refuses
// the request with the empty authenticator).
func (e *Endpoint) ReleaseGate() (waitForPeer bool, err error) {
	switch rel := e.cfg.Release; {
	case rel == ReleaseToAny, rel == ReleaseToAuthenticated && e.handshakePeer != nil:
		return false, nil
	case rel == ReleaseToAuthenticated && !e.cfg.RequirePeerAttestation:
		return false, errors.New("expat: Evidence not released: the peer presented no verified certificate (Config.Release)")
	}
	return true, nil
}

// Respond answers the peer's request. It first checks the request — its
// form, its type for our role, a context not used on this connection — so
// that a request that would be refused costs no Evidence. When the request
// offers cmw_attestation, Respond then asks the Attester for Evidence
// bound to this connection, the request's context and our EA key, and
// returns an authenticator carrying it in the end-entity entry. Without a
// Certificate, or when cmw_attestation is offered and there is no
// Attester, it returns the empty authenticator (a refusal). If the
// Attester fails nothing is returned; the caller may then send Refuse's
// answer.
func (e *Endpoint) Respond(ctx context.Context, reqMsg []byte) ([]byte, error) {
	req, err := e.acceptRequest(reqMsg)
	if err != nil {
		return nil, err
	}
	return e.answer(ctx, req)
}

// acceptRequest parses and checks a request of the peer and reserves its
// context, before anything costly is done for it.
func (e *Endpoint) acceptRequest(reqMsg []byte) (*ea.Request, error) {
	req, err := ea.ParseRequest(reqMsg)
	if err != nil {
		return nil, wrapErr("parse request", alertOf(err, alertIllegalParameter), err)
	}
	if data, offered := req.Extension(e.cfg.extType()); offered && len(data) != 0 {
		err := errors.New("cmw_attestation offered with non-empty data")
		return nil, wrapErr("parse request", alertIllegalParameter, err)
	}
	if err := e.sess.Reserve(req); err != nil {
		return nil, wrapErr("parse request", alertOf(err, alertIllegalParameter), err)
	}
	return req, nil
}

// answer builds our answer to an accepted request.
func (e *Endpoint) answer(ctx context.Context, req *ea.Request) ([]byte, error) {
	_, offered := req.Extension(e.cfg.extType())
	if e.cfg.Certificate == nil || (offered && e.cfg.Attester == nil) {
		return e.refuse(req)
	}
	var leafExts []ea.Extension
	if offered {
		ch, err := ComputeChallenge(e.exp, e.sess.Hash(), e.cfg.label(), req.Context, e.spki)
		if err != nil {
			return nil, wrapErr("respond", alertInternalError, err)
		}
		cmw, err := e.cfg.Attester.Attest(ctx, ch)
		if err != nil {
			return nil, wrapErr("attest", alertInternalError, err)
		}
		ext, err := MarshalExtensionData(cmw)
		if err != nil {
			return nil, wrapErr("attest", alertInternalError, err)
		}
		leafExts = []ea.Extension{{Type: e.cfg.extType(), Data: ext}}
	}
	auth, err := e.sess.Authenticate(req, e.cfg.Certificate, leafExts)
	if err != nil {
		return nil, wrapErr("authenticate", alertOf(err, alertInternalError), err)
	}
	return auth, nil
}

// Refuse returns the empty authenticator for the peer's request: the
// explicit "no" of RFC 9261, Section 6. Conn uses it when the Attester
// fails or overruns its bound.
func (e *Endpoint) Refuse(reqMsg []byte) ([]byte, error) {
	req, err := ea.ParseRequest(reqMsg)
	if err != nil {
		return nil, wrapErr("parse request", alertOf(err, alertIllegalParameter), err)
	}
	return e.refuse(req)
}

func (e *Endpoint) refuse(req *ea.Request) ([]byte, error) {
	auth, err := e.sess.Refuse(req)
	if err != nil {
		return nil, wrapErr("refuse", alertOf(err, alertInternalError), err)
	}
	return auth, nil
}

// Verify validates the peer's authenticator against the request we sent
// with its context (RFC 9261), checks the peer's identity per
// Config.PeerIdentity, then has Config.Verifier appraise the CMW against
// the challenge we compute ourselves from this connection. It succeeds only
// if every step does; the context can be verified once. The request is
// found by the authenticator's own context; use VerifyFor when the carrier
// tells which request an authenticator answers (the only way to recognise
// an empty authenticator, which carries no context).
func (e *Endpoint) Verify(ctx context.Context, auth []byte) (*Attestation, error) {
	return e.verify(ctx, nil, auth)
}

// VerifyFor is Verify for the answer to our request with context reqContext.
func (e *Endpoint) VerifyFor(ctx context.Context, reqContext, auth []byte) (*Attestation, error) {
	if reqContext == nil {
		reqContext = []byte{}
	}
	return e.verify(ctx, reqContext, auth)
}

func (e *Endpoint) verify(ctx context.Context, reqContext, auth []byte) (*Attestation, error) {
	if e.cfg.Verifier == nil {
		return nil, errors.New("expat: no Verifier configured")
	}
	opts := e.validateOptions()
	// The appraisal runs alongside the authenticator's signature check
	// (ea.Session.ValidateAlongside): it starts once Finished has shown
	// the authenticator comes from this connection's peer, and its result
	// counts only if the signature and the chain then pass.
	var ch attester.Challenge
	var res *verifier.Result
	a, err := e.sess.ValidateAlongside(auth, opts, func(a *ea.Authenticated) error {
		var err error
		ch, res, err = e.appraise(ctx, reqContext, a)
		return err
	})
	if err != nil {
		var xe *Error
		switch {
		case errors.As(err, &xe):
			return nil, err
		case errors.Is(err, ea.ErrEmptyAuthenticator):
			return nil, wrapErr("verify", alertAccessDenied, ErrPeerRefused)
		}
		return nil, wrapErr("validate authenticator", alertOf(err, alertBadCertificate), err)
	}
	verifiedAt := e.cfg.now()
	validUntil := res.Expires
	if m := e.cfg.MaxAttestationAge; m > 0 {
		if end := verifiedAt.Add(m); validUntil.IsZero() || end.Before(validUntil) {
			validUntil = end
		}
	}
	if !validUntil.IsZero() && !verifiedAt.Before(validUntil) {
		return nil, wrapErr("appraise", alertBadCertificate, fmt.Errorf("%w: the appraisal was good until %v", ErrAttestationExpired, validUntil))
	}
	return &Attestation{
		Context:    a.Context,
		Chain:      e.shareChain(a.Chain),
		Challenge:  ch,
		Result:     res,
		VerifiedAt: verifiedAt,
		ValidUntil: validUntil,
	}, nil
}

// appraise checks that a answers reqContext (nil: any) and carries
// Evidence where draft -04 puts it, and has the Verifier appraise that
// Evidence against this connection's challenge and the relying party's
// policy. Its errors are *Error.
func (e *Endpoint) appraise(ctx context.Context, reqContext []byte, a *ea.Authenticated) (attester.Challenge, *verifier.Result, error) {
	if reqContext != nil && !bytes.Equal(a.Context, reqContext) {
		err := fmt.Errorf("%w: authenticator answers another request than the one it was sent for", ea.ErrUnknownContext)
		return attester.Challenge{}, nil, wrapErr("validate authenticator", alertOf(err, alertBadCertificate), err)
	}
	typ := e.cfg.extType()
	for i, entry := range a.Entries {
		if i == 0 {
			continue
		}
		for _, x := range entry.Extensions {
			if x.Type == typ {
				// draft -04, Section 4: only the end-entity entry
				// carries Evidence.
				err := fmt.Errorf("cmw_attestation in certificate entry %d", i)
				return attester.Challenge{}, nil, wrapErr("verify", alertIllegalParameter, err)
			}
		}
	}
	var data []byte
	found := false
	for _, x := range a.Extensions {
		if x.Type == typ {
			data, found = x.Data, true
		}
	}
	if !found {
		return attester.Challenge{}, nil, wrapErr("verify", alertMissingExtension, ErrMissingAttestation)
	}
	cmw, err := ParseExtensionData(data)
	if err != nil {
		return attester.Challenge{}, nil, wrapErr("verify", alertIllegalParameter, err)
	}
	leaf := a.Chain[0]
	ch, err := ComputeChallenge(e.exp, e.sess.Hash(), e.cfg.label(), a.Context, leaf.RawSubjectPublicKeyInfo)
	if err != nil {
		return attester.Challenge{}, nil, wrapErr("verify", alertInternalError, err)
	}
	res, err := e.cfg.Verifier.Verify(ctx, cmw, &verifier.Expected{
		Challenge: ch,
		PublicKey: leaf.PublicKey,
		SPKI:      leaf.RawSubjectPublicKeyInfo,
		Now:       e.cfg.now(),
	})
	if err != nil {
		alert := alertBadCertificate
		if errors.Is(err, verifier.ErrUnavailable) || !errors.Is(err, verifier.ErrRejected) {
			alert = alertInternalError
		}
		return attester.Challenge{}, nil, wrapErr("appraise", alert, err)
	}
	if res == nil {
		return attester.Challenge{}, nil, wrapErr("appraise", alertInternalError, errors.New("verifier returned no result and no error"))
	}
	if err := e.checkPolicy(res); err != nil {
		return attester.Challenge{}, nil, wrapErr("appraise", alertBadCertificate, err)
	}
	return ch, res, nil
}

// checkPolicy applies the relying party's policy on what the Verifier
// accepted: the key's tie to the environment and the machine.
func (e *Endpoint) checkPolicy(res *verifier.Result) error {
	if res.KeyBinding < e.cfg.MinKeyBinding {
		return verifier.Reject(verifier.CheckKey, nil, "the authenticator's key is tied to the attested environment by %v, the policy requires at least %v", res.KeyBinding, e.cfg.MinKeyBinding)
	}
	if len(e.cfg.AllowedPlatforms) == 0 {
		return nil
	}
	for _, id := range res.PlatformIDs {
		for _, ok := range e.cfg.AllowedPlatforms {
			if id.Equal(ok) {
				return nil
			}
		}
	}
	ids := make([]string, len(res.PlatformIDs))
	for i, id := range res.PlatformIDs {
		ids[i] = id.String()
	}
	return verifier.Reject(verifier.CheckPlatform, nil, "platform %v is not one Config.AllowedPlatforms allows", ids)
}

// shareChain returns the handshake's parsed chain when chain is the same
// certificates (the default identity policy makes it so), so that a
// verified Attestation does not keep a second parse of them.
func (e *Endpoint) shareChain(chain []*x509.Certificate) []*x509.Certificate {
	if len(chain) != len(e.handshakeChain) {
		return chain
	}
	for i := range chain {
		if !bytes.Equal(chain[i].Raw, e.handshakeChain[i].Raw) {
			return chain
		}
	}
	return e.handshakeChain
}

// validateOptions turns Config.PeerIdentity into ea.ValidateOptions.
func (e *Endpoint) validateOptions() *ea.ValidateOptions {
	o := e.trustOptions()
	// The handshake parsed the peer's chain already.
	o.Parsed = e.handshakeChain
	return o
}

// trustOptions says how the peer's authenticator chain is trusted
// (Config.PeerIdentity).
func (e *Endpoint) trustOptions() *ea.ValidateOptions {
	p := &e.cfg.PeerIdentity
	switch {
	case p.VerifyOptions != nil:
		return &ea.ValidateOptions{VerifyOptions: p.VerifyOptions}
	case p.VerifyChain != nil:
		return &ea.ValidateOptions{VerifyChain: p.VerifyChain}
	case p.PinnedKey != nil:
		return &ea.ValidateOptions{PinnedKey: p.PinnedKey}
	case p.AttestationOnly:
		return &ea.ValidateOptions{InsecureSkipChainVerify: true}
	}
	hs := e.handshakePeer
	return &ea.ValidateOptions{VerifyChain: func(chain []*x509.Certificate) error {
		if hs == nil {
			return errors.New("expat: the peer has no verified handshake certificate; set Config.PeerIdentity to trust its authenticator another way")
		}
		if len(chain) == 0 || !bytes.Equal(chain[0].Raw, hs.Raw) {
			return errors.New("expat: authenticator certificate differs from the peer's verified handshake certificate")
		}
		return nil
	}}
}

// alertOf returns the alert carried by an *ea.Error in err, or def.
func alertOf(err error, def tls.AlertError) tls.AlertError {
	var e *ea.Error
	if errors.As(err, &e) && e.Alert != 0 {
		return e.Alert
	}
	return def
}
