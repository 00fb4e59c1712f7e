package tdx_test

// The Verifier's cache of verified PCK chains: a cached verdict is the one
// a Verifier without the cache gives.

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/attester/tdx/tdxtest"
	"github.com/attested-tls/go-expat/attester/tdx/wire"
	expatcmw "github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/internal/checktest"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/tdx"
)

// mutatedQuote returns the quote for ch with mod applied (wire.ParseQuote,
// Quote.Marshal), as a CMW.
func (e *env) mutatedQuote(t *testing.T, ch []byte, mod func(*wire.Quote)) []byte {
	t.Helper()
	raw, err := e.pl.QuoteFor([64]byte(ch))
	if err != nil {
		t.Fatal(err)
	}
	q, err := wire.ParseQuote(raw)
	if err != nil {
		t.Fatal(err)
	}
	if mod != nil {
		mod(q)
	}
	b, err := q.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return wrap(t, b, expatcmw.MediaTypeTDX)
}

// Quotes with a valid chain, an altered PCK chain byte, QE report or QE
// report signature, appraised at times inside and just outside the PCK
// certificate's validity, twice each: the same verdicts with a warm cache
// as without one.
func TestChainCacheDifferential(t *testing.T) {
	e := newEnv(t)
	pckNotAfter := e.now.Add(2 * time.Hour)
	o := tdxtest.DefaultPCKOptions()
	o.NotAfter = pckNotAfter
	pl, err := e.pki.NewPlatform(o)
	if err != nil {
		t.Fatal(err)
	}
	e.pl = pl
	e.setCollateral(tdxtest.Window(e.now, 30*24*time.Hour), nil)
	ch := challenge("diff")
	rd, _ := ch.ReportData64()
	pemAt := func(i int) func(*wire.Quote) {
		return func(q *wire.Quote) {
			q.PCKChain = bytes.Clone(q.PCKChain)
			// A base64 character inside the first certificate: flipping
			// its case changes the DER.
			c := q.PCKChain[i]
			if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
				q.PCKChain[i] = c ^ 0x20
			} else {
				q.PCKChain[i] = 'A'
			}
		}
	}
	cases := map[string][]byte{
		"valid":                e.mutatedQuote(t, rd[:], nil),
		"PCK chain byte 100":   e.mutatedQuote(t, rd[:], pemAt(100)),
		"PCK chain byte 500":   e.mutatedQuote(t, rd[:], pemAt(500)),
		"QE report ISVSVN":     e.mutatedQuote(t, rd[:], func(q *wire.Quote) { q.QEReport.ISVSVN ^= 1 }),
		"QE report signature":  e.mutatedQuote(t, rd[:], func(q *wire.Quote) { q.QEReportSig[5] ^= 1 }),
		"quote signature only": e.mutatedQuote(t, rd[:], func(q *wire.Quote) { q.Signature[5] ^= 1 }),
	}
	cached := e.verifier(tdx.Policy{})
	uncached := e.verifier(tdx.Policy{})
	uncached.DisableChainCache()
	times := []time.Time{e.now, pckNotAfter, pckNotAfter.Add(time.Second), e.now.Add(-24 * time.Hour), e.now}
	accepted := 0
	for name, ev := range cases {
		for _, at := range times {
			for range 2 {
				exp := expected(ch)
				exp.Now = at
				_, c := cached.Verify(context.Background(), ev, exp)
				_, u := uncached.Verify(context.Background(), ev, exp)
				checktest.SameVerdict(t, name+" at "+at.String(), c, u)
				if c == nil {
					accepted++
				}
			}
		}
	}
	if accepted == 0 {
		t.Error("nothing accepted")
	}
	// The valid chain with two QE reports: each quote made carries a new
	// QE report signature ("valid" and "quote signature only").
	if n := cached.ChainCacheLen(); n != 2 {
		t.Errorf("%d chains cached, want 2", n)
	}
}

// A chain cached, then a PCK CRL or root CA CRL revoking the PCK
// certificate or its CA (published when the previous ones expired): the
// next appraisal is rejected; a PCK certificate past its NotAfter is
// rejected although its chain was cached.
func TestChainCacheInvalidation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		caCRL bool // the root CA CRL revokes the PCK CA; else the PCK CRL the PCK
	}{
		{"PCK revoked", false},
		{"PCK CA revoked", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.setCollateral(tdxtest.Window(e.now, time.Hour), nil)
			v := e.verifier(tdx.Policy{})
			ch := challenge("inv")
			ev := e.evidence(ch)
			for range 2 {
				if _, err := v.Verify(context.Background(), ev, expected(ch)); err != nil {
					t.Fatal(err)
				}
			}
			if v.ChainCacheLen() != 1 {
				t.Fatalf("chain not cached")
			}
			e.clock.Add(time.Hour) // the CRLs' nextUpdate: fetched again
			w := tdxtest.Window(e.clock.Now(), time.Hour)
			if !tc.caCRL {
				e.setCollateral(w, nil, e.pl.PCK)
			} else {
				e.setCollateral(w, nil)
				crl, err := e.pki.RootCRL(w.Issue, w.Next, tdxtest.SerialOf(e.pki.PlatformCA))
				if err != nil {
					t.Fatal(err)
				}
				e.col.RootCRL = crl
				e.srv.Set(e.col)
			}
			_, err := v.Verify(context.Background(), ev, expected(ch))
			wantReject(t, err, verifier.CheckChain)
		})
	}
	t.Run("PCK expired", func(t *testing.T) {
		e := newEnv(t)
		o := tdxtest.DefaultPCKOptions()
		o.NotAfter = e.now.Add(2 * time.Hour)
		pl, err := e.pki.NewPlatform(o)
		if err != nil {
			t.Fatal(err)
		}
		e.pl = pl
		e.setCollateral(tdxtest.Window(e.now, 30*24*time.Hour), nil)
		v := e.verifier(tdx.Policy{})
		ch := challenge("exp")
		ev := e.evidence(ch)
		if _, err := v.Verify(context.Background(), ev, expected(ch)); err != nil {
			t.Fatal(err)
		}
		exp := expected(ch)
		exp.Now = o.NotAfter
		if _, err := v.Verify(context.Background(), ev, exp); err != nil {
			t.Fatalf("at NotAfter: %v", err)
		}
		exp.Now = o.NotAfter.Add(time.Second)
		_, err = v.Verify(context.Background(), ev, exp)
		wantReject(t, err, verifier.CheckChain)
	})
}
