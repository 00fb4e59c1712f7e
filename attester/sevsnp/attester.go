package sevsnp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/attester/internal/device"
	"github.com/attested-tls/go-expat/attester/sevsnp/wire"
	"github.com/attested-tls/go-expat/cmw"
)

// Options configures an Attester. The zero value is usable: VMPL 0, the
// certificate table included when the host provides one, and Retry's
// defaults: 5 attempts with a backoff from 200 ms to 5 s (with jitter in
// [d/2, d]). Options must not be modified after use.
type Options struct {
	// VMPL is the VM privilege level (0–3) the report is requested at. It
	// must be at least the level the guest kernel runs at.
	VMPL uint
	// OmitCertTable leaves the host's certificate table out of the
	// Evidence (smaller Evidence; the verifier fetches the VCEK instead).
	OmitCertTable bool
	// Retry bounds the requests made for one Attest call when the device
	// or the host is throttled; zero fields mean DefaultRetry's.
	Retry attester.RetryPolicy
}

// DefaultRetry is the retry policy of Options' zero Retry fields.
var DefaultRetry = attester.RetryPolicy{MaxAttempts: 5, Initial: 200 * time.Millisecond, Max: 5 * time.Second}

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
	dev  *device.Device
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
	return &Attester{b: b, opts: o, dev: device.New("sevsnp", b.name(), o.Retry, DefaultRetry, 1)}, nil
}

// Attest returns a CBOR CMW record (cmw.MediaTypeSEVSNP, indicator
// "evidence") carrying a report whose REPORT_DATA is ch.ReportData64().
func (a *Attester) Attest(ctx context.Context, ch attester.Challenge) ([]byte, error) {
	rd, err := ch.ReportData64()
	if err != nil {
		return nil, err
	}
	return a.AttestReportData(ctx, rd)
}

// AttestReportData is Attest for a REPORT_DATA value laid out by the
// caller (attester/composite, whose anchor report commits to a vTPM's
// attestation key rather than to the channel).
func (a *Attester) AttestReportData(ctx context.Context, reportData [64]byte) ([]byte, error) {
	ev, err := a.Evidence(ctx, reportData)
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
// for callers that lay REPORT_DATA out themselves. Failures are
// *attester.DeviceError.
func (a *Attester) Evidence(ctx context.Context, reportData [64]byte) (*wire.Evidence, error) {
	want := !a.opts.OmitCertTable
	return device.Do(ctx, a.dev, func() (*wire.Evidence, error) {
		report, certs, fwErr, err := a.b.get(reportData, uint32(a.opts.VMPL), want)
		if err != nil {
			if fwErr == vmmBusy {
				return nil, device.Busy(err)
			}
			return nil, err
		}
		return a.evidence(reportData, report, certs)
	})
}

func (a *Attester) evidence(rd [64]byte, report, certs []byte) (*wire.Evidence, error) {
	if len(report) != wire.ReportSize {
		return nil, fmt.Errorf("the device returned a %d-byte report, want %d", len(report), wire.ReportSize)
	}
	// The device must have signed our REPORT_DATA (offset 0x50).
	if [64]byte(report[0x50:0x90]) != rd {
		return nil, errors.New("the device returned a report for other REPORT_DATA")
	}
	ev := &wire.Evidence{Report: report}
	if len(certs) > 0 && !a.opts.OmitCertTable {
		t, err := wire.ParseHostCertTable(certs)
		if err != nil {
			return nil, fmt.Errorf("host certificate table: %w", err)
		}
		if len(t) > 0 {
			if ev.CertTable, err = t.Marshal(); err != nil {
				return nil, err
			}
		}
	}
	return ev, nil
}
