// Package tpmtest starts TPMs for tests: swtpm processes on loopback (with an
// optional EK certificate chain issued by swtpm_setup's local CA) and
// synthetic TCG event logs. Test-only: nothing here is trusted by any
// verifier unless a test configures it.
package tpmtest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/attested-tls/go-expat/attester/tpm"
)

// Swtpm is a running swtpm process.
type Swtpm struct {
	// Network is "tcp" or "unix"; Addr is the TPM command socket
	// (host:port, or a path).
	Network string
	Addr    string
	// CtrlAddr is the control channel.
	CtrlAddr string
	// EKCARoot and EKCAIntermediate are the local CA's certificates when
	// the swtpm was manufactured with EK certificates (nil otherwise).
	EKCARoot, EKCAIntermediate *x509.Certificate
}

// SwtpmOptions selects how the swtpm is manufactured.
type SwtpmOptions struct {
	// EKCert runs swtpm_setup --create-ek-cert first: an RSA 2048 EK at
	// persistent handle 0x81010001 with its certificate at NV 0x01c00002,
	// issued by a fresh local CA (root + intermediate).
	EKCert bool
	// Unix serves the command and control channels on unix sockets in the
	// test's temporary directory instead of loopback TCP ports.
	Unix bool
}

// RequireSwtpm skips the test when swtpm is missing, or fails it when
// CI=true (CI installs swtpm).
func RequireSwtpm(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range append([]string{"swtpm"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not installed (CI must install swtpm and swtpm-tools): %v", tool, err)
			}
			t.Skipf("%s not installed: %v", tool, err)
		}
	}
}

// freePorts finds two consecutive free loopback TCP ports.
func freePorts(t testing.TB) int {
	for i := 0; i < 50; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if p >= 65535 {
			continue
		}
		l2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+1))
		if err != nil {
			continue
		}
		l2.Close()
		return p
	}
	t.Fatal("no two consecutive free ports")
	return 0
}

// StartSwtpm starts swtpm on a free loopback port pair (or unix sockets),
// with fresh state in a temporary directory, and stops it when the test
// ends.
func StartSwtpm(t testing.TB, opts SwtpmOptions) *Swtpm {
	t.Helper()
	if opts.EKCert {
		RequireSwtpm(t, "swtpm_setup", "swtpm_localca")
	} else {
		RequireSwtpm(t)
	}
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	s := &Swtpm{}
	if opts.EKCert {
		s.EKCARoot, s.EKCAIntermediate = setupEK(t, dir, state)
	}
	var cmd *exec.Cmd
	for attempt := 0; attempt < 5; attempt++ {
		server, ctrl := "", ""
		if opts.Unix {
			s.Network = "unix"
			s.Addr = filepath.Join(dir, fmt.Sprintf("tpm%d.sock", attempt))
			s.CtrlAddr = filepath.Join(dir, fmt.Sprintf("ctrl%d.sock", attempt))
			server, ctrl = "type=unixio,path="+s.Addr, "type=unixio,path="+s.CtrlAddr
		} else {
			port := freePorts(t)
			s.Network = "tcp"
			s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
			s.CtrlAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port+1))
			server = fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", port)
			ctrl = fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", port+1)
		}
		cmd = exec.Command("swtpm", "socket", "--tpm2",
			"--server", server,
			"--ctrl", ctrl,
			"--flags", "not-need-init,startup-clear",
			"--tpmstate", "dir="+state)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatalf("start swtpm: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		if waitListening(s.Network, s.Addr, exited) {
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-exited
			})
			return s
		}
		_ = cmd.Process.Kill()
		<-exited
		t.Logf("swtpm did not start (attempt %d): %s", attempt+1, stderr.String())
	}
	t.Fatal("swtpm did not start")
	return nil
}

func waitListening(network, addr string, exited <-chan error) bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		c, err := net.DialTimeout(network, addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// setupEK manufactures the TPM state with swtpm_setup and a local CA
// confined to dir.
func setupEK(t testing.TB, dir, state string) (root, inter *x509.Certificate) {
	t.Helper()
	ca := filepath.Join(dir, "ca")
	if err := os.Mkdir(ca, 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	localcaConf := write("swtpm-localca.conf", fmt.Sprintf(
		"statedir = %[1]s\nsigningkey = %[1]s/signkey.pem\nissuercert = %[1]s/issuercert.pem\ncertserial = %[1]s/certserial\n", ca))
	localcaOpts := write("swtpm-localca.options",
		"--platform-manufacturer go-expat-test\n--platform-version 2.1\n--platform-model test-only\n")
	tool, err := exec.LookPath("swtpm_localca")
	if err != nil {
		t.Fatal(err)
	}
	setupConf := write("swtpm_setup.conf", fmt.Sprintf(
		"create_certs_tool = %s\ncreate_certs_tool_config = %s\ncreate_certs_tool_options = %s\nactive_pcr_banks = sha256\n",
		tool, localcaConf, localcaOpts))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "swtpm_setup", "--tpm2", "--tpmstate", state,
		"--create-ek-cert", "--config", setupConf, "--overwrite").CombinedOutput()
	if err != nil {
		t.Fatalf("swtpm_setup: %v\n%s", err, out)
	}
	return readPEMCert(t, filepath.Join(ca, "swtpm-localca-rootca-cert.pem")),
		readPEMCert(t, filepath.Join(ca, "issuercert.pem"))
}

func readPEMCert(t testing.TB, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(data)
	if blk == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

// Event is one measurement for EventLog.
type Event struct {
	PCR  uint32
	Type uint32
	Data []byte
}

// EventLog builds a TCG PC Client crypto-agile event log whose events carry
// SHA-256 digests of their data, and returns it with each event's digest
// (what a test extends into the TPM to make the log true; events of type
// EV_NO_ACTION, 3, are not extended).
func EventLog(events []Event) (log []byte, digests [][]byte) {
	le := binary.LittleEndian
	var b bytes.Buffer
	u32 := func(v uint32) { _ = binary.Write(&b, le, v) }
	// Spec ID event (TCG_PCR_EVENT, SHA-1 format, EV_NO_ACTION).
	var spec bytes.Buffer
	spec.WriteString("Spec ID Event03\x00")
	_ = binary.Write(&spec, le, uint32(0)) // platformClass
	spec.Write([]byte{0, 2, 0, 2})         // minor, major, errata, uintnSize
	_ = binary.Write(&spec, le, uint32(1))
	_ = binary.Write(&spec, le, uint16(0x000B))
	_ = binary.Write(&spec, le, uint16(32))
	spec.WriteByte(0) // vendorInfoSize
	u32(0)
	u32(3)
	b.Write(make([]byte, 20))
	u32(uint32(spec.Len()))
	b.Write(spec.Bytes())
	for _, e := range events {
		d := crypto.SHA256.New()
		d.Write(e.Data)
		sum := d.Sum(nil)
		u32(e.PCR)
		u32(e.Type)
		u32(1)
		_ = binary.Write(&b, le, uint16(0x000B))
		b.Write(sum)
		u32(uint32(len(e.Data)))
		b.Write(e.Data)
		digests = append(digests, sum)
	}
	return b.Bytes(), digests
}

// Extend extends a SHA-256 digest into a PCR by sending TPM2_PCR_Extend
// straight through tr (not through a tpm.Conn: use it only while no Conn
// command runs).
func Extend(t testing.TB, tr tpm.Transport, pcr int, digest []byte) {
	t.Helper()
	_, err := tpm2.PCRExtend{
		PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(pcr), Auth: tpm2.PasswordAuth(nil)},
		Digests: tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{{
			HashAlg: tpm2.TPMAlgSHA256, Digest: digest}}},
	}.Execute(GoTPM(tr))
	if err != nil {
		t.Fatalf("extend PCR %d: %v", pcr, err)
	}
}

// GoTPM adapts a tpm.Transport to go-tpm's transport.TPM with a background
// context, for test set-up commands.
func GoTPM(tr tpm.Transport) transport.TPM { return goTPM{tr} }

type goTPM struct{ tr tpm.Transport }

func (g goTPM) Send(cmd []byte) ([]byte, error) { return g.tr.Send(context.Background(), cmd) }
