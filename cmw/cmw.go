package cmw

import (
	"errors"
	"fmt"
	"mime"
	"sort"
	"strconv"
	"strings"

	vcmw "github.com/veraison/cmw"
)

// Indicator is the CMW "ind" bit map: which RATS conceptual message a
// record carries (draft-ietf-rats-msg-wrap-23, Section 4.2).
type Indicator uint

const (
	ReferenceValues    Indicator = 1
	Endorsements       Indicator = 2
	Evidence           Indicator = 4
	AttestationResults Indicator = 8
	// AppraisalPolicy is bit 16 (veraison/cmw names it TrustAnchors).
	AppraisalPolicy Indicator = 16

	indicatorMask = ReferenceValues | Endorsements | Evidence | AttestationResults | AppraisalPolicy
)

// Has reports whether all bits of v are set in i.
func (i Indicator) Has(v Indicator) bool { return v != 0 && i&v == v }

func (i Indicator) String() string {
	if i == 0 {
		return "none"
	}
	names := []string{"reference-values", "endorsements", "evidence", "attestation-results", "appraisal-policy"}
	var out []string
	for bit, n := range names {
		if i&(1<<bit) != 0 {
			out = append(out, n)
		}
	}
	if rest := i &^ indicatorMask; rest != 0 {
		out = append(out, fmt.Sprintf("0x%x", uint(rest)))
	}
	return strings.Join(out, "|")
}

// Format is the serialization a CMW was decoded from (or will be marshaled
// to by Marshal).
type Format int

const (
	FormatUnknown Format = iota
	FormatJSONRecord
	FormatJSONCollection
	FormatCBORRecord
	FormatCBORTag
	FormatCBORCollection
)

func (f Format) String() string {
	switch f {
	case FormatJSONRecord:
		return "JSON record"
	case FormatJSONCollection:
		return "JSON collection"
	case FormatCBORRecord:
		return "CBOR record"
	case FormatCBORTag:
		return "CBOR tag"
	case FormatCBORCollection:
		return "CBOR collection"
	}
	return "unknown"
}

// IsJSON reports whether f is a JSON serialization.
func (f Format) IsJSON() bool { return f == FormatJSONRecord || f == FormatJSONCollection }

// Limits bounds what Decode accepts. The zero value (and a nil *Limits)
// means the defaults. Values at or below zero mean the default; values
// above the ceiling are lowered to the ceiling.
type Limits struct {
	// MaxSize is the largest serialized CMW accepted, in bytes. Default and
	// ceiling MaxSize (65535): MaxSize can only lower the one size limit.
	MaxSize int
	// MaxDepth is the deepest collection nesting accepted: a top-level
	// record has depth 0, the items of a top-level collection depth 1, and
	// so on. Default DefaultMaxDepth; ceiling MaxDepthCeiling.
	MaxDepth int
	// MaxItems is the largest number of records and collections (counted
	// together, the top level included) in one CMW. Default
	// DefaultMaxItems; ceiling MaxItemsCeiling.
	MaxItems int
}

const (
	// MaxSize is the one size limit of every CMW go-expat decodes, 2^16-1:
	// the cmw_attestation extension's data has a 16-bit length (the CMW in
	// it, expat.MaxCMWSize, is two bytes shorter still), so no CMW a peer
	// can present in it is larger, and every attester's output fits it.
	MaxSize = 65535

	DefaultMaxDepth = 4
	DefaultMaxItems = 64

	MaxDepthCeiling = 8
	MaxItemsCeiling = 1024
)

func (l *Limits) values() (size, depth, items int) {
	size, depth, items = MaxSize, DefaultMaxDepth, DefaultMaxItems
	if l == nil {
		return
	}
	pick := func(v, def, ceil int) int {
		switch {
		case v <= 0:
			return def
		case v > ceil:
			return ceil
		}
		return v
	}
	return pick(l.MaxSize, MaxSize, MaxSize),
		pick(l.MaxDepth, DefaultMaxDepth, MaxDepthCeiling),
		pick(l.MaxItems, DefaultMaxItems, MaxItemsCeiling)
}

var (
	// ErrMalformed matches every error from Decode, DecodeRecord and
	// Record.Expect.
	ErrMalformed = errors.New("cmw: malformed CMW")
	// ErrLimit matches errors caused by a size, depth or item limit.
	ErrLimit = errors.New("cmw: limit exceeded")
	// ErrNonCanonical matches errors for a well-formed CMW that is not in
	// its canonical encoding (see the package doc).
	ErrNonCanonical = errors.New("cmw: not in canonical encoding")
	// ErrUnexpected matches errors for a well-formed CMW that is not the
	// record the caller expects: a collection, a record of another media
	// type, or one with another indicator (DecodeRecord, Record.Expect).
	ErrUnexpected = errors.New("cmw: not the expected record")
)

// DecodeError reports why Decode, DecodeRecord or Record.Expect rejected
// its input. It matches ErrMalformed, and Kind when Kind is set.
type DecodeError struct {
	Reason string
	// Kind is ErrLimit, ErrNonCanonical, ErrUnexpected, or nil for any
	// other defect.
	Kind error
	Err  error
}

func (e *DecodeError) Error() string {
	s := "cmw: " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *DecodeError) Unwrap() error { return e.Err }

// Is makes errors.Is match ErrMalformed and Kind.
func (e *DecodeError) Is(target error) bool {
	return target == ErrMalformed || (e.Kind != nil && target == e.Kind)
}

func malformed(format string, args ...any) error {
	return &DecodeError{Reason: fmt.Sprintf(format, args...)}
}

func limitErr(format string, args ...any) error {
	return &DecodeError{Reason: fmt.Sprintf(format, args...), Kind: ErrLimit}
}

func unexpected(format string, args ...any) error {
	return &DecodeError{Reason: fmt.Sprintf(format, args...), Kind: ErrUnexpected}
}

// Label is a collection item's label: a text string, or (CBOR only) an
// unsigned integer.
type Label struct {
	text  string
	num   uint64
	isNum bool
}

// TextLabel returns a text label.
func TextLabel(s string) Label { return Label{text: s} }

// NumLabel returns an unsigned integer label (CBOR collections only).
func NumLabel(n uint64) Label { return Label{num: n, isNum: true} }

// Text returns the label's text, if it is a text label.
func (l Label) Text() (string, bool) { return l.text, !l.isNum }

// Num returns the label's number, if it is an integer label.
func (l Label) Num() (uint64, bool) { return l.num, l.isNum }

// String returns the text, or "#" and the number for integer labels.
func (l Label) String() string {
	if l.isNum {
		return "#" + strconv.FormatUint(l.num, 10)
	}
	return l.text
}

func (l Label) key() any {
	if l.isNum {
		return l.num
	}
	return l.text
}

func (l Label) less(m Label) bool {
	if l.isNum != m.isNum {
		return l.isNum // integers first
	}
	if l.isNum {
		return l.num < m.num
	}
	return l.text < m.text
}

// Record is one conceptual message: its type, the raw value and the
// indicator.
type Record struct {
	// MediaType is the record's media type. A record typed by a CoAP
	// Content-Format number (or, in tag form, by a tag number) reports the
	// media type registered for it when veraison/cmw knows it, and the
	// number in decimal otherwise.
	MediaType string
	// Value is the wrapped message (never aliases the decoded input).
	Value []byte
	// Indicator is the "ind" bit map (0 when absent).
	Indicator Indicator

	// cf is the Content-Format when the type was a number (or a tag).
	cf    uint16
	hasCF bool
}

// ContentFormat returns the CoAP Content-Format number when the record was
// typed by a number (or encoded in CBOR tag form).
func (r Record) ContentFormat() (uint16, bool) { return r.cf, r.hasCF }

// Item is one entry of a collection.
type Item struct {
	Label Label
	CMW   *CMW
}

// CMW is a decoded or constructed CMW: either a record or a collection.
//
// A CMW returned by Decode is read-only. One built with NewCollection may
// be extended with Add until it is marshaled or added to another
// collection; it must not be modified concurrently with other use.
type CMW struct {
	format Format
	rec    *Record
	ctype  string
	items  []Item // sorted by label
	frozen bool
}

// NewRecord returns a record CMW (marshaled by Marshal as a CBOR record).
// mediaType must be a valid media type (RFC 2045 syntax, as checked by
// mime.ParseMediaType), value non-empty, and ind made of the five defined
// bits (0 means no indicator).
func NewRecord(mediaType string, value []byte, ind Indicator) (*CMW, error) {
	if err := checkMediaType(mediaType); err != nil {
		return nil, err
	}
	if len(value) == 0 {
		return nil, errors.New("cmw: empty record value")
	}
	if ind&^indicatorMask != 0 {
		return nil, fmt.Errorf("cmw: undefined indicator bits 0x%x", uint(ind&^indicatorMask))
	}
	return &CMW{
		format: FormatCBORRecord,
		rec:    &Record{MediaType: mediaType, Value: append([]byte(nil), value...), Indicator: ind},
	}, nil
}

// MarshalEvidence returns the CBOR record that backends send: media type
// mediaType, value, indicator Evidence. It is NewRecord followed by
// MarshalCBOR.
func MarshalEvidence(mediaType string, value []byte) ([]byte, error) {
	rec, err := NewRecord(mediaType, value, Evidence)
	if err != nil {
		return nil, err
	}
	return rec.MarshalCBOR()
}

// NewCollection returns an empty collection CMW (marshaled by Marshal as a
// CBOR collection). ctype is the optional "__cmwc_t" (an absolute URI or an
// OID); "" omits it.
func NewCollection(ctype string) (*CMW, error) {
	if ctype != "" {
		if _, err := vcmw.NewCollection(ctype); err != nil {
			return nil, fmt.Errorf("cmw: collection type: %w", err)
		}
	}
	return &CMW{format: FormatCBORCollection, ctype: ctype}, nil
}

// Add puts item into collection c under label. The label must be unique in
// c, and a text label must not be empty, whitespace-only or "__cmwc_t".
// item is frozen by Add.
func (c *CMW) Add(label Label, item *CMW) error {
	switch {
	case c.rec != nil:
		return errors.New("cmw: Add on a record")
	case c.frozen:
		return errors.New("cmw: Add on a decoded or already marshaled collection")
	case item == nil || item == c:
		return errors.New("cmw: invalid item")
	}
	if !label.isNum {
		if err := checkLabel(label.text); err != nil {
			return err
		}
	}
	i := sort.Search(len(c.items), func(i int) bool { return !c.items[i].Label.less(label) })
	if i < len(c.items) && c.items[i].Label == label {
		return fmt.Errorf("cmw: duplicate label %q", label.String())
	}
	item.freeze()
	c.items = append(c.items, Item{})
	copy(c.items[i+1:], c.items[i:])
	c.items[i] = Item{Label: label, CMW: item}
	return nil
}

func (c *CMW) freeze() {
	c.frozen = true
	for _, it := range c.items {
		it.CMW.freeze()
	}
}

// IsCollection reports whether c is a collection.
func (c *CMW) IsCollection() bool { return c.rec == nil }

// Format is the format c was decoded from (or will be marshaled to by
// Marshal).
func (c *CMW) Format() Format { return c.format }

// Record returns c's record; ok is false for a collection. The returned
// Value is a copy.
func (c *CMW) Record() (r Record, ok bool) {
	if c.rec == nil {
		return Record{}, false
	}
	r = *c.rec
	r.Value = append([]byte(nil), r.Value...)
	return r, true
}

// CollectionType returns a collection's "__cmwc_t" ("" when absent or for
// a record).
func (c *CMW) CollectionType() string { return c.ctype }

// Items returns a collection's items, sorted by label (integer labels
// first, then text labels in byte order). It returns nil for a record.
func (c *CMW) Items() []Item {
	if c.rec != nil {
		return nil
	}
	return append([]Item(nil), c.items...)
}

// Walk calls fn for every record in c, depth first in label order, with
// the labels leading to it (empty for a top-level record). It stops at the
// first error fn returns and returns it.
func (c *CMW) Walk(fn func(path []Label, r Record) error) error {
	return c.walk(nil, fn)
}

func (c *CMW) walk(path []Label, fn func([]Label, Record) error) error {
	if r, ok := c.Record(); ok {
		return fn(append([]Label(nil), path...), r)
	}
	for _, it := range c.items {
		if err := it.CMW.walk(append(path, it.Label), fn); err != nil {
			return err
		}
	}
	return nil
}

// Marshal serializes c in its Format: the format it was decoded from, or
// CBOR for a CMW built with NewRecord / NewCollection.
func (c *CMW) Marshal() ([]byte, error) {
	if c.format.IsJSON() {
		return c.MarshalJSON()
	}
	return c.MarshalCBOR()
}

// MarshalCBOR serializes c as CBOR (deterministic encoding). Records keep
// the tag form if they were decoded from it.
func (c *CMW) MarshalCBOR() ([]byte, error) {
	v, err := c.toVeraison(false)
	if err != nil {
		return nil, err
	}
	c.freeze()
	b, err := v.MarshalCBOR()
	if err != nil {
		return nil, fmt.Errorf("cmw: %w", err)
	}
	return b, nil
}

// MarshalJSON serializes c as JSON. It fails for collections with integer
// labels. A record decoded from the CBOR tag form becomes a record typed by
// its Content-Format number.
func (c *CMW) MarshalJSON() ([]byte, error) {
	v, err := c.toVeraison(true)
	if err != nil {
		return nil, err
	}
	c.freeze()
	b, err := v.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("cmw: %w", err)
	}
	return b, nil
}

// toVeraison builds a fresh veraison/cmw tree. (Re-using the decoded one is
// not possible: veraison/cmw v0.2.0 panics when a JSON-decoded record is
// marshaled to CBOR.)
func (c *CMW) toVeraison(forJSON bool) (*vcmw.CMW, error) {
	if r := c.rec; r != nil {
		var typ any = r.MediaType
		if r.hasCF {
			typ = r.cf
		}
		tag := c.format == FormatCBORTag && !forJSON
		if tag {
			tn, err := vcmw.TN(r.cf)
			if err != nil {
				return nil, fmt.Errorf("cmw: %w", err)
			}
			typ = tn
		}
		m, err := vcmw.NewMonad(typ, r.Value, vcmw.Indicator(r.Indicator))
		if err != nil {
			return nil, fmt.Errorf("cmw: %w", err)
		}
		if tag {
			m.UseCBORTagFormat()
		}
		return m, nil
	}
	if len(c.items) == 0 {
		return nil, errors.New("cmw: empty collection")
	}
	col, err := vcmw.NewCollection(c.ctype)
	if err != nil {
		return nil, fmt.Errorf("cmw: %w", err)
	}
	for _, it := range c.items {
		if forJSON && it.Label.isNum {
			return nil, fmt.Errorf("cmw: integer label %s in a JSON collection", it.Label)
		}
		sub, err := it.CMW.toVeraison(forJSON)
		if err != nil {
			return nil, err
		}
		if err := col.AddCollectionItem(it.Label.key(), sub); err != nil {
			return nil, fmt.Errorf("cmw: %w", err)
		}
	}
	return col, nil
}

// EqualMediaTypes reports whether a and b name the same media type: equal
// type/subtype (case-insensitive) and equal parameters (names
// case-insensitive, values exact, quoting irrelevant). Unparseable types
// are never equal to anything.
func EqualMediaTypes(a, b string) bool {
	ta, pa, err := mime.ParseMediaType(a)
	if err != nil {
		return false
	}
	tb, pb, err := mime.ParseMediaType(b)
	if err != nil || ta != tb || len(pa) != len(pb) {
		return false
	}
	for k, v := range pa {
		if w, ok := pb[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func checkMediaType(t string) error {
	if t == "" {
		return errors.New("cmw: empty media type")
	}
	if _, _, err := mime.ParseMediaType(t); err != nil {
		return fmt.Errorf("cmw: bad media type %q: %w", t, err)
	}
	return nil
}

func checkLabel(s string) error {
	if s == vcmw.CmwCType {
		return fmt.Errorf("cmw: label %q is reserved", s)
	}
	if strings.TrimSpace(s) == "" {
		return errors.New("cmw: empty or whitespace-only label")
	}
	return nil
}
