package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
)

// maxDepth bounds the nesting of a policy document (the format needs 5).
const maxDepth = 16

// checkShape walks the JSON document once, before it is decoded, against the
// Go type it will be decoded into: every object member must be a field of
// that type under its exact (case-sensitive) name, no member may appear
// twice, and each value must have the JSON type of its field. Errors name the
// member by its JSON path, which encoding/json's own errors do not do for
// unknown or duplicate members.
func checkShape(data []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := walk(dec, t, "$", 0); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return &Error{Path: "$", Err: errors.New("trailing data after the policy object")}
	}
	return nil
}

func walk(dec *json.Decoder, t reflect.Type, path string, depth int) error {
	if depth > maxDepth {
		return &Error{Path: path, Err: errors.New("nested too deeply")}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tok, err := dec.Token()
	if err != nil {
		return &Error{Path: path, Err: fmt.Errorf("malformed JSON: %w", err)}
	}
	if tok == nil {
		return &Error{Path: path, Err: errors.New("null is not allowed; leave the member out")}
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		if d, ok := tok.(json.Delim); !ok || d != '{' {
			return typeError(path, "an object", tok)
		}
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return &Error{Path: path, Err: fmt.Errorf("malformed JSON: %w", err)}
			}
			name := kt.(string)
			p, elem := path+"["+strconv.Quote(name)+"]", reflect.Type(nil)
			if t.Kind() == reflect.Map {
				elem = t.Elem()
			} else {
				p = path + "." + name
				if f, ok := fieldByTag(t, name); ok {
					elem = f.Type
				} else if name == "comment" {
					// Every object may carry a comment for the human reader.
					elem = reflect.TypeOf("")
				} else {
					return &Error{Path: p, Err: errors.New("unknown member (names are case-sensitive)")}
				}
			}
			if seen[name] {
				return &Error{Path: p, Err: errors.New("member given twice")}
			}
			seen[name] = true
			if err := walk(dec, elem, p, depth+1); err != nil {
				return err
			}
		}
		return closeToken(dec, path)
	case reflect.Slice, reflect.Array:
		if d, ok := tok.(json.Delim); !ok || d != '[' {
			return typeError(path, "an array", tok)
		}
		for i := 0; dec.More(); i++ {
			if t.Kind() == reflect.Array && i >= t.Len() {
				return &Error{Path: path, Err: fmt.Errorf("more than %d elements", t.Len())}
			}
			if err := walk(dec, t.Elem(), fmt.Sprintf("%s[%d]", path, i), depth+1); err != nil {
				return err
			}
		}
		return closeToken(dec, path)
	case reflect.String:
		if _, ok := tok.(string); !ok {
			return typeError(path, "a string", tok)
		}
	case reflect.Bool:
		if _, ok := tok.(bool); !ok {
			return typeError(path, "true or false", tok)
		}
	case reflect.Int, reflect.Int64, reflect.Uint8, reflect.Uint32, reflect.Uint64:
		n, ok := tok.(json.Number)
		if !ok {
			return typeError(path, "a number", tok)
		}
		bits := t.Bits()
		var err error
		if t.Kind() == reflect.Int || t.Kind() == reflect.Int64 {
			_, err = strconv.ParseInt(n.String(), 10, bits)
		} else {
			_, err = strconv.ParseUint(n.String(), 10, bits)
		}
		if err != nil {
			return &Error{Path: path, Err: fmt.Errorf("want an integer that fits %s, got %s", t.Kind(), n)}
		}
	default:
		return &Error{Path: path, Err: fmt.Errorf("policy: internal: unsupported field type %s", t)}
	}
	return nil
}

// closeToken reads the '}' or ']' that ends the value at path.
func closeToken(dec *json.Decoder, path string) error {
	if _, err := dec.Token(); err != nil {
		return &Error{Path: path, Err: fmt.Errorf("malformed JSON: %w", err)}
	}
	return nil
}

func typeError(path, want string, tok json.Token) error {
	got := "a value"
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' {
			got = "an object"
		} else {
			got = "an array"
		}
	case string:
		got = "a string"
	case bool:
		got = "a boolean"
	case json.Number:
		got = "a number"
	}
	return &Error{Path: path, Err: fmt.Errorf("want %s, got %s", want, got)}
}

func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag != "" && tag != "-" && tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}
