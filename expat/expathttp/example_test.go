package expathttp_test

import (
	"crypto/ecdsa"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/expat/expathttp"
	"github.com/attested-tls/go-expat/expat/expattest"
	"github.com/attested-tls/go-expat/expat/expattest/testkit"
)

// A server that proves its state on every connection and a client that
// sends nothing before it has checked that proof; a route that needs a
// fresh attestation of the client before a high-impact operation.
func Example() {
	// TEST ONLY: a throwaway CA and the software test-kit attesters.
	ca, _ := expattest.NewCA()
	srvCert, _ := ca.Issue(expattest.ServerName, nil)
	cliCert, _ := ca.Issue("client.test", nil)
	srvKey, _ := testkit.GenerateKey()
	cliKey, _ := testkit.GenerateKey()
	trust := func(k *ecdsa.PrivateKey) *testkit.Verifier {
		return &testkit.Verifier{TrustedKeys: []*ecdsa.PublicKey{&k.PublicKey}}
	}

	mux := http.NewServeMux()
	mux.Handle("/transfer", expathttp.RequireFreshAttestation(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		att := expathttp.PeerAttestation(r.Context())
		fmt.Fprintf(w, "transfer approved for a %s client (%s)", att.Result.Technology, r.Proto)
	})))
	srv, err := expathttp.NewServer("", mux,
		&tls.Config{Certificates: []tls.Certificate{srvCert}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: ca.Roots},
		&expat.Config{Attester: &testkit.Attester{Key: srvKey}, Certificate: &srvCert, Verifier: trust(cliKey), PeerAttestationOnDemand: true})
	if err != nil {
		panic(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.ServeTLS(ln, "", "")
	defer srv.Close()

	tr, err := expathttp.NewTransport(
		&tls.Config{RootCAs: ca.Roots, ServerName: expattest.ServerName, Certificates: []tls.Certificate{cliCert}},
		&expat.Config{RequirePeerAttestation: true, Verifier: trust(srvKey), Attester: &testkit.Attester{Key: cliKey}, Certificate: &cliCert})
	if err != nil {
		panic(err)
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Post("https://"+ln.Addr().String()+"/transfer", "text/plain", nil)
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(string(body))
	fmt.Println("server attested:", expathttp.PeerAttestation(resp.Request.Context()).Result.Technology)
	// Output:
	// transfer approved for a test-kit client (HTTP/2.0)
	// server attested: test-kit
}
