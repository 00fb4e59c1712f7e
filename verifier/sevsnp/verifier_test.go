package sevsnp_test

import (
	"bytes"
	"context"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"
	spb "github.com/google/go-sev-guest/proto/sevsnp"

	asevsnp "github.com/attested-tls/go-expat/attester/sevsnp"
	"github.com/attested-tls/go-expat/attester/sevsnp/sevsnptest"
	"github.com/attested-tls/go-expat/attester/sevsnp/wire"
	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/internal/checktest"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/sevsnp"
)

func mustNew(t testing.TB, cfg *sevsnp.Config) *sevsnp.Verifier {
	t.Helper()
	v, err := sevsnp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestAccepts(t *testing.T) {
	p := sevsnptest.NewPlatform(t)
	ch := sevsnptest.RandomChallenge(t)
	rec := p.Attest(t, ch, nil, nil)
	v := mustNew(t, &sevsnp.Config{Roots: p.Roots(), Policy: sevsnp.Policy{
		Measurements: [][]byte{bytes.Repeat([]byte{1}, 48), sevsnptest.Measurement()},
		MinimumTCB:   sevsnp.TCB{BootLoader: 3, SNP: 8, Microcode: 115},
		HostData:     make([]byte, 32),
	}})
	res, err := v.Verify(context.Background(), rec, &verifier.Expected{Challenge: ch})
	if err != nil {
		t.Fatal(err)
	}
	if res.Technology != "sev-snp" || res.Model != verifier.BackgroundCheck || res.Status != verifier.TierAffirming {
		t.Errorf("result %+v", res)
	}
	if res.Measurements[0].Name != "MEASUREMENT" || !bytes.Equal(res.Measurements[0].Value, sevsnptest.Measurement()) {
		t.Errorf("measurements %+v", res.Measurements)
	}
	for k, want := range map[string]string{
		"product": "Milan", "vmpl": "0", "policy.debug": "false", "signing_key": "VCEK",
		"tcb.reported": "bl=3 tee=0 snp=8 ucode=115",
	} {
		if res.Claims[k] != want {
			t.Errorf("claim %s = %q, want %q", k, res.Claims[k], want)
		}
	}
	if res.TrustVector.Executables != 2 || res.TrustVector.Hardware != 2 {
		t.Errorf("trust vector %+v", res.TrustVector)
	}
}

// T22 and the other checks, each built by a misbehaving platform.
func TestRejects(t *testing.T) {
	p := sevsnptest.NewPlatform(t)
	other := sevsnptest.NewPlatform(t) // same test keys, another chip
	ch := sevsnptest.RandomChallenge(t)
	pol := sevsnp.Policy{Measurements: [][]byte{sevsnptest.Measurement()}}
	tests := []struct {
		name  string
		rec   func() []byte
		cfg   func(*sevsnp.Config)
		check verifier.Check
	}{
		{name: "debug TEE", check: verifier.CheckDebug, rec: func() []byte {
			return p.Attest(t, ch, func(r *spb.Report) { r.Policy |= 1 << 19 }, nil)
		}},
		{name: "outdated TCB", check: verifier.CheckTCB, rec: func() []byte { return p.Attest(t, ch, nil, nil) },
			cfg: func(c *sevsnp.Config) { c.Policy.MinimumTCB = sevsnp.TCB{SNP: 9} }},
		{name: "outdated microcode", check: verifier.CheckTCB, rec: func() []byte { return p.Attest(t, ch, nil, nil) },
			cfg: func(c *sevsnp.Config) { c.Policy.MinimumTCB = sevsnp.TCB{Microcode: 200} }},
		{name: "reported above current TCB", check: verifier.CheckTCB, rec: func() []byte {
			return p.Attest(t, ch, func(r *spb.Report) { r.CurrentTcb = 0 }, nil)
		}},
		{name: "wrong measurement", check: verifier.CheckMeasurement, rec: func() []byte {
			return p.Attest(t, ch, func(r *spb.Report) { r.Measurement = bytes.Repeat([]byte{7}, 48) }, nil)
		}},
		{name: "empty allow-list", check: verifier.CheckMeasurement, rec: func() []byte { return p.Attest(t, ch, nil, nil) },
			cfg: func(c *sevsnp.Config) { c.Policy.Measurements = nil }},
		{name: "untrusted root (AMD's real roots)", check: verifier.CheckChain, rec: func() []byte { return p.Attest(t, ch, nil, nil) },
			cfg: func(c *sevsnp.Config) { c.Roots = nil }},
		{name: "VCEK of another chip", check: verifier.CheckChain, rec: func() []byte {
			return p.Attest(t, ch, func(r *spb.Report) { r.ChipId = other.ChipID[:] }, nil)
		}},
		{name: "VCEK for another TCB", check: verifier.CheckChain, rec: func() []byte {
			return p.Attest(t, ch, func(r *spb.Report) { r.ReportedTcb = 0 }, nil)
		}},
		{name: "wrong challenge", check: verifier.CheckChallenge, rec: func() []byte { return p.Attest(t, sevsnptest.RandomChallenge(t), nil, nil) }},
		{name: "VMPL 1", check: verifier.CheckVMPL, rec: func() []byte {
			return p.Attest(t, ch, func(r *spb.Report) { r.Vmpl = 1 }, nil)
		}},
		{name: "migration agent", check: verifier.CheckPolicy, rec: func() []byte {
			return p.Attest(t, ch, func(r *spb.Report) { r.Policy |= 1 << 18 }, nil)
		}},
		{name: "host data", check: verifier.CheckPolicy, rec: func() []byte { return p.Attest(t, ch, nil, nil) },
			cfg: func(c *sevsnp.Config) { c.Policy.HostData = bytes.Repeat([]byte{1}, 32) }},
		{name: "guest SVN", check: verifier.CheckPolicy, rec: func() []byte { return p.Attest(t, ch, nil, nil) },
			cfg: func(c *sevsnp.Config) { c.Policy.MinGuestSVN = 1 }},
		{name: "tampered report", check: verifier.CheckSignature, rec: func() []byte {
			ev := sevsnptest.EvidenceOf(t, p.Attest(t, ch, nil, nil))
			ev.Report[0x10] ^= 1 // FAMILY_ID (no policy reads it), after signing
			return sevsnptest.Record(t, ev)
		}},
		{name: "VCEK entry holds another key (the VLEK)", check: verifier.CheckSignature, rec: func() []byte {
			ev := sevsnptest.EvidenceOf(t, p.Attest(t, ch, nil, nil))
			ct, _ := wire.ParseCertTable(ev.CertTable)
			for i := range ct {
				if ct[i].GUID == wire.GUIDVCEK {
					ct[i].Data = p.Signer.Vlek.Raw
				}
			}
			ev.CertTable, _ = ct.Marshal()
			return sevsnptest.Record(t, ev)
		}},
		{name: "not CBOR", check: verifier.CheckFormat, rec: func() []byte { return []byte(`["x","eA"]`) }},
		{name: "wrong media type", check: verifier.CheckFormat, rec: func() []byte {
			rec := p.Attest(t, ch, nil, nil)
			return bytes.Replace(rec, []byte("sev-snp-report"), []byte("sev-snp-rep0rt"), 1)
		}},
		{name: "trailing bytes", check: verifier.CheckFormat, rec: func() []byte { return append(p.Attest(t, ch, nil, nil), 0) }},
		{name: "JSON record of the media type, not canonical", check: verifier.CheckFormat, rec: func() []byte {
			j := rewrap(t, p.Attest(t, ch, nil, nil), func(c *cmw.CMW) ([]byte, error) { return c.MarshalJSON() })
			return bytes.Replace(j, []byte(`",`), []byte(`", `), 1)
		}},
		{name: "reference-values indicator", check: verifier.CheckFormat, rec: func() []byte {
			val := sevsnptest.EvidenceOf(t, p.Attest(t, ch, nil, nil))
			b, _ := val.Marshal()
			c, _ := cmw.NewRecord(cmw.MediaTypeSEVSNP, b, cmw.ReferenceValues)
			out, _ := c.MarshalCBOR()
			return out
		}},
		{name: "record inside a collection", check: verifier.CheckFormat, rec: func() []byte {
			return rewrap(t, p.Attest(t, ch, nil, nil), func(c *cmw.CMW) ([]byte, error) {
				col, _ := cmw.NewCollection("")
				if err := col.Add(cmw.TextLabel("snp"), c); err != nil {
					return nil, err
				}
				return col.MarshalCBOR()
			})
		}},
		{name: "non-minimal CBOR length", check: verifier.CheckFormat, rec: func() []byte {
			rec := p.Attest(t, ch, nil, nil)
			head := []byte{0x78, byte(len(cmw.MediaTypeSEVSNP))}
			if !bytes.HasPrefix(rec[1:], head) {
				t.Fatalf("unexpected record head % x", rec[:3])
			}
			return append([]byte{rec[0], 0x79, 0}, rec[2:]...)
		}},
		{name: "unsupported report version", check: verifier.CheckFormat, rec: func() []byte {
			ev := sevsnptest.EvidenceOf(t, p.Attest(t, ch, nil, nil))
			ev.Report[0] = 9
			return sevsnptest.Record(t, ev)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := sevsnp.Config{Roots: p.Roots(), Policy: pol}
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			res, err := mustNew(t, &cfg).Verify(context.Background(), tc.rec(), &verifier.Expected{Challenge: ch})
			if res != nil {
				t.Error("result with a rejection")
			}
			checktest.Rejected(t, err, tc.check)
		})
	}
}

// rewrap decodes a CMW record and re-serializes it with enc.
func rewrap(t testing.TB, rec []byte, enc func(*cmw.CMW) ([]byte, error)) []byte {
	t.Helper()
	c, err := cmw.Decode(rec, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := c.Record()
	fresh, err := cmw.NewRecord(r.MediaType, r.Value, r.Indicator)
	if err != nil {
		t.Fatal(err)
	}
	out, err := enc(fresh)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The media type must be spelled exactly (package cmw's one record rule):
// a record whose type differs only in case is refused, as by every backend.
func TestMediaTypeCase(t *testing.T) {
	p := sevsnptest.NewPlatform(t)
	ch := sevsnptest.RandomChallenge(t)
	ev := sevsnptest.EvidenceOf(t, p.Attest(t, ch, nil, nil))
	val, _ := ev.Marshal()
	c, err := cmw.NewRecord(strings.ToUpper(cmw.MediaTypeSEVSNP), val, cmw.Evidence)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := c.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	v := mustNew(t, &sevsnp.Config{Roots: p.Roots(), Policy: sevsnp.Policy{Measurements: [][]byte{sevsnptest.Measurement()}}})
	_, err = v.Verify(context.Background(), rec, &verifier.Expected{Challenge: ch})
	checktest.Rejected(t, err, verifier.CheckFormat)
	if !errors.Is(err, cmw.ErrUnexpected) {
		t.Errorf("got %v, want cmw.ErrUnexpected", err)
	}
}

func TestDebugAllowedIsAWarning(t *testing.T) {
	p := sevsnptest.NewPlatform(t)
	ch := sevsnptest.RandomChallenge(t)
	rec := p.Attest(t, ch, func(r *spb.Report) { r.Policy |= 1 << 19 }, nil)
	v := mustNew(t, &sevsnp.Config{Roots: p.Roots(), Policy: sevsnp.Policy{AcceptAnyMeasurement: true, AllowDebug: true}})
	res, err := v.Verify(context.Background(), rec, &verifier.Expected{Challenge: ch})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != verifier.TierWarning || res.TrustVector.Executables != 0 {
		t.Errorf("status %v, vector %+v", res.Status, res.TrustVector)
	}
}

func TestVLEK(t *testing.T) {
	p := sevsnptest.NewPlatform(t)
	ch := sevsnptest.RandomChallenge(t)
	rec := p.Attest(t, ch, func(r *spb.Report) {
		r.SignerInfo = abi.ComposeSignerInfo(abi.SignerInfo{SigningKey: abi.VlekReportSigner})
	}, nil)
	v := mustNew(t, &sevsnp.Config{Roots: p.Roots(), Policy: sevsnp.Policy{Measurements: [][]byte{sevsnptest.Measurement()}}})
	res, err := v.Verify(context.Background(), rec, &verifier.Expected{Challenge: ch})
	if err != nil {
		t.Fatal(err)
	}
	if res.Claims["signing_key"] != "VLEK" {
		t.Errorf("signing key %q", res.Claims["signing_key"])
	}
	// Without the VLEK in the Evidence it cannot be checked.
	rec = p.Attest(t, ch, func(r *spb.Report) {
		r.SignerInfo = abi.ComposeSignerInfo(abi.SignerInfo{SigningKey: abi.VlekReportSigner})
	}, &asevsnp.Options{OmitCertTable: true})
	if _, err := v.Verify(context.Background(), rec, &verifier.Expected{Challenge: ch}); !errors.Is(err, verifier.ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
}

func TestConfigErrors(t *testing.T) {
	p := sevsnptest.NewPlatform(t)
	for name, cfg := range map[string]sevsnp.Config{
		"short measurement":             {Policy: sevsnp.Policy{Measurements: [][]byte{{1}}}},
		"short host data":               {Policy: sevsnp.Policy{HostData: []byte{1}}},
		"VMPL 4":                        {Policy: sevsnp.Policy{VMPLs: []uint32{4}}},
		"revocation without collateral": {CheckRevocation: true},
		"root without ARK":              {Roots: []sevsnp.Root{{ProductLine: "Milan", ASK: p.Signer.Ask}}},
		"unknown product":               {Roots: []sevsnp.Root{{ProductLine: "Naples", ARK: p.Signer.Ark, ASK: p.Signer.Ask}}},
		"any measurement and a list":    {Policy: sevsnp.Policy{AcceptAnyMeasurement: true, Measurements: [][]byte{make([]byte, 48)}}},
	} {
		if _, err := sevsnp.New(&cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	v := mustNew(t, &sevsnp.Config{Roots: p.Roots()})
	if _, err := v.Verify(context.Background(), p.Attest(t, sevsnptest.RandomChallenge(t), nil, nil), nil); err == nil {
		t.Error("nil Expected accepted")
	}
}

func TestAMDRoots(t *testing.T) {
	roots, err := sevsnp.AMDRoots()
	if err != nil {
		t.Fatal(err)
	}
	if len(roots) != 3 {
		t.Fatalf("%d roots", len(roots))
	}
	for _, r := range roots {
		if r.ARK == nil || r.ASK == nil || r.ASVK == nil {
			t.Errorf("%s: incomplete root %+v", r.ProductLine, r)
		}
		if err := r.ASK.CheckSignatureFrom(r.ARK); err != nil {
			t.Errorf("%s: ASK not signed by ARK: %v", r.ProductLine, err)
		}
	}
}

// The real Milan report in go-sev-guest's verify/testdata (a debug VM),
// verified offline against AMD's real roots with the VCEK AMD's KDS issued
// for it (also in that testdata).
func TestRealMilanReport(t *testing.T) {
	report := moduleFile(t, "verify/testdata/attestation.bin")
	vcek := moduleFile(t, "verify/testdata/vcek.testcer")
	rd := [64]byte(report[0x50:0x90])
	meas := report[0x90:0xC0]
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) // inside the VCEK's validity (2022-09-24 .. 2029-09-24)
	table, err := wire.CertTable{{GUID: wire.GUIDVCEK, Data: vcek}}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	withTable := sevsnptest.Record(t, &wire.Evidence{Report: report, CertTable: table})
	bare := sevsnptest.Record(t, &wire.Evidence{Report: report})
	accept := sevsnp.Policy{Measurements: [][]byte{meas}, AllowDebug: true}

	t.Run("accepted with the real AMD roots", func(t *testing.T) {
		v := mustNew(t, &sevsnp.Config{Policy: accept})
		res, err := v.Verify(context.Background(), withTable, &verifier.Expected{ReportData: &rd, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if res.Claims["product"] != "Milan" || res.Claims["tcb.reported"] != "bl=2 tee=0 snp=5 ucode=68" {
			t.Errorf("claims %v", res.Claims)
		}
	})
	t.Run("offline bundle, no table", func(t *testing.T) {
		v := mustNew(t, &sevsnp.Config{Policy: accept, ProductLine: "Milan",
			Collateral: &sevsnp.Bundle{VCEKs: [][]byte{vcek}, Time: func() time.Time { return now }}})
		if _, err := v.Verify(context.Background(), bare, &verifier.Expected{ReportData: &rd, Now: now}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("debug refused by default", func(t *testing.T) {
		v := mustNew(t, &sevsnp.Config{Policy: sevsnp.Policy{Measurements: [][]byte{meas}}})
		_, err := v.Verify(context.Background(), withTable, &verifier.Expected{ReportData: &rd, Now: now})
		checktest.Rejected(t, err, verifier.CheckDebug)
	})
	t.Run("not bound to our challenge", func(t *testing.T) {
		v := mustNew(t, &sevsnp.Config{Policy: accept})
		_, err := v.Verify(context.Background(), withTable, &verifier.Expected{Challenge: sevsnptest.RandomChallenge(t), Now: now})
		checktest.Rejected(t, err, verifier.CheckChallenge)
	})
	t.Run("test roots reject it", func(t *testing.T) {
		v := mustNew(t, &sevsnp.Config{Roots: sevsnptest.NewPlatform(t).Roots(), Policy: accept})
		_, err := v.Verify(context.Background(), withTable, &verifier.Expected{ReportData: &rd, Now: now})
		checktest.Rejected(t, err, verifier.CheckChain)
	})
	t.Run("VCEK expired", func(t *testing.T) {
		v := mustNew(t, &sevsnp.Config{Policy: accept})
		_, err := v.Verify(context.Background(), withTable, &verifier.Expected{ReportData: &rd, Now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)})
		checktest.Rejected(t, err, verifier.CheckChain)
	})
}

func TestConcurrentVerify(t *testing.T) {
	p := sevsnptest.NewPlatform(t)
	k := newKDS(t, p, nil)
	v := mustNew(t, &sevsnp.Config{Roots: p.Roots(), Policy: sevsnp.Policy{Measurements: [][]byte{sevsnptest.Measurement()}},
		ProductLine: "Milan", Collateral: &sevsnp.Cache{Source: &sevsnp.KDS{BaseURL: k.URL}}})
	chs := make([]struct {
		ch  any
		rec []byte
		exp *verifier.Expected
	}, 8)
	for i := range chs {
		ch := sevsnptest.RandomChallenge(t)
		chs[i].rec = p.Attest(t, ch, nil, &asevsnp.Options{OmitCertTable: true})
		chs[i].exp = &verifier.Expected{Challenge: ch}
	}
	var wg sync.WaitGroup
	for i := range chs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := v.Verify(context.Background(), chs[i].rec, chs[i].exp); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := k.vcekHits.Load(); n != 1 {
		t.Errorf("%d VCEK fetches for 8 concurrent verifications, want 1", n)
	}
}

var _ = big.NewInt
