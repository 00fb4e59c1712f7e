// Package carrier holds what the integrations (expathttp, expatgrpc,
// expatquic) share about an expat.Config: its early validation and the
// defaults they apply themselves.
package carrier

import (
	"context"
	"crypto/tls"
	"errors"
	"sync"
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
	return expat.DefaultSetupTimeout
}

// ErrTooManyRequests is Pacer.Begin's refusal: the peer has more
// attestation requests in progress than expat.Config.MaxPeerRequests.
var ErrTooManyRequests = errors.New("peer has too many attestation requests in progress")

// Pacer paces the attestations one connection performs for its peer as
// expat.Conn does: at most expat.Config.MaxPeerRequests in progress (2 by
// default; more is the peer's protocol violation), and starts at least
// expat.Config.PeerRequestInterval apart (expat.DefaultPeerRequestInterval
// by default; a request arriving sooner waits for its turn).
type Pacer struct {
	max      int
	interval time.Duration

	mu       sync.Mutex
	inFlight int
	next     time.Time
}

// NewPacer returns the Pacer of one connection.
func NewPacer(cfg *expat.Config) *Pacer {
	p := &Pacer{max: cfg.MaxPeerRequests, interval: cfg.PeerRequestInterval}
	if p.max <= 0 {
		p.max = 2
	}
	if p.interval <= 0 {
		p.interval = expat.DefaultPeerRequestInterval
	}
	return p
}

// Begin waits for the turn of one attestation, within ctx; after a nil
// error the caller attests and then calls End.
func (p *Pacer) Begin(ctx context.Context) error {
	p.mu.Lock()
	if p.inFlight >= p.max {
		p.mu.Unlock()
		return ErrTooManyRequests
	}
	p.inFlight++
	start := time.Now()
	if p.next.After(start) {
		start = p.next
	}
	p.next = start.Add(p.interval)
	p.mu.Unlock()
	if d := time.Until(start); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			p.End()
			return ctx.Err()
		}
	}
	return nil
}

// End ends an attestation that Begin let start.
func (p *Pacer) End() {
	p.mu.Lock()
	p.inFlight--
	p.mu.Unlock()
}

// MaxAuthenticatorSize is cfg.MaxAuthenticatorSize with expat's default.
func MaxAuthenticatorSize(cfg *expat.Config) int {
	if cfg.MaxAuthenticatorSize > 0 {
		return cfg.MaxAuthenticatorSize
	}
	return 256 << 10
}
