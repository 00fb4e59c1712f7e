package verifier_test

import (
	"bytes"
	"crypto"
	"errors"
	"testing"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/verifier"
)

func TestExpectedValues(t *testing.T) {
	ch := attester.Challenge{Hash: crypto.SHA256, Binding: bytes.Repeat([]byte{1}, 32), AIKPubHash: bytes.Repeat([]byte{2}, 32)}
	chRD, _ := ch.ReportData64()
	chQD, _ := ch.QualifyingData32()
	rd := [64]byte{7}
	qd := [32]byte{9}
	tests := []struct {
		name         string
		exp          verifier.Expected
		wantRD       *[64]byte
		wantQD       *[32]byte
		rdRejected   bool
		qdRejected   bool
		rdErr, qdErr bool
	}{
		{name: "challenge", exp: verifier.Expected{Challenge: ch}, wantRD: &chRD, wantQD: &chQD},
		{name: "report data wins over challenge", exp: verifier.Expected{Challenge: ch, ReportData: &rd}, wantRD: &rd, qdRejected: true},
		{name: "qualifying data wins over challenge", exp: verifier.Expected{Challenge: ch, QualifyingData: &qd}, wantQD: &qd, rdRejected: true},
		{name: "both set", exp: verifier.Expected{ReportData: &rd, QualifyingData: &qd}, wantRD: &rd, wantQD: &qd},
		{name: "nothing set", exp: verifier.Expected{}, rdErr: true, qdErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotRD, err := tt.exp.ReportData64()
			switch {
			case tt.wantRD != nil:
				if err != nil || gotRD != *tt.wantRD {
					t.Fatalf("ReportData64() = %x, %v; want %x", gotRD, err, *tt.wantRD)
				}
			case tt.rdRejected:
				if !errors.Is(err, verifier.ErrRejected) {
					t.Fatalf("ReportData64() error %v, want a rejection", err)
				}
			case tt.rdErr:
				if err == nil || !errors.Is(err, attester.ErrInvalidChallenge) {
					t.Fatalf("ReportData64() error %v, want ErrInvalidChallenge", err)
				}
			}
			gotQD, err := tt.exp.QualifyingData32()
			switch {
			case tt.wantQD != nil:
				if err != nil || gotQD != *tt.wantQD {
					t.Fatalf("QualifyingData32() = %x, %v; want %x", gotQD, err, *tt.wantQD)
				}
			case tt.qdRejected:
				if !errors.Is(err, verifier.ErrRejected) {
					t.Fatalf("QualifyingData32() error %v, want a rejection", err)
				}
			case tt.qdErr:
				if err == nil || !errors.Is(err, attester.ErrInvalidChallenge) {
					t.Fatalf("QualifyingData32() error %v, want ErrInvalidChallenge", err)
				}
			}
		})
	}
}
