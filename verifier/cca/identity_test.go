package cca_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/cca"
)

// The result names the platform (instance and implementation IDs, as the
// signed platform token states them) and says the Evidence names the EA
// key (the realm challenge).
func TestPlatformIDs(t *testing.T) {
	p := newPlatform(t)
	ch := testChallenge(t, "ids")
	tok, err := p.Token(reportData(t, ch))
	if err != nil {
		t.Fatal(err)
	}
	v := mustVerifier(t, &cca.Config{TrustedKeys: []cca.TrustedKey{{Name: "k1", Key: p.CPAK()}}, Policy: policyFor(p)})
	res, err := v.Verify(context.Background(), wrap(t, cmw.MediaTypeCCA, tok, cmw.Evidence), &verifier.Expected{Challenge: ch})
	if err != nil {
		t.Fatal(err)
	}
	want := []verifier.PlatformID{{Kind: "cca.instance-id", Value: p.Claims.InstanceID}, {Kind: "cca.implementation-id", Value: p.Claims.ImplementationID}}
	if res.KeyBinding != verifier.KeyInEvidence || len(res.PlatformIDs) != 2 ||
		!res.PlatformIDs[0].Equal(want[0]) || !res.PlatformIDs[1].Equal(want[1]) || bytes.Equal(want[0].Value, want[1].Value) {
		t.Fatalf("KeyBinding %v, PlatformIDs %v, want %v", res.KeyBinding, res.PlatformIDs, want)
	}
}
