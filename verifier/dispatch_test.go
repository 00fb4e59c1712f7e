package verifier_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"errors"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/expat/expattest/testkit"
	"github.com/attested-tls/go-expat/verifier"
)

// exactValue is a second, deliberately simple technology for routing
// tests: it accepts a record of its media type only if the value is the
// expected challenge's ReportData64 itself.
type exactValue struct{ calls int }

const exactType = "application/vnd.example.exact"

func (e *exactValue) Verify(_ context.Context, b []byte, exp *verifier.Expected) (*verifier.Result, error) {
	e.calls++
	c, err := cmw.Decode(b, nil)
	if err != nil {
		return nil, verifier.Reject(verifier.CheckFormat, err, "exact: CMW")
	}
	r, ok := c.Record()
	if !ok || r.MediaType != exactType {
		return nil, verifier.Reject(verifier.CheckFormat, nil, "exact: not mine")
	}
	want, err := exp.Challenge.ReportData64()
	if err != nil || !bytes.Equal(r.Value, want[:]) {
		return nil, verifier.Reject(verifier.CheckChallenge, nil, "exact: value is not the challenge")
	}
	return &verifier.Result{Model: verifier.BackgroundCheck, Technology: "exact", Status: verifier.TierWarning,
		TrustVector: verifier.TrustVector{InstanceIdentity: 32}, Verifier: "exact",
		Measurements: []verifier.Measurement{{Name: "m", Value: []byte{1}}}, Claims: map[string]string{"k": "v"},
		AppraisedAt: time.Unix(1, 0)}, nil
}

func ch(seed byte) attester.Challenge {
	return attester.Challenge{Hash: crypto.SHA256, Binding: bytes.Repeat([]byte{seed}, 32), AIKPubHash: make([]byte, 32)}
}

func TestDispatch(t *testing.T) {
	key, err := testkit.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	att := &testkit.Attester{Key: key, Measurements: []verifier.Measurement{{Name: "fw", Value: []byte{9}}}}
	tk := &testkit.Verifier{TrustedKeys: []*ecdsa.PublicKey{&key.PublicKey}}
	ex := &exactValue{}
	d := &verifier.Dispatch{Verifiers: map[string]verifier.Verifier{
		// Registered with a different spelling than cmw.MediaTypeTestKit's.
		"Application/VND.go-expat.test-only-eat+cwt": tk,
		exactType: ex,
	}}
	good := ch(1)
	exp := &verifier.Expected{Challenge: good, Now: time.Unix(100, 0)}
	ev, err := att.Attest(context.Background(), good)
	if err != nil {
		t.Fatal(err)
	}
	staleEv, _ := att.Attest(context.Background(), ch(2))
	rd, _ := good.ReportData64()
	exactRec, _ := cmw.NewRecord(exactType, rd[:], cmw.Evidence)
	unknownRec, _ := cmw.NewRecord("application/vnd.example.unknown", []byte{1}, cmw.Evidence)

	collection := func(items map[string][]byte, json bool) []byte {
		col, _ := cmw.NewCollection("tag:example.com,2026:composite")
		for label, b := range items {
			c, err := cmw.Decode(b, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := col.Add(cmw.TextLabel(label), c); err != nil {
				t.Fatal(err)
			}
		}
		var out []byte
		if json {
			out, err = col.MarshalJSON()
		} else {
			out, err = col.Marshal()
		}
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	mustM := func(c *cmw.CMW) []byte { b, _ := c.Marshal(); return b }
	composite := collection(map[string][]byte{"cpu": ev, "gpu": mustM(exactRec)}, false)
	compositeJSON := collection(map[string][]byte{"cpu": ev, "gpu": mustM(exactRec)}, true)
	staleComposite := collection(map[string][]byte{"cpu": staleEv, "gpu": mustM(exactRec)}, false)
	unknownComposite := collection(map[string][]byte{"cpu": ev, "x": mustM(unknownRec)}, false)

	allow := *d
	allow.AllowCollections = true

	tests := []struct {
		name  string
		d     *verifier.Dispatch
		in    []byte
		check verifier.Check
		tech  string
	}{
		{"test-kit record", d, ev, 0, testkit.Technology},
		{"other record", d, mustM(exactRec), 0, "exact"},
		{"unknown media type", d, mustM(unknownRec), verifier.CheckFormat, ""},
		{"garbage", d, []byte("garbage"), verifier.CheckFormat, ""},
		{"oversized", d, make([]byte, 65536), verifier.CheckFormat, ""},
		{"stale evidence", d, staleEv, verifier.CheckChallenge, ""},
		{"collection not allowed", d, composite, verifier.CheckFormat, ""},
		{"zero Dispatch", &verifier.Dispatch{}, ev, verifier.CheckFormat, ""},
		{"collection", &allow, composite, 0, "test-kit+exact"},
		{"JSON collection", &allow, compositeJSON, 0, "test-kit+exact"},
		{"collection with a stale item", &allow, staleComposite, verifier.CheckChallenge, ""},
		{"collection with an unknown item", &allow, unknownComposite, verifier.CheckFormat, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := tt.d.Verify(context.Background(), tt.in, exp)
			if tt.check != 0 {
				var re *verifier.RejectedError
				if !errors.As(err, &re) || re.Check != tt.check {
					t.Fatalf("got %v, want check %q", err, tt.check)
				}
				if res != nil {
					t.Error("result with an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Technology != tt.tech {
				t.Errorf("technology %q, want %q", res.Technology, tt.tech)
			}
		})
	}

	res, err := allow.Verify(context.Background(), composite, exp)
	if err != nil {
		t.Fatal(err)
	}
	// The worst status; per claim the worst claim made (exact makes no
	// Hardware claim, the test kit affirms it).
	if res.Status != verifier.TierWarning || res.TrustVector.InstanceIdentity != 32 || res.TrustVector.Hardware != 2 {
		t.Errorf("merged status %v vector %+v", res.Status, res.TrustVector)
	}
	if res.MediaType != "tag:example.com,2026:composite" || res.Model != verifier.BackgroundCheck {
		t.Errorf("merged result %+v", res)
	}
	names := map[string]bool{}
	for _, m := range res.Measurements {
		names[m.Name] = true
	}
	if !names["cpu/fw"] || !names["gpu/m"] || res.Claims["gpu/k"] != "v" || res.Claims["cpu/test-only"] != "true" {
		t.Errorf("merged measurements %v claims %v", res.Measurements, res.Claims)
	}
	if !res.AppraisedAt.Equal(time.Unix(1, 0)) {
		t.Errorf("AppraisedAt %v", res.AppraisedAt)
	}
}

func TestDispatchAmbiguous(t *testing.T) {
	v := &exactValue{}
	d := &verifier.Dispatch{Verifiers: map[string]verifier.Verifier{"a/b; x=1": v, "A/B;x=\"1\"": v}}
	if _, err := d.Lookup("a/b;x=1"); err == nil || errors.Is(err, verifier.ErrRejected) {
		t.Errorf("ambiguous registration: %v", err)
	}
	if got, err := d.Lookup("a/b; x=1"); err != nil || got != v {
		t.Errorf("exact key: %v %v", got, err)
	}
}

// recordOnly is a RecordVerifier whose Verify fails the test: Dispatch must
// hand it decoded records. It accepts a record whose value is "ok".
type recordOnly struct {
	t       *testing.T
	records []cmw.Record
}

func (r *recordOnly) Verify(context.Context, []byte, *verifier.Expected) (*verifier.Result, error) {
	r.t.Error("Dispatch passed bytes to a RecordVerifier")
	return nil, errors.New("unexpected Verify")
}

func (r *recordOnly) VerifyRecord(_ context.Context, rec cmw.Record, _ *verifier.Expected) (*verifier.Result, error) {
	r.records = append(r.records, rec)
	if err := verifier.ExpectRecord(rec, exactType, cmw.Evidence); err != nil {
		return nil, err
	}
	if string(rec.Value) != "ok" {
		return nil, verifier.Reject(verifier.CheckChallenge, nil, "test: value %q", rec.Value)
	}
	return &verifier.Result{Model: verifier.BackgroundCheck, Technology: "record", Status: verifier.TierAffirming}, nil
}

// Dispatch decodes once and hands each record, decoded, to a
// RecordVerifier: the top-level record and every collection item, in the
// collection's order, with no re-serialization in between.
func TestDispatchHandsOnDecodedRecords(t *testing.T) {
	rv := &recordOnly{t: t}
	d := &verifier.Dispatch{Verifiers: map[string]verifier.Verifier{exactType: rv}, AllowCollections: true}
	exp := &verifier.Expected{Challenge: ch(1)}
	ok, _ := cmw.NewRecord(exactType, []byte("ok"), cmw.Evidence)
	okb, _ := ok.MarshalCBOR()
	if _, err := d.Verify(context.Background(), okb, exp); err != nil {
		t.Fatal(err)
	}
	col, _ := cmw.NewCollection("")
	a, _ := cmw.NewRecord(exactType, []byte("ok"), cmw.Evidence)
	b, _ := cmw.NewRecord(exactType, []byte("no"), 0)
	_ = col.Add(cmw.TextLabel("a"), a)
	_ = col.Add(cmw.TextLabel("b"), b)
	colb, _ := col.MarshalJSON()
	_, err := d.Verify(context.Background(), colb, exp)
	var re *verifier.RejectedError
	if !errors.As(err, &re) || re.Check != verifier.CheckChallenge {
		t.Fatalf("got %v, want the second item's challenge rejection", err)
	}
	if len(rv.records) != 3 || string(rv.records[1].Value) != "ok" || string(rv.records[2].Value) != "no" ||
		rv.records[2].Indicator != 0 {
		t.Fatalf("records handed on: %+v", rv.records)
	}
	// VerifyDecoded appraises what Decode returned, without the bytes.
	c, err := d.Decode(okb)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.VerifyDecoded(context.Background(), c, exp); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Decode(append(okb, 0)); !errors.As(err, &re) || re.Check != verifier.CheckFormat || !errors.Is(err, cmw.ErrMalformed) {
		t.Fatalf("Decode of a bad CMW: %v", err)
	}
}

// tierVerifier accepts any record of its media type with a fixed tier.
type tierVerifier struct{ tier verifier.Tier }

func (v tierVerifier) Verify(_ context.Context, b []byte, _ *verifier.Expected) (*verifier.Result, error) {
	return &verifier.Result{Model: verifier.BackgroundCheck, Technology: v.tier.String(), Status: v.tier}, nil
}

// A collection's Status is the WorstTier of its items, for every pair of
// tiers (affirming < warning < none < contraindicated).
func TestDispatchMergeEveryPair(t *testing.T) {
	tiers := []verifier.Tier{verifier.TierAffirming, verifier.TierWarning, verifier.TierNone, verifier.TierContraindicated}
	d := &verifier.Dispatch{Verifiers: map[string]verifier.Verifier{}, AllowCollections: true}
	mt := func(i int) string { return "application/vnd.example.tier-" + tiers[i].String() }
	for i, tr := range tiers {
		d.Verifiers[mt(i)] = tierVerifier{tr}
	}
	rank := map[verifier.Tier]int{verifier.TierAffirming: 0, verifier.TierWarning: 1, verifier.TierNone: 2, verifier.TierContraindicated: 3}
	for i := range tiers {
		for j := range tiers {
			col, _ := cmw.NewCollection("tag:example.com,2026:pair")
			for n, k := range []int{i, j} {
				r, _ := cmw.NewRecord(mt(k), []byte{byte(n)}, cmw.Evidence)
				if err := col.Add(cmw.TextLabel([]string{"a", "b"}[n]), r); err != nil {
					t.Fatal(err)
				}
			}
			b, err := col.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			res, err := d.Verify(context.Background(), b, &verifier.Expected{Challenge: ch(1)})
			if err != nil {
				t.Fatal(err)
			}
			want := tiers[max(rank[tiers[i]], rank[tiers[j]])]
			if res.Status != want {
				t.Errorf("items %v and %v merged to %v, want %v", tiers[i], tiers[j], res.Status, want)
			}
		}
	}
}
