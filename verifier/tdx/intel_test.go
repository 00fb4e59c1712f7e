package tdx_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/attester/tdx/wire"
	expatcmw "github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/collateral"
	"github.com/attested-tls/go-expat/verifier/tdx"
	"github.com/google/go-tdx-guest/abi"
	pb "github.com/google/go-tdx-guest/proto/tdx"
	tdxtesting "github.com/google/go-tdx-guest/testing"
	"github.com/google/go-tdx-guest/testing/testdata"
)

// getterTransport serves HTTP requests from go-tdx-guest's TestGetter,
// which holds Intel's sample collateral (bodies and issuer-chain headers)
// for the sample quotes, keyed by Intel PCS URL. It exercises our real PCS
// client without a network.
type getterTransport struct{ hits map[string]int }

func (g *getterTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if g.hits == nil {
		g.hits = map[string]int{}
	}
	g.hits[r.URL.String()]++
	h, body, err := tdxtesting.TestGetter.Get(r.URL.String())
	if err != nil {
		return &http.Response{StatusCode: 404, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
	}
	hdr := http.Header{}
	for k, v := range h {
		hdr[k] = v
	}
	return &http.Response{StatusCode: 200, Header: hdr, Body: io.NopCloser(bytes.NewReader(body)), Request: r}, nil
}

// trimmedV4 returns go-tdx-guest's v4 sample quote without the 39 bytes
// its authors appended after the signed data ("extra bytes(only for
// testing purpose)"), which our strict parser rejects; go-tdx-guest's own
// parser says which bytes those are.
func trimmedV4(t *testing.T) []byte {
	q := testdata.RawQuote
	p, err := abi.QuoteToProto(q)
	if err != nil {
		t.Fatal(err)
	}
	extra := p.(*pb.QuoteV4).GetExtraBytes()
	if !bytes.Contains(extra, []byte("extra bytes")) {
		t.Fatalf("sample changed: extra bytes %q", extra)
	}
	return q[: len(q)-len(extra) : len(q)-len(extra)]
}

// reportDataOf returns the REPORTDATA of a quote (wire.ParseQuote).
func reportDataOf(t testing.TB, q []byte) [64]byte {
	t.Helper()
	pq, err := wire.ParseQuote(q)
	if err != nil {
		t.Fatal(err)
	}
	return pq.Body.ReportData
}

// TestIntelSampleV4 appraises Intel's real production quote shipped by
// go-tdx-guest against the real Intel root (our default trust anchor) with
// Intel's real sample collateral, served through our PCS client. The
// collateral (TCB info 2023-06-18..2023-07-18, QE identity
// 2023-06-08..2023-07-08, PCK CRL to 2023-07-08) has long expired, so the
// appraisal time is fixed at 2023-07-01.
//
// The sample platform is older than every TCB level of the sample TCB info
// (go-tdx-guest's own test reaches the same "no matching TCB level"
// verdict), so the appraisal passes format, the PCK chain to Intel's root,
// both signatures, the REPORTDATA binding, both CRLs and the Intel-signed
// TCB info and QE identity, and ends in a precise verifier.CheckTCB rejection naming
// the short components. Tests with the test PCK chain cover acceptance.
func TestIntelSampleV4(t *testing.T) {
	at := time.Date(2023, time.July, 1, 1, 0, 0, 0, time.UTC)
	tr := &getterTransport{}
	v, err := tdx.New(&tdx.Config{Getter: &tdx.PCS{HTTP: collateral.HTTP{Client: &http.Client{Transport: tr}}},
		Policy: tdx.Policy{AcceptAnyMRTD: true, AllowOutOfDate: true, AllowConfigurationNeeded: true, AllowSWHardeningNeeded: true}})
	if err != nil {
		t.Fatal(err)
	}
	q := trimmedV4(t)
	rd := reportDataOf(t, q)
	_, err = verifyRaw(t, v, q, rd, at)
	re := wantReject(t, err, verifier.CheckTCB)
	var te *tdx.TCBError
	if !errors.As(err, &te) || te.Report.Matched {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"sgx_tcb_comp[0] (BIOS: Early Microcode Update) svn 3 < 5", "tdx_tcb_comp[2] (OS/VMM: TDX Late Microcode Update) svn 4 < 5"} {
		if !strings.Contains(re.Error(), want) {
			t.Errorf("%q does not name %q", re.Error(), want)
		}
	}
	if len(tr.hits) != 4 {
		t.Fatalf("fetched %v, want the 4 collateral items once", tr.hits)
	}

	// The same genuine quote bound to another challenge is rejected
	// before any TCB question.
	rd[0] ^= 1
	_, err = verifyRaw(t, v, q, rd, at)
	wantReject(t, err, verifier.CheckChallenge)
	// The untrimmed sample has trailing bytes: format.
	_, err = verifyRaw(t, v, testdata.RawQuote, reportDataOf(t, q), at)
	wantReject(t, err, verifier.CheckFormat)
	// A test root instead of Intel's: the genuine chain is not trusted.
	e := newEnv(t)
	vt, _ := tdx.New(e.opts(tdx.Policy{}))
	_, err = verifyRaw(t, vt, q, reportDataOf(t, q), at)
	wantReject(t, err, verifier.CheckChain)
	// Today, Intel's sample collateral is expired: rejected, never used.
	v2, _ := tdx.New(&tdx.Config{Getter: &tdx.PCS{HTTP: collateral.HTTP{Client: &http.Client{Transport: &getterTransport{}}}}, Policy: tdx.Policy{AcceptAnyMRTD: true}})
	_, err = verifyRaw(t, v2, q, reportDataOf(t, q), time.Now())
	if err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("err = %v", err)
	}
}

// TestIntelSampleV5 checks go-tdx-guest's real v5 (TDX 1.5) quote at
// 2026-02-03, when its PCK chain is valid. go-tdx-guest ships its 2026 TCB
// info with the same issuer-chain header as the 2023 one, whose TCB
// signing certificate expired on 2025-05-21 (and the only QE identity
// sample is from 2023), so no complete collateral set exists for it: the
// appraisal gets through format, the chain to Intel's root, both
// signatures and the REPORTDATA check, and stops, correctly, at the
// collateral.
func TestIntelSampleV5(t *testing.T) {
	at := time.Date(2026, time.February, 3, 1, 0, 0, 0, time.UTC)
	v, err := tdx.New(&tdx.Config{Getter: &tdx.PCS{HTTP: collateral.HTTP{Client: &http.Client{Transport: &getterTransport{}}}}, SkipRevocation: true,
		Policy: tdx.Policy{AcceptAnyMRTD: true}})
	if err != nil {
		t.Fatal(err)
	}
	q := testdata.RawQuoteV5
	pq, err := wire.ParseQuote(q)
	if err != nil {
		t.Fatal(err)
	}
	if pq.Version != 5 || pq.BodyType != 3 {
		t.Fatalf("version %d body type %d", pq.Version, pq.BodyType)
	}
	_, err = verifyRaw(t, v, q, pq.Body.ReportData, at)
	re := wantReject(t, err, verifier.CheckCollateral)
	if !strings.Contains(re.Error(), "tcb-info: issuer chain") || !strings.Contains(re.Error(), "expired") {
		t.Fatalf("error = %q", re.Error())
	}
	rd := pq.Body.ReportData
	rd[63] ^= 1
	_, err = verifyRaw(t, v, q, rd, at)
	wantReject(t, err, verifier.CheckChallenge)
	// Flip one bit of MRTD: the quote signature no longer verifies.
	mod := *pq
	mod.Body.MRTD[0] ^= 1
	bad, err := mod.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	_, err = verifyRaw(t, v, bad, pq.Body.ReportData, at)
	wantReject(t, err, verifier.CheckSignature)
}

// TestIntelRootPin checks IntelRootSHA256 against the Intel root that
// go-tdx-guest embeds, read from the module cache.
func TestIntelRootPin(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/google/go-tdx-guest").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "verify", "trusted_root.pem"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("no PEM block")
	}
	h := sha256.Sum256(blk.Bytes)
	if got := hex.EncodeToString(h[:]); got != tdx.IntelRootSHA256 {
		t.Fatalf("Intel root SHA-256 %s, pinned %s", got, tdx.IntelRootSHA256)
	}
}

// verifyRaw appraises a raw quote as Verify does, wrapped as Evidence in a
// CMW record, against the exact REPORTDATA rd at time now.
func verifyRaw(t testing.TB, v *tdx.Verifier, quote []byte, rd [64]byte, now time.Time) (*verifier.Result, error) {
	t.Helper()
	return v.Verify(context.Background(), wrap(t, quote, expatcmw.MediaTypeTDX), &verifier.Expected{ReportData: &rd, Now: now})
}
