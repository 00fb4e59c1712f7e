package expathttp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/attested-tls/go-expat/ea"
	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/expat/internal/carrier"
)

// Transport is an http.RoundTripper for https URLs over attested TLS. Each
// new connection runs the setup exchange (the server's attestation when
// cfg.RequirePeerAttestation is set, and the client's own when the server
// asks) before the first request leaves; a connection whose attestation
// fails is closed and the request fails with that error. It answers the
// 401 challenges of AttestPeer on the same connection and repeats the
// request (when its body can be replayed: no body, or Request.GetBody).
//
// It keeps its own pool of connections (net/http's ClientConn, HTTP/2 or
// HTTP/1.1), one dial per host at a time. Safe for concurrent use; create
// it with NewTransport.
type Transport struct {
	tlsCfg *tls.Config
	cfg    *expat.Config
	inner  *http.Transport
	idle   time.Duration

	mu    sync.Mutex
	hosts map[string]*hostConns
}

var _ http.RoundTripper = (*Transport)(nil)

type hostConns struct {
	conns []*clientConn
	dial  *dialResult // in progress
}

type dialResult struct {
	done chan struct{}
	err  error
}

// NewTransport returns a Transport. tlsCfg (RootCAs, ServerName, client
// Certificates, ...) is used as expat.ClientTLSConfig makes it; its
// NextProtos may restrict the HTTP versions offered to "h2" and
// "http/1.1" (nil: both). cfg is the attestation policy of every
// connection; its Verifier appraises the server, its Attester answers the
// server's requests. A nil or zero cfg is refused.
func NewTransport(tlsCfg *tls.Config, cfg *expat.Config) (*Transport, error) {
	if err := carrier.CheckConfig("expathttp", cfg, false); err != nil {
		return nil, err
	}
	protos := []string{"h2", "http/1.1"}
	if tlsCfg != nil && tlsCfg.NextProtos != nil {
		protos = nil
		for _, p := range tlsCfg.NextProtos {
			if p != "h2" && p != "http/1.1" {
				return nil, fmt.Errorf("expathttp: unsupported NextProtos entry %q (want h2 or http/1.1)", p)
			}
			protos = append(protos, p)
		}
		if len(protos) == 0 {
			return nil, errors.New("expathttp: empty NextProtos")
		}
	}
	ccfg := expat.ClientTLSConfig(tlsCfg)
	ccfg.NextProtos = append(protos, ALPN)
	t := &Transport{tlsCfg: ccfg, cfg: cfg, idle: 90 * time.Second, hosts: map[string]*hostConns{}}
	t.inner = &http.Transport{DialTLSContext: t.dialTLS, ForceAttemptHTTP2: slices.Contains(protos, "h2")}
	return t, nil
}

type dialSlotKey struct{}

type dialSlot struct{ tc *tls.Conn }

// dialTLS is the inner Transport's dialer: TCP, then the TLS handshake,
// remembering the *tls.Conn for the connection's Endpoint.
func (t *Transport) dialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	slot, _ := ctx.Value(dialSlotKey{}).(*dialSlot)
	if slot == nil {
		return nil, errors.New("expathttp: internal error: dial outside NewClientConn")
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	cfg := t.tlsCfg
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			raw.Close()
			return nil, err
		}
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	slot.tc = tc
	return tc, nil
}

type freshKey struct{}

// WithFreshAttestation returns a context that makes Transport re-attest the
// server, on the connection it picked for the request, before the request
// leaves: for an operation that needs assurance newer than the
// connection's setup.
func WithFreshAttestation(ctx context.Context) context.Context {
	return context.WithValue(ctx, freshKey{}, true)
}

// respState is what a response's request context tells PeerAttestation.
type respState struct {
	c   *clientConn
	att *expat.Attestation
}

// RoundTrip sends req on an attested connection to req.URL's host.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.roundTrip(req)
	if err != nil && req.Body != nil {
		req.Body.Close()
	}
	return resp, err
}

func (t *Transport) roundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil || req.URL.Scheme != "https" {
		return nil, errors.New("expathttp: Transport serves https URLs only")
	}
	if req.Header.Get(HeaderAuthenticator) != "" || req.Header.Get(HeaderRequest) != "" {
		return nil, errors.New("expathttp: request already carries attestation headers")
	}
	addr := req.URL.Host
	if req.URL.Port() == "" {
		addr = net.JoinHostPort(req.URL.Hostname(), "443")
	}
	ctx := req.Context()
	for attempt := 0; ; attempt++ {
		c, reused, err := t.getConn(ctx, addr)
		if err != nil {
			return nil, err
		}
		if ctx.Value(freshKey{}) != nil {
			if _, err := c.attest(ctx); err != nil {
				c.cc.Release()
				return nil, err
			}
		}
		r := req.WithContext(context.WithValue(ctx, requestKey{}, &respState{c: c, att: c.peer()}))
		resp, err := c.cc.RoundTrip(r)
		if err != nil {
			if reused && attempt == 0 && c.cc.Err() != nil && replayable(req) {
				// A pooled connection the server had closed: once more on a
				// new one, as net/http's Transport does.
				if req.GetBody != nil {
					if req.Body, err = req.GetBody(); err != nil {
						return nil, err
					}
				}
				continue
			}
			return nil, err
		}
		if resp.StatusCode == http.StatusUnauthorized && resp.Header.Get(HeaderRequest) != "" {
			return c.answerChallenge(req, resp)
		}
		return resp, nil
	}
}

func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// answerChallenge answers a 401 challenge on the same connection and
// repeats the request once. Without an Attester, or when the body cannot
// be replayed, the 401 response is returned as is.
func (c *clientConn) answerChallenge(req *http.Request, resp *http.Response) (*http.Response, error) {
	if c.t.cfg.Attester == nil || !replayable(req) {
		return resp, nil
	}
	sreq, err := parseRequestHeader(resp.Header)
	if err != nil {
		resp.Body.Close()
		c.cc.Close()
		return nil, err
	}
	reqCtx, err := ea.GetContext(sreq)
	if err != nil {
		resp.Body.Close()
		c.cc.Close()
		return nil, protocolError(HeaderRequest, err)
	}
	drain(resp.Body)
	ctx := req.Context()
	auth, err := c.answer(ctx, sreq)
	if err != nil {
		c.cc.Close()
		return nil, err
	}
	r := req.Clone(context.WithValue(ctx, requestKey{}, &respState{c: c, att: c.peer()}))
	if req.GetBody != nil {
		if r.Body, err = req.GetBody(); err != nil {
			return nil, err
		}
	}
	r.Header.Set(HeaderAuthenticator, formatAuthenticator(reqCtx, auth))
	return c.cc.RoundTrip(r)
}

func drain(body io.ReadCloser) {
	io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	body.Close()
}

// getConn returns a connection to addr with a reserved request slot,
// dialing (one dial per host at a time) when none is available.
func (t *Transport) getConn(ctx context.Context, addr string) (c *clientConn, reused bool, err error) {
	for {
		t.mu.Lock()
		hc := t.hosts[addr]
		if hc == nil {
			hc = &hostConns{}
			t.hosts[addr] = hc
		}
		live := hc.conns[:0]
		var got *clientConn
		for _, cc := range hc.conns {
			if cc.cc.Err() != nil || cc.isFailed() {
				go cc.cc.Close()
				continue
			}
			live = append(live, cc)
			if got == nil && cc.cc.Reserve() == nil {
				got = cc
			}
		}
		clear(hc.conns[len(live):])
		hc.conns = live
		if got != nil {
			reused = got.served
			got.served = true
			t.mu.Unlock()
			return got, reused, nil
		}
		d := hc.dial
		if d == nil {
			d = &dialResult{done: make(chan struct{})}
			hc.dial = d
			go t.dial(addr, hc, d)
		}
		t.mu.Unlock()
		select {
		case <-d.done:
			if d.err != nil {
				return nil, false, d.err
			}
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// dial makes a new attested connection to addr, within the setup timeout
// whatever the waiting requests' contexts (a request that gives up does
// not abort a dial others may share).
func (t *Transport) dial(addr string, hc *hostConns, d *dialResult) {
	c, err := t.newConn(addr)
	t.mu.Lock()
	if err == nil {
		hc.conns = append(hc.conns, c)
	}
	hc.dial = nil
	d.err = err
	t.mu.Unlock()
	close(d.done)
	if err == nil {
		c.cc.SetStateHook(c.stateChanged)
	}
}

func (t *Transport) newConn(addr string) (*clientConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), carrier.SetupTimeout(t.cfg))
	defer cancel()
	slot := &dialSlot{}
	cc, err := t.inner.NewClientConn(context.WithValue(ctx, dialSlotKey{}, slot), "https", addr)
	if err != nil {
		return nil, err
	}
	if slot.tc == nil {
		cc.Close()
		return nil, errors.New("expathttp: internal error: no TLS connection")
	}
	cs := slot.tc.ConnectionState()
	ep, err := expat.NewEndpoint(&cs, false, t.cfg)
	if err != nil {
		cc.Close()
		return nil, err
	}
	c := &clientConn{t: t, addr: addr, cc: cc, ep: ep, pacer: carrier.NewPacer(t.cfg)}
	if err := c.setup(ctx); err != nil {
		cc.Close()
		return nil, err
	}
	return c, nil
}

// CloseIdleConnections closes the connections that carry no request.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	var idle []*clientConn
	for _, hc := range t.hosts {
		live := hc.conns[:0]
		for _, c := range hc.conns {
			if c.cc.InFlight() == 0 {
				idle = append(idle, c)
			} else {
				live = append(live, c)
			}
		}
		clear(hc.conns[len(live):])
		hc.conns = live
	}
	t.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
}

// Attest re-attests the server on the connection that carried resp and
// returns the new attestation. On failure the connection is closed (unless
// expat.Config.KeepOnFailure is set: then it stays open but is no longer
// used). On HTTP/1.1, close resp.Body first: the connection carries one
// request at a time.
func (t *Transport) Attest(ctx context.Context, resp *http.Response) (*expat.Attestation, error) {
	if resp == nil || resp.Request == nil {
		return nil, errors.New("expathttp: Attest needs a response from Transport")
	}
	st, _ := resp.Request.Context().Value(requestKey{}).(*respState)
	if st == nil || st.c.t != t {
		return nil, errors.New("expathttp: Attest needs a response from this Transport")
	}
	return st.c.attest(ctx)
}

// clientConn is one attested client connection.
type clientConn struct {
	t    *Transport
	addr string
	cc   *http.ClientConn
	ep   *expat.Endpoint

	served bool // guarded by t.mu

	mu          sync.Mutex
	peerAccepts []string // formats the server accepts (HeaderFormats)
	att         *expat.Attestation
	attested    bool
	failed      bool
	seq         uint64
	idleTimer   *time.Timer
	pacer       *carrier.Pacer
}

func (c *clientConn) peer() *expat.Attestation {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.attested {
		return nil
	}
	return c.att
}

func (c *clientConn) isFailed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failed
}

func (c *clientConn) close() {
	c.mu.Lock()
	c.failed = true
	if c.idleTimer != nil {
		c.idleTimer.Stop()
	}
	c.mu.Unlock()
	c.cc.Close()
	// net/http (Go 1.26) keeps a closed HTTP/2 ClientConn reachable for up
	// to 5 s after its last use (its readLoop's "unused connection" timer,
	// which a connection from Transport.NewClientConn always arms). The
	// state hook would keep this clientConn — the Endpoint, the peer's
	// verified attestation — reachable with it: detach it so that they
	// are released at close.
	c.cc.SetStateHook(nil)
}

// stateChanged is the ClientConn's state hook: closed connections leave
// the pool, idle ones are closed after the idle timeout.
func (c *clientConn) stateChanged(cc *http.ClientConn) {
	if cc.Err() != nil {
		c.close()
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failed {
		return
	}
	if cc.InFlight() > 0 {
		if c.idleTimer != nil {
			c.idleTimer.Stop()
		}
		return
	}
	if c.idleTimer == nil {
		c.idleTimer = time.AfterFunc(c.t.idle, func() {
			if c.cc.InFlight() == 0 {
				c.close()
			}
		})
		return
	}
	c.idleTimer.Reset(c.t.idle)
}

// setup runs the setup exchange: our request (when we require the server's
// attestation) and our answer to the server's (when it requires ours).
func (c *clientConn) setup(ctx context.Context) error {
	var req, reqCtx []byte
	if c.t.cfg.RequirePeerAttestation {
		var err error
		if req, reqCtx, err = c.request(); err != nil {
			return err
		}
	}
	h, err := c.exchange(ctx, req, "")
	if err != nil {
		return err
	}
	if req != nil {
		if _, err := c.verify(ctx, h, reqCtx); err != nil {
			return err
		}
	}
	sreq, err := parseRequestHeader(h)
	if err != nil || sreq == nil {
		return err
	}
	sctx, err := ea.GetContext(sreq)
	if err != nil {
		return protocolError(HeaderRequest, err)
	}
	auth, err := c.answer(ctx, sreq)
	if err != nil {
		return err
	}
	h, err = c.exchange(ctx, nil, formatAuthenticator(sctx, auth))
	if err != nil {
		return err
	}
	if h.Get(HeaderRequest) != "" {
		return protocolError(HeaderRequest, errors.New("server asked again after the setup exchange"))
	}
	return nil
}

func (c *clientConn) request() (raw, reqCtx []byte, err error) {
	raw, err = c.ep.Request()
	if err != nil {
		return nil, nil, err
	}
	reqCtx, err = ea.GetContext(raw)
	return raw, reqCtx, err
}

// attest re-attests the server on this connection.
func (c *clientConn) attest(ctx context.Context) (*expat.Attestation, error) {
	if c.t.cfg.Verifier == nil {
		return nil, errors.New("expathttp: re-attestation needs expat.Config.Verifier")
	}
	req, reqCtx, err := c.request()
	if err != nil {
		return nil, err
	}
	h, err := c.exchange(ctx, req, "")
	if err == nil {
		var att *expat.Attestation
		if att, err = c.verify(ctx, h, reqCtx); err == nil {
			return att, nil
		}
	}
	c.attestFailed()
	return nil, err
}

func (c *clientConn) attestFailed() {
	c.mu.Lock()
	c.attested = false
	keep := c.t.cfg.KeepOnFailure
	if !keep {
		c.failed = true
	}
	c.mu.Unlock()
	if !keep {
		c.cc.Close()
	}
}

// verify checks the server's answer to our request reqCtx.
func (c *clientConn) verify(ctx context.Context, h http.Header, reqCtx []byte) (*expat.Attestation, error) {
	gotCtx, auth, ok, err := parseAuthenticatorHeader(h, carrier.MaxAuthenticatorSize(c.t.cfg))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &expat.Error{Op: "verify", Alert: alertIllegalParameter, Err: fmt.Errorf("%w: the server did not answer our attestation request", expat.ErrMissingAttestation)}
	}
	if string(gotCtx) != string(reqCtx) {
		return nil, &expat.Error{Op: "verify", Alert: alertIllegalParameter, Err: fmt.Errorf("%w: the server answered another request", ea.ErrUnknownContext)}
	}
	att, err := c.ep.VerifyFor(ctx, reqCtx, auth)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.seq++
	att.Seq = c.seq
	c.att, c.attested = att, true
	c.mu.Unlock()
	return att, nil
}

// answer builds our authenticator for the server's request, paced as
// expat.Conn paces (carrier.Pacer), refusing when the Attester fails.
func (c *clientConn) answer(ctx context.Context, req []byte) ([]byte, error) {
	if err := c.pacer.Begin(ctx); err != nil {
		return nil, &expat.Error{Op: "answer", Alert: alertAccessDenied, Err: err}
	}
	defer c.pacer.End()
	c.mu.Lock()
	ctx = expat.WithPeerAcceptedFormats(ctx, c.peerAccepts)
	attested := c.attested
	c.mu.Unlock()
	// Config.Release: the server's request is answered only after the
	// server's own attestation on this connection succeeded when the
	// policy says so (it has by the time the server asks, at setup and on
	// a challenge; otherwise the empty authenticator).
	waitForPeer, err := c.ep.ReleaseGate()
	if err == nil && waitForPeer && !attested {
		err = errors.New("expathttp: Evidence not released: the server is not attested on this connection (Config.Release)")
	}
	if err != nil {
		logger(c.t.cfg).Warn("expathttp: Evidence not released to the server", "err", err)
		return c.ep.Refuse(req)
	}
	auth, err := c.ep.Respond(ctx, req)
	if err != nil {
		var e *expat.Error
		if errors.As(err, &e) && e.Op == "parse request" {
			return nil, err
		}
		logger(c.t.cfg).Warn("expathttp: cannot attest for server", "err", err)
		return c.ep.Refuse(req)
	}
	return auth, nil
}

// exchange POSTs to ExchangePath on this connection and returns the
// response headers of a 200 answer.
func (c *clientConn) exchange(ctx context.Context, req []byte, auth string) (http.Header, error) {
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+c.addr+ExchangePath, nil)
	if err != nil {
		return nil, err
	}
	r.Header.Set(HeaderVersion, version)
	if f := formatsHeader(c.t.cfg); f != "" {
		r.Header.Set(HeaderFormats, f)
	}
	if req != nil {
		r.Header.Set(HeaderRequest, base64URL(req))
	}
	if auth != "" {
		r.Header.Set(HeaderAuthenticator, auth)
	}
	resp, err := c.cc.RoundTrip(r)
	if err != nil {
		if ctx.Err() != nil {
			return nil, &expat.Error{Op: "exchange", Alert: alertInternalError, Err: ctx.Err()}
		}
		return nil, err
	}
	drain(resp.Body)
	switch {
	case resp.StatusCode == http.StatusOK && resp.Header.Get(HeaderVersion) == version:
		if err := c.checkFormats(resp.Header); err != nil {
			return nil, err
		}
		return resp.Header, nil
	case resp.StatusCode == http.StatusForbidden:
		if alert, ok := parseAlert(resp.Header); ok {
			if alert == alertHandshakeFailure {
				// No format in common: name both lists if the server
				// stated its own.
				if err := c.checkFormats(resp.Header); err != nil {
					return nil, err
				}
			}
			// The server refused us and closed the connection: the same
			// error expat.Conn reports for a CLOSE frame.
			return nil, &expat.Error{Op: "peer closed", Alert: alert, Remote: true, Err: alert}
		}
	}
	return nil, fmt.Errorf("%w: attestation exchange answered %q", ErrUnsupported, resp.Status)
}

func logger(cfg *expat.Config) *slog.Logger {
	if cfg.Logger != nil {
		return cfg.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// checkFormats checks the formats the server stated against ours: what it
// produces against what we accept (when we require its attestation), what
// it accepts against what we produce (when we attest).
func (c *clientConn) checkFormats(h http.Header) error {
	peerAcc, peerProd, err := parseFormatsHeader(h)
	if err != nil {
		return err
	}
	acc, prod := c.t.cfg.Formats()
	if c.t.cfg.RequirePeerAttestation {
		if err := expat.CheckFormats(peerProd, acc, false); err != nil {
			return err
		}
	}
	if c.t.cfg.Attester != nil {
		if err := expat.CheckFormats(prod, peerAcc, true); err != nil {
			return err
		}
	}
	c.mu.Lock()
	c.peerAccepts = peerAcc
	c.mu.Unlock()
	return nil
}
