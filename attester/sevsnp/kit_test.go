package sevsnp_test

// Test kit: a fake SEV-SNP platform built from go-sev-guest's test-only
// AMD-style keys (ARK/ASK/VCEK). Nothing trusts these keys unless a test
// passes platform.roots to a verifier explicitly.

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-configfs-tsm/configfs/faketsm"
	"github.com/google/go-sev-guest/abi"
	labi "github.com/google/go-sev-guest/client/linuxabi"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	test "github.com/google/go-sev-guest/testing"

	"github.com/attested-tls/go-expat/attester"
	vsevsnp "github.com/attested-tls/go-expat/verifier/sevsnp"
)

var testMeasurement = func() []byte {
	h := sha256.Sum256([]byte("go-expat test guest"))
	return append(h[:], h[:16]...)
}()

type platform struct {
	signer *test.AmdSigner
	roots  []vsevsnp.Root
	mu     sync.Mutex // the fake's signer uses a shared math/rand source
}

func newPlatform(t testing.TB) *platform {
	t.Helper()
	s, err := test.DefaultTestOnlyCertChain(test.GetProductName(), time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return &platform{signer: s, roots: []vsevsnp.Root{{ProductLine: "Milan", ARK: s.Ark, ASK: s.Ask, ASVK: s.Asvk}}}
}

// rawReport returns an unsigned report for rd: version 2, no debug, the
// test measurement, TCB 0 (what the test VCEK certifies), VMPL vmpl.
func rawReport(t testing.TB, rd []byte, vmpl uint32, mutate func(*spb.Report)) []byte {
	t.Helper()
	raw := test.CreateRawReport(&test.TestReportOptions{ReportData: rd})
	r, err := abi.ReportToProto(raw[:abi.ReportSize])
	if err != nil {
		t.Fatal(err)
	}
	r.Policy = abi.SnpPolicyToBytes(abi.SnpPolicy{SMT: true, ABIMajor: 1})
	r.Measurement = testMeasurement
	r.Vmpl = vmpl
	if mutate != nil {
		mutate(r)
	}
	b, err := abi.ReportToAbiBytes(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// device returns go-sev-guest's fake sev-guest device answering the given
// REPORT_DATA values (and only those).
func (p *platform) device(t testing.TB, rds ...[64]byte) *test.Device {
	t.Helper()
	certs, err := p.signer.CertTableBytes()
	if err != nil {
		t.Fatal(err)
	}
	rsp := map[string]any{}
	for _, rd := range rds {
		var out [labi.SnpReportRespReportSize]byte
		copy(out[:], rawReport(t, rd[:], 0, nil))
		rsp[hex.EncodeToString(rd[:])] = &test.GetReportResponse{Resp: labi.SnpReportRespABI{Data: out}}
	}
	return &test.Device{ReportDataRsp: rsp, Certs: certs, Signer: p.signer, SevProduct: abi.DefaultSevProduct()}
}

// tsm returns go-configfs-tsm's fake report subsystem whose outblob is a
// report signed by the test VCEK over the written inblob and privlevel.
func (p *platform) tsm(t testing.TB) *faketsm.ReportSubsystem {
	t.Helper()
	sub := faketsm.ReportV7(0)
	certs, err := p.signer.CertTableBytes()
	if err != nil {
		t.Fatal(err)
	}
	sub.ReadAttr = func(e *faketsm.ReportEntry, attr string) ([]byte, error) {
		switch attr {
		case "provider":
			return []byte("sev_guest\n"), nil
		case "auxblob":
			return certs, nil
		case "outblob":
			var vmpl uint32
			if a := e.InAttrs["privlevel"]; a != nil {
				fmt.Sscanf(strings.TrimSpace(string(a.Value)), "%d", &vmpl)
			}
			return p.sign(t, rawReport(t, e.InAttrs["inblob"].Value, vmpl, nil))
		}
		return nil, fmt.Errorf("no attribute %q", attr)
	}
	return sub
}

func (p *platform) sign(t testing.TB, report []byte) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, s, err := p.signer.Sign(abi.SignedComponent(report))
	if err != nil {
		return nil, err
	}
	if err := abi.SetSignature(r, s, report); err != nil {
		return nil, err
	}
	return report, nil
}

func randomChallenge(t testing.TB) attester.Challenge {
	t.Helper()
	ch := attester.Challenge{Hash: crypto.SHA256, Binding: make([]byte, 32), AIKPubHash: make([]byte, 32)}
	rand.Read(ch.Binding)
	rand.Read(ch.AIKPubHash)
	return ch
}

func reportData(t testing.TB, ch attester.Challenge) [64]byte {
	t.Helper()
	rd, err := ch.ReportData64()
	if err != nil {
		t.Fatal(err)
	}
	return rd
}

func testVerifier(t testing.TB, p *platform, pol vsevsnp.Policy) *vsevsnp.Verifier {
	t.Helper()
	if pol.Measurements == nil && !pol.AnyMeasurement {
		pol.Measurements = [][]byte{testMeasurement}
	}
	v, err := vsevsnp.New(vsevsnp.Config{Roots: p.roots, Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	return v
}
