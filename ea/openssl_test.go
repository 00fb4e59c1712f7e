package ea

import (
	"bufio"
	"bytes"
	"context"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func needOpenSSL(t *testing.T) string {
	path, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl is required under CI=true for the SHA-384 tests")
		}
		t.Skip("openssl not installed")
	}
	return path
}

var keyMaterialRE = regexp.MustCompile(`Keying material:\s*([0-9A-Fa-f]+)`)

// T19: real TLS_AES_256_GCM_SHA384 connections between Go and OpenSSL.
// For each exporter label, one connection: the value Go's side uses (48
// bytes, through Session) must equal what OpenSSL exports; then a full EA
// round trip in both directions runs over that SHA-384 connection's
// exporter (both ends of a connection export the same values, which the
// first check shows against an independent implementation).
func TestSHA384OpenSSL(t *testing.T) {
	openssl := needOpenSSL(t)
	dir := t.TempDir()
	cert := testCAInstance().issue("server.test", 11, testECDSAKey(elliptic.P256(), "openssl server"))
	keyDER, _ := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600)
	os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)

	labels := []string{labelServerHC, labelServerFK, labelClientHC, labelClientFK}
	for i, label := range labels {
		goIsServer := i%2 == 0
		name := "go-client"
		if goIsServer {
			name = "go-server"
		}
		t.Run(name+"/"+label, func(t *testing.T) {
			var cs tls.ConnectionState
			var out []byte
			if goIsServer {
				cs, out = goServerOpenSSLClient(t, openssl, cert, label)
			} else {
				cs, out = goClientOpenSSLServer(t, openssl, dir, label)
			}
			if cs.CipherSuite != tls.TLS_AES_256_GCM_SHA384 || cs.Version != tls.VersionTLS13 {
				t.Fatalf("negotiated %x version %x", cs.CipherSuite, cs.Version)
			}
			m := keyMaterialRE.FindSubmatch(out)
			if m == nil {
				t.Fatalf("no keying material in openssl output:\n%s", out)
			}
			want, _ := hex.DecodeString(string(m[1]))
			sess, err := NewSession(&cs, goIsServer, nil)
			if err != nil {
				t.Fatal(err)
			}
			if sess.Hash().Size() != 48 {
				t.Fatalf("hash size %d", sess.Hash().Size())
			}
			hc, fk, kerr := sess.keys(strings.Contains(label, "server"))
			if kerr != nil {
				t.Fatal(kerr)
			}
			got := fk
			if strings.Contains(label, "handshake context") {
				got = hc
			}
			if len(got) != 48 || !bytes.Equal(got, want) {
				t.Fatalf("exporter %q:\n go      %x\n openssl %x", label, got, want)
			}
			// The SHA-384 cases of the misbehaving-peer table.
			for _, tc := range evCases() {
				if tc.suite == tls.TLS_AES_256_GCM_SHA384 {
					if err := tc.check(tc.prepare(&cs, &cs, cs.CipherSuite)); err != nil {
						t.Errorf("%s: %v", tc.name, err)
					}
				}
			}
			// Round trips over this SHA-384 connection, every scheme, both directions.
			for _, scheme := range allSchemes {
				cfg := &Config{SignatureSchemes: []tls.SignatureScheme{scheme}}
				peer, _ := New(&cs, cs.CipherSuite, !goIsServer, cfg)
				me, _ := NewSession(&cs, goIsServer, cfg)
				for _, pair := range [][2]*Session{{me, peer}, {peer, me}} {
					req, err := pair[0].NewRequest(nil)
					if err != nil {
						t.Fatal(err)
					}
					c := schemeCert(scheme, "peer.test")
					auth, err := pair[1].Authenticate(req, c, nil)
					if err != nil {
						t.Fatal(err)
					}
					a, err := pair[0].Validate(auth, &ValidateOptions{PinnedKey: mustKey(c)})
					if err != nil || a.Scheme != scheme {
						t.Fatalf("%v: %v", scheme, err)
					}
					if fin := auth[len(auth)-48-4:]; fin[0] != TypeFinished || fin[3] != 48 {
						t.Fatalf("Finished is not 48 bytes")
					}
				}
			}
		})
	}
}

func mustKey(c *tls.Certificate) any {
	k, err := certificateKey(c.Leaf)
	if err != nil {
		panic(err)
	}
	return k.pub
}

func goServerOpenSSLClient(t *testing.T, openssl string, cert *tls.Certificate, label string) (tls.ConnectionState, []byte) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, openssl, "s_client", "-connect", ln.Addr().String(), "-tls1_3",
		"-ciphersuites", "TLS_AES_256_GCM_SHA384", "-keymatexport", label, "-keymatexportlen", "48")
	cmd.Stdin = strings.NewReader("")
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	sc := tls.Server(conn, &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS13})
	sc.SetDeadline(time.Now().Add(20 * time.Second))
	if err := sc.Handshake(); err != nil {
		t.Fatal(err)
	}
	cs := sc.ConnectionState()
	// s_client exits at stdin EOF; drain until it closes.
	bufio.NewReader(sc).ReadString('\n')
	sc.Close()
	cmd.Wait()
	return cs, stdout.Bytes()
}

func goClientOpenSSLServer(t *testing.T, openssl, dir, label string) (tls.ConnectionState, []byte) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, openssl, "s_server", "-accept", "127.0.0.1:"+port, "-naccept", "1",
		"-cert", filepath.Join(dir, "cert.pem"), "-key", filepath.Join(dir, "key.pem"), "-tls1_3",
		"-ciphersuites", "TLS_AES_256_GCM_SHA384", "-keymatexport", label, "-keymatexportlen", "48")
	var stdout syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stdout
	stdin, _ := cmd.StdinPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	var conn net.Conn
	for i := 0; i < 100; i++ {
		if conn, err = net.Dial("tcp", addr); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	cc := tls.Client(conn, &tls.Config{RootCAs: testCAInstance().pool(), ServerName: "server.test", MinVersion: tls.VersionTLS13})
	cc.SetDeadline(time.Now().Add(20 * time.Second))
	if err := cc.Handshake(); err != nil {
		t.Fatalf("%v\n%s", err, stdout.Bytes())
	}
	cs := cc.ConnectionState()
	// s_server prints the keying material once the handshake is done.
	deadline := time.Now().Add(10 * time.Second)
	for !keyMaterialRE.Match(stdout.Bytes()) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cc.Close()
	stdin.Close()
	cmd.Wait()
	return cs, stdout.Bytes()
}
