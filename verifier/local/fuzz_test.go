package local_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	vear "github.com/veraison/ear"

	"github.com/lestrrat-go/jwx/v3/jwa"

	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/expat/expattest/testkit"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/local"
)

// FuzzSubmit posts arbitrary bodies with arbitrary headers to a fresh
// session (and arbitrary requests elsewhere). Properties: no panic; every
// error answer is a well-formed problem document; every session answer
// is well formed; an EAR is issued only for a decodable CMW, is signed by
// the service's key, echoes the session nonce, and is affirming exactly
// when the in-process test-kit verifier accepts the same bytes for that
// nonce.
func FuzzSubmit(f *testing.F) {
	e := newEnv(f)
	ch := challenge(f)
	nonce := rd64(f, ch)
	good, err := e.att.Attest(context.Background(), ch)
	if err != nil {
		f.Fatal(err)
	}
	dec, _ := cmw.Decode(good, nil)
	goodJSON, _ := dec.MarshalJSON()
	other, _ := e.att.Attest(context.Background(), challenge(f))
	f.Add(uint8(0), "", local.MediaTypeCMWCBOR, "", good)
	f.Add(uint8(0), "", local.MediaTypeCMWJSON, "*/*", goodJSON)
	f.Add(uint8(0), "", local.MediaTypeCMWCBOR, "", other)
	f.Add(uint8(0), "", local.MediaTypeCMWCBOR, "", otherRecord(f))
	f.Add(uint8(0), "", local.MediaTypeCMWCBOR, "", good[:len(good)-1])
	f.Add(uint8(1), "nonce="+base64.URLEncoding.EncodeToString(nonce), "", "", []byte(nil))
	f.Add(uint8(2), "", "", local.MediaTypeDiscovery, []byte(nil))
	f.Add(uint8(3), "../x", "", "", []byte("x"))

	trusted := &testkit.Verifier{TrustedKeys: []*ecdsa.PublicKey{&e.att.Key.PublicKey}}
	f.Fuzz(func(t *testing.T, sel uint8, s, ctype, accept string, body []byte) {
		var method, target string
		w0 := httptest.NewRecorder()
		switch sel % 4 {
		case 0: // submit to a fresh session
			w := httptest.NewRecorder()
			e.svc.ServeHTTP(w, httptest.NewRequest("POST", local.PathNewSession+"?nonce="+base64.URLEncoding.EncodeToString(nonce), nil))
			if w.Code != http.StatusCreated {
				t.Fatalf("newSession: HTTP %d (sessions leak?)", w.Code)
			}
			method, target = "POST", "/challenge-response/v1/"+w.Header().Get("Location")
			defer e.svc.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("DELETE", target, nil))
		case 1:
			method, target = "POST", local.PathNewSession+"?"+s
			defer func() { // keep the table from filling
				if loc := w0.Header().Get("Location"); loc != "" {
					e.svc.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("DELETE", "/challenge-response/v1/"+loc, nil))
				}
			}()
		case 2:
			method, target = "GET", local.PathWellKnown
		default:
			method, target = []string{"GET", "POST", "DELETE", "PUT"}[sel/4%4], local.PathSessionPrefix+s
		}
		req, err := http.NewRequest(method, "http://local.test"+target, bytes.NewReader(body))
		if err != nil {
			return
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		e.svc.ServeHTTP(w0, req)
		resp := w0.Result()
		out := w0.Body.Bytes()

		if resp.StatusCode >= 400 {
			problemOf(t, resp, out)
			return
		}
		switch {
		case sel%4 == 2:
			if resp.Header.Get("Content-Type") != local.MediaTypeDiscovery || !json.Valid(out) {
				t.Fatalf("discovery answer %q %s", resp.Header.Get("Content-Type"), out)
			}
			return
		case resp.StatusCode == http.StatusNoContent:
			return
		}
		sd := decodeSession(t, resp, out)
		if sd.Result == nil {
			if sd.Status == "complete" {
				t.Fatal("complete session without a result")
			}
			return
		}
		if sel%4 != 0 {
			t.Fatalf("result outside a submission: %s", out)
		}
		if _, err := cmw.Decode(body, nil); err != nil {
			t.Fatalf("EAR issued for an undecodable CMW: %v", err)
		}
		var ar vear.AttestationResult
		if err := ar.Verify([]byte(*sd.Result), jwa.ES256(), &e.earKey.PublicKey); err != nil {
			t.Fatalf("EAR signature: %v", err)
		}
		if ar.Nonce == nil || *ar.Nonce != base64.RawURLEncoding.EncodeToString(nonce) {
			t.Fatalf("EAR nonce %v", ar.Nonce)
		}
		affirmed := true
		for _, a := range ar.Submods {
			if a.Status == nil || *a.Status != vear.TrustTierAffirming {
				affirmed = false
			}
		}
		rd := [64]byte(nonce)
		_, direct := trusted.Verify(context.Background(), body, &verifier.Expected{ReportData: &rd})
		if affirmed != (direct == nil) {
			t.Fatalf("service affirmed=%v, in-process verifier: %v", affirmed, direct)
		}
		if !affirmed && !strings.Contains(*sd.Result, ".") {
			t.Fatal("malformed EAR")
		}
	})
}
