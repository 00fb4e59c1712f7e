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
package verifier

import (
	"context"
	"crypto"
	"errors"
	"fmt"
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
// QualifyingData set it returns a *RejectedError (Check "challenge").
func (e *Expected) ReportData64() ([64]byte, error) {
	switch {
	case e.ReportData != nil:
		return *e.ReportData, nil
	case e.QualifyingData != nil:
		return [64]byte{}, Reject("challenge", "a 64-byte user-data field was presented, but only a 32-byte value is expected")
	}
	return e.Challenge.ReportData64()
}

// QualifyingData32 returns the value that a TPM 2.0 quote's qualifyingData
// must hold: QualifyingData when set, else Challenge.QualifyingData32().
// With only ReportData set it returns a *RejectedError (Check "challenge").
func (e *Expected) QualifyingData32() ([32]byte, error) {
	switch {
	case e.QualifyingData != nil:
		return *e.QualifyingData, nil
	case e.ReportData != nil:
		return [32]byte{}, Reject("challenge", "a 32-byte qualifyingData was presented, but only a 64-byte value is expected")
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
// (draft-ietf-rats-ear).
type Tier int8

const (
	TierNone            Tier = 0
	TierAffirming       Tier = 2
	TierWarning         Tier = 32
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
}

var (
	// ErrRejected matches every error that means "checked and rejected".
	ErrRejected = errors.New("verifier: evidence rejected")
	// ErrUnavailable matches every error that means "could not be checked".
	ErrUnavailable = errors.New("verifier: appraisal unavailable")
)

// RejectedError is a rejection with a precise local reason. It matches
// ErrRejected.
type RejectedError struct {
	// Check names what failed ("signature", "challenge", "measurement",
	// "debug", "tcb", "key", "age", "status", "format", ...).
	Check string
	// Reason is a human-readable explanation.
	Reason string
	// Err is the underlying cause, if any.
	Err error
}

func (e *RejectedError) Error() string {
	s := "verifier: rejected (" + e.Check + "): " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *RejectedError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrRejected) true.
func (e *RejectedError) Is(target error) bool { return target == ErrRejected }

// Reject returns a *RejectedError.
func Reject(check, format string, args ...any) error {
	return &RejectedError{Check: check, Reason: fmt.Sprintf(format, args...)}
}

// UnavailableError reports that an appraisal could not be done. It matches
// ErrUnavailable. Retryable tells whether the same call may succeed later
// (a throttled service, a timeout).
type UnavailableError struct {
	Reason    string
	Retryable bool
	Err       error
}

func (e *UnavailableError) Error() string {
	s := "verifier: unavailable: " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrUnavailable) true.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }
