package sevsnp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	"github.com/google/go-sev-guest/verify/trust"

	"github.com/attested-tls/go-expat/attester/sevsnp/wire"
	expatcmw "github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/collateral"
)

// Technology is the Result.Technology of this verifier.
const Technology = "sev-snp"

// Root is a trusted AMD root for one product line: the ARK and the
// intermediates it certified.
type Root struct {
	// ProductLine is "Milan", "Genoa" or "Turin".
	ProductLine string
	// ARK is the self-signed AMD Root Key certificate.
	ARK *x509.Certificate
	// ASK certifies VCEKs; ASVK certifies VLEKs (either may be nil).
	ASK, ASVK *x509.Certificate
}

// AMDRoots returns AMD's published roots for Milan, Genoa and Turin (ARK,
// ASK and ASVK), from the PEM bundles that go-sev-guest's verify/trust
// package embeds (that package registers no flag). They are the default.
func AMDRoots() ([]Root, error) {
	bundles := []struct {
		line       string
		vcek, vlek []byte
	}{
		{"Milan", trust.AskArkMilanVcekBytes, trust.AskArkMilanVlekBytes},
		{"Genoa", trust.AskArkGenoaVcekBytes, trust.AskArkGenoaVlekBytes},
		{"Turin", trust.AskArkTurinVcekBytes, trust.AskArkTurinVlekBytes},
	}
	var out []Root
	for _, b := range bundles {
		vc, err := pemCerts(b.vcek)
		if err != nil || len(vc) != 2 {
			return nil, fmt.Errorf("sevsnp: embedded %s VCEK roots: want ASK and ARK (%v)", b.line, err)
		}
		r := Root{ProductLine: b.line, ASK: vc[0], ARK: vc[1]}
		// go-sev-guest's own parser rejects its Turin VLEK bundle (trailing
		// bytes), so read the PEM blocks here.
		if vl, err := pemCerts(b.vlek); err == nil && len(vl) == 2 && vl[1].Equal(r.ARK) {
			r.ASVK = vl[0]
		}
		out = append(out, r)
	}
	return out, nil
}

// TCB is a minimum for the SEV-SNP TCB components.
type TCB struct {
	BootLoader, TEE, SNP, Microcode uint8
}

func (t TCB) String() string {
	return fmt.Sprintf("bl=%d tee=%d snp=%d ucode=%d", t.BootLoader, t.TEE, t.SNP, t.Microcode)
}

func tcbOf(v uint64) TCB {
	p := kds.DecomposeTCBVersion(kds.TCBVersion(v))
	return TCB{BootLoader: p.BlSpl, TEE: p.TeeSpl, SNP: p.SnpSpl, Microcode: p.UcodeSpl}
}

func (t TCB) atLeast(min TCB) bool {
	return t.BootLoader >= min.BootLoader && t.TEE >= min.TEE && t.SNP >= min.SNP && t.Microcode >= min.Microcode
}

// Policy is the appraisal policy. The zero value accepts no report: no
// MEASUREMENT is in its empty allow-list. Beyond that it forbids debug and
// migration agents, requires VMPL 0 and accepts every TCB (MinimumTCB
// zero).
type Policy struct {
	// Measurements is the allow-list of 48-byte launch MEASUREMENTs. Empty
	// rejects every report (CheckMeasurement) unless AcceptAnyMeasurement.
	Measurements [][]byte
	// AcceptAnyMeasurement accepts every MEASUREMENT (Executables then gets
	// no claim in the trust vector). INSECURE: the guest may run any
	// code; use it only where the launch measurement is appraised
	// elsewhere. New refuses it together with Measurements.
	AcceptAnyMeasurement bool
	// HostData, when non-nil, is the required 32-byte HOST_DATA; nil
	// accepts any.
	HostData []byte
	// MinimumTCB is the component-wise minimum of REPORTED_TCB (the TCB
	// the VCEK is for), COMMITTED_TCB (the lowest firmware the host can
	// roll back to after this report) and LAUNCH_TCB (the firmware the
	// guest was launched under). The zero value accepts every TCB.
	MinimumTCB TCB
	// AllowProvisionalFirmware accepts reports whose CURRENT_TCB is not
	// committed (COMMITTED_TCB differs): the host can still roll the
	// firmware back to COMMITTED_TCB. Such reports are accepted with
	// Status warning. Off by default.
	AllowProvisionalFirmware bool
	// MinGuestSVN is the minimum GUEST_SVN (0 accepts any).
	MinGuestSVN uint32
	// AllowDebug accepts guests whose policy allows debugging (the host
	// can read their memory). For tests only.
	AllowDebug bool
	// AllowMigrationAgent accepts guests whose policy allows a migration
	// agent (refused when false).
	AllowMigrationAgent bool
	// VMPLs lists the accepted VMPLs; empty means {0}.
	VMPLs []uint32
}

// Config configures a Verifier. The zero value (and a nil *Config) trusts
// AMD's roots, fetches nothing (the Evidence must carry its VCEK or VLEK)
// and applies the zero Policy, which rejects every report. Config must not
// be modified after New.
type Config struct {
	// Roots are the trusted roots; nil or empty means AMDRoots(). Test
	// roots are trusted only when a caller puts them here. New checks
	// that each ARK is self-signed and signed its ASK and ASVK.
	Roots []Root
	// Collateral supplies VCEKs (and CRLs) missing from the Evidence: a
	// *Cache over *KDS, or a *Bundle. nil means none.
	Collateral Collateral
	// CheckRevocation fetches the product's CRL from Collateral and
	// rejects revoked intermediates and endorsement keys.
	CheckRevocation bool
	// ProductLine names the product for version 2 reports that carry no
	// VCEK (they do not name their product); "" makes such reports
	// unverifiable.
	ProductLine string
	// Policy is the appraisal policy.
	Policy Policy
	// Time gives the appraisal time when Expected.Now is zero; nil means
	// time.Now.
	Time func() time.Time
}

// Verifier appraises SEV-SNP Evidence. It is safe for concurrent use.
//
// It keeps the endorsement key certificate chains it verified and the
// CRLs whose signature it checked (at most collateral.DefaultMaxEntries
// of each, least recently used dropped first), keyed by a SHA-256 of their
// exact DER, and relies on one only at an appraisal time within the
// validity period of every certificate of the chain (the CRL's thisUpdate
// to nextUpdate): a cached verdict is the one a new check would give. The
// report's signature and the revocation of the chain's certificates (in
// the CRL obtained for this appraisal) are checked every time.
type Verifier struct {
	cfg   Config
	roots map[string][]*trustedRoot
	meas  map[[48]byte]bool

	chains collateral.Verified[chainKey, *endorsementCert]
	crls   collateral.Verified[crlKey, *x509.RevocationList]
}

var _ verifier.RecordVerifier = (*Verifier)(nil)

// New returns a Verifier for cfg; cfg is copied, and nil means the zero
// Config. It fails for a malformed Config (a root that does not verify,
// a measurement of the wrong size, contradictory options).
func New(cfg *Config) (*Verifier, error) {
	c := Config{}
	if cfg != nil {
		c = *cfg
	}
	cfg = &c
	if cfg.Policy.AcceptAnyMeasurement && len(cfg.Policy.Measurements) != 0 {
		return nil, errors.New("sevsnp: Policy.AcceptAnyMeasurement and Policy.Measurements exclude each other")
	}
	roots := cfg.Roots
	if len(roots) == 0 {
		var err error
		if roots, err = AMDRoots(); err != nil {
			return nil, err
		}
	}
	v := &Verifier{cfg: *cfg, roots: map[string][]*trustedRoot{}, meas: map[[48]byte]bool{}}
	for i, r := range roots {
		if r.ARK == nil || (r.ASK == nil && r.ASVK == nil) {
			return nil, fmt.Errorf("sevsnp: root %d (%s) needs an ARK and an ASK or ASVK", i, r.ProductLine)
		}
		if _, err := kds.ParseProductLine(r.ProductLine); err != nil {
			return nil, fmt.Errorf("sevsnp: root %d: unknown product line %q", i, r.ProductLine)
		}
		tr, err := newTrustedRoot(r)
		if err != nil {
			return nil, fmt.Errorf("sevsnp: root %d (%s): %w", i, r.ProductLine, err)
		}
		v.roots[r.ProductLine] = append(v.roots[r.ProductLine], tr)
	}
	for i, m := range cfg.Policy.Measurements {
		if len(m) != 48 {
			return nil, fmt.Errorf("sevsnp: policy measurement %d is %d bytes, want 48", i, len(m))
		}
		v.meas[[48]byte(m)] = true
	}
	if cfg.Policy.HostData != nil && len(cfg.Policy.HostData) != 32 {
		return nil, fmt.Errorf("sevsnp: policy host data is %d bytes, want 32", len(cfg.Policy.HostData))
	}
	for _, l := range cfg.Policy.VMPLs {
		if l > 3 {
			return nil, fmt.Errorf("sevsnp: policy VMPL %d is not in 0..3", l)
		}
	}
	if cfg.CheckRevocation && cfg.Collateral == nil {
		return nil, errors.New("sevsnp: CheckRevocation needs Collateral")
	}
	return v, nil
}

// unavailable reports what could not be checked; a *collateral.FetchError cause
// carries whether a retry may succeed.
func unavailable(reason string, err error) error {
	var fe *collateral.FetchError
	return verifier.Unavailable(errors.As(err, &fe) && fe.Retryable, err, "sevsnp: %s", reason)
}

// Verify appraises a CMW carrying SEV-SNP Evidence against exp
// (verifier.VerifyCMW, then VerifyRecord).
func (v *Verifier) Verify(ctx context.Context, cmw []byte, exp *verifier.Expected) (*verifier.Result, error) {
	return verifier.VerifyCMW(ctx, v, cmw, exp)
}

// VerifyRecord appraises a decoded CMW record of type cmw.MediaTypeSEVSNP
// (indicator evidence or none) against exp.
func (v *Verifier) VerifyRecord(ctx context.Context, rec expatcmw.Record, exp *verifier.Expected) (*verifier.Result, error) {
	if err := verifier.ExpectRecord(rec, expatcmw.MediaTypeSEVSNP, expatcmw.Evidence); err != nil {
		return nil, err
	}
	if exp == nil {
		return nil, errors.New("sevsnp: nil Expected")
	}
	reportData, err := exp.ReportData64()
	if err != nil {
		return nil, fmt.Errorf("sevsnp: expected challenge: %w", err)
	}
	now := exp.Now
	if now.IsZero() {
		if v.cfg.Time != nil {
			now = v.cfg.Time()
		} else {
			now = time.Now()
		}
	}
	val := rec.Value
	ev, err := wire.Unmarshal(val)
	if err != nil {
		return nil, verifier.Reject(verifier.CheckFormat, err, "sevsnp: evidence")
	}
	report, info, err := parseReport(ev.Report)
	if err != nil {
		return nil, err
	}
	var table wire.CertTable
	if ev.CertTable != nil {
		if table, err = wire.ParseCertTable(ev.CertTable); err != nil {
			return nil, verifier.Reject(verifier.CheckFormat, err, "sevsnp: certificate table")
		}
	}

	// The report's own checks come first: they need no collateral, so a
	// report that fails them never causes a VCEK fetch.
	pol, provisional, err := v.checkPolicy(report)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(report.GetReportData(), reportData[:]) != 1 {
		return nil, verifier.Reject(verifier.CheckChallenge, nil, "sevsnp: REPORT_DATA does not match the expected challenge")
	}

	// Chain and signature.
	ekDER, line, err := v.endorsementKey(ctx, report, info.SigningKey, table)
	if err != nil {
		return nil, err
	}
	ec, err := v.chainAndSignature(ev.Report, report, info.SigningKey, ekDER, now)
	if err != nil {
		return nil, err
	}
	exts := ec.exts
	if uint64(exts.TCBVersion) != report.GetReportedTcb() {
		return nil, verifier.Reject(verifier.CheckChain, nil, "sevsnp: %v certificate is for TCB %s, report has REPORTED_TCB %s",
			info.SigningKey, tcbOf(uint64(exts.TCBVersion)), tcbOf(report.GetReportedTcb()))
	}
	if info.SigningKey == abi.VcekReportSigner && !allZero(report.GetChipId()) &&
		!bytes.Equal(report.GetChipId(), exts.HWID) {
		return nil, verifier.Reject(verifier.CheckChain, nil, "sevsnp: VCEK certificate is for another chip")
	}
	// The appraisal is good while its endorsement is: the VCEK/VLEK
	// certificate's validity and, when checked, the CRL's next update.
	expires := ec.cert.NotAfter
	if v.cfg.CheckRevocation {
		next, err := v.checkRevocation(ctx, info.SigningKey, ec, now)
		if err != nil {
			return nil, err
		}
		if next.Before(expires) {
			expires = next
		}
	}
	res := v.result(report, pol, provisional, line, info.SigningKey, now)
	res.Expires = expires
	return res, nil
}

// checkPolicy applies the Policy to the report's fields (no signature is
// checked yet). provisional tells that the report was accepted although
// its firmware is not committed (Policy.AllowProvisionalFirmware).
func (v *Verifier) checkPolicy(report *spb.Report) (pol abi.SnpPolicy, provisional bool, err error) {
	pol, err = abi.ParseSnpPolicy(report.GetPolicy())
	if err != nil {
		return pol, false, verifier.Reject(verifier.CheckFormat, err, "sevsnp: guest policy")
	}
	p := &v.cfg.Policy
	if pol.Debug && !p.AllowDebug {
		return pol, false, verifier.Reject(verifier.CheckDebug, nil, "sevsnp: guest policy allows debugging")
	}
	if pol.MigrateMA && !p.AllowMigrationAgent {
		return pol, false, verifier.Reject(verifier.CheckPolicy, nil, "sevsnp: guest policy allows a migration agent")
	}
	if p.HostData != nil && subtle.ConstantTimeCompare(report.GetHostData(), p.HostData) != 1 {
		return pol, false, verifier.Reject(verifier.CheckPolicy, nil, "sevsnp: HOST_DATA is not the expected value")
	}
	if report.GetGuestSvn() < p.MinGuestSVN {
		return pol, false, verifier.Reject(verifier.CheckPolicy, nil, "sevsnp: GUEST_SVN %d is below %d", report.GetGuestSvn(), p.MinGuestSVN)
	}
	if !v.vmplAllowed(report.GetVmpl()) {
		return pol, false, verifier.Reject(verifier.CheckVMPL, nil, "sevsnp: VMPL %d is not allowed", report.GetVmpl())
	}
	reported, current := tcbOf(report.GetReportedTcb()), tcbOf(report.GetCurrentTcb())
	committed, launch := tcbOf(report.GetCommittedTcb()), tcbOf(report.GetLaunchTcb())
	for _, c := range []struct {
		name string
		tcb  TCB
	}{{"REPORTED_TCB", reported}, {"COMMITTED_TCB", committed}, {"LAUNCH_TCB", launch}} {
		if !c.tcb.atLeast(p.MinimumTCB) {
			return pol, false, verifier.Reject(verifier.CheckTCB, nil, "sevsnp: %s %s is below the minimum %s", c.name, c.tcb, p.MinimumTCB)
		}
	}
	if !current.atLeast(reported) {
		return pol, false, verifier.Reject(verifier.CheckTCB, nil, "sevsnp: REPORTED_TCB %s is above CURRENT_TCB %s", reported, current)
	}
	if !current.atLeast(committed) {
		return pol, false, verifier.Reject(verifier.CheckTCB, nil, "sevsnp: COMMITTED_TCB %s is above CURRENT_TCB %s", committed, current)
	}
	if committed != current {
		if !p.AllowProvisionalFirmware {
			return pol, false, verifier.Reject(verifier.CheckTCB, nil, "sevsnp: provisional firmware: CURRENT_TCB %s is not committed (COMMITTED_TCB %s)", current, committed)
		}
		provisional = true
	}
	if !p.AcceptAnyMeasurement && !v.meas[[48]byte(report.GetMeasurement())] {
		return pol, false, verifier.Reject(verifier.CheckMeasurement, nil, "sevsnp: MEASUREMENT %x is not in the allow-list", report.GetMeasurement())
	}
	return pol, provisional, nil
}

// parseReport checks the report's layout: version 2 to 5, reserved
// fields zero, guest policy and signer info well formed, ECDSA P-384
// signature algorithm.
func parseReport(raw []byte) (*spb.Report, abi.SignerInfo, error) {
	if err := abi.ValidateReportFormat(raw); err != nil {
		return nil, abi.SignerInfo{}, verifier.Reject(verifier.CheckFormat, err, "sevsnp: report")
	}
	report, err := abi.ReportToProto(raw)
	if err != nil {
		return nil, abi.SignerInfo{}, verifier.Reject(verifier.CheckFormat, err, "sevsnp: report")
	}
	if report.GetSignatureAlgo() != abi.SignEcdsaP384Sha384 {
		return nil, abi.SignerInfo{}, verifier.Reject(verifier.CheckFormat, nil, "sevsnp: report signature algorithm %d is not ECDSA P-384", report.GetSignatureAlgo())
	}
	info, err := abi.ParseSignerInfo(report.GetSignerInfo())
	if err != nil {
		return nil, abi.SignerInfo{}, verifier.Reject(verifier.CheckFormat, err, "sevsnp: signer info")
	}
	return report, info, nil
}

// chainAndSignature checks the report's signature under the key of
// ekDER, then that certificate's chain to a trusted root (chain.go). A
// report that does not verify under the key it names is a "signature"
// rejection whether or not the certificate chains; otherwise a
// certificate that does not chain is a "chain" rejection.
//
// A chain verified before (the same certificate bytes, signer and product
// line), at a time within its certificates' validity periods, is not
// verified again; the report's signature always is.
func (v *Verifier) chainAndSignature(raw []byte, r *spb.Report, key abi.ReportSigner, ekDER []byte, now time.Time) (*endorsementCert, error) {
	knownLine := ""
	if fms := r.GetCpuid1EaxFms(); fms != 0 {
		knownLine = kds.ProductLineFromFms(fms)
	}
	ck := chainKey{ek: sha256.Sum256(ekDER), key: key, line: knownLine}
	if ec, ok := v.chains.Get(ck, now); ok {
		if err := checkReportSignature(raw, ec.cert); err != nil {
			return nil, verifier.Reject(verifier.CheckSignature, err, "sevsnp: report signature")
		}
		return ec, nil
	}
	ek, err := x509.ParseCertificate(ekDER)
	if err != nil {
		return nil, verifier.Reject(verifier.CheckChain, err, "sevsnp: %v certificate", key)
	}
	if err := checkReportSignature(raw, ek); err != nil {
		return nil, verifier.Reject(verifier.CheckSignature, err, "sevsnp: report signature")
	}
	ec, err := checkChain(v.roots, ek, key, knownLine, now)
	if err != nil {
		return nil, verifier.Reject(verifier.CheckChain, err, "sevsnp: %v certificate does not chain to a trusted root", key)
	}
	if ec.first {
		v.chains.Put(ck, ec, ec.from, ec.until)
	}
	return ec, nil
}

func (v *Verifier) vmplAllowed(l uint32) bool {
	if len(v.cfg.Policy.VMPLs) == 0 {
		return l == 0
	}
	for _, a := range v.cfg.Policy.VMPLs {
		if a == l {
			return true
		}
	}
	return false
}

// endorsementKey returns the DER certificate of the key that signed the
// report and the report's product line.
func (v *Verifier) endorsementKey(ctx context.Context, r *spb.Report, key abi.ReportSigner, t wire.CertTable) ([]byte, string, error) {
	line := ""
	if fms := r.GetCpuid1EaxFms(); fms != 0 {
		line = kds.ProductLineFromFms(fms)
		if _, err := kds.ParseProductLine(line); err != nil {
			return nil, "", verifier.Reject(verifier.CheckFormat, nil, "sevsnp: report names an unknown product (CPUID 0x%x)", fms)
		}
	}
	var der []byte
	switch key {
	case abi.VcekReportSigner:
		der = t.Get(wire.GUIDVCEK)
	case abi.VlekReportSigner:
		der = t.Get(wire.GUIDVLEK)
	default:
		return nil, "", verifier.Reject(verifier.CheckFormat, nil, "sevsnp: report signed by %v, want VCEK or VLEK", key)
	}
	if der != nil {
		if line == "" {
			line = lineFromCert(der, key)
		}
		return der, line, nil
	}
	if key == abi.VlekReportSigner {
		return nil, "", unavailable("VLEK certificate not in the evidence (the KDS does not serve VLEKs to verifiers)", nil)
	}
	if line == "" {
		line = v.cfg.ProductLine
	}
	if line == "" {
		return nil, "", unavailable("version 2 report without VCEK and no Config.ProductLine", nil)
	}
	if v.cfg.Collateral == nil {
		return nil, "", unavailable("VCEK not in the evidence and no Collateral configured", nil)
	}
	der, err := v.cfg.Collateral.VCEK(ctx, line, [64]byte(r.GetChipId()), r.GetReportedTcb())
	switch {
	case collateral.NotFound(err):
		// AMD's answer: no VCEK exists for this chip at this TCB. The
		// report names a chip or TCB that AMD never endorsed.
		return nil, "", verifier.Reject(verifier.CheckChain, err, "sevsnp: the KDS has no VCEK for this chip at REPORTED_TCB %s", tcbOf(r.GetReportedTcb()))
	case err != nil:
		return nil, "", unavailable("fetching the VCEK", err)
	}
	return der, line, nil
}

func lineFromCert(der []byte, key abi.ReportSigner) string {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return ""
	}
	exts, err := kds.CertificateExtensions(c, key)
	if err != nil {
		return ""
	}
	return kds.ProductLineOfProductName(exts.ProductName)
}

// checkRevocation checks the CRL of the root that the endorsement key
// chained to: signed by that root's ARK, listing neither the intermediate
// that issued the key nor the key's certificate.
func (v *Verifier) checkRevocation(ctx context.Context, key abi.ReportSigner, ec *endorsementCert, now time.Time) (nextUpdate time.Time, err error) {
	der, err := v.cfg.Collateral.CRL(ctx, ec.root.line, key == abi.VlekReportSigner)
	if err != nil {
		return time.Time{}, unavailable("fetching the CRL", err)
	}
	// A CRL checked before (these exact bytes, this root's ARK) is not
	// parsed and checked again while current: the window below is the
	// one it is cached for.
	ck := crlKey{crl: sha256.Sum256(der), root: ec.root}
	crl, ok := v.crls.Get(ck, now)
	if !ok {
		if crl, err = x509.ParseRevocationList(der); err != nil {
			return time.Time{}, unavailable("parsing the CRL", err)
		}
		if now.After(crl.NextUpdate) || now.Before(crl.ThisUpdate) {
			return time.Time{}, unavailable("CRL is not current", nil)
		}
		if err := crl.CheckSignatureFrom(ec.root.ark); err != nil {
			return time.Time{}, verifier.Reject(verifier.CheckChain, err, "sevsnp: CRL is not signed by the ARK of the endorsement key's chain")
		}
		v.crls.Put(ck, crl, crl.ThisUpdate, crl.NextUpdate)
	}
	ica, _ := ec.root.ica(key)
	for _, rc := range crl.RevokedCertificateEntries {
		if (ica != nil && rc.SerialNumber.Cmp(ica.SerialNumber) == 0) || rc.SerialNumber.Cmp(ec.cert.SerialNumber) == 0 {
			return time.Time{}, verifier.Reject(verifier.CheckChain, nil, "sevsnp: certificate serial %v revoked at %v", rc.SerialNumber, rc.RevocationTime)
		}
	}
	return crl.NextUpdate, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func (v *Verifier) result(r *spb.Report, pol abi.SnpPolicy, provisional bool, line string, key abi.ReportSigner, now time.Time) *verifier.Result {
	tv := verifier.TrustVector{
		InstanceIdentity: 2, // a genuine AMD-SP key signed the report
		Configuration:    2, // guest policy and VMPL accepted
		Executables:      2, // launch measurement in the allow-list
		Hardware:         2, // genuine AMD hardware at an accepted TCB
		RuntimeOpaque:    2, // memory encrypted, not debuggable
	}
	if v.cfg.Policy.AcceptAnyMeasurement {
		tv.Executables = 0
	}
	status := verifier.TierAffirming
	if pol.Debug {
		tv.RuntimeOpaque = 32 // accepted only because the policy allows it
		status = verifier.TierWarning
	}
	if provisional {
		tv.Hardware = 32 // firmware not committed: the host can roll it back
		status = verifier.TierWarning
	}
	res := &verifier.Result{
		Model:       verifier.BackgroundCheck,
		Technology:  Technology,
		MediaType:   expatcmw.MediaTypeSEVSNP,
		Status:      status,
		TrustVector: tv,
		Measurements: []verifier.Measurement{
			{Name: "MEASUREMENT", Value: bytes.Clone(r.GetMeasurement())},
			{Name: "HOST_DATA", Value: bytes.Clone(r.GetHostData())},
			{Name: "FAMILY_ID", Value: bytes.Clone(r.GetFamilyId())},
			{Name: "IMAGE_ID", Value: bytes.Clone(r.GetImageId())},
			{Name: "ID_KEY_DIGEST", Value: bytes.Clone(r.GetIdKeyDigest())},
		},
		Claims: map[string]string{
			"product":        line,
			"signing_key":    key.String(),
			"report_version": strconv.FormatUint(uint64(r.GetVersion()), 10),
			"vmpl":           strconv.FormatUint(uint64(r.GetVmpl()), 10),
			"guest_svn":      strconv.FormatUint(uint64(r.GetGuestSvn()), 10),
			"policy":         fmt.Sprintf("0x%x", r.GetPolicy()),
			"policy.debug":   strconv.FormatBool(pol.Debug),
			"policy.migrate": strconv.FormatBool(pol.MigrateMA),
			"policy.smt":     strconv.FormatBool(pol.SMT),
			"policy.abi":     fmt.Sprintf("%d.%d", pol.ABIMajor, pol.ABIMinor),
			"tcb.reported":   tcbOf(r.GetReportedTcb()).String(),
			"tcb.current":    tcbOf(r.GetCurrentTcb()).String(),
			"tcb.committed":  tcbOf(r.GetCommittedTcb()).String(),
			"tcb.launch":     tcbOf(r.GetLaunchTcb()).String(),
			"firmware.build": fmt.Sprintf("%d.%d.%d", r.GetCurrentMajor(), r.GetCurrentMinor(), r.GetCurrentBuild()),
			"chip_id":        hex.EncodeToString(r.GetChipId()),
			"platform_info":  fmt.Sprintf("0x%x", r.GetPlatformInfo()),
		},
		Verifier:    "go-expat/verifier/sevsnp",
		AppraisedAt: now,
	}
	res.KeyBinding = verifier.KeyInEvidence // REPORT_DATA covers AIK_pub_hash
	res.PlatformIDs = []verifier.PlatformID{{Kind: "sev-snp.reported-tcb", Value: binary.BigEndian.AppendUint64(nil, r.GetReportedTcb())}}
	if id := r.GetChipId(); !allZero(id) {
		// Zero when the guest policy masks it (MASK_CHIP_ID) or with a VLEK.
		res.PlatformIDs = append([]verifier.PlatformID{{Kind: "sev-snp.chip-id", Value: bytes.Clone(id)}}, res.PlatformIDs...)
	}
	return res
}
