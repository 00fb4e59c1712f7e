package composite

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/google/go-tpm/tpm2"

	acomposite "github.com/attested-tls/go-expat/attester/composite"
	"github.com/attested-tls/go-expat/attester/tpm/bundle"
	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/internal/checktest"
	"github.com/attested-tls/go-expat/internal/tpmtest"
	"github.com/attested-tls/go-expat/verifier"
	vsevsnp "github.com/attested-tls/go-expat/verifier/sevsnp"
	vtpm "github.com/attested-tls/go-expat/verifier/tpm"
)

var _ Kind = (*vtpm.BoundAK)(nil)

// akPublic is the TPMT_PUBLIC of an AK of the shape verifier/tpm accepts,
// with a fresh P-256 point (the parser's input; it never signs).
func akPublic(t testing.TB) []byte {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub := tpmtest.ECCPublic(&k.PublicKey, true)
	return tpm2.Marshal(pub)
}

// newTestVerifier has a real anchor Verifier (AMD's roots) and the vTPM
// Kind; parse never reaches either's appraisal.
func newTestVerifier(t testing.TB) *Verifier {
	t.Helper()
	snp, err := vsevsnp.New(&vsevsnp.Config{Policy: vsevsnp.Policy{AcceptAnyMeasurement: true}})
	if err != nil {
		t.Fatal(err)
	}
	kind, err := vtpm.NewBoundAK(&vtpm.Config{AcceptAnyPCRs: true})
	if err != nil {
		t.Fatal(err)
	}
	v, err := New(&Config{Anchor: snp, Bound: []Bound{{Label: acomposite.VTPMLabel, Kind: kind}}})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// sample is a composite-shaped collection: a SEV-SNP-typed record and a
// vTPM record with a well-formed bundle (not a genuine quote).
func sample(t testing.TB, ak []byte) []byte {
	t.Helper()
	bv, err := bundle.Marshal(&bundle.Bundle{Quote: []byte{1}, QuoteSig: []byte{2}, AKPublic: ak, PCRAlg: 0x000B,
		PCRs: map[uint32][]byte{7: make([]byte, 32)}})
	if err != nil {
		t.Fatal(err)
	}
	col, err := cmw.NewCollection(acomposite.CollectionType)
	if err != nil {
		t.Fatal(err)
	}
	for label, rec := range map[string][2]any{
		"tee":  {cmw.MediaTypeSEVSNP, []byte("report")},
		"vtpm": {cmw.MediaTypeTPM2, bv},
	} {
		r, err := cmw.NewRecord(rec[0].(string), rec[1].([]byte), cmw.Evidence)
		if err != nil {
			t.Fatal(err)
		}
		if err := col.Add(cmw.TextLabel(label), r); err != nil {
			t.Fatal(err)
		}
	}
	b, err := col.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParse(t *testing.T) {
	ak := akPublic(t)
	v := newTestVerifier(t)
	p, err := v.parse(sample(t, ak))
	if err != nil {
		t.Fatal(err)
	}
	if p.anchor.MediaType != cmw.MediaTypeSEVSNP || len(p.keys) != 1 || !bytes.Equal(p.keys[0], ak) {
		t.Fatalf("parsed %+v", p)
	}
	// A collection of another type is not a composite.
	col, _ := cmw.NewCollection("tag:example.com,2026:other")
	r, _ := cmw.NewRecord(cmw.MediaTypeSEVSNP, []byte("x"), cmw.Evidence)
	_ = col.Add(cmw.TextLabel("tee"), r)
	other, _ := col.MarshalCBOR()
	_, err = v.parse(other)
	checktest.Rejected(t, err, verifier.CheckFormat)
}

// The zero Verifier (and a nil one) rejects; New refuses what cannot be a
// composite.
func TestZeroValues(t *testing.T) {
	b := sample(t, akPublic(t))
	exp := &verifier.Expected{}
	for _, v := range []*Verifier{nil, {}} {
		res, err := v.Verify(context.Background(), b, exp)
		checktest.Rejected(t, err, verifier.CheckFormat)
		if res != nil {
			t.Fatal("result with an error")
		}
	}
	tv := newTestVerifier(t)
	kind := tv.bound[0].Kind
	for name, cfg := range map[string]*Config{
		"nil":                  nil,
		"zero":                 {},
		"no bound items":       {Anchor: tv.anchor},
		"nil kind":             {Anchor: tv.anchor, Bound: []Bound{{Label: "vtpm"}}},
		"repeated label":       {Anchor: tv.anchor, Bound: []Bound{{Label: "vtpm", Kind: kind}, {Label: "vtpm", Kind: kind}}},
		"the anchor's label":   {Anchor: tv.anchor, Bound: []Bound{{Label: "tee", Kind: kind}}},
		"empty label":          {Anchor: tv.anchor, Bound: []Bound{{Kind: kind}}},
		"anchor label clashes": {Anchor: tv.anchor, AnchorLabel: "vtpm", Bound: []Bound{{Label: "vtpm", Kind: kind}}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted", name)
		}
	}
}

func TestBoundAKRefusesOwnTrust(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vtpm.NewBoundAK(&vtpm.Config{AcceptAnyPCRs: true, TrustedAKs: []crypto.PublicKey{k.Public()}}); err == nil {
		t.Error("NewBoundAK accepted a pinned AK of its own")
	}
	if _, err := vtpm.NewBoundAK(&vtpm.Config{AcceptAnyPCRs: true, PCRPolicy: map[int][][]byte{7: {make([]byte, 32)}}}); err == nil {
		t.Error("NewBoundAK accepted a Config that New refuses")
	}
	// A key that is not an AK is refused before any appraisal.
	kind, _ := vtpm.NewBoundAK(&vtpm.Config{AcceptAnyPCRs: true})
	_, err = kind.VerifyBound(context.Background(), cmw.Record{}, []byte{1, 2, 3}, &verifier.Expected{})
	checktest.Rejected(t, err, verifier.CheckAK)
}

// FuzzParse: no panic, nil on error, no strict prefix of an accepted
// composite parses, and what parses names keys the commitment layout
// accepts.
func FuzzParse(f *testing.F) {
	f.Add(sample(f, akPublic(f)))
	v := newTestVerifier(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := v.parse(data)
		if err != nil {
			if p != nil {
				t.Fatal("parsed with an error")
			}
			if !errors.Is(err, verifier.ErrRejected) {
				t.Fatalf("error %v is not a rejection", err)
			}
			return
		}
		for i := 1; i < len(data); i++ {
			if _, err := v.parse(data[:i]); err == nil {
				t.Fatalf("a %d-byte prefix parses", i)
			}
		}
		links := []acomposite.Link{{Label: acomposite.VTPMLabel, Key: p.keys[0]}}
		if _, err := acomposite.Commitment(acomposite.AnchorLabel, links); err != nil {
			t.Fatalf("parsed keys refused by the layout: %v", err)
		}
	})
}
