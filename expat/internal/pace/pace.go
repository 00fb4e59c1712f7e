// Package pace paces the attestations one connection performs for its
// peer, for expat.Conn and for the integrations (expathttp, expatgrpc,
// expatquic): at most Max requests waiting or in progress (more is the
// peer's protocol violation), and starts at least Interval apart, in real
// time (a request arriving sooner waits for its turn).
package pace

import (
	"errors"
	"sync"
	"time"
)

// ErrTooManyRequests is Start's refusal: the peer has more attestation
// requests waiting or in progress than Max.
var ErrTooManyRequests = errors.New("peer has too many attestation requests in progress")

// Pacer is the pace of one connection. Safe for concurrent use.
type Pacer struct {
	max      int
	interval time.Duration

	mu    sync.Mutex
	count int
	next  time.Time
}

// New returns a Pacer for at most max requests at once (max > 0), started
// interval apart.
func New(max int, interval time.Duration) *Pacer {
	return &Pacer{max: max, interval: interval}
}

// Start counts one request, or refuses it when Max are already counted,
// and returns how long the caller must wait before it starts the work.
// Every successful Start is followed by one Done.
func (p *Pacer) Start() (time.Duration, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.count >= p.max {
		return 0, ErrTooManyRequests
	}
	p.count++
	now := time.Now()
	start := now
	if p.next.After(start) {
		start = p.next
	}
	p.next = start.Add(p.interval)
	return start.Sub(now), nil
}

// Done ends a request that Start counted.
func (p *Pacer) Done() {
	p.mu.Lock()
	p.count--
	p.mu.Unlock()
}
