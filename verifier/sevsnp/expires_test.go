package sevsnp_test

import (
	"context"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/attester/sevsnp/sevsnptest"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/sevsnp"
)

// The appraisal is good while its endorsement is: Result.Expires is the
// VCEK certificate's NotAfter.
func TestExpiresFromEndorsement(t *testing.T) {
	p := sevsnptest.NewPlatform(t)
	ch := sevsnptest.RandomChallenge(t)
	v := mustNew(t, &sevsnp.Config{Roots: p.Roots(), Policy: sevsnp.Policy{Measurements: [][]byte{sevsnptest.Measurement()}}})
	res, err := v.Verify(context.Background(), p.Attest(t, ch, nil, nil), &verifier.Expected{Challenge: ch})
	if err != nil {
		t.Fatal(err)
	}
	vcek := p.Signer.Vcek
	if !res.Expires.Equal(vcek.NotAfter) || !res.Expires.After(time.Now()) {
		t.Fatalf("Expires %v, want the VCEK's NotAfter %v", res.Expires, vcek.NotAfter)
	}
}
