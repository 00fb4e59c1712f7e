package local_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/attester"
	acca "github.com/attested-tls/go-expat/attester/cca"
	"github.com/attested-tls/go-expat/attester/cca/ccatest"
	"github.com/attested-tls/go-expat/attester/sevsnp/sevsnptest"
	atdx "github.com/attested-tls/go-expat/attester/tdx"
	"github.com/attested-tls/go-expat/attester/tdx/tdxtest"
	atpm "github.com/attested-tls/go-expat/attester/tpm"
	"github.com/attested-tls/go-expat/attester/tpm/tpmsim"
	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/verifier"
	vcca "github.com/attested-tls/go-expat/verifier/cca"
	"github.com/attested-tls/go-expat/verifier/ear"
	vsevsnp "github.com/attested-tls/go-expat/verifier/sevsnp"
	vtdx "github.com/attested-tls/go-expat/verifier/tdx"
	vtpm "github.com/attested-tls/go-expat/verifier/tpm"
)

// benchBackend is one technology behind the service: its verifier and one
// piece of its Evidence for a challenge.
type benchBackend struct {
	name      string
	mediaType string
	v         verifier.Verifier
	ev        []byte // Evidence for ch
	nonce     []byte // the session nonce that Evidence carries
	ch        attester.Challenge
}

// benchBackends returns every backend verifier/local is used with, each
// with TEST-ONLY trust anchors and Evidence from its test platform: the
// test kit, SEV-SNP, TDX, Arm CCA and (with cgo) a TPM 2.0 quote from the
// simulated reference TPM.
func benchBackends(b *testing.B, e *env) []benchBackend {
	b.Helper()
	ctx := context.Background()
	ch := challenge(b)
	rd := rd64(b, ch)
	attest := func(a attester.Attester) []byte {
		ev, err := a.Attest(ctx, ch)
		if err != nil {
			b.Fatal(err)
		}
		return ev
	}
	var out []benchBackend
	add := func(name, mt string, v verifier.Verifier, a attester.Attester, nonce []byte) {
		out = append(out, benchBackend{name: name, mediaType: mt, v: v, ev: attest(a), nonce: nonce, ch: ch})
	}

	add("test-kit", cmw.MediaTypeTestKit, e.dispatch.Verifiers[cmw.MediaTypeTestKit], e.att, rd)

	snp := sevsnptest.NewPlatform(b)
	add("sev-snp", cmw.MediaTypeSEVSNP, snp.Verifier(b, vsevsnp.Policy{}), snp.TSMAttester(b, nil, nil), rd)

	now := time.Now()
	pki, err := tdxtest.NewPKI(now)
	if err != nil {
		b.Fatal(err)
	}
	td, err := pki.NewPlatform(tdxtest.DefaultPCKOptions())
	if err != nil {
		b.Fatal(err)
	}
	col, err := td.Collateral(tdxtest.Window(now, time.Hour), nil)
	if err != nil {
		b.Fatal(err)
	}
	tv, err := vtdx.New(&vtdx.Config{TrustedRoots: []*x509.Certificate{pki.Root},
		Getter: &vtdx.Bundle{
			TCBInfo: col.TCBInfo, TCBInfoIssuerChain: col.TCBInfoChain,
			QEIdentity: col.QEIdentity, QEIdentityIssuerChain: col.QEIdentityChain,
			PCKCRL: col.PCKCRL, PCKCRLIssuerChain: col.PCKCRLChain, RootCRL: col.RootCRL,
		},
		Policy: vtdx.Policy{MRTD: [][]byte{td.Template.MRTD[:]}}})
	if err != nil {
		b.Fatal(err)
	}
	ta, err := atdx.NewTSMAttester(&tdxtest.ConfigFS{Platform: td}, nil)
	if err != nil {
		b.Fatal(err)
	}
	add("tdx", cmw.MediaTypeTDX, tv, ta, rd)

	cp, err := ccatest.New(nil)
	if err != nil {
		b.Fatal(err)
	}
	var sw []vcca.SoftwareComponent
	for _, s := range cp.Claims.Software {
		sw = append(sw, vcca.SoftwareComponent{Type: s.Type, Value: s.Value, SignerID: s.SignerID, Version: s.Version})
	}
	cv, err := vcca.New(&vcca.Config{
		TrustedKeys: []vcca.TrustedKey{{Name: "test-only CPAK", Key: cp.CPAK()}},
		Policy: vcca.Policy{RIMs: [][]byte{cp.Claims.RIM}, REMs: [][4][]byte{cp.Claims.REMs},
			PersonalizationValues: [][]byte{cp.Claims.PersonalizationValue}, Software: sw, PlatformConfigs: [][]byte{cp.Claims.Config}},
	})
	if err != nil {
		b.Fatal(err)
	}
	ca, err := acca.NewTSMAttester(cp.Client(), nil)
	if err != nil {
		b.Fatal(err)
	}
	add("cca", cmw.MediaTypeCCA, cv, ca, rd)

	sim, err := tpmsim.Open()
	switch {
	case errors.Is(err, tpmsim.ErrNoCgo) && os.Getenv("CI") != "true":
		b.Logf("no TPM backend: %v", err)
	case err != nil:
		b.Fatal(err)
	default:
		conn, err := atpm.Open(sim, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { conn.Close() })
		ta, err := atpm.NewAttester(ctx, conn, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { ta.Close(ctx) })
		ak, err := vtpm.ParseAKPublic(ta.AKPublic())
		if err != nil {
			b.Fatal(err)
		}
		zero := make([]byte, 32) // PCRs of a freshly started simulator
		pv, err := vtpm.New(&vtpm.Config{TrustedAKs: []crypto.PublicKey{ak}, PCRPolicy: map[int][][]byte{0: {zero}, 7: {zero}}})
		if err != nil {
			b.Fatal(err)
		}
		qd, err := ch.QualifyingData32()
		if err != nil {
			b.Fatal(err)
		}
		add("tpm", cmw.MediaTypeTPM2, pv, ta, qd[:])
	}
	for _, be := range out {
		e.dispatch.Verifiers[be.mediaType] = be.v
	}
	return out
}

// BenchmarkAppraisal compares, for every backend, one appraisal of the
// same Evidence in process (the backend's verifier through the Dispatch),
// in process with the EAR (the service's Issuer signing it and verifier/ear
// checking it, no HTTP) and through the service over loopback HTTP with
// veraison.Client (sessions, submission, the complete EAR check). The
// sub-benchmarks of a backend run one after the other in the same run
// (with -count N they interleave), and "service" reports its rate as a
// fraction of the other two measured just before it (x-in-process,
// x-in-process+ear; 1 = as fast). Each also reports its median latency
// (p50-ns). The Evidence is made once per backend: this measures the
// appraisal, not the attester.
func BenchmarkAppraisal(b *testing.B) {
	e := newEnv(b)
	backends := benchBackends(b, e)
	iss := &ear.Issuer{Appraiser: e.dispatch, Key: e.earKey, Name: "local-test", KeyID: "local-test-key"}
	ev := e.earVerifier()
	ctx := context.Background()
	for _, be := range backends {
		exp := &verifier.Expected{Challenge: be.ch}
		sexp, err := ear.ExpectedForNonce(be.nonce, e.clk.Now())
		if err != nil {
			b.Fatal(err)
		}
		var inProc, inProcEAR time.Duration // ns/op of the last runs
		cases := []struct {
			name string
			fn   func() error
			last *time.Duration
		}{
			{"in-process", func() error { _, err := e.dispatch.Verify(ctx, be.ev, exp); return err }, &inProc},
			{"in-process+ear", func() error {
				tok, _, err := iss.Issue(ctx, be.ev, sexp)
				if err != nil {
					return err
				}
				_, err = ev.VerifyJWT(ctx, tok, sexp)
				return err
			}, &inProcEAR},
			{"service", func() error { _, err := e.client.Appraise(ctx, be.ev, be.nonce); return err }, nil},
		}
		for _, c := range cases {
			b.Run(be.name+"/"+c.name, func(b *testing.B) {
				var d []time.Duration
				for b.Loop() {
					t0 := time.Now()
					if err := c.fn(); err != nil {
						b.Fatal(err)
					}
					d = append(d, time.Since(t0))
				}
				slices.Sort(d)
				b.ReportMetric(float64(d[len(d)/2].Nanoseconds()), "p50-ns")
				perOp := b.Elapsed() / time.Duration(b.N)
				if c.last != nil {
					*c.last = perOp
					return
				}
				if inProc > 0 && inProcEAR > 0 {
					b.ReportMetric(float64(inProc)/float64(perOp), "x-in-process")
					b.ReportMetric(float64(inProcEAR)/float64(perOp), "x-in-process+ear")
				}
			})
		}
	}
}
