// Package testkit is TEST ONLY: trusted by nothing unless a test wires its
// verifier in. It provides a software Attester and the matching Verifier,
// for go-expat's tests and for users' own tests and CI, where no TPM or TEE
// is at hand (with package expattest, one directory up, for the loopback
// connections). Its Evidence proves nothing about any platform: it is
// signed by a throwaway key held in ordinary memory. Nothing in go-expat
// trusts that key unless a test passes it explicitly to
// Verifier.TrustedKeys, and the zero Verifier rejects everything. No
// production code path should import this package; go-expat's library
// packages never do (a test checks it with go list).
//
// # Evidence format (cmw.MediaTypeTestKit)
//
// A CMW record (indicator evidence) wrapping a tagged COSE_Sign1
// (github.com/veraison/go-cose, ES256, protected header: alg and kid =
// SHA-256 of the signer's DER SubjectPublicKeyInfo) whose payload is an
// EAT claims set (github.com/veraison/eat, CBOR) with:
//
//	eat_nonce (10)      the challenge's ReportData64 (64 bytes)
//	iat (6)             the attester's clock
//	swname (270)        Attester.SoftwareName
//	swversion (271)     Attester.SoftwareVersion
//	measurements (273)  one entry per Attester.Measurements, each of content
//	                    format MeasurementContentFormat whose value is a
//	                    CBOR measured-component {1: [name], 2: [1, digest]}
//	                    (hash-alg-id 1 = sha-256 per the IANA registry,
//	                    whatever the digest length).
//	bootseed (268)      only when Attester.PadTo asks for padding.
//
// # Misbehaviour
//
// The Attester's FixedChallenge, SignWith, Delay, Err, Garbage and PadTo
// fields make it misbehave on purpose so that go-expat's attack tests can
// build stale, replayed, forged, slow, failing, garbled and oversized
// attestations for real.
package testkit

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/eat"
	"github.com/veraison/go-cose"
	"github.com/veraison/swid"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/internal/strictcbor"
	"github.com/attested-tls/go-expat/verifier"
)

const (
	// Technology is the Result.Technology of accepted test-kit Evidence.
	Technology = "test-kit"
	// MeasurementContentFormat is the content format of the test kit's
	// measurement entries: CoAP Content-Format 65000 is in the experimental
	// range, it is not a registered type.
	MeasurementContentFormat = 65000
	// DefaultVerifierName is the Result.Verifier of a Verifier without a
	// Name.
	DefaultVerifierName = "go-expat test-kit verifier (TEST ONLY)"
)

// GenerateKey returns a fresh, throwaway P-256 key for an Attester. It is
// trusted by nothing.
func GenerateKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// KeyID returns the kid the test kit uses for pub: SHA-256 of its DER
// SubjectPublicKeyInfo.
func KeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("testkit: %w", err)
	}
	sum := sha256.Sum256(der)
	return sum[:], nil
}

// Attester is the TEST-ONLY software attester. The zero value is not
// usable: Key is required. Safe for concurrent use if not modified.
type Attester struct {
	// Key signs the Evidence (ECDSA P-256, ES256). Required.
	Key *ecdsa.PrivateKey
	// SoftwareName and SoftwareVersion are reported as swname and
	// swversion. Defaults: "go-expat-testkit" and "0.0.0-test".
	SoftwareName    string
	SoftwareVersion string
	// Measurements are reported as measured components (name, digest).
	Measurements []verifier.Measurement
	// Rand is the signature randomness; nil means crypto/rand.
	Rand io.Reader
	// Time is the clock for iat; nil means time.Now.
	Time func() time.Time

	// Test behaviours. Each one makes the attester misbehave on purpose.

	// FixedChallenge, when set, is signed instead of the challenge passed
	// to Attest: stale or replayed Evidence.
	FixedChallenge *attester.Challenge
	// SignWith, when set, signs instead of Key while the kid still names
	// Key: a forged signature claiming a trusted key.
	SignWith *ecdsa.PrivateKey
	// Delay makes Attest wait this long before answering (or fail with
	// ctx's error if ctx ends first).
	Delay time.Duration
	// Err, when set, is returned by Attest (after Delay).
	Err error
	// Garbage, when non-nil, is returned by Attest instead of a CMW.
	Garbage []byte
	// PadTo pads the Evidence (with a bootseed claim) so that the CMW is at
	// least PadTo bytes long; 65536 or more makes it too large for the
	// cmw_attestation extension.
	PadTo int
}

var _ attester.Attester = (*Attester)(nil)

// Attest returns a CMW record (cmw.MediaTypeTestKit, indicator evidence)
// carrying signed Evidence bound to ch.ReportData64().
func (a *Attester) Attest(ctx context.Context, ch attester.Challenge) ([]byte, error) {
	if a.Delay > 0 {
		t := time.NewTimer(a.Delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("testkit: %w", ctx.Err())
		case <-t.C:
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("testkit: %w", err)
	}
	if a.Err != nil {
		return nil, a.Err
	}
	if a.Garbage != nil {
		return bytes.Clone(a.Garbage), nil
	}
	if a.Key == nil {
		return nil, errors.New("testkit: Attester.Key is nil")
	}
	if a.FixedChallenge != nil {
		ch = *a.FixedChallenge
	}
	nonce, err := ch.ReportData64()
	if err != nil {
		return nil, fmt.Errorf("testkit: %w", err)
	}
	claims, err := a.claims(nonce[:], 0)
	if err != nil {
		return nil, err
	}
	out, err := a.wrap(claims)
	if err != nil {
		return nil, err
	}
	if a.PadTo > len(out) {
		// The padding claim's own header adds a few bytes; aim just past.
		claims, err = a.claims(nonce[:], a.PadTo-len(out))
		if err != nil {
			return nil, err
		}
		if out, err = a.wrap(claims); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (a *Attester) claims(nonce []byte, pad int) ([]byte, error) {
	now := time.Now
	if a.Time != nil {
		now = a.Time
	}
	var e eat.Eat
	e.Nonce = &eat.Nonce{}
	if err := e.Nonce.Add(nonce); err != nil {
		return nil, fmt.Errorf("testkit: %w", err)
	}
	iat := eat.NumericDate(now())
	e.IssuedAt = &iat
	name, version := a.SoftwareName, a.SoftwareVersion
	if name == "" {
		name = "go-expat-testkit"
	}
	if version == "" {
		version = "0.0.0-test"
	}
	e.SoftwareName = &eat.StringOrURI{}
	if err := e.SoftwareName.FromString(name); err != nil {
		return nil, fmt.Errorf("testkit: swname: %w", err)
	}
	e.SoftwareVersion = &eat.Version{Version: version}
	if len(a.Measurements) > 0 {
		ms := make([]eat.Measurement, 0, len(a.Measurements))
		for _, m := range a.Measurements {
			mc := eat.MeasuredComponent{
				Id:          eat.ComponentID{Name: m.Name},
				Measurement: &swid.HashEntry{HashAlgID: swid.Sha256, HashValue: m.Value},
			}
			enc, err := cbor.Marshal(mc)
			if err != nil {
				return nil, fmt.Errorf("testkit: measurement %q: %w", m.Name, err)
			}
			ms = append(ms, eat.Measurement{Type: MeasurementContentFormat, Format: enc})
		}
		e.Measurements = &ms
	}
	if pad > 0 {
		seed := make([]byte, pad)
		e.BootSeed = &seed
	}
	b, err := e.ToCBOR()
	if err != nil {
		return nil, fmt.Errorf("testkit: EAT: %w", err)
	}
	return b, nil
}

func (a *Attester) wrap(payload []byte) ([]byte, error) {
	kid, err := KeyID(&a.Key.PublicKey)
	if err != nil {
		return nil, err
	}
	key := a.Key
	if a.SignWith != nil {
		key = a.SignWith
	}
	signer, err := cose.NewSigner(cose.AlgorithmES256, key)
	if err != nil {
		return nil, fmt.Errorf("testkit: %w", err)
	}
	r := a.Rand
	if r == nil {
		r = rand.Reader
	}
	hdr := cose.Headers{Protected: cose.ProtectedHeader{
		cose.HeaderLabelAlgorithm: cose.AlgorithmES256,
		cose.HeaderLabelKeyID:     kid,
	}}
	sig, err := cose.Sign1(r, signer, hdr, payload, nil)
	if err != nil {
		return nil, fmt.Errorf("testkit: COSE_Sign1: %w", err)
	}
	rec, err := cmw.NewRecord(cmw.MediaTypeTestKit, sig, cmw.Evidence)
	if err != nil {
		return nil, err
	}
	return rec.Marshal()
}

// Verifier is the TEST-ONLY verifier of test-kit Evidence. It trusts only
// TrustedKeys: the zero value trusts nothing and rejects everything.
type Verifier struct {
	// TrustedKeys are the attester keys whose Evidence is accepted.
	TrustedKeys []*ecdsa.PublicKey
	// ReferenceMeasurements, when non-empty, is the policy: every entry
	// must be reported with exactly this value. Other reported
	// measurements are ignored.
	ReferenceMeasurements []verifier.Measurement
	// Name is Result.Verifier; "" means DefaultVerifierName.
	Name string
	// Time is the appraisal clock when Expected.Now is zero; nil means
	// time.Now.
	Time func() time.Time
}

var _ verifier.RecordVerifier = (*Verifier)(nil)

// strictMode checks the claims set before veraison/eat (whose decoding
// accepts duplicate keys) reads it.
var strictMode = strictcbor.DecMode(strictcbor.Limits{MaxNestedLevels: 16, MaxArrayElements: 1024, MaxMapPairs: 1024, AllowTags: true})

// Verify appraises test-kit Evidence (verifier.VerifyCMW, then
// VerifyRecord).
func (v *Verifier) Verify(ctx context.Context, b []byte, exp *verifier.Expected) (*verifier.Result, error) {
	return verifier.VerifyCMW(ctx, v, b, exp)
}

// VerifyRecord appraises a decoded record: its type (cmw.MediaTypeTestKit,
// indicator evidence or none), the COSE signature by a trusted key, the
// nonce against exp.Challenge (constant time), then the reference
// measurements.
func (v *Verifier) VerifyRecord(ctx context.Context, rec cmw.Record, exp *verifier.Expected) (*verifier.Result, error) {
	if err := verifier.ExpectRecord(rec, cmw.MediaTypeTestKit, cmw.Evidence); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, verifier.Unavailable(false, err, "testkit: context done")
	}
	if exp == nil {
		return nil, errors.New("testkit: nil Expected")
	}
	want, err := exp.ReportData64()
	if err != nil {
		return nil, fmt.Errorf("testkit: expected challenge: %w", err)
	}

	var msg cose.Sign1Message
	if err := msg.UnmarshalCBOR(rec.Value); err != nil {
		return nil, verifier.Reject(verifier.CheckFormat, err, "testkit: COSE_Sign1")
	}
	alg, err := msg.Headers.Protected.Algorithm()
	if err != nil || alg != cose.AlgorithmES256 {
		return nil, verifier.Reject(verifier.CheckSignature, nil, "testkit: algorithm %v is not ES256", alg)
	}
	kid, _ := msg.Headers.Protected[cose.HeaderLabelKeyID].([]byte)
	var key *ecdsa.PublicKey
	for _, k := range v.TrustedKeys {
		id, err := KeyID(k)
		if err == nil && subtle.ConstantTimeCompare(id, kid) == 1 {
			key = k
			break
		}
	}
	if key == nil {
		return nil, verifier.Reject(verifier.CheckSignature, nil, "testkit: signing key %x is not trusted", kid)
	}
	ver, err := cose.NewVerifier(cose.AlgorithmES256, key)
	if err != nil {
		return nil, verifier.Reject(verifier.CheckSignature, err, "testkit: trusted key")
	}
	if err := msg.Verify(nil, ver); err != nil {
		return nil, verifier.Reject(verifier.CheckSignature, err, "testkit: COSE_Sign1 signature")
	}

	// Signed content from here on.
	var generic any
	if err := strictMode.Unmarshal(msg.Payload, &generic); err != nil {
		return nil, verifier.Reject(verifier.CheckFormat, err, "testkit: claims set")
	}
	var e eat.Eat
	if err := e.FromCBOR(msg.Payload); err != nil {
		return nil, verifier.Reject(verifier.CheckFormat, err, "testkit: claims set")
	}
	if e.Nonce == nil || e.Nonce.Len() != 1 || len(e.Nonce.GetI(0)) != len(want) {
		return nil, verifier.Reject(verifier.CheckChallenge, nil, "testkit: eat_nonce is not one %d-byte value", len(want))
	}
	if subtle.ConstantTimeCompare(e.Nonce.GetI(0), want[:]) != 1 {
		return nil, verifier.Reject(verifier.CheckChallenge, nil, "testkit: eat_nonce does not match this connection's challenge")
	}

	res := &verifier.Result{
		Model:      verifier.BackgroundCheck,
		Technology: Technology,
		MediaType:  cmw.MediaTypeTestKit,
		Status:     verifier.TierAffirming,
		TrustVector: verifier.TrustVector{
			InstanceIdentity: 2, // recognized key
			Hardware:         2, // "genuine" for the test's purposes
		},
		Claims:   map[string]string{"test-only": "true"},
		Verifier: v.Name,
		// The test kit's eat_nonce is the challenge, which covers
		// AIK_pub_hash; its "platform" is its signing key.
		KeyBinding:  verifier.KeyInEvidence,
		PlatformIDs: []verifier.PlatformID{{Kind: "test-kit.key-sha256", Value: bytes.Clone(kid)}},
	}
	if res.Verifier == "" {
		res.Verifier = DefaultVerifierName
	}
	if e.SoftwareName != nil {
		res.Claims["swname"] = e.SoftwareName.String()
	}
	if e.SoftwareVersion != nil {
		res.Claims["swversion"] = e.SoftwareVersion.Version
	}
	if e.IssuedAt != nil {
		res.Claims["iat"] = strconv.FormatInt(time.Time(*e.IssuedAt).Unix(), 10)
	}
	if e.Measurements != nil {
		seen := map[string]bool{}
		for i, m := range *e.Measurements {
			if m.Type != MeasurementContentFormat {
				return nil, verifier.Reject(verifier.CheckFormat, nil, "testkit: measurement %d has content format %d", i, m.Type)
			}
			var mc eat.MeasuredComponent
			if err := strictMode.Unmarshal(m.Format, &mc); err != nil {
				return nil, verifier.Reject(verifier.CheckFormat, err, "testkit: measurement %d", i)
			}
			if mc.Measurement == nil || mc.Measurement.HashAlgID != swid.Sha256 {
				return nil, verifier.Reject(verifier.CheckFormat, nil, "testkit: measurement %d has no sha-256 digest", i)
			}
			if seen[mc.Id.Name] {
				return nil, verifier.Reject(verifier.CheckFormat, nil, "testkit: measurement %q reported twice", mc.Id.Name)
			}
			seen[mc.Id.Name] = true
			res.Measurements = append(res.Measurements, verifier.Measurement{
				Name: mc.Id.Name, Value: bytes.Clone(mc.Measurement.HashValue),
			})
		}
	}
	for _, ref := range v.ReferenceMeasurements {
		var got []byte
		found := false
		for _, m := range res.Measurements {
			if m.Name == ref.Name {
				got, found = m.Value, true
			}
		}
		if !found {
			return nil, verifier.Reject(verifier.CheckMeasurement, nil, "testkit: %q not reported", ref.Name)
		}
		if !bytes.Equal(got, ref.Value) {
			return nil, verifier.Reject(verifier.CheckMeasurement, nil, "testkit: %q is %x, want %x", ref.Name, got, ref.Value)
		}
	}
	if len(v.ReferenceMeasurements) > 0 {
		res.TrustVector.Executables = 2 // approved
	}
	res.AppraisedAt = exp.Now
	if res.AppraisedAt.IsZero() {
		if v.Time != nil {
			res.AppraisedAt = v.Time()
		} else {
			res.AppraisedAt = time.Now()
		}
	}
	return res, nil
}

// Formats returns the one format the Attester produces
// (cmw.MediaTypeTestKit), for capability discovery (expat.Formats).
func (a *Attester) Formats() []string { return []string{cmw.MediaTypeTestKit} }

// Formats returns the one format the Verifier accepts
// (cmw.MediaTypeTestKit), for capability discovery (expat.Formats).
func (v *Verifier) Formats() []string { return []string{cmw.MediaTypeTestKit} }
