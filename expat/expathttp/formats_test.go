package expathttp

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/expat/internal/carriertest"
)

// Capability discovery over HTTP (HeaderFormats on the setup exchange): a
// client accepting none of the server's formats fails before the first
// request, with both lists named, and the server produces no Evidence;
// matching formats (the test kit's, stated by its Formats methods) work.
func TestFormatsOverHTTP(t *testing.T) {
	k := newKit(t)
	var calls atomic.Int32
	scfg := k.serverConfig(false)
	counting := &carriertest.CountingAttester{Inner: scfg.Attester}
	scfg.Attester = counting
	url := serve(t, echo(&calls), k.serverTLS(), scfg)

	c := &http.Client{Transport: newTransport(t, k.clientTLS(), k.clientConfig(false))}
	if _, _, err := get(t, c, context.Background(), url+"/x"); err != nil {
		t.Fatalf("matching formats: %v", err)
	}
	if counting.N.Load() != 1 {
		t.Fatalf("attester calls %d, want 1", counting.N.Load())
	}

	cfg := k.clientConfig(false)
	cfg.AcceptedFormats = []string{cmw.MediaTypeEAR}
	c2 := &http.Client{Transport: newTransport(t, k.clientTLS(), cfg)}
	_, _, err := get(t, c2, context.Background(), url+"/x")
	var fm *expat.FormatMismatchError
	if !errors.As(err, &fm) || !errors.Is(err, expat.ErrNoCommonFormat) {
		t.Fatalf("GET: %v, want a *FormatMismatchError", err)
	}
	if !slices.Equal(fm.Produced, []string{cmw.MediaTypeTestKit}) || !slices.Equal(fm.Accepted, []string{cmw.MediaTypeEAR}) || fm.WeAttest {
		t.Fatalf("lists %q / %q (we attest %v)", fm.Produced, fm.Accepted, fm.WeAttest)
	}
	if counting.N.Load() != 1 {
		t.Fatalf("the server produced Evidence for a client that accepts none of its formats (%d calls)", counting.N.Load())
	}
	if calls.Load() != 1 {
		t.Fatalf("the handler ran %d times, want 1 (the refused client's request must not reach it)", calls.Load())
	}
}
