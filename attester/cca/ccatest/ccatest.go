// Package ccatest is a TEST-ONLY software Arm CCA platform: it builds real
// CCA attestation tokens (platform token + realm token, CBOR tag 399) with
// github.com/veraison/ccatoken and signs them with keys generated in
// software. Its CPAK is trusted by nothing unless a test configures it (for
// example as a verifier/cca TrustedKey or as a trust anchor provisioned into
// a throwaway Veraison).
//
// Client returns a configfs-tsm client (go-configfs-tsm's fake, with its
// outblob hook replaced) that answers a report request the way Linux's
// arm_cca_guest provider does: the outblob is the token whose realm
// challenge is the 64-byte inblob. Never use this package outside tests.
package ccatest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/faketsm"
	"github.com/veraison/ccatoken"
	"github.com/veraison/ccatoken/platform"
	"github.com/veraison/ccatoken/realm"
	cose "github.com/veraison/go-cose"
	"github.com/veraison/psatoken"
)

// Provider is the configfs-tsm provider name that the fake reports, the
// name of Linux's Arm CCA guest driver.
const Provider = "arm_cca_guest"

// SoftwareComponent is one measured platform firmware component.
type SoftwareComponent struct {
	Type     string
	Value    []byte
	SignerID []byte
	Version  string
}

// Claims are the values the test platform reports. Tests may change them
// between tokens, never concurrently with Token, Client or Attest calls.
type Claims struct {
	ImplementationID    []byte // 32 bytes
	InstanceID          []byte // 33 bytes, first byte 0x01 (a random UEID)
	Lifecycle           uint16 // e.g. 0x3000 secured, 0x4000 debug
	Config              []byte
	Software            []SoftwareComponent
	VerificationService string

	RIM                  []byte    // 32, 48 or 64 bytes
	REMs                 [4][]byte // each 32, 48 or 64 bytes
	PersonalizationValue []byte    // 64 bytes
	RealmHashAlg         string    // e.g. "sha-384"
}

// Platform is a software CCA platform with a CPAK and a RAK.
type Platform struct {
	mu     sync.Mutex
	cpak   *ecdsa.PrivateKey
	rak    *ecdsa.PrivateKey
	Claims Claims
}

// New returns a Platform with fresh P-384 keys (CPAK and RAK), random
// implementation and instance IDs, a secured lifecycle, two firmware
// components, random realm measurements and personalization value. rand
// nil means crypto/rand.
func New(r io.Reader) (*Platform, error) {
	if r == nil {
		r = rand.Reader
	}
	cpak, err := ecdsa.GenerateKey(elliptic.P384(), r)
	if err != nil {
		return nil, err
	}
	rak, err := ecdsa.GenerateKey(elliptic.P384(), r)
	if err != nil {
		return nil, err
	}
	rnd := func(n int) []byte {
		b := make([]byte, n)
		if _, err2 := io.ReadFull(r, b); err2 != nil && err == nil {
			err = err2
		}
		return b
	}
	inst := append([]byte{0x01}, rnd(32)...)
	p := &Platform{cpak: cpak, rak: rak, Claims: Claims{
		ImplementationID: rnd(32),
		InstanceID:       inst,
		Lifecycle:        platform.LifecycleSecuredMin,
		Config:           []byte("go-expat test platform config v1"),
		Software: []SoftwareComponent{
			{Type: "BL", Value: rnd(32), SignerID: rnd(32), Version: "1.0.0"},
			{Type: "RMM", Value: rnd(32), SignerID: rnd(32), Version: "2.1.0"},
		},
		VerificationService:  "https://veraison.example/v1/challenge-response",
		RIM:                  rnd(48),
		REMs:                 [4][]byte{rnd(48), rnd(48), rnd(48), rnd(48)},
		PersonalizationValue: rnd(64),
		RealmHashAlg:         "sha-384",
	}}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// CPAK returns the platform attestation public key.
func (p *Platform) CPAK() crypto.PublicKey { return &p.cpak.PublicKey }

// CPAKPEM returns the CPAK as a PEM "PUBLIC KEY" (SubjectPublicKeyInfo).
func (p *Platform) CPAKPEM() string {
	der, err := x509.MarshalPKIXPublicKey(&p.cpak.PublicKey)
	if err != nil {
		panic(err) // a P-384 ECDSA key always marshals
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// RAK returns the realm attestation public key.
func (p *Platform) RAK() crypto.PublicKey { return &p.rak.PublicKey }

// Token returns a CCA attestation token whose realm challenge is challenge
// (64 bytes), signed by the CPAK (platform token) and the RAK (realm token).
func (p *Platform) Token(challenge []byte) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.token(challenge, p.cpak, p.rak)
}

// TokenSignedBy is Token with other keys: a platform token signed by cpak
// and a realm token signed by rak, the realm token still naming this
// platform's RAK. It builds attacks (an untrusted CPAK, a substituted RAK).
func (p *Platform) TokenSignedBy(challenge []byte, cpak, rak crypto.Signer) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.token(challenge, cpak, rak)
}

func (p *Platform) token(challenge []byte, cpakSigner, rakSigner crypto.Signer) ([]byte, error) {
	c := &p.Claims
	pc := platform.NewClaims()
	if err := pc.SetImplID(c.ImplementationID); err != nil {
		return nil, fmt.Errorf("ccatest: implementation ID: %w", err)
	}
	if err := pc.SetInstID(c.InstanceID); err != nil {
		return nil, fmt.Errorf("ccatest: instance ID: %w", err)
	}
	if err := pc.SetSecurityLifeCycle(c.Lifecycle); err != nil {
		return nil, fmt.Errorf("ccatest: lifecycle: %w", err)
	}
	if err := pc.SetConfig(c.Config); err != nil {
		return nil, fmt.Errorf("ccatest: config: %w", err)
	}
	if err := pc.SetHashAlgID("sha-256"); err != nil {
		return nil, err
	}
	if err := pc.SetVSI(c.VerificationService); err != nil {
		return nil, fmt.Errorf("ccatest: verification service: %w", err)
	}
	var scs []psatoken.ISwComponent
	for _, s := range c.Software {
		s := s
		sc := &psatoken.SwComponent{
			MeasurementType:  &s.Type,
			MeasurementValue: &s.Value,
			SignerID:         &s.SignerID,
		}
		if s.Version != "" {
			sc.Version = &s.Version
		}
		scs = append(scs, sc)
	}
	if err := pc.SetSoftwareComponents(scs); err != nil {
		return nil, fmt.Errorf("ccatest: software components: %w", err)
	}

	rc := realm.NewClaims()
	if err := rc.SetChallenge(challenge); err != nil {
		return nil, fmt.Errorf("ccatest: challenge: %w", err)
	}
	if err := rc.SetPersonalizationValue(c.PersonalizationValue); err != nil {
		return nil, fmt.Errorf("ccatest: personalization value: %w", err)
	}
	if err := rc.SetInitialMeasurement(c.RIM); err != nil {
		return nil, fmt.Errorf("ccatest: RIM: %w", err)
	}
	if err := rc.SetExtensibleMeasurements(c.REMs[:]); err != nil {
		return nil, fmt.Errorf("ccatest: REMs: %w", err)
	}
	if err := rc.SetHashAlgID(c.RealmHashAlg); err != nil {
		return nil, err
	}
	// With the realm profile claim, the RAK is a CBOR-encoded COSE_Key.
	k, err := cose.NewKeyFromPublic(&p.rak.PublicKey)
	if err != nil {
		return nil, err
	}
	rakCBOR, err := k.MarshalCBOR()
	if err != nil {
		return nil, err
	}
	if err := rc.SetPubKey(rakCBOR); err != nil {
		return nil, fmt.Errorf("ccatest: RAK: %w", err)
	}
	if err := rc.SetPubKeyHashAlgID("sha-256"); err != nil {
		return nil, err
	}

	var ev ccatoken.Evidence
	// SetClaims sets the platform challenge to the hash of the RAK.
	if err := ev.SetClaims(pc, rc); err != nil {
		return nil, fmt.Errorf("ccatest: %w", err)
	}
	ps, err := signer(cpakSigner)
	if err != nil {
		return nil, err
	}
	rs, err := signer(rakSigner)
	if err != nil {
		return nil, err
	}
	return ev.ValidateAndSign(ps, rs)
}

func signer(k crypto.Signer) (cose.Signer, error) {
	pub, ok := k.Public().(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("ccatest: only ECDSA signers")
	}
	alg := cose.AlgorithmES384
	switch pub.Curve {
	case elliptic.P256():
		alg = cose.AlgorithmES256
	case elliptic.P521():
		alg = cose.AlgorithmES512
	}
	return cose.NewSigner(alg, k)
}

// Client returns a configfs-tsm client whose report subsystem answers like
// the arm_cca_guest provider with tokens from p. Each call returns a new,
// independent client.
func (p *Platform) Client() configfsi.Client {
	rs := faketsm.ReportV7(0)
	rs.ReadAttr = func(e *faketsm.ReportEntry, attr string) ([]byte, error) {
		switch attr {
		case "provider":
			return []byte(Provider + "\n"), nil
		case "outblob":
			in, ok := e.InAttrs["inblob"]
			if !ok || len(in.Value) != 64 {
				return nil, syscall.EINVAL
			}
			return p.Token(bytes.Clone(in.Value))
		}
		return nil, os.ErrNotExist
	}
	return &faketsm.Client{Subsystems: map[string]configfsi.Client{"report": rs}}
}

// CPAKSigner and RAKSigner return the private keys, for tests that build
// attacks with TokenSignedBy.
func (p *Platform) CPAKSigner() crypto.Signer { return p.cpak }

// RAKSigner returns the realm attestation private key.
func (p *Platform) RAKSigner() crypto.Signer { return p.rak }

// Clone returns a Platform with the same keys and a deep copy of the claims,
// so a test can change one claim and keep the original.
func (p *Platform) Clone() *Platform {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.Claims
	cl := func(b []byte) []byte { return bytes.Clone(b) }
	c.ImplementationID, c.InstanceID, c.Config = cl(c.ImplementationID), cl(c.InstanceID), cl(c.Config)
	c.RIM, c.PersonalizationValue = cl(c.RIM), cl(c.PersonalizationValue)
	for i := range c.REMs {
		c.REMs[i] = cl(c.REMs[i])
	}
	c.Software = nil
	for _, s := range p.Claims.Software {
		c.Software = append(c.Software, SoftwareComponent{Type: s.Type, Value: cl(s.Value), SignerID: cl(s.SignerID), Version: s.Version})
	}
	return &Platform{cpak: p.cpak, rak: p.rak, Claims: c}
}
