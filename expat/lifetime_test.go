package expat

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/verifier/ear"
)

// Tests of the appraisal lifetime (use cases: "the validity of an
// appraisal is bounded by an explicit lifetime"): Attestation.ValidUntil,
// its end, and the re-attestation scheduler.

// lifetimePair is reattestPair with the client's Config adjusted by f.
func lifetimePair(t *testing.T, p *pki, k *kit, f func(*Config), att func(*Config)) (s, c *Conn) {
	t.Helper()
	srv, cli := tlsPair(t, p, tlsOpts{})
	scfg := &Config{Attester: k.att, Certificate: &p.server, PeerRequestInterval: time.Nanosecond}
	if att != nil {
		att(scfg)
	}
	ccfg := &Config{RequirePeerAttestation: true, Verifier: k.ver}
	f(ccfg)
	s, c, serr, cerr := attestedPair(t, srv, cli, scfg, ccfg)
	if serr != nil || cerr != nil {
		t.Fatalf("setup: server %v, client %v", serr, cerr)
	}
	go io.Copy(io.Discard, s)
	return s, c
}

// An attestation ends at ValidUntil: by default the connection closes with
// ErrAttestationExpired; with KeepOnFailure application data is blocked.
func TestAttestationExpires(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	for _, keep := range []bool{false, true} {
		_, c := lifetimePair(t, p, k, func(c *Config) { c.MaxAttestationAge = 300 * time.Millisecond; c.KeepOnFailure = keep }, nil)
		att := c.PeerAttestation()
		if att == nil || att.ValidUntil.Sub(att.VerifiedAt) != 300*time.Millisecond {
			t.Fatalf("ValidUntil %v after VerifiedAt %v, want 300ms", att.ValidUntil, att.VerifiedAt)
		}
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatalf("Write while attested: %v", err)
		}
		time.Sleep(400 * time.Millisecond)
		if c.PeerAttestation() != nil {
			t.Fatal("PeerAttestation after ValidUntil")
		}
		_, err := c.Write([]byte("x"))
		switch {
		case keep && !errors.Is(err, ErrNotAttested):
			t.Fatalf("KeepOnFailure: Write after expiry: %v, want ErrNotAttested", err)
		case !keep && !errors.Is(err, ErrAttestationExpired):
			t.Fatalf("Write after expiry: %v, want ErrAttestationExpired", err)
		}
		if keep {
			// Re-attesting restores the connection.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if _, err := c.Attest(ctx); err != nil {
				t.Fatalf("Attest after expiry: %v", err)
			}
			cancel()
			if _, err := c.Write([]byte("x")); err != nil {
				t.Fatalf("Write after re-attesting: %v", err)
			}
		}
	}
}

// ReattestBefore keeps a connection attested across lifetimes without the
// application doing anything; OnReattest sees each result.
func TestScheduledReattestation(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	var mu sync.Mutex
	var seqs []uint64
	_, c := lifetimePair(t, p, k, func(c *Config) {
		// Each re-attestation has 400 ms to complete before the
		// attestation it replaces expires (150 ms flaked at load 5).
		c.MaxAttestationAge = 600 * time.Millisecond
		c.ReattestBefore = 400 * time.Millisecond
		c.OnReattest = func(att *Attestation, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("scheduled re-attestation: %v", err)
				return
			}
			seqs = append(seqs, att.Seq)
		}
	}, nil)
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatalf("Write across lifetimes: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seqs) < 4 || seqs[0] != 2 {
		t.Fatalf("scheduled re-attestations %v, want at least 4 from Seq 2", seqs)
	}
}

// ReattestEvery re-attests on an interval even without a lifetime; a
// scheduled re-attestation that fails ends the attestation like a failed
// Attest.
func TestReattestEveryAndFailure(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	sw := &switchAttester{inner: k.att}
	failed := make(chan error, 8)
	_, c := lifetimePair(t, p, k, func(c *Config) {
		c.ReattestEvery = 100 * time.Millisecond
		c.KeepOnFailure = true
		c.OnReattest = func(_ *Attestation, err error) {
			if err != nil {
				failed <- err
			}
		}
	}, func(s *Config) { s.Attester = sw })
	time.Sleep(350 * time.Millisecond)
	if att := c.PeerAttestation(); att == nil || att.Seq < 3 {
		t.Fatalf("after 350 ms of ReattestEvery 100 ms: %+v", att)
	}
	sw.set(errors.New("quote service down"))
	select {
	case err := <-failed:
		if !errors.Is(err, ErrPeerRefused) {
			t.Fatalf("scheduled failure: %v, want ErrPeerRefused", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no scheduled re-attestation failed")
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, ErrNotAttested) {
		t.Fatalf("Write after a failed scheduled re-attestation: %v, want ErrNotAttested", err)
	}
}

// A passport's ValidUntil is the EAR's exp; a Config maximum age shorter
// than it wins.
func TestPassportLifetime(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	vkey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	iss := &ear.Issuer{Appraiser: k.ver, Key: vkey, KeyID: "v", Name: "v", Validity: 2 * time.Minute}
	pa := &ear.PassportAttester{Evidence: k.att, Issuer: iss}
	ev := earVerifier(t, &ear.Config{Keys: []ear.TrustedKey{{ID: "v", Key: &vkey.PublicKey}}, Issuer: "v"})
	for _, tc := range []struct {
		maxAge time.Duration
		want   time.Duration // ValidUntil - iat, roughly
	}{{0, 2 * time.Minute}, {time.Minute, time.Minute}} {
		srv, cli := tlsPair(t, p, tlsOpts{})
		_, c, serr, cerr := attestedPair(t, srv, cli,
			&Config{Attester: pa, Certificate: &p.server},
			&Config{RequirePeerAttestation: true, Verifier: ev, MaxAttestationAge: tc.maxAge})
		if serr != nil || cerr != nil {
			t.Fatal(serr, cerr)
		}
		att := c.PeerAttestation()
		got := att.ValidUntil.Sub(att.Result.AppraisedAt)
		if got < tc.want-2*time.Second || got > tc.want+2*time.Second {
			t.Fatalf("MaxAttestationAge %v: ValidUntil - iat = %v, want about %v", tc.maxAge, got, tc.want)
		}
		if att.Result.Expires.Sub(att.Result.AppraisedAt) != 2*time.Minute {
			t.Fatalf("Result.Expires - iat = %v, want the EAR's 2m validity", att.Result.Expires.Sub(att.Result.AppraisedAt))
		}
	}
}
