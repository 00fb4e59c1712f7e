package ear_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/expat/expattest"
	"github.com/attested-tls/go-expat/expat/expattest/testkit"
	"github.com/attested-tls/go-expat/verifier/ear"
)

// BenchmarkPassportChurn measures attested connections per second in the
// passport model against plain TLS, in one run, each iteration making a
// block of connections of each kind in turn so that load on a shared
// machine hits all three alike:
//
//	TLS        new TCP + TLS 1.3 handshake + one byte each way + close
//	fresh      the same through expat.Listen/Dial, the server presenting
//	           an EAR issued for each connection (PassportAttester:
//	           test-kit Evidence, appraisal, ES256 signature)
//	reused     ... presenting one key-bound EAR for every connection
//	           (ReusablePassport), checked by a relying party that accepts
//	           key binding (BindKey)
//
// It reports each kind's median conn/s over the rounds and the median of
// the rounds' ratios to TLS:
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
		name string
		dial func() (net.Conn, error)
		rate []float64 // conn/s of each round
	}{
		{name: "TLS", dial: func() (net.Conn, error) { return tls.Dial("tcp", plain.Addr().String(), dialTLS) }},
		{name: "fresh", dial: fresh},
		{name: "reused", dial: reused},
	}
	// Each iteration is a round: a block of connections of each kind,
	// starting with another kind each round (so that no kind always
	// follows the same one's teardown). Ratios are taken within a round,
	// then the median over rounds.
	const block = 8
	var freshRatio, reusedRatio []float64
	round := 0
	for b.Loop() {
		for j := range kinds {
			k := &kinds[(round+j)%len(kinds)]
			t0 := time.Now()
			for range block {
				exchange(b, k.dial)
			}
			k.rate = append(k.rate, block/time.Since(t0).Seconds())
		}
		freshRatio = append(freshRatio, kinds[1].rate[round]/kinds[0].rate[round])
		reusedRatio = append(reusedRatio, kinds[2].rate[round]/kinds[0].rate[round])
		round++
	}
	for _, k := range kinds {
		b.ReportMetric(median(k.rate), k.name+"-conn/s")
	}
	b.ReportMetric(median(freshRatio), "fresh/TLS")
	b.ReportMetric(median(reusedRatio), "reused/TLS")
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
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
