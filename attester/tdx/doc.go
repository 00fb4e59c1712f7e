// Package tdx is the Intel TDX attester of go-expat: it obtains a TD quote
// whose REPORTDATA is the challenge's ReportData64 value,
// SHA-512(binding || AIK_pub_hash), and wraps it in a CMW record of media
// type cmw.MediaTypeTDX (the CBOR structure is documented in package
// attester/tdx/wire).
//
// Two quote sources exist, and the caller picks one explicitly; there is
// no auto-detection and no fallback from one to the other:
//
//   - NewTSMAttester: Linux's configfs-tsm report interface
//     (/sys/kernel/config/tsm/report), through a go-configfs-tsm client
//     (linuxtsm.MakeClient() on a real guest, a fake in tests);
//   - NewDeviceAttester: the /dev/tdx_guest ioctls (TDX_CMD_GET_REPORT0 then
//     the GetQuote hypercall through TDX_CMD_GET_QUOTE on kernels that still
//     provide it), through any Device (OpenDevice on Linux).
//
// Quote generation goes to the host's quoting enclave and can be slow or
// throttled. Attest retries "busy" answers (EBUSY, EAGAIN, EINTR,
// ETIMEDOUT, a configfs generation race, the GetQuote "in flight" status)
// with bounded exponential backoff, never past ctx's deadline, and bounds
// the requests in flight (a hung device holds its slot; later callers wait
// for it only as long as their ctx allows). Failures are
// *attester.DeviceError; errors.Is(err, attester.ErrThrottled) tells
// throttling apart; the policy is Options.Retry. Device calls cannot
// be interrupted: a request abandoned at ctx's deadline finishes in the
// background, holding its slot (MaxInFlight) until the device answers.
//
// This package imports neither go-tdx-guest's client (it registers a
// global command-line flag) nor anything that logs: it only uses the
// kernel ABI definitions of go-tdx-guest/client/linuxabi.
package tdx
