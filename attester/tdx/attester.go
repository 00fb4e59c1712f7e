package tdx

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/attester/tdx/wire"
	expatcmw "github.com/attested-tls/go-expat/cmw"
)

// Options tunes retries and concurrency. The zero value (and a nil
// *Options) is usable: 5 attempts, backoff from 50 ms doubling up to 1 s,
// one request in flight.
type Options struct {
	// MaxAttempts bounds the requests made for one Attest call when the
	// quote service is throttled. 0 means 5.
	MaxAttempts int
	// InitialBackoff is the wait after the first throttled attempt, doubled
	// after each one up to MaxBackoff, with jitter in [d/2, d]. 0 means
	// 50 ms and 1 s.
	InitialBackoff, MaxBackoff time.Duration
	// MaxInFlight bounds concurrent requests to the device. 0 means 1 (the
	// host serializes quote generation anyway).
	MaxInFlight int
	// FMSPCHint, if set (6 bytes), is carried in the Evidence as a
	// collateral hint.
	FMSPCHint []byte
}

func (o *Options) attempts() int {
	if o.MaxAttempts <= 0 {
		return 5
	}
	return o.MaxAttempts
}

func (o *Options) backoff(attempt int) time.Duration {
	d, max := o.InitialBackoff, o.MaxBackoff
	if d <= 0 {
		d = 50 * time.Millisecond
	}
	if max <= 0 {
		max = time.Second
	}
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d/2 + rand.N(d/2+1)
}

// backend produces one raw quote for rd. It may block; it need not honour
// ctx (the Attester does).
type backend interface {
	name() string
	quote(rd [64]byte) ([]byte, error)
}

// Attester is an attester.Attester for Intel TDX guests. It is safe for
// concurrent use.
type Attester struct {
	b    backend
	opts Options
	sem  chan struct{}
}

var _ attester.Attester = (*Attester)(nil)

func newAttester(b backend, opts *Options) (*Attester, error) {
	a := &Attester{b: b}
	if opts != nil {
		a.opts = *opts
		a.opts.FMSPCHint = append([]byte(nil), opts.FMSPCHint...)
	}
	if a.opts.FMSPCHint != nil && len(a.opts.FMSPCHint) != 6 {
		return nil, fmt.Errorf("tdx: FMSPC hint is %d bytes, want 6", len(a.opts.FMSPCHint))
	}
	n := a.opts.MaxInFlight
	if n <= 0 {
		n = 1
	}
	a.sem = make(chan struct{}, n)
	return a, nil
}

// Attest returns a serialized CBOR CMW record (cmw.MediaTypeTDX, indicator
// Evidence) whose quote's REPORTDATA is ch.ReportData64().
func (a *Attester) Attest(ctx context.Context, ch attester.Challenge) ([]byte, error) {
	rd, err := ch.ReportData64()
	if err != nil {
		return nil, err
	}
	ev, err := a.Evidence(ctx, rd)
	if err != nil {
		return nil, err
	}
	val, err := ev.Marshal()
	if err != nil {
		return nil, err
	}
	out, err := expatcmw.MarshalEvidence(expatcmw.MediaTypeTDX, val)
	if err != nil {
		return nil, fmt.Errorf("tdx: encoding CMW: %w", err)
	}
	return out, nil
}

// Evidence returns the Evidence for an explicit REPORTDATA value.
func (a *Attester) Evidence(ctx context.Context, reportData [64]byte) (*wire.Evidence, error) {
	q, err := a.Quote(ctx, reportData)
	if err != nil {
		return nil, err
	}
	ev := &wire.Evidence{Quote: q}
	if a.opts.FMSPCHint != nil {
		ev.FMSPC = append([]byte(nil), a.opts.FMSPCHint...)
	}
	return ev, nil
}

// Quote returns a raw TDX quote for reportData, retrying throttled answers.
// The quote is checked only for its size and for carrying reportData at
// the REPORTDATA offset of its body: its signatures are the verifier's job.
func (a *Attester) Quote(ctx context.Context, reportData [64]byte) ([]byte, error) {
	var last error
	n := a.opts.attempts()
	for attempt := 1; attempt <= n; attempt++ {
		q, err := a.once(ctx, reportData)
		if err == nil {
			if err := checkQuote(q, reportData); err != nil {
				return nil, &DeviceError{Backend: a.b.name(), Attempts: attempt, Err: err}
			}
			return q, nil
		}
		last = err
		if ctx.Err() != nil {
			return nil, &DeviceError{Backend: a.b.name(), Attempts: attempt, Retryable: true, Err: err, throttled: isThrottle(err)}
		}
		if !isThrottle(err) {
			return nil, &DeviceError{Backend: a.b.name(), Attempts: attempt, Err: err}
		}
		if attempt == n {
			break
		}
		t := time.NewTimer(a.opts.backoff(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, &DeviceError{Backend: a.b.name(), Attempts: attempt, Retryable: true,
				Err: errors.Join(last, ctx.Err()), throttled: true}
		case <-t.C:
		}
	}
	return nil, &DeviceError{Backend: a.b.name(), Attempts: n, Retryable: true, Err: last, throttled: true}
}

type result struct {
	q   []byte
	err error
}

// once makes one request, bounded by ctx. A request that outlives ctx
// keeps its in-flight slot until the device answers.
func (a *Attester) once(ctx context.Context, rd [64]byte) ([]byte, error) {
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("tdx: waiting for a free quote slot: %w", ctx.Err())
	}
	done := make(chan result, 1)
	go func() {
		defer func() { <-a.sem }()
		q, err := a.b.quote(rd)
		done <- result{q, err}
	}()
	select {
	case r := <-done:
		return r.q, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("tdx: quote request abandoned: %w", ctx.Err())
	}
}

// TD quote body offset of REPORTDATA in v4 (header 48 + 520) and v5
// (header 48 + type 2 + size 4 + 520).
const (
	reportDataOffV4 = 48 + 520
	reportDataOffV5 = 48 + 6 + 520
)

func checkQuote(q []byte, rd [64]byte) error {
	if len(q) < wire.MinQuoteSize || len(q) > wire.MaxQuoteSize {
		return fmt.Errorf("tdx: quote service returned %d bytes", len(q))
	}
	off := reportDataOffV4
	if q[0] == 5 && q[1] == 0 {
		off = reportDataOffV5
	}
	if string(q[off:off+64]) != string(rd[:]) {
		return errors.New("tdx: quote service returned a quote for another REPORTDATA")
	}
	return nil
}
