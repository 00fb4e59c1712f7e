// Package expattest is TEST ONLY: utilities for testing services that use
// go-expat, in the spirit of net/http/httptest. It runs real TLS 1.3
// connections over loopback TCP, with certificates from a throwaway CA
// generated in memory, and wraps them in attested connections with package
// expat, so that a test (or a CI job) exercises go-expat end to end without
// attestation hardware and without cgo.
//
// Nothing here is trusted by anything unless a test wires it in: a CA made
// by NewCA is trusted only by the connections this package builds from it,
// and the software attester of package testkit
// (github.com/attested-tls/go-expat/expat/expattest/testkit) is trusted
// only by a testkit.Verifier whose TrustedKeys a test fills. Never use this
// package, or keys and certificates from it, outside tests and demos.
//
// A typical test:
//
//	key, _ := testkit.GenerateKey()
//	p, err := expattest.NewPair(ctx,
//		&expat.Config{Attester: &testkit.Attester{Key: key}},
//		&expat.Config{RequirePeerAttestation: true,
//			Verifier: &testkit.Verifier{TrustedKeys: []*ecdsa.PublicKey{&key.PublicKey}}})
//	if err != nil { t.Fatal(err) }
//	defer p.Close()
//	// p.Server and p.Client are attested *expat.Conn ends of one connection.
package expattest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"

	"github.com/attested-tls/go-expat/expat"
)

// ServerName is the name the client of TLSPair and NewPair expects the
// server's certificate to carry; ClientName is the name NewPair gives a
// client certificate it issues.
const (
	ServerName = "server.test"
	ClientName = "client.test"
)

// validity is how long before and after now certificates of a CA are valid.
const validity = 24 * time.Hour

// CA is a throwaway certification authority for tests' TLS identities. Its
// key lives in ordinary memory; it is trusted by nothing but the pools a
// test builds from it.
type CA struct {
	// Certificate is the CA's self-signed certificate.
	Certificate *x509.Certificate
	// Roots is a pool holding only Certificate.
	Roots *x509.CertPool
	key   *ecdsa.PrivateKey
}

// NewCA returns a fresh CA with a P-256 key.
func NewCA() (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("expattest: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "go-expat test CA (TEST ONLY)"},
		NotBefore:             now.Add(-validity),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("expattest: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("expattest: CA certificate: %w", err)
	}
	ca := &CA{Certificate: cert, Roots: x509.NewCertPool(), key: key}
	ca.Roots.AddCert(cert)
	return ca, nil
}

// Issue returns a certificate for DNS name name, valid for server and
// client authentication, whose key is signer; a nil signer means a fresh
// software P-256 key. signer may be opaque, such as a TPM-resident key
// (attester/tpm), when the Evidence must name the TLS key.
func (ca *CA) Issue(name string, signer crypto.Signer) (tls.Certificate, error) {
	if signer == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("expattest: %w", err)
		}
		signer = k
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("expattest: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    now.Add(-validity),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Certificate, signer.Public(), ca.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("expattest: certificate for %q: %w", name, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("expattest: certificate for %q: %w", name, err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: signer, Leaf: leaf}, nil
}

// TLSPair returns both ends of a TLS 1.3 connection over loopback TCP with
// the handshake completed. The server presents server; the client trusts
// ca and expects ServerName. With a non-nil client, the client presents it
// and the server requires and verifies it against ca. The TLS
// configurations are expat.ServerTLSConfig and expat.ClientTLSConfig (no
// resumption). ctx bounds the whole setup. The caller closes both ends.
func (ca *CA) TLSPair(ctx context.Context, server tls.Certificate, client *tls.Certificate) (srv, cli *tls.Conn, err error) {
	scfg := expat.ServerTLSConfig(&tls.Config{Certificates: []tls.Certificate{server}})
	ccfg := expat.ClientTLSConfig(&tls.Config{RootCAs: ca.Roots, ServerName: ServerName})
	if client != nil {
		scfg.ClientAuth = tls.RequireAndVerifyClientCert
		scfg.ClientCAs = ca.Roots
		ccfg.Certificates = []tls.Certificate{*client}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("expattest: %w", err)
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
		ch <- accepted{c, c.HandshakeContext(ctx)}
	}()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		ln.Close() // ends the Accept
		<-ch
		return nil, nil, fmt.Errorf("expattest: %w", err)
	}
	cli = tls.Client(raw, ccfg)
	cerr := cli.HandshakeContext(ctx)
	if cerr != nil {
		cli.Close() // ends the server's handshake too
	}
	a := <-ch
	if cerr != nil || a.err != nil {
		if a.c != nil {
			a.c.Close()
		}
		cli.Close()
		return nil, nil, fmt.Errorf("expattest: TLS handshake: %w", errors.Join(side("client", cerr), side("server", a.err)))
	}
	if v := cli.ConnectionState().Version; v != tls.VersionTLS13 {
		a.c.Close()
		cli.Close()
		return nil, nil, fmt.Errorf("expattest: negotiated TLS version 0x%04x, not 1.3", v)
	}
	return a.c, cli, nil
}

func side(name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", name, err)
}

// Pair is both ends of one attested connection.
type Pair struct {
	// Server and Client are the two ends, as expat.Server and expat.Client
	// returned them.
	Server, Client *expat.Conn
	// ServerErr and ClientErr are what each end's Handshake returned: nil
	// when that end's attestation setup succeeded.
	ServerErr, ClientErr error
}

// Close closes both ends; it returns the first error.
func (p *Pair) Close() error {
	return errors.Join(p.Server.Close(), p.Client.Close())
}

// Attest wraps srv and cli (both ends of one TLS connection, handshake
// completed) with expat.Server and expat.Client and runs the attestation
// setup of both ends concurrently under ctx, as two programs would. It
// returns an error, with the Pair, when either end's setup failed (the
// Pair's ServerErr and ClientErr tell which); with a nil Pair when
// expat.Server or expat.Client refused its Config. The caller closes the
// Pair.
func Attest(ctx context.Context, srv, cli *tls.Conn, server, client *expat.Config) (*Pair, error) {
	s, err := expat.Server(srv, server)
	if err != nil {
		return nil, fmt.Errorf("expattest: server: %w", err)
	}
	c, err := expat.Client(cli, client)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("expattest: client: %w", err)
	}
	p := &Pair{Server: s, Client: c}
	done := make(chan error, 1)
	go func() { done <- s.Handshake(ctx) }()
	p.ClientErr = c.Handshake(ctx)
	p.ServerErr = <-done
	if p.ServerErr != nil || p.ClientErr != nil {
		return p, fmt.Errorf("expattest: attestation setup: %w", errors.Join(side("server", p.ServerErr), side("client", p.ClientErr)))
	}
	return p, nil
}

// Pair returns both ends of an attested connection over loopback TLS with
// certificates from ca. server and client are the two ends' Configs; they
// are copied, not modified. Where server.Certificate is nil, the server's
// TLS and Exported Authenticator certificate is a fresh one from ca for
// ServerName; where client has an Attester and no Certificate, the client
// presents a fresh one for ClientName. Certificates given in a Config must
// come from ca (Issue) and, for the server, name ServerName. A client
// Certificate makes the server require and verify a client certificate in
// the TLS handshake. ctx bounds the TLS handshake and the attestation
// setup. Errors are as for Attest.
func (ca *CA) Pair(ctx context.Context, server, client *expat.Config) (*Pair, error) {
	if server == nil || client == nil {
		return nil, errors.New("expattest: nil Config")
	}
	scfg, ccfg := *server, *client
	if scfg.Certificate == nil {
		cert, err := ca.Issue(ServerName, nil)
		if err != nil {
			return nil, err
		}
		scfg.Certificate = &cert
	}
	if ccfg.Certificate == nil && ccfg.Attester != nil {
		cert, err := ca.Issue(ClientName, nil)
		if err != nil {
			return nil, err
		}
		ccfg.Certificate = &cert
	}
	srv, cli, err := ca.TLSPair(ctx, *scfg.Certificate, ccfg.Certificate)
	if err != nil {
		return nil, err
	}
	p, err := Attest(ctx, srv, cli, &scfg, &ccfg)
	if p == nil {
		srv.Close()
		cli.Close()
	}
	return p, err
}

// NewPair is Pair with a fresh CA: the quickest way to an attested
// connection in a test.
func NewPair(ctx context.Context, server, client *expat.Config) (*Pair, error) {
	ca, err := NewCA()
	if err != nil {
		return nil, err
	}
	return ca.Pair(ctx, server, client)
}
