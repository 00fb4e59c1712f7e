package warm

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestGo: every task runs exactly once, concurrently (a task never waits
// behind another: 64 tasks that each wait for all the others finish), and
// the goroutines are gone once idle.
func TestGo(t *testing.T) {
	before := runtime.NumGoroutine()
	const n = 64
	var wg sync.WaitGroup
	var ran [n]int
	all := make(chan struct{})
	var started sync.WaitGroup
	started.Add(n)
	for round := range 3 {
		wg.Add(n)
		started = sync.WaitGroup{}
		started.Add(n)
		all = make(chan struct{})
		for i := range n {
			Go(func() {
				defer wg.Done()
				ran[i]++
				started.Done()
				<-all
			})
		}
		done := make(chan struct{})
		go func() { started.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: tasks waited behind one another", round)
		}
		close(all)
		wg.Wait()
	}
	for i, c := range ran {
		if c != 3 {
			t.Fatalf("task %d ran %d times, want 3", i, c)
		}
	}
	if m := int(idle.Load()); m > maxIdle {
		t.Fatalf("%d goroutines idle, at most %d allowed", m, maxIdle)
	}
	deadline := time.Now().Add(idleFor + 5*time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines left after %v idle (%d before)", n, idleFor, before)
	}
}

// BenchmarkDeepTask: a task that needs a deep stack, on a new goroutine
// each time vs through Go.
func BenchmarkDeepTask(b *testing.B) {
	deep := func(done chan<- int) func() {
		return func() { done <- recurse(200) }
	}
	b.Run("go", func(b *testing.B) {
		done := make(chan int)
		for b.Loop() {
			go deep(done)()
			<-done
		}
	})
	b.Run("warm", func(b *testing.B) {
		done := make(chan int)
		for b.Loop() {
			Go(deep(done))
			<-done
		}
	})
}

//go:noinline
func recurse(n int) int {
	var pad [64]byte
	pad[n%64] = byte(n)
	if n == 0 {
		return int(pad[0])
	}
	return recurse(n-1) + int(pad[n%64])
}
