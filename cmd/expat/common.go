package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/policy"
)

// commonFlags are the flags of probe and both tunnel sides.
type commonFlags struct {
	policyFile   string
	att          attesterFlags
	cert, key    string
	ca           string
	serverName   string
	setupTimeout time.Duration
	saveEvidence string // probe only
}

func (c *commonFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.policyFile, "policy", "", "appraisal `FILE` (JSON, docs/POLICY.md): the peer must attest under it")
	fs.StringVar(&c.att.spec, "attester", "", "attest ourselves with `KIND`: "+attesterSpecs)
	fs.BoolVar(&c.att.insecureTestKit, "insecure-test-kit", false, "allow the TEST-ONLY test kit (attester and policies); never in production")
	fs.StringVar(&c.att.testKitKey, "test-kit-key", "", "test kit signing key `FILE` (PEM EC PRIVATE KEY)")
	fs.StringVar(&c.att.testKitMeasure, "test-kit-measurement", "", "test kit: report measurement `NAME=HEX`")
	fs.StringVar(&c.att.writeAK, "write-ak", "", "TPM attesters: write the AK public key (PEM) to `FILE`, to pin it in a policy")
	fs.StringVar(&c.att.pcrs, "pcrs", "", "TPM attesters: quoted PCRs, comma-separated (default 0-7)")
	fs.StringVar(&c.cert, "cert", "", "our certificate chain `FILE` (PEM), for TLS and the Exported Authenticators")
	fs.StringVar(&c.key, "key", "", "our private key `FILE` (PEM)")
	fs.StringVar(&c.ca, "ca", "", "CA `FILE` (PEM) that the peer's certificate must chain to (client: default the system roots; server: requires client certificates)")
	fs.StringVar(&c.serverName, "server-name", "", "client: the server `NAME` to verify (default the host of the address)")
	fs.DurationVar(&c.setupTimeout, "setup-timeout", 10*time.Second, "bound on the TLS handshake and the attestation setup")
}

func (c *commonFlags) certificate() (*tls.Certificate, error) {
	if c.cert == "" && c.key == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.cert, c.key)
	if err != nil {
		return nil, fmt.Errorf("expat: --cert/--key: %w", err)
	}
	return &cert, nil
}

func (c *commonFlags) pool() (*x509.CertPool, error) {
	if c.ca == "" {
		return nil, nil
	}
	b, err := os.ReadFile(c.ca)
	if err != nil {
		return nil, fmt.Errorf("expat: --ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, errors.New("expat: --ca: no PEM certificate in the file")
	}
	return pool, nil
}

// loadedPolicy is one generation of the policy file.
type loadedPolicy struct {
	gen      int
	policy   *policy.Policy
	verifier verifier.Verifier
}

// policyState holds the current policy; reload replaces it atomically.
// Connections set up after a reload use the new policy; those already set up
// keep what they verified.
type policyState struct {
	file            string
	insecureTestKit bool
	mu              sync.Mutex // serializes reloads
	cur             atomic.Pointer[loadedPolicy]
}

func newPolicyState(file string, insecureTestKit bool) (*policyState, error) {
	s := &policyState{file: file, insecureTestKit: insecureTestKit}
	if err := s.reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// reload reads the file again; on error the current policy stays.
func (s *policyState) reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := policy.Load(s.file)
	if err != nil {
		return err
	}
	v, err := buildVerifier(p, filepath.Dir(s.file), s.insecureTestKit)
	if err != nil {
		return err
	}
	gen := 1
	if old := s.cur.Load(); old != nil {
		gen = old.gen + 1
	}
	s.cur.Store(&loadedPolicy{gen: gen, policy: p, verifier: v})
	return nil
}

func (s *policyState) load() *loadedPolicy { return s.cur.Load() }

// currentVerifier appraises with the policy current at the time of each
// appraisal (a Listener's Config is shared by all its connections).
type currentVerifier struct{ s *policyState }

func (v currentVerifier) Verify(ctx context.Context, b []byte, exp *verifier.Expected) (*verifier.Result, error) {
	return v.s.load().verifier.Verify(ctx, b, exp)
}

// verdict classifies the outcome of an attestation for logs and exit codes.
func verdict(err error) string {
	var xe *expat.Error
	switch {
	case err == nil:
		return "verified"
	case errors.Is(err, verifier.ErrRejected):
		return "rejected"
	case errors.Is(err, verifier.ErrUnavailable):
		return "unavailable"
	case errors.Is(err, expat.ErrPeerRefused), errors.Is(err, expat.ErrMissingAttestation):
		return "rejected"
	case errors.As(err, &xe) && xe.Remote:
		return "refused-by-peer"
	}
	return "error"
}
