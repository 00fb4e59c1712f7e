// Command quickstart shows attested TLS with go-expat on any machine, using
// the Microsoft reference TPM 2.0 simulator compiled into the process.
//
// A TLS 1.3 server whose TLS key lives in the (simulated) TPM proves, after
// the handshake, which software it booted: it answers the client's
// attestation request with a TPM quote of PCRs 16 and 23 and a
// TPM2_Certify of its TLS key, both signed by its attestation key (AK) over
// a challenge derived from this very connection (draft-fossati-seat-expat,
// carried in an RFC 9261 Exported Authenticator). The client appraises that
// Evidence with verifier/tpm against the PCR values it expects, prints a
// report, and only then exchanges application data.
//
//	go run ./examples/quickstart              # server and client in one process
//	go run ./examples/quickstart -tamper      # an unapproved measurement: rejected
//	go run ./examples/quickstart -mutual      # the client attests too
//	go run ./examples/quickstart -passport    # the server presents an EAR instead
//
// Two processes (each with its own simulated TPM):
//
//	quickstart -server 127.0.0.1:8443 -ak-file /tmp/server.pem
//	quickstart -client 127.0.0.1:8443 -ak-file /tmp/server.pem
//
// The server writes to -ak-file what the client must trust: the demo CA
// that issued the server's certificate, the server's AK public area and, with
// -passport, its local Verifier's EAR key. With -mutual, the client writes
// the same about itself to -client-ak-file, which the server reads for each
// connection.
//
// Requirements: cgo, gcc and the OpenSSL headers (Debian: apt-get install
// gcc libssl-dev). Without cgo the program says so in one line and exits
// with status 1; without the OpenSSL headers it does not compile (the
// simulator's C code includes them), which go run reports as a build error.
//
// DEMO ONLY: the simulator's seeds live in process memory, the CAs and the
// EAR key are generated at start, and the AK is trusted because it is handed
// over, not enrolled. None of it proves anything about this machine.
package main

import (
	"bufio"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"time"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/attester/tpm/tpmsim"
	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/ear"
	vtpm "github.com/attested-tls/go-expat/verifier/tpm"
)

// options are the command-line flags.
type options struct {
	mutual, tamper, passport bool
	serverAddr, clientAddr   string
	akFile, clientAKFile     string
	// openTPM opens the simulated TPM: tpmsim.Open, which fails with
	// tpmsim.ErrNoCgo in a build without cgo.
	openTPM func() (*tpmsim.Simulator, error)
}

// earIssuerName is the iss of the EARs the server's local Verifier signs.
const earIssuerName = "go-expat quickstart local verifier"

// timeout bounds one connection: TLS handshake, attestation and data.
const timeout = 30 * time.Second

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole program; it returns the exit status: 0 when the
// attestation was verified, 1 when it was rejected or something failed,
// 2 for bad flags.
func run(args []string, stdout, stderr io.Writer) int {
	return runWithTPM(args, stdout, stderr, tpmsim.Open)
}

// runWithTPM is run with openTPM as the way to the simulated TPM (the
// tests pass one that fails as a build without cgo does).
func runWithTPM(args []string, stdout, stderr io.Writer, openTPM func() (*tpmsim.Simulator, error)) int {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return 2
	}
	opts.openTPM = openTPM
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	out := newPrinter(stdout)

	switch {
	case opts.serverAddr != "":
		err = runServerProcess(ctx, opts, out)
	case opts.clientAddr != "":
		err = runClientProcess(ctx, opts, out)
	default:
		err = runBoth(ctx, opts, out)
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errNoSimulator):
		fmt.Fprintln(stderr, errNoSimulator) // the one line a newcomer needs
	case errors.Is(err, errRejected):
		// already reported
	default:
		fmt.Fprintln(stderr, "go-expat quickstart:", err)
	}
	return 1
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	var o options
	fs := flag.NewFlagSet("quickstart", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&o.mutual, "mutual", false, "the client attests to the server too")
	fs.BoolVar(&o.tamper, "tamper", false, "measure an unapproved component into PCR 23 after boot (this process's TPM): the peer must reject")
	fs.BoolVar(&o.passport, "passport", false, "passport model: present an EAR from a local Verifier instead of raw TPM Evidence")
	fs.StringVar(&o.serverAddr, "server", "", "run only the server, listening on `addr`")
	fs.StringVar(&o.clientAddr, "client", "", "run only the client, connecting to `addr`")
	fs.StringVar(&o.akFile, "ak-file", "", "`file` the server writes (and the client reads) with what the client must trust")
	fs.StringVar(&o.clientAKFile, "client-ak-file", "", "with -mutual in two processes: `file` the client writes (and the server reads) about the client")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	fail := func(msg string) (*options, error) {
		fmt.Fprintln(stderr, "quickstart:", msg)
		fs.Usage()
		return nil, errors.New(msg)
	}
	switch {
	case fs.NArg() != 0:
		return fail("unexpected arguments")
	case o.serverAddr != "" && o.clientAddr != "":
		return fail("-server and -client are exclusive: run two processes, or neither flag for one")
	case (o.serverAddr != "" || o.clientAddr != "") && o.akFile == "":
		return fail("-server and -client need -ak-file")
	case o.serverAddr == "" && o.clientAddr == "" && (o.akFile != "" || o.clientAKFile != ""):
		return fail("-ak-file and -client-ak-file are for -server and -client")
	case o.clientAddr != "" && o.tamper && !o.mutual:
		return fail("-tamper with -client needs -mutual: otherwise the client has no TPM to tamper with")
	case (o.serverAddr != "" || o.clientAddr != "") && o.mutual && o.clientAKFile == "":
		return fail("-mutual in two processes needs -client-ak-file on both sides")
	}
	return &o, nil
}

// side is a party that attests: its platform (simulated TPM), the demo CA
// that certifies it, its TPM-resident TLS identity, and what answers
// attestation requests (the TPM attester, or the passport chain).
type side struct {
	role      string // "server" or "client"
	plat      *platform
	ca        *demoCA
	id        *identity
	issuerKey *ecdsa.PrivateKey // passport: the local Verifier's EAR key
	attester  *timedAttester
}

func newSide(ctx context.Context, role string, plat *platform, ca *demoCA, passport bool, out *printer) (*side, error) {
	cn := "quickstart " + role
	if role == "server" {
		cn = serverName
	}
	id, err := newIdentity(ctx, plat, ca, cn, role == "server")
	if err != nil {
		return nil, fmt.Errorf("%s identity: %w", role, err)
	}
	s := &side{role: role, plat: plat, ca: ca, id: id}
	out.say(role, "TLS key created inside the TPM (ECDSA P-256, the private key never leaves it); certificate CN=%s from the demo CA", cn)

	var att attester.Attester = plat.att // background check: raw TPM Evidence
	if passport {
		// Passport model: a Verifier appraises our own Evidence and signs an
		// EAR, which is what the peer receives. Here that Verifier runs in
		// this process; in a deployment it is a service (e.g. Veraison).
		if s.issuerKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			return nil, err
		}
		appraiser, err := vtpm.New(&vtpm.Config{
			TrustedAKs:            []crypto.PublicKey{plat.att.AKPublicKey()},
			PCRPolicy:             pcrPolicy(),
			RequireKeyAttestation: true,
			Name:                  earIssuerName,
		})
		if err != nil {
			return nil, err
		}
		att = &ear.PassportAttester{
			Evidence: plat.att,
			Issuer: &ear.Issuer{
				Appraiser:      appraiser,
				Key:            s.issuerKey,
				Name:           earIssuerName,
				KeyAttestation: true,
			},
			SPKI:      id.key.SPKI(),
			PublicKey: id.key.Public(),
		}
		out.say(role, "passport model: a local Verifier appraises this TPM's Evidence against the PCR policy and signs an EAR (ES256); the peer trusts that Verifier's key")
	}
	s.attester = &timedAttester{a: att}
	return s, nil
}

// trust is what the peer needs to know about this side.
func (s *side) trust() *peerTrust {
	t := &peerTrust{CA: s.ca.cert, AKPublic: s.plat.att.AKPublic()}
	if s.issuerKey != nil {
		t.Issuer = &s.issuerKey.PublicKey
	}
	return t
}

// peerVerifier is how a relying party appraises its peer: raw TPM Evidence
// against its PCR policy with the peer's AK pinned, or (passport) an EAR
// signed by the peer's Verifier.
func peerVerifier(t *peerTrust, passport bool) (*timedVerifier, error) {
	if passport {
		if t.Issuer == nil {
			return nil, errors.New("passport model: no EAR issuer key for the peer (was the peer started with -passport?)")
		}
		v, err := ear.New(&ear.Config{
			Keys:   []ear.TrustedKey{{Key: t.Issuer}},
			Issuer: earIssuerName,
		})
		if err != nil {
			return nil, err
		}
		return &timedVerifier{v: v}, nil
	}
	ak, err := t.akKey()
	if err != nil {
		return nil, err
	}
	v, err := vtpm.New(&vtpm.Config{
		TrustedAKs:            []crypto.PublicKey{ak},
		PCRPolicy:             pcrPolicy(),
		RequireKeyAttestation: true, // the TLS key must be proven TPM-resident
	})
	if err != nil {
		return nil, err
	}
	return &timedVerifier{v: v}, nil
}

// runBoth runs server and client in this process, sharing one simulated TPM.
func runBoth(ctx context.Context, opts *options, out *printer) error {
	plat, err := bootPlatform(ctx, opts.openTPM, opts.tamper)
	if err != nil {
		return err
	}
	defer plat.close(context.Background())
	out.header()
	out.platform("demo", plat, opts.tamper)

	ca, err := newDemoCA("shared")
	if err != nil {
		return err
	}
	srv, err := newSide(ctx, "server", plat, ca, opts.passport, out)
	if err != nil {
		return err
	}
	var cli *side
	var cliTrust *peerTrust
	if opts.mutual {
		out.say("demo", "mutual: the client attests from the SAME simulated TPM (one simulator per process): same AK and PCRs, its own TPM-resident TLS key. Run -server and -client for two TPMs.")
		if cli, err = newSide(ctx, "client", plat, ca, opts.passport, out); err != nil {
			return err
		}
		cliTrust = cli.trust()
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		raw, err := ln.Accept()
		if err != nil {
			return
		}
		if err := runServer(ctx, raw, srv, cliTrust, opts, out); err != nil && !errors.Is(err, errRejected) {
			out.say("server", "connection ended: %v", err)
		}
	}()
	err = runClient(ctx, ln.Addr().String(), cli, srv.trust(), opts, out)
	ln.Close()
	<-served
	return err
}

// runServerProcess is -server: one platform, connections served one at a
// time until interrupted.
func runServerProcess(ctx context.Context, opts *options, out *printer) error {
	plat, err := bootPlatform(ctx, opts.openTPM, opts.tamper)
	if err != nil {
		return err
	}
	defer plat.close(context.Background())
	out.header()
	out.platform("server", plat, opts.tamper)
	ca, err := newDemoCA("server")
	if err != nil {
		return err
	}
	srv, err := newSide(ctx, "server", plat, ca, opts.passport, out)
	if err != nil {
		return err
	}
	if err := srv.trust().writeFile(opts.akFile); err != nil {
		return fmt.Errorf("write -ak-file: %w", err)
	}
	what := "demo CA, AK public area"
	if opts.passport {
		what += ", EAR key"
	}
	out.say("server", "wrote what clients must trust (%s) to %s", what, opts.akFile)

	ln, err := net.Listen("tcp", opts.serverAddr)
	if err != nil {
		return err
	}
	defer ln.Close()
	context.AfterFunc(ctx, func() { ln.Close() })
	out.say("server", "listening on %s", ln.Addr())
	for {
		raw, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		var cliTrust *peerTrust
		if opts.mutual {
			if cliTrust, err = readTrustFile(opts.clientAKFile); err != nil {
				out.say("server", "cannot appraise this client: %v", err)
				raw.Close()
				continue
			}
		}
		if err := runServer(ctx, raw, srv, cliTrust, opts, out); err != nil && !errors.Is(err, errRejected) {
			out.say("server", "connection ended: %v", err)
		}
	}
}

// runClientProcess is -client: reads the server's trust file, boots a
// platform of its own when it must attest (-mutual), and connects once.
func runClientProcess(ctx context.Context, opts *options, out *printer) error {
	srvTrust, err := readTrustFile(opts.akFile)
	if err != nil {
		return err
	}
	var cli *side
	if opts.mutual {
		plat, err := bootPlatform(ctx, opts.openTPM, opts.tamper)
		if err != nil {
			return err
		}
		defer plat.close(context.Background())
		out.header()
		out.platform("client", plat, opts.tamper)
		ca, err := newDemoCA("client")
		if err != nil {
			return err
		}
		if cli, err = newSide(ctx, "client", plat, ca, opts.passport, out); err != nil {
			return err
		}
		if err := cli.trust().writeFile(opts.clientAKFile); err != nil {
			return fmt.Errorf("write -client-ak-file: %w", err)
		}
	} else {
		out.header()
	}
	return runClient(ctx, opts.clientAddr, cli, srvTrust, opts, out)
}

// runServer serves one connection: TLS handshake with the TPM-resident key,
// attestation setup (answering the client's request; with -mutual also
// appraising the client), then one line of application data.
func runServer(ctx context.Context, raw net.Conn, srv *side, cliTrust *peerTrust, opts *options, out *printer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tcfg := &tls.Config{Certificates: []tls.Certificate{srv.id.cert}}
	if cliTrust != nil {
		tcfg.ClientAuth = tls.RequireAndVerifyClientCert
		tcfg.ClientCAs = certPool(cliTrust.CA)
	}
	tc := tls.Server(raw, expat.ServerTLSConfig(tcfg))
	defer tc.Close()
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}

	cfg := &expat.Config{Attester: srv.attester, Certificate: &srv.id.cert}
	var ver *timedVerifier
	if cliTrust != nil {
		var err error
		if ver, err = peerVerifier(cliTrust, opts.passport); err != nil {
			return err
		}
		cfg.RequirePeerAttestation = true
		cfg.Verifier = ver
	}
	conn, err := expat.Server(tc, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	srv.attester.reset()
	start := time.Now()
	err = conn.Handshake(ctx)
	setup := time.Since(start)
	logAttestation(out, srv, opts.passport)
	if alert, ok := closedByPeer(err); ok {
		out.say("server", "the client closed the connection (%v): it did not accept our attestation", alert)
		return nil
	}
	if err != nil {
		if ver != nil {
			reportFailure(out, "server", "client", err, ver, setup)
			return errRejected
		}
		return fmt.Errorf("attestation setup: %w", err)
	}
	if ver != nil {
		att, err := verifiedPeer(conn)
		if alert, ok := closedByPeer(err); ok {
			out.say("server", "the client closed the connection (%v) right after setup: it did not accept our attestation", alert)
			return nil
		}
		if err != nil {
			return err
		}
		printReport(out, "server", "client", att, timings{attestation: setup, appraisal: ver.took()})
	}

	line, err := bufio.NewReaderSize(conn, 512).ReadSlice('\n')
	if alert, ok := closedByPeer(err); ok {
		out.say("server", "the client closed the connection (%v): it did not accept our attestation", alert)
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the request: %w", err)
	}
	reply := "hello, attested peer: this reply comes from a server whose TLS key is in its TPM\n"
	if _, err := io.WriteString(conn, reply); err != nil {
		return err
	}
	out.say("server", "application data: got %q, replied", trimNL(string(line)))
	return nil
}

// logAttestation tells how the server's own attestation went.
func logAttestation(out *printer, srv *side, passport bool) {
	took, err := srv.attester.last()
	switch {
	case took == 0:
		// not asked to attest
	case err != nil:
		out.say("server", "could not attest (after %s): %v", ms(took), err)
	default:
		what := "TPM quote + key certification"
		if passport {
			what += " + local EAR"
		}
		out.say("server", "answered the client's attestation request: %s in %s", what, ms(took))
	}
}

// errRejected marks a failed attestation, already reported.
var errRejected = errors.New("attestation rejected")

// runClient connects, verifies the server's certificate against its demo CA,
// requires and appraises the server's attestation, prints the report and
// exchanges one line of application data, which is sent only after the
// attestation was verified.
func runClient(ctx context.Context, addr string, cli *side, srvTrust *peerTrust, opts *options, out *printer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ver, err := peerVerifier(srvTrust, opts.passport)
	if err != nil {
		return err
	}
	out.enrollment(srvTrust, opts.passport)

	tcfg := &tls.Config{RootCAs: certPool(srvTrust.CA), ServerName: serverName}
	if cli != nil {
		tcfg.Certificates = []tls.Certificate{cli.id.cert}
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	tc := tls.Client(raw, expat.ClientTLSConfig(tcfg))
	defer tc.Close()
	start := time.Now()
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	handshake := time.Since(start)
	out.say("client", "TLS 1.3 handshake done in %v: %s, server certificate verified against the demo CA", ms(handshake), tls.CipherSuiteName(tc.ConnectionState().CipherSuite))

	cfg := &expat.Config{RequirePeerAttestation: true, Verifier: ver}
	if cli != nil {
		cfg.Attester = cli.attester
		cfg.Certificate = &cli.id.cert
	}
	conn, err := expat.Client(tc, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	start = time.Now()
	err = conn.Handshake(ctx)
	setup := time.Since(start)
	if err != nil {
		reportFailure(out, "client", "server", err, ver, setup)
		return errRejected
	}
	att, err := verifiedPeer(conn)
	if alert, ok := closedByPeer(err); ok {
		out.say("client", "the server closed the connection (%v) right after setup: it appraised our attestation and rejected it", alert)
		return errRejected
	}
	if err != nil {
		return err
	}
	printReport(out, "client", "server", att, timings{handshake: handshake, attestation: setup, appraisal: ver.took()})

	var reply []byte
	_, err = io.WriteString(conn, "hello from the client\n")
	if err == nil {
		reply, err = bufio.NewReaderSize(conn, 512).ReadSlice('\n')
	}
	if alert, ok := closedByPeer(err); ok && cli != nil {
		// Our setup completes once the server's attestation is verified and
		// the server's request answered; whether the server accepted our
		// answer shows only now.
		out.say("client", "the server closed the connection (%v) instead of replying: it appraised our attestation and rejected it", alert)
		return errRejected
	}
	if err != nil {
		return fmt.Errorf("application data: %w", err)
	}
	out.say("client", "application data (sent only after the verdict): got %q", trimNL(string(reply)))
	return nil
}

// verifiedPeer returns the peer's verified attestation after a successful
// Handshake. PeerAttestation is nil once the connection has ended, which
// happens right after setup when the peer rejected OUR attestation (-mutual):
// the error then tells why.
func verifiedPeer(conn *expat.Conn) (*expat.Attestation, error) {
	if att := conn.PeerAttestation(); att != nil {
		return att, nil
	}
	_, err := conn.Read(make([]byte, 1))
	if err == nil {
		err = errors.New("the peer is no longer attested")
	}
	return nil, err
}

// closedByPeer reports whether err means that the peer closed the attested
// connection with an alert (for example after rejecting our attestation).
func closedByPeer(err error) (tls.AlertError, bool) {
	var xe *expat.Error
	if errors.As(err, &xe) && xe.Remote {
		return xe.Alert, true
	}
	return 0, false
}

func certPool(ca *x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca)
	return p
}

func trimNL(s string) string {
	if n := len(s); n > 0 && s[n-1] == '\n' {
		return s[:n-1]
	}
	return s
}

// timedVerifier records how long the last appraisal took and how it ended,
// for the report.
type timedVerifier struct {
	v  verifier.Verifier
	mu lockedResult
}

func (t *timedVerifier) Verify(ctx context.Context, cmw []byte, exp *verifier.Expected) (*verifier.Result, error) {
	start := time.Now()
	res, err := t.v.Verify(ctx, cmw, exp)
	t.mu.set(time.Since(start), err)
	return res, err
}

func (t *timedVerifier) took() time.Duration { d, _ := t.mu.get(); return d }

// timedAttester records how long the last attestation took.
type timedAttester struct {
	a  attester.Attester
	mu lockedResult
}

func (t *timedAttester) Attest(ctx context.Context, ch attester.Challenge) ([]byte, error) {
	start := time.Now()
	cmw, err := t.a.Attest(ctx, ch)
	t.mu.set(time.Since(start), err)
	return cmw, err
}

func (t *timedAttester) last() (time.Duration, error) { return t.mu.get() }

func (t *timedAttester) reset() { t.mu.set(0, nil) }
