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

// FuzzTPMStructures feeds the TPM decoders used on peer input
// (TPMS_ATTEST, TPMT_SIGNATURE, TPMT_PUBLIC, the AK check) and holds each
// to its reference, go-tpm's decode and re-encode (tpmabi_test.go): the
// same verdict, the same fields. Seeded with the simulator's bundle
// (testdata/sim-bundle.cbor) and go-tpm's templates.
func FuzzTPMStructures(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		diffAll(t, data)
		// No strict prefix of an accepted structure is accepted.
		if len(data) > 0 {
			var p public
			var a attest
			var s signature
			short := data[:len(data)-1]
			if (parsePublic(data, &p) == nil && parsePublic(short, &p) == nil) ||
				(parseAttest(data, tpm2.TPMSTAttestQuote, &a) == nil && parseAttest(short, tpm2.TPMSTAttestQuote, &a) == nil) ||
				(parseSignature(data, &s) == nil && parseSignature(short, &s) == nil) {
				t.Fatal("a strict prefix of an accepted structure is accepted")
			}
		}
	})
}
