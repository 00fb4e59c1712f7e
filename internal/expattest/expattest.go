// Package expattest is TEST ONLY: the testing.TB front end of the public
// kit github.com/attested-tls/go-expat/expat/expattest (which holds the CA,
// the loopback TLS pair and the attested pair) and the assertions that
// go-expat's own tests share (integration tests, backends' end-to-end
// tests, live Veraison tests). Each helper fails the test instead of
// returning an error.
package expattest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/expat"
	pub "github.com/attested-tls/go-expat/expat/expattest"
	"github.com/attested-tls/go-expat/internal/checktest"
	"github.com/attested-tls/go-expat/verifier"
)

// PKI is a throwaway CA for the tests' TLS identities.
type PKI struct{ *pub.CA }

// NewPKI returns a fresh CA.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	ca, err := pub.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	return &PKI{ca}
}

// Issue is pub.CA.Issue, failing t on error.
func (p *PKI) Issue(t testing.TB, name string, signer crypto.Signer) tls.Certificate {
	t.Helper()
	c, err := p.CA.Issue(name, signer)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ServerName is the name TLSPair's client expects; Issue certificates for it.
const ServerName = pub.ServerName

// TLSPair is pub.CA.TLSPair with a 30 s bound, both ends closed when the
// test ends.
func TLSPair(t testing.TB, p *PKI, srvCert tls.Certificate, cliCert *tls.Certificate) (srv, cli *tls.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, cli, err := p.CA.TLSPair(ctx, srvCert, cliCert)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(); cli.Close() })
	return srv, cli
}

// AttestedPair is pub.Attest with a 30 s bound: it returns both ends and
// each end's setup error; both ends are closed when the test ends.
func AttestedPair(t testing.TB, srv, cli *tls.Conn, scfg, ccfg *expat.Config) (s, c *expat.Conn, serr, cerr error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := pub.Attest(ctx, srv, cli, scfg, ccfg)
	if p == nil {
		t.Fatal(err) // a Config refused by expat.Server or expat.Client
	}
	t.Cleanup(func() { p.Close() })
	return p.Server, p.Client, p.ServerErr, p.ClientErr
}

// Exchange checks that application data flows both ways.
func Exchange(t testing.TB, a, b *expat.Conn) {
	t.Helper()
	for _, dir := range [][2]*expat.Conn{{a, b}, {b, a}} {
		msg := []byte("application data over attested TLS")
		errc := make(chan error, 1)
		go func() {
			_, err := dir[0].Write(msg)
			errc <- err
		}()
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(dir[1], got); err != nil {
			t.Fatalf("read: %v", err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("write: %v", err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("read %q", got)
		}
	}
}

// WantRejected checks that err is a verifier rejection with Check check,
// carried in the *expat.Error that Handshake returns.
func WantRejected(t testing.TB, err error, check verifier.Check) {
	t.Helper()
	var xe *expat.Error
	if !errors.As(err, &xe) {
		t.Fatalf("got %v, want an *expat.Error", err)
	}
	checktest.Rejected(t, err, check)
}

// WantNoData checks that a side whose required attestation failed neither
// sends nor receives application data.
func WantNoData(t testing.TB, c *expat.Conn) {
	t.Helper()
	if c.PeerAttestation() != nil {
		t.Fatal("an attestation is recorded after a failure")
	}
	if _, err := c.Write([]byte("secret")); err == nil {
		t.Fatal("application data written on an unattested connection")
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("application data read on an unattested connection")
	}
}

// Recorder is an Attester that keeps what the wrapped Attester produced,
// for checks of the Evidence that actually went over the wire.
type Recorder struct {
	attester.Attester
	mu   sync.Mutex
	sent [][]byte
	chs  []attester.Challenge
}

func (r *Recorder) Attest(ctx context.Context, ch attester.Challenge) ([]byte, error) {
	b, err := r.Attester.Attest(ctx, ch)
	if err == nil {
		r.mu.Lock()
		r.sent = append(r.sent, bytes.Clone(b))
		r.chs = append(r.chs, ch)
		r.mu.Unlock()
	}
	return b, err
}

// Last returns what was attested last and for which challenge.
func (r *Recorder) Last(t testing.TB) ([]byte, attester.Challenge) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.sent) == 0 {
		t.Fatal("nothing attested")
	}
	return r.sent[len(r.sent)-1], r.chs[len(r.chs)-1]
}

// Connect runs one attested connection on loopback: the server presents a
// certificate from p for ServerName and attests with a; the client requires
// attestation and appraises with v. It returns the client's setup error and,
// on success, its view of the server's attestation.
func Connect(t testing.TB, p *PKI, a attester.Attester, v verifier.Verifier) (*expat.Attestation, error) {
	t.Helper()
	cert := p.Issue(t, ServerName, nil)
	srv, cli := TLSPair(t, p, cert, nil)
	_, c, _, cerr := AttestedPair(t, srv, cli,
		&expat.Config{Attester: a, Certificate: &cert},
		&expat.Config{RequirePeerAttestation: true, Verifier: v})
	if cerr != nil {
		return nil, cerr
	}
	return c.PeerAttestation(), nil
}
