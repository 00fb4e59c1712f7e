// Package carrier holds what the integrations (expathttp, expatgrpc,
// expatquic) share about an expat.Config: its early validation and the
// defaults they apply themselves.
package carrier

import (
	"crypto/tls"
	"errors"
	"time"

	"github.com/attested-tls/go-expat/ea"
	"github.com/attested-tls/go-expat/expat"
)

// CheckConfig validates cfg before any connection: nil or attesting and
// checking nothing is refused, then expat's own rules (NewEndpoint checks
// the Config before the connection state, so an empty state tells a bad
// Config from a good one), then the rule expat applies to a Conn: a
// Verifier without RequirePeerAttestation needs PeerAttestationOnDemand.
// prefix names the calling package in messages.
func CheckConfig(prefix string, cfg *expat.Config, isServer bool) error {
	if cfg == nil || (cfg.Attester == nil && cfg.Verifier == nil) {
		return errors.New(prefix + ": expat.Config attests nothing and checks nothing")
	}
	_, err := expat.NewEndpoint(&tls.ConnectionState{}, isServer, cfg)
	switch {
	case err == nil:
		return errors.New(prefix + ": internal error: endpoint on an empty connection state")
	case !errors.Is(err, ea.ErrNotTLS13) && !errors.Is(err, ea.ErrHandshakeIncomplete):
		return err
	}
	if cfg.Verifier != nil && !cfg.RequirePeerAttestation && !cfg.PeerAttestationOnDemand {
		return errors.New(prefix + ": expat.Config.Verifier without RequirePeerAttestation: set RequirePeerAttestation, or PeerAttestationOnDemand to attest the peer only on demand")
	}
	return nil
}

// SetupTimeout is cfg.SetupTimeout with expat's default.
func SetupTimeout(cfg *expat.Config) time.Duration {
	if cfg.SetupTimeout > 0 {
		return cfg.SetupTimeout
	}
	return 30 * time.Second
}

// MaxAuthenticatorSize is cfg.MaxAuthenticatorSize with expat's default.
func MaxAuthenticatorSize(cfg *expat.Config) int {
	if cfg.MaxAuthenticatorSize > 0 {
		return cfg.MaxAuthenticatorSize
	}
	return 256 << 10
}
