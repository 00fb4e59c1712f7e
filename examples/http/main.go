// Command http serves an http.Handler over attested TLS and calls it with
// an attested http.Client (package expat/expathttp), in one process on
// loopback: the server proves its state on every connection before the
// client sends anything, and the /transfer route demands a fresh
// attestation of the client, on the same connection, before it runs.
//
//	go run ./examples/http
//
// DEMO ONLY: the attesters are go-expat's software test kit
// (expat/expattest/testkit) and the CA is generated at start; nothing here
// proves anything about this machine. On a real platform use an attester
// from attester/... and its verifier from verifier/....
package main

import (
	"crypto/ecdsa"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/expat/expathttp"
	"github.com/attested-tls/go-expat/expat/expattest"
	"github.com/attested-tls/go-expat/expat/expattest/testkit"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "http:", err)
		os.Exit(1)
	}
}

func run(out io.Writer) error {
	ca, err := expattest.NewCA()
	if err != nil {
		return err
	}
	srvCert, err := ca.Issue(expattest.ServerName, nil)
	if err != nil {
		return err
	}
	cliCert, err := ca.Issue("client.test", nil)
	if err != nil {
		return err
	}
	srvKey, err := testkit.GenerateKey()
	if err != nil {
		return err
	}
	cliKey, err := testkit.GenerateKey()
	if err != nil {
		return err
	}
	trust := func(k *ecdsa.PrivateKey) *testkit.Verifier {
		return &testkit.Verifier{TrustedKeys: []*ecdsa.PublicKey{&k.PublicKey}}
	}

	// The server: any http.Handler; /transfer needs a fresh attestation.
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello over %s, ALPN %s", r.Proto, r.TLS.NegotiatedProtocol)
	})
	mux.HandleFunc("/transfer", func(w http.ResponseWriter, r *http.Request) {
		att, err := expathttp.AttestPeer(w, r) // 401 challenge until the client attests for this request
		if err != nil {
			return
		}
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "transferred %s: client attestation #%d by %s", body, att.Seq, att.Result.Verifier)
	})
	srv, err := expathttp.NewServer("", mux,
		&tls.Config{Certificates: []tls.Certificate{srvCert}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: ca.Roots},
		&expat.Config{Attester: &testkit.Attester{Key: srvKey}, Certificate: &srvCert, Verifier: trust(cliKey)})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go srv.ServeTLS(ln, "", "")
	defer srv.Close()
	url := "https://" + ln.Addr().String()

	// The client: an http.Client whose Transport attests the server.
	tr, err := expathttp.NewTransport(
		&tls.Config{RootCAs: ca.Roots, ServerName: expattest.ServerName, Certificates: []tls.Certificate{cliCert}},
		&expat.Config{RequirePeerAttestation: true, Verifier: trust(srvKey), Attester: &testkit.Attester{Key: cliKey}, Certificate: &cliCert})
	if err != nil {
		return err
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}

	resp, err := client.Get(url + "/")
	if err != nil {
		return err
	}
	if err := show(out, "GET /", resp); err != nil {
		return err
	}
	att := expathttp.PeerAttestation(resp.Request.Context())
	fmt.Fprintf(out, "  server attested: %s, %s, verified by %s\n", att.Result.Technology, att.Result.Status, att.Result.Verifier)

	resp, err = client.Post(url+"/transfer", "text/plain", strings.NewReader("100 EUR"))
	if err != nil {
		return err
	}
	if err := show(out, "POST /transfer", resp); err != nil {
		return err
	}
	att, err = tr.Attest(resp.Request.Context(), resp) // re-attest the server on this connection
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "re-attested the server on the same connection: attestation #%d\n", att.Seq)
	return nil
}

func show(out io.Writer, what string, resp *http.Response) error {
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", what, resp.Status)
	}
	fmt.Fprintf(out, "%s -> %s\n", what, b)
	return nil
}
