package composite_test

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"time"

	"github.com/attested-tls/go-expat/attester"
	acomposite "github.com/attested-tls/go-expat/attester/composite"
	asevsnp "github.com/attested-tls/go-expat/attester/sevsnp"
	"github.com/attested-tls/go-expat/attester/sevsnp/sevsnptest"
	atpm "github.com/attested-tls/go-expat/attester/tpm"
	"github.com/attested-tls/go-expat/attester/tpm/tpmsim"
	"github.com/attested-tls/go-expat/verifier"
	vcomposite "github.com/attested-tls/go-expat/verifier/composite"
	vsevsnp "github.com/attested-tls/go-expat/verifier/sevsnp"
	vtpm "github.com/attested-tls/go-expat/verifier/tpm"
)

// A confidential VM attests with its SEV-SNP report, whose REPORT_DATA
// commits to its vTPM's attestation key, and a vTPM quote over the
// channel's challenge; the relying party appraises both as one and trusts
// the AK only because the report vouches for it. A report from another
// machine does not vouch for this vTPM.
func Example() {
	ctx := context.Background()
	// Test-only parts: a fake SEV-SNP platform and the TPM simulator.
	plat, _ := sevsnptest.New()
	snp, _ := asevsnp.NewTSMAttester(plat.TSM(nil), nil)
	sim, err := tpmsim.Open()
	if err != nil {
		fmt.Println(err)
		return
	}
	conn, _ := atpm.Open(sim, nil)
	defer conn.Close()
	vtpmAtt, _ := atpm.NewAttester(ctx, conn, &atpm.Config{PCRs: []int{0, 7}})
	defer vtpmAtt.Close(ctx)

	// The attesting VM.
	att, _ := acomposite.New(&acomposite.Config{
		Anchor: snp,
		Items:  []acomposite.Item{{Label: acomposite.VTPMLabel, Attester: vtpmAtt, Key: vtpmAtt.AKPublic()}},
	})

	// The relying party: the anchor's roots and policy, the vTPM's PCR
	// policy, no pinned AK.
	anchor, _ := vsevsnp.New(&vsevsnp.Config{Roots: plat.Roots(),
		Policy: vsevsnp.Policy{Measurements: [][]byte{sevsnptest.Measurement()}}})
	zero := make([]byte, 32)
	kind, _ := vtpm.NewBoundAK(&vtpm.Config{PCRPolicy: map[int][][]byte{0: {zero}, 7: {zero}}})
	v, _ := vcomposite.New(&vcomposite.Config{
		Anchor: anchor,
		Bound:  []vcomposite.Bound{{Label: acomposite.VTPMLabel, Kind: kind}},
	})

	// Package expat computes the challenge from the connection.
	ch := attester.Challenge{Hash: crypto.SHA256, Binding: make([]byte, 32), AIKPubHash: make([]byte, 32)}
	exp := &verifier.Expected{Challenge: ch, Now: time.Now()}
	evidence, _ := att.Attest(ctx, ch)
	res, err := v.Verify(ctx, evidence, exp)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Technology, res.Status, res.Claims["vtpm/ak-trust"])

	// Another machine's report (it commits to that machine's vTPM) with
	// this vTPM's quote.
	other, _ := sevsnptest.New()
	otherSNP, _ := asevsnp.NewTSMAttester(other.TSM(nil), nil)
	spliced, _ := acomposite.New(&acomposite.Config{
		Anchor: otherSNP,
		Items:  []acomposite.Item{{Label: acomposite.VTPMLabel, Attester: vtpmAtt, Key: []byte("another vTPM's AK")}},
	})
	evidence, _ = spliced.Attest(ctx, ch)
	_, err = v.Verify(ctx, evidence, exp)
	var re *verifier.RejectedError
	fmt.Println(errors.As(err, &re) && re.Check == verifier.CheckLink)
	// Output:
	// sev-snp+tpm2 affirming anchor
	// true
}
