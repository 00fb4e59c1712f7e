package cca_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/ccatoken/platform"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/attester/cca/ccatest"
	"github.com/attested-tls/go-expat/attester/cca/wire"
	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/internal/checktest"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/cca"
)

func testChallenge(t testing.TB, seed string) attester.Challenge {
	t.Helper()
	b := sha256.Sum256([]byte("binding " + seed))
	k := sha256.Sum256([]byte("aik " + seed))
	return attester.Challenge{Hash: crypto.SHA256, Binding: b[:], AIKPubHash: k[:]}
}

func reportData(t testing.TB, ch attester.Challenge) []byte {
	t.Helper()
	rd, err := ch.ReportData64()
	if err != nil {
		t.Fatal(err)
	}
	return rd[:]
}

// policyFor accepts exactly what p reports.
func policyFor(p *ccatest.Platform) cca.Policy {
	c := p.Claims
	var sw []cca.SoftwareComponent
	for _, s := range c.Software {
		sw = append(sw, cca.SoftwareComponent{Type: s.Type, Value: s.Value, SignerID: s.SignerID, Version: s.Version})
	}
	return cca.Policy{
		RIMs:                  [][]byte{c.RIM},
		REMs:                  [][4][]byte{c.REMs},
		PersonalizationValues: [][]byte{c.PersonalizationValue},
		Software:              sw,
		PlatformConfigs:       [][]byte{c.Config},
	}
}

func newPlatform(t testing.TB) *ccatest.Platform {
	t.Helper()
	p, err := ccatest.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func wrap(t testing.TB, mt string, tok []byte, ind cmw.Indicator) []byte {
	t.Helper()
	r, err := cmw.NewRecord(mt, tok, ind)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustVerifier(t testing.TB, cfg *cca.Config) *cca.Verifier {
	t.Helper()
	v, err := cca.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// splice builds a token from the platform token of a and the realm token of b.
func splice(t testing.TB, a, b []byte) []byte {
	t.Helper()
	ta, err := wire.ParseToken(a)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := wire.ParseToken(b)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cbor.Marshal(cbor.Tag{Number: 399, Content: map[uint64][]byte{44234: ta.PlatformToken, 44241: tb.RealmToken}})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestVerify(t *testing.T) {
	p := newPlatform(t)
	other := newPlatform(t) // a genuine-looking platform nobody trusts
	ch := testChallenge(t, "conn-1")
	rd := reportData(t, ch)
	good, err := p.Token(rd)
	if err != nil {
		t.Fatal(err)
	}
	evilKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	trusted := []cca.TrustedKey{{Name: "test-cpak", Key: p.CPAK()}}

	tokenWith := func(mut func(c *ccatest.Claims)) []byte {
		q := p.Clone()
		mut(&q.Claims)
		tok, err := q.Token(rd)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	otherTok, err := other.Token(rd)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		cmw       []byte
		ch        attester.Challenge
		keys      []cca.TrustedKey
		pol       func(*cca.Policy)
		wantCheck verifier.Check // 0 = success
	}{
		{name: "good", cmw: wrap(t, cmw.MediaTypeCCA, good, cmw.Evidence)},
		{name: "good without indicator", cmw: wrap(t, cmw.MediaTypeCCA, good, 0)},
		{name: "wrong challenge (other connection)", cmw: wrap(t, cmw.MediaTypeCCA, good, cmw.Evidence), ch: testChallenge(t, "conn-2"), wantCheck: verifier.CheckChallenge},
		{name: "untrusted CPAK", cmw: wrap(t, cmw.MediaTypeCCA, otherTok, cmw.Evidence), wantCheck: verifier.CheckKey},
		{name: "platform token re-signed by attacker", cmw: func() []byte {
			tok, err := p.TokenSignedBy(rd, evilKey, p.RAKSigner())
			if err != nil {
				t.Fatal(err)
			}
			return wrap(t, cmw.MediaTypeCCA, tok, cmw.Evidence)
		}(), wantCheck: verifier.CheckKey},
		{name: "realm token signed by another key than the RAK", cmw: func() []byte {
			tok, err := p.TokenSignedBy(rd, p.CPAKSigner(), evilKey)
			if err != nil {
				t.Fatal(err)
			}
			return wrap(t, cmw.MediaTypeCCA, tok, cmw.Evidence)
		}(), wantCheck: verifier.CheckSignature},
		{name: "realm token of another platform spliced in (RAK binding)", cmw: wrap(t, cmw.MediaTypeCCA, splice(t, good, otherTok), cmw.Evidence), wantCheck: verifier.CheckSignature},
		{name: "trusted key bound to another instance", cmw: wrap(t, cmw.MediaTypeCCA, good, cmw.Evidence),
			keys: []cca.TrustedKey{{Name: "pinned", Key: p.CPAK(), InstanceID: other.Claims.InstanceID}}, wantCheck: verifier.CheckKey},
		{name: "trusted key bound to this implementation", cmw: wrap(t, cmw.MediaTypeCCA, good, cmw.Evidence),
			keys: []cca.TrustedKey{{Name: "pinned", Key: p.CPAK(), ImplementationID: p.Claims.ImplementationID, InstanceID: p.Claims.InstanceID}}},
		{name: "wrong RIM", cmw: wrap(t, cmw.MediaTypeCCA, tokenWith(func(c *ccatest.Claims) { c.RIM = bytes.Repeat([]byte{7}, 48) }), cmw.Evidence), wantCheck: verifier.CheckMeasurement},
		{name: "any RIM", cmw: wrap(t, cmw.MediaTypeCCA, tokenWith(func(c *ccatest.Claims) { c.RIM = bytes.Repeat([]byte{7}, 48) }), cmw.Evidence),
			pol: func(p *cca.Policy) { p.RIMs, p.AcceptAnyRIM = nil, true }},
		{name: "wrong REM", cmw: wrap(t, cmw.MediaTypeCCA, tokenWith(func(c *ccatest.Claims) { c.REMs[3] = bytes.Repeat([]byte{9}, 48) }), cmw.Evidence), wantCheck: verifier.CheckMeasurement},
		{name: "wrong personalization value", cmw: wrap(t, cmw.MediaTypeCCA, tokenWith(func(c *ccatest.Claims) { c.PersonalizationValue = make([]byte, 64) }), cmw.Evidence), wantCheck: verifier.CheckPersonalization},
		{name: "debug lifecycle (non-CCA platform debug)", cmw: wrap(t, cmw.MediaTypeCCA, tokenWith(func(c *ccatest.Claims) { c.Lifecycle = platform.LifecycleNonCCAPlatformDebugMin }), cmw.Evidence), wantCheck: verifier.CheckDebug},
		{name: "debug lifecycle (recoverable CCA debug)", cmw: wrap(t, cmw.MediaTypeCCA, tokenWith(func(c *ccatest.Claims) { c.Lifecycle = platform.LifecycleRecoverableCCAPlatformDebugMin + 3 }), cmw.Evidence), wantCheck: verifier.CheckDebug},
		{name: "debug lifecycle allowed explicitly", cmw: wrap(t, cmw.MediaTypeCCA, tokenWith(func(c *ccatest.Claims) { c.Lifecycle = platform.LifecycleNonCCAPlatformDebugMin }), cmw.Evidence),
			pol: func(p *cca.Policy) {
				p.Lifecycles = []platform.LifeCycleState{platform.StateSecured, platform.StateNonCCAPlatformDebug}
			}},
		{name: "non-secured lifecycle (provisioning)", cmw: wrap(t, cmw.MediaTypeCCA, tokenWith(func(c *ccatest.Claims) { c.Lifecycle = platform.LifecycleRotProvisioningMin }), cmw.Evidence), wantCheck: verifier.CheckLifecycle},
		{name: "decommissioned", cmw: wrap(t, cmw.MediaTypeCCA, tokenWith(func(c *ccatest.Claims) { c.Lifecycle = platform.LifecycleDecommissionedMin }), cmw.Evidence), wantCheck: verifier.CheckLifecycle},
		{name: "unknown platform firmware", cmw: wrap(t, cmw.MediaTypeCCA, tokenWith(func(c *ccatest.Claims) { c.Software[1].Value = make([]byte, 32) }), cmw.Evidence), wantCheck: verifier.CheckMeasurement},
		{name: "firmware version differs", cmw: wrap(t, cmw.MediaTypeCCA, tokenWith(func(c *ccatest.Claims) { c.Software[0].Version = "0.9.0" }), cmw.Evidence), wantCheck: verifier.CheckMeasurement},
		{name: "reference firmware not reported", cmw: wrap(t, cmw.MediaTypeCCA, tokenWith(func(c *ccatest.Claims) { c.Software = c.Software[:1] }), cmw.Evidence), wantCheck: verifier.CheckMeasurement},
		{name: "wrong platform config", cmw: wrap(t, cmw.MediaTypeCCA, tokenWith(func(c *ccatest.Claims) { c.Config = []byte("other") }), cmw.Evidence), wantCheck: verifier.CheckConfig},
		{name: "zero policy accepts nothing", cmw: wrap(t, cmw.MediaTypeCCA, good, cmw.Evidence), pol: func(p *cca.Policy) { *p = cca.Policy{} }, wantCheck: verifier.CheckMeasurement},
		{name: "wrong media type", cmw: wrap(t, cmw.MediaTypeTDX, good, cmw.Evidence), wantCheck: verifier.CheckFormat},
		{name: "wrong indicator", cmw: wrap(t, cmw.MediaTypeCCA, good, cmw.AttestationResults), wantCheck: verifier.CheckFormat},
		{name: "not a token", cmw: wrap(t, cmw.MediaTypeCCA, []byte{0xd9, 0x01, 0x8f, 0xa0}, cmw.Evidence), wantCheck: verifier.CheckFormat},
		{name: "truncated token", cmw: wrap(t, cmw.MediaTypeCCA, good[:len(good)-1], cmw.Evidence), wantCheck: verifier.CheckFormat},
		{name: "trailing byte", cmw: wrap(t, cmw.MediaTypeCCA, append(bytes.Clone(good), 0), cmw.Evidence), wantCheck: verifier.CheckFormat},
		{name: "not a CMW", cmw: good, wantCheck: verifier.CheckFormat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pol := policyFor(p)
			if tc.pol != nil {
				tc.pol(&pol)
			}
			keys := trusted
			if tc.keys != nil {
				keys = tc.keys
			}
			v := mustVerifier(t, &cca.Config{TrustedKeys: keys, Policy: pol})
			ech := ch
			if tc.ch.Hash != 0 {
				ech = tc.ch
			}
			now := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
			res, err := v.Verify(context.Background(), tc.cmw, &verifier.Expected{Challenge: ech, Now: now})
			if tc.wantCheck == 0 {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if res.Technology != "cca" || res.Status != verifier.TierAffirming || res.Model != verifier.BackgroundCheck || !res.AppraisedAt.Equal(now) {
					t.Fatalf("unexpected result %+v", res)
				}
				return
			}
			if res != nil {
				t.Fatalf("got a result with error %v", err)
			}
			var re *verifier.RejectedError
			if !errors.As(err, &re) || !errors.Is(err, verifier.ErrRejected) {
				t.Fatalf("got %v, want a RejectedError", err)
			}
			if re.Check != tc.wantCheck {
				t.Fatalf("check %q (%v), want %q", re.Check, err, tc.wantCheck)
			}
			t.Log(err)
		})
	}
}

func TestResultContents(t *testing.T) {
	p := newPlatform(t)
	ch := testChallenge(t, "x")
	tok, err := p.Token(reportData(t, ch))
	if err != nil {
		t.Fatal(err)
	}
	v := mustVerifier(t, &cca.Config{TrustedKeys: []cca.TrustedKey{{Name: "k1", Key: p.CPAK()}}, Policy: policyFor(p), Name: "local"})
	res, err := v.Verify(context.Background(), wrap(t, cmw.MediaTypeCCA, tok, cmw.Evidence), &verifier.Expected{Challenge: ch})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]byte{}
	for _, x := range res.Measurements {
		m[x.Name] = x.Value
	}
	if !bytes.Equal(m["realm.rim"], p.Claims.RIM) || !bytes.Equal(m["realm.rem3"], p.Claims.REMs[3]) ||
		!bytes.Equal(m["realm.personalization-value"], p.Claims.PersonalizationValue) ||
		!bytes.Equal(m["platform.sw.0.BL@1.0.0"], p.Claims.Software[0].Value) {
		t.Fatalf("measurements %v", res.Measurements)
	}
	if res.Claims["platform.cpak"] != "k1" || res.Claims["platform.lifecycle"] != "0x3000 (secured)" || res.Verifier != "local" || res.AppraisedAt.IsZero() {
		t.Fatalf("claims %v", res.Claims)
	}
}

// The zero Config (and nil) trusts no CPAK and rejects a genuine token; a
// Config with a key but a forgotten policy rejects it too.
func TestZeroConfigRejects(t *testing.T) {
	p := newPlatform(t)
	ch := testChallenge(t, "zero")
	tok, err := p.Token(reportData(t, ch))
	if err != nil {
		t.Fatal(err)
	}
	ev := wrap(t, cmw.MediaTypeCCA, tok, cmw.Evidence)
	exp := &verifier.Expected{Challenge: ch}
	for _, cfg := range []*cca.Config{nil, {}} {
		_, err := mustVerifier(t, cfg).Verify(context.Background(), ev, exp)
		checktest.Rejected(t, err, verifier.CheckKey)
	}
	_, err = mustVerifier(t, &cca.Config{TrustedKeys: []cca.TrustedKey{{Key: p.CPAK()}}}).Verify(context.Background(), ev, exp)
	checktest.Rejected(t, err, verifier.CheckMeasurement)

	// The opt-ins accept it, with no Executables claim.
	res, err := mustVerifier(t, &cca.Config{TrustedKeys: []cca.TrustedKey{{Key: p.CPAK()}},
		Policy: cca.Policy{AcceptAnyRIM: true, AcceptAnySoftware: true}}).Verify(context.Background(), ev, exp)
	if err != nil || res.TrustVector.Executables != 0 {
		t.Fatalf("opt-ins: %+v, %v", res, err)
	}
}

func TestNewRejectsMalformed(t *testing.T) {
	for name, cfg := range map[string]*cca.Config{
		"nil key":                 {TrustedKeys: []cca.TrustedKey{{Name: "nil"}}},
		"any RIM and RIMs":        {Policy: cca.Policy{AcceptAnyRIM: true, RIMs: [][]byte{{1}}}},
		"any software and a list": {Policy: cca.Policy{AcceptAnySoftware: true, Software: []cca.SoftwareComponent{{Type: "BL"}}}},
	} {
		if _, err := cca.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestVerifyContextAndNil(t *testing.T) {
	p := newPlatform(t)
	v := mustVerifier(t, &cca.Config{TrustedKeys: []cca.TrustedKey{{Key: p.CPAK()}}, Policy: policyFor(p)})
	// A well-formed record of the type, so that the CMW layer passes.
	rec, err := cmw.MarshalEvidence(cmw.MediaTypeCCA, []byte{0x82})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), rec, nil); err == nil {
		t.Fatal("nil Expected accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = v.Verify(ctx, rec, &verifier.Expected{Challenge: testChallenge(t, "a")})
	if !errors.Is(err, verifier.ErrUnavailable) {
		t.Fatalf("canceled context: %v", err)
	}
	if _, err := v.Verify(context.Background(), rec, &verifier.Expected{}); err == nil || errors.Is(err, verifier.ErrRejected) {
		t.Fatalf("invalid challenge: %v", err)
	}
}
