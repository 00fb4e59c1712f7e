package tdx

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/attester/internal/device"
	"github.com/attested-tls/go-expat/attester/tdx/wire"
	expatcmw "github.com/attested-tls/go-expat/cmw"
)

// Options tunes retries and concurrency. The zero value (and a nil
// *Options) is usable: DefaultRetry (5 attempts, backoff from 50 ms
// doubling up to 1 s, with jitter in [d/2, d]), one request in flight.
type Options struct {
	// Retry bounds the requests made for one Attest call when the quote
	// service is throttled; zero fields mean DefaultRetry's.
	Retry attester.RetryPolicy
	// MaxInFlight bounds concurrent requests to the device. 0 means 1 (the
	// host serializes quote generation anyway).
	MaxInFlight int
	// FMSPCHint, if set (6 bytes), is carried in the Evidence as a
	// collateral hint.
	FMSPCHint []byte
}

// DefaultRetry is the retry policy of Options' zero Retry fields.
var DefaultRetry = attester.RetryPolicy{MaxAttempts: 5, Initial: 50 * time.Millisecond, Max: time.Second}

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
	dev  *device.Device
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
	a.dev = device.New("tdx", b.name(), a.opts.Retry, DefaultRetry, a.opts.MaxInFlight)
	return a, nil
}

// Attest returns a serialized CBOR CMW record (cmw.MediaTypeTDX, indicator
// Evidence) whose quote's REPORTDATA is ch.ReportData64().
func (a *Attester) Attest(ctx context.Context, ch attester.Challenge) ([]byte, error) {
	rd, err := ch.ReportData64()
	if err != nil {
		return nil, err
	}
	return a.AttestReportData(ctx, rd)
}

// AttestReportData is Attest for a REPORTDATA value laid out by the caller
// (attester/composite, whose anchor quote commits to a vTPM's attestation
// key rather than to the channel).
func (a *Attester) AttestReportData(ctx context.Context, reportData [64]byte) ([]byte, error) {
	ev, err := a.Evidence(ctx, reportData)
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
// The quote must parse (wire.ParseQuote, strictly) and carry reportData
// as its REPORTDATA: its signatures are the verifier's job. Failures are
// *attester.DeviceError.
func (a *Attester) Quote(ctx context.Context, reportData [64]byte) ([]byte, error) {
	return device.Do(ctx, a.dev, func() ([]byte, error) {
		q, err := a.b.quote(reportData)
		if err != nil {
			return nil, err
		}
		return q, checkQuote(q, reportData)
	})
}

func checkQuote(raw []byte, rd [64]byte) error {
	if len(raw) < wire.MinQuoteSize || len(raw) > wire.MaxQuoteSize {
		return fmt.Errorf("the quote service returned %d bytes", len(raw))
	}
	q, err := wire.ParseQuote(raw)
	if err != nil {
		return malformedQuote{err}
	}
	if q.Body.ReportData != rd {
		return errors.New("the quote service returned a quote for another REPORTDATA")
	}
	return nil
}

// malformedQuote is a wire.ParseQuote error inside a *attester.DeviceError,
// whose message already starts with "tdx: ".
type malformedQuote struct{ err error }

func (e malformedQuote) Error() string {
	return "the quote service returned a " + strings.TrimPrefix(e.err.Error(), "tdx: ")
}

func (e malformedQuote) Unwrap() error { return e.err }
