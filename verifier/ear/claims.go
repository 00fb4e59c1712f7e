package ear

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/attested-tls/go-expat/verifier"
)

// The JSON of JOSE headers and EAR claims sets is decoded here, and only
// here, without encoding/json's struct decoding: that matches member names
// case-insensitively (an "IAT" member fills the field of "iat"), while
// JWT claim names are case-sensitive (RFC 7519, Section 4) and the
// duplicate-member check is exact. Instead, decodeObject builds a tree of
// exactly named members (duplicates rejected), and the claims are read
// from it by exact name with exact JSON types (T34):
//
//   - a member that is not one of the names read here but equals one of
//     them under Unicode case folding ("IAT", "Exp", "EAR.STATUS") is
//     rejected, so that no reader can take it for the registered claim;
//   - NumericDate claims (iat, exp, nbf) are JSON numbers holding an
//     integer (no fraction, no exponent, not a string such as "1800000000");
//   - trustworthiness claims are JSON integers in [-128, 127] and ear.status
//     is one of the four tier names (EAR's JSON serialization), never a
//     number or another spelling;
//   - strings are JSON strings; objects are objects.

// maxJSONDepth bounds the nesting of a decoded JSON value.
const maxJSONDepth = 32

// decodeObject decodes b as exactly one JSON object: valid UTF-8, no
// duplicate member names (compared exactly) at any level, nesting at most
// maxJSONDepth, nothing after it. Numbers are json.Number.
func decodeObject(b []byte) (map[string]any, error) {
	if !utf8.Valid(b) {
		return nil, errors.New("ear: JSON is not valid UTF-8")
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	tok, err := d.Token()
	if err != nil {
		return nil, fmt.Errorf("ear: JSON: %w", err)
	}
	if tok != json.Delim('{') {
		return nil, errors.New("ear: JSON is not an object")
	}
	v, err := decodeValue(d, tok, 1)
	if err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("ear: data after the JSON object")
	}
	return v.(map[string]any), nil
}

func decodeValue(d *json.Decoder, tok json.Token, depth int) (any, error) {
	delim, ok := tok.(json.Delim)
	if !ok {
		return tok, nil // string, json.Number, bool, nil
	}
	if depth > maxJSONDepth {
		return nil, errors.New("ear: JSON nested too deeply")
	}
	switch delim {
	case '{':
		m := map[string]any{}
		for {
			tok, err := d.Token()
			if err != nil {
				return nil, fmt.Errorf("ear: JSON: %w", err)
			}
			if tok == json.Delim('}') {
				return m, nil
			}
			key, ok := tok.(string)
			if !ok {
				return nil, errors.New("ear: JSON member name is not a string")
			}
			if _, dup := m[key]; dup {
				return nil, fmt.Errorf("ear: duplicate JSON member %q", key)
			}
			if tok, err = d.Token(); err != nil {
				return nil, fmt.Errorf("ear: JSON: %w", err)
			}
			v, err := decodeValue(d, tok, depth+1)
			if err != nil {
				return nil, err
			}
			m[key] = v
		}
	case '[':
		a := []any{}
		for {
			tok, err := d.Token()
			if err != nil {
				return nil, fmt.Errorf("ear: JSON: %w", err)
			}
			if tok == json.Delim(']') {
				return a, nil
			}
			v, err := decodeValue(d, tok, depth+1)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
	}
	return nil, fmt.Errorf("ear: unexpected JSON delimiter %v", delim)
}

// object is a decoded JSON object whose members are read by exact name.
type object struct {
	m    map[string]any
	what string // for messages: "claims", "submod \"x\"", ...
}

// newObject checks that no member of m is a case-folded variant of one of
// names (the members this reader interprets).
func newObject(m map[string]any, what string, names ...string) (object, error) {
	for key := range m {
		for _, n := range names {
			if key != n && strings.EqualFold(key, n) {
				return object{}, fmt.Errorf("ear: %s: member %q differs from %q only in case", what, key, n)
			}
		}
	}
	return object{m: m, what: what}, nil
}

func (o object) str(name string) (*string, error) {
	v, ok := o.m[name]
	if !ok {
		return nil, nil
	}
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("ear: %s: %s is not a string", o.what, name)
	}
	return &s, nil
}

func (o object) obj(name string) (map[string]any, error) {
	v, ok := o.m[name]
	if !ok {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("ear: %s: %s is not an object", o.what, name)
	}
	return m, nil
}

// integer reads a JSON number that is an integer in [min, max], written
// without fraction or exponent.
func (o object) integer(name string, min, max int64) (*int64, error) {
	v, ok := o.m[name]
	if !ok {
		return nil, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return nil, fmt.Errorf("ear: %s: %s is not a JSON number", o.what, name)
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil || i < min || i > max {
		return nil, fmt.Errorf("ear: %s: %s is not an integer in [%d, %d]", o.what, name, min, max)
	}
	return &i, nil
}

// numericDate reads a NumericDate (RFC 7519, Section 2) in whole seconds.
func (o object) numericDate(name string) (*time.Time, error) {
	i, err := o.integer(name, 0, math.MaxInt64/int64(time.Second))
	if err != nil || i == nil {
		return nil, err
	}
	t := time.Unix(*i, 0)
	return &t, nil
}

// Member names read from an EAR (draft-ietf-rats-ear, as veraison/ear
// v1.1.3 spells them) and the JWT registered claims (RFC 7519).
var (
	claimNames = []string{"eat_profile", "iat", "exp", "nbf", "iss", "sub", "aud", "jti",
		"eat_nonce", "ear.verifier-id", "submods", "ear.raw-evidence"}
	submodNames = []string{"ear.status", "ear.trustworthiness-vector", "ear.appraisal-policy-id",
		"ear.veraison.key-attestation", "ear.veraison.annotated-evidence", "ear.veraison.policy-claims"}
	vectorNames = []string{"instance-identity", "configuration", "executables", "file-system",
		"hardware", "runtime-opaque", "storage-opaque", "sourced-data"}
	verifierIDNames = []string{"developer", "build"}
	keyAttNames     = []string{"akpub"}
	headerNames     = []string{"alg", "kid", "typ", "cty", "crit", "b64", "jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256"}
)

// tierNames are the JSON names of the tiers (EAR, Section 3.2).
var tierNames = map[string]verifier.Tier{
	"none": verifier.TierNone, "affirming": verifier.TierAffirming,
	"warning": verifier.TierWarning, "contraindicated": verifier.TierContraindicated,
}

// claims is what the Verifier reads from an EAR claims set.
type claims struct {
	profile          *string
	iss              *string
	iat, exp, nbf    *time.Time
	nonce            *string
	developer, build *string
	submods          map[string]*appraisal
	names            []string
}

type appraisal struct {
	status verifier.Tier
	vector verifier.TrustVector
	policy *string
	akpub  *string // key attestation, when present
	keyAtt bool
}

// parseClaims reads an EAR claims set (the signed JWT payload).
func parseClaims(payload []byte) (*claims, error) {
	m, err := decodeObject(payload)
	if err != nil {
		return nil, err
	}
	top, err := newObject(m, "claims", claimNames...)
	if err != nil {
		return nil, err
	}
	c := &claims{}
	if c.profile, err = top.str("eat_profile"); err != nil {
		return nil, err
	}
	if c.iss, err = top.str("iss"); err != nil {
		return nil, err
	}
	if c.nonce, err = top.str("eat_nonce"); err != nil {
		return nil, err
	}
	for name, dst := range map[string]**time.Time{"iat": &c.iat, "exp": &c.exp, "nbf": &c.nbf} {
		if *dst, err = top.numericDate(name); err != nil {
			return nil, err
		}
	}
	vid, err := top.obj("ear.verifier-id")
	if err != nil {
		return nil, err
	}
	if vid != nil {
		o, err := newObject(vid, "ear.verifier-id", verifierIDNames...)
		if err != nil {
			return nil, err
		}
		if c.developer, err = o.str("developer"); err != nil {
			return nil, err
		}
		if c.build, err = o.str("build"); err != nil {
			return nil, err
		}
	}
	subs, err := top.obj("submods")
	if err != nil {
		return nil, err
	}
	if len(subs) == 0 {
		return nil, errors.New("ear: claims: no submods")
	}
	c.submods = make(map[string]*appraisal, len(subs))
	for name, v := range subs {
		sm, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("ear: submod %q is not an object", name)
		}
		a, err := parseAppraisal(sm, fmt.Sprintf("submod %q", name))
		if err != nil {
			return nil, err
		}
		c.submods[name] = a
		c.names = append(c.names, name)
	}
	sort.Strings(c.names)
	return c, nil
}

func parseAppraisal(m map[string]any, what string) (*appraisal, error) {
	o, err := newObject(m, what, submodNames...)
	if err != nil {
		return nil, err
	}
	a := &appraisal{}
	st, err := o.str("ear.status")
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, fmt.Errorf("ear: %s has no ear.status", what)
	}
	tier, ok := tierNames[*st]
	if !ok {
		return nil, fmt.Errorf("ear: %s: ear.status %q is not a tier name", what, *st)
	}
	a.status = tier
	if a.policy, err = o.str("ear.appraisal-policy-id"); err != nil {
		return nil, err
	}
	tvm, err := o.obj("ear.trustworthiness-vector")
	if err != nil {
		return nil, err
	}
	if tvm != nil {
		tv, err := newObject(tvm, what+" ear.trustworthiness-vector", vectorNames...)
		if err != nil {
			return nil, err
		}
		dst := []*int8{&a.vector.InstanceIdentity, &a.vector.Configuration, &a.vector.Executables,
			&a.vector.FileSystem, &a.vector.Hardware, &a.vector.RuntimeOpaque, &a.vector.StorageOpaque,
			&a.vector.SourcedData}
		for i, name := range vectorNames {
			n, err := tv.integer(name, math.MinInt8, math.MaxInt8)
			if err != nil {
				return nil, err
			}
			if n != nil {
				*dst[i] = int8(*n)
			}
		}
	}
	ka, err := o.obj("ear.veraison.key-attestation")
	if err != nil {
		return nil, err
	}
	if ka != nil {
		k, err := newObject(ka, what+" ear.veraison.key-attestation", keyAttNames...)
		if err != nil {
			return nil, err
		}
		if a.akpub, err = k.str("akpub"); err != nil {
			return nil, err
		}
		if a.akpub == nil {
			return nil, fmt.Errorf("ear: %s: key attestation without akpub", what)
		}
		a.keyAtt = true
	}
	return a, nil
}

// joseHeader is what the Verifier reads from a JOSE header.
type joseHeader struct {
	alg, kid, typ *string
	crit, b64     bool
}

func parseHeader(b []byte) (*joseHeader, error) {
	m, err := decodeObject(b)
	if err != nil {
		return nil, err
	}
	o, err := newObject(m, "JOSE header", headerNames...)
	if err != nil {
		return nil, err
	}
	h := &joseHeader{}
	if h.alg, err = o.str("alg"); err != nil {
		return nil, err
	}
	if h.kid, err = o.str("kid"); err != nil {
		return nil, err
	}
	if h.typ, err = o.str("typ"); err != nil {
		return nil, err
	}
	_, h.crit = m["crit"]
	_, h.b64 = m["b64"]
	return h, nil
}

// Status derives an EAR appraisal's tier consistently with its
// trustworthiness vector: the worst (verifier.WorstTier) of ear.status and
// the tier of every claim the vector makes (a claim of 0 is no claim). An
// EAR whose ear.status says affirming while a claim says warning or
// contraindicated is therefore warning or contraindicated: the status
// never claims more than the vector supports. The Verifier applies its
// policy to this tier, and the Issuer issues it.
func Status(status verifier.Tier, tv verifier.TrustVector) verifier.Tier {
	for _, c := range []int8{tv.InstanceIdentity, tv.Configuration, tv.Executables, tv.FileSystem,
		tv.Hardware, tv.RuntimeOpaque, tv.StorageOpaque, tv.SourcedData} {
		if c != 0 {
			status = verifier.WorstTier(status, verifier.TierOf(c))
		}
	}
	return status
}
