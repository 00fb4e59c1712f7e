// Package expathttp carries attested TLS (package expat) under net/http:
// a server configuration (ConfigureServer, NewServer) that serves any
// http.Handler over attested connections, and a client http.RoundTripper
// (Transport) that attests the server on every new connection before the
// first request leaves. HTTP/2 and HTTP/1.1 are net/http's own; r.TLS and
// resp.TLS are set as usual; the peer's verified attestation is reachable
// from the request's context (PeerAttestation).
//
// # How EA messages travel next to HTTP (the design decision)
//
// After the TLS 1.3 handshake the connection belongs to net/http: the bare
// *tls.Conn, without expat's stream framing. Exported Authenticator
// messages travel in HTTP headers on that same connection, and are bound
// to it because every one of them is built and validated with that
// connection's own EA session (its TLS exporter; RFC 9261): an
// authenticator moved to another connection fails validation.
//
//   - Setup: the client's first request on each connection is a POST to
//     ExchangePath carrying its attestation request (Expat-Request); the
//     response carries the server's authenticator (Expat-Authenticator)
//     and, when the server requires client attestation, the server's
//     request, which the client answers in a second POST. Transport sends
//     nothing else on the connection until this has succeeded; the server
//     refuses (403, then closes the connection) every other request on a
//     connection whose required attestation has not succeeded, and closes
//     connections that do not complete it within expat.Config.SetupTimeout.
//   - Re-attestation of the server: another POST to ExchangePath on the
//     same connection (Transport.Attest, WithFreshAttestation).
//   - Re-attestation of the client, demanded by a handler (AttestPeer,
//     RequireFreshAttestation) before a high-impact operation: a 401
//     challenge (WWW-Authenticate: Expat, the server's request in
//     Expat-Request); Transport answers on the same connection and repeats
//     the request with its authenticator in Expat-Authenticator, which the
//     server verifies before the handler runs. Authorization stays free
//     for the application's own credentials.
//
// Why not expat's stream framing under HTTP: net/http sets r.TLS and turns
// HTTP/2 on only for a *tls.Conn, so a framed connection would lose both
// (or need a second HTTP/2 stack); framing every byte also costs a copy and
// a goroutine hop per read. Why HTTP rather than a framed setup exchange
// before handing the *tls.Conn over: net/http's server offers no hook
// between the TLS handshake and the first HTTP byte (a listener that runs
// the setup in Accept serializes it or needs its own queue), and the
// client's re-attestation and challenge answers need HTTP anyway; one
// carriage for all EA messages, at the cost of the setup being an HTTP
// round trip (the same one round trip as the framed setup).
//
// An ordinary TLS client gets a clear refusal: the attested variant is
// announced by the client offering the ALPN protocol id ALPN ("expat-http/1")
// beside "h2" and "http/1.1", and the server fails every handshake without
// it (no_application_protocol; a ClientHello without ALPN gets
// internal_error). ALPN is never selected, so that the negotiated protocol
// stays "h2" or "http/1.1" and net/http's own HTTP/2 runs unchanged.
// Transport, for its part, fails closed with ErrUnsupported against an
// ordinary HTTPS server.
//
// # Caveats
//
// expat.Config.Release holds as on an expat.Conn: Evidence goes only to
// the peers it names (the empty authenticator otherwise). A server cannot
// use ReleaseToAttested: it answers the client's first request before the
// client attests, so NewServer and ConfigureServer refuse it.
//
// The server re-attests a client only when a request needs it (a 401
// challenge): HTTP gives the server no way to speak first. A request that
// carries an authenticator is verified before any handler sees it; a
// failed verification closes the connection (unless
// expat.Config.KeepOnFailure), as does any malformed Expat-* header. The
// carriage is this project's until the IETF specifies one
// (draft-reddy-seat-expat-transport and HTTP/2 secondary certificate
// frames are candidates).
//
// Transport's connections come from net/http's Transport.NewClientConn. As
// of Go 1.26, net/http keeps such an HTTP/2 connection reachable after it
// is closed until 5 s have passed since it was opened or last carried a
// request (about 23 kB each: buffers, HPACK tables, the TLS state): a
// client that closes connections soon after use (CloseIdleConnections,
// failed attestations) at a high rate holds that much more heap, and its
// garbage collector marks it. Idle connections, closed after 90 s, are
// not affected.
package expathttp
