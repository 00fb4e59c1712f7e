package sevsnp_test

import (
	"context"
	"crypto"
	"fmt"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/attester/sevsnp"
	"github.com/attested-tls/go-expat/attester/sevsnp/sevsnptest"
	"github.com/attested-tls/go-expat/verifier"
	vsevsnp "github.com/attested-tls/go-expat/verifier/sevsnp"
)

// A guest attests through configfs-tsm (here go-configfs-tsm's fake with a
// test-only signer; on a guest, linuxtsm.MakeClient()) and the relying
// party verifies, trusting the test roots only because it says so.
func ExampleNewTSMAttester() {
	p, err := sevsnptest.New() // TEST ONLY: go-sev-guest's test keys
	if err != nil {
		panic(err)
	}
	ch := attester.Challenge{Hash: crypto.SHA256, Binding: make([]byte, 32), AIKPubHash: make([]byte, 32)}

	a, err := sevsnp.NewTSMAttester(p.TSM(nil), nil)
	if err != nil {
		panic(err)
	}
	rec, err := a.Attest(context.Background(), ch)
	if err != nil {
		panic(err)
	}

	v, _ := vsevsnp.New(&vsevsnp.Config{Roots: p.Roots(), Policy: vsevsnp.Policy{Measurements: [][]byte{sevsnptest.Measurement()}}})
	res, err := v.Verify(context.Background(), rec, &verifier.Expected{Challenge: ch})
	fmt.Println(res.Technology, res.Claims["vmpl"], err)
	// Output: sev-snp 0 <nil>
}

// The sev-guest device backend, with go-sev-guest's fake device that
// answers only the REPORT_DATA registered in it.
func ExampleNewDeviceAttester() {
	p, err := sevsnptest.New() // TEST ONLY
	if err != nil {
		panic(err)
	}
	ch := attester.Challenge{Hash: crypto.SHA384, Binding: make([]byte, 48), AIKPubHash: make([]byte, 48)}
	rd, _ := ch.ReportData64()

	dev, err := p.NewDevice(nil, rd)
	if err != nil {
		panic(err)
	}
	a, err := sevsnp.NewDeviceAttester(dev, &sevsnp.Options{VMPL: 0})
	if err != nil {
		panic(err)
	}
	ev, err := a.Evidence(context.Background(), rd)
	fmt.Println(len(ev.Report), ev.CertTable != nil, err)
	// Output: 1184 true <nil>
}
