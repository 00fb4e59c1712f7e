package collateral_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/verifier/collateral"
)

func TestHTTP(t *testing.T) {
	var hits atomic.Int32
	var mode atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		switch mode.Load().(string) {
		case "429 once":
			if n == 1 {
				w.Header().Set("Retry-After", "0")
				http.Error(w, "slow down", http.StatusTooManyRequests)
				return
			}
		case "429 long":
			w.Header().Set("Retry-After", "3600")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		case "500":
			http.Error(w, "down", http.StatusInternalServerError)
			return
		case "404":
			http.NotFound(w, r)
			return
		case "big":
			w.Write(make([]byte, 101))
			return
		}
		w.Header().Set("X-Chain", "c")
		w.Write([]byte("body"))
	}))
	defer srv.Close()
	h := &collateral.HTTP{Client: srv.Client(), Backoff: time.Millisecond, MaxRetries: 2, MaxSize: 100}
	for _, tc := range []struct {
		mode      string
		hits      int32
		ok        bool
		retryable bool
		notFound  bool
	}{
		{"ok", 1, true, false, false},
		{"429 once", 2, true, false, false},
		{"429 long", 1, false, true, false}, // the wait asked for is beyond MaxRetryAfter
		{"500", 3, false, true, false},      // 1 + MaxRetries
		{"404", 1, false, false, true},
		{"big", 1, false, false, false},
	} {
		hits.Store(0)
		mode.Store(tc.mode)
		body, hdr, err := h.Get(context.Background(), srv.URL)
		if got := hits.Load(); got != tc.hits {
			t.Errorf("%s: %d requests, want %d", tc.mode, got, tc.hits)
		}
		if tc.ok {
			if err != nil || string(body) != "body" || hdr.Get("X-Chain") != "c" {
				t.Errorf("%s: %q %v %v", tc.mode, body, hdr, err)
			}
			continue
		}
		var fe *collateral.FetchError
		if !errors.As(err, &fe) || fe.Retryable != tc.retryable || collateral.NotFound(err) != tc.notFound ||
			errors.Is(err, collateral.ErrNotFound) != tc.notFound || body != nil {
			t.Errorf("%s: got %v (%+v)", tc.mode, err, fe)
		}
		if strings.Count(err.Error(), "collateral:") != 1 {
			t.Errorf("%s: message repeats its prefix: %v", tc.mode, err)
		}
	}
	// ctx ends during the backoff: prompt, retryable.
	mode.Store("500")
	slow := &collateral.HTTP{Client: srv.Client(), Backoff: time.Hour, MaxRetryAfter: 2 * time.Hour}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, _, err := slow.Get(ctx, srv.URL); err == nil || time.Since(start) > time.Second {
		t.Errorf("backoff past the deadline: %v after %v", err, time.Since(start))
	}
}

func TestCache(t *testing.T) {
	var c collateral.Cache[string, int]
	now := time.Unix(1000, 0)
	var fetches atomic.Int32
	ok := func(v int, exp time.Time) func(context.Context) (int, time.Time, error) {
		return func(context.Context) (int, time.Time, error) { fetches.Add(1); return v, exp, nil }
	}
	ctx := context.Background()
	if v, err := c.Get(ctx, "a", now, ok(1, now.Add(time.Minute))); v != 1 || err != nil {
		t.Fatal(v, err)
	}
	if v, _ := c.Get(ctx, "a", now.Add(59*time.Second), ok(2, now.Add(time.Hour))); v != 1 {
		t.Fatalf("cached item not served: %d", v)
	}
	if v, _ := c.Get(ctx, "a", now.Add(time.Minute), ok(3, now.Add(time.Hour))); v != 3 {
		t.Fatalf("item served at its expiry: %d", v)
	}

	// Failures are remembered for FailureTTL.
	boom := errors.New("boom")
	fail := func(context.Context) (int, time.Time, error) { fetches.Add(1); return 0, time.Time{}, boom }
	fetches.Store(0)
	for range 5 {
		if _, err := c.Get(ctx, "f", now, fail); !errors.Is(err, boom) {
			t.Fatal(err)
		}
	}
	if fetches.Load() != 1 {
		t.Fatalf("%d fetches of a failing item, want 1", fetches.Load())
	}
	if v, err := c.Get(ctx, "f", now.Add(collateral.DefaultFailureTTL), ok(4, now.Add(time.Hour))); v != 4 || err != nil {
		t.Fatalf("after FailureTTL: %d %v", v, err)
	}

	// A fetch abandoned by its caller is not remembered.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Get(cctx, "g", now, func(ctx context.Context) (int, time.Time, error) { return 0, time.Time{}, ctx.Err() }); err == nil {
		t.Fatal("no error")
	}
	if v, err := c.Get(ctx, "g", now, ok(5, now.Add(time.Hour))); v != 5 || err != nil {
		t.Fatalf("abandoned fetch remembered: %d %v", v, err)
	}

	// Concurrent Gets share one fetch.
	var d collateral.Cache[string, int]
	gate := make(chan struct{})
	fetches.Store(0)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := d.Get(ctx, "k", now, func(context.Context) (int, time.Time, error) {
				fetches.Add(1)
				<-gate
				return 7, now.Add(time.Hour), nil
			})
			if v != 7 || err != nil {
				t.Error(v, err)
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	close(gate)
	wg.Wait()
	if fetches.Load() != 1 {
		t.Fatalf("%d fetches for 16 concurrent Gets", fetches.Load())
	}

	// Bounded: peer-chosen keys do not grow it past MaxEntries.
	e := collateral.Cache[int, int]{MaxEntries: 8}
	for i := range 100 {
		e.Get(ctx, i, now, func(context.Context) (int, time.Time, error) { return i, now.Add(time.Hour), nil })
	}
	if e.Len() > 8 {
		t.Fatalf("%d entries, bound 8", e.Len())
	}
}
