package ea

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"slices"
)

// offer is what the requester offered: a request, or for a spontaneous
// server authenticator the ClientHello (RFC 9261, Section 5.2.1).
type offer struct {
	raw     []byte // framed request; empty when spontaneous
	schemes []tls.SignatureScheme
	hasExt  func(uint16) bool
}

func requestOffer(req *Request, raw []byte) offer {
	return offer{raw: raw, schemes: req.SignatureSchemes(), hasExt: func(t uint16) bool {
		_, ok := req.Extension(t)
		return ok
	}}
}

func clientHelloOffer(ch *ClientHello) offer {
	return offer{schemes: ch.SignatureSchemes, hasExt: ch.hasExtension}
}

// checkPeerRequest checks that req is a request the peer may send us:
// a client sends ClientCertificateRequest (17), a server CertificateRequest
// (13). Answering the wrong type is the CR/CCR confusion of RFC 9261, 4.
func (s *Session) checkPeerRequest(req *Request) ([]byte, *Error) {
	want := TypeCertificateRequest // from a server, to us the client
	if s.isServer {
		want = TypeClientCertificateRequest
	}
	if req.Type != want {
		return nil, newError(alertUnexpectedMessage, KindPolicy, nil, "request type does not match the peer's role")
	}
	raw, err := req.Marshal()
	if err != nil {
		return nil, err.(*Error)
	}
	return raw, nil
}

// reserve marks ctx as answered by us (to, when reserving ahead of the
// answer, ctxReserved); a context is answered at most once and never if it
// is one of our own requests or was validated. A context reserved by
// Reserve may be answered once.
func (s *Session) reserve(ctx []byte, to contextState) *Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, used := s.contexts[string(ctx)]
	switch {
	case used && !(st == ctxReserved && to == ctxAnswered):
		return newError(alertIllegalParameter, KindContext, ErrContextUsed, "refusing to authenticate twice for one context").withContext(ctx)
	case !used && s.full():
		return tooManyContexts().withContext(ctx)
	}
	s.contexts[string(ctx)] = to
	return nil
}

// Reserve checks, before any costly work for it (a hardware quote), that
// req is a request the peer may send us — the right type for its role
// (RFC 9261, Section 4) and a context not used on this connection — and
// reserves its context: a second Reserve, or an answer to another request
// with the same context, then fails with ErrContextUsed. The reserved
// request is then answered once with Authenticate or Refuse.
func (s *Session) Reserve(req *Request) error {
	if req == nil {
		return localError("nothing to reserve")
	}
	if _, err := s.checkPeerRequest(req); err != nil {
		return err
	}
	if err := s.reserve(req.Context, ctxReserved); err != nil {
		return err
	}
	return nil
}

// Authenticate builds Certificate || CertificateVerify || Finished
// (RFC 9261, Section 5) with cert's chain and private key.
//
// With req != nil it answers a request from the peer: as a server a
// ClientCertificateRequest (17), as a client a CertificateRequest (13).
// With req == nil (servers only) it builds a spontaneous authenticator with
// a fresh random context, against Config.ClientHello.
//
// cert.PrivateKey must be a crypto.Signer (it may be opaque: TPM, HSM)
// whose public key is the end-entity certificate's. The scheme is the
// first one of the request's signature_algorithms that Config allows and
// the key can produce in TLS 1.3. leafExts go into the end-entity entry
// and their types must all have been offered by the request (or the
// ClientHello). A context is answered at most once (ErrContextUsed).
func (s *Session) Authenticate(req *Request, cert *tls.Certificate, leafExts []Extension) ([]byte, error) {
	if cert == nil || len(cert.Certificate) == 0 {
		return nil, localError("no certificate: use Refuse to decline")
	}
	if len(cert.Certificate) > s.cfg.maxChainLength() {
		return nil, localError("certificate chain longer than MaxChainLength")
	}
	signer, ok := cert.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, localError("private key is not a crypto.Signer")
	}

	var of offer
	var ctx []byte
	if req == nil {
		if !s.isServer {
			return nil, localError("clients must not send spontaneous authenticators (RFC 9261, Section 5)")
		}
		if s.cfg == nil || s.cfg.ClientHello == nil {
			return nil, localError("spontaneous authenticator needs Config.ClientHello")
		}
		of = clientHelloOffer(s.cfg.ClientHello)
		var err *Error
		if ctx, err = s.randomContext(); err != nil {
			return nil, err
		}
	} else {
		raw, err := s.checkPeerRequest(req)
		if err != nil {
			return nil, err
		}
		of = requestOffer(req, raw)
		ctx = req.Context
	}

	if !checkNoDuplicates(leafExts) {
		return nil, localError("duplicate end-entity extension")
	}
	for _, e := range leafExts {
		if !allowedInCertificateEntry(e.Type) {
			return nil, localError("extension not allowed in a CertificateEntry (RFC 8446, Section 4.2)")
		}
		if !of.hasExt(e.Type) {
			return nil, newError(alertUnsupportedExt, KindUnsolicitedExtension, nil, "end-entity extension not offered by the request").withContext(ctx)
		}
		if len(e.Data) > 0xffff {
			return nil, localError("extension too long")
		}
	}

	leaf := cert.Leaf
	if leaf == nil || !slices.Equal(leaf.Raw, cert.Certificate[0]) {
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, newError(alertInternalError, KindLocal, err, "parsing our end-entity certificate")
		}
	}
	key, err := certificateKey(leaf)
	if err != nil {
		return nil, newError(alertInternalError, KindLocal, err, "our end-entity key")
	}
	if !publicKeysEqual(signer.Public(), key.pub) {
		return nil, localError("private key does not match the end-entity certificate")
	}
	scheme, ok := s.chooseScheme(of.schemes, key)
	if !ok {
		return nil, newError(alertHandshakeFailure, KindScheme, nil, "no offered signature scheme fits our key").withContext(ctx)
	}

	if err := s.reserve(ctx, ctxAnswered); err != nil {
		return nil, err
	}

	hc, fk, kerr := s.keys(s.isServer)
	if kerr != nil {
		return nil, kerr
	}
	cm := &certificateMsg{context: ctx}
	for i, der := range cert.Certificate {
		e := certEntry{der: der}
		if i == 0 {
			e.exts = leafExts
		}
		cm.entries = append(cm.entries, e)
	}
	certMsg, merr := cm.marshal()
	if merr != nil {
		return nil, localError("marshalling Certificate: " + merr.Error())
	}
	t := s.newTranscript(hc, fk, of.raw)
	t.add(certMsg)
	sig, serr := sign(s.cfg.rand(), signer, scheme, signedContent(t.sum()))
	if serr != nil {
		return nil, newError(alertInternalError, KindLocal, serr, "signing CertificateVerify")
	}
	cvMsg, merr := (&certificateVerifyMsg{scheme: scheme, signature: sig}).marshal()
	if merr != nil {
		return nil, localError("marshalling CertificateVerify: " + merr.Error())
	}
	t.add(cvMsg)
	fin, merr := marshalFinished(t.finished())
	if merr != nil {
		return nil, localError("marshalling Finished")
	}
	out := make([]byte, 0, len(certMsg)+len(cvMsg)+len(fin))
	return append(append(append(out, certMsg...), cvMsg...), fin...), nil
}

// chooseScheme picks, in the requester's order of preference, the first
// offered scheme that our Config allows and that key can sign in TLS 1.3.
func (s *Session) chooseScheme(offered []tls.SignatureScheme, key leafKey) (tls.SignatureScheme, bool) {
	ours := s.cfg.schemes()
	for _, sch := range offered {
		if slices.Contains(ours, sch) && schemeMatchesKey(sch, key) {
			return sch, true
		}
	}
	return 0, false
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && b != nil && eq.Equal(b)
}

// Refuse returns the empty authenticator for a request from the peer: a
// Finished alone, computed over an empty Certificate (RFC 9261, Section 6).
// The context is then answered and cannot be authenticated any more.
func (s *Session) Refuse(req *Request) ([]byte, error) {
	if req == nil {
		return nil, localError("nothing to refuse: spontaneous authenticators are never empty")
	}
	raw, err := s.checkPeerRequest(req)
	if err != nil {
		return nil, err
	}
	if err := s.reserve(req.Context, ctxAnswered); err != nil {
		return nil, err
	}
	hc, fk, err := s.keys(s.isServer)
	if err != nil {
		return nil, err
	}
	t := s.newTranscript(hc, fk, raw)
	t.add(emptyCertificate(req.Context))
	out, merr := marshalFinished(t.finished())
	if merr != nil {
		return nil, localError("marshalling Finished")
	}
	return out, nil
}
