package expattest_test

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"time"

	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/expat/expattest"
	"github.com/attested-tls/go-expat/expat/expattest/testkit"
)

// A test of a service that requires its peer's attestation, without
// hardware or cgo: the software attester stands in for a TPM or TEE, and
// the client trusts its key only because the test says so.
func ExampleNewPair() {
	key, err := testkit.GenerateKey() // TEST ONLY: a throwaway "platform" key
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := expattest.NewPair(ctx,
		&expat.Config{Attester: &testkit.Attester{Key: key}},
		&expat.Config{RequirePeerAttestation: true, Verifier: &testkit.Verifier{TrustedKeys: []*ecdsa.PublicKey{&key.PublicKey}}})
	if err != nil {
		panic(err)
	}
	defer p.Close()
	a := p.Client.PeerAttestation()
	fmt.Println(a.Chain[0].Subject.CommonName, a.Result.Technology, a.Result.Status)

	// The same server, appraised by a verifier that trusts another key.
	other, _ := testkit.GenerateKey()
	q, err := expattest.NewPair(ctx,
		&expat.Config{Attester: &testkit.Attester{Key: key}},
		&expat.Config{RequirePeerAttestation: true, Verifier: &testkit.Verifier{TrustedKeys: []*ecdsa.PublicKey{&other.PublicKey}}})
	defer q.Close()
	fmt.Println(err != nil, q.Client.PeerAttestation() == nil)
	// Output:
	// server.test test-kit affirming
	// true true
}
