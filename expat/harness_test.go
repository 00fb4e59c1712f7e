package expat

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"testing"
	"time"
)

// pki is a throwaway CA with server and client certificates, for tests.
type pki struct {
	roots      *x509.CertPool
	server     tls.Certificate
	client     tls.Certificate
	other      tls.Certificate // a second server identity under the same CA
	untrusted  tls.Certificate // self-signed, not under the CA
	caCert     *x509.Certificate
	caKey      crypto.Signer
	serverName string
}

func newPKI(t testing.TB) *pki {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "go-expat test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	p := &pki{roots: x509.NewCertPool(), caCert: ca, caKey: caKey, serverName: "server.test"}
	p.roots.AddCert(ca)
	p.server = p.issue(t, "server.test", x509.ExtKeyUsageServerAuth, ca, caKey)
	p.other = p.issue(t, "server.test", x509.ExtKeyUsageServerAuth, ca, caKey)
	p.client = p.issue(t, "client.test", x509.ExtKeyUsageClientAuth, ca, caKey)
	p.untrusted = p.issue(t, "server.test", x509.ExtKeyUsageServerAuth, nil, nil)
	return p
}

func (p *pki) issue(t testing.TB, name string, eku x509.ExtKeyUsage, ca *x509.Certificate, caKey crypto.Signer) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{eku},
	}
	parent, signer := ca, caKey
	if ca == nil {
		parent, signer = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// tlsOpts shapes a TLS pair.
type tlsOpts struct {
	clientCert   bool // the client presents p.client
	serverCert   *tls.Certificate
	serverConfig func(*tls.Config)
	clientConfig func(*tls.Config)
}

// tlsPair returns both ends of a TLS 1.3 connection over loopback TCP,
// handshakes completed.
func tlsPair(t testing.TB, p *pki, o tlsOpts) (srv, cli *tls.Conn) {
	t.Helper()
	scert := p.server
	if o.serverCert != nil {
		scert = *o.serverCert
	}
	scfg := ServerTLSConfig(&tls.Config{Certificates: []tls.Certificate{scert}})
	if o.clientCert {
		scfg.ClientAuth = tls.RequireAndVerifyClientCert
		scfg.ClientCAs = p.roots
	}
	if o.serverConfig != nil {
		o.serverConfig(scfg)
	}
	ccfg := ClientTLSConfig(&tls.Config{RootCAs: p.roots, ServerName: p.serverName})
	if o.clientCert {
		ccfg.Certificates = []tls.Certificate{p.client}
	}
	if o.clientConfig != nil {
		o.clientConfig(ccfg)
	}
	a, b := tcpPair(t)
	srv = tls.Server(a, scfg)
	cli = tls.Client(b, ccfg)
	errc := make(chan error, 1)
	go func() { errc <- srv.Handshake() }()
	if err := cli.Handshake(); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	t.Cleanup(func() { srv.Close(); cli.Close() })
	return srv, cli
}

func tcpPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	b, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.c, b
}

// attestedPair wraps both ends and runs setup on both concurrently.
func attestedPair(t testing.TB, srv, cli *tls.Conn, scfg, ccfg *Config) (s, c *Conn, serr, cerr error) {
	t.Helper()
	s, err := Server(srv, scfg)
	if err != nil {
		t.Fatalf("Server: %v", err)
	}
	c, err = Client(cli, ccfg)
	if err != nil {
		t.Fatalf("Client: %v", err)
	}
	t.Cleanup(func() { s.Close(); c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Handshake(ctx) }()
	cerr = c.Handshake(ctx)
	serr = <-done
	return s, c, serr, cerr
}

// reattestContexts is the context record of reattestPair's ends: enough
// for the rounds of a benchmark run (each re-attestation uses a context).
const reattestContexts = 1 << 20

// reattestPair returns both ends of a connection where the server attested
// to the client, whose re-attestation requests the server answers at once
// (PeerRequestInterval 1 ns): the test kit's pair for Attest tests.
func reattestPair(t testing.TB, p *pki, k *kit) (s, c *Conn) {
	t.Helper()
	srv, cli := tlsPair(t, p, tlsOpts{})
	s, c, serr, cerr := attestedPair(t, srv, cli,
		&Config{Attester: k.att, Certificate: &p.server, PeerRequestInterval: time.Nanosecond, MaxContexts: reattestContexts},
		&Config{RequirePeerAttestation: true, Verifier: k.ver, MaxContexts: reattestContexts})
	if serr != nil || cerr != nil {
		t.Fatalf("setup: server %v, client %v", serr, cerr)
	}
	return s, c
}

// pump writes 1 MiB at a time to w until stop is closed or a write fails.
func pump(w io.Writer, stop <-chan struct{}) {
	buf := make([]byte, 1<<20)
	for {
		select {
		case <-stop:
			return
		default:
		}
		if _, err := w.Write(buf); err != nil {
			return
		}
	}
}
