package expat

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
)

// Dial connects to address, runs the TLS 1.3 handshake and the attestation
// setup, and returns the attested connection. tlsCfg is prepared with
// ClientTLSConfig (TLS 1.3 only, nothing resumed); when its ServerName is
// empty it is taken from address, as tls.Dial does. The whole is bounded
// by Config.SetupTimeout.
func Dial(network, address string, tlsCfg *tls.Config, cfg *Config) (*Conn, error) {
	return DialContext(context.Background(), network, address, tlsCfg, cfg)
}

// DialContext is Dial within ctx (and Config.SetupTimeout).
func DialContext(ctx context.Context, network, address string, tlsCfg *tls.Config, cfg *Config) (*Conn, error) {
	return (&Dialer{}).DialContext(ctx, network, address, tlsCfg, cfg)
}

// Dialer dials attested connections over its NetDialer (nil: a zero
// net.Dialer), for callers that need a custom dialer (proxies, tests,
// HTTP transports).
type Dialer struct {
	NetDialer *net.Dialer
}

// DialContext is the package-level DialContext over d.NetDialer.
func (d *Dialer) DialContext(ctx context.Context, network, address string, tlsCfg *tls.Config, cfg *Config) (*Conn, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	if err := cfg.checkConn(); err != nil {
		return nil, err
	}
	tcfg := ClientTLSConfig(tlsCfg)
	if tcfg.ServerName == "" {
		host := address
		if h, _, err := net.SplitHostPort(address); err == nil {
			host = h
		}
		tcfg.ServerName = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.setupTimeout())
	defer cancel()
	nd := d.NetDialer
	if nd == nil {
		nd = &net.Dialer{}
	}
	raw, err := nd.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return setupConn(ctx, tls.Client(raw, tcfg), false, cfg)
}
