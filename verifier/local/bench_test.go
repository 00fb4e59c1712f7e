package local_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/ear"
	"github.com/attested-tls/go-expat/verifier/veraison"
)

// BenchmarkAppraisal compares one appraisal of the same test-kit Evidence
// in process (the Dispatch alone; the Dispatch plus EAR signing by an
// ear.Issuer) and through the service over loopback HTTP with
// veraison.Verifier (new session, submission, EAR check, deletion). Each
// sub-benchmark also reports the median latency (p50-ns).
func BenchmarkAppraisal(b *testing.B) {
	e := newEnv(b)
	ch := challenge(b)
	ev, err := e.att.Attest(context.Background(), ch)
	if err != nil {
		b.Fatal(err)
	}
	exp := &verifier.Expected{Challenge: ch}
	iss := &ear.Issuer{Appraiser: e.dispatch, Key: e.earKey, Name: "local-test"}
	rp := veraison.NewVerifier(e.client)
	cases := []struct {
		name string
		fn   func() error
	}{
		{"in-process-verifier", func() error { _, err := e.dispatch.Verify(context.Background(), ev, exp); return err }},
		{"in-process-issuer", func() error { _, _, err := iss.Issue(context.Background(), ev, exp); return err }},
		{"service", func() error { _, err := rp.Verify(context.Background(), ev, exp); return err }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var d []time.Duration
			for b.Loop() {
				t0 := time.Now()
				if err := c.fn(); err != nil {
					b.Fatal(err)
				}
				d = append(d, time.Since(t0))
			}
			slices.Sort(d)
			b.ReportMetric(float64(d[len(d)/2].Nanoseconds()), "p50-ns")
		})
	}
}
