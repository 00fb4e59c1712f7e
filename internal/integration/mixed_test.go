package integration_test

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/attested-tls/go-expat/attester/sevsnp/sevsnptest"
	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/internal/expattest"
	"github.com/attested-tls/go-expat/verifier"
	vsevsnp "github.com/attested-tls/go-expat/verifier/sevsnp"
	vtpm "github.com/attested-tls/go-expat/verifier/tpm"
)

// Mixed mutual attestation: the server is a SEV-SNP guest, the client a
// machine with a TPM whose key is its TLS and EA identity. The server
// accepts several technologies through verifier.Dispatch, which routes the
// client's CMW by media type; the client verifies the server with
// verifier/sevsnp.
func TestMixedMutual(t *testing.T) {
	a := openTPM(t)
	plat := sevsnptest.NewPlatform(t)
	cliKey := newKey(t, a)
	dispatch := &verifier.Dispatch{Verifiers: map[string]verifier.Verifier{
		cmw.MediaTypeSEVSNP: plat.Verifier(t, vsevsnp.Policy{}),
		cmw.MediaTypeTPM2:   tpmVerifier(t, a, nil),
	}}
	p := expattest.NewPKI(t)
	srvCert := p.Issue(t, expattest.ServerName, nil)
	cliCert := p.Issue(t, "client.test", cliKey) // the client's TLS signature is made in the TPM
	srv, cli := expattest.TLSPair(t, p, srvCert, &cliCert)
	s, c, serr, cerr := expattest.AttestedPair(t, srv, cli,
		&expat.Config{Attester: plat.TSMAttester(t, nil, nil), Certificate: &srvCert,
			RequirePeerAttestation: true, Verifier: dispatch},
		&expat.Config{Attester: a, Certificate: &cliCert,
			RequirePeerAttestation: true, Verifier: plat.Verifier(t, vsevsnp.Policy{})})
	if serr != nil || cerr != nil {
		t.Fatalf("setup: server %v, client %v", serr, cerr)
	}
	sa, ca := s.PeerAttestation(), c.PeerAttestation()
	if sa == nil || ca == nil {
		t.Fatalf("attestations: server has %v, client has %v", sa, ca)
	}
	if r := sa.Result; r.Technology != vtpm.Technology || r.MediaType != cmw.MediaTypeTPM2 || r.Claims["key-attested"] != "true" {
		t.Errorf("server's view of the client: %+v", r)
	}
	if !bytes.Equal(sa.Chain[0].RawSubjectPublicKeyInfo, cliKey.SPKI()) {
		t.Error("the client's attested EA key is not its TPM key")
	}
	if r := ca.Result; r.Technology != vsevsnp.Technology || r.Status != verifier.TierAffirming ||
		r.Claims["chip_id"] != hex.EncodeToString(plat.ChipID[:]) {
		t.Errorf("client's view of the server: %+v", r)
	}
	expattest.Exchange(t, c, s)

	// A server whose Dispatch knows only SEV-SNP refuses the TPM client
	// with a verifier.CheckFormat rejection (no verifier for its media type).
	snpOnly := &verifier.Dispatch{Verifiers: map[string]verifier.Verifier{
		cmw.MediaTypeSEVSNP: plat.Verifier(t, vsevsnp.Policy{}),
	}}
	srv, cli = expattest.TLSPair(t, p, srvCert, &cliCert)
	s, _, serr, _ = expattest.AttestedPair(t, srv, cli,
		&expat.Config{Attester: plat.TSMAttester(t, nil, nil), Certificate: &srvCert,
			RequirePeerAttestation: true, Verifier: snpOnly},
		&expat.Config{Attester: a, Certificate: &cliCert,
			RequirePeerAttestation: true, Verifier: plat.Verifier(t, vsevsnp.Policy{})})
	if serr == nil {
		t.Fatal("server accepted a technology it has no verifier for")
	}
	expattest.WantRejected(t, serr, verifier.CheckFormat)
	expattest.WantNoData(t, s)
}
