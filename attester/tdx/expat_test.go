package tdx_test

import (
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/attester/tdx"
	"github.com/attested-tls/go-expat/attester/tdx/tdxtest"
	"github.com/attested-tls/go-expat/internal/expattest"
	"github.com/attested-tls/go-expat/verifier"
	vtdx "github.com/attested-tls/go-expat/verifier/tdx"
)

// TestOverAttestedTLS drives TDX end to end over an attested TLS
// connection: a quote carrying this connection's challenge, signed by a
// test PCK chain, appraised with the test root and offline collateral; a
// debug TD and Intel's real root (the default) are rejected over the wire.
func TestOverAttestedTLS(t *testing.T) {
	now := time.Now()
	pk := expattest.NewPKI(t)
	pki, err := tdxtest.NewPKI(now)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := pki.NewPlatform(tdxtest.DefaultPCKOptions())
	if err != nil {
		t.Fatal(err)
	}
	col, err := pl.Collateral(tdxtest.Window(now, time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	bundle := &vtdx.Bundle{
		TCBInfo: col.TCBInfo, TCBInfoIssuerChain: col.TCBInfoChain,
		QEIdentity: col.QEIdentity, QEIdentityIssuerChain: col.QEIdentityChain,
		PCKCRL: col.PCKCRL, PCKCRLIssuerChain: col.PCKCRLChain, RootCRL: col.RootCRL,
	}
	newVerifier := func(roots []*x509.Certificate) *vtdx.Verifier {
		v, err := vtdx.New(&vtdx.Config{TrustedRoots: roots, Getter: bundle, Policy: vtdx.Policy{MRTD: [][]byte{pl.Template.MRTD[:]}}})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	a, err := tdx.NewTSMAttester(&tdxtest.ConfigFS{Platform: pl}, fast())
	if err != nil {
		t.Fatal(err)
	}

	att, err := expattest.Connect(t, pk, a, newVerifier([]*x509.Certificate{pki.Root}))
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	if att.Result.Technology != "tdx" || att.Result.Status != verifier.TierAffirming {
		t.Fatalf("result %+v", att.Result)
	}

	// Intel's real root (the default) rejects the test PCK chain.
	real, err := vtdx.New(&vtdx.Config{Getter: bundle, Policy: vtdx.Policy{MRTD: [][]byte{pl.Template.MRTD[:]}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = expattest.Connect(t, pk, a, real)
	var re *verifier.RejectedError
	if !errors.As(err, &re) || re.Check != verifier.CheckChain {
		t.Fatalf("real Intel root: %v, want a chain rejection", err)
	}

	// T22 over the wire: a debug TD.
	debug := *pl
	debug.Template.TDAttributes[0] |= 0x01
	da, _ := tdx.NewTSMAttester(&tdxtest.ConfigFS{Platform: &debug}, fast())
	_, err = expattest.Connect(t, pk, da, newVerifier([]*x509.Certificate{pki.Root}))
	if !errors.As(err, &re) || re.Check != verifier.CheckDebug {
		t.Fatalf("debug TD: %v, want a debug rejection", err)
	}
}
