// Package local is a Verifier that runs as a small HTTP service speaking the
// challenge-response subset of Veraison's REST API (the shapes of
// github.com/veraison/services v0.0.2501, verification/api), so that
// verifier/veraison's Client, Verifier and Passport work against it
// unchanged. It appraises Evidence with any verifier.Verifier (typically a
// verifier.Dispatch over verifier/tpm, verifier/sevsnp, verifier/tdx and
// verifier/cca) and answers with an EAR signed by an ear.Issuer.
//
// # Endpoints
//
//	POST   /challenge-response/v1/newSession[?nonce=B64URL | ?nonceSize=N]
//	       201, Location: session/<id>, a session (status "waiting")
//	GET    /challenge-response/v1/session/<id>    200, the session
//	POST   /challenge-response/v1/session/<id>    Evidence as application/cmw+cbor
//	       or application/cmw+json; 200, the session (status "complete",
//	       "result" = the EAR)
//	DELETE /challenge-response/v1/session/<id>    204
//	GET    /.well-known/veraison/verification     the EAR key as a JWK
//	       ("ear-verification-key"), media types, version, state
//
// Sessions are application/vnd.veraison.challenge-response-session+json
// objects {"status", "nonce" (standard base64), "expiry" (RFC 3339),
// "accept" (media types), "result" (the EAR, when complete)}. Errors are
// RFC 7807 application/problem+json bodies, as Veraison sends them.
//
// # The nonce is the value the Evidence carries
//
// The session nonce is not a challenge from which a value is derived: it
// is the exact value the Evidence must carry, as with Veraison. A 64-byte
// nonce is the 64-byte user-data value (SEV-SNP REPORT_DATA, TDX
// REPORTDATA, CCA realm challenge, test-kit eat_nonce); go-expat's relying
// parties (veraison.Verifier, veraison.Passport) send
// attester.Challenge.ReportData64() there. A 32-byte nonce is a TPM 2.0
// quote's qualifyingData (attester.Challenge.QualifyingData32()). The
// service passes it to the Appraiser as verifier.Expected.ReportData or
// QualifyingData with an empty Challenge, so backends compare those
// values; since neither value can be derived from the other, TPM quotes
// need a 32-byte session and the other technologies a 64-byte one.
// Veraison accepts nonces of 8 to 64 bytes; this service refuses other
// lengths than 32 and 64 when the session is created (400), because no
// Evidence it appraises could match them. A server-chosen nonce
// (nonceSize, or no parameter: 64 bytes) comes from Config.Rand.
//
// # Outcomes
//
// As with Veraison, the HTTP status tells whether the Evidence could be
// processed and the signed EAR tells the appraisal:
//
//   - accepted by the Appraiser: the EAR carries the Appraiser's status
//     (affirming or warning) and trust vector, eat_nonce = the session
//     nonce (base64url), in a submodule named after the technology;
//   - rejected by the Appraiser (verifier.ErrRejected): the EAR's status
//     is "contraindicated", so every EAR consumer (veraison.Client,
//     verifier/ear) rejects it; the reason is logged, not published;
//   - the CMW cannot be decoded, its encoding contradicts the Content-Type,
//     or (with a *verifier.Dispatch Appraiser) its media type has no
//     verifier: 400 or 415, no EAR, session unchanged;
//   - the appraisal could not be done (verifier.ErrUnavailable, any other
//     error, a timeout): 500 and the session's status becomes "failed".
//
// A session takes one submission (409 afterwards). veraison.Client maps a
// contraindicated EAR to a *verifier.RejectedError, 400/415 to a
// rejection with verifier.CheckFormat and 5xx to a retryable
// *verifier.UnavailableError.
//
// # Limits and failure handling
//
// Request bodies are bounded (Config.MaxEvidenceSize, checked against
// Content-Length before reading and while reading: 413); query strings,
// session ids and headers are parsed strictly (unknown or repeated query
// parameters, non-canonical base64, malformed ids are refused). The
// session table holds at most Config.MaxSessions live sessions; sessions
// expire Config.SessionTTL after creation and are removed in creation
// order.
//
// Per-client limits (a client is Config.ClientID, by default the remote
// IP address; clients are not authenticated): a client holds at most
// Config.MaxSessionsPerClient sessions, and one at its quota that opens
// another evicts its own oldest session not being appraised, so that a
// flood of empty POSTs from one client churns its own sessions and never
// fills the table; a full table evicts the oldest such session of the
// client holding the most. The checks run before any nonce or id is
// minted; a request is refused only when no session can be evicted, every
// one being appraised (429 for the client's own quota, 503 for the table,
// with Retry-After). A submission is checked against its session (404,
// 409) before its body is read. At most Config.MaxConcurrentAppraisals
// appraisals run at once, of which one client's sessions get at most
// Config.MaxConcurrentAppraisalsPerClient (half by default: its further
// submissions wait for its own slots); each is bounded by
// Config.AppraisalTimeout. Nothing fails open: every error path issues no
// EAR, or a contraindicated one.
//
// # Caveats
//
//   - No authentication of relying parties and no TLS: put the service
//     behind TLS (and an authenticating proxy if needed) and bound
//     connections in the http.Server (timeouts, MaxHeaderBytes).
//   - Sessions live in memory in one process; Location headers are relative
//     ("session/<id>") as Veraison's are.
//   - The EAR key is published at the well-known endpoint; relying parties
//     configure it (veraison.Config.EARKeys) rather than fetch it (the
//     named insecure opt-in veraison.Config.InsecureTrustServiceKey).
//   - Evidence is not echoed in the session ("evidence" is omitted), and
//     asynchronous appraisal (202, status "processing") is not used.
//   - ear.Issuer.KeyAttestation is refused: a session carries no
//     Exported Authenticator key to attest.
package local
