package verifier

import (
	"context"

	"github.com/attested-tls/go-expat/cmw"
)

// RecordVerifier is a Verifier that also appraises a CMW record already
// decoded by package cmw. Dispatch decodes a CMW once and hands each record
// to VerifyRecord when the registered Verifier implements it, so a record is
// parsed once on its way (Verifiers that are not RecordVerifiers get the
// record's bytes).
//
// Every backend of this module implements Verify as VerifyCMW and starts
// VerifyRecord with ExpectRecord, so that a record gets the same decoding
// rules (package cmw's size limit, canonical encoding, record type and
// indicator) whichever path it takes.
type RecordVerifier interface {
	Verifier
	// VerifyRecord appraises rec, a record decoded by cmw.Decode, against
	// exp. Like Verify, it returns a Result only on acceptance.
	VerifyRecord(ctx context.Context, rec cmw.Record, exp *Expected) (*Result, error)
}

// DecodedVerifier is a Verifier that also appraises a CMW (record or
// collection) already decoded by package cmw: Dispatch, and
// verifier/composite's Verifier, which Dispatch.Collections hands a
// collection as decoded.
type DecodedVerifier interface {
	Verifier
	// VerifyDecoded appraises c, decoded by cmw.Decode, against exp. Like
	// Verify, it returns a Result only on acceptance.
	VerifyDecoded(ctx context.Context, c *cmw.CMW, exp *Expected) (*Result, error)
}

// VerifyCMW decodes b with package cmw (within cmw.MaxSize, in its
// canonical encoding, one record) and appraises the record with
// v.VerifyRecord. A CMW that does not decode, or is a collection, is a
// *RejectedError with Check "format" wrapping the *cmw.DecodeError.
func VerifyCMW(ctx context.Context, v RecordVerifier, b []byte, exp *Expected) (*Result, error) {
	c, err := cmw.Decode(b, nil)
	if err != nil {
		return nil, formatError(err)
	}
	rec, ok := c.Record()
	if !ok {
		return nil, formatError(&cmw.DecodeError{Reason: "a collection, not a record", Kind: cmw.ErrUnexpected})
	}
	return v.VerifyRecord(ctx, rec, exp)
}

// ExpectRecord returns nil when rec is a record of exactly mediaType whose
// indicator is ind or absent (cmw.Record.Expect), and otherwise a
// *RejectedError with Check "format" wrapping the *cmw.DecodeError (which
// matches cmw.ErrUnexpected).
func ExpectRecord(rec cmw.Record, mediaType string, ind cmw.Indicator) error {
	if err := rec.Expect(mediaType, ind); err != nil {
		return formatError(err)
	}
	return nil
}

// formatError is the rejection of a CMW that package cmw refused (err is a
// *cmw.DecodeError).
func formatError(err error) error {
	return Reject(CheckFormat, err, "")
}
