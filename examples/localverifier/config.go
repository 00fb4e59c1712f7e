package main

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/ear"
	"github.com/attested-tls/go-expat/verifier/local"
	"github.com/attested-tls/go-expat/verifier/policy"
)

// config is the configuration file (see README.md): the service's own
// settings, and its backends as appraisal policies of package
// verifier/policy. It is decoded by policy.Decode, so unknown or repeated
// members, wrong types and trailing data are errors naming the member by
// its JSON path. File names are relative to the configuration file.
type config struct {
	EAR struct {
		// Key is the EAR signing key: PKCS #8 PEM, or a file holding it.
		Key      string `json:"key"`
		KeyID    string `json:"key_id"`
		Name     string `json:"name"`
		Validity string `json:"validity"`
	} `json:"ear"`
	SessionTTL              string `json:"session_ttl"`
	MaxSessions             int    `json:"max_sessions"`
	MaxSessionsPerClient    int    `json:"max_sessions_per_client"`
	MaxAppraisalsPerClient  int    `json:"max_concurrent_appraisals_per_client"`
	MaxEvidenceSize         int    `json:"max_evidence_size"`
	MaxConcurrentAppraisals int    `json:"max_concurrent_appraisals"`
	AppraisalTimeout        string `json:"appraisal_timeout"`

	// Backends are the policies Evidence is appraised against, at most
	// one per technology.
	Backends []backend `json:"backends"`
}

// backend is one policy document: in File (JSON or YAML, read by
// policy.Load; names in it are relative to it), or inline in Policy.
type backend struct {
	File   string         `json:"file"`
	Policy *policy.Policy `json:"policy"`
}

// mediaTypes maps the technologies the service appraises to the CMW media
// type of their Evidence.
var mediaTypes = map[string]string{
	policy.TechTPM:    cmw.MediaTypeTPM2,
	policy.TechSEVSNP: cmw.MediaTypeSEVSNP,
	policy.TechTDX:    cmw.MediaTypeTDX,
	policy.TechCCA:    cmw.MediaTypeCCA,
}

// load reads the configuration file at path and returns the service's
// Config (a Dispatch over the backends' verifiers and an ear.Issuer) and
// the technologies configured. Collateral fetches use hc.
func load(path string, hc *http.Client) (local.Config, []string, error) {
	lc, techs, err := loadConfig(path, hc)
	if err != nil {
		return local.Config{}, nil, fmt.Errorf("%s: %w", path, err)
	}
	return lc, techs, nil
}

func loadConfig(path string, hc *http.Client) (local.Config, []string, error) {
	var c config
	if err := policy.DecodeFile(path, &c); err != nil {
		return local.Config{}, nil, err
	}
	opts := &policy.Options{Dir: filepath.Dir(path), HTTPClient: hc}
	if len(c.Backends) == 0 {
		return local.Config{}, nil, &policy.Error{Path: "$.backends", Err: errors.New("no backend: every Evidence would be refused")}
	}
	d := &verifier.Dispatch{Verifiers: map[string]verifier.Verifier{}}
	var techs []string
	for i, b := range c.Backends {
		at := fmt.Sprintf("$.backends[%d]", i)
		tech, v, err := buildBackend(at, b, opts)
		if err != nil {
			return local.Config{}, nil, err
		}
		if _, dup := d.Verifiers[mediaTypes[tech]]; dup {
			return local.Config{}, nil, &policy.Error{Path: at, Err: fmt.Errorf("a second %s backend", tech)}
		}
		d.Verifiers[mediaTypes[tech]] = v
		techs = append(techs, tech)
	}

	if c.EAR.Key == "" {
		return local.Config{}, nil, &policy.Error{Path: "$.ear.key", Err: errors.New("required: the EAR signing key (PKCS #8 PEM)")}
	}
	key, err := signer(opts, "$.ear.key", c.EAR.Key)
	if err != nil {
		return local.Config{}, nil, err
	}
	lc := local.Config{
		Appraiser:                        d,
		Issuer:                           &ear.Issuer{Key: key, KeyID: c.EAR.KeyID, Name: c.EAR.Name},
		MaxSessions:                      c.MaxSessions,
		MaxSessionsPerClient:             c.MaxSessionsPerClient,
		MaxConcurrentAppraisalsPerClient: c.MaxAppraisalsPerClient,
		MaxEvidenceSize:                  c.MaxEvidenceSize,
		MaxConcurrentAppraisals:          c.MaxConcurrentAppraisals,
	}
	for _, f := range []struct {
		name string
		n    int
	}{
		{"max_sessions", c.MaxSessions}, {"max_sessions_per_client", c.MaxSessionsPerClient},
		{"max_concurrent_appraisals_per_client", c.MaxAppraisalsPerClient},
		{"max_evidence_size", c.MaxEvidenceSize}, {"max_concurrent_appraisals", c.MaxConcurrentAppraisals},
	} {
		if f.n < 0 {
			return local.Config{}, nil, &policy.Error{Path: "$." + f.name, Err: errors.New("negative")}
		}
	}
	if lc.Issuer.Validity, err = policy.Duration("$.ear.validity", c.EAR.Validity); err != nil {
		return local.Config{}, nil, err
	}
	if lc.SessionTTL, err = policy.Duration("$.session_ttl", c.SessionTTL); err != nil {
		return local.Config{}, nil, err
	}
	if lc.AppraisalTimeout, err = policy.Duration("$.appraisal_timeout", c.AppraisalTimeout); err != nil {
		return local.Config{}, nil, err
	}
	return lc, techs, nil
}

// buildBackend builds the verifier of the policy b gives and returns its
// technology. The policy must be a background check by a local verifier
// of a technology in mediaTypes.
func buildBackend(at string, b backend, opts *policy.Options) (string, verifier.Verifier, error) {
	p, bo := b.Policy, *opts
	switch {
	case (b.File == "") == (b.Policy == nil):
		return "", nil, &policy.Error{Path: at, Err: errors.New("want exactly one of file and policy")}
	case b.File != "":
		name := opts.Path(b.File)
		var err error
		if p, err = policy.Load(name); err != nil {
			return "", nil, fmt.Errorf("%s.file %q: %w", at, b.File, err)
		}
		bo.Dir = filepath.Dir(name)
	}
	v, err := policy.Build(p, &bo)
	if err == nil {
		if _, ok := mediaTypes[p.Technology]; !ok || p.Section() != strings.ReplaceAll(p.Technology, "-", "_") {
			err = &policy.Error{Path: "$.model", Err: errors.New("want a background check by a local verifier of tpm, sev-snp, tdx or cca")}
		}
	}
	if err == nil {
		return p.Technology, v, nil
	}
	if b.File != "" {
		return "", nil, fmt.Errorf("%s.file %q: %w", at, b.File, err)
	}
	// The policy's paths are relative to the policy document.
	var pe *policy.Error
	if errors.As(err, &pe) {
		return "", nil, &policy.Error{Path: at + ".policy" + strings.TrimPrefix(pe.Path, "$"), Err: pe.Err}
	}
	return "", nil, &policy.Error{Path: at + ".policy", Err: err}
}

// signer reads a PKCS #8 private key (PEM text or a file) that can sign.
func signer(opts *policy.Options, path, s string) (crypto.Signer, error) {
	der, err := opts.PEM(path, s, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, &policy.Error{Path: path, Err: err}
	}
	sk, ok := k.(crypto.Signer)
	if !ok {
		return nil, &policy.Error{Path: path, Err: fmt.Errorf("%T is not a signing key", k)}
	}
	return sk, nil
}
