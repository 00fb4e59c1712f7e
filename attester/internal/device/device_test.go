package device

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/attester"
)

var def = attester.RetryPolicy{MaxAttempts: 4, Initial: 10 * time.Millisecond, Max: 40 * time.Millisecond}

func TestBackoff(t *testing.T) {
	d := New("x", "y", attester.RetryPolicy{}, def, 0)
	for attempt, want := range map[int]time.Duration{1: 10 * time.Millisecond, 2: 20 * time.Millisecond, 3: 40 * time.Millisecond, 9: 40 * time.Millisecond} {
		for range 50 {
			if got := d.backoff(attempt); got < want/2 || got > want {
				t.Fatalf("attempt %d: wait %v, want in [%v, %v]", attempt, got, want/2, want)
			}
		}
	}
	if p := (attester.RetryPolicy{MaxAttempts: 1}).WithDefaults(def); p.MaxAttempts != 1 || p.Initial != def.Initial || p.Max != def.Max {
		t.Fatalf("WithDefaults: %+v", p)
	}
}

func TestThrottled(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("ioctl: %w", syscall.EAGAIN), true},
		{syscall.EBUSY, true},
		{syscall.EINTR, true},
		{syscall.ETIMEDOUT, true},
		{Busy(errors.New("status in flight")), true},
		{syscall.EINVAL, false},
		{errors.New("device or resource busy"), false}, // text is not an errno
	} {
		if got := Throttled(tc.err); got != tc.want {
			t.Errorf("Throttled(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// At most inFlight calls run at once, and a call abandoned at ctx's end
// keeps its slot until it returns.
func TestInFlight(t *testing.T) {
	d := New("x", "y", attester.RetryPolicy{}, def, 2)
	var running, peak atomic.Int32
	release := make(chan struct{})
	call := func() (int, error) {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		running.Add(-1)
		return 1, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := Do(ctx, d, call)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		var de *attester.DeviceError
		if !errors.As(err, &de) || !de.Retryable || de.Throttled || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want a retryable DeviceError for the deadline", err)
		}
	}
	if p := peak.Load(); p != 2 {
		t.Fatalf("%d calls at once, want 2", p)
	}
	// The two abandoned calls still hold both slots.
	short, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	if _, err := Do(short, d, func() (int, error) { return 2, nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v while both slots are held", err)
	}
	close(release)
	if v, err := Do(context.Background(), d, func() (int, error) { return 3, nil }); v != 3 || err != nil {
		t.Fatalf("after release: %v, %v", v, err)
	}
}

func TestNotThrottledIsFinal(t *testing.T) {
	d := New("tdx", "tdx-guest", attester.RetryPolicy{}, def, 1)
	var calls atomic.Int32
	_, err := Do(context.Background(), d, func() ([]byte, error) { calls.Add(1); return nil, syscall.EINVAL })
	var de *attester.DeviceError
	if !errors.As(err, &de) || de.Retryable || de.Throttled || de.Attempts != 1 || calls.Load() != 1 ||
		err.Error() != "tdx: tdx-guest request failed: invalid argument" {
		t.Fatalf("got %v after %d calls", err, calls.Load())
	}
}
