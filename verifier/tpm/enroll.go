package tpm

import (
	"crypto"
	"crypto/rand"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"time"

	"github.com/google/go-tpm/tpm2"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// EnrollmentCA certifies attestation keys after credential activation
// (TPM 2.0 Library, Part 1, Section 24): Begin checks the EK certificate
// against the manufacturer CAs and encrypts a fresh secret to the EK, bound
// to the AK's Name (TPM2_MakeCredential done in software); the attester's
// TPM releases the secret (TPM2_ActivateCredential, attester/tpm's
// Attester.ActivateCredential) only if it holds both that EK and an AK with
// that Name; Finish checks the secret and issues an AK certificate. A
// Verifier whose Config.AKRoots holds this CA then trusts the AK.
//
// The CA's signer is an ordinary key of the relying party's choosing; the
// certificate says only "this AK was activated by a TPM whose EK
// certificate chains to EKRoots". It has the AK certificate profile that
// Verifier requires (Config.AKRoots): end entity, digitalSignature, the
// tcg-kp-AIKCertificate extended key usage only, and the AK Name in the
// subject ("TPM AK <hex Name>"). The CA's certificate must not be used to
// issue certificates with that extended key usage in any other way.
type EnrollmentCA struct {
	// EKRoots and EKIntermediates verify EK certificates (the TPM
	// manufacturers' CAs; for swtpm, swtpm_localca's root and issuer).
	EKRoots, EKIntermediates *x509.CertPool
	// Certificate and Signer issue AK certificates.
	Certificate *x509.Certificate
	Signer      crypto.Signer
	// Validity of issued AK certificates. Zero means 90 days.
	Validity time.Duration
	// Rand is the randomness source. Nil means crypto/rand.
	Rand io.Reader
	// Time returns the current time. Nil means time.Now.
	Time func() time.Time
}

// Enrollment is one credential-activation challenge in progress.
type Enrollment struct {
	// Credential and Secret go to the attester's ActivateCredential.
	Credential, Secret []byte

	ca     *EnrollmentCA
	value  []byte
	akPub  crypto.PublicKey
	akName []byte
	ekCert *x509.Certificate
	done   bool
}

// ErrEnrollment matches every enrollment refusal.
var ErrEnrollment = errors.New("tpm: enrollment refused")

func refuse(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrEnrollment}, args...)...)
}

func (ca *EnrollmentCA) now() time.Time {
	if ca.Time != nil {
		return ca.Time()
	}
	return time.Now()
}

func (ca *EnrollmentCA) rand() io.Reader {
	if ca.Rand != nil {
		return ca.Rand
	}
	return rand.Reader
}

// Begin checks an enrollment request (attester/tpm's EnrollmentRequest
// fields) and returns the challenge for the attester.
func (ca *EnrollmentCA) Begin(ekCertDER, ekPublic, akPublic []byte) (*Enrollment, error) {
	if ca.EKRoots == nil || ca.Certificate == nil || ca.Signer == nil {
		return nil, errors.New("tpm: EnrollmentCA needs EKRoots, Certificate and Signer")
	}
	ekCert, err := x509.ParseCertificate(ekCertDER)
	if err != nil {
		return nil, refuse("EK certificate: %v", err)
	}
	if err := acceptEKSAN(ekCert); err != nil {
		return nil, refuse("EK certificate: %v", err)
	}
	if _, err := ekCert.Verify(x509.VerifyOptions{
		Roots: ca.EKRoots, Intermediates: ca.EKIntermediates, CurrentTime: ca.now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return nil, refuse("EK certificate does not chain to a manufacturer CA: %v", err)
	}
	ek, err := strictUnmarshal[tpm2.TPMTPublic](ekPublic)
	if err != nil {
		return nil, refuse("EK public area: %v", err)
	}
	ea := ek.ObjectAttributes
	if !ea.Restricted || !ea.Decrypt || ea.SignEncrypt || !ea.FixedTPM || !ea.FixedParent {
		return nil, refuse("EK is not a restricted, non-duplicable decryption key")
	}
	ekKey, err := tpm2.Pub(*ek)
	if err != nil {
		return nil, refuse("EK public key: %v", err)
	}
	if eq, ok := ekKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(ekCert.PublicKey) {
		return nil, refuse("EK public area is not the certified EK")
	}
	akp, akKey, err := parseAK(akPublic)
	if err != nil {
		return nil, refuse("AK: %v", err)
	}
	name := akp.name()
	encKey, err := tpm2.ImportEncapsulationKey(ek)
	if err != nil {
		return nil, refuse("EK: %v", err)
	}
	value := make([]byte, 32)
	if _, err := io.ReadFull(ca.rand(), value); err != nil {
		return nil, fmt.Errorf("tpm: %w", err)
	}
	cred, secret, err := tpm2.CreateCredential(ca.rand(), encKey, name, value)
	if err != nil {
		return nil, fmt.Errorf("tpm: make credential: %w", err)
	}
	return &Enrollment{Credential: cred, Secret: secret, ca: ca, value: value,
		akPub: akKey, akName: name, ekCert: ekCert}, nil
}

// Finish checks the secret the attester's TPM released and returns the AK
// certificate (DER). An Enrollment can be finished once.
func (e *Enrollment) Finish(activated []byte) ([]byte, error) {
	if e.done {
		return nil, refuse("enrollment already used")
	}
	e.done = true
	if subtle.ConstantTimeCompare(activated, e.value) != 1 {
		return nil, refuse("wrong activation secret")
	}
	serial, err := rand.Int(e.ca.rand(), new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("tpm: %w", err)
	}
	validity := e.ca.Validity
	if validity == 0 {
		validity = 90 * 24 * time.Hour
	}
	now := e.ca.now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: akNamePrefix + hex.EncodeToString(e.akName)},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		UnknownExtKeyUsage:    []asn1.ObjectIdentifier{OIDAKCertificate},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(e.ca.rand(), tmpl, e.ca.Certificate, e.akPub, e.ca.Signer)
	if err != nil {
		return nil, fmt.Errorf("tpm: issue AK certificate: %w", err)
	}
	return der, nil
}

var oidSAN = asn1.ObjectIdentifier{2, 5, 29, 17}

// acceptEKSAN handles the critical subjectAltName of EK certificates: TCG
// EK Credential Profile 2.x, Section 3.2.9, puts the TPM manufacturer,
// model and version there as a directoryName, which crypto/x509 does not
// interpret and so reports as unhandled. It is accepted when it is a
// well-formed GeneralNames holding only directoryName entries; any other
// unhandled critical extension still fails verification.
func acceptEKSAN(c *x509.Certificate) error {
	if !slices.ContainsFunc(c.UnhandledCriticalExtensions, oidSAN.Equal) {
		return nil
	}
	for _, ext := range c.Extensions {
		if !ext.Id.Equal(oidSAN) {
			continue
		}
		in := cryptobyte.String(ext.Value)
		var names cryptobyte.String
		if !in.ReadASN1(&names, cbasn1.SEQUENCE) || !in.Empty() || names.Empty() {
			return errors.New("malformed subjectAltName")
		}
		for !names.Empty() {
			var dn cryptobyte.String
			if !names.ReadASN1(&dn, cbasn1.Tag(4).ContextSpecific().Constructed()) {
				return errors.New("subjectAltName holds more than directoryName entries")
			}
		}
	}
	c.UnhandledCriticalExtensions = slices.DeleteFunc(c.UnhandledCriticalExtensions, oidSAN.Equal)
	return nil
}
