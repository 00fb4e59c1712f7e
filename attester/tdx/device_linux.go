//go:build linux

package tdx

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"

	labi "github.com/google/go-tdx-guest/client/linuxabi"
	"golang.org/x/sys/unix"
)

// DefaultDevicePath is where Linux exposes the TDX guest device.
const DefaultDevicePath = "/dev/tdx_guest"

// LinuxDevice is an open TDX guest device. It implements Device.
type LinuxDevice struct {
	mu sync.Mutex
	fd int
}

// OpenDevice opens the TDX guest device at path (DefaultDevicePath if
// empty). It fails on machines that are not TDX guests.
func OpenDevice(path string) (*LinuxDevice, error) {
	if path == "" {
		path = DefaultDevicePath
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("tdx: opening %s: %w", path, err)
	}
	return &LinuxDevice{fd: fd}, nil
}

// Close closes the device.
func (d *LinuxDevice) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fd < 0 {
		return nil
	}
	err := unix.Close(d.fd)
	d.fd = -1
	return err
}

// Ioctl issues a tdx-guest ioctl; req must be a *linuxabi.TdxReportReq or
// a *linuxabi.TdxQuoteReq.
func (d *LinuxDevice) Ioctl(command uintptr, req any) (uintptr, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fd < 0 {
		return 0, errors.New("tdx: device is closed")
	}
	switch r := req.(type) {
	case *labi.TdxReportReq:
		ret, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(d.fd), command, uintptr(unsafe.Pointer(r)))
		if errno != 0 {
			return 0, errno
		}
		return ret, nil
	case *labi.TdxQuoteReq:
		conv := r.ABI()
		ret, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(d.fd), command, uintptr(conv.Pointer()))
		if err := conv.Finish(r); err != nil {
			return 0, fmt.Errorf("finishing quote request: %w", err)
		}
		if errno != 0 {
			return 0, errno
		}
		return ret, nil
	}
	return 0, fmt.Errorf("tdx: unexpected ioctl argument %T", req)
}
