//go:build linux

package sevsnp

import (
	"errors"
	"fmt"
	"sync"

	labi "github.com/google/go-sev-guest/client/linuxabi"
	"golang.org/x/sys/unix"
)

// DefaultDevicePath is where Linux exposes the SEV guest device.
const DefaultDevicePath = "/dev/sev-guest"

// LinuxDevice is an open SEV guest device. It implements Device.
type LinuxDevice struct {
	mu   sync.Mutex
	fd   int
	open bool
}

// OpenDevice opens the SEV guest device at path (DefaultDevicePath if
// empty). It fails on machines that are not SEV-SNP guests.
func OpenDevice(path string) (*LinuxDevice, error) {
	if path == "" {
		path = DefaultDevicePath
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("sevsnp: opening %s: %w", path, err)
	}
	return &LinuxDevice{fd: fd, open: true}, nil
}

// Close closes the device.
func (d *LinuxDevice) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.open {
		return nil
	}
	d.open = false
	return unix.Close(d.fd)
}

// Ioctl issues a sev-guest ioctl; req must be a *linuxabi.SnpUserGuestRequest.
func (d *LinuxDevice) Ioctl(command uintptr, req any) (uintptr, error) {
	sreq, ok := req.(*labi.SnpUserGuestRequest)
	if !ok {
		return 0, fmt.Errorf("sevsnp: unexpected ioctl argument %T", req)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.open {
		return 0, errors.New("sevsnp: device is not open")
	}
	conv := sreq.ABI()
	ret, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(d.fd), command, uintptr(conv.Pointer()))
	if err := conv.Finish(sreq); err != nil {
		return 0, fmt.Errorf("sevsnp: finishing guest request: %w", err)
	}
	// Linux writes the firmware error word back only with EIO (earlier
	// kernels left it uninitialized otherwise), except the VMM's answers.
	if errno != unix.EIO && sreq.FwErr>>32 == 0 {
		sreq.FwErr = 0
	}
	if errno != 0 {
		return 0, errno
	}
	return ret, nil
}
