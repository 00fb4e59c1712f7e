package cca_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/faketsm"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/attester/cca"
	"github.com/attested-tls/go-expat/attester/cca/ccatest"
	"github.com/attested-tls/go-expat/attester/cca/wire"
	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/verifier"
	vcca "github.com/attested-tls/go-expat/verifier/cca"
)

func challenge(seed string) attester.Challenge {
	b := sha256.Sum256([]byte("binding " + seed))
	k := sha256.Sum256([]byte("aik " + seed))
	return attester.Challenge{Hash: crypto.SHA256, Binding: b[:], AIKPubHash: k[:]}
}

func localVerifier(t *testing.T, p *ccatest.Platform) *vcca.Verifier {
	t.Helper()
	v, err := vcca.New(&vcca.Config{
		TrustedKeys: []vcca.TrustedKey{{Name: "test-only CPAK", Key: p.CPAK()}},
		Policy:      vcca.Policy{RIMs: [][]byte{p.Claims.RIM}, AcceptAnySoftware: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestAttestVerifies(t *testing.T) {
	p, err := ccatest.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	v := localVerifier(t, p)
	for _, f := range []cca.Format{cca.CBOR, cca.JSON} {
		a, err := cca.NewTSMAttester(p.Client(), &cca.Options{Format: f})
		if err != nil {
			t.Fatal(err)
		}
		ch := challenge("c1")
		b, err := a.Attest(context.Background(), ch)
		if err != nil {
			t.Fatalf("format %d: %v", f, err)
		}
		c, err := cmw.Decode(b, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.Format().IsJSON() != (f == cca.JSON) {
			t.Fatalf("format %d: got CMW format %v", f, c.Format())
		}
		rec, _ := c.Record()
		if rec.MediaType != cmw.MediaTypeCCA || rec.Indicator != cmw.Evidence {
			t.Fatalf("record %q %v", rec.MediaType, rec.Indicator)
		}
		if _, err := v.Verify(context.Background(), b, &verifier.Expected{Challenge: ch}); err != nil {
			t.Fatalf("format %d: Verify: %v", f, err)
		}
		// The same Evidence does not verify for another connection (T1).
		_, err = v.Verify(context.Background(), b, &verifier.Expected{Challenge: challenge("c2")})
		var re *verifier.RejectedError
		if !errors.As(err, &re) || re.Check != verifier.CheckChallenge {
			t.Fatalf("replay on another connection: %v", err)
		}
	}
}

// ignoringClient answers every request with a token for a fixed challenge.
func ignoringClient(p *ccatest.Platform) configfsi.Client {
	rs := faketsm.ReportV7(0)
	rs.ReadAttr = func(e *faketsm.ReportEntry, attr string) ([]byte, error) {
		switch attr {
		case "provider":
			return []byte(ccatest.Provider + "\n"), nil
		case "outblob":
			return p.Token(make([]byte, 64))
		}
		return nil, os.ErrNotExist
	}
	return &faketsm.Client{Subsystems: map[string]configfsi.Client{"report": rs}}
}

func garbageClient() configfsi.Client {
	rs := faketsm.ReportV7(0)
	rs.ReadAttr = func(e *faketsm.ReportEntry, attr string) ([]byte, error) {
		switch attr {
		case "provider":
			return []byte(ccatest.Provider + "\n"), nil
		case "outblob":
			return []byte{0xd9, 0x01, 0x8f, 0xa2, 0x01}, nil
		}
		return nil, os.ErrNotExist
	}
	return &faketsm.Client{Subsystems: map[string]configfsi.Client{"report": rs}}
}

func failingClient() configfsi.Client {
	rs := faketsm.ReportV7(0)
	rs.ReadAttr = func(e *faketsm.ReportEntry, attr string) ([]byte, error) {
		return nil, syscall.EBUSY
	}
	return &faketsm.Client{Subsystems: map[string]configfsi.Client{"report": rs}}
}

func TestAttestFailures(t *testing.T) {
	p, err := ccatest.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name   string
		client configfsi.Client
		ctx    context.Context
		ch     attester.Challenge
		is     error
	}{
		{name: "other provider (fake echoes)", client: &faketsm.Client{Subsystems: map[string]configfsi.Client{"report": faketsm.ReportV7(0)}}, is: cca.ErrProvider},
		{name: "provider ignores the challenge", client: ignoringClient(p)},
		{name: "provider returns garbage", client: garbageClient(), is: wire.ErrMalformed},
		{name: "device error", client: failingClient()},
		{name: "canceled context", client: p.Client(), ctx: canceled, is: context.Canceled},
		{name: "invalid challenge", client: p.Client(), ch: attester.Challenge{Hash: crypto.SHA256}, is: attester.ErrInvalidChallenge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := cca.NewTSMAttester(tc.client, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			ch := tc.ch
			if ch.Hash == 0 {
				ch = challenge("x")
			}
			b, err := a.Attest(ctx, ch)
			if err == nil || b != nil {
				t.Fatalf("Attest succeeded: %x", b)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("got %v, want %v", err, tc.is)
			}
			t.Log(err)
		})
	}
}

// slowClient blocks every read until release is closed.
type slowClient struct {
	configfsi.Client
	release chan struct{}
}

func (s slowClient) ReadFile(name string) ([]byte, error) {
	<-s.release
	return s.Client.ReadFile(name)
}

func TestAttestHonoursDeadline(t *testing.T) {
	p, err := ccatest.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	sc := slowClient{Client: p.Client(), release: make(chan struct{})}
	defer close(sc.release)
	a, err := cca.NewTSMAttester(sc, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = a.Attest(ctx, challenge("slow"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("returned after %v", d)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	if _, err := cca.NewTSMAttester(&faketsm.Client{}, &cca.Options{Format: 7}); err == nil {
		t.Fatal("accepted format 7")
	}
	if _, err := cca.NewTSMAttester(nil, nil); err == nil {
		t.Fatal("accepted a nil client")
	}
}

// busyClient is p's client but that its first busy reads of outblob fail
// with EBUSY, as the kernel's would.
type busyClient struct {
	configfsi.Client
	busy  int32
	reads atomic.Int32
}

func (c *busyClient) ReadFile(name string) ([]byte, error) {
	if strings.HasSuffix(name, "/outblob") && c.reads.Add(1) <= c.busy {
		return nil, syscall.EBUSY
	}
	return c.Client.ReadFile(name)
}

// T27: a throttled provider is retried under Options.Retry; one that stays
// throttled ends in a retryable *attester.DeviceError after MaxAttempts
// requests, and a canceled backoff returns at once.
func TestAttestRetriesThrottling(t *testing.T) {
	p, err := ccatest.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	fast := &cca.Options{Retry: attester.RetryPolicy{MaxAttempts: 3, Initial: time.Millisecond, Max: 2 * time.Millisecond}}

	c := &busyClient{Client: p.Client(), busy: 2}
	a, err := cca.NewTSMAttester(c, fast)
	if err != nil {
		t.Fatal(err)
	}
	ch := challenge("busy")
	b, err := a.Attest(context.Background(), ch)
	if err != nil {
		t.Fatalf("two EBUSY then a token: %v", err)
	}
	if n := c.reads.Load(); n != 3 {
		t.Errorf("%d outblob reads, want 3", n)
	}
	if _, err := localVerifier(t, p).Verify(context.Background(), b, &verifier.Expected{Challenge: ch}); err != nil {
		t.Fatal(err)
	}

	c = &busyClient{Client: p.Client(), busy: 1000}
	a, _ = cca.NewTSMAttester(c, fast)
	_, err = a.Attest(context.Background(), ch)
	var de *attester.DeviceError
	if !errors.As(err, &de) || !de.Retryable || !de.Throttled || de.Attempts != 3 || de.Attester != "cca" ||
		!errors.Is(err, attester.ErrThrottled) || !errors.Is(err, syscall.EBUSY) {
		t.Fatalf("got %v (%+v), want a retryable throttled DeviceError after 3 attempts", err, de)
	}
	if n := c.reads.Load(); n != 3 {
		t.Errorf("%d outblob reads, want 3", n)
	}

	c = &busyClient{Client: p.Client(), busy: 1000}
	a, _ = cca.NewTSMAttester(c, &cca.Options{Retry: attester.RetryPolicy{MaxAttempts: 100, Initial: time.Hour}})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = a.Attest(ctx, ch)
	if !errors.As(err, &de) || !de.Retryable || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, syscall.EBUSY) {
		t.Fatalf("got %v, want a retryable DeviceError with the deadline and the last EBUSY", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("returned after %v", d)
	}
}
