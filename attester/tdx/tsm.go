package tdx

import (
	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/report"

	"github.com/attested-tls/go-expat/attester/internal/tsm"
)

// NewTSMAttester returns an Attester that gets quotes through Linux's
// configfs-tsm report interface, using client (linuxtsm.MakeClient() on a
// TDX guest). opts may be nil.
func NewTSMAttester(client configfsi.Client, opts *Options) (*Attester, error) {
	return newAttester(&tsmBackend{c: client}, opts)
}

type tsmBackend struct{ c configfsi.Client }

func (*tsmBackend) name() string { return "configfs-tsm" }

func (b *tsmBackend) quote(rd [64]byte) ([]byte, error) {
	resp, err := tsm.Get(b.c, &report.Request{InBlob: rd[:]})
	if err != nil {
		return nil, err
	}
	if p := string(resp.Provider); p != "tdx_guest\n" && p != "tdx_guest" {
		return nil, &providerError{p}
	}
	return resp.OutBlob, nil
}

type providerError struct{ p string }

func (e *providerError) Error() string {
	return "configfs-tsm provider is " + quoteStr(e.p) + ", not tdx_guest"
}

func quoteStr(s string) string {
	if len(s) > 32 {
		s = s[:32]
	}
	return "\"" + s + "\""
}
