package ea

// A test-only misbehaving peer: it builds authenticators from scratch with
// its own transcript code, and each knob is one bug or attack a real peer
// could have. It shares no building code with Session.Authenticate.

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"

	"golang.org/x/crypto/cryptobyte"
)

type rawPeer struct {
	exp            Exporter
	hash           crypto.Hash
	senderIsServer bool
}

type rawSpec struct {
	request   []byte // framed request, nil when spontaneous
	context   []byte
	chain     [][]byte
	entryExts [][]Extension // per entry; encoded as given (duplicates too)
	signer    crypto.Signer
	scheme    tls.SignatureScheme // declared in CertificateVerify
	signAs    tls.SignatureScheme // scheme actually used to sign (0: scheme)

	flipLabels     bool   // use the other role's exporter labels (reflection)
	cvLabel        string // CertificateVerify context string (default "Exported Authenticator")
	signedRequest  []byte // request bytes in the signed transcript (default request)
	mutSig         func([]byte) []byte
	mutFinished    func([]byte) []byte
	mutMessages    func(cert, cv []byte) ([]byte, []byte) // after signing, before Finished
	trailing       []byte
	empty          bool // send the empty authenticator
	finishedLength int  // truncate/extend verify_data to this length (0: as computed)
}

func (p *rawPeer) labels(flip bool) (string, string) {
	server := p.senderIsServer != flip
	if server {
		return labelServerHC, labelServerFK
	}
	return labelClientHC, labelClientFK
}

func (p *rawPeer) digest(parts ...[]byte) []byte {
	h := p.hash.New()
	for _, x := range parts {
		h.Write(x)
	}
	return h.Sum(nil)
}

func rawHandshake(typ uint8, body []byte) []byte {
	var b cryptobyte.Builder
	b.AddUint8(typ)
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(body) })
	return b.BytesOrPanic()
}

func rawCertificate(ctx []byte, chain [][]byte, exts [][]Extension) []byte {
	var b cryptobyte.Builder
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(ctx) })
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
		for i, der := range chain {
			b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(der) })
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
				if i < len(exts) {
					for _, e := range exts[i] {
						b.AddUint16(e.Type)
						b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e.Data) })
					}
				}
			})
		}
	})
	return rawHandshake(TypeCertificate, b.BytesOrPanic())
}

func (p *rawPeer) build(s rawSpec) []byte {
	hcl, fkl := p.labels(s.flipLabels)
	n := p.hash.Size()
	hc, err := p.exp.ExportKeyingMaterial(hcl, nil, n)
	if err != nil {
		panic(err)
	}
	fk, err := p.exp.ExportKeyingMaterial(fkl, nil, n)
	if err != nil {
		panic(err)
	}
	mac := func(transcript []byte) []byte {
		m := hmac.New(p.hash.New, fk)
		m.Write(transcript)
		out := m.Sum(nil)
		if s.mutFinished != nil {
			out = s.mutFinished(out)
		}
		if s.finishedLength != 0 {
			out = append(out, make([]byte, 64)...)[:s.finishedLength]
		}
		return out
	}
	if s.empty {
		empty := rawCertificate(s.context, nil, nil)
		return append(rawHandshake(TypeFinished, mac(p.digest(hc, s.request, empty))), s.trailing...)
	}
	certMsg := rawCertificate(s.context, s.chain, s.entryExts)
	signedReq := s.request
	if s.signedRequest != nil {
		signedReq = s.signedRequest
	}
	label := "Exported Authenticator"
	if s.cvLabel != "" {
		label = s.cvLabel
	}
	content := append(append(append(make([]byte, 0, 200), bytesRepeat(0x20, 64)...), label...), 0)
	content = append(content, p.digest(hc, signedReq, certMsg)...)
	signAs := s.scheme
	if s.signAs != 0 {
		signAs = s.signAs
	}
	sig := rawSign(s.signer, signAs, content)
	if s.mutSig != nil {
		sig = s.mutSig(sig)
	}
	var cv cryptobyte.Builder
	cv.AddUint16(uint16(s.scheme))
	cv.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(sig) })
	cvMsg := rawHandshake(TypeCertificateVerify, cv.BytesOrPanic())
	if s.mutMessages != nil {
		certMsg, cvMsg = s.mutMessages(certMsg, cvMsg)
	}
	fin := rawHandshake(TypeFinished, mac(p.digest(hc, s.request, certMsg, cvMsg)))
	out := append(append(append([]byte{}, certMsg...), cvMsg...), fin...)
	return append(out, s.trailing...)
}

func bytesRepeat(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

// rawSign signs like a peer would for scheme, including schemes TLS 1.3
// forbids (rsa_pkcs1_sha256 0x0401).
func rawSign(signer crypto.Signer, scheme tls.SignatureScheme, content []byte) []byte {
	var sig []byte
	var err error
	switch scheme {
	case tls.PKCS1WithSHA256:
		d := crypto.SHA256.New()
		d.Write(content)
		sig, err = signer.Sign(rand.Reader, d.Sum(nil), crypto.SHA256)
	case tls.ECDSAWithSHA1:
		d := crypto.SHA1.New()
		d.Write(content)
		sig, err = signer.Sign(rand.Reader, d.Sum(nil), crypto.SHA1)
	default:
		info, ok := tls13Scheme(scheme)
		if !ok {
			panic("rawSign: scheme")
		}
		if info.kind == kindEd25519 {
			sig, err = signer.Sign(rand.Reader, content, crypto.Hash(0))
			break
		}
		d := info.hash.New()
		d.Write(content)
		var opts crypto.SignerOpts = info.hash
		if info.kind == kindRSAE || info.kind == kindPSS {
			opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: info.hash}
		}
		sig, err = signer.Sign(rand.Reader, d.Sum(nil), opts)
	}
	if err != nil {
		panic(err)
	}
	return sig
}

// rawRequest builds a framed request from scratch.
func rawRequest(typ uint8, ctx []byte, exts []Extension) []byte {
	var b cryptobyte.Builder
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(ctx) })
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, e := range exts {
			b.AddUint16(e.Type)
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e.Data) })
		}
	})
	return rawHandshake(typ, b.BytesOrPanic())
}

func sigAlgsExt(schemes ...tls.SignatureScheme) Extension {
	var b cryptobyte.Builder
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, s := range schemes {
			b.AddUint16(uint16(s))
		}
	})
	return Extension{Type: ExtensionSignatureAlgorithms, Data: b.BytesOrPanic()}
}
