package expat

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/attested-tls/go-expat/ea"
	"github.com/attested-tls/go-expat/expat/internal/bound"
	"github.com/attested-tls/go-expat/expat/internal/exchange"
	"github.com/attested-tls/go-expat/expat/internal/frame"
	"github.com/attested-tls/go-expat/expat/internal/pace"
	"github.com/attested-tls/go-expat/internal/warm"
)

// Conn is an attested connection: a net.Conn over an established TLS 1.3
// connection that carries Exported Authenticator messages and application
// data on the same stream (see frame.go for the framing).
//
// Setup happens in Handshake (called implicitly by the first Read, Write,
// CloseWrite or Attest): each side sends a SETUP frame, with an attestation
// request when its Config requires the peer to attest; each side answers
// the peer's request; mutual attestation therefore takes one round trip
// after the TLS handshake. No application data is accepted or sent until
// the attestation the local policy requires has been verified and the
// peer's setup request answered. Setup is bounded by Config.SetupTimeout
// however it was started (see state.go for its states).
//
// Attest runs a new attestation of the peer at any time (operation-triggered
// or periodic re-attestation), each with a new context. Attestations are
// numbered in the order their verification completed; PeerAttestation
// returns the latest.
//
// Nothing blocks past its caller's bound: Handshake and Attest end with
// their ctx (and Handshake with the read deadline), Read and Write with
// the deadlines set by SetDeadline, SetReadDeadline and SetWriteDeadline,
// and Close within about a second whatever the peer, the Attester or the
// Verifier do. Work a caller gave up on never commits state: a verification
// that completes after its Attest or Handshake returned is dropped.
//
// A Conn reads the TLS connection from its own goroutine so that requests
// from the peer are answered even while the application is not reading.
// Application data that arrives is buffered up to a small bound; beyond it
// the Conn stops reading until the application calls Read, which also
// delays EA messages queued behind that data. EA messages we send go ahead
// of our own application data: they wait behind at most one DATA frame.
type Conn struct {
	tc       *tls.Conn
	ep       *Endpoint
	cfg      *Config
	isServer bool

	// lifetime: ctx ends when the connection does.
	ctx      context.Context
	cancel   context.CancelFunc
	reader   sync.WaitGroup // the reader goroutine; Close waits for it
	teardown sync.WaitGroup // the goroutine closing the TLS connection

	// Writing. wsem is held while writing to tc; control frames queue in
	// ctrlQ and whoever holds wsem writes them before its next DATA frame.
	wsem      chan struct{}
	wmu       sync.Mutex
	ctrlQ     []*ctrlFrame
	ctrlN     atomic.Int32
	wdeadline atomic.Pointer[time.Time]

	// pacer paces our answers to the peer's requests.
	pacer *pace.Pacer

	// x is the exchange model (expat/internal/exchange, shared with
	// expatquic): our one outstanding request (the setup request, or one
	// Attest call's: concurrent calls queue, so a peer's MaxPeerRequests
	// is never exceeded), commits, Seq numbering, the latest attestation,
	// its expiry and the scheduled re-attestation.
	x *exchange.Model[*Attestation]

	hsOnce sync.Once
	hsDone chan struct{} // closed when setup has completed or failed

	mu          sync.Mutex
	setup       setupState
	waiting     obligation
	setupErr    error
	peerAccepts []string // formats the peer accepts, from its SETUP
	closed      bool
	closeErr    error                         // why the connection ended
	ops         map[uint64]context.CancelFunc // see opCtx; nil when empty
	opSeq       uint64
	writeClosed bool // CloseWrite was called
	peerEnded   bool // the peer sent END, or closed cleanly
	peerGone    bool // the peer closed cleanly: nothing more will be read
	rq          []rqChunk
	rqBytes     int
	rqFull      bool // the reader waits for Read to drain rq to rqLowWater
	rdeadline   time.Time
	dlChanged   chan struct{} // closed when a deadline changes; made by deadlines() (nil until someone waits)
	dataReady   chan struct{} // signalled when rq, closeErr or rdeadline change
	spaceReady  chan struct{} // signalled when Read drained rq
	closeOnce   sync.Once
}

// ctrlFrame is a queued control frame.
type ctrlFrame struct {
	b       []byte
	done    chan error // buffered 1: the result of writing b
	started bool       // taken off the queue for writing (guarded by wmu)
}

// rqChunk is received application data not yet consumed by Read.
type rqChunk struct {
	bp *[]byte // pooled buffer
	b  []byte  // unread part of *bp
}

// maxBufferedData bounds application data read from the peer but not yet
// consumed by Read.
const maxBufferedData = 4 * maxDataPayload

// rqLowWater is the level to which Read drains a full receive queue before
// it wakes the reader.
const rqLowWater = maxBufferedData - 2*maxDataPayload

// closeGrace bounds how long Close spends telling the peer (a CLOSE frame,
// TLS close_notify) before it cuts the connection.
const closeGrace = time.Second

// Server wraps the server side of an established TLS 1.3 connection. The
// TLS handshake must have completed (call tc.Handshake first) and must not
// have resumed a session (use ServerTLSConfig). Listen and NewListener do
// all of this, with a setup deadline, for every accepted connection.
func Server(tc *tls.Conn, cfg *Config) (*Conn, error) { return newConn(tc, true, cfg) }

// Client wraps the client side of an established TLS 1.3 connection (see
// Dial, which also runs the TLS handshake and the setup).
func Client(tc *tls.Conn, cfg *Config) (*Conn, error) { return newConn(tc, false, cfg) }

func newConn(tc *tls.Conn, isServer bool, cfg *Config) (*Conn, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	if err := cfg.checkConn(); err != nil {
		return nil, err
	}
	if tc == nil {
		return nil, errors.New("expat: nil *tls.Conn")
	}
	cs := tc.ConnectionState()
	ep, err := NewEndpoint(&cs, isServer, cfg)
	if err != nil {
		return nil, err
	}
	if err := boundSendQueue(tc, cfg.sendQueue()); err != nil {
		cfg.logger().Debug("expat: could not bound the socket's send queue", "err", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Conn{
		tc: tc, ep: ep, cfg: cfg, isServer: isServer,
		ctx: ctx, cancel: cancel,
		pacer:      pace.New(cfg.maxPeerRequests(), cfg.peerRequestInterval()),
		wsem:       make(chan struct{}, 1),
		hsDone:     make(chan struct{}),
		dataReady:  make(chan struct{}, 1),
		spaceReady: make(chan struct{}, 1),
	}
	c.x = exchange.New(exchange.Config[*Attestation]{
		Requests: ep, Context: ctx, Ended: c.endErr, Wrap: wrapErr, Stamp: stamp, Now: cfg.Time,
		Bind:          func(ctx context.Context) (context.Context, context.CancelFunc) { return c.opCtx(ctx, 0) },
		Expired:       func() { c.attestFailed(wrapErr("attest", alertCertificateExpired, ErrAttestationExpired)) },
		ReattestEvery: cfg.ReattestEvery, ReattestBefore: cfg.ReattestBefore,
		Attest: c.Attest, Timeout: cfg.setupTimeout(), OnReattest: cfg.OnReattest, Logger: cfg.Logger,
	})
	return c, nil
}

// Endpoint returns the sans-I/O endpoint underneath c.
func (c *Conn) Endpoint() *Endpoint { return c.ep }

// ConnectionState returns the underlying TLS connection's state.
func (c *Conn) ConnectionState() tls.ConnectionState { return c.tc.ConnectionState() }

// NetConn returns the underlying *tls.Conn. Reading or writing it directly
// breaks the framing and therefore the connection.
func (c *Conn) NetConn() *tls.Conn { return c.tc }

// PeerAttestation returns the latest verified attestation of the peer, or
// nil if there is none, the latest attestation failed, or the connection
// has ended (an ended connection is no longer attested, whatever it was).
func (c *Conn) PeerAttestation() *Attestation {
	a, _ := c.x.Latest()
	return a
}

// Handshake runs the attestation setup: it sends our SETUP frame (with a
// request when Config.RequirePeerAttestation is set), answers the peer's
// setup request and waits until both are done. The Verifier appraising the
// peer's setup answer runs under ctx (bounded by Config.SetupTimeout).
// Handshake returns when ctx ends, when the read deadline set on c passes,
// or after Config.SetupTimeout, whichever comes first; any of these, like
// any failure, fails the setup and closes the connection with the alert
// the failure implies. It is safe to call more than once and concurrently;
// later calls return the first result.
func (c *Conn) Handshake(ctx context.Context) error {
	c.hsOnce.Do(func() { c.startSetup(ctx) })
	select {
	case <-c.hsDone:
		return c.handshakeErr()
	default:
	}
	for {
		dl, changed := c.deadlines()
		t, tch := deadlineTimer(dl.read)
		select {
		case <-c.hsDone:
		case <-ctx.Done():
			c.failSetup(wrapErr("setup", alertInternalError, ctx.Err()))
		case <-tch:
			c.failSetup(wrapErr("setup", alertInternalError, os.ErrDeadlineExceeded))
		case <-changed:
			stopTimer(t)
			continue
		}
		stopTimer(t)
		<-c.hsDone
		return c.handshakeErr()
	}
}

// connDeadlines are the deadlines set on a Conn.
type connDeadlines struct{ read, write time.Time }

// deadlines returns the deadlines and a channel closed when they change.
func (c *Conn) deadlines() (connDeadlines, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dlChanged == nil {
		c.dlChanged = make(chan struct{})
	}
	return connDeadlines{c.rdeadline, c.writeDeadline()}, c.dlChanged
}

func (c *Conn) handshakeErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.setupErr
}

// startSetup starts the setup goroutine; ctx is the caller's (nil for an
// implicit setup), whose values and cancellation the Verifier sees.
func (c *Conn) startSetup(ctx context.Context) {
	sctx, cancel := c.opCtx(ctx, c.cfg.setupTimeout())

	payload := []byte{frameVersion}
	if f := c.cfg.ourFormats(); !f.empty() {
		fb := f.marshal()
		payload = append([]byte{frameVersionFormats, byte(len(fb) >> 8), byte(len(fb))}, fb...)
	}
	var ex *exchange.Exchange
	if c.cfg.RequirePeerAttestation {
		req, err := c.ep.NewRequest()
		if err == nil {
			ex, err = c.x.Open(req.Context, true)
		}
		if err != nil {
			cancel()
			c.fail(err)
			return
		}
		payload = append(payload, req.Message...)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		cancel()
		return
	}
	c.setup = setupRunning
	c.waiting = oblSetupSent | oblPeerSetup
	if ex != nil {
		c.waiting |= oblPeerAttest
	}
	c.mu.Unlock()
	// SETUP must be our first frame: queue it before the reader starts
	// (the reader may answer the peer's request; that answer queues
	// behind it).
	f := c.queueCtrl(appendFrame(nil, frameSetup, payload))
	c.reader.Add(1)
	go c.readLoop()
	warm.Go(func() {
		defer cancel()
		c.runSetup(sctx, f, ex)
	})
}

// opCtx returns the context of work the Conn does on its own (the setup,
// an answer to the peer, a verification of the exchange model): parent's values and
// cancellation (none when parent is nil), bounded by d (none when d is 0), and cancelled when
// the Conn ends. It is not derived from c.ctx: a context.Context keeps the
// memory of every child it ever had, and an idle Conn should hold none of
// it. Call the CancelFunc when the work is done.
func (c *Conn) opCtx(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if parent == nil {
		parent = context.Background()
	}
	var ctx context.Context
	var cancel context.CancelFunc
	if d > 0 {
		ctx, cancel = context.WithTimeout(parent, d)
	} else {
		ctx, cancel = context.WithCancel(parent)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		cancel()
		return ctx, cancel
	}
	c.opSeq++
	id := c.opSeq
	if c.ops == nil {
		c.ops = make(map[uint64]context.CancelFunc, 1)
	}
	c.ops[id] = cancel
	c.mu.Unlock()
	return ctx, func() {
		c.mu.Lock()
		delete(c.ops, id)
		if len(c.ops) == 0 {
			c.ops = nil
		}
		c.mu.Unlock()
		cancel()
	}
}

// runSetup drives our part of the setup and bounds the whole of it.
func (c *Conn) runSetup(ctx context.Context, f *ctrlFrame, ex *exchange.Exchange) {
	if err := c.awaitCtrl(ctx, f); err != nil {
		c.failSetup(wrapErr("setup", alertInternalError, err))
		return
	}
	c.met(oblSetupSent)
	if ex != nil {
		// Nobody waits on this goroutine (Handshake waits on hsDone), so
		// it verifies itself; a Verifier overrunning the setup's bound
		// fails the setup at that moment.
		att, err := c.x.AwaitInline(ctx, ex, c.ep.VerifyFor, c.failSetup)
		if err != nil {
			c.failSetup(err)
			return
		}
		c.mu.Lock()
		if c.closed || c.setup != setupRunning {
			c.mu.Unlock()
			return
		}
		if err := c.x.Commit(ex, att); err != nil {
			c.mu.Unlock()
			c.failSetup(err)
			return
		}
		c.metLocked(oblPeerAttest)
		c.mu.Unlock()
		c.signal(c.dataReady)
	}
	select {
	case <-c.hsDone:
	case <-ctx.Done():
		c.failSetup(wrapErr("setup", alertInternalError, fmt.Errorf("setup did not complete: %w", ctx.Err())))
	}
}

func isExpatError(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// stamp numbers att at its commit and returns its lifetime (for the
// exchange model).
func stamp(att *Attestation, seq uint64) (verifiedAt, validUntil time.Time) {
	att.Seq = seq
	return att.VerifiedAt, att.ValidUntil
}

// implicitHandshake starts the setup if needed and waits for it, until the
// read or write deadline (write selects which).
func (c *Conn) implicitHandshake(write bool) error {
	select {
	case <-c.hsDone:
		// Fast path for every Read and Write after setup.
		return c.handshakeErr()
	default:
	}
	c.hsOnce.Do(func() { c.startSetup(nil) })
	for {
		dls, changed := c.deadlines()
		dl := dls.read
		if write {
			dl = dls.write
		}
		t, tch := deadlineTimer(dl)
		select {
		case <-c.hsDone:
			stopTimer(t)
			return c.handshakeErr()
		case <-tch:
			// The setup goes on (bounded by SetupTimeout); this call
			// gives up, as a net.Conn call does at its deadline.
			return os.ErrDeadlineExceeded
		case <-changed:
			stopTimer(t)
		}
	}
}

func (c *Conn) writeDeadline() time.Time {
	if p := c.wdeadline.Load(); p != nil {
		return *p
	}
	return time.Time{}
}

// Attest asks the peer to attest now, with a new context, and verifies the
// answer with Config.Verifier, under ctx. On success the result becomes
// the latest PeerAttestation.
//
// Concurrent calls queue: one request of ours is outstanding at a time. A
// call whose ctx ends before its request was sent returns an error and
// leaves the connection as it was. Once the request is sent, any failure —
// the peer refusing, the Verifier rejecting, ctx ending before the answer
// was verified — is a failed attestation: the connection is closed, unless
// Config.KeepOnFailure is set, in which case it stays open but unattested
// (Read and Write fail with ErrNotAttested until a later Attest succeeds).
// A verification still running when ctx ends is abandoned and its result,
// whenever it comes, is dropped.
func (c *Conn) Attest(ctx context.Context) (*Attestation, error) {
	if err := c.Handshake(ctx); err != nil {
		return nil, err
	}
	if c.cfg.Verifier == nil {
		return nil, errors.New("expat: Attest needs Config.Verifier")
	}
	release, err := c.x.Turn(ctx)
	if err != nil {
		return nil, err
	}
	defer release()

	c.mu.Lock()
	gone := c.peerGone
	c.mu.Unlock()
	if gone {
		err := wrapErr("attest", 0, fmt.Errorf("the peer closed its side of the connection: %w", io.EOF))
		c.attestFailed(err)
		return nil, err
	}
	req, err := c.ep.NewRequest()
	if err != nil {
		c.attestFailed(err)
		return nil, err
	}
	ex, err := c.x.Open(req.Context, false)
	if err != nil {
		return nil, err
	}
	if err := c.writeCtrl(ctx, frameRequest, req.Message); err != nil {
		c.x.Abandon(ex)
		var ns *notSentError
		if errors.As(err, &ns) {
			return nil, wrapErr("attest", 0, fmt.Errorf("%w: %w", ErrNotSent, ns.err))
		}
		err = wrapErr("attest", alertInternalError, err)
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
	c.signal(c.dataReady)
	return att, nil
}

func (c *Conn) attestFailed(err error) {
	if c.cfg.KeepOnFailure {
		c.x.Unattest()
		c.signal(c.dataReady)
		return
	}
	c.fail(err)
}

// Read reads application data. It blocks until setup has completed, and
// returns os.ErrDeadlineExceeded at the read deadline (an implicit setup
// then goes on, within Config.SetupTimeout).
func (c *Conn) Read(p []byte) (int, error) {
	if err := c.implicitHandshake(false); err != nil {
		return 0, err
	}
	var timer *time.Timer
	defer stopTimer(timer)
	for {
		c.mu.Lock()
		if c.cfg.RequirePeerAttestation && !c.closed && !c.x.Attested() {
			c.mu.Unlock()
			return 0, ErrNotAttested
		}
		if len(c.rq) > 0 {
			// As much as is queued and fits: a large buffer takes
			// several frames in one call.
			n := 0
			for n < len(p) && len(c.rq) > 0 {
				m := copy(p[n:], c.rq[0].b)
				n += m
				if m == len(c.rq[0].b) {
					putBuf(c.rq[0].bp)
					c.rq[0] = rqChunk{}
					c.rq = c.rq[1:]
				} else {
					c.rq[0].b = c.rq[0].b[m:]
				}
			}
			c.rqBytes -= n
			wake := c.rqFull && c.rqBytes <= rqLowWater
			if wake {
				c.rqFull = false
			}
			c.mu.Unlock()
			if wake {
				c.signal(c.spaceReady)
			}
			return n, nil
		}
		if c.closed {
			err := c.closeErr
			c.mu.Unlock()
			return 0, err
		}
		if c.peerEnded {
			c.mu.Unlock()
			return 0, io.EOF
		}
		dl := c.rdeadline
		c.mu.Unlock()
		var tch <-chan time.Time
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return 0, os.ErrDeadlineExceeded
			}
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			tch = timer.C
		}
		select {
		case <-c.dataReady:
		case <-tch:
		}
	}
}

// Write writes application data. It blocks until setup has completed,
// fails with ErrNotAttested while the peer is not attested (when the
// policy requires it), and returns os.ErrDeadlineExceeded at the write
// deadline (a timed-out write breaks the TLS stream, so the connection is
// then closed, as crypto/tls leaves it unusable for writing).
func (c *Conn) Write(p []byte) (int, error) {
	if err := c.implicitHandshake(true); err != nil {
		return 0, err
	}
	if err := c.writable(); err != nil {
		return 0, err
	}
	bp := getBuf()
	defer putBuf(bp)
	n := 0
	for len(p) > 0 {
		chunk := p
		if len(chunk) > maxDataPayload {
			chunk = chunk[:maxDataPayload]
		}
		if n > 0 {
			if err := c.writable(); err != nil {
				return n, err
			}
		}
		if err := c.acquireW(nil, c.writeDeadline()); err != nil {
			return n, err
		}
		err := c.flushCtrl()
		if err == nil {
			_, err = c.tc.Write(appendFrame((*bp)[:0], frameData, chunk))
		}
		<-c.wsem
		if err != nil {
			c.fail(wrapErr("write", alertInternalError, err))
			return n, err
		}
		n += len(chunk)
		p = p[len(chunk):]
	}
	return n, nil
}

// writable reports why application data cannot be written now, if so.
func (c *Conn) writable() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		if c.closeErr == io.EOF {
			return ErrClosed
		}
		return c.closeErr
	case c.writeClosed:
		return ErrWriteClosed
	case c.cfg.RequirePeerAttestation && !c.x.Attested():
		return ErrNotAttested
	}
	return nil
}

// CloseWrite ends our application data (the peer's Read then returns
// io.EOF once it has read what we sent) while the connection stays open
// for the peer's data and for attestation messages in both directions: the
// half-close proxies need. It must not run concurrently with Write. Close
// still has to be called.
func (c *Conn) CloseWrite() error {
	if err := c.implicitHandshake(true); err != nil {
		return err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.endErr()
	}
	if c.writeClosed {
		c.mu.Unlock()
		return nil
	}
	c.writeClosed = true
	c.mu.Unlock()
	ctx := context.Background()
	if dl := c.writeDeadline(); !dl.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl)
		defer cancel()
	}
	if err := c.writeCtrl(ctx, frameEnd, []byte{0}); err != nil {
		c.fail(wrapErr("close write", alertInternalError, err))
		return err
	}
	return nil
}

// Close closes the connection and the TLS connection under it. It returns
// within about a second whatever the peer does (telling the peer is best
// effort), and does not wait for an Attester or Verifier still at work:
// their results are dropped.
func (c *Conn) Close() error {
	c.shutdown(ErrClosed, 0, false)
	c.teardown.Wait()
	c.reader.Wait()
	return nil
}

func (c *Conn) LocalAddr() net.Addr  { return c.tc.LocalAddr() }
func (c *Conn) RemoteAddr() net.Addr { return c.tc.RemoteAddr() }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the deadline for Read, and for Handshake's wait for
// the peer. The Conn's own reader of the TLS connection is not affected.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.rdeadline = t
	c.deadlineChangedLocked()
	c.mu.Unlock()
	c.signal(c.dataReady)
	return nil
}

func (c *Conn) deadlineChangedLocked() {
	if c.dlChanged != nil {
		close(c.dlChanged)
		c.dlChanged = nil // made again by the next deadlines()
	}
}

// SetWriteDeadline sets the deadline for Write and CloseWrite, and for
// every write to the TLS connection.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.wdeadline.Store(&t)
	c.deadlineChangedLocked()
	c.mu.Unlock()
	return c.tc.SetWriteDeadline(t)
}

// failSetup fails the setup with err and ends the connection, unless the
// setup is no longer running (it completed, or already failed): a bound
// that expires as the setup completes changes nothing.
func (c *Conn) failSetup(err error) {
	c.mu.Lock()
	if c.setup != setupRunning {
		c.mu.Unlock()
		return
	}
	c.failSetupLocked(err)
	c.mu.Unlock()
	c.fail(err)
}

// fail ends the connection after a local failure, telling the peer the
// alert the failure implies.
func (c *Conn) fail(err error) {
	alert := alertInternalError
	var e *Error
	if errors.As(err, &e) && e.Alert != 0 && !e.Remote {
		alert = e.Alert
	}
	c.shutdown(err, alert, true)
}

func (c *Conn) shutdown(err error, alert tls.AlertError, sendAlert bool) {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.closeErr = err
		c.x.End()
		c.failSetupLocked(err)
		ops := c.ops
		c.ops = nil
		c.mu.Unlock()
		c.cancel()
		for _, cancel := range ops {
			cancel()
		}
		// Frames still queued will not be written.
		c.wmu.Lock()
		q := c.ctrlQ
		c.ctrlQ = nil
		c.ctrlN.Store(0)
		c.wmu.Unlock()
		for _, f := range q {
			f.done <- ErrClosed
		}
		// Telling the peer and closing the TLS connection may block for up
		// to closeGrace: not the caller's business (Close waits for it).
		c.teardown.Add(1)
		go c.tearDown(alert, sendAlert)
	})
}

// tearDown tells the peer (best effort) and closes the TLS connection,
// within closeGrace.
func (c *Conn) tearDown(alert tls.AlertError, sendAlert bool) {
	defer c.teardown.Done()
	deadline := time.Now().Add(closeGrace)
	if sendAlert && alert != 0 {
		// Best effort, bounded: the peer may have stopped reading,
		// or a writer may hold the connection.
		t := time.NewTimer(closeGrace / 4)
		select {
		case c.wsem <- struct{}{}:
			c.tc.SetWriteDeadline(deadline)
			c.tc.Write(appendFrame(nil, frameClose, []byte{byte(alert)}))
			<-c.wsem
		case <-t.C:
		}
		t.Stop()
	}
	// tls.Conn.Close sends close_notify with a deadline of its own
	// (5 s): cut the connection under it at ours.
	done := make(chan struct{})
	go func() { c.tc.Close(); close(done) }()
	t := time.NewTimer(time.Until(deadline))
	select {
	case <-done:
	case <-t.C:
		c.tc.NetConn().Close()
		<-done
	}
	t.Stop()
	c.signal(c.dataReady)
	c.signal(c.spaceReady)
}

func (c *Conn) endErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeErr != nil && c.closeErr != io.EOF {
		return c.closeErr
	}
	return ErrClosed
}

func (c *Conn) signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// acquireW takes the write semaphore, within ctx (nil: none) and the
// deadline dl (zero: none).
func (c *Conn) acquireW(ctx context.Context, dl time.Time) error {
	select {
	case c.wsem <- struct{}{}:
		return nil
	default:
	}
	t, tch := deadlineTimer(dl)
	defer stopTimer(t)
	var done <-chan struct{}
	if ctx != nil {
		done = ctx.Done()
	}
	select {
	case c.wsem <- struct{}{}:
		return nil
	case <-done:
		return ctx.Err()
	case <-tch:
		return os.ErrDeadlineExceeded
	case <-c.ctx.Done():
		return c.endErr()
	}
}

// queueCtrl queues a control frame for writing.
func (c *Conn) queueCtrl(b []byte) *ctrlFrame {
	f := &ctrlFrame{b: b, done: make(chan error, 1)}
	c.wmu.Lock()
	c.ctrlQ = append(c.ctrlQ, f)
	c.ctrlN.Add(1)
	c.wmu.Unlock()
	return f
}

// flushCtrl writes the queued control frames; wsem is held.
func (c *Conn) flushCtrl() error {
	for c.ctrlN.Load() > 0 {
		c.wmu.Lock()
		if len(c.ctrlQ) == 0 {
			c.wmu.Unlock()
			return nil
		}
		f := c.ctrlQ[0]
		c.ctrlQ[0] = nil
		c.ctrlQ = c.ctrlQ[1:]
		c.ctrlN.Add(-1)
		f.started = true
		c.wmu.Unlock()
		_, err := c.tc.Write(f.b)
		f.done <- err
		if err != nil {
			return err
		}
	}
	return nil
}

// notSentError is a control frame given up before any byte of it was
// written: the stream is intact.
type notSentError struct{ err error }

func (e *notSentError) Error() string { return "not sent: " + e.err.Error() }
func (e *notSentError) Unwrap() error { return e.err }

// writeCtrl queues a control frame and waits until it is written, within
// ctx.
func (c *Conn) writeCtrl(ctx context.Context, typ byte, payload ...[]byte) error {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return c.endErr()
	}
	return c.awaitCtrl(ctx, c.queueCtrl(appendFrame(nil, typ, payload...)))
}

// awaitCtrl waits until f is written, writing the queue itself when the
// connection is free. If ctx ends before f was taken for writing, f is
// withdrawn (a *notSentError); once it is being written, the stream cannot
// be left half-written, and the caller must fail the connection.
func (c *Conn) awaitCtrl(ctx context.Context, f *ctrlFrame) error {
	for {
		select {
		case err := <-f.done:
			return err
		case c.wsem <- struct{}{}:
			err := c.flushCtrl()
			<-c.wsem
			if err != nil {
				select {
				case ferr := <-f.done:
					return ferr
				default:
					return err
				}
			}
		case <-ctx.Done():
			c.wmu.Lock()
			if !f.started {
				for i, g := range c.ctrlQ {
					if g == f {
						c.ctrlQ = append(c.ctrlQ[:i], c.ctrlQ[i+1:]...)
						c.ctrlN.Add(-1)
						break
					}
				}
				c.wmu.Unlock()
				return &notSentError{ctx.Err()}
			}
			c.wmu.Unlock()
			return fmt.Errorf("frame partly written: %w", ctx.Err())
		case <-c.ctx.Done():
			return c.endErr()
		}
	}
}

// readLoop reads frames until the connection ends.
func (c *Conn) readLoop() {
	defer c.reader.Done()
	var hdr [frameHeaderLen]byte
	limit := frameLimit(c.cfg.maxAuthenticatorSize() + 256) // once: no allocation per frame
	for {
		typ, n, err := readFrameHeader(c.tc, &hdr, limit)
		if err != nil {
			c.readFailed(err)
			return
		}
		if typ == frameData {
			if err := c.readData(n); err != nil {
				c.readFailed(err)
				return
			}
			continue
		}
		payload, err := frame.ReadPayload(c.tc, n)
		if err != nil {
			c.readFailed(err)
			return
		}
		if err := c.handleControl(typ, payload); err != nil {
			c.fail(err)
			return
		}
	}
}

func (c *Conn) readFailed(err error) {
	if isExpatError(err) {
		c.fail(err)
		return
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = fmt.Errorf("expat: peer closed the connection mid-frame: %w", err)
	}
	if err == io.EOF && c.peerClosedCleanly() {
		return
	}
	// A clean close by the peer (TLS close_notify at a frame boundary)
	// surfaces as io.EOF from Read once buffered data is consumed.
	c.shutdown(err, 0, false)
}

// peerClosedCleanly handles the peer's clean close (TLS close_notify at a
// frame boundary) while our side still has work that needs nothing more
// from it — verifying an answer that already arrived, writing our own —
// so that a peer that answers and then closes does not turn a verdict into
// io.EOF. The peer's data then ends (Read returns io.EOF once the buffered
// data is read) and nothing more can be asked of it. It reports false when
// the connection must end now: the setup still waits for the peer.
func (c *Conn) peerClosedCleanly() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.setup == setupRunning {
		waitsForPeer := c.waiting&oblPeerSetup != 0 ||
			(c.waiting&oblPeerAttest != 0 && !c.x.Answered())
		if waitsForPeer {
			return false
		}
	}
	c.peerEnded = true
	c.peerGone = true
	c.signal(c.dataReady)
	return true
}

// readData reads a DATA frame's payload into the receive queue.
func (c *Conn) readData(n int) error {
	c.mu.Lock()
	switch {
	case !c.peerSetupSeenLocked():
		c.mu.Unlock()
		return framingError("application data before SETUP")
	case c.peerEnded:
		c.mu.Unlock()
		return framingError("application data after END")
	case c.cfg.RequirePeerAttestation && c.x.AwaitingSetupAnswer():
		// Data before the peer even answered our setup request. (Data
		// behind an answer being verified, or after a failed
		// re-attestation under KeepOnFailure, is buffered: Read does not
		// return it while the peer is not attested.)
		c.mu.Unlock()
		return wrapErr("read", alertUnexpectedMessage, fmt.Errorf("%w: application data from a peer that has not attested", ErrNotAttested))
	}
	// A full queue stops the reader until Read has drained it to
	// rqLowWater: the reader then refills it in a batch rather than
	// waking for every frame Read consumes.
	for c.rqBytes+n > maxBufferedData && !c.closed {
		c.rqFull = true
		c.mu.Unlock()
		select {
		case <-c.spaceReady:
		case <-c.ctx.Done():
		}
		c.mu.Lock()
	}
	c.mu.Unlock()
	bp := getBuf()
	buf := (*bp)[:n]
	if _, err := io.ReadFull(c.tc, buf); err != nil {
		putBuf(bp)
		return err
	}
	c.mu.Lock()
	c.rq = append(c.rq, rqChunk{bp: bp, b: buf})
	c.rqBytes += n
	c.mu.Unlock()
	c.signal(c.dataReady)
	return nil
}

func (c *Conn) handleControl(typ byte, payload []byte) error {
	c.mu.Lock()
	peerSetup := c.peerSetupSeenLocked()
	c.mu.Unlock()
	if typ != frameSetup && typ != frameClose && !peerSetup {
		return framingError("frame before SETUP")
	}
	switch typ {
	case frameSetup:
		if peerSetup {
			return framingError("second SETUP")
		}
		req, err := c.peerSetupFormats(payload)
		if err != nil {
			return err
		}
		if len(req) == 0 {
			c.met(oblPeerSetup)
			return nil
		}
		c.mu.Lock()
		c.waiting |= oblAnswer
		c.metLocked(oblPeerSetup)
		c.mu.Unlock()
		return c.acceptPeerRequest(req, true)
	case frameRequest:
		return c.acceptPeerRequest(payload, false)
	case frameAuthenticator:
		return c.deliver(payload)
	case frameEnd:
		if payload[0] != 0 || len(payload) != 1 {
			return framingError("malformed END frame")
		}
		c.mu.Lock()
		if c.peerEnded {
			c.mu.Unlock()
			return framingError("second END")
		}
		c.peerEnded = true
		c.mu.Unlock()
		c.signal(c.dataReady)
		return nil
	case frameClose:
		// The peer gave up on the connection and says why; errors.As
		// finds the tls.AlertError.
		alert := tls.AlertError(payload[0])
		c.shutdown(&Error{Op: "peer closed", Alert: alert, Remote: true, Err: alert}, 0, false)
		return nil
	}
	return framingError(fmt.Sprintf("unexpected frame type 0x%02x", typ))
}

// peerSetupFormats reads the version and formats of the peer's SETUP,
// fails the setup at once when no format is in common, and returns the
// request that follows.
func (c *Conn) peerSetupFormats(payload []byte) ([]byte, error) {
	f, payload, err := parseSetup(payload)
	if err != nil {
		return nil, err
	}
	ours := c.cfg.ourFormats()
	if c.cfg.Attester != nil && len(payload) > 0 {
		if err := matchFormats(ours.produces, f.accepts, true); err != nil {
			return nil, err
		}
	}
	if c.cfg.RequirePeerAttestation {
		if err := matchFormats(f.produces, ours.accepts, false); err != nil {
			return nil, err
		}
	}
	c.mu.Lock()
	c.peerAccepts = f.accepts
	c.mu.Unlock()
	return payload, nil
}

// acceptPeerRequest checks a request of the peer — its form, its type for
// our role, its context, the number in progress — before anything is
// spent on it, then schedules its answer at the pace Config allows.
func (c *Conn) acceptPeerRequest(msg []byte, setup bool) error {
	req, err := c.ep.acceptRequest(msg)
	if err != nil {
		return err
	}
	delay, err := c.pacer.Start()
	if err != nil {
		return wrapErr("answer", alertUnexpectedMessage, ErrTooManyRequests)
	}
	// Attesting and signing need a deep stack: a warm goroutine.
	warm.Go(func() { c.answerPeer(req, setup, delay) })
	return nil
}

// answerPeer answers one request of the peer after delay, within the
// per-request bound (Config.SetupTimeout); an Attester that fails or
// overruns is answered for with the empty authenticator.
func (c *Conn) answerPeer(req *ea.Request, setup bool, delay time.Duration) {
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
			c.pacer.Done()
			return
		}
	}
	if err := c.ctx.Err(); err != nil {
		c.pacer.Done()
		return
	}
	ctx, cancel := c.opCtx(nil, c.cfg.setupTimeout())
	defer cancel()
	c.mu.Lock()
	ctx = WithPeerAcceptedFormats(ctx, c.peerAccepts)
	c.mu.Unlock()
	err := c.x.MayRelease(ctx)
	if err != nil {
		c.sendAnswer(req, setup, nil, err)
		return
	}
	// This goroutine exists for this answer alone: attest in it, and
	// answer with the empty authenticator at ctx's end if the Attester
	// overruns.
	auth, err, ok := bound.Inline(ctx, func(ctx context.Context) ([]byte, error) { return c.ep.answer(ctx, req) },
		func() { c.sendAnswer(req, setup, nil, ctx.Err()) })
	if ok {
		c.sendAnswer(req, setup, auth, err)
	}
}

// sendAnswer writes our answer to the peer's request req: auth, or the
// empty authenticator when err is set (the Attester failed or overran, or
// Config.Release withheld the Evidence).
func (c *Conn) sendAnswer(req *ea.Request, setup bool, auth []byte, err error) {
	if err != nil {
		c.cfg.logger().Warn("expat: cannot attest for peer", "err", err)
		if auth, err = c.ep.refuse(req); err != nil {
			c.pacer.Done()
			c.fail(err)
			return
		}
	}
	// The work is done: the request no longer counts against
	// MaxPeerRequests (its answer may reach the peer, and the peer's next
	// request us, before this goroutine runs again).
	c.pacer.Done()
	err = c.writeCtrl(c.ctx, frameAuthenticator, []byte{byte(len(req.Context))}, req.Context, auth)
	if err != nil {
		c.fail(wrapErr("answer", alertInternalError, err))
		return
	}
	if setup {
		c.met(oblAnswer)
	}
}

// deliver hands an AUTHENTICATOR frame to the exchange it answers.
func (c *Conn) deliver(payload []byte) error {
	if int(payload[0]) > len(payload)-1 {
		return framingError("malformed AUTHENTICATOR frame")
	}
	reqCtx := payload[1 : 1+int(payload[0])]
	auth := payload[1+int(payload[0]):]
	if len(auth) == 0 {
		return framingError("empty authenticator payload")
	}
	return c.x.Deliver(reqCtx, auth)
}

// deadlineTimer returns a timer channel for dl, nil for the zero time.
func deadlineTimer(dl time.Time) (*time.Timer, <-chan time.Time) {
	if dl.IsZero() {
		return nil, nil
	}
	t := time.NewTimer(time.Until(dl))
	return t, t.C
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}

const (
	alertUnexpectedMessage  tls.AlertError = 10
	alertCertificateExpired tls.AlertError = 45
)

var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, frameHeaderLen+maxDataPayload)
	return &b
}}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(bp *[]byte) {
	if cap(*bp) >= frameHeaderLen+maxDataPayload {
		bufPool.Put(bp)
	}
}
