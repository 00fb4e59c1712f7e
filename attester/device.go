package attester

import (
	"errors"
	"math/rand/v2"
	"time"
)

// RetryPolicy bounds how a backend retries its attestation device (a TPM, a
// TEE's guest device or quote service) when the device answers "try again
// later" (and go-expat's other bounded retries, such as verifier/ear's
// passport refresh). The wait starts at Initial and doubles after each
// attempt up to Max, jittered (Backoff); it never outlasts the caller's ctx. Zero fields take the backend's
// defaults, which each backend documents.
type RetryPolicy struct {
	// MaxAttempts is the number of requests made in total for one call; 1
	// disables retries.
	MaxAttempts int
	// Initial is the wait after the first "try again later".
	Initial time.Duration
	// Max caps one wait.
	Max time.Duration
}

// WithDefaults returns p with each zero (or negative) field replaced by
// def's.
func (p RetryPolicy) WithDefaults(def RetryPolicy) RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = def.MaxAttempts
	}
	if p.Initial <= 0 {
		p.Initial = def.Initial
	}
	if p.Max <= 0 {
		p.Max = def.Max
	}
	return p
}

// Backoff returns the wait after the attempt-th failed attempt (from 1):
// Initial doubled attempt-1 times, capped at Max, drawn uniformly from
// the upper half of that (jitter, so that many callers do not retry in
// step). p's fields must be positive (WithDefaults).
func (p RetryPolicy) Backoff(attempt int) time.Duration {
	w := p.Initial
	for i := 1; i < attempt && w < p.Max; i++ {
		w *= 2
	}
	w = min(w, p.Max)
	return w/2 + rand.N(w/2+1)
}

// ErrThrottled matches (errors.Is) a *DeviceError whose device refused
// requests for now: rate limiting, a busy firmware or host, a quote already
// in flight.
var ErrThrottled = errors.New("attester: attestation device throttled")

// DeviceError reports a failed request to the attestation device of a TEE
// backend (attester/sevsnp, attester/tdx, attester/cca).
type DeviceError struct {
	// Attester is the backend: "sevsnp", "tdx" or "cca".
	Attester string
	// Backend is the device interface: "sev-guest", "tdx-guest" or
	// "configfs-tsm".
	Backend string
	// Attempts is the number of requests made.
	Attempts int
	// Retryable tells whether the same call may succeed later (throttling,
	// a deadline that expired while waiting for the device).
	Retryable bool
	// Throttled tells that the device refused for now; errors.Is(err,
	// ErrThrottled) reports it.
	Throttled bool
	// Err is the last underlying error.
	Err error
}

func (e *DeviceError) Error() string {
	s := e.Attester + ": " + e.Backend + " request failed"
	if e.Retryable {
		s += " (retryable)"
	}
	return s + ": " + e.Err.Error()
}

func (e *DeviceError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrThrottled) true for throttling.
func (e *DeviceError) Is(target error) bool { return target == ErrThrottled && e.Throttled }
