package sevsnp_test

import (
	"context"
	"crypto"
	"errors"
	"fmt"

	"github.com/attested-tls/go-expat/attester"
	asevsnp "github.com/attested-tls/go-expat/attester/sevsnp"
	"github.com/attested-tls/go-expat/attester/sevsnp/sevsnptest"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/sevsnp"
)

func ExampleVerifier_Verify() {
	// A test-only platform (go-sev-guest's fake AMD keys), trusted here
	// only because the example passes its roots explicitly.
	p, err := sevsnptest.New()
	if err != nil {
		panic(err)
	}
	// In go-expat the challenge comes from the TLS exporter; here any
	// well-formed one.
	ch := attester.Challenge{Hash: crypto.SHA384, Binding: make([]byte, 48), AIKPubHash: make([]byte, 48)}
	a, err := asevsnp.NewTSMAttester(p.TSM(nil), nil) // on a guest: linuxtsm.MakeClient()
	if err != nil {
		panic(err)
	}
	rec, err := a.Attest(context.Background(), ch)
	if err != nil {
		panic(err)
	}

	v, _ := sevsnp.New(&sevsnp.Config{
		Roots:  p.Roots(),
		Policy: sevsnp.Policy{Measurements: [][]byte{sevsnptest.Measurement()}},
	})
	res, err := v.Verify(context.Background(), rec, &verifier.Expected{Challenge: ch})
	fmt.Println(res.Technology, res.Status, err)

	// AMD's real roots (the default) do not trust the test keys.
	real, _ := sevsnp.New(&sevsnp.Config{Policy: sevsnp.Policy{Measurements: [][]byte{sevsnptest.Measurement()}}})
	_, err = real.Verify(context.Background(), rec, &verifier.Expected{Challenge: ch})
	var re *verifier.RejectedError
	fmt.Println(errors.As(err, &re), re.Check)
	// Output:
	// sev-snp affirming <nil>
	// true chain
}
