package sevsnp_test

// Test helpers around attester/sevsnp/sevsnptest, the shared fake SEV-SNP platform
// built from go-sev-guest's test-only AMD-style keys. Nothing trusts these
// keys unless a test passes Platform.Roots() to the verifier explicitly.

import (
	"encoding/hex"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-sev-guest/kds"

	"github.com/attested-tls/go-expat/attester/sevsnp/sevsnptest"
)

// kdsServer is an httptest AMD KDS that serves one platform's VCEK and
// CRL and counts requests.
type kdsServer struct {
	*httptest.Server
	mu        sync.Mutex
	vcek, crl []byte
	hits      atomic.Int64
	vcekHits  atomic.Int64
	crlHits   atomic.Int64
	throttle  atomic.Int64 // answer 429 to this many requests first
	retryHdr  string
}

func newKDS(t testing.TB, p *sevsnptest.Platform, crl []byte) *kdsServer {
	t.Helper()
	k := &kdsServer{vcek: p.Signer.Vcek.Raw, crl: crl, retryHdr: "0"}
	parts := kds.DecomposeTCBVersion(kds.TCBVersion(p.TCB))
	vcekPath := "/vcek/v1/Milan/" + hex.EncodeToString(p.ChipID[:])
	k.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.hits.Add(1)
		if k.throttle.Load() > 0 {
			k.throttle.Add(-1)
			w.Header().Set("Retry-After", k.retryHdr)
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		k.mu.Lock()
		vcek, crl := k.vcek, k.crl
		k.mu.Unlock()
		switch {
		case r.URL.Path == vcekPath:
			q := r.URL.Query()
			if q.Get("blSPL") != itoa(parts.BlSpl) || q.Get("snpSPL") != itoa(parts.SnpSpl) ||
				q.Get("teeSPL") != itoa(parts.TeeSpl) || q.Get("ucodeSPL") != itoa(parts.UcodeSpl) {
				http.NotFound(w, r)
				return
			}
			k.vcekHits.Add(1)
			w.Write(vcek)
		case r.URL.Path == "/vcek/v1/Milan/crl" && crl != nil:
			k.crlHits.Add(1)
			w.Write(crl)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(k.Close)
	return k
}

func itoa(v uint8) string { return big.NewInt(int64(v)).String() }

// moduleFile reads a file of go-sev-guest's module (its own test
// artefacts), located through the go command.
func moduleFile(t testing.TB, rel string) []byte {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/google/go-sev-guest").Output()
	if err != nil {
		t.Skipf("cannot locate go-sev-guest: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
