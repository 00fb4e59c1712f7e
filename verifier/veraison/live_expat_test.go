//go:build veraison

package veraison_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/attester/cca"
	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/ear"
	"github.com/attested-tls/go-expat/verifier/veraison"
)

// attestedOverTLS runs a real TLS 1.3 connection on loopback; the server
// attests with a, the client appraises with v through package expat. It
// returns the client's setup error and its attestation.
func attestedOverTLS(t *testing.T, a attester.Attester, v verifier.Verifier) (*expat.Attestation, error) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "realm.test"},
		DNSNames: []string{"realm.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", expat.ServerTLSConfig(&tls.Config{Certificates: []tls.Certificate{cert}}))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		tc := c.(*tls.Conn)
		if tc.Handshake() != nil {
			return
		}
		s, err := expat.Server(tc, &expat.Config{Attester: a, Certificate: &cert})
		if err != nil {
			return
		}
		defer s.Close()
		buf := make([]byte, 16)
		s.Read(buf)
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(raw, expat.ClientTLSConfig(&tls.Config{RootCAs: pool, ServerName: "realm.test"}))
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c, err := expat.Client(tc, &expat.Config{RequirePeerAttestation: true, Verifier: v})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := c.Handshake(ctx); err != nil {
		return nil, err
	}
	return c.PeerAttestation(), nil
}

// TestLiveOverAttestedTLS: a CCA realm attests over an attested TLS
// connection and the relying party has the live Veraison appraise it
// (background check), or the realm presents Veraison's EAR (passport)
// that the relying party checks with verifier/ear against Veraison's key.
func TestLiveOverAttestedTLS(t *testing.T) {
	l := setupLive(t, false)
	t.Run("background check", func(t *testing.T) {
		att, err := attestedOverTLS(t, l.a, l.v)
		if err != nil {
			t.Fatalf("setup: %v", err)
		}
		if att.Result.Model != verifier.BackgroundCheck || att.Result.Technology != "cca" || att.Result.Status != verifier.TierAffirming {
			t.Fatalf("result %+v", att.Result)
		}
	})
	t.Run("background check, changed realm measurement", func(t *testing.T) {
		q := l.p.Clone()
		q.Claims.PersonalizationValue = bytes.Repeat([]byte{0x55}, 64)
		a, err := cca.New(cca.Config{Client: q.Client()})
		if err != nil {
			t.Fatal(err)
		}
		_, err = attestedOverTLS(t, a, l.v)
		var re *verifier.RejectedError
		if !errors.As(err, &re) || re.Check != "status" {
			t.Fatalf("got %v, want a status rejection", err)
		}
	})
	t.Run("passport checked by verifier/ear", func(t *testing.T) {
		ev := &ear.Verifier{Keys: []ear.TrustedKey{{Key: liveKey(t)}}}
		att, err := attestedOverTLS(t, &veraison.Passport{Evidence: l.a, Client: l.c}, ev)
		if err != nil {
			t.Fatalf("setup: %v", err)
		}
		if att.Result.Model != verifier.Passport || att.Result.Status != verifier.TierAffirming {
			t.Fatalf("result %+v", att.Result)
		}
	})
	t.Run("stale platform state: changed firmware via passport", func(t *testing.T) {
		q := l.p.Clone()
		q.Claims.Software[0].Value = bytes.Repeat([]byte{0x88}, 32)
		a, _ := cca.New(cca.Config{Client: q.Client()})
		_, err := attestedOverTLS(t, &veraison.Passport{Evidence: a, Client: l.c}, l.v)
		if err == nil {
			t.Fatal("accepted a passport for changed firmware")
		}
	})
}
