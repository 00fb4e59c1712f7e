package expat

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/attested-tls/go-expat/ea"
)

// Conn is an attested connection: a net.Conn over an established TLS 1.3
// connection that carries Exported Authenticator messages and application
// data on the same stream (see frame.go for the framing).
//
// Setup happens in Handshake (called implicitly by the first Read or Write):
// each side sends a SETUP frame, with an attestation request when its Config
// requires the peer to attest; each side answers the peer's request; mutual
// attestation therefore takes one round trip after the TLS handshake. No
// application data is accepted or sent until the attestation the local
// policy requires has been verified and the peer's setup request answered.
//
// Attest runs a new attestation of the peer at any time (operation-triggered
// or periodic re-attestation), each with a new context. Attestations are
// numbered in the order their verification completed; PeerAttestation
// returns the latest.
//
// A Conn reads the TLS connection from its own goroutine so that requests
// from the peer are answered even while the application is not reading.
// Application data that arrives is buffered up to a small bound; beyond it
// the Conn stops reading until the application calls Read, which also
// delays EA messages queued behind that data.
type Conn struct {
	tc       *tls.Conn
	ep       *Endpoint
	cfg      *Config
	isServer bool

	// lifetime
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	writeMu sync.Mutex

	hsOnce sync.Once
	hsDone chan struct{} // closed when setup has completed or failed

	mu            sync.Mutex
	setupErr      error
	peerSetup     bool // peer's SETUP received
	peerSetupReq  bool // ... with a request
	answeredSetup bool // our answer to it written
	ourSetupDone  bool // our setup request verified (or none)
	attested      bool // the latest attestation of the peer succeeded
	attestations  uint64
	latest        *Attestation
	pending       map[string]chan attestResult
	inFlight      int // peer requests being answered
	lastAnswer    time.Time
	closed        bool
	closeErr      error // why the connection ended
	rq            []rqChunk
	rqBytes       int
	rdeadline     time.Time
	dataReady     chan struct{} // signalled when rq, closeErr or rdeadline change
	spaceReady    chan struct{} // signalled when Read drained rq
	closeOnce     sync.Once
	setupReqCtx   []byte
}

// rqChunk is received application data not yet consumed by Read.
type rqChunk struct {
	bp *[]byte // pooled buffer
	b  []byte  // unread part of *bp
}

type attestResult struct {
	att *Attestation
	err error
}

// maxBufferedData bounds application data read from the peer but not yet
// consumed by Read.
const maxBufferedData = 4 * maxDataPayload

// Server wraps the server side of an established TLS 1.3 connection. The
// TLS handshake must have completed (call tc.Handshake first) and must not
// have resumed a session.
func Server(tc *tls.Conn, cfg *Config) (*Conn, error) { return newConn(tc, true, cfg) }

// Client wraps the client side of an established TLS 1.3 connection.
func Client(tc *tls.Conn, cfg *Config) (*Conn, error) { return newConn(tc, false, cfg) }

func newConn(tc *tls.Conn, isServer bool, cfg *Config) (*Conn, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	if err := cfg.check(); err != nil {
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
	ctx, cancel := context.WithCancel(context.Background())
	return &Conn{
		tc: tc, ep: ep, cfg: cfg, isServer: isServer,
		ctx: ctx, cancel: cancel,
		hsDone:     make(chan struct{}),
		pending:    make(map[string]chan attestResult),
		dataReady:  make(chan struct{}, 1),
		spaceReady: make(chan struct{}, 1),
	}, nil
}

// Endpoint returns the sans-I/O endpoint underneath c.
func (c *Conn) Endpoint() *Endpoint { return c.ep }

// ConnectionState returns the underlying TLS connection's state.
func (c *Conn) ConnectionState() tls.ConnectionState { return c.tc.ConnectionState() }

// PeerAttestation returns the latest verified attestation of the peer, or
// nil if there is none, the latest attestation failed, or the connection
// has ended (an ended connection is no longer attested, whatever it was).
func (c *Conn) PeerAttestation() *Attestation {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.attested {
		return nil
	}
	return c.latest
}

// Handshake runs the attestation setup: it sends our SETUP frame (with a
// request when Config.RequirePeerAttestation is set), answers the peer's
// setup request and waits until both are done. On failure the connection is
// closed with the alert the failure implies. It is safe to call more than
// once; later calls return the first result.
func (c *Conn) Handshake(ctx context.Context) error {
	c.hsOnce.Do(func() { c.startSetup() })
	select {
	case <-c.hsDone:
	default:
		select {
		case <-c.hsDone:
		case <-ctx.Done():
			c.fail(wrapErr("setup", alertInternalError, ctx.Err()))
			<-c.hsDone
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.setupErr
}

func (c *Conn) startSetup() {
	payload := []byte{frameVersion}
	if c.cfg.RequirePeerAttestation {
		req, err := c.ep.Request()
		if err != nil {
			c.fail(err)
			return
		}
		reqCtx, err := ea.GetContext(req)
		if err != nil {
			c.fail(err)
			return
		}
		c.mu.Lock()
		c.setupReqCtx = reqCtx
		c.pending[string(reqCtx)] = make(chan attestResult, 1)
		c.mu.Unlock()
		payload = append(payload, req...)
	} else {
		c.mu.Lock()
		c.ourSetupDone = true
		c.mu.Unlock()
	}
	// SETUP must be our first frame: hold the write lock from before the
	// reader starts (which may answer the peer's request) until it is
	// written. The reader must run meanwhile so that synchronous transports
	// (net.Pipe) do not deadlock with both sides writing.
	c.writeMu.Lock()
	c.wg.Add(1)
	go c.readLoop()
	_, err := c.tc.Write(appendFrame(nil, frameSetup, payload))
	c.writeMu.Unlock()
	if err != nil {
		c.fail(err)
		return
	}
	c.checkSetup()
}

// checkSetup completes setup when every condition holds.
func (c *Conn) checkSetup() {
	c.mu.Lock()
	done := c.setupErr == nil && c.peerSetup && (!c.peerSetupReq || c.answeredSetup) && c.ourSetupDone
	c.mu.Unlock()
	if done {
		c.closeHsDone()
	}
}

func (c *Conn) closeHsDone() {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.hsDone:
	default:
		close(c.hsDone)
	}
}

func (c *Conn) implicitHandshake() error {
	select {
	case <-c.hsDone:
		// Fast path for every Read and Write after setup.
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.setupErr
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.setupTimeout())
	defer cancel()
	return c.Handshake(ctx)
}

// Attest asks the peer to attest now, with a new context, and verifies the
// answer with Config.Verifier. On success the result becomes the latest
// PeerAttestation. On failure (including ctx expiring) the connection is
// closed, unless Config.KeepOnFailure is set, in which case it stays open
// but unattested: Read and Write fail with ErrNotAttested until a later
// Attest succeeds.
func (c *Conn) Attest(ctx context.Context) (*Attestation, error) {
	if err := c.Handshake(ctx); err != nil {
		return nil, err
	}
	if c.cfg.Verifier == nil {
		return nil, errors.New("expat: Attest needs Config.Verifier")
	}
	req, err := c.ep.Request()
	if err != nil {
		return nil, err
	}
	reqCtx, err := ea.GetContext(req)
	if err != nil {
		return nil, err
	}
	ch := make(chan attestResult, 1)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, c.endErr()
	}
	c.pending[string(reqCtx)] = ch
	c.mu.Unlock()
	if err := c.writeFrame(frameRequest, req); err != nil {
		c.fail(err)
		return nil, err
	}
	select {
	case r := <-ch:
		if r.err != nil {
			c.attestFailed(r.err)
			return nil, r.err
		}
		return r.att, nil
	case <-ctx.Done():
		c.mu.Lock()
		if _, ok := c.pending[string(reqCtx)]; ok {
			// Abandoned: a late answer is discarded, not an error.
			c.pending[string(reqCtx)] = nil
		}
		c.mu.Unlock()
		err := wrapErr("attest", alertInternalError, ctx.Err())
		c.attestFailed(err)
		return nil, err
	case <-c.ctx.Done():
		return nil, c.endErr()
	}
}

func (c *Conn) attestFailed(err error) {
	if c.cfg.KeepOnFailure {
		c.mu.Lock()
		c.attested = false
		c.mu.Unlock()
		c.signal(c.dataReady)
		return
	}
	c.fail(err)
}

// Read reads application data. It blocks until setup has completed.
func (c *Conn) Read(p []byte) (int, error) {
	if err := c.implicitHandshake(); err != nil {
		return 0, err
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		c.mu.Lock()
		if c.cfg.RequirePeerAttestation && !c.attested && !c.closed {
			c.mu.Unlock()
			return 0, ErrNotAttested
		}
		if len(c.rq) > 0 {
			n := copy(p, c.rq[0].b)
			if n == len(c.rq[0].b) {
				putBuf(c.rq[0].bp)
				c.rq[0] = rqChunk{}
				c.rq = c.rq[1:]
			} else {
				c.rq[0].b = c.rq[0].b[n:]
			}
			c.rqBytes -= n
			c.mu.Unlock()
			c.signal(c.spaceReady)
			return n, nil
		}
		if c.closed {
			err := c.closeErr
			c.mu.Unlock()
			return 0, err
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

// Write writes application data. It blocks until setup has completed and
// fails with ErrNotAttested while the peer is not attested (when the policy
// requires it).
func (c *Conn) Write(p []byte) (int, error) {
	if err := c.implicitHandshake(); err != nil {
		return 0, err
	}
	c.mu.Lock()
	if c.closed {
		err := c.closeErr
		c.mu.Unlock()
		if err == io.EOF {
			err = ErrClosed
		}
		return 0, err
	}
	if c.cfg.RequirePeerAttestation && !c.attested {
		c.mu.Unlock()
		return 0, ErrNotAttested
	}
	c.mu.Unlock()
	bp := getBuf()
	defer putBuf(bp)
	n := 0
	for len(p) > 0 {
		chunk := p
		if len(chunk) > maxDataPayload {
			chunk = chunk[:maxDataPayload]
		}
		frame := appendFrame((*bp)[:0], frameData, chunk)
		c.writeMu.Lock()
		_, err := c.tc.Write(frame)
		c.writeMu.Unlock()
		if err != nil {
			return n, err
		}
		n += len(chunk)
		p = p[len(chunk):]
	}
	return n, nil
}

// Close closes the connection and the TLS connection under it, and waits
// for the Conn's goroutines to end.
func (c *Conn) Close() error {
	c.shutdown(ErrClosed, 0, false)
	c.wg.Wait()
	return nil
}

func (c *Conn) LocalAddr() net.Addr  { return c.tc.LocalAddr() }
func (c *Conn) RemoteAddr() net.Addr { return c.tc.RemoteAddr() }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the deadline for Read. The Conn's own reader of the
// TLS connection is not affected.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.rdeadline = t
	c.mu.Unlock()
	c.signal(c.dataReady)
	return nil
}

// SetWriteDeadline sets the deadline for writes to the TLS connection.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.tc.SetWriteDeadline(t) }

// fail ends the connection after a local failure, telling the peer the
// alert the failure implies.
func (c *Conn) fail(err error) {
	alert := alertInternalError
	var e *Error
	if errors.As(err, &e) {
		alert = e.Alert
	}
	var fe *frameError
	if errors.As(err, &fe) {
		alert = alertUnexpectedMessage
	}
	c.shutdown(err, alert, true)
}

func (c *Conn) shutdown(err error, alert tls.AlertError, sendAlert bool) {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.closeErr = err
		c.attested = false
		if c.setupErr == nil {
			select {
			case <-c.hsDone:
			default:
				c.setupErr = err
			}
		}
		pending := c.pending
		c.pending = map[string]chan attestResult{}
		c.mu.Unlock()
		for _, ch := range pending {
			ch <- attestResult{err: err}
		}
		if sendAlert && alert != 0 {
			// Best effort, bounded: the peer may have stopped reading.
			c.tc.SetWriteDeadline(time.Now().Add(time.Second))
			c.writeFrame(frameClose, []byte{byte(alert)})
		}
		c.cancel()
		c.tc.SetWriteDeadline(time.Now().Add(time.Second))
		c.tc.Close()
		c.closeHsDone()
		c.signal(c.dataReady)
		c.signal(c.spaceReady)
	})
}

func (c *Conn) endErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeErr != nil {
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

func (c *Conn) writeFrame(typ byte, payload ...[]byte) error {
	bp := getBuf()
	defer putBuf(bp)
	frame := appendFrame((*bp)[:0], typ, payload...)
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_, err := c.tc.Write(frame)
	return err
}

// readLoop reads frames until the connection ends.
func (c *Conn) readLoop() {
	defer c.wg.Done()
	var hdr [frameHeaderLen]byte
	maxAuth := c.cfg.maxAuthenticatorSize() + 256
	for {
		typ, n, err := readFrameHeader(c.tc, &hdr, maxAuth)
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
		payload, err := readPayload(c.tc, n)
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
	var fe *frameError
	if errors.As(err, &fe) {
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
	// A clean close by the peer (TLS close_notify at a frame boundary)
	// surfaces as io.EOF from Read once buffered data is consumed.
	c.shutdown(err, 0, false)
}

// readData reads a DATA frame's payload into the receive queue.
func (c *Conn) readData(n int) error {
	c.mu.Lock()
	if !c.peerSetup {
		c.mu.Unlock()
		return &frameError{"application data before SETUP"}
	}
	if c.cfg.RequirePeerAttestation && !c.attested {
		c.mu.Unlock()
		return wrapErr("read", alertUnexpectedMessage, fmt.Errorf("%w: application data from a peer that is not attested", ErrNotAttested))
	}
	for c.rqBytes+n > maxBufferedData && !c.closed {
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

// readPayload reads n bytes, growing the buffer as bytes arrive rather than
// allocating what the peer claims up front.
func readPayload(r io.Reader, n int) ([]byte, error) {
	if n <= 4096 {
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		return b, err
	}
	var buf bytes.Buffer
	if _, err := io.CopyN(&buf, r, int64(n)); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf.Bytes(), nil
}

func (c *Conn) handleControl(typ byte, payload []byte) error {
	c.mu.Lock()
	peerSetup := c.peerSetup
	c.mu.Unlock()
	if typ != frameSetup && typ != frameClose && !peerSetup {
		return &frameError{"frame before SETUP"}
	}
	switch typ {
	case frameSetup:
		if peerSetup {
			return &frameError{"second SETUP"}
		}
		if payload[0] != frameVersion {
			return &frameError{fmt.Sprintf("unsupported framing version %d", payload[0])}
		}
		req := payload[1:]
		c.mu.Lock()
		c.peerSetup = true
		c.peerSetupReq = len(req) > 0
		c.mu.Unlock()
		if len(req) > 0 {
			return c.answer(req, true)
		}
		c.checkSetup()
		return nil
	case frameRequest:
		return c.answer(payload, false)
	case frameAuthenticator:
		return c.handleAuthenticator(payload)
	case frameClose:
		// The peer gave up on the connection and says why; errors.As
		// finds the tls.AlertError.
		alert := tls.AlertError(payload[0])
		c.shutdown(&Error{Op: "peer closed", Alert: alert, Remote: true, Err: alert}, 0, false)
		return nil
	}
	return &frameError{fmt.Sprintf("unexpected frame type 0x%02x", typ)}
}

// answer starts answering a peer request in its own goroutine.
func (c *Conn) answer(req []byte, setup bool) error {
	c.mu.Lock()
	if c.inFlight >= c.cfg.maxPeerRequests() {
		c.mu.Unlock()
		return wrapErr("answer", alertUnexpectedMessage, errors.New("peer has too many attestation requests in progress"))
	}
	c.inFlight++
	throttled := false
	now := c.cfg.now()
	if c.cfg.PeerRequestInterval > 0 && !c.lastAnswer.IsZero() && now.Sub(c.lastAnswer) < c.cfg.PeerRequestInterval {
		throttled = true
	} else {
		c.lastAnswer = now
	}
	c.mu.Unlock()
	reqCtx, err := ea.GetContext(req)
	if err != nil {
		return wrapErr("answer", alertIllegalParameter, err)
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		var auth []byte
		var err error
		if throttled {
			c.cfg.logger().Warn("expat: refusing peer attestation request: too frequent")
			auth, err = c.ep.Refuse(req)
		} else {
			auth, err = c.ep.Respond(c.ctx, req)
			if err != nil {
				c.cfg.logger().Warn("expat: cannot attest for peer", "err", err)
				var e *Error
				if errors.As(err, &e) && e.Op == "parse request" {
					c.fail(err)
					return
				}
				auth, err = c.ep.Refuse(req)
			}
		}
		if err == nil {
			err = c.writeFrame(frameAuthenticator, []byte{byte(len(reqCtx))}, reqCtx, auth)
		}
		c.mu.Lock()
		c.inFlight--
		if setup && err == nil {
			c.answeredSetup = true
		}
		c.mu.Unlock()
		if err != nil {
			c.fail(err)
			return
		}
		if setup {
			c.checkSetup()
		}
	}()
	return nil
}

// handleAuthenticator verifies the peer's answer to one of our requests,
// in the reader goroutine, so that application data behind it is only
// accepted once the verification has succeeded.
func (c *Conn) handleAuthenticator(payload []byte) error {
	if int(payload[0]) > len(payload)-1 {
		return &frameError{"malformed AUTHENTICATOR frame"}
	}
	reqCtx := payload[1 : 1+int(payload[0])]
	auth := payload[1+int(payload[0]):]
	if len(auth) == 0 {
		return &frameError{"empty authenticator payload"}
	}
	c.mu.Lock()
	ch, ok := c.pending[string(reqCtx)]
	delete(c.pending, string(reqCtx))
	setup := bytes.Equal(reqCtx, c.setupReqCtx) && c.setupReqCtx != nil && !c.ourSetupDone
	c.mu.Unlock()
	if !ok {
		// An answer to a request we never sent, or already answered:
		// RFC 9261, Section 5.2.3.
		return wrapErr("verify", alertIllegalParameter, fmt.Errorf("%w: authenticator for no outstanding request", ea.ErrUnknownContext))
	}
	if ch == nil {
		// The request was abandoned by Attest's caller.
		return nil
	}
	vctx := c.ctx
	if setup {
		var cancel context.CancelFunc
		vctx, cancel = context.WithTimeout(c.ctx, c.cfg.setupTimeout())
		defer cancel()
	}
	att, err := c.ep.VerifyFor(vctx, reqCtx, auth)
	if err == nil {
		c.mu.Lock()
		c.attestations++
		att.Seq = c.attestations
		c.latest = att
		c.attested = true
		if setup {
			c.ourSetupDone = true
		}
		c.mu.Unlock()
		c.cfg.logger().Debug("expat: peer attested", "seq", att.Seq)
	}
	ch <- attestResult{att: att, err: err}
	if err != nil {
		if setup || !c.cfg.KeepOnFailure {
			return err
		}
		c.mu.Lock()
		c.attested = false
		c.mu.Unlock()
		return nil
	}
	if setup {
		c.checkSetup()
	}
	return nil
}

const alertUnexpectedMessage tls.AlertError = 10

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
