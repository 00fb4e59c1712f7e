package tpm

import (
	"bytes"
	"context"
	"crypto"
	"errors"

	"github.com/attested-tls/go-expat/attester/tpm/bundle"
	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/verifier"
)

// BoundAK appraises a vTPM's quote bundle as a bound item of a composite
// (a verifier/composite Kind): its attestation key is trusted because the
// composite's anchor (a SEV-SNP or TDX report) commits to it, not because
// it is pinned or certified. The key the anchor commits to is the AK's
// TPMT_PUBLIC, exactly as the bundle carries it (bundle key 3). Everything
// else is Verifier's appraisal with the caller's Config: PCR policy, event
// log, key attestation, against the channel's challenge.
type BoundAK struct {
	cfg Config
}

// NewBoundAK checks cfg as New does and returns a BoundAK. cfg must trust
// no AK of its own (TrustedAKs and AKRoots empty): the only AK a BoundAK
// trusts, per appraisal, is the one the anchor vouched for.
func NewBoundAK(cfg *Config) (*BoundAK, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if len(c.TrustedAKs) != 0 || c.AKRoots != nil {
		return nil, errors.New("tpm: a bound AK is trusted through the anchor: set no TrustedAKs or AKRoots")
	}
	if _, err := New(&c); err != nil {
		return nil, err
	}
	return &BoundAK{cfg: c}, nil
}

// BoundKey returns the AK's TPMT_PUBLIC from rec, a CMW record of
// cmw.MediaTypeTPM2 (indicator evidence or none) whose bundle decodes
// strictly and whose AK has the shape Verifier accepts. A record that does
// not is a *verifier.RejectedError (CheckFormat, CheckAK).
func (b *BoundAK) BoundKey(rec cmw.Record) ([]byte, error) {
	if err := verifier.ExpectRecord(rec, cmw.MediaTypeTPM2, cmw.Evidence); err != nil {
		return nil, err
	}
	bu, err := bundle.Unmarshal(rec.Value)
	if err != nil {
		return nil, verifier.Reject(verifier.CheckFormat, err, "tpm: undecodable TPM quote bundle")
	}
	if _, _, err := parseAK(bu.AKPublic); err != nil {
		return nil, verifier.Reject(verifier.CheckAK, err, "tpm: unacceptable attestation key")
	}
	return bytes.Clone(bu.AKPublic), nil
}

// VerifyBound appraises rec against exp like Verifier.VerifyRecord, with
// key (the TPMT_PUBLIC that BoundKey returned and the anchor vouched for)
// as the only trusted AK.
func (b *BoundAK) VerifyBound(ctx context.Context, rec cmw.Record, key []byte, exp *verifier.Expected) (*verifier.Result, error) {
	if b == nil {
		return nil, verifier.Reject(verifier.CheckAK, nil, "tpm: no bound AK configured")
	}
	_, k, err := parseAK(key)
	if err != nil {
		return nil, verifier.Reject(verifier.CheckAK, err, "tpm: unacceptable attestation key")
	}
	c := b.cfg
	c.TrustedAKs = []crypto.PublicKey{k}
	v, err := New(&c)
	if err != nil {
		return nil, err
	}
	res, err := v.VerifyRecord(ctx, rec, exp)
	if err != nil {
		return nil, err
	}
	res.Claims["ak-trust"] = "anchor"
	return res, nil
}
