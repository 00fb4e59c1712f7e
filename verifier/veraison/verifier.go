package veraison

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/verifier"
	expatear "github.com/attested-tls/go-expat/verifier/ear"
)

// Verifier is a verifier.Verifier backed by a Veraison service.
//
// For Evidence (any CMW record other than an EAR) it works in the
// background-check model: the Evidence goes to Veraison in a session whose
// nonce is Expected.Challenge.ReportData64(), so Veraison itself checks that
// the Evidence carries this connection's challenge, and the returned EAR
// must echo it.
//
// For an EAR record (cmw.MediaTypeEAR, the passport model, as produced by
// Passport) it contacts nobody: the EAR must be signed by the service's key,
// echo ReportData64() in eat_nonce, be at most MaxEARAge old and have an
// accepted status.
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
	dec, err := cmw.Decode(b, nil)
	if err != nil {
		return nil, verifier.Reject(verifier.CheckFormat, err, "veraison: CMW")
	}
	rec, ok := dec.Record()
	if !ok {
		return nil, verifier.Reject(verifier.CheckFormat, nil, "veraison: CMW collections are not supported by Veraison")
	}
	if cmw.EqualMediaTypes(rec.MediaType, cmw.MediaTypeEAR) {
		if err := verifier.ExpectRecord(rec, cmw.MediaTypeEAR, cmw.AttestationResults); err != nil {
			return nil, err
		}
		return v.verifyPassport(ctx, rec.Value, rd[:], exp)
	}
	a, err := v.c.Appraise(ctx, b, rd[:])
	if err != nil {
		return nil, err
	}
	res := toResult(a, verifier.BackgroundCheck, v.c.URL())
	res.MediaType = rec.MediaType
	res.AppraisedAt = v.c.cfg.Time()
	return res, nil
}

func (v *Verifier) verifyPassport(ctx context.Context, raw, nonce []byte, exp *verifier.Expected) (*verifier.Result, error) {
	key, alg, err := v.c.earKey(ctx)
	if err != nil {
		return nil, err
	}
	a, err := v.c.check(raw, key, alg, nonce)
	if err != nil {
		return nil, err
	}
	now := exp.Now
	if now.IsZero() {
		now = v.c.cfg.Time()
	}
	iat := time.Unix(*a.Result.IssuedAt, 0)
	if age := now.Sub(iat); age > v.c.cfg.MaxEARAge || age < -time.Minute {
		return nil, verifier.Reject(verifier.CheckAge, nil, "veraison: EAR issued at %v, %v before the appraisal (limit %v)", iat.UTC(), age, v.c.cfg.MaxEARAge)
	}
	res := toResult(a, verifier.Passport, v.c.URL())
	res.MediaType = cmw.MediaTypeEAR
	res.AppraisedAt = iat
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

// toResult maps an EAR onto verifier.Result: the status is the
// verifier.WorstTier of the submodules' statuses, each trust-vector claim
// the verifier.WorstClaim over the submodules.
func toResult(a *Appraisal, m verifier.Model, who string) *verifier.Result {
	r := a.Result
	res := &verifier.Result{
		Model:    m,
		Verifier: who,
		EAR:      a.EAR,
		Claims:   map[string]string{},
		Status:   verifier.TierAffirming,
	}
	names := make([]string, 0, len(r.Submods))
	for n := range r.Submods {
		names = append(names, n)
	}
	sort.Strings(names)
	for i, n := range names {
		sm := r.Submods[n]
		st := verifier.Tier(*sm.Status)
		res.Claims["submod."+n+".status"] = st.String()
		res.Status = verifier.WorstTier(res.Status, st)
		if sm.AppraisalPolicyID != nil {
			res.Claims["submod."+n+".policy"] = *sm.AppraisalPolicyID
		}
		var tv verifier.TrustVector
		if sm.TrustVector != nil {
			tv = expatear.TrustVectorOf(sm.TrustVector)
		}
		if i == 0 {
			res.TrustVector = tv
		} else {
			res.TrustVector.Merge(tv)
		}
	}
	switch {
	case len(names) == 1 && names[0] == "CCA_SSD_PLATFORM", hasPrefix(names, "CCA_"):
		res.Technology = "cca"
	case hasPrefix(names, "PSA_"):
		res.Technology = "psa"
	case hasPrefix(names, "TPM_"):
		res.Technology = "tpm2"
	}
	if r.VerifierID != nil && r.VerifierID.Build != nil {
		res.Claims["ear.verifier-id.build"] = *r.VerifierID.Build
	}
	return res
}

func hasPrefix(names []string, p string) bool {
	for _, n := range names {
		if len(n) >= len(p) && n[:len(p)] == p {
			return true
		}
	}
	return false
}

func sortStrings(s []string) []string { sort.Strings(s); return s }
