package expattest_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"os/exec"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/expat/expattest"
	"github.com/attested-tls/go-expat/expat/expattest/testkit"
	"github.com/attested-tls/go-expat/verifier"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func key(t *testing.T) *ecdsa.PrivateKey {
	k, err := testkit.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func trusting(keys ...*ecdsa.PrivateKey) *testkit.Verifier {
	v := &testkit.Verifier{}
	for _, k := range keys {
		v.TrustedKeys = append(v.TrustedKeys, &k.PublicKey)
	}
	return v
}

// Mutual attestation: both ends get a certificate they did not ask for,
// the client's is required in the TLS handshake, and data flows.
func TestNewPairMutual(t *testing.T) {
	sk, ck := key(t), key(t)
	p, err := expattest.NewPair(ctx(t),
		&expat.Config{Attester: &testkit.Attester{Key: sk}, RequirePeerAttestation: true, Verifier: trusting(ck)},
		&expat.Config{Attester: &testkit.Attester{Key: ck}, RequirePeerAttestation: true, Verifier: trusting(sk)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.ServerErr != nil || p.ClientErr != nil {
		t.Fatalf("errors %v, %v with a nil error", p.ServerErr, p.ClientErr)
	}
	for name, a := range map[string]*expat.Attestation{"server's view": p.Server.PeerAttestation(), "client's view": p.Client.PeerAttestation()} {
		if a == nil || a.Result.Technology != testkit.Technology || a.Result.Status != verifier.TierAffirming {
			t.Fatalf("%s: %+v", name, a)
		}
	}
	if cn := p.Server.PeerAttestation().Chain[0].Subject.CommonName; cn != expattest.ClientName {
		t.Errorf("client certificate for %q", cn)
	}
	if cn := p.Client.PeerAttestation().Chain[0].Subject.CommonName; cn != expattest.ServerName {
		t.Errorf("server certificate for %q", cn)
	}
	errc := make(chan error, 1)
	go func() { _, err := p.Client.Write([]byte("ping")); errc <- err }()
	buf := make([]byte, 4)
	if _, err := io.ReadFull(p.Server, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// An attester the client's verifier does not trust: the client's setup is
// rejected (and said so), no data flows.
func TestNewPairUntrusted(t *testing.T) {
	p, err := expattest.NewPair(ctx(t),
		&expat.Config{Attester: &testkit.Attester{Key: key(t)}},
		&expat.Config{RequirePeerAttestation: true, Verifier: trusting(key(t))})
	if p == nil {
		t.Fatalf("no Pair: %v", err)
	}
	defer p.Close()
	var re *verifier.RejectedError
	if !errors.As(p.ClientErr, &re) || re.Check != verifier.CheckSignature {
		t.Fatalf("client: got %v, want a signature rejection", p.ClientErr)
	}
	if !errors.As(err, &re) {
		t.Fatalf("NewPair: got %v, want the client's rejection in it", err)
	}
	if p.Client.PeerAttestation() != nil {
		t.Fatal("attested after a rejection")
	}
	if _, err := p.Client.Write([]byte("secret")); err == nil {
		t.Fatal("data written after a rejection")
	}
}

// The zero Verifier trusts nothing: wiring it in without keys rejects.
func TestZeroVerifierRejects(t *testing.T) {
	p, _ := expattest.NewPair(ctx(t),
		&expat.Config{Attester: &testkit.Attester{Key: key(t)}},
		&expat.Config{RequirePeerAttestation: true, Verifier: &testkit.Verifier{}})
	if p == nil {
		t.Fatal("no Pair")
	}
	defer p.Close()
	if !errors.Is(p.ClientErr, verifier.ErrRejected) {
		t.Fatalf("got %v, want a rejection", p.ClientErr)
	}
}

func TestPairErrors(t *testing.T) {
	ca, err := expattest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Pair(ctx(t), nil, &expat.Config{}); err == nil {
		t.Error("nil Config accepted")
	}
	// Attestation required without a Verifier: expat.Client refuses it.
	p, err := ca.Pair(ctx(t), &expat.Config{Attester: &testkit.Attester{Key: key(t)}}, &expat.Config{RequirePeerAttestation: true})
	if p != nil || err == nil || !strings.HasPrefix(err.Error(), "expattest: client: ") {
		t.Errorf("got %v, %v; want expat.Client's refusal", p, err)
	}
	// A server certificate from another CA: the client's TLS handshake
	// fails, under ctx.
	other, _ := expattest.NewCA()
	cert, err := other.Issue(expattest.ServerName, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, cli, err := ca.TLSPair(ctx(t), cert, nil)
	var uerr x509.UnknownAuthorityError
	if srv != nil || cli != nil || !errors.As(err, &uerr) {
		t.Errorf("got %v, %v, %v; want an unknown-authority error", srv, cli, err)
	}
	// An expired ctx: no connection, promptly.
	c, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if _, _, err := ca.TLSPair(c, cert, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: got %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancelled ctx took %v", d)
	}
}

// TestTLSPairClientCert: the server requires and verifies the client's
// certificate; both ends are TLS 1.3 without resumption.
func TestTLSPairClientCert(t *testing.T) {
	ca, err := expattest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ca.Issue(expattest.ServerName, nil)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := ca.Issue("alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, cli, err := ca.TLSPair(ctx(t), sc, &cc)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	defer cli.Close()
	st := srv.ConnectionState()
	if st.Version != tls.VersionTLS13 || st.DidResume || len(st.PeerCertificates) != 1 || st.PeerCertificates[0].Subject.CommonName != "alice" {
		t.Fatalf("server state: version %x, resumed %v, peer %v", st.Version, st.DidResume, st.PeerCertificates)
	}
}

// TestLibraryDoesNotImportTestKits: no library package depends, in its
// non-test code, on a test kit (this package, testkit, the per-technology
// kits, go-expat's internal kits) or on the vendors' testing packages
// (which also register command-line flags). Library packages are all but
// the kits themselves and internal/.
func TestLibraryDoesNotImportTestKits(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	const module = "github.com/attested-tls/go-expat"
	out, err := exec.Command("go", "list", "-e",
		"-f", "{{.ImportPath}}{{range .Deps}} {{.}}{{end}}", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	isKit := func(p string) bool {
		if strings.HasPrefix(p, module+"/") {
			base := path.Base(p)
			return strings.HasSuffix(base, "test") || base == "testkit"
		}
		return strings.HasPrefix(p, "github.com/google/go-sev-guest/testing") ||
			strings.HasPrefix(p, "github.com/google/go-tdx-guest/testing")
	}
	// Demos whose whole point is a scenario that needs TEE hardware, run on
	// the TEST ONLY platforms instead; each says so in its package doc and
	// its output. Nothing else may depend on a kit.
	demosOnTestPlatforms := map[string]bool{module + "/examples/migration": true}
	isCore := func(p string) bool {
		rel, ok := strings.CutPrefix(p, module+"/")
		return ok && (rel == "ea" || rel == "expat" || rel == "attester" || rel == "verifier" ||
			strings.HasPrefix(rel, "attester/") || strings.HasPrefix(rel, "verifier/"))
	}
	isIntegrationDep := func(p string) bool {
		return p == "google.golang.org/grpc" || strings.HasPrefix(p, "google.golang.org/grpc/") ||
			strings.HasPrefix(p, "github.com/quic-go/")
	}
	checked, kits, core := 0, 0, 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if isKit(f[0]) {
			kits++
			continue
		}
		if strings.Contains(f[0], "/internal/") || demosOnTestPlatforms[f[0]] {
			continue
		}
		checked++
		if isCore(f[0]) {
			core++
		}
		for _, d := range f[1:] {
			if isKit(d) {
				t.Errorf("%s depends on %s", f[0], d)
			}
			if isCore(f[0]) && isIntegrationDep(d) {
				t.Errorf("%s depends on %s", f[0], d)
			}
		}
	}
	if checked < 10 || kits < 3 || core < 10 {
		t.Fatalf("only %d library packages, %d core packages and %d kits listed", checked, core, kits)
	}
}

// TestAttestersDoNotImportVerifiers: an attester's wire format lives in its
// own package (attester/<technology>/wire, attester/tpm/bundle), which the
// attester, the verifier and the test kit import; no attester depends on a
// verifier. (Test kits may: they hand tests a verifier that trusts them.)
func TestAttestersDoNotImportVerifiers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	const module = "github.com/attested-tls/go-expat"
	out, err := exec.Command("go", "list", "-e",
		"-f", "{{.ImportPath}}{{range .Deps}} {{.}}{{end}}", module+"/attester/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasSuffix(path.Base(f[0]), "test") {
			continue
		}
		checked++
		for _, d := range f[1:] {
			if d == module+"/verifier" || strings.HasPrefix(d, module+"/verifier/") {
				t.Errorf("%s depends on %s", f[0], d)
			}
		}
	}
	if checked < 8 {
		t.Fatalf("only %d attester packages listed", checked)
	}
}
