package tpm

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"

	"github.com/google/go-tpm/tpm2"
)

// strictUnmarshal decodes a TPM structure and accepts it only if it
// re-marshals to exactly the input: no trailing bytes, no alternative
// encodings. go-tpm's decoder bounds its own allocations (TPM2B sizes are
// 16-bit); a panic inside it is turned into an error.
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

// parseAK decodes the AK's TPMT_PUBLIC and checks it is a restricted,
// TPM-generated, non-duplicable ECDSA-P256-SHA256 signing key.
func parseAK(data []byte) (*tpm2.TPMTPublic, *ecdsa.PublicKey, error) {
	p, err := strictUnmarshal[tpm2.TPMTPublic](data)
	if err != nil {
		return nil, nil, err
	}
	a := p.ObjectAttributes
	if p.Type != tpm2.TPMAlgECC || !a.Restricted || !a.SignEncrypt || a.Decrypt ||
		!a.FixedTPM || !a.FixedParent || !a.SensitiveDataOrigin {
		return nil, nil, errors.New("not a restricted, TPM-generated, non-duplicable signing key")
	}
	k, err := eccSigningKey(p)
	if err != nil {
		return nil, nil, err
	}
	return p, k, nil
}

// eccSigningKey returns the P-256 key of an ECDSA-SHA256 TPMT_PUBLIC.
func eccSigningKey(p *tpm2.TPMTPublic) (*ecdsa.PublicKey, error) {
	if p.Type != tpm2.TPMAlgECC {
		return nil, errors.New("not an ECC key")
	}
	ecc, err := p.Parameters.ECCDetail()
	if err != nil || ecc.CurveID != tpm2.TPMECCNistP256 {
		return nil, errors.New("not a NIST P-256 key")
	}
	if ecc.Scheme.Scheme != tpm2.TPMAlgECDSA {
		return nil, errors.New("scheme is not ECDSA")
	}
	if sch, err := ecc.Scheme.Details.ECDSA(); err != nil || sch.HashAlg != tpm2.TPMAlgSHA256 {
		return nil, errors.New("scheme is not ECDSA with SHA-256")
	}
	pt, err := p.Unique.ECC()
	if err != nil {
		return nil, err
	}
	if len(pt.X.Buffer) != 32 || len(pt.Y.Buffer) != 32 {
		return nil, errors.New("malformed P-256 point")
	}
	k, err := tpm2.Pub(*p)
	if err != nil {
		return nil, err
	}
	ek, ok := k.(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("not an ECDSA key")
	}
	return ek, nil
}

// verifySig checks a TPMT_SIGNATURE (ECDSA, SHA-256) over msg.
func verifySig(key *ecdsa.PublicKey, msg, sigBytes []byte) error {
	sig, err := strictUnmarshal[tpm2.TPMTSignature](sigBytes)
	if err != nil {
		return fmt.Errorf("signature structure: %w", err)
	}
	if sig.SigAlg != tpm2.TPMAlgECDSA {
		return fmt.Errorf("signature algorithm 0x%04x is not ECDSA", uint16(sig.SigAlg))
	}
	e, err := sig.Signature.ECDSA()
	if err != nil {
		return err
	}
	if e.Hash != tpm2.TPMAlgSHA256 {
		return errors.New("signature hash is not SHA-256")
	}
	d := sha256.Sum256(msg)
	r := new(big.Int).SetBytes(e.SignatureR.Buffer)
	s := new(big.Int).SetBytes(e.SignatureS.Buffer)
	if !ecdsa.Verify(key, d[:], r, s) {
		return errors.New("ECDSA signature does not verify")
	}
	return nil
}

// parseAttest decodes a TPMS_ATTEST of the given type (TPM_ST_ATTEST_*).
// The magic TPM_GENERATED_VALUE is checked by the decoder.
func parseAttest(data []byte, typ tpm2.TPMST) (*tpm2.TPMSAttest, error) {
	a, err := strictUnmarshal[tpm2.TPMSAttest](data)
	if err != nil {
		return nil, err
	}
	if a.Magic != tpm2.TPMGeneratedValue {
		return nil, errors.New("not TPM-generated")
	}
	if a.Type != typ {
		return nil, fmt.Errorf("attestation type 0x%04x, want 0x%04x", uint16(a.Type), uint16(typ))
	}
	return a, nil
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
	a, err := parseAttest(data, tpm2.TPMSTAttestQuote)
	if err != nil {
		return nil, fmt.Errorf("tpm: quote: %w", err)
	}
	return a, nil
}

// ParseCertifyInfo decodes a TPM2_Certify TPMS_ATTEST
// (TPM_ST_ATTEST_CERTIFY) strictly and returns it unverified.
func ParseCertifyInfo(data []byte) (*tpm2.TPMSAttest, error) {
	a, err := parseAttest(data, tpm2.TPMSTAttestCertify)
	if err != nil {
		return nil, fmt.Errorf("tpm: certify: %w", err)
	}
	return a, nil
}

// ParseSignature decodes a TPMT_SIGNATURE strictly and returns its
// signature and hash algorithms, unverified.
func ParseSignature(data []byte) (sigAlg, hashAlg tpm2.TPMAlgID, err error) {
	sig, err := strictUnmarshal[tpm2.TPMTSignature](data)
	if err != nil {
		return 0, 0, fmt.Errorf("tpm: signature: %w", err)
	}
	if sig.SigAlg == tpm2.TPMAlgECDSA {
		if e, err := sig.Signature.ECDSA(); err == nil {
			return sig.SigAlg, e.Hash, nil
		}
	}
	return sig.SigAlg, 0, nil
}

// ParseKeyPublic decodes a TPMT_PUBLIC strictly (a certified key's public
// area, Bundle.KeyPublic) and returns its public key, unverified: it does
// not check the key's attributes, as the Verifier does.
func ParseKeyPublic(data []byte) (crypto.PublicKey, error) {
	p, err := strictUnmarshal[tpm2.TPMTPublic](data)
	if err != nil {
		return nil, fmt.Errorf("tpm: public area: %w", err)
	}
	k, err := tpm2.Pub(*p)
	if err != nil {
		return nil, fmt.Errorf("tpm: public area: %w", err)
	}
	return k, nil
}
