package expatquic

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/expat/expattest"
	"github.com/attested-tls/go-expat/expat/expattest/testkit"
	"github.com/attested-tls/go-expat/expat/internal/carriertest"
	"github.com/attested-tls/go-expat/verifier"
)

const proto = "test/1"

// kit is one test's identities (carriertest.Kit).
type kit struct{ *carriertest.Kit }

func newKit(t testing.TB) *kit { return &kit{carriertest.NewKit(t)} }

var trusting = carriertest.Trusting

func (k *kit) serverTLS() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{k.SrvCert}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: k.CA.Roots, NextProtos: []string{proto}}
}

func (k *kit) clientTLS() *tls.Config {
	return &tls.Config{RootCAs: k.CA.Roots, ServerName: expattest.ServerName, Certificates: []tls.Certificate{k.CliCert}, NextProtos: []string{proto}}
}

func (k *kit) serverConfig(mutual bool) *expat.Config {
	return &expat.Config{Attester: &testkit.Attester{Key: k.SrvKey}, Certificate: &k.SrvCert,
		RequirePeerAttestation: mutual, PeerAttestationOnDemand: !mutual, Verifier: trusting(k.CliKey), SetupTimeout: 2 * time.Second}
}

func (k *kit) clientConfig(attest bool) *expat.Config {
	cfg := &expat.Config{RequirePeerAttestation: true, Verifier: trusting(k.SrvKey), SetupTimeout: 2 * time.Second}
	if attest {
		cfg.Attester, cfg.Certificate = &testkit.Attester{Key: k.CliKey}, &k.CliCert
	}
	return cfg
}

func listen(t testing.TB, k *kit, cfg *expat.Config) *Listener {
	t.Helper()
	l, err := Listen("127.0.0.1:0", k.serverTLS(), nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var checkGoroutines = carriertest.CheckGoroutines

// Server attestation and mutual attestation over UDP loopback: streams in
// both directions once attested, re-attestation from either side.
func TestAttestedQUIC(t *testing.T) {
	for _, mutual := range []bool{false, true} {
		t.Run(map[bool]string{false: "server", true: "mutual"}[mutual], func(t *testing.T) {
			checkGoroutines(t)
			k := newKit(t)
			ctx := ctxT(t)
			l := listen(t, k, k.serverConfig(mutual))
			accepted := make(chan *Conn, 1)
			go func() {
				s, err := l.Accept(ctx)
				if err != nil {
					t.Error(err)
					close(accepted)
					return
				}
				accepted <- s
			}()
			c, err := Dial(ctx, l.Addr().String(), k.clientTLS(), nil, k.clientConfig(mutual))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			s := <-accepted
			if s == nil {
				t.FailNow()
			}
			defer s.Close()
			if a := c.PeerAttestation(); a == nil || a.Seq != 1 || a.Result.Technology != testkit.Technology {
				t.Fatalf("client's view of the server: %+v", a)
			}
			if a := s.PeerAttestation(); (a != nil) != mutual {
				t.Fatalf("server's view of the client: %+v", a)
			}
			if c.ApplicationProtocol() != proto || c.ConnectionState().TLS.NegotiatedProtocol != ALPNPrefix+proto {
				t.Fatal(c.ConnectionState().TLS.NegotiatedProtocol)
			}
			// Client opens, server echoes.
			st, err := c.OpenStreamSync(ctx)
			if err != nil {
				t.Fatal(err)
			}
			st.Write([]byte("ping"))
			st.Close()
			ss, err := s.AcceptStream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(ss)
			ss.Write(bytes.ToUpper(b))
			ss.Close()
			if b, _ := io.ReadAll(st); string(b) != "PING" {
				t.Fatalf("got %q", b)
			}
			// Server opens a unidirectional stream.
			us, err := s.OpenUniStreamSync(ctx)
			if err != nil {
				t.Fatal(err)
			}
			us.Write([]byte("hi"))
			us.Close()
			ur, err := c.AcceptUniStream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := io.ReadAll(ur); string(b) != "hi" {
				t.Fatalf("got %q", b)
			}
			// Re-attestation, both ways when mutual.
			a, err := c.Attest(ctx)
			if err != nil || a.Seq != 2 {
				t.Fatalf("client re-attests server: %v %+v", err, a)
			}
			if mutual {
				a, err := s.Attest(ctx)
				if err != nil || a.Seq != 2 {
					t.Fatalf("server re-attests client: %v %+v", err, a)
				}
			}
		})
	}
}

// wantCode checks that err is the QUIC connection closed by the peer with
// our code for alert.
func wantCode(t *testing.T, err error, alert tls.AlertError) {
	t.Helper()
	var ae *quic.ApplicationError
	var ee *expat.Error
	switch {
	case errors.As(err, &ee) && ee.Remote && ee.Alert == alert:
	case errors.As(err, &ae) && ae.Remote && ae.ErrorCode == ErrorCodeBase+quic.ApplicationErrorCode(alert):
	default:
		t.Fatalf("got %v, want the peer's close with alert %d", err, alert)
	}
}

// Plain QUIC peers fail at ALPN in both directions.
func TestPlainPeers(t *testing.T) {
	checkGoroutines(t)
	k := newKit(t)
	ctx := ctxT(t)
	l := listen(t, k, k.serverConfig(false))
	_, err := quic.DialAddr(ctx, l.Addr().String(), k.clientTLS(), nil)
	var te *quic.TransportError
	if !errors.As(err, &te) || te.ErrorCode != quic.TransportErrorCode(0x100+120) {
		t.Fatalf("plain client: %v", err)
	}
	pl, err := quic.ListenAddr("127.0.0.1:0", k.serverTLS(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	_, err = Dial(ctx, pl.Addr().String(), k.clientTLS(), nil, k.clientConfig(false))
	if !errors.As(err, &te) || te.ErrorCode != quic.TransportErrorCode(0x100+120) {
		t.Fatalf("plain server: %v", err)
	}
}

// rawClient is a QUIC client with our ALPN that follows no protocol.
func rawClient(t *testing.T, ctx context.Context, k *kit, addr string) *quic.Conn {
	t.Helper()
	cfg := expat.ClientTLSConfig(k.clientTLS())
	cfg.NextProtos = []string{ALPNPrefix + proto}
	qc, err := quic.DialAddr(ctx, addr, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { qc.CloseWithError(0, "") })
	return qc
}

// A client that opens an application stream before its required
// attestation, one that writes garbage on the control stream, and one that
// stays silent: each is closed, within the setup timeout, with our code.
func TestMisbehavingClients(t *testing.T) {
	checkGoroutines(t)
	k := newKit(t)
	ctx := ctxT(t)
	cfg := k.serverConfig(true)
	cfg.SetupTimeout = 300 * time.Millisecond
	l := listen(t, k, cfg)

	// Application data before attesting.
	qc := rawClient(t, ctx, k, l.Addr().String())
	ctrl, _ := qc.OpenStreamSync(ctx)
	ctrl.Write(appendFrame(nil, frameSetup, []byte{frameVersion}))
	app, _ := qc.OpenStreamSync(ctx)
	app.Write([]byte("secret"))
	<-qc.Context().Done()
	wantCode(t, context.Cause(qc.Context()), alertUnexpectedMessage)

	// Garbage on the control stream.
	qc = rawClient(t, ctx, k, l.Addr().String())
	ctrl, _ = qc.OpenStreamSync(ctx)
	ctrl.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	<-qc.Context().Done()
	wantCode(t, context.Cause(qc.Context()), alertUnexpectedMessage)

	// Silent after the handshake.
	qc = rawClient(t, ctx, k, l.Addr().String())
	start := time.Now()
	select {
	case <-qc.Context().Done():
	case <-time.After(3 * time.Second):
		t.Fatal("silent client not closed")
	}
	wantCode(t, context.Cause(qc.Context()), alertInternalError)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("closed after %v", d)
	}
}

// A server that says nothing, or whose attester answers late: Dial fails
// within the caller's deadline. Untrusted and rejected peers: typed errors.
func TestMisbehavingServers(t *testing.T) {
	checkGoroutines(t)
	k := newKit(t)
	ctx := ctxT(t)
	tc := expat.ServerTLSConfig(k.serverTLS())
	tc.NextProtos = []string{ALPNPrefix + proto}
	sl, err := quic.ListenAddr("127.0.0.1:0", tc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	go func() {
		for {
			if _, err := sl.Accept(context.Background()); err != nil {
				return
			}
		}
	}()
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := Dial(short, sl.Addr().String(), k.clientTLS(), nil, k.clientConfig(false)); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("silent server: %v after %v", err, time.Since(start))
	}

	scfg := k.serverConfig(false)
	scfg.Attester = &testkit.Attester{Key: k.SrvKey, Delay: 3 * time.Second}
	late := listen(t, k, scfg)
	short2, cancel2 := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel2()
	start = time.Now()
	if _, err := Dial(short2, late.Addr().String(), k.clientTLS(), nil, k.clientConfig(false)); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("late server: %v after %v", err, time.Since(start))
	}

	l := listen(t, k, k.serverConfig(true))
	ccfg := k.clientConfig(true)
	ccfg.Verifier = trusting(k.CliKey)
	if _, err := Dial(ctx, l.Addr().String(), k.clientTLS(), nil, ccfg); !errors.Is(err, verifier.ErrRejected) {
		t.Fatalf("untrusted server: %v", err)
	}
	rcfg := k.serverConfig(true)
	rcfg.Verifier = trusting(k.SrvKey)
	rl := listen(t, k, rcfg)
	_, err = Dial(ctx, rl.Addr().String(), k.clientTLS(), nil, k.clientConfig(true))
	wantCode(t, err, 42)
}

func TestConfigRefused(t *testing.T) {
	k := newKit(t)
	if _, err := Dial(context.Background(), "127.0.0.1:1", k.clientTLS(), nil, &expat.Config{}); err == nil {
		t.Error("zero Config accepted")
	}
	noProto := k.clientTLS()
	noProto.NextProtos = nil
	if _, err := Dial(context.Background(), "127.0.0.1:1", noProto, nil, k.clientConfig(false)); err == nil {
		t.Error("no ALPN accepted")
	}
	if _, err := Listen("127.0.0.1:0", &tls.Config{NextProtos: []string{proto}}, nil, k.serverConfig(false)); err == nil {
		t.Error("no certificate accepted")
	}
}

// FuzzReadFrame: no panic, bounded payloads, nothing on error, and what
// parses re-encodes to the same bytes.
func FuzzReadFrame(f *testing.F) {
	f.Add(appendFrame(nil, frameSetup, []byte{frameVersion}))
	f.Add(appendFrame(nil, frameReady, []byte{0}))
	f.Add(appendFrame(nil, frameAuthenticator, []byte{1, 7, 20, 0, 0, 1, 0}))
	f.Add([]byte{0x03, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		typ, p, err := readFrame(r, 1024)
		if err != nil {
			if p != nil {
				t.Fatal("payload on error")
			}
			return
		}
		if len(p) > maxRequestPayload {
			t.Fatalf("%d-byte payload", len(p))
		}
		used := len(b) - r.Len()
		if !bytes.Equal(appendFrame(nil, typ, p), b[:used]) {
			t.Fatal("does not re-encode")
		}
	})
}
