package local_test

import (
	"context"
	"crypto"
	"errors"
	"os"
	"testing"

	atpm "github.com/attested-tls/go-expat/attester/tpm"
	"github.com/attested-tls/go-expat/attester/tpm/tpmsim"
	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/ear"
	"github.com/attested-tls/go-expat/verifier/local"
	vtpm "github.com/attested-tls/go-expat/verifier/tpm"
	"github.com/attested-tls/go-expat/verifier/veraison"
)

// TestTPMQuote: a real TPM 2.0 quote (the Microsoft reference TPM,
// simulated in process) appraised by verifier/tpm behind the service, in a
// 32-byte session whose nonce is the quote's qualifyingData; the same
// quote in a 64-byte session, or with another nonce, is rejected.
func TestTPMQuote(t *testing.T) {
	ctx := context.Background()
	sim, err := tpmsim.Open()
	if errors.Is(err, tpmsim.ErrNoCgo) && os.Getenv("CI") != "true" {
		t.Skip(err) // CI builds with cgo: there, a missing simulator is a failure
	}
	if err != nil {
		t.Fatal(err)
	}
	conn, err := atpm.Open(sim, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	att, err := atpm.NewAttester(ctx, conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close(ctx)
	ak, err := vtpm.ParseAKPublic(att.AKPublic())
	if err != nil {
		t.Fatal(err)
	}
	zero := make([]byte, 32) // PCRs of a freshly started simulator
	tv, err := vtpm.New(&vtpm.Config{TrustedAKs: []crypto.PublicKey{ak}, PCRPolicy: map[int][][]byte{0: {zero}, 7: {zero}}})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *local.Config, d *verifier.Dispatch) { d.Verifiers[cmw.MediaTypeTPM2] = tv })
	// verifier/tpm reports "warning" without a PCR policy.
	c, err := veraison.New(&veraison.Config{URL: e.srv.URL, EARKeys: []ear.TrustedKey{{Key: &e.earKey.PublicKey}}, AllowWarning: true, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}

	ch := challenge(t)
	ev, err := att.Attest(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	qd, _ := ch.QualifyingData32()
	a, err := c.Appraise(ctx, ev, qd[:])
	if err != nil {
		t.Fatalf("quote in a 32-byte session: %v", err)
	}
	if st := a.Result.Claims["submod.tpm2.status"]; st != verifier.TierAffirming.String() || a.Result.Status != verifier.TierAffirming {
		t.Fatalf("result %+v", a.Result)
	}

	other, _ := challenge(t).QualifyingData32()
	for name, nonce := range map[string][]byte{"64-byte session": rd64(t, ch), "other nonce": other[:]} {
		_, err := c.Appraise(ctx, ev, nonce)
		var re *verifier.RejectedError
		if !errors.As(err, &re) || re.Check != verifier.CheckStatus {
			t.Errorf("%s: got %v, want a rejection", name, err)
		}
	}
}
