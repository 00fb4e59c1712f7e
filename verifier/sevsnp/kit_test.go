package sevsnp_test

// Test kit: a fake SEV-SNP platform built from go-sev-guest's test-only
// AMD-style keys. Nothing trusts these keys unless a test passes
// platform.roots to the verifier explicitly.

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"
	labi "github.com/google/go-sev-guest/client/linuxabi"
	"github.com/google/go-sev-guest/kds"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	test "github.com/google/go-sev-guest/testing"
	"github.com/veraison/cmw"

	"github.com/attested-tls/go-expat/attester"
	asevsnp "github.com/attested-tls/go-expat/attester/sevsnp"
	"github.com/attested-tls/go-expat/attester/sevsnp/wire"
	expatcmw "github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/verifier/sevsnp"
)

var testMeasurement = func() []byte {
	h := sha256.Sum256([]byte("go-expat test guest"))
	return append(h[:], h[:16]...)
}()

var testTCB = kds.TCBParts{BlSpl: 3, TeeSpl: 0, SnpSpl: 8, UcodeSpl: 115}

type platform struct {
	signer  *test.AmdSigner
	roots   []sevsnp.Root
	chipID  [64]byte
	tcb     uint64
	created time.Time
}

func newPlatform(t testing.TB) *platform {
	t.Helper()
	p := &platform{created: time.Now().Add(-time.Hour)}
	rand.Read(p.chipID[:])
	tcb, err := kds.ComposeTCBParts(testTCB)
	if err != nil {
		t.Fatal(err)
	}
	p.tcb = uint64(tcb)
	name := test.GetProductName()
	b := &test.AmdSignerBuilder{
		Keys: test.DefaultAmdKeys(), ProductName: name, CSPID: "go-expat-test",
		ArkCreationTime: p.created, AskCreationTime: p.created, AsvkCreationTime: p.created,
		VcekCreationTime: p.created, VlekCreationTime: p.created,
		VcekCustom: test.CertOverride{Extensions: test.CustomExtensions(testTCB, p.chipID[:], "", name)},
		VlekCustom: test.CertOverride{Extensions: test.CustomExtensions(testTCB, nil, "go-expat-test", name)},
	}
	if p.signer, err = b.TestOnlyCertChain(); err != nil {
		t.Fatal(err)
	}
	s := p.signer
	p.roots = []sevsnp.Root{{ProductLine: "Milan", ARK: s.Ark, ASK: s.Ask, ASVK: s.Asvk}}
	return p
}

// report returns an unsigned report: version 2, no debug, the test
// measurement, the platform's chip ID and TCB, VMPL 0.
func (p *platform) report(t testing.TB, rd [64]byte, mutate func(*spb.Report)) []byte {
	t.Helper()
	raw := test.CreateRawReport(&test.TestReportOptions{ReportData: rd[:]})
	r, err := abi.ReportToProto(raw[:abi.ReportSize])
	if err != nil {
		t.Fatal(err)
	}
	r.Policy = abi.SnpPolicyToBytes(abi.SnpPolicy{SMT: true, ABIMajor: 1})
	r.Measurement = testMeasurement
	r.ChipId = p.chipID[:]
	r.ReportedTcb, r.CurrentTcb, r.CommittedTcb, r.LaunchTcb = p.tcb, p.tcb, p.tcb, p.tcb
	if mutate != nil {
		mutate(r)
	}
	b, err := abi.ReportToAbiBytes(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// attest runs the real attester against go-sev-guest's fake device that
// answers ch with the (mutated) report.
func (p *platform) attest(t testing.TB, ch attester.Challenge, mutate func(*spb.Report), opts *asevsnp.Options) []byte {
	t.Helper()
	rd := reportData(t, ch)
	certs, err := p.signer.CertTableBytes()
	if err != nil {
		t.Fatal(err)
	}
	var out [labi.SnpReportRespReportSize]byte
	copy(out[:], p.report(t, rd, mutate))
	dev := &test.Device{
		ReportDataRsp: map[string]any{hex.EncodeToString(rd[:]): &test.GetReportResponse{Resp: labi.SnpReportRespABI{Data: out}}},
		Certs:         certs, Signer: p.signer, SevProduct: abi.DefaultSevProduct(),
	}
	a, err := asevsnp.NewDeviceAttester(dev, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := a.Attest(context.Background(), ch)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// crl returns a CRL signed by the test ARK, valid for validity from now.
func (p *platform) crl(t testing.TB, now time.Time, validity time.Duration, revoked ...*big.Int) []byte {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, sn := range revoked {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: sn, RevocationTime: now.Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		SignatureAlgorithm:        x509.SHA384WithRSAPSS,
		Number:                    big.NewInt(now.UnixNano()),
		ThisUpdate:                now.Add(-time.Minute),
		NextUpdate:                now.Add(validity),
		RevokedCertificateEntries: entries,
	}, p.signer.Ark, p.signer.Keys.Ark)
	if err != nil {
		t.Fatal(err)
	}
	return der
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

// record wraps Evidence into a CMW the way the attester does.
func record(t testing.TB, ev *wire.Evidence) []byte {
	t.Helper()
	val, err := ev.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	m, err := cmw.NewMonad(expatcmw.MediaTypeSEVSNP, val, cmw.Evidence)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// evidenceOf extracts the Evidence of a CMW the attester produced.
func evidenceOf(t testing.TB, rec []byte) *wire.Evidence {
	t.Helper()
	var c cmw.CMW
	if err := c.Deserialize(rec); err != nil {
		t.Fatal(err)
	}
	val, _ := c.GetMonadValue()
	ev, err := wire.Unmarshal(val)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// kdsServer is an httptest AMD KDS that serves one platform's VCEK and
// CRL and counts requests.
type kdsServer struct {
	*httptest.Server
	mu        sync.Mutex
	vcek, crl []byte
	hits      atomic.Int64
	vcekHits  atomic.Int64
	crlHits   atomic.Int64
	throttle  atomic.Int64 // answer 429 to this many requests first
	retryHdr  string
}

func newKDS(t testing.TB, p *platform, crl []byte) *kdsServer {
	t.Helper()
	k := &kdsServer{vcek: p.signer.Vcek.Raw, crl: crl, retryHdr: "0"}
	parts := kds.DecomposeTCBVersion(kds.TCBVersion(p.tcb))
	vcekPath := "/vcek/v1/Milan/" + hex.EncodeToString(p.chipID[:])
	k.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.hits.Add(1)
		if k.throttle.Load() > 0 {
			k.throttle.Add(-1)
			w.Header().Set("Retry-After", k.retryHdr)
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		k.mu.Lock()
		vcek, crl := k.vcek, k.crl
		k.mu.Unlock()
		switch {
		case r.URL.Path == vcekPath:
			q := r.URL.Query()
			if q.Get("blSPL") != itoa(parts.BlSpl) || q.Get("snpSPL") != itoa(parts.SnpSpl) ||
				q.Get("teeSPL") != itoa(parts.TeeSpl) || q.Get("ucodeSPL") != itoa(parts.UcodeSpl) {
				http.NotFound(w, r)
				return
			}
			k.vcekHits.Add(1)
			w.Write(vcek)
		case r.URL.Path == "/vcek/v1/Milan/crl" && crl != nil:
			k.crlHits.Add(1)
			w.Write(crl)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(k.Close)
	return k
}

func itoa(v uint8) string { return big.NewInt(int64(v)).String() }

// moduleFile reads a file of go-sev-guest's module (its own test
// artefacts), located through the go command.
func moduleFile(t testing.TB, rel string) []byte {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/google/go-sev-guest").Output()
	if err != nil {
		t.Skipf("cannot locate go-sev-guest: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
