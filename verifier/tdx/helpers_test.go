package tdx_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/attester"
	atdx "github.com/attested-tls/go-expat/attester/tdx"
	"github.com/attested-tls/go-expat/attester/tdx/tdxtest"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/collateral"
	"github.com/attested-tls/go-expat/verifier/tdx"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// env is a test platform with a PCS imitation over HTTP.
type env struct {
	t     testing.TB
	now   time.Time
	clock *clock
	pki   *tdxtest.PKI
	pl    *tdxtest.Platform
	srv   *tdxtest.PCSServer
	http  *httptest.Server
	col   *tdxtest.Collateral
}

func newEnv(t testing.TB) *env {
	t.Helper()
	now := time.Now().Truncate(time.Second)
	pki, err := tdxtest.NewPKI(now)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := pki.NewPlatform(tdxtest.DefaultPCKOptions())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, now: now, clock: &clock{t: now}, pki: pki, pl: pl, srv: &tdxtest.PCSServer{}}
	e.setCollateral(tdxtest.Window(now, 30*24*time.Hour), nil)
	e.http = httptest.NewServer(e.srv)
	t.Cleanup(e.http.Close)
	return e
}

func (e *env) setCollateral(v tdxtest.Validity, levels []tdxtest.TCBLevel, revoked ...*x509.Certificate) {
	e.t.Helper()
	col, err := e.pl.Collateral(v, levels, serialsOf(revoked)...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.col = col
	e.srv.Set(col)
}

// opts is the Config of a verifier trusting the test PKI and its PCS.
// A policy that names no MRTD (and does not accept any) gets the test
// platform's, so that tests of other steps need not repeat it; the zero
// policy's rejection is tested with tdx.New directly.
func (e *env) opts(p tdx.Policy) *tdx.Config {
	if len(p.MRTD) == 0 && !p.AcceptAnyMRTD {
		p.MRTD = [][]byte{e.pl.Template.MRTD[:]}
	}
	return &tdx.Config{TrustedRoots: []*x509.Certificate{e.pki.Root}, Getter: &tdx.PCS{BaseURL: e.http.URL, RootCRLURL: e.http.URL + "/IntelSGXRootCA.der", HTTP: collateral.HTTP{Client: e.http.Client(), MaxRetries: -1}},
		Policy: p, Time: e.clock.Now}
}

func (e *env) verifier(p tdx.Policy) *tdx.Verifier {
	e.t.Helper()
	v, err := tdx.New(e.opts(p))
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

func (e *env) bundle() *tdx.Bundle {
	c := e.col
	return &tdx.Bundle{TCBInfo: c.TCBInfo, TCBInfoIssuerChain: c.TCBInfoChain, QEIdentity: c.QEIdentity,
		QEIdentityIssuerChain: c.QEIdentityChain, PCKCRL: c.PCKCRL, PCKCRLIssuerChain: c.PCKCRLChain, RootCRL: c.RootCRL}
}

func challenge(s string) attester.Challenge {
	b := sha256.Sum256([]byte("binding " + s))
	k := sha256.Sum256([]byte("aik " + s))
	return attester.Challenge{Hash: crypto.SHA256, Binding: b[:], AIKPubHash: k[:]}
}

// evidence runs the real attester over the fake configfs-tsm provider.
func (e *env) evidence(ch attester.Challenge) []byte {
	e.t.Helper()
	a, err := atdx.NewTSMAttester(&tdxtest.ConfigFS{Platform: e.pl}, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	b, err := a.Attest(context.Background(), ch)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func serialsOf(cs []*x509.Certificate) []*big.Int {
	var out []*big.Int
	for _, c := range cs {
		out = append(out, tdxtest.SerialOf(c))
	}
	return out
}

func expected(ch attester.Challenge) *verifier.Expected { return &verifier.Expected{Challenge: ch} }

// handlerGetter adapts an http.Handler to go-tdx-guest's HTTPSGetter.
type handlerGetter struct{ h http.Handler }

func (g handlerGetter) Get(u string) (map[string][]string, []byte, error) {
	rec := httptest.NewRecorder()
	g.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, u, nil))
	return rec.Result().Header, rec.Body.Bytes(), nil
}
