package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/attested-tls/go-expat/attester/tpm"
	"github.com/attested-tls/go-expat/attester/tpm/tpmsim"
	"github.com/attested-tls/go-expat/expat"
	vtpm "github.com/attested-tls/go-expat/verifier/tpm"
)

// errNoSimulator is what a build without cgo reports.
var errNoSimulator = errors.New("the TPM simulator needs cgo (gcc and libssl-dev); rebuild with CGO_ENABLED=1")

// platform is the demo's one simulated machine: a TPM 2.0 simulator in
// this process and an attester over it, quoting PCR 16. Server and client
// both attest from it (one simulator per process); on real machines each
// side opens its own TPM (tpm.OpenDevice) or TEE attester.
type platform struct {
	conn *tpm.Conn
	att  *tpm.Attester
}

// quoted is the PCR the demo quotes; nothing extends it, so its expected
// value is all zeros (a real policy lists the measurements of approved
// software).
const quoted = 16

func openPlatform(ctx context.Context) (*platform, error) {
	sim, err := tpmsim.Open()
	if errors.Is(err, tpmsim.ErrNoCgo) {
		return nil, errNoSimulator
	}
	if err != nil {
		return nil, err
	}
	conn, err := tpm.Open(sim, nil)
	if err != nil {
		sim.Close()
		return nil, err
	}
	att, err := tpm.NewAttester(ctx, conn, &tpm.Config{PCRs: []int{quoted}})
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &platform{conn: conn, att: att}, nil
}

func (p *platform) close() {
	p.att.Close(context.Background())
	p.conn.Close()
}

// verifier appraises this platform's quotes: its AK pinned, PCR 16 as
// expected.
func (p *platform) verifier() (*vtpm.Verifier, error) {
	return vtpm.New(&vtpm.Config{
		TrustedAKs: []crypto.PublicKey{p.att.AKPublicKey()},
		PCRPolicy:  map[int][][]byte{quoted: {make([]byte, sha256.Size)}},
	})
}

// side is one end's TLS identity (a self-signed certificate the other end
// pins through its pool) and its attestation policy.
type side struct {
	cert tls.Certificate
	pool *x509.CertPool
}

func newSide(name string) (*side, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return &side{cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool: pool}, nil
}

// demo is what every integration's demo starts from.
type demo struct {
	plat     *platform
	srv, cli *side
}

const serverName = "server.example"

func newDemo(ctx context.Context) (*demo, error) {
	plat, err := openPlatform(ctx)
	if err != nil {
		return nil, err
	}
	d := &demo{plat: plat}
	if d.srv, err = newSide(serverName); err == nil {
		d.cli, err = newSide("client.example")
	}
	if err != nil {
		plat.close()
		return nil, err
	}
	return d, nil
}

// attesting is the expat.Config of a side that attests with the platform.
func (d *demo) attesting(s *side) *expat.Config {
	return &expat.Config{Attester: d.plat.att, Certificate: &s.cert}
}

// checking adds the appraisal of the peer to cfg.
func (d *demo) checking(cfg *expat.Config, required bool) (*expat.Config, error) {
	v, err := d.plat.verifier()
	if err != nil {
		return nil, err
	}
	cfg.Verifier = v
	cfg.RequirePeerAttestation = required
	cfg.PeerAttestationOnDemand = !required
	return cfg, nil
}

func describe(a *expat.Attestation) string {
	if a == nil {
		return "none"
	}
	return fmt.Sprintf("#%d %s %s (%s)", a.Seq, a.Result.Technology, a.Result.Status, a.Result.Verifier)
}
