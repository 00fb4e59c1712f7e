package testkit

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"testing"

	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/verifier"
)

// FuzzVerify feeds arbitrary COSE_Sign1 bytes (wrapped in a test-kit CMW
// record) and arbitrary CMWs to a Verifier trusting the seed key: no panic,
// no result with an error.
func FuzzVerify(f *testing.F) {
	key, err := GenerateKey()
	if err != nil {
		f.Fatal(err)
	}
	ch := challenge(crypto.SHA256, 1)
	good, err := (&Attester{Key: key, Measurements: []verifier.Measurement{{Name: "fw", Value: fw[:]}}}).Attest(context.Background(), ch)
	if err != nil {
		f.Fatal(err)
	}
	c, _ := cmw.Decode(good, nil)
	r, _ := c.Record()
	f.Add(r.Value, false)
	f.Add(good, true)
	v := &Verifier{TrustedKeys: []*ecdsa.PublicKey{&key.PublicKey}}
	exp := &verifier.Expected{Challenge: ch}
	f.Fuzz(func(t *testing.T, b []byte, raw bool) {
		in := b
		if !raw {
			rec, err := cmw.NewRecord(cmw.MediaTypeTestKit, b, cmw.Evidence)
			if err != nil {
				return
			}
			if in, err = rec.Marshal(); err != nil {
				t.Fatal(err)
			}
		}
		res, err := v.Verify(context.Background(), in, exp)
		if (err == nil) == (res == nil) {
			t.Fatalf("result %v with error %v", res, err)
		}
	})
}
