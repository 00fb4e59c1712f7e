package tpm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/attested-tls/go-expat/attester"
)

// Transport carries TPM 2.0 commands to one TPM: a device file, a swtpm
// socket, the in-process simulator (package tpmsim) or a caller's own.
//
// Send sends one marshalled command (header included) and returns the
// complete response. It must return promptly once ctx is done; after such
// an abandoned command the command stream is out of step, and Conn refuses
// further commands. Send is never called concurrently by Conn.
type Transport interface {
	Send(ctx context.Context, cmd []byte) ([]byte, error)
	Close() error
}

// DefaultRetry is the retry policy of ConnOptions' zero Retry fields:
// 6 attempts, waits from 2 ms doubling up to 250 ms.
var DefaultRetry = attester.RetryPolicy{MaxAttempts: 6, Initial: 2 * time.Millisecond, Max: 250 * time.Millisecond}

// ConnOptions configures a Conn. The zero value is ready to use.
type ConnOptions struct {
	// Retry bounds the retries of TPM commands that fail with a warning the
	// TPM Library specification (Part 2, Section 6.6.3) says may succeed
	// later: TPM_RC_RETRY, TPM_RC_YIELDED, TPM_RC_TESTING, TPM_RC_NV_RATE,
	// TPM_RC_NV_UNAVAILABLE. Zero fields mean DefaultRetry's; MaxAttempts 1
	// disables retries. The waits never outlast the caller's context.
	Retry attester.RetryPolicy
}

// Conn is one command stream to a TPM. It serializes every command sequence
// (a TPM has one command stream, and without a resource manager transient
// objects must not interleave) and applies the retry policy. A Conn is safe
// for concurrent use.
type Conn struct {
	t     Transport
	retry attester.RetryPolicy
	sem   chan struct{} // one token: held while a command sequence runs
	// Guarded by sem.
	broken error
	closed bool
}

// Open returns a Conn over t. Closing the Conn closes t.
func Open(t Transport, opts *ConnOptions) (*Conn, error) {
	if t == nil {
		return nil, errors.New("tpm: nil transport")
	}
	var o ConnOptions
	if opts != nil {
		o = *opts
	}
	c := &Conn{t: t, retry: o.Retry.WithDefaults(DefaultRetry), sem: make(chan struct{}, 1)}
	return c, nil
}

// Close closes the transport. Objects that users of the Conn (Attester, Key)
// still hold are flushed by their own Close methods, which must run first.
func (c *Conn) Close() error {
	c.sem <- struct{}{}
	defer func() { <-c.sem }()
	if c.closed {
		return nil
	}
	c.closed = true
	return c.t.Close()
}

// do runs fn with exclusive use of the command stream.
func (c *Conn) do(ctx context.Context, fn func(s *session) error) error {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return &Error{Op: "wait for TPM", Err: ctx.Err()}
	}
	defer func() { <-c.sem }()
	if c.closed {
		return ErrClosed
	}
	if c.broken != nil {
		return fmt.Errorf("%w: %v", ErrBroken, c.broken)
	}
	s := &session{c: c, ctx: ctx}
	return fn(s)
}

// session is the command context of one sequence: it adapts the Transport
// to go-tpm's transport.TPM for a given ctx.
type session struct {
	c   *Conn
	ctx context.Context
}

type sendResult struct {
	rsp []byte
	err error
}

// Send implements transport.TPM. The command runs on its own goroutine so a
// transport that ignores ctx cannot hold the caller past its deadline.
func (s *session) Send(cmd []byte) ([]byte, error) {
	if err := s.ctx.Err(); err != nil {
		return nil, err
	}
	ch := make(chan sendResult, 1)
	go func() {
		rsp, err := s.c.t.Send(s.ctx, cmd)
		ch <- sendResult{rsp, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			// A transport failure leaves the stream in an unknown state.
			s.c.broken = r.err
			return nil, &transportError{r.err}
		}
		if len(r.rsp) < 10 {
			s.c.broken = errors.New("short response")
			return nil, &transportError{fmt.Errorf("response of %d bytes is shorter than a TPM header", len(r.rsp))}
		}
		return r.rsp, nil
	case <-s.ctx.Done():
		s.c.broken = fmt.Errorf("command abandoned: %w", s.ctx.Err())
		return nil, s.ctx.Err()
	}
}

type transportError struct{ err error }

func (e *transportError) Error() string { return "transport: " + e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

var _ transport.TPM = (*session)(nil)

// retryable reports whether rc is a warning that a later attempt may clear.
func retryable(rc tpm2.TPMRC) bool {
	switch rc {
	case tpm2.TPMRCRetry, tpm2.TPMRCYielded, tpm2.TPMRCTesting,
		tpm2.TPMRCNVRate, tpm2.TPMRCNVUnavailable:
		return true
	}
	return false
}

// run executes one command with the retry policy. op names it in errors.
// exec must be idempotent up to the TPM's answer (password sessions only:
// a failed command does not change session state).
func run[R any](s *session, op string, exec func(t transport.TPM) (*R, error)) (*R, error) {
	wait := s.c.retry.Initial
	var last error
	for attempt := 1; ; attempt++ {
		rsp, err := exec(s)
		if err == nil {
			return rsp, nil
		}
		var rc tpm2.TPMRC
		if !errors.As(err, &rc) {
			return nil, &Error{Op: op, Err: err} // transport failure or ctx done
		}
		if !retryable(rc) {
			return nil, &Error{Op: op, Code: rc, Err: err}
		}
		last = err
		if attempt >= s.c.retry.MaxAttempts {
			return nil, &Error{Op: op, Code: rc, Retryable: true,
				Err: fmt.Errorf("still failing after %d attempts: %w", attempt, last)}
		}
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-s.ctx.Done():
			timer.Stop()
			return nil, &Error{Op: op, Code: rc, Retryable: true,
				Err: fmt.Errorf("%w (last TPM answer: %v)", s.ctx.Err(), last)}
		}
		wait *= 2
		if wait > s.c.retry.Max {
			wait = s.c.retry.Max
		}
	}
}

// flush flushes a transient handle, ignoring the result: a flush failure
// leaves nothing the caller can act on, and the transport may be gone.
func (s *session) flush(h tpm2.TPMHandle) {
	_, _ = (&tpm2.FlushContext{FlushHandle: h}).Execute(s)
}
