package composite_test

import (
	"fmt"

	"github.com/attested-tls/go-expat/attester/composite"
)

// The anchor's user data for a vTPM whose AK has the TPMT_PUBLIC akPublic
// (attester/tpm's Attester.AKPublic). Attester.Attest puts it into the
// anchor's report; verifier/composite recomputes it from the vTPM's bundle.
func ExampleCommitment() {
	akPublic := []byte{1, 2, 3} // a real TPMT_PUBLIC is some 90 bytes
	rd, err := composite.Commitment(composite.AnchorLabel, []composite.Link{{Label: composite.VTPMLabel, Key: akPublic}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%x\n", rd[:8])
	// Output: e4440c3440dd1f99
}
