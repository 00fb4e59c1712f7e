package local_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/expat/expattest/testkit"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/ear"
	"github.com/attested-tls/go-expat/verifier/local"
	"github.com/attested-tls/go-expat/verifier/veraison"
)

// TestBackgroundCheck: veraison.NewVerifier, the relying party's Verifier
// for a remote Veraison, appraises test-kit Evidence through the service.
func TestBackgroundCheck(t *testing.T) {
	e := newEnv(t)
	ch := challenge(t)
	ev, err := e.att.Attest(context.Background(), ch)
	if err != nil {
		t.Fatal(err)
	}
	res, err := veraison.NewVerifier(e.client).Verify(context.Background(), ev, &verifier.Expected{Challenge: ch})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if res.Status != verifier.TierAffirming || res.Model != verifier.BackgroundCheck || len(res.EAR) == 0 {
		t.Fatalf("result %+v", res)
	}
	if got := res.Claims["submod.test-kit.status"]; got != "affirming" {
		t.Fatalf("submod.test-kit.status = %q, want affirming", got)
	}
	if res.TrustVector.InstanceIdentity != 2 || res.TrustVector.Hardware != 2 {
		t.Fatalf("trust vector %+v, want the test kit's", res.TrustVector)
	}
	// The EAR is a valid passport for this challenge, checked independently.
	rec, err := cmw.NewRecord(cmw.MediaTypeEAR, res.EAR, cmw.AttestationResults)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := rec.MarshalCBOR()
	if _, err := e.earVerifier().Verify(context.Background(), b, &verifier.Expected{Challenge: ch}); err != nil {
		t.Fatalf("ear.Verifier on the service's EAR: %v", err)
	}
	// The client deletes its session in the background, within
	// veraison.DeleteTimeout.
	deadline := time.Now().Add(veraison.DeleteTimeout + time.Second)
	for e.svc.Sessions() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := e.svc.Sessions(); n != 0 {
		t.Fatalf("%d sessions left after the client deleted its own", n)
	}
}

// TestWellKnown: a client that opts into trusting the service's key fetches
// the EAR key from the discovery document (trust on first use) and
// appraises with it; the document is Veraison-shaped.
func TestWellKnown(t *testing.T) {
	e := newEnv(t)
	c, err := veraison.New(&veraison.Config{URL: e.srv.URL, InsecureTrustServiceKey: true})
	if err != nil {
		t.Fatal(err)
	}
	ch := challenge(t)
	ev, _ := e.att.Attest(context.Background(), ch)
	if _, err := c.Appraise(context.Background(), ev, rd64(t, ch)); err != nil {
		t.Fatalf("Appraise with the fetched key: %v", err)
	}
	resp, body := e.do(t, http.MethodGet, local.PathWellKnown, map[string]string{"Accept": local.MediaTypeDiscovery}, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != local.MediaTypeDiscovery {
		t.Fatalf("HTTP %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	keys, err := ear.KeysFromJWKS([]byte(`{"keys":[` + string(mustField(t, body, "ear-verification-key")) + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	if keys[0].ID != "local-test-key" || !keys[0].Key.(*ecdsa.PublicKey).Equal(&e.earKey.PublicKey) {
		t.Fatalf("published key %+v", keys[0])
	}
	var mts []string
	json.Unmarshal(mustField(t, body, "media-types"), &mts)
	if len(mts) != 1 || mts[0] != cmw.MediaTypeTestKit {
		t.Fatalf("media-types %q", mts)
	}
	if !bytes.Contains(body, []byte(`"alg":"ES256"`)) || bytes.Contains(body, []byte(`"d":`)) {
		t.Fatalf("JWK without alg or with private part: %s", body)
	}
}

func mustField(t testing.TB, doc []byte, name string) json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil || m[name] == nil {
		t.Fatalf("no %q in %s (%v)", name, doc, err)
	}
	return m[name]
}

// TestPassport: veraison.Passport obtains the service's EAR for its own
// Evidence; the relying party checks it offline with verifier/ear and with
// veraison.NewVerifier (which contacts nobody for an EAR record).
func TestPassport(t *testing.T) {
	e := newEnv(t)
	ch := challenge(t)
	p := &veraison.Passport{Evidence: e.att, Client: e.client}
	rec, err := p.Attest(context.Background(), ch)
	if err != nil {
		t.Fatalf("Passport.Attest: %v", err)
	}
	res, err := e.earVerifier().Verify(context.Background(), rec, &verifier.Expected{Challenge: ch})
	if err != nil {
		t.Fatalf("ear.Verifier: %v", err)
	}
	if res.Model != verifier.Passport || res.Status != verifier.TierAffirming || res.Verifier != "local-test" {
		t.Fatalf("result %+v", res)
	}
	if _, err := veraison.NewVerifier(e.client).Verify(context.Background(), rec, &verifier.Expected{Challenge: ch}); err != nil {
		t.Fatalf("veraison.Verifier on the passport: %v", err)
	}
	// Presented for another connection, it is refused.
	_, err = e.earVerifier().Verify(context.Background(), rec, &verifier.Expected{Challenge: challenge(t)})
	var re *verifier.RejectedError
	if !errors.As(err, &re) || re.Check != verifier.CheckNonce {
		t.Fatalf("passport for another challenge: %v, want a nonce rejection", err)
	}
}

// TestOverAttestedTLS: the same, over a real attested TLS 1.3 connection
// with package expat.
func TestOverAttestedTLS(t *testing.T) {
	e := newEnv(t)
	t.Run("background check", func(t *testing.T) {
		att, err := attestedOverTLS(t, e.att, veraison.NewVerifier(e.client))
		if err != nil {
			t.Fatalf("attested connection: %v", err)
		}
		if att.Result.Status != verifier.TierAffirming || att.Result.Model != verifier.BackgroundCheck || len(att.Result.EAR) == 0 {
			t.Fatalf("attestation %+v", att.Result)
		}
	})
	t.Run("passport", func(t *testing.T) {
		att, err := attestedOverTLS(t, &veraison.Passport{Evidence: e.att, Client: e.client}, e.earVerifier())
		if err != nil {
			t.Fatalf("attested connection: %v", err)
		}
		if att.Result.Model != verifier.Passport || att.Result.Verifier != "local-test" {
			t.Fatalf("attestation %+v", att.Result)
		}
	})
	t.Run("untrusted attester rejected", func(t *testing.T) {
		k, _ := testkit.GenerateKey()
		_, err := attestedOverTLS(t, &testkit.Attester{Key: k}, veraison.NewVerifier(e.client))
		if !errors.Is(err, verifier.ErrRejected) {
			t.Fatalf("got %v, want a rejection", err)
		}
	})
	t.Run("replayed evidence rejected", func(t *testing.T) {
		old := challenge(t)
		_, err := attestedOverTLS(t, &testkit.Attester{Key: e.att.Key, FixedChallenge: &old}, veraison.NewVerifier(e.client))
		if !errors.Is(err, verifier.ErrRejected) {
			t.Fatalf("got %v, want a rejection", err)
		}
	})
}

// TestRejections: every rejection reaches the relying party as a
// rejection (or, where the service could not process the request, as a
// failure), never as an accepted result.
func TestRejections(t *testing.T) {
	untrusted, _ := testkit.GenerateKey()
	tests := []struct {
		name      string
		opts      []envOpt
		evidence  func(e *env, ch attester.Challenge) []byte
		wantCheck verifier.Check // RejectedError.Check; 0 means ErrUnavailable
	}{
		{
			name: "wrong nonce",
			evidence: func(e *env, ch attester.Challenge) []byte {
				b, _ := e.att.Attest(context.Background(), challenge(t))
				return b
			},
			wantCheck: verifier.CheckStatus,
		},
		{
			name: "untrusted evidence key",
			evidence: func(e *env, ch attester.Challenge) []byte {
				b, _ := (&testkit.Attester{Key: untrusted}).Attest(context.Background(), ch)
				return b
			},
			wantCheck: verifier.CheckStatus,
		},
		{
			name: "forged signature under a trusted kid",
			evidence: func(e *env, ch attester.Challenge) []byte {
				b, _ := (&testkit.Attester{Key: e.att.Key, SignWith: untrusted}).Attest(context.Background(), ch)
				return b
			},
			wantCheck: verifier.CheckStatus,
		},
		{
			name:      "unknown media type",
			evidence:  func(e *env, ch attester.Challenge) []byte { return otherRecord(t) },
			wantCheck: verifier.CheckFormat,
		},
		{
			name: "reference measurement mismatch",
			opts: []envOpt{func(c *local.Config, d *verifier.Dispatch) {
				tv := d.Verifiers[cmw.MediaTypeTestKit].(*testkit.Verifier)
				tv.ReferenceMeasurements = []verifier.Measurement{{Name: "kernel", Value: bytes.Repeat([]byte{1}, 32)}}
			}},
			evidence: func(e *env, ch attester.Challenge) []byte {
				a := *e.att
				a.Measurements = []verifier.Measurement{{Name: "kernel", Value: bytes.Repeat([]byte{2}, 32)}}
				b, _ := a.Attest(context.Background(), ch)
				return b
			},
			wantCheck: verifier.CheckStatus,
		},
		{
			name: "oversized evidence",
			opts: []envOpt{func(c *local.Config, d *verifier.Dispatch) { c.MaxEvidenceSize = 2048 }},
			evidence: func(e *env, ch attester.Challenge) []byte {
				a := *e.att
				a.PadTo = 4096
				b, _ := a.Attest(context.Background(), ch)
				return b
			},
		},
		{
			name: "appraiser unavailable",
			opts: []envOpt{func(c *local.Config, d *verifier.Dispatch) {
				d.Verifiers[cmw.MediaTypeTestKit] = verifierFunc(func(context.Context, []byte, *verifier.Expected) (*verifier.Result, error) {
					return nil, &verifier.UnavailableError{Reason: "collateral service down", Retryable: true}
				})
			}},
			evidence: func(e *env, ch attester.Challenge) []byte { b, _ := e.att.Attest(context.Background(), ch); return b },
		},
		{
			name: "appraiser too slow",
			opts: []envOpt{func(c *local.Config, d *verifier.Dispatch) {
				c.AppraisalTimeout = 50 * time.Millisecond
				d.Verifiers[cmw.MediaTypeTestKit] = verifierFunc(func(ctx context.Context, _ []byte, _ *verifier.Expected) (*verifier.Result, error) {
					<-ctx.Done()
					return nil, &verifier.UnavailableError{Reason: "timeout", Err: ctx.Err()}
				})
			}},
			evidence: func(e *env, ch attester.Challenge) []byte { b, _ := e.att.Attest(context.Background(), ch); return b },
		},
		{
			name: "appraiser returns nothing",
			opts: []envOpt{func(c *local.Config, d *verifier.Dispatch) {
				d.Verifiers[cmw.MediaTypeTestKit] = verifierFunc(func(context.Context, []byte, *verifier.Expected) (*verifier.Result, error) { return nil, nil })
			}},
			evidence: func(e *env, ch attester.Challenge) []byte { b, _ := e.att.Attest(context.Background(), ch); return b },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.opts...)
			ch := challenge(t)
			ev := tt.evidence(e, ch)
			res, err := veraison.NewVerifier(e.client).Verify(context.Background(), ev, &verifier.Expected{Challenge: ch})
			if res != nil || err == nil {
				t.Fatalf("accepted: %+v", res)
			}
			var re *verifier.RejectedError
			switch {
			case tt.wantCheck == 0:
				if !errors.Is(err, verifier.ErrUnavailable) {
					t.Fatalf("got %v, want ErrUnavailable", err)
				}
			case !errors.As(err, &re) || re.Check != tt.wantCheck:
				t.Fatalf("got %v, want a rejection with Check %q", err, tt.wantCheck)
			}
		})
	}
}

type verifierFunc func(context.Context, []byte, *verifier.Expected) (*verifier.Result, error)

func (f verifierFunc) Verify(ctx context.Context, b []byte, exp *verifier.Expected) (*verifier.Result, error) {
	return f(ctx, b, exp)
}

// TestRejectionEAR: a rejected appraisal answers a signed EAR whose status
// is contraindicated and whose nonce is the session's, so it can neither
// pass as affirming nor be used for another session.
func TestRejectionEAR(t *testing.T) {
	e := newEnv(t)
	ch := challenge(t)
	ev, _ := e.att.Attest(context.Background(), challenge(t)) // another nonce
	path := e.newSession(t, rd64(t, ch))
	resp, body := e.do(t, http.MethodPost, path, map[string]string{"Content-Type": local.MediaTypeCMWCBOR}, ev)
	s := decodeSession(t, resp, body)
	if resp.StatusCode != 200 || s.Status != "complete" || s.Result == nil {
		t.Fatalf("HTTP %d, session %+v", resp.StatusCode, s)
	}
	parts := strings.Split(*s.Result, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Nonce   string `json:"eat_nonce"`
		Submods map[string]struct {
			Status string `json:"ear.status"`
		} `json:"submods"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	if claims.Submods["test-kit"].Status != "contraindicated" {
		t.Fatalf("submods %+v, want test-kit contraindicated", claims.Submods)
	}
	if claims.Nonce != base64.RawURLEncoding.EncodeToString(rd64(t, ch)) {
		t.Fatalf("eat_nonce %q is not the session's", claims.Nonce)
	}
	rec, _ := cmw.NewRecord(cmw.MediaTypeEAR, []byte(*s.Result), cmw.AttestationResults)
	b, _ := rec.MarshalCBOR()
	_, err = e.earVerifier().Verify(context.Background(), b, &verifier.Expected{Challenge: ch})
	var re *verifier.RejectedError
	if !errors.As(err, &re) || re.Check != verifier.CheckStatus {
		t.Fatalf("ear.Verifier on a rejection EAR: %v, want a status rejection", err)
	}
}

// TestUnavailableRetried: a 500 (appraisal could not be done) leaves the
// session failed and the client retries with new sessions, then reports
// ErrUnavailable.
func TestUnavailableRetried(t *testing.T) {
	var calls atomic.Int32
	e := newEnv(t, func(c *local.Config, d *verifier.Dispatch) {
		d.Verifiers[cmw.MediaTypeTestKit] = verifierFunc(func(context.Context, []byte, *verifier.Expected) (*verifier.Result, error) {
			calls.Add(1)
			return nil, &verifier.UnavailableError{Reason: "down", Retryable: true}
		})
	})
	ch := challenge(t)
	ev, _ := e.att.Attest(context.Background(), ch)
	_, err := e.client.Appraise(context.Background(), ev, rd64(t, ch))
	var ue *verifier.UnavailableError
	if !errors.As(err, &ue) || !ue.Retryable {
		t.Fatalf("got %v, want a retryable UnavailableError", err)
	}
	if n := calls.Load(); n != veraison.DefaultMaxAttempts {
		t.Fatalf("%d appraisals, want %d", n, veraison.DefaultMaxAttempts)
	}
	// A failed session reads back as failed.
	path := e.newSession(t, rd64(t, ch))
	resp, body := e.do(t, http.MethodPost, path, map[string]string{"Content-Type": local.MediaTypeCMWCBOR}, ev)
	if resp.StatusCode != 500 {
		t.Fatalf("HTTP %d, want 500", resp.StatusCode)
	}
	problemOf(t, resp, body)
	resp, body = e.do(t, http.MethodGet, path, nil, nil)
	if s := decodeSession(t, resp, body); s.Status != "failed" || s.Result != nil {
		t.Fatalf("session %+v, want failed without result", s)
	}
}

// TestSessionLifecycle drives the API by hand: status codes, headers,
// single use, expiry, deletion, the bounded table.
func TestSessionLifecycle(t *testing.T) {
	e := newEnv(t, func(c *local.Config, _ *verifier.Dispatch) {
		c.MaxSessions = 2
		c.SessionTTL = time.Minute
	})
	ch := challenge(t)
	nonce := rd64(t, ch)
	ev, _ := e.att.Attest(context.Background(), ch)
	cbor := map[string]string{"Content-Type": local.MediaTypeCMWCBOR}

	path := e.newSession(t, nonce)
	resp, body := e.do(t, http.MethodGet, path, map[string]string{"Accept": local.MediaTypeSession}, nil)
	s := decodeSession(t, resp, body)
	if s.Status != "waiting" || !bytes.Equal(s.Nonce, nonce) || s.Result != nil || len(s.Accept) != 1 {
		t.Fatalf("new session %+v", s)
	}
	exp, err := time.Parse(time.RFC3339Nano, s.Expiry)
	if err != nil || !exp.Equal(e.clk.Now().Add(time.Minute).Truncate(0).UTC()) {
		t.Fatalf("expiry %q (%v), want now+TTL", s.Expiry, err)
	}

	t.Run("one submission per session", func(t *testing.T) {
		resp, body := e.do(t, http.MethodPost, path, cbor, ev)
		if s := decodeSession(t, resp, body); resp.StatusCode != 200 || s.Status != "complete" {
			t.Fatalf("HTTP %d %+v", resp.StatusCode, s)
		}
		resp, body = e.do(t, http.MethodPost, path, cbor, ev)
		if resp.StatusCode != http.StatusConflict {
			t.Fatalf("second submission: HTTP %d, want 409", resp.StatusCode)
		}
		problemOf(t, resp, body)
		resp, body = e.do(t, http.MethodGet, path, nil, nil)
		if s := decodeSession(t, resp, body); s.Status != "complete" || s.Result == nil {
			t.Fatalf("completed session reads %+v", s)
		}
	})

	t.Run("a full table evicts the oldest session", func(t *testing.T) {
		second := e.newSession(t, nonce)
		third := e.newSession(t, nonce) // the table holds 2: the oldest goes
		resp, body := e.do(t, http.MethodGet, path, nil, nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("GET of the evicted session: HTTP %d", resp.StatusCode)
		}
		problemOf(t, resp, body)
		for _, p := range []string{second, third} {
			if resp, _ := e.do(t, http.MethodGet, p, nil, nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("GET of a live session: HTTP %d", resp.StatusCode)
			}
		}
		resp, _ = e.do(t, http.MethodDelete, second, nil, nil)
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("DELETE: HTTP %d", resp.StatusCode)
		}
		resp, body = e.do(t, http.MethodDelete, second, nil, nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("second DELETE: HTTP %d", resp.StatusCode)
		}
		problemOf(t, resp, body)
		if n := e.svc.Sessions(); n != 1 {
			t.Fatalf("%d sessions, want 1", n)
		}
	})

	t.Run("expired session", func(t *testing.T) {
		fresh := e.newSession(t, nonce)
		e.clk.Advance(time.Minute) // both sessions reach their expiry
		for _, p := range []string{path, fresh} {
			resp, body := e.do(t, http.MethodPost, p, cbor, ev)
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("POST to an expired session: HTTP %d: %s", resp.StatusCode, body)
			}
			problemOf(t, resp, body)
			resp, _ = e.do(t, http.MethodGet, p, nil, nil)
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("GET of an expired session: HTTP %d", resp.StatusCode)
			}
		}
		if n := e.svc.Sessions(); n != 0 {
			t.Fatalf("%d sessions after expiry", n)
		}
		// The table has room again.
		e.newSession(t, nonce)
		e.newSession(t, nonce)
	})
}

// TestBadRequests: strict parsing of everything a client sends.
func TestBadRequests(t *testing.T) {
	e := newEnv(t)
	ch := challenge(t)
	nonce := rd64(t, ch)
	ev, _ := e.att.Attest(context.Background(), ch)
	b64 := base64.URLEncoding.EncodeToString(nonce)
	cbor := map[string]string{"Content-Type": local.MediaTypeCMWCBOR}
	evJSON := func() []byte {
		c, err := cmw.Decode(ev, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := c.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}()

	if ev[1] != 0x78 { // the media type's text head, for "CBOR not canonical"
		t.Fatalf("unexpected record head % x", ev[:2])
	}

	type req struct {
		method, path string
		hdr          map[string]string
		body         []byte
	}
	tests := []struct {
		name    string
		session bool // path is relative to a fresh session
		req     req
		want    int
	}{
		{"nonce too short", false, req{"POST", local.PathNewSession + "?nonce=" + base64.URLEncoding.EncodeToString(nonce[:7]), nil, nil}, 400},
		{"nonce too long", false, req{"POST", local.PathNewSession + "?nonce=" + base64.URLEncoding.EncodeToString(append(nonce, 1)), nil, nil}, 400},
		{"nonce of a size no evidence carries", false, req{"POST", local.PathNewSession + "?nonce=" + base64.URLEncoding.EncodeToString(nonce[:16]), nil, nil}, 400},
		{"nonce in standard base64", false, req{"POST", local.PathNewSession + "?nonce=" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 64)), nil, nil}, 400},
		{"nonce non-canonical", false, req{"POST", local.PathNewSession + "?nonce=" + b64[:len(b64)-3] + "B==", nil, nil}, 400},
		{"nonce twice", false, req{"POST", local.PathNewSession + "?nonce=" + b64 + "&nonce=" + b64, nil, nil}, 400},
		{"nonce and nonceSize", false, req{"POST", local.PathNewSession + "?nonce=" + b64 + "&nonceSize=64", nil, nil}, 400},
		{"unknown parameter", false, req{"POST", local.PathNewSession + "?nonce=" + b64 + "&x=1", nil, nil}, 400},
		{"nonceSize out of range", false, req{"POST", local.PathNewSession + "?nonceSize=65", nil, nil}, 400},
		{"nonceSize with sign", false, req{"POST", local.PathNewSession + "?nonceSize=+32", nil, nil}, 400},
		{"nonceSize 16", false, req{"POST", local.PathNewSession + "?nonceSize=16", nil, nil}, 400},
		{"malformed query", false, req{"POST", local.PathNewSession + "?nonce=%zz", nil, nil}, 400},
		{"newSession with a body", false, req{"POST", local.PathNewSession, nil, []byte("x")}, 400},
		{"newSession not acceptable", false, req{"POST", local.PathNewSession, map[string]string{"Accept": "text/html"}, nil}, 406},
		{"newSession q=0", false, req{"POST", local.PathNewSession, map[string]string{"Accept": local.MediaTypeSession + ";q=0"}, nil}, 406},
		{"newSession GET", false, req{"GET", local.PathNewSession, nil, nil}, 405},
		{"unknown path", false, req{"GET", "/challenge-response/v1/", nil, nil}, 404},
		{"malformed session id", false, req{"GET", local.PathSessionPrefix + "../newSession", nil, nil}, 404},
		{"uppercase session id", false, req{"GET", local.PathSessionPrefix + "ABCDEF01-2345-4789-8bcd-ef0123456789", nil, nil}, 404},
		{"unknown session", false, req{"POST", local.PathSessionPrefix + "abcdef01-2345-4789-8bcd-ef0123456789", cbor, ev}, 404},
		{"evidence without content type", true, req{"POST", "", nil, ev}, 415},
		{"evidence as raw EAT", true, req{"POST", "", map[string]string{"Content-Type": cmw.MediaTypeTestKit}, ev}, 415},
		{"evidence with parameters", true, req{"POST", "", map[string]string{"Content-Type": local.MediaTypeCMWCBOR + "; x=y"}, ev}, 415},
		{"CBOR declared as JSON", true, req{"POST", "", map[string]string{"Content-Type": local.MediaTypeCMWJSON}, ev}, 400},
		{"JSON declared as CBOR", true, req{"POST", "", cbor, evJSON}, 400},
		{"garbage", true, req{"POST", "", cbor, []byte{0x83, 0x01, 0x02}}, 400},
		{"trailing byte", true, req{"POST", "", cbor, append(append([]byte(nil), ev...), 0)}, 400},
		{"CBOR not canonical", true, req{"POST", "", cbor, append([]byte{ev[0], 0x79, 0}, ev[2:]...)}, 400},
		{"JSON not canonical", true, req{"POST", "", map[string]string{"Content-Type": local.MediaTypeCMWJSON}, bytes.Replace(evJSON, []byte(`",`), []byte(`", `), 1)}, 400},
		{"empty body", true, req{"POST", "", cbor, []byte{}}, 400},
		{"unknown media type", true, req{"POST", "", cbor, otherRecord(t)}, 415},
		{"submission not acceptable", true, req{"POST", "", map[string]string{"Content-Type": local.MediaTypeCMWCBOR, "Accept": "application/json"}, ev}, 406},
		{"PUT on a session", true, req{"PUT", "", cbor, ev}, 405},
		{"well-known POST", false, req{"POST", local.PathWellKnown, nil, nil}, 405},
		{"well-known not acceptable", false, req{"GET", local.PathWellKnown, map[string]string{"Accept": local.MediaTypeSession}, nil}, 406},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.req.path
			if tt.session {
				p = e.newSession(t, nonce)
			}
			resp, body := e.do(t, tt.req.method, p, tt.req.hdr, tt.req.body)
			if resp.StatusCode != tt.want {
				t.Fatalf("HTTP %d, want %d: %s", resp.StatusCode, tt.want, body)
			}
			problemOf(t, resp, body)
			if tt.want == 405 && resp.Header.Get("Allow") == "" {
				t.Fatal("405 without Allow")
			}
			if tt.session {
				// The refused request did not consume the session.
				resp, body := e.do(t, http.MethodGet, p, nil, nil)
				if s := decodeSession(t, resp, body); s.Status != "waiting" {
					t.Fatalf("session after a refused submission: %+v", s)
				}
			}
		})
	}

	t.Run("JSON evidence accepted", func(t *testing.T) {
		p := e.newSession(t, nonce)
		resp, body := e.do(t, "POST", p, map[string]string{"Content-Type": local.MediaTypeCMWJSON + "; charset=utf-8"}, evJSON)
		if s := decodeSession(t, resp, body); resp.StatusCode != 200 || s.Status != "complete" {
			t.Fatalf("HTTP %d %+v", resp.StatusCode, s)
		}
	})
	t.Run("oversized declared length refused before reading", func(t *testing.T) {
		p := e.newSession(t, nonce)
		resp, body := e.do(t, "POST", p, cbor, make([]byte, local.DefaultMaxEvidenceSize+1))
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("HTTP %d", resp.StatusCode)
		}
		problemOf(t, resp, body)
	})
	t.Run("oversized chunked body refused", func(t *testing.T) {
		p := e.newSession(t, nonce)
		r, w := ioPipe()
		go func() {
			w.Write(make([]byte, local.DefaultMaxEvidenceSize+10))
			w.Close()
		}()
		req, _ := http.NewRequest("POST", e.srv.URL+p, r)
		req.Header.Set("Content-Type", local.MediaTypeCMWCBOR)
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || req.ContentLength != 0 {
			t.Fatalf("HTTP %d (Content-Length %d)", resp.StatusCode, req.ContentLength)
		}
	})
	t.Run("server-chosen nonces", func(t *testing.T) {
		for q, n := range map[string]int{"": 64, "?nonceSize=32": 32, "?nonceSize=64": 64} {
			resp, body := e.do(t, "POST", local.PathNewSession+q, map[string]string{"Accept": "application/*"}, nil)
			if s := decodeSession(t, resp, body); resp.StatusCode != 201 || len(s.Nonce) != n {
				t.Fatalf("%q: HTTP %d, nonce of %d bytes, want %d", q, resp.StatusCode, len(s.Nonce), n)
			}
		}
	})
	t.Run("unpadded nonce accepted", func(t *testing.T) {
		resp, body := e.do(t, "POST", local.PathNewSession+"?nonce="+base64.RawURLEncoding.EncodeToString(nonce[:32]), nil, nil)
		if s := decodeSession(t, resp, body); resp.StatusCode != 201 || !bytes.Equal(s.Nonce, nonce[:32]) {
			t.Fatalf("HTTP %d %+v", resp.StatusCode, s)
		}
	})
}

// TestQualifyingDataSession: a 32-byte session nonce is the qualifyingData
// a TPM quote must carry; 64-byte Evidence cannot match it.
func TestQualifyingDataSession(t *testing.T) {
	var got atomic.Pointer[verifier.Expected]
	e := newEnv(t, func(c *local.Config, d *verifier.Dispatch) {
		inner := d.Verifiers[cmw.MediaTypeTestKit]
		d.Verifiers[cmw.MediaTypeTestKit] = verifierFunc(func(ctx context.Context, b []byte, exp *verifier.Expected) (*verifier.Result, error) {
			got.Store(exp)
			return inner.Verify(ctx, b, exp)
		})
	})
	ch := challenge(t)
	qd, _ := ch.QualifyingData32()
	ev, _ := e.att.Attest(context.Background(), ch)
	_, err := e.client.Appraise(context.Background(), ev, qd[:])
	var re *verifier.RejectedError
	if !errors.As(err, &re) || re.Check != verifier.CheckStatus {
		t.Fatalf("64-byte evidence in a 32-byte session: %v, want rejected", err)
	}
	exp := got.Load()
	if exp == nil || exp.QualifyingData == nil || *exp.QualifyingData != qd || exp.ReportData != nil {
		t.Fatalf("Expected passed to the appraiser: %+v", exp)
	}
	if _, err := exp.ReportData64(); !errors.Is(err, verifier.ErrRejected) {
		t.Fatalf("ReportData64 of a 32-byte session: %v", err)
	}
}

// TestConcurrentAppraisals: many relying parties at once, under the race
// detector; the appraisal bound holds.
func TestConcurrentAppraisals(t *testing.T) {
	var running, peak atomic.Int32
	e := newEnv(t, func(c *local.Config, d *verifier.Dispatch) {
		c.MaxConcurrentAppraisals = 2
		inner := d.Verifiers[cmw.MediaTypeTestKit]
		d.Verifiers[cmw.MediaTypeTestKit] = verifierFunc(func(ctx context.Context, b []byte, exp *verifier.Expected) (*verifier.Result, error) {
			n := running.Add(1)
			defer running.Add(-1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(2 * time.Millisecond)
			return inner.Verify(ctx, b, exp)
		})
	})
	v := veraison.NewVerifier(e.client)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch := challenge(t)
			a := e.att
			if i%4 == 3 {
				k, _ := testkit.GenerateKey()
				a = &testkit.Attester{Key: k}
			}
			ev, err := a.Attest(context.Background(), ch)
			if err != nil {
				errs <- err
				return
			}
			_, err = v.Verify(context.Background(), ev, &verifier.Expected{Challenge: ch})
			if (i%4 == 3) != errors.Is(err, verifier.ErrRejected) {
				errs <- fmt.Errorf("appraisal %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if p := peak.Load(); p > 2 {
		t.Fatalf("%d appraisals at once, limit 2", p)
	}
}

func TestNewServiceConfig(t *testing.T) {
	k, _ := testkit.GenerateKey()
	d := &verifier.Dispatch{}
	tests := []struct {
		name string
		cfg  local.Config
	}{
		{"no issuer", local.Config{Appraiser: d}},
		{"no key", local.Config{Appraiser: d, Issuer: &ear.Issuer{}}},
		{"no appraiser", local.Config{Issuer: &ear.Issuer{Key: k}}},
		{"key attestation", local.Config{Appraiser: d, Issuer: &ear.Issuer{Key: k, KeyAttestation: true}}},
		{"negative TTL", local.Config{Appraiser: d, Issuer: &ear.Issuer{Key: k}, SessionTTL: -1}},
		{"huge evidence", local.Config{Appraiser: d, Issuer: &ear.Issuer{Key: k}, MaxEvidenceSize: local.MaxEvidenceSizeLimit + 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := local.NewService(tt.cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if _, err := local.NewService(local.Config{Issuer: &ear.Issuer{Key: k, Appraiser: d}}); err != nil {
		t.Fatalf("Issuer.Appraiser as the appraiser: %v", err)
	}
}
