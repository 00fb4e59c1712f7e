package wire_test

import (
	"testing"

	"github.com/fxamacker/cbor/v2"
	cose "github.com/veraison/go-cose"

	"github.com/attested-tls/go-expat/attester/cca/ccatest"
	"github.com/attested-tls/go-expat/attester/cca/wire"
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
	if _, err := wire.ParseToken(tok); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(tok); i++ {
		if got, err := wire.ParseToken(tok[:i]); err == nil || got != nil {
			t.Fatalf("prefix of %d/%d bytes parsed", i, len(tok))
		}
	}
}

func FuzzParseToken(f *testing.F) {
	tok := seedToken(f)
	f.Add(tok)
	f.Add([]byte{0xd9, 0x01, 0x8f, 0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := wire.ParseToken(b)
		if err != nil {
			if got != nil {
				t.Fatal("result with error")
			}
			return
		}
		// A parsed token is self-consistent and re-parses to the same bytes.
		again, err := wire.ParseToken(got.Raw)
		if err != nil || string(again.Raw) != string(b) {
			t.Fatalf("re-parse: %v", err)
		}
		if _, err := got.Realm.GetChallenge(); err != nil {
			t.Fatalf("parsed token without a valid challenge: %v", err)
		}
	})
}

// A realm public key whose COSE_Key curve is not an integer made go-cose
// v1.3.0 (through ccatoken) panic; ParseToken rejects it.
func TestParseTokenRAKCurveNotInteger(t *testing.T) {
	tok, err := wire.ParseToken(seedToken(t))
	if err != nil {
		t.Fatal(err)
	}
	msg := cose.NewSign1Message()
	if err := msg.UnmarshalCBOR(tok.RealmToken); err != nil {
		t.Fatal(err)
	}
	var claims map[int64]cbor.RawMessage
	if err := cbor.Unmarshal(msg.Payload, &claims); err != nil {
		t.Fatal(err)
	}
	for _, crv := range []any{"P-384", cbor.SimpleValue(19), []byte{2}} {
		key, _ := cbor.Marshal(map[int64]any{1: 2, -1: crv, -2: make([]byte, 48), -3: make([]byte, 48)})
		claims[44237], _ = cbor.Marshal(key)
		msg.Payload, _ = cbor.Marshal(claims)
		rt, err := msg.MarshalCBOR()
		if err != nil {
			t.Fatal(err)
		}
		bad, _ := cbor.Marshal(cbor.Tag{Number: 399, Content: map[uint64][]byte{44234: tok.PlatformToken, 44241: rt}})
		if got, err := wire.ParseToken(bad); err == nil || got != nil {
			t.Fatalf("curve %v: parsed", crv)
		}
	}
}
