package policy

// Reference values given as a CoRIM (draft-ietf-rats-corim, the Concise
// Reference Integrity Manifest, in the encoding that
// github.com/veraison/corim writes: the version go.mod pins is the one the
// tests generate their CoRIMs with). Each backend reads the triples of the
// profile that describes its Evidence; every profile-dependent constant is
// in this file, with the draft it comes from:
//
//   - tpm: no TPM profile is published that names PCRs by index, so the
//     base CoRIM representation is used and no profile may be named: the
//     measurement-values-map's integrity-registers (key 14) with an
//     unsigned register index (the PCR index) and digests whose algorithm
//     is the policy's pcr_bank.
//   - sev-snp: draft-deeglaze-amd-sev-snp-corim-profile (the -02 text and
//     its later repository examples, which name the profile differently;
//     both names are accepted): class-id one of the two tagged UUIDs of the
//     profile, mkey 0 with digests [[7 (sha-384), MEASUREMENT]], mkey 8
//     with raw-value 560(HOST_DATA).
//   - tdx: draft-cds-rats-intel-corim-profile (profile OID
//     2.16.840.1.113741.1.16.1): tee.mrtee (measurement-values-map key
//     -83, digests; or the profile's alternative form, mkey 83 with
//     digests) is the TD's MRTD. The profile names no encoding for RTMRs:
//     we read the base CoRIM integrity-registers with the unsigned
//     indices 0..3 as RTMR 0..3 (SHA-384 digests).
//   - cca: the Arm CCA endorsement profiles (draft-ydb-rats-cca-endorsements,
//     as Veraison implements them): "http://arm.com/cca/ssd/1" for the
//     platform (class-id 600(implementation ID); mkey 601(psa-refval-id
//     {1: label, 4: version, 5: signer-id} of
//     draft-fdb-rats-psa-endorsements) with digests for a software
//     component; mkey 602(platform-config-id) with raw-value
//     560(configuration) for the platform configuration) and
//     "http://arm.com/cca/realm/1" for a realm (instance 560(RIM);
//     raw-value 560(personalization value); integrity-registers "rim",
//     "rem0".."rem3").
//
// Fail closed: a measurement-values-map member, mkey, triple shape or
// profile that the backend does not enforce is an error, never ignored (a
// CoRIM that constrains more than the backend checks would otherwise be
// silently weakened). Only reference-value triples are read; other triples
// (endorsements, attestation keys: the policy's own trust anchors apply)
// and CoSWID or CoTL tags are skipped. Dependent RIMs, masked raw values
// and environments with an instance (except a CCA realm's RIM) are refused.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"
	cose "github.com/veraison/go-cose"

	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/internal/strictcbor"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/cca"
	"github.com/attested-tls/go-expat/verifier/sevsnp"
	"github.com/attested-tls/go-expat/verifier/tdx"
	"github.com/attested-tls/go-expat/verifier/tpm"
)

// MaxCoRIMSize bounds a CoRIM that a policy names (file or inline).
const MaxCoRIMSize = 1 << 20

// Profile identifiers.
const (
	profileSNP         = "http://amd.com/please-permalink-me" // draft-deeglaze-amd-sev-snp-corim-profile-02
	profileSNPTag      = "tag:amd.com,2025:snp-corim-profile" // its repository's later examples
	profileIntel       = "2.16.840.1.113741.1.16.1"           // draft-cds-rats-intel-corim-profile
	profileCCAPlatform = "http://arm.com/cca/ssd/1"           // draft-ydb-rats-cca-endorsements
	profileCCARealm    = "http://arm.com/cca/realm/1"
)

// SEV-SNP class-ids (draft-deeglaze-amd-sev-snp-corim-profile: by chip
// (VCEK) and by CSP (VLEK)).
var snpClassIDs = [][]byte{
	{0xd0, 0x5e, 0x6d, 0x1b, 0x9f, 0x46, 0x4a, 0xe2, 0xa6, 0x10, 0xce, 0x3e, 0x6e, 0xe7, 0xe1, 0x53},
	{0x89, 0xa7, 0xa1, 0xf0, 0xe7, 0x04, 0x4f, 0xaa, 0xac, 0xbd, 0x81, 0xc8, 0x6d, 0xf8, 0xa9, 0x61},
}

// CBOR tags (draft-ietf-rats-corim and the profiles above).
const (
	tagSign1       = 18
	tagURI         = 32
	tagUUID        = 37
	tagOID         = 111
	tagCoRIM       = 501
	tagCoSWID      = 505
	tagCoMID       = 506
	tagCoTL        = 508
	tagBytes       = 560
	tagMaskedRaw   = 563
	tagPSAImplID   = 600
	tagPSARefValID = 601
	tagCCAConfigID = 602
)

// measurement-values-map keys (draft-ietf-rats-corim; -83 is the Intel
// profile's tee.mrtee).
const (
	mvalDigests   = 2
	mvalRawValue  = 4
	mvalRegisters = 14
	mvalMRTEE     = -83
)

var mvalNames = map[int]string{0: "version", 1: "svn", 2: "digests", 3: "flags", 4: "raw-value",
	5: "raw-value-mask", 6: "mac-addr", 7: "ip-addr", 8: "serial-number", 9: "ueid", 10: "uuid",
	11: "name", 13: "cryptokeys", 14: "integrity-registers", 15: "int-range", -83: "tee.mrtee"}

// Hash algorithms of digests (IANA Named Information registry, or their
// names): what our backends compare, by length.
var hashAlgs = map[int64]crypto.Hash{1: crypto.SHA256, 7: crypto.SHA384, 8: crypto.SHA512}
var hashNames = map[string]crypto.Hash{"sha-256": crypto.SHA256, "sha-384": crypto.SHA384, "sha-512": crypto.SHA512}

// corimDec is the strict decoder for CoRIMs: duplicate keys, indefinite
// lengths and unknown struct members are refused (STYLE.md, strict
// decoding), within these bounds.
var corimDec = strictcbor.DecMode(strictcbor.Limits{
	MaxNestedLevels: 32, MaxArrayElements: 4096, MaxMapPairs: 4096,
	AllowTags: true, RejectUnknownFields: true,
})

// CoRIMSource names a CoRIM with reference values: a file (relative to
// Options.Dir) or the CoRIM inline in base64, and, for a signed CoRIM, the
// key that must have signed it.
type CoRIMSource struct {
	// File is the CoRIM's file name. Exactly one of File and Base64.
	File string `json:"file,omitempty"`
	// Base64 is the CoRIM itself (standard base64).
	Base64 string `json:"base64,omitempty"`
	// Signer is the signer's public key (PEM PUBLIC KEY text or file).
	// Required for a signed CoRIM (COSE_Sign1, tag 18), whose signature
	// is then verified; refused for an unsigned one (tag 501), so that a
	// policy that expects a signed CoRIM never reads an unsigned one.
	Signer string `json:"signer,omitempty"`
}

// corimDoc is a decoded, verified CoRIM.
type corimDoc struct {
	profile string
	// notBefore and notAfter bound when it may be used (zero: unbounded),
	// the intersection of the CoRIM's own validity and its signature's.
	notBefore, notAfter time.Time
	triples             []refTriple
}

// refTriple is one reference-value triple, with where it is in the CoRIM
// for error messages.
type refTriple struct {
	at   string
	env  environment
	meas []measurement
}

type environment struct {
	Class    *classMap       `cbor:"0,keyasint,omitempty"`
	Instance cbor.RawMessage `cbor:"1,keyasint,omitempty"`
	Group    cbor.RawMessage `cbor:"2,keyasint,omitempty"`
}

type classMap struct {
	ClassID cbor.RawMessage `cbor:"0,keyasint,omitempty"`
	Vendor  string          `cbor:"1,keyasint,omitempty"`
	Model   string          `cbor:"2,keyasint,omitempty"`
	Layer   *uint64         `cbor:"3,keyasint,omitempty"`
	Index   *uint64         `cbor:"4,keyasint,omitempty"`
}

type measurement struct {
	Key          cbor.RawMessage         `cbor:"0,keyasint,omitempty"`
	Values       map[int]cbor.RawMessage `cbor:"1,keyasint"`
	AuthorizedBy cbor.RawMessage         `cbor:"2,keyasint,omitempty"`
}

type validity struct {
	NotBefore *time.Time `cbor:"0,keyasint,omitempty"`
	NotAfter  time.Time  `cbor:"1,keyasint"`
}

type corimMap struct {
	ID       cbor.RawMessage   `cbor:"0,keyasint"`
	Tags     []cbor.RawMessage `cbor:"1,keyasint"`
	Deps     cbor.RawMessage   `cbor:"2,keyasint,omitempty"`
	Profile  cbor.RawMessage   `cbor:"3,keyasint,omitempty"`
	Validity *validity         `cbor:"4,keyasint,omitempty"`
	Entities cbor.RawMessage   `cbor:"5,keyasint,omitempty"`
}

type comidMap struct {
	Language    cbor.RawMessage `cbor:"0,keyasint,omitempty"`
	TagIdentity cbor.RawMessage `cbor:"1,keyasint"`
	Entities    cbor.RawMessage `cbor:"2,keyasint,omitempty"`
	LinkedTags  cbor.RawMessage `cbor:"3,keyasint,omitempty"`
	Triples     triplesMap      `cbor:"4,keyasint"`
	Profile     cbor.RawMessage `cbor:"5,keyasint,omitempty"`
}

// triplesMap reads the reference triples and skips the others by name.
type triplesMap struct {
	Reference   []cbor.RawMessage `cbor:"0,keyasint,omitempty"`
	Endorsed    cbor.RawMessage   `cbor:"1,keyasint,omitempty"`
	Identity    cbor.RawMessage   `cbor:"2,keyasint,omitempty"`
	AttestKey   cbor.RawMessage   `cbor:"3,keyasint,omitempty"`
	Dependency  cbor.RawMessage   `cbor:"4,keyasint,omitempty"`
	Membership  cbor.RawMessage   `cbor:"5,keyasint,omitempty"`
	CoSWID      cbor.RawMessage   `cbor:"6,keyasint,omitempty"`
	CondSeries  cbor.RawMessage   `cbor:"8,keyasint,omitempty"`
	Conditional cbor.RawMessage   `cbor:"10,keyasint,omitempty"`
}

type corimMeta struct {
	Signer   cbor.RawMessage `cbor:"0,keyasint"`
	Validity *validity       `cbor:"1,keyasint,omitempty"`
}

// decodeCoRIM decodes data, a signed (COSE_Sign1) or unsigned CoRIM. A
// signed CoRIM is verified with signer, which must then be set; an
// unsigned one is refused when signer is set.
func decodeCoRIM(data []byte, signer crypto.PublicKey) (*corimDoc, error) {
	if len(data) > MaxCoRIMSize {
		return nil, fmt.Errorf("larger than %d bytes", MaxCoRIMSize)
	}
	if err := corimDec.Wellformed(data); err != nil {
		return nil, fmt.Errorf("malformed CBOR: %w", err)
	}
	doc := &corimDoc{}
	payload := data
	var tag cbor.RawTag
	isTag := corimDec.Unmarshal(data, &tag) == nil
	switch {
	case isTag && tag.Number == tagSign1:
		if signer == nil {
			return nil, errors.New("a signed CoRIM (COSE_Sign1): give its signer's key in \"signer\"")
		}
		p, meta, err := verifyCoRIMSign1(data, signer)
		if err != nil {
			return nil, err
		}
		if meta.Validity != nil {
			doc.narrow(meta.Validity)
		}
		// The draft's payload is 501(corim-map); github.com/veraison/corim
		// signs the bare map. Both are read.
		payload = p
		if corimDec.Unmarshal(payload, &tag) == nil {
			if tag.Number != tagCoRIM {
				return nil, fmt.Errorf("signed payload: CBOR tag %d, want 501 (unsigned CoRIM)", tag.Number)
			}
			payload = tag.Content
		}
	case signer != nil:
		return nil, errors.New("not a signed CoRIM (COSE_Sign1, tag 18), but the policy names a signer")
	case isTag && tag.Number == tagCoRIM:
		payload = tag.Content
	case isTag:
		return nil, fmt.Errorf("CBOR tag %d: want 501 (unsigned CoRIM) or 18 (COSE_Sign1)", tag.Number)
	}
	// An untagged corim-map is what github.com/veraison/corim writes
	// (UnsignedCorim.ToCBOR) and Veraison accepts, so it is read too.
	var m corimMap
	if err := corimDec.Unmarshal(payload, &m); err != nil {
		return nil, fmt.Errorf("corim-map: %w", err)
	}
	if len(m.Deps) > 0 {
		return nil, errors.New("dependent-rims: a CoRIM that depends on others is not supported")
	}
	if len(m.Profile) > 0 {
		p, err := decodeProfile(m.Profile)
		if err != nil {
			return nil, fmt.Errorf("profile: %w", err)
		}
		doc.profile = p
	}
	if m.Validity != nil {
		doc.narrow(m.Validity)
	}
	if !doc.notBefore.IsZero() && !doc.notAfter.IsZero() && doc.notAfter.Before(doc.notBefore) {
		return nil, errors.New("validity: not-after is before not-before")
	}
	if len(m.Tags) == 0 {
		return nil, errors.New("no tags")
	}
	for i, raw := range m.Tags {
		if err := doc.addTag(fmt.Sprintf("tags[%d]", i), raw); err != nil {
			return nil, err
		}
	}
	return doc, nil
}

func (d *corimDoc) narrow(v *validity) {
	if v.NotBefore != nil && v.NotBefore.After(d.notBefore) {
		d.notBefore = *v.NotBefore
	}
	if d.notAfter.IsZero() || v.NotAfter.Before(d.notAfter) {
		d.notAfter = v.NotAfter
	}
}

// checkTime refuses a CoRIM used outside its validity.
func (d *corimDoc) checkTime(now time.Time) error {
	if !d.notBefore.IsZero() && now.Before(d.notBefore) {
		return fmt.Errorf("not valid before %s", d.notBefore.UTC().Format(time.RFC3339))
	}
	if !d.notAfter.IsZero() && now.After(d.notAfter) {
		return fmt.Errorf("expired at %s", d.notAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// addTag reads one $concise-tag-type-choice. CoMIDs come as
// github.com/veraison/corim writes them (a byte string holding
// 506(concise-mid-tag)) or as the drafts write them (506 around the map,
// or around a byte string holding it).
func (d *corimDoc) addTag(at string, raw cbor.RawMessage) error {
	var inner []byte
	if corimDec.Unmarshal(raw, &inner) == nil {
		raw = inner
	}
	var tag cbor.RawTag
	if err := corimDec.Unmarshal(raw, &tag); err != nil {
		return fmt.Errorf("%s: want a tagged CoMID, CoSWID or CoTL", at)
	}
	switch tag.Number {
	case tagCoMID:
	case tagCoSWID, tagCoTL:
		return nil // no reference values for our backends
	default:
		return fmt.Errorf("%s: unknown tag %d", at, tag.Number)
	}
	body := []byte(tag.Content)
	if corimDec.Unmarshal(body, &inner) == nil {
		body = inner
	}
	var c comidMap
	if err := corimDec.Unmarshal(body, &c); err != nil {
		return fmt.Errorf("%s: concise-mid-tag: %w", at, err)
	}
	for j, rt := range c.Triples.Reference {
		t := refTriple{at: fmt.Sprintf("%s.reference-triples[%d]", at, j)}
		var rec struct {
			_    struct{} `cbor:",toarray"`
			Env  environment
			Meas []measurement
		}
		if err := corimDec.Unmarshal(rt, &rec); err != nil {
			return fmt.Errorf("%s: %w", t.at, err)
		}
		if len(rec.Meas) == 0 {
			return fmt.Errorf("%s: no measurement", t.at)
		}
		t.env, t.meas = rec.Env, rec.Meas
		d.triples = append(d.triples, t)
	}
	return nil
}

// verifyCoRIMSign1 checks a signed-corim (draft-ietf-rats-corim,
// COSE_Sign1 with content type application/rim+cbor and corim-meta in the
// protected header) and returns its payload and meta.
func verifyCoRIMSign1(data []byte, key crypto.PublicKey) ([]byte, *corimMeta, error) {
	msg := cose.NewSign1Message()
	if err := msg.UnmarshalCBOR(data); err != nil {
		return nil, nil, fmt.Errorf("COSE_Sign1: %w", err)
	}
	alg, err := msg.Headers.Protected.Algorithm()
	if err != nil {
		return nil, nil, fmt.Errorf("COSE_Sign1: %w", err)
	}
	ok := false
	switch key.(type) {
	case *ecdsa.PublicKey:
		ok = alg == cose.AlgorithmES256 || alg == cose.AlgorithmES384 || alg == cose.AlgorithmES512
	case ed25519.PublicKey:
		ok = alg == cose.AlgorithmEdDSA
	case *rsa.PublicKey:
		ok = alg == cose.AlgorithmPS256 || alg == cose.AlgorithmPS384 || alg == cose.AlgorithmPS512
	}
	if !ok {
		return nil, nil, fmt.Errorf("COSE_Sign1: algorithm %v does not fit the signer key %T", alg, key)
	}
	v, err := cose.NewVerifier(alg, key)
	if err != nil {
		return nil, nil, fmt.Errorf("COSE_Sign1: %w", err)
	}
	if msg.Payload == nil {
		return nil, nil, errors.New("COSE_Sign1: detached payload")
	}
	if err := msg.Verify(nil, v); err != nil {
		return nil, nil, fmt.Errorf("COSE_Sign1: signature: %w", err)
	}
	if ct, _ := msg.Headers.Protected[cose.HeaderLabelContentType].(string); ct != "application/rim+cbor" {
		return nil, nil, fmt.Errorf("COSE_Sign1: content type %v, want application/rim+cbor", msg.Headers.Protected[cose.HeaderLabelContentType])
	}
	mb, ok := msg.Headers.Protected[int64(8)].([]byte)
	if !ok {
		return nil, nil, errors.New("COSE_Sign1: no corim-meta (protected header 8)")
	}
	var meta corimMeta
	if err := corimDec.Unmarshal(mb, &meta); err != nil {
		return nil, nil, fmt.Errorf("COSE_Sign1: corim-meta: %w", err)
	}
	return msg.Payload, &meta, nil
}

// decodeProfile returns a profile as its URI or dotted OID.
func decodeProfile(raw cbor.RawMessage) (string, error) {
	var s string
	if corimDec.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	// github.com/veraison/corim writes an OID profile as its bare bytes
	// (eat.Profile's encoding), not as 111(bytes) as the draft's
	// $profile-type-choice says; a byte string can only be an OID here.
	var der []byte
	if corimDec.Unmarshal(raw, &der) == nil {
		return oidString(der)
	}
	var tag cbor.RawTag
	if err := corimDec.Unmarshal(raw, &tag); err != nil {
		return "", errors.New("want a URI or a tagged OID")
	}
	switch tag.Number {
	case tagURI:
		if err := corimDec.Unmarshal(tag.Content, &s); err != nil {
			return "", errors.New("tag 32: want a text URI")
		}
		return s, nil
	case tagOID:
		if err := corimDec.Unmarshal(tag.Content, &der); err != nil {
			return "", errors.New("tag 111: want the OID's bytes")
		}
		return oidString(der)
	}
	return "", fmt.Errorf("tag %d: want a URI or a tagged OID", tag.Number)
}

// oidString decodes the contents octets of a DER OBJECT IDENTIFIER.
func oidString(b []byte) (string, error) {
	if len(b) == 0 || len(b) > 127 {
		return "", errors.New("OID of bad length")
	}
	var oid asn1.ObjectIdentifier
	rest, err := asn1.Unmarshal(append([]byte{0x06, byte(len(b))}, b...), &oid)
	if err != nil || len(rest) != 0 {
		return "", errors.New("malformed OID")
	}
	return oid.String(), nil
}

// tagged decodes raw as tag number want around a byte string.
func taggedBytes(raw cbor.RawMessage, want uint64) ([]byte, bool) {
	var tag cbor.RawTag
	if corimDec.Unmarshal(raw, &tag) != nil || tag.Number != want {
		return nil, false
	}
	var b []byte
	if corimDec.Unmarshal(tag.Content, &b) != nil {
		return nil, false
	}
	return b, true
}

// digest is one entry of a digests list, its algorithm known.
type digest struct {
	alg   crypto.Hash
	value []byte
}

// decodeDigests reads a digests-type ([+ [hash-alg-id, bytes]]),
// refusing algorithms the backends cannot compare and values of the wrong
// length.
func decodeDigests(raw cbor.RawMessage) ([]digest, error) {
	var entries []struct {
		_     struct{} `cbor:",toarray"`
		Alg   cbor.RawMessage
		Value []byte
	}
	if err := corimDec.Unmarshal(raw, &entries); err != nil {
		return nil, fmt.Errorf("digests: %w", err)
	}
	if len(entries) == 0 {
		return nil, errors.New("digests: empty")
	}
	var out []digest
	for i, e := range entries {
		var h crypto.Hash
		var n int64
		var name string
		switch {
		case corimDec.Unmarshal(e.Alg, &n) == nil:
			h = hashAlgs[n]
		case corimDec.Unmarshal(e.Alg, &name) == nil:
			h = hashNames[name]
		}
		if h == 0 {
			return nil, fmt.Errorf("digests[%d]: hash algorithm %s not supported (want sha-256 (1), sha-384 (7) or sha-512 (8))", i, diag(e.Alg))
		}
		if len(e.Value) != h.Size() {
			return nil, fmt.Errorf("digests[%d]: %d bytes for %v", i, len(e.Value), h)
		}
		out = append(out, digest{alg: h, value: bytes.Clone(e.Value)})
	}
	return out, nil
}

func diag(raw cbor.RawMessage) string {
	s, err := cbor.Diagnose(raw)
	if err != nil || len(s) > 64 {
		return "(value)"
	}
	return s
}

// registers reads integrity-registers: a map from an unsigned or text
// index to digests.
func registers(raw cbor.RawMessage) (map[string][]digest, error) {
	var m map[any]cbor.RawMessage
	if err := corimDec.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("integrity-registers: %w", err)
	}
	out := map[string][]digest{}
	for k, v := range m {
		var name string
		switch k := k.(type) {
		case uint64:
			name = strconv.FormatUint(k, 10)
		case string:
			if _, err := strconv.ParseUint(k, 10, 64); err == nil || k == "" {
				return nil, fmt.Errorf("integrity-registers: text index %q", k)
			}
			name = k
		default:
			return nil, errors.New("integrity-registers: want an unsigned or text index")
		}
		ds, err := decodeDigests(v)
		if err != nil {
			return nil, fmt.Errorf("integrity-registers[%s]: %w", name, err)
		}
		out[name] = ds
	}
	return out, nil
}

// onlyValues refuses measurement-values-map members outside allowed.
func onlyValues(m measurement, allowed ...int) error {
	keys := make([]int, 0, len(m.Values))
	for k := range m.Values {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	for _, k := range keys {
		found := false
		for _, a := range allowed {
			found = found || k == a
		}
		if !found {
			name := mvalNames[k]
			if name == "" {
				name = "member " + strconv.Itoa(k)
			}
			return fmt.Errorf("measurement-values %s is not enforced by this backend: refusing the CoRIM rather than ignoring it", name)
		}
	}
	if len(m.Values) == 0 {
		return errors.New("empty measurement-values-map")
	}
	return nil
}

// only returns the measurement-values member key, refusing any other.
func only(m measurement, key int) (cbor.RawMessage, error) {
	if err := onlyValues(m, key); err != nil {
		return nil, err
	}
	return m.Values[key], nil
}

// onlyDigests reads the digests of a measurement that has nothing else.
func onlyDigests(m measurement) ([]digest, error) {
	raw, err := only(m, mvalDigests)
	if err != nil {
		return nil, err
	}
	return decodeDigests(raw)
}

// onlyRawValue reads the raw-value of a measurement that has nothing
// else.
func onlyRawValue(m measurement) ([]byte, error) {
	raw, err := only(m, mvalRawValue)
	if err != nil {
		return nil, err
	}
	return rawValue(raw)
}

// sha384Values returns the values of ds, which must all be SHA-384
// digests of what.
func sha384Values(ds []digest, what string) ([][]byte, error) {
	var out [][]byte
	for _, dg := range ds {
		if dg.alg != crypto.SHA384 {
			return nil, fmt.Errorf("%s is a SHA-384 digest, got %v", what, dg.alg)
		}
		out = append(out, dg.value)
	}
	return out, nil
}

// rawValue reads raw-value 560(bytes); masked raw values are refused
// (the backends compare exactly).
func rawValue(raw cbor.RawMessage) ([]byte, error) {
	if b, ok := taggedBytes(raw, tagBytes); ok && len(b) > 0 {
		return bytes.Clone(b), nil
	}
	var tag cbor.RawTag
	if corimDec.Unmarshal(raw, &tag) == nil && tag.Number == tagMaskedRaw {
		return nil, errors.New("raw-value: masked raw values are not supported")
	}
	return nil, errors.New("raw-value: want 560(bytes)")
}

// mkeyUint reads an unsigned mkey.
func mkeyUint(m measurement) (uint64, bool) {
	var n uint64
	if len(m.Key) == 0 || corimDec.Unmarshal(m.Key, &n) != nil {
		return 0, false
	}
	return n, true
}

// forEach runs fn on every measurement, after checking the document's
// profile, prefixing errors with where the measurement is.
func (d *corimDoc) forEach(profiles []string, fn func(t *refTriple, m measurement) error) error {
	found := false
	for _, p := range profiles {
		found = found || p == d.profile
	}
	if !found {
		want := strings.Join(profiles, " or ")
		if want == "" {
			want = "none (base CoRIM)"
		}
		got := d.profile
		if got == "" {
			got = "none"
		}
		return fmt.Errorf("profile %q: want %s", got, want)
	}
	if len(d.triples) == 0 {
		return errors.New("no reference-value triple")
	}
	for i := range d.triples {
		t := &d.triples[i]
		for j, m := range t.meas {
			if err := fn(t, m); err != nil {
				return fmt.Errorf("%s.measurements[%d]: %w", t.at, j, err)
			}
		}
	}
	return nil
}

func noInstance(t *refTriple) error {
	if len(t.env.Instance) > 0 || len(t.env.Group) > 0 {
		return errors.New("environment names an instance or group: instance-specific reference values are not supported")
	}
	return nil
}

// tpmPCRs extracts PCR values of bank from a base CoRIM. Digests of the
// other TPM banks are skipped (a CoRIM may give each PCR in several
// banks); every register must have a value in bank.
func (d *corimDoc) tpmPCRs(bank crypto.Hash) (map[int][][]byte, error) {
	out := map[int][][]byte{}
	err := d.forEach([]string{""}, func(t *refTriple, m measurement) error {
		if err := noInstance(t); err != nil {
			return err
		}
		raw, err := only(m, mvalRegisters)
		if err != nil {
			return err
		}
		regs, err := registers(raw)
		if err != nil {
			return err
		}
		for name, ds := range regs {
			n, err := strconv.Atoi(name)
			if err != nil || n < 0 || n > 23 {
				return fmt.Errorf("integrity-registers[%s]: want a PCR index 0..23", name)
			}
			got := false
			for _, dg := range ds {
				if dg.alg == bank {
					out[n] = append(out[n], dg.value)
					got = true
				}
			}
			if !got {
				return fmt.Errorf("integrity-registers[%d]: no %v digest (the policy's pcr_bank)", n, bank)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("no PCR value")
	}
	return out, nil
}

// snp extracts SEV-SNP MEASUREMENTs and HOST_DATA.
func (d *corimDoc) snp() (measurements [][]byte, hostData []byte, err error) {
	err = d.forEach([]string{profileSNP, profileSNPTag}, func(t *refTriple, m measurement) error {
		if err := noInstance(t); err != nil {
			return err
		}
		if t.env.Class == nil || t.env.Class.Vendor != "" || t.env.Class.Model != "" || t.env.Class.Layer != nil || t.env.Class.Index != nil {
			return errors.New("environment: want a class with only a class-id (the profile's)")
		}
		id, ok := taggedBytes(t.env.Class.ClassID, tagUUID)
		if !ok || !(bytes.Equal(id, snpClassIDs[0]) || bytes.Equal(id, snpClassIDs[1])) {
			return errors.New("environment: class-id is not one of the SEV-SNP profile's UUIDs")
		}
		k, ok := mkeyUint(m)
		switch {
		case ok && k == 0:
			ds, err := onlyDigests(m)
			if err != nil {
				return err
			}
			vs, err := sha384Values(ds, "digests: MEASUREMENT")
			if err != nil {
				return err
			}
			measurements = append(measurements, vs...)
		case ok && k == 8:
			v, err := onlyRawValue(m)
			if err != nil {
				return err
			}
			if len(v) != 32 {
				return fmt.Errorf("raw-value: HOST_DATA is 32 bytes, got %d", len(v))
			}
			if hostData != nil && !bytes.Equal(hostData, v) {
				return errors.New("raw-value: a second, different HOST_DATA (verifier/sevsnp requires one value)")
			}
			hostData = v
		default:
			return fmt.Errorf("mkey %s: only 0 (MEASUREMENT) and 8 (HOST_DATA) are supported", diag(m.Key))
		}
		return nil
	})
	if err == nil && len(measurements) == 0 && hostData == nil {
		err = errors.New("no MEASUREMENT or HOST_DATA")
	}
	return measurements, hostData, err
}

// tdx extracts MRTDs (tee.mrtee) and RTMRs (integrity registers 0..3).
func (d *corimDoc) tdx() (mrtd [][]byte, rtmr [4][][]byte, err error) {
	n := 0
	err = d.forEach([]string{profileIntel}, func(t *refTriple, m measurement) error {
		if err := noInstance(t); err != nil {
			return err
		}
		mrtee := mvalMRTEE
		if k, ok := mkeyUint(m); ok && k == -mvalMRTEE {
			// The profile's alternative form: mkey 83 (tee.mrtee) with
			// the digests in mval.digests.
			mrtee = mvalDigests
		} else if len(m.Key) > 0 {
			return fmt.Errorf("mkey %s: TD measurements have none, or 83 (tee.mrtee)", diag(m.Key))
		}
		if err := onlyValues(m, mrtee, mvalRegisters); err != nil {
			return err
		}
		if raw, ok := m.Values[mrtee]; ok {
			ds, err := decodeDigests(raw)
			if err != nil {
				return fmt.Errorf("tee.mrtee: %w", err)
			}
			vs, err := sha384Values(ds, "tee.mrtee: MRTD")
			if err != nil {
				return err
			}
			mrtd = append(mrtd, vs...)
			n += len(vs)
		}
		if raw, ok := m.Values[mvalRegisters]; ok {
			regs, err := registers(raw)
			if err != nil {
				return err
			}
			for name, ds := range regs {
				i, err := strconv.Atoi(name)
				if err != nil || i < 0 || i > 3 {
					return fmt.Errorf("integrity-registers[%s]: want an RTMR index 0..3", name)
				}
				vs, err := sha384Values(ds, fmt.Sprintf("integrity-registers[%d]: RTMR", i))
				if err != nil {
					return err
				}
				rtmr[i] = append(rtmr[i], vs...)
				n += len(vs)
			}
		}
		return nil
	})
	if err == nil && n == 0 {
		err = errors.New("no MRTD or RTMR")
	}
	return mrtd, rtmr, err
}

// ccaRefs are the reference values of CCA CoRIMs.
type ccaRefs struct {
	implIDs  [][]byte // of the platform CoMIDs' classes
	software []cca.SoftwareComponent
	configs  [][]byte
	rims     [][]byte
	rems     [][4][]byte
	pvs      [][]byte
}

// cca extracts the platform's or a realm's reference values, by profile.
func (d *corimDoc) cca(r *ccaRefs) error {
	if d.profile == profileCCARealm {
		return d.ccaRealm(r)
	}
	n := len(r.software) + len(r.configs)
	err := d.forEach([]string{profileCCAPlatform, profileCCARealm}, func(t *refTriple, m measurement) error {
		if err := noInstance(t); err != nil {
			return err
		}
		if t.env.Class == nil {
			return errors.New("environment: no class")
		}
		id, ok := taggedBytes(t.env.Class.ClassID, tagPSAImplID)
		if !ok || len(id) != 32 {
			return errors.New("environment: class-id is not 600(implementation ID, 32 bytes)")
		}
		r.implIDs = append(r.implIDs, id)
		var tag cbor.RawTag
		if len(m.Key) == 0 || corimDec.Unmarshal(m.Key, &tag) != nil {
			return errors.New("mkey: want 601(psa refval-id) or 602(platform-config-id)")
		}
		switch tag.Number {
		case tagPSARefValID:
			// psa-refval-id-map (draft-fdb-rats-psa-endorsements).
			var id struct {
				Label    string `cbor:"1,keyasint,omitempty"`
				Version  string `cbor:"4,keyasint,omitempty"`
				SignerID []byte `cbor:"5,keyasint"`
			}
			if err := corimDec.Unmarshal(tag.Content, &id); err != nil {
				return fmt.Errorf("mkey: psa refval-id: %w", err)
			}
			if id.Label == "" {
				return errors.New("mkey: psa refval-id without label (the component type)")
			}
			ds, err := onlyDigests(m)
			if err != nil {
				return err
			}
			for _, dg := range ds {
				r.software = append(r.software, cca.SoftwareComponent{Type: id.Label, Version: id.Version,
					SignerID: bytes.Clone(id.SignerID), Value: dg.value})
			}
		case tagCCAConfigID:
			v, err := onlyRawValue(m)
			if err != nil {
				return err
			}
			r.configs = append(r.configs, v)
		default:
			return fmt.Errorf("mkey: tag %d: want 601(psa refval-id) or 602(platform-config-id)", tag.Number)
		}
		return nil
	})
	if err == nil && len(r.software)+len(r.configs) == n {
		err = errors.New("no software component or platform configuration")
	}
	return err
}

func (d *corimDoc) ccaRealm(r *ccaRefs) error {
	return d.forEach([]string{profileCCARealm}, func(t *refTriple, m measurement) error {
		if len(t.env.Group) > 0 {
			return errors.New("environment: groups are not supported")
		}
		rim, ok := taggedBytes(t.env.Instance, tagBytes)
		if !ok || (len(rim) != 32 && len(rim) != 48 && len(rim) != 64) {
			return errors.New("environment: instance is not 560(RIM of 32, 48 or 64 bytes)")
		}
		if len(m.Key) > 0 {
			return errors.New("mkey: realm measurements have none")
		}
		if err := onlyValues(m, mvalRawValue, mvalRegisters); err != nil {
			return err
		}
		if raw, ok := m.Values[mvalRawValue]; ok {
			pv, err := rawValue(raw)
			if err != nil {
				return err
			}
			if len(pv) != 64 {
				return fmt.Errorf("raw-value: the personalization value is 64 bytes, got %d", len(pv))
			}
			r.pvs = append(r.pvs, pv)
		}
		if raw, ok := m.Values[mvalRegisters]; ok {
			regs, err := registers(raw)
			if err != nil {
				return err
			}
			var rems [4][]byte
			nrem := 0
			for name, ds := range regs {
				if len(ds) != 1 {
					return fmt.Errorf("integrity-registers[%s]: want one digest", name)
				}
				switch name {
				case "rim":
					if !bytes.Equal(ds[0].value, rim) {
						return errors.New("integrity-registers[rim]: differs from the environment's instance (the RIM)")
					}
				case "rem0", "rem1", "rem2", "rem3":
					rems[name[3]-'0'] = ds[0].value
					nrem++
				default:
					return fmt.Errorf("integrity-registers[%s]: want rim or rem0..rem3", name)
				}
			}
			switch nrem {
			case 4:
				r.rems = append(r.rems, rems)
			case 0:
			default:
				return errors.New("integrity-registers: give all four REMs or none")
			}
		}
		r.rims = append(r.rims, bytes.Clone(rim))
		return nil
	})
}

// loadCoRIMs reads and decodes the CoRIMs a section names, checks their
// validity at the build time, and returns them with the window in which
// the built verifier may use them.
func (b builder) loadCoRIMs(at string, srcs []CoRIMSource) ([]*corimDoc, window, error) {
	var w window
	var docs []*corimDoc
	now := time.Now()
	if b.opts.Time != nil {
		now = b.opts.Time()
	}
	for i, s := range srcs {
		path := fmt.Sprintf("%s.corim[%d]", at, i)
		var data []byte
		var err error
		switch {
		case (s.File == "") == (s.Base64 == ""):
			return nil, w, &Error{Path: path, Err: errors.New("want exactly one of file and base64")}
		case s.File != "":
			if data, err = readBounded(b.path(s.File), MaxCoRIMSize); err != nil {
				return nil, w, &Error{Path: path + ".file", Err: err}
			}
		default:
			if len(s.Base64) > base64.StdEncoding.EncodedLen(MaxCoRIMSize) {
				return nil, w, &Error{Path: path + ".base64", Err: fmt.Errorf("larger than %d bytes", MaxCoRIMSize)}
			}
			if data, err = base64.StdEncoding.Strict().DecodeString(s.Base64); err != nil {
				return nil, w, &Error{Path: path + ".base64", Err: errors.New("want standard base64")}
			}
		}
		var signer crypto.PublicKey
		if s.Signer != "" {
			if signer, err = b.publicKey(path+".signer", s.Signer); err != nil {
				return nil, w, err
			}
		}
		d, err := decodeCoRIM(data, signer)
		if err != nil {
			return nil, w, &Error{Path: path, Err: fmt.Errorf("CoRIM: %w", err)}
		}
		if err := d.checkTime(now); err != nil {
			return nil, w, &Error{Path: path, Err: fmt.Errorf("CoRIM: %w", err)}
		}
		w.narrow(d.notBefore, d.notAfter)
		docs = append(docs, d)
	}
	return docs, w, nil
}

// corimError names the CoRIM at fault.
func corimError(at string, i int, err error) error {
	return &Error{Path: fmt.Sprintf("%s.corim[%d]", at, i), Err: fmt.Errorf("CoRIM: %w", err)}
}

// applyCoRIM reads the CoRIMs of a section and merges their reference
// values into cfg, the backend's configuration, as a union with the values
// given inline: every list member is an accepted value, whichever source
// named it, as when one source names several (docs/POLICY.md says why).
// HOST_DATA, a single required value, must agree where given twice.
func (b builder) applyCoRIM(at string, srcs []CoRIMSource, cfg any) (window, error) {
	if len(srcs) == 0 {
		return window{}, nil
	}
	docs, w, err := b.loadCoRIMs(at, srcs)
	if err != nil {
		return w, err
	}
	for i, d := range docs {
		switch c := cfg.(type) {
		case *tpm.Config:
			pcrs, err := d.tpmPCRs(c.PCRBank)
			if err != nil {
				return w, corimError(at, i, err)
			}
			if c.PCRPolicy == nil {
				c.PCRPolicy = map[int][][]byte{}
			}
			for n, vs := range pcrs {
				c.PCRPolicy[n] = append(c.PCRPolicy[n], vs...)
			}
		case *sevsnp.Config:
			ms, hd, err := d.snp()
			if err != nil {
				return w, corimError(at, i, err)
			}
			c.Policy.Measurements = append(c.Policy.Measurements, ms...)
			if hd != nil {
				if c.Policy.HostData != nil && !bytes.Equal(c.Policy.HostData, hd) {
					return w, corimError(at, i, errors.New("HOST_DATA differs from the one given elsewhere in the policy"))
				}
				c.Policy.HostData = hd
			}
		case *tdx.Config:
			mrtd, rtmr, err := d.tdx()
			if err != nil {
				return w, corimError(at, i, err)
			}
			c.Policy.MRTD = append(c.Policy.MRTD, mrtd...)
			for j := range rtmr {
				c.Policy.RTMR[j] = append(c.Policy.RTMR[j], rtmr[j]...)
			}
		case *cca.Config:
			var r ccaRefs
			if err := d.cca(&r); err != nil {
				return w, corimError(at, i, err)
			}
			if err := implementationPinned(c.TrustedKeys, r.implIDs); err != nil {
				return w, corimError(at, i, err)
			}
			p := &c.Policy
			p.Software = append(p.Software, r.software...)
			p.PlatformConfigs = append(p.PlatformConfigs, r.configs...)
			p.RIMs = append(p.RIMs, r.rims...)
			p.REMs = append(p.REMs, r.rems...)
			p.PersonalizationValues = append(p.PersonalizationValues, r.pvs...)
		default:
			return w, &Error{Path: at + ".corim", Err: fmt.Errorf("policy: internal: no CoRIM support for %T", cfg)}
		}
	}
	return w, nil
}

// implementationPinned refuses platform reference values for an
// implementation that no trusted CPAK can sign for, when every CPAK is
// pinned to an implementation: the values would otherwise be accepted for
// the pinned platforms, which are of another implementation.
func implementationPinned(keys []cca.TrustedKey, ids [][]byte) error {
	for _, k := range keys {
		if len(k.ImplementationID) == 0 {
			return nil
		}
	}
	for _, id := range ids {
		found := false
		for _, k := range keys {
			found = found || bytes.Equal(k.ImplementationID, id)
		}
		if !found {
			return fmt.Errorf("reference values for implementation %x, to which no trusted CPAK is pinned", id)
		}
	}
	return nil
}

// window is when the reference values of a section's CoRIMs may be used
// (zero times: unbounded).
type window struct{ notBefore, notAfter time.Time }

func (w *window) narrow(nb, na time.Time) {
	if nb.After(w.notBefore) {
		w.notBefore = nb
	}
	if !na.IsZero() && (w.notAfter.IsZero() || na.Before(w.notAfter)) {
		w.notAfter = na
	}
}

// within returns v, bounded by w when w bounds anything: the built
// verifier then refuses to appraise outside the CoRIMs' validity (an
// *UnavailableError: the reference values, not the Evidence, are at
// fault), and no Result it returns is good after not-after.
func (b builder) within(v verifier.Verifier, w window) (verifier.Verifier, error) {
	if w == (window{}) {
		return v, nil
	}
	rv, ok := v.(verifier.RecordVerifier)
	if !ok {
		return nil, &Error{Path: "$", Err: fmt.Errorf("policy: internal: %T is not a RecordVerifier", v)}
	}
	return &boundedVerifier{v: rv, w: w, now: b.opts.Time}, nil
}

// boundedVerifier is a backend's verifier whose reference values expire.
type boundedVerifier struct {
	v   verifier.RecordVerifier
	w   window
	now func() time.Time
}

var _ verifier.RecordVerifier = (*boundedVerifier)(nil)

// Unwrap returns the backend's verifier.
func (x *boundedVerifier) Unwrap() verifier.Verifier { return x.v }

func (x *boundedVerifier) Verify(ctx context.Context, b []byte, exp *verifier.Expected) (*verifier.Result, error) {
	return verifier.VerifyCMW(ctx, x, b, exp)
}

func (x *boundedVerifier) VerifyRecord(ctx context.Context, rec cmw.Record, exp *verifier.Expected) (*verifier.Result, error) {
	now := time.Now()
	switch {
	case exp != nil && !exp.Now.IsZero():
		now = exp.Now
	case x.now != nil:
		now = x.now()
	}
	if !x.w.notBefore.IsZero() && now.Before(x.w.notBefore) {
		return nil, verifier.Unavailable(false, nil, "policy: the reference values (CoRIM) are not valid before %s", x.w.notBefore.UTC().Format(time.RFC3339))
	}
	if !x.w.notAfter.IsZero() && now.After(x.w.notAfter) {
		return nil, verifier.Unavailable(false, nil, "policy: the reference values (CoRIM) expired at %s", x.w.notAfter.UTC().Format(time.RFC3339))
	}
	res, err := x.v.VerifyRecord(ctx, rec, exp)
	if res != nil && !x.w.notAfter.IsZero() && (res.Expires.IsZero() || res.Expires.After(x.w.notAfter)) {
		res.Expires = x.w.notAfter
	}
	return res, err
}
