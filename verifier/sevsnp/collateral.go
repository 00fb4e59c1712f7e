package sevsnp

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"

	"github.com/attested-tls/go-expat/verifier/collateral"
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

// DefaultKDSURL is AMD's Key Distribution Service.
const DefaultKDSURL = "https://kdsintf.amd.com"

// maxCollateralSize bounds a certificate or CRL body.
const maxCollateralSize = collateral.DefaultMaxSize

// KDS fetches collateral from AMD's Key Distribution Service (AMD
// publication 57230). The zero value uses DefaultKDSURL and
// collateral.HTTP's defaults (http.DefaultClient, up to 3 retries after a
// 429 or 5xx answer, Retry-After honoured up to 30 s). A 404 is a
// *collateral.FetchError with Status 404 wrapping collateral.ErrNotFound:
// the Verifier rejects a report whose VCEK AMD does not have.
type KDS struct {
	// BaseURL replaces DefaultKDSURL (a mirror, or a test server).
	BaseURL string
	// HTTP makes the requests (client, retries, backoff, size bound).
	HTTP collateral.HTTP
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
		return &collateral.FetchError{Item: "product " + strconv.Quote(line), Err: collateral.ErrNotFound}
	}
	return nil
}

func (k *KDS) get(ctx context.Context, url string) ([]byte, error) {
	body, _, err := k.HTTP.Get(ctx, url)
	return body, err
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
	// collateral.DefaultFailureTTL, a negative value means failures are
	// not cached. At most collateral.DefaultMaxEntries items and failures
	// are kept.
	FailureTTL time.Duration

	once sync.Once
	mem  collateral.Cache[string, []byte]
}

var _ Collateral = (*Cache)(nil)

type cached struct {
	der        []byte
	start, end time.Time
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
	c.once.Do(func() { c.mem.FailureTTL = c.FailureTTL })
	return c.mem.Get(ctx, key, c.now(), func(ctx context.Context) ([]byte, time.Time, error) {
		it, err := c.load(ctx, key, validity, fetch)
		return it.der, it.end, err
	})
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
		return cached{}, &collateral.FetchError{Item: key, Err: fmt.Errorf("malformed: %w", err)}
	}
	if !valid(now, s, e) {
		return cached{}, &collateral.FetchError{Item: key, Err: fmt.Errorf("source served an item valid only from %v to %v", s, e)}
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
		return nil, &collateral.FetchError{Item: item, Err: errors.New("expired")}
	}
	return nil, &collateral.FetchError{Item: item, Err: collateral.ErrNotFound}
}

// CRL implements Collateral.
func (b *Bundle) CRL(_ context.Context, productLine string, vlek bool) ([]byte, error) {
	key := productLine + "/vcek"
	if vlek {
		key = productLine + "/vlek"
	}
	der, ok := b.CRLs[key]
	if !ok {
		return nil, &collateral.FetchError{Item: "bundle CRL " + key, Err: collateral.ErrNotFound}
	}
	s, e, err := validityOfCRL(der)
	if err != nil {
		return nil, &collateral.FetchError{Item: "bundle CRL " + key, Err: err}
	}
	if !valid(b.now(), s, e) {
		return nil, &collateral.FetchError{Item: "bundle CRL " + key, Err: errors.New("expired")}
	}
	return der, nil
}
