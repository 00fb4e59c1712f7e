package tdxtest

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"math/big"
	"time"

	"github.com/attested-tls/go-expat/attester/tdx/wire"
)

// Intel's QE vendor ID, carried in every quote header.
var qeVendorID = [16]byte{0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07}

// Platform is a test-only TDX platform: a PCK certificate and key issued by
// a PKI, a quoting enclave identity and an attestation key.
type Platform struct {
	PKI       *PKI
	PCK       *x509.Certificate
	PCKKey    *ecdsa.PrivateKey
	AttestKey *ecdsa.PrivateKey
	Opts      PCKOptions
	// QE is the quoting enclave's report; its ReportData is set when a
	// quote is signed.
	QE wire.QEReport
	// Template is the body used by the fake quote providers; ReportData
	// is replaced by the requested value.
	Template wire.Body
	// QEAuthData is placed in the QE certification data (and hashed into
	// the QE report data).
	QEAuthData []byte
}

// DefaultPCKOptions is the platform used by tests: FMSPC 00906ED50000,
// PCE-ID 0000, SGX TCB components all 5, PCESVN 11.
func DefaultPCKOptions() PCKOptions {
	o := PCKOptions{FMSPC: [6]byte{0x00, 0x90, 0x6e, 0xd5, 0x00, 0x00}, PCESVN: 11}
	for i := range o.CPUSVN {
		o.CPUSVN[i] = 5
	}
	for i := range o.PPID {
		o.PPID[i] = byte(i)
	}
	return o
}

// DefaultQE is the quoting enclave identity used by tests.
func DefaultQE() wire.QEReport {
	q := wire.QEReport{ISVProdID: 2, ISVSVN: 4}
	q.Attributes[0] = 0x11
	for i := range q.MRSigner {
		q.MRSigner[i] = 0xdc
	}
	for i := range q.MREnclave {
		q.MREnclave[i] = 0x42
	}
	return q
}

// DefaultBody is a plausible production TD: not debug, SEPT_VE_DISABLE set,
// TDX module 1.0 (TEE_TCB_SVN[1] == 0) with module SVN 3 and microcode 5.
func DefaultBody() wire.Body {
	var b wire.Body
	b.TeeTCBSVN[0], b.TeeTCBSVN[2] = 3, 5
	b.TDAttributes[3] = 0x10 // bit 28: SEPT_VE_DISABLE
	b.XFAM = [8]byte{0xe7, 0x02, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00}
	for i := range b.MRSeam {
		b.MRSeam[i] = 0x5e
		b.MRTD[i] = 0xd0
	}
	for r := range b.RTMR {
		for i := range b.RTMR[r] {
			b.RTMR[r][i] = byte(0xa0 + r)
		}
	}
	return b
}

// NewPlatform issues a PCK certificate for o and creates an attestation key.
func (p *PKI) NewPlatform(o PCKOptions) (*Platform, error) {
	pck, key, err := p.IssuePCK(o)
	if err != nil {
		return nil, err
	}
	return &Platform{PKI: p, PCK: pck, PCKKey: key, AttestKey: newKey(), Opts: o, QE: DefaultQE(),
		Template: DefaultBody(), QEAuthData: []byte("go-expat tdxtest QE auth data, 32")}, nil
}

func rawSig(key *ecdsa.PrivateKey, msg []byte) ([]byte, error) {
	h := sha256.Sum256(msg)
	r, s, err := ecdsa.Sign(rand.Reader, key, h[:])
	if err != nil {
		return nil, err
	}
	out := make([]byte, 64)
	r.FillBytes(out[:32])
	s.FillBytes(out[32:])
	return out, nil
}

func pubRaw(k *ecdsa.PublicKey) []byte {
	out := make([]byte, 64)
	k.X.FillBytes(out[:32])
	k.Y.FillBytes(out[32:])
	return out
}

// QuoteOptions alter how a quote is produced, to build defective quotes
// and other quote versions.
type QuoteOptions struct {
	// Version is the quote version: 0 or 4 for v4, 5 for v5.
	Version uint16
	// BodyType is the v5 body type: 0 or wire.BodyTypeTDX10 for a TDX 1.0
	// body, wire.BodyTypeTDX15 for a TDX 1.5 body (the template's
	// TeeTCBSVN2 and MRServiceTD are then carried). v4 quotes ignore it.
	BodyType uint16
	// Chain overrides the PEM PCK chain (default: PCK || platform CA || root).
	Chain []byte
	// CorruptQuoteSig / CorruptQESig flip a bit in the respective signature.
	CorruptQuoteSig, CorruptQESig bool
	// WrongQEReportData puts a value that is not SHA-256(key || auth data).
	WrongQEReportData bool
}

// Quote returns a signed TDX quote v4 over body.
func (pl *Platform) Quote(body wire.Body) ([]byte, error) { return pl.QuoteWith(body, QuoteOptions{}) }

// QuoteWith returns a signed TDX quote over body, encoded by package
// attester/tdx/wire, altered by o.
func (pl *Platform) QuoteWith(body wire.Body, o QuoteOptions) ([]byte, error) {
	q := &wire.Quote{Version: 4, BodyType: wire.BodyTypeTDX10, QESVN: pl.QE.ISVSVN, PCESVN: pl.Opts.PCESVN,
		QEVendorID: qeVendorID, Body: body, QEReport: pl.QE, QEAuthData: pl.QEAuthData, PCKChain: o.Chain}
	if o.Version == 5 {
		q.Version = 5
		if o.BodyType != 0 {
			q.BodyType = o.BodyType
		}
	}
	if q.BodyType == wire.BodyTypeTDX10 {
		q.Body.TeeTCBSVN2, q.Body.MRServiceTD = [16]byte{}, [48]byte{}
	}
	if q.PCKChain == nil {
		q.PCKChain = PEM(pl.PCK, pl.PKI.PlatformCA, pl.PKI.Root)
	}
	copy(q.AttestationKey[:], pubRaw(&pl.AttestKey.PublicKey))

	// The QE report certifies the attestation key: its REPORTDATA is
	// SHA-256(attestation key || QE auth data) || 32 zero bytes.
	q.QEReport.ReportData = [64]byte{}
	rd := sha256.Sum256(append(q.AttestationKey[:], pl.QEAuthData...))
	copy(q.QEReport.ReportData[:], rd[:])
	if o.WrongQEReportData {
		q.QEReport.ReportData[1] ^= 0xff
	}
	qesig, err := rawSig(pl.PCKKey, q.QEReport.Marshal())
	if err != nil {
		return nil, err
	}
	copy(q.QEReportSig[:], qesig)
	if o.CorruptQESig {
		q.QEReportSig[5] ^= 1
	}

	signed, err := q.SignedBytes()
	if err != nil {
		return nil, err
	}
	qsig, err := rawSig(pl.AttestKey, signed)
	if err != nil {
		return nil, err
	}
	copy(q.Signature[:], qsig)
	if o.CorruptQuoteSig {
		q.Signature[10] ^= 1
	}
	return q.Marshal()
}

// QuoteFor returns a quote over the platform's template body carrying rd.
func (pl *Platform) QuoteFor(rd [64]byte) ([]byte, error) {
	b := pl.Template
	b.ReportData = rd
	return pl.Quote(b)
}

// SerialOf returns the serial number of c (for CRLs).
func SerialOf(c *x509.Certificate) *big.Int { return new(big.Int).Set(c.SerialNumber) }

// Validity is a convenience for collateral windows.
type Validity struct{ Issue, Next time.Time }
