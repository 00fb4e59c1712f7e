package tpm_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-tpm/tpm2"

	atpm "github.com/attested-tls/go-expat/attester/tpm"
	"github.com/attested-tls/go-expat/internal/tpmtest"
	vtpm "github.com/attested-tls/go-expat/verifier/tpm"
)

// The cost of an attestation against the TPM's own command time, measured
// in the same run on the simulator:
//   - BenchmarkRawTPMCommands: TPM2_PCR_Read + TPM2_Quote + TPM2_Certify
//     sent straight to the simulator (go-tpm marshalling only);
//   - BenchmarkAttest: Attester.Attest doing the same commands plus Conn,
//     digest check, bundle and CMW encoding;
//   - BenchmarkVerify: Verifier.Verify of that Evidence.
// Attest minus RawTPMCommands is the library's overhead.

func BenchmarkAttest(b *testing.B) {
	f := newFixture(b, nil)
	exp := expected("bench", f.key)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.att.Attest(ctx, exp.Challenge); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawTPMCommands(b *testing.B) {
	f := newFixture(b, nil)
	exp := expected("bench", f.key)
	qd, _ := exp.Challenge.QualifyingData32()
	// Load a second AK and key straight on the simulator (the fixture's
	// handles belong to its Conn).
	t := tpmtest.GoTPM(f.sim)
	ak, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHEndorsement, Auth: tpm2.PasswordAuth(nil)},
		InPublic: tpm2.New2B(mustAKTemplate(b, f))}.Execute(t)
	if err != nil {
		b.Fatal(err)
	}
	defer tpm2.FlushContext{FlushHandle: ak.ObjectHandle}.Execute(t)
	f.key.Close(context.Background()) // free a slot; certify the AK itself below
	sel := tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: tpm2.TPMAlgSHA256, PCRSelect: []byte{0xff, 0, 0}}}}
	akAuth := tpm2.AuthHandle{Handle: ak.ObjectHandle, Name: ak.Name, Auth: tpm2.PasswordAuth(nil)}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := (tpm2.PCRRead{PCRSelectionIn: sel}).Execute(t); err != nil {
			b.Fatal(err)
		}
		if _, err := (tpm2.Quote{SignHandle: akAuth, QualifyingData: tpm2.TPM2BData{Buffer: qd[:]},
			InScheme: tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull}, PCRSelect: sel}).Execute(t); err != nil {
			b.Fatal(err)
		}
		if _, err := (tpm2.Certify{ObjectHandle: akAuth, SignHandle: akAuth, QualifyingData: tpm2.TPM2BData{Buffer: qd[:]},
			InScheme: tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull}}).Execute(t); err != nil {
			b.Fatal(err)
		}
	}
}

func mustAKTemplate(b *testing.B, f *fixture) tpm2.TPMTPublic {
	p, err := tpm2.Unmarshal[tpm2.TPMTPublic](f.att.AKPublic())
	if err != nil {
		b.Fatal(err)
	}
	return *p
}

func BenchmarkVerify(b *testing.B) {
	f := newFixture(b, nil)
	exp := expected("bench", f.key)
	ctx := context.Background()
	ev, err := f.att.Attest(ctx, exp.Challenge)
	if err != nil {
		b.Fatal(err)
	}
	v := pinned(b, f, nil)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := v.Verify(ctx, ev, exp); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyEventLog: Verifier.Verify of Evidence carrying a TCG
// event log of n measurements (spread over PCRs 0, 4 and 7, each also
// extended into the simulator so that the replay matches), with
// RequireEventLog: the cost of the appraisal against the log's length.
//
//	go test -run '^$' -bench VerifyEventLog ./verifier/tpm
func BenchmarkVerifyEventLog(b *testing.B) {
	for _, n := range []int{0, 10, 100, 1000} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			events := []tpmtest.Event{{PCR: 0, Type: 3, Data: append([]byte("StartupLocality\x00"), 0)}}
			for i := range n {
				events = append(events, tpmtest.Event{PCR: []uint32{0, 4, 7}[i%3], Type: 0x80000003,
					Data: fmt.Appendf(nil, "component %d", i)})
			}
			log, digests := tpmtest.EventLog(events)
			path := filepath.Join(b.TempDir(), "binary_bios_measurements")
			if err := os.WriteFile(path, log, 0o600); err != nil {
				b.Fatal(err)
			}
			f := newFixture(b, &atpm.Config{EventLogPath: path})
			for i, e := range events {
				if e.Type != 3 {
					tpmtest.Extend(b, f.sim, int(e.PCR), digests[i])
				}
			}
			exp := expected("log", f.key)
			ctx := context.Background()
			ev, err := f.att.Attest(ctx, exp.Challenge)
			if err != nil {
				b.Fatal(err)
			}
			v := pinned(b, f, func(c *vtpm.Config) { c.RequireEventLog = true })
			b.SetBytes(int64(len(log)))
			for b.Loop() {
				if _, err := v.Verify(ctx, ev, exp); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
