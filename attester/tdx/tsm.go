package tdx

import (
	"os"
	"sync"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/report"
)

// NewTSMAttester returns an Attester that gets quotes through Linux's
// configfs-tsm report interface, using client (linuxtsm.MakeClient() on a
// TDX guest). opts may be nil.
func NewTSMAttester(client configfsi.Client, opts *Options) (*Attester, error) {
	return newAttester(&tsmBackend{c: client}, opts)
}

type tsmBackend struct{ c configfsi.Client }

func (*tsmBackend) name() string { return "configfs-tsm" }

// errnoClient remembers the first error of the underlying client:
// go-configfs-tsm formats them with %v, which loses the errno needed to
// recognise throttling.
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

func (b *tsmBackend) quote(rd [64]byte) ([]byte, error) {
	ec := &errnoClient{Client: b.c}
	resp, err := report.Get(ec, &report.Request{InBlob: rd[:]})
	if err != nil {
		if ec.first != nil && report.GetGenerationErr(err) == nil {
			return nil, &tsmError{err: err, errno: ec.first}
		}
		return nil, err
	}
	if p := string(resp.Provider); p != "tdx_guest\n" && p != "tdx_guest" {
		return nil, &providerError{p}
	}
	return resp.OutBlob, nil
}

type tsmError struct{ err, errno error }

func (e *tsmError) Error() string { return e.err.Error() }

// Unwrap exposes both the report error and the client's own error (with
// its errno).
func (e *tsmError) Unwrap() []error { return []error{e.err, e.errno} }

type providerError struct{ p string }

func (e *providerError) Error() string {
	return "tdx: configfs-tsm provider is " + quoteStr(e.p) + ", not tdx_guest"
}

func quoteStr(s string) string {
	if len(s) > 32 {
		s = s[:32]
	}
	return "\"" + s + "\""
}
