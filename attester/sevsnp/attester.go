package sevsnp

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/attester/sevsnp/wire"
	"github.com/attested-tls/go-expat/cmw"
)

// Options configures an Attester. The zero value is usable: VMPL 0, the
// certificate table included when the host provides one, 5 attempts with a
// backoff from 200 ms to 5 s. Options must not be modified after use.
type Options struct {
	// VMPL is the VM privilege level (0–3) the report is requested at. It
	// must be at least the level the guest kernel runs at.
	VMPL uint
	// OmitCertTable leaves the host's certificate table out of the
	// Evidence (smaller Evidence; the verifier fetches the VCEK instead).
	OmitCertTable bool
	// MaxAttempts bounds the requests made for one Attest call when the
	// device is throttled. 0 means 5.
	MaxAttempts int
	// InitialBackoff is the wait after the first throttled request, doubled
	// after each one up to MaxBackoff, with jitter in [d/2, d]. 0 means
	// 200 ms and 5 s.
	InitialBackoff, MaxBackoff time.Duration
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
		d = 200 * time.Millisecond
	}
	if max <= 0 {
		max = 5 * time.Second
	}
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	return d/2 + rand.N(d/2+1)
}

// backend obtains one raw report (and the host's certificate table, if
// asked and available). It may block; it is never called concurrently.
type backend interface {
	name() string
	get(rd [64]byte, vmpl uint32, wantCerts bool) (report, certs []byte, fwErr uint64, err error)
}

// Attester is an attester.Attester for AMD SEV-SNP guests. It is safe for
// concurrent use; requests to the device are serialized.
type Attester struct {
	b    backend
	opts Options
	// sem is held while a device request is in flight.
	sem chan struct{}
}

var _ attester.Attester = (*Attester)(nil)

func newAttester(b backend, opts *Options) (*Attester, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.VMPL > 3 {
		return nil, fmt.Errorf("sevsnp: VMPL %d is not in 0..3", o.VMPL)
	}
	return &Attester{b: b, opts: o, sem: make(chan struct{}, 1)}, nil
}

// Attest returns a CBOR CMW record (cmw.MediaTypeSEVSNP, indicator
// "evidence") carrying a report whose REPORT_DATA is ch.ReportData64().
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
	out, err := cmw.MarshalEvidence(cmw.MediaTypeSEVSNP, val)
	if err != nil {
		return nil, fmt.Errorf("sevsnp: encoding CMW: %w", err)
	}
	return out, nil
}

// Evidence returns the report for reportData as Evidence (the CMW value),
// for callers that lay REPORT_DATA out themselves.
func (a *Attester) Evidence(ctx context.Context, reportData [64]byte) (*wire.Evidence, error) {
	want := !a.opts.OmitCertTable
	var last error
	n := a.opts.attempts()
	for attempt := 1; ; attempt++ {
		report, certs, fwErr, err := a.once(ctx, reportData, want)
		if err == nil {
			return a.evidence(reportData, report, certs)
		}
		var de *DeviceError
		if errors.As(err, &de) { // ctx expired while waiting: already final
			de.Attempts = attempt
			return nil, de
		}
		last = err
		if !throttled(err, fwErr) {
			return nil, &DeviceError{Backend: a.b.name(), Attempts: attempt, Err: err}
		}
		if attempt >= n {
			return nil, &DeviceError{Backend: a.b.name(), Attempts: attempt, Retryable: true, throttled: true, Err: last}
		}
		t := time.NewTimer(a.opts.backoff(attempt))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, &DeviceError{Backend: a.b.name(), Attempts: attempt, Retryable: true, throttled: true,
				Err: fmt.Errorf("%w (last device error: %v)", ctx.Err(), last)}
		}
	}
}

type result struct {
	report, certs []byte
	fwErr         uint64
	err           error
}

// once makes one request, waiting for the device with ctx. A request that
// outlives ctx keeps the device until it returns.
func (a *Attester) once(ctx context.Context, rd [64]byte, wantCerts bool) ([]byte, []byte, uint64, error) {
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, 0, &DeviceError{Backend: a.b.name(), Retryable: true,
			Err: fmt.Errorf("waiting for the device: %w", ctx.Err())}
	}
	done := make(chan result, 1)
	go func() {
		defer func() { <-a.sem }()
		var r result
		r.report, r.certs, r.fwErr, r.err = a.b.get(rd, uint32(a.opts.VMPL), wantCerts)
		done <- r
	}()
	select {
	case r := <-done:
		return r.report, r.certs, r.fwErr, r.err
	case <-ctx.Done():
		return nil, nil, 0, &DeviceError{Backend: a.b.name(), Retryable: true,
			Err: fmt.Errorf("device did not answer: %w", ctx.Err())}
	}
}

func (a *Attester) evidence(rd [64]byte, report, certs []byte) (*wire.Evidence, error) {
	if len(report) != wire.ReportSize {
		return nil, fmt.Errorf("sevsnp: %s returned a %d-byte report, want %d", a.b.name(), len(report), wire.ReportSize)
	}
	// The device must have signed our REPORT_DATA (offset 0x50).
	if [64]byte(report[0x50:0x90]) != rd {
		return nil, fmt.Errorf("sevsnp: %s returned a report for other REPORT_DATA", a.b.name())
	}
	ev := &wire.Evidence{Report: report}
	if len(certs) > 0 && !a.opts.OmitCertTable {
		t, err := wire.ParseHostCertTable(certs)
		if err != nil {
			return nil, fmt.Errorf("sevsnp: host certificate table: %w", err)
		}
		if len(t) > 0 {
			if ev.CertTable, err = t.Marshal(); err != nil {
				return nil, err
			}
		}
	}
	return ev, nil
}
