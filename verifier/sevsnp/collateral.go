package sevsnp

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
)

// Collateral supplies the certificates and CRLs that Evidence does not
// carry. Implementations must be safe for concurrent use.
type Collateral interface {
	// VCEK returns the DER VCEK certificate of chip chipID at TCB tcb
	// (the report's REPORTED_TCB) of productLine.
	VCEK(ctx context.Context, productLine string, chipID [64]byte, tcb uint64) ([]byte, error)
	// CRL returns the DER CRL that productLine's ARK issues for its VCEK
	// (vlek false) or VLEK (vlek true) intermediates.
	CRL(ctx context.Context, productLine string, vlek bool) ([]byte, error)
}

// FetchError reports collateral that could not be obtained. A VCEK fetch
// that the KDS answers with 404 (Status http.StatusNotFound, Err
// ErrNotFound: AMD endorses no such chip at that TCB) makes the Verifier
// reject the report (CheckChain); any other FetchError makes it
// unavailable.
type FetchError struct {
	// Item names what was asked for (a URL, or a bundle key).
	Item string
	// Status is the last HTTP status (0 if none).
	Status int
	// Retryable tells whether a later attempt may succeed.
	Retryable bool
	Err       error
}

func (e *FetchError) Error() string {
	s := "sevsnp: fetching " + e.Item
	if e.Status != 0 {
		s += ": HTTP " + strconv.Itoa(e.Status)
	}
	if e.Err != nil {
		s += ": " + strings.TrimPrefix(e.Err.Error(), "sevsnp: ")
	}
	return s
}

func (e *FetchError) Unwrap() error { return e.Err }

// ErrNotFound matches collateral that the source does not have.
var ErrNotFound = errors.New("sevsnp: collateral not found")

// DefaultKDSURL is AMD's Key Distribution Service.
const DefaultKDSURL = "https://kdsintf.amd.com"

// maxCollateralSize bounds a certificate or CRL body.
const maxCollateralSize = 256 * 1024

// KDS fetches collateral from AMD's Key Distribution Service (AMD
// publication 57230). The zero value uses DefaultKDSURL and
// http.DefaultClient, with up to 3 retries after a 429 or 503 answer.
type KDS struct {
	// BaseURL replaces DefaultKDSURL (a mirror, or a test server).
	BaseURL string
	// Client is the HTTP client; nil means http.DefaultClient.
	Client *http.Client
	// MaxRetries bounds the retries after 429/503/transport errors; 0
	// means 3, negative means none.
	MaxRetries int
	// MaxRetryAfter caps the wait a Retry-After header may ask for; 0
	// means 30 s. A longer requested wait fails the fetch (retryable).
	MaxRetryAfter time.Duration
	// Backoff is the wait before a retry when no Retry-After is given,
	// doubled each time, with up to 50% jitter added; 0 means 1 s.
	Backoff time.Duration
}

var _ Collateral = (*KDS)(nil)

func (k *KDS) base() string {
	if k.BaseURL != "" {
		return strings.TrimSuffix(k.BaseURL, "/")
	}
	return DefaultKDSURL
}

// VCEKURL returns the KDS URL of a VCEK.
func (k *KDS) VCEKURL(productLine string, chipID [64]byte, tcb uint64) string {
	p := kds.DecomposeTCBVersion(kds.TCBVersion(tcb))
	return fmt.Sprintf("%s/vcek/v1/%s/%s?blSPL=%d&teeSPL=%d&snpSPL=%d&ucodeSPL=%d",
		k.base(), productLine, hex.EncodeToString(chipID[:]), p.BlSpl, p.TeeSpl, p.SnpSpl, p.UcodeSpl)
}

// CRLURL returns the KDS URL of a product's CRL.
func (k *KDS) CRLURL(productLine string, vlek bool) string {
	kind := "vcek"
	if vlek {
		kind = "vlek"
	}
	return fmt.Sprintf("%s/%s/v1/%s/crl", k.base(), kind, productLine)
}

// VCEK implements Collateral.
func (k *KDS) VCEK(ctx context.Context, productLine string, chipID [64]byte, tcb uint64) ([]byte, error) {
	if err := checkLine(productLine); err != nil {
		return nil, err
	}
	return k.get(ctx, k.VCEKURL(productLine, chipID, tcb))
}

// CRL implements Collateral.
func (k *KDS) CRL(ctx context.Context, productLine string, vlek bool) ([]byte, error) {
	if err := checkLine(productLine); err != nil {
		return nil, err
	}
	return k.get(ctx, k.CRLURL(productLine, vlek))
}

func checkLine(line string) error {
	if _, err := kds.ParseProductLine(line); err != nil {
		return &FetchError{Item: "product " + strconv.Quote(line), Err: ErrNotFound}
	}
	return nil
}

func (k *KDS) get(ctx context.Context, url string) ([]byte, error) {
	client := k.Client
	if client == nil {
		client = http.DefaultClient
	}
	retries := k.MaxRetries
	if retries == 0 {
		retries = 3
	}
	maxWait := k.MaxRetryAfter
	if maxWait <= 0 {
		maxWait = 30 * time.Second
	}
	backoff := k.Backoff
	if backoff <= 0 {
		backoff = time.Second
	}
	for attempt := 0; ; attempt++ {
		body, status, wait, err := k.once(ctx, client, url)
		if err == nil {
			return body, nil
		}
		fe := &FetchError{Item: url, Status: status, Err: err}
		fe.Retryable = status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable ||
			status >= 500 || (status == 0 && ctx.Err() == nil)
		if status == http.StatusNotFound {
			fe.Err = ErrNotFound
		}
		if !fe.Retryable || attempt >= retries {
			return nil, fe
		}
		if wait < 0 { // no Retry-After: exponential backoff with jitter
			wait = backoff << attempt
			wait += rand.N(wait/2 + 1)
		}
		if wait > maxWait {
			fe.Err = fmt.Errorf("%w (server asks to wait %v, limit %v)", err, wait, maxWait)
			return nil, fe
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			fe.Err = fmt.Errorf("%w (retry after %v is past the deadline)", err, wait)
			return nil, fe
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			fe.Err = ctx.Err()
			return nil, fe
		}
	}
}

// once makes one request. wait is the Retry-After delay, or -1.
func (k *KDS) once(ctx context.Context, client *http.Client, url string) ([]byte, int, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, -1, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, -1, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, resp.StatusCode, retryAfter(resp.Header.Get("Retry-After")), errors.New(http.StatusText(resp.StatusCode))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCollateralSize+1))
	if err != nil {
		return nil, 0, -1, err
	}
	if len(body) > maxCollateralSize {
		return nil, resp.StatusCode, -1, fmt.Errorf("response exceeds %d bytes", maxCollateralSize)
	}
	return body, 0, -1, nil
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

// Cache is a Collateral that keeps what its Source returned while it is
// valid: certificates until NotAfter, CRLs until NextUpdate. It keeps items
// in memory and, if Dir is set, in files there (vcek-<product>-<chip
// id>-<tcb>.der, crl-<product>-<vcek|vlek>.der), which survive restarts and
// can serve as an offline Bundle. It never returns an item outside its
// validity period: such an item is fetched again. Concurrent requests for
// one item share one fetch. A failed fetch is remembered for FailureTTL
// and its error returned again without asking Source (a KDS that rate
// limits, or has no VCEK for a chip, is asked once, not once per report);
// a fetch abandoned because its caller's ctx ended is not remembered. The
// zero value is not usable: Source is required.
type Cache struct {
	// Source is where missing or expired items come from.
	Source Collateral
	// Dir is the on-disk cache directory ("" for memory only). It is
	// created if needed; files are written atomically, mode 0600.
	Dir string
	// Time gives the current time; nil means time.Now.
	Time func() time.Time
	// FailureTTL is how long a failed fetch is remembered: 0 means
	// DefaultFailureTTL, a negative value means failures are not cached.
	// At most maxFailures failures are remembered.
	FailureTTL time.Duration

	mu       sync.Mutex
	items    map[string]cached
	inflight map[string]*call
	failed   map[string]failure
}

// DefaultFailureTTL is how long a Cache remembers a failed fetch.
const DefaultFailureTTL = time.Minute

// maxFailures bounds the failures a Cache remembers (reports name chips
// at will, so failed keys are the peer's choice).
const maxFailures = 1024

type failure struct {
	err   error
	until time.Time
}

var _ Collateral = (*Cache)(nil)

type cached struct {
	der        []byte
	start, end time.Time
}

type call struct {
	done chan struct{}
	der  []byte
	err  error
}

func (c *Cache) now() time.Time {
	if c.Time != nil {
		return c.Time()
	}
	return time.Now()
}

// VCEK implements Collateral.
func (c *Cache) VCEK(ctx context.Context, productLine string, chipID [64]byte, tcb uint64) ([]byte, error) {
	if err := checkLine(productLine); err != nil {
		return nil, err
	}
	key := fmt.Sprintf("vcek-%s-%s-%016x.der", productLine, hex.EncodeToString(chipID[:]), tcb)
	return c.get(ctx, key, validityOfCert, func(ctx context.Context) ([]byte, error) {
		return c.Source.VCEK(ctx, productLine, chipID, tcb)
	})
}

// CRL implements Collateral.
func (c *Cache) CRL(ctx context.Context, productLine string, vlek bool) ([]byte, error) {
	if err := checkLine(productLine); err != nil {
		return nil, err
	}
	key := "crl-" + productLine + "-vcek.der"
	if vlek {
		key = "crl-" + productLine + "-vlek.der"
	}
	return c.get(ctx, key, validityOfCRL, func(ctx context.Context) ([]byte, error) {
		return c.Source.CRL(ctx, productLine, vlek)
	})
}

func validityOfCert(der []byte) (time.Time, time.Time, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	return cert.NotBefore, cert.NotAfter, nil
}

func validityOfCRL(der []byte) (time.Time, time.Time, error) {
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	if crl.NextUpdate.IsZero() {
		return time.Time{}, time.Time{}, errors.New("CRL has no NextUpdate")
	}
	return crl.ThisUpdate, crl.NextUpdate, nil
}

func valid(now, start, end time.Time) bool { return !now.Before(start) && !now.After(end) }

func (c *Cache) get(ctx context.Context, key string, validity func([]byte) (time.Time, time.Time, error),
	fetch func(context.Context) ([]byte, error)) ([]byte, error) {
	if c.Source == nil {
		return nil, errors.New("sevsnp: Cache has no Source")
	}
	for {
		c.mu.Lock()
		now := c.now()
		if it, ok := c.items[key]; ok && valid(now, it.start, it.end) {
			c.mu.Unlock()
			return it.der, nil
		}
		if f, ok := c.failed[key]; ok {
			if now.Before(f.until) {
				c.mu.Unlock()
				return nil, f.err
			}
			delete(c.failed, key)
		}
		if cl, ok := c.inflight[key]; ok {
			c.mu.Unlock()
			select {
			case <-cl.done:
				if cl.err != nil {
					return nil, cl.err
				}
				continue
			case <-ctx.Done():
				return nil, &FetchError{Item: key, Retryable: true, Err: ctx.Err()}
			}
		}
		cl := &call{done: make(chan struct{})}
		if c.inflight == nil {
			c.inflight = map[string]*call{}
			c.items = map[string]cached{}
			c.failed = map[string]failure{}
		}
		c.inflight[key] = cl
		c.mu.Unlock()

		it, err := c.load(ctx, key, validity, fetch)
		c.mu.Lock()
		delete(c.inflight, key)
		if err == nil {
			c.items[key] = it
		} else if ctx.Err() == nil {
			c.rememberFailureLocked(key, err)
		}
		cl.der, cl.err = it.der, err
		close(cl.done)
		c.mu.Unlock()
		if err != nil {
			return nil, err
		}
		return it.der, nil
	}
}

// rememberFailureLocked records a failed fetch of key for FailureTTL,
// keeping at most maxFailures (expired ones are dropped first).
func (c *Cache) rememberFailureLocked(key string, err error) {
	ttl := c.FailureTTL
	if ttl < 0 {
		return
	}
	if ttl == 0 {
		ttl = DefaultFailureTTL
	}
	now := c.now()
	if len(c.failed) >= maxFailures {
		for k, f := range c.failed {
			if !now.Before(f.until) {
				delete(c.failed, k)
			}
		}
	}
	if len(c.failed) >= maxFailures {
		for k := range c.failed { // full of live failures: forget one
			delete(c.failed, k)
			break
		}
	}
	c.failed[key] = failure{err: err, until: now.Add(ttl)}
}

// load reads key from disk if there and valid, else fetches it.
func (c *Cache) load(ctx context.Context, key string, validity func([]byte) (time.Time, time.Time, error),
	fetch func(context.Context) ([]byte, error)) (cached, error) {
	now := c.now()
	if c.Dir != "" {
		if der, err := readBounded(filepath.Join(c.Dir, key)); err == nil {
			if s, e, err := validity(der); err == nil && valid(now, s, e) {
				return cached{der: der, start: s, end: e}, nil
			}
		}
	}
	der, err := fetch(ctx)
	if err != nil {
		return cached{}, err
	}
	s, e, err := validity(der)
	if err != nil {
		return cached{}, &FetchError{Item: key, Err: fmt.Errorf("malformed: %w", err)}
	}
	if !valid(now, s, e) {
		return cached{}, &FetchError{Item: key, Err: fmt.Errorf("source served an item valid only from %v to %v", s, e)}
	}
	der = append([]byte(nil), der...)
	if c.Dir != "" {
		_ = writeAtomic(c.Dir, key, der) // a cache that cannot persist still serves from memory
	}
	return cached{der: der, start: s, end: e}, nil
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCollateralSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxCollateralSize {
		return nil, fmt.Errorf("sevsnp: %s exceeds %d bytes", path, maxCollateralSize)
	}
	return b, nil
}

func writeAtomic(dir, name string, b []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, name+".tmp*")
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	return os.Rename(f.Name(), filepath.Join(dir, name))
}

// Bundle is an offline Collateral: the VCEKs and CRLs a caller supplies,
// served without any network access. Items outside their validity period
// are not served. The ASK and ARK come from Config.Roots, not from here.
type Bundle struct {
	// VCEKs are DER VCEK certificates, matched by their HWID, TCB and
	// product name extensions.
	VCEKs [][]byte
	// CRLs are DER CRLs keyed "<product>/vcek" or "<product>/vlek".
	CRLs map[string][]byte
	// Time gives the current time; nil means time.Now.
	Time func() time.Time
}

var _ Collateral = (*Bundle)(nil)

// LoadBundle reads a bundle from dir: every file named crl-<product>-<vcek|
// vlek>.der is a CRL, every other *.der, *.cer or *.pem file a VCEK (the
// layout of a Cache directory).
func LoadBundle(dir string) (*Bundle, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("sevsnp: reading bundle: %w", err)
	}
	b := &Bundle{CRLs: map[string][]byte{}}
	for _, e := range ents {
		name := e.Name()
		ext := filepath.Ext(name)
		if !e.Type().IsRegular() || (ext != ".der" && ext != ".cer" && ext != ".pem") {
			continue
		}
		data, err := readBounded(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		if rest, ok := strings.CutPrefix(name, "crl-"); ok {
			line, kind, ok := strings.Cut(strings.TrimSuffix(rest, ext), "-")
			if !ok || (kind != "vcek" && kind != "vlek") {
				return nil, fmt.Errorf("sevsnp: bundle file %s: want crl-<product>-<vcek|vlek>.der", name)
			}
			b.CRLs[line+"/"+kind] = data
			continue
		}
		if ext == ".pem" {
			c, err := parsePEMCert(data)
			if err != nil {
				return nil, fmt.Errorf("sevsnp: bundle file %s: %w", name, err)
			}
			data = c
		}
		b.VCEKs = append(b.VCEKs, data)
	}
	return b, nil
}

func (b *Bundle) now() time.Time {
	if b.Time != nil {
		return b.Time()
	}
	return time.Now()
}

// VCEK implements Collateral.
func (b *Bundle) VCEK(_ context.Context, productLine string, chipID [64]byte, tcb uint64) ([]byte, error) {
	now := b.now()
	expired := false
	for _, der := range b.VCEKs {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			continue
		}
		exts, err := kds.CertificateExtensions(c, abi.VcekReportSigner)
		if err != nil || len(exts.HWID) != 64 || [64]byte(exts.HWID) != chipID || uint64(exts.TCBVersion) != tcb ||
			kds.ProductLineOfProductName(exts.ProductName) != productLine {
			continue
		}
		if !valid(now, c.NotBefore, c.NotAfter) {
			expired = true
			continue
		}
		return der, nil
	}
	item := fmt.Sprintf("bundle VCEK %s/%x/%016x", productLine, chipID[:8], tcb)
	if expired {
		return nil, &FetchError{Item: item, Err: errors.New("expired")}
	}
	return nil, &FetchError{Item: item, Err: ErrNotFound}
}

// CRL implements Collateral.
func (b *Bundle) CRL(_ context.Context, productLine string, vlek bool) ([]byte, error) {
	key := productLine + "/vcek"
	if vlek {
		key = productLine + "/vlek"
	}
	der, ok := b.CRLs[key]
	if !ok {
		return nil, &FetchError{Item: "bundle CRL " + key, Err: ErrNotFound}
	}
	s, e, err := validityOfCRL(der)
	if err != nil {
		return nil, &FetchError{Item: "bundle CRL " + key, Err: err}
	}
	if !valid(b.now(), s, e) {
		return nil, &FetchError{Item: "bundle CRL " + key, Err: errors.New("expired")}
	}
	return der, nil
}
