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
	"net/http/httptest"
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
	ccaAtt, snp, tdxAtt, cfg := f.ccaAtt, f.snp, f.tdxAtt, f.cfg
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
// roots, a TDX test PCK root with a PCS-shaped collateral server), their
// trust anchors written to dir, and a configuration trusting them.
type fixtures struct {
	ccaPl  *ccatest.Platform
	ccaAtt attester.Attester
	snp    *sevsnptest.Platform
	tdxPl  *tdxtest.Platform
	tdxAtt attester.Attester
	cfg    map[string]any
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
	now := time.Now()
	pki, err := tdxtest.NewPKI(now)
	if err != nil {
		t.Fatal(err)
	}
	tdxPl, err := pki.NewPlatform(tdxtest.DefaultPCKOptions())
	if err != nil {
		t.Fatal(err)
	}
	col, err := tdxPl.Collateral(tdxtest.Window(now, 24*time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	pcs := &tdxtest.PCSServer{}
	pcs.Set(col)
	pcsSrv := httptest.NewServer(pcs)
	t.Cleanup(pcsSrv.Close)
	writeFile(t, dir, "tdx-root.pem", tdxtest.PEM(pki.Root))
	tdxAtt, err := atdx.NewTSMAttester(&tdxtest.ConfigFS{Platform: tdxPl}, nil)
	if err != nil {
		t.Fatal(err)
	}

	// TPM: a pinned AK (configuration only: no quote is appraised here).
	ak, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	akDER, _ := x509.MarshalPKIXPublicKey(&ak.PublicKey)
	writeFile(t, dir, "ak.pem", pemOf("PUBLIC KEY", akDER))

	cfg := map[string]any{
		"ear":         map[string]any{"key": "ear-key.pem", "key_id": "e2e", "name": "localverifier e2e", "validity": "2m"},
		"session_ttl": "30s",
		"tpm":         map[string]any{"trusted_aks": []string{"ak.pem"}, "pcr_policy": map[string]any{"7": []string{strings.Repeat("00", 32)}}},
		"sevsnp": map[string]any{
			"roots":  []map[string]string{{"product_line": sevsnptest.ProductLine, "ark": "ark.pem", "ask": "ask.pem"}},
			"policy": map[string]any{"measurements": []string{hex.EncodeToString(sevsnptest.Measurement())}},
		},
		"tdx": map[string]any{"trusted_roots": "tdx-root.pem", "pcs_url": pcsSrv.URL, "root_crl_url": pcsSrv.URL + "/IntelSGXRootCA.der",
			"policy": map[string]any{"mrtd": []string{hex.EncodeToString(tdxPl.Template.MRTD[:])}}},
		"cca": map[string]any{
			"cpaks":  []map[string]string{{"name": "board-1", "key": "cpak.pem"}},
			"policy": map[string]any{"rims": []string{hex.EncodeToString(ccaPl.Claims.RIM)}, "accept_any_software": true},
		},
	}
	return &fixtures{ccaPl: ccaPl, ccaAtt: ccaAtt, snp: snp, tdxPl: tdxPl, tdxAtt: tdxAtt, cfg: cfg}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	writeFile(t, dir, "key.pem", pemOf("PRIVATE KEY", der))
	pub, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	writeFile(t, dir, "pub.pem", pemOf("PUBLIC KEY", pub))
	writeFile(t, dir, "junk.pem", append(pemOf("PUBLIC KEY", pub), []byte("junk")...))
	tests := []struct {
		name, cfg string
	}{
		{"empty", ``},
		{"not an object", `[]`},
		{"unknown field", `{"ear":{"key":"key.pem"},"cca":{"cpaks":[]},"extra":1}`},
		{"trailing data", `{"ear":{"key":"key.pem"},"cca":{"cpaks":[]}} {}`},
		{"no backend", `{"ear":{"key":"key.pem"}}`},
		{"no EAR key", `{"cca":{"cpaks":[{"key":"pub.pem"}]}}`},
		{"missing EAR key file", `{"ear":{"key":"nope.pem"},"cca":{"cpaks":[{"key":"pub.pem"}],"policy":{"accept_any_rim":true,"accept_any_software":true}}}`},
		{"public key as EAR key", `{"ear":{"key":"pub.pem"},"cca":{"cpaks":[{"key":"pub.pem"}],"policy":{"accept_any_rim":true,"accept_any_software":true}}}`},
		{"bad duration", `{"ear":{"key":"key.pem","validity":"5 minutes"},"cca":{"cpaks":[]}}`},
		{"negative duration", `{"ear":{"key":"key.pem"},"session_ttl":"-1s","cca":{"cpaks":[]}}`},
		{"bad hex", `{"ear":{"key":"key.pem"},"cca":{"cpaks":[{"key":"pub.pem"}],"policy":{"rims":["zz"]}}}`},
		{"no CPAK", `{"ear":{"key":"key.pem"},"cca":{"cpaks":[],"policy":{"accept_any_rim":true,"accept_any_software":true}}}`},
		{"bytes after PEM", `{"ear":{"key":"key.pem"},"cca":{"cpaks":[{"key":"junk.pem"}],"policy":{"accept_any_rim":true,"accept_any_software":true}}}`},
		{"private key as CPAK", `{"ear":{"key":"key.pem"},"cca":{"cpaks":[{"key":"key.pem"}],"policy":{"accept_any_rim":true,"accept_any_software":true}}}`},
		{"TPM trusting nothing", `{"ear":{"key":"key.pem"},"tpm":{}}`},
		{"TPM bad PCR index", `{"ear":{"key":"key.pem"},"tpm":{"trusted_aks":["pub.pem"],"pcr_policy":{"07":[]}}}`},
		{"TPM bad bank", `{"ear":{"key":"key.pem"},"tpm":{"trusted_aks":["pub.pem"],"pcr_bank":"md5"}}`},
		{"SEV-SNP two collateral sources", `{"ear":{"key":"key.pem"},"sevsnp":{"collateral_dir":"x","fetch_from_kds":true,"policy":{"accept_any_measurement":true}}}`},
		{"SEV-SNP root without ARK", `{"ear":{"key":"key.pem"},"sevsnp":{"roots":[{"product_line":"Milan"}],"policy":{"accept_any_measurement":true}}}`},
		{"TDX roots not certificates", `{"ear":{"key":"key.pem"},"tdx":{"trusted_roots":"pub.pem"}}`},
	}
	wantErr := map[string]string{
		"empty": "EOF", "not an object": "cannot unmarshal", "unknown field": `unknown field "extra"`,
		"trailing data": "trailing data", "no backend": "no backend", "no EAR key": "ear.key",
		"missing EAR key file": "no such file", "public key as EAR key": `want "PRIVATE KEY"`,
		"bad duration": "bad duration", "negative duration": "bad duration", "bad hex": "bad hexadecimal",
		"no CPAK": "no CPAK", "bytes after PEM": "not a sequence", "private key as CPAK": `want "PUBLIC KEY"`,
		"TPM trusting nothing": "no AK would be trusted", "TPM bad PCR index": "bad PCR index", "TPM bad bank": "pcr_bank",
		"SEV-SNP two collateral sources": "exclusive", "SEV-SNP root without ARK": "ark is required",
		"TDX roots not certificates": `want "CERTIFICATE"`,
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, "cfg.json")
			writeFile(t, dir, "cfg.json", []byte(tt.cfg))
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // never serve
			var out bytes.Buffer
			err := run(ctx, []string{"-listen", "127.0.0.1:0", "-config", p}, &out, func(net.Addr) { t.Error("served a bad configuration") })
			if err == nil || !strings.Contains(err.Error(), wantErr[tt.name]) {
				t.Fatalf("got %v, want an error containing %q", err, wantErr[tt.name])
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

// TestConfigPolicies: every policy of the backends can be written in the
// configuration, and the built Verifier applies it (genuine Evidence that
// the policy refuses is rejected with the precise check).
func TestConfigPolicies(t *testing.T) {
	dir := t.TempDir()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	writeFile(t, dir, "ear-key.pem", pemOf("PRIVATE KEY", der))
	f := newFixtures(t, dir)
	hex48 := strings.Repeat("ab", 48)
	lowerTCB := func(r *spb.Report) { r.CommittedTcb-- } // the boot loader SPL (the low byte): provisional firmware

	snpEv := func(mut func(*spb.Report)) func(*testing.T, attester.Challenge) []byte {
		return func(t *testing.T, ch attester.Challenge) []byte { return f.snp.Attest(t, ch, mut, nil) }
	}
	tdxEv := func(t *testing.T, ch attester.Challenge) []byte { return mustAttest(t, f.tdxAtt, ch) }
	ccaEv := func(t *testing.T, ch attester.Challenge) []byte { return mustAttest(t, f.ccaAtt, ch) }
	tests := []struct {
		name     string
		set      map[string]any // path (dot-separated) -> value
		evidence func(*testing.T, attester.Challenge) []byte
		check    verifier.Check // 0: accepted
	}{
		{"sevsnp baseline", nil, snpEv(nil), 0},
		{"sevsnp minimum_tcb", map[string]any{"sevsnp.policy.minimum_tcb": map[string]any{"microcode": 255}}, snpEv(nil), verifier.CheckTCB},
		{"sevsnp provisional firmware refused", nil, snpEv(lowerTCB), verifier.CheckTCB},
		{"sevsnp allow_provisional_firmware", map[string]any{"sevsnp.policy.allow_provisional_firmware": true}, snpEv(lowerTCB), 0},
		{"sevsnp host_data", map[string]any{"sevsnp.policy.host_data": strings.Repeat("11", 32)}, snpEv(nil), verifier.CheckPolicy},
		{"sevsnp min_guest_svn", map[string]any{"sevsnp.policy.min_guest_svn": 1000}, snpEv(nil), verifier.CheckPolicy},
		{"sevsnp vmpls", map[string]any{"sevsnp.policy.vmpls": []int{1}}, snpEv(nil), verifier.CheckVMPL},
		{"sevsnp debug refused", nil, snpEv(func(r *spb.Report) { r.Policy |= 1 << 19 }), verifier.CheckDebug},
		{"sevsnp allow_debug", map[string]any{"sevsnp.policy.allow_debug": true}, snpEv(func(r *spb.Report) { r.Policy |= 1 << 19 }), 0},
		{"tdx baseline", nil, tdxEv, 0},
		{"tdx mrtd", map[string]any{"tdx.policy.mrtd": []string{hex48}}, tdxEv, verifier.CheckMeasurement},
		{"tdx no mrtd", map[string]any{"tdx.policy.mrtd": nil}, tdxEv, verifier.CheckMeasurement},
		{"tdx accept_any_mrtd", map[string]any{"tdx.policy.mrtd": nil, "tdx.policy.accept_any_mrtd": true}, tdxEv, 0},
		{"tdx rtmr", map[string]any{"tdx.policy.rtmr": [][]string{nil, nil, {hex48}, nil}}, tdxEv, verifier.CheckMeasurement},
		{"tdx xfam", map[string]any{"tdx.policy.xfam": "0000000000000000"}, tdxEv, verifier.CheckMeasurement},
		{"tdx mr_owner", map[string]any{"tdx.policy.mr_owner": hex48}, tdxEv, verifier.CheckMeasurement},
		{"tdx required_td_attributes", map[string]any{"tdx.policy.required_td_attributes": "0x40000000"}, tdxEv, verifier.CheckMeasurement},
		{"tdx forbidden_td_attributes", map[string]any{"tdx.policy.forbidden_td_attributes": "0xffffffffffffffff"}, tdxEv, verifier.CheckMeasurement},
		{"cca baseline", nil, ccaEv, 0},
		{"cca lifecycles", map[string]any{"cca.policy.lifecycles": []string{"non-cca-platform-rot-debug"}}, ccaEv, verifier.CheckLifecycle},
		{"cca rems", map[string]any{"cca.policy.rems": [][]string{{hex48, hex48, hex48, hex48}}}, ccaEv, verifier.CheckMeasurement},
		{"cca personalization_values", map[string]any{"cca.policy.personalization_values": []string{strings.Repeat("00", 64)}}, ccaEv, verifier.CheckPersonalization},
		{"cca platform_configs", map[string]any{"cca.policy.platform_configs": []string{"ff"}}, ccaEv, verifier.CheckConfig},
		{"cca accept_any_rim", map[string]any{"cca.policy.rims": nil, "cca.policy.accept_any_rim": true}, ccaEv, 0},
		{"cca no rims", map[string]any{"cca.policy.rims": nil}, ccaEv, verifier.CheckMeasurement},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := configWith(t, f.cfg, tt.set)
			delete(cfg, "tpm") // no TPM Evidence here
			cb, _ := json.Marshal(cfg)
			fc, err := parseConfig(cb)
			if err != nil {
				t.Fatal(err)
			}
			lc, err := build(fc, loader{dir: dir}, nil)
			if err != nil {
				t.Fatal(err)
			}
			ch := sevsnptest.RandomChallenge(t)
			res, err := lc.Appraiser.Verify(context.Background(), tt.evidence(t, ch), &verifier.Expected{Challenge: ch})
			if tt.check == 0 {
				if err != nil || res == nil {
					t.Fatalf("got %v, %v", res, err)
				}
				return
			}
			checktest.Rejected(t, err, tt.check)
		})
	}

	// The TPM section: the opt-in and key attestation parse, and the opt-in
	// refuses a PCR policy beside it.
	for name, tc := range map[string]struct {
		set map[string]any
		ok  bool
	}{
		"accept_any_pcrs":             {map[string]any{"tpm.pcr_policy": nil, "tpm.accept_any_pcrs": true, "tpm.require_key_attestation": true}, true},
		"accept_any_pcrs with policy": {map[string]any{"tpm.accept_any_pcrs": true}, false},
	} {
		cb, _ := json.Marshal(configWith(t, f.cfg, tc.set))
		fc, err := parseConfig(cb)
		if err == nil {
			_, err = build(fc, loader{dir: dir}, nil)
		}
		if (err == nil) != tc.ok {
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
