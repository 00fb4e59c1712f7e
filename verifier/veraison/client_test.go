package veraison_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/veraison/ear"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/attester/cca"
	"github.com/attested-tls/go-expat/attester/cca/ccatest"
	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/internal/checktest"
	"github.com/attested-tls/go-expat/verifier"
	expatear "github.com/attested-tls/go-expat/verifier/ear"
	"github.com/attested-tls/go-expat/verifier/veraison"
)

func keysOf(pub crypto.PublicKey) []expatear.TrustedKey { return []expatear.TrustedKey{{Key: pub}} }

func challenge(seed string) attester.Challenge {
	b := sha256.Sum256([]byte("binding " + seed))
	k := sha256.Sum256([]byte("aik " + seed))
	return attester.Challenge{Hash: crypto.SHA256, Binding: b[:], AIKPubHash: k[:]}
}

// evidence is a real CCA token from the test-only platform, in a CMW record.
func evidence(t testing.TB, ch attester.Challenge) []byte {
	t.Helper()
	p, err := ccatest.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := cca.NewTSMAttester(p.Client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := a.Attest(context.Background(), ch)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newVerifier(t testing.TB, cfg veraison.Config) *veraison.Verifier {
	t.Helper()
	c, err := veraison.New(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return veraison.NewVerifier(c)
}

// eventually waits up to 5 s for cond (background work of the Client).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 5 s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func wantUnavailable(t *testing.T, err error, retryable bool) {
	t.Helper()
	var ue *verifier.UnavailableError
	if !errors.As(err, &ue) || !errors.Is(err, verifier.ErrUnavailable) || errors.Is(err, verifier.ErrRejected) {
		t.Fatalf("got %v, want unavailable", err)
	}
	if ue.Retryable != retryable {
		t.Fatalf("retryable %v, want %v (%v)", ue.Retryable, retryable, err)
	}
}

func TestBackgroundCheck(t *testing.T) {
	ch := challenge("bc")
	ev := evidence(t, ch)
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	tests := []struct {
		name   string
		setup  func(f *fakeVeraison, cfg *veraison.Config)
		check  func(t *testing.T, f *fakeVeraison, res *verifier.Result, err error)
		budget time.Duration
	}{
		{name: "affirming, key configured", check: func(t *testing.T, f *fakeVeraison, res *verifier.Result, err error) {
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != verifier.TierAffirming || res.Model != verifier.BackgroundCheck || res.Technology != "cca" || len(res.EAR) == 0 {
				t.Fatalf("result %+v", res)
			}
			if res.TrustVector.Hardware != 2 || res.Claims["submod.CCA_REALM.status"] != "affirming" {
				t.Fatalf("result %+v", res)
			}
			if f.newSessions.Load() != 1 || f.submits.Load() != 1 || f.lastContentType != "application/cmw+cbor" {
				t.Fatalf("%d sessions, %d submissions, content type %q", f.newSessions.Load(), f.submits.Load(), f.lastContentType)
			}
			// The session is deleted after the appraisal, in the background.
			eventually(t, "session deleted", func() bool { return f.deletes.Load() == 1 })
		}},
		{name: "key fetched from the well-known endpoint (insecure opt-in)", setup: func(f *fakeVeraison, cfg *veraison.Config) {
			cfg.EARKeys, cfg.InsecureTrustServiceKey = nil, true
		}, check: func(t *testing.T, f *fakeVeraison, res *verifier.Result, err error) {
			if err != nil || f.wellKnown.Load() != 1 {
				t.Fatalf("%v after %d well-known requests", err, f.wellKnown.Load())
			}
		}},
		{name: "unpadded eat_nonce accepted", setup: func(f *fakeVeraison, cfg *veraison.Config) { f.unpadded = true },
			check: func(t *testing.T, f *fakeVeraison, res *verifier.Result, err error) {
				if err != nil {
					t.Fatal(err)
				}
			}},
		{name: "stale EAR from the service (T12)", setup: func(f *fakeVeraison, cfg *veraison.Config) { f.iat = time.Now().Add(-time.Hour) },
			check: func(t *testing.T, f *fakeVeraison, res *verifier.Result, err error) {
				checktest.Rejected(t, err, verifier.CheckAge)
			}},
		{name: "affirming status, contraindicated trust claim", setup: func(f *fakeVeraison, cfg *veraison.Config) {
			f.vector = &ear.TrustVector{InstanceIdentity: 2, Executables: ear.ContraindicatedRuntimeClaim}
			cfg.AllowWarning = true
		}, check: func(t *testing.T, f *fakeVeraison, res *verifier.Result, err error) {
			checktest.Rejected(t, err, verifier.CheckStatus)
		}},
		{name: "affirming status, warning trust claim: a warning", setup: func(f *fakeVeraison, cfg *veraison.Config) {
			f.vector = &ear.TrustVector{InstanceIdentity: 2, Executables: ear.UnrecognizedRuntimeClaim}
			cfg.AllowWarning = true
		}, check: func(t *testing.T, f *fakeVeraison, res *verifier.Result, err error) {
			if err != nil || res.Status != verifier.TierWarning {
				t.Fatalf("%v %+v", err, res)
			}
		}},
		{name: "configured key wins over the well-known one", setup: func(f *fakeVeraison, cfg *veraison.Config) {
			f.wkKey = &otherKey.PublicKey // an impostor's key is published
			f.key = otherKey              // and signs with it; cfg.EARKey stays the genuine key
		}, check: func(t *testing.T, f *fakeVeraison, res *verifier.Result, err error) {
			checktest.Rejected(t, err, verifier.CheckSignature)
		}},
		{name: "EAR signed by another key (T13 bad signature)", setup: func(f *fakeVeraison, cfg *veraison.Config) { f.key = otherKey },
			check: func(t *testing.T, f *fakeVeraison, res *verifier.Result, err error) {
				checktest.Rejected(t, err, verifier.CheckSignature)
			}},
		{name: "EAR echoes another nonce (T13 wrong nonce)", setup: func(f *fakeVeraison, cfg *veraison.Config) {
			f.nonceFn = func(n []byte) []byte { m := append([]byte(nil), n...); m[0] ^= 1; return m }
		}, check: func(t *testing.T, f *fakeVeraison, res *verifier.Result, err error) {
			checktest.Rejected(t, err, verifier.CheckNonce)
		}},
		{name: "session answers another nonce", setup: func(f *fakeVeraison, cfg *veraison.Config) {
			f.sessFn = func(n []byte) []byte { return make([]byte, len(n)) }
		}, check: func(t *testing.T, f *fakeVeraison, res *verifier.Result, err error) {
			checktest.Rejected(t, err, verifier.CheckNonce)
		}},
		{name: "contraindicated", setup: func(f *fakeVeraison, cfg *veraison.Config) { f.status = ear.TrustTierContraindicated },
			check: func(t *testing.T, f *fakeVeraison, res *verifier.Result, err error) {
				checktest.Rejected(t, err, verifier.CheckStatus)
			}},
		{name: "warning rejected by default", setup: func(f *fakeVeraison, cfg *veraison.Config) { f.status = ear.TrustTierWarning },
			check: func(t *testing.T, f *fakeVeraison, res *verifier.Result, err error) {
				checktest.Rejected(t, err, verifier.CheckStatus)
			}},
		{name: "warning accepted on request", setup: func(f *fakeVeraison, cfg *veraison.Config) { f.status = ear.TrustTierWarning; cfg.AllowWarning = true },
			check: func(t *testing.T, f *fakeVeraison, res *verifier.Result, err error) {
				if err != nil || res.Status != verifier.TierWarning {
					t.Fatalf("%v %+v", err, res)
				}
			}},
		{name: "none tier rejected even with AllowWarning", setup: func(f *fakeVeraison, cfg *veraison.Config) { f.status = ear.TrustTierNone; cfg.AllowWarning = true },
			check: func(t *testing.T, f *fakeVeraison, res *verifier.Result, err error) {
				checktest.Rejected(t, err, verifier.CheckStatus)
			}},
		{name: "5xx twice then success (bounded retries)", setup: func(f *fakeVeraison, cfg *veraison.Config) { f.failN.Store(2); f.failCode = 503 },
			check: func(t *testing.T, f *fakeVeraison, res *verifier.Result, err error) {
				if err != nil || f.newSessions.Load() != 3 {
					t.Fatalf("%v after %d sessions", err, f.newSessions.Load())
				}
			}},
		{name: "5xx always (T13)", setup: func(f *fakeVeraison, cfg *veraison.Config) { f.failN.Store(100); f.failCode = 500 },
			check: func(t *testing.T, f *fakeVeraison, res *verifier.Result, err error) {
				wantUnavailable(t, err, true)
				var he *veraison.HTTPError
				if !errors.As(err, &he) || he.StatusCode != 500 || f.newSessions.Load() != 3 {
					t.Fatalf("%v after %d sessions", err, f.newSessions.Load())
				}
			}},
		{name: "429 with Retry-After, then success", setup: func(f *fakeVeraison, cfg *veraison.Config) { f.failN.Store(1); f.failCode = 429 },
			check: func(t *testing.T, f *fakeVeraison, res *verifier.Result, err error) {
				if err != nil || f.newSessions.Load() != 2 {
					t.Fatalf("%v after %d sessions", err, f.newSessions.Load())
				}
			}},
		{name: "429 always within a short deadline (T13)", budget: 300 * time.Millisecond,
			setup: func(f *fakeVeraison, cfg *veraison.Config) { f.failN.Store(100); f.failCode = 429 },
			check: func(t *testing.T, f *fakeVeraison, res *verifier.Result, err error) { wantUnavailable(t, err, true) }},
		{name: "other 4xx is not retried", setup: func(f *fakeVeraison, cfg *veraison.Config) { f.failN.Store(100); f.failCode = 403 },
			check: func(t *testing.T, f *fakeVeraison, res *verifier.Result, err error) {
				wantUnavailable(t, err, false)
				if f.newSessions.Load() != 1 {
					t.Fatalf("%d sessions", f.newSessions.Load())
				}
			}},
		{name: "slow service (T13)", budget: 200 * time.Millisecond, setup: func(f *fakeVeraison, cfg *veraison.Config) { f.delay = 5 * time.Second },
			check: func(t *testing.T, f *fakeVeraison, res *verifier.Result, err error) { wantUnavailable(t, err, true) }},
		{name: "evidence refused with 400", setup: func(f *fakeVeraison, cfg *veraison.Config) {
			f.submitFn = func(w http.ResponseWriter) bool { f.problem(w, 400, "could not unwrap the CMW"); return true }
		}, check: func(t *testing.T, f *fakeVeraison, res *verifier.Result, err error) {
			checktest.Rejected(t, err, verifier.CheckFormat)
		}},
		{name: "session failed", setup: func(f *fakeVeraison, cfg *veraison.Config) {
			f.submitFn = func(w http.ResponseWriter) bool { f.session(w, 200, "failed", nil, nil); return true }
		}, check: func(t *testing.T, f *fakeVeraison, res *verifier.Result, err error) { wantUnavailable(t, err, true) }},
		{name: "oversized answer", setup: func(f *fakeVeraison, cfg *veraison.Config) {
			cfg.MaxResponseSize = 64
		}, check: func(t *testing.T, f *fakeVeraison, res *verifier.Result, err error) { wantUnavailable(t, err, false) }},
		{name: "Location leaves the service", setup: func(f *fakeVeraison, cfg *veraison.Config) { f.location = "http://attacker.invalid/session/1" },
			check: func(t *testing.T, f *fakeVeraison, res *verifier.Result, err error) { wantUnavailable(t, err, false) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			srv := f.start(t)
			cfg := veraison.Config{URL: srv.URL, EARKeys: keysOf(&f.key.PublicKey), RetryBase: 10 * time.Millisecond}
			if tc.setup != nil {
				tc.setup(f, &cfg)
			}
			v := newVerifier(t, cfg)
			ctx := context.Background()
			budget := tc.budget
			if budget == 0 {
				budget = 5 * time.Second
			}
			ctx, cancel := context.WithTimeout(ctx, budget)
			defer cancel()
			start := time.Now()
			res, err := v.Verify(ctx, ev, &verifier.Expected{Challenge: ch})
			if d := time.Since(start); d > budget+100*time.Millisecond {
				t.Fatalf("took %v, budget %v", d, budget)
			}
			if err != nil && res != nil {
				t.Fatal("result with error")
			}
			tc.check(t, f, res, err)
		})
	}
}

func TestUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // connection refused from now on
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	v := newVerifier(t, veraison.Config{URL: url, EARKeys: keysOf(&k.PublicKey), RetryBase: 5 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := v.Verify(ctx, evidence(t, challenge("u")), &verifier.Expected{Challenge: challenge("u")})
	wantUnavailable(t, err, true)
	// Trusting the service's key, the key fetch fails closed too.
	v = newVerifier(t, veraison.Config{URL: url, InsecureTrustServiceKey: true})
	_, err = v.Verify(ctx, evidence(t, challenge("u")), &verifier.Expected{Challenge: challenge("u")})
	wantUnavailable(t, err, true)
}

func TestLocalRejections(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	v := newVerifier(t, veraison.Config{URL: "http://127.0.0.1:1", EARKeys: keysOf(&k.PublicKey)})
	ch := challenge("l")
	coll, err := cmw.NewCollection("")
	if err != nil {
		t.Fatal(err)
	}
	r, _ := cmw.NewRecord(cmw.MediaTypeCCA, []byte{1}, cmw.Evidence)
	if err := coll.Add(cmw.TextLabel("cca"), r); err != nil {
		t.Fatal(err)
	}
	cb, err := coll.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string][]byte{"not a CMW": []byte("hello"), "collection": cb, "empty": nil} {
		_, err := v.Verify(context.Background(), in, &verifier.Expected{Challenge: ch})
		var re *verifier.RejectedError
		if !errors.As(err, &re) || re.Check != verifier.CheckFormat {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := veraison.New(&veraison.Config{URL: "ftp://x", EARKeys: keysOf(&k.PublicKey)}); err == nil {
		t.Error("ftp URL accepted")
	}
	if _, err := veraison.New(&veraison.Config{URL: "http://127.0.0.1:1"}); err == nil {
		t.Error("a Config without EAR keys accepted")
	}
	// The zero Config, given as nil or as a pointer to a zero value, is
	// refused (no URL, no EAR keys).
	for name, cfg := range map[string]*veraison.Config{"nil": nil, "zero": {}} {
		if c, err := veraison.New(cfg); err == nil || c != nil {
			t.Errorf("New(%s Config) = %v, %v", name, c, err)
		}
	}
}

func TestPassport(t *testing.T) {
	f := newFake(t)
	srv := f.start(t)
	c, err := veraison.New(&veraison.Config{URL: srv.URL, EARKeys: keysOf(&f.key.PublicKey)})
	if err != nil {
		t.Fatal(err)
	}
	p, err := ccatest.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := cca.NewTSMAttester(p.Client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	pa := &veraison.Passport{Evidence: ev, Client: c}
	ch := challenge("passport")
	b, err := pa.Attest(context.Background(), ch)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := cmw.Decode(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rec, _ := dec.Record(); rec.MediaType != cmw.MediaTypeEAR || rec.Indicator != cmw.AttestationResults {
		t.Fatalf("record %q %v", rec.MediaType, rec.Indicator)
	}
	submits := f.submits.Load()

	// The relying party checks the passport offline.
	rp := veraison.NewVerifier(c)
	res, err := rp.Verify(context.Background(), b, &verifier.Expected{Challenge: ch})
	if err != nil {
		t.Fatal(err)
	}
	if res.Model != verifier.Passport || res.Status != verifier.TierAffirming || f.submits.Load() != submits {
		t.Fatalf("result %+v", res)
	}
	// Replayed on another connection (T1/T12).
	_, err = rp.Verify(context.Background(), b, &verifier.Expected{Challenge: challenge("other")})
	checktest.Rejected(t, err, verifier.CheckNonce)
	// Too old (T12).
	_, err = rp.Verify(context.Background(), b, &verifier.Expected{Challenge: ch, Now: time.Now().Add(time.Hour)})
	checktest.Rejected(t, err, verifier.CheckAge)
	// A passport EAR signed by a key the relying party does not trust.
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c2, _ := veraison.New(&veraison.Config{URL: srv.URL, EARKeys: keysOf(&k2.PublicKey)})
	_, err = veraison.NewVerifier(c2).Verify(context.Background(), b, &verifier.Expected{Challenge: ch})
	checktest.Rejected(t, err, verifier.CheckSignature)

	// Veraison does not affirm: no passport is issued.
	f.status = ear.TrustTierContraindicated
	_, err = pa.Attest(context.Background(), ch)
	checktest.Rejected(t, err, verifier.CheckStatus)
	if !strings.Contains(err.Error(), "contraindicated") {
		t.Fatalf("%v", err)
	}
}

// The client refuses an EAR signed by a key it was not configured with,
// whatever the service publishes as its key, and never asks the service
// for a key unless told to trust it (InsecureTrustServiceKey, ignored when
// keys are configured).
func TestRefusesUnconfiguredEARKey(t *testing.T) {
	ch := challenge("key")
	ev := evidence(t, ch)
	f := newFake(t) // signs with f.key and publishes it at the well-known endpoint
	srv := f.start(t)
	configured, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, insecure := range []bool{false, true} {
		c, err := veraison.New(&veraison.Config{URL: srv.URL, EARKeys: keysOf(&configured.PublicKey), InsecureTrustServiceKey: insecure})
		if err != nil {
			t.Fatal(err)
		}
		_, err = veraison.NewVerifier(c).Verify(context.Background(), ev, &verifier.Expected{Challenge: ch})
		checktest.Rejected(t, err, verifier.CheckSignature)
		_, err = c.Appraise(context.Background(), ev, func() []byte { rd, _ := ch.ReportData64(); return rd[:] }())
		checktest.Rejected(t, err, verifier.CheckSignature)
	}
	// A passport signed by the service's (unconfigured) key.
	trusting, err := veraison.New(&veraison.Config{URL: srv.URL, EARKeys: keysOf(&f.key.PublicKey)})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := ccatest.New(nil)
	a, err := cca.NewTSMAttester(p.Client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	pass, err := (&veraison.Passport{Evidence: a, Client: trusting}).Attest(context.Background(), ch)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := veraison.New(&veraison.Config{URL: srv.URL, EARKeys: keysOf(&configured.PublicKey)})
	_, err = veraison.NewVerifier(c).Verify(context.Background(), pass, &verifier.Expected{Challenge: ch})
	checktest.Rejected(t, err, verifier.CheckSignature)
	if n := f.wellKnown.Load(); n != 0 {
		t.Fatalf("the well-known key was fetched %d times", n)
	}
}

// The client follows no redirect: the Evidence never reaches another host,
// whether the session creation or the submission is redirected.
func TestRefusesRedirects(t *testing.T) {
	ch := challenge("redirect")
	ev := evidence(t, ch)
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		http.Error(w, "should not be here", http.StatusTeapot)
	}))
	t.Cleanup(other.Close)
	for _, tc := range []struct {
		name string
		op   string
		code int
	}{
		{"newSession 307", "new session", http.StatusTemporaryRedirect},
		{"newSession 308", "new session", http.StatusPermanentRedirect},
		{"submit 307", "submit", http.StatusTemporaryRedirect},
		{"submit 302", "submit", http.StatusFound},
		{"submit to the same host", "submit-same", http.StatusTemporaryRedirect},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			srv := f.start(t)
			target := other.URL
			if tc.op == "submit-same" {
				target = srv.URL + "/elsewhere"
			}
			f.redirect = func(op string) (string, int) {
				if op == strings.TrimSuffix(tc.op, "-same") {
					return target, tc.code
				}
				return "", 0
			}
			v := newVerifier(t, veraison.Config{URL: srv.URL, EARKeys: keysOf(&f.key.PublicKey), RetryBase: time.Millisecond})
			before := elsewhere.Load()
			_, err := v.Verify(context.Background(), ev, &verifier.Expected{Challenge: ch})
			wantUnavailable(t, err, false)
			if !strings.Contains(err.Error(), "redirect") {
				t.Fatalf("got %v", err)
			}
			if n := elsewhere.Load() - before; n != 0 {
				t.Fatalf("%d requests reached the other host", n)
			}
			if f.unknown.Load() != 0 {
				t.Fatalf("the redirect was followed on the same host")
			}
		})
	}
}

// The Status of a Veraison result is the WorstTier of its submodules, for
// every pair of tiers; only affirming or (AllowWarning) warning is accepted.
func TestSubmodMergeEveryPair(t *testing.T) {
	tiers := []ear.TrustTier{ear.TrustTierAffirming, ear.TrustTierWarning, ear.TrustTierNone, ear.TrustTierContraindicated}
	f := newFake(t)
	srv := f.start(t)
	v := newVerifier(t, veraison.Config{URL: srv.URL, EARKeys: keysOf(&f.key.PublicKey), AllowWarning: true, MaxAttempts: 1})
	ch := challenge("pairs")
	ev := evidence(t, ch)
	for i, a := range tiers {
		for j, b := range tiers {
			f.status, f.realmStatus = a, &b
			res, err := v.Verify(context.Background(), ev, &verifier.Expected{Challenge: ch})
			want := verifier.Tier(tiers[max(i, j)])
			if want != verifier.TierAffirming && want != verifier.TierWarning {
				checktest.Rejected(t, err, verifier.CheckStatus)
				continue
			}
			if err != nil || res.Status != want {
				t.Errorf("submods %v and %v: got %v, %v; want %v", a, b, res, err, want)
			}
		}
	}
}

// TestSessionCleanup: an appraisal is two requests (new session,
// submission) and returns without waiting for the session's deletion,
// which runs in the background: at most MaxPendingDeletes at once (the
// others are left to expire, as Veraison's API allows), each cancelled by
// Close, which returns at once; a closed Client appraises nothing.
func TestSessionCleanup(t *testing.T) {
	ch := challenge("cleanup")
	ev := evidence(t, ch)
	f := newFake(t)
	release := make(chan struct{})
	var inFlight, maxInFlight, cancelled atomic.Int32
	f.deleteFn = func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := maxInFlight.Load(); n > m && !maxInFlight.CompareAndSwap(m, n); m = maxInFlight.Load() {
		}
		select {
		case <-release:
			w.WriteHeader(http.StatusNoContent)
		case <-r.Context().Done():
			cancelled.Add(1)
		}
	}
	srv := f.start(t)
	defer close(release)
	c, err := veraison.New(&veraison.Config{URL: srv.URL, EARKeys: keysOf(&f.key.PublicKey)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v := veraison.NewVerifier(c)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n := veraison.MaxPendingDeletes + 3
	for i := range n {
		// Each returns although every earlier deletion is still held.
		if _, err := v.Verify(ctx, ev, &verifier.Expected{Challenge: ch}); err != nil {
			t.Fatalf("appraisal %d: %v", i, err)
		}
	}
	if f.newSessions.Load() != int32(n) || f.submits.Load() != int32(n) {
		t.Fatalf("%d appraisals: %d sessions, %d submissions", n, f.newSessions.Load(), f.submits.Load())
	}
	eventually(t, "deletions pending", func() bool { return inFlight.Load() == veraison.MaxPendingDeletes })
	if got := maxInFlight.Load(); got != veraison.MaxPendingDeletes {
		t.Fatalf("%d deletions in flight at most, want %d", got, veraison.MaxPendingDeletes)
	}
	if got := f.deletes.Load(); got != veraison.MaxPendingDeletes {
		t.Fatalf("%d deletions sent, want %d (the others left to expire)", got, veraison.MaxPendingDeletes)
	}

	start := time.Now()
	c.Close()
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Close took %v", d)
	}
	eventually(t, "deletions cancelled", func() bool { return cancelled.Load() == veraison.MaxPendingDeletes })
	_, err = v.Verify(ctx, ev, &verifier.Expected{Challenge: ch})
	wantUnavailable(t, err, false)
	if f.newSessions.Load() != int32(n) {
		t.Fatal("a closed Client sent a request")
	}
	c.Close() // again: no effect
}

// TestConnectionReuse: sequential appraisals (each with its background
// deletion) reuse kept-alive connections instead of dialling per request,
// and so do concurrent ones, up to one connection per request in flight.
func TestConnectionReuse(t *testing.T) {
	ch := challenge("reuse")
	ev := evidence(t, ch)
	f := newFake(t)
	srv := f.start(t)
	v := newVerifier(t, veraison.Config{URL: srv.URL, EARKeys: keysOf(&f.key.PublicKey)})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const n = 50
	for i := range n {
		if _, err := v.Verify(ctx, ev, &verifier.Expected{Challenge: ch}); err != nil {
			t.Fatalf("appraisal %d: %v", i, err)
		}
	}
	eventually(t, "deletions", func() bool { return f.deletes.Load() == n })
	// One connection for the appraisals, and the few a deletion still in
	// flight when the next appraisal starts makes the transport open.
	if got := f.conns.Load(); got > 1+veraison.MaxPendingDeletes {
		t.Fatalf("%d connections for %d sequential appraisals (%d requests)", got, n, 3*n)
	}
	t.Logf("%d sequential appraisals: %d connections", n, f.conns.Load())

	before := f.conns.Load()
	const workers = 4
	var wg sync.WaitGroup
	errs := make(chan error, workers*n)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				if _, err := v.Verify(ctx, ev, &verifier.Expected{Challenge: ch}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := f.conns.Load() - before; got > workers+veraison.MaxPendingDeletes {
		t.Fatalf("%d new connections for %d appraisals from %d workers", got, workers*n, workers)
	}
	t.Logf("%d concurrent appraisals: %d new connections", workers*n, f.conns.Load()-before)
}
