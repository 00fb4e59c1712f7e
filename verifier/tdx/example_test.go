package tdx_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/attested-tls/go-expat/attester"
	atdx "github.com/attested-tls/go-expat/attester/tdx"
	"github.com/attested-tls/go-expat/attester/tdx/tdxtest"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/tdx"
)

// Verifying TDX Evidence offline, with collateral supplied by the caller.
// The platform and its collateral come from the test-only kit, whose root
// must be trusted explicitly; production code leaves TrustedRoots nil
// (Intel's root) and uses a *tdx.PCS or a *tdx.Bundle of Intel collateral.
func ExampleVerifier_Verify() {
	now := time.Now()
	pki, _ := tdxtest.NewPKI(now)
	pl, _ := pki.NewPlatform(tdxtest.DefaultPCKOptions())
	col, _ := pl.Collateral(tdxtest.Window(now, time.Hour), nil)

	b := sha256.Sum256([]byte("binding"))
	k := sha256.Sum256([]byte("aik"))
	ch := attester.Challenge{Hash: crypto.SHA256, Binding: b[:], AIKPubHash: k[:]}
	a, _ := atdx.NewTSMAttester(&tdxtest.ConfigFS{Platform: pl}, nil)
	evidence, _ := a.Attest(context.Background(), ch)

	v, err := tdx.New(&tdx.Config{
		TrustedRoots: []*x509.Certificate{pki.Root}, // test only
		Getter: &tdx.Bundle{
			TCBInfo: col.TCBInfo, TCBInfoIssuerChain: col.TCBInfoChain,
			QEIdentity: col.QEIdentity, QEIdentityIssuerChain: col.QEIdentityChain,
			PCKCRL: col.PCKCRL, PCKCRLIssuerChain: col.PCKCRLChain, RootCRL: col.RootCRL,
		},
		Policy: tdx.Policy{MRTD: [][]byte{pl.Template.MRTD[:]}},
	})
	if err != nil {
		panic(err)
	}
	res, err := v.Verify(context.Background(), evidence, &verifier.Expected{Challenge: ch})
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Technology, res.Status, res.Claims["tcb_status"], res.Claims["fmspc"])

	other := ch
	other.Binding = k[:]
	_, err = v.Verify(context.Background(), evidence, &verifier.Expected{Challenge: other})
	fmt.Println(err)
	// Output:
	// tdx affirming UpToDate 00906ed50000
	// verifier: rejected (challenge): tdx: REPORTDATA does not match the expected challenge
}
