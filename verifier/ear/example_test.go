package ear_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"time"

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

// A reusable key-attested passport: one EAR, bound to the Exported
// Authenticator key rather than to a connection, for every connection
// made with that key until it expires. DEMO: TEST-ONLY Evidence.
func ExampleReusablePassport() {
	ak, _ := testkit.GenerateKey()
	issuerKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	eaKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, _ := x509.MarshalPKIXPublicKey(&eaKey.PublicKey)

	p, err := ear.NewReusablePassport(&ear.ReusablePassportConfig{
		Evidence: &testkit.Attester{Key: ak},
		Issuer: &ear.Issuer{
			Appraiser: &testkit.Verifier{TrustedKeys: []*ecdsa.PublicKey{&ak.PublicKey}},
			Key:       issuerKey,
			Validity:  time.Hour,
		},
		SPKI:          spki,
		RefreshBefore: 15 * time.Minute,
	})
	if err != nil {
		panic(err)
	}
	defer p.Close()

	// The relying party accepts key-bound passports up to 30 minutes old.
	v, err := ear.New(&ear.Config{
		Keys:           []ear.TrustedKey{{Key: &issuerKey.PublicKey}},
		Bindings:       ear.BindKey,
		KeyBoundMaxAge: 30 * time.Minute,
	})
	if err != nil {
		panic(err)
	}
	aik := sha256.Sum256(spki)
	var first []byte
	for conn := byte(1); conn <= 3; conn++ { // three connections with the EA key
		ch := attester.Challenge{Hash: crypto.SHA256, Binding: bytes.Repeat([]byte{conn}, 32), AIKPubHash: aik[:]}
		passport, err := p.Attest(context.Background(), ch)
		if err != nil {
			panic(err)
		}
		if first == nil {
			first = passport
		}
		res, err := v.Verify(context.Background(), passport, &verifier.Expected{Challenge: ch, SPKI: spki})
		if err != nil {
			panic(err)
		}
		fmt.Println(res.Status, res.KeyBinding, bytes.Equal(passport, first))
	}
	// Output:
	// affirming result true
	// affirming result true
	// affirming result true
}
