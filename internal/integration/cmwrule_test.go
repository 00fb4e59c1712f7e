package integration_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/attester/sevsnp/sevsnptest"
	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/expat/expattest/testkit"
	"github.com/attested-tls/go-expat/internal/checktest"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/cca"
	"github.com/attested-tls/go-expat/verifier/ear"
	vsevsnp "github.com/attested-tls/go-expat/verifier/sevsnp"
	"github.com/attested-tls/go-expat/verifier/tdx"
	vtpm "github.com/attested-tls/go-expat/verifier/tpm"
	"github.com/attested-tls/go-expat/verifier/veraison"
)

// ruleBackend is one Verifier that takes "one CMW record of media type X".
type ruleBackend struct {
	name string
	mt   string
	ind  cmw.Indicator
	v    verifier.Verifier
	// forwards: records of other types go elsewhere (veraison: to the
	// service), so the other-type rows do not apply.
	forwards bool
}

func ruleBackends(t *testing.T) []ruleBackend {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpmV, err := vtpm.New(&vtpm.Config{TrustedAKs: []crypto.PublicKey{&key.PublicKey}})
	if err != nil {
		t.Fatal(err)
	}
	tdxV, err := tdx.New(&tdx.Config{Policy: tdx.Policy{MRTD: [][]byte{make([]byte, 48)}}})
	if err != nil {
		t.Fatal(err)
	}
	ccaV, err := cca.New(&cca.Config{TrustedKeys: []cca.TrustedKey{{Name: "k", Key: &key.PublicKey}}})
	if err != nil {
		t.Fatal(err)
	}
	earV, err := ear.New(&ear.Config{Keys: []ear.TrustedKey{{Key: &key.PublicKey}}})
	if err != nil {
		t.Fatal(err)
	}
	// A Veraison service that is always down: records that pass the CMW
	// layer end in an unavailable error, never in a cmw one.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	vc, err := veraison.New(&veraison.Config{URL: srv.URL, EARKeys: []ear.TrustedKey{{Key: &key.PublicKey}}, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	return []ruleBackend{
		{name: "tpm", mt: cmw.MediaTypeTPM2, ind: cmw.Evidence, v: tpmV},
		{name: "sevsnp", mt: cmw.MediaTypeSEVSNP, ind: cmw.Evidence, v: sevsnptest.NewPlatform(t).Verifier(t, vsevsnp.Policy{})},
		{name: "tdx", mt: cmw.MediaTypeTDX, ind: cmw.Evidence, v: tdxV},
		{name: "cca", mt: cmw.MediaTypeCCA, ind: cmw.Evidence, v: ccaV},
		{name: "ear", mt: cmw.MediaTypeEAR, ind: cmw.AttestationResults, v: earV},
		{name: "testkit", mt: cmw.MediaTypeTestKit, ind: cmw.Evidence, v: &testkit.Verifier{TrustedKeys: []*ecdsa.PublicKey{&key.PublicKey}}},
		{name: "veraison", mt: cmw.MediaTypeEAR, ind: cmw.AttestationResults, v: veraison.NewVerifier(vc), forwards: true},
	}
}

// TestCMWRecordRuleOnEveryPath feeds the same records through every
// backend, directly and through verifier.Dispatch (as a record and as a
// collection item), and asserts the same typed error: a *RejectedError
// with Check "format" wrapping a *cmw.DecodeError of the same kind. The
// first rows pass the CMW layer (and fail later, for another reason), so
// that the test also shows the rule is not refusing everything.
func TestCMWRecordRuleOnEveryPath(t *testing.T) {
	var ch attester.Challenge
	ch.Hash = crypto.SHA256
	ch.Binding = bytes.Repeat([]byte{1}, 32)
	ch.AIKPubHash = bytes.Repeat([]byte{2}, 32)
	exp := &verifier.Expected{Challenge: ch}
	value := []byte{0x82, 0x01, 0x02} // well-formed CBOR, no backend's Evidence

	rec := func(t *testing.T, mt string, v []byte, ind cmw.Indicator) *cmw.CMW {
		c, err := cmw.NewRecord(mt, v, ind)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	cbor := func(t *testing.T, c *cmw.CMW) []byte {
		b, err := c.MarshalCBOR()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	json := func(t *testing.T, c *cmw.CMW) []byte {
		b, err := c.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	in := func(t *testing.T, item *cmw.CMW) []byte {
		col, _ := cmw.NewCollection("")
		if err := col.Add(cmw.TextLabel("x"), item); err != nil {
			t.Fatal(err)
		}
		return cbor(t, col)
	}

	type row struct {
		name string
		// kind: nil means the record passes the CMW layer.
		kind error
		// dispatch: the row also applies through Dispatch (the input's type
		// routes to this backend); item: also as a collection item.
		dispatch, item bool
		// otherType: the row names another type (not for forwarders).
		otherType bool
		build     func(t *testing.T, b ruleBackend) []byte
	}
	rows := []row{
		{name: "canonical CBOR record", dispatch: true, item: true,
			build: func(t *testing.T, b ruleBackend) []byte { return cbor(t, rec(t, b.mt, value, b.ind)) }},
		{name: "canonical JSON record", dispatch: true,
			build: func(t *testing.T, b ruleBackend) []byte { return json(t, rec(t, b.mt, value, b.ind)) }},
		{name: "no indicator", dispatch: true, item: true,
			build: func(t *testing.T, b ruleBackend) []byte { return cbor(t, rec(t, b.mt, value, 0)) }},
		{name: "CBOR, non-minimal length", kind: cmw.ErrNonCanonical, dispatch: true,
			build: func(t *testing.T, b ruleBackend) []byte {
				good := cbor(t, rec(t, b.mt, value, b.ind))
				if good[1] != 0x78 { // text string, 1-byte length
					t.Fatalf("unexpected head % x", good[:2])
				}
				return append([]byte{good[0], 0x79, 0}, good[2:]...)
			}},
		{name: "JSON with whitespace", kind: cmw.ErrNonCanonical, dispatch: true,
			build: func(t *testing.T, b ruleBackend) []byte {
				return bytes.Replace(json(t, rec(t, b.mt, value, b.ind)), []byte(`",`), []byte(`", `), 1)
			}},
		{name: "oversized", kind: cmw.ErrLimit, dispatch: true,
			build: func(t *testing.T, b ruleBackend) []byte {
				return cbor(t, rec(t, b.mt, make([]byte, cmw.MaxSize), b.ind))
			}},
		{name: "equivalent spelling of the media type", kind: cmw.ErrUnexpected, dispatch: true, item: true,
			build: func(t *testing.T, b ruleBackend) []byte {
				// type/subtype are case-insensitive (RFC 2045); so is
				// Dispatch's lookup, the backends are not.
				typ, params, _ := strings.Cut(b.mt, ";")
				mt := strings.ToUpper(typ)
				if params != "" {
					mt += ";" + params
				}
				if !cmw.EqualMediaTypes(mt, b.mt) {
					t.Fatalf("%q is not equivalent to %q", mt, b.mt)
				}
				return cbor(t, rec(t, mt, value, b.ind))
			}},
		{name: "other indicator", kind: cmw.ErrUnexpected, dispatch: true, item: true,
			build: func(t *testing.T, b ruleBackend) []byte { return cbor(t, rec(t, b.mt, value, cmw.ReferenceValues)) }},
		{name: "indicator with an extra bit", kind: cmw.ErrUnexpected, dispatch: true, item: true,
			build: func(t *testing.T, b ruleBackend) []byte { return cbor(t, rec(t, b.mt, value, b.ind|cmw.Endorsements)) }},
		{name: "other media type", kind: cmw.ErrUnexpected, otherType: true,
			build: func(t *testing.T, b ruleBackend) []byte {
				return cbor(t, rec(t, "application/vnd.example.other", value, b.ind))
			}},
		{name: "typed by a content-format", kind: cmw.ErrUnexpected, otherType: true,
			build: func(t *testing.T, b ruleBackend) []byte {
				return []byte{0x82, 0x19, 0x01, 0x08, 0x43, 0x82, 0x01, 0x02}
			}},
		{name: "collection", kind: cmw.ErrUnexpected, otherType: true,
			build: func(t *testing.T, b ruleBackend) []byte { return in(t, rec(t, b.mt, value, b.ind)) }},
	}

	check := func(t *testing.T, err error, kind error) {
		t.Helper()
		if kind == nil {
			if err == nil {
				t.Fatal("garbage Evidence accepted")
			}
			if errors.Is(err, cmw.ErrMalformed) {
				t.Fatalf("refused by the CMW layer: %v", err)
			}
			return
		}
		checktest.Rejected(t, err, verifier.CheckFormat)
		var de *cmw.DecodeError
		if !errors.As(err, &de) || !errors.Is(err, kind) {
			t.Fatalf("got %v, want a format rejection wrapping a *cmw.DecodeError matching %v", err, kind)
		}
	}
	ctx := context.Background()
	for _, b := range ruleBackends(t) {
		d := &verifier.Dispatch{Verifiers: map[string]verifier.Verifier{b.mt: b.v}}
		dc := &verifier.Dispatch{Verifiers: d.Verifiers, AllowCollections: true}
		for _, r := range rows {
			if r.otherType && b.forwards {
				continue
			}
			t.Run(b.name+"/"+r.name, func(t *testing.T) {
				input := r.build(t, b)
				_, err := b.v.Verify(ctx, input, exp)
				check(t, err, r.kind)
				if r.dispatch {
					_, err := d.Verify(ctx, input, exp)
					check(t, err, r.kind)
				}
				if r.item {
					c, err := cmw.Decode(input, nil)
					if err != nil {
						t.Fatal(err)
					}
					_, err = dc.Verify(ctx, in(t, c), exp)
					check(t, err, r.kind)
				}
			})
		}
	}
}
