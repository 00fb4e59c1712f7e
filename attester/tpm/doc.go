// Package tpm is go-expat's TPM 2.0 attester: it quotes PCRs with an
// attestation key (AK) over the connection's challenge, certifies
// TPM-resident Exported Authenticator keys, and returns the result as a CMW
// record of media type cmw.MediaTypeTPM2 (the bundle format is in package
// bundle; verifier/tpm appraises it).
//
// # Use
//
//	tr, err := tpm.OpenDevice("/dev/tpmrm0")        // or DialSwtpm, tpmsim.Open
//	conn, err := tpm.Open(tr, nil)
//	att, err := tpm.NewAttester(ctx, conn, &tpm.Config{})
//	key, err := att.NewKey(ctx)                     // crypto.Signer for the EA certificate
//	cmw, err := att.Attest(ctx, challenge)          // quote + TPM2_Certify of key
//
// The transport is always the caller's explicit choice: nothing is
// auto-detected. The cgo simulator lives in the subpackage tpmsim so that
// importing this package needs no C toolchain.
//
// # What is implemented
//
//   - AK: ECC NIST P-256, ECDSA-SHA256, restricted signing,
//     fixedTPM|fixedParent|sensitiveDataOrigin; derived as a primary of the
//     endorsement hierarchy from a fixed go-expat template (stable across
//     restarts), or loaded from a persistent handle.
//   - TPM2_Quote over a configurable single-bank PCR selection (default
//     SHA-256 PCRs 0-7) with qualifyingData = Challenge.QualifyingData32()
//     (SHA-256(binding || AIK_pub_hash), see package attester). PCRs are
//     read and the quote's digest checked against them, starting over if a
//     PCR moved in between.
//   - Key attestation: NewKey creates an unrestricted ECC P-256 signing key
//     (fixedTPM|fixedParent|sensitiveDataOrigin) whose private part never
//     leaves the TPM; Attest adds TPM2_Certify of it by the AK, with the
//     same qualifyingData, when the challenge's AIK_pub_hash is the hash of
//     its SPKI.
//   - Optional artefacts: the TCG event log (Config.EventLogPath), the AK
//     certificate chain (Config.AKChain) and EK certificates.
//   - Enrollment: EnrollmentRequest and ActivateCredential for
//     verifier/tpm's EnrollmentCA (EK certificate -> credential activation
//     -> AK certificate).
//
// # Behaviour
//
// All TPM access of an Attester (and its keys) goes through its Conn, which
// runs one command sequence at a time. Transient objects are flushed when
// no longer needed (the AK and keys on Close), since the simulator, swtpm
// and /dev/tpm0 have no resource manager. Warnings the TPM defines as
// transient (TPM_RC_RETRY, TPM_RC_YIELDED, TPM_RC_TESTING, TPM_RC_NV_RATE,
// TPM_RC_NV_UNAVAILABLE) are retried with bounded exponential backoff
// (ConnOptions.Retry) within the caller's context; other failures are returned
// as *Error carrying the response code. A command abandoned at the
// context's deadline leaves the Conn broken (ErrBroken): the TPM may still
// answer it, so the stream cannot be reused.
//
// # Caveats
//
// A quote proves the state of the PCRs, not of the software now running;
// what PCR values mean is the verifier's appraisal policy. The Evidence
// must fit the 65535-byte cmw_attestation extension, which real firmware
// event logs often exceed. Hierarchy authorizations other than empty
// passwords are supported only through Config's auth values; EKs with
// policies other than PolicySecret(TPM_RH_ENDORSEMENT) are not supported
// for activation.
package tpm
