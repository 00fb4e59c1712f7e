// Package sevsnp appraises AMD SEV-SNP Evidence produced by
// attester/sevsnp (CMW media type cmw.MediaTypeSEVSNP; structure in package
// attester/sevsnp/wire). It implements verifier.Verifier.
//
// # What is checked, in order
//
//  1. format: the CMW must be one record of media type cmw.MediaTypeSEVSNP
//     with no indicator or "evidence", under package cmw's one record rule
//     (cmw.MaxSize, canonical encoding, the media type spelled exactly;
//     verifier.VerifyCMW, verifier.ExpectRecord); then the Evidence map
//     and certificate table (strict, canonical) and the report layout (version 2 to 5, reserved
//     fields zero, ECDSA P-384 signature).
//  2. debug: the guest policy's DEBUG bit is refused unless
//     Policy.AllowDebug.
//  3. policy: the migration agent bit (refused unless
//     Policy.AllowMigrationAgent), HOST_DATA (when Policy.HostData is set),
//     GUEST_SVN (Policy.MinGuestSVN).
//  4. vmpl: VMPL in Policy.VMPLs ({0} when empty).
//  5. tcb: every component (boot loader, TEE, SNP, microcode) of
//     REPORTED_TCB, COMMITTED_TCB (what the host can roll the firmware back
//     to) and LAUNCH_TCB (the firmware the guest was launched under) at
//     least Policy.MinimumTCB's; REPORTED_TCB and COMMITTED_TCB not above
//     CURRENT_TCB; COMMITTED_TCB equal to CURRENT_TCB (provisional firmware
//     is refused unless Policy.AllowProvisionalFirmware, and then accepted
//     with Status warning).
//  6. measurement: MEASUREMENT in Policy.Measurements (refused when the list
//     is empty, unless Policy.AcceptAnyMeasurement).
//  7. challenge: REPORT_DATA equals Expected.ReportData64(), compared in
//     constant time. This is the binding to the TLS connection.
//
// Steps 2 to 7 read the report's fields before its signature is checked:
// they need no collateral, so a report that fails them never causes a
// VCEK or CRL fetch (and a failure says nothing about the report's
// origin; only an accepted report has passed every step).
//
//  8. chain: the VCEK (or VLEK) certificate, taken from the Evidence's
//     certificate table or, for a VCEK, from Config.Collateral (AMD's KDS
//     through a cache, or an offline bundle), must chain to a trusted ARK
//     through its ASK (ASVK): AMD's real roots by default (the PEM bundles
//     embedded in go-sev-guest's verify/trust package); other roots only
//     when the caller passes them in Config.Roots. An ASK/ARK carried in
//     the Evidence is never trusted. New checks each root once: the ARK is
//     self-signed and signed the ASK and ASVK. Per report (chain.go): the
//     certificate is X.509 v3, signed with RSASSA-PSS/SHA-384 (MGF1
//     SHA-384, salt 48), certifies an ECDSA P-384 key, has AMD's subject
//     (CN SEV-VCEK or SEV-VLEK) and issuer (CN SEV-<product> or
//     SEV-VLEK-<product>) names, no extension but AMD's (well formed, none
//     twice) and the authority key identifier, and
//     crypto/x509 builds the chain to the ARK with the root's intermediate
//     as the only one: signatures, validity periods of all three
//     certificates at the appraisal time, CA basic constraints, key usage,
//     critical extensions, extended key usage. The product line that picks
//     the roots is the report's CPUID (version 3 and later) or, for
//     version 2, the certificate's product name. The certificate's HWID
//     must equal CHIP_ID (unless masked to zero) and its TCB must equal
//     REPORTED_TCB. With Config.CheckRevocation, the CRL of the root that
//     certified the key (signed by its ARK, not past its NextUpdate) must
//     not list that ASK/ASVK or the endorsement key certificate.
//     A chain verified before (the same certificate bytes, signing key and
//     product line) is taken from the Verifier's cache while the appraisal
//     time is within the validity of all three certificates, and a CRL
//     checked before (the same bytes) while it is current; revocation in
//     the CRL at hand is checked every time (see Verifier).
//  9. signature: the report's signature under the certified key: ECDSA
//     P-384 with SHA-384 over report bytes [0, 0x2A0) exactly as
//     received, R and S 72-byte little-endian fields at 0x2A0 and 0x2E8
//     whose top 24 bytes must be zero, each in [1, n-1]. A report that
//     does not verify under the key it names is a "signature" rejection
//     even when that key's certificate does not chain either.
//
// A failed check is a *verifier.RejectedError whose verifier.Check has the
// name above (CheckFormat, CheckDebug, ...). A VCEK that AMD's KDS does not
// have (HTTP 404: AMD endorses no such chip at that TCB) is a CheckChain
// rejection; collateral that cannot be obtained (network, KDS rate
// limiting, missing from the offline bundle, expired) is a
// *verifier.UnavailableError.
//
// # Collateral
//
// KDS fetches VCEKs and CRLs from AMD's Key Distribution Service (base URL
// configurable), honouring ctx, retrying 429/503 answers a bounded number of
// times after Retry-After (capped) with jitter. Cache wraps any Collateral
// with a memory and optional on-disk cache (files named by product, chip ID
// and TCB) that never returns an expired certificate or a CRL past its
// NextUpdate, coalesces concurrent fetches of one item and remembers a
// failed fetch for Cache.FailureTTL (one minute by default). Bundle serves a
// caller-supplied set (a directory or a struct) with no network at all.
//
// # Caveats
//
// Version 2 reports do not name their product line: the verifier uses the
// VCEK's product name, or Config.ProductLine to fetch one. The TCB layout of
// Turin (FMC field) is not handled by go-sev-guest v0.15.0, so Turin VCEKs
// cannot be fetched from the KDS by this package (Evidence that carries
// the VCEK works).
//
// The chain and signature checks are this package's own (chain.go),
// written after the AMD SEV-SNP ABI (publication 56860) and VCEK/KDS
// (57230) specifications and kept decision-for-decision equal to
// go-sev-guest v0.15.0's verify.SnpAttestation, which this package used
// before; the tests compare the two on valid and mutated reports,
// certificates and roots. This package imports go-sev-guest's abi, kds
// and verify/trust packages only: none registers a command-line flag
// (go-sev-guest's verify package does, so it is not linked in). Two
// deliberate differences: the signature is checked over the bytes
// received, whereas go-sev-guest checks it over its own re-encoding of
// the report and so also accepts a report whose stepping byte (0x18A)
// was altered in its high nibble; and New refuses an ARK that is not
// self-signed, which crypto/x509 (and so go-sev-guest) never checks. For
// a version 3 or later report the certificate's product name is not
// compared with the report's CPUID (as in go-sev-guest, because of early
// mislabelled certificates); the roots of the report's product line must
// have issued it.
package sevsnp
