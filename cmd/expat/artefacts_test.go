package main_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/attester/cca/ccatest"
	"github.com/attested-tls/go-expat/attester/sevsnp/sevsnptest"
	"github.com/attested-tls/go-expat/attester/tdx/tdxtest"
	tdxwire "github.com/attested-tls/go-expat/attester/tdx/wire"
	"github.com/attested-tls/go-expat/attester/tpm"
	"github.com/attested-tls/go-expat/attester/tpm/tpmsim"
	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/expat/expattest/testkit"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/ear"
)

var update = flag.Bool("update", false, "regenerate testdata/inspect")

// artefactDir holds one artefact per type that inspect decodes, generated
// by TestGenerateArtefacts -update from the test kits (testdata/README.md).
const artefactDir = "testdata/inspect"

// TestGenerateArtefacts regenerates testdata/inspect with -update (the TPM
// artefact needs the cgo simulator); without -update it checks that every
// artefact is there.
func TestGenerateArtefacts(t *testing.T) {
	names := []string{"sev-snp.cmw", "tdx.cmw", "cca.cmw", "tpm.cmw", "testkit.cmw", "testkit.json.cmw",
		"ear.jwt", "ear.cmw", "ear-key.pem", "collection.cmw"}
	if !*update {
		for _, n := range names {
			if _, err := os.Stat(filepath.Join(artefactDir, n)); err != nil {
				t.Errorf("%v (regenerate with go test -run TestGenerateArtefacts -update)", err)
			}
		}
		return
	}
	ctx := context.Background()
	ch := sevsnptest.RandomChallenge(t)
	rd, err := ch.ReportData64()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}

	out["sev-snp.cmw"] = sevsnptest.NewPlatform(t).Attest(t, ch, nil, nil)

	pki, err := tdxtest.NewPKI(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pl, err := pki.NewPlatform(tdxtest.DefaultPCKOptions())
	if err != nil {
		t.Fatal(err)
	}
	q, err := pl.QuoteFor(rd)
	if err != nil {
		t.Fatal(err)
	}
	v, err := (&tdxwire.Evidence{Quote: q}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if out["tdx.cmw"], err = cmw.MarshalEvidence(cmw.MediaTypeTDX, v); err != nil {
		t.Fatal(err)
	}

	cp, err := ccatest.New(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cp.Token(rd[:])
	if err != nil {
		t.Fatal(err)
	}
	if out["cca.cmw"], err = cmw.MarshalEvidence(cmw.MediaTypeCCA, tok); err != nil {
		t.Fatal(err)
	}

	sim, err := tpmsim.Open()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tpm.Open(sim, nil)
	if err != nil {
		t.Fatal(err)
	}
	ta, err := tpm.NewAttester(ctx, conn, &tpm.Config{PCRs: []int{0, 7}})
	if err != nil {
		t.Fatal(err)
	}
	if out["tpm.cmw"], err = ta.Attest(ctx, ch); err != nil {
		t.Fatal(err)
	}
	ta.Close(ctx)
	conn.Close()

	key, err := testkit.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	kit := &testkit.Attester{Key: key, Measurements: []verifier.Measurement{{Name: "app", Value: []byte("v1")}}}
	if out["testkit.cmw"], err = kit.Attest(ctx, ch); err != nil {
		t.Fatal(err)
	}
	// The same record in JSON: [type, base64url(value), indicator].
	rec, err := cmw.DecodeRecord(out["testkit.cmw"], cmw.MediaTypeTestKit, cmw.Evidence)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal([]any{rec.MediaType, base64.RawURLEncoding.EncodeToString(rec.Value), uint(rec.Indicator)})
	if _, err := cmw.Decode(js, nil); err != nil {
		t.Fatalf("JSON record: %v", err)
	}
	out["testkit.json.cmw"] = js

	earKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	iss := &ear.Issuer{Appraiser: &testkit.Verifier{TrustedKeys: []*ecdsa.PublicKey{&key.PublicKey}}, Key: earKey, KeyID: "inspect-test",
		Name: "go-expat inspect test issuer", Validity: 100 * 365 * 24 * time.Hour}
	jwt, _, err := iss.Issue(ctx, out["testkit.cmw"], &verifier.Expected{Challenge: ch})
	if err != nil {
		t.Fatal(err)
	}
	out["ear.jwt"] = jwt
	if out["ear.cmw"], err = (&ear.PassportAttester{Evidence: kit, Issuer: iss}).Attest(ctx, ch); err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&earKey.PublicKey)
	out["ear-key.pem"] = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})

	coll, err := cmw.NewCollection("")
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range []struct{ label, file string }{{"snp", "sev-snp.cmw"}, {"ear", "ear.cmw"}} {
		c, err := cmw.Decode(out[it.file], nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := coll.Add(cmw.TextLabel(it.label), c); err != nil {
			t.Fatal(err)
		}
	}
	if out["collection.cmw"], err = coll.Marshal(); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(artefactDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(artefactDir, n), out[n], 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestInspect runs the binary on every artefact and checks the claims it
// shows.
func TestInspect(t *testing.T) {
	tests := []struct {
		file string
		args []string
		want []string
		code int
	}{
		{"sev-snp.cmw", nil, []string{"SEV-SNP attestation report", "measurement", "report_data", "current_tcb", "debug false", "unverified"}, 0},
		{"tdx.cmw", nil, []string{"TDX quote", "mrtd", "rtmr3", "td_attributes", "pck_chain"}, 0},
		{"cca.cmw", nil, []string{"CCA platform token", "CCA realm token", "rim", "rem3", "implementation_id", "software"}, 0},
		{"tpm.cmw", nil, []string{"TPM 2.0 quote bundle", "pcr0", "pcr7", "SPKI SHA-256", "key_attestation", "quote.extra_data", "quote.pcr_selection    TPM_ALG 0x000b: 0,7", "quote.pcr_digest", "quote_signature        TPM_ALG 0x0018 with hash TPM_ALG 0x000b"}, 0},
		{"testkit.cmw", nil, []string{"TEST KIT", cmw.MediaTypeTestKit, "(CBOR"}, 0},
		{"testkit.json.cmw", nil, []string{"TEST KIT", "(JSON"}, 0},
		{"ear.jwt", nil, []string{"EAR (EAT Attestation Result)", "UNVERIFIED", "claims.submods.test-kit.ear.status", "claims.iss", "header.kid             inspect-test"}, 0},
		{"ear.cmw", nil, []string{"attestation-results", "EAR (EAT Attestation Result)", "UNVERIFIED"}, 0},
		{"collection.cmw", nil, []string{"CMW collection", "[snp] CMW record", "[ear] CMW record", "SEV-SNP attestation report", "EAR (EAT"}, 0},
		{"ear.jwt", []string{"--verify", filepath.Join(artefactDir, "ear-key.pem"), "--max-age", "876000h"}, []string{"VERIFIED with", "NOT checked"}, 0},
		{"ear.jwt", []string{"--verify", filepath.Join(artefactDir, "ear-key.pem"), "--max-age", "1ns"}, []string{"REJECTED"}, 1},
		{"ear.cmw", []string{"--verify", filepath.Join(artefactDir, "ear-key.pem"), "--max-age", "876000h"}, []string{"VERIFIED with"}, 0},
		{"ear.jwt", []string{"--verify", filepath.Join(artefactDir, "ear-key.pem"), "--max-age", "876000h", "--nonce", strings.Repeat("00", 64)}, []string{"REJECTED", "nonce"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.file+strings.Join(tt.args, " "), func(t *testing.T) {
			args := append(append([]string{"inspect"}, tt.args...), filepath.Join(artefactDir, tt.file))
			code, out, errOut := run(t, nil, args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tt.code, out, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	// A wrong key: rejected, exit 1.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&other.PublicKey)
	keyFile := filepath.Join(t.TempDir(), "other.pem")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600)
	code, out, _ := run(t, nil, "inspect", "--verify", keyFile, "--max-age", "876000h", filepath.Join(artefactDir, "ear.jwt"))
	if code != 1 || !strings.Contains(out, "REJECTED") || !strings.Contains(out, "signature") {
		t.Fatalf("wrong key: exit %d\n%s", code, out)
	}
	// --json, from stdin.
	f, err := os.Open(filepath.Join(artefactDir, "collection.cmw"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	code, out, _ = run(t, f, "inspect", "--json", "-")
	var n struct {
		Kind     string
		Children []struct{ Label string }
	}
	if err := json.Unmarshal([]byte(out), &n); code != 0 || err != nil || n.Kind != "CMW collection" || len(n.Children) != 2 {
		t.Fatalf("--json: exit %d, %v\n%s", code, err, out)
	}
	// Hostile input: an error, exit 2, never a crash.
	for _, bad := range [][]byte{nil, []byte("garbage"), {0x9f, 0x9f, 0x9f}, []byte("a.b.c"), []byte(`["x"`)} {
		code, out, errOut := run(t, strings.NewReader(string(bad)), "inspect", "-")
		if code != 2 || !strings.Contains(errOut, "expat: ") || strings.Contains(errOut, "panic") {
			t.Fatalf("input %q: exit %d\n%s%s", bad, code, out, errOut)
		}
	}
}
