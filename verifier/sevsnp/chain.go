package sevsnp

// Chain and report signature checks. They replace go-sev-guest's verify
// package (v0.15.0), whose SnpAttestation with DisableCertFetching and
// TrustedRoots this package used before: the same checks, in the same
// terms, without linking that package in (it registers a command-line flag
// on flag.CommandLine, which a library must not do).
//
// Sources: AMD SEV-SNP Firmware ABI Specification (publication 56860),
// "ATTESTATION_REPORT Structure" and "ECDSA P-384 with SHA-384 Signature
// Format"; AMD Versioned Chip Endorsement Key (VCEK) Certificate and KDS
// Interface Specification (publication 57230), "VCEK Certificate" and
// "VLEK Certificate" tables. Where they leave a choice open, the choice is
// go-sev-guest's, named beside the code.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
)

// Report layout (AMD 56860, ATTESTATION_REPORT).
const (
	// offSignatureAlgo is SIGNATURE_ALGO (4 bytes, little-endian).
	offSignatureAlgo = 0x34
	// offSignature is SIGNATURE; the signed part of the report is
	// everything before it.
	offSignature = 0x2A0
	// sigComponentSize is the size of R and of S in the ECDSA P-384
	// signature format: 72-byte little-endian integers, of which a P-384
	// scalar uses the low 48 bytes.
	sigComponentSize = 72
	// p384ScalarSize is the size of a P-384 scalar.
	p384ScalarSize = 48
)

// trustedRoot is a Root checked by New and ready for chain verification.
type trustedRoot struct {
	line           string
	ark, ask, asvk *x509.Certificate
	// opts[key] has the ARK as the only root and the ASK (VCEK) or ASVK
	// (VLEK) as the only intermediate; nil when that intermediate is
	// absent. Built once; CurrentTime is set per verification.
	vcekOpts, vlekOpts *x509.VerifyOptions
}

// newTrustedRoot checks r once: the ARK is self-signed, and the ASK and
// ASVK (those present) are signed by it. Validity periods are checked at
// each verification, against its time.
func newTrustedRoot(r Root) (*trustedRoot, error) {
	if err := r.ARK.CheckSignatureFrom(r.ARK); err != nil {
		return nil, fmt.Errorf("ARK is not self-signed: %w", err)
	}
	t := &trustedRoot{line: r.ProductLine, ark: r.ARK, ask: r.ASK, asvk: r.ASVK}
	for _, ica := range []struct {
		name string
		cert *x509.Certificate
		opts **x509.VerifyOptions
	}{{"ASK", r.ASK, &t.vcekOpts}, {"ASVK", r.ASVK, &t.vlekOpts}} {
		if ica.cert == nil {
			continue
		}
		if err := ica.cert.CheckSignatureFrom(r.ARK); err != nil {
			return nil, fmt.Errorf("%s is not signed by the ARK: %w", ica.name, err)
		}
		roots, inter := x509.NewCertPool(), x509.NewCertPool()
		roots.AddCert(r.ARK)
		inter.AddCert(ica.cert)
		*ica.opts = &x509.VerifyOptions{Roots: roots, Intermediates: inter}
	}
	return t, nil
}

func (t *trustedRoot) ica(key abi.ReportSigner) (*x509.Certificate, *x509.VerifyOptions) {
	if key == abi.VlekReportSigner {
		return t.asvk, t.vlekOpts
	}
	return t.ask, t.vcekOpts
}

// checkReportSignature verifies the report's signature with ek's key:
// ECDSA P-384 with SHA-384 over bytes [0, 0x2A0) of the report exactly as
// received (AMD 56860), R and S read as 72-byte little-endian fields
// whose top 24 bytes must be zero, each in [1, n-1].
func checkReportSignature(report []byte, ek *x509.Certificate) error {
	if len(report) != abi.ReportSize {
		return fmt.Errorf("sevsnp: report is %d bytes, want %d", len(report), abi.ReportSize)
	}
	if algo := binary.LittleEndian.Uint32(report[offSignatureAlgo:]); algo != abi.SignEcdsaP384Sha384 {
		return fmt.Errorf("sevsnp: signature algorithm %d is not ECDSA P-384 with SHA-384", algo)
	}
	pub, ok := ek.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P384() {
		return errors.New("sevsnp: endorsement key is not an ECDSA P-384 key")
	}
	sig := report[offSignature:]
	r, err := sigScalar(sig[:sigComponentSize])
	if err != nil {
		return fmt.Errorf("sevsnp: signature R: %w", err)
	}
	s, err := sigScalar(sig[sigComponentSize : 2*sigComponentSize])
	if err != nil {
		return fmt.Errorf("sevsnp: signature S: %w", err)
	}
	digest := sha512.Sum384(report[:offSignature])
	if !ecdsa.Verify(pub, digest[:], r, s) {
		return errors.New("sevsnp: report signature does not verify")
	}
	return nil
}

// sigScalar reads a 72-byte little-endian signature component as a P-384
// scalar in [1, n-1].
func sigScalar(field []byte) (*big.Int, error) {
	for _, b := range field[p384ScalarSize:] {
		if b != 0 {
			return nil, errors.New("non-zero bytes above the 48-byte scalar")
		}
	}
	var be [p384ScalarSize]byte
	for i := range be {
		be[i] = field[p384ScalarSize-1-i]
	}
	v := new(big.Int).SetBytes(be[:])
	if v.Sign() == 0 || v.Cmp(elliptic.P384().Params().N) >= 0 {
		return nil, errors.New("out of range")
	}
	return v, nil
}

// endorsementCert holds the checked VCEK or VLEK certificate.
type endorsementCert struct {
	cert *x509.Certificate
	exts *kds.Extensions
	root *trustedRoot
	// from and until bound the period in which the chain verifies: the
	// latest NotBefore and the earliest NotAfter of the certificate, the
	// intermediate and the ARK. Every other check of checkChain is
	// independent of the time.
	from, until time.Time
	// first tells that root is the first candidate of its product line:
	// only then does checkChain, at any time within [from, until], give
	// this result again (an earlier candidate that failed might succeed
	// at another time), so only then is the result cached.
	first bool
}

// chainKey names a chain verification: the exact endorsement key
// certificate and what, in the report, picked the roots it was checked
// against (a Verifier's roots are fixed at New).
type chainKey struct {
	ek   [sha256.Size]byte // SHA-256 of the certificate's DER
	key  abi.ReportSigner
	line string // the report's product line, "" for version 2
}

// crlKey names a checked CRL: its exact DER and the root whose ARK
// signed it.
type crlKey struct {
	crl  [sha256.Size]byte
	root *trustedRoot
}

// checkChain verifies that ek (the VCEK or VLEK, per key) is a KDS
// endorsement key certificate issued by the ASK (ASVK) of one of roots
// and valid at now. knownLine is the product line named by the report
// (CPUID_FAM_ID etc., version 3 and later), or "" (version 2), in which
// case the certificate's product name decides which roots apply.
func checkChain(roots map[string][]*trustedRoot, ek *x509.Certificate, key abi.ReportSigner, knownLine string, now time.Time) (*endorsementCert, error) {
	exts, err := checkEndorsementCert(ek, key, knownLine)
	if err != nil {
		return nil, err
	}
	line := knownLine
	if line == "" {
		// The certificate's product name (its stepping too, for a VCEK)
		// must be known; it names the product line (go-sev-guest does the
		// same for version 2 reports, which carry no CPUID).
		product, err := kds.ParseProductName(exts.ProductName, key)
		if err != nil {
			return nil, err
		}
		line = kds.ProductLine(product)
	}
	candidates := roots[line]
	if len(candidates) == 0 {
		return nil, fmt.Errorf("sevsnp: no trusted root for product line %q", line)
	}
	var last error
	for i, r := range candidates {
		if last = checkIssuedBy(r, ek, key, now); last == nil {
			ec := &endorsementCert{cert: ek, exts: exts, root: r, first: i == 0, from: ek.NotBefore, until: ek.NotAfter}
			ica, _ := r.ica(key)
			for _, c := range []*x509.Certificate{ica, r.ark} {
				if c.NotBefore.After(ec.from) {
					ec.from = c.NotBefore
				}
				if c.NotAfter.Before(ec.until) {
					ec.until = c.NotAfter
				}
			}
			return ec, nil
		}
	}
	return nil, fmt.Errorf("sevsnp: %v certificate not verified by any trusted %s root: %w", key, line, last)
}

// checkEndorsementCert checks the product-independent fields of a VCEK
// or VLEK certificate (AMD 57230, "VCEK Certificate"/"VLEK Certificate"):
// X.509 version 3; signed with RSASSA-PSS, SHA-384, MGF1 with SHA-384,
// salt length 48 (crypto/x509 maps exactly those parameters, and no
// others, to SHA384WithRSAPSS, and verifies with that salt length);
// subject key ECDSA on P-384; subject AMD's location and CN "SEV-VCEK"
// or "SEV-VLEK"; AMD's extensions well formed, none twice, and no other
// extension but the authority key identifier (kds.CertificateExtensions
// enforces that). For version 2 reports (knownLine "") the product name
// must also be a known one.
func checkEndorsementCert(c *x509.Certificate, key abi.ReportSigner, knownLine string) (*kds.Extensions, error) {
	if c.Version != 3 {
		return nil, fmt.Errorf("sevsnp: %v certificate is X.509 version %d, want 3", key, c.Version)
	}
	if c.SignatureAlgorithm != x509.SHA384WithRSAPSS {
		return nil, fmt.Errorf("sevsnp: %v certificate is signed with %v, want SHA384-RSAPSS", key, c.SignatureAlgorithm)
	}
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if c.PublicKeyAlgorithm != x509.ECDSA || !ok || pub.Curve != elliptic.P384() {
		return nil, fmt.Errorf("sevsnp: %v certificate key is not ECDSA P-384", key)
	}
	if err := checkAMDName(c.Subject, "SEV-"+key.String()); err != nil {
		return nil, fmt.Errorf("sevsnp: %v certificate subject: %w", key, err)
	}
	exts, err := kds.CertificateExtensions(c, key)
	if err != nil {
		return nil, fmt.Errorf("sevsnp: %v certificate extensions: %w", key, err)
	}
	if knownLine == "" {
		if _, err := kds.ParseProductName(exts.ProductName, key); err != nil {
			return nil, fmt.Errorf("sevsnp: %v certificate: %w", key, err)
		}
	}
	return exts, nil
}

// checkIssuedBy checks that ek chains to r at now: the issuer name is
// AMD's with CN "SEV-<line>" (VCEK) or "SEV-VLEK-<line>" (VLEK), and
// crypto/x509 builds a chain ek → ASK (ASVK) → ARK with r's certificates
// as the only intermediate and root. That checks the RSASSA-PSS
// signatures, every certificate's validity period at now, the issuer
// names, the intermediate's basic constraints (CA) and path length, key
// usage (certificate signing) of the signers, critical extensions,
// extended key usages (none of AMD's certificates has one; one that
// excludes server authentication, crypto/x509's default, is refused),
// certificate policies and name constraints — the options go-sev-guest
// uses, so the same decisions.
func checkIssuedBy(r *trustedRoot, ek *x509.Certificate, key abi.ReportSigner, now time.Time) error {
	cn := "SEV-" + r.line
	if key == abi.VlekReportSigner {
		cn = "SEV-VLEK-" + r.line
	}
	if err := checkAMDName(ek.Issuer, cn); err != nil {
		return fmt.Errorf("issuer: %w", err)
	}
	ica, base := r.ica(key)
	if ica == nil || base == nil {
		return fmt.Errorf("root has no intermediate for %v certificates", key)
	}
	opts := *base
	opts.CurrentTime = now
	if _, err := ek.Verify(opts); err != nil {
		return err
	}
	return nil
}

// amdLocation is the name of AMD's KDS certificates apart from the CN
// (AMD 57230): each attribute present exactly once with this value.
var amdLocation = []struct {
	attr  string
	value string
	get   func(*pkix.Name) []string
}{
	{"country", "US", func(n *pkix.Name) []string { return n.Country }},
	{"locality", "Santa Clara", func(n *pkix.Name) []string { return n.Locality }},
	{"state", "CA", func(n *pkix.Name) []string { return n.Province }},
	{"organization", "Advanced Micro Devices", func(n *pkix.Name) []string { return n.Organization }},
	{"organizational unit", "Engineering", func(n *pkix.Name) []string { return n.OrganizationalUnit }},
}

func checkAMDName(n pkix.Name, cn string) error {
	for _, a := range amdLocation {
		v := a.get(&n)
		if len(v) != 1 || v[0] != a.value {
			return fmt.Errorf("%s is %q, want [%q]", a.attr, v, a.value)
		}
	}
	if n.CommonName != cn {
		return fmt.Errorf("common name is %q, want %q", n.CommonName, cn)
	}
	return nil
}
