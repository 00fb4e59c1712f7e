//go:build veraison

package veraison_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/veraison/ear"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/internal/expattest"
	"github.com/attested-tls/go-expat/internal/psatest"
	"github.com/attested-tls/go-expat/verifier"
	vear "github.com/attested-tls/go-expat/verifier/ear"
	"github.com/attested-tls/go-expat/verifier/veraison"
)

// psaProfile is the CoRIM profile of Veraison v0.0.2501's PSA scheme
// (scheme/psa-iot) for trust anchors and reference values.
const psaProfile = "http://arm.com/psa/iot/1"

// provisionPSA registers p's IAK (a trust anchor keyed by implementation ID
// and instance ID) and its software components (reference values keyed by
// implementation ID) with the live Veraison, as one unsigned CoRIM.
// Veraison matches every reference value registered for an implementation
// ID against the token, so each platform gets its own (random) one.
func provisionPSA(t testing.TB, p *psatest.Platform) {
	t.Helper()
	prov := liveEnv(t, "EXPAT_VERAISON_PROVISIONING_URL")
	c := p.Claims
	b64 := base64.StdEncoding.EncodeToString
	class := map[string]any{
		"id":     map[string]any{"type": "psa.impl-id", "value": b64(c.ImplementationID)},
		"vendor": "go-expat test",
		"model":  "software PSA platform",
	}
	var meas []any
	for _, s := range c.Software {
		meas = append(meas, map[string]any{
			"key":   map[string]any{"type": "psa.refval-id", "value": map[string]any{"label": s.Type, "version": s.Version, "signer-id": b64(s.SignerID)}},
			"value": map[string]any{"digests": []string{"sha-256:" + b64(s.Value)}},
		})
	}
	submitCoRIM(t, prov, psaProfile, map[string]any{
		"tag-identity": map[string]any{"id": newUUID(t), "version": 0},
		"entities":     []any{map[string]any{"name": "go-expat tests", "regid": "https://go-expat.example", "roles": []string{"tagCreator", "creator", "maintainer"}}},
		"triples": map[string]any{
			"reference-values": []any{map[string]any{"environment": map[string]any{"class": class}, "measurements": meas}},
			"attester-verification-keys": []any{map[string]any{
				"environment":       map[string]any{"class": class, "instance": map[string]any{"type": "ueid", "value": b64(c.InstanceID)}},
				"verification-keys": []any{map[string]any{"type": "pkix-base64-key", "value": p.IAKPEM()}},
			}},
		},
	})
}

type livePSA struct {
	p *psatest.Platform
	c *veraison.Client
	v *veraison.Verifier
}

// setupPSA returns a fresh test-only PSA platform of the given profile,
// provisioned into the live Veraison, and a Verifier using it.
func setupPSA(t testing.TB, profile string) *livePSA {
	t.Helper()
	url := liveEnv(t, "EXPAT_VERAISON_URL")
	p, err := psatest.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	p.Claims.Profile = profile
	provisionPSA(t, p)
	c, err := veraison.New(&veraison.Config{URL: url, EARKeys: liveKeys(t)})
	if err != nil {
		t.Fatal(err)
	}
	return &livePSA{p: p, c: c, v: veraison.NewVerifier(c)}
}

// wantAffirmingPSA checks a PSA appraisal that Veraison affirmed.
func wantAffirmingPSA(t testing.TB, res *verifier.Result, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("Veraison: %v", err)
	}
	tv := res.TrustVector
	if res.Status != verifier.TierAffirming || res.Technology != "psa" || res.Model != verifier.BackgroundCheck ||
		len(res.EAR) == 0 || res.Claims["submod.PSA_IOT.status"] != verifier.TierAffirming.String() ||
		tv.Executables != 2 || tv.Hardware != 2 || tv.InstanceIdentity != 2 {
		t.Fatalf("result %+v", res)
	}
}

func TestLivePSA(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	t.Run("affirming", func(t *testing.T) {
		for _, tc := range []struct{ profile, mediaType string }{
			{psatest.ProfileP2, psatest.MediaTypeP2},
			{psatest.ProfileP1, psatest.MediaTypeP1},
		} {
			t.Run(tc.profile, func(t *testing.T) {
				l := setupPSA(t, tc.profile)
				ch := tlsChallenge(t)
				ev, err := (&psatest.Attester{Platform: l.p}).Attest(ctx, ch)
				if err != nil {
					t.Fatal(err)
				}
				res, err := l.v.Verify(ctx, ev, &verifier.Expected{Challenge: ch})
				wantAffirmingPSA(t, res, err)
				if !cmw.EqualMediaTypes(res.MediaType, tc.mediaType) {
					t.Fatalf("media type %q, want %q", res.MediaType, tc.mediaType)
				}
				t.Logf("Veraison: %v %+v", res.Status, res.TrustVector)
			})
		}
	})

	l := setupPSA(t, psatest.ProfileP2)
	ch := tlsChallenge(t)
	otherIAK, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	unprovisioned, err := psatest.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		// platform returns the platform that attests (default: a clone of
		// the provisioned one, changed by mut).
		platform func() *psatest.Platform
		mut      func(c *psatest.Claims)
		// token overrides how the token is made from the nonce.
		token func(p *psatest.Platform, nonce []byte) ([]byte, error)
		want  attester.Challenge // the relying party's challenge, if not ch
		check verifier.Check
		// Why Veraison refused, from its EAR: the trust-vector claim
		// that must have value, and the "problem" policy claim.
		claim   string
		value   ear.TrustClaim
		problem string
	}{
		{name: "changed software measurement", mut: func(c *psatest.Claims) { c.Software[1].Value = bytes.Repeat([]byte{0x88}, 32) },
			check: verifier.CheckStatus, claim: "executables", value: ear.UnrecognizedRuntimeClaim},
		{name: "changed software version", mut: func(c *psatest.Claims) { c.Software[0].Version = "2.1.1" },
			check: verifier.CheckStatus, claim: "executables", value: ear.UnrecognizedRuntimeClaim},
		{name: "changed software signer", mut: func(c *psatest.Claims) { c.Software[2].SignerID = bytes.Repeat([]byte{0x99}, 32) },
			check: verifier.CheckStatus, claim: "executables", value: ear.UnrecognizedRuntimeClaim},
		{name: "software component removed", mut: func(c *psatest.Claims) { c.Software = c.Software[:3] },
			check: verifier.CheckStatus, claim: "executables", value: ear.UnrecognizedRuntimeClaim},
		{name: "recoverable PSA RoT debug lifecycle", mut: func(c *psatest.Claims) { c.Lifecycle = 0x5000 },
			check: verifier.CheckStatus, claim: "instance-identity", value: ear.UntrustworthyInstanceClaim},
		{name: "decommissioned lifecycle", mut: func(c *psatest.Claims) { c.Lifecycle = 0x6000 },
			check: verifier.CheckStatus, claim: "instance-identity", value: ear.UntrustworthyInstanceClaim},
		{name: "evidence bound to another challenge", want: tlsChallenge(t),
			check: verifier.CheckStatus, claim: "instance-identity", value: ear.CryptoValidationFailedClaim, problem: "integrity validation failed"},
		{name: "unprovisioned IAK (unknown instance)", platform: func() *psatest.Platform { return unprovisioned },
			check: verifier.CheckStatus, claim: "instance-identity", value: ear.CryptoValidationFailedClaim, problem: "no trust anchor for evidence"},
		{name: "unprovisioned IAK (provisioned instance ID, other key)",
			token: func(p *psatest.Platform, n []byte) ([]byte, error) { return p.TokenSignedBy(n, otherIAK) },
			check: verifier.CheckStatus, claim: "instance-identity", value: ear.CryptoValidationFailedClaim, problem: "integrity validation failed"},
		{name: "unprovisioned IAK (claims another implementation ID)", mut: func(c *psatest.Claims) { c.ImplementationID = bytes.Repeat([]byte{0x42}, 32) },
			check: verifier.CheckStatus, claim: "instance-identity", value: ear.CryptoValidationFailedClaim, problem: "no trust anchor for evidence"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p *psatest.Platform
			if tc.platform != nil {
				p = tc.platform()
			} else {
				p = l.p.Clone()
			}
			if tc.mut != nil {
				tc.mut(&p.Claims)
			}
			var ev []byte
			if tc.token != nil {
				rd, _ := ch.ReportData64()
				tok, err := tc.token(p, rd[:])
				if err != nil {
					t.Fatal(err)
				}
				if ev, err = cmw.MarshalEvidence(psatest.MediaTypeP2, tok); err != nil {
					t.Fatal(err)
				}
			} else {
				var err error
				if ev, err = (&psatest.Attester{Platform: p}).Attest(ctx, ch); err != nil {
					t.Fatal(err)
				}
			}
			want := ch
			if tc.want.Hash != 0 {
				want = tc.want
			}
			res, err := l.v.Verify(ctx, ev, &verifier.Expected{Challenge: want})
			var re *verifier.RejectedError
			if !errors.As(err, &re) || !errors.Is(err, verifier.ErrRejected) || res != nil {
				t.Fatalf("Veraison accepted or failed otherwise: %v %+v", err, res)
			}
			if re.Check != tc.check {
				t.Fatalf("check %q, want %q (%v)", re.Check, tc.check, err)
			}
			rd, _ := want.ReportData64()
			a, problem := rawAppraisal(t, ev, rd[:])
			got := map[string]ear.TrustClaim{"executables": a.TrustVector.Executables, "instance-identity": a.TrustVector.InstanceIdentity}[tc.claim]
			if got != tc.value || problem != tc.problem {
				t.Fatalf("Veraison's reason: %s=%v problem %q, want %v %q (%+v)", tc.claim, got, problem, tc.value, tc.problem, *a.TrustVector)
			}
			t.Logf("%v (%s: %v, problem %q)", err, tc.claim, got, problem)
		})
	}

	// The unchanged platform still affirms after the rejections above
	// (nothing in them changed what is provisioned).
	t.Run("provisioned platform still affirming", func(t *testing.T) {
		ev, err := (&psatest.Attester{Platform: l.p}).Attest(ctx, ch)
		if err != nil {
			t.Fatal(err)
		}
		res, err := l.v.Verify(ctx, ev, &verifier.Expected{Challenge: ch})
		wantAffirmingPSA(t, res, err)
	})

	t.Run("over attested TLS", func(t *testing.T) {
		pk := expattest.NewPKI(t)
		att, err := expattest.Connect(t, pk, &psatest.Attester{Platform: l.p}, l.v)
		if err != nil {
			t.Fatalf("setup: %v", err)
		}
		wantAffirmingPSA(t, att.Result, nil)

		q := l.p.Clone()
		q.Claims.Software[0].Value = bytes.Repeat([]byte{0x77}, 32)
		_, err = expattest.Connect(t, pk, &psatest.Attester{Platform: q}, l.v)
		expattest.WantRejected(t, err, verifier.CheckStatus)
	})

	t.Run("passport over attested TLS, checked by verifier/ear", func(t *testing.T) {
		pk := expattest.NewPKI(t)
		ev, err := vear.New(&vear.Config{Keys: liveKeys(t)})
		if err != nil {
			t.Fatal(err)
		}
		att, err := expattest.Connect(t, pk, &veraison.Passport{Evidence: &psatest.Attester{Platform: l.p}, Client: l.c}, ev)
		if err != nil {
			t.Fatalf("setup: %v", err)
		}
		if att.Result.Model != verifier.Passport || att.Result.Status != verifier.TierAffirming {
			t.Fatalf("result %+v", att.Result)
		}
		// A platform Veraison does not affirm gets no passport to present.
		q := l.p.Clone()
		q.Claims.Lifecycle = 0x5000
		_, err = expattest.Connect(t, pk, &veraison.Passport{Evidence: &psatest.Attester{Platform: q}, Client: l.c}, ev)
		if err == nil {
			t.Fatal("a debug-lifecycle platform attested through a passport")
		}
	})
}

// TestLivePSATFMProfile records what Veraison v0.0.2501 does with the IETF
// PSA profile (RFC 9783, "tag:psacertified.org,2023:psa#tfm"): its PSA
// scheme lists the media type, but the psatoken it is built with knows only
// the "PSA_IOT_PROFILE_1" and "http://arm.com/psa/2.0.0" profile claims, so
// a correctly signed token of a provisioned platform is refused. If this
// test starts failing because Veraison affirms, the profile is supported.
func TestLivePSATFMProfile(t *testing.T) {
	l := setupPSA(t, psatest.ProfileTFM)
	ch := tlsChallenge(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ev, err := (&psatest.Attester{Platform: l.p}).Attest(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	res, err := l.v.Verify(ctx, ev, &verifier.Expected{Challenge: ch})
	var re *verifier.RejectedError
	if !errors.As(err, &re) || res != nil {
		t.Fatalf("Veraison's behaviour changed: %v %+v", err, res)
	}
	rd, _ := ch.ReportData64()
	a, problem := rawAppraisal(t, ev, rd[:])
	if a.TrustVector.InstanceIdentity != ear.CryptoValidationFailedClaim || problem != "could not establish identity from evidence" {
		t.Fatalf("Veraison's reason changed: %+v %q", *a.TrustVector, problem)
	}
	t.Logf("TFM profile: %v (problem %q)", err, problem)
}

// rawAppraisal submits ev to the live Veraison in a session of the given
// nonce with plain net/http (not package veraison) and returns the
// signature-checked EAR whatever its status, so that tests can tell why
// Veraison rejected something: its PSA submodule's trust vector and the
// "problem" policy claim Veraison adds for bad evidence.
func rawAppraisal(t testing.TB, ev, nonce []byte) (*ear.Appraisal, string) {
	t.Helper()
	base := liveEnv(t, "EXPAT_VERAISON_URL")
	post := func(u, ctype string, body []byte) (*http.Response, []byte) {
		req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		req.Header.Set("Accept", "application/vnd.veraison.challenge-response-session+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp, b
	}
	resp, body := post(base+"/challenge-response/v1/newSession?nonce="+url.QueryEscape(base64.URLEncoding.EncodeToString(nonce)), "", nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("new session: HTTP %d: %s", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	sess := resp.Request.URL.ResolveReference(loc).String()
	defer func() {
		req, _ := http.NewRequest(http.MethodDelete, sess, nil)
		if r, err := http.DefaultClient.Do(req); err == nil {
			r.Body.Close()
		}
	}()
	resp, body = post(sess, "application/cmw+cbor", ev)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("submit: HTTP %d: %s", resp.StatusCode, body)
	}
	var s struct {
		Status string `json:"status"`
		Result string `json:"result"`
	}
	if err := json.Unmarshal(body, &s); err != nil || s.Status != "complete" {
		t.Fatalf("session %s: %v", body, err)
	}
	var r ear.AttestationResult
	if err := r.Verify([]byte(s.Result), jwa.ES256(), liveKey(t)); err != nil {
		t.Fatalf("EAR: %v", err)
	}
	a := r.Submods["PSA_IOT"]
	if a == nil || a.TrustVector == nil || a.Status == nil {
		t.Fatalf("EAR without a PSA_IOT appraisal: %s", s.Result)
	}
	problem := ""
	if pc := a.VeraisonPolicyClaims; pc != nil {
		problem = fmt.Sprint((*pc)["problem"])
	}
	return a, problem
}

// TestLivePSAInstanceIDNotBoundToIAK records that Veraison v0.0.2501 uses
// the PSA instance ID only as a lookup key: it does not check that it is
// 0x01 || hash of the IAK, so a trust anchor provisioned under an instance
// ID that the IAK does not derive still affirms. Provisioning is therefore
// the only place where the instance ID and the key are tied together.
func TestLivePSAInstanceIDNotBoundToIAK(t *testing.T) {
	url := liveEnv(t, "EXPAT_VERAISON_URL")
	p, err := psatest.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	derived := bytes.Clone(p.Claims.InstanceID)
	if _, err := rand.Read(p.Claims.InstanceID[1:]); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(derived, p.Claims.InstanceID) {
		t.Fatal("instance ID unchanged")
	}
	provisionPSA(t, p)
	c, err := veraison.New(&veraison.Config{URL: url, EARKeys: liveKeys(t)})
	if err != nil {
		t.Fatal(err)
	}
	ch := tlsChallenge(t)
	ev, err := (&psatest.Attester{Platform: p}).Attest(context.Background(), ch)
	if err != nil {
		t.Fatal(err)
	}
	res, err := veraison.NewVerifier(c).Verify(context.Background(), ev, &verifier.Expected{Challenge: ch})
	if err != nil || res.Status != verifier.TierAffirming {
		t.Fatalf("Veraison's behaviour changed (it now checks the instance ID?): %v", err)
	}
}

// BenchmarkLivePSAEndToEnd: build and sign a PSA token + appraisal by the
// live Veraison, one at a time; compare with BenchmarkLiveEndToEnd (CCA)
// in the same run.
func BenchmarkLivePSAEndToEnd(b *testing.B) {
	l := setupPSA(b, psatest.ProfileP2)
	ch := tlsChallenge(b)
	a := &psatest.Attester{Platform: l.p}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		ev, err := a.Attest(ctx, ch)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := l.v.Verify(ctx, ev, &verifier.Expected{Challenge: ch}); err != nil {
			b.Fatal(err)
		}
	}
}
