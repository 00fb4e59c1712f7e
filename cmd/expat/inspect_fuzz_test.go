package main

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// FuzzInspect: no input makes the inspect decoders (CMW, EAR, and each raw
// form) panic or hang; an error comes with no result. The first byte
// picks the decoder (one per execution: all of them on every input made
// the target crawl at about ten executions a second under coverage
// instrumentation), the rest is its input; every artefact is seeded for
// every decoder.
func FuzzInspect(f *testing.F) {
	names := make([]string, 0, len(rawForms))
	for name := range rawForms {
		names = append(names, name)
	}
	sort.Strings(names)
	decoders := append([]func([]byte) (*node, error){decodeInput}, make([]func([]byte) (*node, error), len(names))...)
	for i, name := range names {
		decoders[i+1] = rawForms[name]
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "inspect", "*"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		for i := range decoders {
			f.Add(append([]byte{byte(i)}, b...))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		i := int(b[0]) % len(decoders)
		n, err := decoders[i](b[1:])
		if (n == nil) == (err == nil) {
			t.Fatalf("decoder %d: node %v with error %v", i, n, err)
		}
	})
}

// TestInspectMutations: corrupted and truncated copies of every artefact
// (a fixed pseudo-random sequence) give each decoder an error or a result,
// never a panic, and each within 5 s (a hang, not a slow machine: one
// took 1.2 s at load average 17).
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
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("%s on a mutation of %s took %v", dname, name, d)
			}
		}
	}
}
