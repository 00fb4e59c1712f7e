package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	spb "github.com/google/go-sev-guest/proto/sevsnp"

	"github.com/attested-tls/go-expat/attester"
	acca "github.com/attested-tls/go-expat/attester/cca"
	"github.com/attested-tls/go-expat/attester/cca/ccatest"
	"github.com/attested-tls/go-expat/attester/sevsnp/sevsnptest"
	atdx "github.com/attested-tls/go-expat/attester/tdx"
	"github.com/attested-tls/go-expat/attester/tdx/tdxtest"
	"github.com/attested-tls/go-expat/expat/expattest/testkit"
	"github.com/attested-tls/go-expat/internal/checktest"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/ear"
	"github.com/attested-tls/go-expat/verifier/local"
	"github.com/attested-tls/go-expat/verifier/policy"
	"github.com/attested-tls/go-expat/verifier/veraison"
)

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// TestEndToEnd runs the program on loopback with a configuration trusting
// TEST-ONLY platforms (a CCA platform's CPAK, SEV-SNP test roots, a TDX
// test PCK root with a PCS-shaped collateral server) and has relying
// parties appraise real Evidence of each through verifier/veraison.
func TestEndToEnd(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-genkey", filepath.Join(dir, "ear-key.pem")}, &out, nil); err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(out.Bytes())
	earPub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"-genkey", filepath.Join(dir, "ear-key.pem")}, &out, nil); err == nil {
		t.Fatal("-genkey overwrote an existing key")
	}

	f := newFixtures(t, dir)
	ccaAtt, snp, tdxAtt := f.ccaAtt, f.snp, f.tdxAtt
	// SEV-SNP, TDX and CCA inline; TPM from a policy file of its own.
	cfg := f.config(t, nil, "sev_snp", "tdx", "cca")
	tb, _ := json.Marshal(f.policies["tpm"])
	writeFile(t, dir, "tpm.json", tb)
	cfg["backends"] = append(cfg["backends"].([]any), map[string]any{"file": "tpm.json"})
	cb, _ := json.Marshal(cfg)
	cfgPath := filepath.Join(dir, writeFile(t, dir, "cfg.json", cb))

	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	logs := &lockedWriter{w: &bytes.Buffer{}}
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-config", cfgPath}, logs, func(a net.Addr) { addrc <- a })
	}()
	var addr net.Addr
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not listening")
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()

	client, err := veraison.New(&veraison.Config{URL: "http://" + addr.String(), EARKeys: []ear.TrustedKey{{ID: "e2e", Key: earPub}}, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	rp := veraison.NewVerifier(client)
	untrustedCCA, _ := ccatest.New(nil)
	untrustedAtt, _ := acca.NewTSMAttester(untrustedCCA.Client(), nil)
	tk, _ := testkit.GenerateKey()

	tests := []struct {
		name      string
		evidence  func(*testing.T, attester.Challenge) []byte
		wantCheck verifier.Check // 0 = accepted
		wantSub   string
	}{
		{"cca", func(t *testing.T, ch attester.Challenge) []byte { return mustAttest(t, ccaAtt, ch) }, 0, "cca"},
		{"sev-snp", func(t *testing.T, ch attester.Challenge) []byte { return snp.Attest(t, ch, nil, nil) }, 0, "sev-snp"},
		{"tdx", func(t *testing.T, ch attester.Challenge) []byte { return mustAttest(t, tdxAtt, ch) }, 0, "tdx"},
		{"sev-snp debug guest", func(t *testing.T, ch attester.Challenge) []byte {
			return snp.Attest(t, ch, func(r *spb.Report) { r.Policy |= 1 << 19 }, nil)
		}, verifier.CheckStatus, ""},
		{"cca from an unpinned platform", func(t *testing.T, ch attester.Challenge) []byte { return mustAttest(t, untrustedAtt, ch) }, verifier.CheckStatus, ""},
		{"test-kit evidence (no backend)", func(t *testing.T, ch attester.Challenge) []byte { return mustAttest(t, &testkit.Attester{Key: tk}, ch) }, verifier.CheckFormat, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := sevsnptest.RandomChallenge(t)
			ev := tt.evidence(t, ch)
			res, err := rp.Verify(context.Background(), ev, &verifier.Expected{Challenge: ch})
			if tt.wantCheck == 0 {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if res.Status != verifier.TierAffirming || res.Claims["submod."+tt.wantSub+".status"] != "affirming" {
					t.Fatalf("result %+v", res)
				}
				return
			}
			var re *verifier.RejectedError
			if !errors.As(err, &re) || re.Check != tt.wantCheck {
				t.Fatalf("got %v, want a rejection with Check %q", err, tt.wantCheck)
			}
		})
	}
	if !strings.Contains(logs.String(), "evidence rejected") {
		t.Errorf("rejections not logged:\n%s", logs.String())
	}
}

// fixtures are TEST-ONLY platforms (a CCA platform's CPAK, SEV-SNP test
// roots, a TDX test PCK root with a PCS-shaped collateral server, a TPM
// AK), their trust anchors written to dir, and policy documents trusting
// them.
type fixtures struct {
	ccaPl  *ccatest.Platform
	ccaAtt attester.Attester
	snp    *sevsnptest.Platform
	tdxPl  *tdxtest.Platform
	tdxAtt attester.Attester
	// policies are the verifier/policy documents by section ("tpm",
	// "sev_snp", "tdx", "cca").
	policies map[string]map[string]any
}

func newFixtures(t *testing.T, dir string) *fixtures {
	t.Helper()
	// CCA: the platform's CPAK is pinned.
	ccaPl, err := ccatest.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "cpak.pem", []byte(ccaPl.CPAKPEM()))
	ccaAtt, err := acca.NewTSMAttester(ccaPl.Client(), nil)
	if err != nil {
		t.Fatal(err)
	}

	// SEV-SNP: the test roots replace AMD's.
	snp := sevsnptest.NewPlatform(t)
	r := snp.Roots()[0]
	writeFile(t, dir, "ark.pem", pemOf("CERTIFICATE", r.ARK.Raw))
	writeFile(t, dir, "ask.pem", pemOf("CERTIFICATE", r.ASK.Raw))

	// TDX: a test PCK root and a PCS-shaped collateral server.
	served, err := tdxtest.NewServed(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(served.Close)
	tdxPl := served.Platform
	writeFile(t, dir, "tdx-root.pem", tdxtest.PEM(served.PKI.Root))
	tdxAtt, err := atdx.NewTSMAttester(&tdxtest.ConfigFS{Platform: tdxPl}, nil)
	if err != nil {
		t.Fatal(err)
	}

	// TPM: a pinned AK (configuration only: no quote is appraised here).
	ak, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	akDER, _ := x509.MarshalPKIXPublicKey(&ak.PublicKey)
	writeFile(t, dir, "ak.pem", pemOf("PUBLIC KEY", akDER))

	doc := func(tech, section string, body map[string]any) map[string]any {
		return map[string]any{"version": 1, "technology": tech, "model": "background-check", section: body}
	}
	policies := map[string]map[string]any{
		"tpm": doc("tpm", "tpm", map[string]any{"trusted_aks": []string{"ak.pem"}, "pcrs": map[string]any{"7": []string{strings.Repeat("00", 32)}}}),
		"sev_snp": doc("sev-snp", "sev_snp", map[string]any{
			"roots":        []map[string]string{{"product_line": sevsnptest.ProductLine, "ark": "ark.pem", "ask": "ask.pem"}},
			"measurements": []string{hex.EncodeToString(sevsnptest.Measurement())},
		}),
		"tdx": doc("tdx", "tdx", map[string]any{"trusted_roots": []string{"tdx-root.pem"}, "pcs_url": served.URL,
			"root_crl_url": served.URL + "/IntelSGXRootCA.der", "mrtd": []string{hex.EncodeToString(tdxPl.Template.MRTD[:])}}),
		"cca": doc("cca", "cca", map[string]any{
			"cpaks": []map[string]string{{"name": "board-1", "key": "cpak.pem"}},
			"rims":  []string{hex.EncodeToString(ccaPl.Claims.RIM)}, "accept_any_software": true,
		}),
	}
	return &fixtures{ccaPl: ccaPl, ccaAtt: ccaAtt, snp: snp, tdxPl: tdxPl, tdxAtt: tdxAtt, policies: policies}
}

// config returns a configuration with the service settings and, inline,
// the policies of the sections named, after setting each dot-separated
// path of set (whose first element names the section) in a copy of them.
func (f *fixtures) config(t *testing.T, set map[string]any, sections ...string) map[string]any {
	t.Helper()
	var backends []any
	for _, sec := range sections {
		mine := map[string]any{}
		for path, v := range set {
			if strings.HasPrefix(path, sec+".") {
				mine[path] = v
			}
		}
		backends = append(backends, map[string]any{"policy": configWith(t, f.policies[sec], mine)})
	}
	return map[string]any{
		"ear":         map[string]any{"key": "ear-key.pem", "key_id": "e2e", "name": "localverifier e2e", "validity": "2m"},
		"session_ttl": "30s",
		"backends":    backends,
	}
}

// loadMap writes cfg to dir/cfg.json and loads it.
func loadMap(t *testing.T, dir string, cfg map[string]any) (local.Config, error) {
	t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "cfg.json", b)
	lc, _, err := load(filepath.Join(dir, "cfg.json"), nil)
	return lc, err
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	writeFile(t, dir, "key.pem", pemOf("PRIVATE KEY", der))
	pub, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	writeFile(t, dir, "pub.pem", pemOf("PUBLIC KEY", pub))
	writeFile(t, dir, "junk.pem", append(pemOf("PUBLIC KEY", pub), []byte("junk")...))
	writeFile(t, dir, "bad.json", []byte(`{"version":1,"technology":"cca","model":"background-check","cca":{"cpaks":[]}}`))
	const (
		bc  = `"version":1,"model":"background-check",`
		cca = `{"policy":{` + bc + `"technology":"cca","cca":{"cpaks":[{"key":"pub.pem"}],"accept_any_rim":true,"accept_any_software":true}}}`
		key = `"ear":{"key":"key.pem"},`
	)
	withCCA := func(ccaBody string) string {
		return `{` + key + `"backends":[{"policy":{` + bc + `"technology":"cca","cca":` + ccaBody + `}}]}`
	}
	with := func(tech, section, body string) string {
		return `{` + key + `"backends":[{"policy":{` + bc + `"technology":"` + tech + `","` + section + `":` + body + `}}]}`
	}
	tests := []struct {
		name, cfg, want string
	}{
		{"empty", ``, "policy: $: malformed JSON"},
		{"not an object", `[]`, "policy: $: want an object"},
		{"unknown member", `{` + key + `"backends":[` + cca + `],"extra":1}`, "policy: $.extra: unknown member"},
		{"member twice", `{` + key + key + `"backends":[` + cca + `]}`, "policy: $.ear: member given twice"},
		{"trailing data", `{` + key + `"backends":[` + cca + `]} {}`, "policy: $: trailing data"},
		{"no backend", `{"ear":{"key":"key.pem"}}`, "policy: $.backends: no backend"},
		{"no EAR key", `{"backends":[` + cca + `]}`, "policy: $.ear.key: required"},
		{"missing EAR key file", `{"ear":{"key":"nope.pem"},"backends":[` + cca + `]}`, "policy: $.ear.key: open"},
		{"public key as EAR key", `{"ear":{"key":"pub.pem"},"backends":[` + cca + `]}`, "policy: $.ear.key: want one PEM PRIVATE KEY block"},
		{"bad duration", `{"ear":{"key":"key.pem","validity":"5 minutes"},"backends":[` + cca + `]}`, "policy: $.ear.validity: want a positive duration"},
		{"negative duration", `{` + key + `"session_ttl":"-1s","backends":[` + cca + `]}`, "policy: $.session_ttl: want a positive duration"},
		{"negative limit", `{` + key + `"max_sessions":-1,"backends":[` + cca + `]}`, "policy: $.max_sessions: negative"},
		{"limit not a number", `{` + key + `"max_sessions":"8","backends":[` + cca + `]}`, "policy: $.max_sessions: want a number"},
		{"neither file nor policy", `{` + key + `"backends":[{}]}`, "policy: $.backends[0]: want exactly one of file and policy"},
		{"file and policy", `{` + key + `"backends":[{"file":"bad.json","policy":{}}]}`, "policy: $.backends[0]: want exactly one of file and policy"},
		{"missing policy file", `{` + key + `"backends":[{"file":"nope.json"}]}`, `$.backends[0].file "nope.json": policy: $: open`},
		{"error in a policy file", `{` + key + `"backends":[{"file":"bad.json"}]}`, `$.backends[0].file "bad.json": policy: $.cca.cpaks: no trusted CPAK`},
		{"unknown member in a policy", withCCA(`{"cpaks":[],"rim":[]}`), "policy: $.backends[0].policy.cca.rim: unknown member"},
		{"policy version", `{` + key + `"backends":[{"policy":{"version":2}}]}`, "policy: $.backends[0].policy.version: want 1"},
		{"bad hex", withCCA(`{"cpaks":[{"key":"pub.pem"}],"rims":["zz"]}`), "policy: $.backends[0].policy.cca.rims[0]: want hex digits"},
		{"no CPAK", withCCA(`{"cpaks":[],"accept_any_rim":true,"accept_any_software":true}`), "policy: $.backends[0].policy.cca.cpaks: no trusted CPAK"},
		{"bytes after PEM", withCCA(`{"cpaks":[{"key":"junk.pem"}],"accept_any_rim":true,"accept_any_software":true}`), "policy: $.backends[0].policy.cca.cpaks[0].key: data after the PEM block"},
		{"private key as CPAK", withCCA(`{"cpaks":[{"key":"key.pem"}],"accept_any_rim":true,"accept_any_software":true}`), "policy: $.backends[0].policy.cca.cpaks[0].key: want one PEM PUBLIC KEY block"},
		{"CCA debug lifecycle", withCCA(`{"cpaks":[{"key":"pub.pem"}],"accept_any_rim":true,"accept_any_software":true,"lifecycles":["non-cca-platform-rot-debug"]}`), "policy: $.backends[0].policy.cca.lifecycles[0]: \"non-cca-platform-rot-debug\" is a debug state"},
		{"two CCA backends", `{` + key + `"backends":[` + cca + `,` + cca + `]}`, "policy: $.backends[1]: a second cca backend"},
		{"TPM trusting nothing", with("tpm", "tpm", `{}`), "policy: $.backends[0].policy.tpm.trusted_aks: no trust anchor"},
		{"TPM bad PCR index", with("tpm", "tpm", `{"trusted_aks":["pub.pem"],"pcrs":{"07":[]}}`), `policy: $.backends[0].policy.tpm.pcrs["07"]: want a PCR index`},
		{"TPM bad bank", with("tpm", "tpm", `{"trusted_aks":["pub.pem"],"pcr_bank":"md5"}`), "policy: $.backends[0].policy.tpm.pcr_bank: unknown bank"},
		{"SEV-SNP two collateral sources", with("sev-snp", "sev_snp", `{"collateral":{"bundle_dir":"x","fetch_from_kds":true},"accept_any_measurement":true}`), "policy: $.backends[0].policy.sev_snp.collateral: want exactly one"},
		{"SEV-SNP root without ARK", with("sev-snp", "sev_snp", `{"roots":[{"product_line":"Milan"}],"accept_any_measurement":true}`), "policy: $.backends[0].policy.sev_snp.roots[0].ark: empty"},
		{"TDX roots not certificates", with("tdx", "tdx", `{"trusted_roots":["pub.pem"],"accept_any_mrtd":true}`), "policy: $.backends[0].policy.tdx.trusted_roots[0]: want one PEM CERTIFICATE block"},
		{"TDX mask", with("tdx", "tdx", `{"accept_any_mrtd":true,"required_td_attributes":"10"}`), "policy: $.backends[0].policy.tdx.required_td_attributes: want \"0x\""},
		{"passport policy", `{` + key + `"backends":[{"policy":{"version":1,"model":"passport","ear":{"keys":[{"key":"pub.pem"}]}}}]}`, "policy: $.backends[0].policy.model: want a background check by a local verifier"},
		{"Veraison policy", `{` + key + `"backends":[{"policy":{` + bc + `"technology":"cca","verifier":"veraison","veraison":{"url":"http://127.0.0.1:1","keys":[{"key":"pub.pem"}]}}}]}`, "policy: $.backends[0].policy.model: want a background check by a local verifier"},
		{"test-kit policy", with("test-kit", "test_kit", `{"trusted_keys":["pub.pem"]}`), "policy: $.backends[0].policy.technology: test-kit policies are TEST ONLY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, "cfg.json")
			writeFile(t, dir, "cfg.json", []byte(tt.cfg))
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // never serve
			var out bytes.Buffer
			err := run(ctx, []string{"-listen", "127.0.0.1:0", "-config", p}, &out, func(net.Addr) { t.Error("served a bad configuration") })
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
			var pe *policy.Error
			if !errors.As(err, &pe) {
				t.Fatalf("%v is not a *policy.Error", err)
			}
		})
	}
	t.Run("flags", func(t *testing.T) {
		var out bytes.Buffer
		for _, args := range [][]string{{}, {"-nope"}, {"-config", "a", "extra"}} {
			if err := run(context.Background(), args, &out, nil); err == nil {
				t.Errorf("%q accepted", args)
			}
		}
	})
}

func mustAttest(t *testing.T, a attester.Attester, ch attester.Challenge) []byte {
	t.Helper()
	b, err := a.Attest(context.Background(), ch)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// lockedWriter serializes writes from the server's goroutines and reads
// from the test.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}

// couldNotCheck marks a test case whose appraisal fails without a
// rejection (collateral unreachable).
const couldNotCheck = ^verifier.Check(0)

// TestConfigPolicies: every policy of the backends can be written in the
// configuration's policy documents, and the built Verifier applies it
// (genuine Evidence that the policy refuses is rejected with the precise
// check).
func TestConfigPolicies(t *testing.T) {
	dir := t.TempDir()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	writeFile(t, dir, "ear-key.pem", pemOf("PRIVATE KEY", der))
	f := newFixtures(t, dir)
	hex48 := strings.Repeat("ab", 48)
	pcsURL := f.policies["tdx"]["tdx"].(map[string]any)["pcs_url"].(string)
	lowerTCB := func(r *spb.Report) { r.CommittedTcb-- } // the boot loader SPL (the low byte): provisional firmware

	snpEv := func(mut func(*spb.Report)) func(*testing.T, attester.Challenge) []byte {
		return func(t *testing.T, ch attester.Challenge) []byte { return f.snp.Attest(t, ch, mut, nil) }
	}
	tdxEv := func(t *testing.T, ch attester.Challenge) []byte { return mustAttest(t, f.tdxAtt, ch) }
	ccaEv := func(t *testing.T, ch attester.Challenge) []byte { return mustAttest(t, f.ccaAtt, ch) }
	tests := []struct {
		name     string
		set      map[string]any // path (dot-separated, from the section) -> value
		evidence func(*testing.T, attester.Challenge) []byte
		check    verifier.Check // 0: accepted
	}{
		{"sevsnp baseline", nil, snpEv(nil), 0},
		{"sevsnp minimum_tcb", map[string]any{"sev_snp.minimum_tcb": map[string]any{"microcode": 255}}, snpEv(nil), verifier.CheckTCB},
		{"sevsnp provisional firmware refused", nil, snpEv(lowerTCB), verifier.CheckTCB},
		{"sevsnp allow_provisional_firmware", map[string]any{"sev_snp.allow_provisional_firmware": true}, snpEv(lowerTCB), 0},
		{"sevsnp host_data", map[string]any{"sev_snp.host_data": strings.Repeat("11", 32)}, snpEv(nil), verifier.CheckPolicy},
		{"sevsnp min_guest_svn", map[string]any{"sev_snp.min_guest_svn": 1000}, snpEv(nil), verifier.CheckPolicy},
		{"sevsnp vmpls", map[string]any{"sev_snp.vmpls": []int{1}}, snpEv(nil), verifier.CheckVMPL},
		{"sevsnp debug refused", nil, snpEv(func(r *spb.Report) { r.Policy |= 1 << 19 }), verifier.CheckDebug},
		{"sevsnp allow_debug", map[string]any{"sev_snp.allow_debug": true}, snpEv(func(r *spb.Report) { r.Policy |= 1 << 19 }), 0},
		{"sevsnp no measurements", map[string]any{"sev_snp.measurements": nil}, snpEv(nil), verifier.CheckMeasurement},
		{"sevsnp accept_any_measurement", map[string]any{"sev_snp.measurements": nil, "sev_snp.accept_any_measurement": true}, snpEv(nil), 0},
		{"sevsnp KDS failure_ttl (the report carries its VCEK)", map[string]any{"sev_snp.collateral": map[string]any{
			"fetch_from_kds": true, "kds_url": "http://127.0.0.1:1", "failure_ttl": "1m"}}, snpEv(nil), 0},
		{"tdx baseline", nil, tdxEv, 0},
		{"tdx mrtd", map[string]any{"tdx.mrtd": []string{hex48}}, tdxEv, verifier.CheckMeasurement},
		{"tdx no mrtd", map[string]any{"tdx.mrtd": nil}, tdxEv, verifier.CheckMeasurement},
		{"tdx accept_any_mrtd", map[string]any{"tdx.mrtd": nil, "tdx.accept_any_mrtd": true}, tdxEv, 0},
		{"tdx rtmr", map[string]any{"tdx.rtmr": [][]string{{}, {}, {hex48}, {}}}, tdxEv, verifier.CheckMeasurement},
		{"tdx xfam", map[string]any{"tdx.xfam": "0000000000000000"}, tdxEv, verifier.CheckMeasurement},
		{"tdx mr_owner", map[string]any{"tdx.mr_owner": hex48}, tdxEv, verifier.CheckMeasurement},
		{"tdx required_td_attributes", map[string]any{"tdx.required_td_attributes": "0x40000000"}, tdxEv, verifier.CheckMeasurement},
		{"tdx required_td_attributes met", map[string]any{"tdx.required_td_attributes": "0x10000000"}, tdxEv, 0},
		{"tdx forbidden_td_attributes", map[string]any{"tdx.forbidden_td_attributes": "0xfffffffffffffffe"}, tdxEv, verifier.CheckMeasurement},
		{"tdx max_cache_entries", map[string]any{"tdx.max_cache_entries": 2}, tdxEv, 0},
		{"tdx root CRL elsewhere", map[string]any{"tdx.root_crl_url": pcsURL + "/no-crl-here"}, tdxEv, couldNotCheck},
		{"cca baseline", nil, ccaEv, 0},
		{"cca lifecycles", map[string]any{"cca.lifecycles": []string{"decommissioned"}}, ccaEv, verifier.CheckLifecycle},
		{"cca lifecycles with secured", map[string]any{"cca.lifecycles": []string{"decommissioned", "secured"}}, ccaEv, 0},
		{"cca rems", map[string]any{"cca.rems": [][]string{{hex48, hex48, hex48, hex48}}}, ccaEv, verifier.CheckMeasurement},
		{"cca personalization_values", map[string]any{"cca.personalization_values": []string{strings.Repeat("00", 64)}}, ccaEv, verifier.CheckPersonalization},
		{"cca platform_configs", map[string]any{"cca.platform_configs": []string{"ff"}}, ccaEv, verifier.CheckConfig},
		{"cca accept_any_rim", map[string]any{"cca.rims": nil, "cca.accept_any_rim": true}, ccaEv, 0},
		{"cca no rims", map[string]any{"cca.rims": nil}, ccaEv, verifier.CheckMeasurement},
		{"cca pinned to another instance", map[string]any{"cca.cpaks": []map[string]string{{"key": "cpak.pem", "instance_id": "01" + strings.Repeat("00", 32)}}}, ccaEv, verifier.CheckKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lc, err := loadMap(t, dir, f.config(t, tt.set, "sev_snp", "tdx", "cca"))
			if err != nil {
				t.Fatal(err)
			}
			ch := sevsnptest.RandomChallenge(t)
			res, err := lc.Appraiser.Verify(context.Background(), tt.evidence(t, ch), &verifier.Expected{Challenge: ch})
			switch tt.check {
			case 0:
				if err != nil || res == nil {
					t.Fatalf("got %v, %v", res, err)
				}
			case couldNotCheck:
				var re *verifier.RejectedError
				if err == nil || errors.As(err, &re) {
					t.Fatalf("got %v, %v; want a failure to appraise", res, err)
				}
			default:
				checktest.Rejected(t, err, tt.check)
			}
		})
	}

	// The TPM section: the opt-in and key attestation load, and the opt-in
	// refuses a PCR policy beside it.
	for name, tc := range map[string]struct {
		set map[string]any
		ok  bool
	}{
		"baseline":                    {nil, true},
		"accept_any_pcrs":             {map[string]any{"tpm.pcrs": nil, "tpm.accept_any_pcrs": true, "tpm.require_key_attestation": true}, true},
		"accept_any_pcrs with policy": {map[string]any{"tpm.accept_any_pcrs": true}, false},
	} {
		if _, err := loadMap(t, dir, f.config(t, tc.set, "tpm")); (err == nil) != tc.ok {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// configWith returns a deep copy of base with each dot-separated path set
// to its value (nil deletes it).
func configWith(t *testing.T, base map[string]any, set map[string]any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(base)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	for path, v := range set {
		parts := strings.Split(path, ".")
		m := out
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		if v == nil {
			delete(m, parts[len(parts)-1])
		} else {
			m[parts[len(parts)-1]] = v
		}
	}
	return out
}

// TestREADMEConfig: the README's configuration example has this program's
// shape (it decodes; its "<hex>" placeholders are not meant to build).
func TestREADMEConfig(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "## Configuration")
	_, rest, ok2 := strings.Cut(rest, "```json\n")
	doc, _, ok3 := strings.Cut(rest, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("no JSON example in README.md's Configuration section")
	}
	var c config
	if err := policy.Decode([]byte(doc), &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Backends) != 3 || c.Backends[2].Policy == nil || c.Backends[2].Policy.CCA == nil || c.EAR.Key == "" {
		t.Fatalf("README example read as %+v", c)
	}
}
