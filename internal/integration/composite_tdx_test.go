package integration_test

import (
	"context"
	"crypto/x509"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/attester"
	acomposite "github.com/attested-tls/go-expat/attester/composite"
	atdx "github.com/attested-tls/go-expat/attester/tdx"
	"github.com/attested-tls/go-expat/attester/tdx/tdxtest"
	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/internal/expattest"
	"github.com/attested-tls/go-expat/verifier"
	vcomposite "github.com/attested-tls/go-expat/verifier/composite"
	vtdx "github.com/attested-tls/go-expat/verifier/tdx"
	vtpm "github.com/attested-tls/go-expat/verifier/tpm"
)

// The same composite with a TDX anchor: a TD quote whose REPORTDATA
// commits to the vTPM's AK. Accepted over attested TLS; a quote from
// another TD platform (another PCK), committing to that machine's vTPM,
// spliced with this vTPM's channel-bound quote is rejected (CheckLink).
func TestCompositeTDXAnchor(t *testing.T) {
	a := openTPM(t)
	now := time.Now()
	pki, err := tdxtest.NewPKI(now)
	if err != nil {
		t.Fatal(err)
	}
	newTD := func() (*tdxtest.Platform, *atdx.Attester) {
		pl, err := pki.NewPlatform(tdxtest.DefaultPCKOptions())
		if err != nil {
			t.Fatal(err)
		}
		att, err := atdx.NewTSMAttester(&tdxtest.ConfigFS{Platform: pl}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return pl, att
	}
	pl, td := newTD()
	_, otherTD := newTD()
	col, err := pl.Collateral(tdxtest.Window(now, time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	anchor, err := vtdx.New(&vtdx.Config{TrustedRoots: []*x509.Certificate{pki.Root},
		Getter: &vtdx.Bundle{
			TCBInfo: col.TCBInfo, TCBInfoIssuerChain: col.TCBInfoChain,
			QEIdentity: col.QEIdentity, QEIdentityIssuerChain: col.QEIdentityChain,
			PCKCRL: col.PCKCRL, PCKCRLIssuerChain: col.PCKCRLChain, RootCRL: col.RootCRL,
		},
		Policy: vtdx.Policy{MRTD: [][]byte{pl.Template.MRTD[:]}}})
	if err != nil {
		t.Fatal(err)
	}
	zero := make([]byte, 32)
	kind, err := vtpm.NewBoundAK(&vtpm.Config{PCRPolicy: map[int][][]byte{0: {zero}, 7: {zero}}})
	if err != nil {
		t.Fatal(err)
	}
	v, err := vcomposite.New(&vcomposite.Config{Anchor: anchor,
		Bound: []vcomposite.Bound{{Label: acomposite.VTPMLabel, Kind: kind}}})
	if err != nil {
		t.Fatal(err)
	}
	newComposite := func(anchor acomposite.Anchor, ak []byte) *acomposite.Attester {
		c, err := acomposite.New(&acomposite.Config{Anchor: anchor,
			Items: []acomposite.Item{{Label: acomposite.VTPMLabel, Attester: a, Key: ak}}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	p := expattest.NewPKI(t)
	att, err := expattest.Connect(t, p, newComposite(td, a.AKPublic()), v)
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	if r := att.Result; r.Technology != "tdx+"+vtpm.Technology || r.Status != verifier.TierAffirming ||
		r.MediaType != acomposite.CollectionType {
		t.Fatalf("result %+v", r)
	}

	// The other TD's quote commits to its own vTPM's AK (a different TPMT_PUBLIC:
	// machine B's swtpm); the spliced collection carries this vTPM's quote.
	b := swtpmAttester(t)
	other := newComposite(otherTD, b.AKPublic())
	splice := attestFunc(func(ctx context.Context, ch attester.Challenge) ([]byte, error) {
		ob, err := other.Attest(ctx, ch)
		if err != nil {
			return nil, err
		}
		ours, err := a.Attest(ctx, ch)
		if err != nil {
			return nil, err
		}
		rec, err := cmw.Decode(ours, nil)
		if err != nil {
			return nil, err
		}
		return collection(t, map[string]*cmw.CMW{"tee": items(t, ob)["tee"], "vtpm": rec}), nil
	})
	_, err = expattest.Connect(t, p, splice, v)
	expattest.WantRejected(t, err, verifier.CheckLink)

	// The control: the other machine's own composite is accepted.
	own, err := acomposite.New(&acomposite.Config{Anchor: otherTD,
		Items: []acomposite.Item{{Label: acomposite.VTPMLabel, Attester: b, Key: b.AKPublic()}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := expattest.Connect(t, p, own, v); err != nil {
		t.Fatalf("the other machine's own composite: %v", err)
	}
}
