// Command integrations shows go-expat's attested HTTP, gRPC and QUIC
// (packages expat/expathttp, expat/expatgrpc, expat/expatquic), each
// server and client in one process on loopback, attesting with a TPM 2.0
// (the Microsoft reference simulator, compiled into the process):
//
//	go run ./examples/integrations http   # net/http: HTTP/2, a route that demands a fresh client attestation
//	go run ./examples/integrations grpc   # gRPC: mutual attestation, an attestation policy, re-attestation mid-stream
//	go run ./examples/integrations quic   # quic-go: streams only after attestation, re-attestation
//	go run ./examples/integrations        # all three
//
// Requirements: cgo, gcc and the OpenSSL headers (Debian: apt-get install
// gcc libssl-dev), as for the quickstart.
//
// DEMO ONLY: the simulated TPM proves nothing about this machine, server
// and client attest from the same simulated TPM, and the certificates are
// self-signed at start.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"
)

var demos = []struct {
	name string
	run  func(ctx context.Context, d *demo, out io.Writer) error
}{
	{"http", runHTTP},
	{"grpc", runGRPC},
	{"quic", runQUIC},
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "integrations:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	if len(args) > 1 {
		return fmt.Errorf("usage: integrations [http|grpc|quic]")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := newDemo(ctx)
	if err != nil {
		return err
	}
	defer d.plat.close()
	ran := false
	for _, dm := range demos {
		if len(args) == 1 && args[0] != dm.name {
			continue
		}
		ran = true
		fmt.Fprintf(out, "== %s\n", dm.name)
		if err := dm.run(ctx, d, out); err != nil {
			return fmt.Errorf("%s: %w", dm.name, err)
		}
	}
	if !ran {
		return fmt.Errorf("unknown demo %q (http, grpc or quic)", args[0])
	}
	return nil
}
