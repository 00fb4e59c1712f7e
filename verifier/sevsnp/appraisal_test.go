package sevsnp_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-sev-guest/kds"
	spb "github.com/google/go-sev-guest/proto/sevsnp"

	asevsnp "github.com/attested-tls/go-expat/attester/sevsnp"
	"github.com/attested-tls/go-expat/attester/sevsnp/sevsnptest"
	"github.com/attested-tls/go-expat/internal/checktest"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/collateral"
	"github.com/attested-tls/go-expat/verifier/sevsnp"
)

// tcbBelow returns the test platform's TCB with the microcode SPL lowered.
func tcbBelow(t testing.TB) uint64 {
	parts := sevsnptest.TCB()
	parts.UcodeSpl--
	v, err := kds.ComposeTCBParts(parts)
	if err != nil {
		t.Fatal(err)
	}
	return uint64(v)
}

// Reports genuinely signed by the test platform whose COMMITTED_TCB or
// LAUNCH_TCB is below the policy's minimum, or whose firmware is not
// committed.
func TestCommittedAndLaunchTCB(t *testing.T) {
	p := sevsnptest.NewPlatform(t)
	ch := sevsnptest.RandomChallenge(t)
	exp := &verifier.Expected{Challenge: ch}
	parts := sevsnptest.TCB()
	atPlatform := sevsnp.TCB{BootLoader: parts.BlSpl, TEE: parts.TeeSpl, SNP: parts.SnpSpl, Microcode: parts.UcodeSpl}
	below := atPlatform
	below.Microcode--
	low := tcbBelow(t)
	tests := []struct {
		name   string
		mutate func(*spb.Report)
		policy sevsnp.Policy
		check  verifier.Check // 0: accepted
		status verifier.Tier
	}{
		{"genuine, at the minimum", nil, sevsnp.Policy{MinimumTCB: atPlatform}, 0, verifier.TierAffirming},
		{"committed firmware below the minimum (the host can roll back to it)",
			func(r *spb.Report) { r.CommittedTcb = low }, sevsnp.Policy{MinimumTCB: atPlatform}, verifier.CheckTCB, 0},
		{"launched under firmware below the minimum",
			func(r *spb.Report) { r.LaunchTcb = low }, sevsnp.Policy{MinimumTCB: atPlatform}, verifier.CheckTCB, 0},
		{"provisional firmware (committed < current), refused by default",
			func(r *spb.Report) { r.CommittedTcb = low }, sevsnp.Policy{MinimumTCB: below}, verifier.CheckTCB, 0},
		{"provisional firmware, allowed: warning",
			func(r *spb.Report) { r.CommittedTcb = low }, sevsnp.Policy{MinimumTCB: below, AllowProvisionalFirmware: true}, 0, verifier.TierWarning},
		{"provisional firmware allowed, committed still below the minimum",
			func(r *spb.Report) { r.CommittedTcb = low }, sevsnp.Policy{MinimumTCB: atPlatform, AllowProvisionalFirmware: true}, verifier.CheckTCB, 0},
		{"launch TCB below the minimum, provisional firmware allowed",
			func(r *spb.Report) { r.LaunchTcb = low }, sevsnp.Policy{MinimumTCB: atPlatform, AllowProvisionalFirmware: true}, verifier.CheckTCB, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.policy.Measurements = [][]byte{sevsnptest.Measurement()}
			v := mustNew(t, &sevsnp.Config{Roots: p.Roots(), Policy: tt.policy})
			res, err := v.Verify(context.Background(), p.Attest(t, ch, tt.mutate, nil), exp)
			if tt.check != 0 {
				checktest.Rejected(t, err, tt.check)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != tt.status {
				t.Fatalf("status %v, want %v", res.Status, tt.status)
			}
			if tt.status == verifier.TierWarning && res.TrustVector.Hardware != 32 {
				t.Errorf("provisional firmware accepted with Hardware %d, want 32", res.TrustVector.Hardware)
			}
		})
	}
}

// No VCEK is fetched for a report that fails its own checks; a KDS 404 is a
// rejection; failures are remembered for FailureTTL.
func TestCollateralAfterReportChecks(t *testing.T) {
	p := sevsnptest.NewPlatform(t)
	k := newKDS(t, p, nil)
	clk := &clock{t: time.Now()}
	cache := &sevsnp.Cache{Time: clk.now}
	v := kdsVerifier(t, p, k, cache, false)
	ch := sevsnptest.RandomChallenge(t)
	exp := &verifier.Expected{Challenge: ch}
	noTable := &asevsnp.Options{OmitCertTable: true}

	junk := []struct {
		name   string
		mutate func(*spb.Report)
		exp    *verifier.Expected
		check  verifier.Check
	}{
		{"debug guest", func(r *spb.Report) { r.Policy |= 1 << 19 }, exp, verifier.CheckDebug},
		{"unknown measurement", func(r *spb.Report) { r.Measurement = make([]byte, 48) }, exp, verifier.CheckMeasurement},
		{"VMPL 1", func(r *spb.Report) { r.Vmpl = 1 }, exp, verifier.CheckVMPL},
		{"provisional firmware", func(r *spb.Report) { r.CommittedTcb = tcbBelow(t) }, exp, verifier.CheckTCB},
		{"another connection's report", nil, &verifier.Expected{Challenge: sevsnptest.RandomChallenge(t)}, verifier.CheckChallenge},
	}
	for _, j := range junk {
		_, err := v.Verify(context.Background(), p.Attest(t, ch, j.mutate, noTable), j.exp)
		checktest.Rejected(t, err, j.check)
	}
	if n := k.hits.Load(); n != 0 {
		t.Fatalf("%d KDS requests for %d reports that fail their own checks, want 0", n, len(junk))
	}

	// A chip AMD never endorsed: the KDS answers 404, once.
	var otherChip [64]byte
	otherChip[0] = 0x5a
	unknown := p.Attest(t, ch, func(r *spb.Report) { r.ChipId = otherChip[:] }, noTable)
	for range 5 {
		_, err := v.Verify(context.Background(), unknown, exp)
		checktest.Rejected(t, err, verifier.CheckChain)
	}
	if n := k.hits.Load(); n != 1 {
		t.Fatalf("5 reports of an unknown chip: %d KDS requests, want 1", n)
	}
	clk.advance(collateral.DefaultFailureTTL + time.Second)
	_, err := v.Verify(context.Background(), unknown, exp)
	checktest.Rejected(t, err, verifier.CheckChain)
	if n := k.hits.Load(); n != 2 {
		t.Fatalf("after FailureTTL: %d KDS requests, want 2", n)
	}

	// The genuine report is still accepted (a failure for one chip is not
	// remembered for another).
	if _, err := v.Verify(context.Background(), p.Attest(t, ch, nil, noTable), exp); err != nil {
		t.Fatal(err)
	}
}

// A rate-limited KDS is asked once per FailureTTL, not once per report.
func TestThrottledKDSFailureCached(t *testing.T) {
	p := sevsnptest.NewPlatform(t)
	k := newKDS(t, p, nil)
	k.throttle.Store(1 << 40)
	v := kdsVerifier(t, p, k, &sevsnp.Cache{Source: &sevsnp.KDS{BaseURL: k.URL, HTTP: collateral.HTTP{MaxRetries: -1}}}, false)
	ch := sevsnptest.RandomChallenge(t)
	rec := p.Attest(t, ch, nil, &asevsnp.Options{OmitCertTable: true})
	for range 5 {
		_, err := v.Verify(context.Background(), rec, &verifier.Expected{Challenge: ch})
		var ue *verifier.UnavailableError
		if !errors.As(err, &ue) || !ue.Retryable {
			t.Fatalf("got %v, want a retryable UnavailableError", err)
		}
	}
	if n := k.hits.Load(); n != 1 {
		t.Fatalf("5 reports against a throttled KDS: %d requests, want 1", n)
	}
}

// The zero Config (and nil: AMD's roots, no measurement) rejects a genuine
// report; trusted roots with a forgotten measurement policy reject it too.
func TestZeroConfigRejects(t *testing.T) {
	p := sevsnptest.NewPlatform(t)
	ch := sevsnptest.RandomChallenge(t)
	rec := p.Attest(t, ch, nil, nil)
	exp := &verifier.Expected{Challenge: ch}
	for _, cfg := range []*sevsnp.Config{nil, {}} {
		_, err := mustNew(t, cfg).Verify(context.Background(), rec, exp)
		checktest.Rejected(t, err, verifier.CheckMeasurement) // no measurement is allowed, checked before the chain
	}
	_, err := mustNew(t, &sevsnp.Config{Policy: sevsnp.Policy{Measurements: [][]byte{sevsnptest.Measurement()}}}).Verify(context.Background(), rec, exp)
	checktest.Rejected(t, err, verifier.CheckChain) // AMD's roots do not trust the test keys
	_, err = mustNew(t, &sevsnp.Config{Roots: p.Roots()}).Verify(context.Background(), rec, exp)
	checktest.Rejected(t, err, verifier.CheckMeasurement)
}
