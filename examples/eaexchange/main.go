// Command eaexchange runs a TLS 1.3 server and client on loopback; after the
// handshake each side asks the other for an Exported Authenticator
// (RFC 9261) over the TLS connection, validates it, and prints what was
// proved. The certificates are generated at start and trusted only here.
//
//	go run ./examples/eaexchange
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"time"

	"github.com/attested-tls/go-expat/ea"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "eaexchange:", err)
		os.Exit(1)
	}
}

// demoPKI is a throwaway CA issuing the demo certificates.
type demoPKI struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	pool *x509.CertPool
}

func newPKI() (*demoPKI, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "eaexchange demo CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &demoPKI{key: key, cert: cert, pool: pool}, nil
}

func (p *demoPKI) issue(cn string, serial int64, usage x509.ExtKeyUsage) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn}, DNSNames: []string{cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der, p.cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// EA messages travel on the TLS connection, each behind a 4-byte length.
const maxMsg = ea.DefaultMaxAuthenticatorSize

func send(w io.Writer, msg []byte) error {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(msg)))
	if _, err := w.Write(append(n[:], msg...)); err != nil {
		return err
	}
	return nil
}

func recv(r io.Reader) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	l := binary.BigEndian.Uint32(n[:])
	if l > maxMsg { // bounded before allocating
		return nil, errors.New("message too large")
	}
	msg := make([]byte, l)
	_, err := io.ReadFull(r, msg)
	return msg, err
}

// party is one side: it asks first or answers first, then swaps.
type party struct {
	name    string
	conn    *tls.Conn
	session *ea.Session
	cert    *tls.Certificate
	verify  *x509.VerifyOptions
}

// ask sends a request and validates the answer.
func (p *party) ask() (*ea.Authenticated, error) {
	req, err := p.session.NewRequest(nil)
	if err != nil {
		return nil, err
	}
	wire, err := req.Marshal()
	if err != nil {
		return nil, err
	}
	if err := send(p.conn, wire); err != nil {
		return nil, err
	}
	auth, err := recv(p.conn)
	if err != nil {
		return nil, err
	}
	return p.session.Validate(auth, &ea.ValidateOptions{VerifyOptions: p.verify})
}

// answer reads a request and authenticates with our certificate.
func (p *party) answer() error {
	wire, err := recv(p.conn)
	if err != nil {
		return err
	}
	req, err := ea.ParseRequest(wire)
	if err != nil {
		return err
	}
	auth, err := p.session.Authenticate(req, p.cert, nil)
	if err != nil {
		return err
	}
	return send(p.conn, auth)
}

func describe(w io.Writer, who string, s *ea.Session, a *ea.Authenticated) {
	fmt.Fprintf(w, "%s proved: subject=%q scheme=%v suite=%s hash=%v context=%s…\n",
		who, a.Chain[0].Subject.CommonName, a.Scheme, tls.CipherSuiteName(s.CipherSuite()), s.Hash(), hex.EncodeToString(a.Context[:8]))
}

func run(w io.Writer) error {
	pki, err := newPKI()
	if err != nil {
		return err
	}
	tlsCert, err := pki.issue("server.eaexchange.test", 2, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return err
	}
	serverEA, err := pki.issue("server-ea.eaexchange.test", 3, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return err
	}
	clientEA, err := pki.issue("client.eaexchange.test", 4, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return err
	}

	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{*tlsCert}, MinVersion: tls.VersionTLS13, SessionTicketsDisabled: true})
	if err != nil {
		return err
	}
	defer ln.Close()

	type result struct {
		proved *ea.Authenticated
		s      *ea.Session
		err    error
	}
	serverDone := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			serverDone <- result{err: err}
			return
		}
		defer c.Close()
		conn := c.(*tls.Conn)
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if err := conn.Handshake(); err != nil {
			serverDone <- result{err: err}
			return
		}
		cs := conn.ConnectionState()
		s, err := ea.NewSession(&cs, true, nil)
		if err != nil {
			serverDone <- result{err: err}
			return
		}
		p := &party{name: "server", conn: conn, session: s, cert: serverEA,
			verify: &x509.VerifyOptions{Roots: pki.pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}}
		a, err := p.ask() // server asks the client first
		if err == nil {
			err = p.answer()
		}
		serverDone <- result{a, s, err}
	}()

	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{
		RootCAs: pki.pool, ServerName: "server.eaexchange.test", MinVersion: tls.VersionTLS13})
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	cs := conn.ConnectionState()
	cli, err := ea.NewSession(&cs, false, nil)
	if err != nil {
		return err
	}
	p := &party{name: "client", conn: conn, session: cli, cert: clientEA,
		verify: &x509.VerifyOptions{Roots: pki.pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}}
	if err := p.answer(); err != nil {
		return fmt.Errorf("client answering: %w", err)
	}
	proved, err := p.ask()
	if err != nil {
		return fmt.Errorf("client validating: %w", err)
	}
	r := <-serverDone
	if r.err != nil {
		return fmt.Errorf("server: %w", r.err)
	}
	fmt.Fprintf(w, "TLS 1.3 handshake done: %s\n", tls.CipherSuiteName(cs.CipherSuite))
	describe(w, "client (to server)", r.s, r.proved)
	describe(w, "server (to client)", cli, proved)
	return nil
}
