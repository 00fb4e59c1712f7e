package expat_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"fmt"
	"io"
	"time"

	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/expat/expattest/testkit"
)

// Listen and DialContext do the TLS handshake and the attestation setup in
// one call each; the Listener sets up every connection concurrently under
// Config.SetupTimeout, so a silent client never delays another.
func ExampleListen() {
	cert, roots := exampleIdentity()
	key, _ := testkit.GenerateKey() // TEST ONLY: a software "platform"
	att := &testkit.Attester{Key: key}
	ver := &testkit.Verifier{TrustedKeys: []*ecdsa.PublicKey{&key.PublicKey}}

	ln, err := expat.Listen("tcp", "127.0.0.1:0",
		&tls.Config{Certificates: []tls.Certificate{cert}},
		&expat.Config{Attester: att, Certificate: &cert, SetupTimeout: 10 * time.Second})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept() // setup already done
		if err != nil {
			return
		}
		defer conn.Close()
		io.WriteString(conn, "secret for an attested client\n")
		conn.(*expat.Conn).CloseWrite()
		io.Copy(io.Discard, conn)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := expat.DialContext(ctx, "tcp", ln.Addr().String(),
		&tls.Config{RootCAs: roots, ServerName: "server.example"},
		&expat.Config{RequirePeerAttestation: true, Verifier: ver})
	if err != nil {
		fmt.Println("not attested:", err)
		return
	}
	defer conn.Close()
	fmt.Println("server attested, seq", conn.PeerAttestation().Seq, "status", conn.PeerAttestation().Result.Status)
	msg, _ := io.ReadAll(conn)
	fmt.Print(string(msg))
	// Output:
	// server attested, seq 1 status affirming
	// secret for an attested client
}
