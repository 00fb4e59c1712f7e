package policy_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/expat/expattest/testkit"
	"github.com/attested-tls/go-expat/internal/checktest"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/ear"
	"github.com/attested-tls/go-expat/verifier/policy"
)

// TestKeyBoundPolicy: "key_bound" opts a passport policy into reusable
// key-bound EARs up to its max_age; without it they are refused.
func TestKeyBoundPolicy(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	issKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&issKey.PublicKey)
	if err := os.WriteFile(filepath.Join(dir, "signer.pem"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	ak, _ := testkit.GenerateKey()
	eaKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, _ := x509.MarshalPKIXPublicKey(&eaKey.PublicKey)
	issued := time.Now()
	iss := &ear.Issuer{Appraiser: &testkit.Verifier{TrustedKeys: []*ecdsa.PublicKey{&ak.PublicKey}}, Key: issKey,
		Validity: 2 * time.Hour, Time: func() time.Time { return issued }}
	req, err := iss.NewKeyRequest(spki)
	if err != nil {
		t.Fatal(err)
	}
	ev, _ := (&testkit.Attester{Key: ak}).Attest(ctx, req.Challenge())
	tok, _, err := iss.IssueForKey(ctx, req, ev)
	if err != nil {
		t.Fatal(err)
	}
	aik := sha256.Sum256(spki)
	exp := func(age time.Duration) *verifier.Expected {
		return &verifier.Expected{Challenge: attester.Challenge{Hash: crypto.SHA256, Binding: make([]byte, 32), AIKPubHash: aik[:]},
			SPKI: spki, Now: issued.Add(age)}
	}
	build := func(keyBound string) (*ear.Verifier, error) {
		doc := `{"version":1,"model":"passport","ear":{"keys":[{"key":"signer.pem"}]` + keyBound + `}}`
		p, err := policy.Parse([]byte(doc))
		if err != nil {
			return nil, err
		}
		v, err := policy.Build(p, &policy.Options{Dir: dir})
		if err != nil {
			return nil, err
		}
		return v.(*ear.Verifier), nil
	}
	v, err := build(`,"key_bound":{"max_age":"1h"}`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyJWT(ctx, tok, exp(30*time.Minute)); err != nil {
		t.Fatalf("within key_bound.max_age: %v", err)
	}
	_, err = v.VerifyJWT(ctx, tok, exp(61*time.Minute))
	checktest.Rejected(t, err, verifier.CheckAge)

	plain, err := build(``)
	if err != nil {
		t.Fatal(err)
	}
	_, err = plain.VerifyJWT(ctx, tok, exp(time.Minute))
	checktest.Rejected(t, err, verifier.CheckNonce)

	for _, bad := range []string{`,"key_bound":{}`, `,"key_bound":{"max_age":"0s"}`, `,"key_bound":{"max_age":"1h","MaxAge":"2h"}`} {
		var pe *policy.Error
		if _, err := build(bad); !errors.As(err, &pe) {
			t.Errorf("%s: got %v, want a *policy.Error", bad, err)
		}
	}
}
