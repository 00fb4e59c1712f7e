package expat

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/attested-tls/go-expat/internal/warm"
)

// Listener is a net.Listener whose Accept returns attested connections
// (*Conn) whose TLS handshake and attestation setup have completed.
//
// Each accepted TCP connection is set up in its own goroutine under a
// deadline (Config.SetupTimeout, for the TLS handshake and the setup
// together), so a slow or silent peer never delays the others; a
// connection whose setup fails is closed and never returned (see
// ListenerConfig.OnSetupError). At most ListenerConfig.MaxPendingSetups
// setups run at once; beyond that the listener stops accepting until one
// ends.
type Listener struct {
	inner  net.Listener
	tlsCfg *tls.Config
	cfg    *Config
	lcfg   ListenerConfig

	ready chan *Conn
	errc  chan error // the inner listener's final error
	ctx   context.Context
	stop  context.CancelFunc
	sem   chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
}

// ListenerConfig tunes a Listener. The zero value is a sound default.
type ListenerConfig struct {
	// MaxPendingSetups bounds the connections being set up at once. Zero
	// means DefaultMaxPendingSetups.
	MaxPendingSetups int
	// OnSetupError, if set, is called (from the connection's goroutine)
	// with each connection whose TLS handshake or setup failed, and why.
	// The connection is already closed.
	OnSetupError func(remote net.Addr, err error)
}

// DefaultMaxPendingSetups is the default ListenerConfig.MaxPendingSetups.
const DefaultMaxPendingSetups = 4096

var _ net.Listener = (*Listener)(nil)

// Listen announces on the local network address and returns a Listener of
// attested connections. tlsCfg is prepared with ServerTLSConfig (TLS 1.3
// only, no session tickets) and must hold the server's certificate.
func Listen(network, address string, tlsCfg *tls.Config, cfg *Config) (*Listener, error) {
	if err := checkListen(tlsCfg, cfg); err != nil {
		return nil, err
	}
	inner, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	return NewListener(inner, tlsCfg, cfg, nil)
}

func checkListen(tlsCfg *tls.Config, cfg *Config) error {
	if tlsCfg == nil {
		return errors.New("expat: Listen needs a tls.Config with the server's certificate")
	}
	if cfg == nil {
		cfg = &Config{}
	}
	return cfg.checkConn()
}

// NewListener returns a Listener of attested connections accepted from
// inner (see Listen). lcfg may be nil. Closing the Listener closes inner.
func NewListener(inner net.Listener, tlsCfg *tls.Config, cfg *Config, lcfg *ListenerConfig) (*Listener, error) {
	if err := checkListen(tlsCfg, cfg); err != nil {
		return nil, err
	}
	if cfg == nil {
		cfg = &Config{}
	}
	l := &Listener{inner: inner, tlsCfg: ServerTLSConfig(tlsCfg), cfg: cfg,
		ready: make(chan *Conn), errc: make(chan error, 1)}
	if lcfg != nil {
		l.lcfg = *lcfg
	}
	n := l.lcfg.MaxPendingSetups
	if n <= 0 {
		n = DefaultMaxPendingSetups
	}
	l.sem = make(chan struct{}, n)
	l.ctx, l.stop = context.WithCancel(context.Background())
	l.wg.Add(1)
	go l.acceptLoop()
	return l, nil
}

func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	var delay time.Duration
	for {
		select {
		case l.sem <- struct{}{}:
		case <-l.ctx.Done():
			l.errc <- net.ErrClosed
			return
		}
		raw, err := l.inner.Accept()
		if err != nil {
			<-l.sem
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Temporary resource exhaustion: back off, as
				// net/http does.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				select {
				case <-time.After(delay):
					continue
				case <-l.ctx.Done():
				}
			}
			l.errc <- err
			l.stop()
			return
		}
		delay = 0
		l.wg.Add(1)
		// A TLS handshake needs a deep stack: a warm goroutine.
		warm.Go(func() { l.setup(raw) })
	}
}

// setup runs one connection's TLS handshake and attestation setup under
// the setup deadline, then hands it to Accept.
func (l *Listener) setup(raw net.Conn) {
	defer l.wg.Done()
	defer func() { <-l.sem }()
	c, err := serverSetup(l.ctx, raw, l.tlsCfg, l.cfg)
	if err != nil {
		if l.lcfg.OnSetupError != nil {
			l.lcfg.OnSetupError(raw.RemoteAddr(), err)
		}
		return
	}
	// The setup slot is free once set up; waiting for Accept is not setup.
	select {
	case l.ready <- c:
	case <-l.ctx.Done():
		c.Close()
	}
}

// serverSetup is the server side of Listen's per-connection work: TLS
// handshake and setup, both within the setup deadline. raw is closed on
// failure.
func serverSetup(ctx context.Context, raw net.Conn, tlsCfg *tls.Config, cfg *Config) (*Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.setupTimeout())
	defer cancel()
	return setupConn(ctx, tls.Server(raw, tlsCfg), true, cfg)
}

// setupConn runs the TLS handshake of tc and the attestation setup, within
// ctx; tc is closed on failure.
func setupConn(ctx context.Context, tc *tls.Conn, isServer bool, cfg *Config) (*Conn, error) {
	if err := tc.HandshakeContext(ctx); err != nil {
		tc.NetConn().Close()
		return nil, err
	}
	c, err := newConn(tc, isServer, cfg)
	if err != nil {
		tc.Close()
		return nil, err
	}
	if err := c.Handshake(ctx); err != nil {
		// The error is returned at once, within the caller's bound; the
		// connection nobody will see is closed in the background (Close
		// is bounded: it sends its alert under a deadline).
		go c.Close()
		return nil, err
	}
	return c, nil
}

// Accept returns the next connection whose setup has completed, as a
// *Conn.
func (l *Listener) Accept() (net.Conn, error) { return l.AcceptConn() }

// AcceptConn is Accept returning the *Conn.
func (l *Listener) AcceptConn() (*Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.ctx.Done():
		// A connection that completed setup as the listener closed is
		// closed by its goroutine.
		select {
		case err := <-l.errc:
			l.errc <- err
			return nil, err
		default:
			return nil, net.ErrClosed
		}
	}
}

// Close stops accepting, closes the inner listener and every connection
// still in setup, and waits for their goroutines. Connections already
// returned by Accept are not affected.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() {
		l.stop()
		err = l.inner.Close()
		l.wg.Wait()
	})
	return err
}

// Addr returns the inner listener's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }
