package veraison_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/veraison/ear"
)

// fakeVeraison speaks Veraison's challenge-response API (v0.0.2501 shapes)
// and answers with EARs shaped by its fields. It appraises nothing: it tests
// the client's transport, retry and result checks; the live tests
// (integration_test.go) cover real appraisals.
type fakeVeraison struct {
	t      testing.TB
	key    *ecdsa.PrivateKey // signs EARs
	wkKey  crypto.PublicKey  // published at the well-known endpoint (default: key's)
	status ear.TrustTier     // status of CCA_SSD_PLATFORM
	// realmStatus, when set, is the status of CCA_REALM (else affirming).
	realmStatus *ear.TrustTier
	nonceFn     func(n []byte) []byte
	sessFn      func(n []byte) []byte // nonce echoed in the session JSON
	iat         time.Time
	// unpadded: eat_nonce in unpadded base64url (Veraison pads).
	unpadded bool
	// vector, when set, is the CCA_SSD_PLATFORM trust vector.
	vector *ear.TrustVector
	// redirect, when it returns a URL for an operation ("new session",
	// "submit"), answers that request with a redirect there.
	redirect func(op string) (string, int)

	// failures: the first n requests to newSession answer code.
	failN    atomic.Int32
	failCode int
	delay    time.Duration
	submitFn func(w http.ResponseWriter) bool // optional override
	// deleteFn, when set, answers a session deletion (after counting it).
	deleteFn func(w http.ResponseWriter, r *http.Request)
	location string
	// conns counts the connections accepted (set by start).
	conns atomic.Int32

	newSessions, submits, deletes, wellKnown, unknown atomic.Int32
	mu                                                sync.Mutex
	nonces                                            map[string][]byte
	lastContentType                                   string
}

func newFake(t testing.TB) *fakeVeraison {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeVeraison{t: t, key: k, status: ear.TrustTierAffirming, nonces: map[string][]byte{}}
}

func (f *fakeVeraison) problem(w http.ResponseWriter, code int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"title":"x","status":%d,"detail":%q}`, code, detail)
}

func (f *fakeVeraison) session(w http.ResponseWriter, code int, status string, nonce []byte, result *string) {
	if f.sessFn != nil {
		nonce = f.sessFn(nonce)
	}
	w.Header().Set("Content-Type", "application/vnd.veraison.challenge-response-session+json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"status": status, "nonce": nonce, "expiry": time.Now().Add(time.Minute), "accept": []string{}, "result": result})
}

func (f *fakeVeraison) ear(nonce []byte) string {
	if f.nonceFn != nil {
		nonce = f.nonceFn(nonce)
	}
	r := ear.NewAttestationResult("CCA_SSD_PLATFORM", "fake", "go-expat tests")
	st := f.status
	tv := ear.TrustVector{InstanceIdentity: 2, Hardware: 2, Executables: 2}
	if st == ear.TrustTierContraindicated {
		tv.Executables = ear.ContraindicatedRuntimeClaim
	}
	if f.vector != nil {
		tv = *f.vector
	}
	r.Submods["CCA_SSD_PLATFORM"].Status = &st
	r.Submods["CCA_SSD_PLATFORM"].TrustVector = &tv
	a := ear.TrustTierAffirming
	if f.realmStatus != nil {
		a = *f.realmStatus
	}
	r.Submods["CCA_REALM"] = &ear.Appraisal{Status: &a, TrustVector: &ear.TrustVector{InstanceIdentity: 2}}
	n := base64.URLEncoding.EncodeToString(nonce)
	if f.unpadded {
		n = base64.RawURLEncoding.EncodeToString(nonce)
	}
	r.Nonce = &n
	if !f.iat.IsZero() {
		iat := f.iat.Unix()
		r.IssuedAt = &iat
	}
	b, err := r.Sign(jwa.ES256(), f.key)
	if err != nil {
		f.t.Error(err)
	}
	return string(b)
}

func (f *fakeVeraison) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-r.Context().Done():
			return
		}
	}
	if f.redirect != nil {
		op := ""
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/challenge-response/v1/newSession":
			op = "new session"
		case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/challenge-response/v1/session/"):
			op = "submit"
		}
		if to, code := f.redirect(op); to != "" {
			if op == "submit" {
				f.submits.Add(1)
			}
			http.Redirect(w, r, to+r.URL.Path, code)
			return
		}
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/.well-known/veraison/verification":
		f.wellKnown.Add(1)
		pub := f.wkKey
		if pub == nil {
			pub = &f.key.PublicKey
		}
		k, err := jwk.Import(pub)
		if err != nil {
			f.t.Error(err)
		}
		k.Set(jwk.AlgorithmKey, jwa.ES256())
		w.Header().Set("Content-Type", "application/vnd.veraison.discovery+json")
		json.NewEncoder(w).Encode(map[string]any{"ear-verification-key": k, "version": "fake", "service-state": "READY"})
	case r.Method == http.MethodPost && r.URL.Path == "/challenge-response/v1/newSession":
		f.newSessions.Add(1)
		if f.failN.Add(-1) >= 0 {
			if f.failCode == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", "1")
			}
			f.problem(w, f.failCode, "injected failure")
			return
		}
		n, err := base64.URLEncoding.DecodeString(r.URL.Query().Get("nonce"))
		if err != nil || len(n) < 8 || len(n) > 64 {
			f.problem(w, 400, "bad nonce")
			return
		}
		id := fmt.Sprintf("%d", time.Now().UnixNano())
		f.mu.Lock()
		f.nonces[id] = n
		f.mu.Unlock()
		loc := "session/" + id
		if f.location != "" {
			loc = f.location
		}
		w.Header().Set("Location", loc)
		f.session(w, http.StatusCreated, "waiting", n, nil)
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/challenge-response/v1/session/"):
		f.submits.Add(1)
		f.mu.Lock()
		f.lastContentType = r.Header.Get("Content-Type")
		n, ok := f.nonces[strings.TrimPrefix(r.URL.Path, "/challenge-response/v1/session/")]
		f.mu.Unlock()
		io.Copy(io.Discard, r.Body)
		if f.submitFn != nil && f.submitFn(w) {
			return
		}
		if !ok {
			f.problem(w, 404, "no session")
			return
		}
		res := f.ear(n)
		f.session(w, http.StatusOK, "complete", n, &res)
	case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/challenge-response/v1/session/"):
		f.deletes.Add(1)
		if f.deleteFn != nil {
			f.deleteFn(w, r)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		f.unknown.Add(1)
		f.problem(w, 404, "not found")
	}
}

func (f *fakeVeraison) start(t testing.TB) *httptest.Server {
	s := httptest.NewUnstartedServer(f)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			f.conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}
