package policy_test

import (
	"errors"
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
		var pe *policy.Error
		if err != nil && !errors.As(err, &pe) {
			t.Fatalf("error %v is not a *policy.Error", err)
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

// FuzzDecode: as FuzzParse, for Decode into a document that embeds
// policies (the shape of examples/localverifier's configuration).
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "docs", "policy", "*.json"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(`{"n":1,"backends":[{"file":"x"},{"policy":` + string(b) + `}]}`))
	}
	type doc struct {
		N        int `json:"n"`
		Backends []struct {
			File   string         `json:"file"`
			Policy *policy.Policy `json:"policy"`
		} `json:"backends"`
		Names map[string][]string `json:"names"`
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var d doc
		err := policy.Decode(b, &d)
		var pe *policy.Error
		if err != nil && !errors.As(err, &pe) {
			t.Fatalf("error %v is not a *policy.Error", err)
		}
	})
}
