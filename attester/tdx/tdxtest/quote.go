package tdxtest

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"math/big"
	"time"
)

// Intel's QE vendor ID, carried in every quote header.
var qeVendorID = [16]byte{0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07}

// Body holds the TD quote body fields (TDX module 1.0 layout, 584 bytes).
type Body struct {
	TeeTCBSVN      [16]byte
	MRSeam         [48]byte
	MRSignerSeam   [48]byte
	SeamAttributes [8]byte
	TDAttributes   [8]byte
	XFAM           [8]byte
	MRTD           [48]byte
	MRConfigID     [48]byte
	MROwner        [48]byte
	MROwnerConfig  [48]byte
	RTMR           [4][48]byte
	ReportData     [64]byte
}

// Marshal returns the 584-byte body.
func (b *Body) Marshal() []byte {
	out := make([]byte, 0, 584)
	out = append(out, b.TeeTCBSVN[:]...)
	out = append(out, b.MRSeam[:]...)
	out = append(out, b.MRSignerSeam[:]...)
	out = append(out, b.SeamAttributes[:]...)
	out = append(out, b.TDAttributes[:]...)
	out = append(out, b.XFAM[:]...)
	out = append(out, b.MRTD[:]...)
	out = append(out, b.MRConfigID[:]...)
	out = append(out, b.MROwner[:]...)
	out = append(out, b.MROwnerConfig[:]...)
	for i := range b.RTMR {
		out = append(out, b.RTMR[i][:]...)
	}
	return append(out, b.ReportData[:]...)
}

// QE describes the quoting enclave's SGX report.
type QE struct {
	CPUSVN     [16]byte
	MiscSelect uint32
	Attributes [16]byte
	MREnclave  [32]byte
	MRSigner   [32]byte
	ISVProdID  uint16
	ISVSVN     uint16
}

// Platform is a test-only TDX platform: a PCK certificate and key issued by
// a PKI, a quoting enclave identity and an attestation key.
type Platform struct {
	PKI       *PKI
	PCK       *x509.Certificate
	PCKKey    *ecdsa.PrivateKey
	AttestKey *ecdsa.PrivateKey
	Opts      PCKOptions
	QE        QE
	// Template is the body used by the fake quote providers; ReportData
	// is replaced by the requested value.
	Template Body
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
func DefaultQE() QE {
	q := QE{ISVProdID: 2, ISVSVN: 4}
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
func DefaultBody() Body {
	var b Body
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

// QuoteOptions alter how a quote is produced, to build defective quotes.
type QuoteOptions struct {
	// Chain overrides the PEM PCK chain (default: PCK || platform CA || root).
	Chain []byte
	// CorruptQuoteSig / CorruptQESig flip a bit in the respective signature.
	CorruptQuoteSig, CorruptQESig bool
	// WrongQEReportData puts a value that is not SHA-256(key || auth data).
	WrongQEReportData bool
}

// Quote returns a signed TDX quote v4 over body.
func (pl *Platform) Quote(body Body) ([]byte, error) { return pl.QuoteWith(body, QuoteOptions{}) }

// QuoteWith returns a signed TDX quote v4 over body, altered by o.
func (pl *Platform) QuoteWith(body Body, o QuoteOptions) ([]byte, error) {
	hdr := make([]byte, 48)
	binary.LittleEndian.PutUint16(hdr[0:], 4)
	binary.LittleEndian.PutUint16(hdr[2:], 2)
	binary.LittleEndian.PutUint32(hdr[4:], 0x81)
	binary.LittleEndian.PutUint16(hdr[8:], pl.QE.ISVSVN)
	binary.LittleEndian.PutUint16(hdr[10:], pl.Opts.PCESVN)
	copy(hdr[12:28], qeVendorID[:])
	signed := append(hdr, body.Marshal()...)

	qsig, err := rawSig(pl.AttestKey, signed)
	if err != nil {
		return nil, err
	}
	if o.CorruptQuoteSig {
		qsig[10] ^= 1
	}
	akey := pubRaw(&pl.AttestKey.PublicKey)

	// QE report (SGX REPORT body, 384 bytes).
	qe := make([]byte, 384)
	copy(qe[0:16], pl.QE.CPUSVN[:])
	binary.LittleEndian.PutUint32(qe[16:], pl.QE.MiscSelect)
	copy(qe[48:64], pl.QE.Attributes[:])
	copy(qe[64:96], pl.QE.MREnclave[:])
	copy(qe[128:160], pl.QE.MRSigner[:])
	binary.LittleEndian.PutUint16(qe[256:], pl.QE.ISVProdID)
	binary.LittleEndian.PutUint16(qe[258:], pl.QE.ISVSVN)
	rd := sha256.Sum256(append(append([]byte{}, akey...), pl.QEAuthData...))
	copy(qe[320:352], rd[:])
	if o.WrongQEReportData {
		qe[321] ^= 0xff
	}
	qesig, err := rawSig(pl.PCKKey, qe)
	if err != nil {
		return nil, err
	}
	if o.CorruptQESig {
		qesig[5] ^= 1
	}
	chain := o.Chain
	if chain == nil {
		chain = PEM(pl.PCK, pl.PKI.PlatformCA, pl.PKI.Root)
	}

	// QE report certification data (type 6).
	var qcd []byte
	qcd = append(qcd, qe...)
	qcd = append(qcd, qesig...)
	qcd = binary.LittleEndian.AppendUint16(qcd, uint16(len(pl.QEAuthData)))
	qcd = append(qcd, pl.QEAuthData...)
	qcd = binary.LittleEndian.AppendUint16(qcd, 5)
	qcd = binary.LittleEndian.AppendUint32(qcd, uint32(len(chain)))
	qcd = append(qcd, chain...)

	var sd []byte
	sd = append(sd, qsig...)
	sd = append(sd, akey...)
	sd = binary.LittleEndian.AppendUint16(sd, 6)
	sd = binary.LittleEndian.AppendUint32(sd, uint32(len(qcd)))
	sd = append(sd, qcd...)

	out := append(signed, binary.LittleEndian.AppendUint32(nil, uint32(len(sd)))...)
	return append(out, sd...), nil
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
