package expat

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/ea"
	"github.com/attested-tls/go-expat/verifier"
)

// Tests for T29-T33: callers that give up, attesters, verifiers and peers
// that ignore ctx, answer late, never answer or stop reading. Each asserts
// the exact error, the time it took, and that no goroutine is left behind.

// stubborn is an Attester and a Verifier that ignore ctx: a call blocks
// until the gate opens (forever while it is shut), then delegates. Calls
// received before open are counted and their ctx recorded.
type stubborn struct {
	att   attester.Attester
	ver   verifier.Verifier
	block atomic.Bool
	gate  chan struct{}
	once  sync.Once
	calls atomic.Int32
	done  chan struct{} // receives after each delegated call returned
}

func newStubborn(t testing.TB, att attester.Attester, ver verifier.Verifier) *stubborn {
	s := &stubborn{att: att, ver: ver, gate: make(chan struct{}), done: make(chan struct{}, 64)}
	s.block.Store(true)
	t.Cleanup(s.open)
	return s
}

func (s *stubborn) open() { s.once.Do(func() { close(s.gate) }) }

func (s *stubborn) wait() {
	s.calls.Add(1)
	if s.block.Load() {
		<-s.gate
	}
}

func (s *stubborn) Attest(ctx context.Context, ch attester.Challenge) ([]byte, error) {
	s.wait()
	defer func() { s.done <- struct{}{} }()
	return s.att.Attest(context.Background(), ch)
}

func (s *stubborn) Verify(ctx context.Context, cmw []byte, exp *verifier.Expected) (*verifier.Result, error) {
	s.wait()
	defer func() { s.done <- struct{}{} }()
	return s.ver.Verify(context.Background(), cmw, exp)
}

// leakCheck returns a function that fails t if goroutines started since
// leakCheck was called are still running (after a grace period).
func leakCheck(t testing.TB) func() {
	t.Helper()
	before := runtime.NumGoroutine()
	return func() {
		t.Helper()
		if n := goroutinesAbove(before, 5*time.Second); n > 0 {
			t.Fatalf("goroutine leak: %d more than the %d before\n%s", n, before, goroutineDump())
		}
	}
}

// goroutinesAbove waits up to wait for the number of goroutines to fall
// back to before, and returns by how many it is still above.
func goroutinesAbove(before int, wait time.Duration) int {
	deadline := time.Now().Add(wait)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	return max(0, runtime.NumGoroutine()-before)
}

// goroutineDump returns the stacks of all goroutines (at most 64 KiB).
func goroutineDump() string {
	buf := make([]byte, 1<<16)
	return string(buf[:runtime.Stack(buf, true)])
}

// within fails t unless f returns within d.
func within(t *testing.T, what string, d time.Duration, f func()) time.Duration {
	t.Helper()
	took := timed(t, what, d+10*time.Second, f)
	if took > d {
		t.Fatalf("%s took %v, want at most %v", what, took, d)
	}
	return took
}

// timed runs f and returns how long it took, failing t if f has not
// returned after limit (f's goroutine is then left behind).
func timed(t testing.TB, what string, limit time.Duration, f func()) time.Duration {
	t.Helper()
	start := time.Now()
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
		t.Fatalf("%s: still blocked after %v", what, limit)
	}
	return time.Since(start)
}

// slack is a caller's bound d plus the scheduling delay a loaded CI
// machine may add: far below the 30 s defaults these tests show are not
// what ends the call.
func slack(d time.Duration) time.Duration { return d + time.Second }

// timeoutErr reports an *Error whose cause is the deadline.
func timeoutErr(err error) bool {
	var e *Error
	return errors.As(err, &e) && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded))
}

// clientWithSilentServer sets up a client Conn requiring attestation
// against a raw server that answers the setup request genuinely, then
// reads frames and answers nothing unless the test makes it.
func clientWithSilentServer(t testing.TB, p *pki, k *kit, cfg *Config) (*Conn, *rawPeer) {
	t.Helper()
	c, peer, hs := victimClient(t, p, k, tlsOpts{}, cfg)
	answerSetup(t, peer, p, k)
	if err := waitErr(t, hs); err != nil {
		t.Fatalf("setup: %v", err)
	}
	return c, peer
}

// answerSetup has the raw server answer the victim's setup request.
func answerSetup(t testing.TB, peer *rawPeer, p *pki, k *kit) {
	t.Helper()
	answerReq(t, peer, peer.setupRequest(), p, k)
}

func answerReq(t testing.TB, peer *rawPeer, req *ea.Request, p *pki, k *kit) {
	t.Helper()
	cs := peer.tc.ConnectionState()
	ch, err := ComputeChallenge(&cs, crypto.SHA256, ExporterLabel, req.Context, spki(t, &p.server))
	if err != nil {
		t.Fatal(err)
	}
	answerWith(t, peer, req, &p.server, k, ch)
}

// nextRequest reads the victim's next REQUEST frame.
func nextRequest(t *testing.T, peer *rawPeer) *ea.Request {
	t.Helper()
	req, err := ea.ParseRequest(peer.expect(frameRequest))
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// T29/T30, review item 1: a re-attestation against a peer that never
// answers returns at the caller's deadline; with the default Config the
// connection is closed and Close is prompt; no goroutine is left.
func TestAttestPeerNeverAnswers(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	check := leakCheck(t)
	c, peer := clientWithSilentServer(t, p, k, nil)
	go peer.drain()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var err error
	within(t, "Attest", slack(300*time.Millisecond), func() { _, err = c.Attest(ctx) })
	if !timeoutErr(err) {
		t.Fatalf("Attest: %v, want an *Error with the deadline", err)
	}
	if _, werr := c.Write([]byte("x")); !errors.Is(werr, context.DeadlineExceeded) {
		t.Fatalf("Write after the failed re-attestation: %v, want the failure", werr)
	}
	within(t, "Close", slack(closeGrace), func() { c.Close() })
	peer.tc.Close()
	check()
}

// Review items 1 and 2: with KeepOnFailure, timed-out re-attestations
// leave the connection open and unattested, release their requests (more
// of them than ea's limit of 64 outstanding), and a later Attest succeeds;
// Close stays prompt.
func TestAbandonedRequestsReleased(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	check := leakCheck(t)
	c, peer := clientWithSilentServer(t, p, k, &Config{KeepOnFailure: true})
	reqs := make(chan *ea.Request, 128)
	go func() {
		for {
			typ, b, err := peer.next()
			if err != nil {
				close(reqs)
				return
			}
			if typ == frameRequest {
				if r, err := ea.ParseRequest(b); err == nil {
					reqs <- r
				}
			}
		}
	}()
	const n = ea.DefaultMaxOutstandingRequests + 6
	sent := 0
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		_, err := c.Attest(ctx)
		cancel()
		if !timeoutErr(err) {
			t.Fatalf("Attest %d: %v, want a deadline error", i, err)
		}
		// Under load a 10 ms bound may end before the request is even
		// written; that one never reaches the peer.
		if !errors.Is(err, ErrNotSent) {
			sent++
		}
	}
	if sent <= ea.DefaultMaxOutstandingRequests {
		t.Fatalf("only %d requests sent, want more than ea's %d outstanding", sent, ea.DefaultMaxOutstandingRequests)
	}
	if c.PeerAttestation() != nil {
		t.Fatal("PeerAttestation after failed re-attestations")
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, ErrNotAttested) {
		t.Fatalf("Write while unattested: %v, want ErrNotAttested", err)
	}
	// Late answers to every abandoned request are dropped quietly.
	got := 0
	for got < sent {
		select {
		case r := <-reqs:
			answerReq(t, peer, r, p, k)
			got++
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of %d requests reached the peer", got, sent)
		}
	}
	// Then a real one succeeds.
	done := make(chan struct{})
	go func() {
		defer close(done)
		if r, ok := <-reqs; ok {
			answerReq(t, peer, r, p, k)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	att, err := c.Attest(ctx)
	if err != nil {
		t.Fatalf("Attest after %d abandoned ones: %v", n, err)
	}
	<-done
	if att.Seq != 2 || c.PeerAttestation() != att {
		t.Fatalf("attestation %+v, want Seq 2 as the latest", att)
	}
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatalf("Write once attested again: %v", err)
	}
	within(t, "Close", slack(closeGrace), func() { c.Close() })
	peer.tc.Close()
	check()
}

// A second answer to an abandoned request is still a protocol error.
func TestSecondLateAnswerRejected(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	c, peer := clientWithSilentServer(t, p, k, &Config{KeepOnFailure: true})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	go c.Attest(ctx)
	req := nextRequest(t, peer)
	time.Sleep(100 * time.Millisecond)
	answerReq(t, peer, req, p, k)
	// Replaying the same authenticator bytes: forge them again.
	cs := peer.tc.ConnectionState()
	auth := forgeAuthenticator(t, &cs, true, mustMarshal(t, req), req.Context, &p.server, nil)
	peer.sendAuth(req.Context, auth)
	_, alert := peer.drain()
	if alert != alertIllegalParameter {
		t.Fatalf("alert %v, want illegal_parameter", alert)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, ea.ErrUnknownContext) {
		t.Fatalf("Write: %v, want the connection closed for ErrUnknownContext", err)
	}
}

func mustMarshal(t *testing.T, r *ea.Request) []byte {
	t.Helper()
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pipePair returns both ends of a TLS 1.3 connection over net.Pipe, whose
// writes block until the other side reads: a peer that stops reading.
func pipePair(t testing.TB, p *pki) (srv, cli *tls.Conn) {
	t.Helper()
	a, b := net.Pipe()
	srv = tls.Server(a, ServerTLSConfig(&tls.Config{Certificates: []tls.Certificate{p.server}}))
	cli = tls.Client(b, ClientTLSConfig(&tls.Config{RootCAs: p.roots, ServerName: p.serverName}))
	t.Cleanup(func() { a.Close(); b.Close() })
	errc := make(chan error, 1)
	go func() { errc <- srv.Handshake() }()
	if err := cli.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return srv, cli
}

// Review item 3: Handshake(ctx) returns at ctx's end while writing SETUP
// to a peer that does not read.
func TestHandshakePeerNotReading(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	check := leakCheck(t)
	_, cli := pipePair(t, p)
	c, err := Client(cli, &Config{RequirePeerAttestation: true, Verifier: k.ver})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	within(t, "Handshake", slack(300*time.Millisecond), func() { err = c.Handshake(ctx) })
	if !timeoutErr(err) {
		t.Fatalf("Handshake: %v, want a deadline error", err)
	}
	within(t, "Close", slack(closeGrace), func() { c.Close() })
	check()
}

// Review item 3: Handshake(context.Background()) against a silent peer
// returns at the deadline set with SetDeadline; Read with a read deadline
// returns at it during the implicit setup (which goes on).
func TestSetupHonoursDeadlines(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	check := leakCheck(t)
	t.Run("explicit Handshake, SetDeadline", func(t *testing.T) {
		srv, cli := tlsPair(t, p, tlsOpts{})
		defer srv.Close()
		c, _ := Client(cli, &Config{RequirePeerAttestation: true, Verifier: k.ver})
		defer c.Close()
		c.SetDeadline(time.Now().Add(300 * time.Millisecond))
		var err error
		within(t, "Handshake", slack(300*time.Millisecond), func() { err = c.Handshake(context.Background()) })
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Handshake: %v, want os.ErrDeadlineExceeded", err)
		}
	})
	t.Run("deadline set while Handshake waits", func(t *testing.T) {
		srv, cli := tlsPair(t, p, tlsOpts{})
		defer srv.Close()
		c, _ := Client(cli, &Config{RequirePeerAttestation: true, Verifier: k.ver})
		defer c.Close()
		go func() {
			time.Sleep(100 * time.Millisecond)
			c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		}()
		var err error
		within(t, "Handshake", slack(300*time.Millisecond), func() { err = c.Handshake(context.Background()) })
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Handshake: %v, want os.ErrDeadlineExceeded", err)
		}
	})
	t.Run("Read during implicit setup", func(t *testing.T) {
		srv, cli := tlsPair(t, p, tlsOpts{})
		c, _ := Client(cli, &Config{RequirePeerAttestation: true, Verifier: k.ver})
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		var err error
		within(t, "Read", slack(300*time.Millisecond), func() { _, err = c.Read(make([]byte, 1)) })
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read: %v, want os.ErrDeadlineExceeded", err)
		}
		// The setup went on: a server that now answers completes it.
		c.SetReadDeadline(time.Time{})
		peer := newRawPeer(t, srv, true)
		peer.send(frameSetup, []byte{frameVersion})
		answerSetup(t, peer, p, k)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.Handshake(ctx); err != nil {
			t.Fatalf("setup after the Read deadline: %v", err)
		}
		peer.tc.Close()
	})
	t.Run("explicit Handshake is bounded by SetupTimeout", func(t *testing.T) {
		srv, cli := tlsPair(t, p, tlsOpts{})
		defer srv.Close()
		c, _ := Client(cli, &Config{RequirePeerAttestation: true, Verifier: k.ver, SetupTimeout: 300 * time.Millisecond})
		defer c.Close()
		var err error
		within(t, "Handshake", slack(300*time.Millisecond), func() { err = c.Handshake(context.Background()) })
		if !timeoutErr(err) {
			t.Fatalf("Handshake: %v, want the setup deadline", err)
		}
	})
	check()
}

// Review item 3: Attest(ctx) returns at ctx's end while an application
// Write blocks on a peer that stopped reading; its request was never sent,
// so the connection is as it was.
func TestAttestBehindBlockedWrite(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	check := leakCheck(t)
	srv, cli := pipePair(t, p)
	s, err := Server(srv, &Config{Attester: k.att, Certificate: &p.server})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Client(cli, &Config{RequirePeerAttestation: true, Verifier: k.ver, KeepOnFailure: true})
	if err != nil {
		t.Fatal(err)
	}
	hs := handshakeAsync(s, 5*time.Second)
	if err := c.Handshake(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := waitErr(t, hs); err != nil {
		t.Fatal(err)
	}
	// The server's application never reads: once its buffer is full, its
	// reader stops, and the client's Write blocks in the pipe.
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(make([]byte, 1<<20))
		werr <- err
	}()
	time.Sleep(200 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	within(t, "Attest", slack(300*time.Millisecond), func() { _, err = c.Attest(ctx) })
	if !timeoutErr(err) || !errors.Is(err, ErrNotSent) {
		t.Fatalf("Attest: %v, want a deadline error before the request was sent", err)
	}
	if c.PeerAttestation() == nil || c.PeerAttestation().Seq != 1 {
		t.Fatal("an Attest that never sent its request changed the attestation")
	}
	within(t, "Close", slack(closeGrace), func() { c.Close(); s.Close() })
	if err := <-werr; err == nil {
		t.Fatal("blocked Write succeeded after Close")
	}
	check()
}

type ctxKey struct{}

// recordingVerifier records the ctx values it is called with.
type recordingVerifier struct {
	inner verifier.Verifier
	mu    sync.Mutex
	seen  []any
}

func (v *recordingVerifier) Verify(ctx context.Context, cmw []byte, exp *verifier.Expected) (*verifier.Result, error) {
	v.mu.Lock()
	v.seen = append(v.seen, ctx.Value(ctxKey{}))
	v.mu.Unlock()
	return v.inner.Verify(ctx, cmw, exp)
}

// Review item 3: the Verifier runs under the caller's ctx (Handshake's
// for the setup, Attest's for a re-attestation), not the connection's.
func TestVerifierGetsCallersContext(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	rv := &recordingVerifier{inner: k.ver}
	srv, cli := tlsPair(t, p, tlsOpts{})
	s, _ := Server(srv, &Config{Attester: k.att, Certificate: &p.server, PeerRequestInterval: time.Millisecond})
	c, err := Client(cli, &Config{RequirePeerAttestation: true, Verifier: rv})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer c.Close()
	go s.Handshake(context.Background())
	if err := c.Handshake(context.WithValue(context.Background(), ctxKey{}, "handshake")); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, s)
	if _, err := c.Attest(context.WithValue(context.Background(), ctxKey{}, "attest")); err != nil {
		t.Fatal(err)
	}
	rv.mu.Lock()
	defer rv.mu.Unlock()
	if len(rv.seen) != 2 || rv.seen[0] != "handshake" || rv.seen[1] != "attest" {
		t.Fatalf("Verifier saw ctx values %v, want [handshake attest]", rv.seen)
	}
}

// T29, review item 4: a verification still running when the caller gives
// up never commits, not even later; with KeepOnFailure the connection
// stays unattested and Write keeps failing after the late result.
func TestLateVerificationDropped(t *testing.T) {
	for _, keep := range []bool{false, true} {
		name := "default"
		if keep {
			name = "KeepOnFailure"
		}
		t.Run(name, func(t *testing.T) {
			p := newPKI(t)
			k := newKit(t)
			check := leakCheck(t)
			sv := newStubborn(t, nil, k.ver)
			sv.block.Store(false)
			srv, cli := tlsPair(t, p, tlsOpts{})
			s, _ := Server(srv, &Config{Attester: k.att, Certificate: &p.server, PeerRequestInterval: time.Millisecond})
			c, err := Client(cli, &Config{RequirePeerAttestation: true, Verifier: sv, KeepOnFailure: keep})
			if err != nil {
				t.Fatal(err)
			}
			go s.Handshake(context.Background())
			if err := c.Handshake(context.Background()); err != nil {
				t.Fatal(err)
			}
			<-sv.done
			go io.Copy(io.Discard, s)
			sv.block.Store(true)
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			within(t, "Attest", slack(200*time.Millisecond), func() { _, err = c.Attest(ctx) })
			if !timeoutErr(err) {
				t.Fatalf("Attest: %v, want a deadline error", err)
			}
			// Now the Verifier finishes, successfully.
			sv.open()
			select {
			case <-sv.done:
			case <-time.After(5 * time.Second):
				t.Fatal("the Verifier never finished")
			}
			time.Sleep(50 * time.Millisecond)
			if att := c.PeerAttestation(); att != nil {
				t.Fatalf("late result committed: %+v", att)
			}
			if _, err := c.Write([]byte("x")); err == nil {
				t.Fatal("Write succeeded after an abandoned attestation")
			} else if keep && !errors.Is(err, ErrNotAttested) {
				t.Fatalf("Write: %v, want ErrNotAttested", err)
			}
			within(t, "Close", slack(closeGrace), func() { c.Close(); s.Close() })
			check()
		})
	}
}

// T30, review item 6: Close returns promptly while an Attester and a
// Verifier that ignore ctx are at work on both ends.
func TestCloseWithStuckAttesterAndVerifier(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	check := leakCheck(t)
	sa := newStubborn(t, k.att, nil)
	sa.block.Store(false)
	sv := newStubborn(t, nil, k.ver)
	sv.block.Store(false)
	srv, cli := tlsPair(t, p, tlsOpts{})
	s, c, serr, cerr := attestedPair(t, srv, cli,
		&Config{Attester: sa, Certificate: &p.server, PeerRequestInterval: time.Millisecond},
		&Config{RequirePeerAttestation: true, Verifier: sv})
	if serr != nil || cerr != nil {
		t.Fatal(serr, cerr)
	}
	go io.Copy(io.Discard, s)
	// The server's Attester hangs: the client's Attest waits.
	sa.block.Store(true)
	go c.Attest(context.Background())
	for sa.calls.Load() < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	within(t, "server Close with its Attester stuck", slack(closeGrace), func() { s.Close() })
	within(t, "client Close", slack(closeGrace), func() { c.Close() })

	// The client's Verifier hangs during the setup.
	srv, cli = tlsPair(t, p, tlsOpts{})
	sv.block.Store(true)
	s2, _ := Server(srv, &Config{Attester: k.att, Certificate: &p.server})
	c2, _ := Client(cli, &Config{RequirePeerAttestation: true, Verifier: sv})
	go s2.Handshake(context.Background())
	hs := handshakeAsync(c2, time.Minute)
	for sv.calls.Load() < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	within(t, "client Close with its Verifier stuck", slack(closeGrace), func() { c2.Close() })
	if err := waitErr(t, hs); !errors.Is(err, ErrClosed) {
		t.Fatalf("Handshake: %v, want ErrClosed", err)
	}
	s2.Close()
	sa.open()
	sv.open()
	check()
}

// Review item 6: fifty concurrent Attest calls on one connection with
// the default MaxPeerRequests all succeed: they queue, the peer is never
// asked for more than one at a time.
func TestFiftyConcurrentAttest(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	s, c := reattestPair(t, p, k)
	go io.Copy(io.Discard, s)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			if _, err := c.Attest(ctx); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Attest: %v", err)
	}
	if got := c.PeerAttestation().Seq; got != 51 {
		t.Fatalf("latest Seq %d, want 51", got)
	}
	if _, err := c.Write([]byte("still open")); err != nil {
		t.Fatalf("Write after the fifty: %v", err)
	}
}

// T31: requests that would be refused cost no quote: the wrong type for
// our role, our own context reflected, a replayed context.
func TestRefusedRequestsCostNoQuote(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	cases := []struct {
		name  string
		build func(t *testing.T, s *Conn, peer *rawPeer) []byte
		alert tls.AlertError
	}{
		{"wrong type for our role", func(t *testing.T, s *Conn, peer *rawPeer) []byte {
			// A CertificateRequest sent to the server.
			r := &ea.Request{Type: ea.TypeCertificateRequest, Context: bytes.Repeat([]byte{7}, 32),
				Extensions: []ea.Extension{{Type: ea.ExtensionSignatureAlgorithms, Data: []byte{0, 2, 4, 3}}, {Type: DefaultExtensionType, Data: []byte{}}}}
			return mustMarshal(t, r)
		}, alertUnexpectedMessage},
		{"our own context reflected", func(t *testing.T, s *Conn, peer *rawPeer) []byte {
			req, err := s.Endpoint().NewRequest()
			if err != nil {
				t.Fatal(err)
			}
			r, _ := ea.ParseRequest(req.Message)
			refl := &ea.Request{Type: ea.TypeClientCertificateRequest, Context: r.Context, Extensions: r.Extensions}
			return mustMarshal(t, refl)
		}, alertIllegalParameter},
		{"replayed context", func(t *testing.T, s *Conn, peer *rawPeer) []byte {
			msg := peer.request(t)
			peer.send(frameRequest, msg)
			peer.expect(frameAuthenticator)
			return msg
		}, alertIllegalParameter},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			calls := &countingAttester{inner: k.att}
			s, peer := serverWithRawClient(t, p, &Config{Attester: calls, Certificate: &p.server, PeerRequestInterval: time.Millisecond})
			msg := tc.build(t, s, peer)
			before := calls.n()
			peer.send(frameRequest, msg)
			_, alert := peer.drain()
			if alert != tc.alert {
				t.Fatalf("alert %v, want %v", alert, tc.alert)
			}
			if calls.n() != before {
				t.Fatalf("attester ran %d times for a refused request", calls.n()-before)
			}
		})
	}
}

// T31: the record of contexts is bounded for the connection's life; a
// peer that keeps requesting ends its own connection with internal_error.
func TestContextRecordBounded(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	_, peer := serverWithRawClient(t, p, &Config{Attester: k.att, Certificate: &p.server, PeerRequestInterval: time.Millisecond, MaxContexts: 8})
	answered := 0
	for {
		peer.send(frameRequest, peer.request(t))
		typ, b, err := peer.next()
		if err != nil {
			t.Fatalf("after %d answers: %v", answered, err)
		}
		if typ == frameClose {
			if tls.AlertError(b[0]) != alertInternalError {
				t.Fatalf("alert %v, want internal_error", tls.AlertError(b[0]))
			}
			break
		}
		answered++
	}
	if answered != 8 {
		t.Fatalf("%d answers before the bound, want 8", answered)
	}
}

// T32, review item 6: with application data streaming in both directions
// without pause, a re-attestation completes within a bounded delay.
func TestAttestUnderBulkData(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	s, c := reattestPair(t, p, k)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); pump(c, stop) }()
	go func() { defer wg.Done(); pump(s, stop) }()
	go func() { defer wg.Done(); io.Copy(io.Discard, s) }()
	go func() { defer wg.Done(); io.Copy(io.Discard, c) }()
	time.Sleep(100 * time.Millisecond)
	var worst time.Duration
	for range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		start := time.Now()
		if _, err := c.Attest(ctx); err != nil {
			t.Fatalf("Attest under load: %v", err)
		}
		cancel()
		worst = max(worst, time.Since(start))
	}
	close(stop)
	c.Close()
	s.Close()
	wg.Wait()
	t.Logf("slowest of 5 re-attestations under bulk data both ways: %v", worst)
	if worst > time.Second {
		t.Fatalf("re-attestation took %v under bulk data, want under 1 s", worst)
	}
}

// The setup's bound ending just as the setup completes changes nothing:
// cancelling Handshake's ctx right after it returned never closes the
// connection (a select between the two used to pick either).
func TestSetupCompleteThenCancel(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	for i := range 30 {
		srv, cli := tlsPair(t, p, tlsOpts{})
		s, c, serr, cerr := attestedPair(t, srv, cli,
			&Config{Attester: k.att, Certificate: &p.server},
			&Config{RequirePeerAttestation: true, Verifier: k.ver})
		if serr != nil || cerr != nil {
			t.Fatal(serr, cerr)
		}
		// attestedPair cancelled its ctx on return.
		time.Sleep(time.Millisecond)
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatalf("round %d: Write after the setup's ctx was cancelled: %v", i, err)
		}
		if _, err := s.Write([]byte("x")); err != nil {
			t.Fatalf("round %d: server Write: %v", i, err)
		}
	}
}

// A peer that answers and then closes cleanly (close_notify) still gets
// its verdict: the setup completes from what arrived, and Read then
// returns io.EOF. A peer that closes before answering fails the setup
// with io.EOF. (Found by the expat command's probe.)
func TestPeerAnswersThenCloses(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	t.Run("answer then close", func(t *testing.T) {
		c, peer, hs := victimClient(t, p, k, tlsOpts{}, nil)
		answerSetup(t, peer, p, k)
		peer.tc.Close()
		if err := waitErr(t, hs); err != nil {
			t.Fatalf("setup: %v, want the verdict on what arrived", err)
		}
		if c.PeerAttestation() == nil {
			t.Fatal("no attestation")
		}
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("Read: %v, want io.EOF", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := c.Attest(ctx); !errors.Is(err, io.EOF) {
			t.Fatalf("Attest after the peer left: %v, want io.EOF at once", err)
		}
	})
	t.Run("close before answering", func(t *testing.T) {
		_, peer, hs := victimClient(t, p, k, tlsOpts{}, nil)
		peer.setupRequest()
		peer.tc.Close()
		if err := waitErr(t, hs); !errors.Is(err, io.EOF) {
			t.Fatalf("setup: %v, want io.EOF", err)
		}
	})
}

// The setup's own goroutines run the Verifier and the Attester themselves
// (bound.Inline): when either ignores ctx past Config.SetupTimeout, the
// bound's end still does what it must at once. A client Verifier that
// overruns fails the client's setup at its timeout, and its late success
// never commits; a server Attester that overruns its answer to a
// re-attestation makes the server send the empty authenticator at its
// timeout, so Attest (with no deadline of its own) fails with
// ErrPeerRefused then.
func TestSetupOverrunsInline(t *testing.T) {
	const bound = 200 * time.Millisecond
	p := newPKI(t)
	k := newKit(t)
	check := leakCheck(t)

	sv := newStubborn(t, nil, k.ver)
	srv, cli := tlsPair(t, p, tlsOpts{})
	s, _ := Server(srv, &Config{Attester: k.att, Certificate: &p.server})
	c, err := Client(cli, &Config{RequirePeerAttestation: true, Verifier: sv, SetupTimeout: bound})
	if err != nil {
		t.Fatal(err)
	}
	go s.Handshake(context.Background())
	within(t, "client setup with its Verifier stuck", slack(bound), func() { err = c.Handshake(context.Background()) })
	if !timeoutErr(err) {
		t.Fatalf("Handshake: %v, want the setup's deadline", err)
	}
	sv.open()
	select {
	case <-sv.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the Verifier never finished")
	}
	time.Sleep(50 * time.Millisecond)
	if att := c.PeerAttestation(); att != nil {
		t.Fatalf("late verification committed: %+v", att)
	}
	c.Close()
	s.Close()

	// The server's answers to re-attestation requests (its setup is
	// bounded by the same timeout, and would end the connection first).
	sa := newStubborn(t, k.att, nil)
	sa.block.Store(false)
	srv, cli = tlsPair(t, p, tlsOpts{})
	s, c, serr, cerr := attestedPair(t, srv, cli,
		&Config{Attester: sa, Certificate: &p.server, SetupTimeout: bound, PeerRequestInterval: time.Millisecond},
		&Config{RequirePeerAttestation: true, Verifier: k.ver, KeepOnFailure: true})
	if serr != nil || cerr != nil {
		t.Fatal(serr, cerr)
	}
	go io.Copy(io.Discard, s)
	sa.block.Store(true)
	within(t, "Attest with the server's Attester stuck", slack(bound), func() { _, err = c.Attest(context.Background()) })
	if !errors.Is(err, ErrPeerRefused) {
		t.Fatalf("Attest: %v, want ErrPeerRefused (the empty authenticator at the server's bound)", err)
	}
	c.Close()
	s.Close()
	sa.open()
	check()
}
