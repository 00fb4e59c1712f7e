package sevsnp_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	"github.com/google/go-sev-guest/verify"
	"github.com/google/go-sev-guest/verify/trust"

	asevsnp "github.com/attested-tls/go-expat/attester/sevsnp"
	"github.com/attested-tls/go-expat/attester/sevsnp/sevsnptest"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/sevsnp"
)

// BenchmarkVerifyWarm: verification with warm caches (the VCEK and CRL
// fetched once from an httptest KDS), Evidence without a certificate table.
// vcek and vcek+crl use the Verifier's cache of verified chains and
// checked CRLs (the default); the -uncached twins, run beside them in the
// same run, are the baseline: every chain and CRL checked again.
func BenchmarkVerifyWarm(b *testing.B) {
	p := sevsnptest.NewPlatform(b)
	k := newKDS(b, p, nil)
	ch := sevsnptest.RandomChallenge(b)
	rec := p.Attest(b, ch, nil, &asevsnp.Options{OmitCertTable: true})
	exp := &verifier.Expected{Challenge: ch}
	for _, crl := range []bool{false, true} {
		name := "vcek"
		if crl {
			name = "vcek+crl"
			k.crl = p.CRL(b, time.Now(), 24*time.Hour)
		}
		for _, cached := range []bool{true, false} {
			n := name
			if !cached {
				n += "-uncached"
			}
			b.Run(n, func(b *testing.B) {
				v := kdsVerifier(b, p, k, &sevsnp.Cache{}, crl)
				if !cached {
					v.DisableCaches()
				}
				if _, err := v.Verify(context.Background(), rec, exp); err != nil {
					b.Fatal(err)
				}
				before := k.hits.Load()
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					if _, err := v.Verify(context.Background(), rec, exp); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(k.hits.Load()-before), "fetches")
			})
		}
	}
}

// BenchmarkVerifyTable: Evidence carrying its certificate table (no
// collateral at all).
func BenchmarkVerifyTable(b *testing.B) {
	p := sevsnptest.NewPlatform(b)
	ch := sevsnptest.RandomChallenge(b)
	rec := p.Attest(b, ch, nil, nil)
	exp := &verifier.Expected{Challenge: ch}
	v := mustNew(b, &sevsnp.Config{Roots: p.Roots(), Policy: sevsnp.Policy{Measurements: [][]byte{sevsnptest.Measurement()}}})
	for b.Loop() {
		if _, err := v.Verify(context.Background(), rec, exp); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBaselineGoSevGuest: go-sev-guest's verify.SnpAttestation alone
// (chain and signature, no policy, no CMW) on the same Evidence: the
// same-run baseline for the benchmarks above.
func BenchmarkBaselineGoSevGuest(b *testing.B) {
	p := sevsnptest.NewPlatform(b)
	ch := sevsnptest.RandomChallenge(b)
	ev := sevsnptest.EvidenceOf(b, p.Attest(b, ch, nil, nil))
	report, err := abi.ReportToProto(ev.Report)
	if err != nil {
		b.Fatal(err)
	}
	roots := map[string][]*trust.AMDRootCerts{"Milan": {{ProductLine: "Milan",
		ProductCerts: &trust.ProductCerts{Ark: p.Signer.Ark, Ask: p.Signer.Ask, Asvk: p.Signer.Asvk}}}}
	att := &spb.Attestation{Report: report, CertificateChain: &spb.CertificateChain{VcekCert: p.Signer.Vcek.Raw}}
	opts := &verify.Options{DisableCertFetching: true, TrustedRoots: roots, Now: time.Now()}
	for b.Loop() {
		if err := verify.SnpAttestation(att, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzVerify: arbitrary bytes as the peer's CMW never panic and never
// verify unless they are the valid record itself.
func FuzzVerify(f *testing.F) {
	p := sevsnptest.NewPlatform(f)
	ch := sevsnptest.RandomChallenge(f)
	valid := p.Attest(f, ch, nil, nil)
	f.Add(valid)
	validReport := sevsnptest.EvidenceOf(f, valid).Report
	f.Add(p.Attest(f, ch, nil, &asevsnp.Options{OmitCertTable: true}))
	v := mustNew(f, &sevsnp.Config{Roots: p.Roots(), Policy: sevsnp.Policy{AcceptAnyMeasurement: true}})
	exp := &verifier.Expected{Challenge: ch}
	f.Fuzz(func(t *testing.T, b []byte) {
		res, err := v.Verify(context.Background(), b, exp)
		if (res == nil) == (err == nil) {
			t.Fatalf("result %v with error %v", res, err)
		}
		if err == nil && string(sevsnptest.EvidenceOf(t, b).Report) != string(validReport) {
			t.Fatalf("a record with another report verified")
		}
	})
}

// BenchmarkChainAndSignature: the chain and report signature step alone,
// ours (chain.go; ours with the cache of verified chains, ours-uncached
// without) against go-sev-guest's verify.SnpAttestation (what this package
// called before) on the same report, certificate and roots.
func BenchmarkChainAndSignature(b *testing.B) {
	p := sevsnptest.NewPlatform(b)
	for _, s := range platformReports(b, p)[:3:3] {
		b.Run(s.name, func(b *testing.B) {
			roots := p.Roots()
			now := time.Now()
			for _, cached := range []bool{true, false} {
				name := "ours"
				if !cached {
					name = "ours-uncached"
				}
				b.Run(name, func(b *testing.B) {
					v := mustNew(b, &sevsnp.Config{Roots: roots})
					if !cached {
						v.DisableCaches()
					}
					for b.Loop() {
						if err := v.ChainAndSignature(s.report, s.ek.Raw, now); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
			b.Run("go-sev-guest", func(b *testing.B) {
				for b.Loop() {
					if err := goSevGuest(roots, s.report, s.ek.Raw, now); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
