// Package tsm wraps go-configfs-tsm's report.Get for go-expat's TEE
// attesters (SEV-SNP, TDX, CCA), which all obtain Evidence through Linux's
// configfs-tsm report interface.
//
// go-configfs-tsm v0.3.3 formats the client's errors with %v, which loses
// the errno (EAGAIN, EBUSY, ...) that tells a throttled device from a
// broken one. Get keeps the client's first error and returns an error that
// wraps both, so errors.Is(err, syscall.EBUSY) works.
package tsm

import (
	"errors"
	"os"
	"sync"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/report"
)

// Get runs report.Get through c and returns its response. On failure the
// error wraps go-configfs-tsm's error and, when that one lost it, the
// client's own first error.
func Get(c configfsi.Client, req *report.Request) (*report.Response, error) {
	ec := &errnoClient{Client: c}
	resp, err := report.Get(ec, req)
	if err == nil {
		return resp, nil
	}
	if first := ec.firstErr(); first != nil && !errors.Is(err, first) && report.GetGenerationErr(err) == nil {
		return nil, &Error{err: err, client: first}
	}
	return nil, err
}

// Error is a report.Get failure together with the client error behind it.
type Error struct{ err, client error }

func (e *Error) Error() string { return e.err.Error() + " (" + e.client.Error() + ")" }

// Unwrap exposes both errors to errors.Is and errors.As.
func (e *Error) Unwrap() []error { return []error{e.err, e.client} }

// errnoClient remembers the first error of the underlying client.
type errnoClient struct {
	configfsi.Client
	mu    sync.Mutex
	first error
}

func (c *errnoClient) note(err error) error {
	if err != nil {
		c.mu.Lock()
		if c.first == nil {
			c.first = err
		}
		c.mu.Unlock()
	}
	return err
}

func (c *errnoClient) firstErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.first
}

func (c *errnoClient) ReadFile(name string) ([]byte, error) {
	b, err := c.Client.ReadFile(name)
	return b, c.note(err)
}

func (c *errnoClient) WriteFile(name string, contents []byte) error {
	return c.note(c.Client.WriteFile(name, contents))
}

func (c *errnoClient) MkdirTemp(dir, pattern string) (string, error) {
	p, err := c.Client.MkdirTemp(dir, pattern)
	return p, c.note(err)
}

func (c *errnoClient) ReadDir(dirname string) ([]os.DirEntry, error) {
	d, err := c.Client.ReadDir(dirname)
	return d, c.note(err)
}
