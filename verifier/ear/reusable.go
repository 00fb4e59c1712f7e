package ear

import (
	"bytes"
	"context"
	"crypto"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/attested-tls/go-expat/attester"
)

// Defaults of a ReusablePassportConfig.
const (
	// DefaultRefreshAttempts is how many issuances one refresh tries.
	DefaultRefreshAttempts = 4
	// DefaultRefreshBackoff is the wait after the first failure of a
	// refresh; it doubles with each retry, up to DefaultMaxRefreshBackoff.
	DefaultRefreshBackoff = time.Second
	// DefaultMaxRefreshBackoff caps the wait between retries.
	DefaultMaxRefreshBackoff = 30 * time.Second
	// DefaultIssueTimeout bounds one issuance (Evidence and appraisal).
	DefaultIssueTimeout = 30 * time.Second
)

// closeWait bounds how long Close waits for an issuance whose Evidence
// attester or Appraiser does not return when cancelled.
const closeWait = time.Second

// ErrNoPassport is returned (wrapped, with the cause) by
// ReusablePassport.Attest when it holds no passport that is still valid:
// the issuance failed or has not finished, or the ReusablePassport is
// closed. It never hands out an expired EAR instead.
var ErrNoPassport = errors.New("ear: no valid key-bound passport")

// passportError is ErrNoPassport with its cause.
type passportError struct{ cause error }

func noPassport(cause error) error { return &passportError{cause} }

func (e *passportError) Error() string {
	return ErrNoPassport.Error() + ": " + strings.TrimPrefix(e.cause.Error(), "ear: ")
}

func (e *passportError) Unwrap() []error { return []error{ErrNoPassport, e.cause} }

// ReusablePassportConfig configures a ReusablePassport. Evidence, Issuer
// and SPKI are required; every other zero value is a documented default.
type ReusablePassportConfig struct {
	// Evidence produces the Evidence for each issuance, over the key
	// challenge (KeyChallenge) of the request. Required.
	Evidence attester.Attester
	// Issuer appraises it and signs the key-bound EAR (IssueForKey); its
	// Validity is the passport's lifetime and its Time the clock used
	// here. Required.
	Issuer *Issuer
	// SPKI is the DER SubjectPublicKeyInfo of the Exported
	// Authenticator's end-entity key that the passport attests: Attest
	// refuses challenges for any other key. Required.
	SPKI []byte
	// RefreshBefore is how long before the passport's exp a new one is
	// obtained; 0 means a third of its lifetime. It never exceeds half of
	// the lifetime left when the passport was obtained, and must be less
	// than the Issuer's Validity. Choose it above the relying parties'
	// expat.Config.ReattestBefore, so that their re-attestation gets the
	// new passport.
	RefreshBefore time.Duration
	// Retry bounds one refresh: at most Retry.MaxAttempts issuances,
	// waiting Retry.Backoff after each failure (Initial doubled at each
	// retry, capped at Max, jittered). Zero fields mean
	// DefaultRefreshAttempts, DefaultRefreshBackoff and
	// DefaultMaxRefreshBackoff. After a failed issuance, Attest starts no
	// new one (when it holds no valid passport) for Retry.Initial.
	Retry attester.RetryPolicy
	// IssueTimeout bounds one issuance; 0 means DefaultIssueTimeout.
	IssueTimeout time.Duration
	// Logger receives refresh failures; nil means none.
	Logger *slog.Logger
}

// ReusablePassport is an attester.Attester for reusable key-attested
// passports: it holds a key-bound EAR (IssueForKey) for one Exported
// Authenticator key and hands the same EAR, in a CMW record, to every
// connection until it expires, without new Evidence per connection. In
// the background it obtains the next passport RefreshBefore its exp, with
// at most Retry.MaxAttempts tries per refresh, spaced by jittered
// exponential backoff; Attest never waits for a refresh while the current
// passport is valid.
//
// Without a valid passport (the first issuance, started by
// NewReusablePassport, has not finished, or every refresh failed and the
// passport expired), Attest waits, within its ctx, for an issuance: the
// one under way, or one it starts (at most one at a time, none within
// Retry.Initial of a failure); if that fails, Attest fails with
// ErrNoPassport. An expired EAR is never handed out.
//
// The relying party must accept key-bound passports (Config.Bindings with
// BindKey) and bounds their age (Config.KeyBoundMaxAge); see the package
// documentation for what such a passport proves. A ReusablePassport is
// safe for concurrent use; Close stops it.
type ReusablePassport struct {
	cfg      ReusablePassportConfig
	aik      map[crypto.Hash][]byte // Hash(SPKI) for each suite hash
	log      *slog.Logger
	newTimer func(time.Duration) (<-chan time.Time, func() bool)

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	done   chan struct{} // closed when the refresher has returned
	wake   chan struct{} // a new passport was installed (capacity 1)

	mu      sync.Mutex
	cur     *passport
	flight  *flight   // the issuance under way, if any
	lastErr error     // of the last failed issuance
	retryAt time.Time // no issuance started by Attest before this
	closed  bool
}

var _ attester.Attester = (*ReusablePassport)(nil)

// passport is one issued key-bound EAR.
type passport struct {
	rec       []byte // the CMW record handed out
	exp       time.Time
	refreshAt time.Time
}

// flight is one issuance; done is closed after err is set.
type flight struct {
	done chan struct{}
	err  error
}

// NewReusablePassport checks cfg (copied) and starts the ReusablePassport:
// the first issuance begins at once, in the background. The caller must
// Close it.
func NewReusablePassport(cfg *ReusablePassportConfig) (*ReusablePassport, error) {
	return newReusablePassport(cfg, func(d time.Duration) (<-chan time.Time, func() bool) {
		t := time.NewTimer(d)
		return t.C, t.Stop
	})
}

func newReusablePassport(cfg *ReusablePassportConfig, newTimer func(time.Duration) (<-chan time.Time, func() bool)) (*ReusablePassport, error) {
	if cfg == nil || cfg.Evidence == nil || cfg.Issuer == nil || len(cfg.SPKI) == 0 {
		return nil, errors.New("ear: ReusablePassport needs Evidence, Issuer and SPKI")
	}
	if err := cfg.Issuer.check(); err != nil {
		return nil, err
	}
	p := &ReusablePassport{cfg: *cfg, newTimer: newTimer, log: cfg.Logger, wake: make(chan struct{}, 1), done: make(chan struct{})}
	c := &p.cfg
	c.SPKI = bytes.Clone(c.SPKI)
	if _, err := x509.ParsePKIXPublicKey(c.SPKI); err != nil {
		return nil, fmt.Errorf("ear: ReusablePassport SPKI: %w", err)
	}
	if c.RefreshBefore < 0 || c.Retry.MaxAttempts < 0 || c.Retry.Initial < 0 || c.Retry.Max < 0 || c.IssueTimeout < 0 {
		return nil, errors.New("ear: negative value in ReusablePassportConfig")
	}
	if c.RefreshBefore >= c.Issuer.validity() {
		return nil, fmt.Errorf("ear: RefreshBefore %v is not less than the Issuer's Validity %v", c.RefreshBefore, c.Issuer.validity())
	}
	c.Retry = c.Retry.WithDefaults(attester.RetryPolicy{
		MaxAttempts: DefaultRefreshAttempts, Initial: DefaultRefreshBackoff, Max: DefaultMaxRefreshBackoff,
	})
	if c.IssueTimeout == 0 {
		c.IssueTimeout = DefaultIssueTimeout
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.aik = map[crypto.Hash][]byte{}
	for _, h := range []crypto.Hash{crypto.SHA256, crypto.SHA384} {
		d := h.New()
		d.Write(c.SPKI)
		p.aik[h] = d.Sum(nil)
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	go p.refresher()
	return p, nil
}

// Attest implements attester.Attester: it returns the current passport,
// which attests the key of ch (ch.AIKPubHash must be Hash(SPKI)) but
// carries nothing else of ch. See ReusablePassport for when it waits.
func (p *ReusablePassport) Attest(ctx context.Context, ch attester.Challenge) ([]byte, error) {
	if err := ch.Check(); err != nil {
		return nil, fmt.Errorf("ear: %w", err)
	}
	if subtle.ConstantTimeCompare(ch.AIKPubHash, p.aik[ch.Hash]) != 1 {
		return nil, errors.New("ear: the challenge is for another key than the passport's")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ear: %w", err)
	}
	for waited := false; ; waited = true {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, noPassport(errors.New("closed"))
		}
		now := p.cfg.Issuer.now()
		if cur := p.cur; cur != nil && now.Before(cur.exp) {
			p.mu.Unlock()
			return bytes.Clone(cur.rec), nil
		}
		f := p.flight
		if f == nil {
			if waited || now.Before(p.retryAt) {
				err := p.lastErr
				p.mu.Unlock()
				if err == nil {
					err = errors.New("the passport has expired")
				}
				return nil, noPassport(err)
			}
			f = p.startLocked()
		}
		p.mu.Unlock()
		select {
		case <-f.done:
			if f.err != nil {
				return nil, noPassport(f.err)
			}
		case <-ctx.Done():
			return nil, noPassport(ctx.Err())
		}
	}
}

// Expires returns the exp of the passport Attest hands out now, or the
// zero time when it has none that is valid.
func (p *ReusablePassport) Expires() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil || p.closed || !p.cfg.Issuer.now().Before(p.cur.exp) {
		return time.Time{}
	}
	return p.cur.exp
}

// Close stops the refresher and cancels an issuance under way. It returns
// once they have stopped, or after about a second if the Evidence attester
// or the Appraiser ignores the cancellation. Attest fails from then on.
func (p *ReusablePassport) Close() error {
	p.mu.Lock()
	again := p.closed
	p.closed = true
	f := p.flight
	p.mu.Unlock()
	p.cancel()
	<-p.done
	if f != nil && !again {
		t := time.NewTimer(closeWait)
		defer t.Stop()
		select {
		case <-f.done:
		case <-t.C:
		}
	}
	return nil
}

// startLocked starts an issuance; p.mu is held.
func (p *ReusablePassport) startLocked() *flight {
	f := &flight{done: make(chan struct{})}
	p.flight = f
	go func() {
		ctx, cancel := context.WithTimeout(p.ctx, p.cfg.IssueTimeout)
		defer cancel()
		next, err := p.issue(ctx)
		p.mu.Lock()
		defer p.mu.Unlock()
		p.flight = nil
		f.err = err
		defer close(f.done)
		if err != nil {
			p.lastErr = err
			p.retryAt = p.cfg.Issuer.now().Add(p.cfg.Retry.Initial)
			return
		}
		if p.cur != nil && !next.exp.After(p.cur.exp) {
			// Issued within the current one's second (iat and exp are
			// whole seconds): no progress, retried after a backoff.
			f.err = errors.New("ear: the passport issued expires no later than the current one")
			return
		}
		p.lastErr, p.retryAt = nil, time.Time{}
		p.cur = next
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}()
	return f
}

// issue obtains one key-bound passport.
func (p *ReusablePassport) issue(ctx context.Context) (*passport, error) {
	iss := p.cfg.Issuer
	req, err := iss.NewKeyRequest(p.cfg.SPKI)
	if err != nil {
		return nil, err
	}
	ev, err := p.cfg.Evidence.Attest(ctx, req.Challenge())
	if err != nil {
		return nil, fmt.Errorf("ear: Evidence for the key-bound passport: %w", err)
	}
	token, _, err := iss.IssueForKey(ctx, req, ev)
	if err != nil {
		return nil, err
	}
	exp, err := tokenExpiry(token)
	if err != nil {
		return nil, err
	}
	now := iss.now()
	life := exp.Sub(now)
	if life <= 0 {
		return nil, fmt.Errorf("ear: the key-bound passport issued expires at %v, not after now", exp.UTC())
	}
	margin := p.cfg.RefreshBefore
	if margin == 0 {
		margin = life / 3
	}
	margin = min(margin, life/2)
	rec, err := passportRecord(token)
	if err != nil {
		return nil, err
	}
	return &passport{rec: rec, exp: exp, refreshAt: exp.Add(-margin)}, nil
}

// tokenExpiry reads the exp of an EAR this package signed.
func tokenExpiry(token []byte) (time.Time, error) {
	parts := bytes.Split(token, []byte{'.'})
	if len(parts) != 3 {
		return time.Time{}, errors.New("ear: issued token is not a compact JWS")
	}
	payload, err := decodeB64(parts[1])
	if err != nil {
		return time.Time{}, fmt.Errorf("ear: issued token: %w", err)
	}
	c, err := parseClaims(payload)
	if err != nil {
		return time.Time{}, err
	}
	if c.exp == nil {
		return time.Time{}, errors.New("ear: issued token has no exp")
	}
	return *c.exp, nil
}

// refresher obtains a passport at once, then each one RefreshBefore the
// current one's exp. A refresh that fails Retry.MaxAttempts times is given
// up: the refresher then waits for a passport obtained on demand by
// Attest (once the current one has expired).
func (p *ReusablePassport) refresher() {
	defer close(p.done)
	var gaveUp *passport // the passport whose refresh was given up
	refresh := true
	for {
		if refresh {
			ok, open := p.refresh()
			if !open {
				return
			}
			gaveUp = nil
			if !ok {
				p.mu.Lock()
				gaveUp = p.cur
				p.mu.Unlock()
			}
		}
		p.mu.Lock()
		cur := p.cur
		p.mu.Unlock()
		var due <-chan time.Time
		stop := func() bool { return false }
		if cur != nil && cur != gaveUp {
			due, stop = p.newTimer(cur.refreshAt.Sub(p.cfg.Issuer.now()))
		}
		select {
		case <-due:
			refresh = true
		case <-p.wake:
			refresh = false
		case <-p.ctx.Done():
			stop()
			return
		}
		stop()
	}
}

// refresh makes up to Retry.MaxAttempts issuances (joining one under way)
// until one succeeds. open is false once the ReusablePassport is closed.
func (p *ReusablePassport) refresh() (ok, open bool) {
	for attempt := 1; ; attempt++ {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return false, false
		}
		if cur := p.cur; cur != nil && p.cfg.Issuer.now().Before(cur.refreshAt) {
			// Obtained meanwhile (on demand by Attest): not due yet.
			p.mu.Unlock()
			return true, true
		}
		f := p.flight
		if f == nil {
			f = p.startLocked()
		}
		p.mu.Unlock()
		select {
		case <-f.done:
		case <-p.ctx.Done():
			return false, false
		}
		if f.err == nil {
			return true, true
		}
		if attempt >= p.cfg.Retry.MaxAttempts {
			p.log.Warn("ear: key-bound passport refresh given up", "attempts", attempt, "err", f.err)
			return false, true
		}
		d := p.cfg.Retry.Backoff(attempt)
		p.log.Warn("ear: key-bound passport refresh failed", "attempt", attempt, "retry_in", d, "err", f.err)
		due, stop := p.newTimer(d)
		select {
		case <-due:
		case <-p.ctx.Done():
			stop()
			return false, false
		}
	}
}
