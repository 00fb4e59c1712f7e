package sevsnp

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/report"
)

// TSMProvider is the configfs-tsm provider name of SEV-SNP guests.
const TSMProvider = "sev_guest"

// NewTSMAttester returns an Attester that requests reports through Linux's
// configfs-tsm report interface with client (linuxtsm.MakeClient() on a
// guest; any configfsi.Client in tests). The provider must be "sev_guest".
func NewTSMAttester(client configfsi.Client, opts *Options) (*Attester, error) {
	if client == nil {
		return nil, errors.New("sevsnp: nil configfs-tsm client")
	}
	return newAttester(&tsmBackend{c: client}, opts)
}

type tsmBackend struct{ c configfsi.Client }

func (*tsmBackend) name() string { return "configfs-tsm" }

// errnoClient keeps the first error of the underlying client, because
// go-configfs-tsm v0.3.3 formats it with %v and loses the errno.
type errnoClient struct {
	configfsi.Client
	first error
}

func (c *errnoClient) note(err error) error {
	if err != nil && c.first == nil {
		c.first = err
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

func (b *tsmBackend) get(rd [64]byte, vmpl uint32, wantCerts bool) ([]byte, []byte, uint64, error) {
	c := &errnoClient{Client: b.c}
	resp, err := report.Get(c, &report.Request{
		InBlob:     rd[:],
		Privilege:  &report.Privilege{Level: uint(vmpl)},
		GetAuxBlob: wantCerts,
	})
	if err != nil {
		if c.first != nil && !errors.Is(err, c.first) && report.GetGenerationErr(err) == nil {
			err = fmt.Errorf("%w (%v)", c.first, err)
		}
		if errors.Is(err, os.ErrNotExist) && wantCerts {
			// Kernels without auxblob support: retry once without it.
			return b.get(rd, vmpl, false)
		}
		return nil, nil, 0, err
	}
	if p := strings.TrimSpace(resp.Provider); p != TSMProvider {
		return nil, nil, 0, fmt.Errorf("configfs-tsm provider is %q, want %q", p, TSMProvider)
	}
	return resp.OutBlob, resp.AuxBlob, 0, nil
}
