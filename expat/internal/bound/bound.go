// Package bound runs work that may ignore its context (an Attester, a
// Verifier) so that its caller returns at the context's end whatever the
// work does; the late result is dropped.
package bound

import "context"

// Run runs f under ctx and returns at ctx's end even if f ignores ctx;
// f's late result is then dropped (f goes on in its own goroutine until it
// returns).
func Run[T any](ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f(ctx)
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}
