package tdx_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	atdx "github.com/attested-tls/go-expat/attester/tdx"
	"github.com/attested-tls/go-expat/attester/tdx/tdxtest"
	"github.com/attested-tls/go-expat/attester/tdx/wire"
	expatcmw "github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/internal/checktest"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/tdx"
	"github.com/veraison/cmw"
)

func wrap(t testing.TB, quote []byte, mediaType string) []byte {
	t.Helper()
	val, err := (&wire.Evidence{Quote: quote}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	rec, err := cmw.NewMonad(mediaType, val, cmw.Evidence)
	if err != nil {
		t.Fatal(err)
	}
	b, err := rec.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func wantReject(t *testing.T, err error, check verifier.Check) *verifier.RejectedError {
	t.Helper()
	checktest.Rejected(t, err, check)
	var re *verifier.RejectedError
	errors.As(err, &re)
	return re
}

func TestEndToEnd(t *testing.T) {
	e := newEnv(t)
	ch := challenge("e2e")
	res, err := e.verifier(tdx.Policy{MRTD: [][]byte{e.pl.Template.MRTD[:]}}).Verify(context.Background(), e.evidence(ch), expected(ch))
	if err != nil {
		t.Fatal(err)
	}
	if res.Technology != "tdx" || res.MediaType != expatcmw.MediaTypeTDX || res.Status != verifier.TierAffirming ||
		res.Model != verifier.BackgroundCheck || res.TrustVector.Executables != 2 || res.TrustVector.Hardware != 2 {
		t.Fatalf("result = %+v", res)
	}
	for k, want := range map[string]string{"tcb_status": "UpToDate", "fmspc": "00906ed50000", "debug": "false", "pck_ca": "platform", "quote_version": "4"} {
		if got := res.Claims[k]; got != want {
			t.Errorf("claim %s = %q, want %q", k, got, want)
		}
	}
	if res.Measurements[0].Name != "MRTD" || !bytes.Equal(res.Measurements[0].Value, e.pl.Template.MRTD[:]) ||
		res.Measurements[4].Name != "RTMR3" || !bytes.Equal(res.Measurements[4].Value, e.pl.Template.RTMR[3][:]) {
		t.Fatalf("measurements = %v", res.Measurements)
	}
	if !res.AppraisedAt.Equal(e.now) {
		t.Fatalf("AppraisedAt = %v", res.AppraisedAt)
	}
}

// TestAppraisal covers T22 and the other rejection reasons, each with a
// quote or collateral built for real by the test kit.
func TestAppraisal(t *testing.T) {
	other := bytes.Repeat([]byte{7}, 48)
	type tc struct {
		name    string
		setup   func(e *env) // alter platform or collateral
		policy  tdx.Policy
		ev      func(e *env) []byte // nil: attester output for the challenge
		verify  func(e *env, o *tdx.Config)
		check   verifier.Check // 0 = accepted
		status  string
		tier    verifier.Tier
		inShort string
		version string // quote_version claim, if set
	}
	outOfDate := func(e *env) {
		latest := e.pl.UpToDateLevels()[0]
		latest.SGX[0]++
		latest.TDX[2]++
		cur := e.pl.UpToDateLevels()[0]
		cur.Status = "OutOfDate"
		cur.Advisories = []string{"INTEL-SA-00001"}
		e.setCollateral(tdxtest.Window(e.now, time.Hour), []tdxtest.TCBLevel{latest, cur})
	}
	status := func(s string) func(e *env) {
		return func(e *env) {
			l := e.pl.UpToDateLevels()
			l[0].Status = s
			e.setCollateral(tdxtest.Window(e.now, time.Hour), l)
		}
	}
	quoteWith := func(o tdxtest.QuoteOptions) func(e *env) []byte {
		return func(e *env) []byte {
			rd, _ := challenge("x").ReportData64()
			b := e.pl.Template
			b.ReportData = rd
			q, err := e.pl.QuoteWith(b, o)
			if err != nil {
				t.Fatal(err)
			}
			return wrap(t, q, expatcmw.MediaTypeTDX)
		}
	}
	tests := []tc{
		{name: "accepted", status: "UpToDate", tier: verifier.TierAffirming},
		{name: "v5 quote, TDX 1.0 body: accepted", ev: quoteWith(tdxtest.QuoteOptions{Version: 5}), status: "UpToDate", tier: verifier.TierAffirming, version: "5"},
		{name: "v5 quote, TDX 1.5 body: accepted", setup: func(e *env) { e.pl.Template.MRServiceTD[0] = 1 },
			ev: quoteWith(tdxtest.QuoteOptions{Version: 5, BodyType: wire.BodyTypeTDX15}), status: "UpToDate", tier: verifier.TierAffirming, version: "5"},
		{name: "v5 quote signature", ev: quoteWith(tdxtest.QuoteOptions{Version: 5, BodyType: wire.BodyTypeTDX15, CorruptQuoteSig: true}), check: verifier.CheckSignature},
		{name: "debug TD", setup: func(e *env) { e.pl.Template.TDAttributes[0] |= 1 }, check: verifier.CheckDebug},
		{name: "debug TD allowed by policy: warning", setup: func(e *env) { e.pl.Template.TDAttributes[0] |= 1 }, policy: tdx.Policy{AllowDebug: true}, status: "UpToDate", tier: verifier.TierWarning},
		{name: "wrong MRTD", policy: tdx.Policy{MRTD: [][]byte{other}}, check: verifier.CheckMeasurement},
		{name: "wrong RTMR2", policy: tdx.Policy{RTMR: [4][][]byte{2: {other}}}, check: verifier.CheckMeasurement},
		{name: "wrong MROWNER", policy: tdx.Policy{MROwner: other}, check: verifier.CheckMeasurement},
		{name: "wrong XFAM", policy: tdx.Policy{XFAM: make([]byte, 8)}, check: verifier.CheckMeasurement},
		{name: "forbidden attribute", policy: tdx.Policy{ForbiddenTDAttributes: 1 << 28}, check: verifier.CheckMeasurement},
		{name: "required attribute missing", policy: tdx.Policy{RequiredTDAttributes: 1 << 30}, check: verifier.CheckMeasurement},
		{name: "out-of-date TCB", setup: outOfDate, check: verifier.CheckTCB, inShort: "sgx_tcb_comp[0] svn 5 < 6"},
		{name: "out-of-date TCB allowed", setup: outOfDate, policy: tdx.Policy{AllowOutOfDate: true}, status: "OutOfDate", tier: verifier.TierWarning, inShort: "tdx_tcb_comp[2] svn 5 < 6"},
		{name: "configuration needed", setup: status("ConfigurationNeeded"), check: verifier.CheckTCB},
		{name: "configuration needed allowed", setup: status("ConfigurationNeeded"), policy: tdx.Policy{AllowConfigurationNeeded: true}, status: "ConfigurationNeeded", tier: verifier.TierWarning},
		{name: "SW hardening needed", setup: status("SWHardeningNeeded"), check: verifier.CheckTCB},
		{name: "revoked TCB level is never accepted", setup: status("Revoked"),
			policy: tdx.Policy{AllowOutOfDate: true, AllowConfigurationNeeded: true, AllowSWHardeningNeeded: true}, check: verifier.CheckTCB},
		{name: "no matching TCB level", setup: func(e *env) {
			l := e.pl.UpToDateLevels()
			l[0].PCESVN++
			e.setCollateral(tdxtest.Window(e.now, time.Hour), l)
		}, check: verifier.CheckTCB, inShort: "pcesvn 11 < 12"},
		{name: "quoting enclave out of date", setup: func(e *env) {
			e.setCollateral(tdxtest.Window(e.now, time.Hour), nil) // identity built for ISVSVN 4
			e.pl.QE.ISVSVN = 3
		}, policy: tdx.Policy{AllowOutOfDate: true}, status: "OutOfDate", tier: verifier.TierWarning, inShort: "qe isvsvn 3 < 4"},
		{name: "TDX 1.5 module out of date", setup: func(e *env) {
			e.pl.Template.TeeTCBSVN[1] = 1
			l := e.pl.UpToDateLevels()
			pki := e.pl.PKI
			ti, _ := pki.TCBInfo(tdxtest.TCBInfoSpec{FMSPC: e.pl.Opts.FMSPC, MRSignerSeam: e.pl.Template.MRSignerSeam, Levels: l,
				Modules:  []tdxtest.ModuleIdentity{{ID: "TDX_01", Levels: []tdxtest.ModuleLevel{{ISVSVN: 4, Status: "UpToDate"}, {ISVSVN: 0, Status: "OutOfDate"}}}},
				Validity: tdxtest.Window(e.now, time.Hour)})
			c := *e.col
			c.TCBInfo = ti
			e.col = &c
			e.srv.Set(&c)
		}, policy: tdx.Policy{AllowOutOfDate: true}, status: "OutOfDate", tier: verifier.TierWarning, inShort: "tdx_module isvsvn 3 < 4"},
		{name: "revoked PCK", setup: func(e *env) { e.setCollateral(tdxtest.Window(e.now, time.Hour), nil, e.pl.PCK) }, check: verifier.CheckChain},
		{name: "untrusted: Intel root only", verify: func(e *env, o *tdx.Config) { o.TrustedRoots = nil }, check: verifier.CheckChain},
		{name: "untrusted: another test root", verify: func(e *env, o *tdx.Config) {
			p2, _ := tdxtest.NewPKI(e.now)
			o.TrustedRoots = []*x509.Certificate{p2.Root}
		}, check: verifier.CheckChain},
		{name: "PCK expired", verify: func(e *env, o *tdx.Config) { o.Time = func() time.Time { return e.now.AddDate(11, 0, 0) } }, check: verifier.CheckChain},
		{name: "quote signature", ev: quoteWith(tdxtest.QuoteOptions{CorruptQuoteSig: true}), check: verifier.CheckSignature},
		{name: "QE report signature", ev: quoteWith(tdxtest.QuoteOptions{CorruptQESig: true}), check: verifier.CheckSignature},
		{name: "QE report does not certify the key", ev: quoteWith(tdxtest.QuoteOptions{WrongQEReportData: true}), check: verifier.CheckSignature},
		{name: "PCK chain missing the root", ev: func(e *env) []byte {
			return quoteWith(tdxtest.QuoteOptions{Chain: tdxtest.PEM(e.pl.PCK, e.pki.PlatformCA)})(e)
		}, check: verifier.CheckChain},
		{name: "PCK chain with a TCB signing cert as CA", ev: func(e *env) []byte {
			return quoteWith(tdxtest.QuoteOptions{Chain: tdxtest.PEM(e.pl.PCK, e.pki.TCBSigning, e.pki.Root)})(e)
		}, check: verifier.CheckChain},
		{name: "wrong challenge", ev: func(e *env) []byte { return e.evidence(challenge("another connection")) }, check: verifier.CheckChallenge},
		{name: "wrong media type", ev: func(e *env) []byte {
			q, _ := e.pl.QuoteFor([64]byte{})
			return wrap(t, q, expatcmw.MediaTypeSEVSNP)
		}, check: verifier.CheckFormat},
		{name: "not a CMW", ev: func(e *env) []byte { return []byte{0x01, 0x02} }, check: verifier.CheckFormat},
		{name: "expired collateral", setup: func(e *env) {
			e.setCollateral(tdxtest.Validity{Issue: e.now.Add(-48 * time.Hour), Next: e.now.Add(-time.Hour)}, nil)
		}, check: verifier.CheckCollateral},
		{name: "collateral from the future", setup: func(e *env) {
			e.setCollateral(tdxtest.Validity{Issue: e.now.Add(time.Hour), Next: e.now.Add(48 * time.Hour)}, nil)
		}, check: verifier.CheckCollateral},
		{name: "collateral signed by another PKI", setup: func(e *env) {
			p2, _ := tdxtest.NewPKI(e.now)
			pl2 := *e.pl
			pl2.PKI = p2
			c, err := pl2.Collateral(tdxtest.Window(e.now, time.Hour), nil)
			if err != nil {
				t.Fatal(err)
			}
			mixed := *e.col
			mixed.TCBInfo, mixed.TCBInfoChain = c.TCBInfo, c.TCBInfoChain
			e.srv.Set(&mixed)
		}, check: verifier.CheckCollateral},
		{name: "TCB info tampered", setup: func(e *env) {
			c := *e.col
			c.TCBInfo = bytes.Replace(c.TCBInfo, []byte(`"UpToDate"`), []byte(`"UpToDat" `), 1)
			e.srv.Set(&c)
		}, check: verifier.CheckCollateral},
		{name: "TCB info for another FMSPC", setup: func(e *env) {
			ti, _ := e.pki.TCBInfo(tdxtest.TCBInfoSpec{FMSPC: [6]byte{1}, MRSignerSeam: e.pl.Template.MRSignerSeam, Levels: e.pl.UpToDateLevels(), Validity: tdxtest.Window(e.now, time.Hour)})
			c := *e.col
			c.TCBInfo = ti
			e.srv.Set(&c)
		}, check: verifier.CheckCollateral},
		{name: "MRSIGNERSEAM not Intel's", setup: func(e *env) { e.pl.Template.MRSignerSeam[0] = 1 }, check: verifier.CheckTCB},
		{name: "QE identity mismatch", setup: func(e *env) { e.pl.QE.MRSigner[0] ^= 1 }, check: verifier.CheckTCB},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if tc.setup != nil {
				tc.setup(e)
			}
			o := e.opts(tc.policy)
			if tc.verify != nil {
				tc.verify(e, o)
			}
			v, err := tdx.New(o)
			if err != nil {
				t.Fatal(err)
			}
			ch := challenge("x")
			var ev []byte
			if tc.ev != nil {
				ev = tc.ev(e)
			} else {
				ev = e.evidence(ch)
			}
			res, err := v.Verify(context.Background(), ev, expected(ch))
			if tc.check != 0 {
				if res != nil {
					t.Fatal("non-nil result with an error")
				}
				re := wantReject(t, err, tc.check)
				if tc.inShort != "" && !strings.Contains(re.Error(), tc.inShort) {
					t.Fatalf("%q does not name %q", re.Error(), tc.inShort)
				}
				if tc.check == verifier.CheckTCB && tc.inShort != "" {
					var te *tdx.TCBError
					if !errors.As(err, &te) {
						t.Fatalf("no *tdx.TCBError in %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Claims["tcb_status"] != tc.status || res.Status != tc.tier {
				t.Fatalf("status %q tier %v, want %q %v (claims %v)", res.Claims["tcb_status"], res.Status, tc.status, tc.tier, res.Claims)
			}
			if tc.version != "" && res.Claims["quote_version"] != tc.version {
				t.Fatalf("quote_version %q, want %q", res.Claims["quote_version"], tc.version)
			}
			if tc.inShort != "" && !strings.Contains(res.Claims["tcb_short"], tc.inShort) {
				t.Fatalf("tcb_short %q does not name %q", res.Claims["tcb_short"], tc.inShort)
			}
		})
	}
}

func TestPolicyValidation(t *testing.T) {
	for _, p := range []tdx.Policy{{MRTD: [][]byte{{1}}}, {XFAM: []byte{1}}, {MROwner: make([]byte, 47)}, {RTMR: [4][][]byte{3: {{1}}}}} {
		if _, err := tdx.New(&tdx.Config{Policy: p}); err == nil {
			t.Errorf("New accepted policy %+v", p)
		}
	}
	if _, err := tdx.New(&tdx.Config{TrustedRoots: []*x509.Certificate{}}); err == nil {
		t.Error("New accepted an empty, non-nil TrustedRoots")
	}
}

// The /dev/tdx_guest path of the attester, through a fake device, to the
// verifier.
func TestEndToEndDevice(t *testing.T) {
	e := newEnv(t)
	a, err := atdx.NewDeviceAttester(&tdxtest.Device{Platform: e.pl}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ch := challenge("device")
	ev, err := a.Attest(context.Background(), ch)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.verifier(tdx.Policy{}).Verify(context.Background(), ev, expected(ch)); err != nil {
		t.Fatal(err)
	}
	_, err = e.verifier(tdx.Policy{}).Verify(context.Background(), ev, expected(challenge("other")))
	wantReject(t, err, verifier.CheckChallenge)
}

// A zero Policy (and a nil Config) rejects a genuine quote; a forgotten
// MRTD policy is a rejection, never a quiet acceptance.
func TestZeroConfigRejects(t *testing.T) {
	e := newEnv(t)
	ch := challenge("zero")
	ev := e.evidence(ch)
	cfg := e.opts(tdx.Policy{})
	cfg.Policy = tdx.Policy{} // undo opts' default MRTD
	v, err := tdx.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(context.Background(), ev, expected(ch))
	checktest.Rejected(t, err, verifier.CheckMeasurement)

	v, err = tdx.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(context.Background(), ev, expected(ch))
	checktest.Rejected(t, err, verifier.CheckChain) // Intel's root only

	// The opt-in accepts it, with no Executables claim.
	cfg.Policy = tdx.Policy{AcceptAnyMRTD: true}
	v, err = tdx.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.Verify(context.Background(), ev, expected(ch))
	if err != nil || res.Status != verifier.TierAffirming || res.TrustVector.Executables != 0 {
		t.Fatalf("AcceptAnyMRTD: %+v, %v", res, err)
	}
	if _, err := tdx.New(&tdx.Config{Policy: tdx.Policy{AcceptAnyMRTD: true, MRTD: [][]byte{make([]byte, 48)}}}); err == nil {
		t.Error("AcceptAnyMRTD with an MRTD list accepted")
	}
}

// A debug TD accepted under AllowDebug is a warning, as in SEV-SNP.
func TestDebugTDWarning(t *testing.T) {
	e := newEnv(t)
	e.pl.Template.TDAttributes[0] |= 1
	ch := challenge("debug")
	res, err := e.verifier(tdx.Policy{AllowDebug: true}).Verify(context.Background(), e.evidence(ch), expected(ch))
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != verifier.TierWarning || res.TrustVector.RuntimeOpaque != 32 || res.Claims["debug"] != "true" {
		t.Fatalf("debug TD: status %v vector %+v", res.Status, res.TrustVector)
	}
	_, err = e.verifier(tdx.Policy{}).Verify(context.Background(), e.evidence(ch), expected(ch))
	checktest.Rejected(t, err, verifier.CheckDebug)
}
