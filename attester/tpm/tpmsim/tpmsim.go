//go:build cgo

// Package tpmsim is a Transport to the Microsoft TPM 2.0 reference
// implementation, compiled into this process by
// github.com/google/go-tpm-tools/simulator. It is for tests, examples and
// development: its seeds live in process memory, so nothing it signs proves
// anything about a machine.
//
// Building it needs cgo, a C compiler and the OpenSSL headers (Debian:
// gcc, libssl-dev); the first build takes about a minute. Built without
// cgo, Open returns ErrNoCgo. Only one simulator exists per process: Open
// blocks until the previous one is closed, so tests that use it must not run
// in parallel.
package tpmsim

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/google/go-tpm-tools/simulator"

	"github.com/attested-tls/go-expat/attester/tpm"
)

// Simulator is an open, started simulator. It implements tpm.Transport.
type Simulator struct {
	mu     sync.Mutex
	sim    *simulator.Simulator
	closed bool
	buf    []byte
}

var _ tpm.Transport = (*Simulator)(nil)

// ErrNoCgo is what Open returns in builds without cgo; it is never
// returned by this build.
var ErrNoCgo = errors.New("tpmsim: the TPM simulator needs cgo (CGO_ENABLED=1, gcc and libssl-dev)")

// Open manufactures and starts a fresh simulated TPM (new seeds, empty NV,
// PCRs reset). It blocks while another Simulator of this process is open.
func Open() (*Simulator, error) {
	sim, err := simulator.Get()
	if err != nil {
		return nil, fmt.Errorf("tpmsim: %w", err)
	}
	return &Simulator{sim: sim, buf: make([]byte, tpm.MaxResponseSize)}, nil
}

// Send runs one command. The simulator runs it synchronously; ctx is
// checked before it starts.
func (s *Simulator) Send(ctx context.Context, cmd []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("tpmsim: closed")
	}
	if _, err := s.sim.Write(cmd); err != nil {
		return nil, fmt.Errorf("tpmsim: %w", err)
	}
	n, err := s.sim.Read(s.buf)
	if err != nil {
		return nil, fmt.Errorf("tpmsim: %w", err)
	}
	out := make([]byte, n)
	copy(out, s.buf[:n])
	return out, nil
}

// Reboot resets the simulated platform as a host reboot would: PCRs and
// transient objects are cleared, seeds and NV are kept.
func (s *Simulator) Reboot() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("tpmsim: closed")
	}
	return s.sim.Reset()
}

// Close shuts the simulator down, letting another Open proceed.
func (s *Simulator) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.sim.Close()
}
