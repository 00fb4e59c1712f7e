// Package expat implements attested TLS as specified by
// draft-fossati-seat-expat (the 2026-09 editor's copy, "-04"; see
// DraftRevision): remote attestation Evidence, or an Attestation Result,
// wrapped in a CMW and carried in the cmw_attestation extension of a TLS
// Exported Authenticator (RFC 9261, package ea) after a TLS 1.3 handshake,
// bound to that connection through a TLS exporter.
//
// # What "attested" means here
//
// A verified Attestation proves that the holder of the private key of the
// peer's Exported Authenticator certificate presented, on THIS connection
// and after a request WE made with a fresh random context, Evidence that the
// configured Verifier accepted and that contains the binding
//
//	Hash(SPKI || TLS-Exporter("EXPORTER-cmw-attestation", context, 32))
//
// and AIK_pub_hash = Hash(SPKI), laid into the Evidence's user-data field
// with the layout of package attester. It does not prove anything the
// Verifier did not check, and it says nothing about the peer after the
// moment the Evidence was produced: re-attest (Conn.Attest) when an
// operation needs fresh assurance.
//
// Attestation augments X.509 and never replaces it silently: by default the
// peer's Exported Authenticator certificate must be the certificate that
// crypto/tls verified in the handshake. Other ways of trusting the peer
// (an x509.VerifyOptions, a callback, a pinned key) and attestation-only
// authentication (PeerIdentity.AttestationOnly, for onboarding or anonymous
// client attestation) are explicit choices.
//
// # Pieces
//
//   - Listen, NewListener and Dial: attested connections in one call; a
//     Listener sets up each accepted connection concurrently under a setup
//     deadline, so a slow or silent peer never delays the others.
//   - Conn (Server, Client): a net.Conn over an established *tls.Conn that
//     runs the attestation the local Config requires before any application
//     data flows (server, client or mutual attestation, one extra round trip),
//     answers the peer's requests, and re-attests on demand (Attest).
//   - Endpoint: the same logic without I/O, for applications that carry EA
//     messages in their own protocol (HTTP headers, gRPC metadata, QUIC).
//   - ComputeChallenge, MarshalExtensionData, ParseExtensionData: the binder
//     and the extension codec.
//
// Both RATS models go through the same Verifier interface: in the
// background-check model the CMW holds Evidence and the Verifier appraises it
// (in-process or remote); in the passport model it holds an Attestation
// Result (an EAR) that the Verifier checks (verifier/ear).
//
// # Bounds
//
// Every blocking call ends with its ctx or the Conn's deadlines; the setup
// is bounded by Config.SetupTimeout however it starts; an Attester or
// Verifier that ignores ctx is abandoned at the caller's bound and its
// result dropped; Close returns within about a second. The work a peer can
// cause is bounded by default: its requests are checked (type for the
// role, context, number in progress) before any Evidence is produced, and
// answered at most once per Config.PeerRequestInterval (250 ms by default);
// the record of contexts a connection keeps is bounded (Config.MaxContexts).
//
// # Privacy: who learns what
//
// Background-check model: the peer receives our Evidence as the Attester
// produced it (for example a TPM quote with its PCR values, a SEV-SNP
// report with its measurement, TCB, chip ID and policy, a TDX quote with
// its MRTD, RTMRs and the PCK certificate chain, a CCA token with its
// platform and realm claims), and passes it to its Verifier, which learns
// the same. Passport model: the peer receives an Attestation Result (an
// EAR) — the Verifier's verdict, trust vector and whatever claims it chose
// to include — and the Verifier saw our Evidence when it issued it, but
// learns nothing about the peer. In both models the Evidence names the
// connection's binder, not the peer.
//
// What we send is decided in three places: Config.Release (by default any
// peer that completed the TLS handshake and asks; ReleaseToAuthenticated
// waits for a verified client certificate or the peer's attestation;
// ReleaseToAttested for the peer's attestation), the Attester's options
// (attester/tpm carries no event log and no EK certificates unless asked;
// attester/sevsnp can omit the host's certificate table with
// OmitCertTable when the Verifier fetches or caches the VCEK), and the
// model (a passport discloses only what the EAR says).
//
// # Caveats
//
// TLS 1.3 only. Resumed sessions are refused (NewEndpoint returns ErrResumed):
// use ServerTLSConfig and ClientTLSConfig, which switch session tickets off
// and keep clients from resuming; 0-RTT is never used. The wire profile
// (code point 0xFF00, the challenge layout, the stream framing) is this
// project's until the IETF assigns values; all draft-dependent constants are
// in draft.go.
package expat
