package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"

	"github.com/attested-tls/go-expat/expat/expatquic"
)

// runQUIC: an attested QUIC listener and client (quic-go): mutual
// attestation on the control stream before any application stream, then a
// stream, then a re-attestation of each side by the other.
func runQUIC(ctx context.Context, d *demo, out io.Writer) error {
	scfg, err := d.checking(d.attesting(d.srv), true)
	if err != nil {
		return err
	}
	l, err := expatquic.Listen("127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{d.srv.cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    d.cli.pool,
		NextProtos:   []string{"echo/1"},
	}, nil, scfg)
	if err != nil {
		return err
	}
	defer l.Close()
	served := make(chan error, 1)
	go func() {
		c, err := l.Accept(ctx) // returns attested connections only
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		s, err := c.AcceptStream(ctx)
		if err != nil {
			served <- err
			return
		}
		b, _ := io.ReadAll(s)
		fmt.Fprintf(s, "echo %s, client attestation %s", b, describe(c.PeerAttestation()))
		s.Close()
		_, err = c.Attest(ctx) // the server re-attests the client
		served <- err
		<-c.Context().Done()
	}()

	ccfg, err := d.checking(d.attesting(d.cli), true)
	if err != nil {
		return err
	}
	c, err := expatquic.Dial(ctx, l.Addr().String(), &tls.Config{
		RootCAs:      d.srv.pool,
		ServerName:   serverName,
		Certificates: []tls.Certificate{d.cli.cert},
		NextProtos:   []string{"echo/1"},
	}, nil, ccfg)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintf(out, "connected (%s over %s); server attestation %s\n", c.ApplicationProtocol(), c.ConnectionState().TLS.NegotiatedProtocol, describe(c.PeerAttestation()))
	s, err := c.OpenStreamSync(ctx)
	if err != nil {
		return err
	}
	fmt.Fprint(s, "hello")
	s.Close()
	b, err := io.ReadAll(s)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "stream -> %s\n", b)
	if err := <-served; err != nil {
		return err
	}
	fmt.Fprintln(out, "the server re-attested the client")
	att, err := c.Attest(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "re-attested the server: %s\n", describe(att))
	return nil
}
