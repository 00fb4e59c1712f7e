package tpmtest

import (
	"crypto/ecdsa"

	"github.com/google/go-tpm/tpm2"
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
