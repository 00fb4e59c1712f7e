package ear_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/expat/expattest/testkit"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/ear"
)

// The passport model in one process. DEMO: the Evidence comes from the
// TEST-ONLY software attester, trusted here because the example says so.
func Example() {
	ak, _ := testkit.GenerateKey()
	issuerKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	// Attesting side: Evidence -> local appraisal -> signed EAR in a CMW.
	att := &ear.PassportAttester{
		Evidence: &testkit.Attester{Key: ak},
		Issuer: &ear.Issuer{
			Appraiser: &testkit.Verifier{TrustedKeys: []*ecdsa.PublicKey{&ak.PublicKey}},
			Key:       issuerKey,
			Name:      "https://verifier.example",
		},
	}
	h := crypto.SHA256
	ch := attester.Challenge{Hash: h, Binding: make([]byte, h.Size()), AIKPubHash: make([]byte, h.Size())}
	passport, err := att.Attest(context.Background(), ch)
	if err != nil {
		panic(err)
	}

	// Relying party: trusts the issuer's key, checks the EAR is fresh,
	// affirming, and carries this connection's challenge.
	v, err := ear.New(&ear.Config{Keys: []ear.TrustedKey{{Key: &issuerKey.PublicKey}}})
	if err != nil {
		panic(err)
	}
	res, err := v.Verify(context.Background(), passport, &verifier.Expected{Challenge: ch})
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Model, res.Status, res.Verifier)

	other := ch
	other.Binding = append([]byte{1}, ch.Binding[1:]...)
	_, err = v.Verify(context.Background(), passport, &verifier.Expected{Challenge: other})
	fmt.Println(err)
	// Output:
	// passport affirming https://verifier.example
	// verifier: rejected (nonce): ear: eat_nonce does not match this connection's challenge
}
