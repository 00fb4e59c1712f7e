package sevsnp_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	asevsnp "github.com/attested-tls/go-expat/attester/sevsnp"
	"github.com/attested-tls/go-expat/attester/sevsnp/sevsnptest"
	"github.com/attested-tls/go-expat/internal/checktest"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/collateral"
	"github.com/attested-tls/go-expat/verifier/sevsnp"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// kdsVerifier verifies Evidence without a certificate table, fetching the
// VCEK (and the CRL) from k through a Cache.
func kdsVerifier(t testing.TB, p *sevsnptest.Platform, k *kdsServer, cache *sevsnp.Cache, crl bool) *sevsnp.Verifier {
	t.Helper()
	if cache.Source == nil {
		cache.Source = &sevsnp.KDS{BaseURL: k.URL, HTTP: collateral.HTTP{Backoff: time.Millisecond}}
	}
	return mustNew(t, &sevsnp.Config{
		Roots: p.Roots(), ProductLine: "Milan", Collateral: cache, CheckRevocation: crl,
		Policy: sevsnp.Policy{Measurements: [][]byte{sevsnptest.Measurement()}},
		Time:   cache.Time,
	})
}

// At most one fetch per collateral item while it is valid.
func TestFetchCount1000(t *testing.T) {
	p := sevsnptest.NewPlatform(t)
	k := newKDS(t, p, p.CRL(t, time.Now(), time.Hour))
	v := kdsVerifier(t, p, k, &sevsnp.Cache{}, true)
	ch := sevsnptest.RandomChallenge(t)
	rec := p.Attest(t, ch, nil, &asevsnp.Options{OmitCertTable: true})
	exp := &verifier.Expected{Challenge: ch}
	for i := 0; i < 1000; i++ {
		if _, err := v.Verify(context.Background(), rec, exp); err != nil {
			t.Fatal(err)
		}
	}
	if k.vcekHits.Load() != 1 || k.crlHits.Load() != 1 || k.hits.Load() != 2 {
		t.Fatalf("1000 verifications: %d VCEK and %d CRL fetches (%d requests), want 1 and 1",
			k.vcekHits.Load(), k.crlHits.Load(), k.hits.Load())
	}
}

func TestKDSRateLimited(t *testing.T) {
	p := sevsnptest.NewPlatform(t)
	ch := sevsnptest.RandomChallenge(t)
	rec := p.Attest(t, ch, nil, &asevsnp.Options{OmitCertTable: true})
	exp := &verifier.Expected{Challenge: ch}

	t.Run("429 then success", func(t *testing.T) {
		k := newKDS(t, p, nil)
		k.throttle.Store(2)
		v := kdsVerifier(t, p, k, &sevsnp.Cache{}, false)
		if _, err := v.Verify(context.Background(), rec, exp); err != nil {
			t.Fatal(err)
		}
		if k.hits.Load() != 3 {
			t.Errorf("%d requests, want 3", k.hits.Load())
		}
	})
	t.Run("429 forever", func(t *testing.T) {
		k := newKDS(t, p, nil)
		k.throttle.Store(1 << 40)
		v := kdsVerifier(t, p, k, &sevsnp.Cache{Source: &sevsnp.KDS{BaseURL: k.URL, HTTP: collateral.HTTP{MaxRetries: 2}}}, false)
		_, err := v.Verify(context.Background(), rec, exp)
		var ue *verifier.UnavailableError
		if !errors.As(err, &ue) || !ue.Retryable {
			t.Fatalf("got %v, want a retryable UnavailableError", err)
		}
		if k.hits.Load() != 3 {
			t.Errorf("%d requests, want 3 (1 + 2 retries)", k.hits.Load())
		}
	})
	t.Run("Retry-After beyond the limit", func(t *testing.T) {
		k := newKDS(t, p, nil)
		k.throttle.Store(1)
		k.retryHdr = "3600"
		v := kdsVerifier(t, p, k, &sevsnp.Cache{}, false)
		start := time.Now()
		_, err := v.Verify(context.Background(), rec, exp)
		var ue *verifier.UnavailableError
		if !errors.As(err, &ue) || !ue.Retryable || time.Since(start) > 5*time.Second {
			t.Fatalf("got %v after %v, want a prompt retryable UnavailableError", err, time.Since(start))
		}
	})
	t.Run("deadline", func(t *testing.T) {
		k := newKDS(t, p, nil)
		k.throttle.Store(1 << 40)
		k.retryHdr = "1"
		v := kdsVerifier(t, p, k, &sevsnp.Cache{}, false)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := v.Verify(ctx, rec, exp)
		if !errors.Is(err, verifier.ErrUnavailable) || time.Since(start) > 2*time.Second {
			t.Fatalf("got %v after %v", err, time.Since(start))
		}
	})
	t.Run("not found", func(t *testing.T) {
		k := newKDS(t, p, nil)
		v := mustNew(t, &sevsnp.Config{Roots: p.Roots(), ProductLine: "Genoa", Policy: sevsnp.Policy{AcceptAnyMeasurement: true},
			Collateral: &sevsnp.KDS{BaseURL: k.URL}})
		// The KDS's 404 says AMD endorses no such chip at this TCB: a
		// rejection, not "could not check".
		_, err := v.Verify(context.Background(), rec, exp)
		checktest.Rejected(t, err, verifier.CheckChain)
		if !errors.Is(err, collateral.ErrNotFound) {
			t.Fatalf("got %v, want ErrNotFound in it", err)
		}
	})
}

func TestCacheExpiry(t *testing.T) {
	p := sevsnptest.NewPlatform(t)
	clk := &clock{t: time.Now()}
	k := newKDS(t, p, p.CRL(t, clk.now(), time.Hour))
	cache := &sevsnp.Cache{Time: clk.now}
	v := kdsVerifier(t, p, k, cache, true)
	ch := sevsnptest.RandomChallenge(t)
	rec := p.Attest(t, ch, nil, &asevsnp.Options{OmitCertTable: true})
	verify := func() error {
		_, err := v.Verify(context.Background(), rec, &verifier.Expected{Challenge: ch, Now: clk.now()})
		return err
	}
	if err := verify(); err != nil {
		t.Fatal(err)
	}
	// Past the CRL's NextUpdate: the CRL is fetched again (a fresh one).
	clk.advance(2 * time.Hour)
	k.mu.Lock()
	k.crl = p.CRL(t, clk.now(), time.Hour)
	k.mu.Unlock()
	if err := verify(); err != nil {
		t.Fatal(err)
	}
	if k.crlHits.Load() != 2 || k.vcekHits.Load() != 1 {
		t.Fatalf("CRL fetched %d times, VCEK %d, want 2 and 1", k.crlHits.Load(), k.vcekHits.Load())
	}
	// The KDS serves a stale CRL: the cache refuses it, the verifier cannot check.
	clk.advance(2 * time.Hour)
	if err := verify(); !errors.Is(err, verifier.ErrUnavailable) {
		t.Fatalf("stale CRL: got %v, want ErrUnavailable", err)
	}
	// Past the VCEK's NotAfter (7 years): refetched, and an expired
	// certificate is never served.
	clk.advance(8 * 365 * 24 * time.Hour)
	if _, err := cache.VCEK(context.Background(), "Milan", p.ChipID, p.TCB); err == nil {
		t.Fatal("expired VCEK served")
	}
	if k.vcekHits.Load() != 2 {
		t.Errorf("VCEK fetched %d times, want 2", k.vcekHits.Load())
	}
}

func TestRevokedIntermediate(t *testing.T) {
	p := sevsnptest.NewPlatform(t)
	ch := sevsnptest.RandomChallenge(t)
	rec := p.Attest(t, ch, nil, &asevsnp.Options{OmitCertTable: true})
	k := newKDS(t, p, p.CRL(t, time.Now(), time.Hour, p.Signer.Ask.SerialNumber))
	v := kdsVerifier(t, p, k, &sevsnp.Cache{}, true)
	_, err := v.Verify(context.Background(), rec, &verifier.Expected{Challenge: ch})
	checktest.Rejected(t, err, verifier.CheckChain)
}

func TestDiskCacheAndOfflineBundle(t *testing.T) {
	p := sevsnptest.NewPlatform(t)
	dir := t.TempDir()
	k := newKDS(t, p, p.CRL(t, time.Now(), time.Hour))
	ch := sevsnptest.RandomChallenge(t)
	rec := p.Attest(t, ch, nil, &asevsnp.Options{OmitCertTable: true})
	exp := &verifier.Expected{Challenge: ch}

	if _, err := kdsVerifier(t, p, k, &sevsnp.Cache{Dir: dir}, true).Verify(context.Background(), rec, exp); err != nil {
		t.Fatal(err)
	}
	// A new process (a new Cache on the same directory) needs no network.
	k.Close()
	if _, err := kdsVerifier(t, p, k, &sevsnp.Cache{Dir: dir}, true).Verify(context.Background(), rec, exp); err != nil {
		t.Fatalf("from disk: %v", err)
	}
	if k.hits.Load() != 2 {
		t.Errorf("%d requests, want 2", k.hits.Load())
	}
	// The directory is an offline bundle.
	b, err := sevsnp.LoadBundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	v := mustNew(t, &sevsnp.Config{Roots: p.Roots(), ProductLine: "Milan", Collateral: b, CheckRevocation: true,
		Policy: sevsnp.Policy{Measurements: [][]byte{sevsnptest.Measurement()}}})
	if _, err := v.Verify(context.Background(), rec, exp); err != nil {
		t.Fatalf("bundle: %v", err)
	}
	// A bundle without the CRL cannot check revocation.
	if err := os.Remove(filepath.Join(dir, "crl-Milan-vcek.der")); err != nil {
		t.Fatal(err)
	}
	b, _ = sevsnp.LoadBundle(dir)
	v = mustNew(t, &sevsnp.Config{Roots: p.Roots(), ProductLine: "Milan", Collateral: b, CheckRevocation: true,
		Policy: sevsnp.Policy{Measurements: [][]byte{sevsnptest.Measurement()}}})
	if _, err := v.Verify(context.Background(), rec, exp); !errors.Is(err, verifier.ErrUnavailable) {
		t.Fatalf("bundle without CRL: got %v, want ErrUnavailable", err)
	}
	// A bundle without this chip's VCEK cannot verify.
	v = mustNew(t, &sevsnp.Config{Roots: p.Roots(), ProductLine: "Milan", Collateral: &sevsnp.Bundle{},
		Policy: sevsnp.Policy{Measurements: [][]byte{sevsnptest.Measurement()}}})
	if _, err := v.Verify(context.Background(), rec, exp); !errors.Is(err, collateral.ErrNotFound) {
		t.Fatalf("empty bundle: got %v, want ErrNotFound", err)
	}
}

func TestCacheCoalescesConcurrentFetches(t *testing.T) {
	p := sevsnptest.NewPlatform(t)
	k := newKDS(t, p, nil)
	c := &sevsnp.Cache{Source: &sevsnp.KDS{BaseURL: k.URL}}
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.VCEK(context.Background(), "Milan", p.ChipID, p.TCB); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if k.vcekHits.Load() != 1 {
		t.Errorf("%d fetches, want 1", k.vcekHits.Load())
	}
}
