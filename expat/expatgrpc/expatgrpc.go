// Package expatgrpc carries gRPC over attested TLS (package expat):
// credentials.TransportCredentials for clients and servers, interceptors
// that authorize RPCs by a policy over the peer's verified attestation, and
// re-attestation of the peer at any time, including in the middle of a
// long-lived stream.
//
// # Design
//
// gRPC takes any net.Conn from its TransportCredentials, so the connection
// under gRPC's HTTP/2 is an *expat.Conn: expat's stream framing carries EA
// messages and gRPC's bytes on the same TLS stream, either side can
// re-attest the other at any moment without involving gRPC (Attest), and no
// gRPC byte flows before the attestation the local expat.Config requires has
// succeeded (the handshake of the credentials runs the whole setup, within
// expat.Config.SetupTimeout and the caller's deadline).
//
// The AuthInfo is exactly credentials.TLSInfo (its State is the TLS
// connection's, SecurityLevel PrivacyAndIntegrity), so interceptors that
// type-assert it, such as gRPC's own authz, keep working. The attestation
// travels in the peer's address instead: peer.Addr is an *Addr, which wraps
// the connection's remote address and gives the live attestation state;
// PeerAttestation and Attest find it from an RPC's context.
//
// The protocol is announced in ALPN as "expat-grpc/1" (ALPN): an ordinary
// gRPC client (which offers "h2") fails the TLS handshake with
// no_application_protocol, and a client of ours fails closed against an
// ordinary gRPC server for the same reason.
package expatgrpc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/expat/internal/carrier"
)

// ALPN is the protocol id of gRPC over expat's stream framing.
const ALPN = "expat-grpc/1"

// ErrUnsupported means the peer does not speak attested gRPC (it did not
// negotiate ALPN), or an RPC did not arrive over these credentials.
var ErrUnsupported = errors.New("expatgrpc: peer does not speak attested gRPC")

// Addr is the peer.Addr of an attested connection: the remote address,
// and the connection's attestation state.
type Addr struct {
	net.Addr
	conn *expat.Conn
}

// Conn returns the attested connection.
func (a *Addr) Conn() *expat.Conn { return a.conn }

// conn is the net.Conn handed to gRPC.
type conn struct {
	*expat.Conn
	addr *Addr
}

func (c *conn) RemoteAddr() net.Addr { return c.addr }

type creds struct {
	tlsCfg   *tls.Config
	cfg      *expat.Config
	isServer bool
}

// NewServerCredentials returns server credentials: tlsCfg (which must hold
// the server's certificate) is prepared with expat.ServerTLSConfig and
// speaks only ALPN; cfg is every connection's attestation policy (its
// Attester answers the clients' requests; with RequirePeerAttestation, no
// RPC is served before the client's attestation has been verified). A nil
// or zero cfg is refused.
func NewServerCredentials(tlsCfg *tls.Config, cfg *expat.Config) (credentials.TransportCredentials, error) {
	if tlsCfg == nil || (len(tlsCfg.Certificates) == 0 && tlsCfg.GetCertificate == nil) {
		return nil, errors.New("expatgrpc: server TLS config has no certificate")
	}
	if err := carrier.CheckConfig("expatgrpc", cfg, true); err != nil {
		return nil, err
	}
	c := expat.ServerTLSConfig(tlsCfg)
	c.NextProtos = []string{ALPN}
	return &creds{tlsCfg: c, cfg: cfg, isServer: true}, nil
}

// NewClientCredentials returns client credentials: tlsCfg is prepared with
// expat.ClientTLSConfig (its ServerName defaults to the dial target's
// host) and speaks only ALPN; cfg is every connection's attestation policy
// (with RequirePeerAttestation, gRPC gets the connection only once the
// server's attestation has been verified). A nil or zero cfg is refused.
func NewClientCredentials(tlsCfg *tls.Config, cfg *expat.Config) (credentials.TransportCredentials, error) {
	if err := carrier.CheckConfig("expatgrpc", cfg, false); err != nil {
		return nil, err
	}
	c := expat.ClientTLSConfig(tlsCfg)
	c.NextProtos = []string{ALPN}
	return &creds{tlsCfg: c, cfg: cfg}, nil
}

func (c *creds) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	cfg := c.tlsCfg
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(authority)
		if err != nil {
			host = authority
		}
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	return c.handshake(ctx, tls.Client(raw, cfg))
}

func (c *creds) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c.handshake(context.Background(), tls.Server(raw, c.tlsCfg))
}

// handshake runs the TLS handshake and the attestation setup within the
// setup timeout (and ctx).
func (c *creds) handshake(ctx context.Context, tc *tls.Conn) (net.Conn, credentials.AuthInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, carrier.SetupTimeout(c.cfg))
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		tc.Close()
		return nil, nil, err
	}
	cs := tc.ConnectionState()
	if cs.NegotiatedProtocol != ALPN {
		tc.Close()
		return nil, nil, fmt.Errorf("%w: ALPN %q", ErrUnsupported, cs.NegotiatedProtocol)
	}
	var ec *expat.Conn
	var err error
	if c.isServer {
		ec, err = expat.Server(tc, c.cfg)
	} else {
		ec, err = expat.Client(tc, c.cfg)
	}
	if err != nil {
		tc.Close()
		return nil, nil, err
	}
	if err := ec.Handshake(ctx); err != nil {
		ec.Close()
		return nil, nil, err
	}
	info := credentials.TLSInfo{State: cs, CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}
	return &conn{Conn: ec, addr: &Addr{Addr: tc.RemoteAddr(), conn: ec}}, info, nil
}

func (c *creds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls", ServerName: c.tlsCfg.ServerName}
}

func (c *creds) Clone() credentials.TransportCredentials {
	return &creds{tlsCfg: c.tlsCfg.Clone(), cfg: c.cfg, isServer: c.isServer}
}

// OverrideServerName sets the name the client verifies (deprecated in
// gRPC; kept for the interface).
func (c *creds) OverrideServerName(name string) error {
	c.tlsCfg = c.tlsCfg.Clone()
	c.tlsCfg.ServerName = name
	return nil
}

// peerConn returns the attested connection of the RPC whose context is ctx.
func peerConn(ctx context.Context) (*expat.Conn, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil, fmt.Errorf("%w: no peer in context", ErrUnsupported)
	}
	a, ok := p.Addr.(*Addr)
	if !ok {
		return nil, fmt.Errorf("%w: the RPC did not arrive over expatgrpc credentials", ErrUnsupported)
	}
	return a.conn, nil
}

// PeerAttestation returns the peer's latest verified attestation for the
// RPC whose context is ctx (a server handler's, or a client stream's
// Context()), or nil if there is none (not attested, the latest
// attestation failed, or not an attested connection).
func PeerAttestation(ctx context.Context) *expat.Attestation {
	c, err := peerConn(ctx)
	if err != nil {
		return nil
	}
	return c.PeerAttestation()
}

// Attest re-attests the peer of the RPC whose context is ctx, on its
// connection, now: in a server handler before a high-impact operation, or
// from either side during a long-lived stream. It fails as expat.Conn.Attest
// does (a failure closes the connection unless expat.Config.KeepOnFailure).
func Attest(ctx context.Context) (*expat.Attestation, error) {
	c, err := peerConn(ctx)
	if err != nil {
		return nil, err
	}
	return c.Attest(ctx)
}

// Policy authorizes one RPC (its full method name) by the peer's verified
// attestation; att is never nil. A non-nil error denies the RPC.
type Policy func(ctx context.Context, method string, att *expat.Attestation) error

// AnyAttestation accepts every RPC whose peer has a verified attestation:
// the Verifier's appraisal is the whole policy. It is a named opt-in.
func AnyAttestation(context.Context, string, *expat.Attestation) error { return nil }

// authorize applies p: Unauthenticated without an attestation,
// PermissionDenied when p (or a nil p) refuses.
func authorize(ctx context.Context, p Policy, method string) error {
	att := PeerAttestation(ctx)
	if att == nil {
		return status.Error(codes.Unauthenticated, "expatgrpc: peer not attested")
	}
	if p == nil {
		return status.Error(codes.PermissionDenied, "expatgrpc: no attestation policy")
	}
	if err := p(ctx, method, att); err != nil {
		return status.Errorf(codes.PermissionDenied, "expatgrpc: attestation policy: %v", err)
	}
	return nil
}

// UnaryServerInterceptor authorizes each unary RPC with p before its
// handler runs. A nil p denies every RPC.
func UnaryServerInterceptor(p Policy) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := authorize(ctx, p, info.FullMethod); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor authorizes each streaming RPC with p before its
// handler runs. A nil p denies every RPC.
func StreamServerInterceptor(p Policy) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := authorize(ss.Context(), p, info.FullMethod); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}
