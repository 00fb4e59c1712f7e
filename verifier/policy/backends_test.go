package policy_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/veraison/ccatoken/platform"

	"github.com/attested-tls/go-expat/attester"
	acca "github.com/attested-tls/go-expat/attester/cca"
	"github.com/attested-tls/go-expat/attester/cca/ccatest"
	"github.com/attested-tls/go-expat/attester/sevsnp/sevsnptest"
	atdx "github.com/attested-tls/go-expat/attester/tdx"
	"github.com/attested-tls/go-expat/attester/tdx/tdxtest"
	"github.com/attested-tls/go-expat/internal/checktest"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/policy"
)

// appraise builds the policy doc (a JSON value) and appraises the
// attester's Evidence for a fresh challenge with it.
func appraise(t *testing.T, doc any, a attester.Attester) error {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	v, err := policy.Build(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	ch := sevsnptest.RandomChallenge(t)
	ev, err := a.Attest(context.Background(), ch)
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(context.Background(), ev, &verifier.Expected{Challenge: ch})
	return err
}

// TestTDXPolicy: required_td_attributes and forbidden_td_attributes reach
// the verifier, and root_crl_url is where the root CRL is fetched from,
// on the test kit's quotes (TD_ATTRIBUTES has bit 28, SEPT_VE_DISABLE).
func TestTDXPolicy(t *testing.T) {
	served, err := tdxtest.NewServed(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(served.Close)
	pl, pcs := served.Platform, served.PCS
	att, err := atdx.NewTSMAttester(&tdxtest.ConfigFS{Platform: pl}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                string
		required, forbidden string
		check               verifier.Check // 0: accepted
	}{
		{"no masks", "", "", 0},
		{"required present", "0x10000000", "", 0},
		{"required absent", "0x40000000", "", verifier.CheckMeasurement},
		{"forbidden present", "", "0x10000000", verifier.CheckMeasurement},
		{"forbidden absent", "", "0xc0000000", 0},
		{"both", "0x10000000", "0x8000000000000000", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tdx := map[string]any{
				"mrtd": []string{hex.EncodeToString(pl.Template.MRTD[:])}, "trusted_roots": []string{string(tdxtest.PEM(served.PKI.Root))},
				"pcs_url": served.URL, "root_crl_url": served.URL + "/mirror/IntelSGXRootCA.der", "max_cache_entries": 8,
			}
			if tt.required != "" {
				tdx["required_td_attributes"] = tt.required
			}
			if tt.forbidden != "" {
				tdx["forbidden_td_attributes"] = tt.forbidden
			}
			before := pcs.RootCRL.Load()
			err := appraise(t, map[string]any{"version": 1, "technology": "tdx", "model": "background-check", "tdx": tdx}, att)
			if tt.check != 0 {
				checktest.Rejected(t, err, tt.check)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if pcs.RootCRL.Load() == before {
				t.Error("root CRL not fetched from root_crl_url")
			}
		})
	}
}

// TestCCALifecycles: "lifecycles" and "allow_debug" say which platform
// lifecycle states are accepted; absent, only "secured".
func TestCCALifecycles(t *testing.T) {
	pl, err := ccatest.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	att, err := acca.NewTSMAttester(pl.Client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	const (
		secured = platform.LifecycleSecuredMin
		decomm  = platform.LifecycleDecommissionedMin
		debug   = platform.LifecycleNonCCAPlatformDebugMin
	)
	tests := []struct {
		name       string
		lifecycles []string // nil: absent
		allowDebug bool
		state      uint16
		check      verifier.Check
	}{
		{"default secured", nil, false, secured, 0},
		{"default decommissioned", nil, false, decomm, verifier.CheckLifecycle},
		{"default debug", nil, false, debug, verifier.CheckDebug},
		{"listed decommissioned", []string{"decommissioned"}, false, decomm, 0},
		{"secured not listed", []string{"decommissioned"}, false, secured, verifier.CheckLifecycle},
		{"both listed", []string{"secured", "decommissioned"}, false, secured, 0},
		{"allow_debug", nil, true, debug, 0},
		{"allow_debug keeps secured", nil, true, secured, 0},
		{"allow_debug with a list", []string{"decommissioned"}, true, debug, 0},
		{"allow_debug with a list, secured", []string{"decommissioned"}, true, secured, verifier.CheckLifecycle},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pl.Claims.Lifecycle = tt.state
			cca := map[string]any{
				"cpaks": []map[string]string{{"key": pl.CPAKPEM()}}, "rims": []string{hex.EncodeToString(pl.Claims.RIM)},
				"accept_any_software": true, "allow_debug": tt.allowDebug,
			}
			if tt.lifecycles != nil {
				cca["lifecycles"] = tt.lifecycles
			}
			err := appraise(t, map[string]any{"version": 1, "technology": "cca", "model": "background-check", "cca": cca}, att)
			if tt.check != 0 {
				checktest.Rejected(t, err, tt.check)
			} else if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestDecode: Decode applies Parse's rules to another document type, and a
// policy embedded in it is checked the same way.
func TestDecode(t *testing.T) {
	type doc struct {
		Name     string `json:"name"`
		Limit    int    `json:"limit,omitempty"`
		Backends []struct {
			File   string         `json:"file,omitempty"`
			Policy *policy.Policy `json:"policy,omitempty"`
		} `json:"backends"`
	}
	tests := []struct{ name, in, path string }{
		{"ok", `{"name":"x","comment":"c","backends":[{"policy":{"version":1,"model":"passport","ear":{}}}]}`, ""},
		{"unknown", `{"name":"x","nme":1}`, "$.nme"},
		{"case", `{"Name":"x"}`, "$.Name"},
		{"twice", `{"name":"x","name":"y"}`, "$.name"},
		{"type", `{"limit":"1"}`, "$.limit"},
		{"null", `{"name":null}`, "$.name"},
		{"trailing", `{} []`, "$"},
		{"inside the policy", `{"backends":[{"policy":{"version":1,"tdx":{"mrtdd":[]}}}]}`, "$.backends[0].policy.tdx.mrtdd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d doc
			err := policy.Decode([]byte(tt.in), &d)
			if tt.path == "" {
				if err != nil || d.Name != "x" || d.Backends[0].Policy.Model != "passport" {
					t.Fatalf("got %+v, %v", d, err)
				}
				return
			}
			var pe *policy.Error
			if !errors.As(err, &pe) || pe.Path != tt.path {
				t.Fatalf("got %v, want an error at %s", err, tt.path)
			}
		})
	}
	if err := policy.Decode([]byte(`{}`), doc{}); err == nil {
		t.Error("Decode into a non-pointer accepted")
	}
}
