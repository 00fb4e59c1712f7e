package tdx_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/attester/tdx"
	"github.com/attested-tls/go-expat/attester/tdx/tdxtest"
	"github.com/attested-tls/go-expat/attester/tdx/wire"
	expatcmw "github.com/attested-tls/go-expat/cmw"
	"github.com/veraison/cmw"
)

func platform(t testing.TB) *tdxtest.Platform {
	t.Helper()
	pki, err := tdxtest.NewPKI(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pl, err := pki.NewPlatform(tdxtest.DefaultPCKOptions())
	if err != nil {
		t.Fatal(err)
	}
	return pl
}

func challenge(s string) attester.Challenge {
	b := sha256.Sum256([]byte("binding " + s))
	k := sha256.Sum256([]byte("aik " + s))
	return attester.Challenge{Hash: crypto.SHA256, Binding: b[:], AIKPubHash: k[:]}
}

func fast() *tdx.Options {
	return &tdx.Options{Retry: attester.RetryPolicy{MaxAttempts: 3, Initial: time.Millisecond, Max: 2 * time.Millisecond}}
}

// quoteOf decodes a CMW produced by Attest down to the raw quote.
func quoteOf(t *testing.T, b []byte) []byte {
	t.Helper()
	var c cmw.CMW
	if err := c.Deserialize(b); err != nil {
		t.Fatalf("CMW: %v", err)
	}
	mt, _ := c.GetMonadType()
	if mt != expatcmw.MediaTypeTDX {
		t.Fatalf("media type %q", mt)
	}
	ind, _ := c.GetMonadIndicator()
	if !ind.Has(cmw.Evidence) {
		t.Fatalf("indicator %v", ind)
	}
	v, _ := c.GetMonadValue()
	ev, err := wire.Parse(v)
	if err != nil {
		t.Fatal(err)
	}
	return ev.Quote
}

func TestAttestCarriesChallenge(t *testing.T) {
	pl := platform(t)
	fs := &tdxtest.ConfigFS{Platform: pl}
	tsm, err := tdx.NewTSMAttester(fs, fast())
	if err != nil {
		t.Fatal(err)
	}
	dev, err := tdx.NewDeviceAttester(&tdxtest.Device{Platform: pl}, fast())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		a    *tdx.Attester
	}{{"configfs-tsm", tsm}, {"tdx-guest", dev}} {
		t.Run(tc.name, func(t *testing.T) {
			ch := challenge(tc.name)
			out, err := tc.a.Attest(context.Background(), ch)
			if err != nil {
				t.Fatal(err)
			}
			q, err := wire.ParseQuote(quoteOf(t, out))
			if err != nil {
				t.Fatal(err)
			}
			if rd, _ := ch.ReportData64(); q.Body.ReportData != rd {
				t.Fatal("REPORTDATA is not ch.ReportData64()")
			}
		})
	}
	if fs.Entries() != 0 {
		t.Fatalf("%d configfs entries left behind", fs.Entries())
	}
}

func TestAttestRejectsBadChallenge(t *testing.T) {
	a, _ := tdx.NewTSMAttester(&tdxtest.ConfigFS{Platform: platform(t)}, nil)
	_, err := a.Attest(context.Background(), attester.Challenge{Hash: crypto.SHA256, Binding: []byte{1}})
	if !errors.Is(err, attester.ErrInvalidChallenge) {
		t.Fatalf("err = %v", err)
	}
}

// T27: a throttled quote service is retried with backoff, a bounded number
// of times, and the final error is typed and retryable.
func TestThrottled(t *testing.T) {
	pl := platform(t)
	for _, tc := range []struct {
		name      string
		busy      int64
		wantErr   bool
		wantCalls int64
	}{
		{"busy twice then ok", 2, false, 3},
		{"always busy", 100, true, 3},
	} {
		for _, backend := range []string{"configfs-tsm", "tdx-guest"} {
			t.Run(tc.name+"/"+backend, func(t *testing.T) {
				f := &tdxtest.Faults{}
				f.Busy.Store(tc.busy)
				var a *tdx.Attester
				if backend == "configfs-tsm" {
					a, _ = tdx.NewTSMAttester(&tdxtest.ConfigFS{Platform: pl, Faults: f}, fast())
				} else {
					a, _ = tdx.NewDeviceAttester(&tdxtest.Device{Platform: pl, Faults: f}, fast())
				}
				_, err := a.Attest(context.Background(), challenge("x"))
				if got := f.Requests.Load(); got != tc.wantCalls {
					t.Fatalf("requests = %d, want %d", got, tc.wantCalls)
				}
				if !tc.wantErr {
					if err != nil {
						t.Fatal(err)
					}
					return
				}
				var de *attester.DeviceError
				if !errors.As(err, &de) || !de.Retryable || de.Attempts != 3 || !errors.Is(err, attester.ErrThrottled) {
					t.Fatalf("err = %#v", err)
				}
			})
		}
	}
}

// T27: a hung quote provider does not hang the caller past its deadline,
// and a second caller waiting for the busy slot gives up at its own
// deadline too (no deadlock). Once the device answers, the slot is free.
func TestHungProvider(t *testing.T) {
	f := &tdxtest.Faults{Hang: make(chan struct{})}
	fs := &tdxtest.ConfigFS{Platform: platform(t), Faults: f}
	a, _ := tdx.NewTSMAttester(fs, fast())
	for i := 0; i < 2; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		start := time.Now()
		_, err := a.Attest(ctx, challenge("hung"))
		cancel()
		if el := time.Since(start); el > time.Second {
			t.Fatalf("call %d returned after %v", i, el)
		}
		var de *attester.DeviceError
		if !errors.As(err, &de) || !de.Retryable || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("call %d: err = %v", i, err)
		}
	}
	if got := f.Requests.Load(); got != 1 {
		t.Fatalf("requests = %d, want 1 (the second call must wait for the slot)", got)
	}
	close(f.Hang)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := a.Attest(ctx, challenge("after")); err != nil {
		t.Fatal(err)
	}
}

func TestProviderMisbehaves(t *testing.T) {
	pl := platform(t)
	f := &tdxtest.Faults{}
	f.WrongReportData.Store(true)
	a, _ := tdx.NewTSMAttester(&tdxtest.ConfigFS{Platform: pl, Faults: f}, fast())
	_, err := a.Attest(context.Background(), challenge("x"))
	var de *attester.DeviceError
	if !errors.As(err, &de) || de.Retryable {
		t.Fatalf("wrong REPORTDATA: err = %v", err)
	}
	// A quote that does not parse strictly (one byte after its signed
	// data) is refused at the source, with the parser's error.
	f = &tdxtest.Faults{}
	f.TrailingByte.Store(true)
	a, _ = tdx.NewTSMAttester(&tdxtest.ConfigFS{Platform: pl, Faults: f}, fast())
	_, err = a.Attest(context.Background(), challenge("x"))
	if !errors.As(err, &de) || de.Retryable || !errors.Is(err, wire.ErrMalformed) || strings.Count(err.Error(), "tdx: ") != 1 {
		t.Fatalf("malformed quote: err = %v", err)
	}
	a, _ = tdx.NewTSMAttester(&tdxtest.ConfigFS{Platform: pl, Provider: "sev_guest"}, fast())
	if _, err := a.Attest(context.Background(), challenge("x")); !errors.As(err, &de) || de.Retryable {
		t.Fatalf("wrong provider: err = %v", err)
	}
	if _, err := tdx.NewTSMAttester(&tdxtest.ConfigFS{Platform: pl}, &tdx.Options{FMSPCHint: []byte{1}}); err == nil {
		t.Fatal("accepted a 1-byte FMSPC hint")
	}
}
