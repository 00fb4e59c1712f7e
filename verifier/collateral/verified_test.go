package collateral_test

import (
	"sync"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/verifier/collateral"
)

func TestVerified(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	from, until := t0, t0.Add(time.Hour)
	var c collateral.Verified[string, int]
	if _, ok := c.Get("a", t0); ok {
		t.Fatal("empty cache hit")
	}
	c.Put("a", 1, from, until)
	for _, tc := range []struct {
		name string
		at   time.Time
		hit  bool
	}{
		{"at from", from, true},
		{"inside", from.Add(time.Minute), true},
		{"at until", until, true},
		{"before from", from.Add(-time.Nanosecond), false},
		{"after until", until.Add(time.Nanosecond), false},
		{"inside again, after the entry was dropped", from.Add(time.Minute), false},
	} {
		if v, ok := c.Get("a", tc.at); ok != tc.hit || (ok && v != 1) {
			t.Errorf("%s: got %d, %v; want hit=%v", tc.name, v, ok, tc.hit)
		}
	}
	if c.Len() != 0 {
		t.Errorf("expired entry kept: Len %d", c.Len())
	}

	// An empty period keeps nothing.
	c.Put("b", 2, until, from)
	if _, ok := c.Get("b", from); ok || c.Len() != 0 {
		t.Error("entry with an empty period kept")
	}

	// Least recently used first out.
	small := collateral.Verified[int, int]{MaxEntries: 2}
	small.Put(1, 1, from, until)
	small.Put(2, 2, from, until)
	small.Get(1, t0) // 2 is now the least recently used
	small.Put(3, 3, from, until)
	if _, ok := small.Get(2, t0); ok {
		t.Error("least recently used entry kept")
	}
	for _, k := range []int{1, 3} {
		if v, ok := small.Get(k, t0); !ok || v != k {
			t.Errorf("entry %d: got %d, %v", k, v, ok)
		}
	}
	// Replacing an entry takes its new period.
	small.Put(1, 10, until.Add(time.Hour), until.Add(2*time.Hour))
	if _, ok := small.Get(1, t0); ok {
		t.Error("replaced entry served in its old period")
	}
	if v, ok := small.Get(1, until.Add(time.Hour)); !ok || v != 10 {
		t.Errorf("replaced entry: got %d, %v", v, ok)
	}

	off := collateral.Verified[int, int]{MaxEntries: -1}
	off.Put(1, 1, from, until)
	if _, ok := off.Get(1, t0); ok || off.Len() != 0 {
		t.Error("disabled cache kept an entry")
	}
}

// Concurrent Gets and Puts over more keys than fit: no race (under
// -race), the bound holds.
func TestVerifiedConcurrent(t *testing.T) {
	t0 := time.Now()
	c := collateral.Verified[int, int]{MaxEntries: 8}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				k := (g*500 + i) % 20
				if v, ok := c.Get(k, t0); ok && v != k {
					t.Errorf("key %d: value %d", k, v)
					return
				}
				c.Put(k, k, t0, t0.Add(time.Minute))
			}
		}()
	}
	wg.Wait()
	if n := c.Len(); n > 8 {
		t.Errorf("Len %d above MaxEntries 8", n)
	}
}
