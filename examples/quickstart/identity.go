package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/attested-tls/go-expat/attester/tpm"
	vtpm "github.com/attested-tls/go-expat/verifier/tpm"
)

// serverName is the DNS name in the demo server's certificate.
const serverName = "quickstart.local"

// demoCA is a software certificate authority standing in for a real PKI.
// DEMO ONLY: its key lives in memory and nothing outside this demo trusts it.
type demoCA struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
}

func newDemoCA(who string) (*demoCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "go-expat quickstart demo CA (" + who + ", DEMO ONLY)"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &demoCA{key: key, cert: cert}, nil
}

// issue certifies a TLS key: for a server (DNS name serverName) or a client.
func (ca *demoCA) issue(key crypto.Signer, commonName string, server bool) (tls.Certificate, error) {
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: commonName},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.DNSNames = []string{serverName}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

func randomSerial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

// peerTrust is everything a relying party must know about its peer before
// they talk. In this demo it is handed over in memory, or in a file (-ak-file)
// when server and client run as separate processes; in a deployment it
// comes from enrollment (an AK certificate issued after TPM2_ActivateCredential
// against the EK certificate: see verifier/tpm's EnrollmentCA) and from the
// operator's PKI and Verifier configuration.
type peerTrust struct {
	// CA issued the peer's TLS certificate.
	CA *x509.Certificate
	// AKPublic is the peer's TPM attestation key (TPMT_PUBLIC), pinned.
	AKPublic []byte
	// Issuer is the EAR signing key of the peer's local Verifier (passport
	// model only).
	Issuer *ecdsa.PublicKey
}

// PEM block types of the trust file.
const (
	pemCA     = "CERTIFICATE"
	pemAK     = "TPM2 AK PUBLIC"
	pemIssuer = "EAR ISSUER PUBLIC KEY"
)

// maxTrustFile bounds what readTrustFile reads.
const maxTrustFile = 64 << 10

func (t *peerTrust) akKey() (crypto.PublicKey, error) { return vtpm.ParseAKPublic(t.AKPublic) }

// marshal encodes t as PEM blocks.
func (t *peerTrust) marshal() ([]byte, error) {
	var buf bytes.Buffer
	blocks := []*pem.Block{{Type: pemCA, Bytes: t.CA.Raw}, {Type: pemAK, Bytes: t.AKPublic}}
	if t.Issuer != nil {
		der, err := x509.MarshalPKIXPublicKey(t.Issuer)
		if err != nil {
			return nil, err
		}
		blocks = append(blocks, &pem.Block{Type: pemIssuer, Bytes: der})
	}
	for _, b := range blocks {
		if err := pem.Encode(&buf, b); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

// writeFile writes t to path atomically (the peer may be reading it).
func (t *peerTrust) writeFile(path string) error {
	data, err := t.marshal()
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".quickstart-trust-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// readTrustFile reads a file written by writeFile, strictly: exactly one CA
// certificate and one AK, at most one issuer key, nothing else.
func readTrustFile(path string) (*peerTrust, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxTrustFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxTrustFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxTrustFile)
	}
	t, err := parseTrust(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// parseTrust parses the PEM blocks of a trust file.
func parseTrust(data []byte) (*peerTrust, error) {
	var err error
	t := &peerTrust{}
	for {
		// Nothing but PEM blocks and white space: pem.Decode alone would
		// skip any text before a block.
		data = bytes.TrimLeft(data, " \t\r\n")
		if len(data) == 0 {
			break
		}
		if !bytes.HasPrefix(data, []byte("-----BEGIN ")) {
			return nil, errors.New("text outside PEM blocks")
		}
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("malformed PEM block")
		}
		if len(b.Headers) != 0 {
			return nil, fmt.Errorf("PEM block %q has headers", b.Type)
		}
		switch {
		case b.Type == pemCA && t.CA == nil:
			if t.CA, err = x509.ParseCertificate(b.Bytes); err != nil {
				return nil, fmt.Errorf("CA certificate: %w", err)
			}
		case b.Type == pemAK && t.AKPublic == nil:
			t.AKPublic = b.Bytes
			if _, err := t.akKey(); err != nil {
				return nil, err
			}
		case b.Type == pemIssuer && t.Issuer == nil:
			k, err := x509.ParsePKIXPublicKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("EAR issuer key: %w", err)
			}
			ek, ok := k.(*ecdsa.PublicKey)
			if !ok || ek.Curve != elliptic.P256() {
				return nil, errors.New("EAR issuer key is not an ECDSA P-256 key")
			}
			t.Issuer = ek
		default:
			return nil, fmt.Errorf("unexpected or repeated PEM block %q", b.Type)
		}
	}
	if t.CA == nil || t.AKPublic == nil {
		return nil, errors.New("needs a CA certificate and an AK")
	}
	return t, nil
}

// identity is one side's attested TLS identity: a key created inside the
// TPM, certified by the side's demo CA.
type identity struct {
	key  *tpm.Key
	cert tls.Certificate
}

func newIdentity(ctx context.Context, p *platform, ca *demoCA, commonName string, server bool) (*identity, error) {
	key, err := p.att.NewKey(ctx)
	if err != nil {
		return nil, err
	}
	cert, err := ca.issue(key, commonName, server)
	if err != nil {
		return nil, err
	}
	return &identity{key: key, cert: cert}, nil
}
