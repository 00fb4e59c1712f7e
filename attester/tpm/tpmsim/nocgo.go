//go:build !cgo

// Package tpmsim would be a Transport to the in-process TPM 2.0 simulator,
// but this build has no cgo: the simulator is C code. Build with
// CGO_ENABLED=1, a C compiler and the OpenSSL headers (Debian: gcc,
// libssl-dev).
package tpmsim

import (
	"context"
	"errors"
)

// ErrNoCgo is returned by Open in builds without cgo.
var ErrNoCgo = errors.New("tpmsim: the TPM simulator needs cgo (CGO_ENABLED=1, gcc and libssl-dev)")

// Simulator is unavailable in this build.
type Simulator struct{}

// Open returns ErrNoCgo.
func Open() (*Simulator, error) { return nil, ErrNoCgo }

// Send returns ErrNoCgo.
func (*Simulator) Send(context.Context, []byte) ([]byte, error) { return nil, ErrNoCgo }

// Reboot returns ErrNoCgo.
func (*Simulator) Reboot() error { return ErrNoCgo }

// Close does nothing.
func (*Simulator) Close() error { return nil }
