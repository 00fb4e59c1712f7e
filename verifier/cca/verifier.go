package cca

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/veraison/ccatoken/platform"

	"github.com/attested-tls/go-expat/attester/cca/wire"
	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/verifier"
)

// Technology is the Result.Technology this package reports.
const Technology = "cca"

// TrustedKey is a CCA Platform Attestation Key (CPAK, also called IAK) that
// may sign platform tokens.
type TrustedKey struct {
	// Name identifies the key in results (Claims["platform.cpak"]).
	Name string
	// Key is the CPAK public key (an *ecdsa.PublicKey).
	Key any
	// ImplementationID and InstanceID, when set, must equal the token's
	// claims of the same name: a key vouches only for the platform it was
	// provisioned for.
	ImplementationID []byte
	InstanceID       []byte
}

// SoftwareComponent is a reference value for one platform software
// component (a measured firmware image).
type SoftwareComponent struct {
	// Type is the component's measurement type ("BL", "RMM", ...).
	Type string
	// Value is the expected measurement.
	Value []byte
	// SignerID, when set, must equal the reported signer ID.
	SignerID []byte
	// Version, when set, must equal the reported version.
	Version string
}

// Policy says which measurements and platform states are acceptable. The
// zero Policy accepts nothing: it requires a secured platform, and it has no
// acceptable realm initial measurement and no platform software reference
// values (the insecure opt-ins AcceptAnyRIM / AcceptAnySoftware skip those
// two checks on purpose).
type Policy struct {
	// RIMs are the acceptable realm initial measurements.
	RIMs [][]byte
	// AcceptAnyRIM skips the RIM check (the RIM is still reported).
	// INSECURE: the realm may run anything; use it only where the RIM is
	// appraised elsewhere. New refuses it together with RIMs.
	AcceptAnyRIM bool
	// REMs, when non-nil, are the acceptable sets of the four realm
	// extensible measurements; the reported REMs must equal one set.
	REMs [][4][]byte
	// PersonalizationValues, when non-nil, are the acceptable realm
	// personalization values (64 bytes each).
	PersonalizationValues [][]byte
	// Software are the reference values for platform software components.
	// Every reported component must match one of them (type and value, and
	// signer ID / version where set), and every reference value must be
	// reported.
	Software []SoftwareComponent
	// AcceptAnySoftware skips the platform software check. INSECURE: the
	// platform firmware may be anything; New refuses it together with
	// Software.
	AcceptAnySoftware bool
	// PlatformConfigs, when non-nil, are the acceptable platform
	// configuration values.
	PlatformConfigs [][]byte
	// Lifecycles are the acceptable platform lifecycle states; nil means
	// only platform.StateSecured. Debug states must be listed explicitly.
	Lifecycles []platform.LifeCycleState
}

// Config configures a Verifier. The zero value (and a nil *Config) trusts
// no CPAK and has the zero Policy: it rejects every token. It must not be
// modified after New.
type Config struct {
	// TrustedKeys are the CPAKs trusted to sign platform tokens. Empty
	// rejects every token (CheckKey).
	TrustedKeys []TrustedKey
	// Policy is the appraisal policy.
	Policy Policy
	// Name is reported as Result.Verifier. Empty means "go-expat/verifier/cca".
	Name string
	// Time returns the current time when Expected.Now is zero; nil means
	// time.Now.
	Time func() time.Time
}

// Verifier appraises Arm CCA attestation tokens locally (background-check
// model with an in-process Verifier). It is safe for concurrent use.
type Verifier struct {
	cfg Config
}

var _ verifier.RecordVerifier = (*Verifier)(nil)

// New returns a Verifier for cfg; cfg is copied, and nil means the zero
// Config, which trusts no CPAK and so rejects every token (CheckKey). It
// fails for a malformed Config (a nil key, an opt-in together with the
// list it replaces).
func New(cfg *Config) (*Verifier, error) {
	c := Config{}
	if cfg != nil {
		c = *cfg
	}
	cfg = &c
	if cfg.Policy.AcceptAnyRIM && len(cfg.Policy.RIMs) != 0 {
		return nil, errors.New("cca: Policy.AcceptAnyRIM and Policy.RIMs exclude each other")
	}
	if cfg.Policy.AcceptAnySoftware && len(cfg.Policy.Software) != 0 {
		return nil, errors.New("cca: Policy.AcceptAnySoftware and Policy.Software exclude each other")
	}
	for i, k := range cfg.TrustedKeys {
		if k.Key == nil {
			return nil, fmt.Errorf("cca: trusted key %d (%q) is nil", i, k.Name)
		}
	}
	if cfg.Name == "" {
		cfg.Name = "go-expat/verifier/cca"
	}
	if cfg.Time == nil {
		cfg.Time = time.Now
	}
	return &Verifier{cfg: *cfg}, nil
}

// Verify appraises a CMW record of media type cmw.MediaTypeCCA holding an
// Arm CCA attestation token: the platform token must be signed by a trusted
// CPAK, the realm token by the RAK that the platform token's challenge binds
// (github.com/veraison/ccatoken checks the signature and the binding), the
// realm challenge must equal exp.ReportData64(), and the policy
// must accept the lifecycle, platform software, platform configuration, RIM,
// REMs and personalization value.
func (v *Verifier) Verify(ctx context.Context, b []byte, exp *verifier.Expected) (*verifier.Result, error) {
	return verifier.VerifyCMW(ctx, v, b, exp)
}

// VerifyRecord appraises a decoded CMW record of type cmw.MediaTypeCCA
// (indicator evidence or none) against exp.
func (v *Verifier) VerifyRecord(ctx context.Context, rec cmw.Record, exp *verifier.Expected) (*verifier.Result, error) {
	if err := verifier.ExpectRecord(rec, cmw.MediaTypeCCA, cmw.Evidence); err != nil {
		return nil, err
	}
	if exp == nil {
		return nil, errors.New("cca: nil Expected")
	}
	want, err := exp.ReportData64()
	if err != nil {
		return nil, fmt.Errorf("cca: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, verifier.Unavailable(false, err, "cca: context done")
	}
	tok, err := wire.ParseToken(rec.Value)
	if err != nil {
		return nil, verifier.Reject(verifier.CheckFormat, err, "cca: token")
	}
	return v.appraise(tok, want[:], exp)
}

func (v *Verifier) appraise(tok *wire.Token, want []byte, exp *verifier.Expected) (*verifier.Result, error) {
	p, r := tok.Platform, tok.Realm
	implID, _ := p.GetImplID()
	instID, _ := p.GetInstID()

	// 1. Platform token signed by a trusted CPAK.
	var key *TrustedKey
	var lastErr error
	for i := range v.cfg.TrustedKeys {
		k := &v.cfg.TrustedKeys[i]
		if k.ImplementationID != nil && !bytes.Equal(k.ImplementationID, implID) {
			continue
		}
		if k.InstanceID != nil && !bytes.Equal(k.InstanceID, instID) {
			continue
		}
		if err := verifySign1(tok.PlatformToken, k.Key); err != nil {
			lastErr = err
			continue
		}
		key = k
		break
	}
	if key == nil {
		return nil, verifier.Reject(verifier.CheckKey, lastErr, "cca: platform token (instance %x) is not signed by a trusted CPAK", instID)
	}
	// 2. Realm token signed by the RAK, and the RAK bound into the platform
	// token's challenge (ccatoken.Evidence.Verify re-checks step 1 too).
	if err := verifyEvidence(tok, key.Key); err != nil {
		return nil, verifier.Reject(verifier.CheckSignature, err, "cca: realm token signature or platform binding")
	}
	// 3. Freshness and binding to this TLS connection.
	got, err := r.GetChallenge()
	if err != nil || len(want) != 64 || subtle.ConstantTimeCompare(got, want) != 1 {
		return nil, verifier.Reject(verifier.CheckChallenge, err, "cca: realm challenge does not match the expected ReportData64")
	}

	// 4. Policy.
	pol := &v.cfg.Policy
	lc, err := p.GetSecurityLifeCycle()
	if err != nil {
		return nil, verifier.Reject(verifier.CheckFormat, err, "cca: platform lifecycle")
	}
	state := platform.LifeCycleToState(lc)
	if !lifecycleAllowed(pol.Lifecycles, state) {
		check := verifier.CheckLifecycle
		if state == platform.StateNonCCAPlatformDebug || state == platform.StateRecoverableCCAPlatformDebug {
			check = verifier.CheckDebug
		}
		return nil, verifier.Reject(check, nil, "cca: platform lifecycle 0x%04x (%s) is not allowed", lc, state)
	}

	res := &verifier.Result{
		Model:      verifier.BackgroundCheck,
		Technology: Technology,
		MediaType:  cmw.MediaTypeCCA,
		Status:     verifier.TierAffirming,
		Verifier:   v.cfg.Name,
		Claims:     map[string]string{},
		KeyBinding: verifier.KeyInEvidence, // the realm challenge covers AIK_pub_hash
		PlatformIDs: []verifier.PlatformID{
			{Kind: "cca.instance-id", Value: bytes.Clone(instID)},
			{Kind: "cca.implementation-id", Value: bytes.Clone(implID)},
		},
	}

	comps, err := p.GetSoftwareComponents()
	if err != nil {
		return nil, verifier.Reject(verifier.CheckFormat, err, "cca: platform software components")
	}
	matched := make([]bool, len(pol.Software))
	for i, sc := range comps {
		typ, _ := sc.GetMeasurementType()
		val, _ := sc.GetMeasurementValue()
		signer, _ := sc.GetSignerID()
		ver, _ := sc.GetVersion()
		name := "platform.sw." + strconv.Itoa(i)
		if typ != "" {
			name += "." + typ
		}
		if ver != "" {
			name += "@" + ver
		}
		res.Measurements = append(res.Measurements, verifier.Measurement{Name: name, Value: bytes.Clone(val)})
		if pol.AcceptAnySoftware {
			continue
		}
		found := false
		for j, ref := range pol.Software {
			if ref.Type == typ && bytes.Equal(ref.Value, val) &&
				(ref.SignerID == nil || bytes.Equal(ref.SignerID, signer)) &&
				(ref.Version == "" || ref.Version == ver) {
				matched[j] = true
				found = true
			}
		}
		if !found {
			return nil, verifier.Reject(verifier.CheckMeasurement, nil, "cca: platform software component %d (%q, version %q, %x) matches no reference value", i, typ, ver, val)
		}
	}
	if !pol.AcceptAnySoftware {
		if len(pol.Software) == 0 {
			return nil, verifier.Reject(verifier.CheckMeasurement, nil, "cca: policy has no platform software reference values (AcceptAnySoftware skips the check)")
		}
		for j, ok := range matched {
			if !ok {
				return nil, verifier.Reject(verifier.CheckMeasurement, nil, "cca: reference software component %q (%x) not reported", pol.Software[j].Type, pol.Software[j].Value)
			}
		}
	}

	cfgVal, err := p.GetConfig()
	if err != nil {
		return nil, verifier.Reject(verifier.CheckFormat, err, "cca: platform config")
	}
	if pol.PlatformConfigs != nil && !oneOf(pol.PlatformConfigs, cfgVal) {
		return nil, verifier.Reject(verifier.CheckConfig, nil, "cca: platform configuration %x is not allowed", cfgVal)
	}

	rim, err := r.GetInitialMeasurement()
	if err != nil {
		return nil, verifier.Reject(verifier.CheckFormat, err, "cca: realm initial measurement")
	}
	res.Measurements = append(res.Measurements, verifier.Measurement{Name: "realm.rim", Value: bytes.Clone(rim)})
	if !pol.AcceptAnyRIM && !oneOf(pol.RIMs, rim) {
		return nil, verifier.Reject(verifier.CheckMeasurement, nil, "cca: realm initial measurement %x is not allowed", rim)
	}
	rems, err := r.GetExtensibleMeasurements()
	if err != nil {
		return nil, verifier.Reject(verifier.CheckFormat, err, "cca: realm extensible measurements")
	}
	for i, m := range rems {
		res.Measurements = append(res.Measurements, verifier.Measurement{Name: "realm.rem" + strconv.Itoa(i), Value: bytes.Clone(m)})
	}
	if pol.REMs != nil && !remsAllowed(pol.REMs, rems) {
		return nil, verifier.Reject(verifier.CheckMeasurement, nil, "cca: realm extensible measurements are not allowed")
	}
	rpv, err := r.GetPersonalizationValue()
	if err != nil {
		return nil, verifier.Reject(verifier.CheckFormat, err, "cca: realm personalization value")
	}
	res.Measurements = append(res.Measurements, verifier.Measurement{Name: "realm.personalization-value", Value: bytes.Clone(rpv)})
	if pol.PersonalizationValues != nil && !oneOf(pol.PersonalizationValues, rpv) {
		return nil, verifier.Reject(verifier.CheckPersonalization, nil, "cca: realm personalization value %x is not allowed", rpv)
	}

	res.Claims["platform.cpak"] = key.Name
	res.Claims["platform.implementation-id"] = hex.EncodeToString(implID)
	res.Claims["platform.instance-id"] = hex.EncodeToString(instID)
	res.Claims["platform.lifecycle"] = fmt.Sprintf("0x%04x (%s)", lc, state)
	res.Claims["platform.config"] = hex.EncodeToString(cfgVal)
	if prof, err := p.GetProfile(); err == nil {
		res.Claims["platform.profile"] = prof
	}
	if h, err := p.GetHashAlgID(); err == nil {
		res.Claims["platform.hash-algorithm"] = h
	}
	if vsi, err := p.GetVSI(); err == nil {
		res.Claims["platform.verification-service"] = vsi
	}
	if prof, err := r.GetProfile(); err == nil {
		res.Claims["realm.profile"] = prof
	}
	if h, err := r.GetHashAlgID(); err == nil {
		res.Claims["realm.hash-algorithm"] = h
	}
	res.TrustVector = verifier.TrustVector{
		InstanceIdentity: 2, // platform and realm signatures verified
		Hardware:         2, // genuine CCA platform (trusted CPAK)
		Executables:      2, // platform software and realm measurements approved
		RuntimeOpaque:    2, // realm memory protected in a secured lifecycle
	}
	if pol.AcceptAnyRIM || pol.AcceptAnySoftware {
		res.TrustVector.Executables = 0 // not appraised, by choice
	}
	if pol.PlatformConfigs != nil {
		res.TrustVector.Configuration = 2
	}
	res.AppraisedAt = exp.Now
	if res.AppraisedAt.IsZero() {
		res.AppraisedAt = v.cfg.Time()
	}
	return res, nil
}

func lifecycleAllowed(allowed []platform.LifeCycleState, s platform.LifeCycleState) bool {
	if allowed == nil {
		return s == platform.StateSecured
	}
	for _, a := range allowed {
		if a == s {
			return true
		}
	}
	return false
}

func oneOf(set [][]byte, v []byte) bool {
	for _, s := range set {
		if bytes.Equal(s, v) {
			return true
		}
	}
	return false
}

func remsAllowed(sets [][4][]byte, rems [][]byte) bool {
	if len(rems) != 4 {
		return false
	}
	for _, s := range sets {
		if bytes.Equal(s[0], rems[0]) && bytes.Equal(s[1], rems[1]) &&
			bytes.Equal(s[2], rems[2]) && bytes.Equal(s[3], rems[3]) {
			return true
		}
	}
	return false
}

// verifyEvidence runs ccatoken's signature and binding checks, turning a
// panic on peer input into an error.
func verifyEvidence(tok *wire.Token, key any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("ccatoken panicked: %v", r)
		}
	}()
	return tok.Evidence().Verify(key)
}
