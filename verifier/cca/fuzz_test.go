package cca_test

import (
	"testing"

	"github.com/attested-tls/go-expat/attester/cca/ccatest"
	"github.com/attested-tls/go-expat/verifier/cca"
)

func seedToken(t testing.TB) []byte {
	p, err := ccatest.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := p.Token(make([]byte, 64))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// No strict prefix of a valid token parses.
func TestParseTokenPrefixes(t *testing.T) {
	tok := seedToken(t)
	if _, err := cca.ParseToken(tok); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(tok); i++ {
		if got, err := cca.ParseToken(tok[:i]); err == nil || got != nil {
			t.Fatalf("prefix of %d/%d bytes parsed", i, len(tok))
		}
	}
}

func FuzzParseToken(f *testing.F) {
	tok := seedToken(f)
	f.Add(tok)
	f.Add([]byte{0xd9, 0x01, 0x8f, 0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := cca.ParseToken(b)
		if err != nil {
			if got != nil {
				t.Fatal("result with error")
			}
			return
		}
		// A parsed token is self-consistent and re-parses to the same bytes.
		again, err := cca.ParseToken(got.Raw)
		if err != nil || string(again.Raw) != string(b) {
			t.Fatalf("re-parse: %v", err)
		}
		if _, err := got.Realm.GetChallenge(); err != nil {
			t.Fatalf("parsed token without a valid challenge: %v", err)
		}
	})
}
