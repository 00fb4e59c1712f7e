// Package expatquic carries attested TLS (package expat) over QUIC
// (github.com/quic-go/quic-go): Dial and Listen return connections whose
// required attestation has succeeded before any application stream is
// opened or accepted, and either side re-attests the other at any time
// (Conn.Attest).
//
// EA messages travel on a dedicated control stream, the first
// bidirectional stream the client opens, in the frames of frame.go; the
// exporter is the QUIC connection's TLS exporter (RFC 9001 uses TLS 1.3, so
// RFC 9261 applies unchanged). A peer that opens an application stream
// before we said READY, sends a malformed frame, or fails attestation
// closes the connection with the application error code ErrorCodeBase +
// the TLS alert; the other side reports it as a remote *expat.Error. 0-RTT
// and datagrams are disabled (they would carry data before attestation),
// and resumed sessions are refused (expat.ErrResumed).
//
// Attestations follow expat.Conn's exchange model (the same code,
// expat/internal/exchange): one request of ours outstanding at a time
// (concurrent Attest calls queue), Seq in commit order, an answer or a
// verification that completes after its caller gave up dropped, never
// committed; an attestation ends at its ValidUntil
// (expat.Config.MaxAttestationAge, the Result's Expires: the connection
// closes with certificate_expired, or with KeepOnFailure stays open
// without new streams), and expat.Config.ReattestBefore / ReattestEvery
// re-attest on their own; expat.Config.Release decides when our Evidence
// goes to the peer (expat.Endpoint.ReleaseGate). Streams already open are not interrupted by a
// failed re-attestation under KeepOnFailure.
//
// Attested connections announce themselves in ALPN: every application
// protocol is prefixed with ALPNPrefix, so an ordinary QUIC peer fails the
// handshake with no_application_protocol.
package expatquic
