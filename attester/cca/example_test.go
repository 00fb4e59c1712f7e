package cca_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"fmt"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/attester/cca"
	"github.com/attested-tls/go-expat/attester/cca/ccatest"
	"github.com/attested-tls/go-expat/verifier"
	vcca "github.com/attested-tls/go-expat/verifier/cca"
)

// An attester backed by the test-only software CCA platform, appraised by a
// local verifier that trusts that platform's CPAK (and nothing else).
func Example() {
	p, err := ccatest.New(nil) // TEST ONLY: software keys
	if err != nil {
		panic(err)
	}
	a, err := cca.NewTSMAttester(p.Client(), nil) // in a realm: linuxtsm.MakeClient()
	if err != nil {
		panic(err)
	}
	// In go-expat the challenge comes from the TLS exporter (package expat).
	b := sha256.Sum256([]byte("binding"))
	k := sha256.Sum256([]byte("AIK SPKI"))
	ch := attester.Challenge{Hash: crypto.SHA256, Binding: b[:], AIKPubHash: k[:]}

	evidence, err := a.Attest(context.Background(), ch)
	if err != nil {
		panic(err)
	}
	v, err := vcca.New(&vcca.Config{
		TrustedKeys: []vcca.TrustedKey{{Name: "test CPAK", Key: p.CPAK()}},
		Policy:      vcca.Policy{RIMs: [][]byte{p.Claims.RIM}, AcceptAnySoftware: true},
	})
	if err != nil {
		panic(err)
	}
	res, err := v.Verify(context.Background(), evidence, &verifier.Expected{Challenge: ch})
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Technology, res.Status, res.Claims["platform.lifecycle"])
	// Output: cca affirming 0x3000 (secured)
}
