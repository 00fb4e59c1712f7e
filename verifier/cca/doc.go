// Package cca appraises Arm CCA attestation tokens locally: a
// verifier.Verifier for CMW records of media type cmw.MediaTypeCCA (the type
// Veraison uses for its Arm CCA scheme).
//
// # What is implemented
//
// attester/cca/wire.ParseToken (the token format, shared with the
// attester) decodes the CCA attestation token (Arm DEN0137: a CBOR tag 399
// collection of the platform token, key 44234, and the realm delegated
// token, key 44241) strictly, then hands it to github.com/veraison/ccatoken
// v1.3.1 for claim decoding and syntax validation. Verifier then checks, in
// this order, each failure a *verifier.RejectedError with its Check
// (constants of package verifier):
//
//   - CheckKey: the platform token's COSE_Sign1 is signed (ES256/384/512) by
//     one of Config.TrustedKeys (the CPAK, also called IAK), optionally
//     pinned to an implementation and instance ID;
//   - CheckSignature: the realm token is signed by the RAK it carries, and the
//     platform token's challenge is the hash of that RAK (ccatoken's
//     Evidence.Verify; a realm token spliced from another platform fails);
//   - CheckChallenge: the realm challenge equals Expected.Challenge.ReportData64()
//     (constant-time), go-expat's 64-byte layout of binding and AIK_pub_hash;
//   - CheckDebug / CheckLifecycle: the platform lifecycle is allowed (only
//     "secured" by default: Veraison v0.0.2501 also affirms the non-CCA
//     platform debug state, this package does not unless told);
//   - CheckMeasurement: platform software components equal the reference
//     values; the realm initial measurement (RIM) and, when configured, the
//     four realm extensible measurements (REMs) are acceptable;
//   - CheckConfig: the platform configuration is acceptable, when configured;
//   - CheckPersonalization: the realm personalization value is acceptable,
//     when configured;
//   - CheckFormat: anything that does not decode.
//
// The zero Policy accepts nothing. A Result carries the RIM, REMs,
// personalization value and software components as Measurements, and the
// platform identity, lifecycle and profiles as Claims.
//
// # Caveats
//
// No CPAK certificate chain or revocation list is checked: trust is the
// configured key list (Arm's CPAK endorsement services are out of scope).
// Realm token hash algorithms are reported, not restricted.
package cca
