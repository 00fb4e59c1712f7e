package local_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net/http/httptest"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/expat/expattest/testkit"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/ear"
	"github.com/attested-tls/go-expat/verifier/local"
	"github.com/attested-tls/go-expat/verifier/veraison"
)

// A local Verifier service appraising (TEST-ONLY) test-kit Evidence, and a
// relying party using it through verifier/veraison exactly as it would use
// a Veraison deployment.
func ExampleNewService() {
	// The attester's key: trusted by the service's test-kit verifier only
	// because this example says so.
	ak, _ := testkit.GenerateKey()
	earKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	svc, err := local.NewService(local.Config{
		Appraiser: &verifier.Dispatch{Verifiers: map[string]verifier.Verifier{
			cmw.MediaTypeTestKit: &testkit.Verifier{TrustedKeys: []*ecdsa.PublicKey{&ak.PublicKey}},
		}},
		Issuer: &ear.Issuer{Key: earKey, Name: "example verifier"},
	})
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(svc) // in production: an http.Server behind TLS
	defer srv.Close()

	// The relying party pins the service's EAR key.
	client, _ := veraison.New(&veraison.Config{URL: srv.URL, EARKeys: []ear.TrustedKey{{Key: &earKey.PublicKey}}})
	rp := veraison.NewVerifier(client)

	// In go-expat the challenge comes from the TLS exporter; here any
	// well-formed one.
	ch := attester.Challenge{Hash: crypto.SHA256, Binding: make([]byte, 32), AIKPubHash: make([]byte, 32)}
	ev, _ := (&testkit.Attester{Key: ak}).Attest(context.Background(), ch)

	res, err := rp.Verify(context.Background(), ev, &verifier.Expected{Challenge: ch})
	if err != nil {
		panic(err)
	}
	fmt.Println("status:", res.Status)
	fmt.Println("submodule:", res.Claims["submod.test-kit.status"])

	// Evidence from an attester the service does not trust.
	other, _ := testkit.GenerateKey()
	ev, _ = (&testkit.Attester{Key: other}).Attest(context.Background(), ch)
	_, err = rp.Verify(context.Background(), ev, &verifier.Expected{Challenge: ch})
	fmt.Println("untrusted attester:", err)
	// Output:
	// status: affirming
	// submodule: affirming
	// untrusted attester: verifier: rejected (status): ear: submod "test-kit" is contraindicated
}
