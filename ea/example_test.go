package ea_test

import (
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"

	"github.com/attested-tls/go-expat/ea"
)

// exampleCert returns a self-signed Ed25519 certificate (an example key,
// derived from a fixed seed: never use it for anything else).
func exampleCert(name string) *tls.Certificate {
	seed := make([]byte, ed25519.SeedSize)
	copy(seed, name)
	key := ed25519.NewKeyFromSeed(seed)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, key.Public(), key)
	if err != nil {
		panic(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// connect runs a TLS 1.3 handshake over net.Pipe and returns both states.
func connect(serverCfg, clientCfg *tls.Config) (client, server tls.ConnectionState) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	cc, sc := tls.Client(a, clientCfg), tls.Server(b, serverCfg)
	done := make(chan error, 1)
	go func() { done <- sc.Handshake() }()
	if err := cc.Handshake(); err != nil {
		panic(err)
	}
	if err := <-done; err != nil {
		panic(err)
	}
	return cc.ConnectionState(), sc.ConnectionState()
}

func sessions() (client, server *ea.Session) {
	srvCert := exampleCert("server.example")
	pool := x509.NewCertPool()
	pool.AddCert(srvCert.Leaf)
	ccs, scs := connect(
		&tls.Config{Certificates: []tls.Certificate{*srvCert}, MinVersion: tls.VersionTLS13},
		&tls.Config{RootCAs: pool, ServerName: "server.example", MinVersion: tls.VersionTLS13})
	client, err := ea.NewSession(&ccs, false, nil)
	if err != nil {
		panic(err)
	}
	server, err = ea.NewSession(&scs, true, nil)
	if err != nil {
		panic(err)
	}
	return client, server
}

// A server asks the client to prove possession of a certificate after the
// handshake, and validates the answer against a trust pool.
func Example() {
	client, server := sessions()

	// Server: a CertificateRequest offering an (empty) private extension.
	req, _ := server.NewRequest([]ea.Extension{{Type: 0xFF00}})
	wire, _ := req.Marshal()

	// Client: parse it and answer with its certificate and an extension value.
	peerReq, _ := ea.ParseRequest(wire)
	cert := exampleCert("client.example")
	auth, err := client.Authenticate(peerReq, cert, []ea.Extension{{Type: 0xFF00, Data: []byte("hello")}})
	if err != nil {
		panic(err)
	}

	// Server: validate.
	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)
	got, err := server.Validate(auth, &ea.ValidateOptions{VerifyOptions: &x509.VerifyOptions{
		Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}})
	if err != nil {
		panic(err)
	}
	fmt.Println(got.Chain[0].Subject.CommonName, got.Scheme, string(got.Extensions[0].Data))
	// Output: client.example Ed25519 hello
}

func ExampleNewSession() {
	client, server := sessions()
	fmt.Println(client.IsServer(), server.IsServer(), server.Hash())
	// Output: false true SHA-256
}

func ExampleSession_NewRequest() {
	client, _ := sessions()
	req, _ := client.NewRequest(nil)
	fmt.Println(req.Type == ea.TypeClientCertificateRequest, len(req.Context), req.SignatureSchemes()[0])
	// Output: true 32 ECDSAWithP256AndSHA256
}

func ExampleParseRequest() {
	client, _ := sessions()
	req, _ := client.NewRequest([]ea.Extension{{Type: 0xFF00}})
	wire, _ := req.Marshal()
	parsed, err := ea.ParseRequest(wire)
	_, offered := parsed.Extension(0xFF00)
	fmt.Println(err, parsed.Type, offered)

	_, err = ea.ParseRequest(append(wire, 0)) // trailing byte
	var alert tls.AlertError
	fmt.Println(errors.As(err, &alert), alert)
	// Output:
	// <nil> 17 true
	// true tls: error decoding message
}

func ExampleGetContext() {
	client, server := sessions()
	req, _ := client.NewRequest(nil)
	wire, _ := req.Marshal()
	peerReq, _ := ea.ParseRequest(wire)
	auth, _ := server.Authenticate(peerReq, exampleCert("server.example"), nil)
	a, _ := ea.GetContext(wire)
	b, _ := ea.GetContext(auth)
	fmt.Println(string(a) == string(b), string(a) == string(req.Context))
	// Output: true true
}

func ExampleSession_Authenticate() {
	client, server := sessions()
	req, _ := server.NewRequest(nil)
	wire, _ := req.Marshal()
	peerReq, _ := ea.ParseRequest(wire)
	cert := exampleCert("client.example")
	auth, _ := client.Authenticate(peerReq, cert, nil)
	fmt.Println(auth[0] == ea.TypeCertificate)

	// A second authenticator for the same request is refused.
	_, err := client.Authenticate(peerReq, cert, nil)
	fmt.Println(errors.Is(err, ea.ErrContextUsed))
	// Output:
	// true
	// true
}

func ExampleSession_Refuse() {
	client, server := sessions()
	req, _ := server.NewRequest(nil)
	wire, _ := req.Marshal()
	peerReq, _ := ea.ParseRequest(wire)
	empty, _ := client.Refuse(peerReq)
	_, err := server.Validate(empty, &ea.ValidateOptions{InsecureSkipChainVerify: true})
	fmt.Println(errors.Is(err, ea.ErrEmptyAuthenticator))
	// Output: true
}

func ExampleSession_Validate() {
	client, server := sessions()
	req, _ := server.NewRequest(nil)
	wire, _ := req.Marshal()
	peerReq, _ := ea.ParseRequest(wire)
	cert := exampleCert("client.example")
	auth, _ := client.Authenticate(peerReq, cert, nil)

	// Trust by pinned key; a replay is rejected.
	opts := &ea.ValidateOptions{PinnedKey: cert.Leaf.PublicKey}
	got, err := server.Validate(auth, opts)
	fmt.Println(err, got.Chain[0].Subject.CommonName)
	_, err = server.Validate(auth, opts)
	fmt.Println(errors.Is(err, ea.ErrContextUsed))
	// Output:
	// <nil> client.example
	// true
}

// A server proves possession of another certificate without being asked;
// the client accepts it only because its policy allows it, checked against
// the ClientHello it sent.
func ExampleRecordClientHello() {
	srvCert := exampleCert("server.example")
	pool := x509.NewCertPool()
	pool.AddCert(srvCert.Leaf)
	serverCfg, seen := ea.RecordClientHello(&tls.Config{Certificates: []tls.Certificate{*srvCert}, MinVersion: tls.VersionTLS13})

	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	sent := ea.RecordClientHelloConn(a)
	cc := tls.Client(sent, &tls.Config{RootCAs: pool, ServerName: "server.example", MinVersion: tls.VersionTLS13})
	sc := tls.Server(b, serverCfg)
	done := make(chan error, 1)
	go func() { done <- sc.Handshake() }()
	if err := cc.Handshake(); err != nil {
		panic(err)
	}
	<-done

	scs, ccs := sc.ConnectionState(), cc.ConnectionState()
	server, _ := ea.NewSession(&scs, true, &ea.Config{ClientHello: seen})
	client, _ := ea.NewSession(&ccs, false, &ea.Config{ClientHello: sent.ClientHello()})

	other := exampleCert("other.example")
	auth, _ := server.Authenticate(nil, other, nil)
	got, err := client.Validate(auth, &ea.ValidateOptions{PinnedKey: other.Leaf.PublicKey, AllowSpontaneous: true})
	fmt.Println(err, got.Spontaneous, got.Chain[0].Subject.CommonName)
	// Output: <nil> true other.example
}

func ExampleNew() {
	// Any TLS 1.3 exporter works, e.g. a QUIC connection's TLS state.
	var exp ea.Exporter = &tls.ConnectionState{}
	s, err := ea.New(exp, tls.TLS_AES_256_GCM_SHA384, true, nil)
	fmt.Println(err, s.Hash().Size())
	// Output: <nil> 48
}
