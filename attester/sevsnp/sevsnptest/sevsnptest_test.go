package sevsnptest_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	spb "github.com/google/go-sev-guest/proto/sevsnp"

	asevsnp "github.com/attested-tls/go-expat/attester/sevsnp"
	"github.com/attested-tls/go-expat/attester/sevsnp/sevsnptest"
	"github.com/attested-tls/go-expat/verifier"
	vsevsnp "github.com/attested-tls/go-expat/verifier/sevsnp"
)

// The kit's two report sources verify against its roots, and only there.
func TestPlatform(t *testing.T) {
	p := sevsnptest.NewPlatform(t)
	ch := sevsnptest.RandomChallenge(t)
	ctx := context.Background()
	exp := &verifier.Expected{Challenge: ch}
	tsm, err := p.TSMAttester(t, nil, nil).Attest(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	for name, rec := range map[string][]byte{
		"device": p.Attest(t, ch, nil, nil),
		"tsm":    tsm,
	} {
		t.Run(name, func(t *testing.T) {
			res, err := p.Verifier(t, vsevsnp.Policy{}).Verify(ctx, rec, exp)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(res.Measurements[0].Value, sevsnptest.Measurement()) || res.Claims["product"] != sevsnptest.ProductLine {
				t.Errorf("result %+v", res)
			}
			ev := sevsnptest.EvidenceOf(t, rec)
			if !bytes.Equal(sevsnptest.Record(t, ev), rec) {
				t.Error("Record(EvidenceOf(rec)) != rec")
			}
			real, err := vsevsnp.New(&vsevsnp.Config{Policy: vsevsnp.Policy{AcceptAnyMeasurement: true}})
			if err != nil {
				t.Fatal(err)
			}
			var re *verifier.RejectedError
			if _, err := real.Verify(ctx, rec, exp); !errors.As(err, &re) || re.Check != verifier.CheckChain {
				t.Fatalf("AMD's roots: got %v, want a chain rejection", err)
			}
		})
	}
}

func TestMutateAndVMPL(t *testing.T) {
	p := sevsnptest.NewPlatform(t)
	ch := sevsnptest.RandomChallenge(t)
	a := p.TSMAttester(t, func(r *spb.Report) { r.Policy |= 1 << 19 }, &asevsnp.Options{VMPL: 2})
	rec, err := a.Attest(context.Background(), ch)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Verifier(t, vsevsnp.Policy{VMPLs: []uint32{2}}).Verify(context.Background(), rec, &verifier.Expected{Challenge: ch})
	var re *verifier.RejectedError
	if !errors.As(err, &re) || re.Check != verifier.CheckDebug {
		t.Fatalf("got %v, want a debug rejection", err)
	}
	res, err := p.Verifier(t, vsevsnp.Policy{VMPLs: []uint32{2}, AllowDebug: true}).Verify(context.Background(), rec, &verifier.Expected{Challenge: ch})
	if err != nil || res.Claims["vmpl"] != "2" {
		t.Fatalf("got %v, %v; want VMPL 2 accepted", res, err)
	}
}
