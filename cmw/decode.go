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

// strictMode is the one CBOR decode mode used to check peer input before
// veraison/cmw sees it. Its limits are the ceilings; Decode applies the
// caller's (lower) Limits while walking the result.
var strictMode = strictcbor.DecMode(strictcbor.Limits{
	MaxNestedLevels:     MaxDepthCeiling + 2, // collections, then a record array or tag and its content
	MaxArrayElements:    16,                  // the library's minimum; records have 2 or 3
	MaxMapPairs:         MaxItemsCeiling + 1, // items and "__cmwc_t"
	AllowTags:           true,
	RejectUnknownFields: true,
})

// Decode parses a serialized CMW (JSON or CBOR; record, tag or collection)
// strictly, within lim (nil means the defaults). Every error matches
// ErrMalformed; those caused by a limit also match ErrLimit. On error the
// returned CMW is nil.
func Decode(b []byte, lim *Limits) (*CMW, error) {
	maxSize, maxDepth, maxItems := lim.values()
	if len(b) == 0 {
		return nil, malformed("empty input")
	}
	if len(b) > maxSize {
		return nil, limitErr("%d bytes exceed the %d-byte limit", len(b), maxSize)
	}
	format := vcmw.Sniff(b)
	var (
		ours *CMW
		err  error
	)
	switch format {
	case vcmw.FormatJSONRecord, vcmw.FormatJSONCollection:
		ours, err = checkJSON(b, maxDepth, maxItems)
	case vcmw.FormatCBORRecord, vcmw.FormatCBORTag, vcmw.FormatCBORCollection:
		ours, err = checkCBOR(b, maxDepth, maxItems)
	default:
		err = malformed("first byte 0x%02x starts no CMW", b[0])
	}
	if err != nil {
		return nil, err
	}
	v, err := deserialize(b)
	if err != nil {
		return nil, err
	}
	theirs, err := fromVeraison(v)
	if err != nil {
		return nil, err
	}
	if err := agree(ours, theirs); err != nil {
		return nil, err
	}
	ours.freeze()
	return ours, nil
}

// agree checks that the strict checker and veraison/cmw read the same
// message, and completes ours with the media type veraison/cmw reports for
// numeric types.
func agree(ours, theirs *CMW) error {
	if (ours.rec == nil) != (theirs.rec == nil) || ours.format != theirs.format ||
		ours.ctype != theirs.ctype || len(ours.items) != len(theirs.items) {
		return malformed("decoders disagree on the structure")
	}
	if r, t := ours.rec, theirs.rec; r != nil {
		if !bytes.Equal(r.Value, t.Value) || r.Indicator != t.Indicator ||
			(!r.hasCF && r.MediaType != t.MediaType) {
			return malformed("decoders disagree on a record")
		}
		if r.hasCF {
			r.MediaType = t.MediaType
		}
		return nil
	}
	for i := range ours.items {
		if ours.items[i].Label != theirs.items[i].Label {
			return malformed("decoders disagree on labels")
		}
		if err := agree(ours.items[i].CMW, theirs.items[i].CMW); err != nil {
			return err
		}
	}
	return nil
}

// deserialize runs veraison/cmw on input that passed the strict checks. The
// recover is a second line of defence: the strict checks exclude every
// input known to make veraison/cmw v0.2.0 panic.
func deserialize(b []byte) (v *vcmw.CMW, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, &DecodeError{Reason: fmt.Sprintf("veraison/cmw panicked: %v", r)}
		}
	}()
	v = new(vcmw.CMW)
	if err := v.Deserialize(b); err != nil {
		return nil, &DecodeError{Reason: "veraison/cmw", Err: err}
	}
	return v, nil
}

func fromVeraison(v *vcmw.CMW) (*CMW, error) {
	switch v.GetKind() {
	case vcmw.KindMonad:
		return recordFromVeraison(v)
	case vcmw.KindCollection:
		meta, err := v.GetCollectionMeta()
		if err != nil {
			return nil, &DecodeError{Reason: "collection", Err: err}
		}
		c := &CMW{}
		c.ctype, _ = v.GetCollectionType()
		c.format = FormatCBORCollection
		if v.GetFormat() == vcmw.FormatJSONCollection {
			c.format = FormatJSONCollection
		}
		for _, m := range meta {
			var l Label
			switch k := m.Key.(type) {
			case string:
				l = TextLabel(k)
			case uint64:
				l = NumLabel(k)
			default:
				return nil, malformed("label of type %T", k)
			}
			sub, err := v.GetCollectionItem(m.Key)
			if err != nil {
				return nil, &DecodeError{Reason: "collection item " + l.String(), Err: err}
			}
			item, err := fromVeraison(sub)
			if err != nil {
				return nil, err
			}
			c.items = append(c.items, Item{Label: l, CMW: item})
		}
		// Our order (integers first) differs from veraison's.
		sortItems(c.items)
		return c, nil
	}
	return nil, malformed("unknown CMW kind")
}

func sortItems(items []Item) {
	for i := 1; i < len(items); i++ {
		for j := i; j > 0 && items[j].Label.less(items[j-1].Label); j-- {
			items[j], items[j-1] = items[j-1], items[j]
		}
	}
}

func recordFromVeraison(v *vcmw.CMW) (*CMW, error) {
	mt, err := v.GetMonadType()
	if err != nil {
		return nil, &DecodeError{Reason: "record type", Err: err}
	}
	val, _ := v.GetMonadValue()
	ind, _ := v.GetMonadIndicator()
	r := &Record{MediaType: mt, Value: bytes.Clone(val), Indicator: Indicator(ind)}
	c := &CMW{rec: r}
	switch v.GetFormat() {
	case vcmw.FormatJSONRecord:
		c.format = FormatJSONRecord
	case vcmw.FormatCBORTag:
		c.format = FormatCBORTag
	default:
		c.format = FormatCBORRecord
	}
	return c, nil
}

// ---- strict CBOR check ----

func checkCBOR(b []byte, maxDepth, maxItems int) (*CMW, error) {
	var v any
	if err := strictMode.Unmarshal(b, &v); err != nil {
		var me *cbor.MaxNestedLevelError
		var ae *cbor.MaxArrayElementsError
		var pe *cbor.MaxMapPairsError
		if errors.As(err, &me) || errors.As(err, &ae) || errors.As(err, &pe) {
			return nil, &DecodeError{Reason: "CBOR", Limit: true, Err: err}
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
		return &CMW{format: FormatCBORTag, rec: &Record{Value: bytes.Clone(val), cf: cf, hasCF: true}}, nil
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
