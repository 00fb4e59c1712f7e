package bound

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	v, err := Run(context.Background(), func(context.Context) (int, error) { return 7, nil })
	if v != 7 || err != nil {
		t.Fatalf("got %v %v", v, err)
	}
	release := make(chan struct{})
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = Run(ctx, func(context.Context) (int, error) { <-release; return 1, nil }) // ignores ctx
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Fatalf("got %v after %v, want the deadline at once", err, time.Since(start))
	}
}

func TestInline(t *testing.T) {
	lateCalled := make(chan struct{}, 1)
	late := func() { lateCalled <- struct{}{} }
	v, err, ok := Inline(context.Background(), func(context.Context) (int, error) { return 7, nil }, late)
	if v != 7 || err != nil || !ok {
		t.Fatalf("got %v %v %v", v, err, ok)
	}
	select {
	case <-lateCalled:
		t.Fatal("late called for work that returned in time")
	case <-time.After(20 * time.Millisecond):
	}

	// Work that ignores ctx: late runs at ctx's end while f still runs, and
	// f's result is dropped when it comes.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	release := make(chan struct{})
	go func() {
		select {
		case <-lateCalled:
			if d := time.Since(start); d > time.Second {
				t.Errorf("late called after %v, want at the deadline", d)
			}
		case <-time.After(5 * time.Second):
			t.Error("late not called")
		}
		close(release)
	}()
	v, err, ok = Inline(ctx, func(context.Context) (int, error) { <-release; return 1, nil }, late)
	if ok || v != 0 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v %v %v, want an abandoned result", v, err, ok)
	}

	// An ended ctx: f is not called, late is.
	called := false
	_, err, ok = Inline(ctx, func(context.Context) (int, error) { called = true; return 1, nil }, late)
	if ok || called || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ended ctx: ok %v, f called %v, err %v", ok, called, err)
	}
	select {
	case <-lateCalled:
	case <-time.After(5 * time.Second):
		t.Fatal("late not called for an ended ctx")
	}
}
