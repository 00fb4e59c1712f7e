package ear

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzVerifyJWT feeds arbitrary tokens to a Verifier that trusts the
// fixture's issuer key: no panic, no result with an error, and no strict
// prefix of an accepted token is accepted.
func FuzzVerifyJWT(f *testing.F) {
	fx := newFixture(f)
	ch := challenge(1)
	good := fx.token(f, ch, nil)
	f.Add(good)
	f.Add(fx.token(f, ch, func(i *Issuer) { i.KeyAttestation = true }))
	f.Add([]byte(strings.SplitN(string(good), ".", 2)[0] + ".e30."))
	f.Add([]byte("e30.e30.e30"))
	cfg := fx.config()
	cfg.Bindings = BindNonce | BindKey
	v := mustNew(cfg)
	exp := fx.expected(ch)
	f.Fuzz(func(t *testing.T, tok []byte) {
		res, err := v.VerifyJWT(context.Background(), tok, exp)
		if err != nil {
			if res != nil {
				t.Fatal("result with an error")
			}
			return
		}
		for i := range len(tok) {
			if r, err := v.VerifyJWT(context.Background(), tok[:i], exp); err == nil || r != nil {
				t.Fatalf("strict prefix of %d bytes accepted", i)
			}
		}
		if _, err := v.Verify(context.Background(), wrap(t, tok), exp); err != nil {
			t.Fatalf("accepted bare, rejected wrapped: %v", err)
		}
	})
}

// FuzzDecodeObject: the strict JSON decoder never panics, accepts only
// what encoding/json also accepts as an object, and never more members
// than encoding/json sees (no duplicates).
func FuzzDecodeObject(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":{"b":[1,{"c":2}]}}`, `{"a":1,"a":2}`, `[1]`, `{"iat":1,"IAT":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeObject(b)
		if err != nil {
			if got != nil {
				t.Fatal("result with an error")
			}
			return
		}
		var m map[string]any
		if err := jsonUnmarshal(b, &m); err != nil {
			t.Fatalf("decodeObject accepted what encoding/json rejects: %v", err)
		}
		if len(m) != len(got) {
			t.Fatalf("%d members, encoding/json sees %d", len(got), len(m))
		}
		// The claims reader never panics on what decodes.
		_, _ = parseClaims(b)
		_, _ = parseHeader(b)
	})
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
