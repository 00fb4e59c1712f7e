package main_test

import (
	"encoding/hex"
	"encoding/json"
	"net"
	"strings"
	"testing"

	"github.com/attested-tls/go-expat/expat/expattest"
)

func probeArgs(f *fixture, pol string, extra ...string) []string {
	return append([]string{"probe", "--policy", pol, "--insecure-test-kit", "--ca", f.ca,
		"--server-name", expattest.ServerName}, extra...)
}

// TestProbe: exit status 0 for a verified server (with its report), 1 for a
// tampered one (with the reason), 2 for an unreachable one.
func TestProbe(t *testing.T) {
	f := newFixture(t)
	backend := echoBackend(t)
	goodSrv := attestedServer(t, f, backend, good)
	badSrv := attestedServer(t, f, backend, bad)
	pol := f.policy(t, "p.json", good)

	code, out, errOut := run(t, nil, probeArgs(f, pol, goodSrv.addr())...)
	if code != 0 {
		t.Fatalf("verified server: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"platform        test-kit", "TEST KIT", "measurement     app = " + hex.EncodeToString(good),
		"binding         SHA-256", "key attestation", "timings         tcp_connect", "verdict         VERIFIED", "TLS             TLS 1.3"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "TEST KIT") {
		t.Errorf("no test kit warning on stderr: %q", errOut)
	}

	code, out, _ = run(t, nil, probeArgs(f, pol, "--json", badSrv.addr())...)
	if code != 1 {
		t.Fatalf("tampered server: exit %d\n%s", code, out)
	}
	var rep struct {
		Verdict, Error string
		Timings        map[string]string `json:"timings_ms"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if rep.Verdict != "rejected" || !strings.Contains(rep.Error, "measurement") || rep.Timings["attestation"] == "" {
		t.Fatalf("tampered report: %+v", rep)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	code, out, _ = run(t, nil, probeArgs(f, pol, closed)...)
	if code != 2 || !strings.Contains(out, "UNAVAILABLE") {
		t.Fatalf("unreachable server: exit %d\n%s", code, out)
	}
}

// TestTestKitNeedsOptIn: the test kit is refused without
// --insecure-test-kit, for the attester and for test-kit policies.
func TestTestKitNeedsOptIn(t *testing.T) {
	f := newFixture(t)
	code, _, errOut := run(t, nil, "tunnel", "server", "--listen", "127.0.0.1:0", "--connect", "127.0.0.1:1",
		"--cert", f.srvCert, "--key", f.srvKey, "--attester", "testkit", "--test-kit-key", f.kitKey)
	if code != 2 || !strings.Contains(errOut, "--insecure-test-kit") {
		t.Fatalf("attester: exit %d: %s", code, errOut)
	}
	code, out, _ := run(t, nil, "probe", "--policy", f.policy(t, "p.json", good), "127.0.0.1:1")
	if code != 2 || !strings.Contains(out, "TEST ONLY") {
		t.Fatalf("policy: exit %d: %s", code, out)
	}
}

// TestBadPolicy: a policy error names the member.
func TestBadPolicy(t *testing.T) {
	f := newFixture(t)
	pol := f.write(t, "bad.json", []byte(`{"version":1,"technology":"tpm","model":"background-check","tpm":{"pcrs":{"7":["00"]},"trusted_aks":["x.pem"]}}`))
	code, out, _ := run(t, nil, "probe", "--policy", pol, "127.0.0.1:1")
	if code != 2 || !strings.Contains(out, `$.tpm.`) {
		t.Fatalf("exit %d: %s", code, out)
	}
}

// TestProbeMutual: probe attests itself (--attester) to a server whose
// policy requires it, and the report names the local attester.
func TestProbeMutual(t *testing.T) {
	f := newFixture(t)
	srv := attestedServer(t, f, echoBackend(t), good, "--ca", f.ca, "--policy", f.policy(t, "srv.json", good))
	pol := f.policy(t, "p.json", good)
	mutual := []string{"--cert", f.cliCert, "--key", f.cliKey, "--attester", "testkit", "--test-kit-key", f.kitKey,
		"--test-kit-measurement", "app=" + hex.EncodeToString(good)}
	code, out, _ := run(t, nil, probeArgs(f, pol, append(mutual, srv.addr())...)...)
	if code != 0 || !strings.Contains(out, "local attester  *** TEST KIT") {
		t.Fatalf("mutual: exit %d\n%s", code, out)
	}
	l, _ := srv.waitLog(0, msg("connection"))
	if l["verdict"] != "verified" {
		t.Fatalf("server log: %v", l)
	}
	// Without attesting, the server refuses the probe.
	code, out, _ = run(t, nil, probeArgs(f, pol, "--cert", f.cliCert, "--key", f.cliKey, srv.addr())...)
	if code != 1 || !strings.Contains(out, "REFUSED-BY-PEER") {
		t.Fatalf("unattested probe: exit %d\n%s", code, out)
	}
}
