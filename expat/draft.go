package expat

// Everything in this file depends on the revision of draft-fossati-seat-expat
// that go-expat implements. When the draft changes, this file changes, and
// nothing else should need to.

// DraftRevision names the text this implementation follows.
const DraftRevision = "draft-fossati-seat-expat, 2026-09 editor's copy (-04)"

// DefaultExtensionType is the cmw_attestation extension code point used when
// Config.ExtensionType is zero. The draft leaves the code point TBD; 0xFF00
// is in the private-use range (RFC 8446, Section 11) and is the value the Go
// prototype used. A Rust prototype used 0xFFFF.
const DefaultExtensionType uint16 = 0xFF00

// ExporterLabel is the TLS exporter label of the binder (draft -04,
// Section 5.1), registered by the draft.
const ExporterLabel = "EXPORTER-cmw-attestation"

// ExporterLength is the length of the exporter output fed into the binder
// (draft -04, Section 5.1).
const ExporterLength = 32

// Older binder labels, accepted only through Config.LegacyBinderLabel for
// interoperability with prototypes of earlier revisions. They are not the
// current specification and must not be used by new deployments.
const (
	// LegacyLabelDraft02 is the label of -02/-03 ("Attestation").
	LegacyLabelDraft02 = "Attestation"
	// LegacyLabelDraft01 is the label of -01 ("Attestation Binding").
	LegacyLabelDraft01 = "Attestation Binding"
)

// MaxCMWSize is the largest CMW the extension can carry. The draft declares
// the extension data as `opaque cmw<1..2^16-1>` (draft -04, Section 4), but
// that vector and its own 2-byte length must fit in the extension's u16
// length (RFC 8446, Section 4.2), so 2^16-1-2 bytes is the real ceiling. Other
// extensions of the same CertificateEntry share the entry's u16 extensions
// block, which lowers it further.
const MaxCMWSize = 1<<16 - 1 - 2
