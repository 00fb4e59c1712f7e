// Package tpm appraises TPM 2.0 Evidence produced by attester/tpm: the quote
// bundle of media type cmw.MediaTypeTPM2 (encoding in attester/tpm/bundle).
//
// Verify accepts a bundle only when all of these hold:
//
//   - format: the CMW is one record of cmw.MediaTypeTPM2 with the evidence
//     indicator or none, under package cmw's one record rule (size limit,
//     canonical encoding; verifier.VerifyCMW, verifier.ExpectRecord); the
//     bundle decodes strictly (bundle.Unmarshal), and every TPM structure
//     decodes strictly: its one canonical encoding, consumed exactly
//     (tpmabi.go);
//   - ak: the attestation key is a restricted, TPM-generated ECC P-256
//     signing key, trusted because its public key is pinned
//     (Config.TrustedAKs) or because the bundle's AK certificate chains to
//     an enrollment CA in Config.AKRoots and has the AK certificate
//     profile (see Config.AKRoots and EnrollmentCA: the CA issues that
//     certificate only after TPM2_ActivateCredential proved the AK resides
//     in the TPM whose EK certificate chains to a manufacturer CA); the
//     public area's attributes alone prove nothing, since anyone can write
//     them;
//   - signature: the quote's TPMT_SIGNATURE verifies under the AK;
//   - challenge: the quote's extraData equals Expected.Challenge's
//     QualifyingData32 (compared in constant time);
//   - pcr: the quote's PCR selection is exactly the reported PCRs of one
//     bank, their digest equals the quoted one, a PCR policy is configured,
//     and each PCR named in Config.PCRPolicy has a policy value;
//   - eventlog: when the bundle carries an event log, replaying it gives
//     every quoted PCR's value;
//   - key: when the bundle certifies a key (or Config.RequireKeyAttestation),
//     the TPM2_Certify is signed by the AK over the same challenge, names
//     the reported TPMT_PUBLIC, whose attributes make it TPM-resident and
//     non-exportable (fixedTPM, fixedParent, sensitiveDataOrigin, signing,
//     not decrypting, not restricted) and whose public key is
//     Expected.PublicKey / Expected.SPKI.
//
// A rejection is a *verifier.RejectedError whose Check is the
// verifier.Check of that name (CheckFormat, CheckAK, ...). Clock and firmware information is reported in Result.Claims, not
// judged: TPM clocks are not trustworthy wall time.
//
// Without Config.PCRPolicy every quote is rejected (CheckPCR); with the
// insecure opt-in Config.AcceptAnyPCRs the result says only that a trusted
// TPM answered this challenge (Status warning).
//
// Caveats: event-log replay checks that the log is consistent with the
// quote; it does not appraise the events.
package tpm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/attested-tls/go-expat/attester/tpm/bundle"
	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/verifier"
)

// Technology is Result.Technology for TPM 2.0 Evidence.
const Technology = "tpm2"

// Config configures a Verifier. The zero value (and a nil *Config) trusts
// no AK and has no PCR policy, and so rejects all Evidence. A Config must
// not be modified after New.
type Config struct {
	// TrustedAKs are pinned AK public keys (*ecdsa.PublicKey, as returned
	// by attester/tpm's Attester.AKPublicKey, or parsed from its TPMT_PUBLIC
	// with ParseAKPublic). Nil pins none.
	TrustedAKs []crypto.PublicKey
	// AKRoots are enrollment CAs whose AK certificates (bundle key 6) make
	// an AK trusted. Nil trusts no AK certificate.
	//
	// A certificate chaining to AKRoots is taken as an AK certificate only
	// with the AK certificate profile (see OIDAKCertificate): not a CA, key
	// usage digitalSignature, extended key usage exactly
	// tcg-kp-AIKCertificate, and, when its subject records the AK Name as
	// EnrollmentCA's do, this AK's Name. Such a certificate says "this key
	// is a restricted signing key resident in a genuine TPM", and the
	// Verifier believes it. A CA in AKRoots therefore must issue that
	// extended key usage only for keys whose TPM residency it verified
	// (credential activation against an EK certificate, as EnrollmentCA
	// does), and must never issue it for any other key; certificates it
	// issues without that usage (TLS, code signing) are never taken as AK
	// certificates. A CA dedicated to AK enrollment is the safe choice.
	AKRoots *x509.CertPool
	// PCRBank is the bank that quotes must cover: crypto.SHA256 (the zero
	// value), crypto.SHA1, crypto.SHA384 or crypto.SHA512.
	PCRBank crypto.Hash
	// PCRPolicy maps PCR indices to their accepted values (any one of the
	// listed values; each of the bank's digest size). Every PCR it names
	// must be in the quote. Nil or empty rejects every quote (CheckPCR)
	// unless AcceptAnyPCRs is set.
	PCRPolicy map[int][][]byte
	// AcceptAnyPCRs accepts quotes without appraising any PCR: the result
	// then says only that a trusted TPM answered this challenge (Status
	// warning, no Executables claim). INSECURE: the platform may have
	// booted anything; use it only where the boot state is appraised
	// elsewhere. New refuses it together with a PCRPolicy.
	AcceptAnyPCRs bool
	// RequireKeyAttestation rejects bundles that do not certify the
	// Exported Authenticator's key. False accepts them (a bundle that does
	// certify a key is still checked).
	RequireKeyAttestation bool
	// RequireEventLog rejects bundles without an event log. False accepts
	// them (a log that is present is still replayed).
	RequireEventLog bool
	// Name is Result.Verifier. Empty means "go-expat/verifier/tpm".
	Name string
	// Time returns the current time for certificate validity when
	// Expected.Now is zero. Nil means time.Now.
	Time func() time.Time
}

// Verifier appraises TPM 2.0 quote bundles. It is safe for concurrent use.
type Verifier struct {
	cfg     Config
	bankAlg uint16
	pinned  [][]byte // SPKI DER of pinned AKs
}

var _ verifier.RecordVerifier = (*Verifier)(nil)

// New checks cfg and returns a Verifier; cfg is copied, and nil means the
// zero Config. It fails for a malformed Config (a PCR policy value of the
// wrong size, an unsupported bank, AcceptAnyPCRs with a PCRPolicy).
func New(cfg *Config) (*Verifier, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.AcceptAnyPCRs && len(c.PCRPolicy) != 0 {
		return nil, errors.New("tpm: AcceptAnyPCRs and a PCRPolicy exclude each other")
	}
	alg, ok := algOf(c.PCRBank)
	if !ok {
		return nil, fmt.Errorf("tpm: unsupported PCR bank %v", c.PCRBank)
	}
	h, _ := hashOf(alg)
	pol := make(map[int][][]byte, len(c.PCRPolicy))
	for i, vals := range c.PCRPolicy {
		if i < 0 || i > bundle.MaxPCR || len(vals) == 0 {
			return nil, fmt.Errorf("tpm: PCR policy entry %d must name a PCR 0-%d with at least one value", i, bundle.MaxPCR)
		}
		for _, v := range vals {
			if len(v) != h.Size() {
				return nil, fmt.Errorf("tpm: PCR policy value for PCR %d has %d bytes, want %d", i, len(v), h.Size())
			}
		}
		pol[i] = slices.Clone(vals)
	}
	c.PCRPolicy = pol
	v := &Verifier{cfg: c, bankAlg: alg}
	for _, k := range c.TrustedAKs {
		ek, ok := k.(*ecdsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("tpm: trusted AK of type %T is not an ECDSA key", k)
		}
		der, err := x509.MarshalPKIXPublicKey(ek)
		if err != nil {
			return nil, fmt.Errorf("tpm: trusted AK: %w", err)
		}
		v.pinned = append(v.pinned, der)
	}
	if c.Name == "" {
		v.cfg.Name = "go-expat/verifier/tpm"
	}
	return v, nil
}

// ParseAKPublic parses an AK's TPMT_PUBLIC (Attester.AKPublic) strictly
// and returns its public key, for Config.TrustedAKs.
func ParseAKPublic(tpmtPublic []byte) (crypto.PublicKey, error) {
	_, k, err := parseAK(tpmtPublic)
	if err != nil {
		return nil, fmt.Errorf("tpm: AK public area: %w", err)
	}
	return k, nil
}

// Verify appraises a CMW carrying a TPM 2.0 quote bundle against exp
// (verifier.VerifyCMW, then VerifyRecord).
func (v *Verifier) Verify(ctx context.Context, data []byte, exp *verifier.Expected) (*verifier.Result, error) {
	return verifier.VerifyCMW(ctx, v, data, exp)
}

// VerifyRecord appraises a decoded CMW record of type cmw.MediaTypeTPM2
// (indicator evidence or none) against exp.
func (v *Verifier) VerifyRecord(ctx context.Context, rec cmw.Record, exp *verifier.Expected) (*verifier.Result, error) {
	if err := verifier.ExpectRecord(rec, cmw.MediaTypeTPM2, cmw.Evidence); err != nil {
		return nil, err
	}
	if exp == nil {
		return nil, errors.New("tpm: nil Expected")
	}
	if err := ctx.Err(); err != nil {
		return nil, verifier.Unavailable(false, err, "tpm: appraisal cancelled")
	}
	qd, err := exp.QualifyingData32()
	if err != nil {
		return nil, fmt.Errorf("tpm: expected challenge: %w", err)
	}
	now := exp.Now
	if now.IsZero() {
		if v.cfg.Time != nil {
			now = v.cfg.Time()
		} else {
			now = time.Now()
		}
	}
	b, err := bundle.Unmarshal(rec.Value)
	if err != nil {
		return nil, verifier.Reject(verifier.CheckFormat, err, "tpm: undecodable TPM quote bundle")
	}
	claims := map[string]string{}

	// The attestation key and why it is trusted.
	ak, akKey, err := parseAK(b.AKPublic)
	if err != nil {
		return nil, verifier.Reject(verifier.CheckAK, err, "tpm: unacceptable attestation key")
	}
	name := ak.name()
	trust, err := v.trustAK(ak.p256SPKI(), name, b.AKChain, now)
	if err != nil {
		return nil, err
	}
	claims["ak-trust"] = trust
	claims["ak-name"] = hex.EncodeToString(name)

	// The quote: signature, challenge, PCRs.
	if err := verifySig(akKey, b.Quote, b.QuoteSig); err != nil {
		return nil, verifier.Reject(verifier.CheckSignature, err, "tpm: quote signature")
	}
	var att attest
	if err := parseAttest(b.Quote, tpm2.TPMSTAttestQuote, &att); err != nil {
		return nil, verifier.Reject(verifier.CheckFormat, err, "tpm: quote structure")
	}
	if subtle.ConstantTimeCompare(att.extraData, qd[:]) != 1 {
		return nil, verifier.Reject(verifier.CheckChallenge, nil, "tpm: quote extraData is not this connection's challenge")
	}
	if err := v.checkPCRs(b, &att); err != nil {
		return nil, err
	}
	claims["pcr-bank"] = v.cfg.PCRBankName()
	claims["clock"] = strconv.FormatUint(att.clock, 10)
	claims["reset-count"] = strconv.FormatUint(uint64(att.resetCount), 10)
	claims["restart-count"] = strconv.FormatUint(uint64(att.restartCount), 10)
	claims["clock-safe"] = strconv.FormatBool(att.safe)
	claims["firmware-version"] = fmt.Sprintf("%016x", att.firmwareVersion)

	// The event log, if any, must reproduce every quoted PCR.
	switch {
	case len(b.EventLog) != 0:
		if err := v.checkEventLog(b); err != nil {
			return nil, err
		}
		claims["event-log"] = "replayed"
	case v.cfg.RequireEventLog:
		return nil, verifier.Reject(verifier.CheckEventLog, nil, "tpm: no event log")
	default:
		claims["event-log"] = "absent"
	}

	// Key attestation.
	keyAttested := false
	switch {
	case b.HasKeyAttestation():
		if err := checkKey(b, akKey, qd[:], &att, exp); err != nil {
			return nil, err
		}
		keyAttested = true
	case v.cfg.RequireKeyAttestation:
		return nil, verifier.Reject(verifier.CheckKey, nil, "tpm: the bundle does not certify the authenticator's key")
	}
	claims["key-attested"] = strconv.FormatBool(keyAttested)
	if len(b.EKCerts) != 0 {
		claims["ek-certificates"] = strconv.Itoa(len(b.EKCerts)) + " (not appraised)"
	}

	res := &verifier.Result{
		Model:       verifier.BackgroundCheck,
		Technology:  Technology,
		MediaType:   cmw.MediaTypeTPM2,
		Claims:      claims,
		Verifier:    v.cfg.Name,
		AppraisedAt: now,
		TrustVector: verifier.TrustVector{
			InstanceIdentity: 2, // recognized, trusted instance
			Hardware:         2, // genuine (per the AK's enrollment)
		},
	}
	for _, i := range slices.Sorted(maps.Keys(b.PCRs)) {
		res.Measurements = append(res.Measurements, verifier.Measurement{
			Name: fmt.Sprintf("PCR%d/%s", i, v.cfg.PCRBankName()), Value: bytes.Clone(b.PCRs[i])})
	}
	res.KeyBinding = verifier.KeyInEvidence // qualifyingData covers AIK_pub_hash
	if keyAttested {
		res.TrustVector.StorageOpaque = 2 // key is hardware-protected
		res.KeyBinding = verifier.KeyCertified
	}
	res.PlatformIDs = []verifier.PlatformID{{Kind: "tpm.ak-name", Value: name}}
	if v.cfg.AcceptAnyPCRs {
		res.Status = verifier.TierWarning // platform state not appraised, by choice
	} else {
		res.TrustVector.Executables = 2 // approved boot measurements
		res.Status = verifier.TierAffirming
	}
	return res, nil
}

// PCRBankName names the configured bank ("sha256", ...).
func (c *Config) PCRBankName() string {
	switch c.PCRBank {
	case crypto.SHA1:
		return "sha1"
	case crypto.SHA384:
		return "sha384"
	case crypto.SHA512:
		return "sha512"
	}
	return "sha256"
}

// trustAK says why the AK of SPKI der and Name akName is trusted.
func (v *Verifier) trustAK(der, akName []byte, chain [][]byte, now time.Time) (string, error) {
	for _, p := range v.pinned {
		if subtle.ConstantTimeCompare(p, der) == 1 {
			return "pinned", nil
		}
	}
	if len(chain) == 0 || v.cfg.AKRoots == nil {
		return "", verifier.Reject(verifier.CheckAK, nil, "tpm: attestation key is neither pinned nor certified by a trusted enrollment CA")
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return "", verifier.Reject(verifier.CheckAK, err, "tpm: AK certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		ic, err := x509.ParseCertificate(c)
		if err != nil {
			return "", verifier.Reject(verifier.CheckAK, err, "tpm: AK certificate chain")
		}
		inter.AddCert(ic)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots: v.cfg.AKRoots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return "", verifier.Reject(verifier.CheckAK, err, "tpm: AK certificate does not chain to a trusted enrollment CA")
	}
	if subtle.ConstantTimeCompare(leaf.RawSubjectPublicKeyInfo, der) != 1 {
		return "", verifier.Reject(verifier.CheckAK, nil, "tpm: AK certificate is for another key")
	}
	if err := checkAKProfile(leaf, akName); err != nil {
		return "", verifier.Reject(verifier.CheckAK, err, "tpm: certificate from an AKRoots CA is not an AK certificate")
	}
	return "certificate", nil
}

// OIDAKCertificate is tcg-kp-AIKCertificate (2.23.133.8.3), the extended
// key usage of TCG attestation key certificates (TCG EK Credential
// Profile, Section 3.2.16; TCG Infrastructure WG, AIK certificate
// profile). Only a certificate with it is an AK certificate.
var OIDAKCertificate = asn1.ObjectIdentifier{2, 23, 133, 8, 3}

// akNamePrefix starts the subject common name of the AK certificates that
// EnrollmentCA issues; the hex AK Name follows.
const akNamePrefix = "TPM AK "

// checkAKProfile checks that leaf is an AK certificate: an end-entity
// (not a CA) certificate whose key usage includes digitalSignature and
// nothing that signs certificates or CRLs, whose only extended key usage
// is OIDAKCertificate, and whose subject, when it records an AK Name as
// EnrollmentCA does ("TPM AK <hex Name>"), names this AK.
func checkAKProfile(leaf *x509.Certificate, akName []byte) error {
	if leaf.IsCA || leaf.KeyUsage&(x509.KeyUsageCertSign|x509.KeyUsageCRLSign) != 0 {
		return errors.New("it is a CA certificate")
	}
	if leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return errors.New("its key usage lacks digitalSignature")
	}
	if len(leaf.ExtKeyUsage) != 0 || len(leaf.UnknownExtKeyUsage) != 1 || !leaf.UnknownExtKeyUsage[0].Equal(OIDAKCertificate) {
		return errors.New("its extended key usage is not exactly tcg-kp-AIKCertificate")
	}
	if rest, ok := strings.CutPrefix(leaf.Subject.CommonName, akNamePrefix); ok {
		if n, err := hex.DecodeString(rest); err != nil || subtle.ConstantTimeCompare(n, akName) != 1 {
			return errors.New("its subject names another AK")
		}
	}
	return nil
}

func (v *Verifier) checkPCRs(b *bundle.Bundle, att *attest) error {
	if b.PCRAlg != v.bankAlg {
		return verifier.Reject(verifier.CheckPCR, nil, "tpm: quote covers PCR bank 0x%04x, policy needs 0x%04x", b.PCRAlg, v.bankAlg)
	}
	sels := att.pcrSelect
	if len(sels) != 1 || sels[0].hash != b.PCRAlg {
		return verifier.Reject(verifier.CheckPCR, nil, "tpm: quote selects other banks than the reported one")
	}
	var quoted []uint32
	for i := 0; i < len(sels[0].bits)*8; i++ {
		if sels[0].bits[i/8]&(1<<(i%8)) != 0 {
			quoted = append(quoted, uint32(i))
		}
	}
	reported := slices.Sorted(maps.Keys(b.PCRs))
	if !slices.Equal(quoted, reported) {
		return verifier.Reject(verifier.CheckPCR, nil, "tpm: reported PCRs %v are not the quoted PCRs %v", reported, quoted)
	}
	d := crypto.SHA256.New() // the AK's scheme hash
	for _, i := range quoted {
		d.Write(b.PCRs[i])
	}
	if !bytes.Equal(d.Sum(nil), att.pcrDigest) {
		return verifier.Reject(verifier.CheckPCR, nil, "tpm: reported PCR values do not match the quoted digest")
	}
	if len(v.cfg.PCRPolicy) == 0 && !v.cfg.AcceptAnyPCRs {
		return verifier.Reject(verifier.CheckPCR, nil, "tpm: no PCR policy is configured (Config.PCRPolicy; AcceptAnyPCRs skips the PCR appraisal)")
	}
	for _, i := range slices.Sorted(maps.Keys(v.cfg.PCRPolicy)) {
		got, ok := b.PCRs[uint32(i)]
		if !ok {
			return verifier.Reject(verifier.CheckPCR, nil, "tpm: PCR %d is in the policy but not in the quote", i)
		}
		if !slices.ContainsFunc(v.cfg.PCRPolicy[i], func(w []byte) bool { return bytes.Equal(w, got) }) {
			return verifier.Reject(verifier.CheckPCR, nil, "tpm: PCR %d is %x, not a value the policy accepts", i, got)
		}
	}
	return nil
}

func (v *Verifier) checkEventLog(b *bundle.Bundle) error {
	events, err := parseEventLog(b.EventLog, b.PCRAlg)
	if err != nil {
		return verifier.Reject(verifier.CheckEventLog, err, "tpm: event log")
	}
	replayed, err := replay(events, b.PCRAlg)
	if err != nil {
		return verifier.Reject(verifier.CheckEventLog, err, "tpm: event log replay")
	}
	h, _ := hashOf(b.PCRAlg)
	zero := make([]byte, h.Size())
	for _, i := range slices.Sorted(maps.Keys(b.PCRs)) {
		want, ok := replayed[i]
		if !ok {
			want = zero
		}
		if !bytes.Equal(want, b.PCRs[i]) {
			return verifier.Reject(verifier.CheckEventLog, nil, "tpm: replaying the event log gives PCR %d = %x, quoted %x", i, want, b.PCRs[i])
		}
	}
	return nil
}

// checkKey verifies the TPM2_Certify of the authenticator's key.
func checkKey(b *bundle.Bundle, akKey *ecdsa.PublicKey, qd []byte, quote *attest, exp *verifier.Expected) error {
	if err := verifySig(akKey, b.Certify, b.CertifySig); err != nil {
		return verifier.Reject(verifier.CheckKey, err, "tpm: certify signature")
	}
	var att attest
	if err := parseAttest(b.Certify, tpm2.TPMSTAttestCertify, &att); err != nil {
		return verifier.Reject(verifier.CheckFormat, err, "tpm: certify structure")
	}
	if subtle.ConstantTimeCompare(att.extraData, qd) != 1 {
		return verifier.Reject(verifier.CheckChallenge, nil, "tpm: certify extraData is not this connection's challenge")
	}
	if att.resetCount != quote.resetCount || att.restartCount != quote.restartCount {
		return verifier.Reject(verifier.CheckKey, nil, "tpm: quote and certify come from different TPM boots")
	}
	var pub public
	if err := parsePublic(b.KeyPublic, &pub); errors.Is(err, errUnsupportedKey) {
		return verifier.Reject(verifier.CheckKey, err, "tpm: certified key")
	} else if err != nil {
		return verifier.Reject(verifier.CheckFormat, err, "tpm: certified key's public area")
	}
	if tpm2.TPMAlgID(pub.nameAlg) != tpm2.TPMAlgSHA256 {
		return verifier.Reject(verifier.CheckKey, nil, "tpm: certified key's name algorithm is not SHA-256")
	}
	if !bytes.Equal(pub.name(), att.name) {
		return verifier.Reject(verifier.CheckKey, nil, "tpm: certify names another key than the reported public area")
	}
	if !pub.has(attrFixedTPM|attrFixedParent|attrSensitiveDataOrigin|attrSign) || pub.has(attrDecrypt) || pub.has(attrRestricted) {
		return verifier.Reject(verifier.CheckKey, nil, "tpm: certified key is not a TPM-generated, non-exportable, unrestricted signing key")
	}
	key, err := pub.eccSigningKey()
	if err != nil {
		return verifier.Reject(verifier.CheckKey, err, "tpm: certified key")
	}
	if exp.PublicKey == nil && len(exp.SPKI) == 0 {
		return verifier.Reject(verifier.CheckKey, nil, "tpm: the bundle certifies a key but no expected key was given")
	}
	if exp.PublicKey != nil {
		want, ok := exp.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
		if !ok || !want.Equal(key) {
			return verifier.Reject(verifier.CheckKey, nil, "tpm: certified key is not the authenticator's key")
		}
	}
	if len(exp.SPKI) != 0 && !bytes.Equal(exp.SPKI, pub.p256SPKI()) {
		return verifier.Reject(verifier.CheckKey, nil, "tpm: certified key is not the authenticator's key (SPKI)")
	}
	return nil
}
