// Command migration shows platform-to-platform migration between two
// confidential VMs (SEEDS: use cases, platform-to-platform migration): the
// migration agent of the source VM hands the VM's state only to a
// destination agent that proves, with mutual attested TLS, that it runs
// the same approved image on a platform whose TCB is at least the
// source's own; the destination in turn accepts only an attested source.
//
// The platforms are SEV-SNP TEST platforms (attester/sevsnp/sevsnptest,
// TEST ONLY: their keys are public and nothing trusts them unless a
// program wires them in, as this one does). One destination runs the
// source's firmware; the other an older SNP firmware, which the source's
// policy refuses.
//
//	go run ./examples/migration
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/go-sev-guest/kds"

	asevsnp "github.com/attested-tls/go-expat/attester/sevsnp"
	"github.com/attested-tls/go-expat/attester/sevsnp/sevsnptest"
	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/expat/expattest"
	"github.com/attested-tls/go-expat/verifier"
	vsevsnp "github.com/attested-tls/go-expat/verifier/sevsnp"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "migration:", err)
		os.Exit(1)
	}
}

// agent is one migration agent: its platform, its TLS identity and the
// attester of its VM.
type agent struct {
	name string
	plat *sevsnptest.Platform
	tcb  vsevsnp.TCB
	cert tls.Certificate
	att  *asevsnp.Attester
}

func newAgent(ca *expattest.CA, name string, parts kds.TCBParts) (*agent, error) {
	plat, err := sevsnptest.NewAt(parts)
	if err != nil {
		return nil, err
	}
	cert, err := ca.Issue(name, nil)
	if err != nil {
		return nil, err
	}
	att, err := asevsnp.NewTSMAttester(plat.TSM(nil), nil)
	if err != nil {
		return nil, err
	}
	tcb := vsevsnp.TCB{BootLoader: parts.BlSpl, TEE: parts.TeeSpl, SNP: parts.SnpSpl, Microcode: parts.UcodeSpl}
	return &agent{name: name, plat: plat, tcb: tcb, cert: cert, att: att}, nil
}

// verifierFor appraises peer's reports: the approved image, and at least
// minTCB.
func verifierFor(peer *agent, minTCB vsevsnp.TCB) (*vsevsnp.Verifier, error) {
	return vsevsnp.New(&vsevsnp.Config{Roots: peer.plat.Roots(), Policy: vsevsnp.Policy{
		Measurements: [][]byte{sevsnptest.Measurement()},
		MinimumTCB:   minTCB,
	}})
}

func run(w io.Writer) error {
	ca, err := expattest.NewCA()
	if err != nil {
		return err
	}
	current := sevsnptest.TCB()
	older := current
	older.SnpSpl--
	src, err := newAgent(ca, "source.test", current)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "(SEV-SNP TEST platforms, whose keys are public: this shows the protocol and the policy, and proves nothing about this machine)")
	fmt.Fprintf(w, "source: SEV-SNP test platform at TCB %v\n", src.tcb)
	for _, d := range []struct {
		name  string
		parts kds.TCBParts
	}{{"destination-a.test", current}, {"destination-b.test", older}} {
		dst, err := newAgent(ca, d.name, d.parts)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s: SEV-SNP test platform at TCB %v\n", dst.name, dst.tcb)
		if err := migrate(w, ca, src, dst); err != nil {
			return err
		}
	}
	return nil
}

// migrate runs one destination agent and has the source try to hand it
// the VM state.
func migrate(w io.Writer, ca *expattest.CA, src, dst *agent) error {
	// The destination requires an attested source running the approved
	// image (any TCB) and attests itself.
	srcVer, err := verifierFor(src, vsevsnp.TCB{})
	if err != nil {
		return err
	}
	ln, err := expat.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{dst.cert},
		ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: ca.Roots,
	}, &expat.Config{Attester: dst.att, Certificate: &dst.cert, RequirePeerAttestation: true, Verifier: srcVer,
		SetupTimeout: 10 * time.Second})
	if err != nil {
		return err
	}
	defer ln.Close()
	received := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			received <- ""
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		received <- string(b)
	}()

	// The source's policy: the destination's TCB is at least its own.
	dstVer, err := verifierFor(dst, src.tcb)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := expat.DialContext(ctx, "tcp", ln.Addr().String(),
		&tls.Config{RootCAs: ca.Roots, ServerName: dst.name, Certificates: []tls.Certificate{src.cert}},
		&expat.Config{Attester: src.att, Certificate: &src.cert, RequirePeerAttestation: true, Verifier: dstVer})
	var rej *verifier.RejectedError
	switch {
	case errors.As(err, &rej):
		fmt.Fprintf(w, "  refused %s: %v check: %v\n", dst.name, rej.Check, rej)
		return nil
	case err != nil:
		return fmt.Errorf("%s: %w", dst.name, err)
	}
	att := conn.PeerAttestation()
	fmt.Fprintf(w, "  %s attested: %s, TCB %s\n", dst.name, att.Result.Status, att.Result.Claims["tcb.reported"])
	if _, err := io.WriteString(conn, "vm-state"); err != nil {
		return err
	}
	conn.CloseWrite()
	got := <-received
	conn.Close()
	fmt.Fprintf(w, "  migrated: %s received %q\n", dst.name, got)
	return nil
}
