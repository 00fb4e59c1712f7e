package expat

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/ear"
)

// passportKit is a local Verifier (the test kit's appraisal) that issues
// EARs, and the relying party's EAR checker that trusts its key.
func passportKit(t *testing.T, k *kit, issued func() time.Time) (*ear.PassportAttester, *ear.Verifier) {
	t.Helper()
	vkey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	iss := &ear.Issuer{Appraiser: k.ver, Key: vkey, KeyID: "local-verifier", Name: "go-expat local verifier", Time: issued}
	return &ear.PassportAttester{Evidence: k.att, Issuer: iss},
		earVerifier(t, &ear.Config{Keys: []ear.TrustedKey{{ID: "local-verifier", Key: &vkey.PublicKey}}, Issuer: "go-expat local verifier"})
}

func earVerifier(t *testing.T, cfg *ear.Config) *ear.Verifier {
	t.Helper()
	v, err := ear.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestPassportModel: the server presents an Attestation Result (EAR) for
// its Evidence, issued by a Verifier the client trusts and bound to this
// connection's challenge through eat_nonce.
func TestPassportModel(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	pa, ev := passportKit(t, k, nil)
	srv, cli := tlsPair(t, p, tlsOpts{})
	_, c, serr, cerr := attestedPair(t, srv, cli,
		&Config{Attester: pa, Certificate: &p.server},
		&Config{RequirePeerAttestation: true, Verifier: ev})
	if serr != nil || cerr != nil {
		t.Fatalf("setup: %v %v", serr, cerr)
	}
	att := c.PeerAttestation()
	if att.Result.Model != verifier.Passport || len(att.Result.EAR) == 0 || att.Result.Status != verifier.TierAffirming {
		t.Fatalf("result %+v", att.Result)
	}
}

// TestPassportAttacks covers T12 for Attestation Results: a stale EAR, an
// EAR bound to another connection, and one from an untrusted Verifier.
func TestPassportAttacks(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	t.Run("stale", func(t *testing.T) {
		pa, ev := passportKit(t, k, func() time.Time { return time.Now().Add(-time.Hour) })
		srv, cli := tlsPair(t, p, tlsOpts{})
		_, _, _, cerr := attestedPair(t, srv, cli, &Config{Attester: pa, Certificate: &p.server},
			&Config{RequirePeerAttestation: true, Verifier: ev})
		if !rejectedCheck(verifier.CheckAge)(cerr) {
			t.Fatalf("stale EAR: %v", cerr)
		}
	})
	t.Run("bound to another connection", func(t *testing.T) {
		pa, ev := passportKit(t, k, nil)
		rec := &recordingAttester{inner: pa}
		srv, cli := tlsPair(t, p, tlsOpts{})
		if _, _, serr, cerr := attestedPair(t, srv, cli, &Config{Attester: rec, Certificate: &p.server},
			&Config{RequirePeerAttestation: true, Verifier: ev}); serr != nil || cerr != nil {
			t.Fatal(serr, cerr)
		}
		srv, cli = tlsPair(t, p, tlsOpts{})
		_, _, _, cerr := attestedPair(t, srv, cli, &Config{Attester: rec, Certificate: &p.server},
			&Config{RequirePeerAttestation: true, Verifier: ev})
		if !rejectedCheck(verifier.CheckNonce)(cerr) {
			t.Fatalf("replayed EAR: %v", cerr)
		}
	})
	t.Run("untrusted verifier", func(t *testing.T) {
		pa, _ := passportKit(t, k, nil)
		_, other := passportKit(t, k, nil)
		srv, cli := tlsPair(t, p, tlsOpts{})
		_, _, _, cerr := attestedPair(t, srv, cli, &Config{Attester: pa, Certificate: &p.server},
			&Config{RequirePeerAttestation: true, Verifier: other})
		if !errors.Is(cerr, verifier.ErrRejected) {
			t.Fatalf("EAR from an untrusted Verifier: %v", cerr)
		}
	})
}

// TestPassportKeyAttestation: a passport tied to the EA key rather than to
// the connection's nonce (Veraison's key-attestation extension, akpub = the
// EA end-entity SPKI), accepted only by a relying party whose policy allows
// key binding, and only for the key it names.
func TestPassportKeyAttestation(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	vkey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	iss := &ear.Issuer{Appraiser: k.ver, Key: vkey, KeyAttestation: true}
	trusted := []ear.TrustedKey{{Key: &vkey.PublicKey}}
	for _, tc := range []struct {
		name     string
		eaKey    *tls.Certificate // the key the EAR names
		bindings ear.Binding
		want     func(error) bool
	}{
		{"key binding accepted", &p.server, ear.BindKey, func(err error) bool { return err == nil }},
		{"nonce-only policy still needs the nonce, which matches", &p.server, ear.BindNonce, func(err error) bool { return err == nil }},
		{"EAR names another key", &p.other, ear.BindKey, rejectedCheck(verifier.CheckKey)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pa := &ear.PassportAttester{Evidence: k.att, Issuer: iss, SPKI: spki(t, tc.eaKey), PublicKey: tc.eaKey.Leaf.PublicKey}
			srv, cli := tlsPair(t, p, tlsOpts{})
			_, c, _, cerr := attestedPair(t, srv, cli, &Config{Attester: pa, Certificate: &p.server},
				&Config{RequirePeerAttestation: true, Verifier: earVerifier(t, &ear.Config{Keys: trusted, Bindings: tc.bindings})})
			if !tc.want(cerr) {
				t.Fatalf("got %v", cerr)
			}
			if cerr == nil && c.PeerAttestation().Result.Model != verifier.Passport {
				t.Fatal("not a passport result")
			}
		})
	}
}

// TestLegacyBinderLabel: the compatibility option interoperates when both
// peers choose it, and a peer on the current label rejects Evidence bound
// with an old one.
func TestLegacyBinderLabel(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	for _, tc := range []struct {
		name           string
		server, client string
		ok             bool
	}{
		{"both on -04", "", "", true},
		{"both on the -02 label", LegacyLabelDraft02, LegacyLabelDraft02, true},
		{"attester on -02, relying party on -04", LegacyLabelDraft02, "", false},
		{"attester on -04, relying party on -01", "", LegacyLabelDraft01, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := tlsPair(t, p, tlsOpts{})
			_, _, _, cerr := attestedPair(t, srv, cli,
				&Config{Attester: k.att, Certificate: &p.server, LegacyBinderLabel: tc.server},
				&Config{RequirePeerAttestation: true, Verifier: k.ver, LegacyBinderLabel: tc.client})
			if tc.ok != (cerr == nil) {
				t.Fatalf("got %v", cerr)
			}
			if !tc.ok && !rejectedCheck(verifier.CheckChallenge)(cerr) {
				t.Fatalf("got %v, want a challenge rejection", cerr)
			}
		})
	}
	if _, err := Server(nil, &Config{LegacyBinderLabel: "Attestation-ish"}); err == nil {
		t.Fatal("an arbitrary label was accepted")
	}
}
