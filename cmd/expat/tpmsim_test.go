package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestProbeTPMSimulator: a tunnel server attesting with the TPM simulator
// (--attester tpm-sim, its AK written with --write-ak) is verified under a
// TPM policy pinning that AK and the PCR values of a freshly started TPM
// (zero), and rejected under a policy expecting another PCR 7.
func TestProbeTPMSimulator(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the TPM simulator")
	}
	f := newFixture(t)
	ak := filepath.Join(f.dir, "ak.pem")
	srv := start(t, "tunnel", "server", "--listen", "127.0.0.1:0", "--connect", echoBackend(t),
		"--cert", f.srvCert, "--key", f.srvKey, "--attester", "tpm-sim", "--pcrs", "0,7", "--write-ak", ak)
	l, _ := srv.waitLog(0, func(l map[string]any) bool { return l["msg"] == "listening" || l["msg"] == "tunnel stopped" })
	if l["msg"] == "tunnel stopped" {
		if strings.Contains(fmt.Sprint(l["err"]), "cgo") {
			t.Skip("binary built without cgo: no TPM simulator")
		}
		t.Fatalf("server: %v", l)
	}
	addr := l["addr"].(string)
	if _, err := os.Stat(ak); err != nil {
		t.Fatal(err)
	}
	zero := strings.Repeat("00", 32)
	pol := func(name, pcr7 string) string {
		return f.write(t, name, []byte(fmt.Sprintf(`{"version":1,"technology":"tpm","model":"background-check",
		  "tpm":{"trusted_aks":["ak.pem"],"pcrs":{"0":[%q],"7":[%q]}}}`, zero, pcr7)))
	}
	args := func(p string) []string {
		return []string{"probe", "--policy", p, "--ca", f.ca, "--server-name", "server.test", addr}
	}
	code, out, _ := run(t, nil, args(pol("good.json", zero))...)
	if code != 0 || !strings.Contains(out, "platform        tpm2") || !strings.Contains(out, "PCR7/sha256 = "+zero) || !strings.Contains(out, "ak-trust = pinned") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	ev := filepath.Join(f.dir, "evidence.cmw")
	code, out, _ = run(t, nil, append([]string{"probe", "--save-evidence", ev}, args(pol("bad.json", strings.Repeat("11", 32)))[1:]...)...)
	if code != 1 || !strings.Contains(out, "REJECTED") || !strings.Contains(out, "PCR") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	// The rejected Evidence, saved by probe, inspected.
	code, out, _ = run(t, nil, "inspect", ev)
	if code != 0 || !strings.Contains(out, "TPM 2.0 quote bundle") || !strings.Contains(out, "pcr7                   "+zero) {
		t.Fatalf("inspect: exit %d\n%s", code, out)
	}
}
