// Command expat probes attested TLS servers, inspects Evidence and
// Attestation Results, and tunnels unmodified applications over attested
// TLS (draft-fossati-seat-expat, package github.com/attested-tls/go-expat/expat).
//
//	expat probe [flags] HOST:PORT     attest a server under a policy and report
//	expat inspect [flags] FILE|-      decode a CMW, an EAR or a backend's Evidence
//	expat tunnel client|server [flags] forward plain TCP over attested TLS
//
// Appraisal policies are JSON files (docs/POLICY.md, read by package
// verifier/policy). The local attester is always named explicitly
// (--attester); nothing is detected silently. Exit status: 0 success
// (probe: verified), 1 rejected, 2 could not check or usage error.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit statuses.
const (
	exitOK       = 0
	exitRejected = 1
	exitError    = 2
)

const usage = `usage:
  expat probe [flags] HOST:PORT       attest a server under a policy and report
  expat inspect [flags] FILE|-        decode a CMW, an EAR or a backend's Evidence
  expat tunnel client [flags]         listen on plain TCP, forward over attested TLS
  expat tunnel server [flags]         accept attested TLS, forward to a local backend
run "expat COMMAND -h" for the flags of a command
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitError
	}
	switch args[0] {
	case "probe":
		return probe(ctx, args[1:], stdout, stderr)
	case "inspect":
		return inspect(args[1:], stdin, stdout, stderr)
	case "tunnel":
		return tunnel(ctx, args[1:], stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "expat: unknown command %q\n%s", args[0], usage)
	return exitError
}
