// Package warm runs short tasks on goroutines kept for a moment after
// their task ends. A new goroutine starts with a small stack, and a task
// that signs or verifies (ECDSA, RSA) grows it, copying it each time it
// doubles: measured on an attested re-attestation, that copying was 12 %
// of the CPU. A kept goroutine has grown its stack already.
//
// At most maxIdle goroutines wait for work at a time, each for at most
// idleFor; Go never blocks and never queues (it starts a new goroutine
// when none is waiting), so a task never waits behind another.
package warm

import (
	"sync/atomic"
	"time"
)

const (
	maxIdle = 16
	idleFor = time.Second
)

var (
	tasks = make(chan func())
	idle  atomic.Int32
)

// Go runs f in a goroutine of its own: a waiting one if there is one, a
// new one otherwise.
func Go(f func()) {
	select {
	case tasks <- f:
	default:
		go work(f)
	}
}

func work(f func()) {
	var t *time.Timer
	for {
		f()
		f = nil
		if idle.Add(1) > maxIdle {
			idle.Add(-1)
			return
		}
		if t == nil {
			t = time.NewTimer(idleFor)
		} else {
			t.Reset(idleFor)
		}
		select {
		case f = <-tasks:
			idle.Add(-1)
			t.Stop()
		case <-t.C:
			idle.Add(-1)
			return
		}
	}
}
