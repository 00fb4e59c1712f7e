package expat

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/ea"
	"github.com/attested-tls/go-expat/expat/expattest/testkit"
	"github.com/attested-tls/go-expat/verifier"
)

// kit is a test-kit attester and the verifier that trusts exactly its key.
type kit struct {
	key *ecdsa.PrivateKey
	att *testkit.Attester
	ver *testkit.Verifier
}

func newKit(t testing.TB) *kit {
	t.Helper()
	k, err := testkit.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return &kit{
		key: k,
		att: &testkit.Attester{Key: k, Measurements: []verifier.Measurement{{Name: "firmware", Value: bytes.Repeat([]byte{1}, 32)}}},
		ver: &testkit.Verifier{TrustedKeys: []*ecdsa.PublicKey{&k.PublicKey}},
	}
}

func TestServerAttestation(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	srv, cli := tlsPair(t, p, tlsOpts{})
	s, c, serr, cerr := attestedPair(t, srv, cli,
		&Config{Attester: k.att, Certificate: &p.server},
		&Config{RequirePeerAttestation: true, Verifier: k.ver})
	if serr != nil || cerr != nil {
		t.Fatalf("setup: server %v, client %v", serr, cerr)
	}
	att := c.PeerAttestation()
	if att == nil || att.Seq != 1 || att.Result.Model != verifier.BackgroundCheck || att.Result.Technology != testkit.Technology {
		t.Fatalf("PeerAttestation = %+v", att)
	}
	if !bytes.Equal(att.Chain[0].Raw, p.server.Certificate[0]) {
		t.Fatal("attested chain is not the server's certificate")
	}
	if s.PeerAttestation() != nil {
		t.Fatal("server has an attestation of a client that never attested")
	}
	exchangeData(t, c, s)
}

// exchangeData checks that application data flows both ways.
func exchangeData(t testing.TB, a, b *Conn) {
	t.Helper()
	msg := []byte("hello over attested TLS")
	errc := make(chan error, 1)
	go func() {
		_, err := a.Write(msg)
		errc <- err
	}()
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(b, got); err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("got %q", got)
	}
	go func() {
		_, err := b.Write(msg)
		errc <- err
	}()
	if _, err := io.ReadFull(a, got); err != nil {
		t.Fatalf("read back: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestMutualAttestation(t *testing.T) {
	for _, tc := range []struct {
		name       string
		clientCert bool
	}{
		{"with client certificate", true},
		{"anonymous client", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPKI(t)
			sk, ck := newKit(t), newKit(t)
			srv, cli := tlsPair(t, p, tlsOpts{clientCert: tc.clientCert})
			scfg := &Config{Attester: sk.att, Certificate: &p.server, RequirePeerAttestation: true, Verifier: ck.ver}
			ccfg := &Config{Attester: ck.att, RequirePeerAttestation: true, Verifier: sk.ver}
			if tc.clientCert {
				ccfg.Certificate = &p.client
			} else {
				// No client certificate: the client authenticates its EA
				// with a throwaway key, and the server explicitly accepts
				// attestation-only identity for it.
				anon := p.issue(t, "anonymous", 0, nil, nil)
				ccfg.Certificate = &anon
				scfg.PeerIdentity = PeerIdentity{AttestationOnly: true}
			}
			s, c, serr, cerr := attestedPair(t, srv, cli, scfg, ccfg)
			if serr != nil || cerr != nil {
				t.Fatalf("setup: server %v, client %v", serr, cerr)
			}
			if s.PeerAttestation() == nil || c.PeerAttestation() == nil {
				t.Fatal("missing attestation")
			}
			exchangeData(t, c, s)
		})
	}
}

func TestAnonymousClientRejectedByDefault(t *testing.T) {
	// T21: genuine Evidence, but the client's EA certificate is not an
	// identity the server verified: the default identity policy rejects it.
	p := newPKI(t)
	ck := newKit(t)
	srv, cli := tlsPair(t, p, tlsOpts{})
	anon := p.issue(t, "anonymous", 0, nil, nil)
	_, c, serr, cerr := attestedPair(t, srv, cli,
		&Config{RequirePeerAttestation: true, Verifier: ck.ver},
		&Config{Attester: ck.att, Certificate: &anon})
	if serr == nil {
		t.Fatal("server accepted an unauthenticated attester")
	}
	var e *ea.Error
	if !errors.As(serr, &e) {
		t.Fatalf("server error %v is not an ea.Error", serr)
	}
	if e.Alert != alertBadCertificate {
		t.Fatalf("alert %v, want bad_certificate", e.Alert)
	}
	// The client's own setup may have completed (it required nothing), but
	// the server closes with the alert, which the client's Read reports.
	if cerr == nil {
		_, err := c.Read(make([]byte, 1))
		var pe *Error
		if !errors.As(err, &pe) || !pe.Remote || pe.Alert != alertBadCertificate {
			t.Fatalf("client read: %v, want the server's bad_certificate alert", err)
		}
	}
}

func TestDiversionWrongIdentity(t *testing.T) {
	// T21: a server whose handshake certificate is trusted answers with an
	// EA certificate that is another (also CA-issued) identity carrying
	// genuine Evidence: the default policy requires the handshake identity.
	p := newPKI(t)
	k := newKit(t)
	srv, cli := tlsPair(t, p, tlsOpts{})
	_, _, _, cerr := attestedPair(t, srv, cli,
		&Config{Attester: k.att, Certificate: &p.other},
		&Config{RequirePeerAttestation: true, Verifier: k.ver})
	if cerr == nil {
		t.Fatal("client accepted an EA identity other than the handshake's")
	}
	// The same with an explicit x509 policy trusting the CA succeeds.
	srv, cli = tlsPair(t, p, tlsOpts{})
	roots := p.roots
	_, _, serr, cerr := attestedPair(t, srv, cli,
		&Config{Attester: k.att, Certificate: &p.other},
		&Config{RequirePeerAttestation: true, Verifier: k.ver, PeerIdentity: PeerIdentity{VerifyOptions: verifyOpts(roots)}})
	if serr != nil || cerr != nil {
		t.Fatalf("explicit VerifyOptions: server %v, client %v", serr, cerr)
	}
}

func TestReattestation(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	srv, cli := tlsPair(t, p, tlsOpts{})
	s, c, serr, cerr := attestedPair(t, srv, cli,
		&Config{Attester: k.att, Certificate: &p.server},
		&Config{RequirePeerAttestation: true, Verifier: k.ver})
	if serr != nil || cerr != nil {
		t.Fatal(serr, cerr)
	}
	first := c.PeerAttestation()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The server must keep reading for requests to be answered; a Read in
	// the background stands in for its application.
	go io.Copy(io.Discard, s)
	for i := 2; i <= 4; i++ {
		att, err := c.Attest(ctx)
		if err != nil {
			t.Fatalf("Attest %d: %v", i, err)
		}
		if att.Seq != uint64(i) || bytes.Equal(att.Context, first.Context) || bytes.Equal(att.Challenge.Binding, first.Challenge.Binding) {
			t.Fatalf("attestation %d reused the context or binding: %+v", i, att)
		}
		if c.PeerAttestation() != att {
			t.Fatal("PeerAttestation is not the latest")
		}
	}
}

func TestConcurrentAttest(t *testing.T) {
	// T15: many concurrent attestations on one connection, matched by
	// context; race-clean.
	p := newPKI(t)
	k := newKit(t)
	srv, cli := tlsPair(t, p, tlsOpts{})
	_, c, serr, cerr := attestedPair(t, srv, cli,
		&Config{Attester: k.att, Certificate: &p.server, MaxPeerRequests: 32},
		&Config{RequirePeerAttestation: true, Verifier: k.ver})
	if serr != nil || cerr != nil {
		t.Fatal(serr, cerr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const n = 16
	var wg sync.WaitGroup
	seqs := make(chan uint64, n)
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			att, err := c.Attest(ctx)
			if err != nil {
				errs <- err
				return
			}
			seqs <- att.Seq
		}()
	}
	wg.Wait()
	close(seqs)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	for s := range seqs {
		if seen[s] {
			t.Fatalf("sequence %d twice", s)
		}
		seen[s] = true
	}
	if len(seen) != n {
		t.Fatalf("%d results, want %d", len(seen), n)
	}
}

func TestPeerRequestPacing(t *testing.T) {
	// T31: requests faster than PeerRequestInterval wait for their turn:
	// both are answered, the second no sooner than the interval after the
	// first, and the attester runs once per answer.
	p := newPKI(t)
	k := newKit(t)
	calls := &countingAttester{inner: k.att}
	const interval = 400 * time.Millisecond
	_, peer := serverWithRawClient(t, p, &Config{Attester: calls, Certificate: &p.server, PeerRequestInterval: interval})
	start := time.Now()
	for range 2 {
		peer.send(frameRequest, peer.request(t))
	}
	var at [2]time.Duration
	for i := range 2 {
		b := peer.expect(frameAuthenticator)
		at[i] = time.Since(start)
		if _, err := peer.sess.Validate(b[1+int(b[0]):], &ea.ValidateOptions{InsecureSkipChainVerify: true}); err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
	}
	if at[0] > interval/2 || at[1] < interval {
		t.Fatalf("answers after %v and %v, want the first at once and the second after %v", at[0], at[1], interval)
	}
	if calls.n() != 2 {
		t.Fatalf("attester calls %d, want 2", calls.n())
	}
}

func TestDefaultPeerRequestInterval(t *testing.T) {
	// T31: with the zero Config, a peer re-requesting as soon as each
	// answer arrives gets at most one attestation per
	// DefaultPeerRequestInterval.
	p := newPKI(t)
	k := newKit(t)
	calls := &countingAttester{inner: k.att}
	_, peer := serverWithRawClient(t, p, &Config{Attester: calls, Certificate: &p.server})
	start := time.Now()
	for time.Since(start) < time.Second {
		peer.send(frameRequest, peer.request(t))
		peer.expect(frameAuthenticator)
	}
	// 1 s / 250 ms: the answers start at 0, 250, 500, 750 and 1000 ms.
	if n, max := calls.n(), int(time.Since(start)/DefaultPeerRequestInterval)+1; n > max {
		t.Fatalf("attester ran %d times in %v, want at most %d", n, time.Since(start), max)
	}
}

func TestPeerRequestFlood(t *testing.T) {
	// T15: a peer forcing many (slow, hardware-like) quotes: beyond
	// MaxPeerRequests in flight the connection is closed, and the
	// attester ran at most MaxPeerRequests times.
	p := newPKI(t)
	k := newKit(t)
	slow := *k.att
	slow.Delay = 2 * time.Second
	calls := &countingAttester{inner: &slow}
	s, peer := serverWithRawClient(t, p, &Config{Attester: calls, Certificate: &p.server, MaxPeerRequests: 2})
	for range 5 {
		peer.send(frameRequest, peer.request(t))
	}
	_, alert := peer.drain()
	if alert != alertUnexpectedMessage {
		t.Fatalf("alert %v, want unexpected_message", alert)
	}
	if _, err := s.Write([]byte("x")); err == nil {
		t.Fatal("connection still open after a request flood")
	}
	if n := calls.n(); n > 2 {
		t.Fatalf("attester ran %d times, want at most 2", n)
	}
}

type countingAttester struct {
	mu    sync.Mutex
	calls int
	inner attester.Attester
}

func (a *countingAttester) Attest(ctx context.Context, ch attester.Challenge) ([]byte, error) {
	a.mu.Lock()
	a.calls++
	a.mu.Unlock()
	return a.inner.Attest(ctx, ch)
}

func (a *countingAttester) n() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls
}

func TestResumedSessionRefused(t *testing.T) {
	// T16: a resumed session is never attested. Build a real resumption
	// with tickets on, then show that Server and Client refuse it.
	p := newPKI(t)
	cache := tls.NewLRUClientSessionCache(4)
	var ticketKey [32]byte
	opts := tlsOpts{
		serverConfig: func(c *tls.Config) {
			c.SessionTicketsDisabled = false
			c.SetSessionTicketKeys([][32]byte{ticketKey})
		},
		clientConfig: func(c *tls.Config) { c.ClientSessionCache = cache; c.SessionTicketsDisabled = false },
	}
	srv, cli := tlsPair(t, p, opts)
	// Read to receive the NewSessionTicket.
	go srv.Write([]byte{0})
	cli.Read(make([]byte, 1))
	srv2, cli2 := tlsPair(t, p, opts)
	if !cli2.ConnectionState().DidResume {
		t.Fatal("test setup: session did not resume")
	}
	if _, err := Client(cli2, nil); !errors.Is(err, ErrResumed) {
		t.Fatalf("Client: %v, want ErrResumed", err)
	}
	if _, err := Server(srv2, nil); !errors.Is(err, ErrResumed) {
		t.Fatalf("Server: %v, want ErrResumed", err)
	}
	// With the helpers' configs no ticket is issued, so nothing resumes.
	fresh := tls.NewLRUClientSessionCache(4)
	helpers := tlsOpts{
		serverConfig: func(c *tls.Config) { c.SetSessionTicketKeys([][32]byte{ticketKey}) },
		clientConfig: func(c *tls.Config) { c.ClientSessionCache = fresh },
	}
	srv3, cli3 := tlsPair(t, p, helpers)
	go srv3.Write([]byte{0})
	cli3.Read(make([]byte, 1))
	_, cli4 := tlsPair(t, p, helpers)
	if cli4.ConnectionState().DidResume {
		t.Fatal("ClientTLSConfig/ServerTLSConfig allowed resumption")
	}
}

func verifyOpts(roots *x509.CertPool) *x509.VerifyOptions {
	return &x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
}

// serverWithRawClient runs setup between a server Conn configured with cfg
// and a raw (test-controlled) client that requires nothing.
func serverWithRawClient(t *testing.T, p *pki, cfg *Config) (*Conn, *rawPeer) {
	t.Helper()
	srv, cli := tlsPair(t, p, tlsOpts{})
	s, err := Server(srv, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	hs := handshakeAsync(s, 10*time.Second)
	peer := newRawPeer(t, cli, false)
	peer.send(frameSetup, []byte{frameVersion})
	peer.expect(frameSetup)
	if err := waitErr(t, hs); err != nil {
		t.Fatal(err)
	}
	return s, peer
}
