package expat

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"
)

// FuzzConnPeerStream feeds arbitrary bytes, as the peer's side of the
// framing after a real TLS 1.3 handshake, to a client Conn that requires
// attestation. Whatever arrives, the Conn must not panic, must not report
// the peer as attested, and must end within its deadline.
//
// Each execution needs a fresh TLS connection, whose handshake is most of
// its cost; it is kept cheap (see fuzzTLS) so that the target explores.
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
	ft := newFuzzTLS(p)
	cfg := &Config{RequirePeerAttestation: true, Verifier: k.ver, Attester: k.att, Certificate: &p.client, PeerIdentity: PeerIdentity{AttestationOnly: true}}
	f.Fuzz(func(t *testing.T, stream []byte) {
		cli, end := ft.peer(t, stream)
		defer end()
		c, err := Client(cli, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
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

// fuzzTLS makes the TLS 1.3 connections of FuzzConnPeerStream, one per
// execution, at a fraction of tlsPair's cost: over net.Pipe rather than
// loopback TCP, X25519 alone (no ML-KEM key share), and no verification
// of the server's chain (the client Conn identifies its peer by
// attestation alone, PeerIdentity.AttestationOnly, so the handshake
// identity plays no part in what the target checks).
type fuzzTLS struct{ srv, cli *tls.Config }

func newFuzzTLS(p *pki) *fuzzTLS {
	curves := []tls.CurveID{tls.X25519}
	return &fuzzTLS{
		srv: ServerTLSConfig(&tls.Config{Certificates: []tls.Certificate{p.server}, CurvePreferences: curves}),
		cli: ClientTLSConfig(&tls.Config{InsecureSkipVerify: true, CurvePreferences: curves}),
	}
}

// peer returns the client end of a fresh TLS 1.3 connection, handshake
// completed, whose server end writes stream, then closes (close_notify),
// while discarding whatever the client writes. end closes both ends and
// waits for the server's goroutines.
func (ft *fuzzTLS) peer(t *testing.T, stream []byte) (cli *tls.Conn, end func()) {
	a, b := net.Pipe()
	closeBoth := func() { a.Close(); b.Close() }
	srv := tls.Server(a, ft.srv)
	cli = tls.Client(b, ft.cli)
	hs := make(chan error, 1)
	done := make(chan struct{}, 2)
	go func() {
		defer func() { done <- struct{}{} }()
		if err := srv.Handshake(); err != nil {
			hs <- err
			return
		}
		hs <- nil
		go func() {
			defer func() { done <- struct{}{} }()
			io.Copy(io.Discard, srv)
		}()
		srv.Write(stream)
		srv.Close()
	}()
	err := cli.Handshake()
	if herr := <-hs; err == nil {
		err = herr
	}
	if err != nil {
		closeBoth()
		t.Fatalf("TLS handshake: %v", err)
	}
	return cli, func() { closeBoth(); <-done; <-done }
}
