package expatquic

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/expat"
)

// Capability discovery over QUIC, as over expat.Conn: the SETUP states the
// formats each side accepts and produces (the test kit's come from its
// Formats methods); a relying party accepting none of the server's formats
// fails at once with the lists named, and the server produces no Evidence.
func TestFormatsOverQUIC(t *testing.T) {
	k := newKit(t)
	ctx := ctxT(t)
	// Matching formats: the ordinary setup (the test kit states its own).
	l := listen(t, k, k.serverConfig(false))
	go l.Accept(ctx)
	c, err := Dial(ctx, l.Addr().String(), k.clientTLS(), nil, k.clientConfig(false))
	if err != nil {
		t.Fatalf("matching formats: %v", err)
	}
	c.Close()

	// The client accepts only EARs.
	scfg := k.serverConfig(false)
	calls := &countingAttester{inner: scfg.Attester}
	scfg.Attester = calls
	l2 := listen(t, k, scfg)
	serr := make(chan error, 1)
	go func() { _, err := l2.Accept(ctx); serr <- err }()
	cfg := k.clientConfig(false)
	cfg.AcceptedFormats = []string{cmw.MediaTypeEAR}
	_, err = Dial(ctx, l2.Addr().String(), k.clientTLS(), nil, cfg)
	var fm *expat.FormatMismatchError
	var e *expat.Error
	switch {
	case errors.As(err, &fm):
		if !slices.Equal(fm.Accepted, []string{cmw.MediaTypeEAR}) || !slices.Equal(fm.Produced, []string{cmw.MediaTypeTestKit}) {
			t.Fatalf("lists %q / %q", fm.Produced, fm.Accepted)
		}
	case errors.As(err, &e) && e.Remote && e.Alert == 40:
		// Learnt from the server's close first.
	default:
		t.Fatalf("Dial: %v, want a format mismatch", err)
	}
	if !errors.Is(err, expat.ErrNoCommonFormat) && !(errors.As(err, &e) && e.Remote) {
		t.Fatalf("Dial: %v", err)
	}
	if n := calls.n.Load(); n != 0 {
		t.Fatalf("the server produced Evidence %d times for a peer that accepts none of its formats", n)
	}
}

// countingAttester counts calls and keeps the inner Attester's formats.
type countingAttester struct {
	inner attester.Attester
	n     atomic.Int32
}

func (a *countingAttester) Attest(ctx context.Context, ch attester.Challenge) ([]byte, error) {
	a.n.Add(1)
	return a.inner.Attest(ctx, ch)
}

func (a *countingAttester) Formats() []string { return a.inner.(expat.Formats).Formats() }
