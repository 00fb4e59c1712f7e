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
