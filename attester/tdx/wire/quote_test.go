package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/attested-tls/go-expat/attester/tdx/wire"
	"github.com/google/go-tdx-guest/abi"
	pb "github.com/google/go-tdx-guest/proto/tdx"
	"github.com/google/go-tdx-guest/testing/testdata"
)

// intelV4 is go-tdx-guest's real v4 sample quote without the bytes its
// authors appended after the signed data ("extra bytes(only for testing
// purpose)"), which ParseQuote rejects; go-tdx-guest's own parser says
// which bytes those are.
func intelV4(t testing.TB) []byte {
	q := testdata.RawQuote
	p, err := abi.QuoteToProto(q)
	if err != nil {
		t.Fatal(err)
	}
	extra := p.(*pb.QuoteV4).GetExtraBytes()
	if !bytes.Contains(extra, []byte("extra bytes")) {
		t.Fatalf("sample changed: extra bytes %q", extra)
	}
	n := len(q) - len(extra)
	return q[:n:n]
}

// intelSamples are Intel's real quotes shipped by go-tdx-guest: v4 (TDX
// 1.0 body) and v5 (TDX 1.5 body).
func intelSamples(t testing.TB) map[string][]byte {
	return map[string][]byte{"intel-v4": intelV4(t), "intel-v5": testdata.RawQuoteV5}
}

// randomQuote fills every field of a Quote of the given version and body
// type with random values.
func randomQuote(r *rand.Rand, version, bodyType uint16) *wire.Quote {
	fill := func(bs ...[]byte) {
		for _, b := range bs {
			for i := range b {
				b[i] = byte(r.Uint32())
			}
		}
	}
	q := &wire.Quote{Version: version, BodyType: bodyType, QESVN: uint16(r.Uint32()), PCESVN: uint16(r.Uint32())}
	d, e := &q.Body, &q.QEReport
	fill(q.QEVendorID[:], q.UserData[:], d.TeeTCBSVN[:], d.MRSeam[:], d.MRSignerSeam[:], d.SeamAttributes[:],
		d.TDAttributes[:], d.XFAM[:], d.MRTD[:], d.MRConfigID[:], d.MROwner[:], d.MROwnerConfig[:],
		d.RTMR[0][:], d.RTMR[1][:], d.RTMR[2][:], d.RTMR[3][:], d.ReportData[:],
		q.Signature[:], q.AttestationKey[:], q.QEReportSig[:],
		e.CPUSVN[:], e.Reserved1[:], e.ISVExtProdID[:], e.Attributes[:], e.MREnclave[:], e.Reserved2[:],
		e.MRSigner[:], e.Reserved3[:], e.ConfigID[:], e.Reserved4[:], e.ISVFamilyID[:], e.ReportData[:])
	if bodyType == wire.BodyTypeTDX15 {
		fill(d.TeeTCBSVN2[:], d.MRServiceTD[:])
	}
	e.MiscSelect, e.ISVProdID, e.ISVSVN, e.ConfigSVN = r.Uint32(), uint16(r.Uint32()), uint16(r.Uint32()), uint16(r.Uint32())
	if n := r.IntN(100); n > 0 {
		q.QEAuthData = make([]byte, n)
		fill(q.QEAuthData)
	}
	if n := r.IntN(5000); n > 0 {
		q.PCKChain = make([]byte, n)
		fill(q.PCKChain)
	}
	return q
}

// The round-trip property on random quotes of every form: parse(marshal(q))
// == q, re-marshal of the parsed quote gives the same bytes, and the
// signed bytes are the encoding's prefix up to the signed-data length.
func TestQuoteRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, form := range [][2]uint16{{4, wire.BodyTypeTDX10}, {5, wire.BodyTypeTDX10}, {5, wire.BodyTypeTDX15}} {
		for i := 0; i < 200; i++ {
			q := randomQuote(r, form[0], form[1])
			b, err := q.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			got, err := wire.ParseQuote(b)
			if err != nil {
				t.Fatalf("v%d body type %d: %v", form[0], form[1], err)
			}
			if !reflect.DeepEqual(got, q) {
				t.Fatalf("v%d body type %d: parse(marshal(q)) != q", form[0], form[1])
			}
			re, err := got.Marshal()
			if err != nil || !bytes.Equal(re, b) {
				t.Fatalf("re-marshal differs (%v)", err)
			}
			signed, err := q.SignedBytes()
			if err != nil || !bytes.HasPrefix(b, signed) || len(b)-len(signed) != 4+int(binary.LittleEndian.Uint32(b[len(signed):])) {
				t.Fatalf("signed bytes are not the part before the signed data (%v)", err)
			}
			if qe := q.QEReport.Marshal(); len(qe) != 384 || !bytes.Contains(b, qe) {
				t.Fatal("QE report encoding is not 384 bytes of the quote")
			}
		}
	}
}

// TestQuoteMatchesGoTDXGuest is the independent check of the layout:
// Intel's real sample quotes and quotes this package encodes, parsed by
// go-tdx-guest's abi package, give the same values field by field, the
// same QE report bytes (the PCK-signed message) and, encoded again by abi,
// the same bytes.
func TestQuoteMatchesGoTDXGuest(t *testing.T) {
	inputs := intelSamples(t)
	r := rand.New(rand.NewPCG(3, 4))
	for name, form := range map[string][2]uint16{"encoded-v4": {4, 2}, "encoded-v5-tdx10": {5, 2}, "encoded-v5-tdx15": {5, 3}} {
		b, err := randomQuote(r, form[0], form[1]).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		inputs[name] = b
	}
	for name, raw := range inputs {
		t.Run(name, func(t *testing.T) {
			q, err := wire.ParseQuote(raw)
			if err != nil {
				t.Fatal(err)
			}
			if re, err := q.Marshal(); err != nil || !bytes.Equal(re, raw) {
				t.Fatalf("re-marshal differs (%v)", err)
			}
			other, err := abi.QuoteToProto(raw)
			if err != nil {
				t.Fatal(err)
			}
			if back, err := abi.QuoteToAbiBytes(other); err != nil || !bytes.Equal(back, raw) {
				t.Fatalf("abi re-encoding differs (%v)", err)
			}
			var hdr *pb.Header
			var body *pb.TDQuoteBody
			var sd *pb.Ecdsa256BitQuoteV4AuthData
			switch o := other.(type) {
			case *pb.QuoteV4:
				hdr, body, sd = o.GetHeader(), o.GetTdQuoteBody(), o.GetSignedData()
				if q.Version != 4 || q.BodyType != wire.BodyTypeTDX10 {
					t.Fatalf("version %d body type %d", q.Version, q.BodyType)
				}
			case *pb.QuoteV5:
				hdr, sd = o.GetHeader(), o.GetSignedData()
				desc := o.GetTdQuoteBodyDescriptor()
				if q.Version != 5 || int32(q.BodyType) != desc.GetTdQuoteBodyType() {
					t.Fatalf("version %d body type %d, abi body type %d", q.Version, q.BodyType, desc.GetTdQuoteBodyType())
				}
				v5 := desc.GetTdQuoteBodyV5()
				body = &pb.TDQuoteBody{TeeTcbSvn: v5.GetTeeTcbSvn(), MrSeam: v5.GetMrSeam(), MrSignerSeam: v5.GetMrSignerSeam(),
					SeamAttributes: v5.GetSeamAttributes(), TdAttributes: v5.GetTdAttributes(), Xfam: v5.GetXfam(),
					MrTd: v5.GetMrTd(), MrConfigId: v5.GetMrConfigId(), MrOwner: v5.GetMrOwner(),
					MrOwnerConfig: v5.GetMrOwnerConfig(), Rtmrs: v5.GetRtmrs(), ReportData: v5.GetReportData()}
				if q.BodyType == wire.BodyTypeTDX15 {
					eq(t, "TEE_TCB_SVN_2", v5.GetTeeTcbSvn2(), q.Body.TeeTCBSVN2[:])
					eq(t, "MRSERVICETD", v5.GetMrServiceTd(), q.Body.MRServiceTD[:])
				} else if len(v5.GetTeeTcbSvn2())+len(v5.GetMrServiceTd()) != 0 || q.Body.TeeTCBSVN2 != [16]byte{} || q.Body.MRServiceTD != [48]byte{} {
					t.Fatal("TDX 1.5 fields in a TDX 1.0 body")
				}
			default:
				t.Fatalf("abi returned %T", other)
			}
			if hdr.GetVersion() != uint32(q.Version) || hdr.GetAttestationKeyType() != 2 || hdr.GetTeeType() != 0x81 {
				t.Fatal("header integers differ")
			}
			// Header bytes 8..12, reserved in TDX quotes (zero in Intel's
			// samples): go-tdx-guest calls them PCE SVN, QE SVN; Quote
			// names them in the order of the SGX quote v3 header (QE SVN,
			// PCE SVN). The bytes must agree.
			eq(t, "header bytes 8..12", append(hdr.GetPceSvn(), hdr.GetQeSvn()...),
				binary.LittleEndian.AppendUint16(binary.LittleEndian.AppendUint16(nil, q.QESVN), q.PCESVN))
			eq(t, "QE vendor ID", hdr.GetQeVendorId(), q.QEVendorID[:])
			eq(t, "user data", hdr.GetUserData(), q.UserData[:])
			b := &q.Body
			for _, f := range []struct {
				name      string
				abi, ours []byte
			}{
				{"TEE_TCB_SVN", body.GetTeeTcbSvn(), b.TeeTCBSVN[:]}, {"MRSEAM", body.GetMrSeam(), b.MRSeam[:]},
				{"MRSIGNERSEAM", body.GetMrSignerSeam(), b.MRSignerSeam[:]}, {"SEAMATTRIBUTES", body.GetSeamAttributes(), b.SeamAttributes[:]},
				{"TD_ATTRIBUTES", body.GetTdAttributes(), b.TDAttributes[:]}, {"XFAM", body.GetXfam(), b.XFAM[:]},
				{"MRTD", body.GetMrTd(), b.MRTD[:]}, {"MRCONFIGID", body.GetMrConfigId(), b.MRConfigID[:]},
				{"MROWNER", body.GetMrOwner(), b.MROwner[:]}, {"MROWNERCONFIG", body.GetMrOwnerConfig(), b.MROwnerConfig[:]},
				{"RTMR0", body.GetRtmrs()[0], b.RTMR[0][:]}, {"RTMR1", body.GetRtmrs()[1], b.RTMR[1][:]},
				{"RTMR2", body.GetRtmrs()[2], b.RTMR[2][:]}, {"RTMR3", body.GetRtmrs()[3], b.RTMR[3][:]},
				{"REPORTDATA", body.GetReportData(), b.ReportData[:]},
				{"signature", sd.GetSignature(), q.Signature[:]}, {"attestation key", sd.GetEcdsaAttestationKey(), q.AttestationKey[:]},
			} {
				eq(t, f.name, f.abi, f.ours)
			}
			qcd := sd.GetCertificationData().GetQeReportCertificationData()
			eq(t, "PCK chain", qcd.GetPckCertificateChainData().GetPckCertChain(), q.PCKChain)
			eq(t, "QE report signature", qcd.GetQeReportSignature(), q.QEReportSig[:])
			eq(t, "QE auth data", qcd.GetQeAuthData().GetData(), q.QEAuthData)
			rep := qcd.GetQeReport()
			abiRep, err := abi.EnclaveReportToAbiBytes(rep)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "QE report bytes", abiRep, q.QEReport.Marshal())
			e := &q.QEReport
			eq(t, "QE CPUSVN", rep.GetCpuSvn(), e.CPUSVN[:])
			eq(t, "QE attributes", rep.GetAttributes(), e.Attributes[:])
			eq(t, "QE MRENCLAVE", rep.GetMrEnclave(), e.MREnclave[:])
			eq(t, "QE MRSIGNER", rep.GetMrSigner(), e.MRSigner[:])
			eq(t, "QE report data", rep.GetReportData(), e.ReportData[:])
			if rep.GetMiscSelect() != e.MiscSelect || rep.GetIsvProdId() != uint32(e.ISVProdID) || rep.GetIsvSvn() != uint32(e.ISVSVN) {
				t.Fatal("QE report integers differ")
			}
		})
	}
}

func eq(t *testing.T, name string, abi, ours []byte) {
	t.Helper()
	if !bytes.Equal(abi, ours) {
		t.Errorf("%s: go-tdx-guest %x, wire %x", name, abi, ours)
	}
}

// The Evidence bounds admit every quote: the smallest one ParseQuote
// accepts is above MinQuoteSize, and MaxQuoteSize bounds both.
func TestQuoteSizeBounds(t *testing.T) {
	b, err := (&wire.Quote{Version: 4, BodyType: wire.BodyTypeTDX10}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 1226 || len(b) < wire.MinQuoteSize {
		t.Fatalf("smallest quote is %d bytes, MinQuoteSize %d", len(b), wire.MinQuoteSize)
	}
	if _, err := (&wire.Evidence{Quote: b}).Marshal(); err != nil {
		t.Fatal(err)
	}
}

func TestParseQuoteDoesNotAlias(t *testing.T) {
	raw := bytes.Clone(testdata.RawQuoteV5)
	q, err := wire.ParseQuote(raw)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := q.Marshal()
	for i := range raw {
		raw[i] ^= 0xff
	}
	if got, _ := q.Marshal(); !bytes.Equal(got, want) {
		t.Fatal("the parsed quote aliases its input")
	}
}

func TestParseQuoteRejects(t *testing.T) {
	good := intelV4(t)
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	sigLen := 48 + 584 // offset of the signed-data length
	tests := map[string][]byte{
		"empty":                        nil,
		"header only":                  good[:48],
		"version 3":                    mut(func(b []byte) []byte { b[0] = 3; return b }),
		"version 5 without descriptor": mut(func(b []byte) []byte { b[0] = 5; return b }),
		"not TDX":                      mut(func(b []byte) []byte { b[4] = 0; return b }),
		"key type 3":                   mut(func(b []byte) []byte { b[2] = 3; return b }),
		"trailing byte":                append(bytes.Clone(good), 0),
		"truncated":                    good[:len(good)-1],
		"sig len too big":              mut(func(b []byte) []byte { b[sigLen+3] = 0x7f; return b }),
		"sig len too small":            mut(func(b []byte) []byte { b[sigLen]--; return b }),
		"cert type 5":                  mut(func(b []byte) []byte { b[sigLen+4+128] = 5; return b }),
		"PCK type 4": mut(func(b []byte) []byte {
			q, _ := wire.ParseQuote(good)
			b[len(b)-len(q.PCKChain)-6] = 4
			return b
		}),
		"oversized": append(bytes.Clone(good), make([]byte, wire.MaxQuoteSize)...),
	}
	v5 := testdata.RawQuoteV5
	tests["v5 body type 2 with size 648"] = func() []byte { b := bytes.Clone(v5); b[48] = 2; return b }()
	tests["v5 body type 4"] = func() []byte { b := bytes.Clone(v5); b[48] = 4; return b }()
	tests["v5 size 584 for type 3"] = func() []byte { b := bytes.Clone(v5); binary.LittleEndian.PutUint32(b[50:], 584); return b }()
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			q, err := wire.ParseQuote(in)
			if q != nil || !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("ParseQuote = %v, %v", q, err)
			}
		})
	}
}

// Marshal refuses what ParseQuote would refuse.
func TestQuoteMarshalRejects(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	tests := map[string]func(q *wire.Quote){
		"version 3":              func(q *wire.Quote) { q.Version = 3 },
		"v4 with a TDX 1.5 body": func(q *wire.Quote) { q.BodyType = wire.BodyTypeTDX15 },
		"v4 body type 0":         func(q *wire.Quote) { q.BodyType = 0 },
		"TDX 1.5 field in a TDX 1.0 body": func(q *wire.Quote) {
			q.Body.MRServiceTD[0] = 1
		},
		"oversized PCK chain": func(q *wire.Quote) { q.PCKChain = make([]byte, wire.MaxPCKChain+1) },
		"oversized auth data": func(q *wire.Quote) { q.QEAuthData = make([]byte, 0x10000) },
		"oversized quote": func(q *wire.Quote) {
			q.QEAuthData, q.PCKChain = make([]byte, 0xffff), make([]byte, wire.MaxPCKChain)
		},
	}
	for name, mod := range tests {
		t.Run(name, func(t *testing.T) {
			q := randomQuote(r, 4, wire.BodyTypeTDX10)
			mod(q)
			if b, err := q.Marshal(); b != nil || !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("Marshal = %d bytes, %v", len(b), err)
			}
			if b, err := q.SignedBytes(); b != nil || !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("SignedBytes = %d bytes, %v", len(b), err)
			}
		})
	}
}

func FuzzParseQuote(f *testing.F) {
	for _, q := range intelSamples(f) {
		f.Add(q)
	}
	f.Add(testdata.RawQuote)
	r := rand.New(rand.NewPCG(7, 8))
	for _, form := range [][2]uint16{{4, 2}, {5, 2}, {5, 3}} {
		q := randomQuote(r, form[0], form[1])
		q.PCKChain = q.PCKChain[:min(len(q.PCKChain), 64)]
		b, _ := q.Marshal()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := wire.ParseQuote(b)
		if err != nil {
			if q != nil || !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("ParseQuote = %v, %v", q, err)
			}
			return
		}
		re, err := q.Marshal()
		if err != nil || !bytes.Equal(re, b) {
			t.Fatalf("re-marshal differs (%v)", err)
		}
		// No strict prefix parses (a sample of cut points, to keep the
		// fuzzer fast: every length field's neighbourhood is among them
		// for the seeds).
		for _, n := range []int{0, 1, 47, 48, 54, 632, 636, 702, len(b) / 2, len(b) - 64, len(b) - 1} {
			if n >= 0 && n < len(b) {
				if p, err := wire.ParseQuote(b[:n]); err == nil || p != nil {
					t.Fatalf("prefix of %d bytes parsed", n)
				}
			}
		}
	})
}
