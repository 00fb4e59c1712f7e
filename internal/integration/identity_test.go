package integration_test

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/attested-tls/go-expat/attester/sevsnp/sevsnptest"
	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/internal/expattest"
	"github.com/attested-tls/go-expat/verifier"
	vsevsnp "github.com/attested-tls/go-expat/verifier/sevsnp"
	vtpm "github.com/attested-tls/go-expat/verifier/tpm"
)

// Key provenance (use cases: relay): the Attestation says how the EA key
// is tied to the attested environment, and a policy requiring a
// TPM-certified key rejects a peer whose Evidence only names its key.
func TestTPMKeyBindingPolicy(t *testing.T) {
	a := openTPM(t)
	eaKey := newKey(t, a)
	noKeyAtt := func(c *vtpm.Config) { c.RequireKeyAttestation = false }
	for _, tc := range []struct {
		name    string
		tpmKey  bool
		min     verifier.KeyBinding
		want    verifier.KeyBinding
		rejects bool
	}{
		{"TLS key in the TPM, certified required", true, verifier.KeyCertified, verifier.KeyCertified, false},
		{"software TLS key, nothing required", false, verifier.KeyByBinder, verifier.KeyInEvidence, false},
		{"software TLS key, certified required", false, verifier.KeyCertified, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := expattest.NewPKI(t)
			srvCert := p.Issue(t, expattest.ServerName, nil)
			if tc.tpmKey {
				srvCert = p.Issue(t, expattest.ServerName, eaKey)
			}
			srv, cli := expattest.TLSPair(t, p, srvCert, nil)
			_, c, _, cerr := expattest.AttestedPair(t, srv, cli,
				&expat.Config{Attester: a, Certificate: &srvCert},
				&expat.Config{RequirePeerAttestation: true, Verifier: tpmVerifier(t, a, noKeyAtt), MinKeyBinding: tc.min})
			if tc.rejects {
				expattest.WantRejected(t, cerr, verifier.CheckKey)
				if !strings.Contains(cerr.Error(), "evidence") || !strings.Contains(cerr.Error(), "certified") {
					t.Fatalf("the rejection does not name both ties: %v", cerr)
				}
				expattest.WantNoData(t, c)
				return
			}
			if cerr != nil {
				t.Fatalf("setup: %v", cerr)
			}
			res := c.PeerAttestation().Result
			if res.KeyBinding != tc.want {
				t.Fatalf("KeyBinding %v, want %v", res.KeyBinding, tc.want)
			}
			if len(res.PlatformIDs) != 1 || res.PlatformIDs[0].Kind != "tpm.ak-name" {
				t.Fatalf("PlatformIDs %v, want the AK name", res.PlatformIDs)
			}
		})
	}
}

// Machine identity (diversion): a client that pins a SEV-SNP chip accepts
// that machine and rejects another genuine one, naming its identifier.
func TestSEVSNPPinnedPlatform(t *testing.T) {
	p := expattest.NewPKI(t)
	pinned, other := sevsnptest.NewPlatform(t), sevsnptest.NewPlatform(t)
	pin := []verifier.PlatformID{{Kind: "sev-snp.chip-id", Value: pinned.ChipID[:]}}
	for _, tc := range []struct {
		name string
		plat *sevsnptest.Platform
		ok   bool
	}{{"the pinned chip", pinned, true}, {"another genuine chip", other, false}} {
		t.Run(tc.name, func(t *testing.T) {
			srvCert := p.Issue(t, expattest.ServerName, nil)
			srv, cli := expattest.TLSPair(t, p, srvCert, nil)
			_, c, _, cerr := expattest.AttestedPair(t, srv, cli,
				&expat.Config{Attester: tc.plat.TSMAttester(t, nil, nil), Certificate: &srvCert},
				&expat.Config{RequirePeerAttestation: true, Verifier: tc.plat.Verifier(t, vsevsnp.Policy{}), AllowedPlatforms: pin})
			if tc.ok {
				if cerr != nil {
					t.Fatalf("setup: %v", cerr)
				}
				res := c.PeerAttestation().Result
				if res.KeyBinding != verifier.KeyInEvidence || len(res.PlatformIDs) != 2 || res.PlatformIDs[1].Kind != "sev-snp.reported-tcb" {
					t.Fatalf("KeyBinding %v, PlatformIDs %v", res.KeyBinding, res.PlatformIDs)
				}
				return
			}
			expattest.WantRejected(t, cerr, verifier.CheckPlatform)
			if !strings.Contains(cerr.Error(), hex.EncodeToString(other.ChipID[:])) {
				t.Fatalf("the rejection does not name the peer's chip: %v", cerr)
			}
			expattest.WantNoData(t, c)
		})
	}
}
