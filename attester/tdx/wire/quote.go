package wire

import (
	"fmt"
	"math/bits"

	"golang.org/x/crypto/cryptobyte"
)

// Quote layout constants (see the package doc).
const (
	headerSize      = 48
	bodySizeTDX10   = 584 // TDX 1.0 TD quote body
	bodySizeTDX15   = 648 // TDX 1.5: + TEE_TCB_SVN_2 (16) + MRSERVICETD (48)
	qeReportSize    = 384
	teeTypeTDX      = 0x81
	akTypeECDSAP256 = 2
	certTypeQEData  = 6
	certTypePCK     = 5

	// BodyTypeTDX10 and BodyTypeTDX15 are the v5 body types of a TDX 1.0
	// and a TDX 1.5 TD quote body; a v4 quote always has a TDX 1.0 body.
	BodyTypeTDX10 = 2
	BodyTypeTDX15 = 3

	// MaxPCKChain bounds the PEM PCK chain (three P-256 certificates are
	// under 4 KiB).
	MaxPCKChain = 12 << 10
)

// quoteError is a quote parsing or encoding error; it matches ErrMalformed.
type quoteError string

func (e quoteError) Error() string      { return "tdx: malformed quote: " + string(e) }
func (quoteError) Is(target error) bool { return target == ErrMalformed }

func quoteErr(format string, args ...any) error { return quoteError(fmt.Sprintf(format, args...)) }

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
	// TeeTCBSVN2 and MRServiceTD exist in TDX 1.5 bodies (v5 quotes with
	// BodyTypeTDX15) only; they are zero in every other quote.
	TeeTCBSVN2  [16]byte
	MRServiceTD [48]byte
}

// QEReport is the quoting enclave's SGX REPORT body (384 bytes), which the
// PCK key signs. Every byte is a field, reserved ones included, so that
// Marshal returns exactly the signed bytes of a parsed report.
type QEReport struct {
	CPUSVN       [16]byte
	MiscSelect   uint32
	Reserved1    [12]byte
	ISVExtProdID [16]byte
	Attributes   [16]byte
	MREnclave    [32]byte
	Reserved2    [32]byte
	MRSigner     [32]byte
	Reserved3    [32]byte
	ConfigID     [64]byte
	ISVProdID    uint16
	ISVSVN       uint16
	ConfigSVN    uint16
	Reserved4    [42]byte
	ISVFamilyID  [16]byte
	// ReportData is SHA-256(attestation key || QE auth data) || 32 zero
	// bytes in a genuine quote.
	ReportData [64]byte
}

// Quote is a TDX quote (v4 or v5, ECDSA-256 with P-256, QE certification
// data of type 6 holding a PCK certificate chain). The header's
// attestation key type (2) and TEE type (0x81), and the certification
// data types, are implied.
type Quote struct {
	// Version is 4 or 5.
	Version uint16
	// QESVN and PCESVN are header bytes 8..10 and 10..12, named as in the
	// SGX quote v3 header this one extends. TDX quotes mark them reserved
	// (Intel's sample quotes have zeros; go-tdx-guest names them in the
	// opposite order): nothing is appraised from them.
	QESVN      uint16
	PCESVN     uint16
	QEVendorID [16]byte
	UserData   [20]byte
	// BodyType is BodyTypeTDX10 or (v5 only) BodyTypeTDX15.
	BodyType uint16
	Body     Body

	Signature      [64]byte // r || s, big-endian, over SignedBytes
	AttestationKey [64]byte // x || y, big-endian
	QEReport       QEReport
	QEReportSig    [64]byte // r || s, by the PCK key over QEReport.Marshal()
	// QEAuthData (at most 65535 bytes; empty is nil) is hashed into
	// QEReport.ReportData.
	QEAuthData []byte
	// PCKChain is the PEM PCK chain (PCK leaf, PCK CA, root; at most
	// MaxPCKChain bytes; empty is nil).
	PCKChain []byte
}

func (q *Quote) bodySize() int {
	if q.BodyType == BodyTypeTDX15 {
		return bodySizeTDX15
	}
	return bodySizeTDX10
}

// check is the one set of rules a Quote obeys, for ParseQuote and Marshal.
func (q *Quote) check() error {
	switch {
	case q.Version == 4 && q.BodyType == BodyTypeTDX10:
	case q.Version == 5 && (q.BodyType == BodyTypeTDX10 || q.BodyType == BodyTypeTDX15):
	default:
		return quoteErr("version %d with body type %d", q.Version, q.BodyType)
	}
	if q.BodyType == BodyTypeTDX10 && (q.Body.TeeTCBSVN2 != [16]byte{} || q.Body.MRServiceTD != [48]byte{}) {
		return quoteErr("TDX 1.5 fields in a TDX 1.0 body")
	}
	if len(q.QEAuthData) > 0xffff {
		return quoteErr("QE auth data of %d bytes", len(q.QEAuthData))
	}
	if len(q.PCKChain) > MaxPCKChain {
		return quoteErr("PCK chain of %d bytes, at most %d", len(q.PCKChain), MaxPCKChain)
	}
	if n := q.size(); n > MaxQuoteSize {
		return quoteErr("%d bytes, at most %d", n, MaxQuoteSize)
	}
	return nil
}

func (q *Quote) size() int {
	n := headerSize + q.bodySize() + 4 + 64 + 64 + 6 + qeReportSize + 64 + 2 + len(q.QEAuthData) + 6 + len(q.PCKChain)
	if q.Version == 5 {
		n += 6
	}
	return n
}

// Little-endian integers over cryptobyte (whose own are big-endian).
func addU16(b *cryptobyte.Builder, v uint16) { b.AddUint16(bits.ReverseBytes16(v)) }
func addU32(b *cryptobyte.Builder, v uint32) { b.AddUint32(bits.ReverseBytes32(v)) }

func readU16(s *cryptobyte.String, v *uint16) bool {
	if !s.ReadUint16(v) {
		return false
	}
	*v = bits.ReverseBytes16(*v)
	return true
}

func readU32(s *cryptobyte.String, v *uint32) bool {
	if !s.ReadUint32(v) {
		return false
	}
	*v = bits.ReverseBytes32(*v)
	return true
}

// readArr copies len(out) bytes into out.
func readArr(s *cryptobyte.String, out []byte) bool { return s.CopyBytes(out) }

// clone copies b, with nil for empty.
func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// addSigned writes header || [v5 descriptor] || body.
func (q *Quote) addSigned(b *cryptobyte.Builder) {
	addU16(b, q.Version)
	addU16(b, akTypeECDSAP256)
	addU32(b, teeTypeTDX)
	addU16(b, q.QESVN)
	addU16(b, q.PCESVN)
	b.AddBytes(q.QEVendorID[:])
	b.AddBytes(q.UserData[:])
	if q.Version == 5 {
		addU16(b, q.BodyType)
		addU32(b, uint32(q.bodySize()))
	}
	d := &q.Body
	for _, f := range [][]byte{d.TeeTCBSVN[:], d.MRSeam[:], d.MRSignerSeam[:], d.SeamAttributes[:], d.TDAttributes[:],
		d.XFAM[:], d.MRTD[:], d.MRConfigID[:], d.MROwner[:], d.MROwnerConfig[:],
		d.RTMR[0][:], d.RTMR[1][:], d.RTMR[2][:], d.RTMR[3][:], d.ReportData[:]} {
		b.AddBytes(f)
	}
	if q.BodyType == BodyTypeTDX15 {
		b.AddBytes(d.TeeTCBSVN2[:])
		b.AddBytes(d.MRServiceTD[:])
	}
}

func (r *QEReport) add(b *cryptobyte.Builder) {
	b.AddBytes(r.CPUSVN[:])
	addU32(b, r.MiscSelect)
	for _, f := range [][]byte{r.Reserved1[:], r.ISVExtProdID[:], r.Attributes[:], r.MREnclave[:], r.Reserved2[:],
		r.MRSigner[:], r.Reserved3[:], r.ConfigID[:]} {
		b.AddBytes(f)
	}
	addU16(b, r.ISVProdID)
	addU16(b, r.ISVSVN)
	addU16(b, r.ConfigSVN)
	b.AddBytes(r.Reserved4[:])
	b.AddBytes(r.ISVFamilyID[:])
	b.AddBytes(r.ReportData[:])
}

func (r *QEReport) read(s *cryptobyte.String) bool {
	return readArr(s, r.CPUSVN[:]) && readU32(s, &r.MiscSelect) && readArr(s, r.Reserved1[:]) &&
		readArr(s, r.ISVExtProdID[:]) && readArr(s, r.Attributes[:]) && readArr(s, r.MREnclave[:]) &&
		readArr(s, r.Reserved2[:]) && readArr(s, r.MRSigner[:]) && readArr(s, r.Reserved3[:]) &&
		readArr(s, r.ConfigID[:]) && readU16(s, &r.ISVProdID) && readU16(s, &r.ISVSVN) &&
		readU16(s, &r.ConfigSVN) && readArr(s, r.Reserved4[:]) && readArr(s, r.ISVFamilyID[:]) &&
		readArr(s, r.ReportData[:])
}

// Marshal returns the 384 bytes of the report, which QEReportSig signs.
func (r *QEReport) Marshal() []byte {
	b := cryptobyte.NewBuilder(make([]byte, 0, qeReportSize))
	r.add(b)
	out, _ := b.Bytes() // fixed-size fields, no length prefix: cannot fail
	return out
}

// SignedBytes returns the bytes the quote signature covers: the header,
// the v5 body descriptor and the body.
func (q *Quote) SignedBytes() ([]byte, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	q.addSigned(&b)
	return b.Bytes()
}

// Marshal encodes q. For a Quote from ParseQuote it returns the parsed
// bytes.
func (q *Quote) Marshal() ([]byte, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	b := cryptobyte.NewBuilder(make([]byte, 0, q.size()))
	q.addSigned(b)
	qcd := 64 + 64 + 6 // signature, key, certification data header
	cd := qeReportSize + 64 + 2 + len(q.QEAuthData) + 6 + len(q.PCKChain)
	addU32(b, uint32(qcd+cd))
	b.AddBytes(q.Signature[:])
	b.AddBytes(q.AttestationKey[:])
	addU16(b, certTypeQEData)
	addU32(b, uint32(cd))
	q.QEReport.add(b)
	b.AddBytes(q.QEReportSig[:])
	addU16(b, uint16(len(q.QEAuthData)))
	b.AddBytes(q.QEAuthData)
	addU16(b, certTypePCK)
	addU32(b, uint32(len(q.PCKChain)))
	b.AddBytes(q.PCKChain)
	return b.Bytes()
}

// ParseQuote parses raw strictly: every length field must match the bytes
// present exactly, no trailing data is allowed (neither after the signed
// data nor inside it), sizes are bounded (MaxQuoteSize, MaxPCKChain), and
// only the TDX, ECDSA-P256, PCK-chain form is accepted. Errors match
// ErrMalformed. The result does not alias raw.
func ParseQuote(raw []byte) (*Quote, error) {
	if len(raw) > MaxQuoteSize {
		return nil, quoteErr("%d bytes, at most %d", len(raw), MaxQuoteSize)
	}
	q := &Quote{}
	s := cryptobyte.String(raw)
	var akType uint16
	var tee uint32
	if !readU16(&s, &q.Version) || !readU16(&s, &akType) || !readU32(&s, &tee) ||
		!readU16(&s, &q.QESVN) || !readU16(&s, &q.PCESVN) ||
		!readArr(&s, q.QEVendorID[:]) || !readArr(&s, q.UserData[:]) {
		return nil, quoteErr("truncated header")
	}
	if q.Version != 4 && q.Version != 5 {
		return nil, quoteErr("version %d", q.Version)
	}
	if akType != akTypeECDSAP256 {
		return nil, quoteErr("attestation key type %d", akType)
	}
	if tee != teeTypeTDX {
		return nil, quoteErr("TEE type %#x is not TDX", tee)
	}
	q.BodyType = BodyTypeTDX10
	if q.Version == 5 {
		var size uint32
		if !readU16(&s, &q.BodyType) || !readU32(&s, &size) {
			return nil, quoteErr("truncated body descriptor")
		}
		if (q.BodyType != BodyTypeTDX10 && q.BodyType != BodyTypeTDX15) || int(size) != q.bodySize() {
			return nil, quoteErr("body type %d with size %d", q.BodyType, size)
		}
	}
	d := &q.Body
	if !readArr(&s, d.TeeTCBSVN[:]) || !readArr(&s, d.MRSeam[:]) || !readArr(&s, d.MRSignerSeam[:]) ||
		!readArr(&s, d.SeamAttributes[:]) || !readArr(&s, d.TDAttributes[:]) || !readArr(&s, d.XFAM[:]) ||
		!readArr(&s, d.MRTD[:]) || !readArr(&s, d.MRConfigID[:]) || !readArr(&s, d.MROwner[:]) ||
		!readArr(&s, d.MROwnerConfig[:]) || !readArr(&s, d.RTMR[0][:]) || !readArr(&s, d.RTMR[1][:]) ||
		!readArr(&s, d.RTMR[2][:]) || !readArr(&s, d.RTMR[3][:]) || !readArr(&s, d.ReportData[:]) ||
		(q.BodyType == BodyTypeTDX15 && (!readArr(&s, d.TeeTCBSVN2[:]) || !readArr(&s, d.MRServiceTD[:]))) {
		return nil, quoteErr("truncated body")
	}

	var sigLen uint32
	var sd cryptobyte.String
	if !readU32(&s, &sigLen) || !s.ReadBytes((*[]byte)(&sd), int(sigLen)) {
		return nil, quoteErr("signed data length %d exceeds the quote", sigLen)
	}
	if !s.Empty() {
		return nil, quoteErr("%d trailing bytes after the signed data", len(s))
	}
	var certType uint16
	var certLen uint32
	var cd cryptobyte.String
	if !readArr(&sd, q.Signature[:]) || !readArr(&sd, q.AttestationKey[:]) ||
		!readU16(&sd, &certType) || !readU32(&sd, &certLen) || !sd.ReadBytes((*[]byte)(&cd), int(certLen)) {
		return nil, quoteErr("truncated signed data")
	}
	if !sd.Empty() {
		return nil, quoteErr("%d trailing bytes after the certification data", len(sd))
	}
	if certType != certTypeQEData {
		return nil, quoteErr("certification data type %d, want %d", certType, certTypeQEData)
	}
	var authLen, pckType uint16
	var pckLen uint32
	var auth, chain []byte
	if !q.QEReport.read(&cd) || !readArr(&cd, q.QEReportSig[:]) ||
		!readU16(&cd, &authLen) || !cd.ReadBytes(&auth, int(authLen)) ||
		!readU16(&cd, &pckType) || !readU32(&cd, &pckLen) {
		return nil, quoteErr("truncated QE certification data")
	}
	if pckType != certTypePCK {
		return nil, quoteErr("QE certification data type %d, want %d (PCK chain)", pckType, certTypePCK)
	}
	if pckLen > MaxPCKChain {
		return nil, quoteErr("PCK chain of %d bytes, at most %d", pckLen, MaxPCKChain)
	}
	if !cd.ReadBytes(&chain, int(pckLen)) || !cd.Empty() {
		return nil, quoteErr("PCK chain length %d does not match the %d bytes present", pckLen, len(cd))
	}
	// Copy at the trust boundary: the arrays are copies already.
	q.QEAuthData, q.PCKChain = clone(auth), clone(chain)
	if err := q.check(); err != nil {
		return nil, err
	}
	return q, nil
}
