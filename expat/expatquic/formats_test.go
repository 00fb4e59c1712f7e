package expatquic

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/ea"
	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/expat/internal/carriertest"
)

// Capability discovery over QUIC, as over expat.Conn: the SETUP states the
// formats each side accepts and produces (the test kit's come from its
// Formats methods); a relying party accepting none of the server's formats
// fails at once with the lists named, and the server produces no Evidence.
func TestFormatsOverQUIC(t *testing.T) {
	k := newKit(t)
	ctx := ctxT(t)
	// Matching formats: the ordinary setup (the test kit states its own).
	l := listen(t, k, k.serverConfig(false))
	go l.Accept(ctx)
	c, err := Dial(ctx, l.Addr().String(), k.clientTLS(), nil, k.clientConfig(false))
	if err != nil {
		t.Fatalf("matching formats: %v", err)
	}
	c.Close()

	// The client accepts only EARs.
	scfg := k.serverConfig(false)
	calls := &carriertest.CountingAttester{Inner: scfg.Attester}
	scfg.Attester = calls
	l2 := listen(t, k, scfg)
	serr := make(chan error, 1)
	go func() { _, err := l2.Accept(ctx); serr <- err }()
	cfg := k.clientConfig(false)
	cfg.AcceptedFormats = []string{cmw.MediaTypeEAR}
	_, err = Dial(ctx, l2.Addr().String(), k.clientTLS(), nil, cfg)
	var fm *expat.FormatMismatchError
	var e *expat.Error
	switch {
	case errors.As(err, &fm):
		if !slices.Equal(fm.Accepted, []string{cmw.MediaTypeEAR}) || !slices.Equal(fm.Produced, []string{cmw.MediaTypeTestKit}) {
			t.Fatalf("lists %q / %q", fm.Produced, fm.Accepted)
		}
	case errors.As(err, &e) && e.Remote && e.Alert == 40:
		// Learnt from the server's close first.
	default:
		t.Fatalf("Dial: %v, want a format mismatch", err)
	}
	if !errors.Is(err, expat.ErrNoCommonFormat) && !(errors.As(err, &e) && e.Remote) {
		t.Fatalf("Dial: %v", err)
	}
	if n := calls.N.Load(); n != 0 {
		t.Fatalf("the server produced Evidence %d times for a peer that accepts none of its formats", n)
	}
}

// The control stream's reader never waits out the pace: with a long
// PeerRequestInterval, a client's third request in a row (beyond
// MaxPeerRequests) closes the connection at once, not after the second
// one's turn has come.
func TestPacingDoesNotBlockReader(t *testing.T) {
	k := newKit(t)
	ctx := ctxT(t)
	cfg := k.serverConfig(false)
	cfg.PeerRequestInterval = 2 * time.Second
	l := listen(t, k, cfg)
	go l.Accept(ctx)
	qc := rawClient(t, ctx, k, l.Addr().String())
	ctrl, err := qc.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ctrl.Write(appendFrame(nil, frameSetup, []byte{frameVersion}))
	cs := qc.ConnectionState().TLS
	sess, err := ea.New(&cs, cs.CipherSuite, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var frames []byte
	for range 3 {
		req, err := sess.NewRequest([]ea.Extension{{Type: expat.DefaultExtensionType, Data: []byte{}}})
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := req.Marshal()
		frames = appendFrame(frames, frameRequest, msg)
	}
	start := time.Now()
	ctrl.Write(frames)
	select {
	case <-qc.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("connection not closed after a request beyond MaxPeerRequests")
	}
	wantCode(t, context.Cause(qc.Context()), alertUnexpectedMessage)
	if d := time.Since(start); d > time.Second {
		t.Fatalf("closed after %v: the reader waited for the pace", d)
	}
}

// stuckAttester ignores ctx until released.
type stuckAttester struct{ release chan struct{} }

func (a stuckAttester) Attest(ctx context.Context, ch attester.Challenge) ([]byte, error) {
	<-a.release
	return nil, errors.New("released")
}

// An Attester that ignores ctx is abandoned at SetupTimeout: the client
// gets the refusal in time, and the server's connection closes promptly.
func TestStuckAttesterBounded(t *testing.T) {
	k := newKit(t)
	ctx := ctxT(t)
	stuck := stuckAttester{make(chan struct{})}
	defer close(stuck.release)
	cfg := k.serverConfig(false)
	cfg.Attester = stuck
	cfg.SetupTimeout = 300 * time.Millisecond
	l := listen(t, k, cfg)
	accepted := make(chan *Conn, 1)
	go func() { s, _ := l.Accept(ctx); accepted <- s }()
	start := time.Now()
	_, err := Dial(ctx, l.Addr().String(), k.clientTLS(), nil, k.clientConfig(false))
	// The server's answer and its own setup share the bound: the client
	// sees the refusal or the server's close, in time either way.
	var e *expat.Error
	if !errors.Is(err, expat.ErrPeerRefused) && !(errors.As(err, &e) && e.Remote) {
		t.Fatalf("Dial: %v, want the server's refusal or close (its Attester overran)", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("refusal after %v", d)
	}
	l.Close()
	select {
	case s := <-accepted:
		if s != nil {
			done := make(chan struct{})
			go func() { s.Close(); close(done) }()
			select {
			case <-done:
			case <-time.After(2 * time.Second):
				t.Fatal("server Close waited for the stuck Attester")
			}
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Accept did not return")
	}
}
