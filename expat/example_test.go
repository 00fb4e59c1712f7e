package expat_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"time"

	"github.com/attested-tls/go-expat/ea"
	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/expat/expattest/testkit"
)

// exampleIdentity returns a self-signed server certificate and a pool that
// trusts it: stand-ins for a real PKI.
func exampleIdentity() (tls.Certificate, *x509.CertPool) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "server.example"},
		DNSNames: []string{"server.example"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// A server proves its state to a client that refuses to exchange data until
// the Evidence has been appraised. The test kit stands in for a TPM or TEE
// backend (attester/tpm, attester/sevsnp, ...) and its verifier.
func Example() {
	cert, roots := exampleIdentity()
	key, _ := testkit.GenerateKey() // TEST ONLY: a software "platform"
	att := &testkit.Attester{Key: key}
	ver := &testkit.Verifier{TrustedKeys: []*ecdsa.PublicKey{&key.PublicKey}}

	ln, _ := tls.Listen("tcp", "127.0.0.1:0", expat.ServerTLSConfig(&tls.Config{Certificates: []tls.Certificate{cert}}))
	defer ln.Close()
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			return
		}
		tc := raw.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			return
		}
		conn, err := expat.Server(tc, &expat.Config{Attester: att, Certificate: &cert})
		if err != nil {
			return
		}
		defer conn.Close()
		io.Copy(conn, conn) // echo
	}()

	tc, err := tls.Dial("tcp", ln.Addr().String(), expat.ClientTLSConfig(&tls.Config{RootCAs: roots, ServerName: "server.example"}))
	if err != nil {
		panic(err)
	}
	conn, err := expat.Client(tc, &expat.Config{RequirePeerAttestation: true, Verifier: ver})
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := conn.Handshake(ctx); err != nil {
		fmt.Println("not attested:", err)
		return
	}
	a := conn.PeerAttestation()
	fmt.Println("peer:", a.Chain[0].Subject.CommonName)
	fmt.Println("model:", a.Result.Model, "status:", a.Result.Status)
	conn.Write([]byte("secret for an attested peer"))
	buf := make([]byte, 64)
	n, _ := conn.Read(buf)
	fmt.Println("echo:", string(buf[:n]))
	// Output:
	// peer: server.example
	// model: background-check status: affirming
	// echo: secret for an attested peer
}

// ComputeChallenge is what both sides compute: the attester puts the
// result into its Evidence, the relying party checks it there.
func ExampleComputeChallenge() {
	cert, _ := exampleIdentity()
	a, b := net.Pipe()
	srv := tls.Server(a, &tls.Config{Certificates: []tls.Certificate{cert}})
	cli := tls.Client(b, &tls.Config{InsecureSkipVerify: true}) // example only
	go srv.Handshake()
	cli.Handshake()
	cs := cli.ConnectionState()
	reqContext := []byte("certificate_request_context")
	ch, err := expat.ComputeChallenge(&cs, crypto.SHA256, expat.ExporterLabel, reqContext, cert.Leaf.RawSubjectPublicKeyInfo)
	if err != nil {
		panic(err)
	}
	rd, _ := ch.ReportData64()
	fmt.Println(len(ch.Binding), len(ch.AIKPubHash), len(rd))
	// Output: 32 32 64
}

// Endpoint carries the same exchange in any protocol: here the messages are
// just byte slices handed from one side to the other.
func ExampleEndpoint() {
	cert, roots := exampleIdentity()
	key, _ := testkit.GenerateKey() // TEST ONLY
	a, b := net.Pipe()
	srv := tls.Server(a, expat.ServerTLSConfig(&tls.Config{Certificates: []tls.Certificate{cert}}))
	cli := tls.Client(b, expat.ClientTLSConfig(&tls.Config{RootCAs: roots, ServerName: "server.example"}))
	go srv.Handshake()
	if err := cli.Handshake(); err != nil {
		panic(err)
	}
	scs, ccs := srv.ConnectionState(), cli.ConnectionState()

	server, _ := expat.NewEndpoint(&scs, true, &expat.Config{Attester: &testkit.Attester{Key: key}, Certificate: &cert})
	client, _ := expat.NewEndpoint(&ccs, false, &expat.Config{Verifier: &testkit.Verifier{TrustedKeys: []*ecdsa.PublicKey{&key.PublicKey}}})

	req, _ := client.Request()                             // e.g. sent in an HTTP header
	auth, err := server.Respond(context.Background(), req) // e.g. returned in the response
	if err != nil {
		panic(err)
	}
	att, err := client.Verify(context.Background(), auth)
	if err != nil {
		fmt.Println("rejected:", err)
		return
	}
	ctx, _ := ea.GetContext(req)
	fmt.Println("attested:", att.Result.Status, "context matches:", string(att.Context) == string(ctx))
	// Output: attested: affirming context matches: true
}
