package main

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/veraison/ccatoken/platform"

	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/cca"
	"github.com/attested-tls/go-expat/verifier/collateral"
	"github.com/attested-tls/go-expat/verifier/ear"
	"github.com/attested-tls/go-expat/verifier/local"
	"github.com/attested-tls/go-expat/verifier/sevsnp"
	"github.com/attested-tls/go-expat/verifier/tdx"
	"github.com/attested-tls/go-expat/verifier/tpm"
)

// maxConfigSize bounds the configuration file and every file it names.
const maxConfigSize = 1 << 20

// fileConfig is the JSON configuration (see README.md). Unknown fields are
// errors. Paths are relative to the configuration file's directory.
type fileConfig struct {
	EAR struct {
		Key      string   `json:"key"`
		KeyID    string   `json:"key_id"`
		Name     string   `json:"name"`
		Validity duration `json:"validity"`
	} `json:"ear"`
	SessionTTL              duration `json:"session_ttl"`
	MaxSessions             int      `json:"max_sessions"`
	MaxSessionsPerClient    int      `json:"max_sessions_per_client"`
	MaxAppraisalsPerClient  int      `json:"max_concurrent_appraisals_per_client"`
	MaxEvidenceSize         int      `json:"max_evidence_size"`
	MaxConcurrentAppraisals int      `json:"max_concurrent_appraisals"`
	AppraisalTimeout        duration `json:"appraisal_timeout"`

	TPM    *tpmConfig    `json:"tpm"`
	SEVSNP *sevsnpConfig `json:"sevsnp"`
	TDX    *tdxConfig    `json:"tdx"`
	CCA    *ccaConfig    `json:"cca"`
}

type tpmConfig struct {
	TrustedAKs            []string              `json:"trusted_aks"`
	AKRoots               string                `json:"ak_roots"`
	PCRBank               string                `json:"pcr_bank"`
	PCRPolicy             map[string][]hexBytes `json:"pcr_policy"`
	AcceptAnyPCRs         bool                  `json:"accept_any_pcrs"`
	RequireKeyAttestation bool                  `json:"require_key_attestation"`
	RequireEventLog       bool                  `json:"require_event_log"`
}

// tcbConfig is a SEV-SNP TCB minimum (security patch levels).
type tcbConfig struct {
	BootLoader uint8 `json:"bootloader"`
	TEE        uint8 `json:"tee"`
	SNP        uint8 `json:"snp"`
	Microcode  uint8 `json:"microcode"`
}

type sevsnpConfig struct {
	Roots []struct {
		ProductLine string `json:"product_line"`
		ARK         string `json:"ark"`
		ASK         string `json:"ask"`
		ASVK        string `json:"asvk"`
	} `json:"roots"`
	CollateralDir   string   `json:"collateral_dir"`
	FetchFromKDS    bool     `json:"fetch_from_kds"`
	KDSURL          string   `json:"kds_url"`
	CacheDir        string   `json:"cache_dir"`
	FailureTTL      duration `json:"failure_ttl"`
	CheckRevocation bool     `json:"check_revocation"`
	ProductLine     string   `json:"product_line"`
	Policy          struct {
		Measurements             []hexBytes `json:"measurements"`
		AcceptAnyMeasurement     bool       `json:"accept_any_measurement"`
		HostData                 hexBytes   `json:"host_data"`
		MinimumTCB               tcbConfig  `json:"minimum_tcb"`
		AllowProvisionalFirmware bool       `json:"allow_provisional_firmware"`
		MinGuestSVN              uint32     `json:"min_guest_svn"`
		AllowDebug               bool       `json:"allow_debug"`
		AllowMigrationAgent      bool       `json:"allow_migration_agent"`
		VMPLs                    []uint32   `json:"vmpls"`
	} `json:"policy"`
}

type tdxConfig struct {
	TrustedRoots    string `json:"trusted_roots"`
	PCSURL          string `json:"pcs_url"`
	RootCRLURL      string `json:"root_crl_url"`
	SkipRevocation  bool   `json:"skip_revocation"`
	MaxCacheEntries int    `json:"max_cache_entries"`
	Policy          struct {
		MRTD                     []hexBytes    `json:"mrtd"`
		AcceptAnyMRTD            bool          `json:"accept_any_mrtd"`
		RTMR                     [4][]hexBytes `json:"rtmr"`
		MRConfigID               hexBytes      `json:"mr_config_id"`
		MROwner                  hexBytes      `json:"mr_owner"`
		MROwnerConfig            hexBytes      `json:"mr_owner_config"`
		XFAM                     hexBytes      `json:"xfam"`
		RequiredTDAttributes     mask64        `json:"required_td_attributes"`
		ForbiddenTDAttributes    mask64        `json:"forbidden_td_attributes"`
		AllowDebug               bool          `json:"allow_debug"`
		AllowSWHardeningNeeded   bool          `json:"allow_sw_hardening_needed"`
		AllowConfigurationNeeded bool          `json:"allow_configuration_needed"`
		AllowOutOfDate           bool          `json:"allow_out_of_date"`
	} `json:"policy"`
}

type ccaConfig struct {
	CPAKs []struct {
		Name             string   `json:"name"`
		Key              string   `json:"key"`
		ImplementationID hexBytes `json:"implementation_id"`
		InstanceID       hexBytes `json:"instance_id"`
	} `json:"cpaks"`
	Policy struct {
		RIMs              []hexBytes    `json:"rims"`
		AcceptAnyRIM      bool          `json:"accept_any_rim"`
		REMs              [][4]hexBytes `json:"rems"`
		AcceptAnySoftware bool          `json:"accept_any_software"`
		Software          []struct {
			Type     string   `json:"type"`
			Value    hexBytes `json:"value"`
			SignerID hexBytes `json:"signer_id"`
			Version  string   `json:"version"`
		} `json:"software"`
		PersonalizationValues []hexBytes `json:"personalization_values"`
		PlatformConfigs       []hexBytes `json:"platform_configs"`
		Lifecycles            []string   `json:"lifecycles"`
	} `json:"policy"`
}

// mask64 is a 64-bit mask written as a string: "0x" and hexadecimal
// digits, or decimal digits.
type mask64 uint64

func (m *mask64) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("a bit mask must be a string such as \"0x10000000\"")
	}
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return fmt.Errorf("bad bit mask %q", s)
	}
	*m = mask64(v)
	return nil
}

// duration is a time.Duration written as a Go duration string ("150s").
type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("duration must be a string such as \"30s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("bad duration %q", s)
	}
	*d = duration(v)
	return nil
}

// hexBytes is a byte string written in hexadecimal.
type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("expected a hexadecimal string")
	}
	v, err := hex.DecodeString(s)
	if err != nil {
		return fmt.Errorf("bad hexadecimal %q", s)
	}
	*h = v
	return nil
}

func unhex(in []hexBytes) [][]byte {
	out := make([][]byte, 0, len(in))
	for _, v := range in {
		out = append(out, v)
	}
	return out
}

// parseConfig decodes the configuration strictly: unknown fields, trailing
// data and files over maxConfigSize are refused.
func parseConfig(b []byte) (*fileConfig, error) {
	if len(b) > maxConfigSize {
		return nil, errors.New("configuration larger than 1 MiB")
	}
	var c fileConfig
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&c); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("configuration: trailing data")
	}
	if c.TPM == nil && c.SEVSNP == nil && c.TDX == nil && c.CCA == nil {
		return nil, errors.New("configuration: no backend (tpm, sevsnp, tdx, cca) configured")
	}
	if c.EAR.Key == "" {
		return nil, errors.New("configuration: ear.key (the EAR signing key, PEM) is required")
	}
	return &c, nil
}

// backends names the configured backends.
func (c *fileConfig) backends() []string {
	var out []string
	for _, b := range []struct {
		name string
		on   bool
	}{{"tpm", c.TPM != nil}, {"sevsnp", c.SEVSNP != nil}, {"tdx", c.TDX != nil}, {"cca", c.CCA != nil}} {
		if b.on {
			out = append(out, b.name)
		}
	}
	return out
}

// loader reads files named by the configuration, relative to its
// directory.
type loader struct{ dir string }

func (l loader) read(name string) ([]byte, error) {
	if name == "" {
		return nil, errors.New("empty file name")
	}
	p := name
	if !filepath.IsAbs(p) {
		p = filepath.Join(l.dir, p)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxConfigSize {
		return nil, fmt.Errorf("%s: larger than 1 MiB", name)
	}
	return b, nil
}

func (l loader) path(name string) string {
	if name == "" || filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(l.dir, name)
}

// pemBlocks returns the DER of every PEM block of type typ in name; other
// block types or bytes outside blocks (except whitespace) are errors.
func (l loader) pemBlocks(name, typ string) ([][]byte, error) {
	b, err := l.read(name)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	rest := b
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != typ {
			return nil, fmt.Errorf("%s: PEM block %q, want %q", name, blk.Type, typ)
		}
		out = append(out, blk.Bytes)
	}
	if len(bytes.TrimSpace(rest)) != 0 || len(out) == 0 {
		return nil, fmt.Errorf("%s: not a sequence of %q PEM blocks", name, typ)
	}
	return out, nil
}

func (l loader) publicKey(name string) (crypto.PublicKey, error) {
	ders, err := l.pemBlocks(name, "PUBLIC KEY")
	if err != nil {
		return nil, err
	}
	if len(ders) != 1 {
		return nil, fmt.Errorf("%s: want one public key", name)
	}
	return x509.ParsePKIXPublicKey(ders[0])
}

func (l loader) certs(name string) ([]*x509.Certificate, error) {
	ders, err := l.pemBlocks(name, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for _, d := range ders {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func (l loader) cert(name string) (*x509.Certificate, error) {
	if name == "" {
		return nil, nil
	}
	cs, err := l.certs(name)
	if err != nil {
		return nil, err
	}
	if len(cs) != 1 {
		return nil, fmt.Errorf("%s: want one certificate", name)
	}
	return cs[0], nil
}

func (l loader) signer(name string) (crypto.Signer, error) {
	ders, err := l.pemBlocks(name, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	if len(ders) != 1 {
		return nil, fmt.Errorf("%s: want one PKCS #8 private key", name)
	}
	k, err := x509.ParsePKCS8PrivateKey(ders[0])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", name)
	}
	return s, nil
}

// build turns the configuration into a local.Config: a Dispatch over the
// configured backends and an ear.Issuer.
func build(c *fileConfig, l loader, httpClient *http.Client) (local.Config, error) {
	d := &verifier.Dispatch{Verifiers: map[string]verifier.Verifier{}}
	if c.TPM != nil {
		v, err := buildTPM(c.TPM, l)
		if err != nil {
			return local.Config{}, fmt.Errorf("tpm: %w", err)
		}
		d.Verifiers[cmw.MediaTypeTPM2] = v
	}
	if c.SEVSNP != nil {
		v, err := buildSEVSNP(c.SEVSNP, l, httpClient)
		if err != nil {
			return local.Config{}, fmt.Errorf("sevsnp: %w", err)
		}
		d.Verifiers[cmw.MediaTypeSEVSNP] = v
	}
	if c.TDX != nil {
		v, err := buildTDX(c.TDX, l, httpClient)
		if err != nil {
			return local.Config{}, fmt.Errorf("tdx: %w", err)
		}
		d.Verifiers[cmw.MediaTypeTDX] = v
	}
	if c.CCA != nil {
		v, err := buildCCA(c.CCA, l)
		if err != nil {
			return local.Config{}, fmt.Errorf("cca: %w", err)
		}
		d.Verifiers[cmw.MediaTypeCCA] = v
	}
	key, err := l.signer(c.EAR.Key)
	if err != nil {
		return local.Config{}, fmt.Errorf("ear.key: %w", err)
	}
	return local.Config{
		Appraiser:                        d,
		Issuer:                           &ear.Issuer{Key: key, KeyID: c.EAR.KeyID, Name: c.EAR.Name, Validity: time.Duration(c.EAR.Validity)},
		SessionTTL:                       time.Duration(c.SessionTTL),
		MaxSessions:                      c.MaxSessions,
		MaxSessionsPerClient:             c.MaxSessionsPerClient,
		MaxConcurrentAppraisalsPerClient: c.MaxAppraisalsPerClient,
		MaxEvidenceSize:                  c.MaxEvidenceSize,
		MaxConcurrentAppraisals:          c.MaxConcurrentAppraisals,
		AppraisalTimeout:                 time.Duration(c.AppraisalTimeout),
	}, nil
}

func buildTPM(c *tpmConfig, l loader) (verifier.Verifier, error) {
	cfg := &tpm.Config{RequireEventLog: c.RequireEventLog, RequireKeyAttestation: c.RequireKeyAttestation,
		AcceptAnyPCRs: c.AcceptAnyPCRs, Name: "localverifier/tpm"}
	for _, f := range c.TrustedAKs {
		k, err := l.publicKey(f)
		if err != nil {
			return nil, err
		}
		cfg.TrustedAKs = append(cfg.TrustedAKs, k)
	}
	if c.AKRoots != "" {
		cs, err := l.certs(c.AKRoots)
		if err != nil {
			return nil, err
		}
		cfg.AKRoots = x509.NewCertPool()
		for _, ca := range cs {
			cfg.AKRoots.AddCert(ca)
		}
	}
	if len(cfg.TrustedAKs) == 0 && cfg.AKRoots == nil {
		return nil, errors.New("neither trusted_aks nor ak_roots: no AK would be trusted")
	}
	switch c.PCRBank {
	case "", "sha256":
		cfg.PCRBank = crypto.SHA256
	case "sha1":
		cfg.PCRBank = crypto.SHA1
	case "sha384":
		cfg.PCRBank = crypto.SHA384
	case "sha512":
		cfg.PCRBank = crypto.SHA512
	default:
		return nil, fmt.Errorf("pcr_bank %q", c.PCRBank)
	}
	if len(c.PCRPolicy) > 0 {
		cfg.PCRPolicy = map[int][][]byte{}
		for k, vals := range c.PCRPolicy {
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i > 23 || strconv.Itoa(i) != k {
				return nil, fmt.Errorf("pcr_policy: bad PCR index %q", k)
			}
			cfg.PCRPolicy[i] = unhex(vals)
		}
	}
	return tpm.New(cfg)
}

func buildSEVSNP(c *sevsnpConfig, l loader, hc *http.Client) (verifier.Verifier, error) {
	cfg := sevsnp.Config{CheckRevocation: c.CheckRevocation, ProductLine: c.ProductLine}
	if c.FailureTTL != 0 && !c.FetchFromKDS {
		return nil, errors.New("failure_ttl needs fetch_from_kds")
	}
	for _, r := range c.Roots {
		ark, err := l.cert(r.ARK)
		if err != nil {
			return nil, err
		}
		if ark == nil {
			return nil, errors.New("roots: ark is required")
		}
		ask, err := l.cert(r.ASK)
		if err != nil {
			return nil, err
		}
		asvk, err := l.cert(r.ASVK)
		if err != nil {
			return nil, err
		}
		cfg.Roots = append(cfg.Roots, sevsnp.Root{ProductLine: r.ProductLine, ARK: ark, ASK: ask, ASVK: asvk})
	}
	switch {
	case c.CollateralDir != "" && c.FetchFromKDS:
		return nil, errors.New("collateral_dir and fetch_from_kds are exclusive")
	case c.CollateralDir != "":
		b, err := sevsnp.LoadBundle(l.path(c.CollateralDir))
		if err != nil {
			return nil, err
		}
		cfg.Collateral = b
	case c.FetchFromKDS:
		cfg.Collateral = &sevsnp.Cache{Source: &sevsnp.KDS{BaseURL: c.KDSURL, HTTP: collateral.HTTP{Client: hc}}, Dir: l.path(c.CacheDir),
			FailureTTL: time.Duration(c.FailureTTL)}
	}
	p := c.Policy
	cfg.Policy = sevsnp.Policy{
		Measurements: unhex(p.Measurements), AcceptAnyMeasurement: p.AcceptAnyMeasurement, HostData: p.HostData,
		MinimumTCB: sevsnp.TCB{BootLoader: p.MinimumTCB.BootLoader, TEE: p.MinimumTCB.TEE, SNP: p.MinimumTCB.SNP,
			Microcode: p.MinimumTCB.Microcode},
		AllowProvisionalFirmware: p.AllowProvisionalFirmware,
		MinGuestSVN:              p.MinGuestSVN, AllowDebug: p.AllowDebug, AllowMigrationAgent: p.AllowMigrationAgent, VMPLs: p.VMPLs,
	}
	return sevsnp.New(&cfg)
}

func buildTDX(c *tdxConfig, l loader, hc *http.Client) (verifier.Verifier, error) {
	opts := &tdx.Config{SkipRevocation: c.SkipRevocation, Name: "localverifier/tdx", MaxCacheEntries: c.MaxCacheEntries,
		Getter: &tdx.PCS{HTTP: collateral.HTTP{Client: hc}, BaseURL: c.PCSURL, RootCRLURL: c.RootCRLURL}}
	if c.TrustedRoots != "" {
		cs, err := l.certs(c.TrustedRoots)
		if err != nil {
			return nil, err
		}
		opts.TrustedRoots = cs
	}
	p := c.Policy
	opts.Policy = tdx.Policy{
		MRTD: unhex(p.MRTD), AcceptAnyMRTD: p.AcceptAnyMRTD,
		MRConfigID: p.MRConfigID, MROwner: p.MROwner, MROwnerConfig: p.MROwnerConfig, XFAM: p.XFAM,
		RequiredTDAttributes: uint64(p.RequiredTDAttributes), ForbiddenTDAttributes: uint64(p.ForbiddenTDAttributes),
		AllowDebug: p.AllowDebug, AllowSWHardeningNeeded: p.AllowSWHardeningNeeded,
		AllowConfigurationNeeded: p.AllowConfigurationNeeded, AllowOutOfDate: p.AllowOutOfDate,
	}
	for i, vals := range p.RTMR {
		opts.Policy.RTMR[i] = unhexNil(vals)
	}
	return tdx.New(opts)
}

func buildCCA(c *ccaConfig, l loader) (verifier.Verifier, error) {
	cfg := cca.Config{Name: "localverifier/cca"}
	for _, k := range c.CPAKs {
		pub, err := l.publicKey(k.Key)
		if err != nil {
			return nil, err
		}
		name := k.Name
		if name == "" {
			name = k.Key
		}
		cfg.TrustedKeys = append(cfg.TrustedKeys, cca.TrustedKey{Name: name, Key: pub, ImplementationID: k.ImplementationID, InstanceID: k.InstanceID})
	}
	if len(cfg.TrustedKeys) == 0 {
		return nil, errors.New("no CPAK in cpaks: every token would be rejected")
	}
	p := c.Policy
	cfg.Policy = cca.Policy{RIMs: unhex(p.RIMs), AcceptAnyRIM: p.AcceptAnyRIM, AcceptAnySoftware: p.AcceptAnySoftware,
		PersonalizationValues: unhexNil(p.PersonalizationValues), PlatformConfigs: unhexNil(p.PlatformConfigs)}
	if p.REMs != nil {
		cfg.Policy.REMs = [][4][]byte{}
		for _, set := range p.REMs {
			cfg.Policy.REMs = append(cfg.Policy.REMs, [4][]byte{set[0], set[1], set[2], set[3]})
		}
	}
	for _, name := range p.Lifecycles {
		st, ok := lifecycleByName(name)
		if !ok {
			return nil, fmt.Errorf("policy.lifecycles: unknown state %q", name)
		}
		cfg.Policy.Lifecycles = append(cfg.Policy.Lifecycles, st)
	}
	for _, s := range p.Software {
		cfg.Policy.Software = append(cfg.Policy.Software, cca.SoftwareComponent{Type: s.Type, Value: s.Value, SignerID: s.SignerID, Version: s.Version})
	}
	return cca.New(&cfg)
}

// unhexNil keeps "absent" (nil: no check) apart from an empty list.
func unhexNil(in []hexBytes) [][]byte {
	if in == nil {
		return nil
	}
	return unhex(in)
}

// lifecycleByName returns the CCA lifecycle state of that name
// ("secured", "non-cca-platform-rot-debug", ...: the names of
// github.com/veraison/ccatoken's platform.LifeCycleState).
func lifecycleByName(name string) (platform.LifeCycleState, bool) {
	for st := platform.StateUnknown; st < platform.StateInvalid; st++ {
		if st.String() == name {
			return st, true
		}
	}
	return 0, false
}
