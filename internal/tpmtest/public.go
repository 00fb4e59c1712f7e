package tpmtest

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"

	"github.com/google/go-tpm/tpm2"

	"github.com/attested-tls/go-expat/attester/tpm/bundle"
)

// ECCPublic is a TPMT_PUBLIC for the P-256 ECDSA/SHA-256 key k with
// fixedTPM, fixedParent, sensitiveDataOrigin, userWithAuth and sign, and
// restricted when asked: what an AK (restricted) or a TPM-resident EA key
// looks like. Anyone can write these attributes; a TPM made none of this.
func ECCPublic(k *ecdsa.PublicKey, restricted bool) tpm2.TPMTPublic {
	pt, _ := k.ECDH()
	raw := pt.Bytes() // 0x04 || X || Y
	return tpm2.TPMTPublic{
		Type:    tpm2.TPMAlgECC,
		NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true,
			UserWithAuth: true, Restricted: restricted, SignEncrypt: true},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
			Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
			Scheme: tpm2.TPMTECCScheme{Scheme: tpm2.TPMAlgECDSA,
				Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256})},
			CurveID: tpm2.TPMECCNistP256,
			KDF:     tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
			X: tpm2.TPM2BECCParameter{Buffer: raw[1:33]}, Y: tpm2.TPM2BECCParameter{Buffer: raw[33:]}}),
	}
}

// ForgedBundle is a TPM quote bundle (a CMW record) made up entirely in
// software, the Evidence of a fake TPM: an "AK" that is the software key
// ak with a public area claiming restricted|fixedTPM (ECCPublic), a quote
// of PCR 7 = 0 over qd and a TPM2_Certify of the (software) key eaKey, all
// signed by ak, with akChain as the AK certificate chain. Only a verifier
// that trusts ak for some other reason accepts it.
func ForgedBundle(ak *ecdsa.PrivateKey, eaKey *ecdsa.PublicKey, qd [32]byte, akChain [][]byte) ([]byte, error) {
	akPub := ECCPublic(&ak.PublicKey, true)
	akName, err := tpm2.ObjectName(&akPub)
	if err != nil {
		return nil, err
	}
	pcr7 := make([]byte, 32)
	digest := sha256.Sum256(pcr7)
	clock := tpm2.TPMSClockInfo{Clock: 1000, ResetCount: 1, RestartCount: 0, Safe: true}
	quote := tpm2.Marshal(tpm2.TPMSAttest{
		Magic: tpm2.TPMGeneratedValue, Type: tpm2.TPMSTAttestQuote, QualifiedSigner: *akName,
		ExtraData: tpm2.TPM2BData{Buffer: qd[:]}, ClockInfo: clock, FirmwareVersion: 1,
		Attested: tpm2.NewTPMUAttest(tpm2.TPMSTAttestQuote, &tpm2.TPMSQuoteInfo{
			PCRSelect: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: tpm2.TPMAlgSHA256, PCRSelect: []byte{0x80, 0, 0}}}},
			PCRDigest: tpm2.TPM2BDigest{Buffer: digest[:]},
		}),
	})
	keyPub := ECCPublic(eaKey, false)
	keyName, err := tpm2.ObjectName(&keyPub)
	if err != nil {
		return nil, err
	}
	certify := tpm2.Marshal(tpm2.TPMSAttest{
		Magic: tpm2.TPMGeneratedValue, Type: tpm2.TPMSTAttestCertify, QualifiedSigner: *akName,
		ExtraData: tpm2.TPM2BData{Buffer: qd[:]}, ClockInfo: clock, FirmwareVersion: 1,
		Attested: tpm2.NewTPMUAttest(tpm2.TPMSTAttestCertify, &tpm2.TPMSCertifyInfo{Name: *keyName, QualifiedName: *keyName}),
	})
	quoteSig, err := Sign(ak, quote)
	if err != nil {
		return nil, err
	}
	certifySig, err := Sign(ak, certify)
	if err != nil {
		return nil, err
	}
	return bundle.Wrap(&bundle.Bundle{
		Quote: quote, QuoteSig: quoteSig, AKPublic: tpm2.Marshal(akPub),
		PCRAlg: uint16(tpm2.TPMAlgSHA256), PCRs: map[uint32][]byte{7: pcr7}, AKChain: akChain,
		Certify: certify, CertifySig: certifySig, KeyPublic: tpm2.Marshal(keyPub),
	})
}

// Sign returns the TPMT_SIGNATURE (ECDSA, SHA-256) of msg by k, as a TPM
// signing with an ECC key would make it.
func Sign(k *ecdsa.PrivateKey, msg []byte) ([]byte, error) {
	d := sha256.Sum256(msg)
	r, s, err := ecdsa.Sign(rand.Reader, k, d[:])
	if err != nil {
		return nil, err
	}
	return tpm2.Marshal(tpm2.TPMTSignature{SigAlg: tpm2.TPMAlgECDSA, Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgECDSA,
		&tpm2.TPMSSignatureECC{Hash: tpm2.TPMAlgSHA256, SignatureR: tpm2.TPM2BECCParameter{Buffer: r.FillBytes(make([]byte, 32))},
			SignatureS: tpm2.TPM2BECCParameter{Buffer: s.FillBytes(make([]byte, 32))}})}), nil
}
