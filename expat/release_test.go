package expat

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/expat/expattest/testkit"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/ear"
)

// orderAttester records, at each call, whether its Conn had already
// verified the peer.
type orderAttester struct {
	inner     attester.Attester
	conn      atomic.Pointer[Conn]
	calls     atomic.Int32
	peerFirst atomic.Int32
}

func (a *orderAttester) Attest(ctx context.Context, ch attester.Challenge) ([]byte, error) {
	a.calls.Add(1)
	if c := a.conn.Load(); c != nil && c.PeerAttestation() != nil {
		a.peerFirst.Add(1)
	}
	return a.inner.Attest(ctx, ch)
}

// Privacy (use cases §4.8): a server releases its Evidence only to a
// client that authenticated, by certificate or by attestation.
func TestReleasePolicy(t *testing.T) {
	p := newPKI(t)
	sk, ck := newKit(t), newKit(t)
	t.Run("authenticated: anonymous client refused, no quote", func(t *testing.T) {
		oa := &orderAttester{inner: sk.att}
		srv, cli := tlsPair(t, p, tlsOpts{})
		_, _, serr, cerr := attestedPair(t, srv, cli,
			&Config{Attester: oa, Certificate: &p.server, Release: ReleaseToAuthenticated},
			&Config{RequirePeerAttestation: true, Verifier: sk.ver})
		if !errors.Is(cerr, ErrPeerRefused) {
			t.Fatalf("client setup: %v, want ErrPeerRefused", cerr)
		}
		_ = serr
		if oa.calls.Load() != 0 {
			t.Fatal("the server quoted for an anonymous client")
		}
	})
	t.Run("authenticated: client certificate", func(t *testing.T) {
		srv, cli := tlsPair(t, p, tlsOpts{clientCert: true})
		_, c, serr, cerr := attestedPair(t, srv, cli,
			&Config{Attester: sk.att, Certificate: &p.server, Release: ReleaseToAuthenticated},
			&Config{RequirePeerAttestation: true, Verifier: sk.ver})
		if serr != nil || cerr != nil || c.PeerAttestation() == nil {
			t.Fatalf("setup: %v %v", serr, cerr)
		}
	})
	t.Run("attested: the client goes first", func(t *testing.T) {
		oa := &orderAttester{inner: sk.att}
		srv, cli := tlsPair(t, p, tlsOpts{clientCert: true})
		s, err := Server(srv, &Config{Attester: oa, Certificate: &p.server, Release: ReleaseToAttested, RequirePeerAttestation: true, Verifier: ck.ver})
		if err != nil {
			t.Fatal(err)
		}
		oa.conn.Store(s)
		c, err := Client(cli, &Config{Attester: ck.att, Certificate: &p.client, RequirePeerAttestation: true, Verifier: sk.ver})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hs := handshakeAsync(s, 10*time.Second)
		if err := c.Handshake(ctx); err != nil {
			t.Fatalf("client setup: %v", err)
		}
		if err := waitErr(t, hs); err != nil {
			t.Fatalf("server setup: %v", err)
		}
		if oa.calls.Load() != 1 || oa.peerFirst.Load() != 1 {
			t.Fatalf("server quoted %d times, %d of them after verifying the client; want 1 and 1", oa.calls.Load(), oa.peerFirst.Load())
		}
	})
	t.Run("attested: a client that does not attest gets nothing", func(t *testing.T) {
		oa := &orderAttester{inner: sk.att}
		srv, cli := tlsPair(t, p, tlsOpts{clientCert: true})
		_, _, serr, cerr := attestedPair(t, srv, cli,
			&Config{Attester: oa, Certificate: &p.server, Release: ReleaseToAttested, RequirePeerAttestation: true, Verifier: ck.ver},
			&Config{RequirePeerAttestation: true, Verifier: sk.ver})
		if serr == nil || cerr == nil {
			t.Fatalf("setup succeeded: server %v, client %v", serr, cerr)
		}
		if oa.calls.Load() != 0 {
			t.Fatal("the server quoted for a client that never attested")
		}
	})
	if _, err := Server(nil, &Config{Release: ReleaseToAttested}); err == nil {
		t.Fatal("ReleaseToAttested without RequirePeerAttestation accepted")
	}
}

// Key provenance and machine identity with the test kit and passports: a
// nonce-bound passport or the test kit's Evidence does not meet a policy
// requiring the key in a Verifier's result; a key-attested EAR does; a
// pinned test-kit "platform" rejects another trusted one.
func TestKeyBindingAndPlatformPolicy(t *testing.T) {
	p := newPKI(t)
	k, other := newKit(t), newKit(t)
	vkey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	trusted := []ear.TrustedKey{{Key: &vkey.PublicKey}}
	keyEAR := &ear.PassportAttester{Evidence: k.att, Issuer: &ear.Issuer{Appraiser: k.ver, Key: vkey, KeyAttestation: true},
		SPKI: spki(t, &p.server), PublicKey: p.server.Leaf.PublicKey}
	nonceEAR := &ear.PassportAttester{Evidence: k.att, Issuer: &ear.Issuer{Appraiser: k.ver, Key: vkey}}
	bothKits := &Config{RequirePeerAttestation: true, Verifier: multiKit{k.ver, other.ver}}
	kitID := func(kk *kit) verifier.PlatformID {
		id, _ := testkitKeyID(kk)
		return verifier.PlatformID{Kind: "test-kit.key-sha256", Value: id}
	}
	for _, tc := range []struct {
		name   string
		att    attester.Attester
		client *Config
		want   func(error) bool
	}{
		{"test kit Evidence meets KeyInEvidence", k.att, &Config{RequirePeerAttestation: true, Verifier: k.ver, MinKeyBinding: verifier.KeyInEvidence}, isNil},
		{"test kit Evidence fails KeyInResult", k.att, &Config{RequirePeerAttestation: true, Verifier: k.ver, MinKeyBinding: verifier.KeyInResult}, rejectedCheck(verifier.CheckKey)},
		{"nonce-bound EAR fails KeyInEvidence", nonceEAR, &Config{RequirePeerAttestation: true, Verifier: earVerifier(t, &ear.Config{Keys: trusted}), MinKeyBinding: verifier.KeyInEvidence}, rejectedCheck(verifier.CheckKey)},
		{"key-attested EAR meets KeyInResult", keyEAR, &Config{RequirePeerAttestation: true, Verifier: earVerifier(t, &ear.Config{Keys: trusted, Bindings: ear.BindKey}), MinKeyBinding: verifier.KeyInResult}, isNil},
		{"pinned platform", k.att, withPin(bothKits, kitID(k)), isNil},
		{"another trusted platform", other.att, withPin(bothKits, kitID(k)), rejectedCheck(verifier.CheckPlatform)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := tlsPair(t, p, tlsOpts{})
			_, _, _, cerr := attestedPair(t, srv, cli, &Config{Attester: tc.att, Certificate: &p.server}, tc.client)
			if !tc.want(cerr) {
				t.Fatalf("got %v", cerr)
			}
		})
	}
}

func isNil(err error) bool { return err == nil }

func withPin(c *Config, ids ...verifier.PlatformID) *Config {
	cc := *c
	cc.AllowedPlatforms = ids
	return &cc
}

func testkitKeyID(k *kit) ([]byte, error) { return testkit.KeyID(&k.key.PublicKey) }

// multiKit trusts the keys of several test kits.
type multiKit []*testkit.Verifier

func (m multiKit) Verify(ctx context.Context, b []byte, exp *verifier.Expected) (*verifier.Result, error) {
	v := &testkit.Verifier{}
	for _, x := range m {
		v.TrustedKeys = append(v.TrustedKeys, x.TrustedKeys...)
	}
	return v.Verify(ctx, b, exp)
}
