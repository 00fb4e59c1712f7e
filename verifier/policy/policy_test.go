package policy_test

import (
	"crypto/ecdsa"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attested-tls/go-expat/expat/expattest/testkit"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/cca"
	"github.com/attested-tls/go-expat/verifier/ear"
	"github.com/attested-tls/go-expat/verifier/policy"
	"github.com/attested-tls/go-expat/verifier/sevsnp"
	"github.com/attested-tls/go-expat/verifier/tdx"
	"github.com/attested-tls/go-expat/verifier/tpm"
	"github.com/attested-tls/go-expat/verifier/veraison"
)

// TestDocExamples loads and builds every example policy of docs/policy.
func TestDocExamples(t *testing.T) {
	dir := filepath.Join("..", "..", "docs", "policy")
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	yamls, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	files = append(files, yamls...)
	if err != nil || len(files) < 7 {
		t.Fatalf("found %d examples (%v)", len(files), err)
	}
	want := map[string]func(verifier.Verifier) bool{
		"tpm.json":      func(v verifier.Verifier) bool { _, ok := v.(*tpm.Verifier); return ok },
		"sev-snp.json":  func(v verifier.Verifier) bool { _, ok := v.(*sevsnp.Verifier); return ok },
		"sev-snp.yaml":  func(v verifier.Verifier) bool { _, ok := v.(*sevsnp.Verifier); return ok },
		"tdx.json":      func(v verifier.Verifier) bool { _, ok := v.(*tdx.Verifier); return ok },
		"cca.json":      func(v verifier.Verifier) bool { _, ok := v.(*cca.Verifier); return ok },
		"passport.json": func(v verifier.Verifier) bool { _, ok := v.(*ear.Verifier); return ok },
		"veraison.json": func(v verifier.Verifier) bool { _, ok := v.(*veraison.Verifier); return ok },
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			p, err := policy.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			v, err := policy.Build(p, &policy.Options{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			check, ok := want[filepath.Base(f)]
			if !ok {
				t.Fatalf("example %s not listed in this test", f)
			}
			if !check(v) {
				t.Fatalf("built %T", v)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	const tpmOK = `{"version":1,"technology":"tpm","model":"background-check","tpm":{"trusted_aks":["keys/tpm-ak.pem"],"pcrs":{"7":["` +
		"65caf8dd1e0ea7a6347b635d2b379c93b9a1351edc2afc3ecda700e534eb3068" + `"]}}}`
	tests := []struct {
		name, doc, path string
		build           bool
	}{
		{"unknown member", `{"version":1,"technology":"tpm","model":"background-check","tpm":{"trusted_ak":[]}}`, "$.tpm.trusted_ak", false},
		{"case differs", `{"version":1,"Technology":"tpm"}`, "$.Technology", false},
		{"duplicate", `{"version":1,"version":1}`, "$.version", false},
		{"wrong type", `{"version":"1"}`, "$.version", false},
		{"wrong element type", `{"version":1,"technology":"tpm","model":"background-check","tpm":{"pcrs":{"7":[7]}}}`, `$.tpm.pcrs["7"][0]`, false},
		{"null", `{"version":1,"tpm":null}`, "$.tpm", false},
		{"trailing", `{"version":1} {}`, "$", false},
		{"not an object", `[]`, "$", false},
		{"unterminated", `{"version":1`, "$", false},
		{"unterminated array", `{"version":1,"technology":"tdx","tdx":{"mrtd":["00"`, "$.tdx.mrtd", false},
		{"bad version", `{"version":2}`, "$.version", false},
		{"no model", `{"version":1,"technology":"tpm","tpm":{}}`, "$.model", false},
		{"unknown technology", `{"version":1,"technology":"sgx","model":"background-check"}`, "$.technology", false},
		{"missing section", `{"version":1,"technology":"tdx","model":"background-check"}`, "$.tdx", false},
		{"extra section", `{"version":1,"technology":"tdx","model":"background-check","tdx":{},"cca":{"cpaks":[]}}`, "$.cca", false},
		{"passport without ear", `{"version":1,"model":"passport"}`, "$.ear", false},
		{"number too big", `{"version":1,"technology":"sev-snp","model":"background-check","sev_snp":{"minimum_tcb":{"snp":256}}}`, "$.sev_snp.minimum_tcb.snp", false},
		{"rtmr five", `{"version":1,"technology":"tdx","model":"background-check","tdx":{"rtmr":[[],[],[],[],[]]}}`, "$.tdx.rtmr", false},
		{"depth bomb", `{"tpm":{"pcrs":{"7":` + strings.Repeat("[", 1<<19), `$.tpm.pcrs["7"][0]`, false},
		// Parse accepts these; Build refuses them.
		{"pcr hex", strings.Replace(tpmOK, "65caf8", "zzcaf8", 1), `$.tpm.pcrs["7"][0]`, true},
		{"pcr length", strings.Replace(tpmOK, `"7":["65`, `"7":["`, 1), `$.tpm.pcrs["7"][0]`, true},
		{"pcr index", strings.Replace(tpmOK, `"7":`, `"24":`, 1), `$.tpm.pcrs["24"]`, true},
		{"missing key file", strings.Replace(tpmOK, "tpm-ak.pem", "nope.pem", 1), "$.tpm.trusted_aks[0]", true},
		{"no anchor", `{"version":1,"technology":"tpm","model":"background-check","tpm":{"accept_any_pcrs":true}}`, "$.tpm.trusted_aks", true},
		{"backend refuses", strings.Replace(tpmOK, `"pcrs"`, `"accept_any_pcrs":true,"pcrs"`, 1), "$.tpm", true},
		{"snp measurement length", `{"version":1,"technology":"sev-snp","model":"background-check","sev_snp":{"measurements":["00"]}}`, "$.sev_snp.measurements[0]", true},
		{"snp collateral both", `{"version":1,"technology":"sev-snp","model":"background-check","sev_snp":{"accept_any_measurement":true,"collateral":{"fetch_from_kds":true,"bundle_dir":"x"}}}`, "$.sev_snp.collateral", true},
		{"snp revocation without collateral", `{"version":1,"technology":"sev-snp","model":"background-check","sev_snp":{"accept_any_measurement":true,"check_revocation":true}}`, "$.sev_snp.check_revocation", true},
		{"snp missing bundle", `{"version":1,"technology":"sev-snp","model":"background-check","sev_snp":{"accept_any_measurement":true,"collateral":{"bundle_dir":"nope"}}}`, "$.sev_snp.collateral.bundle_dir", true},
		{"cca no cpak", `{"version":1,"technology":"cca","model":"background-check","cca":{"cpaks":[]}}`, "$.cca.cpaks", true},
		{"ear no key", `{"version":1,"model":"passport","ear":{}}`, "$.ear.keys", true},
		{"ear bad age", `{"version":1,"model":"passport","ear":{"keys":[{"key":"keys/ear-signer.pem"}],"max_age":"-1s"}}`, "$.ear.max_age", true},
		{"veraison no url", `{"version":1,"model":"background-check","verifier":"veraison","veraison":{}}`, "$.veraison.url", true},
		{"test kit refused", `{"version":1,"technology":"test-kit","model":"background-check","test_kit":{"trusted_keys":["keys/ear-signer.pem"]}}`, "$.technology", true},
		{"tdx mask syntax", `{"version":1,"technology":"tdx","model":"background-check","tdx":{"accept_any_mrtd":true,"required_td_attributes":"10000000"}}`, "$.tdx.required_td_attributes", true},
		{"tdx mask too long", `{"version":1,"technology":"tdx","model":"background-check","tdx":{"accept_any_mrtd":true,"forbidden_td_attributes":"0x10000000000000000"}}`, "$.tdx.forbidden_td_attributes", true},
		{"tdx mask underscore", `{"version":1,"technology":"tdx","model":"background-check","tdx":{"accept_any_mrtd":true,"forbidden_td_attributes":"0x1_0"}}`, "$.tdx.forbidden_td_attributes", true},
		{"tdx mask debug bit", `{"version":1,"technology":"tdx","model":"background-check","tdx":{"accept_any_mrtd":true,"forbidden_td_attributes":"0x1"}}`, "$.tdx.forbidden_td_attributes", true},
		{"tdx masks overlap", `{"version":1,"technology":"tdx","model":"background-check","tdx":{"accept_any_mrtd":true,"required_td_attributes":"0x30000000","forbidden_td_attributes":"0x10000000"}}`, "$.tdx.forbidden_td_attributes", true},
		{"tdx negative cache", `{"version":1,"technology":"tdx","model":"background-check","tdx":{"accept_any_mrtd":true,"max_cache_entries":-1}}`, "$.tdx.max_cache_entries", true},
		{"snp failure_ttl with a bundle", `{"version":1,"technology":"sev-snp","model":"background-check","sev_snp":{"accept_any_measurement":true,"collateral":{"bundle_dir":"x","failure_ttl":"1m"}}}`, "$.sev_snp.collateral.bundle_dir", true},
		{"snp bad failure_ttl", `{"version":1,"technology":"sev-snp","model":"background-check","sev_snp":{"accept_any_measurement":true,"collateral":{"fetch_from_kds":true,"failure_ttl":"1 minute"}}}`, "$.sev_snp.collateral.failure_ttl", true},
		{"cca unknown lifecycle", `{"version":1,"technology":"cca","model":"background-check","cca":{"cpaks":[{"key":"keys/cca-cpak.pem"}],"accept_any_rim":true,"accept_any_software":true,"lifecycles":["secured","invalid"]}}`, "$.cca.lifecycles[1]", true},
		{"cca empty lifecycles", `{"version":1,"technology":"cca","model":"background-check","cca":{"cpaks":[{"key":"keys/cca-cpak.pem"}],"accept_any_rim":true,"accept_any_software":true,"lifecycles":[]}}`, "$.cca.lifecycles", true},
		{"cca debug lifecycle listed", `{"version":1,"technology":"cca","model":"background-check","cca":{"cpaks":[{"key":"keys/cca-cpak.pem"}],"accept_any_rim":true,"accept_any_software":true,"allow_debug":true,"lifecycles":["non-cca-platform-rot-debug"]}}`, "$.cca.lifecycles[0]", true},
		{"cca lifecycle twice", `{"version":1,"technology":"cca","model":"background-check","cca":{"cpaks":[{"key":"keys/cca-cpak.pem"}],"accept_any_rim":true,"accept_any_software":true,"lifecycles":["secured","secured"]}}`, "$.cca.lifecycles[1]", true},
		{"key is a certificate", strings.Replace(tpmOK, "keys/tpm-ak.pem", "-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END CERTIFICATE-----", 1), "$.tpm.trusted_aks[0]", true},
	}
	dir := filepath.Join("..", "..", "docs", "policy")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := policy.Parse([]byte(tt.doc))
			if tt.build {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				_, err = policy.Build(p, &policy.Options{Dir: dir})
			} else if p != nil {
				t.Fatalf("Parse returned a policy with error %v", err)
			}
			var pe *policy.Error
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want a *policy.Error", err)
			}
			if pe.Path != tt.path {
				t.Fatalf("got path %s (%v), want %s", pe.Path, err, tt.path)
			}
			if strings.Count(err.Error(), "policy: ") != 1 {
				t.Errorf("prefix repeated: %v", err)
			}
		})
	}
}

// TestTestKitPolicy: a test-kit policy builds through Options.TestKit only,
// with the keys and reference measurements of the document.
func TestTestKitPolicy(t *testing.T) {
	dir := t.TempDir()
	key, err := testkit.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "k.pem"), pemPublic(t, &key.PublicKey), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := `{"version":1,"technology":"test-kit","model":"background-check",
	  "test_kit":{"comment":"x","trusted_keys":["k.pem"],"measurements":{"app":"0102"}}}`
	p, err := policy.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	var gotKeys []*ecdsa.PublicKey
	var gotRefs []verifier.Measurement
	v, err := policy.Build(p, &policy.Options{Dir: dir, TestKit: func(k []*ecdsa.PublicKey, r []verifier.Measurement) (verifier.Verifier, error) {
		gotKeys, gotRefs = k, r
		return &testkit.Verifier{TrustedKeys: k, ReferenceMeasurements: r}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := v.(*testkit.Verifier); !ok {
		t.Fatalf("built %T", v)
	}
	if len(gotKeys) != 1 || !gotKeys[0].Equal(&key.PublicKey) {
		t.Fatalf("keys %v", gotKeys)
	}
	if len(gotRefs) != 1 || gotRefs[0].Name != "app" || string(gotRefs[0].Value) != "\x01\x02" {
		t.Fatalf("refs %v", gotRefs)
	}
}

func TestParseYAMLErrors(t *testing.T) {
	tests := []struct{ name, doc, path string }{
		{"unknown member", "version: 1\ntechnology: tpm\nmodel: background-check\ntpm: {trusted_ak: []}\n", "$.tpm.trusted_ak"},
		{"duplicate", "version: 1\nversion: 1\n", "$.version"},
		{"anchor", "version: 1\ntpm: &a {}\ncca: *a\n", "$.tpm"},
		{"unquoted digits", "version: 1\ntechnology: tpm\nmodel: background-check\ntpm: {pcrs: {7: [0000]}}\n", `$.tpm.pcrs["7"][0]`},
		{"hex number", "version: 0x1\n", "$.version"},
		{"unquoted mask", "version: 1\ntechnology: tdx\nmodel: background-check\ntdx: {required_td_attributes: 0x10000000}\n", "$.tdx.required_td_attributes"},
		{"float", "version: 1.5\n", "$.version"},
		{"null", "version: 1\ntpm: ~\n", "$.tpm"},
		{"two documents", "version: 1\n---\nversion: 1\n", "$"},
		{"custom tag", "version: !foo 1\n", "$.version"},
		{"not yaml", "version: [1\n", "$"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := policy.ParseYAML([]byte(tt.doc))
			var pe *policy.Error
			if p != nil || !errors.As(err, &pe) {
				t.Fatalf("got %v, %v; want a *policy.Error", p, err)
			}
			if pe.Path != tt.path {
				t.Fatalf("got path %s (%v), want %s", pe.Path, err, tt.path)
			}
		})
	}
	// The YAML and JSON examples are the same policy.
	dir := filepath.Join("..", "..", "docs", "policy")
	y, err := policy.Load(filepath.Join(dir, "sev-snp.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if y.SEVSNP == nil || y.SEVSNP.MinimumTCB == nil || y.SEVSNP.MinimumTCB.Microcode != 115 || len(y.SEVSNP.Measurements) != 1 || y.SEVSNP.VMPLs[0] != 0 {
		t.Fatalf("YAML example read as %+v", y.SEVSNP)
	}
}
