package tdx

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/attested-tls/go-expat/attester/tdx/wire"
	expatcmw "github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/collateral"
	"github.com/google/go-tdx-guest/pcs"
)

// Policy is the appraisal policy. The zero value rejects every quote: no
// MRTD is in its empty allow-list. Beyond that it requires a non-debug TD
// whose TCB is UpToDate and accepts any RTMR, MRCONFIGID, MROWNER,
// MROWNERCONFIG, XFAM and TD_ATTRIBUTES other than DEBUG.
type Policy struct {
	// MRTD lists accepted MRTD values (48 bytes each), the TD's launch
	// measurement. Empty rejects every quote (CheckMeasurement) unless
	// AcceptAnyMRTD.
	MRTD [][]byte
	// AcceptAnyMRTD accepts every MRTD (Executables then gets no claim in
	// the trust vector). INSECURE: the TD may run any firmware; use it
	// only where MRTD is appraised elsewhere. New refuses it together with
	// MRTD.
	AcceptAnyMRTD bool
	// RTMR lists accepted values per register (48 bytes each); an empty
	// list accepts any value of that register.
	RTMR [4][][]byte
	// MRConfigID, MROwner, MROwnerConfig, when non-nil, must equal the
	// quote's field (48 bytes).
	MRConfigID, MROwner, MROwnerConfig []byte
	// AllowDebug accepts debug TDs (TD_ATTRIBUTES bit 0), whose memory
	// and measurements the host controls, with Status warning. Never set
	// it in production.
	AllowDebug bool
	// RequiredTDAttributes and ForbiddenTDAttributes are bit masks over
	// TD_ATTRIBUTES read as a little-endian uint64 (bit 28
	// SEPT_VE_DISABLE, bit 30 PKS, bit 31 KL, bit 63 PERFMON).
	RequiredTDAttributes, ForbiddenTDAttributes uint64
	// XFAM, when non-nil, must equal the quote's XFAM (8 bytes).
	XFAM []byte
	// AllowSWHardeningNeeded, AllowConfigurationNeeded and AllowOutOfDate
	// accept those TCB statuses (with a Warning tier). Revoked TCB levels
	// are always rejected.
	AllowSWHardeningNeeded, AllowConfigurationNeeded, AllowOutOfDate bool
}

// Config configures a Verifier. The zero value (and a nil *Config) trusts
// only Intel's root, fetches collateral from Intel's PCS with
// http.DefaultClient, checks revocation and applies the zero Policy, which
// rejects every quote (before fetching anything). A Config must not be
// modified after New.
type Config struct {
	// TrustedRoots replaces Intel's SGX root CA (pinned by IntelRootSHA256)
	// as the trust anchor for PCK chains and collateral signers. Set it
	// only in tests (attester/tdx/tdxtest) or for a private PKI.
	TrustedRoots []*x509.Certificate
	// Getter fetches collateral (nil: &PCS{}). Use a *Bundle for offline
	// verification.
	Getter Getter
	// SkipRevocation disables the PCK and root CA CRL checks. Off by
	// default; only for deployments that check revocation elsewhere.
	SkipRevocation bool
	// Policy is the appraisal policy.
	Policy Policy
	// Time returns the appraisal time when Expected.Now is zero (nil:
	// time.Now).
	Time func() time.Time
	// Name identifies this verifier in results (default "go-expat/tdx").
	Name string
	// MaxCacheEntries bounds the collateral cache and the cache of
	// verified PCK chains, each (0 or negative: 256).
	MaxCacheEntries int
	// FailureTTL is how long a failed collateral fetch (or invalid
	// collateral) is remembered and reported again without asking the
	// Getter: 0 means collateral.DefaultFailureTTL, negative never.
	FailureTTL time.Duration
}

// Verifier appraises TDX Evidence. It caches verified collateral until the
// earliest of its nextUpdate and its signer's expiry, and never uses an
// item past that time; and the PCK chains (with the QE report signed by
// their key) it verified, used only within the validity of the chain's
// certificates. It is safe for concurrent use.
type Verifier struct {
	cfg    Config
	trust  trust
	getter Getter

	// Verified collateral (package collateral's Cache): TCB info by FMSPC,
	// the QE identity, CRLs by request and, for the root CRL, the root it
	// was checked against.
	tcbInfo    collateral.Cache[string, *verifiedTCBInfo]
	qeIdentity collateral.Cache[struct{}, *verifiedQEIdentity]
	crls       collateral.Cache[crlKey, *verifiedCRL]
	// PCK chains verified, with the QE report their key signed
	// (collateral.Verified: each only within its certificates' validity).
	chains collateral.Verified[pckKey, *verifiedPCK]
}

var _ verifier.RecordVerifier = (*Verifier)(nil)

type crlKey struct {
	req  Request
	root [32]byte // root CRLs are checked against one root
}

func checkLen(name string, b []byte, n int) error {
	if b != nil && len(b) != n {
		return fmt.Errorf("tdx: policy %s is %d bytes, want %d", name, len(b), n)
	}
	return nil
}

// New returns a Verifier for cfg; cfg is copied, and nil means the zero
// Config. It fails for a malformed Config (a value of the wrong size, an
// empty TrustedRoots, AcceptAnyMRTD with MRTD values).
func New(cfg *Config) (*Verifier, error) {
	v := &Verifier{}
	if cfg != nil {
		v.cfg = *cfg
	}
	p := &v.cfg.Policy
	if p.AcceptAnyMRTD && len(p.MRTD) != 0 {
		return nil, errors.New("tdx: Policy.AcceptAnyMRTD and Policy.MRTD exclude each other")
	}
	for _, m := range p.MRTD {
		if err := checkLen("MRTD", m, 48); err != nil {
			return nil, err
		}
	}
	for i := range p.RTMR {
		for _, m := range p.RTMR[i] {
			if err := checkLen(fmt.Sprintf("RTMR%d", i), m, 48); err != nil {
				return nil, err
			}
		}
	}
	for _, c := range []struct {
		n string
		b []byte
		l int
	}{{"MRConfigID", p.MRConfigID, 48}, {"MROwner", p.MROwner, 48}, {"MROwnerConfig", p.MROwnerConfig, 48}, {"XFAM", p.XFAM, 8}} {
		if err := checkLen(c.n, c.b, c.l); err != nil {
			return nil, err
		}
	}
	if v.cfg.TrustedRoots != nil {
		if len(v.cfg.TrustedRoots) == 0 {
			return nil, errors.New("tdx: TrustedRoots is empty")
		}
		v.trust.roots = append([]*x509.Certificate(nil), v.cfg.TrustedRoots...)
	}
	v.getter = v.cfg.Getter
	if v.getter == nil {
		v.getter = &PCS{}
	}
	if v.cfg.Name == "" {
		v.cfg.Name = "go-expat/tdx"
	}
	if v.cfg.MaxCacheEntries <= 0 {
		v.cfg.MaxCacheEntries = 256
	}
	v.tcbInfo.MaxEntries, v.qeIdentity.MaxEntries, v.crls.MaxEntries = v.cfg.MaxCacheEntries, 1, v.cfg.MaxCacheEntries
	v.chains.MaxEntries = v.cfg.MaxCacheEntries
	v.tcbInfo.FailureTTL, v.qeIdentity.FailureTTL, v.crls.FailureTTL = v.cfg.FailureTTL, v.cfg.FailureTTL, v.cfg.FailureTTL
	return v, nil
}

// Verify implements verifier.Verifier for CMW records of type
// cmw.MediaTypeTDX (verifier.VerifyCMW, then VerifyRecord).
func (v *Verifier) Verify(ctx context.Context, b []byte, exp *verifier.Expected) (*verifier.Result, error) {
	return verifier.VerifyCMW(ctx, v, b, exp)
}

// VerifyRecord appraises a decoded CMW record of type cmw.MediaTypeTDX
// (indicator evidence or none) against exp.
func (v *Verifier) VerifyRecord(ctx context.Context, rec expatcmw.Record, exp *verifier.Expected) (*verifier.Result, error) {
	if err := verifier.ExpectRecord(rec, expatcmw.MediaTypeTDX, expatcmw.Evidence); err != nil {
		return nil, err
	}
	if exp == nil {
		return nil, verifier.Reject(verifier.CheckChallenge, nil, "tdx: no expected challenge")
	}
	rd, err := exp.ReportData64()
	if err != nil {
		return nil, fmt.Errorf("tdx: expected challenge: %w", err)
	}
	val := rec.Value
	ev, err := wire.Parse(val)
	if err != nil {
		return nil, verifier.Reject(verifier.CheckFormat, err, "tdx: evidence")
	}
	res, err := v.verifyQuote(ctx, ev.Quote, rd, exp.Now)
	if err != nil {
		return nil, err
	}
	if ev.FMSPC != nil && hex.EncodeToString(ev.FMSPC) != res.Claims["fmspc"] {
		return nil, verifier.Reject(verifier.CheckFormat, nil, "tdx: FMSPC hint %x does not match the PCK certificate's %s", ev.FMSPC, res.Claims["fmspc"])
	}
	res.MediaType = expatcmw.MediaTypeTDX
	res.KeyBinding = verifier.KeyInEvidence // REPORTDATA covers AIK_pub_hash
	return res, nil
}

func (v *Verifier) now(t time.Time) time.Time {
	if !t.IsZero() {
		return t
	}
	if v.cfg.Time != nil {
		return v.cfg.Time()
	}
	return time.Now()
}

// verifyQuote appraises a raw quote that must carry reportData, at time
// now (zero: Config.Time).
func (v *Verifier) verifyQuote(ctx context.Context, raw []byte, reportData [64]byte, now time.Time) (*verifier.Result, error) {
	now = v.now(now)
	q, err := wire.ParseQuote(raw)
	if err != nil {
		return nil, verifier.Reject(verifier.CheckFormat, err, "tdx: quote")
	}

	// PCK chain (PCK leaf, PCK CA, root) to a trusted root, and the QE
	// report signed by the PCK key: from the cache if checked before.
	pc, err := v.pckChain(q, now)
	if err != nil {
		return nil, err
	}
	pck, ca, root := pc.pck, pc.ca, pc.root
	caCN := ca.Subject.CommonName

	// The QE report bound to the attestation key.
	h := sha256.New()
	h.Write(q.AttestationKey[:])
	h.Write(q.QEAuthData)
	var want [64]byte
	h.Sum(want[:0])
	if subtle.ConstantTimeCompare(want[:], q.QEReport.ReportData[:]) != 1 {
		return nil, verifier.Reject(verifier.CheckSignature, nil, "tdx: QE report does not certify the attestation key")
	}
	ak, err := p256Key(q.AttestationKey[:])
	if err != nil {
		return nil, verifier.Reject(verifier.CheckSignature, err, "tdx: attestation key")
	}
	signed, err := q.SignedBytes()
	if err != nil {
		return nil, verifier.Reject(verifier.CheckFormat, err, "tdx: quote")
	}
	if !verifyRaw(ak, signed, q.Signature[:]) {
		return nil, verifier.Reject(verifier.CheckSignature, nil, "tdx: quote signature does not verify with the attestation key")
	}

	// The binding: REPORTDATA must be the challenge (T1-T4).
	if subtle.ConstantTimeCompare(q.Body.ReportData[:], reportData[:]) != 1 {
		return nil, verifier.Reject(verifier.CheckChallenge, nil, "tdx: REPORTDATA does not match the expected challenge")
	}

	// Local policy before any network access.
	attrs := binary.LittleEndian.Uint64(q.Body.TDAttributes[:])
	p := &v.cfg.Policy
	if attrs&1 != 0 && !p.AllowDebug {
		return nil, verifier.Reject(verifier.CheckDebug, nil, "tdx: debug TD (TD_ATTRIBUTES %016x)", attrs)
	}
	if err := checkMeasurements(p, &q.Body, attrs); err != nil {
		return nil, err
	}

	ext, err := pc.ext, pc.extErr
	if err != nil {
		return nil, err
	}
	fmspc := strings.ToLower(ext.FMSPC)

	// Collateral: revocation, then TCB info and QE identity.
	var rootCRL *verifiedCRL
	if !v.cfg.SkipRevocation {
		rc, err := v.crl(ctx, crlKey{req: Request{Item: RootCRL}, root: sha256.Sum256(root.Raw)}, now, root)
		if err != nil {
			return nil, err
		}
		rootCRL = rc
		if revoked(rootCRL.crl, ca) {
			return nil, verifier.Reject(verifier.CheckChain, nil, "tdx: PCK CA certificate %q is revoked", caCN)
		}
		pcrl, err := v.crl(ctx, crlKey{req: Request{Item: PCKCRL, CA: ca4(caCN)}}, now, nil)
		if err != nil {
			return nil, err
		}
		if !pcrl.issuer.Equal(ca) {
			if err := pcrl.crl.CheckSignatureFrom(ca); err != nil {
				return nil, verifier.Reject(verifier.CheckCollateral, err, "tdx: PCK CRL is not issued by the quote's PCK CA")
			}
		}
		if revoked(pcrl.crl, pck) {
			return nil, verifier.Reject(verifier.CheckChain, nil, "tdx: PCK certificate (serial %x) is revoked", pck.SerialNumber)
		}
	}
	ti, err := v.tcbInfo.Get(ctx, fmspc, now, func(ctx context.Context) (*verifiedTCBInfo, time.Time, error) {
		r, err := v.response(ctx, Request{Item: TCBInfo, FMSPC: fmspc})
		if err != nil {
			return nil, time.Time{}, err
		}
		t, err := v.trust.parseTCBInfo(r, now)
		if err != nil {
			return nil, time.Time{}, verifier.Reject(verifier.CheckCollateral, err, "tdx: collateral %v", TCBInfo)
		}
		return t, t.expires, nil
	})
	if err != nil {
		return nil, collateralErr(err)
	}
	qi, err := v.qeIdentity.Get(ctx, struct{}{}, now, func(ctx context.Context) (*verifiedQEIdentity, time.Time, error) {
		r, err := v.response(ctx, Request{Item: QEIdentity})
		if err != nil {
			return nil, time.Time{}, err
		}
		q, err := v.trust.parseQEIdentity(r, now)
		if err != nil {
			return nil, time.Time{}, verifier.Reject(verifier.CheckCollateral, err, "tdx: collateral %v", QEIdentity)
		}
		return q, q.expires, nil
	})
	if err != nil {
		return nil, collateralErr(err)
	}
	if rootCRL != nil {
		for _, s := range []*x509.Certificate{ti.signer, qi.signer} {
			if revoked(rootCRL.crl, s) {
				return nil, verifier.Reject(verifier.CheckCollateral, nil, "tdx: collateral signing certificate (serial %x) is revoked", s.SerialNumber)
			}
		}
	}
	if !strings.EqualFold(ti.info.Fmspc, fmspc) {
		return nil, verifier.Reject(verifier.CheckCollateral, nil, "tdx: TCB info is for FMSPC %s, platform is %s", ti.info.Fmspc, fmspc)
	}
	if !strings.EqualFold(ti.info.PceID, ext.PCEID) {
		return nil, verifier.Reject(verifier.CheckCollateral, nil, "tdx: TCB info is for PCE-ID %s, platform has %s", ti.info.PceID, ext.PCEID)
	}
	if !bytes.Equal(ti.info.TdxModule.Mrsigner.Bytes, q.Body.MRSignerSeam[:]) {
		return nil, verifier.Reject(verifier.CheckTCB, nil, "tdx: MRSIGNERSEAM %x is not the TDX module signer", q.Body.MRSignerSeam)
	}
	for i := 0; i < 8; i++ {
		if q.Body.SeamAttributes[i]&ti.info.TdxModule.AttributesMask.Bytes[i] != ti.info.TdxModule.Attributes.Bytes[i] {
			return nil, verifier.Reject(verifier.CheckTCB, nil, "tdx: SEAMATTRIBUTES %x do not match the TCB info", q.Body.SeamAttributes)
		}
	}
	rep, err := evaluateTCB(&ti.info, &qi.id, tcbInputs{sgx: ext.TCB.CPUSvnComponents, pcesvn: ext.TCB.PCESvn, tee: q.Body.TeeTCBSVN, qe: &q.QEReport})
	if err != nil {
		return nil, verifier.Reject(verifier.CheckTCB, &TCBError{Report: rep}, "tdx: %v", err)
	}
	if err := tcbPolicy(p, rep); err != nil {
		return nil, err
	}
	res := v.result(q, ext, rep, ca4(caCN), now)
	// Good while its collateral is: the TCB info and QE identity (each
	// until the earlier of its nextUpdate and its signer's expiry), the
	// PCK certificate and, when checked, the root CA CRL.
	res.Expires = earliest(ti.expires, qi.expires, pck.NotAfter)
	if rootCRL != nil {
		res.Expires = earliest(res.Expires, rootCRL.expires)
	}
	pckKey := sha256.Sum256(pck.RawSubjectPublicKeyInfo)
	fmspcBytes, _ := hex.DecodeString(fmspc) // validFMSPC checked it
	res.PlatformIDs = []verifier.PlatformID{
		{Kind: "tdx.fmspc", Value: fmspcBytes},
		{Kind: "tdx.pck-key-sha256", Value: pckKey[:]},
	}
	return res, nil
}

// verifiedPCK is a PCK chain verified to a trusted root, with the QE
// report that its PCK key signed.
type verifiedPCK struct {
	pck, ca, root *x509.Certificate
	// ext is the PCK certificate's SGX extensions; extErr, when they are
	// malformed, is the rejection (reported after the policy checks).
	ext    *pcs.PckExtensions
	extErr error
}

// pckKey names a verified PCK chain: SHA-256 over the quote's exact PCK
// chain bytes, and over the QE report and its signature. A Verifier's
// trusted roots are fixed at New.
type pckKey struct {
	chain, qeReport [sha256.Size]byte
}

// pckChain checks the quote's PCK chain (PCK leaf, PCK CA, root) to a
// trusted root at now and the QE report's signature by the PCK key. A
// chain and QE report checked before, at a time within the validity of
// all three certificates (the only time-dependent part of the checks), is
// taken from v.chains: the verdict of checking again. Only successes are
// kept.
func (v *Verifier) pckChain(q *wire.Quote, now time.Time) (*verifiedPCK, error) {
	qeReport := q.QEReport.Marshal()
	k := pckKey{chain: sha256.Sum256(q.PCKChain)}
	h := sha256.New()
	h.Write(qeReport)
	h.Write(q.QEReportSig[:])
	h.Sum(k.qeReport[:0])
	if pc, ok := v.chains.Get(k, now); ok {
		return pc, nil
	}
	certs, err := parsePEMChain(q.PCKChain, 3)
	if err != nil {
		return nil, verifier.Reject(verifier.CheckChain, err, "tdx: PCK chain")
	}
	pc := &verifiedPCK{pck: certs[0], ca: certs[1], root: certs[2]}
	caCN := pc.ca.Subject.CommonName
	if caCN != platformCACN && caCN != processorCN {
		return nil, verifier.Reject(verifier.CheckChain, nil, "tdx: PCK issuer is %q", caCN)
	}
	if err := v.trust.verifyTo(now, pc.pck, pckCN, pc.ca, pc.root); err != nil {
		return nil, verifier.Reject(verifier.CheckChain, err, "tdx: PCK chain")
	}
	if !verifyRaw(pc.pck.PublicKey.(*ecdsa.PublicKey), qeReport, q.QEReportSig[:]) {
		return nil, verifier.Reject(verifier.CheckSignature, nil, "tdx: QE report signature does not verify with the PCK key")
	}
	pc.ext, err = pcs.PckCertificateExtensions(pc.pck)
	switch {
	case err != nil:
		pc.extErr = verifier.Reject(verifier.CheckChain, err, "tdx: PCK certificate extensions")
	case len(pc.ext.TCB.CPUSvnComponents) != 16 || !validFMSPC(strings.ToLower(pc.ext.FMSPC)):
		pc.extErr = verifier.Reject(verifier.CheckChain, nil, "tdx: PCK certificate has malformed SGX extensions")
	}
	from, until := pc.pck.NotBefore, pc.pck.NotAfter
	for _, c := range []*x509.Certificate{pc.ca, pc.root} {
		if c.NotBefore.After(from) {
			from = c.NotBefore
		}
		if c.NotAfter.Before(until) {
			until = c.NotAfter
		}
	}
	v.chains.Put(k, pc, from, until)
	return pc, nil
}

func ca4(cn string) string {
	if cn == processorCN {
		return "processor"
	}
	return "platform"
}

// TCBError carries the TCB evaluation behind a "tcb" rejection; find it
// with errors.As.
type TCBError struct{ Report *TCBReport }

func (e *TCBError) Error() string {
	s := "tdx: TCB status " + e.Report.Status.String()
	if !e.Report.Matched {
		s = "tdx: TCB level not supported"
	}
	if len(e.Report.Short) > 0 {
		s += " (" + strings.Join(e.Report.Short, ", ") + ")"
	}
	return s
}

func tcbPolicy(p *Policy, rep *TCBReport) error {
	s := rep.Status
	why := ""
	switch {
	case s&StatusRevoked != 0:
		why = "revoked TCB level"
	case s&StatusOutOfDate != 0 && !p.AllowOutOfDate:
		why = "out-of-date TCB"
	case s&StatusConfigurationNeeded != 0 && !p.AllowConfigurationNeeded:
		why = "platform configuration needed"
	case s&StatusSWHardeningNeeded != 0 && !p.AllowSWHardeningNeeded:
		why = "software hardening needed"
	}
	if why == "" {
		return nil
	}
	return verifier.Reject(verifier.CheckTCB, &TCBError{Report: rep}, "tdx: %s: platform %v, TDX module %v, QE %v",
		why, rep.Platform, rep.Module, rep.QE)
}

func anyEqual(list [][]byte, v []byte) bool {
	if len(list) == 0 {
		return true
	}
	for _, m := range list {
		if subtle.ConstantTimeCompare(m, v) == 1 {
			return true
		}
	}
	return false
}

func checkMeasurements(p *Policy, b *wire.Body, attrs uint64) error {
	if len(p.MRTD) == 0 && !p.AcceptAnyMRTD {
		return verifier.Reject(verifier.CheckMeasurement, nil, "tdx: no MRTD policy is configured (Policy.MRTD; AcceptAnyMRTD skips the MRTD check)")
	}
	if !anyEqual(p.MRTD, b.MRTD[:]) {
		return verifier.Reject(verifier.CheckMeasurement, nil, "tdx: MRTD %x is not accepted", b.MRTD)
	}
	for i := range p.RTMR {
		if !anyEqual(p.RTMR[i], b.RTMR[i][:]) {
			return verifier.Reject(verifier.CheckMeasurement, nil, "tdx: RTMR%d %x is not accepted", i, b.RTMR[i])
		}
	}
	for _, c := range []struct {
		n    string
		want []byte
		got  []byte
	}{{"MRCONFIGID", p.MRConfigID, b.MRConfigID[:]}, {"MROWNER", p.MROwner, b.MROwner[:]},
		{"MROWNERCONFIG", p.MROwnerConfig, b.MROwnerConfig[:]}, {"XFAM", p.XFAM, b.XFAM[:]}} {
		if c.want != nil && !bytes.Equal(c.want, c.got) {
			return verifier.Reject(verifier.CheckMeasurement, nil, "tdx: %s %x, want %x", c.n, c.got, c.want)
		}
	}
	if attrs&p.RequiredTDAttributes != p.RequiredTDAttributes {
		return verifier.Reject(verifier.CheckMeasurement, nil, "tdx: TD_ATTRIBUTES %016x lack required bits %016x", attrs, p.RequiredTDAttributes&^attrs)
	}
	if attrs&p.ForbiddenTDAttributes != 0 {
		return verifier.Reject(verifier.CheckMeasurement, nil, "tdx: TD_ATTRIBUTES %016x have forbidden bits %016x", attrs, attrs&p.ForbiddenTDAttributes)
	}
	return nil
}

func p256Key(raw []byte) (*ecdsa.PublicKey, error) {
	k := &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(raw[:32]), Y: new(big.Int).SetBytes(raw[32:])}
	// Round-trip through the uncompressed encoding, which checks the point
	// is on the curve.
	if _, err := k.ECDH(); err != nil {
		return nil, errors.New("not a P-256 point")
	}
	return k, nil
}

func (v *Verifier) result(q *wire.Quote, ext *pcs.PckExtensions, rep *TCBReport, ca string, now time.Time) *verifier.Result {
	p := &v.cfg.Policy
	// The tier says what was accepted: a TCB status other than UpToDate
	// or a debug TD, each allowed only by the policy, is a warning.
	tier := verifier.TierAffirming
	tv := verifier.TrustVector{InstanceIdentity: 2, Hardware: 2, RuntimeOpaque: 2}
	if rep.Status != StatusUpToDate {
		tier, tv.Hardware = verifier.TierWarning, 32
	}
	if q.Body.TDAttributes[0]&1 != 0 {
		tier, tv.RuntimeOpaque = verifier.TierWarning, 32 // the host can read and change the TD
	}
	if !p.AcceptAnyMRTD {
		tv.Executables = 2
	}
	if p.MRConfigID != nil || p.MROwner != nil || p.MROwnerConfig != nil || p.XFAM != nil || p.RequiredTDAttributes != 0 || p.ForbiddenTDAttributes != 0 {
		tv.Configuration = 2
	}
	b := &q.Body
	ms := []verifier.Measurement{{Name: "MRTD", Value: append([]byte(nil), b.MRTD[:]...)}}
	for i := range b.RTMR {
		ms = append(ms, verifier.Measurement{Name: fmt.Sprintf("RTMR%d", i), Value: append([]byte(nil), b.RTMR[i][:]...)})
	}
	ms = append(ms, verifier.Measurement{Name: "MRSEAM", Value: append([]byte(nil), b.MRSeam[:]...)})
	claims := map[string]string{
		"tcb_status":      rep.Status.String(),
		"tcb_platform":    rep.Platform.String(),
		"tcb_qe":          rep.QE.String(),
		"tcb_date":        rep.TCBDate,
		"fmspc":           strings.ToLower(ext.FMSPC),
		"pce_id":          ext.PCEID,
		"pck_ca":          ca,
		"td_attributes":   hex.EncodeToString(b.TDAttributes[:]),
		"debug":           fmt.Sprint(b.TDAttributes[0]&1 != 0),
		"xfam":            hex.EncodeToString(b.XFAM[:]),
		"tee_tcb_svn":     hex.EncodeToString(b.TeeTCBSVN[:]),
		"mr_config_id":    hex.EncodeToString(b.MRConfigID[:]),
		"mr_owner":        hex.EncodeToString(b.MROwner[:]),
		"mr_owner_config": hex.EncodeToString(b.MROwnerConfig[:]),
		"quote_version":   fmt.Sprint(q.Version),
	}
	if rep.ModuleID != "" {
		claims["tdx_module"] = rep.ModuleID
		claims["tcb_tdx_module"] = rep.Module.String()
	}
	if len(rep.Short) > 0 {
		claims["tcb_short"] = strings.Join(rep.Short, ", ")
	}
	if len(rep.Advisories) > 0 {
		claims["advisories"] = strings.Join(rep.Advisories, ",")
	}
	return &verifier.Result{Model: verifier.BackgroundCheck, Technology: "tdx", Status: tier, TrustVector: tv,
		Measurements: ms, Claims: claims, Verifier: v.cfg.Name, AppraisedAt: now}
}

// crl returns a verified CRL from the cache or fetches it (a root CRL is
// checked against root).
func (v *Verifier) crl(ctx context.Context, key crlKey, now time.Time, root *x509.Certificate) (*verifiedCRL, error) {
	c, err := v.crls.Get(ctx, key, now, func(ctx context.Context) (*verifiedCRL, time.Time, error) {
		r, err := v.response(ctx, key.req)
		if err != nil {
			return nil, time.Time{}, err
		}
		c, err := v.trust.parseCRL(key.req.Item, r, now)
		if err == nil && key.req.Item == RootCRL {
			if err = c.crl.CheckSignatureFrom(root); err != nil {
				err = badCollateral(RootCRL, "signature: %v", err)
			}
			c.issuer = root
		}
		if err != nil {
			return nil, time.Time{}, verifier.Reject(verifier.CheckCollateral, err, "tdx: collateral %v", key.req.Item)
		}
		return c, c.expires, nil
	})
	if err != nil {
		return nil, collateralErr(err)
	}
	return c, nil
}

// collateralErr makes a cache error a verifier error: a fetch the caller
// stopped waiting for (a *collateral.FetchError from the cache itself) is
// unavailable; the fetch's own errors already are verifier errors.
func collateralErr(err error) error {
	var fe *collateral.FetchError
	if errors.As(err, &fe) && !errors.Is(err, verifier.ErrUnavailable) && !errors.Is(err, verifier.ErrRejected) {
		return verifier.Unavailable(true, err, "tdx: waiting for collateral")
	}
	return err
}

// response fetches one item from the Getter: an unavailable error when it
// cannot, with Retryable from its *collateral.FetchError.
func (v *Verifier) response(ctx context.Context, req Request) (*Response, error) {
	r, err := v.getter.Get(ctx, req)
	if err != nil {
		var fe *collateral.FetchError
		retry := errors.As(err, &fe) && fe.Retryable || ctx.Err() != nil
		return nil, verifier.Unavailable(retry, err, "tdx: collateral %v unavailable", req.Item)
	}
	if r == nil || len(r.Body) == 0 || len(r.Body) > MaxCollateralSize || len(r.IssuerChain) > MaxCollateralSize {
		return nil, verifier.Unavailable(false, nil, "tdx: collateral %v: empty or oversized response", req.Item)
	}
	return r, nil
}
