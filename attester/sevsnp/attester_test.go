package sevsnp_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-sev-guest/abi"
	labi "github.com/google/go-sev-guest/client/linuxabi"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/attester/sevsnp"
	"github.com/attested-tls/go-expat/attester/sevsnp/sevsnptest"
	"github.com/attested-tls/go-expat/attester/sevsnp/wire"
	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/verifier"
	vsevsnp "github.com/attested-tls/go-expat/verifier/sevsnp"
)

var fastRetry = &sevsnp.Options{Retry: attester.RetryPolicy{MaxAttempts: 4, Initial: time.Millisecond, Max: 4 * time.Millisecond}}

// backends returns an Attester per backend, each answering ch's REPORT_DATA.
func backends(t *testing.T, p *sevsnptest.Platform, opts *sevsnp.Options, rds ...[64]byte) map[string]*sevsnp.Attester {
	t.Helper()
	dev, err := sevsnp.NewDeviceAttester(p.Device(t, nil, rds...), opts)
	if err != nil {
		t.Fatal(err)
	}
	tsm, err := sevsnp.NewTSMAttester(p.TSM(nil), opts)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]*sevsnp.Attester{"sev-guest": dev, "configfs-tsm": tsm}
}

func TestAttestVerifies(t *testing.T) {
	p := sevsnptest.NewPlatform(t)
	ch := sevsnptest.RandomChallenge(t)
	rd := sevsnptest.ReportData(t, ch)
	for name, a := range backends(t, p, nil, rd) {
		t.Run(name, func(t *testing.T) {
			out, err := a.Attest(context.Background(), ch)
			if err != nil {
				t.Fatal(err)
			}
			// The record is a CBOR CMW record of our media type and
			// indicator, accepted by the strict decoder.
			c, err := cmw.Decode(out, nil)
			if err != nil {
				t.Fatal(err)
			}
			rec, ok := c.Record()
			if !ok || c.Format() != cmw.FormatCBORRecord {
				t.Fatalf("not a CBOR record: %v", c.Format())
			}
			if rec.MediaType != cmw.MediaTypeSEVSNP {
				t.Errorf("media type %q", rec.MediaType)
			}
			if rec.Indicator != cmw.Evidence {
				t.Errorf("indicator %v", rec.Indicator)
			}
			ev, err := wire.Unmarshal(rec.Value)
			if err != nil {
				t.Fatal(err)
			}
			if ev.CertTable == nil {
				t.Error("no certificate table although the host provides one")
			}
			if got := [64]byte(ev.Report[0x50:0x90]); got != rd {
				t.Error("REPORT_DATA is not ch.ReportData64()")
			}

			res, err := p.Verifier(t, vsevsnp.Policy{}).Verify(context.Background(), out,
				&verifier.Expected{Challenge: ch})
			if err != nil {
				t.Fatalf("verify with the test roots: %v", err)
			}
			if res.Technology != "sev-snp" || res.Status != verifier.TierAffirming {
				t.Errorf("result %+v", res)
			}

			// AMD's real roots (the default) reject the test keys.
			real, err := vsevsnp.New(&vsevsnp.Config{Policy: vsevsnp.Policy{AcceptAnyMeasurement: true}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = real.Verify(context.Background(), out, &verifier.Expected{Challenge: ch})
			var re *verifier.RejectedError
			if !errors.As(err, &re) || re.Check != verifier.CheckChain {
				t.Fatalf("real AMD roots: got %v, want a chain rejection", err)
			}
		})
	}
}

func TestOmitCertTable(t *testing.T) {
	p := sevsnptest.NewPlatform(t)
	ch := sevsnptest.RandomChallenge(t)
	for name, a := range backends(t, p, &sevsnp.Options{OmitCertTable: true}, sevsnptest.ReportData(t, ch)) {
		t.Run(name, func(t *testing.T) {
			ev, err := a.Evidence(context.Background(), sevsnptest.ReportData(t, ch))
			if err != nil {
				t.Fatal(err)
			}
			if ev.CertTable != nil {
				t.Fatal("certificate table present")
			}
			out, err := a.Attest(context.Background(), ch)
			if err != nil {
				t.Fatal(err)
			}
			// Without the VCEK and without collateral the verifier cannot check.
			_, err = p.Verifier(t, vsevsnp.Policy{}).Verify(context.Background(), out, &verifier.Expected{Challenge: ch})
			if !errors.Is(err, verifier.ErrUnavailable) {
				t.Fatalf("got %v, want ErrUnavailable", err)
			}
		})
	}
}

func TestUnansweredReportData(t *testing.T) {
	p := sevsnptest.NewPlatform(t)
	// The device fake answers only registered REPORT_DATA: not this one.
	a, err := sevsnp.NewDeviceAttester(p.Device(t, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Attest(context.Background(), sevsnptest.RandomChallenge(t))
	var de *attester.DeviceError
	if !errors.As(err, &de) || de.Retryable || errors.Is(err, attester.ErrThrottled) {
		t.Fatalf("got %v, want a non-retryable DeviceError", err)
	}
}

func TestInvalidInputs(t *testing.T) {
	p := sevsnptest.NewPlatform(t)
	if _, err := sevsnp.NewDeviceAttester(p.Device(t, nil), &sevsnp.Options{VMPL: 4}); err == nil {
		t.Error("VMPL 4 accepted")
	}
	if _, err := sevsnp.NewDeviceAttester(nil, nil); err == nil {
		t.Error("nil device accepted")
	}
	if _, err := sevsnp.NewTSMAttester(nil, nil); err == nil {
		t.Error("nil client accepted")
	}
	a, _ := sevsnp.NewDeviceAttester(p.Device(t, nil), nil)
	bad := sevsnptest.RandomChallenge(t)
	bad.Binding = bad.Binding[:31]
	if _, err := a.Attest(context.Background(), bad); err == nil {
		t.Error("malformed challenge accepted")
	}
}

// recordingDevice records the VMPL of each request.
type recordingDevice struct {
	sevsnp.Device
	vmpls []uint32
}

func (d *recordingDevice) Ioctl(cmd uintptr, req any) (uintptr, error) {
	switch r := req.(*labi.SnpUserGuestRequest).ReqData.(type) {
	case *labi.SnpReportReqABI:
		d.vmpls = append(d.vmpls, r.Vmpl)
	case *labi.SnpExtendedReportReq:
		d.vmpls = append(d.vmpls, r.Data.Vmpl)
	}
	return d.Device.Ioctl(cmd, req)
}

func TestVMPL(t *testing.T) {
	p := sevsnptest.NewPlatform(t)
	ch := sevsnptest.RandomChallenge(t)
	rd := sevsnptest.ReportData(t, ch)

	rec := &recordingDevice{Device: p.Device(t, nil, rd)}
	a, err := sevsnp.NewDeviceAttester(rec, &sevsnp.Options{VMPL: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Attest(context.Background(), ch); err != nil {
		t.Fatal(err)
	}
	for _, l := range rec.vmpls {
		if l != 2 {
			t.Errorf("request at VMPL %d, want 2", l)
		}
	}

	// configfs-tsm: the fake puts privlevel into the report's VMPL field.
	tsm, err := sevsnp.NewTSMAttester(p.TSM(nil), &sevsnp.Options{VMPL: 2})
	if err != nil {
		t.Fatal(err)
	}
	out, err := tsm.Attest(context.Background(), ch)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Verifier(t, vsevsnp.Policy{}).Verify(context.Background(), out, &verifier.Expected{Challenge: ch})
	var re *verifier.RejectedError
	if !errors.As(err, &re) || re.Check != verifier.CheckVMPL {
		t.Fatalf("default policy: got %v, want a vmpl rejection", err)
	}
	if _, err := p.Verifier(t, vsevsnp.Policy{VMPLs: []uint32{2}}).Verify(context.Background(), out,
		&verifier.Expected{Challenge: ch}); err != nil {
		t.Fatalf("VMPL 2 allowed: %v", err)
	}
}

func TestHostTablePaddingIsCanonicalized(t *testing.T) {
	p := sevsnptest.NewPlatform(t)
	ch := sevsnptest.RandomChallenge(t)
	dev := p.Device(t, nil, sevsnptest.ReportData(t, ch))
	dev.Certs = append(dev.Certs, make([]byte, 4096)...) // page padding, as hosts return it
	a, _ := sevsnp.NewDeviceAttester(dev, nil)
	ev, err := a.Evidence(context.Background(), sevsnptest.ReportData(t, ch))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wire.ParseCertTable(ev.CertTable); err != nil {
		t.Fatalf("evidence table is not canonical: %v", err)
	}
	if len(ev.CertTable) >= len(dev.Certs) {
		t.Errorf("padding kept: %d bytes", len(ev.CertTable))
	}
}

// T27: throttled devices.

// throttledDevice fails the first n ioctls with err (and fwErr), then
// delegates.
type throttledDevice struct {
	sevsnp.Device
	n     int32
	err   error
	fwErr uint64
	calls atomic.Int32
}

func (d *throttledDevice) Ioctl(cmd uintptr, req any) (uintptr, error) {
	if d.calls.Add(1) <= d.n {
		req.(*labi.SnpUserGuestRequest).FwErr = d.fwErr
		return 0, d.err
	}
	return d.Device.Ioctl(cmd, req)
}

// throttledTSM fails the first n outblob reads with err.
type throttledTSM struct {
	configfsi.Client
	n     int32
	err   error
	calls atomic.Int32
}

func (c *throttledTSM) ReadFile(name string) ([]byte, error) {
	if len(name) > 8 && name[len(name)-8:] == "/outblob" && c.calls.Add(1) <= c.n {
		return nil, &os.PathError{Op: "read", Path: name, Err: c.err}
	}
	return c.Client.ReadFile(name)
}

func TestThrottledThenSucceeds(t *testing.T) {
	p := sevsnptest.NewPlatform(t)
	ch := sevsnptest.RandomChallenge(t)
	rd := sevsnptest.ReportData(t, ch)
	cases := []struct {
		name string
		make func() (sevsnp.Device, configfsi.Client)
	}{
		{"EAGAIN", func() (sevsnp.Device, configfsi.Client) {
			return &throttledDevice{Device: p.Device(t, nil, rd), n: 2, err: syscall.EAGAIN},
				&throttledTSM{Client: p.TSM(nil), n: 2, err: syscall.EAGAIN}
		}},
		{"EBUSY", func() (sevsnp.Device, configfsi.Client) {
			return &throttledDevice{Device: p.Device(t, nil, rd), n: 3, err: syscall.EBUSY},
				&throttledTSM{Client: p.TSM(nil), n: 3, err: syscall.EBUSY}
		}},
		{"VMM busy", func() (sevsnp.Device, configfsi.Client) {
			return &throttledDevice{Device: p.Device(t, nil, rd), n: 2, err: syscall.EIO, fwErr: 2 << 32},
				&throttledTSM{Client: p.TSM(nil), n: 2, err: syscall.ETIMEDOUT}
		}},
	}
	for _, tc := range cases {
		dev, cl := tc.make()
		for name, mk := range map[string]func() (*sevsnp.Attester, error){
			"sev-guest":    func() (*sevsnp.Attester, error) { return sevsnp.NewDeviceAttester(dev, fastRetry) },
			"configfs-tsm": func() (*sevsnp.Attester, error) { return sevsnp.NewTSMAttester(cl, fastRetry) },
		} {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				a, err := mk()
				if err != nil {
					t.Fatal(err)
				}
				out, err := a.Attest(context.Background(), ch)
				if err != nil {
					t.Fatalf("got %v, want success after retries", err)
				}
				if _, err := p.Verifier(t, vsevsnp.Policy{}).Verify(context.Background(), out,
					&verifier.Expected{Challenge: ch}); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

func TestThrottledForever(t *testing.T) {
	p := sevsnptest.NewPlatform(t)
	ch := sevsnptest.RandomChallenge(t)
	rd := sevsnptest.ReportData(t, ch)
	dev := &throttledDevice{Device: p.Device(t, nil, rd), n: 1 << 30, err: syscall.EAGAIN}
	cl := &throttledTSM{Client: p.TSM(nil), n: 1 << 30, err: syscall.EAGAIN}
	for name, mk := range map[string]func() (*sevsnp.Attester, error){
		"sev-guest":    func() (*sevsnp.Attester, error) { return sevsnp.NewDeviceAttester(dev, fastRetry) },
		"configfs-tsm": func() (*sevsnp.Attester, error) { return sevsnp.NewTSMAttester(cl, fastRetry) },
	} {
		t.Run(name, func(t *testing.T) {
			a, _ := mk()
			_, err := a.Attest(context.Background(), ch)
			var de *attester.DeviceError
			if !errors.As(err, &de) || !de.Retryable || !errors.Is(err, attester.ErrThrottled) {
				t.Fatalf("got %v, want a retryable throttling DeviceError", err)
			}
			if de.Attempts != fastRetry.Retry.MaxAttempts {
				t.Errorf("attempts %d, want %d", de.Attempts, fastRetry.Retry.MaxAttempts)
			}
			if !errors.Is(err, syscall.EAGAIN) {
				t.Errorf("cause lost: %v", err)
			}
		})
	}
	if got := dev.calls.Load(); got != int32(fastRetry.Retry.MaxAttempts) {
		t.Errorf("device saw %d requests, want %d", got, fastRetry.Retry.MaxAttempts)
	}
}

func TestThrottledBackoffHonoursDeadline(t *testing.T) {
	p := sevsnptest.NewPlatform(t)
	ch := sevsnptest.RandomChallenge(t)
	dev := &throttledDevice{Device: p.Device(t, nil, sevsnptest.ReportData(t, ch)), n: 1 << 30, err: syscall.EAGAIN}
	a, _ := sevsnp.NewDeviceAttester(dev, &sevsnp.Options{Retry: attester.RetryPolicy{MaxAttempts: 100, Initial: time.Second}})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := a.Attest(ctx, ch)
	if time.Since(start) > time.Second {
		t.Errorf("returned after %v, deadline was 50ms", time.Since(start))
	}
	var de *attester.DeviceError
	if !errors.As(err, &de) || !de.Retryable || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want a retryable DeviceError wrapping DeadlineExceeded", err)
	}
}

// hungDevice never answers until released.
type hungDevice struct {
	sevsnp.Device
	release chan struct{}
	entered atomic.Int32
}

func (d *hungDevice) Ioctl(cmd uintptr, req any) (uintptr, error) {
	d.entered.Add(1)
	<-d.release
	return d.Device.Ioctl(cmd, req)
}

type hungTSM struct {
	configfsi.Client
	release chan struct{}
}

func (c *hungTSM) ReadFile(name string) ([]byte, error) {
	<-c.release
	return c.Client.ReadFile(name)
}

func TestDeviceNeverAnswers(t *testing.T) {
	p := sevsnptest.NewPlatform(t)
	ch := sevsnptest.RandomChallenge(t)
	rd := sevsnptest.ReportData(t, ch)
	for _, name := range []string{"sev-guest", "configfs-tsm"} {
		t.Run(name, func(t *testing.T) {
			release := make(chan struct{})
			var a *sevsnp.Attester
			if name == "sev-guest" {
				a, _ = sevsnp.NewDeviceAttester(&hungDevice{Device: p.Device(t, nil, rd), release: release}, fastRetry)
			} else {
				a, _ = sevsnp.NewTSMAttester(&hungTSM{Client: p.TSM(nil), release: release}, fastRetry)
			}
			var wg sync.WaitGroup
			errs := make([]error, 3)
			start := time.Now()
			for i := range errs { // concurrent callers all time out: no deadlock
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx, cancel := context.WithTimeout(context.Background(), 40*time.Millisecond)
					defer cancel()
					_, errs[i] = a.Attest(ctx, ch)
				}()
			}
			wg.Wait()
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("callers returned after %v", d)
			}
			for _, err := range errs {
				var de *attester.DeviceError
				if !errors.As(err, &de) || !de.Retryable || !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("got %v, want a retryable DeviceError wrapping DeadlineExceeded", err)
				}
			}
			// Once the device answers, the attester works again.
			close(release)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := a.Attest(ctx, ch); err != nil {
				t.Fatalf("after release: %v", err)
			}
		})
	}
}

func TestConcurrentAttest(t *testing.T) {
	p := sevsnptest.NewPlatform(t)
	chs := make([][64]byte, 8)
	chals := make([]struct{ rd [64]byte }, 8)
	for i := range chs {
		chs[i] = sevsnptest.ReportData(t, sevsnptest.RandomChallenge(t))
		chals[i].rd = chs[i]
	}
	for name, a := range backends(t, p, nil, chs...) {
		t.Run(name, func(t *testing.T) {
			var wg sync.WaitGroup
			for i := range chs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ev, err := a.Evidence(context.Background(), chs[i])
					if err != nil {
						t.Error(err)
						return
					}
					if [64]byte(ev.Report[0x50:0x90]) != chs[i] {
						t.Error("report for another request")
					}
				}()
			}
			wg.Wait()
		})
	}
}

var _ = abi.ReportSize

func TestHostWithoutCertTable(t *testing.T) {
	p := sevsnptest.NewPlatform(t)
	ch := sevsnptest.RandomChallenge(t)
	dev := p.Device(t, nil, sevsnptest.ReportData(t, ch))
	dev.Certs = nil
	a, _ := sevsnp.NewDeviceAttester(dev, nil)
	ev, err := a.Evidence(context.Background(), sevsnptest.ReportData(t, ch))
	if err != nil {
		t.Fatal(err)
	}
	if ev.CertTable != nil {
		t.Error("certificate table from a host that has none")
	}
}

func TestOpenDeviceAbsent(t *testing.T) {
	if _, err := sevsnp.OpenDevice(t.TempDir() + "/no-sev-guest"); err == nil {
		t.Fatal("opened a missing device")
	}
	var d sevsnp.LinuxDevice
	if _, err := d.Ioctl(0, nil); err == nil {
		t.Fatal("ioctl on a zero LinuxDevice")
	}
}
