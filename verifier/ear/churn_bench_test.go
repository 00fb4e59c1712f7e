package ear_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/expat/expattest"
	"github.com/attested-tls/go-expat/expat/expattest/testkit"
	"github.com/attested-tls/go-expat/verifier/ear"
)

// BenchmarkPassportChurn measures attested connections per second in the
// passport model against plain TLS, in one run, each iteration making one
// connection of each kind in turn so that load on a shared machine hits
// all three alike:
//
//	TLS        new TCP + TLS 1.3 handshake + one byte each way + close
//	fresh      the same through expat.Listen/Dial, the server presenting
//	           an EAR issued for each connection (PassportAttester:
//	           test-kit Evidence, appraisal, ES256 signature)
//	reused     ... presenting one key-bound EAR for every connection
//	           (ReusablePassport), checked by a relying party that accepts
//	           key binding (BindKey)
//
// It reports each kind's conn/s and the ratios to TLS:
//
//	go test -run '^$' -bench PassportChurn -count 6 -cpu 1 ./verifier/ear
func BenchmarkPassportChurn(b *testing.B) {
	ca, err := expattest.NewCA()
	if err != nil {
		b.Fatal(err)
	}
	cert, err := ca.Issue(expattest.ServerName, nil)
	if err != nil {
		b.Fatal(err)
	}
	ak, _ := testkit.GenerateKey()
	issKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	appraiser := &testkit.Verifier{TrustedKeys: []*ecdsa.PublicKey{&ak.PublicKey}}
	evidence := &testkit.Attester{Key: ak}
	trusted := []ear.TrustedKey{{Key: &issKey.PublicKey}}
	dialTLS := expat.ClientTLSConfig(&tls.Config{RootCAs: ca.Roots, ServerName: expattest.ServerName})
	serveTLS := &tls.Config{Certificates: []tls.Certificate{cert}}

	plain, err := tls.Listen("tcp", "127.0.0.1:0", expat.ServerTLSConfig(serveTLS))
	if err != nil {
		b.Fatal(err)
	}
	defer plain.Close()
	go echoOne(plain)

	attested := func(att attester.Attester, rp *ear.Verifier) func() (net.Conn, error) {
		l, err := expat.Listen("tcp", "127.0.0.1:0", serveTLS, &expat.Config{Attester: att, Certificate: &cert})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { l.Close() })
		go echoOne(l)
		ccfg := &expat.Config{RequirePeerAttestation: true, Verifier: rp}
		return func() (net.Conn, error) { return expat.Dial("tcp", l.Addr().String(), dialTLS, ccfg) }
	}
	nonceRP, err := ear.New(&ear.Config{Keys: trusted})
	if err != nil {
		b.Fatal(err)
	}
	fresh := attested(&ear.PassportAttester{Evidence: evidence, Issuer: &ear.Issuer{Appraiser: appraiser, Key: issKey}}, nonceRP)
	p, err := ear.NewReusablePassport(&ear.ReusablePassportConfig{
		Evidence: evidence,
		Issuer:   &ear.Issuer{Appraiser: appraiser, Key: issKey, Validity: time.Hour},
		SPKI:     cert.Leaf.RawSubjectPublicKeyInfo,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	keyRP, err := ear.New(&ear.Config{Keys: trusted, Bindings: ear.BindKey, KeyBoundMaxAge: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	reused := attested(p, keyRP)

	kinds := []struct {
		name  string
		dial  func() (net.Conn, error)
		spent time.Duration
	}{
		{"TLS", func() (net.Conn, error) { return tls.Dial("tcp", plain.Addr().String(), dialTLS) }, 0},
		{"fresh", fresh, 0},
		{"reused", reused, 0},
	}
	n := 0
	for b.Loop() {
		for i := range kinds {
			t0 := time.Now()
			exchange(b, kinds[i].dial)
			kinds[i].spent += time.Since(t0)
		}
		n++
	}
	rate := make([]float64, len(kinds))
	for i, k := range kinds {
		rate[i] = float64(n) / k.spent.Seconds()
		b.ReportMetric(rate[i], k.name+"-conn/s")
	}
	b.ReportMetric(rate[1]/rate[0], "fresh/TLS")
	b.ReportMetric(rate[2]/rate[0], "reused/TLS")
}

// exchange dials, sends one byte, reads it back and closes (the pattern
// of expat's churn benchmarks).
func exchange(b *testing.B, dial func() (net.Conn, error)) {
	b.Helper()
	one := []byte{1}
	c, err := dial()
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(one); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Read(one); err != nil {
		b.Fatal(err)
	}
}

// echoOne serves one byte back on every accepted connection.
func echoOne(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			b := []byte{0}
			if _, err := c.Read(b); err == nil {
				c.Write(b)
			}
		}()
	}
}
