package integration_test

import (
	"testing"

	"github.com/attested-tls/go-expat/attester/sevsnp/sevsnptest"
	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/internal/expattest"
	vsevsnp "github.com/attested-tls/go-expat/verifier/sevsnp"
)

// BenchmarkTLSHandshake is the same-run baseline: a loopback TCP
// connection and a TLS 1.3 handshake, no attestation.
func BenchmarkTLSHandshake(b *testing.B) {
	p := expattest.NewPKI(b)
	srvCert := p.Issue(b, expattest.ServerName, nil)
	for b.Loop() {
		srv, cli := expattest.TLSPair(b, p, srvCert, nil)
		srv.Close()
		cli.Close()
	}
}

// BenchmarkSEVSNPAttestedSetup: the baseline plus server attestation with
// SEV-SNP (fake configfs-tsm signing with the test VCEK, P-384) and its
// appraisal (chain and report signature, policy).
func BenchmarkSEVSNPAttestedSetup(b *testing.B) {
	p := expattest.NewPKI(b)
	plat := sevsnptest.NewPlatform(b)
	srvCert := p.Issue(b, expattest.ServerName, nil)
	scfg := &expat.Config{Attester: plat.TSMAttester(b, nil, nil), Certificate: &srvCert}
	ccfg := &expat.Config{RequirePeerAttestation: true, Verifier: plat.Verifier(b, vsevsnp.Policy{})}
	for b.Loop() {
		srv, cli := expattest.TLSPair(b, p, srvCert, nil)
		s, c, serr, cerr := expattest.AttestedPair(b, srv, cli, scfg, ccfg)
		if serr != nil || cerr != nil {
			b.Fatal(serr, cerr)
		}
		s.Close()
		c.Close()
	}
}

// BenchmarkTPMAttestedSetup: the baseline (with the server's handshake
// signature made in the simulated TPM) plus a quote, a TPM2_Certify of the
// EA key and their appraisal.
func BenchmarkTPMAttestedSetup(b *testing.B) {
	a := openTPM(b)
	p := expattest.NewPKI(b)
	srvCert := p.Issue(b, expattest.ServerName, newKey(b, a))
	scfg := &expat.Config{Attester: a, Certificate: &srvCert}
	ccfg := &expat.Config{RequirePeerAttestation: true, Verifier: tpmVerifier(b, a, nil)}
	for b.Loop() {
		srv, cli := expattest.TLSPair(b, p, srvCert, nil)
		s, c, serr, cerr := expattest.AttestedPair(b, srv, cli, scfg, ccfg)
		if serr != nil || cerr != nil {
			b.Fatal(serr, cerr)
		}
		s.Close()
		c.Close()
	}
}
