// Package bundle defines the Evidence that attester/tpm produces and
// verifier/tpm appraises: a TPM 2.0 quote bundle, CMW media type
// "application/vnd.go-expat.tpm2-quote+cbor" (cmw.MediaTypeTPM2).
//
// # Encoding
//
// A bundle is a CBOR map with unsigned integer keys, encoded with CBOR Core
// Deterministic Encoding (RFC 8949, Section 4.2.1): shortest-form heads,
// definite lengths, map keys sorted. Byte strings hold TPM structures in the
// TPM's own marshalling (TPM 2.0 Library, Part 2):
//
//	tpm2-quote-bundle = {
//	  1 => bstr,                 ; quote: TPMS_ATTEST of TPM2_Quote (TPM2B contents)
//	  2 => bstr,                 ; quote-sig: TPMT_SIGNATURE over it by the AK
//	  3 => bstr,                 ; ak-pub: TPMT_PUBLIC of the attestation key
//	  4 => uint,                 ; pcr-alg: TPM_ALG_ID of the quoted PCR bank
//	  5 => { + uint => bstr },   ; pcrs: PCR index => value, as read from that bank
//	  ? 6 => [ + bstr ],         ; ak-chain: DER AK certificate, then intermediates
//	  ? 7 => [ + bstr ],         ; ek-certs: DER EK certificates (informational)
//	  ? 8 => bstr,               ; event-log: TCG PC Client crypto-agile event log
//	  ? 9 => bstr,               ; certify: TPMS_ATTEST of TPM2_Certify (key attestation)
//	  ? 10 => bstr,              ; certify-sig: TPMT_SIGNATURE over it by the AK
//	  ? 11 => bstr,              ; key-pub: TPMT_PUBLIC of the certified key
//	}
//
// Keys 9, 10 and 11 appear together or not at all. Unmarshal accepts only
// this form: unknown keys, duplicate keys, indefinite lengths, tags,
// non-deterministic encodings, empty optional fields, trailing bytes and
// anything over MaxSize are rejected, so every bundle has exactly one
// encoding. Semantic checks (signatures, names, digests) are verifier/tpm's.
package bundle

import (
	"bytes"
	"errors"
	"fmt"
	"math"

	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/internal/strictcbor"
)

// MaxSize bounds an encoded bundle and the CMW around it: the
// cmw_attestation extension carries at most 65535 bytes.
const MaxSize = math.MaxUint16

// MaxPCR is the highest PCR index a bundle may carry (a PC Client TPM has
// 24 PCRs).
const MaxPCR = 23

// Bundle is a decoded tpm2-quote-bundle. Byte slices returned by Unmarshal
// never alias its input.
type Bundle struct {
	Quote      []byte            `cbor:"1,keyasint"`
	QuoteSig   []byte            `cbor:"2,keyasint"`
	AKPublic   []byte            `cbor:"3,keyasint"`
	PCRAlg     uint16            `cbor:"4,keyasint"`
	PCRs       map[uint32][]byte `cbor:"5,keyasint"`
	AKChain    [][]byte          `cbor:"6,keyasint,omitempty"`
	EKCerts    [][]byte          `cbor:"7,keyasint,omitempty"`
	EventLog   []byte            `cbor:"8,keyasint,omitempty"`
	Certify    []byte            `cbor:"9,keyasint,omitempty"`
	CertifySig []byte            `cbor:"10,keyasint,omitempty"`
	KeyPublic  []byte            `cbor:"11,keyasint,omitempty"`
}

// ErrMalformed matches every Unmarshal and Unwrap failure.
var ErrMalformed = errors.New("tpm bundle: malformed")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// The strict profile shared by go-expat's decoders, with this format's
// limits.
var (
	encMode = strictcbor.EncMode()
	decMode = strictcbor.DecMode(strictcbor.Limits{MaxNestedLevels: 4, MaxArrayElements: 16, MaxMapPairs: 32, RejectUnknownFields: true})
)

// Marshal checks b and encodes it.
func Marshal(b *Bundle) ([]byte, error) {
	if err := b.check(); err != nil {
		return nil, err
	}
	out, err := encMode.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("tpm bundle: encode: %w", err)
	}
	if len(out) > MaxSize {
		return nil, fmt.Errorf("%w: bundle of %d bytes exceeds %d (drop the event log or certificates)", ErrTooLarge, len(out), MaxSize)
	}
	return out, nil
}

// ErrTooLarge reports a bundle over MaxSize.
var ErrTooLarge = errors.New("tpm bundle: too large")

// Unmarshal decodes a bundle strictly (see the package documentation).
func Unmarshal(data []byte) (*Bundle, error) {
	if len(data) > MaxSize {
		return nil, malformed("%d bytes exceeds %d", len(data), MaxSize)
	}
	var b Bundle
	if err := decMode.Unmarshal(data, &b); err != nil {
		return nil, malformed("%v", err)
	}
	if err := b.check(); err != nil {
		return nil, err
	}
	// One encoding per bundle: what we would write is what we read.
	again, err := encMode.Marshal(&b)
	if err != nil || !bytes.Equal(again, data) {
		return nil, malformed("not in deterministic encoding")
	}
	return &b, nil // the decoder copies byte strings
}

func (b *Bundle) check() error {
	switch {
	case len(b.Quote) == 0:
		return malformed("missing quote (1)")
	case len(b.QuoteSig) == 0:
		return malformed("missing quote signature (2)")
	case len(b.AKPublic) == 0:
		return malformed("missing AK public area (3)")
	case len(b.PCRs) == 0:
		return malformed("missing PCR values (5)")
	}
	size := digestSize(b.PCRAlg)
	if size == 0 {
		return malformed("unsupported PCR bank algorithm 0x%04x", b.PCRAlg)
	}
	for i, v := range b.PCRs {
		if i > MaxPCR {
			return malformed("PCR index %d out of range", i)
		}
		if len(v) != size {
			return malformed("PCR %d value of %d bytes, want %d", i, len(v), size)
		}
	}
	for _, list := range [][][]byte{b.AKChain, b.EKCerts} {
		for _, c := range list {
			if len(c) == 0 {
				return malformed("empty certificate")
			}
		}
	}
	n := 0
	for _, f := range [][]byte{b.Certify, b.CertifySig, b.KeyPublic} {
		if len(f) != 0 {
			n++
		}
	}
	if n != 0 && n != 3 {
		return malformed("key attestation needs certify (9), certify-sig (10) and key-pub (11) together")
	}
	return nil
}

// HasKeyAttestation reports whether the bundle certifies a key.
func (b *Bundle) HasKeyAttestation() bool { return len(b.Certify) != 0 }

// digestSize returns the digest length of a TPM hash algorithm ID, or 0.
func digestSize(alg uint16) int {
	switch alg {
	case 0x0004: // TPM_ALG_SHA1
		return 20
	case 0x000B: // TPM_ALG_SHA256
		return 32
	case 0x000C: // TPM_ALG_SHA384
		return 48
	case 0x000D: // TPM_ALG_SHA512
		return 64
	}
	return 0
}

// Wrap encodes b and wraps it in a CBOR CMW record of type
// cmw.MediaTypeTPM2 with the evidence indicator.
func Wrap(b *Bundle) ([]byte, error) {
	enc, err := Marshal(b)
	if err != nil {
		return nil, err
	}
	out, err := cmw.MarshalEvidence(cmw.MediaTypeTPM2, enc)
	if err != nil {
		return nil, fmt.Errorf("tpm bundle: cmw: %w", err)
	}
	if len(out) > cmw.MaxSize {
		return nil, fmt.Errorf("%w: CMW of %d bytes exceeds %d (drop the event log or certificates)", ErrTooLarge, len(out), cmw.MaxSize)
	}
	return out, nil
}

// Unwrap takes a CMW record of type cmw.MediaTypeTPM2 with the evidence
// indicator (or none) apart and decodes its bundle. The CMW goes through
// package cmw's one record decoder (cmw.DecodeRecord: size limit,
// canonical encoding, exact media type, indicator).
func Unwrap(data []byte) (*Bundle, error) {
	r, err := cmw.DecodeRecord(data, cmw.MediaTypeTPM2, cmw.Evidence)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return Unmarshal(r.Value)
}
