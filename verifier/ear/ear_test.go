package ear

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/expat/expattest/testkit"
	"github.com/attested-tls/go-expat/internal/checktest"
	"github.com/attested-tls/go-expat/verifier"
)

var now = time.Unix(1_800_000_000, 0)

func challenge(seed byte) attester.Challenge {
	return attester.Challenge{Hash: crypto.SHA256, Binding: bytes.Repeat([]byte{seed}, 32), AIKPubHash: bytes.Repeat([]byte{7}, 32)}
}

type fixture struct {
	ak      *ecdsa.PrivateKey // test-kit attestation key
	issKey  *ecdsa.PrivateKey
	eaSPKI  []byte
	issuer  *Issuer
	passAtt *PassportAttester
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ak, _ := testkit.GenerateKey()
	issKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	eaKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, err := x509.MarshalPKIXPublicKey(&eaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{ak: ak, issKey: issKey, eaSPKI: spki}
	f.issuer = &Issuer{
		Appraiser: &testkit.Verifier{TrustedKeys: []*ecdsa.PublicKey{&ak.PublicKey}},
		Key:       issKey,
		Name:      "https://verifier.example",
		Time:      func() time.Time { return now },
	}
	f.passAtt = &PassportAttester{Evidence: &testkit.Attester{Key: ak}, Issuer: f.issuer, SPKI: spki, PublicKey: &eaKey.PublicKey}
	return f
}

// config trusts the fixture's issuer key.
func (f *fixture) config() *Config {
	return &Config{Keys: []TrustedKey{{Key: &f.issKey.PublicKey}}}
}

func (f *fixture) verifier() *Verifier { return mustNew(f.config()) }

func mustNew(cfg *Config) *Verifier {
	v, err := New(cfg)
	if err != nil {
		panic(err)
	}
	return v
}

func (f *fixture) expected(ch attester.Challenge) *verifier.Expected {
	return &verifier.Expected{Challenge: ch, SPKI: f.eaSPKI, Now: now.Add(time.Minute)}
}

func wantCheck(t *testing.T, res *verifier.Result, err error, check verifier.Check) {
	t.Helper()
	if check == 0 {
		if err != nil {
			t.Fatalf("rejected: %v", err)
		}
		return
	}
	if res != nil {
		t.Error("result with an error")
	}
	checktest.Rejected(t, err, check)
}

func TestPassportEndToEnd(t *testing.T) {
	f := newFixture(t)
	ch := challenge(1)
	b, err := f.passAtt.Attest(context.Background(), ch)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cmw.Decode(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := c.Record()
	if rec.MediaType != cmw.MediaTypeEAR || rec.Indicator != cmw.AttestationResults {
		t.Errorf("record %q %v", rec.MediaType, rec.Indicator)
	}
	res, err := f.verifier().Verify(context.Background(), b, f.expected(ch))
	if err != nil {
		t.Fatal(err)
	}
	if res.Model != verifier.Passport || res.Status != verifier.TierAffirming || res.Technology != testkit.Technology ||
		res.Verifier != "https://verifier.example" || !res.AppraisedAt.Equal(now) || !bytes.Equal(res.EAR, rec.Value) ||
		res.TrustVector.InstanceIdentity != 2 || res.MediaType != cmw.MediaTypeEAR {
		t.Errorf("result %+v", res)
	}
}

// token returns a valid EAR JWT for ch issued at iat by f's issuer.
func (f *fixture) token(t testing.TB, ch attester.Challenge, mutate func(*Issuer)) []byte {
	t.Helper()
	iss := *f.issuer
	if mutate != nil {
		mutate(&iss)
	}
	ev, err := (&testkit.Attester{Key: f.ak}).Attest(context.Background(), ch)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := iss.Issue(context.Background(), ev, &verifier.Expected{Challenge: ch, SPKI: f.eaSPKI, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func wrap(t testing.TB, tok []byte) []byte {
	rec, err := cmw.NewRecord(cmw.MediaTypeEAR, tok, cmw.AttestationResults)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := rec.Marshal()
	return b
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// resign decodes tok's claims, lets edit change them (and the header), and
// signs the result with key (ES256) or, for alg "none"/"HS256", by hand.
func resign(t testing.TB, tok []byte, key crypto.Signer, edit func(hdr, claims map[string]any)) []byte {
	t.Helper()
	parts := strings.Split(string(tok), ".")
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	claims := map[string]any{}
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	hdr := map[string]any{"alg": "ES256", "typ": "JWT"}
	edit(hdr, claims)
	payload, _ := json.Marshal(claims)
	switch hdr["alg"] {
	case "none":
		h, _ := json.Marshal(hdr)
		return []byte(b64(h) + "." + b64(payload) + ".")
	case "HS256":
		h, _ := json.Marshal(hdr)
		pub, _ := x509.MarshalPKIXPublicKey(key.Public())
		m := hmac.New(sha256.New, pub)
		m.Write([]byte(b64(h) + "." + b64(payload)))
		return []byte(b64(h) + "." + b64(payload) + "." + b64(m.Sum(nil)))
	}
	jh := jws.NewHeaders()
	for k, v := range hdr {
		if k != "alg" {
			_ = jh.Set(k, v)
		}
	}
	out, err := jws.Sign(payload, jws.WithKey(supportedAlgs[hdr["alg"].(string)], key, jws.WithProtectedHeaders(jh)))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func submod(claims map[string]any) map[string]any {
	for _, v := range claims["submods"].(map[string]any) {
		return v.(map[string]any)
	}
	return nil
}

func TestVerifyRejects(t *testing.T) {
	f := newFixture(t)
	ch := challenge(1)
	good := f.token(t, ch, nil)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edited := func(edit func(hdr, claims map[string]any)) []byte { return resign(t, good, f.issKey, edit) }
	withKeyAtt := f.token(t, ch, func(i *Issuer) { i.KeyAttestation = true })
	tampered := []byte(string(good))
	tampered[len(tampered)/2] ^= 1
	if tampered[len(tampered)/2] == '.' {
		tampered[len(tampered)/2+1] ^= 1
	}

	tests := []struct {
		name  string
		in    []byte // a JWT, wrapped unless raw
		raw   bool
		v     func(*Config)
		exp   func(*verifier.Expected)
		check verifier.Check
	}{
		{name: "valid", in: good},
		{name: "valid, re-signed unchanged", in: edited(func(map[string]any, map[string]any) {})},
		{name: "T12 too old", in: good, exp: func(e *verifier.Expected) { e.Now = now.Add(6 * time.Minute) }, check: verifier.CheckAge},
		{name: "T12 expired", in: good, v: func(v *Config) { v.MaxAge = time.Hour },
			exp: func(e *verifier.Expected) { e.Now = now.Add(DefaultValidity) }, check: verifier.CheckAge},
		{name: "just before exp", in: good, v: func(v *Config) { v.MaxAge = time.Hour },
			exp: func(e *verifier.Expected) { e.Now = now.Add(DefaultValidity - time.Second) }},
		{name: "issued in the future", in: good, exp: func(e *verifier.Expected) { e.Now = now.Add(-time.Minute) }, check: verifier.CheckAge},
		{name: "issued within the skew", in: good, exp: func(e *verifier.Expected) { e.Now = now.Add(-10 * time.Second) }},
		{name: "nbf in the future", in: edited(func(_, c map[string]any) { c["nbf"] = now.Add(time.Hour).Unix() }), check: verifier.CheckAge},
		{name: "iat not an integer", in: edited(func(_, c map[string]any) { c["iat"] = 1.5e9 + 0.5 }), check: verifier.CheckFormat},
		{name: "T12 bound to another connection", in: good, exp: func(e *verifier.Expected) { e.Challenge = challenge(2) }, check: verifier.CheckNonce},
		{name: "no nonce", in: edited(func(_, c map[string]any) { delete(c, "eat_nonce") }), check: verifier.CheckNonce},
		{name: "T22 untrusted signing key", in: resign(t, good, other, func(map[string]any, map[string]any) {}), check: verifier.CheckSignature},
		{name: "zero verifier", in: good, v: func(v *Config) { *v = Config{} }, check: verifier.CheckSignature},
		{name: "tampered", in: tampered, check: verifier.CheckSignature},
		{name: "alg none", in: edited(func(h, _ map[string]any) { h["alg"] = "none" }), check: verifier.CheckSignature},
		{name: "HS256 with the public key as secret", in: edited(func(h, _ map[string]any) { h["alg"] = "HS256" }), check: verifier.CheckSignature},
		{name: "alg missing", in: []byte(b64([]byte(`{"typ":"JWT"}`)) + "." + strings.Split(string(good), ".")[1] + ".AA"), check: verifier.CheckSignature},
		{name: "ES384 not allowed by policy", in: good, v: func(v *Config) { v.Algorithms = []string{"EdDSA"} }, check: verifier.CheckSignature},
		{name: "crit header", in: edited(func(h, _ map[string]any) { h["crit"] = []string{"exp"} }), check: verifier.CheckFormat},
		{name: "typ not JWT", in: edited(func(h, _ map[string]any) { h["typ"] = "at+jwt" }), check: verifier.CheckFormat},
		{name: "embedded jwk is ignored", in: resign(t, good, other, func(h, _ map[string]any) {
			k, _ := jwk.Import(other.Public())
			h["jwk"] = k
		}), check: verifier.CheckSignature},
		{name: "contraindicated", in: edited(func(_, c map[string]any) { submod(c)["ear.status"] = "contraindicated" }), check: verifier.CheckStatus},
		{name: "warning rejected by default", in: edited(func(_, c map[string]any) { submod(c)["ear.status"] = "warning" }), check: verifier.CheckStatus},
		{name: "warning accepted by policy", in: edited(func(_, c map[string]any) { submod(c)["ear.status"] = "warning" }),
			v: func(v *Config) { v.AcceptWarning = true }},
		{name: "status none", in: edited(func(_, c map[string]any) { submod(c)["ear.status"] = "none" }), check: verifier.CheckStatus},
		{name: "second submod contraindicated", in: edited(func(_, c map[string]any) {
			c["submods"].(map[string]any)["gpu"] = map[string]any{"ear.status": "contraindicated"}
		}), check: verifier.CheckStatus},
		{name: "other profile", in: edited(func(_, c map[string]any) { c["eat_profile"] = "tag:github.com,2024:confidential-containers/Trustee" }), check: verifier.CheckFormat},
		{name: "issuer required", in: good, v: func(v *Config) { v.Issuer = "https://other.example" }, check: verifier.CheckIssuer},
		{name: "issuer matches", in: good, v: func(v *Config) { v.Issuer = "https://verifier.example" }},
		{name: "key attestation match", in: withKeyAtt, v: func(v *Config) { v.Bindings = BindKey }},
		{name: "key attestation mismatch", in: withKeyAtt, v: func(v *Config) { v.Bindings = BindKey },
			exp: func(e *verifier.Expected) { e.SPKI = append([]byte{0}, e.SPKI...) }, check: verifier.CheckKey},
		{name: "key attestation mismatch, nonce fine", in: withKeyAtt, v: func(v *Config) { v.Bindings = BindKey | BindNonce },
			exp: func(e *verifier.Expected) { e.SPKI = nil }, check: verifier.CheckKey},
		{name: "key binding required, none present", in: good, v: func(v *Config) { v.Bindings = BindKey }, check: verifier.CheckKey},
		{name: "key binding, nonce removed", in: resign(t, withKeyAtt, f.issKey, func(_, c map[string]any) { delete(c, "eat_nonce") }),
			v: func(v *Config) { v.Bindings = BindKey }},
		{name: "key binding, nonce of another connection", in: withKeyAtt, v: func(v *Config) { v.Bindings = BindKey },
			exp: func(e *verifier.Expected) { e.Challenge = challenge(3) }, check: verifier.CheckNonce},
		{name: "duplicate claim", raw: true, in: func() []byte {
			h := b64([]byte(`{"alg":"ES256"}`))
			p := strings.Split(string(good), ".")[1]
			dec, _ := base64.RawURLEncoding.DecodeString(p)
			dup := append([]byte(`{"eat_nonce":"AAAAAAAAAAAA",`), dec[1:]...)
			return resignRaw(t, f.issKey, h, b64(dup))
		}(), check: verifier.CheckFormat},
		{name: "padded base64", raw: true, in: []byte(strings.Replace(string(good), ".", "=.", 1)), check: verifier.CheckFormat},
		{name: "two parts", raw: true, in: []byte(strings.Join(strings.Split(string(good), ".")[:2], ".")), check: verifier.CheckFormat},
		{name: "wrong CMW type", raw: true, in: func() []byte {
			r, _ := cmw.NewRecord(cmw.MediaTypeTestKit, good, cmw.Evidence)
			b, _ := r.Marshal()
			return b
		}(), check: verifier.CheckFormat},
		{name: "evidence indicator", raw: true, in: func() []byte {
			r, _ := cmw.NewRecord(cmw.MediaTypeEAR, good, cmw.Evidence)
			b, _ := r.Marshal()
			return b
		}(), check: verifier.CheckFormat},
		{name: "not a CMW", raw: true, in: good, check: verifier.CheckFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := f.config()
			if tt.v != nil {
				tt.v(cfg)
			}
			v := mustNew(cfg)
			exp := f.expected(ch)
			if tt.exp != nil {
				tt.exp(exp)
			}
			in := tt.in
			if !tt.raw {
				in = wrap(t, in)
			}
			res, err := v.Verify(context.Background(), in, exp)
			wantCheck(t, res, err, tt.check)
		})
	}
}

func resignRaw(t testing.TB, key *ecdsa.PrivateKey, h, p string) []byte {
	digest := sha256.Sum256([]byte(h + "." + p))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return []byte(h + "." + p + "." + b64(sig))
}

func TestIssuerKeysAndKid(t *testing.T) {
	f := newFixture(t)
	ch := challenge(1)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	tests := []struct {
		name  string
		key   crypto.Signer
		kid   string
		keys  []TrustedKey
		check verifier.Check
	}{
		{"ES384", p384, "", []TrustedKey{{Key: &p384.PublicKey}}, 0},
		{"EdDSA", edPriv, "", []TrustedKey{{Key: edPriv.Public()}}, 0},
		{"kid matches", f.issKey, "k1", []TrustedKey{{ID: "k0", Key: &p384.PublicKey}, {ID: "k1", Key: &f.issKey.PublicKey}}, 0},
		{"kid differs", f.issKey, "k1", []TrustedKey{{ID: "k2", Key: &f.issKey.PublicKey}}, verifier.CheckSignature},
		{"token without kid, key with ID", f.issKey, "", []TrustedKey{{ID: "k2", Key: &f.issKey.PublicKey}}, verifier.CheckSignature},
		{"token with kid, key without ID", f.issKey, "k1", []TrustedKey{{Key: &f.issKey.PublicKey}}, 0},
		{"token with kid, other key without ID", f.issKey, "k1", []TrustedKey{{Key: &p384.PublicKey}}, verifier.CheckSignature},
		{"ES256 token, P-384 key", f.issKey, "", []TrustedKey{{Key: &p384.PublicKey}}, verifier.CheckSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := f.token(t, ch, func(i *Issuer) { i.Key = tt.key; i.KeyID = tt.kid })
			v := mustNew(&Config{Keys: tt.keys})
			res, err := v.Verify(context.Background(), wrap(t, tok), f.expected(ch))
			wantCheck(t, res, err, tt.check)
		})
	}
}

func TestKeysFromJWKS(t *testing.T) {
	f := newFixture(t)
	pub, _ := jwk.Import(&f.issKey.PublicKey)
	_ = pub.Set(jwk.KeyIDKey, "verifier-1")
	set := jwk.NewSet()
	_ = set.AddKey(pub)
	b, _ := json.Marshal(set)
	keys, err := KeysFromJWKS(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].ID != "verifier-1" {
		t.Fatalf("keys %+v", keys)
	}
	tok := f.token(t, challenge(1), func(i *Issuer) { i.KeyID = "verifier-1" })
	if _, err := mustNew(&Config{Keys: keys}).Verify(context.Background(), wrap(t, tok), f.expected(challenge(1))); err != nil {
		t.Errorf("JWKS key: %v", err)
	}

	priv, _ := jwk.Import(f.issKey)
	privSet := jwk.NewSet()
	_ = privSet.AddKey(priv)
	pb, _ := json.Marshal(privSet)
	sym, _ := jwk.Import([]byte("secret"))
	symSet := jwk.NewSet()
	_ = symSet.AddKey(sym)
	sb, _ := json.Marshal(symSet)
	for name, in := range map[string][]byte{"private": pb, "symmetric": sb, "empty": []byte(`{"keys":[]}`), "garbage": []byte("{")} {
		if _, err := KeysFromJWKS(in); err == nil {
			t.Errorf("%s JWK set accepted", name)
		}
	}
}

func TestIssuerRefusesRejectedEvidence(t *testing.T) {
	f := newFixture(t)
	stale := challenge(9)
	f.passAtt.Evidence = &testkit.Attester{Key: f.ak, FixedChallenge: &stale}
	_, err := f.passAtt.Attest(context.Background(), challenge(1))
	var re *verifier.RejectedError
	if !errors.As(err, &re) || re.Check != verifier.CheckChallenge {
		t.Errorf("got %v, want the appraiser's challenge rejection", err)
	}
	if _, _, err := (&Issuer{}).Issue(context.Background(), nil, f.expected(challenge(1))); err == nil {
		t.Error("zero Issuer issued")
	}
	iss := *f.issuer
	iss.KeyAttestation = true
	if _, _, err := iss.Issue(context.Background(), nil, &verifier.Expected{Challenge: challenge(1)}); err == nil {
		t.Error("key attestation without SPKI issued")
	}
}

func TestDecodeObject(t *testing.T) {
	for in, ok := range map[string]bool{
		`{"a":1}`:                   true,
		`{"a":{"b":[1,{"c":2}]}}`:   true,
		`{"a":1,"A":2}`:             true, // exact names: distinct members (parseClaims refuses "IAT" beside "iat")
		`{"a":1,"a":2}`:             false,
		`{"a":{"b":1,"b":2}}`:       false,
		`{"a":[{"b":1,"b":2}]}`:     false,
		`{"a":1,"\u0061":2}`:        false,
		`{"a":1}{}`:                 false,
		`{"a":1} `:                  true,
		`[1]`:                       false,
		"{\"a\":\"\xff\"}":          false,
		strings.Repeat(`{"a":`, 40): false,
		`{"a":1`:                    false,
	} {
		if _, err := decodeObject([]byte(in)); (err == nil) != ok {
			t.Errorf("decodeObject(%q) = %v, want ok=%v", in, err, ok)
		}
	}
}

func BenchmarkPassport(b *testing.B) {
	f := newFixture(b)
	ch := challenge(1)
	v := f.verifier()
	exp := f.expected(ch)
	pass, err := f.passAtt.Attest(context.Background(), ch)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("attest+issue", func(b *testing.B) {
		for b.Loop() {
			if _, err := f.passAtt.Attest(context.Background(), ch); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("verify", func(b *testing.B) {
		for b.Loop() {
			if _, err := v.Verify(context.Background(), pass, exp); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestNonceEncodings: Veraison v0.0.2501 issues eat_nonce as padded
// base64url, go-expat's Issuer unpadded; both canonical forms verify, any
// other spelling of the same bytes is rejected.
func TestNonceEncodings(t *testing.T) {
	f := newFixture(t)
	ch := challenge(7)
	rd, _ := ch.ReportData64()
	tok := f.token(t, ch, nil)
	for _, tc := range []struct {
		name, nonce string
		ok          bool
	}{
		{"unpadded", base64.RawURLEncoding.EncodeToString(rd[:]), true},
		{"padded (Veraison)", base64.URLEncoding.EncodeToString(rd[:]), true},
		{"standard alphabet", base64.StdEncoding.EncodeToString(rd[:]), false},
		{"extra padding (the EAR library's own length check)", base64.URLEncoding.EncodeToString(rd[:]) + "==", false},
		{"other bytes", base64.URLEncoding.EncodeToString(rd[1:]), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			edited := resign(t, tok, f.issKey, func(_, claims map[string]any) { claims["eat_nonce"] = tc.nonce })
			res, err := f.verifier().Verify(context.Background(), wrap(t, edited), f.expected(ch))
			if tc.ok {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			if res != nil || !errors.Is(err, verifier.ErrRejected) {
				t.Fatalf("accepted or not a rejection: %v", err)
			}
		})
	}
}

// T34: claim names are exact and registered claims strictly typed. Every
// token here is really signed by the trusted issuer key, so only the JSON
// semantics decide.
func TestClaimConfusion(t *testing.T) {
	f := newFixture(t)
	ch := challenge(1)
	good := f.token(t, ch, nil)
	edited := func(edit func(hdr, claims map[string]any)) []byte { return resign(t, good, f.issKey, edit) }
	old := now.Add(-time.Hour).Unix()
	fresh := now.Unix()
	payload := func() map[string]any { // good's claims
		raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(string(good), ".")[1])
		m := map[string]any{}
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	rawClaims := func(edit func(string) string) []byte {
		h := b64([]byte(`{"alg":"ES256","typ":"JWT"}`))
		raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(string(good), ".")[1])
		return resignRaw(t, f.issKey, h, b64([]byte(edit(string(raw)))))
	}
	rawHeader := func(h string) []byte {
		return resignRaw(t, f.issKey, b64([]byte(h)), strings.Split(string(good), ".")[1])
	}
	if _, ok := payload()["iat"]; !ok {
		t.Fatal("test setup: no iat")
	}

	tests := []struct {
		name  string
		in    []byte
		v     func(*Config)
		check verifier.Check // 0: accepted
		tier  verifier.Tier  // when accepted
	}{
		{name: "control: as issued", in: good, tier: verifier.TierAffirming},
		{name: "control: old iat alone is too old", in: edited(func(_, c map[string]any) { c["iat"] = old }), check: verifier.CheckAge},
		// The members that differ only in case come after the registered
		// ones, where a case-insensitive struct decode lets them win.
		{name: "old iat plus a fresh IAT", in: rawClaims(func(s string) string {
			s = mustReplace(t, s, `"iat":`+strconv.FormatInt(fresh, 10), `"iat":`+strconv.FormatInt(old, 10))
			return strings.TrimSuffix(s, "}") + `,"IAT":` + strconv.FormatInt(fresh, 10) + "}"
		}), check: verifier.CheckFormat},
		{name: "fresh IAT alone", in: edited(func(_, c map[string]any) { delete(c, "iat"); c["IAT"] = fresh }), check: verifier.CheckFormat},
		{name: "a dotted-I iat is another claim", in: edited(func(_, c map[string]any) { c["iat"] = old; c["\u0130at"] = fresh }), check: verifier.CheckAge},
		{name: "control: expired exp alone", in: edited(func(_, c map[string]any) { c["exp"] = now.Unix() }), check: verifier.CheckAge},
		{name: "expired exp plus a future Exp", in: rawClaims(func(s string) string {
			s = mustReplace(t, s, `"exp":`+strconv.FormatInt(now.Add(DefaultValidity).Unix(), 10), `"exp":`+strconv.FormatInt(now.Unix(), 10))
			return strings.TrimSuffix(s, "}") + `,"Exp":` + strconv.FormatInt(now.Add(time.Hour).Unix(), 10) + "}"
		}), check: verifier.CheckFormat},
		{name: "future nbf plus a past NBF", in: edited(func(_, c map[string]any) { c["nbf"] = now.Add(time.Hour).Unix(); c["NBF"] = old }), check: verifier.CheckFormat},
		{name: "iat as a string", in: edited(func(_, c map[string]any) { c["iat"] = strconv.FormatInt(fresh, 10) }), check: verifier.CheckFormat},
		{name: "exp as a string", in: edited(func(_, c map[string]any) { c["exp"] = strconv.FormatInt(now.Add(time.Hour).Unix(), 10) }), check: verifier.CheckFormat},
		{name: "nbf as a string", in: edited(func(_, c map[string]any) { c["nbf"] = strconv.FormatInt(old, 10) }), check: verifier.CheckFormat},
		{name: "iat with an exponent", in: rawClaims(func(s string) string {
			return mustReplace(t, s, `"iat":`+strconv.FormatInt(fresh, 10), `"iat":18e8`)
		}), check: verifier.CheckFormat},
		{name: "iat with a fraction", in: rawClaims(func(s string) string {
			return mustReplace(t, s, `"iat":`+strconv.FormatInt(fresh, 10), `"iat":`+strconv.FormatInt(fresh, 10)+`.0`)
		}), check: verifier.CheckFormat},
		{name: "duplicate iat", in: rawClaims(func(s string) string {
			return `{"iat":` + strconv.FormatInt(old, 10) + `,` + s[1:]
		}), check: verifier.CheckFormat},
		{name: "eat_nonce of another connection plus EAT_NONCE", in: edited(func(_, c map[string]any) {
			c["EAT_NONCE"], c["eat_nonce"] = c["eat_nonce"], "AAAA"
		}), check: verifier.CheckFormat},
		{name: "iss case variant", in: edited(func(_, c map[string]any) { c["ISS"] = "https://other.example" }), check: verifier.CheckFormat},
		{name: "EAR.STATUS beside ear.status", in: edited(func(_, c map[string]any) {
			sm := submod(c)
			sm["ear.status"], sm["EAR.STATUS"] = "contraindicated", "affirming"
		}), check: verifier.CheckFormat},
		{name: "ear.status with a long-s lookalike", in: edited(func(_, c map[string]any) {
			sm := submod(c)
			delete(sm, "ear.status")
			sm["ear.\u017ftatus"] = "affirming"
		}), check: verifier.CheckFormat},
		{name: "ear.status as a number", in: edited(func(_, c map[string]any) { submod(c)["ear.status"] = 2 }), check: verifier.CheckFormat},
		{name: "ear.status capitalised", in: edited(func(_, c map[string]any) { submod(c)["ear.status"] = "Affirming" }), check: verifier.CheckFormat},
		{name: "trust claim as a string", in: edited(func(_, c map[string]any) {
			submod(c)["ear.trustworthiness-vector"].(map[string]any)["executables"] = "2"
		}), check: verifier.CheckFormat},
		{name: "trust claim out of range", in: edited(func(_, c map[string]any) {
			submod(c)["ear.trustworthiness-vector"].(map[string]any)["executables"] = 200
		}), check: verifier.CheckFormat},
		{name: "trust claim case variant", in: edited(func(_, c map[string]any) {
			submod(c)["ear.trustworthiness-vector"].(map[string]any)["Executables"] = 96
		}), check: verifier.CheckFormat},
		{name: "submods case variant", in: edited(func(_, c map[string]any) { c["Submods"] = c["submods"] }), check: verifier.CheckFormat},
		{name: "header ALG beside alg", in: rawHeader(`{"alg":"ES256","ALG":"none"}`), check: verifier.CheckFormat},
		{name: "header Alg alone", in: rawHeader(`{"Alg":"ES256"}`), check: verifier.CheckFormat},
		{name: "header kid with a Kelvin sign", in: rawHeader(`{"alg":"ES256","\u212aid":"k"}`), check: verifier.CheckFormat},
		{name: "unknown claims are ignored", in: edited(func(_, c map[string]any) { c["x-vendor"] = "y"; c["iat2"] = old }), tier: verifier.TierAffirming},

		// An EAR's status is never more than its trust vector supports.
		{name: "affirming status, warning claim", in: edited(func(_, c map[string]any) {
			submod(c)["ear.trustworthiness-vector"].(map[string]any)["executables"] = 33
		}), check: verifier.CheckStatus},
		{name: "affirming status, warning claim, warnings accepted", in: edited(func(_, c map[string]any) {
			submod(c)["ear.trustworthiness-vector"].(map[string]any)["executables"] = 33
		}), v: func(v *Config) { v.AcceptWarning = true }, tier: verifier.TierWarning},
		{name: "affirming status, contraindicated claim", in: edited(func(_, c map[string]any) {
			submod(c)["ear.trustworthiness-vector"].(map[string]any)["hardware"] = -128
		}), v: func(v *Config) { v.AcceptWarning = true }, check: verifier.CheckStatus},
		{name: "affirming status, verifier-malfunction claim", in: edited(func(_, c map[string]any) {
			submod(c)["ear.trustworthiness-vector"].(map[string]any)["configuration"] = -1
		}), v: func(v *Config) { v.AcceptWarning = true }, check: verifier.CheckStatus},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := f.config()
			if tt.v != nil {
				tt.v(cfg)
			}
			v := mustNew(cfg)
			res, err := v.Verify(context.Background(), wrap(t, tt.in), f.expected(ch))
			wantCheck(t, res, err, tt.check)
			if tt.check == 0 && res.Status != tt.tier {
				t.Errorf("status %v, want %v", res.Status, tt.tier)
			}
		})
	}
}

// fixedAppraiser returns one Result for any Evidence (the Issuer's input in
// TestIssuerStatusFollowsVector).
type fixedAppraiser struct{ res verifier.Result }

func (a fixedAppraiser) Verify(context.Context, []byte, *verifier.Expected) (*verifier.Result, error) {
	r := a.res
	return &r, nil
}

// The Issuer never issues a status the trust vector does not support.
func TestIssuerStatusFollowsVector(t *testing.T) {
	f := newFixture(t)
	ch := challenge(1)
	iss := *f.issuer
	iss.Appraiser = fixedAppraiser{verifier.Result{Technology: "x", Status: verifier.TierAffirming,
		TrustVector: verifier.TrustVector{InstanceIdentity: 2, Executables: 33}}}
	tok, _, err := iss.Issue(context.Background(), []byte{1}, &verifier.Expected{Challenge: ch, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(string(tok), ".")[1])
	if !strings.Contains(string(raw), `"ear.status":"warning"`) {
		t.Fatalf("issued %s", raw)
	}
	cfg := f.config()
	cfg.AcceptWarning = true
	v := mustNew(cfg)
	res, err := v.Verify(context.Background(), wrap(t, tok), f.expected(ch))
	if err != nil || res.Status != verifier.TierWarning || res.Claims["submod.x.status"] != "warning" {
		t.Fatalf("got %+v, %v", res, err)
	}
}

// mustReplace replaces the first old in s by new, failing t if s has none.
func mustReplace(t *testing.T, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("test setup: %q not in %s", old, s)
	}
	return strings.Replace(s, old, new, 1)
}

func TestNewRejectsMalformed(t *testing.T) {
	rsaLike := struct{}{}
	for name, cfg := range map[string]*Config{
		"key of another type":   {Keys: []TrustedKey{{Key: rsaLike}}},
		"nil key":               {Keys: []TrustedKey{{ID: "k"}}},
		"unsupported algorithm": {Algorithms: []string{"HS256"}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// nil is the zero Config: valid, and it trusts nothing.
	f := newFixture(t)
	ch := challenge(1)
	res, err := mustNew(nil).Verify(context.Background(), wrap(t, f.token(t, ch, nil)), f.expected(ch))
	wantCheck(t, res, err, verifier.CheckSignature)
}

// An EAR's Status is the WorstTier of its submodules, for every pair of
// tiers; only an affirming or (with AcceptWarning) warning result is
// accepted.
func TestSubmodMergeEveryPair(t *testing.T) {
	f := newFixture(t)
	ch := challenge(1)
	good := f.token(t, ch, nil)
	tiers := []verifier.Tier{verifier.TierAffirming, verifier.TierWarning, verifier.TierNone, verifier.TierContraindicated}
	cfg := f.config()
	cfg.AcceptWarning = true
	v := mustNew(cfg)
	for i, a := range tiers {
		for j, b := range tiers {
			tok := resign(t, good, f.issKey, func(_, c map[string]any) {
				submod(c)["ear.status"] = a.String()
				c["submods"].(map[string]any)["zz-second"] = map[string]any{"ear.status": b.String()}
			})
			res, err := v.Verify(context.Background(), wrap(t, tok), f.expected(ch))
			want := tiers[max(i, j)]
			if want != verifier.TierAffirming && want != verifier.TierWarning {
				wantCheck(t, res, err, verifier.CheckStatus)
				continue
			}
			if err != nil || res.Status != want {
				t.Errorf("submods %v and %v: got %v, %v; want %v", a, b, res, err, want)
			}
		}
	}
}
