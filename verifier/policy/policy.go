// Package policy reads appraisal policies that people write by hand: one
// JSON document per policy (the format of docs/POLICY.md, with an annotated
// example per technology in docs/policy/) that says which technology the peer
// must attest with, which trust anchors and reference values apply, and
// which RATS model is used, and builds the verifier.Verifier it describes
// from the backends' own constructors (verifier/tpm, verifier/sevsnp,
// verifier/tdx, verifier/cca, verifier/ear, verifier/veraison).
//
// Parse is the only loader (ParseYAML reads the same document in YAML): the expat command and library users read the
// same format through it. It is strict: members are matched by their exact
// name, unknown and duplicate members are errors, values must have their
// member's JSON type, and every error is a *Error naming the offending
// member by its JSON path ("$.tpm.pcrs[\"7\"][0]"). Any object may carry a
// "comment" member (a string) for the human reader. What Parse accepts still
// goes through the backend's New, which refuses inconsistent configurations
// (for example an insecure opt-in together with reference values).
//
// Secure defaults: a policy must name its technology and model; reference
// values are required unless the named INSECURE opt-in of the backend is
// set ("accept_any_pcrs", "accept_any_measurement", ...); vendor roots (AMD,
// Intel) are the trust anchors unless the policy replaces them; debug is
// refused unless "allow_debug" is true.
//
// The same document may be written in YAML (ParseYAML; Load picks by the
// file name). Programs whose own configuration embeds policy documents
// decode it with Decode (the same strict rules) and build each embedded
// policy with Build.
//
// Reference values may also be given as CoRIMs (draft-ietf-rats-corim):
// the "corim" member of the tpm, sev_snp, tdx and cca sections names
// unsigned CoRIMs (tag 501, or the bare map that github.com/veraison/corim
// writes) or signed ones (COSE_Sign1, tag 18), whose signature is verified
// with the key the same member names. Each backend reads the triples of
// its CoRIM profile (corim.go lists them and their drafts), refuses any
// constraint it does not enforce, and takes the values as a union with
// those given inline. A CoRIM's validity period, and its signature's, are
// checked at Build and at every appraisal. Not supported: dependent RIMs,
// instance-specific reference values, masked raw values, Intel or AMD
// values beyond MRTD, RTMRs, MEASUREMENT and HOST_DATA (TCB levels, SVNs,
// flags), and the test kit (it has no CoRIM profile).
package policy

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"encoding/json"
)

// MaxSize bounds a policy document.
const MaxSize = 1 << 20

// Version is the policy format version that Parse reads.
const Version = 1

// Error is a policy that cannot be used, with the JSON path of the member
// at fault ("$" for the document as a whole).
type Error struct {
	Path string
	Err  error
}

func (e *Error) Error() string { return "policy: " + e.Path + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Models (Policy.Model).
const (
	// ModelBackgroundCheck: the peer sends Evidence, which a local verifier
	// of Policy.Technology, or Veraison (Policy.Veraison), appraises.
	ModelBackgroundCheck = "background-check"
	// ModelPassport: the peer sends an EAR, checked with Policy.EAR.
	ModelPassport = "passport"
)

// Technologies (Policy.Technology).
const (
	TechTPM     = "tpm"
	TechSEVSNP  = "sev-snp"
	TechTDX     = "tdx"
	TechCCA     = "cca"
	TechTestKit = "test-kit"
)

// Policy is a parsed policy document. Its fields mirror the JSON members
// (docs/POLICY.md describes each); byte strings are hex, keys and
// certificates are PEM text or the name of a PEM file relative to the
// policy file's directory (see Options.Dir).
type Policy struct {
	// Version must be 1.
	Version int `json:"version"`
	// Technology is "tpm", "sev-snp", "tdx", "cca" or "test-kit" (TEST
	// ONLY). Required for the background-check model with a local
	// verifier; optional (informational) otherwise.
	Technology string `json:"technology"`
	// Model is ModelBackgroundCheck or ModelPassport. Required.
	Model string `json:"model"`
	// Verifier, for the background-check model, is "local" (the default:
	// the technology's section configures an in-process verifier) or
	// "veraison" (the Veraison section configures the remote service).
	Verifier string `json:"verifier,omitempty"`
	// Attester optionally names the local attester of the process that
	// uses this policy (the expat command's --attester values).
	Attester string `json:"attester,omitempty"`

	TPM      *TPM      `json:"tpm,omitempty"`
	SEVSNP   *SEVSNP   `json:"sev_snp,omitempty"`
	TDX      *TDX      `json:"tdx,omitempty"`
	CCA      *CCA      `json:"cca,omitempty"`
	EAR      *EAR      `json:"ear,omitempty"`
	Veraison *Veraison `json:"veraison,omitempty"`
	TestKit  *TestKit  `json:"test_kit,omitempty"`
}

// TPM configures verifier/tpm.
type TPM struct {
	// TrustedAKs are pinned attestation keys (PEM PUBLIC KEY or TPMT_PUBLIC
	// hex).
	TrustedAKs []string `json:"trusted_aks,omitempty"`
	// AKRoots are enrollment CAs (PEM CERTIFICATE) whose AK certificates
	// make an AK trusted.
	AKRoots []string `json:"ak_roots,omitempty"`
	// PCRBank is "sha256" (default), "sha1", "sha384" or "sha512".
	PCRBank string `json:"pcr_bank,omitempty"`
	// PCRs maps a PCR index ("0".."23") to its accepted values (hex).
	PCRs map[string][]string `json:"pcrs,omitempty"`
	// AcceptAnyPCRs is verifier/tpm's INSECURE opt-in.
	AcceptAnyPCRs         bool `json:"accept_any_pcrs,omitempty"`
	RequireKeyAttestation bool `json:"require_key_attestation,omitempty"`
	RequireEventLog       bool `json:"require_event_log,omitempty"`
	// CoRIM names CoRIMs whose reference values are added to those given
	// inline (corim.go: profiles and encodings).
	CoRIM []CoRIMSource `json:"corim,omitempty"`
}

// SEVSNP configures verifier/sevsnp.
type SEVSNP struct {
	// Measurements are the accepted launch MEASUREMENTs (48 bytes, hex).
	Measurements         []string `json:"measurements,omitempty"`
	AcceptAnyMeasurement bool     `json:"accept_any_measurement,omitempty"`
	// HostData is the required HOST_DATA (32 bytes, hex).
	HostData string `json:"host_data,omitempty"`
	// MinimumTCB is the minimum of the reported, committed and launch TCB.
	MinimumTCB               *SNPTCB  `json:"minimum_tcb,omitempty"`
	MinGuestSVN              uint32   `json:"min_guest_svn,omitempty"`
	AllowDebug               bool     `json:"allow_debug,omitempty"`
	AllowMigrationAgent      bool     `json:"allow_migration_agent,omitempty"`
	AllowProvisionalFirmware bool     `json:"allow_provisional_firmware,omitempty"`
	VMPLs                    []uint32 `json:"vmpls,omitempty"`
	// ProductLine names the product of reports that do not ("Milan", ...).
	ProductLine string `json:"product_line,omitempty"`
	// Collateral supplies VCEKs (and CRLs) that reports do not carry.
	// Absent: none (a report must carry its VCEK in its certificate table).
	Collateral *SNPCollateral `json:"collateral,omitempty"`
	// CheckRevocation fetches the product's CRL through Collateral and
	// rejects revoked keys.
	CheckRevocation bool `json:"check_revocation,omitempty"`
	// Roots replaces AMD's roots: each entry a PEM bundle (ARK, ASK, ASVK)
	// of one product line. Empty means AMD's published roots.
	Roots []SNPRoot `json:"roots,omitempty"`
	// CoRIM names CoRIMs whose reference values are added to those given
	// inline (corim.go: profiles and encodings).
	CoRIM []CoRIMSource `json:"corim,omitempty"`
}

// SNPCollateral says where SEV-SNP collateral comes from: AMD's KDS (or
// a mirror at KDSURL), cached in memory and in CacheDir if set, or only
// the files of BundleDir (offline). Exactly one of FetchFromKDS and
// BundleDir.
type SNPCollateral struct {
	FetchFromKDS bool   `json:"fetch_from_kds,omitempty"`
	KDSURL       string `json:"kds_url,omitempty"`
	CacheDir     string `json:"cache_dir,omitempty"`
	BundleDir    string `json:"bundle_dir,omitempty"`
	// FailureTTL is how long a failed KDS fetch is remembered and reported
	// again without asking (a Go duration; absent:
	// collateral.DefaultFailureTTL). With FetchFromKDS only.
	FailureTTL string `json:"failure_ttl,omitempty"`
}

// SNPTCB is a SEV-SNP TCB minimum.
type SNPTCB struct {
	BootLoader uint8 `json:"bootloader,omitempty"`
	TEE        uint8 `json:"tee,omitempty"`
	SNP        uint8 `json:"snp,omitempty"`
	Microcode  uint8 `json:"microcode,omitempty"`
}

// SNPRoot is a replacement AMD root for one product line.
type SNPRoot struct {
	ProductLine string `json:"product_line"`
	ARK         string `json:"ark"`
	ASK         string `json:"ask,omitempty"`
	ASVK        string `json:"asvk,omitempty"`
}

// TDX configures verifier/tdx.
type TDX struct {
	// MRTD lists the accepted MRTDs (48 bytes, hex).
	MRTD          []string `json:"mrtd,omitempty"`
	AcceptAnyMRTD bool     `json:"accept_any_mrtd,omitempty"`
	// RTMR lists, per register 0..3, accepted values (empty: any).
	RTMR          [4][]string `json:"rtmr,omitempty"`
	MRConfigID    string      `json:"mr_config_id,omitempty"`
	MROwner       string      `json:"mr_owner,omitempty"`
	MROwnerConfig string      `json:"mr_owner_config,omitempty"`
	XFAM          string      `json:"xfam,omitempty"`
	// RequiredTDAttributes and ForbiddenTDAttributes are bit masks over
	// TD_ATTRIBUTES read as a little-endian uint64, written "0x" and 1 to
	// 16 hex digits ("0x10000000": bit 28, SEPT_VE_DISABLE): every
	// required bit must be set, no forbidden bit may be. The DEBUG bit (0)
	// is governed by AllowDebug.
	RequiredTDAttributes  string `json:"required_td_attributes,omitempty"`
	ForbiddenTDAttributes string `json:"forbidden_td_attributes,omitempty"`
	AllowDebug            bool   `json:"allow_debug,omitempty"`
	// TCB statuses accepted besides UpToDate.
	AllowSWHardeningNeeded   bool `json:"allow_sw_hardening_needed,omitempty"`
	AllowConfigurationNeeded bool `json:"allow_configuration_needed,omitempty"`
	AllowOutOfDate           bool `json:"allow_out_of_date,omitempty"`
	// TrustedRoots replaces Intel's SGX root CA (PEM CERTIFICATE).
	TrustedRoots []string `json:"trusted_roots,omitempty"`
	// PCSURL replaces Intel's PCS (a PCCS with the same paths).
	PCSURL string `json:"pcs_url,omitempty"`
	// RootCRLURL replaces the location of Intel's root CA CRL.
	RootCRLURL string `json:"root_crl_url,omitempty"`
	// MaxCacheEntries bounds the collateral cache and the cache of
	// verified PCK chains, each (absent: 256).
	MaxCacheEntries int `json:"max_cache_entries,omitempty"`
	// SkipRevocation disables the PCK and root CRL checks (only where
	// revocation is checked elsewhere).
	SkipRevocation bool `json:"skip_revocation,omitempty"`
	// CoRIM names CoRIMs whose reference values are added to those given
	// inline (corim.go: profiles and encodings).
	CoRIM []CoRIMSource `json:"corim,omitempty"`
}

// CCA configures verifier/cca.
type CCA struct {
	// CPAKs are the platform attestation keys trusted to sign platform
	// tokens. Required.
	CPAKs        []CPAK   `json:"cpaks"`
	RIMs         []string `json:"rims,omitempty"`
	AcceptAnyRIM bool     `json:"accept_any_rim,omitempty"`
	// REMs are acceptable sets of the four REMs (hex).
	REMs                  [][4]string   `json:"rems,omitempty"`
	PersonalizationValues []string      `json:"personalization_values,omitempty"`
	Software              []CCASoftware `json:"software,omitempty"`
	AcceptAnySoftware     bool          `json:"accept_any_software,omitempty"`
	PlatformConfigs       []string      `json:"platform_configs,omitempty"`
	// Lifecycles are the accepted platform lifecycle states, by the names
	// of github.com/veraison/ccatoken's platform.LifeCycleState
	// ("secured", "decommissioned", ...). Absent: "secured" only. The two
	// debug states are not listed here: AllowDebug adds them.
	Lifecycles []string `json:"lifecycles,omitempty"`
	// AllowDebug also accepts the two platform debug lifecycle states
	// ("non-cca-platform-rot-debug", "recoverable-cca-platform-rot-debug").
	AllowDebug bool `json:"allow_debug,omitempty"`
	// CoRIM names CoRIMs whose reference values are added to those given
	// inline (corim.go: profiles and encodings).
	CoRIM []CoRIMSource `json:"corim,omitempty"`
}

// CPAK is a trusted CCA platform attestation key.
type CPAK struct {
	Name             string `json:"name,omitempty"`
	Key              string `json:"key"`
	ImplementationID string `json:"implementation_id,omitempty"`
	InstanceID       string `json:"instance_id,omitempty"`
}

// CCASoftware is a platform software reference value.
type CCASoftware struct {
	Type     string `json:"type"`
	Value    string `json:"value"`
	SignerID string `json:"signer_id,omitempty"`
	Version  string `json:"version,omitempty"`
}

// EAR configures verifier/ear (the passport model).
type EAR struct {
	// Keys are the EAR signer keys (PEM PUBLIC KEY), or JWKS (a JWK Set
	// file) names them.
	Keys          []EARKey `json:"keys,omitempty"`
	JWKS          string   `json:"jwks,omitempty"`
	Issuer        string   `json:"issuer,omitempty"`
	AcceptWarning bool     `json:"accept_warning,omitempty"`
	// MaxAge is the oldest iat accepted (a Go duration, "5m").
	MaxAge   string   `json:"max_age,omitempty"`
	Profiles []string `json:"profiles,omitempty"`
	// KeyBound, when set, also accepts reusable key-bound passports:
	// EARs without eat_nonce whose key attestation names the Exported
	// Authenticator's key (ear.BindKey), no older than KeyBound.MaxAge.
	// Such a passport proves the platform state at its issuance, not now
	// (see verifier/ear).
	KeyBound *EARKeyBound `json:"key_bound,omitempty"`
}

// EARKeyBound is the policy for key-bound passports.
type EARKeyBound struct {
	// MaxAge is how old a key-bound passport may be (a Go duration,
	// "1h"): its freshness, and how long a revoked platform stays
	// accepted. Required.
	MaxAge string `json:"max_age"`
}

// EARKey is an EAR signer key.
type EARKey struct {
	ID  string `json:"id,omitempty"`
	Key string `json:"key"`
}

// Veraison configures verifier/veraison (background check by a remote
// Veraison service).
type Veraison struct {
	URL string `json:"url"`
	// Keys and JWKS are the service's EAR signing keys (as in EAR).
	Keys         []EARKey `json:"keys,omitempty"`
	JWKS         string   `json:"jwks,omitempty"`
	AllowWarning bool     `json:"allow_warning,omitempty"`
	// RequestTimeout bounds each request (a Go duration).
	RequestTimeout string `json:"request_timeout,omitempty"`
}

// TestKit is the TEST-ONLY test kit's policy (the expat command builds its
// verifier only when told it may use the test kit).
type TestKit struct {
	// TrustedKeys are the test kit signer keys (PEM PUBLIC KEY).
	TrustedKeys []string `json:"trusted_keys"`
	// Measurements maps a component name to its reference digest (hex).
	Measurements map[string]string `json:"measurements,omitempty"`
}

// Parse reads a policy document strictly (see the package documentation)
// and checks what can be checked without the backends: the version, the
// technology and model and the sections they require, and that no other
// section is present.
func Parse(data []byte) (*Policy, error) {
	var p Policy
	if err := Decode(data, &p); err != nil {
		return nil, err
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	return &p, nil
}

// Decode reads a JSON document into v (a pointer to a struct) under the
// rules Parse applies to a policy document: at most MaxSize bytes, members
// matched to v's fields by their exact json tag, unknown and duplicate
// members, null, values of the wrong JSON type and trailing data refused,
// a "comment" string allowed in any object. Errors are *Error naming the
// member by its JSON path. v's fields may be strings, booleans, integers
// (int, int64, uint8, uint32, uint64), structs (or pointers to them),
// slices, arrays and maps with string keys of these, and *Policy:
// programs whose own configuration embeds policy documents
// (examples/localverifier) decode it with Decode, then check the embedded
// policies with Build.
func Decode(data []byte, v any) error {
	if len(data) > MaxSize {
		return &Error{Path: "$", Err: fmt.Errorf("larger than %d bytes", MaxSize)}
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return &Error{Path: "$", Err: fmt.Errorf("policy: internal: Decode into %T", v)}
	}
	if err := checkShape(data, rv.Type().Elem()); err != nil {
		return err
	}
	// checkShape has matched every member to a field by its exact name
	// (or is a "comment"), so the case-insensitive matching of
	// encoding/json cannot pick another field.
	if err := json.Unmarshal(data, v); err != nil {
		return &Error{Path: "$", Err: err}
	}
	return nil
}

func (p *Policy) check() error {
	if p.Version != Version {
		return &Error{Path: "$.version", Err: fmt.Errorf("want %d, got %d", Version, p.Version)}
	}
	present := map[string]bool{
		"tpm": p.TPM != nil, "sev_snp": p.SEVSNP != nil, "tdx": p.TDX != nil,
		"cca": p.CCA != nil, "ear": p.EAR != nil, "veraison": p.Veraison != nil,
		"test_kit": p.TestKit != nil,
	}
	want := ""
	switch p.Technology {
	case TechTPM:
		want = "tpm"
	case TechSEVSNP:
		want = "sev_snp"
	case TechTDX:
		want = "tdx"
	case TechCCA:
		want = "cca"
	case TechTestKit:
		want = "test_kit"
	case "":
	default:
		return &Error{Path: "$.technology", Err: fmt.Errorf("unknown technology %q (want tpm, sev-snp, tdx, cca or test-kit)", p.Technology)}
	}
	section := ""
	switch p.Model {
	case ModelBackgroundCheck:
		switch p.Verifier {
		case "", "local":
			if want == "" {
				return &Error{Path: "$.technology", Err: errors.New("required for the background-check model with a local verifier")}
			}
			section = want
		case "veraison":
			section = "veraison"
		default:
			return &Error{Path: "$.verifier", Err: fmt.Errorf("unknown verifier %q (want local or veraison)", p.Verifier)}
		}
	case ModelPassport:
		if p.Verifier != "" {
			return &Error{Path: "$.verifier", Err: errors.New("not used in the passport model (the ear section names the EAR signers)")}
		}
		section = "ear"
	case "":
		return &Error{Path: "$.model", Err: errors.New("required (background-check or passport)")}
	default:
		return &Error{Path: "$.model", Err: fmt.Errorf("unknown model %q (want background-check or passport)", p.Model)}
	}
	if !present[section] {
		return &Error{Path: "$." + section, Err: fmt.Errorf("required by model %q", p.Model)}
	}
	for _, name := range []string{"tpm", "sev_snp", "tdx", "cca", "ear", "veraison", "test_kit"} {
		if present[name] && name != section {
			return &Error{Path: "$." + name, Err: fmt.Errorf("not used by this policy (model %q, section %q): remove it", p.Model, section)}
		}
	}
	return nil
}

// Section returns the name of the section that configures the verifier
// ("tpm", "sev_snp", "tdx", "cca", "ear", "veraison" or "test_kit").
func (p *Policy) Section() string {
	switch {
	case p.Model == ModelPassport:
		return "ear"
	case p.Verifier == "veraison":
		return "veraison"
	}
	return strings.ReplaceAll(p.Technology, "-", "_")
}

// Duration reads a Go duration string ("5m", "150s") at path: "" is 0,
// anything else must be a positive duration. Errors are *Error at path.
func Duration(path, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, &Error{Path: path, Err: fmt.Errorf("want a positive duration such as \"5m\", got %q", s)}
	}
	return d, nil
}
