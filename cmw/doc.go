// Package cmw decodes and builds RATS Conceptual Message Wrappers (CMW,
// draft-ietf-rats-msg-wrap-23) the way go-expat carries them in the
// cmw_attestation extension: strictly, within fixed size, depth and item
// limits, and in time linear in the input.
//
// It builds on github.com/veraison/cmw v0.2.0 for serialization (Marshal)
// and its Content-Format table. Decoding is this package's own, in one pass:
// that library is lax with peer input (it accepts indefinite-length CBOR,
// duplicate map keys, duplicate JSON members, non-canonical base64url,
// invalid UTF-8 in JSON, and panics on some wrong types), so Decode parses
// the raw bytes against the CMW schema with a strict CBOR decode mode
// (github.com/fxamacker/cbor/v2: duplicate keys, indefinite lengths,
// trailing data rejected; nesting, array and map sizes bounded) or a strict
// JSON scanner (UTF-8, duplicate members, trailing data, exact types), and
// never hands peer bytes to veraison/cmw's decoder.
//
// # What is implemented
//
//   - Records: JSON `[type, base64url(value), ?ind]` and CBOR
//     `[type, bstr, ?ind]`, where type is a media type string or a CoAP
//     Content-Format number (0..65535).
//   - CBOR tag form `#6.<TN>(bstr)` with TN in the RFC 9277 range derived
//     from Content-Formats (decoding; re-marshaling keeps the form).
//   - Collections (JSON objects, CBOR maps) with text labels (and unsigned
//     integer labels in CBOR), the optional "__cmwc_t" type, nested up to
//     Limits.MaxDepth. Collections are enumerated with
//     GetCollectionMeta: veraison/cmw v0.2.0's ValidateCollection rejects
//     every collection that contains a record and is not used.
//
// # Strictness decisions
//
// One size limit: no CMW over MaxSize (65535 bytes, the cmw_attestation
// extension's 16-bit length) is decoded; Limits.MaxSize can only lower it.
//
// One canonical-encoding rule: Decode accepts a CMW only in the encoding
// Marshal writes for it in the same format, byte for byte. For CBOR that is
// the core deterministic encoding of RFC 8949, Section 4.2.1 (shortest
// heads, definite lengths, map keys sorted by their encoded bytes); for JSON
// the compact form of encoding/json (no insignificant whitespace, members
// sorted, Go's escaping: "\u003c" for "<", no escaped "/"). So every CMW
// has exactly one accepted serialization per format, and a decoded CMW
// re-marshals to the input (FuzzDecode checks it). JSON and CBOR are both
// accepted, as the cmw_attestation extension allows.
//
// One record rule: a backend that takes "one record of media type X"
// (DecodeRecord, or Record.Expect for a record a Dispatch already decoded)
// accepts a record, not a collection, typed by exactly the string X (not an
// equivalent spelling, not a Content-Format number or tag), whose indicator
// is absent or exactly the one the backend names; anything else is
// ErrUnexpected.
//
// Decode also rejects: empty input; any byte after
// the CMW (including whitespace after JSON); indefinite-length CBOR items;
// duplicate CBOR map keys and duplicate JSON members (after unescaping);
// empty collections, empty values, empty or whitespace-only labels; a type
// that is neither a parseable media type nor a Content-Format number; JSON
// values that are not unpadded, canonical base64url; an indicator that is
// explicitly zero (omit it instead) or has bits beyond the five defined
// (reference values 1, endorsements 2, evidence 4, attestation results 8,
// appraisal policy 16); records with other than two or three elements; and
// nesting or item counts beyond the limits. Values returned never alias the
// input buffer.
//
// A collection's items are not checked for being cryptographically bound to
// each other: that is the job of the verifier of the composite.
package cmw
