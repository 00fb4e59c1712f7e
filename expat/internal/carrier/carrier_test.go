package carrier

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/expat/expattest/testkit"
)

func TestPacer(t *testing.T) {
	p := NewPacer(&expat.Config{MaxPeerRequests: 1, PeerRequestInterval: 100 * time.Millisecond})
	ctx := context.Background()
	start := time.Now()
	if err := p.Begin(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Begin(ctx); !errors.Is(err, ErrTooManyRequests) {
		t.Fatalf("second in flight: %v", err)
	}
	p.End()
	if err := p.Begin(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("second start after %v, want at least the interval", d)
	}
	p.End()
	// A turn given up at its ctx's end releases its slot. The interval is
	// long so that however late this runs, the next start is still ahead.
	slow := NewPacer(&expat.Config{MaxPeerRequests: 1, PeerRequestInterval: time.Hour})
	if err := slow.Begin(ctx); err != nil {
		t.Fatal(err)
	}
	slow.End()
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if err := slow.Begin(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting past ctx: %v", err)
	}
	// Had the abandoned turn kept its slot, this would be refused at once
	// (ErrTooManyRequests); it waits for the interval instead.
	short2, cancel2 := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel2()
	if err := slow.Begin(short2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("after an abandoned turn: %v, want to wait for the interval", err)
	}
	// Defaults: expat's (DefaultMaxPeerRequests in progress at once).
	d := NewPacer(&expat.Config{})
	for i := range expat.DefaultMaxPeerRequests {
		if err := d.Begin(ctx); err != nil {
			t.Fatalf("default pacer, request %d: %v", i, err)
		}
	}
	if err := d.Begin(ctx); !errors.Is(err, ErrTooManyRequests) {
		t.Fatalf("default pacer beyond DefaultMaxPeerRequests: %v", err)
	}
}

func TestCheckConfig(t *testing.T) {
	for name, cfg := range map[string]*expat.Config{
		"nil":           nil,
		"zero":          {},
		"verifier only": {Verifier: &testkit.Verifier{}},
		"negative":      {Verifier: &testkit.Verifier{}, RequirePeerAttestation: true, SetupTimeout: -1},
	} {
		if err := CheckConfig("test", cfg, true); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for name, cfg := range map[string]*expat.Config{
		"required":  {Verifier: &testkit.Verifier{}, RequirePeerAttestation: true},
		"on demand": {Verifier: &testkit.Verifier{}, PeerAttestationOnDemand: true},
	} {
		if err := CheckConfig("test", cfg, false); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
