package integration_test

// Composite Evidence over attested TLS: the confidential-VM pattern, a
// SEV-SNP report whose REPORT_DATA commits to a vTPM's attestation key and
// a vTPM quote that carries the channel binding. Two machines take part,
// each with its own genuine parts: machine A is SEV-SNP test platform A
// with the in-process TPM simulator, machine B test platform B with an
// swtpm process. The attacks splice, replay or drop genuine items.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/google/go-tpm/tpm2"

	"github.com/attested-tls/go-expat/attester"
	acomposite "github.com/attested-tls/go-expat/attester/composite"
	asevsnp "github.com/attested-tls/go-expat/attester/sevsnp"
	"github.com/attested-tls/go-expat/attester/sevsnp/sevsnptest"
	"github.com/attested-tls/go-expat/attester/tpm"
	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/internal/expattest"
	"github.com/attested-tls/go-expat/internal/tpmtest"
	"github.com/attested-tls/go-expat/verifier"
	vcomposite "github.com/attested-tls/go-expat/verifier/composite"
	vsevsnp "github.com/attested-tls/go-expat/verifier/sevsnp"
	vtpm "github.com/attested-tls/go-expat/verifier/tpm"
)

// machine is one confidential VM: a SEV-SNP platform, a vTPM and the
// composite attester over both.
type machine struct {
	plat *sevsnptest.Platform
	tpm  *tpm.Attester
	comp *acomposite.Attester
}

func newMachine(t *testing.T, a *tpm.Attester) *machine {
	t.Helper()
	m := &machine{plat: sevsnptest.NewPlatform(t), tpm: a}
	var err error
	m.comp, err = acomposite.New(&acomposite.Config{
		Anchor: m.plat.TSMAttester(t, nil, nil),
		Items:  []acomposite.Item{{Label: acomposite.VTPMLabel, Attester: a, Key: a.AKPublic()}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// swtpmAttester is a TPM attester on a fresh swtpm process (machine B's
// vTPM), quoting PCRs 0 and 7 like openTPM's.
func swtpmAttester(t *testing.T) *tpm.Attester {
	t.Helper()
	sw := tpmtest.StartSwtpm(t, tpmtest.SwtpmOptions{})
	ctx := context.Background()
	tr, err := tpm.DialSwtpm(ctx, sw.Network, sw.Addr)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tpm.Open(tr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	a, err := tpm.NewAttester(ctx, conn, &tpm.Config{PCRs: []int{0, 7}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(context.Background()) })
	return a
}

// compositeVerifier trusts both test platforms (they share go-sev-guest's
// test roots) with the test guest's measurement, and the vTPM's AK only
// through the anchor; PCRs 0 and 7 must be zero (nothing measured).
func compositeVerifier(t *testing.T, plat *sevsnptest.Platform, mod func(*vtpm.Config)) *vcomposite.Verifier {
	t.Helper()
	zero := make([]byte, 32)
	cfg := &vtpm.Config{PCRPolicy: map[int][][]byte{0: {zero}, 7: {zero}}}
	if mod != nil {
		mod(cfg)
	}
	kind, err := vtpm.NewBoundAK(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v, err := vcomposite.New(&vcomposite.Config{
		Anchor: plat.Verifier(t, vsevsnp.Policy{}),
		Bound:  []vcomposite.Bound{{Label: acomposite.VTPMLabel, Kind: kind}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// attestFunc is an attester made of a function (the misbehaving ones).
type attestFunc func(ctx context.Context, ch attester.Challenge) ([]byte, error)

func (f attestFunc) Attest(ctx context.Context, ch attester.Challenge) ([]byte, error) {
	return f(ctx, ch)
}

// items decodes a genuine composite and returns its items by label.
func items(t *testing.T, b []byte) map[string]*cmw.CMW {
	t.Helper()
	c, err := cmw.Decode(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*cmw.CMW{}
	for _, it := range c.Items() {
		out[it.Label.String()] = it.CMW
	}
	return out
}

// collection builds a composite-typed collection of the given items, the
// way a peer that splices genuine items would.
func collection(t *testing.T, labelled map[string]*cmw.CMW) []byte {
	t.Helper()
	col, err := cmw.NewCollection(acomposite.CollectionType)
	if err != nil {
		t.Fatal(err)
	}
	for l, c := range labelled {
		if err := col.Add(cmw.TextLabel(l), c); err != nil {
			t.Fatal(err)
		}
	}
	b, err := col.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The composite of one machine is accepted end to end; the result merges
// both items, names the anchor's machine and the vTPM, and ties the EA key
// as strongly as the vTPM does (here: certified in the TPM).
func TestCompositeAccepted(t *testing.T) {
	a := newMachine(t, openTPM(t))
	key := newKey(t, a.tpm)
	p := expattest.NewPKI(t)
	srvCert := p.Issue(t, expattest.ServerName, key)
	rec := &expattest.Recorder{Attester: a.comp}
	srv, cli := expattest.TLSPair(t, p, srvCert, nil)
	s, c, serr, cerr := expattest.AttestedPair(t, srv, cli,
		&expat.Config{Attester: rec, Certificate: &srvCert},
		&expat.Config{RequirePeerAttestation: true, Verifier: compositeVerifier(t, a.plat, func(c *vtpm.Config) { c.RequireKeyAttestation = true }),
			MinKeyBinding:    verifier.KeyCertified,
			AllowedPlatforms: []verifier.PlatformID{{Kind: "sev-snp.chip-id", Value: a.plat.ChipID[:]}}})
	if serr != nil || cerr != nil {
		t.Fatalf("setup: server %v, client %v", serr, cerr)
	}
	res := c.PeerAttestation().Result
	if res.Technology != vsevsnp.Technology+"+"+vtpm.Technology || res.MediaType != acomposite.CollectionType ||
		res.Status != verifier.TierAffirming || res.KeyBinding != verifier.KeyCertified {
		t.Fatalf("result %+v", res)
	}
	names := map[string][]byte{}
	for _, m := range res.Measurements {
		names[m.Name] = m.Value
	}
	if !bytes.Equal(names["tee/MEASUREMENT"], sevsnptest.Measurement()) || names["vtpm/PCR7/sha256"] == nil {
		t.Errorf("measurements %v", res.Measurements)
	}
	if res.Claims["vtpm/ak-trust"] != "anchor" || res.Claims["tee/chip_id"] != hex.EncodeToString(a.plat.ChipID[:]) {
		t.Errorf("claims %v", res.Claims)
	}
	var ids []string
	for _, id := range res.PlatformIDs {
		ids = append(ids, id.Kind)
	}
	if len(ids) != 3 || ids[0] != "sev-snp.chip-id" || ids[2] != "tpm.ak-name" {
		t.Errorf("platform IDs %v", ids)
	}
	// What went over the wire: the anchor's REPORT_DATA is the commitment to
	// the vTPM's AK, not the channel's challenge.
	sent, _ := rec.Last(t)
	ev := sevsnptest.EvidenceOf(t, itemBytes(t, items(t, sent)["tee"]))
	if want := a.comp.Commitment(); [64]byte(ev.Report[0x50:0x90]) != want {
		t.Error("the report does not commit to the vTPM's AK")
	}
	expattest.Exchange(t, c, s)

	// The same vTPM quote alone, with its AK not pinned, is not trusted:
	// the trust in the AK comes from the anchor.
	alone, err := vtpm.New(&vtpm.Config{PCRPolicy: map[int][][]byte{0: {make([]byte, 32)}, 7: {make([]byte, 32)}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = expattest.Connect(t, p, attestFunc(func(ctx context.Context, ch attester.Challenge) ([]byte, error) {
		return a.tpm.Attest(ctx, ch)
	}), alone)
	expattest.WantRejected(t, err, verifier.CheckAK)
}

func itemBytes(t *testing.T, c *cmw.CMW) []byte {
	t.Helper()
	b, err := c.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Attacks on the links, each built from genuine items of two machines (or
// of two connections), each rejected with its precise check.
func TestCompositeRejected(t *testing.T) {
	a := newMachine(t, openTPM(t))
	b := newMachine(t, swtpmAttester(t))
	eaKey := newKey(t, a.tpm)

	// pick splices the items of machine A's and machine B's composites,
	// both made for this connection's challenge.
	pick := func(tee, vtpmFrom *machine) attester.Attester {
		return attestFunc(func(ctx context.Context, ch attester.Challenge) ([]byte, error) {
			ta, err := tee.comp.Attest(ctx, ch)
			if err != nil {
				return nil, err
			}
			tb, err := vtpmFrom.comp.Attest(ctx, ch)
			if err != nil {
				return nil, err
			}
			return collection(t, map[string]*cmw.CMW{"tee": items(t, ta)["tee"], "vtpm": items(t, tb)["vtpm"]}), nil
		})
	}
	// replay presents the composite made for the first connection it saw.
	var (
		mu     sync.Mutex
		replay []byte
	)
	replaying := attestFunc(func(ctx context.Context, ch attester.Challenge) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		if replay == nil {
			var err error
			if replay, err = a.comp.Attest(ctx, ch); err != nil {
				return nil, err
			}
		}
		return replay, nil
	})
	if _, err := expattest.Connect(t, expattest.NewPKI(t), replaying, compositeVerifier(t, a.plat, nil)); err != nil {
		t.Fatalf("the first connection of the replaying attester: %v", err)
	}
	// edit makes machine A's genuine composite and changes its items.
	edit := func(f func(map[string]*cmw.CMW) []byte) attester.Attester {
		return attestFunc(func(ctx context.Context, ch attester.Challenge) ([]byte, error) {
			g, err := a.comp.Attest(ctx, ch)
			if err != nil {
				return nil, err
			}
			return f(items(t, g)), nil
		})
	}
	dup := func(m map[string]*cmw.CMW) []byte {
		// A CBOR map naming "vtpm" twice: package cmw refuses duplicate
		// keys, so no encoder of ours can write it.
		enc := func(v any) []byte {
			out, err := cbor.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			return out
		}
		build := func(labels ...string) []byte {
			out := []byte{0xa0 + byte(len(labels)) + 1} // in deterministic key order
			for _, l := range labels {
				out = append(out, enc(l)...)
				out = append(out, itemBytes(t, m[l])...)
			}
			out = append(out, enc("__cmwc_t")...)
			return append(out, enc(acomposite.CollectionType)...)
		}
		// The control: written once, the same construction decodes.
		if _, err := cmw.Decode(build("tee", "vtpm"), nil); err != nil {
			t.Fatalf("the hand-built composite does not decode: %v", err)
		}
		return build("tee", "vtpm", "vtpm")
	}

	for _, tc := range []struct {
		name  string
		att   attester.Attester
		v     *vcomposite.Verifier
		check verifier.Check
		cause error
	}{
		{"machine B's report with machine A's vTPM quote", pick(b, a), compositeVerifier(t, a.plat, nil), verifier.CheckLink, nil},
		{"machine A's report with machine B's vTPM quote", pick(a, b), compositeVerifier(t, a.plat, nil), verifier.CheckLink, nil},
		{"the vTPM quote of another connection (replay)", replaying, compositeVerifier(t, a.plat, nil), verifier.CheckChallenge, nil},
		{"vTPM item missing", edit(func(m map[string]*cmw.CMW) []byte {
			return collection(t, map[string]*cmw.CMW{"tee": m["tee"]})
		}), compositeVerifier(t, a.plat, nil), verifier.CheckFormat, nil},
		{"anchor missing", edit(func(m map[string]*cmw.CMW) []byte {
			return collection(t, map[string]*cmw.CMW{"vtpm": m["vtpm"]})
		}), compositeVerifier(t, a.plat, nil), verifier.CheckFormat, nil},
		{"vTPM item duplicated under its label", edit(dup), compositeVerifier(t, a.plat, nil), verifier.CheckFormat, cmw.ErrMalformed},
		{"vTPM item duplicated under another label", edit(func(m map[string]*cmw.CMW) []byte {
			return collection(t, map[string]*cmw.CMW{"tee": m["tee"], "vtpm": m["vtpm"], "vtpm2": m["vtpm"]})
		}), compositeVerifier(t, a.plat, nil), verifier.CheckFormat, nil},
		{"items under each other's labels", edit(func(m map[string]*cmw.CMW) []byte {
			return collection(t, map[string]*cmw.CMW{"tee": m["vtpm"], "vtpm": m["tee"]})
		}), compositeVerifier(t, a.plat, nil), verifier.CheckFormat, cmw.ErrUnexpected},
		{"the vTPM quote alone", a.tpm, compositeVerifier(t, a.plat, nil), verifier.CheckFormat, nil},
		{"the anchor's own policy: measurement", a.comp, func() *vcomposite.Verifier {
			kind, err := vtpm.NewBoundAK(&vtpm.Config{AcceptAnyPCRs: true})
			if err != nil {
				t.Fatal(err)
			}
			v, err := vcomposite.New(&vcomposite.Config{
				Anchor: a.plat.Verifier(t, vsevsnp.Policy{Measurements: [][]byte{bytes.Repeat([]byte{0xee}, 48)}}),
				Bound:  []vcomposite.Bound{{Label: "vtpm", Kind: kind}}})
			if err != nil {
				t.Fatal(err)
			}
			return v
		}(), verifier.CheckMeasurement, nil},
		{"the vTPM's own policy: PCR", a.comp, compositeVerifier(t, a.plat, func(c *vtpm.Config) {
			c.PCRPolicy = map[int][][]byte{7: {bytes.Repeat([]byte{0xee}, 32)}}
		}), verifier.CheckPCR, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := expattest.NewPKI(t)
			srvCert := p.Issue(t, expattest.ServerName, eaKey)
			srv, cli := expattest.TLSPair(t, p, srvCert, nil)
			_, c, _, cerr := expattest.AttestedPair(t, srv, cli,
				&expat.Config{Attester: tc.att, Certificate: &srvCert},
				&expat.Config{RequirePeerAttestation: true, Verifier: tc.v})
			if cerr == nil {
				t.Fatal("client accepted the server's composite")
			}
			expattest.WantRejected(t, cerr, tc.check)
			if tc.cause != nil && !errors.Is(cerr, tc.cause) {
				t.Errorf("got %v, want a cause matching %v", cerr, tc.cause)
			}
			expattest.WantNoData(t, c)
		})
	}

	// The controls: each machine's own composite is accepted.
	for name, m := range map[string]*machine{"A": a, "B": b} {
		if _, err := expattest.Connect(t, expattest.NewPKI(t), m.comp, compositeVerifier(t, m.plat, nil)); err != nil {
			t.Errorf("machine %s's own composite: %v", name, err)
		}
	}
}

// verifier.Dispatch hands a collection of the composite's type to the
// composite Verifier as a whole, beside plain records; routed item by item
// (AllowCollections, each item against the channel), a composite is
// refused, since its anchor is not bound to the channel.
func TestCompositeDispatch(t *testing.T) {
	a := newMachine(t, openTPM(t))
	p := expattest.NewPKI(t)
	d := &verifier.Dispatch{
		Verifiers:   map[string]verifier.Verifier{cmw.MediaTypeSEVSNP: a.plat.Verifier(t, vsevsnp.Policy{})},
		Collections: map[string]verifier.Verifier{acomposite.CollectionType: compositeVerifier(t, a.plat, nil)},
	}
	att, err := expattest.Connect(t, p, a.comp, d)
	if err != nil {
		t.Fatalf("composite through Dispatch: %v", err)
	}
	if att.Result.MediaType != acomposite.CollectionType || att.Result.Claims["vtpm/ak-trust"] != "anchor" {
		t.Fatalf("result %+v", att.Result)
	}
	if att, err = expattest.Connect(t, p, a.plat.TSMAttester(t, nil, nil), d); err != nil || att.Result.Technology != vsevsnp.Technology {
		t.Fatalf("plain SEV-SNP through the same Dispatch: %v", err)
	}

	zero := make([]byte, 32)
	pinned, err := vtpm.New(&vtpm.Config{TrustedAKs: []crypto.PublicKey{a.tpm.AKPublicKey()},
		PCRPolicy: map[int][][]byte{0: {zero}, 7: {zero}}})
	if err != nil {
		t.Fatal(err)
	}
	oneByOne := &verifier.Dispatch{AllowCollections: true, Verifiers: map[string]verifier.Verifier{
		cmw.MediaTypeSEVSNP: a.plat.Verifier(t, vsevsnp.Policy{}), cmw.MediaTypeTPM2: pinned}}
	_, err = expattest.Connect(t, p, a.comp, oneByOne)
	expattest.WantRejected(t, err, verifier.CheckChallenge)
}

// The anchor vouches for a vTPM only if the report comes from where the
// vTPM lives (VMPL 0, the SVSM): a guest kernel at VMPL 2 can ask for a
// report committing to any key. The attack: software forges a whole vTPM
// (an "AK" that is a software key, a quote over this channel's challenge,
// a TPM2_Certify of the EA key) and gets a genuine VMPL 2 report committing
// to it. The anchor's default policy (VMPL 0 only) refuses it (CheckVMPL);
// a relying party that accepts VMPL 2 reports for its anchor would accept
// the forgery, which is why the VMPL policy is part of the link.
func TestCompositeForgedVTPM(t *testing.T) {
	plat := sevsnptest.NewPlatform(t)
	ak, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ea, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	akPub := tpm2.Marshal(tpmtest.ECCPublic(&ak.PublicKey, true))
	forgedVTPM := attestFunc(func(ctx context.Context, ch attester.Challenge) ([]byte, error) {
		qd, err := ch.QualifyingData32()
		if err != nil {
			return nil, err
		}
		return tpmtest.ForgedBundle(ak, &ea.PublicKey, qd, nil)
	})
	forger, err := acomposite.New(&acomposite.Config{
		Anchor: plat.TSMAttester(t, nil, &asevsnp.Options{VMPL: 2}),
		Items:  []acomposite.Item{{Label: acomposite.VTPMLabel, Attester: forgedVTPM, Key: akPub}},
	})
	if err != nil {
		t.Fatal(err)
	}
	newVerifier := func(vmpls []uint32) *vcomposite.Verifier {
		kind, err := vtpm.NewBoundAK(&vtpm.Config{PCRPolicy: map[int][][]byte{7: {make([]byte, 32)}}, RequireKeyAttestation: true})
		if err != nil {
			t.Fatal(err)
		}
		v, err := vcomposite.New(&vcomposite.Config{Anchor: plat.Verifier(t, vsevsnp.Policy{VMPLs: vmpls}),
			Bound: []vcomposite.Bound{{Label: acomposite.VTPMLabel, Kind: kind}}})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	p := expattest.NewPKI(t)
	connect := func(v verifier.Verifier) error {
		cert := p.Issue(t, expattest.ServerName, ea)
		srv, cli := expattest.TLSPair(t, p, cert, nil)
		_, c, _, cerr := expattest.AttestedPair(t, srv, cli,
			&expat.Config{Attester: forger, Certificate: &cert},
			&expat.Config{RequirePeerAttestation: true, Verifier: v})
		if cerr != nil {
			expattest.WantNoData(t, c)
		}
		return cerr
	}
	expattest.WantRejected(t, connect(newVerifier(nil)), verifier.CheckVMPL)
	if err := connect(newVerifier([]uint32{0, 2})); err != nil {
		t.Fatalf("with VMPL 2 allowed, the forged vTPM was expected to pass (the VMPL policy is the link's guard): %v", err)
	}
}
