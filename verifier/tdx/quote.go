package tdx

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// Quote layout constants (Intel TDX DCAP Quoting Library API, quote
// formats v4 and v5; A.3 and A.4).
const (
	headerSize      = 48
	bodySizeV10     = 584 // TDX 1.0 TD quote body
	bodySizeV15     = 648 // TDX 1.5: + TEE_TCB_SVN_2 (16) + MRSERVICETD (48)
	qeReportSize    = 384
	sigSize         = 64
	keySize         = 64
	teeTypeTDX      = 0x81
	akTypeECDSAP256 = 2
	certTypeQEData  = 6
	certTypePCK     = 5
	bodyTypeTDX10   = 2
	bodyTypeTDX15   = 3
	// maxPCKChain bounds the PEM chain (three P-256 certificates are
	// under 4 KiB).
	maxPCKChain = 12 << 10
)

// ErrFormat matches every quote parsing error.
var ErrFormat = errors.New("tdx: malformed quote")

func formatErr(f string, a ...any) error {
	return fmt.Errorf("%w: "+f, append([]any{ErrFormat}, a...)...)
}

// Body is the TD quote body: the TD's measurements and REPORTDATA as the
// TDX module reported them.
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
	// TDX 1.5 bodies (v5 quotes with body type 3) only.
	TeeTCBSVN2  [16]byte
	MRServiceTD [48]byte
}

// QEReport is the quoting enclave's SGX report body.
type QEReport struct {
	CPUSVN     [16]byte
	MiscSelect uint32
	Attributes [16]byte
	MREnclave  [32]byte
	MRSigner   [32]byte
	ISVProdID  uint16
	ISVSVN     uint16
	ReportData [64]byte

	raw [qeReportSize]byte
}

// Quote is a parsed TDX quote (v4 or v5, ECDSA-256 with P-256, QE
// certification data of type 6 holding a PCK certificate chain).
type Quote struct {
	Version    uint16
	QESVN      uint16
	PCESVN     uint16
	QEVendorID [16]byte
	UserData   [20]byte
	// BodyType is 2 (TDX 1.0) or 3 (TDX 1.5); v4 quotes are always 2.
	BodyType uint16
	Body     Body

	Signature      [64]byte // r || s, big-endian
	AttestationKey [64]byte // x || y, big-endian
	QEReport       QEReport
	QEReportSig    [64]byte
	QEAuthData     []byte
	PCKChain       []byte // PEM: PCK leaf, PCK CA, root

	signed []byte // header || body (v5: || body type and size)
}

// SignedBytes returns the bytes covered by the quote signature.
func (q *Quote) SignedBytes() []byte { return append([]byte(nil), q.signed...) }

func readArr(s *cryptobyte.String, out []byte) bool {
	var b []byte
	if !s.ReadBytes(&b, len(out)) {
		return false
	}
	copy(out, b)
	return true
}

func readU16(s *cryptobyte.String, out *uint16) bool {
	var b []byte
	if !s.ReadBytes(&b, 2) {
		return false
	}
	*out = binary.LittleEndian.Uint16(b)
	return true
}

func readU32(s *cryptobyte.String, out *uint32) bool {
	var b []byte
	if !s.ReadBytes(&b, 4) {
		return false
	}
	*out = binary.LittleEndian.Uint32(b)
	return true
}

// ParseQuote parses raw strictly: every length field must match the bytes
// present exactly, no trailing data is allowed (neither after the signed
// data nor after the certification data), and only the TDX, ECDSA-P256,
// PCK-chain form is accepted. The result does not alias raw.
func ParseQuote(raw []byte) (*Quote, error) {
	if len(raw) < headerSize+bodySizeV10 || len(raw) > 64<<10 {
		return nil, formatErr("%d bytes", len(raw))
	}
	raw = append([]byte(nil), raw...)
	q := &Quote{}
	s := cryptobyte.String(raw)
	var akType uint16
	var tee uint32
	if !readU16(&s, &q.Version) || !readU16(&s, &akType) || !readU32(&s, &tee) ||
		!readU16(&s, &q.QESVN) || !readU16(&s, &q.PCESVN) ||
		!readArr(&s, q.QEVendorID[:]) || !readArr(&s, q.UserData[:]) {
		return nil, formatErr("truncated header")
	}
	if q.Version != 4 && q.Version != 5 {
		return nil, formatErr("version %d", q.Version)
	}
	if akType != akTypeECDSAP256 {
		return nil, formatErr("attestation key type %d", akType)
	}
	if tee != teeTypeTDX {
		return nil, formatErr("TEE type %#x is not TDX", tee)
	}
	bodySize := bodySizeV10
	q.BodyType = bodyTypeTDX10
	if q.Version == 5 {
		var size uint32
		if !readU16(&s, &q.BodyType) || !readU32(&s, &size) {
			return nil, formatErr("truncated body descriptor")
		}
		switch {
		case q.BodyType == bodyTypeTDX10 && size == bodySizeV10:
		case q.BodyType == bodyTypeTDX15 && size == bodySizeV15:
			bodySize = bodySizeV15
		default:
			return nil, formatErr("body type %d with size %d", q.BodyType, size)
		}
	}
	var body cryptobyte.String
	if !s.ReadBytes((*[]byte)(&body), bodySize) {
		return nil, formatErr("truncated body")
	}
	b := &q.Body
	if !readArr(&body, b.TeeTCBSVN[:]) || !readArr(&body, b.MRSeam[:]) || !readArr(&body, b.MRSignerSeam[:]) ||
		!readArr(&body, b.SeamAttributes[:]) || !readArr(&body, b.TDAttributes[:]) || !readArr(&body, b.XFAM[:]) ||
		!readArr(&body, b.MRTD[:]) || !readArr(&body, b.MRConfigID[:]) || !readArr(&body, b.MROwner[:]) ||
		!readArr(&body, b.MROwnerConfig[:]) || !readArr(&body, b.RTMR[0][:]) || !readArr(&body, b.RTMR[1][:]) ||
		!readArr(&body, b.RTMR[2][:]) || !readArr(&body, b.RTMR[3][:]) || !readArr(&body, b.ReportData[:]) {
		return nil, formatErr("truncated body")
	}
	if bodySize == bodySizeV15 && (!readArr(&body, b.TeeTCBSVN2[:]) || !readArr(&body, b.MRServiceTD[:])) {
		return nil, formatErr("truncated body")
	}
	q.signed = raw[:len(raw)-len(s)]

	var sigLen uint32
	var sd cryptobyte.String
	if !readU32(&s, &sigLen) || !s.ReadBytes((*[]byte)(&sd), int(sigLen)) {
		return nil, formatErr("signed data length %d exceeds the quote", sigLen)
	}
	if !s.Empty() {
		return nil, formatErr("%d trailing bytes after the signed data", len(s))
	}
	var certType uint16
	var certLen uint32
	var cd cryptobyte.String
	if !readArr(&sd, q.Signature[:]) || !readArr(&sd, q.AttestationKey[:]) ||
		!readU16(&sd, &certType) || !readU32(&sd, &certLen) || !sd.ReadBytes((*[]byte)(&cd), int(certLen)) {
		return nil, formatErr("truncated signed data")
	}
	if !sd.Empty() {
		return nil, formatErr("%d trailing bytes after the certification data", len(sd))
	}
	if certType != certTypeQEData {
		return nil, formatErr("certification data type %d, want %d", certType, certTypeQEData)
	}
	var authLen uint16
	var pckType uint16
	var pckLen uint32
	if !readArr(&cd, q.QEReport.raw[:]) || !readArr(&cd, q.QEReportSig[:]) ||
		!readU16(&cd, &authLen) || !cd.ReadBytes(&q.QEAuthData, int(authLen)) ||
		!readU16(&cd, &pckType) || !readU32(&cd, &pckLen) {
		return nil, formatErr("truncated QE certification data")
	}
	if pckType != certTypePCK {
		return nil, formatErr("QE certification data type %d, want %d (PCK chain)", pckType, certTypePCK)
	}
	if pckLen > maxPCKChain {
		return nil, formatErr("PCK chain of %d bytes", pckLen)
	}
	if !cd.ReadBytes(&q.PCKChain, int(pckLen)) || !cd.Empty() {
		return nil, formatErr("PCK chain length %d does not match the %d bytes present", pckLen, len(cd))
	}
	parseQEReport(&q.QEReport)
	return q, nil
}

func parseQEReport(r *QEReport) {
	b := r.raw[:]
	copy(r.CPUSVN[:], b[0:16])
	r.MiscSelect = binary.LittleEndian.Uint32(b[16:20])
	copy(r.Attributes[:], b[48:64])
	copy(r.MREnclave[:], b[64:96])
	copy(r.MRSigner[:], b[128:160])
	r.ISVProdID = binary.LittleEndian.Uint16(b[256:258])
	r.ISVSVN = binary.LittleEndian.Uint16(b[258:260])
	copy(r.ReportData[:], b[320:384])
}

// Marshal re-encodes q. For a parsed quote it returns the parsed bytes.
func (q *Quote) Marshal() ([]byte, error) {
	if len(q.signed) == 0 {
		return nil, errors.New("tdx: Marshal of a quote that was not parsed")
	}
	var b cryptobyte.Builder
	b.AddBytes(q.signed)
	u16 := func(v uint16) { b.AddBytes(binary.LittleEndian.AppendUint16(nil, v)) }
	u32 := func(v uint32) { b.AddBytes(binary.LittleEndian.AppendUint32(nil, v)) }
	var cd []byte
	cd = append(cd, q.QEReport.raw[:]...)
	cd = append(cd, q.QEReportSig[:]...)
	cd = binary.LittleEndian.AppendUint16(cd, uint16(len(q.QEAuthData)))
	cd = append(cd, q.QEAuthData...)
	cd = binary.LittleEndian.AppendUint16(cd, certTypePCK)
	cd = binary.LittleEndian.AppendUint32(cd, uint32(len(q.PCKChain)))
	cd = append(cd, q.PCKChain...)
	u32(uint32(sigSize + keySize + 6 + len(cd)))
	b.AddBytes(q.Signature[:])
	b.AddBytes(q.AttestationKey[:])
	u16(certTypeQEData)
	u32(uint32(len(cd)))
	b.AddBytes(cd)
	return b.Bytes()
}
