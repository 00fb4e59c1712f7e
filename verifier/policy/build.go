package policy

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/veraison/ccatoken/platform"

	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/cca"
	"github.com/attested-tls/go-expat/verifier/collateral"
	"github.com/attested-tls/go-expat/verifier/ear"
	"github.com/attested-tls/go-expat/verifier/sevsnp"
	"github.com/attested-tls/go-expat/verifier/tdx"
	"github.com/attested-tls/go-expat/verifier/tpm"
	"github.com/attested-tls/go-expat/verifier/veraison"
)

// maxKeyFile bounds a key, certificate or JWK Set file a policy names.
const maxKeyFile = 1 << 20

// Options are what Build needs besides the policy. The zero value reads
// files relative to the current directory and has no test kit.
type Options struct {
	// Dir is the directory that file names in the policy are relative to
	// (usually the policy file's). Empty means the current directory.
	Dir string
	// HTTPClient is used by remote verifiers and collateral fetches; nil
	// means the backends' defaults.
	HTTPClient *http.Client
	// Time is the verifiers' clock; nil means time.Now.
	Time func() time.Time
	// TestKit builds the TEST-ONLY test kit's verifier for a "test-kit"
	// policy. Nil refuses such policies: library packages never import the
	// test kit, and a program that accepts test-kit Evidence must say so.
	TestKit func(keys []*ecdsa.PublicKey, refs []verifier.Measurement) (verifier.Verifier, error)
}

// Load reads and parses the policy file at path: YAML (ParseYAML) when its
// name ends in .yaml or .yml, JSON (Parse) otherwise.
func Load(path string) (*Policy, error) {
	b, err := readBounded(path, MaxSize)
	if err != nil {
		return nil, &Error{Path: "$", Err: err}
	}
	if ext := filepath.Ext(path); ext == ".yaml" || ext == ".yml" {
		return ParseYAML(b)
	}
	return Parse(b)
}

// DecodeFile reads the JSON file at path (at most MaxSize bytes) into v
// with Decode.
func DecodeFile(path string, v any) error {
	b, err := readBounded(path, MaxSize)
	if err != nil {
		return &Error{Path: "$", Err: err}
	}
	return Decode(b, v)
}

// Path resolves a file name written in a policy (or in a document decoded
// with Decode) against o.Dir; absolute names are kept.
func (o *Options) Path(name string) string {
	if o == nil {
		o = &Options{}
	}
	return builder{opts: o}.path(name)
}

// PEM returns the DER of the one PEM block of type typ in s, which is PEM
// text or the name of a file (at most 1 MiB, relative to o.Dir) holding
// only that block, as keys and certificates in a policy are read. Errors
// are *Error at path.
func (o *Options) PEM(path, s, typ string) ([]byte, error) {
	if o == nil {
		o = &Options{}
	}
	return builder{opts: o}.pemBlock(path, s, typ)
}

// Build returns the Verifier that p describes, built by the backend's New.
// Errors are *Error naming the member at fault; a backend's refusal is
// reported at the policy's section.
func Build(p *Policy, opts *Options) (verifier.Verifier, error) {
	if p == nil {
		return nil, &Error{Path: "$", Err: errors.New("no policy")}
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	if opts == nil {
		opts = &Options{}
	}
	b := builder{opts: opts}
	switch p.Section() {
	case "tpm":
		return b.tpm(p.TPM)
	case "sev_snp":
		return b.sevsnp(p.SEVSNP)
	case "tdx":
		return b.tdx(p.TDX)
	case "cca":
		return b.cca(p.CCA)
	case "ear":
		return b.ear(p.EAR)
	case "veraison":
		return b.veraison(p.Veraison)
	case "test_kit":
		return b.testKit(p.TestKit)
	}
	return nil, &Error{Path: "$", Err: errors.New("no verifier section")}
}

type builder struct{ opts *Options }

func (b builder) tpm(s *TPM) (verifier.Verifier, error) {
	const at = "$.tpm"
	cfg := &tpm.Config{
		AcceptAnyPCRs:         s.AcceptAnyPCRs,
		RequireKeyAttestation: s.RequireKeyAttestation,
		RequireEventLog:       s.RequireEventLog,
		Time:                  b.opts.Time,
	}
	size := 32
	switch s.PCRBank {
	case "", "sha256":
		cfg.PCRBank = crypto.SHA256
	case "sha1":
		cfg.PCRBank, size = crypto.SHA1, 20
	case "sha384":
		cfg.PCRBank, size = crypto.SHA384, 48
	case "sha512":
		cfg.PCRBank, size = crypto.SHA512, 64
	default:
		return nil, &Error{Path: at + ".pcr_bank", Err: fmt.Errorf("unknown bank %q (want sha1, sha256, sha384 or sha512)", s.PCRBank)}
	}
	for i, k := range s.TrustedAKs {
		path := fmt.Sprintf("%s.trusted_aks[%d]", at, i)
		var pub crypto.PublicKey
		var err error
		if h, herr := hex.DecodeString(strings.TrimSpace(k)); herr == nil && len(h) > 0 {
			pub, err = tpm.ParseAKPublic(h)
		} else {
			pub, err = b.publicKey(path, k)
		}
		if err != nil {
			return nil, wrap(path, err)
		}
		cfg.TrustedAKs = append(cfg.TrustedAKs, pub)
	}
	if len(s.AKRoots) > 0 {
		pool, err := b.certPool(at+".ak_roots", s.AKRoots)
		if err != nil {
			return nil, err
		}
		cfg.AKRoots = pool
	}
	if len(cfg.TrustedAKs) == 0 && cfg.AKRoots == nil {
		return nil, &Error{Path: at + ".trusted_aks", Err: errors.New("no trust anchor: give trusted_aks or ak_roots")}
	}
	if len(s.PCRs) > 0 {
		cfg.PCRPolicy = map[int][][]byte{}
		for _, idx := range sortedKeys(s.PCRs) {
			path := at + ".pcrs[" + strconv.Quote(idx) + "]"
			n, err := strconv.Atoi(idx)
			if err != nil || n < 0 || n > 23 || strconv.Itoa(n) != idx {
				return nil, &Error{Path: path, Err: errors.New("want a PCR index 0..23")}
			}
			if len(s.PCRs[idx]) == 0 {
				return nil, &Error{Path: path, Err: errors.New("no accepted value")}
			}
			for j, v := range s.PCRs[idx] {
				d, err := hexField(fmt.Sprintf("%s[%d]", path, j), v, size)
				if err != nil {
					return nil, err
				}
				cfg.PCRPolicy[n] = append(cfg.PCRPolicy[n], d)
			}
		}
	}
	w, err := b.applyCoRIM(at, s.CoRIM, cfg)
	if err != nil {
		return nil, err
	}
	v, err := tpm.New(cfg)
	if err != nil {
		return nil, &Error{Path: at, Err: err}
	}
	return b.within(v, w)
}

func (b builder) sevsnp(s *SEVSNP) (verifier.Verifier, error) {
	const at = "$.sev_snp"
	cfg := &sevsnp.Config{ProductLine: s.ProductLine, CheckRevocation: s.CheckRevocation, Time: b.opts.Time}
	if c := s.Collateral; c != nil {
		switch {
		case c.FetchFromKDS == (c.BundleDir != ""):
			return nil, &Error{Path: at + ".collateral", Err: errors.New("want exactly one of fetch_from_kds and bundle_dir")}
		case c.BundleDir != "":
			if c.KDSURL != "" || c.CacheDir != "" || c.FailureTTL != "" {
				return nil, &Error{Path: at + ".collateral.bundle_dir", Err: errors.New("kds_url, cache_dir and failure_ttl go with fetch_from_kds")}
			}
			bundle, err := sevsnp.LoadBundle(b.path(c.BundleDir))
			if err != nil {
				return nil, &Error{Path: at + ".collateral.bundle_dir", Err: err}
			}
			cfg.Collateral = bundle
		default:
			dir := ""
			if c.CacheDir != "" {
				dir = b.path(c.CacheDir)
			}
			ttl, err := Duration(at+".collateral.failure_ttl", c.FailureTTL)
			if err != nil {
				return nil, err
			}
			cfg.Collateral = &sevsnp.Cache{Source: &sevsnp.KDS{BaseURL: c.KDSURL, HTTP: collateral.HTTP{Client: b.opts.HTTPClient}},
				Dir: dir, Time: b.opts.Time, FailureTTL: ttl}
		}
	} else if s.CheckRevocation {
		return nil, &Error{Path: at + ".check_revocation", Err: errors.New("needs collateral (the CRL comes from there)")}
	}
	pol := &cfg.Policy
	var err error
	if pol.Measurements, err = hexList(at+".measurements", s.Measurements, 48); err != nil {
		return nil, err
	}
	pol.AcceptAnyMeasurement = s.AcceptAnyMeasurement
	if s.HostData != "" {
		if pol.HostData, err = hexField(at+".host_data", s.HostData, 32); err != nil {
			return nil, err
		}
	}
	if t := s.MinimumTCB; t != nil {
		pol.MinimumTCB = sevsnp.TCB{BootLoader: t.BootLoader, TEE: t.TEE, SNP: t.SNP, Microcode: t.Microcode}
	}
	pol.MinGuestSVN = s.MinGuestSVN
	pol.AllowDebug = s.AllowDebug
	pol.AllowMigrationAgent = s.AllowMigrationAgent
	pol.AllowProvisionalFirmware = s.AllowProvisionalFirmware
	pol.VMPLs = s.VMPLs
	for i, r := range s.Roots {
		path := fmt.Sprintf("%s.roots[%d]", at, i)
		root := sevsnp.Root{ProductLine: r.ProductLine}
		if r.ProductLine == "" {
			return nil, &Error{Path: path + ".product_line", Err: errors.New("required")}
		}
		if root.ARK, err = b.certificate(path+".ark", r.ARK); err != nil {
			return nil, err
		}
		if r.ASK != "" {
			if root.ASK, err = b.certificate(path+".ask", r.ASK); err != nil {
				return nil, err
			}
		}
		if r.ASVK != "" {
			if root.ASVK, err = b.certificate(path+".asvk", r.ASVK); err != nil {
				return nil, err
			}
		}
		cfg.Roots = append(cfg.Roots, root)
	}
	w, err := b.applyCoRIM(at, s.CoRIM, cfg)
	if err != nil {
		return nil, err
	}
	v, err := sevsnp.New(cfg)
	if err != nil {
		return nil, &Error{Path: at, Err: err}
	}
	return b.within(v, w)
}

func (b builder) tdx(s *TDX) (verifier.Verifier, error) {
	const at = "$.tdx"
	cfg := &tdx.Config{Time: b.opts.Time, SkipRevocation: s.SkipRevocation, MaxCacheEntries: s.MaxCacheEntries}
	if s.MaxCacheEntries < 0 {
		return nil, &Error{Path: at + ".max_cache_entries", Err: errors.New("negative")}
	}
	if b.opts.HTTPClient != nil || s.PCSURL != "" || s.RootCRLURL != "" {
		cfg.Getter = &tdx.PCS{BaseURL: s.PCSURL, RootCRLURL: s.RootCRLURL, HTTP: collateral.HTTP{Client: b.opts.HTTPClient}}
	}
	pol := &cfg.Policy
	var err error
	if pol.MRTD, err = hexList(at+".mrtd", s.MRTD, 48); err != nil {
		return nil, err
	}
	pol.AcceptAnyMRTD = s.AcceptAnyMRTD
	for i := range s.RTMR {
		if pol.RTMR[i], err = hexList(fmt.Sprintf("%s.rtmr[%d]", at, i), s.RTMR[i], 48); err != nil {
			return nil, err
		}
	}
	for _, f := range []struct {
		name, v string
		dst     *[]byte
		n       int
	}{
		{"mr_config_id", s.MRConfigID, &pol.MRConfigID, 48},
		{"mr_owner", s.MROwner, &pol.MROwner, 48},
		{"mr_owner_config", s.MROwnerConfig, &pol.MROwnerConfig, 48},
		{"xfam", s.XFAM, &pol.XFAM, 8},
	} {
		if f.v != "" {
			if *f.dst, err = hexField(at+"."+f.name, f.v, f.n); err != nil {
				return nil, err
			}
		}
	}
	for _, m := range []struct {
		name, v string
		dst     *uint64
	}{
		{"required_td_attributes", s.RequiredTDAttributes, &pol.RequiredTDAttributes},
		{"forbidden_td_attributes", s.ForbiddenTDAttributes, &pol.ForbiddenTDAttributes},
	} {
		if *m.dst, err = mask64(at+"."+m.name, m.v); err != nil {
			return nil, err
		}
		if *m.dst&tdAttrDebug != 0 {
			return nil, &Error{Path: at + "." + m.name, Err: errors.New("the DEBUG bit (0) is governed by allow_debug: leave it out of the masks")}
		}
	}
	if both := pol.RequiredTDAttributes & pol.ForbiddenTDAttributes; both != 0 {
		return nil, &Error{Path: at + ".forbidden_td_attributes", Err: fmt.Errorf("bits %#x are also required: every quote would be rejected", both)}
	}
	pol.AllowDebug = s.AllowDebug
	pol.AllowSWHardeningNeeded = s.AllowSWHardeningNeeded
	pol.AllowConfigurationNeeded = s.AllowConfigurationNeeded
	pol.AllowOutOfDate = s.AllowOutOfDate
	for i, c := range s.TrustedRoots {
		cert, err := b.certificate(fmt.Sprintf("%s.trusted_roots[%d]", at, i), c)
		if err != nil {
			return nil, err
		}
		cfg.TrustedRoots = append(cfg.TrustedRoots, cert)
	}
	w, err := b.applyCoRIM(at, s.CoRIM, cfg)
	if err != nil {
		return nil, err
	}
	v, err := tdx.New(cfg)
	if err != nil {
		return nil, &Error{Path: at, Err: err}
	}
	return b.within(v, w)
}

func (b builder) cca(s *CCA) (verifier.Verifier, error) {
	const at = "$.cca"
	cfg := &cca.Config{Time: b.opts.Time}
	if len(s.CPAKs) == 0 {
		return nil, &Error{Path: at + ".cpaks", Err: errors.New("no trusted CPAK")}
	}
	var err error
	for i, k := range s.CPAKs {
		path := fmt.Sprintf("%s.cpaks[%d]", at, i)
		tk := cca.TrustedKey{Name: k.Name}
		if tk.Key, err = b.publicKey(path+".key", k.Key); err != nil {
			return nil, err
		}
		if k.ImplementationID != "" {
			if tk.ImplementationID, err = hexField(path+".implementation_id", k.ImplementationID, 32); err != nil {
				return nil, err
			}
		}
		if k.InstanceID != "" {
			if tk.InstanceID, err = hexField(path+".instance_id", k.InstanceID, 33); err != nil {
				return nil, err
			}
		}
		cfg.TrustedKeys = append(cfg.TrustedKeys, tk)
	}
	pol := &cfg.Policy
	if pol.RIMs, err = hexList(at+".rims", s.RIMs, 0); err != nil {
		return nil, err
	}
	pol.AcceptAnyRIM = s.AcceptAnyRIM
	for i, set := range s.REMs {
		var rems [4][]byte
		for j := range set {
			if rems[j], err = hexField(fmt.Sprintf("%s.rems[%d][%d]", at, i, j), set[j], 0); err != nil {
				return nil, err
			}
		}
		pol.REMs = append(pol.REMs, rems)
	}
	if pol.PersonalizationValues, err = hexList(at+".personalization_values", s.PersonalizationValues, 64); err != nil {
		return nil, err
	}
	for i, sw := range s.Software {
		path := fmt.Sprintf("%s.software[%d]", at, i)
		c := cca.SoftwareComponent{Type: sw.Type, Version: sw.Version}
		if sw.Type == "" {
			return nil, &Error{Path: path + ".type", Err: errors.New("required")}
		}
		if c.Value, err = hexField(path+".value", sw.Value, 0); err != nil {
			return nil, err
		}
		if sw.SignerID != "" {
			if c.SignerID, err = hexField(path+".signer_id", sw.SignerID, 0); err != nil {
				return nil, err
			}
		}
		pol.Software = append(pol.Software, c)
	}
	pol.AcceptAnySoftware = s.AcceptAnySoftware
	if pol.PlatformConfigs, err = hexList(at+".platform_configs", s.PlatformConfigs, 0); err != nil {
		return nil, err
	}
	if pol.Lifecycles, err = lifecycles(at+".lifecycles", s.Lifecycles, s.AllowDebug); err != nil {
		return nil, err
	}
	w, err := b.applyCoRIM(at, s.CoRIM, cfg)
	if err != nil {
		return nil, err
	}
	v, err := cca.New(cfg)
	if err != nil {
		return nil, &Error{Path: at, Err: err}
	}
	return b.within(v, w)
}

// tdAttrDebug is the DEBUG bit of TD_ATTRIBUTES.
const tdAttrDebug = 1

// mask64 reads a 64-bit mask written "0x" and 1 to 16 hex digits; "" is 0.
func mask64(path, s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	h, ok := strings.CutPrefix(s, "0x")
	if !ok || len(h) == 0 || len(h) > 16 {
		return 0, &Error{Path: path, Err: fmt.Errorf("want \"0x\" and 1 to 16 hex digits, got %q", s)}
	}
	v, err := strconv.ParseUint(h, 16, 64)
	if err != nil {
		return 0, &Error{Path: path, Err: fmt.Errorf("want \"0x\" and 1 to 16 hex digits, got %q", s)}
	}
	return v, nil
}

// lifecycles returns the CCA lifecycle states accepted: those named (by
// platform.LifeCycleState's String; "secured" when names is nil), and the
// two debug states if allowDebug. Nil (cca.Policy's "secured only") when
// neither is given.
func lifecycles(path string, names []string, allowDebug bool) ([]platform.LifeCycleState, error) {
	debug := []platform.LifeCycleState{platform.StateNonCCAPlatformDebug, platform.StateRecoverableCCAPlatformDebug}
	if names == nil && !allowDebug {
		return nil, nil
	}
	if names != nil && len(names) == 0 {
		return nil, &Error{Path: path, Err: errors.New("empty: every token would be rejected (leave it out for \"secured\" only)")}
	}
	var out []platform.LifeCycleState
	if names == nil {
		out = append(out, platform.StateSecured)
	}
	for i, name := range names {
		p := fmt.Sprintf("%s[%d]", path, i)
		st := platform.StateUnknown
		for ; st < platform.StateInvalid && st.String() != name; st++ {
		}
		switch {
		case st == platform.StateInvalid:
			return nil, &Error{Path: p, Err: fmt.Errorf("unknown lifecycle state %q", name)}
		case slices.Contains(debug, st):
			return nil, &Error{Path: p, Err: fmt.Errorf("%q is a debug state: set allow_debug instead", name)}
		case slices.Contains(out, st):
			return nil, &Error{Path: p, Err: errors.New("listed twice")}
		}
		out = append(out, st)
	}
	if allowDebug {
		out = append(out, debug...)
	}
	return out, nil
}

func (b builder) earKeys(at string, keys []EARKey, jwks string) ([]ear.TrustedKey, error) {
	var out []ear.TrustedKey
	for i, k := range keys {
		path := fmt.Sprintf("%s.keys[%d]", at, i)
		pub, err := b.publicKey(path+".key", k.Key)
		if err != nil {
			return nil, err
		}
		out = append(out, ear.TrustedKey{ID: k.ID, Key: pub})
	}
	if jwks != "" {
		data, err := b.read(at+".jwks", jwks)
		if err != nil {
			return nil, err
		}
		ks, err := ear.KeysFromJWKS(data)
		if err != nil {
			return nil, &Error{Path: at + ".jwks", Err: err}
		}
		out = append(out, ks...)
	}
	if len(out) == 0 {
		return nil, &Error{Path: at + ".keys", Err: errors.New("no EAR signer key: give keys or jwks")}
	}
	return out, nil
}

func (b builder) ear(s *EAR) (verifier.Verifier, error) {
	const at = "$.ear"
	keys, err := b.earKeys(at, s.Keys, s.JWKS)
	if err != nil {
		return nil, err
	}
	age, err := Duration(at+".max_age", s.MaxAge)
	if err != nil {
		return nil, err
	}
	cfg := &ear.Config{Keys: keys, Issuer: s.Issuer, AcceptWarning: s.AcceptWarning,
		MaxAge: age, Profiles: s.Profiles, Time: b.opts.Time}
	if kb := s.KeyBound; kb != nil {
		path := at + ".key_bound.max_age"
		if kb.MaxAge == "" {
			return nil, &Error{Path: path, Err: errors.New("required: how old a key-bound passport may be")}
		}
		if cfg.KeyBoundMaxAge, err = Duration(path, kb.MaxAge); err != nil {
			return nil, err
		}
		cfg.Bindings = ear.BindNonce | ear.BindKey
	}
	v, err := ear.New(cfg)
	if err != nil {
		return nil, &Error{Path: at, Err: err}
	}
	return v, nil
}

func (b builder) veraison(s *Veraison) (verifier.Verifier, error) {
	const at = "$.veraison"
	if s.URL == "" {
		return nil, &Error{Path: at + ".url", Err: errors.New("required")}
	}
	keys, err := b.earKeys(at, s.Keys, s.JWKS)
	if err != nil {
		return nil, err
	}
	rt, err := Duration(at+".request_timeout", s.RequestTimeout)
	if err != nil {
		return nil, err
	}
	c, err := veraison.New(&veraison.Config{URL: s.URL, HTTPClient: b.opts.HTTPClient, EARKeys: keys,
		AllowWarning: s.AllowWarning, RequestTimeout: rt, Time: b.opts.Time})
	if err != nil {
		return nil, &Error{Path: at, Err: err}
	}
	return veraison.NewVerifier(c), nil
}

func (b builder) testKit(s *TestKit) (verifier.Verifier, error) {
	const at = "$.test_kit"
	if b.opts.TestKit == nil {
		return nil, &Error{Path: "$.technology", Err: errors.New("test-kit policies are TEST ONLY and this program does not accept them")}
	}
	if len(s.TrustedKeys) == 0 {
		return nil, &Error{Path: at + ".trusted_keys", Err: errors.New("no trusted key")}
	}
	var keys []*ecdsa.PublicKey
	for i, k := range s.TrustedKeys {
		path := fmt.Sprintf("%s.trusted_keys[%d]", at, i)
		pub, err := b.publicKey(path, k)
		if err != nil {
			return nil, err
		}
		ek, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return nil, &Error{Path: path, Err: fmt.Errorf("want an ECDSA P-256 key, got %T", pub)}
		}
		keys = append(keys, ek)
	}
	var refs []verifier.Measurement
	for _, name := range sortedKeys(s.Measurements) {
		d, err := hexField(at+".measurements["+strconv.Quote(name)+"]", s.Measurements[name], 0)
		if err != nil {
			return nil, err
		}
		refs = append(refs, verifier.Measurement{Name: name, Value: d})
	}
	v, err := b.opts.TestKit(keys, refs)
	if err != nil {
		return nil, &Error{Path: at, Err: err}
	}
	return v, nil
}

// read returns s's PEM text: s itself when it holds PEM, else the file it
// names (relative to Options.Dir).
func (b builder) read(path, s string) ([]byte, error) {
	if strings.HasPrefix(strings.TrimSpace(s), "-----BEGIN ") || strings.HasPrefix(strings.TrimSpace(s), "{") {
		return []byte(s), nil
	}
	if s == "" {
		return nil, &Error{Path: path, Err: errors.New("empty: want PEM text or a file name")}
	}
	data, err := readBounded(b.path(s), maxKeyFile)
	if err != nil {
		return nil, wrap(path, err)
	}
	return data, nil
}

// path resolves a file name of the policy against Options.Dir.
func (b builder) path(name string) string {
	if !filepath.IsAbs(name) && b.opts.Dir != "" {
		return filepath.Join(b.opts.Dir, name)
	}
	return name
}

func (b builder) pemBlock(path, s, typ string) ([]byte, error) {
	data, err := b.read(path, s)
	if err != nil {
		return nil, err
	}
	blk, rest := pem.Decode(data)
	if blk == nil || blk.Type != typ {
		return nil, &Error{Path: path, Err: fmt.Errorf("want one PEM %s block", typ)}
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return nil, &Error{Path: path, Err: errors.New("data after the PEM block")}
	}
	return blk.Bytes, nil
}

func (b builder) publicKey(path, s string) (crypto.PublicKey, error) {
	der, err := b.pemBlock(path, s, "PUBLIC KEY")
	if err != nil {
		return nil, err
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, &Error{Path: path, Err: err}
	}
	return pub, nil
}

func (b builder) certificate(path, s string) (*x509.Certificate, error) {
	der, err := b.pemBlock(path, s, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, &Error{Path: path, Err: err}
	}
	return c, nil
}

func (b builder) certPool(path string, list []string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	for i, s := range list {
		c, err := b.certificate(fmt.Sprintf("%s[%d]", path, i), s)
		if err != nil {
			return nil, err
		}
		pool.AddCert(c)
	}
	return pool, nil
}

// hexField decodes a hex byte string of n bytes (any non-zero length when n
// is 0).
func hexField(path, s string, n int) ([]byte, error) {
	d, err := hex.DecodeString(s)
	if err != nil {
		return nil, &Error{Path: path, Err: errors.New("want hex digits")}
	}
	if n > 0 && len(d) != n {
		return nil, &Error{Path: path, Err: fmt.Errorf("want %d bytes, got %d", n, len(d))}
	}
	if len(d) == 0 {
		return nil, &Error{Path: path, Err: errors.New("empty")}
	}
	return d, nil
}

func hexList(path string, list []string, n int) ([][]byte, error) {
	var out [][]byte
	for i, s := range list {
		d, err := hexField(fmt.Sprintf("%s[%d]", path, i), s, n)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func wrap(path string, err error) error {
	var pe *Error
	if errors.As(err, &pe) {
		return err
	}
	return &Error{Path: path, Err: err}
}

func readBounded(name string, max int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, max)
	}
	return b, nil
}
