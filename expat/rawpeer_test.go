package expat

import (
	"bytes"
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/ea"
	"golang.org/x/crypto/cryptobyte"
)

// rawPeer is a misbehaving peer for tests: it speaks the framing of Conn
// over a real TLS connection, but every step is under the test's control,
// so that it can send what a buggy or malicious implementation would.
type rawPeer struct {
	t        testing.TB
	tc       *tls.Conn
	isServer bool
	sess     *ea.Session
}

func newRawPeer(t testing.TB, tc *tls.Conn, isServer bool) *rawPeer {
	cs := tc.ConnectionState()
	sess, err := ea.NewSession(&cs, isServer, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &rawPeer{t: t, tc: tc, isServer: isServer, sess: sess}
}

func (p *rawPeer) send(typ byte, payload ...[]byte) error {
	_, err := p.tc.Write(appendFrame(nil, typ, payload...))
	return err
}

// request returns a new framed attestation request of the raw peer.
func (p *rawPeer) request(t testing.TB) []byte {
	t.Helper()
	req, err := p.sess.NewRequest([]ea.Extension{{Type: DefaultExtensionType, Data: []byte{}}})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// sendAuth sends an AUTHENTICATOR frame answering the request with context reqCtx.
func (p *rawPeer) sendAuth(reqCtx, auth []byte) error {
	return p.send(frameAuthenticator, []byte{byte(len(reqCtx))}, reqCtx, auth)
}

// next reads one frame, failing the test on error or after 10 s.
func (p *rawPeer) next() (byte, []byte, error) {
	p.tc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var hdr [frameHeaderLen]byte
	typ, n, err := readFrameHeader(p.tc, &hdr, frameLimit(1<<20))
	if err != nil {
		return 0, nil, err
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(p.tc, b); err != nil {
		return 0, nil, err
	}
	return typ, b, nil
}

// expect reads frames until one of type typ arrives.
func (p *rawPeer) expect(typ byte) []byte {
	p.t.Helper()
	for {
		got, b, err := p.next()
		if err != nil {
			p.t.Fatalf("raw peer: waiting for frame 0x%02x: %v", typ, err)
		}
		if got == typ {
			return b
		}
	}
}

// setupRequest reads the victim's SETUP frame and returns its request.
func (p *rawPeer) setupRequest() *ea.Request {
	p.t.Helper()
	_, reqMsg, err := parseSetup(p.expect(frameSetup))
	if err != nil || len(reqMsg) == 0 {
		p.t.Fatalf("raw peer: SETUP without request (%v)", err)
	}
	req, err := ea.ParseRequest(reqMsg)
	if err != nil {
		p.t.Fatal(err)
	}
	return req
}

// drain reads and discards until the connection fails, reporting whether a
// DATA frame ever arrived and the alert of a CLOSE frame, if any.
func (p *rawPeer) drain() (gotData bool, alert tls.AlertError) {
	for {
		typ, b, err := p.next()
		if err != nil {
			return gotData, alert
		}
		switch typ {
		case frameData:
			gotData = true
		case frameClose:
			alert = tls.AlertError(b[0])
		}
	}
}

// forgeAuthenticator builds Certificate || CertificateVerify || Finished the
// way a peer that ignores RFC 9261's rules would: any extensions on any
// entry, for any request bytes, with the keys of the given direction.
func forgeAuthenticator(t testing.TB, cs *tls.ConnectionState, senderIsServer bool, reqMsg []byte, reqCtx []byte, cert *tls.Certificate, entryExts [][]ea.Extension) []byte {
	t.Helper()
	h := crypto.SHA256
	if cs.CipherSuite == tls.TLS_AES_256_GCM_SHA384 {
		h = crypto.SHA384
	}
	role := "client"
	if senderIsServer {
		role = "server"
	}
	hc, err := cs.ExportKeyingMaterial("EXPORTER-"+role+" authenticator handshake context", nil, h.Size())
	if err != nil {
		t.Fatal(err)
	}
	fk, _ := cs.ExportKeyingMaterial("EXPORTER-"+role+" authenticator finished key", nil, h.Size())

	var cb cryptobyte.Builder
	cb.AddUint8(ea.TypeCertificate)
	cb.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(reqCtx) })
		b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
			for i, der := range cert.Certificate {
				b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(der) })
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
					if i < len(entryExts) {
						for _, x := range entryExts[i] {
							b.AddUint16(x.Type)
							b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(x.Data) })
						}
					}
				})
			}
		})
	})
	certMsg, err := cb.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	th := h.New()
	th.Write(hc)
	th.Write(reqMsg)
	th.Write(certMsg)
	content := append(bytes.Repeat([]byte{0x20}, 64), "Exported Authenticator\x00"...)
	content = append(content, th.Sum(nil)...)
	digest := crypto.SHA256.New()
	digest.Write(content)
	sig, err := cert.PrivateKey.(crypto.Signer).Sign(rand.Reader, digest.Sum(nil), crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	var vb cryptobyte.Builder
	vb.AddUint8(ea.TypeCertificateVerify)
	vb.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint16(uint16(tls.ECDSAWithP256AndSHA256))
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(sig) })
	})
	cvMsg, _ := vb.Bytes()
	th.Write(cvMsg)
	mac := hmac.New(h.New, fk)
	mac.Write(th.Sum(nil))
	var fb cryptobyte.Builder
	fb.AddUint8(ea.TypeFinished)
	fb.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(mac.Sum(nil)) })
	finMsg, _ := fb.Bytes()
	return append(append(certMsg, cvMsg...), finMsg...)
}

// waitErr waits for err from a goroutine with a bound.
func waitErr(t testing.TB, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("timed out")
		return nil
	}
}

// handshakeAsync runs Handshake on c in a goroutine.
func handshakeAsync(c *Conn, d time.Duration) <-chan error {
	ch := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		ch <- c.Handshake(ctx)
	}()
	return ch
}

func mustAs[T error](t testing.TB, err error) T {
	t.Helper()
	var target T
	if !errors.As(err, &target) {
		t.Fatalf("error %v (%T) is not a %T", err, err, target)
	}
	return target
}

var _ = fmt.Sprintf
