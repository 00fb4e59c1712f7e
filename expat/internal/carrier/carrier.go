// Package carrier holds what the integrations (expathttp, expatgrpc,
// expatquic) share about an expat.Config: its early validation, the
// defaults they apply themselves, and the exchange model configured as
// expat.Conn configures it.
package carrier

import (
	"context"
	"crypto/tls"
	"errors"
	"time"

	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/expat/internal/exchange"
	"github.com/attested-tls/go-expat/expat/internal/pace"
)

// CheckConfig validates cfg before any connection: nil or attesting and
// checking nothing is refused, then expat.Config.Check (the rules of a
// connection carrying application data).
// prefix names the calling package in messages.
func CheckConfig(prefix string, cfg *expat.Config, isServer bool) error {
	if cfg == nil || (cfg.Attester == nil && cfg.Verifier == nil) {
		return errors.New(prefix + ": expat.Config attests nothing and checks nothing")
	}
	return cfg.Check()
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
var ErrTooManyRequests = pace.ErrTooManyRequests

// Pacer paces the attestations one connection performs for its peer with
// the pacer expat.Conn uses: at most expat.Config.MaxPeerRequests in
// progress (expat.DefaultMaxPeerRequests by default; more is the peer's
// protocol violation), and starts at least expat.Config.PeerRequestInterval
// apart (expat.DefaultPeerRequestInterval by default; a request arriving
// sooner waits for its turn).
type Pacer struct{ p *pace.Pacer }

// NewPacer returns the Pacer of one connection.
func NewPacer(cfg *expat.Config) *Pacer {
	max, interval := cfg.MaxPeerRequests, cfg.PeerRequestInterval
	if max <= 0 {
		max = expat.DefaultMaxPeerRequests
	}
	if interval <= 0 {
		interval = expat.DefaultPeerRequestInterval
	}
	return &Pacer{pace.New(max, interval)}
}

// Begin waits for the turn of one attestation, within ctx; after a nil
// error the caller attests and then calls End.
func (p *Pacer) Begin(ctx context.Context) error {
	d, err := p.p.Start()
	if err != nil {
		return err
	}
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			p.p.Done()
			return ctx.Err()
		}
	}
	return nil
}

// Reserve is Begin without the wait: it counts one attestation (or
// refuses it, ErrTooManyRequests) at once and returns how long the caller
// must wait before starting it, so that a reader can count a request
// without blocking; End follows as for Begin.
func (p *Pacer) Reserve() (time.Duration, error) { return p.p.Start() }

// End ends an attestation that Begin let start.
func (p *Pacer) End() { p.p.Done() }

// MaxAuthenticatorSize is cfg.MaxAuthenticatorSize with expat's default.
func MaxAuthenticatorSize(cfg *expat.Config) int {
	if cfg.MaxAuthenticatorSize > 0 {
		return cfg.MaxAuthenticatorSize
	}
	return 256 << 10
}

// NewExchange returns the exchange model (expat/internal/exchange) of one
// connection of an integration, configured from cfg as expat.Conn
// configures its own: ctx ends with the connection and ended says why;
// failed is the integration's handling of a failed attestation (it closes
// the connection unless cfg.KeepOnFailure), called when the latest
// attestation expires; attest runs the scheduled re-attestations.
func NewExchange(ctx context.Context, cfg *expat.Config, ep *expat.Endpoint, ended func() error, failed func(error), attest func(context.Context) (*expat.Attestation, error)) *exchange.Model[*expat.Attestation] {
	return exchange.New(exchange.Config[*expat.Attestation]{
		Requests: ep, Context: ctx, Ended: ended, Wrap: wrapErr, Stamp: stamp, Now: cfg.Time,
		Expired: func() {
			failed(&expat.Error{Op: "attest", Alert: alertCertificateExpired, Err: expat.ErrAttestationExpired})
		},
		ReattestEvery: cfg.ReattestEvery, ReattestBefore: cfg.ReattestBefore,
		Attest: attest, Timeout: SetupTimeout(cfg), OnReattest: cfg.OnReattest, Logger: cfg.Logger,
	})
}

const alertCertificateExpired tls.AlertError = 45

func wrapErr(op string, alert tls.AlertError, err error) error {
	return &expat.Error{Op: op, Alert: alert, Err: err}
}

// stamp numbers att at its commit and returns its lifetime.
func stamp(att *expat.Attestation, seq uint64) (verifiedAt, validUntil time.Time) {
	att.Seq = seq
	return att.VerifiedAt, att.ValidUntil
}
