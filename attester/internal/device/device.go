// Package device is the one way go-expat's TEE attesters (attester/sevsnp,
// attester/tdx, attester/cca) talk to their attestation device: requests
// bounded in number in flight and by the caller's ctx, "try again later"
// answers retried with a jittered exponential backoff under an
// attester.RetryPolicy, failures reported as *attester.DeviceError.
package device

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/google/go-configfs-tsm/report"

	"github.com/attested-tls/go-expat/attester"
)

// Device serializes requests to one attestation device. It is safe for
// concurrent use.
type Device struct {
	attester, backend string
	retry             attester.RetryPolicy
	sem               chan struct{} // one token per request in flight
}

// New returns a Device for backend backend of attester attesterName (the
// names in its errors), retrying under p (zero fields: def's), with at most
// inFlight requests at once (0 or less: 1).
func New(attesterName, backend string, p, def attester.RetryPolicy, inFlight int) *Device {
	if inFlight <= 0 {
		inFlight = 1
	}
	return &Device{attester: attesterName, backend: backend, retry: p.WithDefaults(def), sem: make(chan struct{}, inFlight)}
}

// errBusy marks an answer that means "try again later" without an errno.
type errBusy struct{ err error }

func (e errBusy) Error() string { return e.err.Error() }
func (e errBusy) Unwrap() error { return e.err }

// Busy marks err as a "try again later" answer (a status word, not an
// errno): Do retries it.
func Busy(err error) error { return errBusy{err} }

// Throttled reports whether err means "try again later": marked by Busy,
// EAGAIN, EBUSY, EINTR or ETIMEDOUT from the device, or go-configfs-tsm's
// report generation race (another writer changed the entry).
func Throttled(err error) bool {
	if errors.As(err, new(errBusy)) || report.GetGenerationErr(err) != nil {
		return true
	}
	for _, e := range []syscall.Errno{syscall.EAGAIN, syscall.EBUSY, syscall.EINTR, syscall.ETIMEDOUT} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// backoff is the wait after attempt (1-based; RetryPolicy.Backoff).
func (d *Device) backoff(attempt int) time.Duration { return d.retry.Backoff(attempt) }

func (d *Device) fail(attempts int, retryable, throttled bool, err error) *attester.DeviceError {
	return &attester.DeviceError{Attester: d.attester, Backend: d.backend, Attempts: attempts,
		Retryable: retryable, Throttled: throttled, Err: err}
}

type result[T any] struct {
	v   T
	err error
}

// Do runs call on the device, retrying throttled answers (Throttled) under
// the policy, and returns its value or a *attester.DeviceError. call may
// block and need not honour ctx: Do returns when ctx ends, and a call that
// outlives ctx keeps its slot until it returns; its result is dropped.
func Do[T any](ctx context.Context, d *Device, call func() (T, error)) (T, error) {
	var zero T
	var last error
	for attempt := 1; ; attempt++ {
		select {
		case d.sem <- struct{}{}:
		case <-ctx.Done():
			return zero, d.fail(attempt-1, true, false, fmt.Errorf("waiting for the device: %w", ctx.Err()))
		}
		done := make(chan result[T], 1)
		go func() {
			defer func() { <-d.sem }()
			v, err := call()
			done <- result[T]{v, err}
		}()
		var r result[T]
		select {
		case r = <-done:
		case <-ctx.Done():
			return zero, d.fail(attempt, true, false, fmt.Errorf("device did not answer: %w", ctx.Err()))
		}
		if r.err == nil {
			return r.v, nil
		}
		last = r.err
		if !Throttled(r.err) {
			return zero, d.fail(attempt, false, false, r.err)
		}
		if attempt >= d.retry.MaxAttempts {
			return zero, d.fail(attempt, true, true, last)
		}
		t := time.NewTimer(d.backoff(attempt))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return zero, d.fail(attempt, true, true, fmt.Errorf("%w (last device error: %w)", ctx.Err(), last))
		}
	}
}
