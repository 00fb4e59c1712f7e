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
//     github.com/veraison/ear v1.1.3) is checked by verifier/ear, the one
//     EAR check of go-expat: signed by one of Config.EARKeys, echoing the
//     nonce in eat_nonce (padded or unpadded base64url) and the session, at
//     most MaxEARAge old and not past its exp, every submodule's tier
//     (ear.status lowered to what its trust vector supports) "affirming" (or
//     "warning" with Config.AllowWarning).
//   - Verifier: a verifier.Verifier. Evidence records go through Appraise
//     (background-check model); EAR records (cmw.MediaTypeEAR) are checked
//     offline by the same verifier/ear check against the connection's
//     challenge (passport model).
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
//   - EAR signing keys come from Config.EARKeys; New refuses a Config
//     without. Fetching the key from /.well-known/veraison/verification
//     (trust on first use) is the named insecure opt-in
//     Config.InsecureTrustServiceKey, off by default.
//   - Redirects are never followed (a 3xx answer is an unavailable
//     service): Evidence goes to Config.URL's host only, as do session
//     URLs (a Location elsewhere is refused).
//   - Veraison v0.0.2501 accepts CMW records, not collections, and
//     appraises only PSA, Arm CCA, Parsec and TPM EnactTrust Evidence: no
//     SEV-SNP, TDX or go-expat's TPM 2.0 quote format.
//   - Veraison's default CCA appraisal affirms a platform in the non-CCA
//     debug lifecycle state; verifier/cca (local) rejects it by default.
//   - EARs carry no audience: a passport is tied to the connection only by
//     eat_nonce (the ReportData64 of that connection's challenge).
package veraison
