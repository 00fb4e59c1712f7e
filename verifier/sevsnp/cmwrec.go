package sevsnp

import (
	"bytes"

	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/verifier"
)

// MaxCMWSize bounds the serialized CMW (the cmw_attestation extension
// carries at most 65535 bytes).
const MaxCMWSize = 65535

// cmwLimits: a SEV-SNP CMW is one record, never a collection.
var cmwLimits = &cmw.Limits{MaxSize: MaxCMWSize, MaxDepth: 1, MaxItems: 1}

// decodeCMW returns the Evidence bytes of a CMW record of our media type.
// The CMW goes through package cmw's strict decoder; on top of it, only a
// CBOR record (not the JSON or tag form) whose indicator is absent or
// "evidence" is accepted, and it must re-encode to exactly its bytes
// (deterministic CBOR, so that a record has one encoding).
func decodeCMW(b []byte) ([]byte, error) {
	c, err := cmw.Decode(b, cmwLimits)
	if err != nil {
		return nil, verifier.Reject(verifier.CheckFormat, err, "sevsnp: CMW")
	}
	r, ok := c.Record()
	if !ok || c.Format() != cmw.FormatCBORRecord {
		return nil, verifier.Reject(verifier.CheckFormat, nil, "sevsnp: CMW is a %v, want a CBOR record", c.Format())
	}
	if !cmw.EqualMediaTypes(r.MediaType, cmw.MediaTypeSEVSNP) {
		return nil, verifier.Reject(verifier.CheckFormat, nil, "sevsnp: CMW media type %q is not %q", r.MediaType, cmw.MediaTypeSEVSNP)
	}
	if r.Indicator != 0 && r.Indicator != cmw.Evidence {
		return nil, verifier.Reject(verifier.CheckFormat, nil, "sevsnp: CMW indicator %v is not evidence", r.Indicator)
	}
	if re, err := c.MarshalCBOR(); err != nil || !bytes.Equal(re, b) {
		return nil, verifier.Reject(verifier.CheckFormat, nil, "sevsnp: CMW record is not in deterministic CBOR encoding")
	}
	return r.Value, nil
}
