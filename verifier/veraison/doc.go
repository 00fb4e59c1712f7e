// Package veraison uses a Veraison verification service
// (github.com/veraison/services; tested against v0.0.2501) as the remote
// Verifier of go-expat, over its REST API with net/http.
//
// # What is implemented
//
//   - Client.Appraise: one challenge-response session per appraisal. The
//     relying party supplies the session nonce (POST
//     /challenge-response/v1/newSession?nonce=...), which for go-expat is
//     the 64-byte ReportData64 of the connection's Challenge, so Veraison
//     checks the Evidence against this connection; the CMW record is
//     posted as application/cmw+cbor or application/cmw+json; the session
//     is deleted afterwards. The EAR (draft-ietf-rats-ear as implemented by
//     github.com/veraison/ear v1.1.3) must be signed by the service's key,
//     echo the nonce in eat_nonce and the session, and have an accepted
//     status: every submodule "affirming" (or "warning" with
//     Config.AllowWarning).
//   - Verifier: a verifier.Verifier. Evidence records go through Appraise
//     (background-check model); EAR records (cmw.MediaTypeEAR) are checked
//     offline against the service's key, the challenge and MaxEARAge
//     (passport model).
//   - Passport: an attester.Attester that turns another attester's Evidence
//     into a Veraison EAR record (passport model).
//
// # Failure handling (fail closed)
//
// Unreachable, slow (RequestTimeout or ctx), 5xx and 429 answers are
// *verifier.UnavailableError, retried with exponential backoff and full
// jitter (Retry-After honoured up to 2 s) within MaxAttempts and ctx's
// deadline; other unexpected answers are not retried. A bad EAR signature,
// a wrong nonce, a rejecting status, a stale passport or Evidence that
// Veraison refuses to parse are *verifier.RejectedError. Response bodies are
// bounded by MaxResponseSize.
//
// # Caveats
//
//   - Without Config.EARKey the signing key is fetched from
//     /.well-known/veraison/verification once and cached: trust on first
//     use (see Config.EARKey).
//   - Veraison v0.0.2501 accepts CMW records, not collections, and
//     appraises only PSA, Arm CCA, Parsec and TPM EnactTrust Evidence: no
//     SEV-SNP, TDX or go-expat's TPM 2.0 quote format.
//   - Veraison's default CCA appraisal affirms a platform in the non-CCA
//     debug lifecycle state; verifier/cca (local) rejects it by default.
//   - EARs carry no audience: a passport is tied to the connection only by
//     eat_nonce (the ReportData64 of that connection's challenge).
package veraison
