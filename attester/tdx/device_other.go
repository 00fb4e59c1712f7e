//go:build !linux

package tdx

import "errors"

// DefaultDevicePath is where Linux exposes the TDX guest device.
const DefaultDevicePath = "/dev/tdx_guest"

// LinuxDevice is unavailable outside Linux.
type LinuxDevice struct{}

// OpenDevice always fails outside Linux.
func OpenDevice(string) (*LinuxDevice, error) {
	return nil, errors.New("tdx: the TDX guest device exists only on Linux")
}

// Close does nothing.
func (*LinuxDevice) Close() error { return nil }

// Ioctl always fails outside Linux.
func (*LinuxDevice) Ioctl(uintptr, any) (uintptr, error) {
	return 0, errors.New("tdx: the TDX guest device exists only on Linux")
}
