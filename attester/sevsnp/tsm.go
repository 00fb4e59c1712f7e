package sevsnp

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/report"

	"github.com/attested-tls/go-expat/attester/internal/tsm"
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

func (b *tsmBackend) get(rd [64]byte, vmpl uint32, wantCerts bool) ([]byte, []byte, uint64, error) {
	resp, err := tsm.Get(b.c, &report.Request{
		InBlob:     rd[:],
		Privilege:  &report.Privilege{Level: uint(vmpl)},
		GetAuxBlob: wantCerts,
	})
	if err != nil {
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
