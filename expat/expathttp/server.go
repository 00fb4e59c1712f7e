package expathttp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/attested-tls/go-expat/ea"
	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/expat/internal/carrier"
)

// NewServer returns an *http.Server that serves h over attested TLS on addr
// (see ConfigureServer). Start it with ListenAndServeTLS("", "") or
// ServeTLS(ln, "", ""); set its timeouts as for any http.Server.
func NewServer(addr string, h http.Handler, tlsCfg *tls.Config, cfg *expat.Config) (*http.Server, error) {
	srv := &http.Server{Addr: addr, Handler: h, TLSConfig: tlsCfg}
	if err := ConfigureServer(srv, cfg); err != nil {
		return nil, err
	}
	return srv, nil
}

// ConfigureServer prepares srv to serve its Handler over attested TLS:
//
//   - srv.TLSConfig (which must hold the server's certificate) becomes TLS
//     1.3 only, without session tickets (expat.ServerTLSConfig), and
//     refuses every ClientHello that does not offer ALPN: an ordinary TLS
//     client fails the handshake with no_application_protocol. HTTP/2 and
//     HTTP/1.1 are served by net/http as usual; r.TLS is set.
//   - Every connection answers the client's attestation requests with
//     cfg.Attester's Evidence (server attestation), and, when
//     cfg.RequirePeerAttestation is set, asks the client to attest in the
//     setup exchange and refuses every request until that attestation has
//     been verified (client attestation for the whole server), within
//     cfg.SetupTimeout of the connection's arrival or the connection is
//     closed. RequirePeerAttestation and RequireFreshAttestation demand
//     client attestation per route.
//   - srv.Handler (nil: http.DefaultServeMux) is wrapped; ConnContext and
//     ConnState are chained with srv's own.
//
// Call it once, before serving. srv must be served only with its TLS
// methods (ServeTLS, ListenAndServeTLS) or over tls.NewListener with
// srv.TLSConfig; requests that do not arrive over an attested connection
// are refused.
func ConfigureServer(srv *http.Server, cfg *expat.Config) error {
	if err := carrier.CheckConfig("expathttp", cfg, true); err != nil {
		return err
	}
	if cfg.Release == expat.ReleaseToAttested {
		// The server's authenticator answers the client's first request,
		// before the client has attested (HTTP gives the server no way to
		// speak first): it could never be released.
		return errors.New("expathttp: Config.Release ReleaseToAttested is not supported by the server (it answers before the client attests); use ReleaseToAuthenticated with client certificates")
	}
	if srv.TLSConfig == nil {
		return errors.New("expathttp: http.Server.TLSConfig is nil: it must hold the server's certificate")
	}
	if srv.TLSConfig.GetConfigForClient != nil {
		return errors.New("expathttp: http.Server.TLSConfig.GetConfigForClient is not supported")
	}
	inner := expat.ServerTLSConfig(srv.TLSConfig)
	inner.NextProtos = []string{"h2", "http/1.1"}
	outer := inner.Clone()
	outer.GetConfigForClient = func(chi *tls.ClientHelloInfo) (*tls.Config, error) {
		if slices.Contains(chi.SupportedProtos, ALPN) {
			return inner, nil
		}
		if len(chi.SupportedProtos) == 0 {
			return nil, errors.New("expathttp: client offered no ALPN protocol: not an attested client")
		}
		// No overlap: crypto/tls sends no_application_protocol.
		refuse := inner.Clone()
		refuse.NextProtos = []string{ALPN}
		return refuse, nil
	}
	srv.TLSConfig = outer

	next := srv.Handler
	if next == nil {
		next = http.DefaultServeMux
	}
	srv.Handler = &handler{next: next, cfg: cfg}

	srvState := &server{timers: map[net.Conn]*time.Timer{}}
	prevCtx := srv.ConnContext
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if prevCtx != nil {
			ctx = prevCtx(ctx, c)
		}
		return context.WithValue(ctx, serverConnKey{}, srvState.newConn(c, cfg))
	}
	prevState := srv.ConnState
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		if st == http.StateClosed || st == http.StateHijacked {
			srvState.stopTimer(c)
		}
		if prevState != nil {
			prevState(c, st)
		}
	}
	return nil
}

// server holds each connection's setup deadline so that ConnState can stop
// it when the connection ends.
type server struct {
	mu     sync.Mutex
	timers map[net.Conn]*time.Timer
}

func (s *server) stopTimer(c net.Conn) {
	s.mu.Lock()
	t := s.timers[c]
	delete(s.timers, c)
	s.mu.Unlock()
	if t != nil {
		t.Stop()
	}
}

func (s *server) newConn(c net.Conn, cfg *expat.Config) *serverConn {
	sc := &serverConn{nc: c, cfg: cfg, srv: s, ready: !cfg.RequirePeerAttestation, issued: map[string]time.Time{}, pacer: carrier.NewPacer(cfg)}
	if cfg.RequirePeerAttestation {
		// A client that never completes the setup exchange is closed
		// (THREATS T33): one silent peer never holds a connection.
		t := time.AfterFunc(carrier.SetupTimeout(cfg), func() {
			if !sc.isReady() {
				c.Close()
			}
		})
		s.mu.Lock()
		s.timers[c] = t
		s.mu.Unlock()
	}
	return sc
}

type serverConnKey struct{}
type requestKey struct{}

// serverConn is the attestation state of one server connection.
type serverConn struct {
	nc  net.Conn
	cfg *expat.Config
	srv *server

	epOnce sync.Once
	ep     *expat.Endpoint
	epErr  error

	mu       sync.Mutex
	ready    bool // the setup requirement is met
	failed   bool
	setupReq []byte // our setup request, as sent
	setupCtx []byte
	issued   map[string]time.Time // our outstanding requests
	latest   *expat.Attestation
	attested bool
	seq      uint64
	pacer    *carrier.Pacer
}

func (sc *serverConn) endpoint(cs *tls.ConnectionState) (*expat.Endpoint, error) {
	sc.epOnce.Do(func() {
		if cs == nil {
			sc.epErr = fmt.Errorf("%w: not a TLS connection", ErrUnsupported)
			return
		}
		sc.ep, sc.epErr = expat.NewEndpoint(cs, true, sc.cfg)
	})
	return sc.ep, sc.epErr
}

// request returns a new attestation request of ours on this connection.
func (sc *serverConn) request() (raw, reqCtx []byte, err error) {
	raw, err = sc.ep.Request()
	if err != nil {
		return nil, nil, err
	}
	reqCtx, err = ea.GetContext(raw)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	sc.mu.Lock()
	for k, t := range sc.issued {
		if now.Sub(t) > carrier.SetupTimeout(sc.cfg) {
			delete(sc.issued, k)
		}
	}
	sc.issued[string(reqCtx)] = now
	sc.mu.Unlock()
	return raw, reqCtx, nil
}

// verify checks the client's answer to one of our requests on this
// connection and records the attestation.
func (sc *serverConn) verify(ctx context.Context, reqCtx, auth []byte) (*expat.Attestation, error) {
	sc.mu.Lock()
	t, ok := sc.issued[string(reqCtx)]
	delete(sc.issued, string(reqCtx))
	sc.mu.Unlock()
	if !ok {
		return nil, &expat.Error{Op: "verify", Alert: alertIllegalParameter, Err: fmt.Errorf("%w: authenticator for no outstanding request of this connection", ea.ErrUnknownContext)}
	}
	if time.Since(t) > carrier.SetupTimeout(sc.cfg) {
		return nil, &expat.Error{Op: "verify", Alert: alertAccessDenied, Err: errors.New("authenticator answers an expired request")}
	}
	ctx, cancel := context.WithTimeout(ctx, carrier.SetupTimeout(sc.cfg))
	defer cancel()
	att, err := sc.ep.VerifyFor(ctx, reqCtx, auth)
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if err != nil {
		sc.attested = false
		return nil, err
	}
	sc.seq++
	att.Seq = sc.seq
	sc.latest, sc.attested = att, true
	if string(reqCtx) == string(sc.setupCtx) && sc.setupCtx != nil {
		sc.ready = true
		defer sc.srv.stopTimer(sc.nc)
	}
	return att, nil
}

// answer builds our authenticator for the client's request, paced as
// expat.Conn paces (carrier.Pacer), refusing (the empty authenticator)
// when the Attester fails.
func (sc *serverConn) answer(ctx context.Context, req []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, carrier.SetupTimeout(sc.cfg))
	defer cancel()
	if err := sc.pacer.Begin(ctx); err != nil {
		return nil, &expat.Error{Op: "answer", Alert: alertAccessDenied, Err: err}
	}
	defer sc.pacer.End()
	// Config.Release (ReleaseToAttested is refused by ConfigureServer).
	if _, err := sc.ep.ReleaseGate(); err != nil {
		logger(sc.cfg).Warn("expathttp: Evidence not released to the client", "err", err)
		return sc.ep.Refuse(req)
	}
	auth, err := sc.ep.Respond(ctx, req)
	if err != nil {
		var e *expat.Error
		if errors.As(err, &e) && e.Op == "parse request" {
			return nil, err
		}
		logger(sc.cfg).Warn("expathttp: cannot attest for client", "err", err)
		return sc.ep.Refuse(req)
	}
	return auth, nil
}

func (sc *serverConn) isReady() bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.ready && !sc.failed
}

func (sc *serverConn) peer() *expat.Attestation {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if !sc.attested || sc.failed {
		return nil
	}
	return sc.latest
}

// fail writes a refusal and closes the connection (fail closed: a
// connection whose attestation failed carries nothing more), unless
// KeepOnFailure keeps it open, unattested. HTTP/1.1 closes after the
// response (Connection: close); an HTTP/2 connection, which may carry other
// streams, refuses everything from now on and is closed after a grace
// period that lets the refusal reach the client.
func (sc *serverConn) fail(w http.ResponseWriter, r *http.Request, err error) {
	if sc.cfg.KeepOnFailure {
		refuse(w, err)
		return
	}
	sc.mu.Lock()
	sc.failed = true
	sc.mu.Unlock()
	if r.ProtoMajor == 1 {
		w.Header().Set("Connection", "close")
		refuse(w, err)
		return
	}
	refuse(w, err)
	http.NewResponseController(w).Flush()
	time.AfterFunc(failGrace, func() { sc.nc.Close() })
}

// failGrace is how long a failed HTTP/2 connection stays open for its
// refusal to be written.
const failGrace = 100 * time.Millisecond

// refuse writes a 403 with the alert the failure implies.
func refuse(w http.ResponseWriter, err error) {
	h := w.Header()
	h.Set(HeaderAlert, fmt.Sprint(uint8(alertOf(err))))
	h.Set("Cache-Control", "no-store")
	http.Error(w, err.Error(), http.StatusForbidden)
}

// reqState is what the wrapper learnt about one request.
type reqState struct {
	sc    *serverConn
	fresh *expat.Attestation // verified from this very request's header
}

// handler is the wrapper ConfigureServer installs.
type handler struct {
	next http.Handler
	cfg  *expat.Config
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sc, _ := r.Context().Value(serverConnKey{}).(*serverConn)
	if sc == nil || r.TLS == nil {
		refuse(w, fmt.Errorf("%w: request did not arrive over an attested TLS connection", ErrUnsupported))
		return
	}
	if _, err := sc.endpoint(r.TLS); err != nil {
		sc.fail(w, r, err)
		return
	}
	sc.mu.Lock()
	failed := sc.failed
	sc.mu.Unlock()
	if failed {
		refuse(w, expat.ErrNotAttested)
		return
	}
	st := &reqState{sc: sc}
	reqCtx, auth, ok, err := parseAuthenticatorHeader(r.Header, carrier.MaxAuthenticatorSize(h.cfg))
	if err != nil {
		sc.fail(w, r, err)
		return
	}
	if ok {
		att, err := sc.verify(r.Context(), reqCtx, auth)
		if err != nil {
			sc.fail(w, r, err)
			return
		}
		st.fresh = att
	}
	if r.URL.Path == ExchangePath {
		h.exchange(w, r, sc)
		return
	}
	if !sc.isReady() {
		// Application data before the required attestation (T11): refused,
		// and the connection closed.
		sc.fail(w, r, &expat.Error{Op: "serve", Alert: alertAccessDenied, Err: fmt.Errorf("%w: request before the setup exchange completed", expat.ErrNotAttested)})
		return
	}
	if st.fresh != nil {
		r = r.WithContext(context.WithValue(r.Context(), requestKey{}, st))
	}
	h.next.ServeHTTP(w, r)
}

// exchange serves ExchangePath: it answers the client's request, and asks
// the client to attest while the setup requirement is not met.
func (h *handler) exchange(w http.ResponseWriter, r *http.Request, sc *serverConn) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "expathttp: the attestation exchange takes POST", http.StatusMethodNotAllowed)
		return
	}
	if v, _ := single(r.Header, HeaderVersion); v != version {
		sc.fail(w, r, protocolError(HeaderVersion, fmt.Errorf("want %q", version)))
		return
	}
	req, err := parseRequestHeader(r.Header)
	if err != nil {
		sc.fail(w, r, err)
		return
	}
	peerAcc, peerProd, err := parseFormatsHeader(r.Header)
	if err != nil {
		sc.fail(w, r, err)
		return
	}
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-store")
	hdr.Set(HeaderVersion, version)
	if f := formatsHeader(sc.cfg); f != "" {
		hdr.Set(HeaderFormats, f) // also on a refusal: the client can name both lists
	}
	acc, prod := sc.cfg.Formats()
	if req != nil && sc.cfg.Attester != nil {
		if err := expat.CheckFormats(prod, peerAcc, true); err != nil {
			sc.fail(w, r, err)
			return
		}
	}
	if sc.cfg.RequirePeerAttestation {
		if err := expat.CheckFormats(peerProd, acc, false); err != nil {
			sc.fail(w, r, err)
			return
		}
	}
	if req != nil {
		auth, err := sc.answer(expat.WithPeerAcceptedFormats(r.Context(), peerAcc), req)
		if err != nil {
			sc.fail(w, r, err)
			return
		}
		reqCtx, err := ea.GetContext(req)
		if err != nil {
			sc.fail(w, r, protocolError(HeaderRequest, err))
			return
		}
		hdr.Set(HeaderAuthenticator, formatAuthenticator(reqCtx, auth))
	}
	sc.mu.Lock()
	need := !sc.ready && sc.setupReq == nil
	pending := !sc.ready
	setupReq := sc.setupReq
	sc.mu.Unlock()
	if need {
		raw, reqCtx, err := sc.request()
		if err != nil {
			sc.fail(w, r, err)
			return
		}
		sc.mu.Lock()
		sc.setupReq, sc.setupCtx = raw, reqCtx
		sc.mu.Unlock()
		setupReq = raw
	}
	if pending {
		hdr.Set(HeaderRequest, base64URL(setupReq))
	}
	w.WriteHeader(http.StatusOK)
}
