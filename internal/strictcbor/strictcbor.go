// Package strictcbor holds go-expat's one strict CBOR profile for data from
// peers (STYLE.md, strict decoding): duplicate map keys, indefinite lengths,
// invalid UTF-8, NaN and infinities are rejected by every decode mode it
// returns, and each caller states its own size limits. Encoding is Core
// Deterministic (RFC 8949, Section 4.2.1).
package strictcbor

import (
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Limits are what differs between the formats go-expat decodes.
type Limits struct {
	// MaxNestedLevels, MaxArrayElements and MaxMapPairs bound the
	// structure (fxamacker/cbor's minimums apply: 4, 16 and 16).
	MaxNestedLevels  int
	MaxArrayElements int
	MaxMapPairs      int
	// AllowTags accepts CBOR tags (COSE and EAT need them); evidence
	// bundles forbid them.
	AllowTags bool
	// RejectUnknownFields fails decoding into a struct when the data has a
	// key the struct does not declare.
	RejectUnknownFields bool
}

// DecMode returns the strict decode mode for l. It panics if l is outside
// fxamacker/cbor's accepted ranges: limits are constants of the calling
// package, so that is a programming error, caught by any test.
func DecMode(l Limits) cbor.DecMode {
	o := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		UTF8:             cbor.UTF8RejectInvalid,
		NaN:              cbor.NaNDecodeForbidden,
		Inf:              cbor.InfDecodeForbidden,
		TagsMd:           cbor.TagsForbidden,
		MaxNestedLevels:  l.MaxNestedLevels,
		MaxArrayElements: l.MaxArrayElements,
		MaxMapPairs:      l.MaxMapPairs,
	}
	if l.AllowTags {
		o.TagsMd = cbor.TagsAllowed
	}
	if l.RejectUnknownFields {
		o.ExtraReturnErrors = cbor.ExtraDecErrorUnknownField
	}
	dm, err := o.DecMode()
	if err != nil {
		panic(fmt.Sprintf("strictcbor: invalid limits %+v: %v", l, err))
	}
	return dm
}

// EncMode returns the Core Deterministic encode mode.
func EncMode() cbor.EncMode {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic("strictcbor: " + err.Error())
	}
	return em
}
