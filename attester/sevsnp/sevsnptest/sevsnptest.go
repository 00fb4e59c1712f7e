// Package sevsnptest is a TEST-ONLY fake AMD SEV-SNP platform, for
// go-expat's tests and for users' own: reports signed by go-sev-guest's
// fixed test keys (an AMD-style ARK → ASK → VCEK/VLEK chain whose private
// keys are public), served through go-sev-guest's fake sev-guest device or
// go-configfs-tsm's fake report subsystem, so that attester/sevsnp runs its
// real code paths and verifier/sevsnp verifies the result offline, without
// hardware.
//
// Nothing trusts these keys: verifier/sevsnp's default roots (AMD's real
// ones) reject every report made here. A test trusts them only by passing
// Platform.Roots to verifier/sevsnp explicitly.
//
// Import this package from _test.go files only. It imports
// github.com/google/go-sev-guest/testing, which registers command-line flags
// when linked in; go-expat's library packages never depend on it
// (expat/expattest's TestLibraryDoesNotImportTestKits checks this with go
// list).
package sevsnptest

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-configfs-tsm/configfs/faketsm"
	"github.com/google/go-sev-guest/abi"
	labi "github.com/google/go-sev-guest/client/linuxabi"
	"github.com/google/go-sev-guest/kds"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	test "github.com/google/go-sev-guest/testing"

	"github.com/attested-tls/go-expat/attester"
	asevsnp "github.com/attested-tls/go-expat/attester/sevsnp"
	"github.com/attested-tls/go-expat/attester/sevsnp/wire"
	"github.com/attested-tls/go-expat/cmw"
	vsevsnp "github.com/attested-tls/go-expat/verifier/sevsnp"
)

// Measurement returns the launch MEASUREMENT of the test guest (48 bytes):
// what verifier policies in tests allow.
func Measurement() []byte {
	h := sha256.Sum256([]byte("go-expat test guest"))
	return append(h[:], h[:16]...)
}

// TCB returns the TCB components of the test platform: what its VCEK and
// VLEK certify and what its reports carry as REPORTED, CURRENT, COMMITTED
// and LAUNCH TCB.
func TCB() kds.TCBParts {
	return kds.TCBParts{BlSpl: 3, TeeSpl: 0, SnpSpl: 8, UcodeSpl: 115}
}

// ProductLine is the product line of the test platform.
const ProductLine = "Milan"

// Platform is one fake SEV-SNP machine: a test-only signer (ARK, ASK,
// ASVK, VCEK for ChipID and TCB, VLEK) and the report defaults. It is safe
// for concurrent use.
type Platform struct {
	// Signer holds go-sev-guest's test keys and the certificates made for
	// this platform.
	Signer *test.AmdSigner
	// ChipID is the random CHIP_ID that the VCEK certifies.
	ChipID [64]byte
	// TCB is TCB() as a TCB_VERSION value.
	TCB uint64
	// Created is the NotBefore of every certificate of the chain.
	Created time.Time

	certs []byte     // the host's certificate table (GHCB layout)
	mu    sync.Mutex // the test signer draws from a shared math/rand source
}

// New makes a Platform with a fresh chip ID and certificates valid from an
// hour ago, at TCB().
func New() (*Platform, error) { return NewAt(TCB()) }

// NewAt is New for a platform at TCB parts: its VCEK certifies them and its
// reports carry them (for example an older firmware, below a policy's
// minimum).
func NewAt(parts kds.TCBParts) (*Platform, error) {
	p := &Platform{Created: time.Now().Add(-time.Hour)}
	if _, err := rand.Read(p.ChipID[:]); err != nil {
		return nil, err
	}
	tcb, err := kds.ComposeTCBParts(parts)
	if err != nil {
		return nil, err
	}
	p.TCB = uint64(tcb)
	name := test.GetProductName()
	b := &test.AmdSignerBuilder{
		Keys: test.DefaultAmdKeys(), ProductName: name, CSPID: "go-expat-test",
		ArkCreationTime: p.Created, AskCreationTime: p.Created, AsvkCreationTime: p.Created,
		VcekCreationTime: p.Created, VlekCreationTime: p.Created,
		VcekCustom: test.CertOverride{Extensions: test.CustomExtensions(parts, p.ChipID[:], "", name)},
		VlekCustom: test.CertOverride{Extensions: test.CustomExtensions(parts, nil, "go-expat-test", name)},
	}
	if p.Signer, err = b.TestOnlyCertChain(); err != nil {
		return nil, fmt.Errorf("sevsnptest: test certificate chain: %w", err)
	}
	if p.certs, err = p.Signer.CertTableBytes(); err != nil {
		return nil, fmt.Errorf("sevsnptest: certificate table: %w", err)
	}
	return p, nil
}

// NewPlatform is New for tests: it fails t on error.
func NewPlatform(t testing.TB) *Platform {
	t.Helper()
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Roots returns the platform's test roots for verifier/sevsnp's
// Config.Roots. Passing them is what makes a verifier trust this platform.
func (p *Platform) Roots() []vsevsnp.Root {
	s := p.Signer
	return []vsevsnp.Root{{ProductLine: ProductLine, ARK: s.Ark, ASK: s.Ask, ASVK: s.Asvk}}
}

// Verifier returns a verifier/sevsnp Verifier that trusts this platform's
// test roots, with pol; when pol allows no measurement (and not
// AcceptAnyMeasurement), Measurement() is allowed.
func (p *Platform) Verifier(t testing.TB, pol vsevsnp.Policy) *vsevsnp.Verifier {
	t.Helper()
	if pol.Measurements == nil && !pol.AcceptAnyMeasurement {
		pol.Measurements = [][]byte{Measurement()}
	}
	v, err := vsevsnp.New(&vsevsnp.Config{Roots: p.Roots(), Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Report returns an unsigned version 2 report for REPORT_DATA rd: guest
// policy SMT allowed, ABI 1.0, no debug, no migration agent; MEASUREMENT
// Measurement(); CHIP_ID and all TCBs the platform's; VMPL vmpl; signed by
// the VCEK (per SIGNER_INFO). mutate, if not nil, changes it before it is
// laid out.
func (p *Platform) Report(rd [64]byte, vmpl uint32, mutate func(*spb.Report)) ([]byte, error) {
	raw := test.CreateRawReport(&test.TestReportOptions{ReportData: rd[:]})
	r, err := abi.ReportToProto(raw[:abi.ReportSize])
	if err != nil {
		return nil, fmt.Errorf("sevsnptest: %w", err)
	}
	r.Policy = abi.SnpPolicyToBytes(abi.SnpPolicy{SMT: true, ABIMajor: 1})
	r.Measurement = Measurement()
	r.ChipId = p.ChipID[:]
	r.ReportedTcb, r.CurrentTcb, r.CommittedTcb, r.LaunchTcb = p.TCB, p.TCB, p.TCB, p.TCB
	r.Vmpl = vmpl
	if mutate != nil {
		mutate(r)
	}
	b, err := abi.ReportToAbiBytes(r)
	if err != nil {
		return nil, fmt.Errorf("sevsnptest: %w", err)
	}
	return b, nil
}

// Sign signs report in place with the platform's VCEK and returns it.
func (p *Platform) Sign(report []byte) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, s, err := p.Signer.Sign(abi.SignedComponent(report))
	if err != nil {
		return nil, fmt.Errorf("sevsnptest: sign: %w", err)
	}
	if err := abi.SetSignature(r, s, report); err != nil {
		return nil, fmt.Errorf("sevsnptest: sign: %w", err)
	}
	return report, nil
}

// NewDevice returns go-sev-guest's fake sev-guest device that answers the
// REPORT_DATA values rds (and only those) with Report(rd, 0, mutate),
// signed by the device, and offers the platform's certificate table.
func (p *Platform) NewDevice(mutate func(*spb.Report), rds ...[64]byte) (*test.Device, error) {
	rsp := map[string]any{}
	for _, rd := range rds {
		rep, err := p.Report(rd, 0, mutate)
		if err != nil {
			return nil, err
		}
		var out [labi.SnpReportRespReportSize]byte
		copy(out[:], rep)
		rsp[hex.EncodeToString(rd[:])] = &test.GetReportResponse{Resp: labi.SnpReportRespABI{Data: out}}
	}
	return &test.Device{ReportDataRsp: rsp, Certs: p.certs, Signer: p.Signer, SevProduct: abi.DefaultSevProduct()}, nil
}

// Device is NewDevice for tests: it fails t on error.
func (p *Platform) Device(t testing.TB, mutate func(*spb.Report), rds ...[64]byte) *test.Device {
	t.Helper()
	d, err := p.NewDevice(mutate, rds...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TSM returns go-configfs-tsm's fake report subsystem, provider
// "sev_guest", whose outblob is Report(inblob, privlevel, mutate) signed by
// the platform's VCEK and whose auxblob is the certificate table. It
// answers any REPORT_DATA, so it suits challenges known only at run time
// (attested TLS connections). Pass it to attester/sevsnp.NewTSMAttester.
func (p *Platform) TSM(mutate func(*spb.Report)) *faketsm.ReportSubsystem {
	sub := faketsm.ReportV7(0)
	sub.ReadAttr = func(e *faketsm.ReportEntry, attr string) ([]byte, error) {
		switch attr {
		case "provider":
			return []byte(asevsnp.TSMProvider + "\n"), nil
		case "auxblob":
			return p.certs, nil
		case "outblob":
			in := e.InAttrs["inblob"]
			if in == nil || len(in.Value) != 64 {
				return nil, errors.New("sevsnptest: inblob is not 64 bytes")
			}
			var vmpl uint64
			if a := e.InAttrs["privlevel"]; a != nil {
				var err error
				if vmpl, err = strconv.ParseUint(strings.TrimSpace(string(a.Value)), 10, 2); err != nil {
					return nil, fmt.Errorf("sevsnptest: privlevel: %w", err)
				}
			}
			rep, err := p.Report([64]byte(in.Value), uint32(vmpl), mutate)
			if err != nil {
				return nil, err
			}
			return p.Sign(rep)
		}
		return nil, fmt.Errorf("sevsnptest: no attribute %q", attr)
	}
	return sub
}

// TSMAttester returns attester/sevsnp's configfs-tsm Attester over
// TSM(mutate).
func (p *Platform) TSMAttester(t testing.TB, mutate func(*spb.Report), opts *asevsnp.Options) *asevsnp.Attester {
	t.Helper()
	a, err := asevsnp.NewTSMAttester(p.TSM(mutate), opts)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// Attest runs attester/sevsnp's device backend against a fake device that
// answers ch with Report(ch.ReportData64(), 0, mutate), and returns the
// CMW.
func (p *Platform) Attest(t testing.TB, ch attester.Challenge, mutate func(*spb.Report), opts *asevsnp.Options) []byte {
	t.Helper()
	a, err := asevsnp.NewDeviceAttester(p.Device(t, mutate, ReportData(t, ch)), opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := a.Attest(context.Background(), ch)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// CRL returns a CRL for the product line signed by the test ARK, issued a
// minute before now and valid for validity after it, listing revoked.
func (p *Platform) CRL(t testing.TB, now time.Time, validity time.Duration, revoked ...*big.Int) []byte {
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
	}, p.Signer.Ark, p.Signer.Keys.Ark)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// RandomChallenge returns a SHA-256 challenge with random values.
func RandomChallenge(t testing.TB) attester.Challenge {
	t.Helper()
	ch := attester.Challenge{Hash: crypto.SHA256, Binding: make([]byte, 32), AIKPubHash: make([]byte, 32)}
	if _, err := rand.Read(ch.Binding); err != nil {
		t.Fatal(err)
	}
	if _, err := rand.Read(ch.AIKPubHash); err != nil {
		t.Fatal(err)
	}
	return ch
}

// ReportData returns ch.ReportData64(), failing t on error.
func ReportData(t testing.TB, ch attester.Challenge) [64]byte {
	t.Helper()
	rd, err := ch.ReportData64()
	if err != nil {
		t.Fatal(err)
	}
	return rd
}

// Record wraps Evidence into a CMW exactly as attester/sevsnp does: a CBOR
// record of cmw.MediaTypeSEVSNP with the evidence indicator.
func Record(t testing.TB, ev *wire.Evidence) []byte {
	t.Helper()
	val, err := ev.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	c, err := cmw.NewRecord(cmw.MediaTypeSEVSNP, val, cmw.Evidence)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// EvidenceOf decodes (strictly, with package cmw) the Evidence of a CMW
// record of cmw.MediaTypeSEVSNP.
func EvidenceOf(t testing.TB, rec []byte) *wire.Evidence {
	t.Helper()
	r, err := cmw.DecodeRecord(rec, cmw.MediaTypeSEVSNP, cmw.Evidence)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := wire.Unmarshal(r.Value)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}
