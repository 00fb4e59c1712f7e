package ea

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"sync"
)

// evCase is one authenticator a (possibly misbehaving) peer sends to a
// validator, with the outcome we require. The same table drives the golden
// vectors (table exporter) and the threat tests (real TLS exporters).
type evCase struct {
	name              string
	threat            string
	defect            string // one line, for the vectors' README
	suite             uint16 // 0: TLS_AES_128_GCM_SHA256
	validatorIsServer bool
	certScheme        tls.SignatureScheme // key type of the sender's certificate; 0: Ed25519
	scheme            tls.SignatureScheme // declared scheme; 0: certScheme
	offered           []tls.SignatureScheme
	reqExts           []Extension
	leafExts          []Extension
	spontaneous       bool
	clientHello       *ClientHello
	allowSpontaneous  bool
	consumed          bool // the validator already validated an authenticator for this request
	trustOther        bool // validator trusts another CA
	mut               func(s *rawSpec)
	post              func([]byte) []byte

	want        Kind // "" = success
	wantErr     error
	wantAlert   tls.AlertError
	alsoAllowed []Kind // other outcomes an implementation may legitimately report
}

const kindSuccess Kind = "success"

func (c *evCase) outcome() Kind {
	if c.want == "" {
		return kindSuccess
	}
	return c.want
}

func flipLast(b []byte) []byte {
	b = append([]byte{}, b...)
	b[len(b)-1] ^= 0x01
	return b
}

var defaultCH = &ClientHello{
	SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256, tls.Ed25519, tls.PSSWithSHA256},
	Extensions:       []uint16{0, 5, 10, 11, 13, 16, 18, 23, 43, 45, 51, 65281},
}

var cmwOffer = []Extension{{Type: 0xFF00}}
var cmwValue = []Extension{{Type: 0xFF00, Data: []byte{0x82, 0x63, 'a', '/', 'b', 0x41, 0x00}}}

func evCases() []evCase {
	return []evCase{
		{name: "success/ed25519/client-to-server", defect: "none", validatorIsServer: true},
		{name: "success/ed25519/server-to-client", defect: "none"},
		{name: "success/ed25519/sha384", threat: "T19", defect: "none (TLS_AES_256_GCM_SHA384: 48-byte keys)", suite: tls.TLS_AES_256_GCM_SHA384},
		{name: "success/ecdsa-p256", defect: "none", certScheme: tls.ECDSAWithP256AndSHA256},
		{name: "success/ecdsa-p384/sha384", threat: "T19", defect: "none", certScheme: tls.ECDSAWithP384AndSHA384, suite: tls.TLS_AES_256_GCM_SHA384},
		{name: "success/ecdsa-p521", defect: "none", certScheme: tls.ECDSAWithP521AndSHA512},
		{name: "success/rsa-pss-rsae-sha256", defect: "none", certScheme: tls.PSSWithSHA256},
		{name: "success/rsa-pss-pss-sha256", defect: "none (id-RSASSA-PSS key)", certScheme: 0x0809},
		{name: "success/cmw-extension", defect: "none (0xFF00 offered empty, filled in the end-entity entry)", validatorIsServer: true, reqExts: cmwOffer, leafExts: cmwValue},
		{name: "success/spontaneous", defect: "none (spontaneous server authenticator, allowed)", spontaneous: true, clientHello: defaultCH, allowSpontaneous: true},

		{name: "empty/refusal", defect: "empty authenticator (Finished over an empty Certificate)", validatorIsServer: true,
			mut: func(s *rawSpec) { s.empty = true }, want: KindEmpty, wantErr: ErrEmptyAuthenticator, wantAlert: alertCertificateRequired},

		{name: "decode/truncated", threat: "T5", defect: "last byte missing", post: func(b []byte) []byte { return b[:len(b)-1] }, want: KindDecode, wantAlert: alertDecodeError},
		{name: "decode/trailing-byte", threat: "T5", defect: "one byte after Finished", mut: func(s *rawSpec) { s.trailing = []byte{0} }, want: KindDecode, wantAlert: alertDecodeError},
		{name: "decode/finished-too-short", threat: "T5", defect: "verify_data of 31 bytes", mut: func(s *rawSpec) { s.finishedLength = 31 }, want: KindDecode, wantAlert: alertDecodeError},
		{name: "decode/sha256-finished-in-sha384", threat: "T19", defect: "32-byte verify_data on a SHA-384 connection", suite: tls.TLS_AES_256_GCM_SHA384,
			mut: func(s *rawSpec) { s.finishedLength = 32 }, want: KindDecode, wantAlert: alertDecodeError},
		{name: "decode/duplicate-extension", threat: "T5", defect: "end-entity entry carries 0xFF00 twice", reqExts: cmwOffer,
			mut: func(s *rawSpec) { s.entryExts = [][]Extension{{cmwValue[0], cmwValue[0]}} }, want: KindDecode, wantAlert: alertIllegalParameter},
		{name: "decode/no-entries", threat: "T5", defect: "Certificate with no entries followed by CertificateVerify", mut: func(s *rawSpec) { s.chain = nil }, want: KindDecode, wantAlert: alertDecodeError},
		{name: "decode/zero-length-certificate", threat: "T5", defect: "a CertificateEntry with empty cert_data", mut: func(s *rawSpec) { s.chain = [][]byte{{}} }, want: KindDecode, wantAlert: alertDecodeError},
		{name: "decode/context-length-overflow", threat: "T5", defect: "certificate_request_context length 255 exceeds the message", validatorIsServer: true,
			post: func(b []byte) []byte { b = append([]byte{}, b...); b[4] = 0xff; return b }, want: KindDecode, wantAlert: alertDecodeError},
		{name: "decode/certificate-length-overflow", threat: "T5", defect: "Certificate message length claims 2^24-1 bytes",
			post: func(b []byte) []byte { b = append([]byte{}, b...); b[1], b[2], b[3] = 0xff, 0xff, 0xff; return b }, want: KindDecode, wantAlert: alertDecodeError},
		{name: "decode/certificateverify-first", threat: "T5", defect: "CertificateVerify before Certificate",
			mut: func(s *rawSpec) { s.mutMessages = func(c, v []byte) ([]byte, []byte) { return v, c } }, want: KindDecode, wantAlert: alertUnexpectedMessage},
		{name: "certificate/garbage-der", threat: "T5", defect: "cert_data is not a certificate", mut: func(s *rawSpec) { s.chain = [][]byte{{0x30, 0x03, 0x02, 0x01, 0x01}} }, want: KindCertificate, wantAlert: alertBadCertificate},
		{name: "certificate/untrusted", defect: "chain does not lead to the validator's root", trustOther: true, want: KindCertificate, wantAlert: alertUnknownCA},

		{name: "finished/bit-flip", defect: "last bit of verify_data flipped", mut: func(s *rawSpec) { s.mutFinished = flipLast }, want: KindFinished, wantAlert: alertDecryptError},
		{name: "finished/reflected-role", threat: "T20", defect: "authenticator keyed with the validator's own role labels (reflection)",
			mut: func(s *rawSpec) { s.flipLabels = true }, want: KindFinished, wantAlert: alertDecryptError, alsoAllowed: []Kind{KindSignature}},
		{name: "signature/bit-flip", threat: "T8", defect: "signature altered, Finished computed over it", mut: func(s *rawSpec) { s.mutSig = flipLast }, want: KindSignature, wantAlert: alertDecryptError},
		{name: "signature/tls13-context-string", defect: "signed with \"TLS 1.3, server CertificateVerify\" instead of \"Exported Authenticator\"",
			mut: func(s *rawSpec) { s.cvLabel = "TLS 1.3, server CertificateVerify" }, want: KindSignature, wantAlert: alertDecryptError},
		{name: "signature/request-without-header", defect: "request hashed without its 4-byte handshake header in the signed transcript",
			mut: func(s *rawSpec) { s.signedRequest = s.request[4:] }, want: KindSignature, wantAlert: alertDecryptError},
		{name: "signature/ecdsa-truncated", threat: "T8", defect: "ECDSA signature cut short", certScheme: tls.ECDSAWithP256AndSHA256,
			mut: func(s *rawSpec) { s.mutSig = func(b []byte) []byte { return b[:len(b)-3] } }, want: KindSignature, wantAlert: alertDecryptError},

		{name: "scheme/not-offered", threat: "T8", defect: "Ed25519 used, request offered only ecdsa_secp256r1_sha256", offered: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256}, want: KindScheme, wantAlert: alertIllegalParameter},
		{name: "scheme/ecdsa-curve-mismatch", threat: "T8", defect: "P-384 key signs under ecdsa_secp256r1_sha256", certScheme: tls.ECDSAWithP384AndSHA384, scheme: tls.ECDSAWithP256AndSHA256, want: KindScheme, wantAlert: alertIllegalParameter},
		{name: "scheme/rsa-pkcs1", threat: "T8", defect: "rsa_pkcs1_sha256 (not valid for TLS 1.3)", certScheme: tls.PSSWithSHA256, scheme: tls.PKCS1WithSHA256, want: KindScheme, wantAlert: alertIllegalParameter},
		{name: "scheme/rsae-with-pss-key", threat: "T8", defect: "rsa_pss_rsae_sha256 with an id-RSASSA-PSS key", certScheme: 0x0809, scheme: tls.PSSWithSHA256, want: KindScheme, wantAlert: alertIllegalParameter},
		{name: "scheme/ed25519-key-ecdsa-scheme", threat: "T8", defect: "Ed25519 key, CertificateVerify claims ecdsa_secp256r1_sha256", scheme: tls.ECDSAWithP256AndSHA256,
			mut: func(s *rawSpec) { s.signAs = tls.Ed25519 }, want: KindScheme, wantAlert: alertIllegalParameter},

		{name: "unsolicited/leaf-extension", threat: "T7", defect: "end-entity entry carries 0xFF00, request did not offer it", leafExts: cmwValue, want: KindUnsolicitedExtension, wantAlert: alertUnsupportedExt},
		{name: "unsolicited/intermediate-extension", defect: "intermediate entry carries status_request, not offered",
			mut: func(s *rawSpec) { s.entryExts = [][]Extension{nil, {{Type: ExtensionStatusRequest}}} }, want: KindUnsolicitedExtension, wantAlert: alertUnsupportedExt},

		{name: "success/status-request-offered", defect: "none (status_request offered, answered in the end-entity entry)",
			reqExts: []Extension{{Type: ExtensionStatusRequest}}, leafExts: []Extension{{Type: ExtensionStatusRequest, Data: []byte{1, 0, 0, 0}}}},
		{name: "decode/signature-algorithms-in-entry", threat: "T5", defect: "end-entity entry carries signature_algorithms (a request-only extension the request did send)",
			mut: func(s *rawSpec) { s.entryExts = [][]Extension{{sigAlgsExt(tls.Ed25519)}} }, want: KindDecode, wantAlert: alertIllegalParameter},
		{name: "decode/signature-algorithms-in-intermediate", threat: "T5", defect: "intermediate entry carries signature_algorithms",
			mut: func(s *rawSpec) { s.entryExts = [][]Extension{nil, {sigAlgsExt(tls.Ed25519)}} }, want: KindDecode, wantAlert: alertIllegalParameter},
		{name: "decode/key-share-in-entry", threat: "T5", defect: "end-entity entry carries key_share (51)",
			mut: func(s *rawSpec) { s.entryExts = [][]Extension{{{Type: 51, Data: []byte{0, 0}}}} }, want: KindDecode, wantAlert: alertIllegalParameter},
		{name: "decode/signature-algorithms-in-spontaneous-entry", threat: "T24", defect: "spontaneous, end-entity entry carries signature_algorithms (in the ClientHello)",
			spontaneous: true, clientHello: defaultCH, allowSpontaneous: true,
			mut: func(s *rawSpec) { s.entryExts = [][]Extension{{sigAlgsExt(tls.Ed25519)}} }, want: KindDecode, wantAlert: alertIllegalParameter},

		{name: "spontaneous/extension-not-in-clienthello", threat: "T24", defect: "spontaneous, end-entity carries 0xFF00 the ClientHello did not offer",
			spontaneous: true, clientHello: defaultCH, allowSpontaneous: true, leafExts: cmwValue, want: KindUnsolicitedExtension, wantAlert: alertUnsupportedExt},
		{name: "spontaneous/scheme-not-in-clienthello", threat: "T24", defect: "spontaneous, ecdsa_secp384r1_sha384 not in the ClientHello",
			spontaneous: true, clientHello: defaultCH, allowSpontaneous: true, certScheme: tls.ECDSAWithP384AndSHA384, want: KindScheme, wantAlert: alertIllegalParameter},
		{name: "spontaneous/not-allowed", threat: "T10", defect: "spontaneous server authenticator, validator's policy forbids it",
			spontaneous: true, clientHello: defaultCH, want: KindPolicy, wantErr: ErrUnknownContext, wantAlert: alertIllegalParameter},
		{name: "spontaneous/from-client", threat: "T10", defect: "client authenticator with no preceding request", validatorIsServer: true, spontaneous: true,
			want: KindContext, wantErr: ErrUnknownContext, wantAlert: alertIllegalParameter},
		{name: "context/unknown", threat: "T10", defect: "context of no request the validator sent", validatorIsServer: true,
			mut: func(s *rawSpec) { s.context = testBytes("other context", 32) }, want: KindContext, wantErr: ErrUnknownContext, wantAlert: alertIllegalParameter},
		{name: "context/replayed", threat: "T9", defect: "second authenticator for an already validated request", validatorIsServer: true, consumed: true,
			want: KindContext, wantErr: ErrContextUsed, wantAlert: alertIllegalParameter},
	}
}

var (
	otherCAOnce sync.Once
	otherCAVal  *testCA
)

// otherCA is a second test CA that issued none of the test certificates.
func otherCA() *testCA {
	otherCAOnce.Do(func() {
		k := testEd25519Key("go-expat ea other test CA")
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "go-expat ea OTHER TEST CA (not trusted)"},
			NotBefore: testNotBefore, NotAfter: testNotAfter, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
		der, err := x509.CreateCertificate(nil, tmpl, tmpl, k.Public(), k)
		if err != nil {
			panic(err)
		}
		c, _ := x509.ParseCertificate(der)
		otherCAVal = &testCA{key: k, cert: c}
	})
	return otherCAVal
}

// prepared is a case made concrete: the validator's state and the bytes.
type prepared struct {
	validator *Session
	request   []byte // framed, nil when spontaneous
	auth      []byte
	opts      *ValidateOptions
	roots     *testCA
}

var validationTime = testNotBefore.AddDate(1, 0, 0)

// prepare builds the validator's Session over validatorExp and the peer's
// authenticator over peerExp (equal values on a real connection).
func (c *evCase) prepare(validatorExp, peerExp Exporter, suite uint16) *prepared {
	if c.suite != 0 {
		suite = c.suite
	}
	h, _ := suiteHash(suite)
	cfg := &Config{Rand: &testStream{label: "request " + c.name}, SignatureSchemes: c.offered, ClientHello: c.clientHello}
	v, err := New(validatorExp, suite, c.validatorIsServer, cfg)
	if err != nil {
		panic(err)
	}
	p := &prepared{validator: v, roots: testCAInstance()}
	if c.trustOther {
		p.roots = otherCA()
	}
	p.opts = &ValidateOptions{AllowSpontaneous: c.allowSpontaneous, VerifyOptions: &x509.VerifyOptions{
		Roots: p.roots.pool(), CurrentTime: validationTime, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}}

	certScheme := c.certScheme
	if certScheme == 0 {
		certScheme = tls.Ed25519
	}
	cert := schemeCert(certScheme, "peer.test")
	spec := rawSpec{chain: cert.Certificate, signer: cert.PrivateKey.(crypto.Signer), scheme: c.scheme}
	if spec.scheme == 0 {
		spec.scheme = certScheme
	}
	if c.leafExts != nil {
		spec.entryExts = [][]Extension{c.leafExts}
	}
	if c.spontaneous {
		spec.context = testBytes("spontaneous "+c.name, 32)
	} else {
		req, err := v.NewRequest(c.reqExts)
		if err != nil {
			panic(err)
		}
		p.request, _ = req.Marshal()
		spec.request, spec.context = p.request, req.Context
	}
	if c.mut != nil {
		c.mut(&spec)
	}
	peer := &rawPeer{exp: peerExp, hash: h, senderIsServer: !c.validatorIsServer}
	if c.consumed {
		good := spec
		good.mutSig, good.mutFinished = nil, nil
		if _, err := v.Validate(peer.build(good), p.opts); err != nil {
			panic("consumed case: first validation failed: " + err.Error())
		}
	}
	p.auth = peer.build(spec)
	if c.post != nil {
		p.auth = c.post(p.auth)
	}
	return p
}

// check validates p.auth and compares the outcome with the case.
func (c *evCase) check(p *prepared) error {
	got, err := p.validator.Validate(p.auth, p.opts)
	return c.checkResult(got, err)
}

func (c *evCase) checkResult(got *Authenticated, err error) error {
	if c.want == "" {
		if err != nil {
			return errors.New("want success, got " + err.Error())
		}
		if got == nil || len(got.Chain) == 0 || got.Spontaneous != c.spontaneous {
			return errors.New("success without a proper result")
		}
		return nil
	}
	if got != nil {
		return errors.New("non-nil result with an error")
	}
	var e *Error
	if !errors.As(err, &e) {
		return errors.New("want *Error, got " + errString(err))
	}
	if e.Kind != c.want {
		return errors.New("kind " + string(e.Kind) + ", want " + string(c.want) + " (" + err.Error() + ")")
	}
	if c.wantErr != nil && !errors.Is(err, c.wantErr) {
		return errors.New("want errors.Is " + c.wantErr.Error() + ", got " + err.Error())
	}
	var alert tls.AlertError
	if c.wantAlert != 0 && (!errors.As(err, &alert) || alert != c.wantAlert) {
		return errors.New("alert " + alert.Error() + ", want " + c.wantAlert.Error())
	}
	return nil
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}
