package expat

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// An Attest whose answer is being verified by a Verifier that ignores ctx
// returns ErrClosed at Close, though its own ctx never ends: the exchange
// model (expat/internal/exchange) bounds the verification by the
// connection's life as well as by the caller's ctx. (Before, Attest
// waited for the Verifier.)
func TestAttestReturnsAtClose(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	check := leakCheck(t)
	sv := newStubborn(t, nil, k.ver)
	sv.block.Store(false)
	srv, cli := tlsPair(t, p, tlsOpts{})
	s, c, serr, cerr := attestedPair(t, srv, cli,
		&Config{Attester: k.att, Certificate: &p.server, PeerRequestInterval: time.Millisecond},
		&Config{RequirePeerAttestation: true, Verifier: sv})
	if serr != nil || cerr != nil {
		t.Fatal(serr, cerr)
	}
	go io.Copy(io.Discard, s)
	sv.block.Store(true)
	errc := make(chan error, 1)
	go func() { _, err := c.Attest(context.Background()); errc <- err }()
	for sv.calls.Load() < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	within(t, "client Close with its Verifier stuck", slack(closeGrace), func() { c.Close() })
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Attest: %v, want ErrClosed", err)
		}
	case <-time.After(slack(closeGrace)):
		t.Fatal("Attest did not return at Close")
	}
	s.Close()
	sv.open()
	check()
}
