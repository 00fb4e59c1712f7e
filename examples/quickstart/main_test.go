package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/attester/tpm/tpmsim"
)

// The quickstart's tests drive the real program: the simulated TPM, TLS
// over loopback, expat, verifier/tpm and verifier/ear. The simulator is one
// per process, so none of the in-process tests runs in parallel.

// runDemo runs the program in this process.
func runDemo(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestDemo(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     []string // substrings of stdout, in order
		wantNot  []string
	}{
		{
			name:     "happy path",
			wantCode: 0,
			want: []string{
				`[client] TLS 1.3 handshake done`,
				`[client] attestation report for the server`,
				`CN=quickstart.local`,
				`PCR 16           ` + short(expectedPCRs()[16]) + `  matches the policy`,
				`PCR 23           ` + short(expectedPCRs()[23]) + `  matches the policy`,
				`binding          quote and certification carry`,
				`key attestation  the TLS key is TPM-resident and non-exportable, certified by the AK (TPM2_Certify): ok`,
				`verdict          VERIFIED: AFFIRMING (background-check model, appraised by go-expat/verifier/tpm)`,
				`timings          TLS handshake `,
				`application data (sent only after the verdict): got "hello, attested peer`,
			},
			wantNot: []string{"FAILED", "REJECTED", "TAMPER"},
		},
		{
			name:     "tampered server is rejected",
			args:     []string{"-tamper"},
			wantCode: 1,
			want: []string{
				`TAMPER: after boot, measured "unapproved kernel module" into PCR 23`,
				`[client] attestation of the server FAILED`,
				`verdict          REJECTED by check "pcr": tpm: PCR 23 is `,
				`not a value the policy accepts`,
				`no application data was exchanged`,
			},
			wantNot: []string{"VERIFIED: AFFIRMING", "application data (sent", `got "hello from the client"`},
		},
		{
			name:     "mutual",
			args:     []string{"-mutual"},
			wantCode: 0,
			want: []string{
				`mutual: the client attests from the SAME simulated TPM`,
				`[client] TLS key created inside the TPM`,
				`CN=quickstart client`,
				`verdict          VERIFIED: AFFIRMING (background-check model`,
				`application data (sent only after the verdict)`,
			},
			wantNot: []string{"FAILED", "REJECTED"},
		},
		{
			name:     "passport",
			args:     []string{"-passport"},
			wantCode: 0,
			want: []string{
				`passport model: a local Verifier appraises this TPM's Evidence`,
				`trust: the server's Verifier, by its EAR signing key`,
				`trust vector     instance-identity affirming, hardware affirming, executables affirming (the PCR policy), storage-opaque affirming`,
				`the EAR's eat_nonce is this connection's challenge`,
				`verdict          VERIFIED: AFFIRMING (passport model, appraised by go-expat quickstart local verifier)`,
				`application data (sent only after the verdict)`,
			},
			wantNot: []string{"FAILED", "REJECTED", "PCR 16           "},
		},
		{
			name:     "passport from a tampered server is never issued",
			args:     []string{"-passport", "-tamper"},
			wantCode: 1,
			want: []string{
				`[client] attestation of the server FAILED`,
				`REJECTED: the server refused to attest`,
			},
			wantNot: []string{"VERIFIED: AFFIRMING", "application data (sent"},
		},
		{
			name:     "mutual passport",
			args:     []string{"-mutual", "-passport"},
			wantCode: 0,
			want:     []string{`verdict          VERIFIED: AFFIRMING (passport model`, `application data (sent only after the verdict)`},
			wantNot:  []string{"FAILED", "REJECTED"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runDemo(t, tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, out, errOut)
			}
			checkOutput(t, out, tt.want, tt.wantNot)
		})
	}
}

// TestDemoReportsEachSide checks that with -mutual each side printed its own
// appraisal of the other, and that the server saw the client's data only
// after both verdicts.
func TestDemoReportsEachSide(t *testing.T) {
	code, out, errOut := runDemo(t, "-mutual")
	if code != 0 {
		t.Fatalf("exit code %d\n%s\n%s", code, out, errOut)
	}
	if n := strings.Count(out, "VERIFIED: AFFIRMING"); n != 2 {
		t.Errorf("got %d verdicts, want 2 (one per side)\n%s", n, out)
	}
	srvReport := strings.Index(out, "[server] attestation report for the client")
	cliReport := strings.Index(out, "[client] attestation report for the server")
	data := strings.Index(out, `[server] application data: got "hello from the client"`)
	if srvReport < 0 || cliReport < 0 || data < 0 || data < srvReport || data < cliReport {
		t.Errorf("reports at %d and %d, data at %d: want both reports before the data\n%s", srvReport, cliReport, data, out)
	}
}

// TestDemoMutualTampered: with -mutual in one process both sides share the
// tampered TPM. Whichever appraisal finishes first rejects and closes the
// connection; the other side may then see only the close. At least one side
// must name the PCR, and nobody may exchange data.
func TestDemoMutualTampered(t *testing.T) {
	for range 5 {
		code, out, errOut := runDemo(t, "-mutual", "-tamper")
		if code != 1 {
			t.Fatalf("exit code %d, want 1\n%s\n%s", code, out, errOut)
		}
		checkOutput(t, out, []string{`[client] attestation of the server FAILED`, `no application data was exchanged`},
			[]string{"VERIFIED: AFFIRMING", "application data (sent", "application data: got"})
		if !strings.Contains(out, `REJECTED by check "pcr": tpm: PCR 23 is `) {
			t.Errorf("no side rejected PCR 23\n%s", out)
		}
	}
}

// TestTamperChangesOnlyPCR23 checks the reported value: the rejected PCR is
// the software replay of the boot chain plus the rogue component.
func TestTamperChangesOnlyPCR23(t *testing.T) {
	code, out, _ := runDemo(t, "-tamper")
	if code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	h := sha256.New()
	h.Write(expectedPCRs()[23])
	h.Write(rogueComponent.digest())
	want := `PCR 23 is ` + hex.EncodeToString(h.Sum(nil)) + `, not a value the policy accepts`
	if !strings.Contains(out, want) {
		t.Errorf("output lacks %q\n%s", want, out)
	}
	if strings.Contains(out, "PCR 16 is") {
		t.Errorf("PCR 16 reported as changed\n%s", out)
	}
}

func TestFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"server and client", []string{"-server", "127.0.0.1:0", "-client", "127.0.0.1:1", "-ak-file", "x"}},
		{"server without ak-file", []string{"-server", "127.0.0.1:0"}},
		{"client without ak-file", []string{"-client", "127.0.0.1:1"}},
		{"ak-file alone", []string{"-ak-file", "x"}},
		{"mutual two processes without client-ak-file", []string{"-server", "127.0.0.1:0", "-ak-file", "x", "-mutual"}},
		{"tampered client without a TPM", []string{"-client", "127.0.0.1:1", "-ak-file", "x", "-tamper"}},
		{"stray argument", []string{"extra"}},
		{"unknown flag", []string{"-nope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runDemo(t, tt.args...)
			if code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
			if !strings.Contains(errOut, "Usage of quickstart") {
				t.Errorf("stderr lacks the usage:\n%s", errOut)
			}
		})
	}
}

func TestClientWithoutServerFile(t *testing.T) {
	code, out, errOut := runDemo(t, "-client", "127.0.0.1:1", "-ak-file", filepath.Join(t.TempDir(), "missing.pem"))
	if code != 1 || out != "" || !strings.Contains(errOut, "missing.pem") {
		t.Errorf("code %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// testTrust returns a valid trust value with a real AK from the simulator.
func testTrust(tb testing.TB) *peerTrust {
	tb.Helper()
	ctx := context.Background()
	plat, err := bootPlatform(ctx, tpmsim.Open, false)
	if err != nil {
		tb.Fatal(err)
	}
	defer plat.close(ctx)
	ca, err := newDemoCA("test")
	if err != nil {
		tb.Fatal(err)
	}
	issuer, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return &peerTrust{CA: ca.cert, AKPublic: plat.att.AKPublic(), Issuer: &issuer.PublicKey}
}

func TestTrustFile(t *testing.T) {
	tr := testTrust(t)
	good, err := tr.marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "trust.pem")
	if err := tr.writeFile(path); err != nil {
		t.Fatal(err)
	}
	got, err := readTrustFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !got.CA.Equal(tr.CA) || !bytes.Equal(got.AKPublic, tr.AKPublic) || !got.Issuer.Equal(tr.Issuer) {
		t.Error("trust file does not round-trip")
	}

	block := func(typ string, b []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	caPEM, akPEM := block(pemCA, tr.CA.Raw), block(pemAK, tr.AKPublic)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384DER, _ := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	tests := []struct {
		name string
		data []byte
		ok   bool
	}{
		{"written file", good, true},
		{"without issuer", cat(caPEM, akPEM), true},
		{"blank lines around", cat([]byte("\n\n"), caPEM, []byte("\r\n"), akPEM, []byte("\n")), true},
		{"empty", nil, false},
		{"no AK", caPEM, false},
		{"no CA", akPEM, false},
		{"two CAs", cat(caPEM, caPEM, akPEM), false},
		{"two AKs", cat(caPEM, akPEM, akPEM), false},
		{"unknown block", cat(caPEM, akPEM, block("PRIVATE KEY", []byte{1})), false},
		{"text before", cat([]byte("hello\n"), caPEM, akPEM), false},
		{"text after", cat(caPEM, akPEM, []byte("bye")), false},
		{"truncated block", cat(caPEM, akPEM[:len(akPEM)-10]), false},
		{"headers", cat(caPEM, pem.EncodeToMemory(&pem.Block{Type: pemAK, Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: tr.AKPublic})), false},
		{"AK with trailing byte", cat(caPEM, block(pemAK, append(bytes.Clone(tr.AKPublic), 0))), false},
		{"AK truncated", cat(caPEM, block(pemAK, tr.AKPublic[:len(tr.AKPublic)-1])), false},
		{"CA not a certificate", cat(block(pemCA, []byte{0x30, 0}), akPEM), false},
		{"issuer on P-384", cat(caPEM, akPEM, block(pemIssuer, p384DER)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseTrust(tt.data)
			if tt.ok != (err == nil) {
				t.Fatalf("parseTrust: err = %v, want ok = %v", err, tt.ok)
			}
			if err != nil && got != nil {
				t.Error("non-nil result with an error")
			}
		})
	}

	big := filepath.Join(t.TempDir(), "big.pem")
	if err := os.WriteFile(big, cat(good, bytes.Repeat([]byte("\n"), maxTrustFile)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readTrustFile(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized file: err = %v", err)
	}
}

// FuzzParseTrust: no panic, nil result on error, a parsed file re-encodes to
// a file that parses to the same values, and no strict prefix of a valid
// file parses to the same values.
func FuzzParseTrust(f *testing.F) {
	tr := testTrust(f)
	good, err := tr.marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseTrust(data)
		if err != nil {
			if got != nil {
				t.Fatal("non-nil result with an error")
			}
			return
		}
		again, err := got.marshal()
		if err != nil {
			t.Fatal(err)
		}
		back, err := parseTrust(again)
		if err != nil {
			t.Fatalf("re-encoded file does not parse: %v", err)
		}
		if !back.CA.Equal(got.CA) || !bytes.Equal(back.AKPublic, got.AKPublic) || (back.Issuer == nil) != (got.Issuer == nil) ||
			(got.Issuer != nil && !back.Issuer.Equal(got.Issuer)) {
			t.Fatal("re-encoded file parses to other values")
		}
		canon := bytes.TrimSpace(again)
		for i := 0; i < len(canon); i += 1 + len(canon)/64 {
			if p, err := parseTrust(canon[:i]); err == nil && p.Issuer != nil {
				t.Fatalf("strict prefix of %d bytes parses with all blocks", i)
			}
		}
	})
}

// --- the built program ---

// buildDemo builds the quickstart binary with the given extra environment.
func buildDemo(t *testing.T, env ...string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH")
	}
	bin := filepath.Join(t.TempDir(), "quickstart")
	cmd := exec.Command(goBin, "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// noCgo opens the TPM as tpmsim.Open does in a build without cgo.
func noCgo() (*tpmsim.Simulator, error) { return nil, tpmsim.ErrNoCgo }

// TestNoCgo: without the simulator (a build without cgo), every mode that
// needs a TPM prints one line saying what to install, and fails.
// TestNoCgoBuild checks that such a build is what this test simulates.
func TestNoCgo(t *testing.T) {
	akFile := filepath.Join(t.TempDir(), "ak.json")
	for _, args := range [][]string{nil, {"-tamper"}, {"-passport"}, {"-mutual"}, {"-server", "127.0.0.1:0", "-ak-file", akFile}} {
		t.Run(strings.Join(append([]string{"quickstart"}, args...), " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := runWithTPM(args, &stdout, &stderr, noCgo); code != 1 {
				t.Fatalf("exit status %d, want 1", code)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			if len(lines) != 1 || lines[0] != errNoSimulator.Error() || !strings.Contains(lines[0], "apt-get install gcc libssl-dev") {
				t.Errorf("stderr %q, want one line naming the packages to install", stderr.String())
			}
		})
	}
}

// TestNoCgoBuild: with CGO_ENABLED=0 the program's build graph resolves
// (no package is left without files, none compiles C), the simulator's C
// code is not in it, and tpmsim is its no-cgo variant, whose API
// attester/tpm/tpmsim's TestNoCgoVariantAPI holds equal to the cgo one's,
// and whose Open returns ErrNoCgo (TestNoCgo's premise). go list reads
// files only: unlike a build it needs no cold compile of the standard
// library without cgo.
func TestNoCgoBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	cmd := exec.Command("go", "list", "-deps", "-e", "-json=ImportPath,Standard,GoFiles,CgoFiles,Error,DepsErrors", ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	type pkg struct {
		ImportPath string
		Standard   bool
		GoFiles    []string
		CgoFiles   []string
		Error      *struct{ Err string }
		DepsErrors []struct{ Err string }
	}
	const tpmsimPath = "github.com/attested-tls/go-expat/attester/tpm/tpmsim"
	dec := json.NewDecoder(bytes.NewReader(out))
	n, sawMain := 0, false
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		n++
		if p.Error != nil || len(p.DepsErrors) > 0 {
			t.Errorf("%s: %v %v", p.ImportPath, p.Error, p.DepsErrors)
		}
		if len(p.CgoFiles) > 0 {
			t.Errorf("%s has cgo files %v without cgo", p.ImportPath, p.CgoFiles)
		}
		if !p.Standard && len(p.GoFiles) == 0 {
			t.Errorf("%s has no Go files without cgo", p.ImportPath)
		}
		switch {
		case p.ImportPath == "github.com/google/go-tpm-tools/simulator":
			t.Error("the simulator's C code is in a build without cgo")
		case p.ImportPath == tpmsimPath && (len(p.GoFiles) != 1 || p.GoFiles[0] != "nocgo.go"):
			t.Errorf("tpmsim without cgo compiles %v, want [nocgo.go]", p.GoFiles)
		case p.ImportPath == "github.com/attested-tls/go-expat/examples/quickstart":
			sawMain = true
		}
	}
	if !sawMain || n < 50 {
		t.Fatalf("%d packages listed, quickstart among them: %v", n, sawMain)
	}
}

// serverProcess is a running "quickstart -server".
type serverProcess struct {
	cmd  *exec.Cmd
	addr string
	out  *syncBuffer
}

// startServer starts the server process and waits until it listens.
func startServer(t *testing.T, bin string, args ...string) *serverProcess {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-server", "127.0.0.1:0"}, args...)...)
	pr, pw := io.Pipe()
	out := &syncBuffer{}
	cmd.Stdout = io.MultiWriter(pw, out)
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &serverProcess{cmd: cmd, out: out}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server process: %v\n%s", err, out.String())
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("server process did not stop on interrupt\n%s", out.String())
		}
		pw.Close()
	})
	listening := regexp.MustCompile(`\[server\] listening on (\S+)`)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
				break
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case s.addr = <-found:
	case <-time.After(60 * time.Second):
		t.Fatalf("server did not start listening\n%s", out.String())
	}
	return s
}

// runClientBin runs "quickstart -client" to completion.
func runClientBin(t *testing.T, bin, addr string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-client", addr}, args...)...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &exit):
		return exit.ExitCode(), string(out)
	}
	t.Fatalf("client: %v", err)
	return -1, ""
}

// TestTwoProcesses runs server and client as separate processes, each with
// its own simulated TPM, exchanging trust through the -ak-file files.
func TestTwoProcesses(t *testing.T) {
	bin := buildDemo(t)
	dir := t.TempDir()
	srvFile := filepath.Join(dir, "server.pem")
	cliFile := filepath.Join(dir, "client.pem")

	t.Run("server attests", func(t *testing.T) {
		srv := startServer(t, bin, "-ak-file", srvFile)
		code, out := runClientBin(t, bin, srv.addr, "-ak-file", srvFile)
		if code != 0 {
			t.Fatalf("client exit %d\n%s\nserver:\n%s", code, out, srv.out.String())
		}
		checkOutput(t, out, []string{
			`issued by "go-expat quickstart demo CA (server, DEMO ONLY)"`,
			`verdict          VERIFIED: AFFIRMING (background-check model`,
			`application data (sent only after the verdict): got "hello, attested peer`,
		}, []string{"[demo]", "[server]"})
		// A second client on the same server: a new connection, a new
		// attestation.
		if code, out := runClientBin(t, bin, srv.addr, "-ak-file", srvFile); code != 0 {
			t.Fatalf("second client exit %d\n%s", code, out)
		}
		waitFor(t, srv.out, `[server] application data: got "hello from the client", replied`, 2)
	})

	t.Run("tampered server", func(t *testing.T) {
		srv := startServer(t, bin, "-ak-file", srvFile, "-tamper")
		code, out := runClientBin(t, bin, srv.addr, "-ak-file", srvFile)
		if code != 1 {
			t.Fatalf("client exit %d, want 1\n%s", code, out)
		}
		checkOutput(t, out, []string{`REJECTED by check "pcr": tpm: PCR 23 is `, `no application data was exchanged`}, []string{"VERIFIED: AFFIRMING"})
		waitFor(t, srv.out, `[server] the client closed the connection (tls: bad certificate): it did not accept our attestation`, 1)
	})

	t.Run("mutual, two TPMs", func(t *testing.T) {
		srv := startServer(t, bin, "-ak-file", srvFile, "-mutual", "-client-ak-file", cliFile)
		code, out := runClientBin(t, bin, srv.addr, "-ak-file", srvFile, "-mutual", "-client-ak-file", cliFile)
		if code != 0 {
			t.Fatalf("client exit %d\n%s\nserver:\n%s", code, out, srv.out.String())
		}
		checkOutput(t, out, []string{`[client] TPM: Microsoft reference TPM 2.0 simulator`, `VERIFIED: AFFIRMING`}, nil)
		waitFor(t, srv.out, `[server] attestation report for the client`, 1)
		checkOutput(t, srv.out.String(), []string{`issued by "go-expat quickstart demo CA (client, DEMO ONLY)"`, `VERIFIED: AFFIRMING`}, nil)
		// Two processes, two TPMs: the AKs differ.
		srvAK := regexp.MustCompile(`\[server\] attestation key \(AK\) derived .*: name (\S+)`).FindStringSubmatch(srv.out.String())
		cliAK := regexp.MustCompile(`\[client\] attestation key \(AK\) derived .*: name (\S+)`).FindStringSubmatch(out)
		if srvAK == nil || cliAK == nil || srvAK[1] == cliAK[1] {
			t.Errorf("AK names %v and %v: want two different AKs", srvAK, cliAK)
		}

		// The same server now meets a tampered client: the server rejects
		// it, and the client learns it when the server closes.
		code, out = runClientBin(t, bin, srv.addr, "-ak-file", srvFile, "-mutual", "-client-ak-file", cliFile, "-tamper")
		if code != 1 {
			t.Fatalf("tampered client exit %d, want 1\n%s", code, out)
		}
		// Depending on timing the client learns it during setup, right
		// after, or when it waits for the reply; the reason is the same.
		checkOutput(t, out, []string{`the server closed the connection (tls: bad certificate)`}, []string{"application data (sent"})
		waitFor(t, srv.out, `REJECTED by check "pcr": tpm: PCR 23 is `, 1)
	})

	t.Run("passport", func(t *testing.T) {
		srv := startServer(t, bin, "-ak-file", srvFile, "-passport")
		code, out := runClientBin(t, bin, srv.addr, "-ak-file", srvFile, "-passport")
		if code != 0 {
			t.Fatalf("client exit %d\n%s\nserver:\n%s", code, out, srv.out.String())
		}
		checkOutput(t, out, []string{`VERIFIED: AFFIRMING (passport model, appraised by go-expat quickstart local verifier)`}, nil)
		// A client expecting a passport from a server that has no
		// Verifier key in its file is refused before connecting.
		srv2 := startServer(t, bin, "-ak-file", filepath.Join(dir, "plain.pem"))
		code, out = runClientBin(t, bin, srv2.addr, "-ak-file", filepath.Join(dir, "plain.pem"), "-passport")
		if code != 1 || !strings.Contains(out, "no EAR issuer key") {
			t.Errorf("exit %d, output:\n%s", code, out)
		}
	})
}

func checkOutput(t *testing.T, out string, want, wantNot []string) {
	t.Helper()
	rest := out
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Errorf("output lacks %q (after the previous expected lines)\n%s", w, out)
			return
		}
		rest = rest[i+len(w):]
	}
	for _, w := range wantNot {
		if strings.Contains(out, w) {
			t.Errorf("output contains %q\n%s", w, out)
		}
	}
}

// waitFor waits until buf holds s at least n times (server output arrives
// asynchronously).
func waitFor(t *testing.T, buf *syncBuffer, s string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(buf.String(), s) < n {
		if time.Now().After(deadline) {
			t.Fatalf("server output lacks %d× %q\n%s", n, s, buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for a writing process and a reading test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
