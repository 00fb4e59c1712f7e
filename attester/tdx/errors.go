package tdx

import (
	"errors"
	"syscall"

	"github.com/google/go-configfs-tsm/report"
)

// ErrThrottled matches a *DeviceError caused by the quote service refusing
// requests for now (busy device, a quote already in flight, rate limits).
var ErrThrottled = errors.New("tdx: quote service throttled")

// DeviceError reports a failed quote request.
type DeviceError struct {
	// Backend is "configfs-tsm" or "tdx-guest".
	Backend string
	// Attempts is the number of requests made.
	Attempts int
	// Retryable tells whether the same call may succeed later (throttling,
	// a deadline that expired while waiting for the device).
	Retryable bool
	// Err is the last underlying error.
	Err error

	throttled bool
}

func (e *DeviceError) Error() string {
	s := "tdx: " + e.Backend + " quote request failed"
	if e.Retryable {
		s += " (retryable)"
	}
	return s + ": " + e.Err.Error()
}

func (e *DeviceError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrThrottled) true for throttling.
func (e *DeviceError) Is(target error) bool { return target == ErrThrottled && e.throttled }

// errBusy is returned by backends for "try again later" answers that carry
// no errno (the GetQuote status word).
var errBusy = errors.New("tdx: quote service busy")

// isThrottle reports whether err means "try again later".
func isThrottle(err error) bool {
	if errors.Is(err, errBusy) || report.GetGenerationErr(err) != nil {
		return true
	}
	for _, e := range []syscall.Errno{syscall.EAGAIN, syscall.EBUSY, syscall.EINTR, syscall.ETIMEDOUT} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
