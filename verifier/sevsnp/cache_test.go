package sevsnp_test

// The Verifier's cache of verified chains and checked CRLs: a cached
// verdict is the one a Verifier without the cache gives.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/attester/sevsnp/sevsnptest"
	"github.com/attested-tls/go-expat/internal/checktest"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/sevsnp"
)

// Every report and certificate (valid, altered in one byte, VCEK and
// VLEK, versions 2 and 3), at times inside and just outside the
// certificates' validity, gets the same verdict from a Verifier with a
// warm cache as from one without, however often asked.
func TestChainCacheDifferential(t *testing.T) {
	p := sevsnptest.NewPlatform(t)
	otherASK := anotherASK(t, p)
	rootSets := map[string][]sevsnp.Root{
		"platform roots": p.Roots(),
		// The first candidate fails, the second certifies: not cached.
		"two roots, the second certifying": {{ProductLine: "Milan", ARK: p.Signer.Ark, ASK: otherASK}, p.Roots()[0]},
	}
	reports := platformReports(t, p)
	now := time.Now()
	ek := p.Signer.Vcek
	times := []time.Time{now, ek.NotBefore, ek.NotBefore.Add(-time.Second), ek.NotAfter, ek.NotAfter.Add(time.Second), now}
	for rname, roots := range rootSets {
		cached := mustNew(t, &sevsnp.Config{Roots: roots})
		uncached := mustNew(t, &sevsnp.Config{Roots: roots})
		uncached.DisableCaches()
		accepted := 0
		for _, s := range reports {
			certs := map[string][]byte{"certificate": s.ek.Raw}
			for _, off := range []int{10, len(s.ek.Raw) / 2, len(s.ek.Raw) - 1} {
				m := bytes.Clone(s.ek.Raw)
				m[off] ^= 1
				certs["certificate altered"] = m
				for cname, der := range certs {
					for _, at := range times {
						for range 2 { // the second time from the cache, if at all
							name := rname + "/" + s.name + "/" + cname + "/" + at.String()
							c := cached.ChainAndSignature(s.report, der, at)
							checktest.SameVerdict(t, name, c, uncached.ChainAndSignature(s.report, der, at))
							if c == nil {
								accepted++
							}
						}
					}
				}
			}
		}
		if accepted == 0 {
			t.Errorf("%s: nothing accepted", rname)
		}
		chains, _ := cached.CacheLens()
		want := len(reports) // one per certificate, signer and product line
		if rname != "platform roots" {
			want = 0
		}
		if chains != want {
			t.Errorf("%s: %d chains cached, want %d", rname, chains, want)
		}
	}
}

// anotherASK is an intermediate under the ASK's name and the platform's
// ARK, with another key and serial: it certified nothing.
func anotherASK(t *testing.T, p *sevsnptest.Platform) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(424242), RawSubject: p.Signer.Ask.RawSubject,
		NotBefore: p.Signer.Ask.NotBefore, NotAfter: p.Signer.Ask.NotAfter, SignatureAlgorithm: x509.SHA384WithRSAPSS,
		BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.Signer.Ark, &p.Signer.Keys.Asvk.PublicKey, p.Signer.Keys.Ark)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// swapCRL is a Collateral whose CRL can be replaced (a KDS that published
// a new one).
type swapCRL struct {
	mu  sync.Mutex
	crl []byte
}

func (s *swapCRL) VCEK(context.Context, string, [64]byte, uint64) ([]byte, error) {
	return nil, errors.New("no VCEK here")
}

func (s *swapCRL) CRL(context.Context, string, bool) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.crl, nil
}

func (s *swapCRL) set(crl []byte) {
	s.mu.Lock()
	s.crl = crl
	s.mu.Unlock()
}

// A chain and CRL verified and cached, then a new CRL revoking the VCEK
// (or its ASK): the next appraisal is rejected; the CRL's nextUpdate
// passed: unavailable, although the CRL was cached; a CRL not signed by
// the ARK is rejected after a good one was cached; a certificate past its
// NotAfter is rejected although its chain was cached; a certificate with
// one byte changed is not taken from the cache.
func TestChainCacheInvalidation(t *testing.T) {
	p := sevsnptest.NewPlatform(t)
	ch := sevsnptest.RandomChallenge(t)
	rec := p.Attest(t, ch, nil, nil) // carries its VCEK
	now := time.Now()
	col := &swapCRL{}
	v := mustNew(t, &sevsnp.Config{Roots: p.Roots(), Collateral: col, CheckRevocation: true,
		Policy: sevsnp.Policy{Measurements: [][]byte{sevsnptest.Measurement()}}})
	appraise := func(at time.Time) error {
		_, err := v.Verify(context.Background(), rec, &verifier.Expected{Challenge: ch, Now: at})
		return err
	}
	warm := func(t *testing.T) {
		t.Helper()
		col.set(p.CRL(t, now, time.Hour))
		for range 2 {
			if err := appraise(now); err != nil {
				t.Fatal(err)
			}
		}
		if chains, crls := v.CacheLens(); chains != 1 || crls < 1 {
			t.Fatalf("cache holds %d chains, %d CRLs after warm-up", chains, crls)
		}
	}

	t.Run("VCEK revoked by a new CRL", func(t *testing.T) {
		warm(t)
		col.set(p.CRL(t, now, time.Hour, p.Signer.Vcek.SerialNumber))
		checktest.Rejected(t, appraise(now), verifier.CheckChain)
	})
	t.Run("ASK revoked by a new CRL", func(t *testing.T) {
		warm(t)
		col.set(p.CRL(t, now, time.Hour, p.Signer.Ask.SerialNumber))
		checktest.Rejected(t, appraise(now), verifier.CheckChain)
	})
	t.Run("cached CRL past its nextUpdate", func(t *testing.T) {
		warm(t)
		err := appraise(now.Add(2 * time.Hour))
		if !errors.Is(err, verifier.ErrUnavailable) {
			t.Fatalf("got %v, want unavailable", err)
		}
	})
	t.Run("CRL signed by another key", func(t *testing.T) {
		warm(t)
		der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
			SignatureAlgorithm: x509.SHA384WithRSAPSS, Number: big.NewInt(9),
			ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour),
		}, p.Signer.Ark, p.Signer.Keys.Ask)
		if err != nil {
			t.Fatal(err)
		}
		col.set(der)
		checktest.Rejected(t, appraise(now), verifier.CheckChain)
	})
	t.Run("VCEK expired, chain cached", func(t *testing.T) {
		warm(t)
		after := p.Signer.Vcek.NotAfter.Add(time.Second)
		// A CRL current then, so that only the certificate's validity
		// decides.
		col.set(p.CRL(t, after, time.Hour))
		checktest.Rejected(t, appraise(after), verifier.CheckChain)
		if err := appraise(p.Signer.Vcek.NotAfter); err != nil {
			t.Fatalf("at NotAfter itself: %v", err)
		}
	})
	t.Run("VCEK altered in one byte", func(t *testing.T) {
		warm(t)
		s := platformReports(t, p)[0]
		m := bytes.Clone(s.ek.Raw)
		m[len(m)-1] ^= 1 // in its signature
		before, _ := v.CacheLens()
		var re *verifier.RejectedError
		if err := v.ChainAndSignature(s.report, m, now); !errors.As(err, &re) || re.Check != verifier.CheckChain {
			t.Fatalf("altered VCEK: got %v, want a chain rejection", err)
		}
		if after, _ := v.CacheLens(); after != before {
			t.Errorf("altered VCEK cached: %d chains, was %d", after, before)
		}
	})
}

// Concurrent appraisals on one Verifier, cache cold at first: all accept
// (and the race detector finds nothing).
func TestChainCacheConcurrent(t *testing.T) {
	p := sevsnptest.NewPlatform(t)
	v := mustNew(t, &sevsnp.Config{Roots: p.Roots()})
	reports := platformReports(t, p)
	now := time.Now()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5 {
				s := reports[(g+i)%len(reports)]
				if err := v.ChainAndSignature(s.report, s.ek.Raw, now); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
