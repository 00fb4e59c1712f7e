package tdx_test

import (
	"context"
	"fmt"
	"time"

	"github.com/attested-tls/go-expat/attester/tdx"
	"github.com/attested-tls/go-expat/attester/tdx/tdxtest"
)

// A TDX attester over configfs-tsm. On a real guest the client is
// linuxtsm.MakeClient(); here a test-only fake signs with a test PCK chain.
func ExampleNewTSMAttester() {
	pki, _ := tdxtest.NewPKI(time.Now())
	pl, _ := pki.NewPlatform(tdxtest.DefaultPCKOptions())
	a, err := tdx.NewTSMAttester(&tdxtest.ConfigFS{Platform: pl}, nil)
	if err != nil {
		panic(err)
	}
	ev, err := a.Evidence(context.Background(), [64]byte{1, 2, 3})
	if err != nil {
		panic(err)
	}
	fmt.Println(len(ev.Quote) > 1000, ev.Quote[0])
	// Output: true 4
}
