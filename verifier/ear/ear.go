// Package ear implements the passport model of draft-fossati-seat-expat
// with EAT Attestation Results (EAR, draft-ietf-rats-ear, as implemented by
// github.com/veraison/ear v1.1.3: claim names ear.status,
// ear.trustworthiness-vector, profile "tag:github.com,2023:veraison/ear").
//
// Verifier checks an EAR JWT carried in a CMW record of type
// cmw.MediaTypeEAR: its signature by a key configured explicitly (no
// default trust, no keys taken from the token's own header), the algorithm
// against an allow-list (ES256, ES384, EdDSA; never "none" or HMAC), the
// profile and optionally the issuer, its age (iat, exp, nbf), the status
// tier of every submodule, and that it is tied to this connection:
//
//   - BindNonce: eat_nonce equals the connection's challenge. go-expat's
//     EAR nonce is the 64-byte attester.Challenge.ReportData64 value in
//     unpadded base64url (86 characters), as EAR carries nonces as strings;
//     padded base64url, which Veraison issues, is accepted too.
//   - BindKey: key attestation. Veraison's ear.veraison.key-attestation
//     extension's akpub (base64url DER SubjectPublicKeyInfo) equals the
//     Exported Authenticator's end-entity SPKI (Expected.SPKI), byte for
//     byte. Freshness then rests on the age check alone.
//
// An eat_nonce that is present must match even when only BindKey is
// required: a result issued for another connection is never accepted.
//
// The JOSE header and the claims are JSON read strictly (claims.go): member
// names are matched exactly, case-sensitively (RFC 7519, Section 4); a
// member that differs from a name the Verifier reads only in case ("IAT"
// beside or instead of "iat", "Exp", "EAR.STATUS") is rejected, as are
// duplicate members; iat, exp and nbf must be JSON integers (not strings,
// fractions or exponents), ear.status a tier name and trust claims JSON
// integers in [-128, 127].
//
// A submodule's tier is its ear.status lowered to what its trust vector
// supports (Status): an EAR whose ear.status is "affirming" while a claim
// of its trust vector is a warning is a warning (accepted only with
// AcceptWarning, and reported as such), one with a contraindicated claim is
// contraindicated. The Issuer issues the status the same way.
//
// Issuer is a local Verifier that appraises Evidence with any
// verifier.Verifier and issues an EAR for it; PassportAttester chains an
// attester.Attester and an Issuer so that the passport model works end to
// end in one process, with a fresh EAR per connection; ReusablePassport
// does the same with one key-bound EAR for many connections (below).
//
// # Reusable key-attested passports
//
// A nonce-bound EAR serves one connection: every connection costs fresh
// Evidence and an appraisal. A key-bound EAR serves every connection made
// with one Exported Authenticator key until it expires: Issuer.IssueForKey
// issues it (akpub = the key's SPKI, no eat_nonce, exp = iat + Validity)
// after appraising Evidence over the key challenge (KeyChallenge: the
// key's SPKI and a fresh issuance nonce from the Issuer, never a
// connection's challenge), and ReusablePassport hands the same EAR to
// every connection, obtaining the next one in the background before exp.
// The relying party opts in with Config.Bindings including BindKey and
// bounds the age with Config.KeyBoundMaxAge; each connection then shows
// only that its Exported Authenticator was signed with the attested key.
//
// A Verifier keeps the claims of the last key-bound EARs whose signature
// it checked (at most 64, keyed by SHA-256 of the exact token), so that a
// passport presented again costs no signature check or parse; its age,
// binding and status are checked on every connection.
//
// Security caveat: the freshness of a key-bound passport is its lifetime.
// It proves the platform state at issuance, not now: a platform
// compromised, reconfigured or revoked after issuance keeps presenting a
// valid passport until the earlier of its exp and iat + KeyBoundMaxAge,
// and so does anyone who obtains the attested private key. Revocation
// latency equals that lifetime. Keep it short, keep the EA key where the
// Evidence says it is (a TPM-resident key, KeyBinding KeyInResult), and
// use nonce-bound EARs where the state must be proven now.
//
// Not implemented: JWT JSON serialization, nested JWTs, RSA keys, EAR in
// CWT form, remote key discovery (jku, x5u, x5c and jwk headers are
// ignored, never fetched or trusted).
package ear

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	vear "github.com/veraison/ear"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/verifier"
)

// Binding is a set of ways an EAR may be tied to the connection.
type Binding uint

const (
	// BindNonce: eat_nonce is base64url(Challenge.ReportData64()).
	BindNonce Binding = 1 << iota
	// BindKey: a submodule's key-attestation akpub is Expected.SPKI.
	BindKey
)

const (
	// DefaultMaxAge is the oldest EAR (by iat) a zero Verifier accepts.
	DefaultMaxAge = 5 * time.Minute
	// DefaultClockSkew is how far in the future iat (and nbf) may be.
	DefaultClockSkew = 30 * time.Second
	// maxJWT bounds a bare token (VerifyJWT); in a CMW, cmw.MaxSize is lower.
	maxJWT = 1 << 20
)

// TrustedKey is a key whose EARs are accepted. ID, when set, must equal the
// JWT header's kid for the key to be tried (a token without kid is not
// tried with it); a key without ID is tried for every token, with or
// without kid (pinning a key need not name it).
type TrustedKey struct {
	ID string
	// Key is an *ecdsa.PublicKey (P-256 for ES256, P-384 for ES384) or an
	// ed25519.PublicKey (EdDSA).
	Key crypto.PublicKey
}

// KeysFromJWKS parses a JWK Set (RFC 7517) of public keys into
// TrustedKeys. Private keys, symmetric keys and unsupported types are
// refused.
func KeysFromJWKS(b []byte) ([]TrustedKey, error) {
	set, err := jwk.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("ear: JWK set: %w", err)
	}
	var out []TrustedKey
	for i := range set.Len() {
		k, _ := set.Key(i)
		if priv, err := jwk.IsPrivateKey(k); err != nil || priv {
			return nil, fmt.Errorf("ear: JWK %d is not a public key", i)
		}
		var raw any
		if err := jwk.Export(k, &raw); err != nil {
			return nil, fmt.Errorf("ear: JWK %d: %w", i, err)
		}
		pub, err := normalizeKey(raw)
		if err != nil {
			return nil, fmt.Errorf("ear: JWK %d: %w", i, err)
		}
		id, _ := k.KeyID()
		out = append(out, TrustedKey{ID: id, Key: pub})
	}
	if len(out) == 0 {
		return nil, errors.New("ear: empty JWK set")
	}
	return out, nil
}

func normalizeKey(k any) (crypto.PublicKey, error) {
	switch t := k.(type) {
	case *ecdsa.PublicKey:
		return t, nil
	case ecdsa.PublicKey:
		return &t, nil
	case ed25519.PublicKey:
		return t, nil
	case *ed25519.PublicKey:
		return *t, nil
	}
	return nil, fmt.Errorf("unsupported key type %T", k)
}

// algFor returns the JWS algorithm a key can verify or sign.
func algFor(k crypto.PublicKey) (string, bool) {
	switch t := k.(type) {
	case *ecdsa.PublicKey:
		switch t.Curve {
		case elliptic.P256():
			return "ES256", true
		case elliptic.P384():
			return "ES384", true
		}
	case ed25519.PublicKey:
		return "EdDSA", len(t) == ed25519.PublicKeySize
	}
	return "", false
}

var supportedAlgs = map[string]jwa.SignatureAlgorithm{
	"ES256": jwa.ES256(),
	"ES384": jwa.ES384(),
	"EdDSA": jwa.EdDSA(),
}

// Config configures a Verifier. The zero value (and a nil *Config) trusts
// no key and so rejects every EAR (CheckSignature). A Config must not be
// modified after New.
type Config struct {
	// Keys are the only keys whose EARs are accepted. Empty rejects every
	// EAR.
	Keys []TrustedKey
	// Algorithms is the allow-list of JWS algorithms; nil means ES256,
	// ES384 and EdDSA (the only ones supported).
	Algorithms []string
	// Profiles are the accepted eat_profile values; nil means only
	// veraison/ear's "tag:github.com,2023:veraison/ear".
	Profiles []string
	// Issuer, when set, must equal the iss claim.
	Issuer string
	// AcceptWarning also accepts results whose status is "warning".
	// "affirming" is always accepted; "none" and "contraindicated" never.
	AcceptWarning bool
	// MaxAge is the oldest iat accepted (except where KeyBoundMaxAge
	// applies); 0 means DefaultMaxAge.
	MaxAge time.Duration
	// KeyBoundMaxAge, when positive, replaces MaxAge for EARs without
	// eat_nonce, accepted by key binding alone (Bindings includes
	// BindKey): how old a reusable key-bound passport may be. 0 means
	// MaxAge. Such an EAR proves the platform state at its issuance, not
	// now; KeyBoundMaxAge (with exp) is how stale that state may be, and
	// how long a revoked platform or key stays accepted.
	KeyBoundMaxAge time.Duration
	// ClockSkew is how far in the future iat and nbf may lie; 0 means
	// DefaultClockSkew, a negative value means none.
	ClockSkew time.Duration
	// Bindings are the acceptable ways to tie the EAR to the connection;
	// 0 means BindNonce.
	Bindings Binding
	// Time is the clock when Expected.Now is zero; nil means time.Now.
	Time func() time.Time
}

// Verifier checks EARs (passport model). It is safe for concurrent use.
type Verifier struct {
	cfg    Config
	reused reusedTokens
}

var _ verifier.RecordVerifier = (*Verifier)(nil)

// New returns a Verifier for cfg; cfg is copied, and nil means the zero
// Config. It fails for a malformed Config: a key of an unsupported type
// (see TrustedKey) or an algorithm that is not ES256, ES384 or EdDSA.
func New(cfg *Config) (*Verifier, error) {
	v := &Verifier{}
	if cfg != nil {
		v.cfg = *cfg
	}
	v.cfg.Keys = slices.Clone(v.cfg.Keys)
	for i, k := range v.cfg.Keys {
		if _, ok := algFor(k.Key); !ok {
			return nil, fmt.Errorf("ear: trusted key %d (%q) is a %T, not a P-256, P-384 or Ed25519 public key", i, k.ID, k.Key)
		}
	}
	for _, a := range v.cfg.Algorithms {
		if _, ok := supportedAlgs[a]; !ok {
			return nil, fmt.Errorf("ear: unsupported algorithm %q", a)
		}
	}
	return v, nil
}

// Verify checks the EAR in b (a CMW record of cmw.MediaTypeEAR) against
// exp and the Verifier's policy (verifier.VerifyCMW, then VerifyRecord).
func (v *Verifier) Verify(ctx context.Context, b []byte, exp *verifier.Expected) (*verifier.Result, error) {
	return verifier.VerifyCMW(ctx, v, b, exp)
}

// VerifyRecord checks a decoded CMW record of type cmw.MediaTypeEAR
// (indicator attestation results or none) with VerifyJWT.
func (v *Verifier) VerifyRecord(ctx context.Context, rec cmw.Record, exp *verifier.Expected) (*verifier.Result, error) {
	if err := verifier.ExpectRecord(rec, cmw.MediaTypeEAR, cmw.AttestationResults); err != nil {
		return nil, err
	}
	return v.VerifyJWT(ctx, rec.Value, exp)
}

// VerifyJWT checks a bare EAR JWT (compact serialization) against exp and
// the Verifier's policy; Verify calls it after unwrapping the CMW.
func (v *Verifier) VerifyJWT(ctx context.Context, token []byte, exp *verifier.Expected) (*verifier.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, verifier.Unavailable(false, err, "ear: context done")
	}
	if exp == nil {
		return nil, errors.New("ear: nil Expected")
	}
	c, err := v.signedClaims(token)
	if err != nil {
		return nil, err
	}

	profiles := v.cfg.Profiles
	if profiles == nil {
		profiles = []string{vear.EatProfile}
	}
	if c.profile == nil || !contains(profiles, *c.profile) {
		return nil, verifier.Reject(verifier.CheckFormat, nil, "ear: eat_profile not accepted")
	}
	if v.cfg.Issuer != "" && (c.iss == nil || *c.iss != v.cfg.Issuer) {
		return nil, verifier.Reject(verifier.CheckIssuer, nil, "ear: iss is not %q", v.cfg.Issuer)
	}

	// Age.
	now := exp.Now
	if now.IsZero() {
		now = time.Now()
		if v.cfg.Time != nil {
			now = v.cfg.Time()
		}
	}
	bindings := v.cfg.Bindings
	if bindings == 0 {
		bindings = BindNonce
	}
	maxAge := v.cfg.MaxAge
	if maxAge <= 0 {
		maxAge = DefaultMaxAge
	}
	if c.nonce == nil && bindings&BindKey != 0 && v.cfg.KeyBoundMaxAge > 0 {
		// Only key binding can accept it (checked below).
		maxAge = v.cfg.KeyBoundMaxAge
	}
	skew := v.cfg.ClockSkew
	if skew == 0 {
		skew = DefaultClockSkew
	} else if skew < 0 {
		skew = 0
	}
	if c.iat == nil {
		return nil, verifier.Reject(verifier.CheckFormat, nil, "ear: no iat")
	}
	iat := *c.iat
	if iat.After(now.Add(skew)) {
		return nil, verifier.Reject(verifier.CheckAge, nil, "ear: issued in the future (%v)", iat.UTC())
	}
	if now.Sub(iat) > maxAge {
		return nil, verifier.Reject(verifier.CheckAge, nil, "ear: issued %v ago, more than %v", now.Sub(iat).Round(time.Second), maxAge)
	}
	if c.exp != nil && !now.Before(*c.exp) {
		return nil, verifier.Reject(verifier.CheckAge, nil, "ear: expired at %v", c.exp.UTC())
	}
	if c.nbf != nil && now.Add(skew).Before(*c.nbf) {
		return nil, verifier.Reject(verifier.CheckAge, nil, "ear: not valid before %v", c.nbf.UTC())
	}

	// Binding to this connection.
	nonceOK := false
	if c.nonce != nil {
		want, err := nonceValue(exp)
		if err != nil {
			return nil, err
		}
		got, ok := decodeNonce(*c.nonce)
		if !ok {
			return nil, verifier.Reject(verifier.CheckNonce, nil, "ear: eat_nonce is not canonical base64url")
		}
		if subtle.ConstantTimeCompare(got, want) != 1 {
			return nil, verifier.Reject(verifier.CheckNonce, nil, "ear: eat_nonce does not match this connection's challenge")
		}
		nonceOK = true
	}
	keyOK, keySeen := false, false
	names := c.names
	for _, name := range names {
		ap := c.submods[name]
		if !ap.keyAtt {
			continue
		}
		keySeen = true
		der, err := base64.RawURLEncoding.Strict().DecodeString(*ap.akpub)
		if err != nil {
			return nil, verifier.Reject(verifier.CheckFormat, err, "ear: akpub")
		}
		if len(exp.SPKI) == 0 || subtle.ConstantTimeCompare(der, exp.SPKI) != 1 {
			return nil, verifier.Reject(verifier.CheckKey, nil, "ear: submod %q attests another key", name)
		}
		keyOK = true
	}
	switch {
	case bindings&BindNonce != 0 && nonceOK:
	case bindings&BindKey != 0 && keyOK:
	case bindings&BindKey != 0 && !keySeen && bindings&BindNonce == 0:
		return nil, verifier.Reject(verifier.CheckKey, nil, "ear: no key attestation")
	default:
		return nil, verifier.Reject(verifier.CheckNonce, nil, "ear: not bound to this connection (no eat_nonce)")
	}

	// Status of every submodule.
	res := &verifier.Result{
		Model:       verifier.Passport,
		Technology:  strings.Join(names, "+"),
		MediaType:   cmw.MediaTypeEAR,
		AppraisedAt: iat,
		EAR:         bytes.Clone(token),
		Claims:      map[string]string{},
		// Good until the earlier of exp and the end of the accepted age.
		Expires: iat.Add(maxAge),
	}
	if c.exp != nil && c.exp.Before(res.Expires) {
		res.Expires = *c.exp
	}
	// A key-attested EAR vouches for the key; a nonce-bound one only
	// for the challenge it was issued for.
	res.KeyBinding = verifier.KeyByBinder
	if keyOK {
		res.KeyBinding = verifier.KeyInResult
	}
	for i, name := range names {
		ap := c.submods[name]
		// The tier this submodule supports: ear.status, lowered by its
		// trust vector (Status).
		tier := Status(ap.status, ap.vector)
		switch {
		case tier == verifier.TierAffirming:
		case tier == verifier.TierWarning && v.cfg.AcceptWarning:
		default:
			if tier != ap.status {
				return nil, verifier.Reject(verifier.CheckStatus, nil, "ear: submod %q is %v (ear.status %v, lowered by its trust vector)", name, tier, ap.status)
			}
			return nil, verifier.Reject(verifier.CheckStatus, nil, "ear: submod %q is %v", name, tier)
		}
		if i == 0 {
			res.Status, res.TrustVector = tier, ap.vector
		} else {
			res.Status = verifier.WorstTier(res.Status, tier)
			res.TrustVector.Merge(ap.vector)
		}
		res.Claims["submod."+name+".status"] = tier.String()
		if ap.policy != nil {
			res.Claims["submod."+name+".policy"] = *ap.policy
		}
	}
	switch {
	case c.iss != nil:
		res.Verifier = *c.iss
	case c.developer != nil && c.build != nil:
		res.Verifier = *c.developer + " " + *c.build
	}
	if c.developer != nil {
		res.Claims["ear.verifier-id.developer"] = *c.developer
	}
	if c.build != nil {
		res.Claims["ear.verifier-id.build"] = *c.build
	}
	return res, nil
}

// signedClaims verifies token's signature and parses its claims, or
// finds them in the cache of reused tokens.
func (v *Verifier) signedClaims(token []byte) (*claims, error) {
	digest := sha256.Sum256(token)
	if c := v.reused.get(digest); c != nil {
		return c, nil
	}
	payload, err := v.checkSignature(token)
	if err != nil {
		return nil, err
	}
	// Signed content from here on; still parsed strictly (claims.go).
	c, err := parseClaims(payload)
	if err != nil {
		return nil, verifier.Reject(verifier.CheckFormat, err, "ear: signed content")
	}
	if c.nonce == nil {
		v.reused.put(digest, c)
	}
	return c, nil
}

// maxReusedTokens bounds the cache of reused tokens of a Verifier.
const maxReusedTokens = 64

// reusedTokens caches the claims of EARs without eat_nonce (key-bound
// passports, presented again on every connection) whose signature a
// Verifier has checked, keyed by SHA-256 of the exact token: a token seen
// again skips the signature check and the parse, never the checks of age,
// binding and status, which depend on the connection and the time. The
// claims are never modified after parseClaims. Nonce-bound EARs serve one
// connection and are not cached. At most maxReusedTokens entries; when
// full, an arbitrary entry makes room.
type reusedTokens struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]*claims
}

func (r *reusedTokens) get(k [sha256.Size]byte) *claims {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[k]
}

func (r *reusedTokens) put(k [sha256.Size]byte, c *claims) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[[sha256.Size]byte]*claims{}
	}
	for old := range r.m {
		if len(r.m) < maxReusedTokens {
			break
		}
		delete(r.m, old)
	}
	r.m[k] = c
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Nonce returns the eat_nonce go-expat puts in an EAR for exp: the
// unpadded base64url of exp.ReportData64(), or of exp.QualifyingData when
// that is the only value set (a 32-byte TPM session of verifier/local).
func Nonce(exp *verifier.Expected) (string, error) {
	v, err := nonceValue(exp)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(v), nil
}

// ExpectedForNonce returns the Expected, at now, whose EAR nonce value is
// nonce: a 64-byte nonce is the ReportData, a 32-byte one the
// QualifyingData (what the background-check sessions of verifier/local
// and Veraison carry). Other sizes are an error.
func ExpectedForNonce(nonce []byte, now time.Time) (*verifier.Expected, error) {
	exp := &verifier.Expected{Now: now}
	switch len(nonce) {
	case 64:
		rd := [64]byte(nonce)
		exp.ReportData = &rd
	case 32:
		qd := [32]byte(nonce)
		exp.QualifyingData = &qd
	default:
		return nil, fmt.Errorf("ear: nonce of %d bytes, want 64 or 32", len(nonce))
	}
	return exp, nil
}

// nonceValue is the value an EAR's eat_nonce must carry for exp.
func nonceValue(exp *verifier.Expected) ([]byte, error) {
	if exp.ReportData == nil && exp.QualifyingData != nil {
		qd := *exp.QualifyingData
		return qd[:], nil
	}
	rd, err := exp.ReportData64()
	if err != nil {
		return nil, fmt.Errorf("ear: expected challenge: %w", err)
	}
	return rd[:], nil
}

// decodeNonce decodes an EAR eat_nonce string. go-expat issues unpadded
// base64url (Nonce); Veraison v0.0.2501 issues padded base64url. Both are
// accepted, only in their canonical form (re-encoding gives the input).
func decodeNonce(s string) ([]byte, bool) {
	enc := base64.RawURLEncoding
	if strings.HasSuffix(s, "=") {
		enc = base64.URLEncoding
	}
	b, err := enc.Strict().DecodeString(s)
	if err != nil || enc.EncodeToString(b) != s {
		return nil, false
	}
	return b, true
}

// checkSignature parses the compact JWS strictly and verifies it with a
// trusted key; it returns the payload.
func (v *Verifier) checkSignature(token []byte) ([]byte, error) {
	if len(token) == 0 || len(token) > maxJWT {
		return nil, verifier.Reject(verifier.CheckFormat, nil, "ear: JWT of %d bytes", len(token))
	}
	parts := bytes.Split(token, []byte{'.'})
	if len(parts) != 3 {
		return nil, verifier.Reject(verifier.CheckFormat, nil, "ear: JWT has %d parts, want 3", len(parts))
	}
	var dec [3][]byte
	for i, p := range parts {
		b, err := decodeB64(p)
		if err != nil {
			return nil, verifier.Reject(verifier.CheckFormat, err, "ear: JWT part")
		}
		dec[i] = b
	}
	h, err := parseHeader(dec[0])
	if err != nil {
		return nil, verifier.Reject(verifier.CheckFormat, err, "ear: token")
	}
	if h.crit || h.b64 {
		return nil, verifier.Reject(verifier.CheckFormat, nil, "ear: crit and b64 headers are not supported")
	}
	if h.typ != nil && !strings.EqualFold(*h.typ, "JWT") {
		return nil, verifier.Reject(verifier.CheckFormat, nil, "ear: typ %q", *h.typ)
	}
	if h.alg == nil {
		return nil, verifier.Reject(verifier.CheckSignature, nil, "ear: no alg")
	}
	alg := *h.alg
	allowed := v.cfg.Algorithms
	if allowed == nil {
		allowed = []string{"ES256", "ES384", "EdDSA"}
	}
	jalg, supported := supportedAlgs[alg]
	if !supported || !contains(allowed, alg) {
		return nil, verifier.Reject(verifier.CheckSignature, nil, "ear: algorithm %q not allowed", alg)
	}
	tried := 0
	var lastErr error
	for _, k := range v.cfg.Keys {
		if k.ID != "" && (h.kid == nil || k.ID != *h.kid) {
			continue
		}
		if ka, ok := algFor(k.Key); !ok || ka != alg {
			continue
		}
		tried++
		payload, err := jws.VerifyCompactFast(k.Key, token, jalg)
		if err == nil {
			return payload, nil
		}
		lastErr = err
	}
	if tried == 0 {
		return nil, verifier.Reject(verifier.CheckSignature, nil, "ear: no trusted %s key (kid %v)", alg, deref(h.kid))
	}
	return nil, verifier.Reject(verifier.CheckSignature, lastErr, "ear: no trusted key verifies the EAR")
}

func deref(s *string) string {
	if s == nil {
		return "absent"
	}
	return fmt.Sprintf("%q", *s)
}

// decodeB64 accepts only unpadded canonical base64url.
func decodeB64(p []byte) ([]byte, error) {
	for _, c := range p {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return nil, fmt.Errorf("byte 0x%02x is not base64url", c)
		}
	}
	return base64.RawURLEncoding.Strict().DecodeString(string(p))
}
