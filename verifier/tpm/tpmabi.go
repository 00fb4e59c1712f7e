package tpm

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"

	"github.com/google/go-tpm/tpm2"
	"golang.org/x/crypto/cryptobyte"
)

// The TPM structures the Verifier reads are decoded here by hand, in the
// TPM's marshalling (TPM 2.0 Library, Part 2: Structures, revision 1.59;
// sections named beside each decoder). A decoder consumes exactly its
// input and accepts only the one encoding go-tpm (v0.9.8) would write for
// the decoded value: a decode that succeeds is canonical by construction,
// without re-marshalling. Go-tpm's own limits are kept (a TPM2B holds at
// most maxTPM2B bytes; unions hold only the members go-tpm knows), and on
// top of them the decoders reject what no TPM produces and the Verifier
// never accepts:
//
//   - a TPMS_PCR_SELECTION of a bank other than SHA-1/256/384/512, whose
//     sizeofSelect is not pcrSelectSize, or repeated in one
//     TPML_PCR_SELECTION (Section 10.6.2, 10.9.7);
//   - a TPM2B_NAME that is not empty, a handle or a Name algorithm with a
//     digest of its size (Section 10.5.3);
//   - an HMAC TPMT_HA whose digest is not its hash's size (Section 10.3.2);
//   - a TPMT_PUBLIC of another type than RSA or ECC, or whose nameAlg is
//     not SHA-1/256/384/512 (Section 12.2.4);
//   - as a public key (publicKey), an ECC point off its curve or with
//     coordinates shorter or longer than the curve's size (go-tpm's
//     tpm2.Pub checks neither).
//
// Byte slices in decoded values alias the input; the Verifier decodes
// only bundle.Unmarshal's copies, and the exported Parse functions copy.
//
// The differential tests (tpmabi_test.go) hold these decoders to go-tpm's
// decode and re-encode, with the rules above as the only differences.

// maxTPM2B bounds a TPM2B's contents, as go-tpm's decoder does (Part 2
// bounds every TPM2B the Verifier reads well below it).
const maxTPM2B = 4096

// pcrSelectSize is the sizeofSelect of every TPMS_PCR_SELECTION a PC
// Client TPM accepts and produces: PCR_SELECT_MIN = PCR_SELECT_MAX = 3
// for its 24 PCRs (bundle.MaxPCR + 1; the TCG PC Client Platform TPM
// Profile requires 24; Part 2, Section 10.6.2: TPM_RC_VALUE otherwise).
const pcrSelectSize = 3

// maxPCRBanks is the most TPMS_PCR_SELECTIONs one TPML_PCR_SELECTION may
// hold: one per supported bank (hashOf).
const maxPCRBanks = 4

var errTruncated = errors.New("truncated or malformed TPM structure")

// errUnsupportedKey is a well-formed TPMT_PUBLIC of a type or name
// algorithm the Verifier does not support: a wrong key rather than a
// malformed structure.
var errUnsupportedKey = errors.New("unsupported key")

// readTPM2B reads a TPM2B (a 16-bit size, then that many bytes).
func readTPM2B(s *cryptobyte.String, out *[]byte) bool {
	var b cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&b) || len(b) > maxTPM2B {
		return false
	}
	*out = b
	return true
}

// readName reads a TPM2B_NAME (Part 2, Section 10.5.3): empty, a 4-byte
// handle, or a nameAlg followed by a digest of that algorithm's size.
func readName(s *cryptobyte.String, out *[]byte) bool {
	if !readTPM2B(s, out) {
		return false
	}
	n := *out
	switch len(n) {
	case 0, 4:
		return true
	case 1:
		return false
	}
	h, ok := hashOf(uint16(n[0])<<8 | uint16(n[1]))
	return ok && len(n)-2 == h.Size()
}

// pcrSelection is a TPMS_PCR_SELECTION (Part 2, Section 10.6.2).
type pcrSelection struct {
	hash uint16
	bits []byte // pcrSelectSize bytes, PCR i is bit i%8 of byte i/8
}

// attest is a TPMS_ATTEST (Part 2, Section 10.12.12) of type
// TPM_ST_ATTEST_QUOTE or TPM_ST_ATTEST_CERTIFY; the magic is
// TPM_GENERATED_VALUE.
type attest struct {
	typ             tpm2.TPMST
	qualifiedSigner []byte
	extraData       []byte
	// TPMS_CLOCK_INFO (Section 10.11.1)
	clock                    uint64
	resetCount, restartCount uint32
	safe                     bool
	firmwareVersion          uint64
	// TPMS_QUOTE_INFO (Section 10.12.4)
	pcrSelect []pcrSelection
	pcrDigest []byte
	// TPMS_CERTIFY_INFO (Section 10.12.3)
	name, qualifiedName []byte
}

// parseAttest decodes a TPMS_ATTEST of the given type (TPM_ST_ATTEST_QUOTE
// or TPM_ST_ATTEST_CERTIFY) into a.
func parseAttest(data []byte, typ tpm2.TPMST, a *attest) error {
	*a = attest{}
	s := cryptobyte.String(data)
	var magic uint32
	var safe uint8
	var typ16 uint16
	if !s.ReadUint32(&magic) || !s.ReadUint16(&typ16) {
		return errTruncated
	}
	if magic != uint32(tpm2.TPMGeneratedValue) {
		return errors.New("not TPM-generated")
	}
	if tpm2.TPMST(typ16) != typ || (typ != tpm2.TPMSTAttestQuote && typ != tpm2.TPMSTAttestCertify) {
		return fmt.Errorf("attestation type 0x%04x, want 0x%04x", typ16, uint16(typ))
	}
	a.typ = typ
	if !readName(&s, &a.qualifiedSigner) || !readTPM2B(&s, &a.extraData) ||
		!s.ReadUint64(&a.clock) || !s.ReadUint32(&a.resetCount) || !s.ReadUint32(&a.restartCount) ||
		!s.ReadUint8(&safe) || safe > 1 || !s.ReadUint64(&a.firmwareVersion) {
		return errTruncated
	}
	a.safe = safe == 1
	switch typ {
	case tpm2.TPMSTAttestQuote:
		var n uint32
		if !s.ReadUint32(&n) || n > maxPCRBanks {
			return errTruncated
		}
		if n > 0 {
			a.pcrSelect = make([]pcrSelection, n)
		}
		for i := range a.pcrSelect {
			p := &a.pcrSelect[i]
			var sel cryptobyte.String
			if !s.ReadUint16(&p.hash) || !s.ReadUint8LengthPrefixed(&sel) || len(sel) != pcrSelectSize {
				return errTruncated
			}
			if _, ok := hashOf(p.hash); !ok {
				return fmt.Errorf("PCR selection of unsupported bank 0x%04x", p.hash)
			}
			for _, q := range a.pcrSelect[:i] {
				if q.hash == p.hash {
					return fmt.Errorf("PCR bank 0x%04x selected twice", p.hash)
				}
			}
			p.bits = sel
		}
		if !readTPM2B(&s, &a.pcrDigest) {
			return errTruncated
		}
	case tpm2.TPMSTAttestCertify:
		if !readName(&s, &a.name) || !readName(&s, &a.qualifiedName) {
			return errTruncated
		}
	}
	if !s.Empty() {
		return errors.New("trailing bytes")
	}
	return nil
}

// goTPM returns a as go-tpm's TPMSAttest, with copies of its bytes.
func (a *attest) goTPM() *tpm2.TPMSAttest {
	out := &tpm2.TPMSAttest{
		Magic:           tpm2.TPMGeneratedValue,
		Type:            a.typ,
		QualifiedSigner: tpm2.TPM2BName{Buffer: bytes.Clone(a.qualifiedSigner)},
		ExtraData:       tpm2.TPM2BData{Buffer: bytes.Clone(a.extraData)},
		ClockInfo: tpm2.TPMSClockInfo{Clock: a.clock, ResetCount: a.resetCount,
			RestartCount: a.restartCount, Safe: a.safe},
		FirmwareVersion: a.firmwareVersion,
	}
	switch a.typ {
	case tpm2.TPMSTAttestQuote:
		q := &tpm2.TPMSQuoteInfo{PCRDigest: tpm2.TPM2BDigest{Buffer: bytes.Clone(a.pcrDigest)}}
		for _, p := range a.pcrSelect {
			q.PCRSelect.PCRSelections = append(q.PCRSelect.PCRSelections,
				tpm2.TPMSPCRSelection{Hash: tpm2.TPMAlgID(p.hash), PCRSelect: bytes.Clone(p.bits)})
		}
		out.Attested = tpm2.NewTPMUAttest(a.typ, q)
	case tpm2.TPMSTAttestCertify:
		out.Attested = tpm2.NewTPMUAttest(a.typ, &tpm2.TPMSCertifyInfo{
			Name:          tpm2.TPM2BName{Buffer: bytes.Clone(a.name)},
			QualifiedName: tpm2.TPM2BName{Buffer: bytes.Clone(a.qualifiedName)}})
	}
	return out
}

// signature is a TPMT_SIGNATURE (Part 2, Section 11.3.4) of the schemes
// go-tpm decodes: TPM_ALG_NULL, HMAC, RSASSA, RSAPSS, ECDSA, ECDAA.
type signature struct {
	sigAlg tpm2.TPMAlgID
	hash   uint16
	// ECDSA, ECDAA: TPMS_SIGNATURE_ECC (Section 11.3.2); RSASSA, RSAPSS:
	// TPMS_SIGNATURE_RSA in r (Section 11.3.1); HMAC: TPMT_HA's digest in r.
	r, s []byte
}

func parseSignature(data []byte, sig *signature) error {
	*sig = signature{}
	s := cryptobyte.String(data)
	var alg uint16
	if !s.ReadUint16(&alg) {
		return errTruncated
	}
	sig.sigAlg = tpm2.TPMAlgID(alg)
	switch sig.sigAlg {
	case tpm2.TPMAlgNull:
	case tpm2.TPMAlgHMAC: // TPMT_HA (Section 10.3.2)
		if !s.ReadUint16(&sig.hash) {
			return errTruncated
		}
		h, ok := hashOf(sig.hash)
		if !ok || !s.ReadBytes(&sig.r, h.Size()) {
			return errTruncated
		}
	case tpm2.TPMAlgRSASSA, tpm2.TPMAlgRSAPSS:
		if !s.ReadUint16(&sig.hash) || !readTPM2B(&s, &sig.r) {
			return errTruncated
		}
	case tpm2.TPMAlgECDSA, tpm2.TPMAlgECDAA:
		if !s.ReadUint16(&sig.hash) || !readTPM2B(&s, &sig.r) || !readTPM2B(&s, &sig.s) {
			return errTruncated
		}
	default:
		return fmt.Errorf("signature algorithm 0x%04x is not supported", alg)
	}
	if !s.Empty() {
		return errors.New("trailing bytes")
	}
	return nil
}

// verifySig checks a TPMT_SIGNATURE (ECDSA, SHA-256) over msg.
func verifySig(key *ecdsa.PublicKey, msg, sigBytes []byte) error {
	var sig signature
	if err := parseSignature(sigBytes, &sig); err != nil {
		return fmt.Errorf("signature structure: %w", err)
	}
	if sig.sigAlg != tpm2.TPMAlgECDSA {
		return fmt.Errorf("signature algorithm 0x%04x is not ECDSA", uint16(sig.sigAlg))
	}
	if tpm2.TPMAlgID(sig.hash) != tpm2.TPMAlgSHA256 {
		return errors.New("signature hash is not SHA-256")
	}
	d := sha256.Sum256(msg)
	r := new(big.Int).SetBytes(sig.r)
	s := new(big.Int).SetBytes(sig.s)
	if !ecdsa.Verify(key, d[:], r, s) {
		return errors.New("ECDSA signature does not verify")
	}
	return nil
}

// public is a TPMT_PUBLIC (Part 2, Section 12.2.4) of type RSA or ECC.
type public struct {
	raw        []byte // the structure as received, whose hash is in the Name
	typ        tpm2.TPMAlgID
	nameAlg    uint16
	attrs      uint32 // TPMA_OBJECT (Section 8.3.2)
	authPolicy []byte
	// TPMT_SYM_DEF_OBJECT (Section 11.1.7): TPM_ALG_NULL, AES (key bits,
	// mode) or XOR (hash in keyBits).
	symAlg              tpm2.TPMAlgID
	symKeyBits, symMode uint16
	// TPMT_RSA_SCHEME / TPMT_ECC_SCHEME (Sections 11.2.4.2, 11.2.5.6).
	scheme      tpm2.TPMAlgID
	schemeHash  uint16
	schemeCount uint16 // ECDAA
	// TPMS_RSA_PARMS (Section 12.2.3.5) and TPM2B_PUBLIC_KEY_RSA.
	keyBits  uint16
	exponent uint32
	modulus  []byte
	// TPMS_ECC_PARMS (Section 12.2.3.6) and TPMS_ECC_POINT.
	curve      tpm2.TPMECCCurve
	kdf        tpm2.TPMAlgID
	kdfHash    uint16
	eccX, eccY []byte
}

// TPMA_OBJECT bits (Part 2, Section 8.3.2).
const (
	attrFixedTPM            = 1 << 1
	attrFixedParent         = 1 << 4
	attrSensitiveDataOrigin = 1 << 5
	attrRestricted          = 1 << 16
	attrDecrypt             = 1 << 17
	attrSign                = 1 << 18
)

func (p *public) has(attrs uint32) bool { return p.attrs&attrs == attrs }

func parsePublic(data []byte, p *public) error {
	*p = public{raw: data}
	s := cryptobyte.String(data)
	var typ, u16 uint16
	if !s.ReadUint16(&typ) || !s.ReadUint16(&p.nameAlg) || !s.ReadUint32(&p.attrs) || !readTPM2B(&s, &p.authPolicy) {
		return errTruncated
	}
	p.typ = tpm2.TPMAlgID(typ)
	if p.typ != tpm2.TPMAlgRSA && p.typ != tpm2.TPMAlgECC {
		return fmt.Errorf("%w: public area of type 0x%04x is neither RSA nor ECC", errUnsupportedKey, typ)
	}
	if _, ok := hashOf(p.nameAlg); !ok {
		return fmt.Errorf("%w: name algorithm 0x%04x", errUnsupportedKey, p.nameAlg)
	}
	// TPMT_SYM_DEF_OBJECT
	if !s.ReadUint16(&u16) {
		return errTruncated
	}
	p.symAlg = tpm2.TPMAlgID(u16)
	switch p.symAlg {
	case tpm2.TPMAlgNull:
	case tpm2.TPMAlgAES:
		if !s.ReadUint16(&p.symKeyBits) || !s.ReadUint16(&p.symMode) {
			return errTruncated
		}
	case tpm2.TPMAlgXOR:
		if !s.ReadUint16(&p.symKeyBits) {
			return errTruncated
		}
	default:
		return fmt.Errorf("symmetric algorithm 0x%04x is not supported", u16)
	}
	// TPMT_RSA_SCHEME or TPMT_ECC_SCHEME: one TPMU_ASYM_SCHEME
	// (Section 11.2.3.5) for both.
	if !s.ReadUint16(&u16) {
		return errTruncated
	}
	p.scheme = tpm2.TPMAlgID(u16)
	switch p.scheme {
	case tpm2.TPMAlgNull, tpm2.TPMAlgRSAES:
	case tpm2.TPMAlgRSASSA, tpm2.TPMAlgRSAPSS, tpm2.TPMAlgOAEP, tpm2.TPMAlgECDSA, tpm2.TPMAlgECDH, tpm2.TPMAlgECMQV:
		if !s.ReadUint16(&p.schemeHash) {
			return errTruncated
		}
	case tpm2.TPMAlgECDAA:
		if !s.ReadUint16(&p.schemeHash) || !s.ReadUint16(&p.schemeCount) {
			return errTruncated
		}
	default:
		return fmt.Errorf("scheme 0x%04x is not supported", u16)
	}
	switch p.typ {
	case tpm2.TPMAlgRSA:
		if !s.ReadUint16(&p.keyBits) || !s.ReadUint32(&p.exponent) || !readTPM2B(&s, &p.modulus) {
			return errTruncated
		}
	case tpm2.TPMAlgECC:
		if !s.ReadUint16(&u16) {
			return errTruncated
		}
		p.curve = tpm2.TPMECCCurve(u16)
		// TPMT_KDF_SCHEME (Section 11.2.3.3)
		if !s.ReadUint16(&u16) {
			return errTruncated
		}
		p.kdf = tpm2.TPMAlgID(u16)
		switch p.kdf {
		case tpm2.TPMAlgNull:
		case tpm2.TPMAlgMGF1, tpm2.TPMAlgECDH, tpm2.TPMAlgKDF1SP80056A, tpm2.TPMAlgKDF2, tpm2.TPMAlgKDF1SP800108:
			if !s.ReadUint16(&p.kdfHash) {
				return errTruncated
			}
		default:
			return fmt.Errorf("KDF 0x%04x is not supported", u16)
		}
		if !readTPM2B(&s, &p.eccX) || !readTPM2B(&s, &p.eccY) {
			return errTruncated
		}
	}
	if !s.Empty() {
		return errors.New("trailing bytes")
	}
	return nil
}

// name returns the object's Name: nameAlg || H(TPMT_PUBLIC) over the bytes
// as received (Part 1, Section 16).
func (p *public) name() []byte {
	h, _ := hashOf(p.nameAlg) // checked by parsePublic
	out := make([]byte, 2, 2+h.Size())
	out[0], out[1] = byte(p.nameAlg>>8), byte(p.nameAlg)
	d := h.New()
	d.Write(p.raw)
	return d.Sum(out)
}

// publicKey returns the public key of an RSA or ECC (NIST P-256, P-384,
// P-521) public area. An ECC point must be on its curve, each coordinate
// of the curve's size, as a TPM writes them.
func (p *public) publicKey() (crypto.PublicKey, error) {
	if p.typ == tpm2.TPMAlgRSA {
		k := &rsa.PublicKey{N: new(big.Int).SetBytes(p.modulus), E: int(p.exponent)}
		if k.E == 0 {
			k.E = 65537 // the TPM's default (Part 2, Section 12.2.3.5)
		}
		return k, nil
	}
	var c elliptic.Curve
	switch p.curve {
	case tpm2.TPMECCNistP256:
		c = elliptic.P256()
	case tpm2.TPMECCNistP384:
		c = elliptic.P384()
	case tpm2.TPMECCNistP521:
		c = elliptic.P521()
	default:
		return nil, fmt.Errorf("unsupported curve 0x%04x", uint16(p.curve))
	}
	size := (c.Params().BitSize + 7) / 8
	if len(p.eccX) != size || len(p.eccY) != size {
		return nil, errors.New("malformed ECC point")
	}
	pt := make([]byte, 0, 1+2*size)
	pt = append(append(append(pt, 4), p.eccX...), p.eccY...)
	k, err := ecdsa.ParseUncompressedPublicKey(c, pt)
	if err != nil {
		return nil, errors.New("ECC point is not on the curve")
	}
	return k, nil
}

// eccSigningKey returns the P-256 key of an ECDSA-SHA256 public area.
func (p *public) eccSigningKey() (*ecdsa.PublicKey, error) {
	if p.typ != tpm2.TPMAlgECC {
		return nil, errors.New("not an ECC key")
	}
	if p.curve != tpm2.TPMECCNistP256 {
		return nil, errors.New("not a NIST P-256 key")
	}
	if p.scheme != tpm2.TPMAlgECDSA {
		return nil, errors.New("scheme is not ECDSA")
	}
	if tpm2.TPMAlgID(p.schemeHash) != tpm2.TPMAlgSHA256 {
		return nil, errors.New("scheme is not ECDSA with SHA-256")
	}
	k, err := p.publicKey()
	if err != nil {
		return nil, err
	}
	return k.(*ecdsa.PublicKey), nil
}

// p256SPKIPrefix is the DER SubjectPublicKeyInfo of a NIST P-256 key
// (RFC 5480, Section 2: id-ecPublicKey, secp256r1) up to and including
// the 0x04 of its uncompressed point (SEC 1, Section 2.3.3), as
// x509.MarshalPKIXPublicKey writes it; X and Y follow.
var p256SPKIPrefix = []byte{0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
	0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04}

// p256SPKI returns the SubjectPublicKeyInfo DER of a public area that
// eccSigningKey accepted (P-256, 32-byte coordinates).
func (p *public) p256SPKI() []byte {
	out := make([]byte, 0, len(p256SPKIPrefix)+len(p.eccX)+len(p.eccY))
	return append(append(append(out, p256SPKIPrefix...), p.eccX...), p.eccY...)
}

// parseAK decodes the AK's TPMT_PUBLIC and checks it is a restricted,
// TPM-generated, non-duplicable ECDSA-P256-SHA256 signing key.
func parseAK(data []byte) (*public, *ecdsa.PublicKey, error) {
	p := new(public)
	if err := parsePublic(data, p); err != nil {
		return nil, nil, err
	}
	if p.typ != tpm2.TPMAlgECC || !p.has(attrRestricted|attrSign|attrFixedTPM|attrFixedParent|attrSensitiveDataOrigin) || p.has(attrDecrypt) {
		return nil, nil, errors.New("not a restricted, TPM-generated, non-duplicable signing key")
	}
	k, err := p.eccSigningKey()
	if err != nil {
		return nil, nil, err
	}
	return p, k, nil
}

// strictUnmarshal decodes a TPM structure with go-tpm and accepts it only
// if it re-marshals to exactly the input: no trailing bytes, no
// alternative encodings. It serves enrollment, whose credential
// activation needs the EK as go-tpm's TPMTPublic; the Verifier's
// structures have the decoders above. Go-tpm's decoder bounds its own
// allocations (TPM2B sizes are 16-bit); a panic inside it is turned into
// an error.
func strictUnmarshal[T tpm2.Marshallable, P interface {
	*T
	tpm2.Unmarshallable
}](data []byte) (out *T, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("undecodable TPM structure")
		}
	}()
	v, err := tpm2.Unmarshal[T, P](data)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(tpm2.Marshal(P(v)), data) {
		return nil, errors.New("trailing or non-canonical bytes")
	}
	return v, nil
}

func hashOf(alg uint16) (crypto.Hash, bool) {
	switch tpm2.TPMAlgID(alg) {
	case tpm2.TPMAlgSHA1:
		return crypto.SHA1, true
	case tpm2.TPMAlgSHA256:
		return crypto.SHA256, true
	case tpm2.TPMAlgSHA384:
		return crypto.SHA384, true
	case tpm2.TPMAlgSHA512:
		return crypto.SHA512, true
	}
	return 0, false
}

func algOf(h crypto.Hash) (uint16, bool) {
	switch h {
	case 0, crypto.SHA256:
		return uint16(tpm2.TPMAlgSHA256), true
	case crypto.SHA1:
		return uint16(tpm2.TPMAlgSHA1), true
	case crypto.SHA384:
		return uint16(tpm2.TPMAlgSHA384), true
	case crypto.SHA512:
		return uint16(tpm2.TPMAlgSHA512), true
	}
	return 0, false
}

// ParseQuoteInfo decodes a quote's TPMS_ATTEST (TPM_ST_ATTEST_QUOTE)
// strictly, as the Verifier does before any check, and returns it
// unverified: the signature, the AK and the PCR digest are not checked.
// For tools that show Evidence (expat inspect).
func ParseQuoteInfo(data []byte) (*tpm2.TPMSAttest, error) {
	var a attest
	if err := parseAttest(data, tpm2.TPMSTAttestQuote, &a); err != nil {
		return nil, fmt.Errorf("tpm: quote: %w", err)
	}
	return a.goTPM(), nil
}

// ParseCertifyInfo decodes a TPM2_Certify TPMS_ATTEST
// (TPM_ST_ATTEST_CERTIFY) strictly and returns it unverified.
func ParseCertifyInfo(data []byte) (*tpm2.TPMSAttest, error) {
	var a attest
	if err := parseAttest(data, tpm2.TPMSTAttestCertify, &a); err != nil {
		return nil, fmt.Errorf("tpm: certify: %w", err)
	}
	return a.goTPM(), nil
}

// ParseSignature decodes a TPMT_SIGNATURE strictly and returns its
// signature algorithm and, for ECDSA, its hash algorithm (0 otherwise),
// unverified.
func ParseSignature(data []byte) (sigAlg, hashAlg tpm2.TPMAlgID, err error) {
	var sig signature
	if err := parseSignature(data, &sig); err != nil {
		return 0, 0, fmt.Errorf("tpm: signature: %w", err)
	}
	if sig.sigAlg == tpm2.TPMAlgECDSA {
		return sig.sigAlg, tpm2.TPMAlgID(sig.hash), nil
	}
	return sig.sigAlg, 0, nil
}

// ParseKeyPublic decodes a TPMT_PUBLIC strictly (a certified key's public
// area, Bundle.KeyPublic) and returns its public key (*rsa.PublicKey or
// *ecdsa.PublicKey), unverified: it does not check the key's attributes,
// as the Verifier does.
func ParseKeyPublic(data []byte) (crypto.PublicKey, error) {
	var p public
	if err := parsePublic(data, &p); err != nil {
		return nil, fmt.Errorf("tpm: public area: %w", err)
	}
	k, err := p.publicKey()
	if err != nil {
		return nil, fmt.Errorf("tpm: public area: %w", err)
	}
	return k, nil
}
