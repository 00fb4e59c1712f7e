// Package bound runs work that may ignore its context (an Attester, a
// Verifier) so that its caller returns at the context's end whatever the
// work does; the late result is dropped.
package bound

import (
	"context"
	"sync/atomic"

	"github.com/attested-tls/go-expat/internal/warm"
)

// Run runs f under ctx and returns at ctx's end even if f ignores ctx;
// f's late result is then dropped (f goes on in its own goroutine until it
// returns).
func Run[T any](ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	warm.Go(func() {
		v, err := f(ctx)
		ch <- result{v, err}
	})
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// Inline runs f under ctx in the calling goroutine, for a goroutine that
// exists only to do this work and that nothing waits on: Run's extra
// goroutine, and its wake-up, cost a new connection's setup about a tenth
// of its rate on a 2-core machine. If ctx ends before f returns, late is
// called at once (in a goroutine of its own) to do what the work's end
// must do without f's result; f's result, when it comes, is dropped and
// ok is false. Exactly one of "ok is true" and "late was called" happens.
// If ctx has ended already, f is not called.
func Inline[T any](ctx context.Context, f func(context.Context) (T, error), late func()) (v T, err error, ok bool) {
	const running, returned, abandoned = 0, 1, 2
	var state atomic.Int32
	if ctx.Err() != nil {
		go late()
		return v, ctx.Err(), false
	}
	stop := context.AfterFunc(ctx, func() {
		if state.CompareAndSwap(running, abandoned) {
			late()
		}
	})
	v, err = f(ctx)
	stop()
	if !state.CompareAndSwap(running, returned) {
		var zero T
		return zero, ctx.Err(), false
	}
	return v, err, true
}
