package main

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzInspect: no input makes the inspect decoders (CMW, EAR, and each raw
// form) panic or hang; an error comes with no result.
func FuzzInspect(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "inspect", "*"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := decodeInput(b)
		if (n == nil) == (err == nil) {
			t.Fatalf("node %v with error %v", n, err)
		}
		for name, dec := range rawForms {
			n, err := dec(b)
			if (n == nil) == (err == nil) {
				t.Fatalf("%s: node %v with error %v", name, n, err)
			}
		}
	})
}
