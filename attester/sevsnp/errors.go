package sevsnp

import (
	"github.com/google/go-sev-guest/abi"

	"github.com/attested-tls/go-expat/attester/internal/device"
)

// Failures of the device are *attester.DeviceError (Attester "sevsnp");
// errors.Is(err, attester.ErrThrottled) tells throttling apart.

// vmmBusy is the host's "busy, try later" answer in the upper half of the
// guest request's exitinfo2 (Linux SNP_GUEST_VMM_ERR_BUSY, GHCB spec).
const vmmBusy = 2 << 32

// throttled reports whether err (with the firmware/VMM error word fwErr)
// means "try again later".
func throttled(err error, fwErr uint64) bool {
	return fwErr == vmmBusy || device.Throttled(err)
}

// invalidLength reports the VMM's "certificate buffer too small" answer.
func invalidLength(fwErr uint64) bool {
	return fwErr == uint64(abi.GuestRequestInvalidLength)
}
