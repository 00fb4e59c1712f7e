// Package verifier defines how go-expat appraises what a peer presents in the
// cmw_attestation extension: the Verifier interface implemented by every
// per-technology verifier (verifier/tpm, verifier/sevsnp, verifier/tdx,
// verifier/cca), by remote Verifiers (Veraison) and by the passport-model
// checker of Attestation Results, and Result, the EAR-shaped outcome.
//
// A Verifier tells two failures apart: the Evidence was checked and rejected
// (errors.Is(err, ErrRejected), with a *RejectedError giving the precise
// reason), or it could not be checked at all (errors.Is(err,
// ErrUnavailable): a Verifier that is unreachable, collateral that cannot be
// fetched). Both are fatal to the attestation: go-expat never fails open.
// Reject and Unavailable are the one way to build them; a rejection names
// the failed step with a Check constant (CheckFormat, CheckTCB, ...), never
// with text that callers would have to match.
//
// Tiers have one order in go-expat, affirming < warning < none <
// contraindicated (see WorstTier for why "none" ranks below warning), and
// every merge of statuses or trust vectors (collections in Dispatch, EAR
// submodules, Veraison results) uses WorstTier and WorstClaim.
package verifier

import (
	"bytes"
	"context"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/attested-tls/go-expat/attester"
)

// Verifier appraises a CMW received from a peer.
type Verifier interface {
	// Verify appraises cmw (the serialized CMW from the cmw_attestation
	// extension) against exp. It returns a Result only when the Evidence or
	// Attestation Result was accepted; every failure is an error.
	Verify(ctx context.Context, cmw []byte, exp *Expected) (*Result, error)
}

// Expected is what the relying party computed locally and the Evidence must
// match. It never comes from the peer's own claims.
type Expected struct {
	// Challenge is the binding and AIK_pub_hash for this Exported
	// Authenticator, computed from this connection's exporter.
	Challenge attester.Challenge
	// PublicKey is the Exported Authenticator's end-entity public key and
	// SPKI its DER SubjectPublicKeyInfo (the input of AIK_pub_hash). Used by
	// key attestation (a TPM-resident EA key, an EAR naming the key).
	PublicKey crypto.PublicKey
	SPKI      []byte
	// Now is the time of the appraisal (freshness of results, collateral
	// validity).
	Now time.Time

	// ReportData and QualifyingData, when either is set, are the exact
	// values the Evidence must carry, for Verifiers that receive those
	// values rather than the Challenge they are computed from (verifier/local,
	// whose sessions' nonce is the value, as with Veraison). Challenge is
	// then ignored: ReportData is used by Evidence with a 64-byte user-data
	// field (SEV-SNP, TDX, CCA, test kit) and QualifyingData by TPM 2.0
	// quotes; Evidence whose field has no value set is rejected, since one
	// value cannot be derived from the other. Use the ReportData64 and
	// QualifyingData32 methods to read them.
	ReportData     *[64]byte
	QualifyingData *[32]byte
}

// ReportData64 returns the value that a 64-byte user-data field (SEV-SNP
// REPORT_DATA, TDX REPORTDATA, CCA realm challenge, test-kit eat_nonce) must
// hold: ReportData when set, else Challenge.ReportData64(). With only
// QualifyingData set it returns a *RejectedError (CheckChallenge).
func (e *Expected) ReportData64() ([64]byte, error) {
	switch {
	case e.ReportData != nil:
		return *e.ReportData, nil
	case e.QualifyingData != nil:
		return [64]byte{}, Reject(CheckChallenge, nil, "a 64-byte user-data field was presented, but only a 32-byte value is expected")
	}
	return e.Challenge.ReportData64()
}

// QualifyingData32 returns the value that a TPM 2.0 quote's qualifyingData
// must hold: QualifyingData when set, else Challenge.QualifyingData32().
// With only ReportData set it returns a *RejectedError (CheckChallenge).
func (e *Expected) QualifyingData32() ([32]byte, error) {
	switch {
	case e.QualifyingData != nil:
		return *e.QualifyingData, nil
	case e.ReportData != nil:
		return [32]byte{}, Reject(CheckChallenge, nil, "a 32-byte qualifyingData was presented, but only a 64-byte value is expected")
	}
	return e.Challenge.QualifyingData32()
}

// Model is the RATS model through which a Result was obtained (RFC 9334).
type Model int

const (
	// BackgroundCheck: the peer sent Evidence; a Verifier chosen by the
	// relying party appraised it.
	BackgroundCheck Model = iota + 1
	// Passport: the peer sent an Attestation Result issued by a Verifier it
	// chose; the relying party checked the result's signature and binding.
	Passport
)

func (m Model) String() string {
	switch m {
	case BackgroundCheck:
		return "background-check"
	case Passport:
		return "passport"
	}
	return fmt.Sprintf("Model(%d)", int(m))
}

// Tier is an AR4SI trustworthiness tier, with the values used by EAR
// (draft-ietf-rats-ear). Its numeric values are EAR's codes, not an order:
// compare tiers only with Worse, WorstTier and WorstClaim.
type Tier int8

const (
	// TierNone: no claim could be established (AR4SI 0, 1, -1: no claim,
	// unexpected evidence, verifier malfunction).
	TierNone Tier = 0
	// TierAffirming: the claims were appraised and found good.
	TierAffirming Tier = 2
	// TierWarning: the claims were appraised and accepted with a reason for
	// concern (a debug guest the policy allows, an out-of-date TCB the
	// policy tolerates).
	TierWarning Tier = 32
	// TierContraindicated: the appraisal found the claims to be bad.
	TierContraindicated Tier = 96
)

func (t Tier) String() string {
	switch t {
	case TierNone:
		return "none"
	case TierAffirming:
		return "affirming"
	case TierWarning:
		return "warning"
	case TierContraindicated:
		return "contraindicated"
	}
	return fmt.Sprintf("Tier(%d)", int8(t))
}

// rank is the one tier order (see WorstTier), best first.
func (t Tier) rank() int {
	switch t {
	case TierAffirming:
		return 0
	case TierWarning:
		return 1
	case TierNone:
		return 2
	}
	return 3
}

// Worse reports whether t is a worse tier than u in go-expat's one tier
// order (see WorstTier).
func (t Tier) Worse(u Tier) bool { return t.rank() > u.rank() }

// WorstTier returns the worst of a and b in go-expat's one tier order,
// from best to worst:
//
//	affirming < warning < none < contraindicated
//
// Every merge of statuses in go-expat (collections in Dispatch, EAR
// submodules, Veraison results) uses it.
//
// AR4SI (draft-ietf-rats-ar4si) and EAR (draft-ietf-rats-ear,
// ear.status) define the four tiers and require an overall status of no
// higher trust than the worst claim, but give no order between "none" and
// the others. go-expat decides: affirming is best; warning means appraised
// and accepted with a concern, which says more than "none", where nothing
// could be established at all (a relying party must not read a composite
// of which one part established nothing as better than one with a
// warning); contraindicated, the appraisal found something bad, is worst.
// A value outside the four tiers ranks as contraindicated.
func WorstTier(a, b Tier) Tier {
	if b.Worse(a) {
		return b
	}
	return a
}

// WorstClaim returns the worse of two AR4SI trustworthiness claims: the one
// whose tier (TierOf) is worse in WorstTier's order, and of two claims of
// the same tier the greater value (so that the merge is symmetric). The
// value 0 means that no claim is made (AR4SI "no claim"): it is the
// absence of a claim, not a finding, so WorstClaim(0, x) is x. The other
// values of TierNone (1 "unexpected evidence", -1 "verifier malfunction")
// are findings and rank as TierNone does. A merged vector thus holds, per
// claim, the worst claim that any part made; whether the overall result is
// acceptable is its Status (WorstTier), not the vector.
func WorstClaim(a, b int8) int8 {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	}
	ta, tb := TierOf(a), TierOf(b)
	switch {
	case tb.Worse(ta):
		return b
	case ta.Worse(tb):
		return a
	}
	return max(a, b)
}

// TrustVector is the AR4SI trustworthiness vector. Each claim is an AR4SI
// value in [-128, 127]; 0 means no claim. Use TierOf to map a claim to its
// tier.
type TrustVector struct {
	InstanceIdentity int8
	Configuration    int8
	Executables      int8
	FileSystem       int8
	Hardware         int8
	RuntimeOpaque    int8
	StorageOpaque    int8
	SourcedData      int8
}

// Merge sets each claim of v to the WorstClaim of it and the same claim of o.
func (v *TrustVector) Merge(o TrustVector) {
	v.InstanceIdentity = WorstClaim(v.InstanceIdentity, o.InstanceIdentity)
	v.Configuration = WorstClaim(v.Configuration, o.Configuration)
	v.Executables = WorstClaim(v.Executables, o.Executables)
	v.FileSystem = WorstClaim(v.FileSystem, o.FileSystem)
	v.Hardware = WorstClaim(v.Hardware, o.Hardware)
	v.RuntimeOpaque = WorstClaim(v.RuntimeOpaque, o.RuntimeOpaque)
	v.StorageOpaque = WorstClaim(v.StorageOpaque, o.StorageOpaque)
	v.SourcedData = WorstClaim(v.SourcedData, o.SourcedData)
}

// TierOf returns the tier of an AR4SI claim value, as EAR defines it.
func TierOf(v int8) Tier {
	switch {
	case v >= -1 && v <= 1:
		return TierNone
	case (v >= -32 && v <= -2) || (v >= 2 && v <= 31):
		return TierAffirming
	case (v >= -96 && v <= -33) || (v >= 32 && v <= 95):
		return TierWarning
	default:
		return TierContraindicated
	}
}

// Measurement is one named measurement taken from accepted Evidence (a PCR,
// MRTD, an RTMR, a realm measurement, a software component).
type Measurement struct {
	Name  string
	Value []byte
}

// Result is the outcome of an accepted appraisal.
type Result struct {
	// Model is how the result was obtained.
	Model Model
	// Technology names the Evidence type ("tpm2", "sev-snp", "tdx", "cca",
	// "psa", "test-kit", ...). For a passport, the technology the issuing
	// Verifier reported, if any.
	Technology string
	// MediaType is the CMW media type (or content format) of what was
	// appraised.
	MediaType string
	// Status is the overall tier. A Verifier returns a Result only when the
	// relying party's policy accepts this tier.
	Status Tier
	// TrustVector is the per-claim appraisal, when the Verifier reports one.
	TrustVector TrustVector
	// Measurements that the Evidence reported and the policy used.
	Measurements []Measurement
	// Claims holds other reported facts, as display strings (platform, TCB
	// versions, debug state, ...).
	Claims map[string]string
	// Verifier identifies who appraised: a local verifier's name, or the
	// issuer of a passport's Attestation Result.
	Verifier string
	// AppraisedAt is when the appraisal happened (for a passport, the
	// result's issuance time).
	AppraisedAt time.Time
	// EAR is the signed Attestation Result (a JWT), when there is one.
	EAR []byte
	// KeyBinding says how the Exported Authenticator's key is tied to the
	// attested environment (a relying party can require a minimum:
	// expat.Config.MinKeyBinding).
	KeyBinding KeyBinding
	// PlatformIDs identify the attested machine, as its Evidence states
	// them and the Verifier checked them (SEV-SNP CHIP_ID and reported
	// TCB, TDX FMSPC and PCK key, TPM AK, CCA instance and implementation
	// IDs); a relying party can pin or allow-list them
	// (expat.Config.AllowedPlatforms).
	PlatformIDs []PlatformID
	// Expires, when not zero, is when this appraisal stops being good to
	// rely on: an EAR's exp or the end of its accepted age, the next update
	// of collateral or TCB information the appraisal used. Relying parties
	// must not rely on the Result after it (package expat re-attests or
	// blocks application data; see expat.Attestation.ValidUntil). Zero
	// means the Verifier sets no bound: the relying party's own maximum
	// age applies.
	Expires time.Time
}

var (
	// ErrRejected matches every error that means "checked and rejected".
	ErrRejected = errors.New("verifier: evidence rejected")
	// ErrUnavailable matches every error that means "could not be checked".
	ErrUnavailable = errors.New("verifier: appraisal unavailable")
)

// Check identifies the appraisal step that rejected Evidence or an
// Attestation Result (RejectedError.Check). Callers branch on these
// constants, never on message text.
type Check uint8

const (
	// CheckFormat: the CMW, the Evidence or the result does not decode, or
	// is of a type or encoding this Verifier does not accept.
	CheckFormat Check = iota + 1
	// CheckSignature: a signature over the Evidence or result does not
	// verify.
	CheckSignature
	// CheckChain: an endorsement certificate chain (VCEK/VLEK, PCK) does
	// not lead to a trusted root, is for another platform, or is revoked.
	CheckChain
	// CheckKey: a signing key is not trusted (CCA CPAK), or key attestation
	// failed (the certified key is not the Exported Authenticator's).
	CheckKey
	// CheckAK: a TPM attestation key is not trusted or not acceptable.
	CheckAK
	// CheckChallenge: the Evidence is not bound to this connection's
	// challenge (REPORT_DATA, REPORTDATA, qualifyingData, realm
	// challenge).
	CheckChallenge
	// CheckNonce: an Attestation Result's nonce is missing or is not this
	// connection's challenge.
	CheckNonce
	// CheckMeasurement: a measurement (MEASUREMENT, MRTD, RTMR, RIM,
	// software component, ...) is not accepted by the policy, or no policy
	// for it was configured.
	CheckMeasurement
	// CheckPCR: TPM PCRs are not the quoted ones or not accepted by the
	// PCR policy.
	CheckPCR
	// CheckEventLog: a TPM event log is missing, malformed, or does not
	// replay to the quoted PCRs.
	CheckEventLog
	// CheckTCB: the platform's TCB (firmware, microcode, TDX module, QE)
	// is below the policy or in a status the policy does not accept.
	CheckTCB
	// CheckDebug: the TEE or platform is debuggable and the policy does not
	// allow it.
	CheckDebug
	// CheckPolicy: another guest policy rule failed (SEV-SNP guest policy,
	// HOST_DATA, GUEST_SVN).
	CheckPolicy
	// CheckVMPL: the SEV-SNP report comes from a VMPL the policy does not
	// accept.
	CheckVMPL
	// CheckLifecycle: the CCA platform lifecycle state is not accepted.
	CheckLifecycle
	// CheckConfig: the platform configuration is not accepted.
	CheckConfig
	// CheckPersonalization: the CCA realm personalization value is not
	// accepted.
	CheckPersonalization
	// CheckCollateral: verification collateral (TCB info, QE identity,
	// CRLs) was obtained but is invalid or does not apply, or the source
	// reports that it has none for this platform.
	CheckCollateral
	// CheckStatus: a Verifier's result has a status tier the policy does
	// not accept.
	CheckStatus
	// CheckAge: a result is too old, expired, or not yet valid.
	CheckAge
	// CheckIssuer: a result's issuer is not the expected one.
	CheckIssuer
	// CheckPlatform: the attested machine is not one the relying party
	// pinned or allows (Result.PlatformIDs).
	CheckPlatform
	// CheckLink: the items of a composite are not bound to each other (an
	// anchor's user data does not commit to a bound item's key), so they
	// may come from different machines (verifier/composite).
	CheckLink
	numChecks
)

var checkNames = [numChecks]string{
	CheckFormat: "format", CheckSignature: "signature", CheckChain: "chain", CheckKey: "key", CheckAK: "ak",
	CheckChallenge: "challenge", CheckNonce: "nonce", CheckMeasurement: "measurement", CheckPCR: "pcr",
	CheckEventLog: "eventlog", CheckTCB: "tcb", CheckDebug: "debug", CheckPolicy: "policy", CheckVMPL: "vmpl",
	CheckLifecycle: "lifecycle", CheckConfig: "config", CheckPersonalization: "personalization",
	CheckCollateral: "collateral", CheckStatus: "status", CheckAge: "age", CheckIssuer: "issuer",
	CheckPlatform: "platform", CheckLink: "link",
}

// String returns the check's name ("format", "signature", ...).
func (c Check) String() string {
	if c > 0 && c < numChecks {
		return checkNames[c]
	}
	return fmt.Sprintf("Check(%d)", uint8(c))
}

// MarshalText encodes the check as its name.
func (c Check) MarshalText() ([]byte, error) {
	if c == 0 || c >= numChecks {
		return nil, fmt.Errorf("verifier: invalid Check %d", uint8(c))
	}
	return []byte(c.String()), nil
}

// UnmarshalText decodes a check from its name.
func (c *Check) UnmarshalText(b []byte) error {
	for i, n := range checkNames {
		if i > 0 && n == string(b) {
			*c = Check(i)
			return nil
		}
	}
	return fmt.Errorf("verifier: unknown check %q", b)
}

// RejectedError is a rejection with a precise local reason. It matches
// ErrRejected. Build one with Reject.
type RejectedError struct {
	// Check is the step that failed.
	Check Check
	// Reason is a human-readable explanation, prefixed by the package that
	// rejected ("tdx: MRTD ... is not accepted").
	Reason string
	// Err is the underlying cause, if any.
	Err error
}

// Error returns "verifier: rejected (<check>): <reason>[: <cause>]". A
// cause that starts with the same package prefix as the reason is shown
// without it, so that no message repeats its prefix.
func (e *RejectedError) Error() string {
	return "verifier: rejected (" + e.Check.String() + "): " + joinCause(e.Reason, e.Err)
}

func (e *RejectedError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrRejected) true.
func (e *RejectedError) Is(target error) bool { return target == ErrRejected }

// Reject returns a *RejectedError for check, wrapping err (nil for none),
// with the reason fmt.Sprintf(format, args...). It is the one way every
// Verifier in go-expat builds a rejection. The reason should start with
// the rejecting package's prefix ("tdx: ...") and must not repeat err's
// text.
func Reject(check Check, err error, format string, args ...any) error {
	return &RejectedError{Check: check, Reason: fmt.Sprintf(format, args...), Err: err}
}

// Unavailable returns an *UnavailableError wrapping err (nil for none),
// with the reason fmt.Sprintf(format, args...). It is the one way every
// Verifier in go-expat reports that it could not appraise. A retryable
// *UnavailableError cause, or a context deadline, makes the result
// retryable too; an *UnavailableError cause is folded in (its reason
// appended, its cause kept) rather than nested, so that the message says
// "unavailable" once.
func Unavailable(retryable bool, err error, format string, args ...any) error {
	reason := fmt.Sprintf(format, args...)
	var inner *UnavailableError
	if errors.As(err, &inner) && inner.Retryable || errors.Is(err, context.DeadlineExceeded) {
		retryable = true
	}
	if ue, ok := err.(*UnavailableError); ok {
		reason, err = joinCause(reason, errors.New(ue.Reason)), ue.Err
	}
	return &UnavailableError{Reason: reason, Retryable: retryable, Err: err}
}

// joinCause returns reason and err's text joined by ": ", dropping from
// err's text a leading "pkg: " prefix that reason starts with too.
func joinCause(reason string, err error) string {
	if err == nil {
		return reason
	}
	cause := err.Error()
	if i := strings.Index(reason, ": "); i > 0 && !strings.ContainsAny(reason[:i], " ():") {
		cause = strings.TrimPrefix(cause, reason[:i+2])
	}
	if reason == "" {
		return cause
	}
	return reason + ": " + cause
}

// UnavailableError reports that an appraisal could not be done. It matches
// ErrUnavailable. Build one with Unavailable. Retryable tells whether the same call may succeed later
// (a throttled service, a timeout).
type UnavailableError struct {
	Reason    string
	Retryable bool
	Err       error
}

// Error returns "verifier: unavailable: <reason>[: <cause>]", without
// repeating a package prefix that the reason and the cause share.
func (e *UnavailableError) Error() string {
	return "verifier: unavailable: " + joinCause(e.Reason, e.Err)
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrUnavailable) true.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// KeyBinding is how the Exported Authenticator's key is tied to the
// attested environment, weakest first. Including the right connection
// binder in Evidence does not by itself show that the key lives in the
// attested environment (a relay holding the key could have had another
// machine produce the Evidence): the stronger levels say who vouches for
// the key.
type KeyBinding uint8

const (
	// KeyByBinder: the appraisal shows only that what was appraised was
	// produced for this connection's challenge (for example a passport
	// bound by its nonce): the binder commits to the key, nothing more.
	KeyByBinder KeyBinding = iota
	// KeyInEvidence: the Evidence's own user data (REPORT_DATA,
	// REPORTDATA, qualifyingData, realm challenge, nonce) names the key
	// through AIK_pub_hash: the attested environment produced Evidence for
	// this key, but its residence there is not proven.
	KeyInEvidence
	// KeyInResult: a Verifier attested the key itself (a key-attested
	// EAR whose akpub is the key).
	KeyInResult
	// KeyCertified: the key is certified resident in the attested
	// hardware (TPM2_Certify by a trusted, restricted AK of a key with
	// fixedTPM): the strongest tie.
	KeyCertified
)

var keyBindingNames = [...]string{"binder", "evidence", "result", "certified"}

func (k KeyBinding) String() string {
	if int(k) < len(keyBindingNames) {
		return keyBindingNames[k]
	}
	return fmt.Sprintf("KeyBinding(%d)", uint8(k))
}

// PlatformID is one identifier of the attested platform. Kind names it
// ("sev-snp.chip-id", "sev-snp.reported-tcb", "tdx.fmspc",
// "tdx.pck-key-sha256", "tpm.ak-name", "cca.instance-id",
// "cca.implementation-id", "test-kit.key-sha256"); Value is its bytes.
type PlatformID struct {
	Kind  string
	Value []byte
}

// String is Kind=hex(Value).
func (p PlatformID) String() string { return p.Kind + "=" + hex.EncodeToString(p.Value) }

// Equal reports whether p and q are the same identifier.
func (p PlatformID) Equal(q PlatformID) bool {
	return p.Kind == q.Kind && bytes.Equal(p.Value, q.Value)
}
