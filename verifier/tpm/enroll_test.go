package tpm_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"

	atpm "github.com/attested-tls/go-expat/attester/tpm"
	"github.com/attested-tls/go-expat/internal/tpmtest"
	vtpm "github.com/attested-tls/go-expat/verifier/tpm"
)

// Full EK-based enrollment against swtpm's real EK certificate chain
// (swtpm_setup --create-ek-cert, local CA root + issuer).
func TestEnrollmentWithSwtpmEKChain(t *testing.T) {
	sw := tpmtest.StartSwtpm(t, tpmtest.SwtpmOptions{EKCert: true})
	tr, err := atpm.DialSwtpm(context.Background(), sw.Network, sw.Addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	f := newFixtureOn(t, tr, nil)

	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-only AK enrollment CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, caKey.Public(), caKey)
	caCert, _ := x509.ParseCertificate(caDER)
	ekRoots, ekInter := x509.NewCertPool(), x509.NewCertPool()
	ekRoots.AddCert(sw.EKCARoot)
	ekInter.AddCert(sw.EKCAIntermediate)
	ca := &vtpm.EnrollmentCA{EKRoots: ekRoots, EKIntermediates: ekInter, Certificate: caCert, Signer: caKey}

	const swtpmRSAEK = 0x81010001
	req, err := f.att.EnrollmentRequest(ctx, swtpmRSAEK)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("EK from another manufacturer", func(t *testing.T) {
		other := *ca
		other.EKRoots = x509.NewCertPool()
		other.EKRoots.AddCert(caCert)
		if _, err := other.Begin(req.EKCert, req.EKPublic, req.AKPublic); !errors.Is(err, vtpm.ErrEnrollment) {
			t.Fatalf("got %v, want ErrEnrollment", err)
		}
	})
	t.Run("AK of another TPM", func(t *testing.T) {
		// A credential bound to a foreign AK's Name cannot be activated.
		foreign := *req
		foreign.AKPublic = akOfSimulator(t)
		enr, err := ca.Begin(foreign.EKCert, foreign.EKPublic, foreign.AKPublic)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.att.ActivateCredential(ctx, swtpmRSAEK, enr.Credential, enr.Secret); err == nil {
			t.Fatal("activated a credential for another AK")
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		enr, err := ca.Begin(req.EKCert, req.EKPublic, req.AKPublic)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := enr.Finish(make([]byte, 32)); !errors.Is(err, vtpm.ErrEnrollment) {
			t.Fatalf("got %v", err)
		}
	})

	enr, err := ca.Begin(req.EKCert, req.EKPublic, req.AKPublic)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := f.att.ActivateCredential(ctx, swtpmRSAEK, enr.Credential, enr.Secret)
	if err != nil {
		t.Fatal(err)
	}
	akCert, err := enr.Finish(secret)
	if err != nil {
		t.Fatal(err)
	}

	// The enrolled AK's quotes are trusted through the AK certificate.
	f.att.Close(ctx)
	g := newFixtureOn(t, noClose{tr}, &atpm.Config{AKChain: [][]byte{akCert}})
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	v, err := vtpm.New(&vtpm.Config{AKRoots: roots, RequireKeyAttestation: true, AcceptAnyPCRs: true})
	if err != nil {
		t.Fatal(err)
	}
	exp := expected("enrolled", g.key)
	ev, err := g.att.Attest(ctx, exp.Challenge)
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.Verify(ctx, ev, exp)
	if err != nil {
		t.Fatal(err)
	}
	if res.Claims["ak-trust"] != "certificate" {
		t.Fatalf("claims %v", res.Claims)
	}
}

func akOfSimulator(t *testing.T) []byte {
	f := newFixture(t, nil)
	return f.att.AKPublic()
}
