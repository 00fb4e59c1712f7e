package expatquic

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/attested-tls/go-expat/ea"
	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/expat/expattest/testkit"
	"github.com/attested-tls/go-expat/expat/internal/carriertest"
	"github.com/attested-tls/go-expat/verifier"
)

// Tests of the exchange model expatquic shares with expat.Conn
// (expat/internal/exchange): one outstanding request of ours at a time,
// commit only while the exchange is current, abandon on the caller's
// give-up, the attestation's lifetime. Each mirrors a test of expat.Conn
// (expat/hang_test.go, expat/lifetime_test.go).

// slack is a caller's bound plus what a loaded 2-core machine may add.
func slack(d time.Duration) time.Duration { return d + time.Second }

// within fails t unless f returns within d.
func within(t *testing.T, what string, d time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}

// gatedVerifier ignores ctx: while shut, a call blocks until open, then
// delegates. Each delegated call's end is signalled on done.
type gatedVerifier struct {
	ver  verifier.Verifier
	mu   sync.Mutex
	shut bool
	gate chan struct{}
	once sync.Once
	// entered receives when a call blocks at the gate; done after each
	// delegated call returned.
	entered, done chan struct{}
}

func newGated(t testing.TB, ver verifier.Verifier) *gatedVerifier {
	g := &gatedVerifier{ver: ver, gate: make(chan struct{}), entered: make(chan struct{}, 64), done: make(chan struct{}, 64)}
	t.Cleanup(g.open)
	return g
}

func (g *gatedVerifier) close() { g.mu.Lock(); g.shut = true; g.mu.Unlock() }
func (g *gatedVerifier) open()  { g.once.Do(func() { close(g.gate) }) }

func (g *gatedVerifier) Verify(ctx context.Context, cmw []byte, exp *verifier.Expected) (*verifier.Result, error) {
	g.mu.Lock()
	shut := g.shut
	g.mu.Unlock()
	if shut {
		g.entered <- struct{}{}
		<-g.gate
	}
	defer func() { g.done <- struct{}{} }()
	return g.ver.Verify(context.Background(), cmw, exp)
}

func (g *gatedVerifier) Formats() []string { return g.ver.(expat.Formats).Formats() }

// rawServer is a QUIC server with our ALPN that answers the client's setup
// request genuinely, then hands every REQUEST to the test, which answers
// it (or not) with answer.
type rawServer struct {
	t    *testing.T
	ql   *quic.Listener
	reqs chan []byte
	mu   sync.Mutex
	ep   *expat.Endpoint
	ctrl *quic.Stream
	qc   *quic.Conn
	// noSetupAnswer leaves the client's setup request unanswered.
	noSetupAnswer bool
}

func newRawServer(t *testing.T, k *kit, noSetupAnswer bool) *rawServer {
	t.Helper()
	tc := expat.ServerTLSConfig(k.serverTLS())
	tc.NextProtos = []string{ALPNPrefix + proto}
	ql, err := quic.ListenAddr("127.0.0.1:0", tc, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &rawServer{t: t, ql: ql, reqs: make(chan []byte, 128), noSetupAnswer: noSetupAnswer}
	done := make(chan struct{})
	t.Cleanup(func() { ql.Close(); <-done })
	go func() { defer close(done); r.serve(k) }()
	return r
}

func (r *rawServer) addr() string { return r.ql.Addr().String() }

func (r *rawServer) serve(k *kit) {
	qc, err := r.ql.Accept(context.Background())
	if err != nil {
		return
	}
	defer qc.CloseWithError(0, "")
	ctrl, err := qc.AcceptStream(context.Background())
	if err != nil {
		return
	}
	cs := qc.ConnectionState().TLS
	ep, err := expat.NewEndpoint(&cs, true, &expat.Config{Attester: &testkit.Attester{Key: k.SrvKey}, Certificate: &k.SrvCert})
	if err != nil {
		r.t.Error(err)
		return
	}
	r.mu.Lock()
	r.ep, r.ctrl, r.qc = ep, ctrl, qc
	r.mu.Unlock()
	ctrl.Write(appendFrame(nil, frameSetup, []byte{frameVersion}))
	for {
		typ, payload, err := readFrame(ctrl, 1<<20)
		if err != nil {
			return
		}
		switch typ {
		case frameSetup:
			req := payload[1:]
			if payload[0] == frameVersionFormats {
				req = payload[3+(int(payload[1])<<8|int(payload[2])):]
			}
			if len(req) > 0 && !r.noSetupAnswer {
				r.answer(req)
				ctrl.Write(appendFrame(nil, frameReady, []byte{0}))
			}
		case frameRequest:
			r.reqs <- payload
		}
	}
}

// answer writes a genuine answer to req.
func (r *rawServer) answer(req []byte) {
	r.mu.Lock()
	ep, ctrl := r.ep, r.ctrl
	r.mu.Unlock()
	reqCtx, err := ea.GetContext(req)
	if err != nil {
		r.t.Error(err)
		return
	}
	auth, err := ep.Respond(context.Background(), req)
	if err != nil {
		r.t.Error(err)
		return
	}
	ctrl.Write(appendFrame(nil, frameAuthenticator, []byte{byte(len(reqCtx))}, reqCtx, auth))
}

// next returns the client's next REQUEST.
func (r *rawServer) next() []byte {
	r.t.Helper()
	select {
	case req := <-r.reqs:
		return req
	case <-time.After(5 * time.Second):
		r.t.Fatal("no REQUEST from the client")
		return nil
	}
}

// A peer that never answers the setup request: Dial returns at the
// caller's deadline. One that never answers a re-attestation: Attest
// returns at its ctx's end with a deadline error, and by default the
// connection is closed with internal_error.
func TestPeerNeverAnswers(t *testing.T) {
	checkGoroutines(t)
	k := newKit(t)
	ctx := ctxT(t)

	silent := newRawServer(t, k, true)
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	var err error
	within(t, "Dial", slack(300*time.Millisecond), func() {
		_, err = Dial(short, silent.addr(), k.clientTLS(), nil, k.clientConfig(false))
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial against a server that never answers: %v, want a deadline error", err)
	}

	raw := newRawServer(t, k, false)
	c, err := Dial(ctx, raw.addr(), k.clientTLS(), nil, k.clientConfig(false))
	if err != nil {
		t.Fatal(err)
	}
	short2, cancel2 := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel2()
	within(t, "Attest", slack(300*time.Millisecond), func() { _, err = c.Attest(short2) })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Attest: %v, want a deadline error", err)
	}
	select {
	case <-c.Context().Done():
	case <-time.After(2 * time.Second):
		t.Fatal("connection open after a failed re-attestation (no KeepOnFailure)")
	}
	raw.mu.Lock()
	qc := raw.qc
	raw.mu.Unlock()
	<-qc.Context().Done()
	wantCode(t, context.Cause(qc.Context()), alertInternalError)
	within(t, "Close", 2*time.Second, func() { c.Close() })
}

// keepingClient dials a rawServer with KeepOnFailure.
func keepingClient(t *testing.T, ctx context.Context, k *kit) (*rawServer, *Conn) {
	t.Helper()
	raw := newRawServer(t, k, false)
	cfg := k.clientConfig(false)
	cfg.KeepOnFailure = true
	c, err := Dial(ctx, raw.addr(), k.clientTLS(), nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return raw, c
}

// An answer that arrives after Attest gave up is dropped quietly, never
// committed; a second answer to the same request is a protocol violation.
func TestLateAnswerDropped(t *testing.T) {
	checkGoroutines(t)
	k := newKit(t)
	ctx := ctxT(t)
	raw, c := keepingClient(t, ctx, k)
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := c.Attest(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Attest: %v, want a deadline error", err)
	}
	req := raw.next()
	raw.answer(req)
	time.Sleep(200 * time.Millisecond)
	if c.Context().Err() != nil {
		t.Fatalf("a late answer closed the connection: %v", c.endErr())
	}
	if a := c.PeerAttestation(); a != nil {
		t.Fatalf("late answer committed: %+v", a)
	}
	if _, err := c.OpenStream(); !errors.Is(err, expat.ErrNotAttested) {
		t.Fatalf("OpenStream after a late answer: %v, want ErrNotAttested", err)
	}
	// The same answer again (ea would refuse to build a second one).
	reqCtx, _ := ea.GetContext(req)
	raw.mu.Lock()
	ctrl := raw.ctrl
	raw.mu.Unlock()
	ctrl.Write(appendFrame(nil, frameAuthenticator, []byte{byte(len(reqCtx))}, reqCtx, []byte{20, 0, 0, 1, 0}))
	select {
	case <-c.Context().Done():
	case <-time.After(2 * time.Second):
		t.Fatal("second answer to an abandoned request accepted")
	}
	var e *expat.Error
	if err := c.endErr(); !errors.As(err, &e) || e.Alert != alertIllegalParameter || !errors.Is(err, ea.ErrUnknownContext) {
		t.Fatalf("second answer: %v, want illegal_parameter, ea.ErrUnknownContext", err)
	}
}

// With KeepOnFailure, timed-out re-attestations release their requests —
// more of them than ea's limit of 64 outstanding — and a later Attest
// succeeds with the next Seq.
func TestAbandonedRequestsReleased(t *testing.T) {
	checkGoroutines(t)
	k := newKit(t)
	ctx := ctxT(t)
	raw, c := keepingClient(t, ctx, k)
	for i := range ea.DefaultMaxOutstandingRequests + 6 {
		short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
		_, err := c.Attest(short)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Attest %d: %v, want a deadline error", i, err)
		}
		raw.next()
	}
	go func() { raw.answer(raw.next()) }()
	a, err := c.Attest(ctx)
	if err != nil {
		t.Fatalf("Attest after abandoned ones: %v", err)
	}
	if a.Seq != 2 {
		t.Fatalf("Seq %d, want 2 (abandoned exchanges are not numbered)", a.Seq)
	}
	if _, err := c.OpenStream(); err != nil {
		t.Fatalf("OpenStream once attested again: %v", err)
	}
}

// Concurrent Attest calls queue: one request of ours is outstanding at a
// time, so the peer's MaxPeerRequests (default 2) is never exceeded, and
// every call succeeds with its own Seq.
func TestConcurrentAttest(t *testing.T) {
	checkGoroutines(t)
	k := newKit(t)
	ctx := ctxT(t)
	scfg := k.serverConfig(false)
	scfg.PeerRequestInterval = 20 * time.Millisecond
	_, c := pair(t, k, scfg, k.clientConfig(false))
	const n = 8
	var wg sync.WaitGroup
	seqs := make([]int, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			a, err := c.Attest(ctx)
			errs[i] = err
			if a != nil {
				seqs[i] = int(a.Seq)
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Attest %d: %v", i, err)
		}
	}
	sort.Ints(seqs)
	for i, s := range seqs {
		if s != i+2 {
			t.Fatalf("Seqs %v, want 2..%d", seqs, n+1)
		}
	}
	if a := c.PeerAttestation(); a == nil || a.Seq != n+1 {
		t.Fatalf("latest %+v, want Seq %d", a, n+1)
	}
}

// pair dials l with ccfg and returns both ends.
func pair(t *testing.T, k *kit, scfg, ccfg *expat.Config) (s, c *Conn) {
	t.Helper()
	ctx := ctxT(t)
	l := listen(t, k, scfg)
	accepted := make(chan *Conn, 1)
	go func() { s, _ := l.Accept(ctx); accepted <- s }()
	c, err := Dial(ctx, l.Addr().String(), k.clientTLS(), nil, ccfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s = <-accepted
	if s == nil {
		t.Fatal("Accept failed")
	}
	t.Cleanup(func() { s.Close() })
	return s, c
}

// A verification still running when Attest's caller gives up never
// commits, not even later; with KeepOnFailure the connection stays
// unattested (no streams) after the late result.
func TestLateVerificationDropped(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(map[bool]string{false: "default", true: "KeepOnFailure"}[keep], func(t *testing.T) {
			checkGoroutines(t)
			k := newKit(t)
			ctx := ctxT(t)
			g := newGated(t, trusting(k.SrvKey))
			ccfg := k.clientConfig(false)
			ccfg.Verifier, ccfg.KeepOnFailure = g, keep
			scfg := k.serverConfig(false)
			scfg.PeerRequestInterval = time.Millisecond
			_, c := pair(t, k, scfg, ccfg)
			<-g.done
			g.close()
			short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			defer cancel()
			var err error
			within(t, "Attest", slack(500*time.Millisecond), func() { _, err = c.Attest(short) })
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Attest: %v, want a deadline error", err)
			}
			select {
			case <-g.entered:
			default:
				t.Fatal("Attest gave up before the answer reached the Verifier")
			}
			g.open()
			select {
			case <-g.done:
			case <-time.After(5 * time.Second):
				t.Fatal("the Verifier never finished")
			}
			time.Sleep(50 * time.Millisecond)
			if a := c.PeerAttestation(); a != nil {
				t.Fatalf("late result committed: %+v", a)
			}
			_, err = c.OpenStream()
			switch {
			case err == nil:
				t.Fatal("OpenStream after an abandoned attestation")
			case keep && !errors.Is(err, expat.ErrNotAttested):
				t.Fatalf("OpenStream: %v, want ErrNotAttested", err)
			}
			within(t, "Close", 2*time.Second, func() { c.Close() })
		})
	}
}

// Close returns promptly while a Verifier that ignores ctx is at work on a
// re-attestation; the Attest in progress returns.
func TestCloseWithStuckVerifier(t *testing.T) {
	checkGoroutines(t)
	k := newKit(t)
	g := newGated(t, trusting(k.SrvKey))
	ccfg := k.clientConfig(false)
	ccfg.Verifier = g
	scfg := k.serverConfig(false)
	scfg.PeerRequestInterval = time.Millisecond
	_, c := pair(t, k, scfg, ccfg)
	<-g.done
	g.close()
	errc := make(chan error, 1)
	go func() { _, err := c.Attest(context.Background()); errc <- err }()
	select {
	case <-g.entered: // the answer is being verified
	case <-time.After(5 * time.Second):
		t.Fatal("the re-attestation's answer never reached the Verifier")
	}
	within(t, "Close", 2*time.Second, func() { c.Close() })
	select {
	case err := <-errc:
		if !errors.Is(err, expat.ErrClosed) {
			t.Fatalf("Attest across Close: %v, want ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Attest did not return after Close")
	}
}

// An attestation ends at its ValidUntil: by default the connection closes
// (certificate_expired, ErrAttestationExpired); with KeepOnFailure it
// stays open without streams.
func TestAttestationExpires(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(map[bool]string{false: "default", true: "KeepOnFailure"}[keep], func(t *testing.T) {
			checkGoroutines(t)
			k := newKit(t)
			ccfg := k.clientConfig(false)
			ccfg.MaxAttestationAge, ccfg.KeepOnFailure = 300*time.Millisecond, keep
			s, c := pair(t, k, k.serverConfig(false), ccfg)
			a := c.PeerAttestation()
			if a == nil || a.ValidUntil.Sub(a.VerifiedAt) != 300*time.Millisecond {
				t.Fatalf("attestation %+v, want ValidUntil 300ms after VerifiedAt", a)
			}
			if _, err := c.OpenStream(); err != nil {
				t.Fatalf("OpenStream while attested: %v", err)
			}
			time.Sleep(400 * time.Millisecond)
			if c.PeerAttestation() != nil {
				t.Fatal("PeerAttestation after ValidUntil")
			}
			_, err := c.OpenStream()
			if keep {
				if !errors.Is(err, expat.ErrNotAttested) {
					t.Fatalf("OpenStream after expiry: %v, want ErrNotAttested", err)
				}
				if c.Context().Err() != nil {
					t.Fatalf("KeepOnFailure: closed at expiry: %v", c.endErr())
				}
				return
			}
			if !errors.Is(err, expat.ErrAttestationExpired) {
				t.Fatalf("OpenStream after expiry: %v, want ErrAttestationExpired", err)
			}
			<-s.Context().Done()
			wantCode(t, s.endErr(), 45)
		})
	}
}

// ReattestEvery re-attests the peer on its own; each result reaches
// OnReattest and becomes the latest attestation.
func TestScheduledReattestation(t *testing.T) {
	checkGoroutines(t)
	k := newKit(t)
	got := make(chan *expat.Attestation, 8)
	scfg := k.serverConfig(false)
	scfg.PeerRequestInterval = time.Millisecond
	ccfg := k.clientConfig(false)
	ccfg.ReattestEvery = 150 * time.Millisecond
	ccfg.OnReattest = func(a *expat.Attestation, err error) {
		if err != nil {
			t.Errorf("scheduled re-attestation: %v", err)
		}
		got <- a
	}
	_, c := pair(t, k, scfg, ccfg)
	for want := uint64(2); want <= 3; want++ {
		select {
		case a := <-got:
			if a == nil || a.Seq != want {
				t.Fatalf("scheduled re-attestation %+v, want Seq %d", a, want)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("no scheduled re-attestation %d", want)
		}
	}
	if a := c.PeerAttestation(); a == nil || a.Seq < 3 {
		t.Fatalf("latest %+v", a)
	}
}

type ctxKey struct{}

// recordingVerifier records the ctx value of ctxKey it is called with.
type recordingVerifier struct {
	verifier.Verifier
	seen chan any
}

func (v *recordingVerifier) Verify(ctx context.Context, cmw []byte, exp *verifier.Expected) (*verifier.Result, error) {
	v.seen <- ctx.Value(ctxKey{})
	return v.Verifier.Verify(ctx, cmw, exp)
}

func (v *recordingVerifier) Formats() []string { return v.Verifier.(expat.Formats).Formats() }

// The Verifier runs under the caller's ctx: Dial's for the setup,
// Attest's for a re-attestation.
func TestVerifierGetsCallersContext(t *testing.T) {
	checkGoroutines(t)
	k := newKit(t)
	ctx := ctxT(t)
	l := listen(t, k, k.serverConfig(false))
	go l.Accept(ctx)
	rv := &recordingVerifier{Verifier: trusting(k.SrvKey), seen: make(chan any, 2)}
	ccfg := k.clientConfig(false)
	ccfg.Verifier = rv
	c, err := Dial(context.WithValue(ctx, ctxKey{}, "dial"), l.Addr().String(), k.clientTLS(), nil, ccfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if v := <-rv.seen; v != "dial" {
		t.Fatalf("setup Verifier saw %v, want Dial's ctx", v)
	}
	if _, err := c.Attest(context.WithValue(ctx, ctxKey{}, "attest")); err != nil {
		t.Fatal(err)
	}
	if v := <-rv.seen; v != "attest" {
		t.Fatalf("re-attestation Verifier saw %v, want Attest's ctx", v)
	}
}

// expat.Config.Release is honoured as by expat.Conn: a server releasing
// Evidence only to attested peers answers a client that attests, after
// its attestation, and produces no Evidence for one whose Attester fails
// (it refuses; formats in common, so it is Release that decides).
func TestReleaseToAttested(t *testing.T) {
	checkGoroutines(t)
	k := newKit(t)
	ctx := ctxT(t)
	for _, attests := range []bool{true, false} {
		scfg := k.serverConfig(true)
		calls := &carriertest.CountingAttester{Inner: scfg.Attester}
		scfg.Attester, scfg.Release = calls, expat.ReleaseToAttested
		l := listen(t, k, scfg)
		go l.Accept(ctx)
		ccfg := k.clientConfig(true)
		if !attests {
			ccfg.Attester = &testkit.Attester{Key: k.CliKey, Err: errors.New("not attesting")}
		}
		c, err := Dial(ctx, l.Addr().String(), k.clientTLS(), nil, ccfg)
		switch {
		case attests && err != nil:
			t.Fatalf("attested client: %v", err)
		case attests:
			c.Close()
		case err == nil:
			t.Fatal("client that refused to attest got the server's attestation")
		}
		if n, want := calls.N.Load(), map[bool]int32{true: 1, false: 0}[attests]; n != want {
			t.Fatalf("client attests %v: the server produced Evidence %d times, want %d", attests, n, want)
		}
		l.Close()
	}
}
