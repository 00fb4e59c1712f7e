package sevsnp

import (
	"bytes"

	"github.com/fxamacker/cbor/v2"
	veraisoncmw "github.com/veraison/cmw"

	expatcmw "github.com/attested-tls/go-expat/cmw"
)

// MaxCMWSize bounds the serialized CMW (the cmw_attestation extension
// carries at most 65535 bytes).
const MaxCMWSize = 65535

// cmwRecord is a CMW CBOR record: [type, value, ?indicator].
type cmwRecord struct {
	_     struct{} `cbor:",toarray"`
	Type  string
	Value []byte
	Ind   *uint64 `cbor:",omitempty"`
}

var cmwDec, cmwEnc = func() (cbor.DecMode, cbor.EncMode) {
	dm, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
		MaxNestedLevels:  4,
		MaxArrayElements: 16,
		MaxMapPairs:      16,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return dm, em
}()

// decodeCMW returns the Evidence bytes of a CMW record of our media type.
func decodeCMW(b []byte) ([]byte, error) {
	if len(b) == 0 || len(b) > MaxCMWSize {
		return nil, reject("format", "CMW is %d bytes, want 1..%d", len(b), MaxCMWSize)
	}
	if b[0] != 0x82 && b[0] != 0x83 {
		return nil, reject("format", "CMW is not a CBOR record (first byte 0x%02x)", b[0])
	}
	var r cmwRecord
	if err := cmwDec.Unmarshal(b, &r); err != nil {
		return nil, rejectErr("format", "CMW record", err)
	}
	if r.Type != expatcmw.MediaTypeSEVSNP {
		return nil, reject("format", "CMW media type %q is not %q", r.Type, expatcmw.MediaTypeSEVSNP)
	}
	if r.Ind != nil && *r.Ind != veraisoncmw.Evidence {
		return nil, reject("format", "CMW indicator %d is not evidence", *r.Ind)
	}
	if re, err := cmwEnc.Marshal(&r); err != nil || !bytes.Equal(re, b) {
		return nil, reject("format", "CMW record is not in deterministic CBOR encoding")
	}
	return r.Value, nil
}
