// Package collateral is what go-expat's technology verifiers share to
// obtain verification collateral (certificates, CRLs, TCB information):
// FetchError, the one error of a failed fetch; ErrNotFound, the source's
// authoritative "no such item"; HTTP, a bounded GET with retries honouring
// Retry-After; Cache, a bounded in-memory cache of verified items that
// coalesces concurrent fetches, never serves an item past its expiry and
// remembers failures for a bounded time; and Verified, a bounded LRU of
// verdicts a backend computed itself (verified certificate chains, checked
// CRLs), each served only within the period it holds for. verifier/sevsnp
// (AMD's KDS) and verifier/tdx (Intel's PCS) build their collateral
// sources and caches on it; a future backend can too. Each backend keeps what is its own: the
// item names, the URLs, and the parsing and verification of what is
// fetched (an offline bundle is a backend's source that answers from
// memory, failing with ErrNotFound for what it lacks).
package collateral

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrNotFound matches a fetch for an item the source does not have: an
// HTTP 404 (FetchError.Status http.StatusNotFound), or an item missing from
// an offline bundle (Status 0).
var ErrNotFound = errors.New("collateral: not found")

// FetchError reports collateral that could not be obtained.
type FetchError struct {
	// Item names what was asked for (a URL, or a bundle item).
	Item string
	// Status is the last HTTP status (0 if none).
	Status int
	// Retryable tells whether a later attempt may succeed.
	Retryable bool
	// Err is the cause, if any.
	Err error
}

func (e *FetchError) Error() string {
	s := "collateral: fetching " + e.Item
	if e.Status != 0 {
		s += ": HTTP " + strconv.Itoa(e.Status)
	}
	if e.Err != nil {
		s += ": " + strings.TrimPrefix(e.Err.Error(), "collateral: ")
	}
	return s
}

func (e *FetchError) Unwrap() error { return e.Err }

// NotFound reports whether err is a FetchError for an item that the
// source authoritatively does not have (HTTP 404), as opposed to one that
// could not be obtained now.
func NotFound(err error) bool {
	var fe *FetchError
	return errors.As(err, &fe) && fe.Status == http.StatusNotFound
}

// DefaultMaxSize is HTTP's bound on a response body when MaxSize is 0.
const DefaultMaxSize = 256 * 1024

// HTTP fetches collateral with GET requests. The zero value uses
// http.DefaultClient and retries 3 times after a 429 or 5xx answer or a
// transport error, waiting for Retry-After (at most 30 s) or an
// exponential backoff from 1 s with up to 50% jitter, and never past ctx's
// deadline. It is safe for concurrent use.
type HTTP struct {
	// Client is the HTTP client; nil means http.DefaultClient.
	Client *http.Client
	// MaxRetries bounds the retries; 0 means 3, negative means none.
	MaxRetries int
	// MaxRetryAfter caps the wait a Retry-After header may ask for; 0
	// means 30 s. A longer requested wait fails the fetch (retryable).
	MaxRetryAfter time.Duration
	// Backoff is the wait before a retry when no Retry-After is given,
	// doubled each time; 0 means 1 s.
	Backoff time.Duration
	// MaxSize bounds the response body; 0 means DefaultMaxSize.
	MaxSize int
}

// Get fetches url and returns the body and headers of a 200 answer. Every
// failure is a *FetchError (Item url); a 404 wraps ErrNotFound.
func (h *HTTP) Get(ctx context.Context, url string) ([]byte, http.Header, error) {
	retries := h.MaxRetries
	if retries == 0 {
		retries = 3
	}
	maxWait := h.MaxRetryAfter
	if maxWait <= 0 {
		maxWait = 30 * time.Second
	}
	backoff := h.Backoff
	if backoff <= 0 {
		backoff = time.Second
	}
	for attempt := 0; ; attempt++ {
		body, hdr, status, wait, err := h.once(ctx, url)
		if err == nil {
			return body, hdr, nil
		}
		fe := &FetchError{Item: url, Status: status, Err: err}
		fe.Retryable = status == http.StatusTooManyRequests || status >= 500 || (status == 0 && ctx.Err() == nil)
		if status == http.StatusNotFound {
			fe.Err = ErrNotFound
		}
		if !fe.Retryable || attempt >= retries {
			return nil, nil, fe
		}
		if wait < 0 { // no Retry-After: exponential backoff with jitter
			wait = backoff << attempt
			wait += rand.N(wait/2 + 1)
		}
		if wait > maxWait {
			fe.Err = fmt.Errorf("%w (server asks to wait %v, limit %v)", err, wait, maxWait)
			return nil, nil, fe
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			fe.Err = fmt.Errorf("%w (retry after %v is past the deadline)", err, wait)
			return nil, nil, fe
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			fe.Err = ctx.Err()
			return nil, nil, fe
		}
	}
}

// once makes one request. wait is the Retry-After delay, or -1.
func (h *HTTP) once(ctx context.Context, url string) ([]byte, http.Header, int, time.Duration, error) {
	client := h.Client
	if client == nil {
		client = http.DefaultClient
	}
	limit := h.MaxSize
	if limit <= 0 {
		limit = DefaultMaxSize
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, 0, -1, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, 0, -1, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, nil, resp.StatusCode, retryAfter(resp.Header.Get("Retry-After")), errors.New(http.StatusText(resp.StatusCode))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
	if err != nil {
		return nil, nil, 0, -1, err
	}
	if len(body) > limit {
		return nil, nil, http.StatusOK, -1, fmt.Errorf("response exceeds %d bytes", limit)
	}
	return body, resp.Header, 0, -1, nil
}

// retryAfter parses a Retry-After header (seconds or an HTTP date).
func retryAfter(h string) time.Duration {
	if h == "" {
		return -1
	}
	if s, err := strconv.ParseUint(h, 10, 32); err == nil {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(time.Until(t), 0)
	}
	return -1
}

// DefaultFailureTTL is how long a Cache remembers a failed fetch when
// FailureTTL is 0.
const DefaultFailureTTL = time.Minute

// DefaultMaxEntries bounds a Cache when MaxEntries is 0.
const DefaultMaxEntries = 1024

// Cache keeps verified collateral in memory until each item's expiry.
// Concurrent Gets of one key share one fetch; a Get never returns an item
// at or after its expiry; a failed fetch is remembered for FailureTTL and
// its error returned again without fetching (a source that rate limits,
// or has no item for a peer-chosen key, is asked once, not once per
// Evidence), except a fetch abandoned because its caller's ctx ended. The
// zero value is ready to use. A Cache must not be copied after first use.
type Cache[K comparable, V any] struct {
	// FailureTTL is how long a failure is remembered: 0 means
	// DefaultFailureTTL, negative means never.
	FailureTTL time.Duration
	// MaxEntries bounds the items and remembered failures (keys are often
	// the peer's choice): 0 means DefaultMaxEntries. When full, expired
	// entries are dropped first, then arbitrary ones.
	MaxEntries int

	mu      sync.Mutex
	entries map[K]*entry[V]
}

type entry[V any] struct {
	ready   chan struct{} // closed when the fetch is done
	val     V
	err     error
	expires time.Time // of val, or of the remembered failure
}

// Get returns the item for key, calling fetch when it is missing or
// expired at now (the caller's clock: the appraisal time). fetch returns
// the item and when it expires; an item that has already expired is
// returned to this caller but not kept.
func (c *Cache[K, V]) Get(ctx context.Context, key K, now time.Time, fetch func(context.Context) (V, time.Time, error)) (V, error) {
	var zero V
	for {
		c.mu.Lock()
		if e, ok := c.entries[key]; ok {
			select {
			case <-e.ready:
				if now.Before(e.expires) {
					c.mu.Unlock()
					return e.val, e.err
				}
				delete(c.entries, key) // expired item or failure: fetch again
			default:
				c.mu.Unlock()
				select {
				case <-e.ready:
					if e.err != nil {
						return zero, e.err // share the failure of the fetch we waited for
					}
					continue
				case <-ctx.Done():
					return zero, &FetchError{Item: fmt.Sprint(key), Retryable: true, Err: ctx.Err()}
				}
			}
		}
		if c.entries == nil {
			c.entries = map[K]*entry[V]{}
		}
		c.makeRoomLocked(now)
		e := &entry[V]{ready: make(chan struct{})}
		c.entries[key] = e
		c.mu.Unlock()

		val, exp, err := fetch(ctx)
		c.mu.Lock()
		e.val, e.err, e.expires = val, err, exp
		switch {
		case err == nil && !now.Before(exp):
			delete(c.entries, key) // already expired: do not keep it
		case err != nil && (ctx.Err() != nil || c.FailureTTL < 0):
			delete(c.entries, key) // abandoned, or failures are not remembered
		case err != nil:
			ttl := c.FailureTTL
			if ttl == 0 {
				ttl = DefaultFailureTTL
			}
			e.val, e.expires = zero, now.Add(ttl)
		}
		close(e.ready)
		c.mu.Unlock()
		return val, err
	}
}

// makeRoomLocked drops entries until one more fits: expired ones first,
// then any finished one. Fetches in flight are never dropped.
func (c *Cache[K, V]) makeRoomLocked(now time.Time) {
	limit := c.MaxEntries
	if limit <= 0 {
		limit = DefaultMaxEntries
	}
	if len(c.entries) < limit {
		return
	}
	for k, e := range c.entries {
		select {
		case <-e.ready:
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		default:
		}
	}
	for k, e := range c.entries {
		if len(c.entries) < limit {
			return
		}
		select {
		case <-e.ready:
			delete(c.entries, k)
		default:
		}
	}
}

// Len returns how many items and remembered failures the cache holds.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
