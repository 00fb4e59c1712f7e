package tdx

import (
	"errors"
	"fmt"

	labi "github.com/google/go-tdx-guest/client/linuxabi"
)

// Device issues ioctls to a TDX guest device. *LinuxDevice (OpenDevice)
// implements it, and so does go-tdx-guest's client.LinuxDevice.
type Device interface {
	Ioctl(command uintptr, req any) (uintptr, error)
}

// NewDeviceAttester returns an Attester that gets quotes through the
// /dev/tdx_guest ioctls. opts may be nil.
func NewDeviceAttester(d Device, opts *Options) (*Attester, error) {
	if d == nil {
		return nil, errors.New("tdx: nil device")
	}
	return newAttester(&deviceBackend{d: d}, opts)
}

type deviceBackend struct{ d Device }

func (*deviceBackend) name() string { return "tdx-guest" }

// GetQuote status words (GHCI, TDG.VP.VMCALL<GetQuote>).
const (
	statusInFlight    = 0xffffffffffffffff
	statusUnavailable = 0x8000000000000001
)

func (b *deviceBackend) quote(rd [64]byte) ([]byte, error) {
	rep := &labi.TdxReportReq{ReportData: rd}
	ret, err := b.d.Ioctl(labi.IocTdxGetReport, rep)
	if err != nil {
		return nil, fmt.Errorf("TDX_CMD_GET_REPORT0: %w", err)
	}
	if ret != labi.TdxAttestSuccess {
		return nil, fmt.Errorf("TDX_CMD_GET_REPORT0 returned %d", ret)
	}
	hdr := &labi.TdxQuoteHdr{Version: 1, InLen: labi.TdReportSize}
	copy(hdr.Data[:], rep.TdReport[:])
	req := &labi.TdxQuoteReq{Buffer: hdr, Length: labi.ReqBufSize}
	ret, err = b.d.Ioctl(labi.IocTdxGetQuote, req)
	if err != nil {
		return nil, fmt.Errorf("TDX_CMD_GET_QUOTE: %w", err)
	}
	if ret != labi.TdxAttestSuccess {
		return nil, fmt.Errorf("TDX_CMD_GET_QUOTE returned %d", ret)
	}
	switch hdr.Status {
	case 0:
	case statusInFlight:
		return nil, errInFlight
	case statusUnavailable:
		return nil, errors.New("quote service unavailable on this host")
	default:
		return nil, fmt.Errorf("GetQuote status %#x", hdr.Status)
	}
	// Bound before slicing: OutLen comes from the host.
	if hdr.OutLen == 0 || hdr.OutLen > uint32(len(hdr.Data)) {
		return nil, fmt.Errorf("GetQuote returned length %d", hdr.OutLen)
	}
	return append([]byte(nil), hdr.Data[:hdr.OutLen]...), nil
}
