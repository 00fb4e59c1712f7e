package tdxtest_test

import (
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/attester/tdx/tdxtest"
	"github.com/google/go-tdx-guest/abi"
	"github.com/google/go-tdx-guest/pcs"
	"github.com/google/go-tdx-guest/verify"
)

// handlerGetter adapts an http.Handler to go-tdx-guest's HTTPSGetter.
type handlerGetter struct{ h http.Handler }

func (g handlerGetter) Get(u string) (map[string][]string, []byte, error) {
	rec := httptest.NewRecorder()
	g.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, u, nil))
	return rec.Result().Header, rec.Body.Bytes(), nil
}

func timeSet(t time.Time) *verify.TimeSet {
	return &verify.TimeSet{PckCertChain: t, TcbInfo: t, QeIdentity: t, PckCrl: t, RootCaCrl: t}
}

// TestGoTDXGuestAcceptsTestChain is the differential check of the kit: an
// independent verifier (go-tdx-guest's verify) accepts our quotes and
// collateral when, and only when, the test root is passed as trusted.
func TestGoTDXGuestAcceptsTestChain(t *testing.T) {
	now := time.Now()
	pki, err := tdxtest.NewPKI(now)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := pki.NewPlatform(tdxtest.DefaultPCKOptions())
	if err != nil {
		t.Fatal(err)
	}
	ext, err := pcs.PckCertificateExtensions(pl.PCK)
	if err != nil {
		t.Fatalf("go-tdx-guest cannot read our PCK extensions: %v", err)
	}
	if ext.FMSPC != "00906ed50000" || ext.TCB.PCESvn != 11 || ext.TCB.CPUSvnComponents[3] != 5 {
		t.Fatalf("PCK extensions = %+v", ext)
	}
	var rd [64]byte
	copy(rd[:], "our challenge")
	raw, err := pl.QuoteFor(rd)
	if err != nil {
		t.Fatal(err)
	}
	q, err := abi.QuoteToProto(raw)
	if err != nil {
		t.Fatalf("go-tdx-guest cannot parse our quote: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(pki.Root)

	if err := verify.TdxQuote(q, &verify.Options{TrustedRoots: roots, Now: timeSet(now)}); err != nil {
		t.Fatalf("verify with test root: %v", err)
	}
	if err := verify.TdxQuote(q, &verify.Options{Now: timeSet(now)}); err == nil {
		t.Fatal("verify with Intel's embedded root accepted a test quote")
	}

	col, err := pl.Collateral(tdxtest.Window(now, 24*time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := &tdxtest.PCSServer{}
	srv.Set(col)
	opts := &verify.Options{TrustedRoots: roots, Now: timeSet(now), GetCollateral: true, CheckRevocations: true, Getter: handlerGetter{srv}}
	if err := verify.TdxQuote(q, opts); err != nil {
		t.Fatalf("verify with collateral: %v", err)
	}

	// Revoked PCK: go-tdx-guest rejects too.
	col2, err := pl.Collateral(tdxtest.Window(now, 24*time.Hour), nil, tdxtest.SerialOf(pl.PCK))
	if err != nil {
		t.Fatal(err)
	}
	srv.Set(col2)
	opts = &verify.Options{TrustedRoots: roots, Now: timeSet(now), GetCollateral: true, CheckRevocations: true, Getter: handlerGetter{srv}}
	if err := verify.TdxQuote(q, opts); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("revoked PCK: err = %v", err)
	}
}
