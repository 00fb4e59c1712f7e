package exchange

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/ea"
)

// requests is a fake Endpoint record: cancelled contexts, late answers
// recognised once.
type requests struct {
	mu        sync.Mutex
	cancelled map[string]bool
	wait      bool // ReleaseGate's answer
}

func (r *requests) ReleaseGate() (bool, error) { return r.wait, nil }

func (r *requests) Cancel(c []byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancelled == nil {
		r.cancelled = map[string]bool{}
	}
	r.cancelled[string(c)] = true
	return true
}

func (r *requests) LateAnswer(c []byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancelled[string(c)] {
		delete(r.cancelled, string(c))
		return true
	}
	return false
}

type att struct {
	seq        uint64
	validUntil time.Time
}

type wrapped struct {
	op    string
	alert tls.AlertError
	err   error
}

func (w *wrapped) Error() string { return w.op + ": " + w.err.Error() }
func (w *wrapped) Unwrap() error { return w.err }

var errEnded = errors.New("ended")

type fixture struct {
	m       *Model[*att]
	cancel  context.CancelFunc
	expired chan struct{}
}

func newFixture(t *testing.T, f func(*Config[*att])) *fixture {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	x := &fixture{cancel: cancel, expired: make(chan struct{}, 4)}
	cfg := Config[*att]{
		Requests: &requests{}, Context: ctx, Ended: func() error { return errEnded },
		Wrap:    func(op string, a tls.AlertError, err error) error { return &wrapped{op, a, err} },
		Stamp:   func(a *att, seq uint64) (time.Time, time.Time) { a.seq = seq; return time.Now(), a.validUntil },
		Expired: func() { x.expired <- struct{}{} },
	}
	if f != nil {
		f(&cfg)
	}
	x.m = New(cfg)
	return x
}

func ok(ctx context.Context, reqCtx, auth []byte) (*att, error) { return &att{}, nil }

// One exchange, answered, verified, committed: Seq 1, latest; then a
// second one gets Seq 2.
func TestCommitNumbers(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	for want := uint64(1); want <= 2; want++ {
		ex, err := f.m.Open([]byte{byte(want)}, want == 1)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.m.AwaitingSetupAnswer(); got != (want == 1) {
			t.Fatalf("AwaitingSetupAnswer %v", got)
		}
		if err := f.m.Deliver([]byte{byte(want)}, []byte("auth")); err != nil {
			t.Fatal(err)
		}
		if !f.m.Answered() {
			t.Fatal("Answered false after Deliver")
		}
		a, err := f.m.Await(ctx, ex, ok)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.m.Commit(ex, a); err != nil {
			t.Fatal(err)
		}
		if l, attested := f.m.Latest(); !attested || l != a || a.seq != want {
			t.Fatalf("latest %+v (attested %v), want Seq %d", l, attested, want)
		}
	}
}

// Answers to no current exchange: a late answer to an abandoned request
// is dropped once, anything else is illegal_parameter with
// ea.ErrUnknownContext; an abandoned exchange never commits.
func TestDeliverAndAbandon(t *testing.T) {
	f := newFixture(t, nil)
	ex, _ := f.m.Open([]byte{1}, false)
	f.m.Abandon(ex)
	if err := f.m.Deliver([]byte{1}, []byte("late")); err != nil {
		t.Fatalf("late answer: %v, want dropped", err)
	}
	for _, c := range [][]byte{{1}, {2}} {
		var w *wrapped
		err := f.m.Deliver(c, []byte("x"))
		if !errors.As(err, &w) || w.alert != alertIllegalParameter || !errors.Is(err, ea.ErrUnknownContext) {
			t.Fatalf("answer for %x: %v, want illegal_parameter", c, err)
		}
	}
	if err := f.m.Commit(ex, &att{}); err == nil {
		t.Fatal("abandoned exchange committed")
	}
	if _, attested := f.m.Latest(); attested {
		t.Fatal("attested after an abandoned exchange")
	}
	// A second answer to the current exchange is an error too.
	ex2, _ := f.m.Open([]byte{3}, false)
	f.m.Deliver([]byte{3}, []byte("a"))
	if err := f.m.Deliver([]byte{3}, []byte("b")); err == nil {
		t.Fatal("second answer accepted")
	}
	f.m.Abandon(ex2)
}

// Await returns at the caller's ctx (no answer, or a Verifier that ignores
// ctx) with the wrapped deadline, and at the connection's end with Ended.
func TestAwaitBounds(t *testing.T) {
	f := newFixture(t, nil)
	ex, _ := f.m.Open([]byte{1}, false)
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := f.m.Await(short, ex, ok); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("no answer: %v", err)
	}
	gate := make(chan struct{})
	defer close(gate)
	stuck := func(context.Context, []byte, []byte) (*att, error) { <-gate; return &att{}, nil }
	ex, _ = f.m.Open([]byte{2}, false)
	f.m.Deliver([]byte{2}, []byte("a"))
	short2, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	_, err := f.m.Await(short2, ex, stuck)
	var w *wrapped
	if !errors.As(err, &w) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stuck Verifier: %v", err)
	}
	ex, _ = f.m.Open([]byte{3}, false)
	f.m.Deliver([]byte{3}, []byte("a"))
	time.AfterFunc(20*time.Millisecond, func() { f.m.End(); f.cancel() })
	if _, err := f.m.Await(context.Background(), ex, stuck); err != errEnded {
		t.Fatalf("connection ended during verification: %v, want Ended's error", err)
	}
	if _, err := f.m.Open([]byte{4}, false); err != errEnded {
		t.Fatalf("Open after End: %v", err)
	}
	if err := f.m.Commit(ex, &att{}); err != errEnded {
		t.Fatalf("Commit after End: %v", err)
	}
}

// Turn serializes: a second caller waits, and gives up at its ctx.
func TestTurn(t *testing.T) {
	f := newFixture(t, nil)
	release, err := f.m.Turn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := f.m.Turn(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Turn: %v", err)
	}
	release()
	r2, err := f.m.Turn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r2()
}

// The latest attestation ends at its ValidUntil (Expired called, Latest
// empty); a newer commit replaces the pending expiry; AwaitAttested wakes
// at a commit.
func TestExpiryAndAwaitAttested(t *testing.T) {
	f := newFixture(t, nil)
	commit := func(a *att, c byte) {
		ex, _ := f.m.Open([]byte{c}, false)
		f.m.Deliver([]byte{c}, []byte("a"))
		v, _ := f.m.Await(context.Background(), ex, func(context.Context, []byte, []byte) (*att, error) { return a, nil })
		if err := f.m.Commit(ex, v); err != nil {
			t.Fatal(err)
		}
	}
	woke := make(chan error, 1)
	go func() { woke <- f.m.AwaitAttested(context.Background()) }()
	commit(&att{validUntil: time.Now().Add(50 * time.Millisecond)}, 1)
	if err := <-woke; err != nil {
		t.Fatal(err)
	}
	commit(&att{validUntil: time.Now().Add(150 * time.Millisecond)}, 2)
	time.Sleep(90 * time.Millisecond)
	select {
	case <-f.expired:
		t.Fatal("the replaced attestation's expiry fired")
	default:
	}
	if _, attested := f.m.Latest(); !attested {
		t.Fatal("not attested before the newer ValidUntil")
	}
	select {
	case <-f.expired:
	case <-time.After(2 * time.Second):
		t.Fatal("no expiry")
	}
	if _, attested := f.m.Latest(); attested {
		t.Fatal("attested after ValidUntil")
	}
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := f.m.AwaitAttested(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("AwaitAttested while expired: %v", err)
	}
	// Release: at once when the gate says so, else only while attested.
	if err := f.m.MayRelease(short); err != nil {
		t.Fatalf("MayRelease, no wait: %v", err)
	}
	f.m.cfg.Requests.(*requests).wait = true
	if err := f.m.MayRelease(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("MayRelease while expired: %v", err)
	}
	commit(&att{}, 3)
	if err := f.m.MayRelease(context.Background()); err != nil {
		t.Fatalf("MayRelease while attested: %v", err)
	}
}

// ReattestEvery runs Attest after each commit and reports to OnReattest.
func TestScheduled(t *testing.T) {
	got := make(chan error, 1)
	var f *fixture
	f = newFixture(t, func(c *Config[*att]) {
		c.ReattestEvery, c.Timeout = 20*time.Millisecond, time.Second
		c.Attest = func(ctx context.Context) (*att, error) {
			if _, ok := ctx.Deadline(); !ok {
				return nil, fmt.Errorf("scheduled Attest without a bound")
			}
			return nil, errors.New("peer gone")
		}
		c.OnReattest = func(a *att, err error) { got <- err }
	})
	ex, _ := f.m.Open([]byte{1}, true)
	f.m.Deliver([]byte{1}, []byte("a"))
	a, _ := f.m.Await(context.Background(), ex, ok)
	f.m.Commit(ex, a)
	select {
	case err := <-got:
		if err == nil || err.Error() != "peer gone" {
			t.Fatalf("OnReattest: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no scheduled re-attestation")
	}
}
