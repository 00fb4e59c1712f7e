package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/expat/expatgrpc"
	vtpm "github.com/attested-tls/go-expat/verifier/tpm"
)

// runGRPC: a stock grpc.Server and client with attested credentials
// (mutual attestation before the first RPC), interceptors that authorize
// RPCs by the client's attestation, and re-attestation of the server in
// the middle of a long-lived stream (gRPC's health Watch).
func runGRPC(ctx context.Context, d *demo, out io.Writer) error {
	scfg, err := d.checking(d.attesting(d.srv), true)
	if err != nil {
		return err
	}
	screds, err := expatgrpc.NewServerCredentials(&tls.Config{
		Certificates: []tls.Certificate{d.srv.cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    d.cli.pool,
	}, scfg)
	if err != nil {
		return err
	}
	policy := func(ctx context.Context, method string, att *expat.Attestation) error {
		if att.Result.Technology != vtpm.Technology {
			return errors.New("not a TPM-attested client")
		}
		return nil
	}
	srv := grpc.NewServer(grpc.Creds(screds),
		grpc.UnaryInterceptor(expatgrpc.UnaryServerInterceptor(policy)),
		grpc.StreamInterceptor(expatgrpc.StreamServerInterceptor(policy)))
	hs := health.NewServer()
	grpc_health_v1.RegisterHealthServer(srv, hs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go srv.Serve(ln)
	defer srv.Stop()

	ccfg, err := d.checking(d.attesting(d.cli), true)
	if err != nil {
		return err
	}
	ccreds, err := expatgrpc.NewClientCredentials(&tls.Config{
		RootCAs:      d.srv.pool,
		ServerName:   serverName,
		Certificates: []tls.Certificate{d.cli.cert},
	}, ccfg)
	if err != nil {
		return err
	}
	cc, err := grpc.NewClient("passthrough:///"+ln.Addr().String(), grpc.WithTransportCredentials(ccreds))
	if err != nil {
		return err
	}
	defer cc.Close()
	hc := grpc_health_v1.NewHealthClient(cc)

	var p peer.Peer
	resp, err := hc.Check(ctx, &grpc_health_v1.HealthCheckRequest{}, grpc.Peer(&p))
	if err != nil {
		return err
	}
	info := p.AuthInfo.(credentials.TLSInfo) // what existing interceptors see
	fmt.Fprintf(out, "Check -> %s over %s, TLS 1.3 %t\n", resp.Status, info.State.NegotiatedProtocol, info.State.Version == tls.VersionTLS13)
	fmt.Fprintf(out, "  server attestation: %s\n", describe(p.Addr.(*expatgrpc.Addr).Conn().PeerAttestation()))

	stream, err := hc.Watch(ctx, &grpc_health_v1.HealthCheckRequest{})
	if err != nil {
		return err
	}
	m, err := stream.Recv()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Watch -> %s\n", m.Status)
	att, err := expatgrpc.Attest(stream.Context()) // mid-stream, on the same connection
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "re-attested the server during the stream: %s\n", describe(att))
	hs.SetServingStatus("", grpc_health_v1.HealthCheckResponse_NOT_SERVING)
	if m, err = stream.Recv(); err != nil {
		return err
	}
	fmt.Fprintf(out, "Watch -> %s\n", m.Status)
	return nil
}
