package veraison

import (
	"bytes"
	"context"
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

	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/verifier"
	expatear "github.com/attested-tls/go-expat/verifier/ear"
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

// Session cleanup and connection reuse.
const (
	// MaxPendingDeletes bounds the session deletions a Client has in
	// flight. Deleting a session is an optional cleanup step of Veraison's
	// challenge-response API (sessions are garbage collected after their
	// expiry anyway), so a Client sends it in the background, after the
	// appraisal returned, and skips it when this many are still pending.
	MaxPendingDeletes = 8
	// DeleteTimeout bounds each session deletion.
	DeleteTimeout = time.Second
	// MaxIdleConnsPerHost is the idle keep-alive connections the Client's
	// own transport (Config.HTTPClient nil, or without a Transport) keeps
	// to the service, so that concurrent appraisals and background
	// deletions reuse connections instead of dialling (and for https,
	// handshaking) again; net/http's default keeps 2.
	MaxIdleConnsPerHost = 32
)

// Config configures a Client. The zero value (and a nil *Config) is
// refused by New: URL and EARKeys are required, so that no Client exists
// without a service and the keys its EARs must be signed with. Every other
// zero field means the default named in its comment. A Config must not be
// modified after New.
type Config struct {
	// URL is the base URL of Veraison's verification service, e.g.
	// "https://veraison.example:8080". Required.
	URL string
	// HTTPClient sends the requests; nil means a new http.Client with
	// default settings. Its Timeout, if any, applies per request. The
	// Client uses a copy whose CheckRedirect refuses every redirect: the
	// Evidence never goes anywhere but URL's host, and a redirecting
	// service is unavailable (not retried). A nil Transport (also with a
	// nil HTTPClient) means the Client's own: net/http's default
	// transport keeping up to MaxIdleConnsPerHost idle connections, closed
	// by Client.Close. A Transport of the caller's should keep-alive
	// enough connections for the appraisals in flight plus
	// MaxPendingDeletes.
	HTTPClient *http.Client
	// EARKeys are the keys the service signs its EARs with (the public
	// part of its EAR signing key; ear.KeysFromJWKS reads a JWK Set; a key
	// with an ID is tried only for EARs whose kid is that ID). An EAR
	// signed by any other key is rejected (CheckSignature). Required,
	// unless InsecureTrustServiceKey is set: New refuses a Config with
	// neither.
	EARKeys []expatear.TrustedKey
	// InsecureTrustServiceKey, with no EARKeys, fetches the EAR signing
	// key from the service's /.well-known/veraison/verification endpoint
	// on first use and trusts it from then on (trust on first use).
	// Whoever answers that request (over plain HTTP, anyone on the path)
	// decides which key signs "affirming" results. Never set it in
	// production; it is ignored when EARKeys is set.
	InsecureTrustServiceKey bool
	// AllowWarning accepts results whose tier (worst submodule, each
	// lowered to what its trust vector supports: verifier/ear's Status) is
	// "warning". By default only "affirming" results are accepted.
	AllowWarning bool
	// MaxAttempts bounds the attempts per appraisal (one attempt = new
	// session and submission); 0 means DefaultMaxAttempts.
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
	// MaxEARAge bounds the age of an EAR (issued-at), the one Veraison
	// just returned and a passport's; 0 means DefaultMaxEARAge.
	MaxEARAge time.Duration
	// Time returns the current time; nil means time.Now.
	Time func() time.Time
	// Logger receives debug logs of retries; nil discards them.
	Logger *slog.Logger
}

// Client talks to one Veraison verification service. It is safe for
// concurrent use.
type Client struct {
	cfg        Config
	base       *url.URL
	newSession *url.URL        // base + pathNewSession, resolving Location
	newPrefix  string          // newSession + "?nonce="
	transport  *http.Transport // the Client's own, or nil

	mu  sync.Mutex
	ear *expatear.Verifier // checks every EAR; built from EARKeys, or on first use from the fetched key

	// Background session deletions: at most MaxPendingDeletes (deletes
	// is their semaphore), each bounded by DeleteTimeout, all cancelled
	// by Close (bg).
	bg      context.Context
	stop    context.CancelFunc
	deletes chan struct{}
	wg      sync.WaitGroup
	closeMu sync.Mutex
	closed  bool
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

// New returns a Client for cfg; cfg is copied, and nil means the zero
// Config, which New refuses (no URL, no EARKeys). It fails for a URL that
// is not http or https with a host, and for EARKeys verifier/ear refuses.
func New(cfg *Config) (*Client, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	return newClient(*cfg)
}

func newClient(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("veraison: bad URL %q", cfg.URL)
	}
	if len(cfg.EARKeys) == 0 && !cfg.InsecureTrustServiceKey {
		return nil, errors.New("veraison: no EAR signing key configured (Config.EARKeys)")
	}
	hc := &http.Client{}
	if cfg.HTTPClient != nil {
		*hc = *cfg.HTTPClient
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	var own *http.Transport
	if hc.Transport == nil {
		own = http.DefaultTransport.(*http.Transport).Clone()
		own.MaxIdleConnsPerHost = MaxIdleConnsPerHost
		hc.Transport = own
	}
	cfg.HTTPClient = hc
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
	c := &Client{cfg: cfg, base: u, transport: own, deletes: make(chan struct{}, MaxPendingDeletes)}
	c.newSession = u.JoinPath(pathNewSession)
	c.newPrefix = c.newSession.String() + "?nonce="
	c.bg, c.stop = context.WithCancel(context.Background())
	if len(cfg.EARKeys) > 0 {
		ev, err := c.earVerifier(cfg.EARKeys)
		if err != nil {
			return nil, fmt.Errorf("veraison: EARKeys: %w", err)
		}
		c.ear = ev
	}
	return c, nil
}

// earVerifier is the one EAR check of this package (verifier/ear):
// signature by keys, profile, eat_nonce, age and exp, and tier.
func (c *Client) earVerifier(keys []expatear.TrustedKey) (*expatear.Verifier, error) {
	return expatear.New(&expatear.Config{
		Keys:          keys,
		AcceptWarning: c.cfg.AllowWarning,
		MaxAge:        c.cfg.MaxEARAge,
		Time:          c.cfg.Time,
	})
}

// URL returns the service's base URL.
func (c *Client) URL() string { return c.base.String() }

// Appraisal is the checked outcome of one Veraison appraisal.
type Appraisal struct {
	// EAR is the signed Attestation Result (a JWT), as received.
	EAR []byte
	// Result is the EAR as verifier/ear checked it (Model
	// BackgroundCheck, Technology "cca", "psa" or "tpm2" when the
	// submodules name one, Verifier the service's URL).
	Result *verifier.Result
}

// Appraise sends evidence (a serialized CMW record) to Veraison in a new
// challenge-response session whose nonce is nonce (64 bytes, the
// ReportData64 go-expat binds Evidence with, or 32 bytes, a TPM
// qualifyingData), and returns the EAR after verifier/ear checked it: the
// signature by one of Config.EARKeys, that it echoes nonce (padded or
// unpadded base64url), its age (MaxEARAge) and exp, and its tier
// (affirming, or warning with AllowWarning). Unreachable, slow, 5xx and 429
// answers are retried within MaxAttempts and ctx; they end in a
// *verifier.UnavailableError. A bad signature, a wrong nonce, a stale EAR
// or a rejecting tier is a *verifier.RejectedError.
func (c *Client) Appraise(ctx context.Context, evidence, nonce []byte) (*Appraisal, error) {
	dec, _, err := decodeRecord(evidence)
	if err != nil {
		return nil, err
	}
	return c.appraise(ctx, dec, evidence, nonce)
}

// decodeRecord is this package's one decode of a CMW: package cmw's, and a
// record (Veraison v0.0.2501 accepts no collections).
func decodeRecord(b []byte) (*cmw.CMW, cmw.Record, error) {
	dec, err := cmw.Decode(b, nil)
	if err != nil {
		return nil, cmw.Record{}, verifier.Reject(verifier.CheckFormat, err, "veraison: CMW")
	}
	rec, ok := dec.Record()
	if !ok {
		return nil, cmw.Record{}, verifier.Reject(verifier.CheckFormat, nil, "veraison: CMW collections are not supported by Veraison")
	}
	return dec, rec, nil
}

// appraise is Appraise for evidence already decoded as dec.
func (c *Client) appraise(ctx context.Context, dec *cmw.CMW, evidence, nonce []byte) (*Appraisal, error) {
	if c.bg.Err() != nil {
		return nil, verifier.Unavailable(false, nil, "veraison: Client closed")
	}
	exp, err := expatear.ExpectedForNonce(nonce, c.cfg.Time())
	if err != nil {
		return nil, fmt.Errorf("veraison: %w", err)
	}
	ctype := mediaTypeCMWCBOR
	if dec.Format().IsJSON() {
		ctype = mediaTypeCMWJSON
	}
	ev, err := c.earChecker(ctx)
	if err != nil {
		return nil, err
	}

	var last error
	for attempt := 1; ; attempt++ {
		raw, retryAfter, err := c.attempt(ctx, ctype, evidence, nonce)
		if err == nil {
			res, err := ev.VerifyJWT(ctx, raw, exp)
			if err != nil {
				return nil, err
			}
			c.adopt(res, verifier.BackgroundCheck)
			return &Appraisal{EAR: bytes.Clone(raw), Result: res}, nil
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

// attempt runs one session: create it with our nonce, submit the Evidence
// (two requests, the fewest Veraison's challenge-response API allows: a new
// session takes no Evidence), and leave its deletion to the background
// (deleteLater).
func (c *Client) attempt(ctx context.Context, ctype string, evidence, nonce []byte) (ear []byte, retryAfter time.Duration, err error) {
	// Standard base64url with padding, as Veraison v0.0.2501 parses it; no
	// character of it needs escaping in a query.
	u := c.newPrefix + base64.URLEncoding.EncodeToString(nonce)
	resp, body, err := c.do(ctx, "new session", http.MethodPost, u, "", nil)
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
	sessURL := c.newSession.ResolveReference(loc)
	if sessURL.Scheme != c.base.Scheme || sessURL.Host != c.base.Host {
		return nil, 0, verifier.Unavailable(false, nil, "veraison: new session: Location %q leaves the service", sessURL)
	}
	su := sessURL.String()
	defer c.deleteLater(su)

	resp, body, err = c.do(ctx, "submit", http.MethodPost, su, ctype, evidence)
	if err != nil {
		return nil, 0, err
	}
	for polls := 0; resp.StatusCode == http.StatusAccepted; polls++ {
		// Asynchronous appraisal: poll the session (Veraison v0.0.2501
		// answers synchronously; this is for later versions).
		if polls >= 50 {
			return nil, 0, verifier.Unavailable(true, nil, "veraison: appraisal still processing")
		}
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, 0, verifier.Unavailable(true, ctx.Err(), "veraison: waiting for the appraisal")
		case <-t.C:
		}
		resp, body, err = c.do(ctx, "poll", http.MethodGet, su, "", nil)
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

// deleteLater deletes session u in the background, best effort: the
// appraisal does not wait for it. At most MaxPendingDeletes run at once,
// each bounded by DeleteTimeout and cancelled by Close; beyond that, and
// once the Client is closed, the session is left to expire, as Veraison's
// API allows (a session is garbage collected after its expiry; the
// deletion is an optional cleanup step).
func (c *Client) deleteLater(u string) {
	select {
	case c.deletes <- struct{}{}:
	default:
		c.cfg.Logger.Debug("veraison: session left to expire", "reason", "too many deletions pending")
		return
	}
	c.closeMu.Lock()
	if c.closed {
		c.closeMu.Unlock()
		<-c.deletes
		return
	}
	c.wg.Add(1)
	c.closeMu.Unlock()
	go func() {
		defer c.wg.Done()
		defer func() { <-c.deletes }()
		ctx, cancel := context.WithTimeout(c.bg, DeleteTimeout)
		defer cancel()
		resp, body, err := c.do(ctx, "delete session", http.MethodDelete, u, "", nil)
		switch {
		case err != nil:
			c.cfg.Logger.Debug("veraison: deleting session", "err", err)
		case resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK:
			c.cfg.Logger.Debug("veraison: deleting session", "err", httpError("delete session", resp, body))
		}
	}()
}

// Close cancels the session deletions still in flight, waits for them to
// return (at once: their requests are cancelled) and closes the idle
// connections of the Client's own transport. Appraisals after Close fail
// (a non-retryable *verifier.UnavailableError); those already running
// finish but delete no session. Close is not required to release the
// Client's resources: a deletion ends within DeleteTimeout and idle
// connections within the transport's idle timeout. It is safe to call
// more than once.
func (c *Client) Close() error {
	c.closeMu.Lock()
	c.closed = true
	c.closeMu.Unlock()
	c.stop()
	c.wg.Wait()
	if c.transport != nil {
		c.transport.CloseIdleConnections()
	}
	return nil
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
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		// CheckRedirect never follows: Evidence stays on the service's host.
		return nil, nil, verifier.Unavailable(false, nil, "veraison: %s: HTTP %d redirect to %q refused", op, resp.StatusCode, resp.Header.Get("Location"))
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxResponseSize+1))
	if err != nil {
		return nil, nil, verifier.Unavailable(true, err, "veraison: %s: reading the answer", op)
	}
	if int64(len(b)) > c.cfg.MaxResponseSize {
		return nil, nil, verifier.Unavailable(false, nil, "veraison: %s: answer larger than %d bytes", op, c.cfg.MaxResponseSize)
	}
	return resp, b, nil
}

// earChecker returns the EAR check built from Config.EARKeys or, with
// InsecureTrustServiceKey only, from the key the service publishes, fetched
// on first use and cached (trust on first use).
func (c *Client) earChecker(ctx context.Context) (*expatear.Verifier, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ear != nil {
		return c.ear, nil
	}
	resp, body, err := c.do(ctx, "well-known", http.MethodGet, c.base.JoinPath(pathWellKnown).String(), "", nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, statusErr("well-known", resp, body)
	}
	var wk struct {
		Key json.RawMessage `json:"ear-verification-key"`
	}
	if err := json.Unmarshal(body, &wk); err != nil || len(wk.Key) == 0 {
		return nil, verifier.Unavailable(false, err, "veraison: well-known: no ear-verification-key")
	}
	keys, err := expatear.KeysFromJWKS([]byte(`{"keys":[` + string(wk.Key) + `]}`))
	if err != nil {
		return nil, verifier.Unavailable(false, err, "veraison: well-known")
	}
	ev, err := c.earVerifier(keys)
	if err != nil {
		return nil, verifier.Unavailable(false, err, "veraison: well-known")
	}
	c.ear = ev
	return c.ear, nil
}

// adopt completes a Result of verifier/ear for this service: model,
// technology from the submodule names, the service as the Verifier.
func (c *Client) adopt(res *verifier.Result, m verifier.Model) {
	res.Model = m
	res.Verifier = c.URL()
	names := strings.Split(res.Technology, "+")
	switch {
	case len(names) == 1 && names[0] == "CCA_SSD_PLATFORM", hasPrefix(names, "CCA_"):
		res.Technology = "cca"
	case hasPrefix(names, "PSA_"):
		res.Technology = "psa"
	case hasPrefix(names, "TPM_"):
		res.Technology = "tpm2"
	}
}

func hasPrefix(names []string, p string) bool {
	for _, n := range names {
		if strings.HasPrefix(n, p) {
			return true
		}
	}
	return false
}
