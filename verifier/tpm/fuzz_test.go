package tpm

import (
	"bytes"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/attested-tls/go-expat/internal/tpmtest"
)

func FuzzParseEventLog(f *testing.F) {
	log, _ := tpmtest.EventLog([]tpmtest.Event{
		{PCR: 0, Type: 3, Data: append([]byte("StartupLocality\x00"), 3)},
		{PCR: 0, Type: 8, Data: []byte("firmware")},
		{PCR: 7, Type: 0x800000e0, Data: []byte("db")},
	})
	f.Add(log)
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := parseEventLog(data, 0x000B)
		if err != nil {
			if ev != nil {
				t.Fatal("events with error")
			}
			return
		}
		// Every accepted event is complete: re-parsing the log without its
		// last byte must not yield the same events.
		if len(data) > 0 {
			if ev2, err := parseEventLog(data[:len(data)-1], 0x000B); err == nil && len(ev2) == len(ev) {
				t.Fatal("a strict prefix parses to as many events")
			}
		}
		_, _ = replay(ev, 0x000B)
	})
}

func TestEventLogRejects(t *testing.T) {
	good, _ := tpmtest.EventLog([]tpmtest.Event{{PCR: 4, Type: 8, Data: []byte("x")}})
	for _, tc := range []struct {
		name string
		in   []byte
		alg  uint16
	}{
		{"empty", nil, 0x000B},
		{"truncated", good[:len(good)-1], 0x000B},
		{"bank not in log", good, 0x000C},
		{"SHA-1 format only", append(make([]byte, 4), bytes.Repeat([]byte{0}, 40)...), 0x000B},
		{"huge event size", append(bytes.Clone(good[:len(good)-5]), 0xff, 0xff, 0xff, 0xff, 'x'), 0x000B},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if ev, err := parseEventLog(tc.in, tc.alg); err == nil || ev != nil {
				t.Fatalf("accepted: %v", ev)
			}
		})
	}
}

// FuzzTPMStructures feeds the strict TPM decoders used on peer input.
func FuzzTPMStructures(f *testing.F) {
	f.Add([]byte{0xff, 0x54, 0x43, 0x47, 0x80, 0x18, 0, 0, 0, 0})
	f.Add(tpm2.Marshal(&tpm2.TPMTSignature{SigAlg: tpm2.TPMAlgECDSA, Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgECDSA,
		&tpm2.TPMSSignatureECC{Hash: tpm2.TPMAlgSHA256, SignatureR: tpm2.TPM2BECCParameter{Buffer: []byte{1}}, SignatureS: tpm2.TPM2BECCParameter{Buffer: []byte{2}}})}))
	f.Fuzz(func(t *testing.T, data []byte) {
		if p, k, err := parseAK(data); err != nil && (p != nil || k != nil) {
			t.Fatal("AK with error")
		}
		for _, typ := range []tpm2.TPMST{tpm2.TPMSTAttestQuote, tpm2.TPMSTAttestCertify} {
			if a, err := parseAttest(data, typ); err != nil && a != nil {
				t.Fatal("attest with error")
			} else if err == nil && !bytes.Equal(tpm2.Marshal(a), data) {
				t.Fatal("re-marshal differs")
			}
		}
		if s, err := strictUnmarshal[tpm2.TPMTSignature](data); err == nil && !bytes.Equal(tpm2.Marshal(s), data) {
			t.Fatal("re-marshal differs")
		}
	})
}
