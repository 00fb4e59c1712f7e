package veraison

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/veraison/ear"

	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/verifier"
)

// Veraison REST API (github.com/veraison/services v0.0.2501,
// verification/api): paths and media types.
const (
	pathNewSession = "/challenge-response/v1/newSession"
	pathWellKnown  = "/.well-known/veraison/verification"

	mediaTypeSession   = "application/vnd.veraison.challenge-response-session+json"
	mediaTypeDiscovery = "application/vnd.veraison.discovery+json"
	mediaTypeCMWCBOR   = "application/cmw+cbor"
	mediaTypeCMWJSON   = "application/cmw+json"
)

// Defaults for the zero Config.
const (
	DefaultMaxAttempts     = 3
	DefaultRetryBase       = 100 * time.Millisecond
	DefaultRetryMax        = 2 * time.Second
	DefaultRequestTimeout  = 10 * time.Second
	DefaultMaxResponseSize = 1 << 20
	DefaultMaxEARAge       = 5 * time.Minute
)

// Config configures a Client. It must not be modified after New.
type Config struct {
	// URL is the base URL of Veraison's verification service, e.g.
	// "https://veraison.example:8080". Required.
	URL string
	// HTTPClient sends the requests; nil means a new http.Client with
	// default settings. Its Timeout, if any, applies per request.
	HTTPClient *http.Client
	// EARKey is the Verifier's EAR signing public key (*ecdsa.PublicKey or
	// ed25519.PublicKey). It takes precedence over fetching.
	//
	// When nil, the key is fetched once from the service's
	// /.well-known/veraison/verification endpoint and cached: trust on first
	// use. Whoever answers that first request (over plain HTTP, anyone on
	// the path) decides which key signs "affirming" results from then on.
	// Configure the key, or at least use HTTPS with a trusted CA.
	EARKey crypto.PublicKey
	// AllowWarning accepts results whose worst submodule status is
	// "warning". By default only "affirming" results are accepted.
	AllowWarning bool
	// MaxAttempts bounds the attempts per appraisal (one attempt = new
	// session, submission, deletion); 0 means DefaultMaxAttempts.
	// Attempts are retried only on unreachable, 5xx and 429 answers.
	MaxAttempts int
	// RetryBase is the base of the exponential backoff with full jitter
	// (capped at DefaultRetryMax, and by Retry-After for 429); 0 means
	// DefaultRetryBase.
	RetryBase time.Duration
	// RequestTimeout bounds each HTTP request, also when ctx has no
	// deadline; 0 means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// MaxResponseSize bounds response bodies; 0 means
	// DefaultMaxResponseSize.
	MaxResponseSize int64
	// MaxEARAge bounds the age of a passport's EAR (issued-at) when
	// Verify appraises an EAR record; 0 means DefaultMaxEARAge.
	MaxEARAge time.Duration
	// Time returns the current time; nil means time.Now.
	Time func() time.Time
	// Logger receives debug logs of retries; nil discards them.
	Logger *slog.Logger
}

// Client talks to one Veraison verification service. It is safe for
// concurrent use.
type Client struct {
	cfg  Config
	base *url.URL

	mu     sync.Mutex
	key    crypto.PublicKey // configured or fetched
	keyAlg jwa.SignatureAlgorithm
}

// HTTPError is an unexpected HTTP answer from Veraison.
type HTTPError struct {
	Op         string // "new session", "submit", "well-known"
	StatusCode int
	Detail     string // the problem detail (RFC 7807), if any
}

func (e *HTTPError) Error() string {
	s := "veraison: " + e.Op + ": HTTP " + strconv.Itoa(e.StatusCode)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("veraison: bad URL %q", cfg.URL)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = DefaultRetryBase
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.MaxResponseSize <= 0 {
		cfg.MaxResponseSize = DefaultMaxResponseSize
	}
	if cfg.MaxEARAge <= 0 {
		cfg.MaxEARAge = DefaultMaxEARAge
	}
	if cfg.Time == nil {
		cfg.Time = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{cfg: cfg, base: u}
	if cfg.EARKey != nil {
		alg, err := algFor(cfg.EARKey)
		if err != nil {
			return nil, err
		}
		c.key, c.keyAlg = cfg.EARKey, alg
	}
	return c, nil
}

// URL returns the service's base URL.
func (c *Client) URL() string { return c.base.String() }

func algFor(k crypto.PublicKey) (jwa.SignatureAlgorithm, error) {
	switch k := k.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return jwa.ES256(), nil
		case elliptic.P384():
			return jwa.ES384(), nil
		case elliptic.P521():
			return jwa.ES512(), nil
		}
	case ed25519.PublicKey:
		return jwa.EdDSA(), nil
	}
	return jwa.SignatureAlgorithm{}, fmt.Errorf("veraison: unsupported EAR key type %T", k)
}

// Appraisal is the checked outcome of one Veraison appraisal.
type Appraisal struct {
	// EAR is the signed Attestation Result (a JWT), as received.
	EAR []byte
	// Result is the decoded, signature-checked EAR.
	Result *ear.AttestationResult
}

// Appraise sends evidence (a serialized CMW record) to Veraison in a new
// challenge-response session whose nonce is nonce (8 to 64 bytes; go-expat
// uses the 64-byte ReportData64), and returns the EAR after checking its
// signature, that it echoes nonce, and its status (affirming, or warning
// with AllowWarning). Unreachable, slow, 5xx and 429 answers are retried
// within MaxAttempts and ctx; they end in a *verifier.UnavailableError.
// A bad signature, a wrong nonce or a rejecting status is a
// *verifier.RejectedError.
func (c *Client) Appraise(ctx context.Context, evidence, nonce []byte) (*Appraisal, error) {
	if len(nonce) < 8 || len(nonce) > 64 {
		return nil, fmt.Errorf("veraison: nonce of %d bytes, want 8..64", len(nonce))
	}
	dec, err := cmw.Decode(evidence, nil)
	if err != nil {
		return nil, verifier.Reject(verifier.CheckFormat, err, "veraison: evidence CMW")
	}
	if dec.IsCollection() {
		// Veraison v0.0.2501 accepts CMW records only.
		return nil, verifier.Reject(verifier.CheckFormat, nil, "veraison: CMW collections are not supported by Veraison")
	}
	ctype := mediaTypeCMWCBOR
	if dec.Format().IsJSON() {
		ctype = mediaTypeCMWJSON
	}
	key, alg, err := c.earKey(ctx)
	if err != nil {
		return nil, err
	}

	var last error
	for attempt := 1; ; attempt++ {
		raw, retryAfter, err := c.attempt(ctx, ctype, evidence, nonce)
		if err == nil {
			return c.check(raw, key, alg, nonce)
		}
		last = err
		var ue *verifier.UnavailableError
		if !errors.As(err, &ue) || !ue.Retryable || attempt >= c.cfg.MaxAttempts {
			return nil, err
		}
		d := c.backoff(attempt, retryAfter)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
			return nil, verifier.Unavailable(true, last, "veraison: no time left for attempt %d", attempt+1)
		}
		c.cfg.Logger.Debug("veraison: retrying", "attempt", attempt, "wait", d, "err", err)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, verifier.Unavailable(true, ctx.Err(), "veraison: gave up after %d attempts (last: %v)", attempt, last)
		case <-t.C:
		}
	}
}

func (c *Client) backoff(attempt int, retryAfter time.Duration) time.Duration {
	max := c.cfg.RetryBase << (attempt - 1)
	if max > DefaultRetryMax || max <= 0 {
		max = DefaultRetryMax
	}
	d := time.Duration(rand.Int64N(int64(max) + 1)) // full jitter
	if retryAfter > d {
		d = min(retryAfter, DefaultRetryMax)
	}
	return d
}

// attempt runs one session: create (with our nonce), submit, delete.
func (c *Client) attempt(ctx context.Context, ctype string, evidence, nonce []byte) (ear []byte, retryAfter time.Duration, err error) {
	u := c.base.JoinPath(pathNewSession)
	q := url.Values{}
	q.Set("nonce", base64.URLEncoding.EncodeToString(nonce))
	u.RawQuery = q.Encode()
	resp, body, err := c.do(ctx, "new session", http.MethodPost, u.String(), "", nil)
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode != http.StatusCreated {
		return nil, retryAfterOf(resp), statusErr("new session", resp, body)
	}
	sess, err := parseSession(resp, body)
	if err != nil {
		return nil, 0, verifier.Unavailable(false, err, "veraison: new session")
	}
	if subtle.ConstantTimeCompare(sess.Nonce, nonce) != 1 {
		return nil, 0, verifier.Reject(verifier.CheckNonce, nil, "veraison: session nonce differs from the one requested")
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.Header.Get("Location") == "" {
		return nil, 0, verifier.Unavailable(false, err, "veraison: new session: bad Location header")
	}
	sessURL := u.ResolveReference(loc)
	if sessURL.Scheme != c.base.Scheme || sessURL.Host != c.base.Host {
		return nil, 0, verifier.Unavailable(false, nil, "veraison: new session: Location %q leaves the service", sessURL)
	}
	defer c.deleteSession(ctx, sessURL.String())

	resp, body, err = c.do(ctx, "submit", http.MethodPost, sessURL.String(), ctype, evidence)
	if err != nil {
		return nil, 0, err
	}
	for polls := 0; resp.StatusCode == http.StatusAccepted; polls++ {
		// Asynchronous appraisal: poll the session (Veraison v0.0.2501
		// answers synchronously; this is for later versions).
		if polls >= 50 {
			return nil, 0, verifier.Unavailable(true, nil, "veraison: appraisal still processing")
		}
		select {
		case <-ctx.Done():
			return nil, 0, verifier.Unavailable(true, ctx.Err(), "veraison: waiting for the appraisal")
		case <-time.After(20 * time.Millisecond):
		}
		resp, body, err = c.do(ctx, "poll", http.MethodGet, sessURL.String(), "", nil)
		if err != nil {
			return nil, 0, err
		}
	}
	if resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnsupportedMediaType {
		return nil, 0, verifier.Reject(verifier.CheckFormat, httpError("submit", resp, body), "veraison: evidence refused")
	}
	if resp.StatusCode != http.StatusOK {
		return nil, retryAfterOf(resp), statusErr("submit", resp, body)
	}
	sess, err = parseSession(resp, body)
	if err != nil {
		return nil, 0, verifier.Unavailable(false, err, "veraison: submit")
	}
	switch sess.Status {
	case "complete":
	case "failed":
		return nil, 0, verifier.Unavailable(true, nil, "veraison: session failed")
	default:
		return nil, 0, verifier.Unavailable(false, nil, "veraison: session status %q", sess.Status)
	}
	if subtle.ConstantTimeCompare(sess.Nonce, nonce) != 1 {
		return nil, 0, verifier.Reject(verifier.CheckNonce, nil, "veraison: session answer carries another nonce")
	}
	if sess.Result == nil || *sess.Result == "" {
		return nil, 0, verifier.Unavailable(false, nil, "veraison: complete session without a result")
	}
	return []byte(*sess.Result), 0, nil
}

func (c *Client) deleteSession(ctx context.Context, u string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if _, _, err := c.do(ctx, "delete session", http.MethodDelete, u, "", nil); err != nil {
		c.cfg.Logger.Debug("veraison: deleting session", "err", err)
	}
}

type session struct {
	Status string  `json:"status"`
	Nonce  []byte  `json:"nonce"`
	Result *string `json:"result"`
}

func parseSession(resp *http.Response, body []byte) (*session, error) {
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != mediaTypeSession {
		return nil, fmt.Errorf("content type %q, want %s", resp.Header.Get("Content-Type"), mediaTypeSession)
	}
	var s session
	d := json.NewDecoder(bytes.NewReader(body))
	if err := d.Decode(&s); err != nil {
		return nil, fmt.Errorf("session JSON: %w", err)
	}
	if d.More() {
		return nil, errors.New("session JSON: trailing data")
	}
	return &s, nil
}

func retryAfterOf(resp *http.Response) time.Duration {
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return 0
}

func statusErr(op string, resp *http.Response, body []byte) error {
	he := httpError(op, resp, body)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return verifier.Unavailable(true, he, "veraison: throttled")
	case resp.StatusCode >= 500:
		return verifier.Unavailable(true, he, "veraison: server error")
	default:
		return verifier.Unavailable(false, he, "veraison: unexpected answer")
	}
}

func httpError(op string, resp *http.Response, body []byte) *HTTPError {
	he := &HTTPError{Op: op, StatusCode: resp.StatusCode}
	var p struct {
		Detail string `json:"detail"`
	}
	if json.Unmarshal(body, &p) == nil && len(p.Detail) < 512 {
		he.Detail = p.Detail
	}
	return he
}

// do sends one request bounded by RequestTimeout and reads at most
// MaxResponseSize bytes of the answer.
func (c *Client) do(ctx context.Context, op, method, u, ctype string, body []byte) (*http.Response, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, nil, verifier.Unavailable(false, err, "veraison: %s: request", op)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if op == "well-known" {
		req.Header.Set("Accept", mediaTypeDiscovery)
	} else {
		req.Header.Set("Accept", mediaTypeSession)
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, nil, verifier.Unavailable(true, err, "veraison: %s: unreachable or too slow", op)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxResponseSize+1))
	if err != nil {
		return nil, nil, verifier.Unavailable(true, err, "veraison: %s: reading the answer", op)
	}
	if int64(len(b)) > c.cfg.MaxResponseSize {
		return nil, nil, verifier.Unavailable(false, nil, "veraison: %s: answer larger than %d bytes", op, c.cfg.MaxResponseSize)
	}
	return resp, b, nil
}

// earKey returns the configured key, or fetches and caches the service's
// (trust on first use: see Config.EARKey).
func (c *Client) earKey(ctx context.Context) (crypto.PublicKey, jwa.SignatureAlgorithm, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.key != nil {
		return c.key, c.keyAlg, nil
	}
	resp, body, err := c.do(ctx, "well-known", http.MethodGet, c.base.JoinPath(pathWellKnown).String(), "", nil)
	if err != nil {
		return nil, jwa.SignatureAlgorithm{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, jwa.SignatureAlgorithm{}, statusErr("well-known", resp, body)
	}
	var wk struct {
		Key json.RawMessage `json:"ear-verification-key"`
	}
	if err := json.Unmarshal(body, &wk); err != nil || len(wk.Key) == 0 {
		return nil, jwa.SignatureAlgorithm{}, verifier.Unavailable(false, err, "veraison: well-known: no ear-verification-key")
	}
	k, err := jwk.ParseKey(wk.Key)
	if err != nil {
		return nil, jwa.SignatureAlgorithm{}, verifier.Unavailable(false, err, "veraison: well-known: bad JWK")
	}
	var pub any
	if err := jwk.Export(k, &pub); err != nil {
		return nil, jwa.SignatureAlgorithm{}, verifier.Unavailable(false, err, "veraison: well-known: JWK")
	}
	if p, ok := pub.(ecdsa.PublicKey); ok {
		pub = &p
	}
	alg, err := algFor(pub)
	if err != nil {
		return nil, jwa.SignatureAlgorithm{}, verifier.Unavailable(false, err, "veraison: well-known")
	}
	if a, ok := k.Algorithm(); ok && a.String() != alg.String() {
		return nil, jwa.SignatureAlgorithm{}, verifier.Unavailable(false, nil, "veraison: well-known: JWK alg %q does not fit its key (%s)", a, alg)
	}
	c.key, c.keyAlg = pub, alg
	return pub, alg, nil
}

// check verifies an EAR: signature, profile, nonce echo, status.
func (c *Client) check(raw []byte, key crypto.PublicKey, alg jwa.SignatureAlgorithm, nonce []byte) (*Appraisal, error) {
	if len(raw) > int(c.cfg.MaxResponseSize) {
		return nil, verifier.Reject(verifier.CheckFormat, nil, "veraison: EAR too large")
	}
	var r ear.AttestationResult
	if err := r.Verify(raw, alg, key); err != nil {
		return nil, verifier.Reject(verifier.CheckSignature, err, "veraison: EAR signature")
	}
	if r.Profile == nil || (*r.Profile != ear.EatProfile) {
		return nil, verifier.Reject(verifier.CheckFormat, nil, "veraison: EAR profile")
	}
	if r.IssuedAt == nil || len(r.Submods) == 0 {
		return nil, verifier.Reject(verifier.CheckFormat, nil, "veraison: EAR without iat or submods")
	}
	if r.Nonce == nil {
		return nil, verifier.Reject(verifier.CheckNonce, nil, "veraison: EAR has no eat_nonce")
	}
	got, err := decodeNonce(*r.Nonce)
	if err != nil || subtle.ConstantTimeCompare(got, nonce) != 1 {
		return nil, verifier.Reject(verifier.CheckNonce, err, "veraison: EAR answers another challenge")
	}
	worst := verifier.TierAffirming
	for name, a := range r.Submods {
		if a == nil || a.Status == nil {
			return nil, verifier.Reject(verifier.CheckFormat, nil, "veraison: EAR submodule %q has no status", name)
		}
		worst = verifier.WorstTier(worst, verifier.Tier(*a.Status))
	}
	switch {
	case worst == verifier.TierAffirming:
	case worst == verifier.TierWarning && c.cfg.AllowWarning:
	default:
		return nil, verifier.Reject(verifier.CheckStatus, nil, "veraison: EAR status %s (%s)", worst, submodSummary(&r))
	}
	return &Appraisal{EAR: bytes.Clone(raw), Result: &r}, nil
}

// decodeNonce accepts base64url with or without padding (Veraison pads).
func decodeNonce(s string) ([]byte, error) {
	if strings.HasSuffix(s, "=") {
		return base64.URLEncoding.DecodeString(s)
	}
	return base64.RawURLEncoding.DecodeString(s)
}

func submodSummary(r *ear.AttestationResult) string {
	var parts []string
	for name, a := range r.Submods {
		s := name + "="
		if a.Status != nil {
			s += a.Status.String()
		}
		parts = append(parts, s)
	}
	return strings.Join(sortStrings(parts), ", ")
}
