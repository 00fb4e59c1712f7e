package tdx_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/attester/tdx"
	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/internal/tdxtest"
	"github.com/attested-tls/go-expat/verifier"
	vtdx "github.com/attested-tls/go-expat/verifier/tdx"
)

// overAttestedTLS runs a TLS 1.3 connection on loopback in which the server
// attests with a and the client appraises with v through package expat; it
// returns the client's setup error and attestation.
func overAttestedTLS(t *testing.T, a attester.Attester, v verifier.Verifier) (*expat.Attestation, error) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "td.test"},
		DNSNames: []string{"td.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", expat.ServerTLSConfig(&tls.Config{Certificates: []tls.Certificate{cert}}))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		tc := c.(*tls.Conn)
		if tc.Handshake() != nil {
			return
		}
		s, err := expat.Server(tc, &expat.Config{Attester: a, Certificate: &cert})
		if err != nil {
			return
		}
		defer s.Close()
		s.Read(make([]byte, 1))
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(raw, expat.ClientTLSConfig(&tls.Config{RootCAs: pool, ServerName: "td.test"}))
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c, err := expat.Client(tc, &expat.Config{RequirePeerAttestation: true, Verifier: v})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Handshake(ctx); err != nil {
		return nil, err
	}
	return c.PeerAttestation(), nil
}

// TestOverAttestedTLS drives TDX end to end over an attested TLS
// connection: a quote carrying this connection's challenge, signed by a
// test PCK chain, appraised with the test root and offline collateral; a
// debug TD and Intel's real root (the default) are rejected over the wire.
func TestOverAttestedTLS(t *testing.T) {
	now := time.Now()
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
		v, err := vtdx.New(&vtdx.Options{TrustedRoots: roots, Getter: bundle, Policy: vtdx.Policy{MRTD: [][]byte{pl.Template.MRTD[:]}}})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	a, err := tdx.NewTSMAttester(&tdxtest.ConfigFS{Platform: pl}, fast())
	if err != nil {
		t.Fatal(err)
	}

	att, err := overAttestedTLS(t, a, newVerifier([]*x509.Certificate{pki.Root}))
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	if att.Result.Technology != "tdx" || att.Result.Status != verifier.TierAffirming {
		t.Fatalf("result %+v", att.Result)
	}

	// Intel's real root (the default) rejects the test PCK chain.
	real, err := vtdx.New(&vtdx.Options{Getter: bundle, Policy: vtdx.Policy{MRTD: [][]byte{pl.Template.MRTD[:]}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = overAttestedTLS(t, a, real)
	var re *verifier.RejectedError
	if !errors.As(err, &re) || re.Check != "chain" {
		t.Fatalf("real Intel root: %v, want a chain rejection", err)
	}

	// T22 over the wire: a debug TD.
	debug := *pl
	debug.Template.TDAttributes[0] |= 0x01
	da, _ := tdx.NewTSMAttester(&tdxtest.ConfigFS{Platform: &debug}, fast())
	_, err = overAttestedTLS(t, da, newVerifier([]*x509.Certificate{pki.Root}))
	if !errors.As(err, &re) || re.Check != "debug" {
		t.Fatalf("debug TD: %v, want a debug rejection", err)
	}
}
