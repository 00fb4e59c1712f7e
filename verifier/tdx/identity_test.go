package tdx_test

import (
	"context"
	"encoding/hex"
	"testing"

	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/tdx"
)

// The result names the machine (FMSPC and the PCK key) and says the
// Evidence names the EA key (REPORTDATA).
func TestPlatformIDs(t *testing.T) {
	e := newEnv(t)
	ch := challenge("ids")
	res, err := e.verifier(tdx.Policy{MRTD: [][]byte{e.pl.Template.MRTD[:]}}).Verify(context.Background(), e.evidence(ch), expected(ch))
	if err != nil {
		t.Fatal(err)
	}
	if res.KeyBinding != verifier.KeyInEvidence || len(res.PlatformIDs) != 2 {
		t.Fatalf("KeyBinding %v, PlatformIDs %v", res.KeyBinding, res.PlatformIDs)
	}
	if id := res.PlatformIDs[0]; id.Kind != "tdx.fmspc" || hex.EncodeToString(id.Value) != res.Claims["fmspc"] {
		t.Fatalf("FMSPC identifier %v, claim %s", id, res.Claims["fmspc"])
	}
	if id := res.PlatformIDs[1]; id.Kind != "tdx.pck-key-sha256" || len(id.Value) != 32 {
		t.Fatalf("PCK identifier %v", id)
	}
}

// The appraisal is good until its collateral expires: Result.Expires is
// set, after the appraisal time and no later than the PCK certificate.
func TestExpiresFromCollateral(t *testing.T) {
	e := newEnv(t)
	ch := challenge("expires")
	res, err := e.verifier(tdx.Policy{MRTD: [][]byte{e.pl.Template.MRTD[:]}}).Verify(context.Background(), e.evidence(ch), expected(ch))
	if err != nil {
		t.Fatal(err)
	}
	if res.Expires.IsZero() || !res.Expires.After(e.now) {
		t.Fatalf("Expires %v, want a time after the appraisal (%v)", res.Expires, e.now)
	}
}
