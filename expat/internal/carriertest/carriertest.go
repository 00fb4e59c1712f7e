// Package carriertest is TEST-ONLY: what the tests of the integrations
// (expathttp, expatgrpc, expatquic) share: one test's throwaway CA, the
// server's and client's certificates and test-kit keys, and a goroutine
// leak check.
package carriertest

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/expat/expattest"
	"github.com/attested-tls/go-expat/expat/expattest/testkit"
)

// Kit is one test's identities: certificates for expattest.ServerName and
// "client.test" from CA, and the test-kit keys that sign each side's
// Evidence.
type Kit struct {
	CA               *expattest.CA
	SrvCert, CliCert tls.Certificate
	SrvKey, CliKey   *ecdsa.PrivateKey
}

// NewKit returns a fresh Kit.
func NewKit(t testing.TB) *Kit {
	t.Helper()
	ca, err := expattest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	k := &Kit{CA: ca}
	if k.SrvCert, err = ca.Issue(expattest.ServerName, nil); err != nil {
		t.Fatal(err)
	}
	if k.CliCert, err = ca.Issue("client.test", nil); err != nil {
		t.Fatal(err)
	}
	if k.SrvKey, err = testkit.GenerateKey(); err != nil {
		t.Fatal(err)
	}
	if k.CliKey, err = testkit.GenerateKey(); err != nil {
		t.Fatal(err)
	}
	return k
}

// Trusting returns a test-kit Verifier that trusts exactly keys.
func Trusting(keys ...*ecdsa.PrivateKey) *testkit.Verifier {
	v := &testkit.Verifier{}
	for _, k := range keys {
		v.TrustedKeys = append(v.TrustedKeys, &k.PublicKey)
	}
	return v
}

// CheckGoroutines fails t if goroutines started during the test are still
// running 5 seconds after it ended.
func CheckGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<20)
			t.Errorf("goroutines: %d before, %d after\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
	})
}

// CountingAttester counts its calls and keeps the inner Attester's
// formats (expat.Formats), for tests that show no Evidence was produced.
type CountingAttester struct {
	Inner attester.Attester
	N     atomic.Int32
}

func (a *CountingAttester) Attest(ctx context.Context, ch attester.Challenge) ([]byte, error) {
	a.N.Add(1)
	return a.Inner.Attest(ctx, ch)
}

// Formats returns the inner Attester's formats.
func (a *CountingAttester) Formats() []string { return a.Inner.(expat.Formats).Formats() }
