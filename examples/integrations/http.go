package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/attested-tls/go-expat/expat/expathttp"
)

// runHTTP: an http.Server that proves its state on every connection, a
// route that demands a fresh attestation of the client, and an
// http.Client whose Transport attests the server before the first request.
func runHTTP(ctx context.Context, d *demo, out io.Writer) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello over %s (ALPN %s)", r.Proto, r.TLS.NegotiatedProtocol)
	})
	mux.HandleFunc("/transfer", func(w http.ResponseWriter, r *http.Request) {
		att, err := expathttp.AttestPeer(w, r) // a 401 challenge until the client attests for this request
		if err != nil {
			return
		}
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "transferred %s after client attestation %s", body, describe(att))
	})
	scfg, err := d.checking(d.attesting(d.srv), false) // client attestation on demand, per route
	if err != nil {
		return err
	}
	srv, err := expathttp.NewServer("", mux, &tls.Config{
		Certificates: []tls.Certificate{d.srv.cert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    d.cli.pool,
	}, scfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go srv.ServeTLS(ln, "", "")
	defer srv.Close()

	ccfg, err := d.checking(d.attesting(d.cli), true) // the server must attest
	if err != nil {
		return err
	}
	tr, err := expathttp.NewTransport(&tls.Config{
		RootCAs:      d.srv.pool,
		ServerName:   serverName,
		Certificates: []tls.Certificate{d.cli.cert},
	}, ccfg)
	if err != nil {
		return err
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	url := "https://" + ln.Addr().String()

	resp, err := get(ctx, client, http.MethodGet, url+"/", "", out)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  server attestation: %s\n", describe(expathttp.PeerAttestation(resp.Request.Context())))
	if resp, err = get(ctx, client, http.MethodPost, url+"/transfer", "100 EUR", out); err != nil {
		return err
	}
	att, err := tr.Attest(ctx, resp) // re-attest the server on the same connection
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "re-attested the server on the same connection: %s\n", describe(att))
	return nil
}

func get(ctx context.Context, c *http.Client, method, url, body string, out io.Writer) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: %s", method, req.URL.Path, resp.Status)
	}
	fmt.Fprintf(out, "%s %s -> %s\n", method, req.URL.Path, b)
	return resp, nil
}
