// Package sevsnp appraises AMD SEV-SNP Evidence produced by
// attester/sevsnp (CMW media type cmw.MediaTypeSEVSNP; structure in package
// attester/sevsnp/wire). It implements verifier.Verifier.
//
// # What is checked, in order
//
//  1. format: the CMW, decoded by package cmw's strict decoder (at most
//     MaxCMWSize bytes), must be one CBOR record (not JSON, not a tag, not a
//     collection) in deterministic encoding, of media type
//     cmw.MediaTypeSEVSNP (compared with cmw.EqualMediaTypes) with no
//     indicator or "evidence"; then the Evidence map and certificate table
//     (strict, canonical) and the report layout (version 2 to 5, reserved
//     fields zero, ECDSA P-384 signature).
//  2. chain: the VCEK (or VLEK) certificate, taken from the Evidence's
//     certificate table or, for a VCEK, from Config.Collateral (AMD's KDS
//     through a cache, or an offline bundle), must chain to a trusted ARK
//     through its ASK (ASVK): AMD's real roots, embedded in go-sev-guest, by
//     default; other roots only when the caller passes them in Config.Roots.
//     An ASK/ARK carried in the Evidence is never trusted. The certificate's
//     HWID must equal CHIP_ID (unless masked to zero) and its TCB must equal
//     REPORTED_TCB. With Config.CheckRevocation, the product's CRL (signed by
//     the ARK, not past its NextUpdate) must not list the ASK/ASVK or the
//     endorsement key certificate.
//  3. signature: the report's ECDSA P-384 signature under that key.
//  4. challenge: REPORT_DATA equals Expected.Challenge.ReportData64(),
//     compared in constant time. This is the binding to the TLS connection.
//  5. debug: the guest policy's DEBUG bit is refused unless
//     Policy.AllowDebug.
//  6. policy: the migration agent bit (refused unless
//     Policy.AllowMigrationAgent), HOST_DATA (when Policy.HostData is set),
//     GUEST_SVN (Policy.MinGuestSVN).
//  7. vmpl: VMPL in Policy.VMPLs ({0} when empty).
//  8. tcb: every component of REPORTED_TCB (boot loader, TEE, SNP,
//     microcode) at least Policy.MinimumTCB's, and REPORTED_TCB not above
//     CURRENT_TCB.
//  9. measurement: MEASUREMENT in Policy.Measurements (refused when the list
//     is empty, unless Policy.AnyMeasurement).
//
// A failed check is a *verifier.RejectedError whose Check is the name
// above; collateral that cannot be obtained (network, KDS rate limiting,
// missing from the offline bundle, expired) is a *verifier.UnavailableError.
//
// # Collateral
//
// KDS fetches VCEKs and CRLs from AMD's Key Distribution Service (base URL
// configurable), honouring ctx, retrying 429/503 answers a bounded number of
// times after Retry-After (capped) with jitter. Cache wraps any Collateral
// with a memory and optional on-disk cache (files named by product, chip ID
// and TCB) that never returns an expired certificate or a CRL past its
// NextUpdate, and coalesces concurrent fetches of one item. Bundle serves a
// caller-supplied set (a directory or a struct) with no network at all.
//
// # Caveats
//
// Version 2 reports do not name their product line: the verifier uses the
// VCEK's product name, or Config.ProductLine to fetch one. The TCB layout of
// Turin (FMC field) is not handled by go-sev-guest v0.15.0, so Turin VCEKs
// cannot be fetched from the KDS by this package (Evidence that carries
// the VCEK works). The verify package of go-sev-guest, which this package
// uses for the chain and signature, registers one command-line flag
// (workaround_kds_productname) when linked in.
package sevsnp
