package integration_test

import (
	"bytes"
	"encoding/hex"
	"testing"

	spb "github.com/google/go-sev-guest/proto/sevsnp"

	"github.com/attested-tls/go-expat/attester/sevsnp/sevsnptest"
	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/internal/expattest"
	"github.com/attested-tls/go-expat/verifier"
	vsevsnp "github.com/attested-tls/go-expat/verifier/sevsnp"
)

// A server in a (fake) SEV-SNP guest attests through configfs-tsm; the
// client appraises the report with verifier/sevsnp trusting the test roots
// explicitly, and the report carries this connection's challenge.
func TestSEVSNPServerAttestation(t *testing.T) {
	p := expattest.NewPKI(t)
	plat := sevsnptest.NewPlatform(t)
	srvCert := p.Issue(t, expattest.ServerName, nil)
	rec := &expattest.Recorder{Attester: plat.TSMAttester(t, nil, nil)}
	srv, cli := expattest.TLSPair(t, p, srvCert, nil)
	s, c, serr, cerr := expattest.AttestedPair(t, srv, cli,
		&expat.Config{Attester: rec, Certificate: &srvCert},
		&expat.Config{RequirePeerAttestation: true, Verifier: plat.Verifier(t, vsevsnp.Policy{})})
	if serr != nil || cerr != nil {
		t.Fatalf("setup: server %v, client %v", serr, cerr)
	}
	att := c.PeerAttestation()
	if att == nil {
		t.Fatal("client has no attestation of the server")
	}
	res := att.Result
	if res.Technology != vsevsnp.Technology || res.Status != verifier.TierAffirming || res.Model != verifier.BackgroundCheck {
		t.Fatalf("result %+v", res)
	}
	if !bytes.Equal(res.Measurements[0].Value, sevsnptest.Measurement()) {
		t.Errorf("MEASUREMENT %x", res.Measurements[0].Value)
	}
	if got, want := res.Claims["chip_id"], hex.EncodeToString(plat.ChipID[:]); got != want {
		t.Errorf("chip_id %s, want the server platform's %s", got, want)
	}
	if !bytes.Equal(att.Chain[0].Raw, srvCert.Certificate[0]) {
		t.Error("attested chain is not the server's handshake certificate")
	}
	// The report that went over the wire has REPORT_DATA = the challenge
	// the client computed from its own exporter and the server's key.
	sent, ch := rec.Last(t)
	ev := sevsnptest.EvidenceOf(t, sent)
	want, err := att.Challenge.ReportData64()
	if err != nil {
		t.Fatal(err)
	}
	if [64]byte(ev.Report[0x50:0x90]) != want || !bytes.Equal(ch.Binding, att.Challenge.Binding) {
		t.Error("the report does not carry the client's challenge")
	}
	if s.PeerAttestation() != nil {
		t.Error("server has an attestation of a client that never attested")
	}
	expattest.Exchange(t, c, s)
}

// Mutual attestation: both ends are SEV-SNP guests (two chips), each
// verifies the other.
func TestSEVSNPMutual(t *testing.T) {
	p := expattest.NewPKI(t)
	splat, cplat := sevsnptest.NewPlatform(t), sevsnptest.NewPlatform(t)
	srvCert, cliCert := p.Issue(t, expattest.ServerName, nil), p.Issue(t, "client.test", nil)
	srv, cli := expattest.TLSPair(t, p, srvCert, &cliCert)
	s, c, serr, cerr := expattest.AttestedPair(t, srv, cli,
		&expat.Config{Attester: splat.TSMAttester(t, nil, nil), Certificate: &srvCert,
			RequirePeerAttestation: true, Verifier: cplat.Verifier(t, vsevsnp.Policy{})},
		&expat.Config{Attester: cplat.TSMAttester(t, nil, nil), Certificate: &cliCert,
			RequirePeerAttestation: true, Verifier: splat.Verifier(t, vsevsnp.Policy{})})
	if serr != nil || cerr != nil {
		t.Fatalf("setup: server %v, client %v", serr, cerr)
	}
	for _, tc := range []struct {
		side string
		conn *expat.Conn
		peer *sevsnptest.Platform
		cert []byte
	}{
		{"client sees server", c, splat, srvCert.Certificate[0]},
		{"server sees client", s, cplat, cliCert.Certificate[0]},
	} {
		att := tc.conn.PeerAttestation()
		if att == nil || att.Result.Technology != vsevsnp.Technology || att.Result.Status != verifier.TierAffirming {
			t.Fatalf("%s: attestation %+v", tc.side, att)
		}
		if got, want := att.Result.Claims["chip_id"], hex.EncodeToString(tc.peer.ChipID[:]); got != want {
			t.Errorf("%s: chip_id %s, want %s", tc.side, got, want)
		}
		if !bytes.Equal(att.Chain[0].Raw, tc.cert) {
			t.Errorf("%s: attested chain is not the peer's certificate", tc.side)
		}
	}
	expattest.Exchange(t, c, s)
}

// T22 over the wire: genuine test-platform reports that the client's
// policy (or its roots) rejects; the client's Handshake returns the
// precise check and no application data flows.
func TestSEVSNPAppraisalRejected(t *testing.T) {
	plat := sevsnptest.NewPlatform(t)
	amd, err := vsevsnp.New(&vsevsnp.Config{Policy: vsevsnp.Policy{AcceptAnyMeasurement: true}}) // AMD's real roots
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*spb.Report)
		v      verifier.Verifier
		check  verifier.Check
	}{
		{"debug guest", func(r *spb.Report) { r.Policy |= 1 << 19 }, plat.Verifier(t, vsevsnp.Policy{}), verifier.CheckDebug},
		{"wrong measurement", func(r *spb.Report) { r.Measurement = bytes.Repeat([]byte{0xee}, 48) },
			plat.Verifier(t, vsevsnp.Policy{}), verifier.CheckMeasurement},
		{"outdated TCB", nil, plat.Verifier(t, vsevsnp.Policy{MinimumTCB: vsevsnp.TCB{SNP: 9}}), verifier.CheckTCB},
		{"migration agent", func(r *spb.Report) { r.Policy |= 1 << 18 }, plat.Verifier(t, vsevsnp.Policy{}), verifier.CheckPolicy},
		{"AMD's real roots (the default) reject the test platform", nil, amd, verifier.CheckChain},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := expattest.NewPKI(t)
			srvCert := p.Issue(t, expattest.ServerName, nil)
			srv, cli := expattest.TLSPair(t, p, srvCert, nil)
			_, c, _, cerr := expattest.AttestedPair(t, srv, cli,
				&expat.Config{Attester: plat.TSMAttester(t, tc.mutate, nil), Certificate: &srvCert},
				&expat.Config{RequirePeerAttestation: true, Verifier: tc.v})
			if cerr == nil {
				t.Fatal("client accepted the server's attestation")
			}
			expattest.WantRejected(t, cerr, tc.check)
			expattest.WantNoData(t, c)
		})
	}
}
