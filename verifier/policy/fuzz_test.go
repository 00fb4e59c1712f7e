package policy_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/attested-tls/go-expat/verifier/policy"
)

// FuzzParse: no input panics or hangs Parse; an error comes with no policy.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "docs", "policy", "*.json"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"version":1,"tpm":{"pcrs":{"7":[[[[]]]]}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := policy.Parse(b)
		if (p == nil) == (err == nil) {
			t.Fatalf("policy %v with error %v", p, err)
		}
	})
}

// FuzzParseYAML: as FuzzParse, for YAML.
func FuzzParseYAML(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "docs", "policy", "*"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := policy.ParseYAML(b)
		if (p == nil) == (err == nil) {
			t.Fatalf("policy %v with error %v", p, err)
		}
	})
}
