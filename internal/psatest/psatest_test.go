package psatest_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"testing"

	cose "github.com/veraison/go-cose"
	"github.com/veraison/psatoken"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/internal/psatest"
)

func newPlatform(t *testing.T) *psatest.Platform {
	t.Helper()
	p, err := psatest.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func challenge(t testing.TB, h crypto.Hash) attester.Challenge {
	t.Helper()
	b := make([]byte, 2*h.Size())
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return attester.Challenge{Hash: h, Binding: b[:h.Size()], AIKPubHash: b[h.Size():]}
}

func TestInstanceID(t *testing.T) {
	p := newPlatform(t)
	k := p.IAK()
	// Independent check of the uncompressed point 0x04 || X || Y.
	pt := append([]byte{0x04}, k.X.FillBytes(make([]byte, 32))...) //nolint:staticcheck // X, Y: deprecated fields, read on purpose
	pt = append(pt, k.Y.FillBytes(make([]byte, 32))...)            //nolint:staticcheck
	h := sha256.Sum256(pt)
	want := append([]byte{0x01}, h[:]...)
	got, err := psatest.InstanceIDFor(k)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) || !bytes.Equal(p.Claims.InstanceID, want) {
		t.Fatalf("instance ID %x / %x, want %x", got, p.Claims.InstanceID, want)
	}
	q := newPlatform(t)
	if bytes.Equal(q.Claims.InstanceID, p.Claims.InstanceID) || bytes.Equal(q.Claims.ImplementationID, p.Claims.ImplementationID) {
		t.Fatal("two platforms share identities")
	}
}

func TestToken(t *testing.T) {
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tests := []struct {
		name     string
		profile  string
		nonceLen int
		wantErr  bool
	}{
		{"2.0.0, 64-byte nonce", psatest.ProfileP2, 64, false},
		{"2.0.0, 48-byte nonce", psatest.ProfileP2, 48, false},
		{"2.0.0, 32-byte nonce", psatest.ProfileP2, 32, false},
		{"profile 1, 64-byte nonce", psatest.ProfileP1, 64, false},
		{"2.0.0, 16-byte nonce", psatest.ProfileP2, 16, true},
		{"2.0.0, 63-byte nonce", psatest.ProfileP2, 63, true},
		{"unknown profile", "urn:example:nope", 64, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPlatform(t)
			p.Claims.Profile = tc.profile
			nonce := bytes.Repeat([]byte{0xa5}, tc.nonceLen)
			tok, err := p.Token(nonce)
			if tc.wantErr {
				if err == nil || tok != nil {
					t.Fatalf("got %d bytes, %v; want an error", len(tok), err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ev, err := psatoken.DecodeAndValidateEvidenceFromCOSE(tok)
			if err != nil {
				t.Fatal(err)
			}
			if err := ev.Verify(p.IAK()); err != nil {
				t.Fatalf("IAK does not verify: %v", err)
			}
			if err := ev.Verify(&other.PublicKey); err == nil {
				t.Fatal("another key verifies the token")
			}
			prof, _ := ev.Claims.GetProfile()
			n, _ := ev.Claims.GetNonce()
			inst, _ := ev.Claims.GetInstID()
			impl, _ := ev.Claims.GetImplID()
			sw, _ := ev.Claims.GetSoftwareComponents()
			if prof != tc.profile || !bytes.Equal(n, nonce) || !bytes.Equal(inst, p.Claims.InstanceID) ||
				!bytes.Equal(impl, p.Claims.ImplementationID) || len(sw) != len(p.Claims.Software) {
				t.Fatalf("claims: profile %q nonce %x inst %x impl %x, %d components", prof, n, inst, impl, len(sw))
			}
			for i, s := range sw {
				v, _ := s.GetMeasurementValue()
				ty, _ := s.GetMeasurementType()
				if !bytes.Equal(v, p.Claims.Software[i].Value) || ty != p.Claims.Software[i].Type {
					t.Fatalf("component %d: %s %x", i, ty, v)
				}
			}
		})
	}
}

func TestTokenSignedBy(t *testing.T) {
	p := newPlatform(t)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tok, err := p.TokenSignedBy(make([]byte, 32), other)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := psatoken.DecodeAndValidateEvidenceFromCOSE(tok)
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.Verify(p.IAK()); err == nil {
		t.Fatal("the platform's IAK verifies a token signed by another key")
	}
	if err := ev.Verify(&other.PublicKey); err != nil {
		t.Fatal(err)
	}
}

// TestTFMProfile: the RFC 9783 profile is signed, but psatoken (which
// Veraison v0.0.2501 uses) cannot decode its claims.
func TestTFMProfile(t *testing.T) {
	p := newPlatform(t)
	p.Claims.Profile = psatest.ProfileTFM
	tok, err := p.Token(make([]byte, 64))
	if err != nil {
		t.Fatal(err)
	}
	var msg cose.Sign1Message
	if err := msg.UnmarshalCBOR(tok); err != nil {
		t.Fatal(err)
	}
	v, _ := cose.NewVerifier(cose.AlgorithmES256, p.IAK())
	if err := msg.Verify(nil, v); err != nil {
		t.Fatalf("signature: %v", err)
	}
	if !bytes.Contains(msg.Payload, []byte(psatest.ProfileTFM)) {
		t.Fatal("profile not in the payload")
	}
	if _, err := psatoken.DecodeAndValidateEvidenceFromCOSE(tok); err == nil {
		t.Fatal("psatoken now decodes the TFM profile: update the package doc and the live tests")
	}
	if got := p.MediaType(); got != psatest.MediaTypeTFM {
		t.Fatalf("media type %q", got)
	}
	// Invalid claims are still refused under the TFM profile.
	p.Claims.InstanceID[0] = 0x02
	if _, err := p.Token(make([]byte, 64)); err == nil {
		t.Fatal("bad instance ID accepted")
	}
}

func TestClone(t *testing.T) {
	p := newPlatform(t)
	q := p.Clone()
	q.Claims.Software[0].Value[0] ^= 0xff
	q.Claims.ImplementationID[0] ^= 0xff
	q.Claims.BootSeed[0] ^= 0xff
	if bytes.Equal(p.Claims.Software[0].Value, q.Claims.Software[0].Value) ||
		bytes.Equal(p.Claims.ImplementationID, q.Claims.ImplementationID) ||
		bytes.Equal(p.Claims.BootSeed, q.Claims.BootSeed) {
		t.Fatal("Clone shares claim buffers")
	}
	tok, err := q.Token(make([]byte, 64))
	if err != nil {
		t.Fatal(err)
	}
	ev, _ := psatoken.DecodeAndValidateEvidenceFromCOSE(tok)
	if err := ev.Verify(p.IAK()); err != nil {
		t.Fatal("Clone has another IAK")
	}
}

func TestAttester(t *testing.T) {
	p := newPlatform(t)
	tests := []struct {
		name    string
		a       *psatest.Attester
		ch      attester.Challenge
		ctx     func() context.Context
		wantMT  string
		wantErr bool
	}{
		{name: "SHA-256 challenge", a: &psatest.Attester{Platform: p}, ch: challenge(t, crypto.SHA256), wantMT: psatest.MediaTypeP2},
		{name: "SHA-384 challenge", a: &psatest.Attester{Platform: p}, ch: challenge(t, crypto.SHA384), wantMT: psatest.MediaTypeP2},
		{name: "explicit media type", a: &psatest.Attester{Platform: p, MediaType: psatest.MediaTypeP1}, ch: challenge(t, crypto.SHA256), wantMT: psatest.MediaTypeP1},
		{name: "invalid challenge", a: &psatest.Attester{Platform: p}, ch: attester.Challenge{Hash: crypto.SHA256, Binding: []byte{1}}, wantErr: true},
		{name: "nil platform", a: &psatest.Attester{}, ch: challenge(t, crypto.SHA256), wantErr: true},
		{name: "canceled", a: &psatest.Attester{Platform: p}, ch: challenge(t, crypto.SHA256), wantErr: true,
			ctx: func() context.Context { c, cancel := context.WithCancel(context.Background()); cancel(); return c }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.ctx != nil {
				ctx = tc.ctx()
			}
			b, err := tc.a.Attest(ctx, tc.ch)
			if tc.wantErr {
				if err == nil || b != nil {
					t.Fatalf("got %d bytes, %v; want an error", len(b), err)
				}
				if errors.Is(err, context.Canceled) != (tc.ctx != nil) {
					t.Fatalf("error %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			dec, err := cmw.Decode(b, nil)
			if err != nil {
				t.Fatal(err)
			}
			rec, ok := dec.Record()
			if !ok || rec.MediaType != tc.wantMT || rec.Indicator != cmw.Evidence {
				t.Fatalf("record %q %v", rec.MediaType, rec.Indicator)
			}
			ev, err := psatoken.DecodeAndValidateEvidenceFromCOSE(rec.Value)
			if err != nil {
				t.Fatal(err)
			}
			rd, _ := tc.ch.ReportData64()
			n, _ := ev.Claims.GetNonce()
			if !bytes.Equal(n, rd[:]) {
				t.Fatalf("nonce %x, want ReportData64 %x", n, rd)
			}
			if err := ev.Verify(p.IAK()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestTokenBoundAndSigned: a test-only PSA token bound to a go-expat
// challenge verifies with psatoken and the platform's IAK. (This kit is
// internal: what a user could copy lives in Examples of public packages.)
func TestTokenBoundAndSigned(t *testing.T) {
	p, err := psatest.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	ch := attester.Challenge{Hash: crypto.SHA256, Binding: make([]byte, 32), AIKPubHash: make([]byte, 32)}
	rec, err := (&psatest.Attester{Platform: p}).Attest(context.Background(), ch)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := cmw.Decode(rec, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, ok := dec.Record()
	if !ok {
		t.Fatal("not a record")
	}
	ev, err := psatoken.DecodeAndValidateEvidenceFromCOSE(r.Value)
	if err != nil {
		t.Fatal(err)
	}
	nonce, err := ev.Claims.GetNonce()
	if err != nil {
		t.Fatal(err)
	}
	rd, _ := ch.ReportData64()
	if r.MediaType != `application/eat-cwt; profile="http://arm.com/psa/2.0.0"` {
		t.Errorf("media type %q", r.MediaType)
	}
	if err := ev.Verify(p.IAK()); err != nil {
		t.Errorf("not signed by the IAK: %v", err)
	}
	if !bytes.Equal(nonce, rd[:]) {
		t.Errorf("nonce %x, want ReportData64 %x", nonce, rd)
	}
}
