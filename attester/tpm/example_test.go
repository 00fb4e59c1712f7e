package tpm_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"fmt"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/attester/tpm"
	"github.com/attested-tls/go-expat/attester/tpm/bundle"
	"github.com/attested-tls/go-expat/attester/tpm/tpmsim"
)

// An attester on the in-process simulator: create a TPM-resident key for
// the Exported Authenticator, then attest with a challenge naming it.
func Example() {
	ctx := context.Background()
	sim, err := tpmsim.Open() // test-only TPM; use tpm.OpenDevice on a real one
	if err != nil {
		fmt.Println(err)
		return
	}
	conn, _ := tpm.Open(sim, nil)
	defer conn.Close()
	att, err := tpm.NewAttester(ctx, conn, &tpm.Config{PCRs: []int{0, 7}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer att.Close(ctx)
	key, err := att.NewKey(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}

	// Package expat computes these from the TLS exporter and key.SPKI().
	binding := sha256.Sum256([]byte("binding from the exporter"))
	aikPubHash := sha256.Sum256(key.SPKI())
	evidence, err := att.Attest(ctx, attester.Challenge{Hash: crypto.SHA256, Binding: binding[:], AIKPubHash: aikPubHash[:]})
	if err != nil {
		fmt.Println(err)
		return
	}
	b, _ := bundle.Unwrap(evidence)
	fmt.Println("PCRs quoted:", len(b.PCRs))
	fmt.Println("key certified:", b.HasKeyAttestation())
	// Output:
	// PCRs quoted: 2
	// key certified: true
}
