// Package tdx appraises Intel TDX Evidence: CMW records of media type
// cmw.MediaTypeTDX (see package attester/tdx/wire) holding a TD quote v4
// or v5 (TDX 1.0 and 1.5 bodies) signed with ECDSA P-256 and certified by
// a PCK certificate chain (quote certification data type 6 / 5).
//
// # What Verify checks, in order
//
//  1. format: strict CMW and CBOR decoding, then a strict quote parse
//     (attester/tdx/wire.ParseQuote): every length must match, no
//     trailing bytes.
//  2. chain: the PCK chain in the quote (PCK leaf "Intel SGX PCK
//     Certificate", "Intel SGX PCK Platform/Processor CA", "Intel SGX Root
//     CA", ECDSA P-256 / SHA-256) verifies at the appraisal time to a
//     trusted root: by default only Intel's root, pinned by the SHA-256 of
//     its certificate (IntelRootSHA256); Config.TrustedRoots replaces it
//     (tests pass attester/tdx/tdxtest's root explicitly).
//  3. signature: the QE report is signed by the PCK key, its REPORTDATA is
//     SHA-256(attestation key || QE authentication data), and the quote
//     (header and body) is signed by that attestation key.
//
// A PCK chain and QE report signature checked before (SHA-256 of the
// quote's exact PCK chain bytes, QE report and its signature) are taken
// from the Verifier's cache while the appraisal time is within the
// validity of all three certificates: the verdict a new check would give.
// The binding to the attestation key, the quote's signature and
// revocation (step 6, against the CRLs current at the appraisal) are
// checked every time.
//  4. challenge: REPORTDATA equals Expected.ReportData64()
//     (SHA-512(binding || AIK_pub_hash)), compared in constant time. This
//     is the binding of the Evidence to the TLS connection.
//  5. debug and measurement: local policy (Policy): debug TDs are rejected
//     unless AllowDebug; MRTD must be in Policy.MRTD (an empty list
//     rejects every quote unless the insecure AcceptAnyMRTD); RTMR0-3,
//     MRCONFIGID, MROWNER, MROWNERCONFIG, XFAM and TD_ATTRIBUTES bits when
//     the policy names them. These run before any network access.
//  6. chain / collateral: revocation (unless SkipRevocation): the root CA
//     CRL (the PCK CA and the collateral signers are not revoked) and the
//     PCK CRL (the PCK certificate is not revoked).
//  7. collateral / tcb: the TDX TCB info for the PCK certificate's FMSPC
//     and the TD_QE identity, both signed by "Intel SGX TCB Signing"
//     chaining to the trusted root; FMSPC and PCE-ID match; MRSIGNERSEAM
//     and SEAMATTRIBUTES match the TDX module; the quoting enclave matches
//     the TD_QE identity; then Intel's TCB level evaluation (SGX
//     components and PCESVN from the PCK certificate, TEE_TCB_SVN from the
//     quote, the TDX module identity for TDX 1.5, the QE's ISVSVN). The
//     status is reported precisely (TCBReport, also in the Result claims
//     and in a *TCBError inside CheckTCB rejections): which statuses each part
//     has, and every component below Intel's latest level.
//
// The Status of an accepted quote says what was accepted: affirming for
// an UpToDate, non-debug TD; warning when the policy allowed a TCB status
// other than UpToDate (Hardware 32) or a debug TD (RuntimeOpaque 32).
//
// Rejections are *verifier.RejectedError with Check verifier.CheckFormat,
// CheckChain, CheckSignature, CheckChallenge, CheckDebug, CheckMeasurement,
// CheckCollateral (invalid, expired or not-yet-valid collateral, wrong
// FMSPC/PCE-ID) or CheckTCB.
// Collateral that cannot be fetched is a *verifier.UnavailableError
// (Retryable for timeouts, 429 and 5xx).
//
// # Collateral
//
// A Getter supplies collateral: PCS (Intel's Provisioning Certification
// Service API v4, or a PCCS at another BaseURL) or Bundle (collateral
// supplied by the caller; no network). The Verifier verifies each item
// once and caches it until the earliest of its nextUpdate and its signer's
// NotAfter, relative to the appraisal time (Expected.Now, else
// Config.Time). An item is never used at or after that time: it is
// refetched, and rejected if the fetched copy is still expired. One fetch
// per item is in flight at a time; concurrent appraisals wait for it. A
// failed fetch or invalid item is remembered for Config.FailureTTL (one
// minute by default). PCS makes its requests with collateral.HTTP
// (bounded retries of 429 and 5xx answers, Retry-After honoured); the
// cache is collateral.Cache, shared with verifier/sevsnp.
//
// # Policy on TCB status
//
// UpToDate is accepted (tier affirming). SWHardeningNeeded,
// ConfigurationNeeded (and their combination) and OutOfDate(...) are
// rejected unless the corresponding Policy flag allows them (tier
// warning). Revoked is always rejected. Statuses of the platform, the TDX
// module and the QE combine as sets: OutOfDate anywhere makes the result
// OutOfDate.
//
// # Caveats
//
// Not implemented: SGX quotes, quote certification data other than a PCK
// chain (types 1-4, 7), Intel's TCB "early update" collateral, platform
// manifest / platform instance checks (multi-package platforms), and
// service TD bindings (MRSERVICETD is parsed, not appraised). The quote
// parser is our own; go-tdx-guest's abi parser panics on some malformed
// quotes and its verify package logs to stdout and rejects any status
// other than UpToDate, so only its pcs package (PCK extensions, collateral
// JSON types) is used here.
package tdx
