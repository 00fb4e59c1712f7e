package expat

import (
	"context"
	"testing"
	"time"
)

// FuzzConnPeerStream feeds arbitrary bytes, as the peer's side of the
// framing after a real TLS 1.3 handshake, to a client Conn that requires
// attestation. Whatever arrives, the Conn must not panic, must not report
// the peer as attested, and must end within its deadline.
func FuzzConnPeerStream(f *testing.F) {
	f.Add(appendFrame(nil, frameSetup, []byte{frameVersion}))
	f.Add(appendFrame(appendFrame(nil, frameSetup, []byte{frameVersion}), frameAuthenticator, []byte{0}, []byte{20, 0, 0, 32}, make([]byte, 32)))
	f.Add(appendFrame(appendFrame(nil, frameSetup, []byte{frameVersion}), frameData, []byte("x")))
	f.Add(appendFrame(nil, frameClose, []byte{42}))
	f.Add([]byte{frameSetup, 0, 0, 0})
	f.Add([]byte{frameSetup, 0, 0, 1, 2})
	f.Add(appendFrame(appendFrame(nil, frameSetup, []byte{frameVersion}), frameRequest, []byte{13, 0, 0, 1, 0}))
	formats := setupFormats{accepts: []string{"application/a"}, produces: []string{"application/b"}}.marshal()
	f.Add(appendFrame(nil, frameSetup, []byte{frameVersionFormats, 0, byte(len(formats))}, formats))
	f.Add(appendFrame(appendFrame(nil, frameSetup, []byte{frameVersion}), frameEnd, []byte{0}))
	p := newPKI(f)
	k := newKit(f)
	f.Fuzz(func(t *testing.T, stream []byte) {
		srv, cli := tlsPair(t, p, tlsOpts{})
		c, err := Client(cli, &Config{RequirePeerAttestation: true, Verifier: k.ver, Attester: k.att, Certificate: &p.client, PeerIdentity: PeerIdentity{AttestationOnly: true}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		go func() {
			srv.Write(stream)
			srv.Close()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := c.Handshake(ctx); err == nil {
			t.Fatalf("setup succeeded on fuzz input %x", stream)
		}
		if c.PeerAttestation() != nil {
			t.Fatal("attestation committed")
		}
	})
}
