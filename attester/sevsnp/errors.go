package sevsnp

import (
	"errors"
	"syscall"

	"github.com/google/go-configfs-tsm/report"
	"github.com/google/go-sev-guest/abi"
)

// ErrThrottled matches a *DeviceError caused by the attestation device or
// the host refusing requests for now (rate limiting, busy firmware).
var ErrThrottled = errors.New("sevsnp: attestation device throttled")

// DeviceError reports a failed request to the attestation device.
type DeviceError struct {
	// Backend is "sev-guest" or "configfs-tsm".
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
	s := "sevsnp: " + e.Backend + " request failed"
	if e.Retryable {
		s += " (retryable)"
	}
	return s + ": " + e.Err.Error()
}

func (e *DeviceError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrThrottled) true for throttling.
func (e *DeviceError) Is(target error) bool { return target == ErrThrottled && e.throttled }

// vmmBusy is the host's "busy, try later" answer in the upper half of the
// guest request's exitinfo2 (Linux SNP_GUEST_VMM_ERR_BUSY, GHCB spec).
const vmmBusy = 2 << 32

// throttled reports whether err (with the firmware/VMM error word fwErr)
// means "try again later".
func throttled(err error, fwErr uint64) bool {
	if fwErr == vmmBusy {
		return true
	}
	if report.GetGenerationErr(err) != nil {
		return true
	}
	for _, e := range []syscall.Errno{syscall.EAGAIN, syscall.EBUSY, syscall.EINTR, syscall.ETIMEDOUT} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// invalidLength reports the VMM's "certificate buffer too small" answer.
func invalidLength(fwErr uint64) bool {
	return fwErr == uint64(abi.GuestRequestInvalidLength)
}
