package testkit_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"fmt"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/expat/expattest/testkit"
	"github.com/attested-tls/go-expat/verifier"
)

// DEMO / TEST ONLY: a software attester and the verifier that trusts its
// throwaway key because this example says so.
func Example() {
	key, err := testkit.GenerateKey()
	if err != nil {
		panic(err)
	}
	digest := sha256.Sum256([]byte("app v1"))
	meas := []verifier.Measurement{{Name: "app", Value: digest[:]}}
	att := &testkit.Attester{Key: key, Measurements: meas}
	ver := &testkit.Verifier{TrustedKeys: []*ecdsa.PublicKey{&key.PublicKey}, ReferenceMeasurements: meas}

	h := crypto.SHA256
	ch := attester.Challenge{Hash: h, Binding: make([]byte, h.Size()), AIKPubHash: make([]byte, h.Size())}
	evidence, err := att.Attest(context.Background(), ch)
	if err != nil {
		panic(err)
	}
	res, err := ver.Verify(context.Background(), evidence, &verifier.Expected{Challenge: ch})
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Model, res.Technology, res.Status, res.Measurements[0].Name)

	// Evidence bound to another challenge is rejected.
	other := ch
	other.Binding = append([]byte{1}, ch.Binding[1:]...)
	_, err = ver.Verify(context.Background(), evidence, &verifier.Expected{Challenge: other})
	fmt.Println(err)
	// Output:
	// background-check test-kit affirming app
	// verifier: rejected (challenge): testkit: eat_nonce does not match this connection's challenge
}
