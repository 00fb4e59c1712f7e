package expatgrpc

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/expat/expattest"
	"github.com/attested-tls/go-expat/expat/expattest/testkit"
	"github.com/attested-tls/go-expat/expat/internal/carriertest"
	"github.com/attested-tls/go-expat/verifier"
)

// kit is one test's identities (carriertest.Kit).
type kit struct{ *carriertest.Kit }

func newKit(t testing.TB) *kit { return &kit{carriertest.NewKit(t)} }

var trusting = carriertest.Trusting

func (k *kit) serverCreds(t testing.TB, mutual bool, mod func(*expat.Config)) credentials.TransportCredentials {
	t.Helper()
	cfg := &expat.Config{Attester: &testkit.Attester{Key: k.SrvKey}, Certificate: &k.SrvCert, RequirePeerAttestation: mutual,
		PeerAttestationOnDemand: !mutual, Verifier: trusting(k.CliKey)}
	if mod != nil {
		mod(cfg)
	}
	c, err := NewServerCredentials(&tls.Config{Certificates: []tls.Certificate{k.SrvCert}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: k.CA.Roots}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (k *kit) clientCreds(t testing.TB, attest bool, mod func(*expat.Config)) credentials.TransportCredentials {
	t.Helper()
	cfg := &expat.Config{RequirePeerAttestation: true, Verifier: trusting(k.SrvKey)}
	if attest {
		cfg.Attester, cfg.Certificate = &testkit.Attester{Key: k.CliKey}, &k.CliCert
	}
	if mod != nil {
		mod(cfg)
	}
	c, err := NewClientCredentials(&tls.Config{RootCAs: k.CA.Roots, ServerName: expattest.ServerName, Certificates: []tls.Certificate{k.CliCert}}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// health answers Check with the client's attestation sequence number in
// the status (SERVING = attested once) and, in Watch, re-attests the client
// mid-stream.
type health struct {
	grpc_health_v1.UnimplementedHealthServer
	t *testing.T
}

func (h *health) Check(ctx context.Context, _ *grpc_health_v1.HealthCheckRequest) (*grpc_health_v1.HealthCheckResponse, error) {
	p, _ := peer.FromContext(ctx)
	if _, ok := p.AuthInfo.(credentials.TLSInfo); !ok {
		return nil, status.Error(codes.Internal, "AuthInfo is not credentials.TLSInfo")
	}
	if err := credentials.CheckSecurityLevel(p.AuthInfo, credentials.PrivacyAndIntegrity); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &grpc_health_v1.HealthCheckResponse{Status: grpc_health_v1.HealthCheckResponse_SERVING}, nil
}

func (h *health) Watch(_ *grpc_health_v1.HealthCheckRequest, ss grpc_health_v1.Health_WatchServer) error {
	send := func(s grpc_health_v1.HealthCheckResponse_ServingStatus) error {
		return ss.Send(&grpc_health_v1.HealthCheckResponse{Status: s})
	}
	if err := send(grpc_health_v1.HealthCheckResponse_SERVING); err != nil {
		return err
	}
	// Mid-stream: the server re-attests the client on the same connection.
	att, err := Attest(ss.Context())
	if err != nil {
		return status.Error(codes.PermissionDenied, err.Error())
	}
	if att.Seq != 2 {
		return status.Errorf(codes.Internal, "client attestation #%d", att.Seq)
	}
	if err := send(grpc_health_v1.HealthCheckResponse_NOT_SERVING); err != nil {
		return err
	}
	<-ss.Context().Done()
	return nil
}

// serve runs a gRPC server with creds and the interceptors of policy.
func serve(t testing.TB, creds credentials.TransportCredentials, policy Policy) string {
	t.Helper()
	return serveWith(t, creds, grpc.UnaryInterceptor(UnaryServerInterceptor(policy)), grpc.StreamInterceptor(StreamServerInterceptor(policy)))
}

func serveWith(t testing.TB, creds credentials.TransportCredentials, opts ...grpc.ServerOption) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(append(opts, grpc.Creds(creds))...)
	grpc_health_v1.RegisterHealthServer(s, &health{})
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(ln) }()
	t.Cleanup(func() { s.Stop(); <-done })
	return ln.Addr().String()
}

func dial(t testing.TB, addr string, creds credentials.TransportCredentials) grpc_health_v1.HealthClient {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return grpc_health_v1.NewHealthClient(cc)
}

var checkGoroutines = carriertest.CheckGoroutines

func testkitOnly(_ context.Context, _ string, att *expat.Attestation) error {
	if att.Result.Technology != testkit.Technology {
		return errors.New("not the test kit")
	}
	return nil
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Mutual attestation: unary and streaming RPCs authorized by the policy;
// the AuthInfo is credentials.TLSInfo; both sides see the attestation; the
// server re-attests the client mid-stream and the client the server.
func TestMutual(t *testing.T) {
	checkGoroutines(t)
	k := newKit(t)
	addr := serve(t, k.serverCreds(t, true, nil), testkitOnly)
	hc := dial(t, addr, k.clientCreds(t, true, nil))
	ctx := ctxT(t)
	var p peer.Peer
	resp, err := hc.Check(ctx, &grpc_health_v1.HealthCheckRequest{}, grpc.Peer(&p))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != grpc_health_v1.HealthCheckResponse_SERVING {
		t.Fatal(resp.Status)
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 || info.State.NegotiatedProtocol != ALPN {
		t.Fatalf("client AuthInfo = %#v", p.AuthInfo)
	}
	a, ok := p.Addr.(*Addr)
	if !ok || a.Conn().PeerAttestation() == nil || a.Conn().PeerAttestation().Seq != 1 {
		t.Fatalf("client peer.Addr = %#v", p.Addr)
	}

	st, err := hc.Watch(ctx, &grpc_health_v1.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.Recv()
	if err != nil || m.Status != grpc_health_v1.HealthCheckResponse_SERVING {
		t.Fatal(m, err)
	}
	att, err := Attest(st.Context()) // the client re-attests the server mid-stream
	if err != nil {
		t.Fatal(err)
	}
	if att.Seq != 2 || PeerAttestation(st.Context()).Seq != 2 {
		t.Fatalf("server attestation #%d", att.Seq)
	}
	m, err = st.Recv() // sent after the server re-attested us
	if err != nil || m.Status != grpc_health_v1.HealthCheckResponse_NOT_SERVING {
		t.Fatal(m, err)
	}
}

// Server attestation only: the server's policy interceptors refuse RPCs
// from an unattested client (Unauthenticated) or one the policy rejects
// (PermissionDenied); a nil policy denies.
func TestPolicy(t *testing.T) {
	checkGoroutines(t)
	k := newKit(t)
	ctx := ctxT(t)
	addr := serve(t, k.serverCreds(t, false, nil), testkitOnly)
	_, err := dial(t, addr, k.clientCreds(t, false, nil)).Check(ctx, &grpc_health_v1.HealthCheckRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("unattested client: %v", err)
	}
	deny := func(context.Context, string, *expat.Attestation) error { return errors.New("measurement not approved") }
	for name, p := range map[string]Policy{"deny": deny, "nil": nil} {
		addr := serve(t, k.serverCreds(t, true, nil), p)
		hc := dial(t, addr, k.clientCreds(t, true, nil))
		if _, err := hc.Check(ctx, &grpc_health_v1.HealthCheckRequest{}); status.Code(err) != codes.PermissionDenied {
			t.Fatalf("%s unary: %v", name, err)
		}
		st, err := hc.Watch(ctx, &grpc_health_v1.HealthCheckRequest{})
		if err == nil {
			_, err = st.Recv()
		}
		if status.Code(err) != codes.PermissionDenied {
			t.Fatalf("%s stream: %v", name, err)
		}
	}
	addr = serve(t, k.serverCreds(t, true, nil), AnyAttestation)
	if _, err := dial(t, addr, k.clientCreds(t, true, nil)).Check(ctx, &grpc_health_v1.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
}

// rawConnect runs the client credentials' handshake against addr.
func rawConnect(ctx context.Context, c credentials.TransportCredentials, addr string) error {
	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	conn, _, err := c.ClientHandshake(ctx, addr, raw)
	if err != nil {
		raw.Close()
		return err
	}
	return conn.Close()
}

// Misbehaving peers fail closed, within the caller's deadline: a plain gRPC
// client and server (ALPN), a server that never answers or answers late,
// an untrusted server, a rejected client.
func TestMisbehavingPeers(t *testing.T) {
	checkGoroutines(t)
	k := newKit(t)
	ctx := ctxT(t)
	addr := serve(t, k.serverCreds(t, true, nil), AnyAttestation)

	// A plain gRPC client (credentials.NewTLS offers h2): no_application_protocol.
	plain := credentials.NewTLS(&tls.Config{RootCAs: k.CA.Roots, ServerName: expattest.ServerName})
	_, err := dial(t, addr, plain).Check(ctx, &grpc_health_v1.HealthCheckRequest{})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("plain client: %v", err)
	}
	_, err = tls.Dial("tcp", addr, &tls.Config{RootCAs: k.CA.Roots, ServerName: expattest.ServerName, NextProtos: []string{"h2"}})
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "remote error" || oe.Err.Error() != tls.AlertError(120).Error() {
		t.Fatalf("plain TLS client: %v", err)
	}

	// Our client against a plain gRPC TLS server: refused at ALPN.
	pln, _ := net.Listen("tcp", "127.0.0.1:0")
	ps := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{k.SrvCert}})))
	grpc_health_v1.RegisterHealthServer(ps, &health{})
	go ps.Serve(pln)
	defer ps.Stop()
	if err := rawConnect(ctx, k.clientCreds(t, true, nil), pln.Addr().String()); !errors.As(err, &oe) || oe.Err.Error() != tls.AlertError(120).Error() {
		t.Fatalf("plain server: %v", err)
	}

	// A server that completes TLS with our ALPN and then says nothing.
	sln, _ := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{k.SrvCert}, NextProtos: []string{ALPN}})
	defer sln.Close()
	go func() {
		for {
			c, err := sln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := rawConnect(short, k.clientCreds(t, true, nil), sln.Addr().String()); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("silent server: %v after %v", err, time.Since(start))
	}
	// And through grpc: the RPC fails within its deadline.
	short2, cancel2 := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel2()
	start = time.Now()
	if _, err := dial(t, sln.Addr().String(), k.clientCreds(t, true, nil)).Check(short2, &grpc_health_v1.HealthCheckRequest{}); err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("silent server RPC: %v after %v", err, time.Since(start))
	}

	// A server whose attester answers late.
	late := serve(t, k.serverCreds(t, false, func(c *expat.Config) { c.Attester = &testkit.Attester{Key: k.SrvKey, Delay: 3 * time.Second} }), AnyAttestation)
	short3, cancel3 := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel3()
	start = time.Now()
	if err := rawConnect(short3, k.clientCreds(t, false, nil), late); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("late server: %v after %v", err, time.Since(start))
	}

	// An untrusted server: rejected.
	if err := rawConnect(ctx, k.clientCreds(t, true, func(c *expat.Config) { c.Verifier = trusting(k.CliKey) }), addr); !errors.Is(err, verifier.ErrRejected) {
		t.Fatalf("untrusted server: %v", err)
	}
	// A client the server rejects: the server's alert, as a remote error.
	rej := serve(t, k.serverCreds(t, true, func(c *expat.Config) { c.Verifier = trusting(k.SrvKey) }), AnyAttestation)
	// Mutual setup is pipelined: the client may learn it was rejected
	// from the handshake or from its first read.
	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", rej)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	conn, _, err := k.clientCreds(t, true, nil).ClientHandshake(ctx, rej, raw)
	if err == nil {
		defer conn.Close()
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Read(make([]byte, 1))
	}
	var ee *expat.Error
	if !errors.As(err, &ee) || !ee.Remote || ee.Alert != 42 {
		t.Fatalf("rejected client: %v", err)
	}
}

// A client that sends gRPC bytes before attesting is cut off: a raw TLS
// client with our ALPN that writes an HTTP/2 preface instead of SETUP.
func TestClientSendsDataFirst(t *testing.T) {
	checkGoroutines(t)
	k := newKit(t)
	addr := serve(t, k.serverCreds(t, true, nil), AnyAttestation)
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: k.CA.Roots, ServerName: expattest.ServerName, NextProtos: []string{ALPN}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	b, _ := io.ReadAll(c)
	if time.Since(start) > 2*time.Second {
		t.Fatal("connection not closed")
	}
	// Only expat frames came back (SETUP, CLOSE with unexpected_message),
	// never HTTP/2.
	var types []byte
	for len(b) >= 4 {
		n := int(b[1])<<16 | int(b[2])<<8 | int(b[3])
		if len(b) < 4+n {
			break
		}
		types = append(types, b[0])
		if b[0] == 0x05 && (n != 1 || b[4] != 10) {
			t.Fatalf("CLOSE % x", b[:4+n])
		}
		b = b[4+n:]
	}
	if len(b) != 0 || len(types) == 0 || types[len(types)-1] != 0x05 || bytes.ContainsFunc(types, func(r rune) bool { return r != 0x01 && r != 0x05 }) {
		t.Fatalf("frames %x, rest % x", types, b)
	}
}

func TestConfigRefused(t *testing.T) {
	k := newKit(t)
	if _, err := NewClientCredentials(nil, &expat.Config{}); err == nil {
		t.Error("zero client Config accepted")
	}
	if _, err := NewServerCredentials(&tls.Config{Certificates: []tls.Certificate{k.SrvCert}}, nil); err == nil {
		t.Error("nil server Config accepted")
	}
	if _, err := NewServerCredentials(nil, &expat.Config{Attester: &testkit.Attester{Key: k.SrvKey}, Certificate: &k.SrvCert}); err == nil {
		t.Error("server without certificate accepted")
	}
}

// A client that connects and says nothing (no TLS ClientHello, or TLS and
// then no SETUP) is dropped after the setup timeout; other clients are
// served meanwhile.
func TestSilentClient(t *testing.T) {
	checkGoroutines(t)
	k := newKit(t)
	addr := serve(t, k.serverCreds(t, true, func(c *expat.Config) { c.SetupTimeout = 300 * time.Millisecond }), AnyAttestation)
	silent := func(c net.Conn) {
		defer c.Close()
		start := time.Now()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := io.Copy(io.Discard, c)
		if errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) > 2*time.Second {
			t.Errorf("silent client kept for %v: %v", time.Since(start), err)
		}
	}
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	rawDone := make(chan struct{})
	go func() { defer close(rawDone); silent(raw) }()
	tc, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: k.CA.Roots, ServerName: expattest.ServerName, NextProtos: []string{ALPN}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dial(t, addr, k.clientCreds(t, true, nil)).Check(ctxT(t), &grpc_health_v1.HealthCheckRequest{}); err != nil {
		t.Fatalf("a good client waited behind silent ones: %v", err)
	}
	silent(tc)
	<-rawDone
}
