package tdxtest

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	labi "github.com/google/go-tdx-guest/client/linuxabi"
)

// Faults injects quote-service misbehaviour into the fake providers.
type Faults struct {
	// Busy makes that many next quote requests fail with EBUSY (configfs)
	// or the GetQuote "in flight" status (device).
	Busy atomic.Int64
	// Hang, when non-nil, makes quote requests block until it is closed.
	Hang chan struct{}
	// WrongReportData makes the provider quote a different REPORTDATA.
	WrongReportData atomic.Bool
	// TrailingByte makes the provider append a byte to the quote, which
	// a strict parse refuses.
	TrailingByte atomic.Bool
	// Requests counts quote requests that reached the provider.
	Requests atomic.Int64
}

func (pl *Platform) serve(f *Faults, rd [64]byte) ([]byte, error) {
	if f != nil {
		f.Requests.Add(1)
		if f.Hang != nil {
			<-f.Hang
		}
		if f.Busy.Load() > 0 {
			f.Busy.Add(-1)
			return nil, syscall.EBUSY
		}
		if f.WrongReportData.Load() {
			rd[0] ^= 0xff
		}
	}
	q, err := pl.QuoteFor(rd)
	if err == nil && f != nil && f.TrailingByte.Load() {
		q = append(q, 0)
	}
	return q, err
}

// ConfigFS is a fake configfs-tsm client (configfsi.Client) for the report
// subsystem whose outblob is a quote signed by Platform over the written
// inblob. Unlike go-configfs-tsm's faketsm it returns the provider's raw
// errno (as the kernel does), so throttling can be recognised.
type ConfigFS struct {
	Platform *Platform
	Faults   *Faults
	// Provider is reported in the "provider" attribute (default tdx_guest).
	Provider string

	mu      sync.Mutex
	n       int
	entries map[string]*entry
}

type entry struct {
	gen    uint64
	inblob []byte
}

const reportDir = "/sys/kernel/config/tsm/report"

func (c *ConfigFS) get(name string) (*entry, string, error) {
	dir, attr := path.Split(name)
	e, ok := c.entries[path.Clean(dir)]
	if !ok {
		return nil, "", os.ErrNotExist
	}
	return e, attr, nil
}

// MkdirTemp creates a report entry.
func (c *ConfigFS) MkdirTemp(dir, pattern string) (string, error) {
	if path.Clean(dir) != reportDir {
		return "", fmt.Errorf("tdxtest: no subsystem at %q", dir)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]*entry{}
	}
	c.n++
	p := path.Join(reportDir, pattern+strconv.Itoa(c.n))
	c.entries[p] = &entry{}
	return p, nil
}

// WriteFile writes an attribute (inblob, privlevel).
func (c *ConfigFS) WriteFile(name string, contents []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, attr, err := c.get(name)
	if err != nil {
		return err
	}
	switch attr {
	case "inblob":
		if len(contents) > 64 {
			return syscall.EINVAL
		}
		e.inblob = append([]byte(nil), contents...)
	case "privlevel":
	default:
		return syscall.EACCES
	}
	e.gen++
	return nil
}

// ReadFile reads an attribute (generation, provider, outblob).
func (c *ConfigFS) ReadFile(name string) ([]byte, error) {
	c.mu.Lock()
	e, attr, err := c.get(name)
	if err != nil {
		c.mu.Unlock()
		return nil, err
	}
	gen, in := e.gen, e.inblob
	c.mu.Unlock()
	switch attr {
	case "generation":
		return []byte(strconv.FormatUint(gen, 10) + "\n"), nil
	case "provider":
		if c.Provider != "" {
			return []byte(c.Provider + "\n"), nil
		}
		return []byte("tdx_guest\n"), nil
	case "outblob":
		var rd [64]byte
		copy(rd[:], in)
		return c.Platform.serve(c.Faults, rd)
	}
	return nil, os.ErrNotExist
}

// ReadDir is not supported by the report subsystem.
func (c *ConfigFS) ReadDir(string) ([]os.DirEntry, error) {
	return nil, errors.New("tdxtest: ReadDir not supported")
}

// RemoveAll removes a report entry.
func (c *ConfigFS) RemoveAll(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !strings.HasPrefix(name, reportDir+"/") {
		return os.ErrNotExist
	}
	delete(c.entries, path.Clean(name))
	return nil
}

// Entries returns the number of live report entries (to check cleanup).
func (c *ConfigFS) Entries() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// Device is a fake /dev/tdx_guest: GET_REPORT0 returns a TDREPORT with the
// requested REPORTDATA at offset 128 (REPORTMACSTRUCT), GET_QUOTE returns a
// quote signed by Platform over that REPORTDATA.
type Device struct {
	Platform *Platform
	Faults   *Faults
}

// Ioctl implements the two tdx-guest commands.
func (d *Device) Ioctl(command uintptr, req any) (uintptr, error) {
	switch r := req.(type) {
	case *labi.TdxReportReq:
		if command != labi.IocTdxGetReport {
			return 0, syscall.ENOTTY
		}
		r.TdReport = [labi.TdReportSize]byte{}
		copy(r.TdReport[128:192], r.ReportData[:])
		return 0, nil
	case *labi.TdxQuoteReq:
		if command != labi.IocTdxGetQuote {
			return 0, syscall.ENOTTY
		}
		h, ok := r.Buffer.(*labi.TdxQuoteHdr)
		if !ok || h.InLen != labi.TdReportSize {
			return 0, syscall.EINVAL
		}
		var rd [64]byte
		copy(rd[:], h.Data[128:192])
		q, err := d.Platform.serve(d.Faults, rd)
		if errors.Is(err, syscall.EBUSY) {
			h.Status = 0xffffffffffffffff
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		h.Status, h.OutLen = 0, uint32(copy(h.Data[:], q))
		return 0, nil
	}
	return 0, syscall.EINVAL
}
