package expat

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/attester"
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
