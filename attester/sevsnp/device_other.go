//go:build !linux

package sevsnp

import "errors"

// DefaultDevicePath is where Linux exposes the SEV guest device.
const DefaultDevicePath = "/dev/sev-guest"

// LinuxDevice is an open SEV guest device (Linux only).
type LinuxDevice struct{}

// OpenDevice fails: the SEV guest device exists only on Linux.
func OpenDevice(string) (*LinuxDevice, error) {
	return nil, errors.New("sevsnp: the SEV guest device is only available on Linux")
}

// Close does nothing.
func (*LinuxDevice) Close() error { return nil }

// Ioctl fails.
func (*LinuxDevice) Ioctl(uintptr, any) (uintptr, error) {
	return 0, errors.New("sevsnp: the SEV guest device is only available on Linux")
}
