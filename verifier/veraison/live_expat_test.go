//go:build veraison

package veraison_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/attested-tls/go-expat/attester/cca"
	"github.com/attested-tls/go-expat/internal/expattest"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/ear"
	"github.com/attested-tls/go-expat/verifier/veraison"
)

// TestLiveOverAttestedTLS: a CCA realm attests over an attested TLS
// connection and the relying party has the live Veraison appraise it
// (background check), or the realm presents Veraison's EAR (passport)
// that the relying party checks with verifier/ear against Veraison's key.
func TestLiveOverAttestedTLS(t *testing.T) {
	l := setupLive(t, false)
	pk := expattest.NewPKI(t)
	t.Run("background check", func(t *testing.T) {
		att, err := expattest.Connect(t, pk, l.a, l.v)
		if err != nil {
			t.Fatalf("setup: %v", err)
		}
		if att.Result.Model != verifier.BackgroundCheck || att.Result.Technology != "cca" || att.Result.Status != verifier.TierAffirming {
			t.Fatalf("result %+v", att.Result)
		}
	})
	t.Run("background check, changed realm measurement", func(t *testing.T) {
		q := l.p.Clone()
		q.Claims.PersonalizationValue = bytes.Repeat([]byte{0x55}, 64)
		a, err := cca.NewTSMAttester(q.Client(), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = expattest.Connect(t, pk, a, l.v)
		var re *verifier.RejectedError
		if !errors.As(err, &re) || re.Check != verifier.CheckStatus {
			t.Fatalf("got %v, want a status rejection", err)
		}
	})
	t.Run("passport checked by verifier/ear", func(t *testing.T) {
		ev, err := ear.New(&ear.Config{Keys: liveKeys(t)})
		if err != nil {
			t.Fatal(err)
		}
		att, err := expattest.Connect(t, pk, &veraison.Passport{Evidence: l.a, Client: l.c}, ev)
		if err != nil {
			t.Fatalf("setup: %v", err)
		}
		if att.Result.Model != verifier.Passport || att.Result.Status != verifier.TierAffirming {
			t.Fatalf("result %+v", att.Result)
		}
	})
	t.Run("stale platform state: changed firmware via passport", func(t *testing.T) {
		q := l.p.Clone()
		q.Claims.Software[0].Value = bytes.Repeat([]byte{0x88}, 32)
		a, _ := cca.NewTSMAttester(q.Client(), nil)
		_, err := expattest.Connect(t, pk, &veraison.Passport{Evidence: a, Client: l.c}, l.v)
		if err == nil {
			t.Fatal("accepted a passport for changed firmware")
		}
	})
}
