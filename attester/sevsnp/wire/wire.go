// Package wire defines the Evidence that go-expat's SEV-SNP backend carries
// in a CMW record of media type cmw.MediaTypeSEVSNP
// ("application/vnd.go-expat.sev-snp-report+cbor"), and the strict parsers
// for it and for AMD's certificate table.
//
// # Evidence
//
// The CMW value is a CBOR map with integer keys (CDDL):
//
//	sev-snp-evidence = {
//	  1 => bstr .size 1184   ; ATTESTATION_REPORT as signed by the AMD-SP
//	  ? 2 => bstr            ; certificate table, canonical layout (below)
//	}
//
// Decoding is strict: the encoding must be the CBOR core deterministic
// encoding (RFC 8949, Section 4.2.1: shortest-form lengths, sorted keys),
// with no duplicate keys, no indefinite lengths, no tags, no unknown keys and
// no trailing bytes; the whole value is at most MaxEvidenceSize bytes. Since
// an Exported Authenticator extension carries at most 65535 bytes, so does
// the Evidence.
//
// # Certificate table
//
// The certificate table is the structure the SEV-SNP extended guest request
// returns (SEV-SNP firmware ABI, MSG_REPORT_REQ extended; GHCB specification,
// "SNP Extended Guest Request"): a header of 24-byte entries (GUID, u32 LE
// offset, u32 LE length) ended by an all-zero entry, followed by the blobs
// (DER certificates: VCEK, VLEK, ASK, ASVK, ARK, or other GUID-named data).
// Hosts return it in zero-padded pages; the attester re-lays it out in the
// canonical form that Evidence must use: blobs in header order, contiguous,
// right after the header, no padding, no duplicate GUID, no empty blob.
// ParseHostCertTable accepts the host's layout (bounded, in range);
// ParseCertTable accepts only the canonical one.
package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/attested-tls/go-expat/internal/strictcbor"
)

const (
	// ReportSize is the size of an SEV-SNP ATTESTATION_REPORT (0x4A0).
	ReportSize = 1184
	// MaxEvidenceSize bounds the encoded Evidence (a TLS extension's limit).
	MaxEvidenceSize = 65535
	// MaxCertTableSize bounds a certificate table. Real tables (ARK, ASK,
	// VCEK) take about 5 KiB.
	MaxCertTableSize = 48 * 1024
	// MaxCertTableEntries bounds the number of entries in a table.
	MaxCertTableEntries = 16

	entrySize = 24
)

// GUIDs of the certificate table entries (SEV-SNP firmware ABI, Table
// "Certificate table GUIDs"), in the byte order they have on the wire
// (RFC 4122 big-endian, as the kernel and the firmware copy them).
var (
	GUIDVCEK = mustGUID("63da758d-e664-4564-adc5-f4b93be8accd")
	GUIDVLEK = mustGUID("a8074bc2-a25a-483e-aae6-39c045a0b8a1")
	GUIDASK  = mustGUID("4ab7b379-bbac-4fe4-a02f-05aef327c782")
	GUIDARK  = mustGUID("c0b406a4-a803-4952-9743-3fb6014cd0ae")
)

// ErrFormat matches every error that reports malformed Evidence or a
// malformed certificate table.
var ErrFormat = errors.New("sevsnp: malformed evidence")

func formatErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrFormat}, args...)...)
}

// Evidence is the decoded CMW value.
type Evidence struct {
	// Report is the raw 1184-byte ATTESTATION_REPORT.
	Report []byte `cbor:"1,keyasint"`
	// CertTable is the canonical certificate table, or nil.
	CertTable []byte `cbor:"2,keyasint,omitempty"`
}

// The strict profile shared by go-expat's decoders, with this format's
// limits.
var (
	encMode = strictcbor.EncMode()
	decMode = strictcbor.DecMode(strictcbor.Limits{MaxNestedLevels: 4, MaxArrayElements: 16, MaxMapPairs: 16, RejectUnknownFields: true})
)

// Check reports whether e is well formed: a report of ReportSize bytes and,
// if present, a canonical certificate table.
func (e *Evidence) Check() error {
	if len(e.Report) != ReportSize {
		return formatErr("report is %d bytes, want %d", len(e.Report), ReportSize)
	}
	if e.CertTable != nil {
		if _, err := ParseCertTable(e.CertTable); err != nil {
			return err
		}
	}
	return nil
}

// Marshal returns the deterministic CBOR encoding of e after checking it.
func (e *Evidence) Marshal() ([]byte, error) {
	if err := e.Check(); err != nil {
		return nil, err
	}
	b, err := encMode.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("sevsnp: encoding evidence: %w", err)
	}
	if len(b) > MaxEvidenceSize {
		return nil, formatErr("evidence is %d bytes, limit %d", len(b), MaxEvidenceSize)
	}
	return b, nil
}

// Unmarshal decodes Evidence strictly (see the package documentation). The
// returned Evidence does not alias b.
func Unmarshal(b []byte) (*Evidence, error) {
	if len(b) == 0 || len(b) > MaxEvidenceSize {
		return nil, formatErr("evidence is %d bytes, want 1..%d", len(b), MaxEvidenceSize)
	}
	// A map of at most two pairs; reject anything else before decoding.
	if b[0] != 0xa1 && b[0] != 0xa2 {
		return nil, formatErr("evidence is not a CBOR map of one or two entries")
	}
	var e Evidence
	if err := decMode.Unmarshal(b, &e); err != nil {
		return nil, formatErr("%v", err)
	}
	if e.CertTable != nil && len(e.CertTable) == 0 {
		return nil, formatErr("empty certificate table")
	}
	if err := e.Check(); err != nil {
		return nil, err
	}
	re, err := encMode.Marshal(&e)
	if err != nil || !bytes.Equal(re, b) {
		return nil, formatErr("evidence is not in deterministic CBOR encoding")
	}
	e.Report = bytes.Clone(e.Report)
	e.CertTable = bytes.Clone(e.CertTable)
	return &e, nil
}

// CertEntry is one entry of a certificate table.
type CertEntry struct {
	GUID [16]byte
	Data []byte
}

// CertTable is a parsed certificate table.
type CertTable []CertEntry

// Get returns the blob named guid, or nil.
func (t CertTable) Get(guid [16]byte) []byte {
	for _, e := range t {
		if e.GUID == guid {
			return e.Data
		}
	}
	return nil
}

// Marshal returns the canonical layout of t.
func (t CertTable) Marshal() ([]byte, error) {
	if len(t) > MaxCertTableEntries {
		return nil, formatErr("certificate table has %d entries, limit %d", len(t), MaxCertTableEntries)
	}
	hdr := (len(t) + 1) * entrySize
	size := hdr
	seen := make(map[[16]byte]bool, len(t))
	for i, e := range t {
		if len(e.Data) == 0 {
			return nil, formatErr("certificate table entry %d is empty", i)
		}
		if seen[e.GUID] {
			return nil, formatErr("certificate table entry %d repeats a GUID", i)
		}
		seen[e.GUID] = true
		size += len(e.Data)
		if size > MaxCertTableSize {
			return nil, formatErr("certificate table exceeds %d bytes", MaxCertTableSize)
		}
	}
	out := make([]byte, hdr, size)
	off := hdr
	for i, e := range t {
		h := out[i*entrySize:]
		copy(h[:16], e.GUID[:])
		binary.LittleEndian.PutUint32(h[16:20], uint32(off))
		binary.LittleEndian.PutUint32(h[20:24], uint32(len(e.Data)))
		off += len(e.Data)
	}
	for _, e := range t {
		out = append(out, e.Data...)
	}
	return out, nil
}

// ParseCertTable parses a certificate table in canonical layout. The result
// does not alias b.
func ParseCertTable(b []byte) (CertTable, error) {
	t, end, err := parseTable(b, true)
	if err != nil {
		return nil, err
	}
	if end != len(b) {
		return nil, formatErr("certificate table has %d trailing bytes", len(b)-end)
	}
	return t, nil
}

// ParseHostCertTable parses a certificate table as a host returns it: blobs
// anywhere after the header, in range, followed by any padding. Entries
// must still be non-empty with distinct GUIDs. The result does not alias b.
func ParseHostCertTable(b []byte) (CertTable, error) {
	t, _, err := parseTable(b, false)
	return t, err
}

func parseTable(b []byte, canonical bool) (CertTable, int, error) {
	if len(b) < entrySize {
		return nil, 0, formatErr("certificate table is %d bytes, shorter than its terminator", len(b))
	}
	if len(b) > MaxCertTableSize {
		return nil, 0, formatErr("certificate table is %d bytes, limit %d", len(b), MaxCertTableSize)
	}
	type hdrEntry struct {
		guid     [16]byte
		off, len uint64
	}
	var hdrs []hdrEntry
	n := 0
	for {
		if (n+1)*entrySize > len(b) {
			return nil, 0, formatErr("certificate table header has no terminator")
		}
		h := b[n*entrySize : (n+1)*entrySize]
		n++
		var e hdrEntry
		copy(e.guid[:], h[:16])
		e.off = uint64(binary.LittleEndian.Uint32(h[16:20]))
		e.len = uint64(binary.LittleEndian.Uint32(h[20:24]))
		if e.off == 0 && e.len == 0 && e.guid == ([16]byte{}) {
			break
		}
		if len(hdrs) == MaxCertTableEntries {
			return nil, 0, formatErr("certificate table has more than %d entries", MaxCertTableEntries)
		}
		hdrs = append(hdrs, e)
	}
	hdrSize := uint64(n * entrySize)
	next := hdrSize
	t := make(CertTable, 0, len(hdrs))
	for i, e := range hdrs {
		if e.len == 0 {
			return nil, 0, formatErr("certificate table entry %d is empty", i)
		}
		if e.off < hdrSize || e.off+e.len > uint64(len(b)) {
			return nil, 0, formatErr("certificate table entry %d is out of range", i)
		}
		if canonical && e.off != next {
			return nil, 0, formatErr("certificate table entry %d is not contiguous", i)
		}
		next = e.off + e.len
		if t.Get(e.guid) != nil {
			return nil, 0, formatErr("certificate table entry %d repeats a GUID", i)
		}
		t = append(t, CertEntry{GUID: e.guid, Data: bytes.Clone(b[e.off : e.off+e.len])})
	}
	return t, int(next), nil
}

func mustGUID(s string) [16]byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 {
		panic("wire: bad GUID literal " + s)
	}
	return [16]byte(b)
}
