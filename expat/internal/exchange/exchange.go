// Package exchange is the exchange model of an attested connection, the
// one expat.Conn and expatquic share (their carriers differ, the rules do
// not):
//
//   - one request of ours is outstanding at a time: Turn serializes the
//     callers, Open makes the request the current exchange, keyed by its
//     certificate_request_context;
//   - the peer's answer goes to the current exchange (Deliver); an answer
//     to a request whose caller gave up is dropped once, any other answer
//     is a protocol violation (RFC 9261, Section 5.2.3);
//   - Await waits for the answer and verifies it within the caller's ctx
//     and the connection's life, abandoning a Verifier that overruns;
//   - an attestation commits only while its exchange is current and the
//     connection lives (Commit): it is then numbered (Seq, in commit
//     order) and becomes the latest; a caller that gave up (Abandon) never
//     commits, not even later;
//   - the latest attestation ends at its ValidUntil (Expired), and a
//     re-attestation is scheduled before it or every ReattestEvery.
//
// The model knows neither frames nor streams: the carrier sends the
// request and reads the answer. It is generic in the attestation type so
// that package expat can use it without an import cycle.
package exchange

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/attested-tls/go-expat/ea"
	"github.com/attested-tls/go-expat/expat/internal/bound"
)

// Requests is what the model needs of the Endpoint that made the requests
// (expat.Endpoint): abandoning one, recognising its late answer, and what
// Config.Release requires before our Evidence goes to the peer.
type Requests interface {
	Cancel(reqContext []byte) bool
	LateAnswer(reqContext []byte) bool
	ReleaseGate() (waitForPeer bool, err error)
}

// Config is a connection's use of the model. Requests, Context, Ended,
// Wrap and Stamp are required.
type Config[A any] struct {
	Requests Requests
	// Context ends when the connection does; Ended then says why.
	Context context.Context
	Ended   func() error
	// Bind, if set, returns a context that ends with ctx or with the
	// connection, and its CancelFunc (to call when done). Nil derives it
	// from Context, which then keeps the memory of a context child for
	// the connection's life (a context.Context never shrinks its set of
	// children): a carrier that cancels its own work at its end can do
	// without that.
	Bind func(ctx context.Context) (context.Context, context.CancelFunc)
	// Wrap makes the carrier's error for a failed step (*expat.Error).
	Wrap func(op string, alert tls.AlertError, err error) error
	// Stamp gives a its number at its commit and returns when it was
	// verified and until when it may be relied on (zero: no end).
	Stamp func(a A, seq uint64) (verifiedAt, validUntil time.Time)
	// Now is the clock of ValidUntil (nil: time.Now).
	Now func() time.Time
	// Expired is called when the latest attestation passes its
	// ValidUntil without a newer one (from a timer's goroutine).
	Expired func()
	// ReattestEvery and ReattestBefore schedule a re-attestation after
	// each commit (expat.Config); Attest runs it within Timeout, and its
	// result goes to OnReattest.
	ReattestEvery, ReattestBefore time.Duration
	Attest                        func(context.Context) (A, error)
	Timeout                       time.Duration
	OnReattest                    func(A, error)
	// Logger receives debug and warning events (nil: discarded).
	Logger *slog.Logger
}

// Exchange is one request of ours: the setup request or a re-attestation.
type Exchange struct {
	Context []byte
	Setup   bool
	answer  chan []byte // buffered 1: the peer's authenticator
	got     bool        // the answer arrived (guarded by Model.mu)
}

// Model is the exchange state of one connection. Safe for concurrent use;
// a carrier holding its own lock may call the Model under it: the Model
// calls the carrier's functions (Ended, Expired, Attest, OnReattest) only
// without its own lock held.
type Model[A any] struct {
	cfg  Config[A]
	log  *slog.Logger
	turn chan struct{} // see Turn (guarded by mu until made)

	mu         sync.Mutex
	cur        *Exchange
	seq        uint64
	latest     A
	validUntil time.Time
	attested   bool // the latest attestation succeeded and was not failed since
	ended      bool
	committed  chan struct{} // closed at the next commit, when someone waits
	expiry     *time.Timer
	reattest   *time.Timer
}

// New returns the model of one connection.
func New[A any](cfg Config[A]) *Model[A] {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Model[A]{cfg: cfg, log: log}
}

// ErrNotSent (expat.ErrNotSent) marks a call that gave up before its
// request was sent: the connection is unchanged.
var ErrNotSent = errors.New("expat: request not sent, connection unchanged")

// Alerts of the model's errors (RFC 8446, Section 6).
const (
	alertIllegalParameter tls.AlertError = 47
	alertInternalError    tls.AlertError = 80
)

// bind returns a context that ends with ctx or with the connection.
func (m *Model[A]) bind(ctx context.Context) (context.Context, context.CancelFunc) {
	if m.cfg.Bind != nil {
		return m.cfg.Bind(ctx)
	}
	vctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(m.cfg.Context, cancel)
	return vctx, func() { stop(); cancel() }
}

func (m *Model[A]) now() time.Time {
	if m.cfg.Now != nil {
		return m.cfg.Now()
	}
	return time.Now()
}

// Turn waits, within ctx, until no other request of ours is outstanding,
// and returns the function that ends the caller's turn. When ctx ends
// first nothing was sent and the connection is unchanged.
func (m *Model[A]) Turn(ctx context.Context) (release func(), err error) {
	m.mu.Lock()
	if m.turn == nil {
		m.turn = make(chan struct{}, 1) // made at the first re-attestation: most connections never make one
	}
	turn := m.turn
	m.mu.Unlock()
	select {
	case turn <- struct{}{}:
		return func() { <-turn }, nil
	case <-ctx.Done():
		return nil, m.cfg.Wrap("attest", 0, fmt.Errorf("waited for an earlier Attest: %w: %w", ErrNotSent, ctx.Err()))
	case <-m.cfg.Context.Done():
		return nil, m.cfg.Ended()
	}
}

// Open makes our request with context reqContext the current exchange
// (setup: the setup request). After the connection ended it cancels the
// request and returns why the connection ended.
func (m *Model[A]) Open(reqContext []byte, setup bool) (*Exchange, error) {
	ex := &Exchange{Context: reqContext, Setup: setup, answer: make(chan []byte, 1)}
	m.mu.Lock()
	if m.ended {
		m.mu.Unlock()
		m.cfg.Requests.Cancel(reqContext)
		return nil, m.cfg.Ended()
	}
	m.cur = ex
	m.mu.Unlock()
	return ex, nil
}

// Abandon gives up on ex: it is no longer current, and its context is
// cancelled in the Endpoint, so that a late answer is dropped quietly
// (and a second one is still an error) and never commits.
func (m *Model[A]) Abandon(ex *Exchange) {
	m.mu.Lock()
	if m.cur == ex {
		m.cur = nil
	}
	m.mu.Unlock()
	m.cfg.Requests.Cancel(ex.Context)
}

// Deliver hands the peer's authenticator for our request reqContext to
// the exchange waiting for it. A late answer to an abandoned request is
// dropped (nil); an answer to no request of ours, or a second answer, is
// an error (illegal_parameter).
func (m *Model[A]) Deliver(reqContext, auth []byte) error {
	m.mu.Lock()
	ex := m.cur
	if ex != nil && !ex.got && bytes.Equal(ex.Context, reqContext) {
		ex.got = true
		m.mu.Unlock()
		ex.answer <- auth
		return nil
	}
	m.mu.Unlock()
	if m.cfg.Requests.LateAnswer(reqContext) {
		m.log.Debug("expat: late answer dropped")
		return nil
	}
	// RFC 9261, Section 5.2.3.
	return m.cfg.Wrap("verify", alertIllegalParameter, fmt.Errorf("%w: authenticator for no outstanding request", ea.ErrUnknownContext))
}

func opOf(ex *Exchange) string {
	if ex.Setup {
		return "setup"
	}
	return "attest"
}

// Await waits for the peer's answer to ex and verifies it with verify,
// both within ctx (whose values the Verifier sees) and the connection's
// life; a Verifier that ignores ctx is abandoned at the end of either and
// its result dropped. The caller commits the result, or abandons ex on
// error.
func (m *Model[A]) Await(ctx context.Context, ex *Exchange, verify func(ctx context.Context, reqContext, auth []byte) (A, error)) (A, error) {
	return m.await(ctx, ex, verify, nil)
}

// AwaitInline is Await for a goroutine that exists only to do this work
// and that nothing waits on (a connection's setup goroutine): it verifies
// in the calling goroutine instead of handing the Verifier to another and
// waiting (a goroutine wake-up on a new connection's critical path). If
// the Verifier overruns ctx or the connection's life, late is called at
// that moment with the error Await would have returned, the result is
// dropped when it comes, and AwaitInline returns that same error.
func (m *Model[A]) AwaitInline(ctx context.Context, ex *Exchange, verify func(ctx context.Context, reqContext, auth []byte) (A, error), late func(error)) (A, error) {
	return m.await(ctx, ex, verify, late)
}

func (m *Model[A]) await(ctx context.Context, ex *Exchange, verify func(ctx context.Context, reqContext, auth []byte) (A, error), late func(error)) (A, error) {
	var zero A
	var auth []byte
	select {
	case auth = <-ex.answer:
	case <-ctx.Done():
		return zero, m.cfg.Wrap(opOf(ex), alertInternalError, fmt.Errorf("no answer from the peer: %w", ctx.Err()))
	case <-m.cfg.Context.Done():
		return zero, m.cfg.Ended()
	}
	vctx, cancel := m.bind(ctx)
	defer cancel()
	gaveUp := func() error {
		if ctx.Err() == nil {
			return m.cfg.Ended()
		}
		return m.cfg.Wrap(opOf(ex), alertInternalError, fmt.Errorf("verification not done in time: %w", ctx.Err()))
	}
	run := func(ctx context.Context) (A, error) { return verify(ctx, ex.Context, auth) }
	var att A
	var err error
	if late != nil {
		var ok bool
		att, err, ok = bound.Inline(vctx, run, func() { late(gaveUp()) })
		if !ok {
			return zero, gaveUp()
		}
	} else {
		att, err = bound.Run(vctx, run)
	}
	if err != nil {
		// bound.Run returns vctx.Err() itself when it gave up.
		if err == vctx.Err() {
			return zero, gaveUp()
		}
		return zero, err
	}
	return att, nil
}

// Commit makes att, the verified answer to ex, the latest attestation:
// only while ex is current and the connection lives. It numbers att
// (Stamp), arms its expiry and the next scheduled re-attestation, and
// wakes AwaitAttested. Otherwise att is dropped and the error says why.
func (m *Model[A]) Commit(ex *Exchange, att A) error {
	m.mu.Lock()
	if m.ended {
		m.mu.Unlock()
		// Ended may take the carrier's lock: never under m.mu.
		return m.cfg.Ended()
	}
	defer m.mu.Unlock()
	if m.cur != ex {
		return m.cfg.Wrap(opOf(ex), alertInternalError, fmt.Errorf("exchange abandoned: its attestation is dropped"))
	}
	m.cur = nil
	m.seq++
	verifiedAt, validUntil := m.cfg.Stamp(att, m.seq)
	m.latest, m.validUntil, m.attested = att, validUntil, true
	m.armLocked(verifiedAt, validUntil)
	if m.committed != nil {
		close(m.committed)
		m.committed = nil
	}
	m.log.Debug("expat: peer attested", "seq", m.seq)
	return nil
}

// armLocked sets the timers of the latest attestation: its end at
// validUntil, and the next scheduled re-attestation. m.mu is held.
func (m *Model[A]) armLocked(verifiedAt, validUntil time.Time) {
	m.stopTimersLocked()
	now := m.now()
	if !validUntil.IsZero() && m.cfg.Expired != nil {
		seq := m.seq
		m.expiry = time.AfterFunc(validUntil.Sub(now), func() { m.expire(seq) })
	}
	var next time.Time
	if e := m.cfg.ReattestEvery; e > 0 {
		next = verifiedAt.Add(e)
	}
	if b := m.cfg.ReattestBefore; b > 0 && !validUntil.IsZero() {
		if t := validUntil.Add(-b); next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if !next.IsZero() && m.cfg.Attest != nil {
		m.reattest = time.AfterFunc(next.Sub(now), m.scheduled)
	}
}

func (m *Model[A]) stopTimersLocked() {
	for _, t := range []*time.Timer{m.expiry, m.reattest} {
		if t != nil {
			t.Stop()
		}
	}
	m.expiry, m.reattest = nil, nil
}

// expire ends attestation seq at its ValidUntil, unless a newer one
// replaced it or it was failed since.
func (m *Model[A]) expire(seq uint64) {
	m.mu.Lock()
	current := !m.ended && m.attested && m.seq == seq
	m.mu.Unlock()
	if current {
		m.cfg.Expired()
	}
}

// scheduled is a re-attestation the connection starts on its own.
func (m *Model[A]) scheduled() {
	ctx, cancel := context.WithTimeout(m.cfg.Context, m.cfg.Timeout)
	defer cancel()
	att, err := m.cfg.Attest(ctx)
	if err != nil {
		m.log.Warn("expat: scheduled re-attestation failed", "err", err)
	}
	if m.cfg.OnReattest != nil {
		m.cfg.OnReattest(att, err)
	}
}

// Unattest marks the peer unattested after a failed attestation that
// leaves the connection open (expat.Config.KeepOnFailure).
func (m *Model[A]) Unattest() {
	m.mu.Lock()
	m.attested = false
	m.mu.Unlock()
}

// End records that the connection ended: the peer is no longer attested,
// nothing commits any more, the timers stop.
func (m *Model[A]) End() {
	m.mu.Lock()
	m.ended = true
	m.attested = false
	m.stopTimersLocked()
	m.mu.Unlock()
}

// Attested reports whether the peer is attested now: the latest
// attestation succeeded, was not failed since, and has not passed its
// ValidUntil.
func (m *Model[A]) Attested() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.attestedLocked()
}

func (m *Model[A]) attestedLocked() bool {
	return m.attested && (m.validUntil.IsZero() || m.now().Before(m.validUntil))
}

// Latest returns the latest attestation while the peer is attested (see
// Attested).
func (m *Model[A]) Latest() (A, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.attestedLocked() {
		var zero A
		return zero, false
	}
	return m.latest, true
}

// MayRelease waits, within ctx, until our Evidence may go to the peer
// (Requests.ReleaseGate: at once, or once the peer is attested); an error
// means the carrier refuses the request.
func (m *Model[A]) MayRelease(ctx context.Context) error {
	wait, err := m.cfg.Requests.ReleaseGate()
	if err != nil || !wait {
		return err
	}
	if err := m.AwaitAttested(ctx); err != nil {
		return fmt.Errorf("expat: Evidence not released: the peer did not attest first (Config.Release): %w", err)
	}
	return nil
}

// AwaitAttested waits, within ctx, until the peer is attested.
func (m *Model[A]) AwaitAttested(ctx context.Context) error {
	for {
		m.mu.Lock()
		if m.attestedLocked() {
			m.mu.Unlock()
			return nil
		}
		if m.committed == nil {
			m.committed = make(chan struct{})
		}
		ch := m.committed
		m.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Answered reports whether the current exchange's answer has arrived
// (it may still be being verified).
func (m *Model[A]) Answered() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cur != nil && m.cur.got
}

// AwaitingSetupAnswer reports whether the current exchange is the setup
// request and its answer has not arrived.
func (m *Model[A]) AwaitingSetupAnswer() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cur != nil && m.cur.Setup && !m.cur.got
}
