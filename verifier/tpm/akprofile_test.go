package tpm_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"math/big"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/internal/checktest"
	"github.com/attested-tls/go-expat/internal/tpmtest"
	"github.com/attested-tls/go-expat/verifier"
	vtpm "github.com/attested-tls/go-expat/verifier/tpm"
)

// This file builds, entirely in software, the AK-certificate attack of
// issue 10: no TPM is involved, only an ordinary certificate from a CA
// that the relying party trusts for AK certificates.

var oidTCGAIKCertificate = asn1.ObjectIdentifier{2, 23, 133, 8, 3}

// forgedBundle is tpmtest.ForgedBundle for tests.
func forgedBundle(t *testing.T, ak *ecdsa.PrivateKey, eaKey *ecdsa.PublicKey, qd [32]byte, akChain [][]byte) []byte {
	t.Helper()
	ev, err := tpmtest.ForgedBundle(ak, eaKey, qd, akChain)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{c, k}
}

func (ca *testCA) issue(t *testing.T, pub crypto.PublicKey, edit func(*x509.Certificate)) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "leaf"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true}
	edit(tmpl)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestAKCertificateProfile: a certificate from an AKRoots CA makes an AK
// trusted only when it has the AK certificate profile. The attack: the
// CA also issues TLS certificates; the attacker gets one for a software
// key and presents it with a made-up public area, quote and certify.
func TestAKCertificateProfile(t *testing.T) {
	ca := newTestCA(t, "test-only AK CA that also issues TLS certificates")
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	v, err := vtpm.New(&vtpm.Config{AKRoots: roots, PCRPolicy: map[int][][]byte{7: {make([]byte, 32)}}, RequireKeyAttestation: true})
	if err != nil {
		t.Fatal(err)
	}
	ak, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ea, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, _ := x509.MarshalPKIXPublicKey(&ea.PublicKey)
	aik := sha256.Sum256(spki)
	ch := attester.Challenge{Hash: crypto.SHA256, Binding: make([]byte, 32), AIKPubHash: aik[:]}
	qd, _ := ch.QualifyingData32()
	exp := &verifier.Expected{Challenge: ch, PublicKey: &ea.PublicKey, SPKI: spki, Now: time.Now()}
	akPub := tpmtest.ECCPublic(&ak.PublicKey, true)
	akName, _ := tpm2.ObjectName(&akPub)

	akProfile := func(c *x509.Certificate) { c.UnknownExtKeyUsage = []asn1.ObjectIdentifier{oidTCGAIKCertificate} }
	tests := []struct {
		name  string
		edit  func(*x509.Certificate)
		check verifier.Check // 0: accepted
	}{
		{"ordinary TLS server certificate", func(c *x509.Certificate) {
			c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			c.DNSNames = []string{"attacker.example"}
		}, verifier.CheckAK},
		{"no extended key usage", func(*x509.Certificate) {}, verifier.CheckAK},
		{"any extended key usage", func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageAny} }, verifier.CheckAK},
		{"AK EKU and TLS EKU", func(c *x509.Certificate) {
			akProfile(c)
			c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		}, verifier.CheckAK},
		{"AK EKU on a CA certificate", func(c *x509.Certificate) {
			akProfile(c)
			c.IsCA, c.KeyUsage = true, x509.KeyUsageDigitalSignature|x509.KeyUsageCertSign
		}, verifier.CheckAK},
		{"AK EKU without digitalSignature", func(c *x509.Certificate) {
			akProfile(c)
			c.KeyUsage = x509.KeyUsageKeyAgreement
		}, verifier.CheckAK},
		{"AK EKU, subject names another AK", func(c *x509.Certificate) {
			akProfile(c)
			c.Subject.CommonName = "TPM AK " + hex.EncodeToString(append([]byte{0, 0x0b}, make([]byte, 32)...))
		}, verifier.CheckAK},
		// The profile itself: accepted, since the CA vouches for the key
		// with the AK EKU (the forgery then rests on the CA's mistake).
		{"AK certificate profile", akProfile, 0},
		{"AK certificate profile naming this AK", func(c *x509.Certificate) {
			akProfile(c)
			c.Subject.CommonName = "TPM AK " + hex.EncodeToString(akName.Buffer)
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := forgedBundle(t, ak, &ea.PublicKey, qd, [][]byte{ca.issue(t, &ak.PublicKey, tt.edit)})
			res, err := v.Verify(t.Context(), ev, exp)
			if tt.check == 0 {
				if err != nil || res.Claims["ak-trust"] != "certificate" {
					t.Fatalf("got %v, %v", res, err)
				}
				return
			}
			checktest.Rejected(t, err, tt.check)
			if res != nil {
				t.Fatal("result with an error")
			}
		})
	}
}
