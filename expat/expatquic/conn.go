package expatquic

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/attested-tls/go-expat/ea"
	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/expat/internal/bound"
	"github.com/attested-tls/go-expat/expat/internal/carrier"
	"github.com/attested-tls/go-expat/expat/internal/exchange"
)

// ALPNPrefix is prepended to every application protocol in ALPN: "h3"
// becomes "expat-quic/1/h3". An ordinary QUIC peer offering "h3" therefore
// fails the handshake (no_application_protocol), and so does one of ours
// against an ordinary server.
const ALPNPrefix = "expat-quic/1/"

// ErrorCodeBase is the first QUIC application error code this package
// uses: a connection closed because attestation failed carries
// ErrorCodeBase + the TLS alert the failure implies (RFC 8446, Section
// 6). Applications must not close connections with codes in
// [ErrorCodeBase, ErrorCodeBase+255].
const ErrorCodeBase quic.ApplicationErrorCode = 0x45_58_50_00

// Alerts used here.
const (
	alertUnexpectedMessage tls.AlertError = 10
	alertIllegalParameter  tls.AlertError = 47
	alertInternalError     tls.AlertError = 80
)

// ErrUnsupported means the peer does not speak attested QUIC: its first
// stream is not the control stream, or it negotiated no ALPN of ours.
var ErrUnsupported = errors.New("expatquic: peer does not speak attested QUIC")

// Conn is an attested QUIC connection. Dial and Listener.Accept return it
// once the setup has completed: the attestation the local expat.Config
// requires has succeeded, and the peer has said (READY) that it accepts our
// streams. Only then are application streams opened or accepted; a peer
// that opens one earlier is a protocol violation that closes the
// connection. EA messages travel on the control stream (see frame.go); the
// exporter is the QUIC connection's TLS exporter.
type Conn struct {
	qc       *quic.Conn
	ep       *expat.Endpoint
	cfg      *expat.Config
	isServer bool
	ctrl     *quic.Stream

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	writeMu sync.Mutex

	mu        sync.Mutex
	weReady   bool // our READY is (being) sent: the peer's streams are welcome
	peerReady bool
	peerSetup bool
	// peerAccepts are the formats the peer accepts, from its SETUP.
	peerAccepts []string
	err         error // why the connection ended
	pacer       *carrier.Pacer
	done        chan struct{} // setup completed or failed
	doneOnce    sync.Once

	// x is the exchange model expat.Conn uses too
	// (expat/internal/exchange): our one outstanding request, commits,
	// Seq, the latest attestation, its expiry, scheduled re-attestation.
	x *exchange.Model[*expat.Attestation]
	// setupEx is our setup request's exchange (RequirePeerAttestation).
	setupEx *exchange.Exchange

	streams chan *quic.Stream
	uni     chan *quic.ReceiveStream
}

// quicConfig returns a copy of c without 0-RTT or datagrams (both would
// let data through before attestation).
func quicConfig(c *quic.Config) *quic.Config {
	if c == nil {
		c = &quic.Config{}
	} else {
		c = c.Clone()
	}
	c.Allow0RTT = false
	c.EnableDatagrams = false
	return c
}

// wireProtos maps the application protocols to ALPN.
func wireProtos(protos []string) ([]string, error) {
	if len(protos) == 0 {
		return nil, errors.New("expatquic: tls.Config.NextProtos must name the application protocol (QUIC requires ALPN)")
	}
	out := make([]string, len(protos))
	for i, p := range protos {
		out[i] = ALPNPrefix + p
	}
	return out, nil
}

// Dial connects to addr over QUIC and runs the setup, within ctx and
// expat.Config.SetupTimeout. tlsCfg (RootCAs, ServerName, NextProtos: the
// application protocols) is prepared with expat.ClientTLSConfig; qcfg may
// be nil.
func Dial(ctx context.Context, addr string, tlsCfg *tls.Config, qcfg *quic.Config, cfg *expat.Config) (*Conn, error) {
	if err := carrier.CheckConfig("expatquic", cfg, false); err != nil {
		return nil, err
	}
	tc := expat.ClientTLSConfig(tlsCfg)
	var err error
	if tc.NextProtos, err = wireProtos(tc.NextProtos); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, carrier.SetupTimeout(cfg))
	defer cancel()
	qc, err := quic.DialAddr(ctx, addr, tc, quicConfig(qcfg))
	if err != nil {
		return nil, err
	}
	return setup(ctx, qc, false, cfg)
}

// setup wraps an established QUIC connection and runs the attestation
// setup; on failure the connection is closed.
func setup(ctx context.Context, qc *quic.Conn, isServer bool, cfg *expat.Config) (*Conn, error) {
	cs := qc.ConnectionState().TLS
	if !strings.HasPrefix(cs.NegotiatedProtocol, ALPNPrefix) {
		qc.CloseWithError(ErrorCodeBase+quic.ApplicationErrorCode(alertInternalError), "expatquic: not an attested QUIC connection")
		return nil, fmt.Errorf("%w: ALPN %q", ErrUnsupported, cs.NegotiatedProtocol)
	}
	ep, err := expat.NewEndpoint(&cs, isServer, cfg)
	if err != nil {
		qc.CloseWithError(ErrorCodeBase+quic.ApplicationErrorCode(alertOf(err)), "expatquic: setup")
		return nil, err
	}
	lctx, cancel := context.WithCancel(context.Background())
	c := &Conn{
		qc: qc, ep: ep, cfg: cfg, isServer: isServer,
		ctx: lctx, cancel: cancel,
		pacer:   carrier.NewPacer(cfg),
		done:    make(chan struct{}),
		streams: make(chan *quic.Stream, 16),
		uni:     make(chan *quic.ReceiveStream, 16),
	}
	c.x = carrier.NewExchange(lctx, cfg, ep, c.endErr, c.attestFailed, c.Attest)
	if err := c.start(ctx); err != nil {
		c.fail(err)
		c.wait()
		return nil, c.endErr()
	}
	if err := c.awaitSetupAttestation(ctx); err != nil {
		c.fail(err)
		c.wait()
		return nil, c.endErr()
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		c.fail(&expat.Error{Op: "setup", Alert: alertInternalError, Err: ctx.Err()})
		c.wait()
	}
	c.mu.Lock()
	err = c.err
	c.mu.Unlock()
	if err != nil {
		c.wait()
		return nil, err
	}
	return c, nil
}

// start opens (client) or accepts (server) the control stream, sends
// SETUP, and starts the reader and the stream acceptors.
func (c *Conn) start(ctx context.Context) error {
	var err error
	if c.isServer {
		c.ctrl, err = c.qc.AcceptStream(ctx)
		if err == nil && c.ctrl.StreamID() != 0 {
			err = &expat.Error{Op: "setup", Alert: alertUnexpectedMessage, Err: fmt.Errorf("%w: first stream is not the control stream", ErrUnsupported)}
		}
	} else {
		c.ctrl, err = c.qc.OpenStreamSync(ctx)
	}
	if err != nil {
		return c.wrapQUIC(err)
	}
	payload := []byte{frameVersion}
	if acc, prod := c.cfg.Formats(); len(acc) > 0 || len(prod) > 0 {
		// Capability discovery, as expat.Conn's SETUP version 2.
		f := expat.EncodeFormats(acc, prod)
		payload = append([]byte{frameVersionFormats, byte(len(f) >> 8), byte(len(f))}, f...)
	}
	require := c.cfg.RequirePeerAttestation
	if require {
		req, err := c.ep.NewRequest()
		if err != nil {
			return err
		}
		if c.setupEx, err = c.x.Open(req.Context, true); err != nil {
			return err
		}
		payload = append(payload, req.Message...)
	}
	msg := appendFrame(nil, frameSetup, payload)
	if !require {
		c.mu.Lock()
		c.weReady = true
		c.mu.Unlock()
		msg = appendFrame(msg, frameReady, []byte{0})
	}
	// SETUP first: the reader may answer the peer's request as soon as it
	// runs. QUIC stream writes do not wait for the peer to read.
	if err := c.write(msg); err != nil {
		return err
	}
	c.wg.Add(3)
	go c.readLoop()
	go c.acceptLoop()
	go c.acceptUniLoop()
	return nil
}

// awaitSetupAttestation waits for the peer's answer to our setup request
// and verifies it, within ctx (Dial's or the Listener's, bounded by
// SetupTimeout; the Verifier sees it), commits it and says READY.
func (c *Conn) awaitSetupAttestation(ctx context.Context) error {
	ex := c.setupEx
	if ex == nil {
		return nil
	}
	att, err := c.x.Await(ctx, ex, c.ep.VerifyFor)
	if err == nil {
		err = c.x.Commit(ex, att)
	}
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.weReady = true
	c.mu.Unlock()
	if err := c.write(appendFrame(nil, frameReady, []byte{0})); err != nil {
		return err
	}
	c.mu.Lock()
	c.checkDoneLocked()
	c.mu.Unlock()
	return nil
}

func (c *Conn) write(b []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_, err := c.ctrl.Write(b)
	return c.wrapQUIC(err)
}

func (c *Conn) readLoop() {
	defer c.wg.Done()
	maxAuth := carrier.MaxAuthenticatorSize(c.cfg)
	for {
		typ, payload, err := readFrame(c.ctrl, maxAuth)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = &expat.Error{Op: "read", Alert: alertUnexpectedMessage, Err: errors.New("control stream closed by the peer")}
			}
			c.fail(c.wrapQUIC(err))
			return
		}
		if err := c.handle(typ, payload); err != nil {
			c.fail(err)
			return
		}
	}
}

func (c *Conn) handle(typ byte, payload []byte) error {
	c.mu.Lock()
	peerSetup := c.peerSetup
	c.mu.Unlock()
	if typ != frameSetup && !peerSetup {
		return &frameError{"frame before SETUP"}
	}
	switch typ {
	case frameSetup:
		if peerSetup {
			return &frameError{"second SETUP"}
		}
		req, err := c.setupFormats(payload)
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.peerSetup = true
		c.mu.Unlock()
		if len(req) > 0 {
			return c.answer(req)
		}
		return nil
	case frameRequest:
		return c.answer(payload)
	case frameAuthenticator:
		return c.handleAuthenticator(payload)
	case frameReady:
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.peerReady {
			return &frameError{"second READY"}
		}
		c.peerReady = true
		c.checkDoneLocked()
		return nil
	}
	return &frameError{fmt.Sprintf("unexpected frame 0x%02x", typ)}
}

func (c *Conn) checkDoneLocked() {
	if c.weReady && c.peerReady && c.err == nil {
		c.doneOnce.Do(func() { close(c.done) })
	}
}

// setupFormats reads the version and formats of the peer's SETUP, fails
// at once when no format is in common (expat.CheckFormats), and returns
// the request that follows.
func (c *Conn) setupFormats(payload []byte) ([]byte, error) {
	switch payload[0] {
	case frameVersion:
		return payload[1:], nil
	case frameVersionFormats:
	default:
		return nil, &frameError{fmt.Sprintf("unsupported version %d", payload[0])}
	}
	if len(payload) < 3 {
		return nil, &frameError{"SETUP without its formats length"}
	}
	n := int(payload[1])<<8 | int(payload[2])
	if len(payload) < 3+n {
		return nil, &frameError{"SETUP formats longer than the frame"}
	}
	peerAcc, peerProd, err := expat.DecodeFormats(payload[3 : 3+n])
	if err != nil {
		return nil, err
	}
	req := payload[3+n:]
	acc, prod := c.cfg.Formats()
	if c.cfg.Attester != nil && len(req) > 0 {
		if err := expat.CheckFormats(prod, peerAcc, true); err != nil {
			return nil, err
		}
	}
	if c.cfg.RequirePeerAttestation {
		if err := expat.CheckFormats(peerProd, acc, false); err != nil {
			return nil, err
		}
	}
	c.mu.Lock()
	c.peerAccepts = peerAcc
	c.mu.Unlock()
	return req, nil
}

// answer answers a peer request in its own goroutine, paced as expat.Conn
// paces (carrier.Pacer); too many requests in progress close the
// connection.
func (c *Conn) answer(req []byte) error {
	reqCtx, err := ea.GetContext(req)
	if err != nil {
		return &expat.Error{Op: "answer", Alert: alertIllegalParameter, Err: err}
	}
	// Counted here, waited for in the answering goroutine: the reader
	// never blocks on the pace (a request beyond the count closes the
	// connection at once).
	delay, err := c.pacer.Reserve()
	if err != nil {
		return &expat.Error{Op: "answer", Alert: alertUnexpectedMessage, Err: err}
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer c.pacer.End()
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-c.ctx.Done():
				t.Stop()
				return
			}
		}
		// Each answer is bounded (SetupTimeout), like expat.Conn's.
		actx, cancel := context.WithTimeout(c.ctx, carrier.SetupTimeout(c.cfg))
		defer cancel()
		c.mu.Lock()
		actx = expat.WithPeerAcceptedFormats(actx, c.peerAccepts)
		c.mu.Unlock()
		// Evidence only as expat.Config.Release allows (as expat.Conn);
		// an Attester that ignores ctx is abandoned at the bound.
		err := c.x.MayRelease(actx)
		var auth []byte
		if err == nil {
			auth, err = bound.Run(actx, func(ctx context.Context) ([]byte, error) { return c.ep.Respond(ctx, req) })
		}
		if err != nil {
			var e *expat.Error
			if errors.As(err, &e) && e.Op == "parse request" {
				c.fail(err)
				return
			}
			auth, err = c.ep.Refuse(req)
		}
		if err == nil {
			err = c.write(appendFrame(nil, frameAuthenticator, []byte{byte(len(reqCtx))}, reqCtx, auth))
		}
		if err != nil {
			c.fail(err)
		}
	}()
	return nil
}

// handleAuthenticator hands the peer's answer to the exchange waiting for
// it (exchange.Model.Deliver); it is verified by the waiting caller.
func (c *Conn) handleAuthenticator(payload []byte) error {
	n := int(payload[0])
	if n > len(payload)-1 || len(payload)-1-n == 0 {
		return &frameError{"malformed AUTHENTICATOR"}
	}
	return c.x.Deliver(payload[1:1+n], payload[1+n:])
}

// welcome reports whether the peer may open streams now (our READY sent);
// a stream before that is a violation.
func (c *Conn) welcome() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.weReady {
		return &expat.Error{Op: "accept", Alert: alertUnexpectedMessage, Err: fmt.Errorf("%w: application stream before the required attestation", expat.ErrNotAttested)}
	}
	return nil
}

func (c *Conn) acceptLoop()    { acceptInto(c, c.qc.AcceptStream, c.streams) }
func (c *Conn) acceptUniLoop() { acceptInto(c, c.qc.AcceptUniStream, c.uni) }

// acceptInto hands the peer's streams to the application, closing the
// connection at the first one that arrives before our READY.
func acceptInto[S any](c *Conn, accept func(context.Context) (S, error), ch chan<- S) {
	defer c.wg.Done()
	for {
		s, err := accept(c.ctx)
		if err != nil {
			return
		}
		if err := c.welcome(); err != nil {
			c.fail(err)
			return
		}
		select {
		case ch <- s:
		case <-c.ctx.Done():
			return
		}
	}
}

// fail ends the connection with the alert the failure implies.
func (c *Conn) fail(err error) {
	c.end(err, alertOf(err), true)
}

func (c *Conn) end(err error, alert tls.AlertError, sendCode bool) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	c.mu.Unlock()
	c.x.End()
	c.doneOnce.Do(func() { close(c.done) })
	c.cancel()
	if sendCode {
		msg := err.Error()
		if len(msg) > 200 {
			msg = msg[:200]
		}
		c.qc.CloseWithError(ErrorCodeBase+quic.ApplicationErrorCode(alert), msg)
	}
}

func (c *Conn) wait() { c.wg.Wait() }

func (c *Conn) endErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	return expat.ErrClosed
}

// wrapQUIC turns the peer's close with one of our codes into the remote
// *expat.Error that expat.Conn reports for a CLOSE frame.
func (c *Conn) wrapQUIC(err error) error {
	var ae *quic.ApplicationError
	if errors.As(err, &ae) && ae.Remote && ae.ErrorCode >= ErrorCodeBase && ae.ErrorCode <= ErrorCodeBase+255 {
		alert := tls.AlertError(ae.ErrorCode - ErrorCodeBase)
		return &expat.Error{Op: "peer closed", Alert: alert, Remote: true, Err: alert}
	}
	return err
}

func alertOf(err error) tls.AlertError {
	var e *expat.Error
	if errors.As(err, &e) && e.Alert != 0 && !e.Remote {
		return e.Alert
	}
	var fe *frameError
	if errors.As(err, &fe) {
		return alertUnexpectedMessage
	}
	return alertInternalError
}

// usable reports why application streams may not be used now.
func (c *Conn) usable() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	if c.cfg.RequirePeerAttestation && !c.x.Attested() {
		return expat.ErrNotAttested
	}
	return nil
}

// OpenStream opens a bidirectional application stream (quic.Conn.OpenStream).
func (c *Conn) OpenStream() (*quic.Stream, error) {
	if err := c.usable(); err != nil {
		return nil, err
	}
	return c.qc.OpenStream()
}

// OpenStreamSync opens a bidirectional application stream, waiting for
// flow control (quic.Conn.OpenStreamSync).
func (c *Conn) OpenStreamSync(ctx context.Context) (*quic.Stream, error) {
	if err := c.usable(); err != nil {
		return nil, err
	}
	return c.qc.OpenStreamSync(ctx)
}

// OpenUniStreamSync opens a unidirectional application stream.
func (c *Conn) OpenUniStreamSync(ctx context.Context) (*quic.SendStream, error) {
	if err := c.usable(); err != nil {
		return nil, err
	}
	return c.qc.OpenUniStreamSync(ctx)
}

// AcceptStream returns the next bidirectional stream the peer opened.
func (c *Conn) AcceptStream(ctx context.Context) (*quic.Stream, error) {
	select {
	case s := <-c.streams:
		if err := c.usable(); err != nil {
			s.CancelRead(0)
			s.CancelWrite(0)
			return nil, err
		}
		return s, nil
	case <-c.ctx.Done():
		return nil, c.endErr()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// AcceptUniStream returns the next unidirectional stream the peer opened.
func (c *Conn) AcceptUniStream(ctx context.Context) (*quic.ReceiveStream, error) {
	select {
	case s := <-c.uni:
		if err := c.usable(); err != nil {
			s.CancelRead(0)
			return nil, err
		}
		return s, nil
	case <-c.ctx.Done():
		return nil, c.endErr()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Attest re-attests the peer now, on the control stream, and verifies the
// answer with expat.Config.Verifier under ctx; on success the result
// becomes the latest PeerAttestation. Concurrent calls queue: one request
// of ours is outstanding at a time (as expat.Conn.Attest). A call whose
// ctx ends while it waits for an earlier one changes nothing. Once the
// request is sent, any failure (including ctx expiring) closes the
// connection, unless expat.Config.KeepOnFailure keeps it open but
// unattested (no streams are opened or accepted until a later Attest
// succeeds); an answer or a verification that completes after Attest
// returned is dropped.
func (c *Conn) Attest(ctx context.Context) (*expat.Attestation, error) {
	if c.cfg.Verifier == nil {
		return nil, errors.New("expatquic: Attest needs expat.Config.Verifier")
	}
	release, err := c.x.Turn(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	req, err := c.ep.NewRequest()
	if err != nil {
		c.attestFailed(err)
		return nil, err
	}
	ex, err := c.x.Open(req.Context, false)
	if err != nil {
		return nil, err
	}
	if err := c.write(appendFrame(nil, frameRequest, req.Message)); err != nil {
		c.x.Abandon(ex)
		c.fail(err)
		return nil, err
	}
	att, err := c.x.Await(ctx, ex, c.ep.VerifyFor)
	if err != nil {
		c.x.Abandon(ex)
		c.attestFailed(err)
		return nil, err
	}
	if err := c.x.Commit(ex, att); err != nil {
		return nil, err
	}
	return att, nil
}

// attestFailed ends the connection after a failed attestation, unless
// KeepOnFailure keeps it open, unattested.
func (c *Conn) attestFailed(err error) {
	if c.cfg.KeepOnFailure {
		c.x.Unattest()
		return
	}
	c.fail(err)
}

// PeerAttestation returns the latest verified attestation of the peer, or
// nil (none, the latest failed or passed its ValidUntil, or the
// connection ended).
func (c *Conn) PeerAttestation() *expat.Attestation {
	a, _ := c.x.Latest()
	return a
}

// ConnectionState returns the QUIC connection's state (TLS included).
func (c *Conn) ConnectionState() quic.ConnectionState { return c.qc.ConnectionState() }

// ApplicationProtocol is the negotiated application protocol (ALPN without
// ALPNPrefix).
func (c *Conn) ApplicationProtocol() string {
	return strings.TrimPrefix(c.qc.ConnectionState().TLS.NegotiatedProtocol, ALPNPrefix)
}

// Context is done when the connection has ended.
func (c *Conn) Context() context.Context { return c.ctx }

func (c *Conn) LocalAddr() net.Addr  { return c.qc.LocalAddr() }
func (c *Conn) RemoteAddr() net.Addr { return c.qc.RemoteAddr() }

// CloseWithError closes the connection with an application error code
// (outside [ErrorCodeBase, ErrorCodeBase+255]) and waits for the Conn's
// goroutines.
func (c *Conn) CloseWithError(code quic.ApplicationErrorCode, msg string) error {
	// The Conn's end first: calls in progress then report expat.ErrClosed,
	// not the local QUIC close their streams see.
	c.end(expat.ErrClosed, 0, false)
	err := c.qc.CloseWithError(code, msg)
	c.wait()
	return err
}

// Close closes the connection (application error code 0).
func (c *Conn) Close() error { return c.CloseWithError(0, "") }
