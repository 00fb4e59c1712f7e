package local

import (
	"container/list"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/ear"
)

// Paths and media types of Veraison's challenge-response API
// (github.com/veraison/services v0.0.2501, verification/api).
const (
	PathNewSession     = "/challenge-response/v1/newSession"
	PathSessionPrefix  = "/challenge-response/v1/session/"
	PathWellKnown      = "/.well-known/veraison/verification"
	MediaTypeSession   = "application/vnd.veraison.challenge-response-session+json"
	MediaTypeDiscovery = "application/vnd.veraison.discovery+json"
	MediaTypeCMWCBOR   = "application/cmw+cbor"
	MediaTypeCMWJSON   = "application/cmw+json"
	mediaTypeProblem   = "application/problem+json"
)

// Defaults for the zero Config fields.
const (
	// DefaultSessionTTL is Veraison's session lifetime.
	DefaultSessionTTL  = 150 * time.Second
	DefaultMaxSessions = 1024
	// DefaultMaxSessionsPerClient bounds the live sessions of one client
	// (Config.ClientID): a client at its quota that opens another session
	// evicts its own oldest one, so that it cannot fill the table.
	DefaultMaxSessionsPerClient    = 32
	DefaultMaxEvidenceSize         = cmw.MaxSize
	DefaultMaxConcurrentAppraisals = 8
	DefaultAppraisalTimeout        = 30 * time.Second
	// DefaultNonceSize is the size of a server-chosen nonce when the
	// request names none (Veraison's default is 32; 64 bytes is the user
	// data of SEV-SNP, TDX and CCA, which most go-expat Evidence carries).
	DefaultNonceSize = 64
	// MaxEvidenceSizeLimit bounds Config.MaxEvidenceSize: package cmw's one
	// size limit (cmw.MaxSize, 65535 bytes), which no CMW exceeds.
	MaxEvidenceSizeLimit = cmw.MaxSize
	// DefaultVersion is the "version" published at the well-known
	// endpoint when Config.Version is empty.
	DefaultVersion = "go-expat verifier/local"
)

// Config configures a Service. It must not be modified after NewService.
type Config struct {
	// Appraiser appraises the Evidence; typically a *verifier.Dispatch
	// over the per-technology verifiers, which also lets the service
	// refuse unknown media types (415) and list the accepted ones. nil
	// means Issuer.Appraiser.
	Appraiser verifier.Verifier
	// Issuer signs the EARs: its Key, KeyID, Name, Validity and Time are
	// used; its Appraiser is replaced by the service's. Required;
	// KeyAttestation must be false.
	Issuer *ear.Issuer
	// SessionTTL is how long a session lives after creation; 0 means
	// DefaultSessionTTL.
	SessionTTL time.Duration
	// MaxSessions bounds the live sessions; 0 means DefaultMaxSessions.
	// When the table is full, a new session evicts the oldest session,
	// not being appraised, of the client holding the most sessions; only
	// when every session is being appraised is the request refused (503).
	MaxSessions int
	// MaxSessionsPerClient bounds the live sessions of one client (see
	// ClientID); 0 means DefaultMaxSessionsPerClient (at most
	// MaxSessions). A client at its quota that opens a session evicts its
	// own oldest session not being appraised (429 when all are).
	MaxSessionsPerClient int
	// MaxConcurrentAppraisalsPerClient bounds the running appraisals of
	// one client's sessions; its further submissions wait for one of its
	// own slots (within AppraisalTimeout) before competing for the
	// MaxConcurrentAppraisals shared ones, so that one client cannot hold
	// them all. 0 means half of MaxConcurrentAppraisals (at least one).
	MaxConcurrentAppraisalsPerClient int
	// ClientID names the client of a request for the per-client limits;
	// nil means the remote IP address (r.RemoteAddr without the port). A
	// service behind a proxy must derive it from what the proxy sets, or
	// every relying party counts as one client.
	ClientID func(r *http.Request) string
	// MaxEvidenceSize bounds a submitted CMW in bytes; 0 means
	// DefaultMaxEvidenceSize (65535, the cmw_attestation limit, which is
	// also MaxEvidenceSizeLimit: it can only be lowered).
	MaxEvidenceSize int
	// MaxConcurrentAppraisals bounds the appraisals running at once;
	// further submissions wait (within AppraisalTimeout); 0 means
	// DefaultMaxConcurrentAppraisals.
	MaxConcurrentAppraisals int
	// AppraisalTimeout bounds the wait for an appraisal slot plus the
	// appraisal; 0 means DefaultAppraisalTimeout.
	AppraisalTimeout time.Duration
	// Version is published at the well-known endpoint; "" means
	// DefaultVersion.
	Version string
	// Rand supplies server-chosen nonces and session ids; nil means
	// crypto/rand.
	Rand io.Reader
	// Time is the clock of sessions and appraisals (and of the Issuer, if
	// the Issuer has no Time); nil means time.Now.
	Time func() time.Time
	// Logger receives one record per session event and the reasons of
	// rejections; nil discards.
	Logger *slog.Logger
}

// Service is the HTTP handler. It is safe for concurrent use.
type Service struct {
	cfg       Config
	issuer    ear.Issuer // a copy; Appraiser set per submission
	appraiser verifier.Verifier
	dispatch  *verifier.Dispatch // when the Appraiser is one
	accept    []string           // media types published in sessions
	wellKnown []byte
	sem       chan struct{}

	mu       sync.Mutex
	sessions map[string]*session
	order    *list.List // of *session, by creation (= expiry) order
	clients  map[string]*client
}

// client is one client's share of the session table.
type client struct {
	id         string
	sessions   *list.List    // of *session, oldest first
	appraisals int           // of its sessions, submitted and not finished
	slots      chan struct{} // its share of the appraisal slots
}

var _ http.Handler = (*Service)(nil)

// session states, as Veraison names them.
const (
	statusWaiting    = "waiting"
	statusProcessing = "processing"
	statusComplete   = "complete"
	statusFailed     = "failed"
)

type session struct {
	id     string
	nonce  []byte
	expiry time.Time
	status string
	result string
	elem   *list.Element
	client *client
	celem  *list.Element // in client.sessions
}

// NewService checks cfg and returns a Service.
func NewService(cfg Config) (*Service, error) {
	if cfg.Issuer == nil || cfg.Issuer.Key == nil {
		return nil, errors.New("local: Config.Issuer with a Key is required")
	}
	if cfg.Issuer.KeyAttestation {
		return nil, errors.New("local: Issuer.KeyAttestation cannot be used: sessions carry no key to attest")
	}
	if cfg.Appraiser == nil {
		cfg.Appraiser = cfg.Issuer.Appraiser
	}
	if cfg.Appraiser == nil {
		return nil, errors.New("local: Config.Appraiser is required")
	}
	if cfg.SessionTTL < 0 || cfg.MaxSessions < 0 || cfg.MaxEvidenceSize < 0 ||
		cfg.MaxConcurrentAppraisals < 0 || cfg.AppraisalTimeout < 0 ||
		cfg.MaxSessionsPerClient < 0 || cfg.MaxConcurrentAppraisalsPerClient < 0 {
		return nil, errors.New("local: negative limit in Config")
	}
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.MaxEvidenceSize == 0 {
		cfg.MaxEvidenceSize = DefaultMaxEvidenceSize
	}
	if cfg.MaxEvidenceSize > MaxEvidenceSizeLimit {
		return nil, fmt.Errorf("local: MaxEvidenceSize %d exceeds %d", cfg.MaxEvidenceSize, MaxEvidenceSizeLimit)
	}
	if cfg.MaxConcurrentAppraisals == 0 {
		cfg.MaxConcurrentAppraisals = DefaultMaxConcurrentAppraisals
	}
	if cfg.MaxSessionsPerClient == 0 {
		cfg.MaxSessionsPerClient = DefaultMaxSessionsPerClient
	}
	cfg.MaxSessionsPerClient = min(cfg.MaxSessionsPerClient, cfg.MaxSessions)
	if cfg.MaxConcurrentAppraisalsPerClient == 0 {
		cfg.MaxConcurrentAppraisalsPerClient = max(1, cfg.MaxConcurrentAppraisals/2)
	}
	cfg.MaxConcurrentAppraisalsPerClient = min(cfg.MaxConcurrentAppraisalsPerClient, cfg.MaxConcurrentAppraisals)
	if cfg.ClientID == nil {
		cfg.ClientID = remoteIP
	}
	if cfg.AppraisalTimeout == 0 {
		cfg.AppraisalTimeout = DefaultAppraisalTimeout
	}
	if cfg.Version == "" {
		cfg.Version = DefaultVersion
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Time == nil {
		cfg.Time = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		cfg:       cfg,
		issuer:    *cfg.Issuer,
		appraiser: cfg.Appraiser,
		sem:       make(chan struct{}, cfg.MaxConcurrentAppraisals),
		sessions:  map[string]*session{},
		order:     list.New(),
		clients:   map[string]*client{},
	}
	if s.issuer.Time == nil {
		s.issuer.Time = cfg.Time
	}
	if d, ok := cfg.Appraiser.(*verifier.Dispatch); ok {
		s.dispatch = d
		for mt, v := range d.Verifiers {
			if v != nil {
				s.accept = append(s.accept, mt)
			}
		}
		slices.Sort(s.accept)
	}
	wk, err := s.discovery()
	if err != nil {
		return nil, err
	}
	s.wellKnown = wk
	return s, nil
}

// discovery builds the well-known document: Veraison's WellKnownInfo
// fields, the EAR key as a public JWK with its alg (and kid).
func (s *Service) discovery() ([]byte, error) {
	pub := s.issuer.Key.Public()
	k, err := jwk.Import(pub)
	if err != nil {
		return nil, fmt.Errorf("local: EAR key as JWK: %w", err)
	}
	if priv, err := jwk.IsPrivateKey(k); err != nil || priv {
		return nil, errors.New("local: EAR key is not a public key")
	}
	alg, err := algOf(k)
	if err != nil {
		return nil, err
	}
	if err := k.Set(jwk.AlgorithmKey, alg); err != nil {
		return nil, fmt.Errorf("local: JWK alg: %w", err)
	}
	if s.issuer.KeyID != "" {
		if err := k.Set(jwk.KeyIDKey, s.issuer.KeyID); err != nil {
			return nil, fmt.Errorf("local: JWK kid: %w", err)
		}
	}
	mts := s.accept
	if mts == nil {
		mts = []string{}
	}
	doc := struct {
		Key          jwk.Key           `json:"ear-verification-key"`
		MediaTypes   []string          `json:"media-types"`
		Version      string            `json:"version"`
		ServiceState string            `json:"service-state"`
		Endpoints    map[string]string `json:"api-endpoints"`
	}{k, mts, s.cfg.Version, "READY", map[string]string{"newChallengeResponseSession": PathNewSession}}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("local: discovery document: %w", err)
	}
	return b, nil
}

// algOf names the JWS algorithm of the issuer's key (what ear.Issuer
// signs with).
func algOf(k jwk.Key) (jwa.SignatureAlgorithm, error) {
	switch kt := k.KeyType(); kt {
	case jwa.EC():
		crv, ok := k.(jwk.ECDSAPublicKey)
		if ok {
			if c, ok := crv.Crv(); ok {
				switch c {
				case jwa.P256():
					return jwa.ES256(), nil
				case jwa.P384():
					return jwa.ES384(), nil
				}
			}
		}
	case jwa.OKP():
		return jwa.EdDSA(), nil
	}
	return jwa.SignatureAlgorithm{}, errors.New("local: EAR key must be ECDSA P-256, P-384 or Ed25519")
}

// Sessions returns the number of live sessions (expired ones are not
// counted).
func (s *Service) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purgeLocked(s.cfg.Time())
	return len(s.sessions)
}

// purgeLocked removes expired sessions, oldest first. Sessions expire in
// creation order since the TTL is constant (a clock stepping back only
// delays removal).
func (s *Service) purgeLocked(now time.Time) {
	for e := s.order.Front(); e != nil; e = s.order.Front() {
		sess := e.Value.(*session)
		if now.Before(sess.expiry) {
			return
		}
		s.removeLocked(sess)
	}
}

func (s *Service) removeLocked(sess *session) {
	if s.sessions[sess.id] == sess {
		delete(s.sessions, sess.id)
	}
	if sess.elem != nil {
		s.order.Remove(sess.elem)
		sess.elem = nil
	}
	if c := sess.client; c != nil && sess.celem != nil {
		c.sessions.Remove(sess.celem)
		sess.celem = nil
		s.dropIdleClientLocked(c)
	}
}

// dropIdleClientLocked forgets a client with no session and no appraisal.
func (s *Service) dropIdleClientLocked(c *client) {
	if c.sessions.Len() == 0 && c.appraisals == 0 && s.clients[c.id] == c {
		delete(s.clients, c.id)
	}
}

// remoteIP is the default Config.ClientID.
func remoteIP(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// evictableLocked returns c's oldest session that is not being appraised.
func evictableLocked(c *client) *session {
	for e := c.sessions.Front(); e != nil; e = e.Next() {
		if sess := e.Value.(*session); sess.status != statusProcessing {
			return sess
		}
	}
	return nil
}

// makeRoomLocked frees a slot for a new session of client id (purging
// expired sessions first): at its quota, the client's own oldest session
// not being appraised goes; with the table full, that of the client
// holding the most sessions. It returns the HTTP status of a refusal (0
// when there is room) and, for 503, the wait until the oldest expiry.
func (s *Service) makeRoomLocked(id string, now time.Time) (int, time.Duration) {
	s.purgeLocked(now)
	if c := s.clients[id]; c != nil && c.sessions.Len() >= s.cfg.MaxSessionsPerClient {
		victim := evictableLocked(c)
		if victim == nil {
			return http.StatusTooManyRequests, time.Second
		}
		s.removeLocked(victim)
	}
	if len(s.sessions) < s.cfg.MaxSessions {
		return 0, 0
	}
	var heaviest *client
	for _, c := range s.clients {
		if (heaviest == nil || c.sessions.Len() > heaviest.sessions.Len()) && evictableLocked(c) != nil {
			heaviest = c
		}
	}
	if heaviest == nil {
		wait := time.Second
		if e := s.order.Front(); e != nil {
			wait = max(e.Value.(*session).expiry.Sub(now), time.Second)
		}
		return http.StatusServiceUnavailable, wait
	}
	s.removeLocked(evictableLocked(heaviest))
	return 0, 0
}

func retryAfter(w http.ResponseWriter, d time.Duration) {
	w.Header().Set("Retry-After", fmt.Sprint(int64((d+time.Second-1)/time.Second)))
}

// lookupLocked returns the live session id.
func (s *Service) lookupLocked(id string, now time.Time) *session {
	s.purgeLocked(now)
	return s.sessions[id]
}

// ServeHTTP routes the API's requests.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	switch p := r.URL.Path; {
	case p == PathNewSession:
		if r.Method != http.MethodPost {
			methodNotAllowed(w, http.MethodPost)
			return
		}
		s.newSession(w, r)
	case p == PathWellKnown:
		if r.Method != http.MethodGet {
			methodNotAllowed(w, http.MethodGet)
			return
		}
		s.getWellKnown(w, r)
	case len(p) > len(PathSessionPrefix) && p[:len(PathSessionPrefix)] == PathSessionPrefix:
		id, ok := parseSessionID(p[len(PathSessionPrefix):])
		if !ok {
			problem(w, http.StatusNotFound, "no such session")
			return
		}
		switch r.Method {
		case http.MethodGet:
			s.getSession(w, r, id)
		case http.MethodPost:
			s.submit(w, r, id)
		case http.MethodDelete:
			s.deleteSession(w, id)
		default:
			methodNotAllowed(w, "GET, POST, DELETE")
		}
	default:
		problem(w, http.StatusNotFound, "no such resource")
	}
}

func (s *Service) newSession(w http.ResponseWriter, r *http.Request) {
	if !acceptable(r.Header.Values("Accept"), MediaTypeSession) {
		problem(w, http.StatusNotAcceptable, "the only supported output format is "+MediaTypeSession)
		return
	}
	if err := emptyBody(r); err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	q, err := parseNewSessionQuery(r.URL.RawQuery)
	if err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	// Cheap refusal before minting anything: a client whose sessions are
	// all being appraised, or a table of sessions all being appraised.
	cid := s.cfg.ClientID(r)
	now := s.cfg.Time()
	s.mu.Lock()
	code, wait := s.makeRoomLocked(cid, now)
	s.mu.Unlock()
	if code != 0 {
		s.refuseSession(w, code, wait)
		return
	}
	nonce := q.nonce
	if nonce == nil {
		nonce = make([]byte, q.size)
		if _, err := io.ReadFull(s.cfg.Rand, nonce); err != nil {
			s.cfg.Logger.Error("local: nonce", "err", err)
			problem(w, http.StatusInternalServerError, "could not mint a nonce")
			return
		}
	}
	id, err := newSessionID(s.cfg.Rand)
	if err != nil {
		s.cfg.Logger.Error("local: session id", "err", err)
		problem(w, http.StatusInternalServerError, "could not mint a session id")
		return
	}

	sess := &session{id: id, nonce: nonce, expiry: now.Add(s.cfg.SessionTTL), status: statusWaiting}
	s.mu.Lock()
	// Again under the same lock as the insertion: concurrent requests of
	// one client must not exceed its quota together.
	if code, wait := s.makeRoomLocked(cid, now); code != 0 {
		s.mu.Unlock()
		s.refuseSession(w, code, wait)
		return
	}
	if _, dup := s.sessions[id]; dup { // 122 random bits: never in practice
		s.mu.Unlock()
		problem(w, http.StatusInternalServerError, "session id collision")
		return
	}
	c := s.clients[cid]
	if c == nil {
		c = &client{id: cid, sessions: list.New(), slots: make(chan struct{}, s.cfg.MaxConcurrentAppraisalsPerClient)}
		s.clients[cid] = c
	}
	s.sessions[id] = sess
	sess.elem = s.order.PushBack(sess)
	sess.client, sess.celem = c, c.sessions.PushBack(sess)
	body := s.sessionJSONLocked(sess)
	s.mu.Unlock()

	s.cfg.Logger.Debug("local: new session", "id", id, "nonce_len", len(nonce))
	w.Header().Set("Location", "session/"+id)
	writeSession(w, http.StatusCreated, body)
}

func (s *Service) refuseSession(w http.ResponseWriter, code int, wait time.Duration) {
	retryAfter(w, wait)
	if code == http.StatusTooManyRequests {
		problem(w, code, "too many sessions of this client being appraised")
		return
	}
	problem(w, code, "too many sessions")
}

func (s *Service) getSession(w http.ResponseWriter, r *http.Request, id string) {
	if !acceptable(r.Header.Values("Accept"), MediaTypeSession) {
		problem(w, http.StatusNotAcceptable, "the only supported output format is "+MediaTypeSession)
		return
	}
	s.mu.Lock()
	sess := s.lookupLocked(id, s.cfg.Time())
	if sess == nil {
		s.mu.Unlock()
		problem(w, http.StatusNotFound, "no such session")
		return
	}
	body := s.sessionJSONLocked(sess)
	s.mu.Unlock()
	writeSession(w, http.StatusOK, body)
}

func (s *Service) deleteSession(w http.ResponseWriter, id string) {
	s.mu.Lock()
	sess := s.lookupLocked(id, s.cfg.Time())
	if sess != nil {
		s.removeLocked(sess)
	}
	s.mu.Unlock()
	if sess == nil {
		problem(w, http.StatusNotFound, "no such session")
		return
	}
	s.cfg.Logger.Debug("local: session deleted", "id", id)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) getWellKnown(w http.ResponseWriter, r *http.Request) {
	if !acceptable(r.Header.Values("Accept"), MediaTypeDiscovery, "application/json") {
		problem(w, http.StatusNotAcceptable, "the only supported output format is "+MediaTypeDiscovery)
		return
	}
	w.Header().Set("Content-Type", MediaTypeDiscovery)
	w.WriteHeader(http.StatusOK)
	w.Write(s.wellKnown)
}

// submit appraises the Evidence posted to session id.
func (s *Service) submit(w http.ResponseWriter, r *http.Request, id string) {
	if !acceptable(r.Header.Values("Accept"), MediaTypeSession) {
		problem(w, http.StatusNotAcceptable, "the only supported output format is "+MediaTypeSession)
		return
	}
	wantJSON, err := evidenceContentType(r.Header.Values("Content-Type"))
	if err != nil {
		w.Header().Set("Accept", MediaTypeCMWCBOR+", "+MediaTypeCMWJSON)
		problem(w, http.StatusUnsupportedMediaType, err.Error())
		return
	}
	// Cheap refusals before the body is read or anything decoded.
	s.mu.Lock()
	code, msg := s.admitLocked(id, s.cfg.Time(), false)
	s.mu.Unlock()
	if code != 0 {
		problem(w, code, msg)
		return
	}
	body, code, err := readBody(w, r, s.cfg.MaxEvidenceSize)
	if err != nil {
		problem(w, code, err.Error())
		return
	}
	dec, code, tech, err := s.screen(body, wantJSON)
	if err != nil {
		if code == http.StatusUnsupportedMediaType && len(s.accept) > 0 {
			w.Header().Set("Accept", joinTypes(s.accept))
		}
		problem(w, code, err.Error())
		return
	}

	now := s.cfg.Time()
	s.mu.Lock()
	if code, msg := s.admitLocked(id, now, true); code != 0 {
		s.mu.Unlock()
		problem(w, code, msg)
		return
	}
	sess := s.sessions[id]
	nonce := sess.nonce
	s.mu.Unlock()

	token, rejection, err := s.appraise(r.Context(), sess.client.slots, body, dec, nonce, tech, now)

	s.mu.Lock()
	sess.client.appraisals--
	if sess.celem == nil {
		s.dropIdleClientLocked(sess.client)
	}
	if err != nil {
		sess.status = statusFailed
	} else {
		sess.status, sess.result = statusComplete, string(token)
	}
	out := s.sessionJSONLocked(sess)
	s.mu.Unlock()

	switch {
	case err != nil:
		s.cfg.Logger.Warn("local: appraisal failed", "id", id, "err", err)
		problem(w, http.StatusInternalServerError, "error encountered while processing evidence")
		return
	case rejection != nil:
		s.cfg.Logger.Info("local: evidence rejected", "id", id, "technology", tech, "err", rejection)
	default:
		s.cfg.Logger.Debug("local: evidence accepted", "id", id, "technology", tech)
	}
	writeSession(w, http.StatusOK, out)
}

// admitLocked checks that session id can take a submission now: it exists
// (404) and waits for one (409). With start, the session becomes
// "processing" (never evicted) and counts as its client's appraisal.
func (s *Service) admitLocked(id string, now time.Time, start bool) (int, string) {
	sess := s.lookupLocked(id, now)
	if sess == nil {
		return http.StatusNotFound, "no such session"
	}
	if sess.status != statusWaiting {
		return http.StatusConflict, "session is " + sess.status + ": it takes one submission"
	}
	if start {
		sess.status = statusProcessing
		sess.client.appraisals++
	}
	return 0, ""
}

// screen decodes the CMW (once: a Dispatch Appraiser gets the decoded
// CMW) and checks what can be refused before any appraisal: undecodable
// (400), encoding other than declared (400), a record or collection the
// Dispatch has no verifier for (415). It returns the decoded CMW and the
// technology name for the EAR submodule of a rejection.
func (s *Service) screen(body []byte, wantJSON bool) (*cmw.CMW, int, string, error) {
	// readBody enforced MaxEvidenceSize; a Dispatch's Limits are those it
	// would apply itself.
	var lim *cmw.Limits
	if s.dispatch != nil {
		lim = s.dispatch.Limits
	}
	dec, err := cmw.Decode(body, lim)
	if err != nil {
		return nil, http.StatusBadRequest, "", fmt.Errorf("could not unwrap the CMW: %v", err)
	}
	if dec.Format().IsJSON() != wantJSON {
		return nil, http.StatusBadRequest, "", errors.New("the CMW's encoding does not match its Content-Type")
	}
	rec, ok := dec.Record()
	if !ok {
		if s.dispatch != nil && !s.dispatch.AllowCollections {
			return nil, http.StatusUnsupportedMediaType, "", errors.New("CMW collections are not accepted")
		}
		return dec, 0, "evidence", nil
	}
	if s.dispatch != nil {
		if _, err := s.dispatch.Lookup(rec.MediaType); err != nil {
			if errors.Is(err, verifier.ErrRejected) {
				return nil, http.StatusUnsupportedMediaType, "", fmt.Errorf("no verifier for %q", rec.MediaType)
			}
			return nil, http.StatusInternalServerError, "", errors.New("ambiguous verifier configuration")
		}
	}
	return dec, 0, technologyOf(rec.MediaType), nil
}

// appraise runs the Issuer over the Appraiser (a Dispatch appraises dec,
// the CMW screen decoded). A rejection becomes a contraindicated EAR
// (returned with the rejection); any other failure is err and issues
// nothing.
func (s *Service) appraise(ctx context.Context, clientSlots chan struct{}, body []byte, dec *cmw.CMW, nonce []byte, tech string, now time.Time) (token []byte, rejection, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.AppraisalTimeout)
	defer cancel()
	// The client's own share first, then a shared slot.
	select {
	case clientSlots <- struct{}{}:
		defer func() { <-clientSlots }()
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("local: waiting for this client's appraisal slot: %w", ctx.Err())
	}
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("local: waiting for an appraisal slot: %w", ctx.Err())
	}
	exp, err := ear.ExpectedForNonce(nonce, now) // parseNewSessionQuery admits only 64 and 32 bytes
	if err != nil {
		return nil, nil, fmt.Errorf("local: %w", err)
	}
	ra := &rejectionAppraiser{inner: s.appraiser, technology: tech}
	if s.dispatch != nil {
		ra.decoded, ra.dispatch = dec, s.dispatch
	}
	iss := s.issuer
	iss.Appraiser = ra
	token, _, err = iss.Issue(ctx, body, exp)
	if err != nil {
		return nil, nil, err
	}
	return token, ra.rejection, nil
}

// rejectionAppraiser turns a rejection by the inner Verifier into a
// contraindicated Result, so that the Issuer signs an EAR that says so
// (Veraison reports bad Evidence the same way). Every other error passes
// through. One instance serves one appraisal.
type rejectionAppraiser struct {
	inner      verifier.Verifier
	technology string
	rejection  error
	// decoded is the submitted CMW, for dispatch (the inner Verifier) to
	// appraise without decoding it again.
	decoded  *cmw.CMW
	dispatch *verifier.Dispatch
}

func (a *rejectionAppraiser) Verify(ctx context.Context, b []byte, exp *verifier.Expected) (*verifier.Result, error) {
	var res *verifier.Result
	var err error
	if a.dispatch != nil && a.decoded != nil {
		res, err = a.dispatch.VerifyDecoded(ctx, a.decoded, exp)
	} else {
		res, err = a.inner.Verify(ctx, b, exp)
	}
	switch {
	case err == nil && res == nil:
		return nil, errors.New("local: appraiser returned neither a result nor an error")
	case err == nil:
		return res, nil
	case errors.Is(err, verifier.ErrUnavailable) || !errors.Is(err, verifier.ErrRejected):
		return nil, err
	}
	a.rejection = err
	return &verifier.Result{
		Model:       verifier.BackgroundCheck,
		Technology:  a.technology,
		Status:      verifier.TierContraindicated,
		AppraisedAt: exp.Now,
	}, nil
}

// technologyOf names the EAR submodule of a rejected record.
func technologyOf(mediaType string) string {
	for _, t := range []struct{ mt, name string }{
		{cmw.MediaTypeTPM2, "tpm2"},
		{cmw.MediaTypeSEVSNP, "sev-snp"},
		{cmw.MediaTypeTDX, "tdx"},
		{cmw.MediaTypeCCA, "cca"},
		{cmw.MediaTypeTestKit, "test-kit"},
		{cmw.MediaTypeEAR, "ear"},
	} {
		if cmw.EqualMediaTypes(t.mt, mediaType) {
			return t.name
		}
	}
	return "evidence"
}

// sessionJSON is Veraison's ChallengeResponseSession without "evidence".
type sessionJSON struct {
	Status string   `json:"status"`
	Nonce  []byte   `json:"nonce"`
	Expiry string   `json:"expiry"`
	Accept []string `json:"accept"`
	Result *string  `json:"result,omitempty"`
}

func (s *Service) sessionJSONLocked(sess *session) []byte {
	j := sessionJSON{Status: sess.status, Nonce: sess.nonce, Expiry: sess.expiry.UTC().Format(time.RFC3339Nano), Accept: s.accept}
	if j.Accept == nil {
		j.Accept = []string{}
	}
	if sess.status == statusComplete {
		r := sess.result
		j.Result = &r
	}
	b, _ := json.Marshal(j) // strings and bytes only: cannot fail
	return b
}

func writeSession(w http.ResponseWriter, code int, body []byte) {
	w.Header().Set("Content-Type", MediaTypeSession)
	w.WriteHeader(code)
	w.Write(body)
}

// problem writes an RFC 7807 problem detail.
func problem(w http.ResponseWriter, code int, detail string) {
	b, _ := json.Marshal(struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail,omitempty"`
	}{"about:blank", http.StatusText(code), code, detail})
	w.Header().Set("Content-Type", mediaTypeProblem)
	w.WriteHeader(code)
	w.Write(b)
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	problem(w, http.StatusMethodNotAllowed, "method not allowed")
}

func joinTypes(ts []string) string {
	out := ""
	for i, t := range ts {
		if i > 0 {
			out += ", "
		}
		out += t
	}
	return out
}
