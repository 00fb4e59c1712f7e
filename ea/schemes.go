package ea

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"io"

	"crypto/tls"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// defaultSchemes are the schemes we offer and accept when
// Config.SignatureSchemes is nil, in our order of preference. All are valid
// for TLS 1.3 (RFC 8446, Section 4.2.3). RSASSA-PKCS1-v1_5, SHA-1 and SHA-224
// schemes are never used.
var defaultSchemes = []tls.SignatureScheme{
	tls.ECDSAWithP256AndSHA256,
	tls.Ed25519,
	tls.ECDSAWithP384AndSHA384,
	tls.ECDSAWithP521AndSHA512,
	tls.PSSWithSHA256,
	tls.PSSWithSHA384,
	tls.PSSWithSHA512,
	0x0809, // rsa_pss_pss_sha256
	0x080a, // rsa_pss_pss_sha384
	0x080b, // rsa_pss_pss_sha512
}

// SupportedSignatureSchemes returns the TLS 1.3 signature schemes this
// package implements, which is the default of Config.SignatureSchemes.
func SupportedSignatureSchemes() []tls.SignatureScheme {
	return append([]tls.SignatureScheme(nil), defaultSchemes...)
}

type schemeInfo struct {
	hash  crypto.Hash // crypto.Hash(0) for Ed25519
	curve elliptic.Curve
	kind  int
}

const (
	kindECDSA = iota + 1
	kindEd25519
	kindRSAE // rsa_pss_rsae_*: rsaEncryption SPKI
	kindPSS  // rsa_pss_pss_*: id-RSASSA-PSS SPKI
)

// tls13Scheme describes the schemes valid in TLS 1.3 CertificateVerify. A
// scheme absent from this table is rejected whatever anybody offered.
func tls13Scheme(s tls.SignatureScheme) (schemeInfo, bool) {
	switch s {
	case tls.ECDSAWithP256AndSHA256:
		return schemeInfo{crypto.SHA256, elliptic.P256(), kindECDSA}, true
	case tls.ECDSAWithP384AndSHA384:
		return schemeInfo{crypto.SHA384, elliptic.P384(), kindECDSA}, true
	case tls.ECDSAWithP521AndSHA512:
		return schemeInfo{crypto.SHA512, elliptic.P521(), kindECDSA}, true
	case tls.Ed25519:
		return schemeInfo{kind: kindEd25519}, true
	case tls.PSSWithSHA256:
		return schemeInfo{crypto.SHA256, nil, kindRSAE}, true
	case tls.PSSWithSHA384:
		return schemeInfo{crypto.SHA384, nil, kindRSAE}, true
	case tls.PSSWithSHA512:
		return schemeInfo{crypto.SHA512, nil, kindRSAE}, true
	case 0x0809:
		return schemeInfo{crypto.SHA256, nil, kindPSS}, true
	case 0x080a:
		return schemeInfo{crypto.SHA384, nil, kindPSS}, true
	case 0x080b:
		return schemeInfo{crypto.SHA512, nil, kindPSS}, true
	}
	return schemeInfo{}, false
}

var (
	oidRSAEncryption = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidRSASSAPSS     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}
	oidSHA256        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
)

// leafKey is the public key of an end-entity certificate, with what we need
// to decide which schemes it can sign: rsaPSS is set for an id-RSASSA-PSS
// SubjectPublicKeyInfo, with pssHash the hash its parameters impose (0 = any).
type leafKey struct {
	pub     crypto.PublicKey
	rsaPSS  bool
	pssHash crypto.Hash
}

// certificateKey extracts the public key of cert. crypto/x509 leaves
// PublicKey nil for id-RSASSA-PSS keys (RFC 4055), which rsa_pss_pss_*
// schemes require, so those are decoded here.
func certificateKey(cert *x509.Certificate) (leafKey, error) {
	if cert.PublicKey != nil {
		switch cert.PublicKey.(type) {
		case *ecdsa.PublicKey, ed25519.PublicKey, *rsa.PublicKey:
			return leafKey{pub: cert.PublicKey}, nil
		}
		return leafKey{}, errors.New("unsupported public key type")
	}
	return parsePSSKey(cert.RawSubjectPublicKeyInfo)
}

// parsePSSKey decodes an id-RSASSA-PSS SubjectPublicKeyInfo (RFC 4055,
// Section 1.2 and 3.1). Parameters, when present, may only fix the hash.
func parsePSSKey(spki []byte) (leafKey, error) {
	s := cryptobyte.String(spki)
	var seq, algSeq cryptobyte.String
	var oid asn1.ObjectIdentifier
	var bits asn1.BitString
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !s.Empty() ||
		!seq.ReadASN1(&algSeq, cbasn1.SEQUENCE) ||
		!algSeq.ReadASN1ObjectIdentifier(&oid) ||
		!seq.ReadASN1BitString(&bits) || !seq.Empty() {
		return leafKey{}, errors.New("malformed SubjectPublicKeyInfo")
	}
	if !oid.Equal(oidRSASSAPSS) {
		return leafKey{}, errors.New("unsupported public key algorithm")
	}
	k := leafKey{rsaPSS: true}
	if !algSeq.Empty() {
		var params cryptobyte.String
		if !algSeq.ReadASN1(&params, cbasn1.SEQUENCE) || !algSeq.Empty() {
			return leafKey{}, errors.New("malformed RSASSA-PSS parameters")
		}
		// hashAlgorithm [0] HashAlgorithm DEFAULT sha1: absent means SHA-1,
		// which no TLS 1.3 scheme uses.
		k.pssHash = crypto.SHA1
		var h cryptobyte.String
		var present bool
		if !params.ReadOptionalASN1(&h, &present, cbasn1.Tag(0).Constructed().ContextSpecific()) {
			return leafKey{}, errors.New("malformed RSASSA-PSS parameters")
		}
		if present {
			var hseq cryptobyte.String
			var hoid asn1.ObjectIdentifier
			if !h.ReadASN1(&hseq, cbasn1.SEQUENCE) || !hseq.ReadASN1ObjectIdentifier(&hoid) {
				return leafKey{}, errors.New("malformed RSASSA-PSS hash")
			}
			switch {
			case hoid.Equal(oidSHA256):
				k.pssHash = crypto.SHA256
			case hoid.Equal(oidSHA384):
				k.pssHash = crypto.SHA384
			case hoid.Equal(oidSHA512):
				k.pssHash = crypto.SHA512
			default:
				k.pssHash = crypto.Hash(0xff) // matches no scheme
			}
		}
	}
	if bits.BitLength%8 != 0 {
		return leafKey{}, errors.New("malformed RSA public key")
	}
	pub, err := x509.ParsePKCS1PublicKey(bits.Bytes)
	if err != nil {
		return leafKey{}, err
	}
	k.pub = pub
	return k, nil
}

// schemeMatchesKey reports whether scheme can be used with key in TLS 1.3:
// the ECDSA curve must be the scheme's curve (0x0403 is P-256 only, ...),
// rsae schemes need an rsaEncryption key, pss schemes an id-RSASSA-PSS key
// whose parameters allow the hash, and RSA keys must be large enough for
// PSS with a salt as long as the hash.
func schemeMatchesKey(scheme tls.SignatureScheme, k leafKey) bool {
	info, ok := tls13Scheme(scheme)
	if !ok {
		return false
	}
	switch pub := k.pub.(type) {
	case *ecdsa.PublicKey:
		return info.kind == kindECDSA && pub.Curve == info.curve
	case ed25519.PublicKey:
		return info.kind == kindEd25519
	case *rsa.PublicKey:
		if k.rsaPSS {
			if info.kind != kindPSS || (k.pssHash != 0 && k.pssHash != info.hash) {
				return false
			}
		} else if info.kind != kindRSAE {
			return false
		}
		// RFC 8017, Section 9.1.1: emLen >= hLen + sLen + 2, sLen = hLen.
		return (pub.N.BitLen()-1+7)/8 >= 2*info.hash.Size()+2
	}
	return false
}

// signedContent is the CertificateVerify input (RFC 9261, Section 5.2.2;
// RFC 8446, Section 4.4.3): 64 spaces, the context string, a zero byte and
// the transcript hash.
func signedContent(transcriptHash []byte) []byte {
	const label = "Exported Authenticator"
	out := make([]byte, 0, 64+len(label)+1+len(transcriptHash))
	for i := 0; i < 64; i++ {
		out = append(out, 0x20)
	}
	out = append(out, label...)
	out = append(out, 0)
	return append(out, transcriptHash...)
}

// sign signs content with signer under scheme. signer may be opaque (HSM,
// TPM): only crypto.Signer is used.
func sign(rand io.Reader, signer crypto.Signer, scheme tls.SignatureScheme, content []byte) ([]byte, error) {
	info, ok := tls13Scheme(scheme)
	if !ok {
		return nil, errors.New("unsupported signature scheme")
	}
	if info.kind == kindEd25519 {
		return signer.Sign(rand, content, crypto.Hash(0))
	}
	h := info.hash.New()
	h.Write(content)
	digest := h.Sum(nil)
	if info.kind == kindRSAE || info.kind == kindPSS {
		return signer.Sign(rand, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: info.hash})
	}
	return signer.Sign(rand, digest, info.hash)
}

// verify checks sig over content. The caller has already checked that the
// scheme matches the key (schemeMatchesKey).
func verify(k leafKey, scheme tls.SignatureScheme, content, sig []byte) bool {
	info, ok := tls13Scheme(scheme)
	if !ok {
		return false
	}
	if info.kind == kindEd25519 {
		pub, ok := k.pub.(ed25519.PublicKey)
		return ok && len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, content, sig)
	}
	h := info.hash.New()
	h.Write(content)
	digest := h.Sum(nil)
	switch pub := k.pub.(type) {
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(pub, digest, sig)
	case *rsa.PublicKey:
		return rsa.VerifyPSS(pub, info.hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
	}
	return false
}
