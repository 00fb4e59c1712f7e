package expat

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// MarshalExtensionData encodes the data of a filled cmw_attestation
// extension: `opaque cmw<1..2^16-1>` (draft -04, Section 4), that is a u16
// length followed by the CMW.
func MarshalExtensionData(cmw []byte) ([]byte, error) {
	if len(cmw) == 0 {
		return nil, fmt.Errorf("expat: empty CMW")
	}
	if len(cmw) > MaxCMWSize {
		return nil, fmt.Errorf("expat: CMW of %d bytes exceeds %d", len(cmw), MaxCMWSize)
	}
	var b cryptobyte.Builder
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(cmw) })
	return b.Bytes()
}

// ParseExtensionData decodes the data of a filled cmw_attestation extension
// and returns a copy of the CMW. It rejects an empty CMW, a length that
// disagrees with the data and trailing bytes.
func ParseExtensionData(data []byte) ([]byte, error) {
	s := cryptobyte.String(data)
	var cmw cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&cmw) || !s.Empty() {
		return nil, fmt.Errorf("expat: malformed cmw_attestation extension")
	}
	if len(cmw) == 0 {
		return nil, fmt.Errorf("expat: empty CMW in cmw_attestation extension")
	}
	return append([]byte(nil), cmw...), nil
}
