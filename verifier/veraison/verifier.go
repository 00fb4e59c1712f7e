package veraison

import (
	"context"
	"errors"
	"fmt"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/verifier"
)

// Verifier is a verifier.Verifier backed by a Veraison service.
//
// For Evidence (any CMW record other than an EAR) it works in the
// background-check model: the Evidence goes to Veraison in a session whose
// nonce is Expected.ReportData64(), so Veraison itself checks that the
// Evidence carries this connection's challenge, and the returned EAR must
// echo it (Client.Appraise).
//
// For an EAR record (cmw.MediaTypeEAR, the passport model, as produced by
// Passport) it contacts nobody: verifier/ear checks it as for Appraise
// (one of Config.EARKeys, eat_nonce the connection's ReportData64, at most
// MaxEARAge old, exp, an accepted tier).
type Verifier struct {
	c *Client
}

var _ verifier.Verifier = (*Verifier)(nil)

// NewVerifier returns a Verifier using c.
func NewVerifier(c *Client) *Verifier { return &Verifier{c: c} }

// Verify appraises b (a serialized CMW record) for exp.
func (v *Verifier) Verify(ctx context.Context, b []byte, exp *verifier.Expected) (*verifier.Result, error) {
	if exp == nil {
		return nil, errors.New("veraison: nil Expected")
	}
	rd, err := exp.ReportData64()
	if err != nil {
		return nil, fmt.Errorf("veraison: %w", err)
	}
	dec, rec, err := decodeRecord(b)
	if err != nil {
		return nil, err
	}
	if cmw.EqualMediaTypes(rec.MediaType, cmw.MediaTypeEAR) {
		ev, err := v.c.earChecker(ctx)
		if err != nil {
			return nil, err
		}
		res, err := ev.VerifyRecord(ctx, rec, exp)
		if err != nil {
			return nil, err
		}
		v.c.adopt(res, verifier.Passport)
		return res, nil
	}
	a, err := v.c.appraise(ctx, dec, b, rd[:])
	if err != nil {
		return nil, err
	}
	res := a.Result
	res.MediaType = rec.MediaType
	res.AppraisedAt = v.c.cfg.Time()
	return res, nil
}

// Passport is an attester.Attester for the passport model: it obtains
// Evidence from Evidence, has Veraison appraise it in a session whose nonce
// is ch.ReportData64(), and presents the resulting EAR as a CMW record of
// media type cmw.MediaTypeEAR (indicator attestation results). The relying
// party checks the EAR's signature, status and eat_nonce (verifier/ear, or
// Verifier above).
type Passport struct {
	Evidence attester.Attester
	Client   *Client
}

var _ attester.Attester = (*Passport)(nil)

// Attest returns the EAR record. It fails, like Verifier, when Veraison does
// not affirm the Evidence: an attester does not present a failing passport.
func (p *Passport) Attest(ctx context.Context, ch attester.Challenge) ([]byte, error) {
	rd, err := ch.ReportData64()
	if err != nil {
		return nil, fmt.Errorf("veraison: %w", err)
	}
	ev, err := p.Evidence.Attest(ctx, ch)
	if err != nil {
		return nil, err
	}
	a, err := p.Client.Appraise(ctx, ev, rd[:])
	if err != nil {
		return nil, err
	}
	rec, err := cmw.NewRecord(cmw.MediaTypeEAR, a.EAR, cmw.AttestationResults)
	if err != nil {
		return nil, fmt.Errorf("veraison: %w", err)
	}
	return rec.MarshalCBOR()
}
