package policy_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/verifier/policy"
)

// corimModuleTestcases lists the example CoRIMs that the pinned
// github.com/veraison/corim ships in its module directory (none when the
// module cache is not there).
func corimModuleTestcases(t testing.TB) []string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/veraison/corim").Output()
	if err != nil {
		t.Logf("corim module directory: %v", err)
		return nil
	}
	dir := strings.TrimSpace(string(out))
	files, _ := filepath.Glob(filepath.Join(dir, "corim", "testcases", "*.cbor"))
	return files
}

// FuzzCoRIM: no input panics the CoRIM decoder or an extraction, an error
// comes with no document, and what is extracted has the backends' sizes.
// Seeds: generated CoRIMs of every backend (unsigned, tagged, signed) and
// the corim module's own examples.
func FuzzCoRIM(f *testing.F) {
	signer, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	m := make([]byte, 48)
	env := classEnv("uuid", snpClassUUID)
	seeds := [][]byte{
		cborOf(f, snpCoRIM(f, profSNP, env, 0, map[string]any{"digests": []string{digestJSON("sha-384", m)}})),
		cborOf(f, snpCoRIM(f, profSNP, env, 8, map[string]any{"raw-value": map[string]any{"type": "bytes", "value": b64(m[:32])}})),
		cborOf(f, snpCoRIM(f, "", env, nil, map[string]any{"integrity-registers": map[string]any{"7": map[string]any{"key-type": "uint", "value": []string{digestJSON("sha-256", m[:32])}}}})),
		cborOf(f, unsignedCoRIM(f, profIntel, true, comidJSON(triple(env, map[string]any{"value": map[string]any{"mrtee": []string{digestJSON("sha-384", m)}}})))),
		cborOf(f, unsignedCoRIM(f, profRealm, false, comidJSON(triple(map[string]any{"class": env["class"], "instance": map[string]any{"type": "bytes", "value": b64(m)}},
			map[string]any{"value": map[string]any{"raw-value": map[string]any{"type": "bytes", "value": b64(make([]byte, 64))}}})))),
	}
	seeds = append(seeds, tagged501(seeds[0]),
		signedCoRIM(f, snpCoRIM(f, profSNP, env, 0, map[string]any{"digests": []string{digestJSON("sha-384", m)}}), signer, now.Add(-time.Hour), now.Add(time.Hour)))
	for _, s := range seeds {
		f.Add(s, false)
	}
	f.Add(seeds[len(seeds)-1], true)
	for _, name := range corimModuleTestcases(f) {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b, false)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte, signed bool) {
		var key any
		if signed {
			key = &signer.PublicKey
		}
		if _, bad := policy.ExtractCoRIM(b, key); bad != nil {
			t.Fatal(bad)
		}
	})
}

// BenchmarkCoRIM decodes and extracts a SEV-SNP CoRIM of 64 measurements,
// unsigned and signed (ES256).
func BenchmarkCoRIM(b *testing.B) {
	signer, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var digests []string
	for i := 0; i < 64; i++ {
		m := make([]byte, 48)
		m[0] = byte(i)
		digests = append(digests, digestJSON("sha-384", m))
	}
	uc := snpCoRIM(b, profSNP, classEnv("uuid", snpClassUUID), 0, map[string]any{"digests": digests})
	now := time.Now()
	for _, tc := range []struct {
		name string
		data []byte
		key  any
	}{
		{"unsigned", cborOf(b, uc), nil},
		{"signed", signedCoRIM(b, uc, signer, now.Add(-time.Hour), now.Add(time.Hour)), &signer.PublicKey},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.data)))
			for b.Loop() {
				if derr, bad := policy.ExtractCoRIM(tc.data, tc.key); derr != nil || bad != nil {
					b.Fatal(derr, bad)
				}
			}
		})
	}
}
