// Package expattest is TEST-ONLY: helpers that build real TLS 1.3
// connections on loopback and attested connections over them with package
// expat, for the tests of packages other than expat (integration tests,
// backends' end-to-end tests, live Veraison tests). Its certificates come
// from a throwaway CA that nothing trusts outside the test that made it.
package expattest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/verifier"
)

// PKI is a throwaway CA for the tests' TLS identities.
type PKI struct {
	Roots *x509.CertPool
	CA    *x509.Certificate
	key   *ecdsa.PrivateKey
}

// NewPKI returns a fresh CA.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "go-expat integration test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	p := &PKI{Roots: x509.NewCertPool(), CA: ca, key: key}
	p.Roots.AddCert(ca)
	return p
}

// Issue returns a certificate for name (server and client auth) whose key
// is signer (nil: a fresh software P-256 key). signer may be opaque, such
// as a TPM-resident key.
func (p *PKI) Issue(t testing.TB, name string, signer crypto.Signer) tls.Certificate {
	t.Helper()
	if signer == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		signer = k
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.CA, signer.Public(), p.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: signer, Leaf: leaf}
}

// ServerName is the name TLSPair's client expects; Issue certificates for it.
const ServerName = "server.test"

// TLSPair returns both ends of a TLS 1.3 connection over loopback TCP with
// the handshake completed: the server presents srvCert; with cliCert, the
// client presents it and the server requires and verifies it.
func TLSPair(t testing.TB, p *PKI, srvCert tls.Certificate, cliCert *tls.Certificate) (srv, cli *tls.Conn) {
	t.Helper()
	scfg := expat.ServerTLSConfig(&tls.Config{Certificates: []tls.Certificate{srvCert}})
	ccfg := expat.ClientTLSConfig(&tls.Config{RootCAs: p.Roots, ServerName: ServerName})
	if cliCert != nil {
		scfg.ClientAuth = tls.RequireAndVerifyClientCert
		scfg.ClientCAs = p.Roots
		ccfg.Certificates = []tls.Certificate{*cliCert}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type accepted struct {
		c   *tls.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			ch <- accepted{nil, err}
			return
		}
		c := tls.Server(raw, scfg)
		ch <- accepted{c, c.Handshake()}
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cli = tls.Client(raw, ccfg)
	cerr := cli.Handshake()
	a := <-ch
	if a.c != nil {
		t.Cleanup(func() { a.c.Close() })
	}
	t.Cleanup(func() { cli.Close() })
	if cerr != nil || a.err != nil {
		t.Fatalf("TLS handshake: client %v, server %v", cerr, a.err)
	}
	if v := cli.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Fatalf("TLS version 0x%04x", v)
	}
	return a.c, cli
}

// AttestedPair wraps both ends with package expat and runs the attestation
// setup of both concurrently, as two programs would.
func AttestedPair(t testing.TB, srv, cli *tls.Conn, scfg, ccfg *expat.Config) (s, c *expat.Conn, serr, cerr error) {
	t.Helper()
	s, err := expat.Server(srv, scfg)
	if err != nil {
		t.Fatalf("expat.Server: %v", err)
	}
	c, err = expat.Client(cli, ccfg)
	if err != nil {
		t.Fatalf("expat.Client: %v", err)
	}
	t.Cleanup(func() { s.Close(); c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Handshake(ctx) }()
	cerr = c.Handshake(ctx)
	serr = <-done
	return s, c, serr, cerr
}

// Exchange checks that application data flows both ways.
func Exchange(t testing.TB, a, b *expat.Conn) {
	t.Helper()
	for _, dir := range [][2]*expat.Conn{{a, b}, {b, a}} {
		msg := []byte("application data over attested TLS")
		errc := make(chan error, 1)
		go func() {
			_, err := dir[0].Write(msg)
			errc <- err
		}()
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(dir[1], got); err != nil {
			t.Fatalf("read: %v", err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("write: %v", err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("read %q", got)
		}
	}
}

// WantRejected checks that err is a verifier rejection with Check check,
// carried in the *expat.Error that Handshake returns.
func WantRejected(t testing.TB, err error, check string) {
	t.Helper()
	var xe *expat.Error
	if !errors.As(err, &xe) {
		t.Fatalf("got %v, want an *expat.Error", err)
	}
	var re *verifier.RejectedError
	if !errors.As(err, &re) || !errors.Is(err, verifier.ErrRejected) {
		t.Fatalf("got %v, want a %q rejection", err, check)
	}
	if re.Check != check {
		t.Fatalf("rejected by %q (%v), want %q", re.Check, err, check)
	}
}

// WantNoData checks that a side whose required attestation failed neither
// sends nor receives application data.
func WantNoData(t testing.TB, c *expat.Conn) {
	t.Helper()
	if c.PeerAttestation() != nil {
		t.Fatal("an attestation is recorded after a failure")
	}
	if _, err := c.Write([]byte("secret")); err == nil {
		t.Fatal("application data written on an unattested connection")
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("application data read on an unattested connection")
	}
}

// Recorder is an Attester that keeps what the wrapped Attester produced,
// for checks of the Evidence that actually went over the wire.
type Recorder struct {
	attester.Attester
	mu   sync.Mutex
	sent [][]byte
	chs  []attester.Challenge
}

func (r *Recorder) Attest(ctx context.Context, ch attester.Challenge) ([]byte, error) {
	b, err := r.Attester.Attest(ctx, ch)
	if err == nil {
		r.mu.Lock()
		r.sent = append(r.sent, bytes.Clone(b))
		r.chs = append(r.chs, ch)
		r.mu.Unlock()
	}
	return b, err
}

// Last returns what was attested last and for which challenge.
func (r *Recorder) Last(t testing.TB) ([]byte, attester.Challenge) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.sent) == 0 {
		t.Fatal("nothing attested")
	}
	return r.sent[len(r.sent)-1], r.chs[len(r.chs)-1]
}

// Connect runs one attested connection on loopback: the server presents a
// certificate from p for ServerName and attests with a; the client requires
// attestation and appraises with v. It returns the client's setup error and,
// on success, its view of the server's attestation.
func Connect(t testing.TB, p *PKI, a attester.Attester, v verifier.Verifier) (*expat.Attestation, error) {
	t.Helper()
	cert := p.Issue(t, ServerName, nil)
	srv, cli := TLSPair(t, p, cert, nil)
	_, c, _, cerr := AttestedPair(t, srv, cli,
		&expat.Config{Attester: a, Certificate: &cert},
		&expat.Config{RequirePeerAttestation: true, Verifier: v})
	if cerr != nil {
		return nil, cerr
	}
	return c.PeerAttestation(), nil
}
