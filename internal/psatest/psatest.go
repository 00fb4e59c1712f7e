// Package psatest is TEST-ONLY: a software Arm PSA platform that builds real
// PSA attestation tokens (COSE_Sign1 over the PSA claims set) with
// github.com/veraison/psatoken and signs them with an Initial Attestation Key
// (IAK) generated in software. Its IAK is trusted by nothing unless a test
// provisions it (for example as a trust anchor of a throwaway Veraison).
// Never use this package outside tests.
//
// What it implements:
//
//   - profiles "http://arm.com/psa/2.0.0" (draft-tschofenig-rats-psa-token;
//     media type MediaTypeP2) and "PSA_IOT_PROFILE_1" (MediaTypeP1), both
//     built and validated by psatoken;
//   - the IETF profile "tag:psacertified.org,2023:psa#tfm" (RFC 9783,
//     MediaTypeTFM): the claims keys are those of the 2.0.0 profile, only the
//     eat_profile value differs. psatoken (up to the version Veraison
//     v0.0.2501 uses) does not know this profile, so such tokens are signed
//     without psatoken's validation and psatoken-based verifiers refuse them;
//   - the instance ID as PSA requires it: 0x01 (EAT UEID type RAND) followed
//     by SHA-256 of the IAK public key in the PSA export format, the
//     uncompressed point 0x04 || X || Y (InstanceIDFor);
//   - an attester.Attester (Attester) whose token nonce is the 64-byte
//     attester.Challenge.ReportData64(), wrapped as a CMW record (package cmw).
package psatest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/veraison/eat"
	cose "github.com/veraison/go-cose"
	"github.com/veraison/psatoken"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/cmw"
)

// Profiles (the token's profile claim) and the media types that Veraison
// v0.0.2501's PSA scheme (scheme/psa-iot) lists for them.
const (
	ProfileP2    = psatoken.Profile2Name // "http://arm.com/psa/2.0.0"
	ProfileP1    = psatoken.Profile1Name // "PSA_IOT_PROFILE_1"
	ProfileTFM   = "tag:psacertified.org,2023:psa#tfm"
	MediaTypeP2  = `application/eat-cwt; profile="http://arm.com/psa/2.0.0"`
	MediaTypeP1  = "application/psa-attestation-token"
	MediaTypeTFM = `application/eat+cwt; eat_profile="tag:psacertified.org,2023:psa#tfm"`
)

// LifecycleSecured is the PSA security lifecycle "secured" (0x3000).
const LifecycleSecured = psatoken.SecurityLifecycleSecuredMin

// SoftwareComponent is one measured software component of the PSA
// Root of Trust.
type SoftwareComponent struct {
	Type        string // measurement type, e.g. "BL", "PRoT"
	Value       []byte // measurement value: 32, 48 or 64 bytes
	SignerID    []byte // hash of the signing authority's key: 32, 48 or 64 bytes
	Version     string // optional
	Description string // optional measurement description (hash algorithm), e.g. "sha-256"
}

// Claims are the values the test platform reports. Tests may change them
// between tokens, never concurrently with Token or Attest calls.
type Claims struct {
	Profile                string // ProfileP2, ProfileP1 or ProfileTFM
	ImplementationID       []byte // 32 bytes
	InstanceID             []byte // 33 bytes: InstanceIDFor(IAK) unless a test changes it
	BootSeed               []byte // 32 bytes (8..32 for the 2.0.0 profile); nil omits it where optional
	Lifecycle              uint16 // e.g. LifecycleSecured; 0x4000.. debug
	ClientID               int32  // partition ID of the caller, >0 secure, <0 non-secure
	CertificationReference string // optional, EAN-13 or EAN-13+5
	VerificationService    string // optional
	Software               []SoftwareComponent
}

// Platform is a software PSA platform with a P-256 IAK.
type Platform struct {
	mu     sync.Mutex
	iak    *ecdsa.PrivateKey
	Claims Claims
}

// New returns a Platform with a fresh P-256 IAK, a random implementation ID,
// the instance ID derived from the IAK, a random boot seed, the secured
// lifecycle, profile ProfileP2 and four software components (BL, PRoT, ARoT,
// App) with random measurements and signer IDs. r nil means crypto/rand.
func New(r io.Reader) (*Platform, error) {
	if r == nil {
		r = rand.Reader
	}
	iak, err := ecdsa.GenerateKey(elliptic.P256(), r)
	if err != nil {
		return nil, fmt.Errorf("psatest: IAK: %w", err)
	}
	inst, err := InstanceIDFor(&iak.PublicKey)
	if err != nil {
		return nil, err
	}
	rnd := func(n int) []byte {
		b := make([]byte, n)
		if _, err2 := io.ReadFull(r, b); err2 != nil && err == nil {
			err = fmt.Errorf("psatest: random: %w", err2)
		}
		return b
	}
	p := &Platform{iak: iak, Claims: Claims{
		Profile:          ProfileP2,
		ImplementationID: rnd(32),
		InstanceID:       inst,
		BootSeed:         rnd(32),
		Lifecycle:        LifecycleSecured,
		ClientID:         1,
		Software: []SoftwareComponent{
			{Type: "BL", Value: rnd(32), SignerID: rnd(32), Version: "2.1.0", Description: "sha-256"},
			{Type: "PRoT", Value: rnd(32), SignerID: rnd(32), Version: "1.3.5", Description: "sha-256"},
			{Type: "ARoT", Value: rnd(32), SignerID: rnd(32), Version: "0.1.4", Description: "sha-256"},
			{Type: "App", Value: rnd(32), SignerID: rnd(32), Version: "3.0.0", Description: "sha-256"},
		},
	}}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// InstanceIDFor returns the PSA instance ID of an IAK: 0x01 || SHA-256 of
// the public key as the uncompressed point 0x04 || X || Y.
func InstanceIDFor(iak *ecdsa.PublicKey) ([]byte, error) {
	k, err := iak.ECDH()
	if err != nil {
		return nil, fmt.Errorf("psatest: IAK: %w", err)
	}
	return instanceID(k), nil
}

func instanceID(k *ecdh.PublicKey) []byte {
	h := sha256.Sum256(k.Bytes())
	return append([]byte{0x01}, h[:]...)
}

// IAK returns the public Initial Attestation Key.
func (p *Platform) IAK() *ecdsa.PublicKey { return &p.iak.PublicKey }

// IAKSigner returns the private IAK, for tests that build attacks.
func (p *Platform) IAKSigner() crypto.Signer { return p.iak }

// IAKPEM returns the IAK as a PEM "PUBLIC KEY" (SubjectPublicKeyInfo), the
// form Veraison's PSA trust anchors take.
func (p *Platform) IAKPEM() string {
	der, err := x509.MarshalPKIXPublicKey(&p.iak.PublicKey)
	if err != nil {
		panic(err) // a P-256 ECDSA key always marshals
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// Token returns a PSA attestation token (an untagged COSE_Sign1, ES256)
// whose nonce is nonce (32, 48 or 64 bytes), signed by the IAK.
func (p *Platform) Token(nonce []byte) ([]byte, error) {
	return p.TokenSignedBy(nonce, p.iak)
}

// TokenSignedBy is Token signed by another ECDSA key (the claims, instance
// ID included, stay this platform's): a token the provisioned IAK does not
// verify.
func (p *Platform) TokenSignedBy(nonce []byte, k crypto.Signer) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := &p.Claims
	profile := c.Profile
	if profile == ProfileTFM {
		// Same claims keys as 2.0.0; only eat_profile differs (RFC 9783).
		profile = ProfileP2
	}
	claims, err := psatoken.NewClaims(profile)
	if err != nil {
		return nil, fmt.Errorf("psatest: %w", err)
	}
	set := []struct {
		name string
		err  error
	}{
		{"implementation ID", claims.SetImplID(bytes.Clone(c.ImplementationID))},
		{"instance ID", claims.SetInstID(bytes.Clone(c.InstanceID))},
		{"lifecycle", claims.SetSecurityLifeCycle(c.Lifecycle)},
		{"client ID", claims.SetClientID(c.ClientID)},
		{"nonce", claims.SetNonce(bytes.Clone(nonce))},
	}
	if c.BootSeed != nil {
		set = append(set, struct {
			name string
			err  error
		}{"boot seed", claims.SetBootSeed(bytes.Clone(c.BootSeed))})
	}
	if c.CertificationReference != "" {
		set = append(set, struct {
			name string
			err  error
		}{"certification reference", claims.SetCertificationReference(c.CertificationReference)})
	}
	if c.VerificationService != "" {
		set = append(set, struct {
			name string
			err  error
		}{"verification service", claims.SetVSI(c.VerificationService)})
	}
	var scs []psatoken.ISwComponent
	for _, s := range c.Software {
		sc := &psatoken.SwComponent{}
		if err := errors.Join(sc.SetMeasurementType(s.Type), sc.SetMeasurementValue(bytes.Clone(s.Value)), sc.SetSignerID(bytes.Clone(s.SignerID))); err != nil {
			return nil, fmt.Errorf("psatest: software component %q: %w", s.Type, err)
		}
		if s.Version != "" {
			v := s.Version
			sc.Version = &v
		}
		if s.Description != "" {
			if err := sc.SetMeasurementDesc(s.Description); err != nil {
				return nil, fmt.Errorf("psatest: software component %q: %w", s.Type, err)
			}
		}
		scs = append(scs, sc)
	}
	set = append(set, struct {
		name string
		err  error
	}{"software components", claims.SetSoftwareComponents(scs)})
	for _, s := range set {
		if s.err != nil {
			return nil, fmt.Errorf("psatest: %s: %w", s.name, s.err)
		}
	}
	signer, err := cose.NewSigner(cose.AlgorithmES256, k)
	if err != nil {
		return nil, fmt.Errorf("psatest: %w", err)
	}
	// Validate against the 2.0.0 (or 1) profile before any profile swap.
	if err := claims.Validate(); err != nil {
		return nil, fmt.Errorf("psatest: %w", err)
	}
	if c.Profile == ProfileTFM {
		p2, ok := claims.(*psatoken.P2Claims)
		if !ok {
			return nil, errors.New("psatest: unexpected claims type")
		}
		var prof eat.Profile
		if err := prof.Set(ProfileTFM); err != nil {
			return nil, fmt.Errorf("psatest: %w", err)
		}
		p2.Profile = &prof
	}
	// Sign, not ValidateAndSign: the claims were validated above, and
	// psatoken would refuse the TFM profile name.
	ev := psatoken.Evidence{Claims: claims}
	b, err := ev.Sign(signer)
	if err != nil {
		return nil, fmt.Errorf("psatest: %w", err)
	}
	return b, nil
}

// Clone returns a Platform with the same IAK and a deep copy of the claims,
// so a test can change one claim and keep the original.
func (p *Platform) Clone() *Platform {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.Claims
	cl := bytes.Clone
	c.ImplementationID, c.InstanceID, c.BootSeed = cl(c.ImplementationID), cl(c.InstanceID), cl(c.BootSeed)
	c.Software = nil
	for _, s := range p.Claims.Software {
		s.Value, s.SignerID = cl(s.Value), cl(s.SignerID)
		c.Software = append(c.Software, s)
	}
	return &Platform{iak: p.iak, Claims: c}
}

// MediaType returns the media type for the platform's profile.
func (p *Platform) MediaType() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch p.Claims.Profile {
	case ProfileP1:
		return MediaTypeP1
	case ProfileTFM:
		return MediaTypeTFM
	default:
		return MediaTypeP2
	}
}

// Attester is an attester.Attester for a test PSA platform: the token's
// nonce is ch.ReportData64() and the token goes out as a CBOR CMW record of
// the platform profile's media type (or MediaType, if set).
type Attester struct {
	Platform  *Platform
	MediaType string // "" means Platform.MediaType()
}

var _ attester.Attester = (*Attester)(nil)

// Attest returns the CMW record carrying a token bound to ch.
func (a *Attester) Attest(ctx context.Context, ch attester.Challenge) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if a.Platform == nil {
		return nil, errors.New("psatest: nil Platform")
	}
	rd, err := ch.ReportData64()
	if err != nil {
		return nil, fmt.Errorf("psatest: %w", err)
	}
	tok, err := a.Platform.Token(rd[:])
	if err != nil {
		return nil, err
	}
	mt := a.MediaType
	if mt == "" {
		mt = a.Platform.MediaType()
	}
	b, err := cmw.MarshalEvidence(mt, tok)
	if err != nil {
		return nil, fmt.Errorf("psatest: %w", err)
	}
	return b, nil
}
