package ear

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/lestrrat-go/jwx/v3/jws"
	vear "github.com/veraison/ear"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/verifier"
)

// DefaultValidity is the exp - iat of EARs from an Issuer without Validity.
const DefaultValidity = 5 * time.Minute

// Issuer is a local Verifier that appraises Evidence with Appraiser and
// issues a signed EAR for what it accepts. It must not be modified while in
// use.
type Issuer struct {
	// Appraiser appraises the Evidence (any verifier.Verifier). Required.
	Appraiser verifier.Verifier
	// Key signs the EAR: an ECDSA P-256 (ES256) or P-384 (ES384) key or an
	// Ed25519 key, as a crypto.Signer (so it may live in an HSM). Required.
	Key crypto.Signer
	// KeyID, when set, is the JWT header's kid.
	KeyID string
	// Name is the iss claim and the verifier-id developer; "" means
	// "go-expat local issuer".
	Name string
	// Validity sets exp = iat + Validity; 0 means DefaultValidity.
	Validity time.Duration
	// KeyAttestation adds Veraison's ear.veraison.key-attestation with
	// akpub = Expected.SPKI (which must then be set).
	KeyAttestation bool
	// Time is the clock for iat; nil means time.Now.
	Time func() time.Time
	// Rand is the source of key-bound issuance nonces (NewKeyRequest);
	// nil means crypto/rand.
	Rand io.Reader
}

// Issue appraises evidence against exp with the Appraiser and, if it is
// accepted, returns a signed EAR (compact JWT) carrying eat_nonce =
// Nonce(exp), the appraisal's trust vector and status (lowered to what the
// vector supports, see Status) in a submodule named after its Technology,
// and optionally the key attestation. A rejection by
// the Appraiser is returned as is; no EAR is issued for it.
func (i *Issuer) Issue(ctx context.Context, evidence []byte, exp *verifier.Expected) ([]byte, *verifier.Result, error) {
	if err := i.check(); err != nil {
		return nil, nil, err
	}
	if exp == nil {
		return nil, nil, errors.New("ear: nil Expected")
	}
	nonce, err := Nonce(exp)
	if err != nil {
		return nil, nil, err
	}
	var akpub []byte
	if i.KeyAttestation {
		if len(exp.SPKI) == 0 {
			return nil, nil, errors.New("ear: key attestation needs Expected.SPKI")
		}
		akpub = exp.SPKI
	}
	return i.issue(ctx, evidence, exp, &nonce, akpub)
}

// check reports whether the Issuer can sign.
func (i *Issuer) check() error {
	if i.Appraiser == nil || i.Key == nil {
		return errors.New("ear: Issuer needs an Appraiser and a Key")
	}
	if _, ok := algFor(i.Key.Public()); !ok {
		return fmt.Errorf("ear: unsupported issuer key %T", i.Key.Public())
	}
	return nil
}

func (i *Issuer) now() time.Time {
	if i.Time != nil {
		return i.Time()
	}
	return time.Now()
}

func (i *Issuer) validity() time.Duration {
	if i.Validity <= 0 {
		return DefaultValidity
	}
	return i.Validity
}

// issue appraises evidence against exp and signs the EAR: with eat_nonce
// when nonce is set, with the key attestation of akpub when it is set.
func (i *Issuer) issue(ctx context.Context, evidence []byte, exp *verifier.Expected, nonce *string, akpub []byte) ([]byte, *verifier.Result, error) {
	alg, _ := algFor(i.Key.Public())
	res, err := i.Appraiser.Verify(ctx, evidence, exp)
	if err != nil {
		return nil, nil, err
	}

	iat := i.now().Unix()
	name := i.Name
	if name == "" {
		name = "go-expat local issuer"
	}
	submod := res.Technology
	if submod == "" {
		submod = "evidence"
	}
	build := "go-expat verifier/ear"
	profile := vear.EatProfile
	tv := res.TrustVector
	// The issued status never claims more than the vector supports.
	status := vear.TrustTier(Status(res.Status, tv))
	appraisal := &vear.Appraisal{
		Status: &status,
		TrustVector: &vear.TrustVector{
			InstanceIdentity: vear.TrustClaim(tv.InstanceIdentity),
			Configuration:    vear.TrustClaim(tv.Configuration),
			Executables:      vear.TrustClaim(tv.Executables),
			FileSystem:       vear.TrustClaim(tv.FileSystem),
			Hardware:         vear.TrustClaim(tv.Hardware),
			RuntimeOpaque:    vear.TrustClaim(tv.RuntimeOpaque),
			StorageOpaque:    vear.TrustClaim(tv.StorageOpaque),
			SourcedData:      vear.TrustClaim(tv.SourcedData),
		},
	}
	if akpub != nil {
		appraisal.VeraisonKeyAttestation = &map[string]interface{}{
			"akpub": base64.RawURLEncoding.EncodeToString(akpub),
		}
	}
	ar := vear.AttestationResult{
		Profile:    &profile,
		VerifierID: &vear.VerifierIdentity{Build: &build, Developer: &name},
		IssuedAt:   &iat,
		Nonce:      nonce,
		Submods:    map[string]*vear.Appraisal{submod: appraisal},
	}
	body, err := ar.MarshalJSON() // validates
	if err != nil {
		return nil, nil, fmt.Errorf("ear: %w", err)
	}
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(body, &claims); err != nil {
		return nil, nil, fmt.Errorf("ear: %w", err)
	}
	claims["iss"], _ = json.Marshal(name)
	claims["exp"], _ = json.Marshal(iat + int64(i.validity()/time.Second))
	payload, err := json.Marshal(claims)
	if err != nil {
		return nil, nil, fmt.Errorf("ear: %w", err)
	}

	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.TypeKey, "JWT"); err != nil {
		return nil, nil, fmt.Errorf("ear: %w", err)
	}
	if i.KeyID != "" {
		if err := hdr.Set(jws.KeyIDKey, i.KeyID); err != nil {
			return nil, nil, fmt.Errorf("ear: %w", err)
		}
	}
	token, err := jws.Sign(payload, jws.WithKey(supportedAlgs[alg], i.Key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return nil, nil, fmt.Errorf("ear: signing: %w", err)
	}
	return token, res, nil
}

// passportRecord wraps an EAR in the CMW record a passport attester
// returns: cmw.MediaTypeEAR, indicator attestation results, CBOR.
func passportRecord(token []byte) ([]byte, error) {
	rec, err := cmw.NewRecord(cmw.MediaTypeEAR, token, cmw.AttestationResults)
	if err != nil {
		return nil, err
	}
	return rec.Marshal()
}

// PassportAttester is an attester.Attester for the passport model: it
// obtains Evidence for the challenge, has the Issuer appraise it, and
// returns the EAR in a CMW record (cmw.MediaTypeEAR, indicator attestation
// results, CBOR).
type PassportAttester struct {
	// Evidence produces the Evidence. Required.
	Evidence attester.Attester
	// Issuer appraises it and signs the EAR. Required.
	Issuer *Issuer
	// SPKI and PublicKey are the Exported Authenticator's key, passed to
	// the Issuer's appraisal (and used for key attestation). Optional.
	SPKI      []byte
	PublicKey crypto.PublicKey
}

var _ attester.Attester = (*PassportAttester)(nil)

// Attest implements attester.Attester.
func (p *PassportAttester) Attest(ctx context.Context, ch attester.Challenge) ([]byte, error) {
	if p.Evidence == nil || p.Issuer == nil {
		return nil, errors.New("ear: PassportAttester needs Evidence and Issuer")
	}
	ev, err := p.Evidence.Attest(ctx, ch)
	if err != nil {
		return nil, err
	}
	token, _, err := p.Issuer.Issue(ctx, ev, &verifier.Expected{
		Challenge: ch, SPKI: p.SPKI, PublicKey: p.PublicKey, Now: p.Issuer.now(),
	})
	if err != nil {
		return nil, fmt.Errorf("ear: local appraisal: %w", err)
	}
	return passportRecord(token)
}
