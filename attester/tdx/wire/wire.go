// Package wire defines the Evidence structure carried in a CMW record of
// media type cmw.MediaTypeTDX ("application/vnd.go-expat.tdx-quote+cbor")
// and the Intel TDX quote (v4 and v5) inside it (ParseQuote, Quote): the
// one description of both layouts, used by attester/tdx (which produces
// and checks quotes), verifier/tdx (which appraises them) and
// attester/tdx/tdxtest (which signs test quotes).
//
// # Encoding
//
// The CMW value is one CBOR map, in CDDL:
//
//	tdx-evidence = {
//	  1 => bstr .size (1020..16384)  ; quote: the Intel TDX quote (v4 or v5),
//	                                 ; byte for byte as the quoting enclave
//	                                 ; produced it, PCK chain included
//	  ? 2 => bstr .size 6            ; fmspc: collateral hint, the platform's
//	                                 ; FMSPC (the verifier checks it against
//	                                 ; the PCK certificate, never trusts it)
//	}
//
// Decoding is strict: the input must be in CBOR core deterministic encoding
// (RFC 8949, Section 4.2.1), so that one Evidence has exactly one encoding;
// indefinite lengths, duplicate or unknown keys, tags, and trailing bytes
// are rejected, and sizes are bounded before anything is allocated.
//
// # Quote
//
// ParseQuote and Quote.Marshal implement the TDX quote, versions 4 and 5,
// in the one form go-expat accepts: ECDSA-256 with P-256, QE report
// certification data (type 6) holding a PEM PCK certificate chain (type
// 5). Layout: Intel TDX DCAP Quoting Library API, Appendix A.3 (v4) and
// A.4 (v5); the QE report is an SGX REPORT body (Intel SDM Vol. 3D,
// REPORTBODY). All integers are little-endian; sizes in bytes:
//
//	quote        = header (48) [v5: body type (2) body size (4)] body
//	               (584 for TDX 1.0, 648 for TDX 1.5)
//	               signed-data-size (4) signed-data
//	signed-data  = signature (64) attestation-key (64)
//	               cert-type (2) = 6, cert-size (4), qe-cert-data
//	qe-cert-data = qe-report (384) qe-report-signature (64)
//	               auth-size (2) auth-data
//	               cert-type (2) = 5, cert-size (4), PCK chain
//
// Parsing is strict like the Evidence's: every length must match the bytes
// present, nothing may follow, sizes are bounded, and a parsed Quote
// re-marshals to the same bytes. A test checks the layout against
// go-tdx-guest's parser on Intel's real sample quotes.
package wire

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/attested-tls/go-expat/internal/strictcbor"
)

const (
	// MaxQuoteSize bounds a quote: the Linux TDX guest driver's quote
	// buffer is 16 KiB (4 * 4 KiB), which a real quote with its PCK chain
	// (about 5 KiB) never approaches.
	MaxQuoteSize = 16 << 10
	// MinQuoteSize is a lower bound on the size of a quote, below that of
	// every quote ParseQuote accepts (the smallest, v4 with no QE auth
	// data and no PCK chain, is 1226 bytes); ParseQuote checks the rest.
	MinQuoteSize = 0x3FC
	// MaxEvidenceSize bounds the whole CBOR value.
	MaxEvidenceSize = MaxQuoteSize + 64
	fmspcSize       = 6
)

// ErrMalformed matches every decoding error of this package.
var ErrMalformed = errors.New("tdx: malformed evidence")

// Evidence is the decoded CMW value.
type Evidence struct {
	// Quote is the raw TDX quote.
	Quote []byte `cbor:"1,keyasint"`
	// FMSPC is an optional collateral hint (6 bytes).
	FMSPC []byte `cbor:"2,keyasint,omitempty"`
}

// The strict profile shared by go-expat's decoders, with this format's
// limits.
var (
	encMode = strictcbor.EncMode()
	decMode = strictcbor.DecMode(strictcbor.Limits{MaxNestedLevels: 4, MaxArrayElements: 16, MaxMapPairs: 16, RejectUnknownFields: true})
)

func (e *Evidence) check() error {
	if len(e.Quote) < MinQuoteSize || len(e.Quote) > MaxQuoteSize {
		return fmt.Errorf("%w: quote is %d bytes, want %d..%d", ErrMalformed, len(e.Quote), MinQuoteSize, MaxQuoteSize)
	}
	if e.FMSPC != nil && len(e.FMSPC) != fmspcSize {
		return fmt.Errorf("%w: fmspc hint is %d bytes, want %d", ErrMalformed, len(e.FMSPC), fmspcSize)
	}
	return nil
}

// Marshal returns the deterministic CBOR encoding of e.
func (e *Evidence) Marshal() ([]byte, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	return encMode.Marshal(e)
}

// Parse decodes b strictly. The returned Evidence does not alias b.
func Parse(b []byte) (*Evidence, error) {
	if len(b) == 0 || len(b) > MaxEvidenceSize {
		return nil, fmt.Errorf("%w: %d bytes, want 1..%d", ErrMalformed, len(b), MaxEvidenceSize)
	}
	// A map is required: checking the major type first keeps the decoder
	// from building other values.
	if b[0]&0xe0 != 0xa0 {
		return nil, fmt.Errorf("%w: not a CBOR map", ErrMalformed)
	}
	var e Evidence
	if err := decMode.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if e.Quote == nil {
		return nil, fmt.Errorf("%w: missing quote (key 1)", ErrMalformed)
	}
	if err := e.check(); err != nil {
		return nil, err
	}
	// One encoding per value: re-encode and compare.
	re, err := encMode.Marshal(&e)
	if err != nil || !bytes.Equal(re, b) {
		return nil, fmt.Errorf("%w: not in CBOR core deterministic encoding", ErrMalformed)
	}
	return &e, nil
}
