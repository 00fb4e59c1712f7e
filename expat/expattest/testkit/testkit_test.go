package testkit

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
	"time"

	"github.com/veraison/go-cose"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/verifier"
)

func challenge(h crypto.Hash, seed byte) attester.Challenge {
	b := bytes.Repeat([]byte{seed}, h.Size())
	a := bytes.Repeat([]byte{seed ^ 0xff}, h.Size())
	return attester.Challenge{Hash: h, Binding: b, AIKPubHash: a}
}

func mustKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var (
	fw     = sha256.Sum256([]byte("firmware"))
	kernel = sha256.Sum256([]byte("kernel"))
)

func TestAttestVerify(t *testing.T) {
	key, other := mustKey(t), mustKey(t)
	ch := challenge(crypto.SHA256, 1)
	stale := challenge(crypto.SHA256, 2)
	meas := []verifier.Measurement{{Name: "firmware", Value: fw[:]}, {Name: "kernel", Value: kernel[:]}}
	good := func() *Attester { return &Attester{Key: key, Measurements: meas} }
	trusting := func() *Verifier {
		return &Verifier{TrustedKeys: []*ecdsa.PublicKey{&other.PublicKey, &key.PublicKey}, ReferenceMeasurements: meas}
	}

	tests := []struct {
		name      string
		att       func() *Attester
		ver       func() *Verifier
		ch        attester.Challenge
		wantCheck verifier.Check // 0 = accepted
	}{
		{"valid", good, trusting, ch, 0},
		{"valid SHA-384 challenge", good, trusting, challenge(crypto.SHA384, 3), 0},
		{"valid without policy", good, func() *Verifier { return &Verifier{TrustedKeys: []*ecdsa.PublicKey{&key.PublicKey}} }, ch, 0},
		{"stale evidence (fixed challenge)", func() *Attester { a := good(); a.FixedChallenge = &stale; return a }, trusting, ch, verifier.CheckChallenge},
		{"same seed, SHA-256 evidence, SHA-384 expected", func() *Attester { a := good(); a.FixedChallenge = &ch; return a }, trusting, challenge(crypto.SHA384, 1), verifier.CheckChallenge},
		{"forged signature claiming a trusted key", func() *Attester { a := good(); a.SignWith = other; return a }, trusting, ch, verifier.CheckSignature},
		{"untrusted key", func() *Attester { return &Attester{Key: mustKey(t), Measurements: meas} }, trusting, ch, verifier.CheckSignature},
		{"zero verifier trusts nothing", good, func() *Verifier { return &Verifier{} }, ch, verifier.CheckSignature},
		{"wrong measurement", func() *Attester {
			a := good()
			a.Measurements = []verifier.Measurement{{Name: "firmware", Value: kernel[:]}, {Name: "kernel", Value: kernel[:]}}
			return a
		}, trusting, ch, verifier.CheckMeasurement},
		{"missing measurement", func() *Attester { a := good(); a.Measurements = meas[:1]; return a }, trusting, ch, verifier.CheckMeasurement},
		{"duplicate measurement", func() *Attester { a := good(); a.Measurements = append(meas[:2:2], meas[0]); return a }, trusting, ch, verifier.CheckFormat},
		{"garbage", func() *Attester { a := good(); a.Garbage = []byte("\x82garbage"); return a }, trusting, ch, verifier.CheckFormat},
		{"oversized CMW", func() *Attester { a := good(); a.PadTo = 70000; return a }, trusting, ch, verifier.CheckFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.att().Attest(context.Background(), tt.ch)
			if err != nil {
				t.Fatal(err)
			}
			v := tt.ver()
			exp := &verifier.Expected{Challenge: tt.ch, Now: time.Unix(1e9, 0)}
			res, err := v.Verify(context.Background(), b, exp)
			if tt.wantCheck == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if res.Model != verifier.BackgroundCheck || res.Technology != Technology || res.Status != verifier.TierAffirming ||
					res.MediaType != cmw.MediaTypeTestKit || res.Verifier != DefaultVerifierName || !res.AppraisedAt.Equal(exp.Now) {
					t.Errorf("result %+v", res)
				}
				if res.Claims["swname"] != "go-expat-testkit" || res.Claims["test-only"] != "true" {
					t.Errorf("claims %v", res.Claims)
				}
				if len(res.Measurements) != 2 || !bytes.Equal(res.Measurements[1].Value, kernel[:]) {
					t.Errorf("measurements %+v", res.Measurements)
				}
				wantExec := int8(0)
				if len(v.ReferenceMeasurements) > 0 {
					wantExec = 2
				}
				if res.TrustVector.Executables != wantExec || res.TrustVector.InstanceIdentity != 2 {
					t.Errorf("trust vector %+v", res.TrustVector)
				}
				return
			}
			if res != nil {
				t.Error("result with an error")
			}
			var re *verifier.RejectedError
			if !errors.As(err, &re) || !errors.Is(err, verifier.ErrRejected) {
				t.Fatalf("error %v is not a rejection", err)
			}
			if re.Check != tt.wantCheck {
				t.Errorf("check %q, want %q (%v)", re.Check, tt.wantCheck, err)
			}
		})
	}
}

func TestPadToExceedsExtension(t *testing.T) {
	a := &Attester{Key: mustKey(t), PadTo: 65536}
	b, err := a.Attest(context.Background(), challenge(crypto.SHA256, 1))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 65536 {
		t.Fatalf("padded CMW is %d bytes", len(b))
	}
	v := &Verifier{TrustedKeys: []*ecdsa.PublicKey{&a.Key.PublicKey}}
	_, err = v.Verify(context.Background(), b, &verifier.Expected{Challenge: challenge(crypto.SHA256, 1)})
	if !errors.Is(err, cmw.ErrLimit) {
		t.Errorf("got %v, want a cmw limit error", err)
	}
}

func TestAttesterFaults(t *testing.T) {
	key := mustKey(t)
	ch := challenge(crypto.SHA256, 1)
	boom := errors.New("device busy")
	if _, err := (&Attester{Key: key, Err: boom}).Attest(context.Background(), ch); err != boom {
		t.Errorf("Err: got %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := (&Attester{Key: key, Delay: time.Hour}).Attest(ctx, ch)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Errorf("Delay with deadline: %v after %v", err, time.Since(start))
	}
	start = time.Now()
	if _, err := (&Attester{Key: key, Delay: 20 * time.Millisecond}).Attest(context.Background(), ch); err != nil || time.Since(start) < 20*time.Millisecond {
		t.Errorf("Delay: %v after %v", err, time.Since(start))
	}
	if _, err := (&Attester{}).Attest(context.Background(), ch); err == nil {
		t.Error("zero Attester attested")
	}
	if _, err := (&Attester{Key: key}).Attest(context.Background(), attester.Challenge{}); !errors.Is(err, attester.ErrInvalidChallenge) {
		t.Errorf("invalid challenge: %v", err)
	}
}

func TestVerifierInputs(t *testing.T) {
	key := mustKey(t)
	ch := challenge(crypto.SHA256, 1)
	v := &Verifier{TrustedKeys: []*ecdsa.PublicKey{&key.PublicKey}}
	b, err := (&Attester{Key: key}).Attest(context.Background(), ch)
	if err != nil {
		t.Fatal(err)
	}
	exp := &verifier.Expected{Challenge: ch}
	if _, err := v.Verify(context.Background(), b, nil); err == nil {
		t.Error("nil Expected accepted")
	}
	if _, err := v.Verify(context.Background(), b, &verifier.Expected{}); err == nil || errors.Is(err, verifier.ErrRejected) {
		t.Errorf("invalid expected challenge: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := v.Verify(ctx, b, exp); !errors.Is(err, verifier.ErrUnavailable) {
		t.Errorf("cancelled context: %v", err)
	}

	c, _ := cmw.Decode(b, nil)
	r, _ := c.Record()
	rewrap := func(mt string, val []byte, ind cmw.Indicator) []byte {
		rec, err := cmw.NewRecord(mt, val, ind)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := rec.Marshal()
		return out
	}
	col, _ := cmw.NewCollection("")
	_ = col.Add(cmw.TextLabel("x"), c)
	colb, _ := col.Marshal()
	tampered := bytes.Clone(r.Value)
	tampered[len(tampered)-80] ^= 1 // inside the payload or signature
	es384 := func() []byte {
		k384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		s, _ := cose.NewSigner(cose.AlgorithmES384, k384)
		kid, _ := KeyID(&key.PublicKey)
		sig, err := cose.Sign1(rand.Reader, s, cose.Headers{Protected: cose.ProtectedHeader{
			cose.HeaderLabelAlgorithm: cose.AlgorithmES384, cose.HeaderLabelKeyID: kid}}, []byte{0xa0}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}()
	tests := []struct {
		name  string
		check verifier.Check
		in    []byte
	}{
		{"json re-wrap is fine", 0, func() []byte { j, _ := c.MarshalJSON(); return j }()},
		{"wrong media type", verifier.CheckFormat, rewrap(cmw.MediaTypeEAR, r.Value, cmw.Evidence)},
		{"attestation-results indicator", verifier.CheckFormat, rewrap(cmw.MediaTypeTestKit, r.Value, cmw.AttestationResults)},
		{"collection", verifier.CheckFormat, colb},
		{"not COSE", verifier.CheckFormat, rewrap(cmw.MediaTypeTestKit, []byte{0xa0}, cmw.Evidence)},
		{"tampered", verifier.CheckSignature, rewrap(cmw.MediaTypeTestKit, tampered, cmw.Evidence)},
		{"ES384", verifier.CheckSignature, rewrap(cmw.MediaTypeTestKit, es384, cmw.Evidence)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), tt.in, exp)
			if tt.check == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var re *verifier.RejectedError
			if !errors.As(err, &re) || re.Check != tt.check {
				t.Errorf("got %v, want check %q", err, tt.check)
			}
		})
	}
}

func TestVerifierIsRaceFree(t *testing.T) {
	key := mustKey(t)
	a := &Attester{Key: key}
	v := &Verifier{TrustedKeys: []*ecdsa.PublicKey{&key.PublicKey}}
	done := make(chan error, 8)
	for i := range 8 {
		go func() {
			ch := challenge(crypto.SHA256, byte(i))
			b, err := a.Attest(context.Background(), ch)
			if err == nil {
				_, err = v.Verify(context.Background(), b, &verifier.Expected{Challenge: ch})
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// BenchmarkAttestVerify measures one test-kit attestation and its
// verification, separately and together.
func BenchmarkAttestVerify(b *testing.B) {
	key := mustKey(b)
	a := &Attester{Key: key, Measurements: []verifier.Measurement{{Name: "firmware", Value: fw[:]}}}
	v := &Verifier{TrustedKeys: []*ecdsa.PublicKey{&key.PublicKey}, ReferenceMeasurements: a.Measurements}
	ch := challenge(crypto.SHA256, 1)
	exp := &verifier.Expected{Challenge: ch}
	ev, err := a.Attest(context.Background(), ch)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("attest", func(b *testing.B) {
		for b.Loop() {
			if _, err := a.Attest(context.Background(), ch); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("verify", func(b *testing.B) {
		for b.Loop() {
			if _, err := v.Verify(context.Background(), ev, exp); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("attest+verify", func(b *testing.B) {
		for b.Loop() {
			e, err := a.Attest(context.Background(), ch)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := v.Verify(context.Background(), e, exp); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkBaselineECDSA is the same-run baseline for BenchmarkAttestVerify:
// one raw P-256 signature and its verification.
func BenchmarkBaselineECDSA(b *testing.B) {
	key := mustKey(b)
	digest := sha256.Sum256([]byte("baseline"))
	for b.Loop() {
		sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
		if err != nil || !ecdsa.VerifyASN1(&key.PublicKey, digest[:], sig) {
			b.Fatal("baseline failed")
		}
	}
}
