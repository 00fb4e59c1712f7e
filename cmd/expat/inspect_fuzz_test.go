package main

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
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

// TestInspectMutations: corrupted and truncated copies of every artefact
// (a fixed pseudo-random sequence) give each decoder an error or a result,
// never a panic, and each within a second.
func TestInspectMutations(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "inspect", "*"))
	if len(files) == 0 {
		t.Fatal("no artefacts")
	}
	r := rand.New(rand.NewPCG(1, 2))
	decoders := map[string]func([]byte) (*node, error){"input": decodeInput}
	for name, dec := range rawForms {
		decoders[name] = dec
	}
	for i := 0; i < 1500; i++ {
		name := files[r.IntN(len(files))]
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for k := 0; k < 1+r.IntN(4) && len(b) > 0; k++ {
			b[r.IntN(len(b))] = byte(r.IntN(256))
		}
		if r.IntN(3) == 0 && len(b) > 1 {
			b = b[:r.IntN(len(b))]
		}
		for dname, dec := range decoders {
			start := time.Now()
			n, err := dec(b)
			if (n == nil) == (err == nil) {
				t.Fatalf("%s on a mutation of %s: node %v with error %v", dname, name, n, err)
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("%s on a mutation of %s took %v", dname, name, d)
			}
		}
	}
}
