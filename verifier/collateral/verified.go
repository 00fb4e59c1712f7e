package collateral

import (
	"container/list"
	"sync"
	"time"
)

// Verified is a bounded cache of verdicts that a backend computed itself,
// with no fetch: a certificate chain it verified, a CRL whose signature it
// checked. Each entry holds only within the period [from, until] that the
// backend gave with it, a period within which its checks of the same
// inputs give the same verdict (for a chain, the intersection of its
// certificates' validity periods; for a CRL, thisUpdate to nextUpdate):
// Get returns an entry only at an appraisal time within it, so a cached
// verdict is never served past a certificate's NotAfter. Only successes
// are kept (Put is called after a check passed); a failure is checked
// again every time. The key must name everything the verdict depends on:
// typically a SHA-256 over the exact bytes checked, plus what the caller
// checked them against. When full, the least recently used entry is
// dropped. The zero value is ready to use; it is safe for concurrent use.
//
// Unlike Cache, Verified neither fetches nor coalesces: a miss costs the
// caller one check, which two callers may make at once.
type Verified[K comparable, V any] struct {
	// MaxEntries bounds the entries: 0 means DefaultMaxEntries, negative
	// disables the cache (Get always misses, Put keeps nothing).
	MaxEntries int

	mu      sync.Mutex
	entries map[K]*list.Element
	lru     list.List // of *verifiedEntry[K, V], most recently used first
}

type verifiedEntry[K comparable, V any] struct {
	key         K
	val         V
	from, until time.Time
}

// Get returns the value kept for key if now is within its period
// (inclusive at both ends). An entry whose period ended before now is
// dropped.
func (c *Verified[K, V]) Get(key K, now time.Time) (V, bool) {
	var zero V
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return zero, false
	}
	e := el.Value.(*verifiedEntry[K, V])
	if now.After(e.until) {
		c.lru.Remove(el)
		delete(c.entries, key)
		return zero, false
	}
	if now.Before(e.from) {
		return zero, false
	}
	c.lru.MoveToFront(el)
	return e.val, true
}

// Put keeps val for key, valid from from to until (inclusive), replacing
// any entry for key. An empty period (until before from) keeps nothing.
func (c *Verified[K, V]) Put(key K, val V, from, until time.Time) {
	limit := c.MaxEntries
	if limit == 0 {
		limit = DefaultMaxEntries
	}
	if limit < 0 || until.Before(from) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[K]*list.Element{}
	}
	if el, ok := c.entries[key]; ok {
		el.Value = &verifiedEntry[K, V]{key: key, val: val, from: from, until: until}
		c.lru.MoveToFront(el)
		return
	}
	for len(c.entries) >= limit {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.entries, old.Value.(*verifiedEntry[K, V]).key)
	}
	c.entries[key] = c.lru.PushFront(&verifiedEntry[K, V]{key: key, val: val, from: from, until: until})
}

// Len returns how many entries the cache holds (expired ones included
// until a Get or an eviction drops them).
func (c *Verified[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
