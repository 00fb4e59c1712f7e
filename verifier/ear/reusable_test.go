package ear

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/expat/expattest"
	"github.com/attested-tls/go-expat/expat/expattest/testkit"
	"github.com/attested-tls/go-expat/internal/checktest"
	"github.com/attested-tls/go-expat/verifier"
)

// fakeClock is a settable clock whose timers fire when Advance passes
// their deadline.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	c       chan time.Time
	stopped bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: now} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), c: make(chan time.Time, 1)}
	if d <= 0 {
		t.c <- c.now
		return t.c, func() bool { return false }
	}
	c.timers = append(c.timers, t)
	return t.c, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.stopped
		t.stopped = true
		return was
	}
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.stopped:
		case !t.at.After(c.now):
			t.c <- c.now
		default:
			kept = append(kept, t)
		}
	}
	c.timers = kept
}

// countingAttester counts Evidence requests and can be made to fail or to
// block.
type countingAttester struct {
	inner attester.Attester
	calls atomic.Int32
	fail  atomic.Pointer[error]
	gate  atomic.Pointer[chan struct{}] // when set, Attest waits for it (ignoring ctx if hang)
	hang  bool
}

var errDevice = errors.New("test: attestation device unavailable")

func (a *countingAttester) Attest(ctx context.Context, ch attester.Challenge) ([]byte, error) {
	a.calls.Add(1)
	if g := a.gate.Load(); g != nil {
		if a.hang {
			<-*g
		} else {
			select {
			case <-*g:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	if err := a.fail.Load(); err != nil {
		return nil, *err
	}
	return a.inner.Attest(ctx, ch)
}

func (a *countingAttester) setFail(err error) {
	if err == nil {
		a.fail.Store(nil)
		return
	}
	a.fail.Store(&err)
}

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// keyFixture is a key-bound passport setup: test-kit Evidence, a real
// ECDSA issuer key, an EA key.
type keyFixture struct {
	*fixture
	clk   *fakeClock
	count *countingAttester
	eaKey *ecdsa.PrivateKey
}

func newKeyFixture(t *testing.T, validity time.Duration) *keyFixture {
	t.Helper()
	f := newFixture(t)
	eaKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f.eaSPKI, _ = x509.MarshalPKIXPublicKey(&eaKey.PublicKey)
	clk := newFakeClock()
	f.issuer.Time = clk.Now
	f.issuer.Validity = validity
	return &keyFixture{fixture: f, clk: clk, eaKey: eaKey, count: &countingAttester{inner: &testkit.Attester{Key: f.ak}}}
}

// start returns a ReusablePassport on the fake clock.
func (k *keyFixture) start(t *testing.T, cfg ReusablePassportConfig) *ReusablePassport {
	t.Helper()
	cfg.Evidence, cfg.Issuer, cfg.SPKI = k.count, k.issuer, k.eaSPKI
	p, err := newReusablePassport(&cfg, k.clk.NewTimer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// connChallenge is a connection's challenge for the EA key spki.
func connChallenge(spki []byte, seed byte) attester.Challenge {
	k := sha256.Sum256(spki)
	return attester.Challenge{Hash: crypto.SHA256, Binding: bytes.Repeat([]byte{seed}, 32), AIKPubHash: k[:]}
}

// keyVerifier is a relying party accepting key-bound passports.
func (k *keyFixture) keyVerifier(maxAge time.Duration) *Verifier {
	cfg := k.config()
	cfg.Bindings = BindKey
	cfg.KeyBoundMaxAge = maxAge
	cfg.Time = k.clk.Now
	return mustNew(cfg)
}

// payloadOf decodes the claims of a passport record.
func payloadOf(t *testing.T, rec []byte) map[string]any {
	t.Helper()
	c, err := cmw.Decode(rec, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := c.Record()
	parts := strings.Split(string(r.Value), ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestKeyChallenge(t *testing.T) {
	spki := []byte{0x30, 0x59, 1, 2, 3}
	nonce := bytes.Repeat([]byte{9}, 32)
	ch, err := KeyChallenge(spki, nonce)
	if err != nil {
		t.Fatal(err)
	}
	// Independently: SHA-256 over the explicit concatenation.
	in := append([]byte("go-expat key-bound passport v1\x00"), spki...)
	in = append(in, nonce...)
	wantB, wantK := sha256.Sum256(in), sha256.Sum256(spki)
	if ch.Hash != crypto.SHA256 || !bytes.Equal(ch.Binding, wantB[:]) || !bytes.Equal(ch.AIKPubHash, wantK[:]) {
		t.Fatalf("got %x %x", ch.Binding, ch.AIKPubHash)
	}
	if err := ch.Check(); err != nil {
		t.Fatal(err)
	}
	other, _ := KeyChallenge(spki, bytes.Repeat([]byte{8}, 32))
	if bytes.Equal(other.Binding, ch.Binding) {
		t.Fatal("the nonce does not change the challenge")
	}
	for _, tc := range []struct {
		name        string
		spki, nonce []byte
	}{{"no key", nil, nonce}, {"short nonce", spki, nonce[:31]}, {"long nonce", spki, append(nonce, 0)}} {
		if _, err := KeyChallenge(tc.spki, tc.nonce); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

// TestIssueForKey: a key-bound EAR has akpub and no eat_nonce, is accepted
// by a key-binding relying party for any connection with that key, and
// only for Evidence over its request's challenge.
func TestIssueForKey(t *testing.T) {
	k := newKeyFixture(t, time.Hour)
	ctx := context.Background()
	ev := &testkit.Attester{Key: k.ak}
	req, err := k.issuer.NewKeyRequest(k.eaSPKI)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := ev.Attest(ctx, req.Challenge())
	tok, res, err := k.issuer.IssueForKey(ctx, req, e)
	if err != nil {
		t.Fatal(err)
	}
	if res.KeyBinding != verifier.KeyInEvidence {
		t.Errorf("appraisal key binding %v", res.KeyBinding)
	}
	rec := wrap(t, tok)
	claims := payloadOf(t, rec)
	if _, ok := claims["eat_nonce"]; ok {
		t.Error("key-bound EAR has eat_nonce")
	}
	if claims["exp"].(float64)-claims["iat"].(float64) != 3600 {
		t.Errorf("exp - iat = %v", claims["exp"].(float64)-claims["iat"].(float64))
	}
	ka := claims["submods"].(map[string]any)[testkit.Technology].(map[string]any)["ear.veraison.key-attestation"].(map[string]any)
	if ka["akpub"] != base64.RawURLEncoding.EncodeToString(k.eaSPKI) {
		t.Errorf("akpub %v", ka["akpub"])
	}

	rp := k.keyVerifier(0)
	for seed := byte(1); seed < 4; seed++ { // any connection with this key
		exp := &verifier.Expected{Challenge: connChallenge(k.eaSPKI, seed), SPKI: k.eaSPKI, Now: now.Add(time.Minute)}
		res, err := rp.Verify(ctx, rec, exp)
		if err != nil {
			t.Fatal(err)
		}
		if res.KeyBinding != verifier.KeyInResult || !res.Expires.Equal(now.Add(DefaultMaxAge)) {
			t.Fatalf("key binding %v, expires %v", res.KeyBinding, res.Expires)
		}
	}
	// A nonce-only relying party has nothing to check it against.
	_, err = k.verifier().Verify(ctx, rec, &verifier.Expected{Challenge: connChallenge(k.eaSPKI, 1), SPKI: k.eaSPKI, Now: now})
	wantCheck(t, nil, err, verifier.CheckNonce)

	t.Run("request used twice", func(t *testing.T) {
		if _, _, err := k.issuer.IssueForKey(ctx, req, e); err == nil {
			t.Fatal("a request issued twice")
		}
	})
	t.Run("request of another Issuer", func(t *testing.T) {
		other := *k.issuer
		r, _ := other.NewKeyRequest(k.eaSPKI)
		e, _ := ev.Attest(ctx, r.Challenge())
		if _, _, err := k.issuer.IssueForKey(ctx, r, e); err == nil {
			t.Fatal("accepted")
		}
	})
	t.Run("stale request", func(t *testing.T) {
		r, _ := k.issuer.NewKeyRequest(k.eaSPKI)
		e, _ := ev.Attest(ctx, r.Challenge())
		k.clk.Advance(KeyRequestLifetime + time.Second)
		if _, _, err := k.issuer.IssueForKey(ctx, r, e); err == nil {
			t.Fatal("accepted")
		}
	})
	for _, tc := range []struct {
		name string
		ch   func(r *KeyRequest) attester.Challenge
	}{
		{"Evidence for a connection", func(*KeyRequest) attester.Challenge { return connChallenge(k.eaSPKI, 1) }},
		{"Evidence for an earlier request", func(*KeyRequest) attester.Challenge { return req.Challenge() }},
		{"Evidence for another key", func(*KeyRequest) attester.Challenge {
			r, _ := k.issuer.NewKeyRequest(k.fixture.eaSPKIOther(t))
			return r.Challenge()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := k.issuer.NewKeyRequest(k.eaSPKI)
			e, _ := ev.Attest(ctx, tc.ch(r))
			_, _, err := k.issuer.IssueForKey(ctx, r, e)
			wantCheck(t, nil, err, verifier.CheckChallenge)
		})
	}
	t.Run("malformed key", func(t *testing.T) {
		if _, err := k.issuer.NewKeyRequest([]byte{0x30, 0}); err == nil {
			t.Fatal("accepted")
		}
	})
}

func (f *fixture) eaSPKIOther(t *testing.T) []byte {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestKeyBoundMaxAge: the relying party's age bound for key-bound
// passports, separate from MaxAge for nonce-bound EARs.
func TestKeyBoundMaxAge(t *testing.T) {
	k := newKeyFixture(t, time.Hour)
	ctx := context.Background()
	p := k.start(t, ReusablePassportConfig{})
	ch := connChallenge(k.eaSPKI, 1)
	rec, err := p.Attest(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	cfg := k.config()
	cfg.Bindings, cfg.MaxAge, cfg.KeyBoundMaxAge = BindKey|BindNonce, time.Minute, 10*time.Minute
	rp := mustNew(cfg)
	for _, tc := range []struct {
		name  string
		age   time.Duration
		spki  []byte
		check verifier.Check
	}{
		{"older than MaxAge, within KeyBoundMaxAge", 5 * time.Minute, k.eaSPKI, 0},
		{"just within KeyBoundMaxAge", 10 * time.Minute, k.eaSPKI, 0},
		{"older than KeyBoundMaxAge", 10*time.Minute + time.Second, k.eaSPKI, verifier.CheckAge},
		{"presented with another EA key", time.Minute, k.eaSPKIOther(t), verifier.CheckKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := rp.Verify(ctx, rec, &verifier.Expected{Challenge: ch, SPKI: tc.spki, Now: now.Add(tc.age)})
			wantCheck(t, res, err, tc.check)
			if err == nil && !res.Expires.Equal(now.Add(10*time.Minute)) {
				t.Errorf("expires %v", res.Expires)
			}
		})
	}
	// The nonce-bound EAR of the same issuer is still held to MaxAge.
	f := k.fixture
	f.issuer.KeyAttestation = true
	nb, err := f.passAtt.Attest(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	_, err = rp.Verify(ctx, nb, &verifier.Expected{Challenge: ch, SPKI: f.passAtt.SPKI, Now: now.Add(time.Second)})
	wantCheck(t, nil, err, 0)
	_, err = rp.Verify(ctx, nb, &verifier.Expected{Challenge: ch, SPKI: f.passAtt.SPKI, Now: now.Add(5 * time.Minute)})
	wantCheck(t, nil, err, verifier.CheckAge)
	// Without KeyBoundMaxAge, MaxAge bounds key-bound passports too.
	cfg.KeyBoundMaxAge = 0
	_, err = mustNew(cfg).Verify(ctx, rec, &verifier.Expected{Challenge: ch, SPKI: k.eaSPKI, Now: now.Add(5 * time.Minute)})
	wantCheck(t, nil, err, verifier.CheckAge)
}

// TestReusablePassportRefresh: one passport for many Attest calls, the
// next one obtained RefreshBefore its exp, Attest never waiting for a
// refresh while the current passport is valid.
func TestReusablePassportRefresh(t *testing.T) {
	k := newKeyFixture(t, time.Minute)
	ctx := context.Background()
	p := k.start(t, ReusablePassportConfig{RefreshBefore: 20 * time.Second})
	ch := connChallenge(k.eaSPKI, 1)
	first, err := p.Attest(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		b, err := p.Attest(ctx, connChallenge(k.eaSPKI, byte(i)))
		if err != nil || !bytes.Equal(b, first) {
			t.Fatalf("Attest %d: %v", i, err)
		}
	}
	if n := k.count.calls.Load(); n != 1 {
		t.Fatalf("%d Evidence requests for one passport", n)
	}
	if !p.Expires().Equal(now.Add(time.Minute)) {
		t.Fatalf("expires %v", p.Expires())
	}
	k.clk.Advance(39 * time.Second)
	time.Sleep(20 * time.Millisecond)
	if n := k.count.calls.Load(); n != 1 {
		t.Fatalf("refreshed %v before RefreshBefore", n)
	}

	// The refresh blocks in the Evidence attester: Attest still answers
	// at once with the current passport.
	gate := make(chan struct{})
	k.count.gate.Store(&gate)
	k.clk.Advance(2 * time.Second)
	eventually(t, "the refresh", func() bool { return k.count.calls.Load() == 2 })
	actx, cancel := context.WithTimeout(ctx, 2*time.Second)
	b, err := p.Attest(actx, ch)
	cancel()
	if err != nil || !bytes.Equal(b, first) {
		t.Fatalf("Attest during a refresh: %v", err)
	}
	close(gate)
	want := now.Add(41*time.Second + time.Minute)
	eventually(t, "the new passport", func() bool { return p.Expires().Equal(want) })
	b, err = p.Attest(ctx, ch)
	if err != nil || bytes.Equal(b, first) {
		t.Fatalf("after the refresh: %v, same passport %v", err, bytes.Equal(b, first))
	}
	res, err := k.keyVerifier(time.Hour).Verify(ctx, b, &verifier.Expected{Challenge: ch, SPKI: k.eaSPKI})
	if err != nil || !res.AppraisedAt.Equal(now.Add(41*time.Second)) {
		t.Fatalf("refreshed passport: %v", err)
	}
}

// TestReusablePassportRefreshFails: a refresh that keeps failing is tried
// Retry.MaxAttempts times, the passport is handed out until its exp and
// never after; Attest then fails, starts at most one issuance per
// Retry.Initial, and recovers once Evidence is available again.
func TestReusablePassportRefreshFails(t *testing.T) {
	k := newKeyFixture(t, time.Minute)
	ctx := context.Background()
	p := k.start(t, ReusablePassportConfig{RefreshBefore: 30 * time.Second,
		Retry: attester.RetryPolicy{MaxAttempts: 3, Initial: time.Second, Max: 2 * time.Second}})
	ch := connChallenge(k.eaSPKI, 1)
	first, err := p.Attest(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	k.count.setFail(errDevice)
	k.clk.Advance(30 * time.Second) // refresh due
	for i := 0; k.count.calls.Load() < 4; i++ {
		if i > 10000 {
			t.Fatalf("%d attempts", k.count.calls.Load())
		}
		k.clk.Advance(100 * time.Millisecond) // through the backoffs
		time.Sleep(time.Millisecond)
		b, err := p.Attest(ctx, ch)
		if err != nil || !bytes.Equal(b, first) {
			t.Fatalf("Attest while the passport is valid: %v", err)
		}
	}
	k.clk.Advance(20 * time.Second)
	time.Sleep(20 * time.Millisecond)
	if n := k.count.calls.Load(); n != 4 {
		t.Fatalf("%d Evidence requests, want 1 + 3 attempts", n)
	}
	if _, err := p.Attest(ctx, ch); err != nil {
		t.Fatalf("just before exp: %v", err)
	}

	k.clk.Advance(10 * time.Second) // past exp
	_, err = p.Attest(ctx, ch)
	if !errors.Is(err, ErrNoPassport) || !errors.Is(err, errDevice) {
		t.Fatalf("after exp: %v", err)
	}
	checktest.NoRepeat(t, err)
	if p.Expires() != (time.Time{}) {
		t.Fatal("Expires names an expired passport")
	}
	for range 10 { // within Retry.Initial: no new Evidence request
		if _, err := p.Attest(ctx, ch); !errors.Is(err, ErrNoPassport) {
			t.Fatalf("got %v", err)
		}
	}
	if n := k.count.calls.Load(); n != 5 {
		t.Fatalf("%d Evidence requests, want one more on demand", n)
	}

	k.count.setFail(nil)
	k.clk.Advance(time.Second)
	b, err := p.Attest(ctx, ch)
	if err != nil || bytes.Equal(b, first) {
		t.Fatalf("recovery: %v", err)
	}
	if want := k.clk.Now().Truncate(time.Second).Add(time.Minute); !p.Expires().Equal(want) {
		t.Fatalf("expires %v, want %v", p.Expires(), want)
	}
	// And the refresher schedules the recovered passport's refresh.
	k.clk.Advance(30 * time.Second)
	want := k.clk.Now().Truncate(time.Second).Add(time.Minute)
	eventually(t, "the next refresh", func() bool { return p.Expires().Equal(want) })
}

// TestReusablePassportConcurrent: concurrent Attest calls across refreshes
// all get a valid passport (run with -race).
func TestReusablePassportConcurrent(t *testing.T) {
	k := newKeyFixture(t, time.Minute)
	k.count.inner = &testkit.Attester{Key: k.ak, Delay: 2 * time.Millisecond} // a wider refresh window
	p := k.start(t, ReusablePassportConfig{RefreshBefore: 30 * time.Second})
	rp := k.keyVerifier(time.Hour)
	ctx := context.Background()
	if _, err := p.Attest(ctx, connChallenge(k.eaSPKI, 0)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var served atomic.Int64
	for g := range 8 {
		wg.Go(func() {
			ch := connChallenge(k.eaSPKI, byte(g))
			for {
				select {
				case <-stop:
					return
				default:
				}
				t0 := k.clk.Now()
				b, err := p.Attest(ctx, ch)
				if err != nil {
					t.Error(err)
					return
				}
				// Valid when handed out; the clock may have jumped
				// since (then it may be judged stale at t1).
				t1 := k.clk.Now()
				if _, err := rp.Verify(ctx, b, &verifier.Expected{Challenge: ch, SPKI: k.eaSPKI, Now: t1}); err != nil {
					if t1.Equal(t0) {
						t.Error(err)
						return
					}
					continue
				}
				served.Add(1)
			}
		})
	}
	for i := range 6 {
		before := p.Expires()
		k.clk.Advance(31 * time.Second)
		eventually(t, "refresh", func() bool { return p.Expires().After(before) })
		_ = i
	}
	close(stop)
	wg.Wait()
	if n := k.count.calls.Load(); n != 7 || served.Load() == 0 {
		t.Fatalf("%d Evidence requests for 7 passports, %d served", n, served.Load())
	}

	// Callers waiting for the first passport share one issuance.
	k2 := newKeyFixture(t, time.Minute)
	gate := make(chan struct{})
	k2.count.gate.Store(&gate)
	p2 := k2.start(t, ReusablePassportConfig{})
	got := make([][]byte, 8)
	var wg2 sync.WaitGroup
	for i := range got {
		wg2.Go(func() {
			b, err := p2.Attest(ctx, connChallenge(k2.eaSPKI, byte(i)))
			if err != nil {
				t.Error(err)
			}
			got[i] = b
		})
	}
	time.Sleep(20 * time.Millisecond)
	close(gate)
	wg2.Wait()
	for i := range got {
		if !bytes.Equal(got[i], got[0]) || got[i] == nil {
			t.Fatalf("caller %d got another passport", i)
		}
	}
	if n := k2.count.calls.Load(); n != 1 {
		t.Fatalf("%d Evidence requests for one passport", n)
	}
}

// TestReusablePassportBounded: Attest honours ctx while no passport is
// ready, Close is bounded with an Evidence attester that ignores
// cancellation, and Attest fails after Close.
func TestReusablePassportBounded(t *testing.T) {
	k := newKeyFixture(t, time.Minute)
	gate := make(chan struct{})
	defer close(gate)
	k.count.hang = true
	k.count.gate.Store(&gate)
	p := k.start(t, ReusablePassportConfig{})
	ch := connChallenge(k.eaSPKI, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	if _, err := p.Attest(ctx, ch); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrNoPassport) {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(t0); d > time.Second {
		t.Fatalf("Attest took %v past its deadline", d)
	}
	t0 = time.Now()
	p.Close()
	if d := time.Since(t0); d > 3*time.Second {
		t.Fatalf("Close took %v", d)
	}
	if _, err := p.Attest(context.Background(), ch); !errors.Is(err, ErrNoPassport) {
		t.Fatalf("after Close: %v", err)
	}
	p.Close() // idempotent
}

func TestReusablePassportConfig(t *testing.T) {
	k := newKeyFixture(t, time.Minute)
	ok := ReusablePassportConfig{Evidence: k.count, Issuer: k.issuer, SPKI: k.eaSPKI}
	for _, tc := range []struct {
		name string
		edit func(c *ReusablePassportConfig)
	}{
		{"no Evidence", func(c *ReusablePassportConfig) { c.Evidence = nil }},
		{"no Issuer", func(c *ReusablePassportConfig) { c.Issuer = nil }},
		{"Issuer without key", func(c *ReusablePassportConfig) { c.Issuer = &Issuer{Appraiser: k.issuer.Appraiser} }},
		{"no SPKI", func(c *ReusablePassportConfig) { c.SPKI = nil }},
		{"malformed SPKI", func(c *ReusablePassportConfig) { c.SPKI = []byte{0x30, 1, 0} }},
		{"RefreshBefore = Validity", func(c *ReusablePassportConfig) { c.RefreshBefore = time.Minute }},
		{"negative attempts", func(c *ReusablePassportConfig) { c.Retry.MaxAttempts = -1 }},
		{"negative backoff", func(c *ReusablePassportConfig) { c.Retry.Initial = -time.Second }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			if p, err := NewReusablePassport(&c); err == nil {
				p.Close()
				t.Fatal("accepted")
			}
		})
	}
	if _, err := NewReusablePassport(nil); err == nil {
		t.Fatal("nil config accepted")
	}
	p, err := NewReusablePassport(&ok)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// A challenge for another key or a malformed one is refused.
	if _, err := p.Attest(context.Background(), connChallenge(k.eaSPKIOther(t), 1)); err == nil || errors.Is(err, ErrNoPassport) {
		t.Fatalf("another key: %v", err)
	}
	if _, err := p.Attest(context.Background(), attester.Challenge{Hash: crypto.SHA256}); !errors.Is(err, attester.ErrInvalidChallenge) {
		t.Fatalf("malformed challenge: %v", err)
	}
}

// TestReusablePassportConnections: real attested TLS connections through
// expat, one key-bound passport (one Evidence) for all of them; the
// passport replayed on a connection with another EA key is rejected.
// liveKit is what tests over real connections need: a CA, a server
// certificate from it, and a test-kit attestation key.
func liveKit(t *testing.T) (*expattest.CA, tls.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	ca, err := expattest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue(expattest.ServerName, nil)
	if err != nil {
		t.Fatal(err)
	}
	ak, err := testkit.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return ca, cert, ak
}

func TestReusablePassportConnections(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ca, cert, ak := liveKit(t)
	issKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	count := &countingAttester{inner: &testkit.Attester{Key: ak}}
	iss := &Issuer{Appraiser: &testkit.Verifier{TrustedKeys: []*ecdsa.PublicKey{&ak.PublicKey}}, Key: issKey, Name: "issuer", Validity: time.Hour}
	p, err := NewReusablePassport(&ReusablePassportConfig{Evidence: count, Issuer: iss, SPKI: cert.Leaf.RawSubjectPublicKeyInfo})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	rp := mustNew(&Config{Keys: []TrustedKey{{Key: &issKey.PublicKey}}, Issuer: "issuer", Bindings: BindKey, KeyBoundMaxAge: time.Hour})
	client := &expat.Config{RequirePeerAttestation: true, Verifier: rp, MinKeyBinding: verifier.KeyInResult}
	var ear []byte
	const n = 12
	for i := range n {
		pair, err := ca.Pair(ctx, &expat.Config{Attester: p, Certificate: &cert}, client)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		res := pair.Client.PeerAttestation().Result
		if res.Model != verifier.Passport || res.KeyBinding != verifier.KeyInResult {
			t.Fatalf("result %+v", res)
		}
		if i == 0 {
			ear = res.EAR
		} else if !bytes.Equal(res.EAR, ear) {
			t.Fatalf("connection %d got another EAR", i)
		}
		pair.Close()
	}
	if c := count.calls.Load(); c != 1 {
		t.Fatalf("%d Evidence requests for %d connections", c, n)
	}

	// A server with another EA key replays the passport: it passes the
	// passport's key hash to Attest, so the EAR reaches the relying party.
	other, _ := ca.Issue(expattest.ServerName, nil)
	aik := sha256.Sum256(cert.Leaf.RawSubjectPublicKeyInfo)
	replay := attesterFunc(func(ctx context.Context, ch attester.Challenge) ([]byte, error) {
		return p.Attest(ctx, attester.Challenge{Hash: crypto.SHA256, Binding: ch.Binding, AIKPubHash: aik[:]})
	})
	pair, err := ca.Pair(ctx, &expat.Config{Attester: replay, Certificate: &other}, client)
	if pair != nil {
		defer pair.Close()
	}
	var rej *verifier.RejectedError
	if !errors.As(err, &rej) || rej.Check != verifier.CheckKey {
		t.Fatalf("replayed on another key: %v", err)
	}
	// Without the replay, the passport attester refuses the other key.
	pair2, err := ca.Pair(ctx, &expat.Config{Attester: p, Certificate: &other}, client)
	if pair2 != nil {
		defer pair2.Close()
	}
	if err == nil {
		t.Fatal("passport handed out for another key")
	}
}

type attesterFunc func(context.Context, attester.Challenge) ([]byte, error)

func (f attesterFunc) Attest(ctx context.Context, ch attester.Challenge) ([]byte, error) {
	return f(ctx, ch)
}

// TestReusedTokenCache: a key-bound EAR seen again skips the signature
// check, never the checks of age, key and status; nonce-bound EARs are
// not kept; the cache is bounded; other bytes are checked afresh.
func TestReusedTokenCache(t *testing.T) {
	k := newKeyFixture(t, time.Hour)
	ctx := context.Background()
	rp := k.keyVerifier(10 * time.Minute)
	issue := func() []byte {
		req, err := k.issuer.NewKeyRequest(k.eaSPKI)
		if err != nil {
			t.Fatal(err)
		}
		e, _ := (&testkit.Attester{Key: k.ak}).Attest(ctx, req.Challenge())
		tok, _, err := k.issuer.IssueForKey(ctx, req, e)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tok := issue()
	ch := connChallenge(k.eaSPKI, 1)
	at := func(d time.Duration, spki []byte) *verifier.Expected {
		return &verifier.Expected{Challenge: ch, SPKI: spki, Now: now.Add(d)}
	}
	for range 3 {
		if _, err := rp.VerifyJWT(ctx, tok, at(time.Minute, k.eaSPKI)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(rp.reused.m); n != 1 {
		t.Fatalf("%d cached tokens", n)
	}
	_, err := rp.VerifyJWT(ctx, tok, at(11*time.Minute, k.eaSPKI))
	wantCheck(t, nil, err, verifier.CheckAge)
	_, err = rp.VerifyJWT(ctx, tok, at(time.Minute, k.eaSPKIOther(t)))
	wantCheck(t, nil, err, verifier.CheckKey)

	// The same claims under another signature are checked afresh.
	forged := append(bytes.Clone(tok[:bytes.LastIndexByte(tok, '.')+1]), []byte(b64(bytes.Repeat([]byte{1}, 64)))...)
	_, err = rp.VerifyJWT(ctx, forged, at(time.Minute, k.eaSPKI))
	wantCheck(t, nil, err, verifier.CheckSignature)
	// A Verifier that does not trust the issuer rejects the token.
	cfg := k.config()
	cfg.Keys, cfg.Bindings = []TrustedKey{{Key: &k.eaKey.PublicKey}}, BindKey
	_, err = mustNew(cfg).VerifyJWT(ctx, tok, at(time.Minute, k.eaSPKI))
	wantCheck(t, nil, err, verifier.CheckSignature)

	// Nonce-bound EARs are not kept.
	nrp := k.verifier()
	nb, err := k.passAtt.Attest(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nrp.Verify(ctx, nb, &verifier.Expected{Challenge: ch, Now: now}); err != nil || len(nrp.reused.m) != 0 {
		t.Fatalf("nonce-bound: %v, %d cached", err, len(nrp.reused.m))
	}

	for i := range maxReusedTokens + 10 {
		k.clk.Advance(time.Second) // another iat: another token
		if _, err := rp.VerifyJWT(ctx, issue(), at(time.Duration(i+2)*time.Second, k.eaSPKI)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(rp.reused.m); n > maxReusedTokens {
		t.Fatalf("%d cached tokens, bound %d", n, maxReusedTokens)
	}
}

// TestReusablePassportReattest: on a long-lived expat connection whose
// relying party re-attests before ValidUntil (expat.Config.ReattestBefore),
// the re-attestation gets the refreshed passport, and the connection stays
// attested past the first passport's exp (real time: a few seconds).
func TestReusablePassportReattest(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ca, cert, ak := liveKit(t)
	issKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	count := &countingAttester{inner: &testkit.Attester{Key: ak}}
	iss := &Issuer{Appraiser: &testkit.Verifier{TrustedKeys: []*ecdsa.PublicKey{&ak.PublicKey}}, Key: issKey, Validity: 4 * time.Second}
	p, err := NewReusablePassport(&ReusablePassportConfig{Evidence: count, Issuer: iss, SPKI: cert.Leaf.RawSubjectPublicKeyInfo, RefreshBefore: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	rp := mustNew(&Config{Keys: []TrustedKey{{Key: &issKey.PublicKey}}, Bindings: BindKey, KeyBoundMaxAge: time.Minute})
	reattested := make(chan *expat.Attestation, 4)
	client := &expat.Config{RequirePeerAttestation: true, Verifier: rp, ReattestBefore: time.Second,
		OnReattest: func(att *expat.Attestation, err error) {
			if err != nil {
				t.Errorf("re-attestation: %v", err)
				return
			}
			reattested <- att
		}}
	pair, err := ca.Pair(ctx, &expat.Config{Attester: p, Certificate: &cert}, client)
	if err != nil {
		t.Fatal(err)
	}
	defer pair.Close()
	first := pair.Client.PeerAttestation()
	select {
	case att := <-reattested:
		if bytes.Equal(att.Result.EAR, first.Result.EAR) || !att.ValidUntil.After(first.ValidUntil) {
			t.Fatalf("re-attested with the same passport (valid until %v, first %v)", att.ValidUntil, first.ValidUntil)
		}
	case <-ctx.Done():
		t.Fatal("no re-attestation")
	}
	if time.Now().Before(first.ValidUntil) {
		time.Sleep(time.Until(first.ValidUntil) + 100*time.Millisecond)
	}
	// Past the first passport's exp the connection still carries data.
	go func() {
		b := make([]byte, 1)
		if _, err := pair.Server.Read(b); err == nil {
			pair.Server.Write(b)
		}
	}()
	if _, err := pair.Client.Write([]byte{7}); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	pair.Client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := pair.Client.Read(b); err != nil || b[0] != 7 {
		t.Fatalf("after the first passport's exp: %v", err)
	}
	if n := count.calls.Load(); n < 2 {
		t.Fatalf("%d Evidence requests", n)
	}
}
