package cmw

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
	vcmw "github.com/veraison/cmw"

	"github.com/attested-tls/go-expat/internal/strictcbor"
)

// strictMode is the one CBOR decode mode for peer input. Its limits are the ceilings; Decode applies the
// caller's (lower) Limits while walking the result.
var strictMode = strictcbor.DecMode(strictcbor.Limits{
	MaxNestedLevels:     MaxDepthCeiling + 2, // collections, then a record array or tag and its content
	MaxArrayElements:    16,                  // the library's minimum; records have 2 or 3
	MaxMapPairs:         MaxItemsCeiling + 1, // items and "__cmwc_t"
	AllowTags:           true,
	RejectUnknownFields: true,
})

// Decode parses a serialized CMW (JSON or CBOR; record, tag or collection)
// strictly, within lim (nil means the defaults), in one pass, and accepts it
// only in its canonical encoding: the bytes Marshal writes for the decoded
// CMW in the same format (see the package doc). Every error matches
// ErrMalformed; those caused by a limit also match ErrLimit, and those
// caused by a well-formed but non-canonical encoding ErrNonCanonical. On
// error the returned CMW is nil.
func Decode(b []byte, lim *Limits) (*CMW, error) {
	maxSize, maxDepth, maxItems := lim.values()
	if len(b) == 0 {
		return nil, malformed("empty input")
	}
	if len(b) > maxSize {
		return nil, limitErr("%d bytes exceed the %d-byte limit", len(b), maxSize)
	}
	var (
		c   *CMW
		err error
	)
	switch vcmw.Sniff(b) {
	case vcmw.FormatJSONRecord, vcmw.FormatJSONCollection:
		c, err = checkJSON(b, maxDepth, maxItems)
	case vcmw.FormatCBORRecord, vcmw.FormatCBORTag, vcmw.FormatCBORCollection:
		c, err = checkCBOR(b, maxDepth, maxItems)
	default:
		err = malformed("first byte 0x%02x starts no CMW", b[0])
	}
	if err != nil {
		return nil, err
	}
	// Marshal freezes c: a decoded CMW is read-only.
	again, err := c.Marshal()
	if err != nil {
		return nil, &DecodeError{Reason: "re-encoding", Err: err}
	}
	if !bytes.Equal(again, b) {
		return nil, &DecodeError{Reason: fmt.Sprintf("%v not in canonical encoding", c.format), Kind: ErrNonCanonical}
	}
	return c, nil
}

// DecodeRecord is the one way to take apart "a CMW that must be one record
// of media type mediaType": it is Decode with the default limits, after
// which the CMW must be a record that Record.Expect accepts (mediaType
// spelled exactly, indicator ind or none). A record that is well-formed but
// not the expected one (a collection, another media type or indicator)
// gives an error matching ErrUnexpected.
func DecodeRecord(b []byte, mediaType string, ind Indicator) (Record, error) {
	c, err := Decode(b, nil)
	if err != nil {
		return Record{}, err
	}
	r, ok := c.Record()
	if !ok {
		return Record{}, unexpected("a %v, not a record", c.format)
	}
	if err := r.Expect(mediaType, ind); err != nil {
		return Record{}, err
	}
	return r, nil
}

// Expect reports whether r is a record of exactly mediaType (byte for byte
// the spelling given, typed by that string rather than by a Content-Format
// number or a CBOR tag) whose indicator is absent or exactly ind. It
// returns nil or a *DecodeError matching ErrMalformed and ErrUnexpected.
func (r Record) Expect(mediaType string, ind Indicator) error {
	if r.hasCF || r.MediaType != mediaType {
		return unexpected("record of media type %q, want %q", r.typeName(), mediaType)
	}
	if r.Indicator != 0 && r.Indicator != ind {
		return unexpected("record indicator %v, want %v", r.Indicator, ind)
	}
	return nil
}

// typeName names the record's type: its media type, or for a record typed
// by a Content-Format number that number ("cf:264") and the registered type.
func (r Record) typeName() string {
	if r.hasCF {
		return fmt.Sprintf("cf:%d %s", r.cf, r.MediaType)
	}
	return r.MediaType
}

// cfMediaType is the media type registered for a Content-Format number
// (veraison/cmw's table), or the number in decimal.
func cfMediaType(cf uint16) string {
	if m, err := vcmw.NewMonad(cf, []byte{0}); err == nil {
		if mt, err := m.GetMonadType(); err == nil && mt != "" {
			return mt
		}
	}
	return strconv.FormatUint(uint64(cf), 10)
}

func sortItems(items []Item) {
	for i := 1; i < len(items); i++ {
		for j := i; j > 0 && items[j].Label.less(items[j-1].Label); j-- {
			items[j], items[j-1] = items[j-1], items[j]
		}
	}
}

// ---- strict CBOR check ----

func checkCBOR(b []byte, maxDepth, maxItems int) (*CMW, error) {
	var v any
	if err := strictMode.Unmarshal(b, &v); err != nil {
		var me *cbor.MaxNestedLevelError
		var ae *cbor.MaxArrayElementsError
		var pe *cbor.MaxMapPairsError
		if errors.As(err, &me) || errors.As(err, &ae) || errors.As(err, &pe) {
			return nil, &DecodeError{Reason: "CBOR", Kind: ErrLimit, Err: err}
		}
		return nil, &DecodeError{Reason: "CBOR", Err: err}
	}
	w := walker{maxDepth: maxDepth, maxItems: maxItems}
	return w.cbor(v, 0)
}

type walker struct {
	maxDepth, maxItems, items int
}

func (w *walker) count() error {
	w.items++
	if w.items > w.maxItems {
		return limitErr("more than %d items", w.maxItems)
	}
	return nil
}

func (w *walker) cbor(v any, depth int) (*CMW, error) {
	if err := w.count(); err != nil {
		return nil, err
	}
	switch t := v.(type) {
	case []any:
		if len(t) != 2 && len(t) != 3 {
			return nil, malformed("record with %d elements", len(t))
		}
		r := &Record{}
		switch typ := t[0].(type) {
		case string:
			if err := checkMediaType(typ); err != nil {
				return nil, &DecodeError{Reason: "record type", Err: err}
			}
			r.MediaType = typ
		case uint64:
			if typ > 65535 {
				return nil, malformed("Content-Format %d out of range", typ)
			}
			r.cf, r.hasCF = uint16(typ), true
			r.MediaType = cfMediaType(r.cf)
		default:
			return nil, malformed("record type of CBOR type %T", typ)
		}
		val, ok := t[1].([]byte)
		if !ok {
			return nil, malformed("record value of CBOR type %T", t[1])
		}
		if len(val) == 0 {
			return nil, malformed("empty record value")
		}
		r.Value = bytes.Clone(val)
		if len(t) == 3 {
			ind, ok := t[2].(uint64)
			if !ok {
				return nil, malformed("indicator of CBOR type %T", t[2])
			}
			if err := checkIndicator(ind); err != nil {
				return nil, err
			}
			r.Indicator = Indicator(ind)
		}
		return &CMW{format: FormatCBORRecord, rec: r}, nil
	case cbor.Tag:
		if t.Number < vcmw.TnMin || t.Number > vcmw.TnMax {
			return nil, malformed("tag %d is not a CMW tag", t.Number)
		}
		cf, err := vcmw.CF(t.Number)
		if err != nil {
			return nil, &DecodeError{Reason: "tag", Err: err}
		}
		if tn, err := vcmw.TN(cf); err != nil || tn != t.Number {
			return nil, malformed("tag %d maps to no Content-Format", t.Number)
		}
		val, ok := t.Content.([]byte)
		if !ok {
			return nil, malformed("tag content of CBOR type %T", t.Content)
		}
		if len(val) == 0 {
			return nil, malformed("empty tag content")
		}
		return &CMW{format: FormatCBORTag, rec: &Record{MediaType: cfMediaType(cf), Value: bytes.Clone(val), cf: cf, hasCF: true}}, nil
	case map[any]any:
		if depth+1 > w.maxDepth {
			return nil, limitErr("collection nesting deeper than %d", w.maxDepth)
		}
		c := &CMW{format: FormatCBORCollection}
		for k, item := range t {
			var l Label
			switch key := k.(type) {
			case string:
				if key == vcmw.CmwCType {
					s, ok := item.(string)
					if !ok || s == "" {
						return nil, malformed("%s is not a non-empty text string", vcmw.CmwCType)
					}
					c.ctype = s
					continue
				}
				if err := checkLabel(key); err != nil {
					return nil, &DecodeError{Reason: "label", Err: err}
				}
				l = TextLabel(key)
			case uint64:
				l = NumLabel(key)
			default:
				return nil, malformed("label of CBOR type %T", key)
			}
			sub, err := w.cbor(item, depth+1)
			if err != nil {
				return nil, err
			}
			c.items = append(c.items, Item{Label: l, CMW: sub})
		}
		if len(c.items) == 0 {
			return nil, malformed("empty collection")
		}
		sortItems(c.items)
		return c, nil
	}
	return nil, malformed("CBOR item of type %T is not a CMW", v)
}

func checkIndicator(ind uint64) error {
	if ind == 0 {
		return malformed("explicit zero indicator")
	}
	if ind&^uint64(indicatorMask) != 0 {
		return malformed("undefined indicator bits in %d", ind)
	}
	return nil
}

// ---- strict JSON check ----

func checkJSON(b []byte, maxDepth, maxItems int) (*CMW, error) {
	if !utf8.Valid(b) {
		return nil, malformed("JSON is not valid UTF-8")
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	w := walker{maxDepth: maxDepth, maxItems: maxItems}
	tok, err := d.Token()
	if err != nil {
		return nil, &DecodeError{Reason: "JSON", Err: err}
	}
	c, err := w.json(d, tok, 0)
	if err != nil {
		return nil, err
	}
	if d.InputOffset() != int64(len(b)) {
		return nil, malformed("%d bytes after the JSON value", int64(len(b))-d.InputOffset())
	}
	return c, nil
}

func token(d *json.Decoder) (json.Token, error) {
	tok, err := d.Token()
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, &DecodeError{Reason: "JSON", Err: err}
	}
	return tok, nil
}

// json checks the value that starts with tok.
func (w *walker) json(d *json.Decoder, tok json.Token, depth int) (*CMW, error) {
	if err := w.count(); err != nil {
		return nil, err
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return nil, malformed("JSON %T is not a CMW", tok)
	}
	switch delim {
	case '[':
		return w.jsonRecord(d)
	case '{':
		if depth+1 > w.maxDepth {
			return nil, limitErr("collection nesting deeper than %d", w.maxDepth)
		}
		c := &CMW{format: FormatJSONCollection}
		seen := make(map[string]struct{})
		for {
			tok, err := token(d)
			if err != nil {
				return nil, err
			}
			if tok == json.Delim('}') {
				break
			}
			key, ok := tok.(string)
			if !ok {
				return nil, malformed("JSON member name of type %T", tok)
			}
			if _, dup := seen[key]; dup {
				return nil, malformed("duplicate JSON member %q", key)
			}
			seen[key] = struct{}{}
			val, err := token(d)
			if err != nil {
				return nil, err
			}
			if key == vcmw.CmwCType {
				s, ok := val.(string)
				if !ok || s == "" {
					return nil, malformed("%s is not a non-empty string", vcmw.CmwCType)
				}
				c.ctype = s
				continue
			}
			if err := checkLabel(key); err != nil {
				return nil, &DecodeError{Reason: "label", Err: err}
			}
			sub, err := w.json(d, val, depth+1)
			if err != nil {
				return nil, err
			}
			c.items = append(c.items, Item{Label: TextLabel(key), CMW: sub})
		}
		if len(c.items) == 0 {
			return nil, malformed("empty collection")
		}
		sortItems(c.items)
		return c, nil
	}
	return nil, malformed("unexpected JSON delimiter %v", delim)
}

func (w *walker) jsonRecord(d *json.Decoder) (*CMW, error) {
	var elems []json.Token
	for {
		tok, err := token(d)
		if err != nil {
			return nil, err
		}
		if tok == json.Delim(']') {
			break
		}
		if _, ok := tok.(json.Delim); ok {
			return nil, malformed("nested JSON value in a record")
		}
		if len(elems) == 3 {
			return nil, malformed("record with more than 3 elements")
		}
		elems = append(elems, tok)
	}
	if len(elems) < 2 {
		return nil, malformed("record with %d elements", len(elems))
	}
	r := &Record{}
	switch typ := elems[0].(type) {
	case string:
		if err := checkMediaType(typ); err != nil {
			return nil, &DecodeError{Reason: "record type", Err: err}
		}
		r.MediaType = typ
	case json.Number:
		cf, err := strconv.ParseUint(string(typ), 10, 16)
		if err != nil {
			return nil, malformed("record type %s is not a Content-Format", typ)
		}
		r.cf, r.hasCF = uint16(cf), true
		r.MediaType = cfMediaType(r.cf)
	default:
		return nil, malformed("record type of JSON type %T", typ)
	}
	val, ok := elems[1].(string)
	if !ok {
		return nil, malformed("record value of JSON type %T", elems[1])
	}
	v, err := decodeBase64URL(val)
	if err != nil {
		return nil, err
	}
	r.Value = v
	if len(elems) == 3 {
		n, ok := elems[2].(json.Number)
		if !ok {
			return nil, malformed("indicator of JSON type %T", elems[2])
		}
		ind, err := strconv.ParseUint(string(n), 10, 64)
		if err != nil {
			return nil, malformed("indicator %s is not an unsigned integer", n)
		}
		if err := checkIndicator(ind); err != nil {
			return nil, err
		}
		r.Indicator = Indicator(ind)
	}
	return &CMW{format: FormatJSONRecord, rec: r}, nil
}

// decodeBase64URL accepts only non-empty, unpadded, canonical base64url
// (RFC 4648 Section 5) without line breaks, which encoding/base64 would
// otherwise skip.
func decodeBase64URL(s string) ([]byte, error) {
	if s == "" {
		return nil, malformed("empty record value")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return nil, malformed("record value is not base64url (byte 0x%02x)", c)
		}
	}
	v, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, &DecodeError{Reason: "record value", Err: err}
	}
	return v, nil
}
