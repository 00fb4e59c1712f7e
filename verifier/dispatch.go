package verifier

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/attested-tls/go-expat/cmw"
)

// Dispatch is a Verifier that decodes the CMW strictly (package cmw) and
// routes each record to the Verifier registered for its media type.
//
// The CMW is decoded once (cmw.Decode: the one size limit, the canonical
// encoding) and each record handed on decoded: to VerifyRecord when the
// registered Verifier is a RecordVerifier (every backend of this module),
// else to Verify as bytes (the input itself for a top-level record; for a
// collection item its canonical encoding in the collection's format, which
// is its bytes in the input).
//
// A record whose media type has no registered Verifier is rejected with
// CheckFormat. A collection whose type is registered in Collections goes
// to that Verifier as a whole. Other collections are rejected
// (CheckFormat) unless AllowCollections is set; then every record of the collection, at any
// depth, is routed, every one must be accepted against the same Expected,
// and the Results are merged (see Verify). Dispatch does not check that a
// collection's items are bound to each other (verifier/composite does);
// since each is appraised against this connection's challenge, each must
// be bound to it.
//
// The zero value rejects everything. A Dispatch must not be modified while
// in use.
type Dispatch struct {
	// Verifiers maps a media type to its Verifier. Lookups compare media
	// types with cmw.EqualMediaTypes (case of type and parameter names,
	// quoting and spacing do not matter).
	Verifiers map[string]Verifier
	// AllowCollections accepts CMW collections (see the type's doc).
	AllowCollections bool
	// Collections maps a collection type (__cmwc_t, compared exactly) to
	// the Verifier that appraises such a collection as a whole, such as
	// verifier/composite's for attester/composite.CollectionType. A
	// top-level collection of a registered type goes to that Verifier only
	// (as decoded, when it is a DecodedVerifier, else as bytes), whether
	// or not AllowCollections is set; its items are never routed one by
	// one.
	Collections map[string]Verifier
	// Limits bound the CMW; nil means package cmw's defaults (cmw.MaxSize,
	// 65535 bytes, which Limits can only lower).
	Limits *cmw.Limits
}

var _ DecodedVerifier = (*Dispatch)(nil)

// Lookup returns the Verifier registered for mediaType.
func (d *Dispatch) Lookup(mediaType string) (Verifier, error) {
	if v, ok := d.Verifiers[mediaType]; ok && v != nil {
		return v, nil
	}
	var found Verifier
	n := 0
	for mt, v := range d.Verifiers {
		if v != nil && cmw.EqualMediaTypes(mt, mediaType) {
			found = v
			n++
		}
	}
	switch n {
	case 0:
		return nil, Reject(CheckFormat, nil, "no verifier for media type %q", mediaType)
	case 1:
		return found, nil
	}
	return nil, fmt.Errorf("verifier: %d verifiers registered for media type %q", n, mediaType)
}

// Verify decodes cmw and appraises it with the registered Verifier(s).
//
// For a collection the Result is Merge of the items' Results, with
// MediaType the collection's __cmwc_t (or "cmw-collection"); it names no
// KeyBinding stronger than KeyByBinder and no PlatformIDs, since the items
// are not bound to each other (verifier/composite appraises a collection
// whose items are).
func (d *Dispatch) Verify(ctx context.Context, b []byte, exp *Expected) (*Result, error) {
	c, err := d.Decode(b)
	if err != nil {
		return nil, err
	}
	return d.verifyDecoded(ctx, c, b, exp)
}

// Decode decodes b as Verify does: cmw.Decode within d.Limits, a refusal
// being a *RejectedError with CheckFormat wrapping the *cmw.DecodeError.
// With VerifyDecoded it lets a caller that must look at the CMW first
// (verifier/local) decode it only once.
func (d *Dispatch) Decode(b []byte) (*cmw.CMW, error) {
	c, err := cmw.Decode(b, d.Limits)
	if err != nil {
		return nil, formatError(err)
	}
	return c, nil
}

// VerifyDecoded is Verify for a CMW already decoded by Decode.
func (d *Dispatch) VerifyDecoded(ctx context.Context, c *cmw.CMW, exp *Expected) (*Result, error) {
	return d.verifyDecoded(ctx, c, nil, exp)
}

// verifyDecoded appraises c; b is its encoding when the caller has it.
func (d *Dispatch) verifyDecoded(ctx context.Context, c *cmw.CMW, b []byte, exp *Expected) (*Result, error) {
	if r, ok := c.Record(); ok {
		v, err := d.Lookup(r.MediaType)
		if err != nil {
			return nil, err
		}
		if rv, ok := v.(RecordVerifier); ok {
			return rv.VerifyRecord(ctx, r, exp)
		}
		if b == nil {
			var err error
			if b, err = c.Marshal(); err != nil {
				return nil, fmt.Errorf("verifier: serializing the record: %w", err)
			}
		}
		return v.Verify(ctx, b, exp)
	}
	if v := d.Collections[c.CollectionType()]; v != nil && c.CollectionType() != "" {
		if dv, ok := v.(DecodedVerifier); ok {
			return dv.VerifyDecoded(ctx, c, exp)
		}
		if b == nil {
			var err error
			if b, err = c.Marshal(); err != nil {
				return nil, fmt.Errorf("verifier: serializing the collection: %w", err)
			}
		}
		return v.Verify(ctx, b, exp)
	}
	if !d.AllowCollections {
		return nil, Reject(CheckFormat, nil, "CMW collections are not accepted")
	}

	var results []ItemResult
	err := walkItems(c, nil, func(path []string, item *cmw.CMW) error {
		r, _ := item.Record()
		v, err := d.Lookup(r.MediaType)
		if err != nil {
			return err
		}
		var res *Result
		if rv, ok := v.(RecordVerifier); ok {
			res, err = rv.VerifyRecord(ctx, r, exp)
		} else {
			one, merr := item.Marshal()
			if merr != nil {
				return fmt.Errorf("verifier: serializing item %s: %w", strings.Join(path, "/"), merr)
			}
			res, err = v.Verify(ctx, one, exp)
		}
		if err != nil {
			return err
		}
		if res == nil {
			return fmt.Errorf("verifier: nil result for item %s", strings.Join(path, "/"))
		}
		results = append(results, ItemResult{strings.Join(path, "/"), res})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(results) == 0 {
		return nil, errors.New("verifier: empty collection")
	}
	return Merge(c.CollectionType(), results), nil
}

func walkItems(c *cmw.CMW, path []string, fn func([]string, *cmw.CMW) error) error {
	if !c.IsCollection() {
		return fn(path, c)
	}
	for _, it := range c.Items() {
		p := append(append([]string(nil), path...), it.Label.String())
		if err := walkItems(it.CMW, p, fn); err != nil {
			return err
		}
	}
	return nil
}
