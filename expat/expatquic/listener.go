package expatquic

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"

	"github.com/quic-go/quic-go"

	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/expat/internal/carrier"
)

// Listener accepts attested QUIC connections. Each QUIC connection is set
// up in its own goroutine within expat.Config.SetupTimeout, so a slow or
// silent peer never delays the others; connections whose setup fails are
// closed and never returned.
type Listener struct {
	ql    *quic.Listener
	cfg   *expat.Config
	ready chan *Conn
	ctx   context.Context
	stop  context.CancelFunc
	sem   chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
}

// maxPendingSetups bounds the connections set up at once.
const maxPendingSetups = 1024

// Listen listens for QUIC on the UDP address addr. tlsCfg (the server's
// certificate, NextProtos: the application protocols) is prepared with
// expat.ServerTLSConfig; qcfg may be nil (0-RTT and datagrams are always
// off); cfg is every connection's attestation policy.
func Listen(addr string, tlsCfg *tls.Config, qcfg *quic.Config, cfg *expat.Config) (*Listener, error) {
	if err := carrier.CheckConfig("expatquic", cfg, true); err != nil {
		return nil, err
	}
	if tlsCfg == nil || (len(tlsCfg.Certificates) == 0 && tlsCfg.GetCertificate == nil) {
		return nil, errors.New("expatquic: server TLS config has no certificate")
	}
	tc := expat.ServerTLSConfig(tlsCfg)
	var err error
	if tc.NextProtos, err = wireProtos(tc.NextProtos); err != nil {
		return nil, err
	}
	ql, err := quic.ListenAddr(addr, tc, quicConfig(qcfg))
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	l := &Listener{ql: ql, cfg: cfg, ready: make(chan *Conn), ctx: ctx, stop: stop, sem: make(chan struct{}, maxPendingSetups)}
	l.wg.Add(1)
	go l.acceptLoop()
	return l, nil
}

func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	for {
		select {
		case l.sem <- struct{}{}:
		case <-l.ctx.Done():
			return
		}
		qc, err := l.ql.Accept(l.ctx)
		if err != nil {
			<-l.sem
			return
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			ctx, cancel := context.WithTimeout(l.ctx, carrier.SetupTimeout(l.cfg))
			c, err := setup(ctx, qc, true, l.cfg)
			cancel()
			<-l.sem
			if err != nil {
				return
			}
			select {
			case l.ready <- c:
			case <-l.ctx.Done():
				c.Close()
			}
		}()
	}
}

// Accept returns the next connection whose setup has completed.
func (l *Listener) Accept(ctx context.Context) (*Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.ctx.Done():
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Addr is the local UDP address.
func (l *Listener) Addr() net.Addr { return l.ql.Addr() }

// Close stops listening and waits for the listener's goroutines. As with
// quic.ListenAddr, it closes the UDP socket, and with it every connection
// accepted from this listener.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() {
		l.stop()
		err = l.ql.Close()
		l.wg.Wait()
	})
	return err
}
