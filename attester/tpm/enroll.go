package tpm

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// EnrollmentRequest is what an attester sends to an enrollment CA
// (verifier/tpm.EnrollmentCA) to have its AK certified: the EK certificate
// and public area, and the AK public area.
type EnrollmentRequest struct {
	EKCert   []byte // DER, from the EK certificate NV index
	EKPublic []byte // TPMT_PUBLIC of the EK
	AKPublic []byte // TPMT_PUBLIC of the AK
}

// ekPolicySecret is the authPolicy of the TCG default EK templates L-1 and
// L-2 (TCG EK Credential Profile 2.x, Section 2.1.5.1):
// PolicySecret(TPM_RH_ENDORSEMENT).
var ekPolicySecret = tpm2.RSAEKTemplate.AuthPolicy.Buffer

// withEK loads the EK (the persistent object at ekHandle, or, for 0, the
// ECC P-256 EK derived from template L-2) and runs fn with it.
func (a *Attester) withEK(s *session, ekHandle uint32, fn func(ek tpm2.NamedHandle, pub *tpm2.TPMTPublic) error) error {
	var ek tpm2.NamedHandle
	var pub2B tpm2.TPM2BPublic
	if ekHandle != 0 {
		if ekHandle>>24 != 0x81 {
			return fmt.Errorf("tpm: EK handle 0x%08x is not a persistent handle", ekHandle)
		}
		rsp, err := run(s, "read EK public area", func(t transport.TPM) (*tpm2.ReadPublicResponse, error) {
			return tpm2.ReadPublic{ObjectHandle: tpm2.TPMHandle(ekHandle)}.Execute(t)
		})
		if err != nil {
			return err
		}
		ek, pub2B = tpm2.NamedHandle{Handle: tpm2.TPMHandle(ekHandle), Name: rsp.Name}, rsp.OutPublic
	} else {
		rsp, err := run(s, "derive EK", func(t transport.TPM) (*tpm2.CreatePrimaryResponse, error) {
			return tpm2.CreatePrimary{
				PrimaryHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHEndorsement, Auth: tpm2.PasswordAuth(a.cfg.EndorsementAuth)},
				InPublic:      tpm2.New2B(tpm2.ECCEKTemplate),
			}.Execute(t)
		})
		if err != nil {
			return err
		}
		defer s.flush(rsp.ObjectHandle)
		ek, pub2B = tpm2.NamedHandle{Handle: rsp.ObjectHandle, Name: rsp.Name}, rsp.OutPublic
	}
	pub, err := pub2B.Contents()
	if err != nil {
		return &Error{Op: "EK public area", Err: err}
	}
	return fn(ek, pub)
}

// EnrollmentRequest reads the EK public area and certificate (the RSA EK
// certificate for an RSA EK, the ECC P-256 one otherwise) and returns
// them with the AK public area. ekHandle is the EK's persistent handle
// (swtpm_setup and tpm2_createek use 0x81010001 for the RSA EK), or 0 to
// derive the ECC P-256 EK from the default template L-2.
func (a *Attester) EnrollmentRequest(ctx context.Context, ekHandle uint32) (*EnrollmentRequest, error) {
	req := &EnrollmentRequest{AKPublic: bytes.Clone(a.akPub)}
	err := a.conn.do(ctx, func(s *session) error {
		return a.withEK(s, ekHandle, func(_ tpm2.NamedHandle, pub *tpm2.TPMTPublic) error {
			req.EKPublic = tpm2.Marshal(pub)
			idx := uint32(NVIndexEKCertECCP256)
			if pub.Type == tpm2.TPMAlgRSA {
				idx = NVIndexEKCertRSA2048
			}
			cert, err := readNV(s, idx)
			if err != nil {
				return err
			}
			req.EKCert = cert
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return req, nil
}

// ActivateCredential runs TPM2_ActivateCredential with the AK and the EK
// (see EnrollmentRequest for ekHandle) and returns the recovered secret.
// The TPM releases it only if the AK it holds has the Name the enrollment
// CA encrypted the credential to, and only to the EK's holder: this is what
// binds the AK to the EK certificate. Only EKs with the default
// PolicySecret(TPM_RH_ENDORSEMENT) policy (templates L-1, L-2) are
// supported.
func (a *Attester) ActivateCredential(ctx context.Context, ekHandle uint32, credential, secret []byte) ([]byte, error) {
	var out []byte
	err := a.conn.do(ctx, func(s *session) error {
		return a.withEK(s, ekHandle, func(ek tpm2.NamedHandle, pub *tpm2.TPMTPublic) error {
			if !bytes.Equal(pub.AuthPolicy.Buffer, ekPolicySecret) {
				return errors.New("tpm: EK policy is not PolicySecret(TPM_RH_ENDORSEMENT)")
			}
			sess, closeSess, err := tpm2.PolicySession(s, tpm2.TPMAlgSHA256, 16)
			if err != nil {
				return &Error{Op: "start EK policy session", Err: err}
			}
			defer func() { _ = closeSess() }()
			if _, err := (tpm2.PolicySecret{
				AuthHandle:    tpm2.AuthHandle{Handle: tpm2.TPMRHEndorsement, Auth: tpm2.PasswordAuth(a.cfg.EndorsementAuth)},
				PolicySession: sess.Handle(),
				NonceTPM:      sess.NonceTPM(),
			}).Execute(s); err != nil {
				return &Error{Op: "EK policy", Err: err}
			}
			rsp, err := (tpm2.ActivateCredential{
				ActivateHandle: tpm2.AuthHandle{Handle: a.ak.Handle, Name: a.ak.Name, Auth: tpm2.PasswordAuth(nil)},
				KeyHandle:      tpm2.AuthHandle{Handle: ek.Handle, Name: ek.Name, Auth: sess},
				CredentialBlob: tpm2.TPM2BIDObject{Buffer: credential},
				Secret:         tpm2.TPM2BEncryptedSecret{Buffer: secret},
			}).Execute(s)
			if err != nil {
				var rc tpm2.TPMRC
				errors.As(err, &rc)
				return &Error{Op: "activate credential", Code: rc, Err: err}
			}
			out = bytes.Clone(rsp.CertInfo.Buffer)
			return nil
		})
	})
	return out, err
}
