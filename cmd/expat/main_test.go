package main_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/expat/expattest"
	"github.com/attested-tls/go-expat/expat/expattest/testkit"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	binDir    string
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(forwarderEnv); mode != "" {
		os.Exit(forwarderMain(mode))
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binary builds the command once per test binary, with the TEST-ONLY test
// kit compiled in (-tags expattestkit).
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "expat-cmd-test")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "expat")
		out, err := exec.Command("go", "build", "-tags", "expattestkit", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// fixture is the files a test's processes use: a CA, a server and a client
// certificate, test kit keys and policies.
type fixture struct {
	dir                         string
	ca, srvCert, srvKey         string
	cliCert, cliKey             string
	kitKey, kitPub, otherKitKey string
	key                         *ecdsa.PrivateKey
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir()}
	ca, err := expattest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	f.ca = f.write(t, "ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Certificate.Raw}))
	for _, who := range []string{"server", "client"} {
		name := expattest.ServerName
		if who == "client" {
			name = expattest.ClientName
		}
		c, err := ca.Issue(name, nil)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
		if err != nil {
			t.Fatal(err)
		}
		cert := f.write(t, who+".pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}))
		key := f.write(t, who+"-key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
		if who == "server" {
			f.srvCert, f.srvKey = cert, key
		} else {
			f.cliCert, f.cliKey = cert, key
		}
	}
	f.key = f.kitKeyFile(t, "kit.pem")
	f.kitKey = filepath.Join(f.dir, "kit.pem")
	pub, err := x509.MarshalPKIXPublicKey(&f.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	f.kitPub = f.write(t, "kit-pub.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	f.kitKeyFile(t, "other-kit.pem")
	f.otherKitKey = filepath.Join(f.dir, "other-kit.pem")
	return f
}

func (f *fixture) kitKeyFile(t testing.TB, name string) *ecdsa.PrivateKey {
	t.Helper()
	k, err := testkit.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	f.write(t, name, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	return k
}

func (f *fixture) write(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// policy writes a test-kit policy trusting the fixture's kit key and
// requiring measurement app = value.
func (f *fixture) policy(t testing.TB, name string, value []byte) string {
	t.Helper()
	doc := fmt.Sprintf(`{"version":1,"technology":"test-kit","model":"background-check",
  "test_kit":{"trusted_keys":["kit-pub.pem"],"measurements":{"app":%q}}}`, hex.EncodeToString(value))
	return f.write(t, name, []byte(doc))
}

// proc is a running expat process whose stderr JSON log lines are collected.
type proc struct {
	t     testing.TB
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []map[string]any
	raw   []string
	more  chan struct{}
	done  chan struct{}
}

func start(t testing.TB, args ...string) *proc {
	t.Helper()
	return startCmd(t, exec.Command(binary(t), args...))
}

// startCmd starts cmd as a proc (see start).
func startCmd(t testing.TB, cmd *exec.Cmd) *proc {
	t.Helper()
	args := cmd.Args[1:]
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, more: make(chan struct{}, 1), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var m map[string]any
			json.Unmarshal(sc.Bytes(), &m)
			p.mu.Lock()
			p.raw = append(p.raw, sc.Text())
			if m != nil {
				p.lines = append(p.lines, m)
			}
			p.mu.Unlock()
			select {
			case p.more <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-p.done
		}
		cmd.Wait()
		if t.Failed() {
			t.Logf("stderr of %v:\n%s", args, p.stderr())
		}
	})
	return p
}

func (p *proc) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.raw, "\n")
}

// waitLog returns the first log line from index from on that matches.
func (p *proc) waitLog(from int, match func(map[string]any) bool) (map[string]any, int) {
	p.t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		p.mu.Lock()
		for i := from; i < len(p.lines); i++ {
			if match(p.lines[i]) {
				l := p.lines[i]
				p.mu.Unlock()
				return l, i + 1
			}
		}
		p.mu.Unlock()
		select {
		case <-p.more:
		case <-p.done:
			p.t.Fatalf("process exited without the expected log line:\n%s", p.stderr())
		case <-deadline:
			p.t.Fatalf("no expected log line:\n%s", p.stderr())
		}
	}
}

func msg(m string) func(map[string]any) bool {
	return func(l map[string]any) bool { return l["msg"] == m }
}

// addr waits for the "listening" line and returns its address.
func (p *proc) addr() string {
	l, _ := p.waitLog(0, msg("listening"))
	return l["addr"].(string)
}

// run runs the binary to completion and returns its exit status and output.
func run(t testing.TB, stdin io.Reader, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.Stdin = stdin
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String(), errb.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, out.String(), errb.String()
}
