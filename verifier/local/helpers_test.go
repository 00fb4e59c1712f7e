package local_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/expat/expattest/testkit"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/ear"
	"github.com/attested-tls/go-expat/verifier/local"
	"github.com/attested-tls/go-expat/verifier/veraison"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a local Verifier service trusting one TEST-ONLY test-kit attester
// key, served on loopback by httptest, and a veraison.Client of it.
type env struct {
	svc      *local.Service
	srv      *httptest.Server
	clk      *clock
	att      *testkit.Attester // trusted by the service's test-kit verifier
	earKey   *ecdsa.PrivateKey
	client   *veraison.Client
	dispatch *verifier.Dispatch
}

type envOpt func(*local.Config, *verifier.Dispatch)

func newEnv(t testing.TB, opts ...envOpt) *env {
	t.Helper()
	ak, err := testkit.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	d := &verifier.Dispatch{Verifiers: map[string]verifier.Verifier{
		cmw.MediaTypeTestKit: &testkit.Verifier{TrustedKeys: []*ecdsa.PublicKey{&ak.PublicKey}},
	}}
	cfg := local.Config{
		Appraiser: d,
		Issuer:    &ear.Issuer{Key: ek, Name: "local-test", KeyID: "local-test-key"},
		Time:      clk.Now,
	}
	for _, o := range opts {
		o(&cfg, d)
	}
	svc, err := local.NewService(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc)
	t.Cleanup(srv.Close)
	c, err := veraison.New(&veraison.Config{URL: srv.URL, EARKeys: []ear.TrustedKey{{Key: &ek.PublicKey}}, RetryBase: time.Millisecond, Time: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return &env{svc: svc, srv: srv, clk: clk, att: &testkit.Attester{Key: ak, Time: clk.Now}, earKey: ek, client: c, dispatch: d}
}

// challenge returns a fresh, well-formed SHA-256 challenge.
func challenge(t testing.TB) attester.Challenge {
	t.Helper()
	b := make([]byte, 64)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return attester.Challenge{Hash: crypto.SHA256, Binding: b[:32], AIKPubHash: b[32:]}
}

func rd64(t testing.TB, ch attester.Challenge) []byte {
	t.Helper()
	rd, err := ch.ReportData64()
	if err != nil {
		t.Fatal(err)
	}
	return rd[:]
}

// earVerifier checks the service's EARs (passport model).
func (e *env) earVerifier() *ear.Verifier {
	v, err := ear.New(&ear.Config{Keys: []ear.TrustedKey{{ID: "local-test-key", Key: &e.earKey.PublicKey}}, Issuer: "local-test", Time: e.clk.Now})
	if err != nil {
		panic(err) // the configuration is this file's own
	}
	return v
}

// do sends one raw request to the service.
func (e *env) do(t testing.TB, method, path string, hdr map[string]string, body []byte) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

type sessionDoc struct {
	Status string   `json:"status"`
	Nonce  []byte   `json:"nonce"`
	Expiry string   `json:"expiry"`
	Accept []string `json:"accept"`
	Result *string  `json:"result"`
}

// newSession creates a session with nonce and returns its path.
func (e *env) newSession(t testing.TB, nonce []byte) string {
	t.Helper()
	resp, body := e.do(t, http.MethodPost, local.PathNewSession+"?nonce="+base64.URLEncoding.EncodeToString(nonce), nil, nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("newSession: HTTP %d: %s", resp.StatusCode, body)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "session/") {
		t.Fatalf("Location %q", loc)
	}
	return "/challenge-response/v1/" + loc
}

func decodeSession(t testing.TB, resp *http.Response, body []byte) sessionDoc {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != local.MediaTypeSession {
		t.Fatalf("Content-Type %q (HTTP %d: %s)", ct, resp.StatusCode, body)
	}
	var s sessionDoc
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("session JSON %s: %v", body, err)
	}
	return s
}

// problemOf checks an RFC 7807 body and returns its detail.
func problemOf(t testing.TB, resp *http.Response, body []byte) string {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q for HTTP %d: %s", ct, resp.StatusCode, body)
	}
	var p struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal(body, &p); err != nil || p.Status != resp.StatusCode || p.Title == "" {
		t.Fatalf("problem body %s (HTTP %d): %v", body, resp.StatusCode, err)
	}
	return p.Detail
}

// attestedOverTLS runs a real TLS 1.3 connection on loopback: the server
// attests with a, the client appraises with v through package expat. It
// returns the client's setup error and the peer's attestation.
func attestedOverTLS(t *testing.T, a attester.Attester, v verifier.Verifier) (*expat.Attestation, error) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "attester.test"},
		DNSNames: []string{"attester.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", expat.ServerTLSConfig(&tls.Config{Certificates: []tls.Certificate{cert}}))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	defer func() { <-done }()
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		if tc.Handshake() != nil {
			return
		}
		s, err := expat.Server(tc, &expat.Config{Attester: a, Certificate: &cert})
		if err != nil {
			return
		}
		defer s.Close()
		s.SetReadDeadline(time.Now().Add(20 * time.Second))
		buf := make([]byte, 16)
		s.Read(buf)
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(raw, expat.ClientTLSConfig(&tls.Config{RootCAs: pool, ServerName: "attester.test"}))
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c, err := expat.Client(tc, &expat.Config{RequirePeerAttestation: true, Verifier: v})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := c.Handshake(ctx); err != nil {
		return nil, err
	}
	return c.PeerAttestation(), nil
}

// otherRecord is a well-formed CMW record of a type nobody registered.
func otherRecord(t testing.TB) []byte {
	t.Helper()
	r, err := cmw.NewRecord("application/vnd.example.unknown+cbor", []byte{0xa0}, cmw.Evidence)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ioPipe is io.Pipe: a body of unknown length (sent chunked).
func ioPipe() (*io.PipeReader, *io.PipeWriter) { return io.Pipe() }
