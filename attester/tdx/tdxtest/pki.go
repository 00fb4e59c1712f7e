// Package tdxtest is a TEST-ONLY kit for Intel TDX, for go-expat's tests
// and for users' own, without hardware: a software PCK
// certificate hierarchy whose names and extensions mirror Intel's (so that
// both go-expat's verifier/tdx and go-tdx-guest's verify accept it when, and
// only when, its root is passed explicitly as trusted), a quote signer (QE
// report signed by the PCK key, quote signed by an attestation key),
// matching collateral (TCB info, QE identity, CRLs) signed by a test
// "TCB Signing" certificate, an Intel-PCS-shaped HTTP handler serving that
// collateral, and fake quote providers (a configfs-tsm client and a
// /dev/tdx_guest device) with injectable faults.
//
// Nothing in this package is trusted by anything unless a test passes
// PKI.Root to a verifier. Every certificate carries "TEST ONLY" in its
// organizational unit so it can never be mistaken for Intel's. The keys are
// generated per PKI with crypto/rand and never leave the process. Import
// this package from _test.go files only; go-expat's library packages never
// depend on it (expat/expattest's TestLibraryDoesNotImportTestKits).
package tdxtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"
)

// Names of Intel's SGX/TDX certificate hierarchy. Verifiers match the
// subject common names exactly, so the test hierarchy uses the same ones.
const (
	RootCN         = "Intel SGX Root CA"
	PlatformCACN   = "Intel SGX PCK Platform CA"
	PCKCN          = "Intel SGX PCK Certificate"
	TCBSigningCN   = "Intel SGX TCB Signing"
	testOnlyMarker = "TEST ONLY - go-expat tdxtest"
)

// OIDs of the SGX extension of a PCK certificate (Intel SGX PCK Certificate
// and CRL Profile).
var (
	oidSGX    = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1}
	oidPPID   = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 1}
	oidTCB    = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 2}
	oidPCEID  = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 3}
	oidFMSPC  = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 4}
	oidSGXTyp = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 5}
)

// PKI is a test-only imitation of Intel's SGX root, PCK platform CA and TCB
// signing certificate.
type PKI struct {
	Root, PlatformCA, TCBSigning          *x509.Certificate
	RootKey, PlatformCAKey, TCBSigningKey *ecdsa.PrivateKey
	// RootCRLURL is written into the root's CRL distribution points.
	RootCRLURL string

	serial int64
}

func newKey() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic("tdxtest: " + err.Error()) // crypto/rand failure: nothing sensible to do in a test kit
	}
	return k
}

func skid(pub *ecdsa.PublicKey) []byte {
	b, _ := x509.MarshalPKIXPublicKey(pub)
	h := sha1.Sum(b)
	return h[:]
}

func name(cn string) pkix.Name {
	return pkix.Name{
		CommonName:         cn,
		Organization:       []string{"Intel Corporation"},
		OrganizationalUnit: []string{testOnlyMarker},
		Locality:           []string{"Santa Clara"},
		Province:           []string{"CA"},
		Country:            []string{"US"},
	}
}

func (p *PKI) nextSerial() *big.Int {
	p.serial++
	return big.NewInt(p.serial)
}

// NewPKI creates a fresh test hierarchy valid from now-24h to now+10y.
func NewPKI(now time.Time) (*PKI, error) {
	p := &PKI{RootCRLURL: "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der", serial: 0x1000}
	p.RootKey, p.PlatformCAKey, p.TCBSigningKey = newKey(), newKey(), newKey()
	nb, na := now.Add(-24*time.Hour), now.AddDate(10, 0, 0)

	rootT := &x509.Certificate{
		SerialNumber: p.nextSerial(), Subject: name(RootCN), NotBefore: nb, NotAfter: na,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
		MaxPathLen: 1, SubjectKeyId: skid(&p.RootKey.PublicKey), CRLDistributionPoints: []string{p.RootCRLURL},
		SignatureAlgorithm: x509.ECDSAWithSHA256,
	}
	var err error
	if p.Root, err = create(rootT, rootT, &p.RootKey.PublicKey, p.RootKey); err != nil {
		return nil, err
	}
	caT := &x509.Certificate{
		SerialNumber: p.nextSerial(), Subject: name(PlatformCACN), NotBefore: nb, NotAfter: na,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
		MaxPathLen: 0, MaxPathLenZero: true, SubjectKeyId: skid(&p.PlatformCAKey.PublicKey),
		CRLDistributionPoints: []string{p.RootCRLURL}, SignatureAlgorithm: x509.ECDSAWithSHA256,
	}
	if p.PlatformCA, err = create(caT, p.Root, &p.PlatformCAKey.PublicKey, p.RootKey); err != nil {
		return nil, err
	}
	tcbT := &x509.Certificate{
		SerialNumber: p.nextSerial(), Subject: name(TCBSigningCN), NotBefore: nb, NotAfter: na,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment, BasicConstraintsValid: true,
		SubjectKeyId: skid(&p.TCBSigningKey.PublicKey), CRLDistributionPoints: []string{p.RootCRLURL},
		SignatureAlgorithm: x509.ECDSAWithSHA256,
	}
	if p.TCBSigning, err = create(tcbT, p.Root, &p.TCBSigningKey.PublicKey, p.RootKey); err != nil {
		return nil, err
	}
	return p, nil
}

func create(t, parent *x509.Certificate, pub *ecdsa.PublicKey, key *ecdsa.PrivateKey) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, t, parent, pub, key)
	if err != nil {
		return nil, fmt.Errorf("tdxtest: create %q: %w", t.Subject.CommonName, err)
	}
	return x509.ParseCertificate(der)
}

// PEM returns the PEM encoding of certs, concatenated.
func PEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// PCKOptions describes the platform a PCK certificate is issued to.
type PCKOptions struct {
	FMSPC  [6]byte
	PCEID  [2]byte
	CPUSVN [16]byte // SGX TCB components 1..16, also the CPUSVN
	PCESVN uint16
	PPID   [16]byte
	// NotAfter overrides the leaf's expiry (zero: the PKI's).
	NotAfter time.Time
}

type tcbComp struct {
	ID  asn1.ObjectIdentifier
	Val any
}

type sgxExtEntry struct {
	ID  asn1.ObjectIdentifier
	Val any
}

// IssuePCK issues a PCK leaf certificate with exactly the six extensions
// of a real one: authority and subject key identifiers, CRL distribution
// points, key usage, basic constraints and the SGX extension (PPID, TCB,
// PCE-ID, FMSPC, SGX type).
func (p *PKI) IssuePCK(o PCKOptions) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key := newKey()
	tcb := make([]tcbComp, 0, 18)
	for i := 0; i < 16; i++ {
		id := append(append(asn1.ObjectIdentifier{}, oidTCB...), i+1)
		tcb = append(tcb, tcbComp{ID: id, Val: int(o.CPUSVN[i])})
	}
	tcb = append(tcb, tcbComp{ID: append(append(asn1.ObjectIdentifier{}, oidTCB...), 17), Val: int(o.PCESVN)})
	tcb = append(tcb, tcbComp{ID: append(append(asn1.ObjectIdentifier{}, oidTCB...), 18), Val: o.CPUSVN[:]})
	type tcbSeq struct {
		ID   asn1.ObjectIdentifier
		Comp []tcbComp
	}
	sgx := []any{
		sgxExtEntry{ID: oidPPID, Val: o.PPID[:]},
		tcbSeq{ID: oidTCB, Comp: tcb},
		sgxExtEntry{ID: oidPCEID, Val: o.PCEID[:]},
		sgxExtEntry{ID: oidFMSPC, Val: o.FMSPC[:]},
		sgxExtEntry{ID: oidSGXTyp, Val: asn1.Enumerated(0)},
	}
	val, err := asn1.Marshal(sgx)
	if err != nil {
		return nil, nil, fmt.Errorf("tdxtest: SGX extension: %w", err)
	}
	na := p.PlatformCA.NotAfter
	if !o.NotAfter.IsZero() {
		na = o.NotAfter
	}
	t := &x509.Certificate{
		SerialNumber: p.nextSerial(), Subject: name(PCKCN), NotBefore: p.PlatformCA.NotBefore, NotAfter: na,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		BasicConstraintsValid: true, SubjectKeyId: skid(&key.PublicKey),
		CRLDistributionPoints: []string{"https://api.trustedservices.intel.com/sgx/certification/v4/pckcrl?ca=platform&encoding=der"},
		ExtraExtensions:       []pkix.Extension{{Id: oidSGX, Value: val}},
		SignatureAlgorithm:    x509.ECDSAWithSHA256,
	}
	c, err := create(t, p.PlatformCA, &key.PublicKey, p.PlatformCAKey)
	if err != nil {
		return nil, nil, err
	}
	if len(c.Extensions) != 6 {
		return nil, nil, fmt.Errorf("tdxtest: PCK certificate has %d extensions, want 6", len(c.Extensions))
	}
	return c, key, nil
}

// RootCRL returns a DER CRL issued by the root revoking serials.
func (p *PKI) RootCRL(thisUpdate, nextUpdate time.Time, revoked ...*big.Int) ([]byte, error) {
	return crl(p.Root, p.RootKey, thisUpdate, nextUpdate, revoked)
}

// PCKCRL returns a DER CRL issued by the platform CA revoking serials.
func (p *PKI) PCKCRL(thisUpdate, nextUpdate time.Time, revoked ...*big.Int) ([]byte, error) {
	return crl(p.PlatformCA, p.PlatformCAKey, thisUpdate, nextUpdate, revoked)
}

func crl(issuer *x509.Certificate, key *ecdsa.PrivateKey, this, next time.Time, revoked []*big.Int) ([]byte, error) {
	var entries []x509.RevocationListEntry
	for _, s := range revoked {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: this})
	}
	return x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: this, NextUpdate: next, RevokedCertificateEntries: entries,
		SignatureAlgorithm: x509.ECDSAWithSHA256,
	}, issuer, key)
}
