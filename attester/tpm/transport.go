package tpm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/google/go-tpm/tpm2/transport"
)

// MaxResponseSize bounds a TPM response read from a transport. TPMs announce
// TPM_PT_MAX_RESPONSE_SIZE, commonly 4096; a larger claimed size is refused
// before anything is allocated.
const MaxResponseSize = 1 << 16

const headerSize = 10 // tag u16 | size u32 | code u32 (Part 1, Section 18)

// OpenDevice opens a TPM character device: /dev/tpmrm0 (the kernel's
// resource manager, which may be shared with other processes) or /dev/tpm0
// (exclusive; then this process must flush what it loads, which this
// package does). The path is the caller's choice: nothing is detected.
func OpenDevice(path string) (Transport, error) {
	if path == "" {
		return nil, errors.New("tpm: no device path")
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("tpm: open device: %w", err)
	}
	if fi.Mode()&os.ModeDevice == 0 {
		return nil, fmt.Errorf("tpm: open device: %s is not a device", path)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("tpm: open device: %w", err)
	}
	return &deviceTransport{f: f}, nil
}

type deviceTransport struct {
	f *os.File
}

func (d *deviceTransport) Send(ctx context.Context, cmd []byte) ([]byte, error) {
	// Deadlines work only where the driver supports poll; elsewhere Conn's
	// own watchdog returns to the caller.
	stop := context.AfterFunc(ctx, func() { _ = d.f.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := d.f.Write(cmd); err != nil {
		return nil, err
	}
	// The driver returns a whole response in one read.
	buf := make([]byte, MaxResponseSize)
	n, err := d.f.Read(buf)
	if err != nil {
		return nil, err
	}
	return checkResponse(buf[:n])
}

func (d *deviceTransport) Close() error { return d.f.Close() }

// checkResponse verifies that rsp is exactly one response as its header
// announces.
func checkResponse(rsp []byte) ([]byte, error) {
	if len(rsp) < headerSize {
		return nil, fmt.Errorf("response of %d bytes is shorter than its header", len(rsp))
	}
	if size := binary.BigEndian.Uint32(rsp[2:6]); size != uint32(len(rsp)) {
		return nil, fmt.Errorf("response header claims %d bytes, got %d", size, len(rsp))
	}
	return rsp, nil
}

// DialSwtpm connects to swtpm's TPM command socket, which carries raw TPM
// commands and responses (no Microsoft-simulator framing, no platform
// PowerOn): network is "tcp" (swtpm --server type=tcp,port=P) or "unix"
// (--server type=unixio,path=F). swtpm must already be initialised and
// started (swtpm --flags not-need-init,startup-clear, or TPM2_Startup sent
// by the caller); its control channel is not used.
func DialSwtpm(ctx context.Context, network, address string) (Transport, error) {
	if network != "tcp" && network != "unix" {
		return nil, fmt.Errorf("tpm: swtpm network %q is neither tcp nor unix", network)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, fmt.Errorf("tpm: dial swtpm: %w", err)
	}
	return &streamTransport{c: c}, nil
}

type streamTransport struct {
	c net.Conn
}

func (s *streamTransport) Send(ctx context.Context, cmd []byte) ([]byte, error) {
	stop := context.AfterFunc(ctx, func() { _ = s.c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := s.c.Write(cmd); err != nil {
		return nil, err
	}
	var hdr [headerSize]byte
	if _, err := io.ReadFull(s.c, hdr[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(hdr[2:6])
	if size < headerSize || size > MaxResponseSize {
		return nil, fmt.Errorf("response header claims %d bytes", size)
	}
	rsp := make([]byte, size)
	copy(rsp, hdr[:])
	if _, err := io.ReadFull(s.c, rsp[headerSize:]); err != nil {
		return nil, err
	}
	return rsp, nil
}

func (s *streamTransport) Close() error { return s.c.Close() }

// FromGoTPM adapts a go-tpm transport (for example one of
// github.com/google/go-tpm/tpm2/transport's) to Transport. Such transports
// take no context; Conn still returns at the caller's deadline, and Close
// unblocks the abandoned command where the transport supports it.
func FromGoTPM(t transport.TPMCloser) Transport {
	return &goTPM{t: t}
}

type goTPM struct {
	mu sync.Mutex
	t  transport.TPMCloser
}

func (g *goTPM) Send(_ context.Context, cmd []byte) ([]byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	rsp, err := g.t.Send(cmd)
	if err != nil {
		return nil, err
	}
	return checkResponse(rsp)
}

func (g *goTPM) Close() error { return g.t.Close() }
