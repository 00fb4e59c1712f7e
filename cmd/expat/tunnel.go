package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/verifier"
)

// tunnelFlags configure one side of the tunnel.
type tunnelFlags struct {
	commonFlags
	listen   string
	connect  string
	maxConns int
	dialTO   time.Duration
}

func tunnel(ctx context.Context, args []string, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "client" && args[0] != "server") {
		fmt.Fprint(stderr, "usage: expat tunnel client|server [flags]\n"+
			"  client: --listen LOCAL --connect SERVER (plain TCP in, attested TLS out)\n"+
			"  server: --listen ADDR --connect BACKEND (attested TLS in, plain TCP out)\n")
		return exitError
	}
	side := args[0]
	fs := flag.NewFlagSet("expat tunnel "+side, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f tunnelFlags
	f.register(fs)
	fs.StringVar(&f.listen, "listen", "", "`ADDR` to listen on (client: plain TCP from the local application; server: attested TLS)")
	fs.StringVar(&f.connect, "connect", "", "`ADDR` to forward to (client: the tunnel server; server: the local backend)")
	fs.IntVar(&f.maxConns, "max-conns", 256, "most connections forwarded at once; more wait to be accepted")
	fs.DurationVar(&f.dialTO, "dial-timeout", 10*time.Second, "bound on connecting to --connect")
	if err := fs.Parse(args[1:]); err != nil {
		return exitError
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil)).With("side", side)
	if err := f.run(ctx, side, log); err != nil {
		log.Error("tunnel stopped", "err", err.Error())
		return exitError
	}
	return exitOK
}

func (f *tunnelFlags) run(ctx context.Context, side string, log *slog.Logger) error {
	if f.listen == "" || f.connect == "" {
		return errors.New("expat: --listen and --connect are required")
	}
	if f.maxConns < 1 {
		return errors.New("expat: --max-conns must be at least 1")
	}
	var pol *policyState
	if f.policyFile != "" {
		var err error
		if pol, err = newPolicyState(f.policyFile, f.att.insecureTestKit); err != nil {
			return err
		}
	}
	fromPolicy := ""
	if pol != nil {
		fromPolicy = pol.load().policy.Attester
	}
	att, err := f.att.open(ctx, fromPolicy)
	if err != nil {
		return err
	}
	defer att.Close()
	if pol == nil && att == nil {
		return errors.New("expat: a tunnel side needs --policy (the peer attests) or --attester (we attest), or both")
	}
	cert, err := f.certificate()
	if err != nil {
		return err
	}
	roots, err := f.pool()
	if err != nil {
		return err
	}
	if att != nil {
		if cert == nil {
			return errors.New("expat: --attester needs --cert and --key: the Evidence is bound to that key")
		}
		log.Info("attester", "attester", att.Desc)
	}
	if pol != nil {
		lp := pol.load()
		log.Info("policy loaded", "file", f.policyFile, "generation", lp.gen, "model", lp.policy.Model, "technology", lp.policy.Technology)
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-hup:
					if err := pol.reload(); err != nil {
						log.Error("policy reload failed; keeping the current policy", "file", f.policyFile, "generation", pol.load().gen, "err", err.Error())
						continue
					}
					lp := pol.load()
					log.Info("policy reloaded", "file", f.policyFile, "generation", lp.gen, "model", lp.policy.Model, "technology", lp.policy.Technology)
				}
			}
		}()
	}
	t := &tunnelSide{f: f, log: log, pol: pol, att: att, cert: cert, roots: roots, sem: make(chan struct{}, f.maxConns)}
	if side == "client" {
		return t.client(ctx)
	}
	return t.server(ctx)
}

type tunnelSide struct {
	f     *tunnelFlags
	log   *slog.Logger
	pol   *policyState
	att   *localAttester
	cert  *tls.Certificate
	roots *x509.CertPool
	sem   chan struct{}
	wg    sync.WaitGroup
	seq   atomic.Uint64
}

// expatConfig is this side's expat.Config with v as the peer's verifier
// (nil: the peer need not attest).
func (t *tunnelSide) expatConfig(v verifier.Verifier) *expat.Config {
	cfg := &expat.Config{SetupTimeout: t.f.setupTimeout}
	if t.att != nil {
		cfg.Attester, cfg.Certificate = t.att, t.cert
	}
	if v != nil {
		cfg.RequirePeerAttestation, cfg.Verifier = true, v
	}
	return cfg
}

// acquire takes a connection slot, or fails when ctx ends.
func (t *tunnelSide) acquire(ctx context.Context) bool {
	select {
	case t.sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (t *tunnelSide) release() { <-t.sem }

// serve accepts with accept until ctx ends, each connection handled by
// handle in its own goroutine, at most --max-conns at once.
func (t *tunnelSide) serve(ctx context.Context, ln io.Closer, accept func() (net.Conn, error), handle func(net.Conn)) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer t.wg.Wait()
	for {
		if !t.acquire(ctx) {
			return nil
		}
		c, err := accept()
		if err != nil {
			t.release()
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			defer t.release()
			handle(c)
		}()
	}
}

func (t *tunnelSide) client(ctx context.Context) error {
	ln, err := net.Listen("tcp", t.f.listen)
	if err != nil {
		return err
	}
	t.log.Info("listening", "addr", ln.Addr().String(), "connect", t.f.connect)
	host, _, _ := net.SplitHostPort(t.f.connect)
	tlsCfg := &tls.Config{RootCAs: t.roots, ServerName: t.f.serverName}
	if tlsCfg.ServerName == "" {
		tlsCfg.ServerName = host
	}
	if t.cert != nil {
		tlsCfg.Certificates = []tls.Certificate{*t.cert}
	}
	d := &expat.Dialer{NetDialer: &net.Dialer{Timeout: t.f.dialTO}}
	return t.serve(ctx, ln, ln.Accept, func(local net.Conn) {
		defer local.Close()
		start := time.Now()
		id := t.seq.Add(1)
		var v verifier.Verifier
		gen := 0
		if t.pol != nil {
			lp := t.pol.load()
			v, gen = lp.verifier, lp.gen
		}
		dctx, cancel := context.WithTimeout(ctx, t.f.dialTO+t.f.setupTimeout)
		remote, err := d.DialContext(dctx, "tcp", t.f.connect, tlsCfg, t.expatConfig(v))
		cancel()
		if err != nil {
			t.logConn(id, local.RemoteAddr(), t.f.connect, gen, nil, err, nil, start, 0, 0)
			return
		}
		defer remote.Close()
		att := remote.PeerAttestation()
		up, down, ferr := forward(local.(*net.TCPConn), remote)
		t.logConn(id, local.RemoteAddr(), t.f.connect, gen, att, nil, ferr, start, up, down)
	})
}

func (t *tunnelSide) server(ctx context.Context) error {
	if t.cert == nil {
		return errors.New("expat: the tunnel server needs --cert and --key")
	}
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{*t.cert}}
	if t.roots != nil {
		tlsCfg.ClientCAs, tlsCfg.ClientAuth = t.roots, tls.RequireAndVerifyClientCert
	}
	var v verifier.Verifier
	if t.pol != nil {
		v = currentVerifier{t.pol}
	}
	inner, err := net.Listen("tcp", t.f.listen)
	if err != nil {
		return err
	}
	ln, err := expat.NewListener(inner, tlsCfg, t.expatConfig(v), &expat.ListenerConfig{
		MaxPendingSetups: t.f.maxConns,
		OnSetupError: func(remote net.Addr, err error) {
			t.logConn(t.seq.Add(1), remote, t.f.connect, t.gen(), nil, err, nil, time.Time{}, 0, 0)
		},
	})
	if err != nil {
		inner.Close()
		return err
	}
	t.log.Info("listening", "addr", ln.Addr().String(), "connect", t.f.connect)
	return t.serve(ctx, ln, ln.Accept, func(c net.Conn) {
		remote := c.(*expat.Conn)
		defer remote.Close()
		start := time.Now()
		id, gen := t.seq.Add(1), t.gen()
		att := remote.PeerAttestation()
		backend, err := net.DialTimeout("tcp", t.f.connect, t.f.dialTO)
		if err != nil {
			t.logConn(id, remote.RemoteAddr(), t.f.connect, gen, att, nil, fmt.Errorf("expat: backend: %w", err), start, 0, 0)
			return
		}
		defer backend.Close()
		down, up, ferr := forward(backend.(*net.TCPConn), remote)
		t.logConn(id, remote.RemoteAddr(), t.f.connect, gen, att, nil, ferr, start, up, down)
	})
}

func (t *tunnelSide) gen() int {
	if t.pol == nil {
		return 0
	}
	return t.pol.load().gen
}

// logConn writes the one log line of a connection: its verdict (from
// att, or setupErr when the setup failed), what the peer attested, the
// bytes forwarded and how forwarding ended (fwdErr).
func (t *tunnelSide) logConn(id uint64, from net.Addr, to string, gen int, att *expat.Attestation, setupErr, fwdErr error, start time.Time, up, down int64) {
	attrs := []any{"conn", id, "remote", addrString(from), "connect", to}
	switch {
	case setupErr != nil:
		attrs = append(attrs, "verdict", verdict(setupErr))
	case att != nil:
		attrs = append(attrs, "verdict", "verified", "technology", att.Result.Technology,
			"status", att.Result.Status.String(), "verifier", att.Result.Verifier)
	default:
		attrs = append(attrs, "verdict", "not-required")
	}
	if t.pol != nil {
		attrs = append(attrs, "policy_generation", gen)
	}
	if !start.IsZero() {
		attrs = append(attrs, "duration_ms", time.Since(start).Milliseconds(), "bytes_up", up, "bytes_down", down)
	}
	level := slog.LevelInfo
	if setupErr != nil {
		attrs = append(attrs, "err", setupErr.Error())
		level = slog.LevelWarn
	}
	if fwdErr != nil {
		attrs = append(attrs, "forward_err", fwdErr.Error())
	}
	t.log.Log(context.Background(), level, "connection", attrs...)
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// copyBufSize is the buffer of each direction: larger than io.Copy's 32 KiB
// so that each write to an *expat.Conn fills many DATA frames at once.
const copyBufSize = 256 << 10

// copyBuf is io.Copy through a buffer of copyBufSize.
func copyBuf(dst io.Writer, src io.Reader) (int64, error) {
	buf := make([]byte, copyBufSize)
	// Hide ReaderFrom/WriterTo so that the buffer is used.
	return io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, buf)
}

// halfCloser is a connection whose write side closes on its own
// (*net.TCPConn, *expat.Conn).
type halfCloser interface {
	net.Conn
	CloseWrite() error
}

// forward copies a→b and b→a until both directions have ended, passing
// each end of stream on as a half-close, and returns the bytes copied each
// way. Backpressure is io.Copy's: a slow reader stalls its writer, and at most
// copyBufSize bytes per direction are in this process. The
// first error other than a clean end of stream closes both connections.
func forward(a, b halfCloser) (ab, ba int64, err error) {
	var once sync.Once
	var first error
	fail := func(e error) {
		once.Do(func() {
			first = e
			a.Close()
			b.Close()
		})
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var e error
		ab, e = copyBuf(b, a)
		if e == nil {
			e = b.CloseWrite()
		}
		if e != nil {
			fail(e)
		}
	}()
	var e error
	ba, e = copyBuf(a, b)
	if e == nil {
		e = a.CloseWrite()
	}
	if e != nil {
		fail(e)
	}
	wg.Wait()
	return ab, ba, first
}
