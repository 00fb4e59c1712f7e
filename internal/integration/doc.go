// Package integration holds go-expat's end-to-end tests (in _test.go files
// only): attested TLS connections (package expat over crypto/tls on
// loopback TCP) with the real backends and their test-only parts:
//
//   - AMD SEV-SNP: attester/sevsnp through the configfs-tsm backend, whose
//     fake (attester/sevsnp/sevsnptest) signs reports with go-sev-guest's test keys,
//     appraised by verifier/sevsnp configured with those test roots
//     explicitly (AMD's real roots, the default, reject them);
//   - TPM 2.0: attester/tpm on the in-process reference simulator
//     (attester/tpm/tpmsim, one per process: these tests never run in
//     parallel), with the Exported Authenticator's key resident in the TPM
//     and certified by TPM2_Certify, appraised by verifier/tpm pinning the
//     AK;
//   - both at once, with verifier.Dispatch choosing by media type;
//   - composite Evidence (attester/composite, verifier/composite): a
//     SEV-SNP or TDX report committing to a vTPM's AK (the simulator, or
//     swtpm for a second machine) and the vTPM's channel-bound quote,
//     with items spliced from two machines, replayed or dropped.
//
// They need no hardware, no network beyond loopback and no flags. The
// package has no API.
package integration
