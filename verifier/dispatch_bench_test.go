package verifier_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/expat/expattest/testkit"
	"github.com/attested-tls/go-expat/verifier"
)

// BenchmarkDispatchCollection: Dispatch.Verify of a CMW collection of n
// test-kit Evidence records (decoding the collection and appraising every
// item), against the collection's size; items=1 is a collection of one,
// compare with the single record (items=0).
//
//	go test -run '^$' -bench DispatchCollection ./verifier
func BenchmarkDispatchCollection(b *testing.B) {
	key, err := testkit.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	a := &testkit.Attester{Key: key}
	d := &verifier.Dispatch{
		Verifiers:        map[string]verifier.Verifier{cmw.MediaTypeTestKit: &testkit.Verifier{TrustedKeys: []*ecdsa.PublicKey{&key.PublicKey}}},
		AllowCollections: true,
	}
	bind := sha256.Sum256([]byte("bench"))
	ch := attester.Challenge{Hash: crypto.SHA256, Binding: bind[:], AIKPubHash: bind[:]}
	exp := &verifier.Expected{Challenge: ch}
	ctx := context.Background()
	ev, err := a.Attest(ctx, ch)
	if err != nil {
		b.Fatal(err)
	}
	item, err := cmw.Decode(ev, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{0, 1, 4, 16, 32} {
		in := ev
		if n > 0 {
			col, err := cmw.NewCollection("")
			if err != nil {
				b.Fatal(err)
			}
			for i := range n {
				if err := col.Add(cmw.TextLabel(fmt.Sprintf("item-%d", i)), item); err != nil {
					b.Fatal(err)
				}
			}
			if in, err = col.MarshalCBOR(); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				if _, err := d.Verify(ctx, in, exp); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
