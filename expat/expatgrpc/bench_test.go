package expatgrpc

import (
	"context"
	"crypto/tls"
	"testing"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/attested-tls/go-expat/expat/expattest"
)

// BenchmarkUnary: sequential unary RPCs on one connection, plain TLS
// credentials vs attested (mutual attestation at setup, policy
// interceptors on the server).
func BenchmarkUnary(b *testing.B) {
	k := newKit(b)
	run := func(b *testing.B, hc grpc_health_v1.HealthClient) {
		ctx := context.Background()
		if _, err := hc.Check(ctx, &grpc_health_v1.HealthCheckRequest{}); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err := hc.Check(ctx, &grpc_health_v1.HealthCheckRequest{}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("plain", func(b *testing.B) {
		addr := serveWith(b, credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{k.SrvCert}}))
		run(b, dial(b, addr, credentials.NewTLS(&tls.Config{RootCAs: k.CA.Roots, ServerName: expattest.ServerName})))
	})
	b.Run("attested", func(b *testing.B) {
		addr := serve(b, k.serverCreds(b, true, nil), AnyAttestation)
		run(b, dial(b, addr, k.clientCreds(b, true, nil)))
	})
}
