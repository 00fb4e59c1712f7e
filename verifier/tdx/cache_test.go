package tdx_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/attester/tdx/tdxtest"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/collateral"
	"github.com/attested-tls/go-expat/verifier/tdx"
)

func (e *env) fetches() [4]int64 {
	return [4]int64{e.srv.TCB.Load(), e.srv.QE.Load(), e.srv.PCKCRL.Load(), e.srv.RootCRL.Load()}
}

// 1,000 verifications of the same platform fetch each collateral item
// once while it is valid.
func TestCacheFetchesOncePerItem(t *testing.T) {
	e := newEnv(t)
	v := e.verifier(tdx.Policy{})
	ch := challenge("cache")
	ev := e.evidence(ch)
	for i := 0; i < 1000; i++ {
		if _, err := v.Verify(context.Background(), ev, expected(ch)); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.fetches(); got != [4]int64{1, 1, 1, 1} {
		t.Fatalf("fetches (tcb, qe, pckcrl, rootcrl) = %v, want one each", got)
	}
}

// Concurrent verifications on a cold cache share one fetch per item.
func TestCacheConcurrent(t *testing.T) {
	e := newEnv(t)
	v := e.verifier(tdx.Policy{})
	ch := challenge("conc")
	ev := e.evidence(ch)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := v.Verify(context.Background(), ev, expected(ch))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := e.fetches(); got != [4]int64{1, 1, 1, 1} {
		t.Fatalf("fetches = %v, want one each", got)
	}
}

// Cached collateral is never used at or after its nextUpdate: the verifier
// refetches, and if the service still serves the expired item, rejects.
func TestCacheExpiry(t *testing.T) {
	e := newEnv(t)
	e.setCollateral(tdxtest.Window(e.now, time.Hour), nil)
	v := e.verifier(tdx.Policy{})
	ch := challenge("exp")
	ev := e.evidence(ch)
	if _, err := v.Verify(context.Background(), ev, expected(ch)); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(59 * time.Minute)
	if _, err := v.Verify(context.Background(), ev, expected(ch)); err != nil {
		t.Fatal(err)
	}
	if got := e.fetches(); got != [4]int64{1, 1, 1, 1} {
		t.Fatalf("before expiry: fetches = %v", got)
	}
	// Exactly at nextUpdate: expired. The service still has the old set.
	e.clock.Add(time.Minute)
	_, err := v.Verify(context.Background(), ev, expected(ch))
	wantReject(t, err, verifier.CheckCollateral)
	if got := e.fetches(); got[3] != 2 {
		t.Fatalf("expired root CRL was not refetched: %v", got)
	}
	// The rejection is remembered for FailureTTL (no request reaches the
	// service); new collateral published is accepted after that, after
	// one more fetch each.
	_, err = v.Verify(context.Background(), ev, expected(ch))
	wantReject(t, err, verifier.CheckCollateral)
	if got := e.fetches(); got[3] != 2 {
		t.Fatalf("remembered failure refetched: %v", got)
	}
	e.clock.Add(collateral.DefaultFailureTTL)
	e.setCollateral(tdxtest.Window(e.clock.Now(), time.Hour), nil)
	if _, err := v.Verify(context.Background(), ev, expected(ch)); err != nil {
		t.Fatal(err)
	}
	before := e.fetches()
	if _, err := v.Verify(context.Background(), ev, expected(ch)); err != nil {
		t.Fatal(err)
	}
	if e.fetches() != before {
		t.Fatal("fresh collateral was not cached")
	}
}

// A verification with an explicit Expected.Now in the past does not reuse
// collateral beyond its window either.
func TestCacheUsesAppraisalTime(t *testing.T) {
	e := newEnv(t)
	e.setCollateral(tdxtest.Window(e.now, time.Hour), nil)
	v := e.verifier(tdx.Policy{})
	ch := challenge("t")
	ev := e.evidence(ch)
	if _, err := v.Verify(context.Background(), ev, expected(ch)); err != nil {
		t.Fatal(err)
	}
	exp := expected(ch)
	exp.Now = e.now.Add(2 * time.Hour)
	_, err := v.Verify(context.Background(), ev, exp)
	wantReject(t, err, verifier.CheckCollateral)
}

// T13: an unreachable or failing collateral service is "unavailable"
// (retryable for 5xx), never an acceptance; the failure is remembered for
// FailureTTL, then the service is asked again.
func TestCollateralUnavailable(t *testing.T) {
	e := newEnv(t)
	v := e.verifier(tdx.Policy{})
	ch := challenge("u")
	ev := e.evidence(ch)
	e.srv.Fail.Store(1)
	_, err := v.Verify(context.Background(), ev, expected(ch))
	var ue *verifier.UnavailableError
	if !errors.As(err, &ue) || !ue.Retryable || !errors.Is(err, verifier.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	if _, err := v.Verify(context.Background(), ev, expected(ch)); !errors.As(err, &ue) {
		t.Fatalf("within FailureTTL: %v", err)
	}
	e.clock.Add(collateral.DefaultFailureTTL)
	if _, err := v.Verify(context.Background(), ev, expected(ch)); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	// A closed server: transport error, retryable; ctx deadline honoured.
	e.http.Close()
	v2 := e.verifier(tdx.Policy{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = v2.Verify(ctx, ev, expected(ch))
	if !errors.As(err, &ue) || !ue.Retryable {
		t.Fatalf("closed server: err = %v", err)
	}
}

// Offline bundle: no network at all; verified like fetched collateral.
func TestOfflineBundle(t *testing.T) {
	e := newEnv(t)
	e.http.Close() // prove no network is used
	o := e.opts(tdx.Policy{})
	o.Getter = e.bundle()
	v, err := tdx.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ch := challenge("offline")
	ev := e.evidence(ch)
	if _, err := v.Verify(context.Background(), ev, expected(ch)); err != nil {
		t.Fatal(err)
	}
	// Past the bundle's nextUpdate: rejected.
	exp := expected(ch)
	exp.Now = e.now.Add(31 * 24 * time.Hour)
	_, err = v.Verify(context.Background(), ev, exp)
	wantReject(t, err, verifier.CheckCollateral)
	// Missing item: unavailable, not retryable.
	b := e.bundle()
	b.RootCRL = nil
	o.Getter = b
	v, _ = tdx.New(o)
	_, err = v.Verify(context.Background(), ev, expected(ch))
	var ue *verifier.UnavailableError
	if !errors.As(err, &ue) || ue.Retryable {
		t.Fatalf("err = %v", err)
	}
	// Revocation checks can be skipped explicitly; then no CRL is needed.
	o.SkipRevocation = true
	v, _ = tdx.New(o)
	if _, err := v.Verify(context.Background(), ev, expected(ch)); err != nil {
		t.Fatal(err)
	}
}

// Concurrent appraisals waiting on one failing fetch share its failure
// instead of each refetching (no amplification of an outage).
func TestCacheSharesFailure(t *testing.T) {
	e := newEnv(t)
	e.srv.Gate = make(chan struct{})
	e.srv.Fail.Store(1000)
	v := e.verifier(tdx.Policy{})
	ch := challenge("fail")
	ev := e.evidence(ch)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := v.Verify(context.Background(), ev, expected(ch))
			errs <- err
		}()
	}
	time.Sleep(200 * time.Millisecond) // let every appraisal queue behind the first fetch
	close(e.srv.Gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, verifier.ErrUnavailable) {
			t.Fatalf("err = %v", err)
		}
	}
	if got := 1000 - e.srv.Fail.Load(); got != 1 {
		t.Fatalf("%d requests reached the failing service, want 1", got)
	}
}
