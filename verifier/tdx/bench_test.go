package tdx_test

import (
	"context"
	"crypto/x509"
	"testing"

	"github.com/attested-tls/go-expat/verifier/tdx"
	"github.com/google/go-tdx-guest/abi"
	"github.com/google/go-tdx-guest/verify"
)

// BenchmarkQuoteVerify: a full Verify (CMW decode, quote parse, PCK chain,
// two signatures, binding, revocation, TCB evaluation) with a warm
// collateral cache. It reports the collateral fetches per 1,000
// verifications. Run alone it uses the cache of verified PCK chains (the
// default); its sub-benchmarks cached and uncached (that cache disabled:
// every PCK chain and QE report signature checked again) measure both in
// one run.
func BenchmarkQuoteVerify(b *testing.B) {
	e := newEnv(b)
	ch := challenge("bench")
	ev := e.evidence(ch)
	exp := expected(ch)
	for _, cached := range []bool{true, false} {
		name := "cached"
		if !cached {
			name = "uncached"
		}
		b.Run(name, func(b *testing.B) {
			v := e.verifier(tdx.Policy{})
			if !cached {
				v.DisableChainCache()
			}
			if _, err := v.Verify(context.Background(), ev, exp); err != nil {
				b.Fatal(err)
			}
			before := e.fetches()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := v.Verify(context.Background(), ev, exp); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			f := e.fetches()
			var n int64
			for i := range f {
				n += f[i] - before[i]
			}
			b.ReportMetric(float64(n)*1000/float64(b.N), "fetches/1000verifs")
		})
	}
}

// BenchmarkQuoteVerifyCold: same, with a new Verifier (empty cache) each time,
// collateral served over loopback HTTP.
func BenchmarkQuoteVerifyCold(b *testing.B) {
	e := newEnv(b)
	ch := challenge("bench")
	ev := e.evidence(ch)
	exp := expected(ch)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v := e.verifier(tdx.Policy{})
		if _, err := v.Verify(context.Background(), ev, exp); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGoTDXGuestVerify is the baseline: go-tdx-guest's verify on the
// same quote and collateral (it fetches collateral on every call and has
// no cache).
func BenchmarkGoTDXGuestVerify(b *testing.B) {
	e := newEnv(b)
	rd, _ := challenge("bench").ReportData64()
	raw, err := e.pl.QuoteFor(rd)
	if err != nil {
		b.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(e.pki.Root)
	getter := handlerGetter{e.srv}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q, err := abi.QuoteToProto(raw)
		if err != nil {
			b.Fatal(err)
		}
		ts := e.now
		opts := &verify.Options{TrustedRoots: roots, GetCollateral: true, CheckRevocations: true, Getter: getter,
			Now: &verify.TimeSet{PckCertChain: ts, TcbInfo: ts, QeIdentity: ts, PckCrl: ts, RootCaCrl: ts}}
		if err := verify.TdxQuote(q, opts); err != nil {
			b.Fatal(err)
		}
	}
}
