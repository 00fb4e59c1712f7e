package tdx_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/attester/tdx/tdxtest"
	"github.com/attested-tls/go-expat/verifier/tdx"
	"github.com/google/go-tdx-guest/abi"
	pb "github.com/google/go-tdx-guest/proto/tdx"
	"github.com/google/go-tdx-guest/testing/testdata"
)

func testQuote(t testing.TB) []byte {
	pki, err := tdxtest.NewPKI(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pl, err := pki.NewPlatform(tdxtest.DefaultPCKOptions())
	if err != nil {
		t.Fatal(err)
	}
	q, err := pl.QuoteFor([64]byte{9})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// Differential check against go-tdx-guest's parser on real and test
// quotes: same fields.
func TestParseQuoteMatchesGoTDXGuest(t *testing.T) {
	for name, raw := range map[string][]byte{"test": testQuote(t), "intel-v5": testdata.RawQuoteV5} {
		t.Run(name, func(t *testing.T) {
			q, err := tdx.ParseQuote(raw)
			if err != nil {
				t.Fatal(err)
			}
			other, err := abi.QuoteToProto(raw)
			if err != nil {
				t.Fatal(err)
			}
			var body interface {
				GetMrTd() []byte
				GetReportData() []byte
				GetTdAttributes() []byte
				GetRtmrs() [][]byte
			}
			var sd *pb.Ecdsa256BitQuoteV4AuthData
			switch o := other.(type) {
			case *pb.QuoteV4:
				body, sd = o.GetTdQuoteBody(), o.GetSignedData()
			case *pb.QuoteV5:
				body, sd = o.GetTdQuoteBodyDescriptor().GetTdQuoteBodyV5(), o.GetSignedData()
			}
			qe := sd.GetCertificationData().GetQeReportCertificationData()
			if !bytes.Equal(body.GetMrTd(), q.Body.MRTD[:]) || !bytes.Equal(body.GetReportData(), q.Body.ReportData[:]) ||
				!bytes.Equal(body.GetTdAttributes(), q.Body.TDAttributes[:]) || !bytes.Equal(body.GetRtmrs()[3], q.Body.RTMR[3][:]) ||
				!bytes.Equal(sd.GetSignature(), q.Signature[:]) || !bytes.Equal(sd.GetEcdsaAttestationKey(), q.AttestationKey[:]) ||
				!bytes.Equal(qe.GetPckCertificateChainData().GetPckCertChain(), q.PCKChain) ||
				!bytes.Equal(qe.GetQeReport().GetMrSigner(), q.QEReport.MRSigner[:]) ||
				qe.GetQeReport().GetIsvSvn() != uint32(q.QEReport.ISVSVN) {
				t.Fatal("parsers disagree")
			}
		})
	}
}

func TestParseQuoteRejects(t *testing.T) {
	good := testQuote(t)
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	tests := map[string][]byte{
		"empty":           nil,
		"header only":     good[:48],
		"version 3":       mut(func(b []byte) []byte { b[0] = 3; return b }),
		"not TDX":         mut(func(b []byte) []byte { b[4] = 0; return b }),
		"key type 3":      mut(func(b []byte) []byte { b[2] = 3; return b }),
		"trailing byte":   append(bytes.Clone(good), 0),
		"truncated":       good[:len(good)-1],
		"sig len too big": mut(func(b []byte) []byte { b[48+584+3] = 0x7f; return b }),
		"sig len too small": mut(func(b []byte) []byte {
			b[48+584]--
			return b
		}),
		"cert type 5": mut(func(b []byte) []byte { b[48+584+4+128] = 5; return b }),
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			q, err := tdx.ParseQuote(in)
			if q != nil || !errors.Is(err, tdx.ErrFormat) {
				t.Fatalf("ParseQuote = %v, %v", q, err)
			}
		})
	}
}

func FuzzParseQuote(f *testing.F) {
	f.Add(testQuote(f))
	f.Add(testdata.RawQuoteV5)
	f.Add(testdata.RawQuote)
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := tdx.ParseQuote(b)
		if err != nil {
			if q != nil {
				t.Fatal("non-nil quote with an error")
			}
			return
		}
		re, err := q.Marshal()
		if err != nil || !bytes.Equal(re, b) {
			t.Fatalf("re-marshal differs (%v)", err)
		}
		// No strict prefix parses (checked on a sample of cut points to
		// keep the fuzzer fast).
		for _, n := range []int{0, 1, 48, len(b) / 2, len(b) - 64, len(b) - 1} {
			if n >= 0 && n < len(b) {
				if p, err := tdx.ParseQuote(b[:n]); err == nil || p != nil {
					t.Fatalf("prefix of %d bytes parsed", n)
				}
			}
		}
	})
}
