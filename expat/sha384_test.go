package expat

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/ea"
	"github.com/attested-tls/go-expat/verifier"
)

// opensslSHA384 returns the client-side state of a real TLS 1.3 connection
// that negotiated TLS_AES_256_GCM_SHA384 with an OpenSSL server (Go never
// negotiates that suite between two Go peers). Skips without openssl, fails
// under CI=true.
func opensslSHA384(t *testing.T, p *pki) tls.ConnectionState {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl is required under CI=true")
		}
		t.Skip("openssl not installed")
	}
	dir := t.TempDir()
	keyDER, err := x509.MarshalPKCS8PrivateKey(p.server.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.server.Certificate[0]}), 0o600)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "s_server", "-quiet", "-accept", fmt.Sprintf("127.0.0.1:%d", port),
		"-cert", certPath, "-key", keyPath, "-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384", "-naccept", "1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	var conn net.Conn
	for i := 0; i < 100; i++ {
		conn, err = net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(conn, ClientTLSConfig(&tls.Config{RootCAs: p.roots, ServerName: p.serverName}))
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.Close() })
	cs := tc.ConnectionState()
	if cs.CipherSuite != tls.TLS_AES_256_GCM_SHA384 {
		t.Fatalf("negotiated %s", tls.CipherSuiteName(cs.CipherSuite))
	}
	return cs
}

// TestSHA384Suite covers T19 for expat: over a real SHA-384 connection the
// binding and AIK_pub_hash are 48 bytes and the exchange verifies. Both
// roles use the exporter of the same real connection (both ends of a TLS
// connection export the same values), the server role through the
// sans-I/O constructor.
func TestSHA384Suite(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	cs := opensslSHA384(t, p)
	client, err := NewEndpoint(&cs, false, &Config{Verifier: k.ver, PeerIdentity: PeerIdentity{VerifyOptions: verifyOpts(p.roots)}})
	if err != nil {
		t.Fatal(err)
	}
	ssess, err := ea.New(&cs, cs.CipherSuite, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	server, err := NewEndpointFromSession(ssess, &cs, nil, &Config{Attester: k.att, Certificate: &p.server})
	if err != nil {
		t.Fatal(err)
	}
	req, err := client.Request()
	if err != nil {
		t.Fatal(err)
	}
	auth, err := server.Respond(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	att, err := client.Verify(context.Background(), auth)
	if err != nil {
		t.Fatal(err)
	}
	if len(att.Challenge.Binding) != 48 || len(att.Challenge.AIKPubHash) != 48 {
		t.Fatalf("binding %d bytes, AIK_pub_hash %d bytes, want 48", len(att.Challenge.Binding), len(att.Challenge.AIKPubHash))
	}
	// A server that computes the binding with SHA-256 on this SHA-384
	// connection (a truncating implementation) is rejected.
	req2, _ := client.Request()
	ctx2, _ := ea.GetContext(req2)
	ch256, err := ComputeChallenge(&cs, crypto.SHA256, ExporterLabel, ctx2, spki(t, &p.server))
	if err != nil {
		t.Fatal(err)
	}
	wrong := *k.att
	wrong.FixedChallenge = &ch256
	server2, _ := NewEndpointFromSession(ssess, &cs, nil, &Config{Attester: &wrong, Certificate: &p.server})
	auth2, err := server2.Respond(context.Background(), req2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Verify(context.Background(), auth2); !rejectedCheck(verifier.CheckChallenge)(err) {
		t.Fatalf("SHA-256 binding on a SHA-384 connection: %v", err)
	}
}
