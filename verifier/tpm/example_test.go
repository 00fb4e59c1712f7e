package tpm_test

import (
	"context"
	"crypto"
	"fmt"
	"time"

	"github.com/attested-tls/go-expat/attester"
	atpm "github.com/attested-tls/go-expat/attester/tpm"
	"github.com/attested-tls/go-expat/attester/tpm/tpmsim"
	"github.com/attested-tls/go-expat/verifier"
	vtpm "github.com/attested-tls/go-expat/verifier/tpm"
)

// Appraise a quote from an AK enrolled by pinning its public key.
func Example() {
	ctx := context.Background()
	sim, err := tpmsim.Open() // test-only TPM
	if err != nil {
		fmt.Println(err)
		return
	}
	conn, _ := atpm.Open(sim, nil)
	defer conn.Close()
	att, _ := atpm.NewAttester(ctx, conn, nil)
	defer att.Close(ctx)
	key, _ := att.NewKey(ctx)

	// Enrollment: the relying party pins the AK.
	ak, _ := vtpm.ParseAKPublic(att.AKPublic())
	// The PCR policy: the values the relying party expects (here those of a
	// freshly started simulator that measured nothing: all zero).
	zero := make([]byte, 32)
	v, _ := vtpm.New(&vtpm.Config{
		TrustedAKs:            []crypto.PublicKey{ak},
		PCRPolicy:             map[int][][]byte{0: {zero}, 7: {zero}},
		RequireKeyAttestation: true,
	})

	// Both sides compute the challenge from the connection (package expat).
	aik := crypto.SHA256.New()
	aik.Write(key.SPKI())
	ch := attester.Challenge{Hash: crypto.SHA256, Binding: make([]byte, 32), AIKPubHash: aik.Sum(nil)}
	evidence, _ := att.Attest(ctx, ch)

	res, err := v.Verify(ctx, evidence, &verifier.Expected{
		Challenge: ch, PublicKey: key.Public(), SPKI: key.SPKI(), Now: time.Now()})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Technology, res.Status, res.Claims["key-attested"])
	// Output: tpm2 affirming true
}
