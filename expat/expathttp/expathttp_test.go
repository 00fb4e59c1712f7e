package expathttp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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

// serverConfig attests with srvKey; mutual also requires the client's
// attestation (and its TLS certificate, which the default PeerIdentity
// compares with the EA certificate).
func (k *kit) serverConfig(mutual bool) *expat.Config {
	return &expat.Config{
		Attester:                &testkit.Attester{Key: k.SrvKey},
		Certificate:             &k.SrvCert,
		RequirePeerAttestation:  mutual,
		PeerAttestationOnDemand: !mutual,
		Verifier:                trusting(k.CliKey),
	}
}

func (k *kit) clientConfig(attest bool) *expat.Config {
	cfg := &expat.Config{RequirePeerAttestation: true, Verifier: trusting(k.SrvKey)}
	if attest {
		cfg.Attester = &testkit.Attester{Key: k.CliKey}
		cfg.Certificate = &k.CliCert
	}
	return cfg
}

func (k *kit) serverTLS() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{k.SrvCert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    k.CA.Roots,
	}
}

func (k *kit) clientTLS(protos ...string) *tls.Config {
	return &tls.Config{
		RootCAs:      k.CA.Roots,
		ServerName:   expattest.ServerName,
		Certificates: []tls.Certificate{k.CliCert},
		NextProtos:   protos,
	}
}

// serve runs an attested server for h on loopback TCP and returns its
// https URL.
func serve(t testing.TB, h http.Handler, tlsCfg *tls.Config, cfg *expat.Config) string {
	t.Helper()
	srv, err := NewServer("", h, tlsCfg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.ErrorLog = log.New(io.Discard, "", 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.ServeTLS(ln, "", "")
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return "https://" + ln.Addr().String()
}

func newTransport(t testing.TB, tlsCfg *tls.Config, cfg *expat.Config) *Transport {
	t.Helper()
	tr, err := NewTransport(tlsCfg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// checkGoroutines fails if goroutines started during the test outlive it.
var checkGoroutines = carriertest.CheckGoroutines

func get(t testing.TB, c *http.Client, ctx context.Context, url string) (*http.Response, string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b), nil
}

// echo reports what the handler saw: protocol, TLS, the client's
// attestation.
func echo(calls *atomic.Int32) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != ExchangePath {
			calls.Add(1)
		}
		att := PeerAttestation(r.Context())
		seq := uint64(0)
		if att != nil {
			seq = att.Seq
		}
		fmt.Fprintf(w, "%s tls=%t alpn=%s client=%d", r.Proto, r.TLS != nil, r.TLS.NegotiatedProtocol, seq)
	})
}

// Server attestation (and mutual) over HTTP/2 and HTTP/1.1 with net/http's
// own client machinery: r.TLS set, the attestation on both sides.
func TestAttestedHTTP(t *testing.T) {
	for _, proto := range []string{"h2", "http/1.1"} {
		for _, mutual := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/mutual=%t", proto, mutual), func(t *testing.T) {
				checkGoroutines(t)
				k := newKit(t)
				var calls atomic.Int32
				url := serve(t, echo(&calls), k.serverTLS(), k.serverConfig(mutual))
				tr := newTransport(t, k.clientTLS(proto), k.clientConfig(mutual))
				c := &http.Client{Transport: tr}
				for i := range 3 {
					resp, body, err := get(t, c, context.Background(), url+"/x")
					if err != nil {
						t.Fatal(err)
					}
					wantProto := map[string]string{"h2": "HTTP/2.0", "http/1.1": "HTTP/1.1"}[proto]
					want := fmt.Sprintf("%s tls=true alpn=%s client=%d", wantProto, proto, map[bool]int{false: 0, true: 1}[mutual])
					if body != want {
						t.Fatalf("request %d: got %q, want %q", i, body, want)
					}
					if resp.TLS == nil || resp.TLS.NegotiatedProtocol != proto {
						t.Fatalf("resp.TLS = %+v", resp.TLS)
					}
					att := PeerAttestation(resp.Request.Context())
					if att == nil || att.Result.Technology != testkit.Technology || att.Seq != 1 {
						t.Fatalf("server attestation = %+v", att)
					}
				}
				if calls.Load() != 3 {
					t.Fatalf("%d handler calls", calls.Load())
				}
			})
		}
	}
}

// The client re-attests the server on the same connection: explicitly
// (Transport.Attest) and before a request (WithFreshAttestation).
// TestClosedConnReleased: a connection that CloseIdleConnections closed
// is unreachable at once, with its Endpoint and the server's verified
// attestation. net/http keeps a closed HTTP/2 ClientConn from
// Transport.NewClientConn reachable for up to 5 s after its last request;
// the Transport must not hang its own state on it (an attested
// connection's was retained with it: about 2.8 kB more per connection
// under churn, for the garbage collector to mark).
func TestClosedConnReleased(t *testing.T) {
	k := newKit(t)
	url := serve(t, okHandler, k.serverTLS(), k.serverConfig(false))
	tr := newTransport(t, k.clientTLS(), k.clientConfig(false))
	if _, body, err := get(t, &http.Client{Transport: tr}, context.Background(), url); err != nil || body != "ok" {
		t.Fatalf("GET: %q, %v", body, err)
	}
	released := make(chan struct{})
	func() {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		n := 0
		for _, hc := range tr.hosts {
			for _, c := range hc.conns {
				runtime.AddCleanup(c, func(ch chan struct{}) { close(ch) }, released)
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d pooled connections, want 1", n)
		}
	}()
	tr.CloseIdleConnections()
	deadline := time.After(2 * time.Second)
	for {
		runtime.GC()
		select {
		case <-released:
			return
		case <-deadline:
			t.Fatal("closed connection still reachable 2 s after CloseIdleConnections")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestReattestServer(t *testing.T) {
	checkGoroutines(t)
	k := newKit(t)
	var calls atomic.Int32
	url := serve(t, echo(&calls), k.serverTLS(), k.serverConfig(false))
	tr := newTransport(t, k.clientTLS(), k.clientConfig(false))
	c := &http.Client{Transport: tr}
	resp, _, err := get(t, c, context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	first := PeerAttestation(resp.Request.Context())
	att, err := tr.Attest(context.Background(), resp)
	if err != nil {
		t.Fatal(err)
	}
	if att.Seq != 2 || string(att.Context) == string(first.Context) {
		t.Fatalf("re-attestation: seq %d", att.Seq)
	}
	resp, _, err = get(t, c, WithFreshAttestation(context.Background()), url)
	if err != nil {
		t.Fatal(err)
	}
	if got := PeerAttestation(resp.Request.Context()); got == nil || got.Seq != 3 {
		t.Fatalf("fresh attestation = %+v", got)
	}
	if resp.TLS.TLSUnique == nil && resp.TLS.NegotiatedProtocol != "h2" {
		t.Fatal("not HTTP/2")
	}
}

// Client attestation per route: RequirePeerAttestation challenges once per
// connection, RequireFreshAttestation (AttestPeer) on every request, each
// answered by Transport on the same connection.
func TestClientAttestationPerRoute(t *testing.T) {
	for _, proto := range []string{"h2", "http/1.1"} {
		t.Run(proto, func(t *testing.T) { testClientAttestationPerRoute(t, proto) })
	}
}

func testClientAttestationPerRoute(t *testing.T, proto string) {
	checkGoroutines(t)
	k := newKit(t)
	var calls atomic.Int32
	mux := http.NewServeMux()
	mux.Handle("/open", echo(&calls))
	mux.Handle("/attested", RequirePeerAttestation(echo(&calls)))
	mux.Handle("/fresh", RequireFreshAttestation(echo(&calls)))
	mux.HandleFunc("/transfer", func(w http.ResponseWriter, r *http.Request) {
		att, err := AttestPeer(w, r)
		if err != nil {
			return
		}
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "moved %s after attestation %d", body, att.Seq)
	})
	url := serve(t, mux, k.serverTLS(), k.serverConfig(false))
	tr := newTransport(t, k.clientTLS(proto), k.clientConfig(true))
	c := &http.Client{Transport: tr}
	steps := []struct{ path, want string }{
		{"/open", "HTTP/2.0 tls=true alpn=h2 client=0"},
		{"/attested", "HTTP/2.0 tls=true alpn=h2 client=1"},
		{"/attested", "HTTP/2.0 tls=true alpn=h2 client=1"},
		{"/fresh", "HTTP/2.0 tls=true alpn=h2 client=2"},
		{"/fresh", "HTTP/2.0 tls=true alpn=h2 client=3"},
		{"/open", "HTTP/2.0 tls=true alpn=h2 client=3"},
	}
	for _, s := range steps {
		_, body, err := get(t, c, context.Background(), url+s.path)
		if err != nil {
			t.Fatal(err)
		}
		want := strings.ReplaceAll(s.want, "HTTP/2.0 tls=true alpn=h2", map[string]string{"h2": "HTTP/2.0 tls=true alpn=h2", "http/1.1": "HTTP/1.1 tls=true alpn=http/1.1"}[proto])
		if body != want {
			t.Fatalf("%s: got %q, want %q", s.path, body, want)
		}
	}
	// A POST whose body can be replayed (strings.Reader sets GetBody).
	resp, err := c.Post(url+"/transfer", "text/plain", strings.NewReader("100"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "moved 100 after attestation 4" {
		t.Fatalf("got %q", b)
	}
	// A client that cannot attest gets the 401 and the handler never runs.
	tr2 := newTransport(t, k.clientTLS(proto), k.clientConfig(false))
	before := calls.Load()
	resp, _, err = get(t, &http.Client{Transport: tr2}, context.Background(), url+"/fresh")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != AuthScheme || calls.Load() != before {
		t.Fatalf("status %d, handler calls %d", resp.StatusCode, calls.Load()-before)
	}
}

// wantAlert checks that err is the TLS alert a received from the server
// (crypto/tls reports it as a *net.OpError "remote error" around its
// unexported alert type, whose text is tls.AlertError's).
func wantAlert(t *testing.T, err error, a tls.AlertError) {
	t.Helper()
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "remote error" || oe.Err.Error() != a.Error() {
		t.Fatalf("got %v, want TLS alert %v", err, a)
	}
}

// An ordinary TLS client is refused at the handshake, with the stock
// crypto/tls client, net/http's client and curl.
func TestPlainClientRefused(t *testing.T) {
	k := newKit(t)
	var calls atomic.Int32
	url := serve(t, echo(&calls), k.serverTLS(), k.serverConfig(false))
	addr := strings.TrimPrefix(url, "https://")
	cfg := &tls.Config{RootCAs: k.CA.Roots, ServerName: expattest.ServerName, NextProtos: []string{"h2", "http/1.1"}}
	_, err := tls.Dial("tcp", addr, cfg)
	wantAlert(t, err, 120) // no_application_protocol
	cfg.NextProtos = nil
	_, err = tls.Dial("tcp", addr, cfg)
	wantAlert(t, err, 80) // no ALPN at all: internal_error
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg.Clone(), ForceAttemptHTTP2: true}}
	if _, _, err := get(t, hc, context.Background(), url); err == nil {
		t.Fatal("net/http client: accepted")
	}
	if calls.Load() != 0 {
		t.Fatal("handler ran for a plain client")
	}
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Log("no curl")
		return
	}
	out, err := exec.Command(curl, "-sS", "-k", "--max-time", "10", url).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 35 || !strings.Contains(strings.ToLower(string(out)), "no application protocol") {
		t.Fatalf("curl: %v: %s", err, out)
	}
}

// Against an ordinary HTTPS server Transport fails closed, before sending
// the caller's request.
func TestPlainServer(t *testing.T) {
	checkGoroutines(t)
	k := newKit(t)
	var calls atomic.Int32
	srv := httptest.NewUnstartedServer(echo(&calls))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{k.SrvCert}}
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	tr := newTransport(t, k.clientTLS(), k.clientConfig(false))
	_, _, err := get(t, &http.Client{Transport: tr}, context.Background(), srv.URL)
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("got %v, want ErrUnsupported", err)
	}
	if calls.Load() != 0 {
		t.Fatal("the request reached a server that did not attest")
	}
}

// A server that completes TLS and then never answers, or whose attester
// answers late: the request fails within the caller's deadline.
func TestServerSilentOrLate(t *testing.T) {
	checkGoroutines(t)
	k := newKit(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{k.SrvCert}, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }() // reads, never writes
		}
	}()
	cfg := k.clientConfig(false)
	cfg.SetupTimeout = 5 * time.Second
	tr := newTransport(t, k.clientTLS(), cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err = get(t, &http.Client{Transport: tr}, ctx, "https://"+ln.Addr().String())
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("silent server: %v after %v", err, time.Since(start))
	}

	// Late: the server's attester takes longer than the client waits.
	scfg := k.serverConfig(false)
	scfg.Attester = &testkit.Attester{Key: k.SrvKey, Delay: 3 * time.Second}
	url := serve(t, echo(new(atomic.Int32)), k.serverTLS(), scfg)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	start = time.Now()
	_, _, err = get(t, &http.Client{Transport: tr}, ctx2, url)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("late server: %v after %v", err, time.Since(start))
	}
	// The client's own SetupTimeout bounds a dial nobody waits for.
	cfg3 := k.clientConfig(false)
	cfg3.SetupTimeout = 200 * time.Millisecond
	tr3 := newTransport(t, k.clientTLS(), cfg3)
	start = time.Now()
	_, _, err = get(t, &http.Client{Transport: tr3}, context.Background(), url)
	var ee *expat.Error
	if !errors.As(err, &ee) || !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("setup timeout: %v after %v", err, time.Since(start))
	}
}

// The server's Evidence is not trusted: typed rejection, no request sent.
func TestServerRejected(t *testing.T) {
	checkGoroutines(t)
	k := newKit(t)
	var calls atomic.Int32
	url := serve(t, echo(&calls), k.serverTLS(), k.serverConfig(false))
	cfg := k.clientConfig(false)
	cfg.Verifier = trusting(k.CliKey) // not the server's key
	tr := newTransport(t, k.clientTLS(), cfg)
	_, _, err := get(t, &http.Client{Transport: tr}, context.Background(), url)
	if !errors.Is(err, verifier.ErrRejected) {
		t.Fatalf("got %v, want verifier.ErrRejected", err)
	}
	if calls.Load() != 0 {
		t.Fatal("request sent to a rejected server")
	}
}

// The server rejects the client's Evidence: the client gets the server's
// alert as a remote *expat.Error; the handler never runs.
func TestClientRejected(t *testing.T) {
	checkGoroutines(t)
	k := newKit(t)
	var calls atomic.Int32
	scfg := k.serverConfig(true)
	scfg.Verifier = trusting(k.SrvKey) // not the client's key
	url := serve(t, echo(&calls), k.serverTLS(), scfg)
	tr := newTransport(t, k.clientTLS(), k.clientConfig(true))
	_, _, err := get(t, &http.Client{Transport: tr}, context.Background(), url)
	var ee *expat.Error
	if !errors.As(err, &ee) || !ee.Remote || ee.Alert != 42 {
		t.Fatalf("got %v, want the server's bad_certificate", err)
	}
	// Without an attester the client refuses: access_denied.
	tr2 := newTransport(t, k.clientTLS(), k.clientConfig(false))
	_, _, err = get(t, &http.Client{Transport: tr2}, context.Background(), url)
	if !errors.As(err, &ee) || !ee.Remote || ee.Alert != 49 {
		t.Fatalf("got %v, want the server's access_denied", err)
	}
	if calls.Load() != 0 {
		t.Fatal("handler ran for an unattested client")
	}
}

// A client that speaks the attested ALPN but sends an application request
// before attesting is refused and its connection closed; a client that says
// nothing after the handshake is closed after the setup timeout.
func TestClientMisbehaves(t *testing.T) {
	checkGoroutines(t)
	k := newKit(t)
	var calls atomic.Int32
	scfg := k.serverConfig(true)
	scfg.SetupTimeout = 300 * time.Millisecond
	url := serve(t, echo(&calls), k.serverTLS(), scfg)
	for _, proto := range []string{"h2", "http/1.1"} {
		cfg := k.clientTLS(proto, ALPN)
		rt := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
		resp, _, err := get(t, &http.Client{Transport: rt}, context.Background(), url)
		rt.CloseIdleConnections()
		if err == nil && (resp.StatusCode != http.StatusForbidden || resp.Header.Get(HeaderAlert) != "49") {
			t.Fatalf("%s: status %d alert %q", proto, resp.StatusCode, resp.Header.Get(HeaderAlert))
		}
	}
	if calls.Load() != 0 {
		t.Fatal("handler ran before the client attested")
	}
	// Silent after the handshake.
	c, err := tls.Dial("tcp", strings.TrimPrefix(url, "https://"), k.clientTLS("h2", ALPN))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.Copy(io.Discard, c)
	if d := time.Since(start); errors.Is(err, os.ErrDeadlineExceeded) || d > 2*time.Second {
		t.Fatalf("silent client: %v after %v", err, d)
	}
}

// A malformed Expat-Authenticator closes the connection.
func TestMalformedHeader(t *testing.T) {
	k := newKit(t)
	var calls atomic.Int32
	url := serve(t, echo(&calls), k.serverTLS(), k.serverConfig(false))
	for _, v := range []string{"x", "AA.", ".AA", "AA.AA.AA", "A=.AA", strings.Repeat("A", 400) + ".AA"} {
		// A new connection each time: the first failure closes it.
		rt := &http.Transport{TLSClientConfig: k.clientTLS("h2", ALPN), ForceAttemptHTTP2: true}
		defer rt.CloseIdleConnections()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set(HeaderAuthenticator, v)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get(HeaderAlert) != "47" {
			t.Errorf("%q: status %d alert %q", v, resp.StatusCode, resp.Header.Get(HeaderAlert))
		}
	}
	if calls.Load() != 0 {
		t.Fatal("handler ran")
	}
}

func TestConfigRefused(t *testing.T) {
	k := newKit(t)
	for name, cfg := range map[string]*expat.Config{
		"nil":              nil,
		"zero":             {},
		"attester no cert": {Attester: &testkit.Attester{Key: k.SrvKey}},
		"require no verif": {RequirePeerAttestation: true, Attester: &testkit.Attester{Key: k.SrvKey}, Certificate: &k.SrvCert},
		"verifier only":    {Verifier: trusting(k.SrvKey)}, // neither required nor on demand
	} {
		if _, err := NewTransport(nil, cfg); err == nil {
			t.Errorf("%s: NewTransport accepted", name)
		}
		if _, err := NewServer("", nil, k.serverTLS(), cfg); err == nil {
			t.Errorf("%s: NewServer accepted", name)
		}
	}
	if _, err := NewServer("", nil, nil, k.serverConfig(false)); err == nil {
		t.Error("NewServer without TLS config accepted")
	}
	if _, err := NewTransport(&tls.Config{NextProtos: []string{"h3"}}, k.clientConfig(false)); err == nil {
		t.Error("NextProtos h3 accepted")
	}
}

// Config.Release holds over HTTP too: a server with ReleaseToAuthenticated
// gives a client without a verified TLS certificate the empty
// authenticator (and the client fails closed, the handler never runs), and
// answers one with a certificate; a client with ReleaseToAttested answers
// the server's request once the server has attested; a server with
// ReleaseToAttested is refused (it answers before the client attests).
func TestRelease(t *testing.T) {
	checkGoroutines(t)
	k := newKit(t)
	var calls atomic.Int32
	scfg := k.serverConfig(false)
	scfg.Release = expat.ReleaseToAuthenticated
	url := serve(t, echo(&calls), k.serverTLS(), scfg)

	noCert := k.clientTLS()
	noCert.Certificates = nil
	_, _, err := get(t, &http.Client{Transport: newTransport(t, noCert, k.clientConfig(false))}, context.Background(), url)
	if !errors.Is(err, expat.ErrPeerRefused) {
		t.Fatalf("client without a certificate: got %v, want expat.ErrPeerRefused", err)
	}
	if calls.Load() != 0 {
		t.Fatal("handler ran although the server released no Evidence")
	}
	if _, body, err := get(t, &http.Client{Transport: newTransport(t, k.clientTLS(), k.clientConfig(false))}, context.Background(), url); err != nil || calls.Load() != 1 {
		t.Fatalf("client with a certificate: %q, %v", body, err)
	}

	mcfg := k.serverConfig(true)
	murl := serve(t, echo(&calls), k.serverTLS(), mcfg)
	ccfg := k.clientConfig(true)
	ccfg.Release = expat.ReleaseToAttested
	_, body, err := get(t, &http.Client{Transport: newTransport(t, k.clientTLS(), ccfg)}, context.Background(), murl)
	if err != nil || !strings.Contains(body, "client=1") {
		t.Fatalf("mutual with a ReleaseToAttested client: %q, %v", body, err)
	}

	mcfg2 := k.serverConfig(true)
	mcfg2.Release = expat.ReleaseToAttested
	if _, err := NewServer("", nil, k.serverTLS(), mcfg2); err == nil {
		t.Fatal("NewServer accepted ReleaseToAttested")
	}
}
