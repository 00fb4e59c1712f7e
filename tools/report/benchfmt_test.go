package main

import (
	"errors"
	"strings"
	"testing"
)

func TestParseLine(t *testing.T) {
	r, err := ParseLine("BenchmarkConcurrentSetup/kind=tls/n=1000-2         \t       2\t 636112966 ns/op\t     13507 B/pair\t        403.9 p50-setup-ms")
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "BenchmarkConcurrentSetup/kind=tls/n=1000" || r.Procs != 2 || r.Iters != 2 ||
		r.Metrics["ns/op"] != 636112966 || r.Metrics["B/pair"] != 13507 || r.Metrics["p50-setup-ms"] != 403.9 || len(r.Metrics) != 3 {
		t.Fatalf("%+v", r)
	}
	// No GOMAXPROCS suffix (GOMAXPROCS=1), and a name ending in a dash.
	for line, name := range map[string]string{
		"BenchmarkX 10 5 ns/op":        "BenchmarkX",
		"BenchmarkX/a-b 10 5 ns/op":    "BenchmarkX/a-b",
		"BenchmarkX/n=-1-8 10 5 ns/op": "BenchmarkX/n=-1",
		"BenchmarkX/v+2 10 5 ns/op":    "BenchmarkX/v+2",
		"BenchmarkX/x-+2-4 10 5 ns/op": "BenchmarkX/x-+2",
		"BenchmarkY-2\t1\t1e+09 ns/op": "BenchmarkY",
	} {
		r, err := ParseLine(line)
		if err != nil || r.Name != name {
			t.Errorf("%q: %q, %v", line, r.Name, err)
		}
	}
}

func TestParseLineSkips(t *testing.T) {
	for _, line := range []string{
		"", "PASS", "ok  \tgithub.com/x\t1.2s", "goos: linux", "BenchmarkX", "BenchmarkX-2",
		"--- FAIL: BenchmarkX", "BenchmarkX-2 --- FAIL: boom", "    bench_test.go:12: BenchmarkX 1 2 ns/op",
		"BenchmarkX-2 \t some log 1 2",
	} {
		if _, err := ParseLine(line); !errors.Is(err, errNotResult) {
			t.Errorf("%q: %v", line, err)
		}
	}
}

func TestParseLineRejects(t *testing.T) {
	for _, line := range []string{
		"BenchmarkX-2 10 5",               // value without unit
		"BenchmarkX-2 10 5 ns/op 6",       // odd
		"BenchmarkX-2 10 x ns/op",         // not a number
		"BenchmarkX-2 10 NaN ns/op",       // not finite
		"BenchmarkX-2 10 +Inf ns/op",      // not finite
		"BenchmarkX-2 0 5 ns/op",          // no iterations
		"BenchmarkX-2 -3 5 ns/op",         // negative iterations
		"BenchmarkX-2 10 5 ns/op 6 ns/op", // duplicate unit
		"BenchmarkX-2 10 5 5ns",           // unit starting with a digit
		"BenchmarkX-2 10 5 ns/\x01op",     // control byte
		"BenchmarkX-2 10 5 " + strings.Repeat("u", maxUnitLen+1),
		"Benchmark" + strings.Repeat("x", maxNameLen) + " 1 2 ns/op",
		"BenchmarkX-2 1" + strings.Repeat(" 1 u", maxMetrics+1),
		"BenchmarkX-2 1 " + strings.Repeat("1", maxLineLen) + " ns/op",
	} {
		if _, err := ParseLine(line); err == nil || errors.Is(err, errNotResult) {
			t.Errorf("%q: %v", line, err)
		}
	}
}

func TestParseOutput(t *testing.T) {
	out := "goos: linux\nBenchmarkA-2 \t 10\t 100 ns/op\t 8 B/op\t 1 allocs/op\n--- BENCH: BenchmarkA-2\n    x_test.go:1: log\nBenchmarkB/sub-2 5 3.5 MB/s\r\nPASS\n"
	rs, err := ParseOutput(out)
	if err != nil || len(rs) != 2 || rs[0].Name != "BenchmarkA" || rs[1].Name != "BenchmarkB/sub" || rs[1].Metrics["MB/s"] != 3.5 {
		t.Fatalf("%+v %v", rs, err)
	}
	if _, err := ParseOutput("BenchmarkA-2 1 x ns/op\n"); err == nil {
		t.Fatal("malformed line accepted")
	}
}

// FuzzParseLine: any line is skipped, rejected or parsed into a result
// within the limits, whose metrics print back to a line that parses to
// the same result; never a panic.
func FuzzParseLine(f *testing.F) {
	f.Add("BenchmarkConcurrentSetup/kind=tls/n=1000-2 \t 2\t 636112966 ns/op\t 13507 B/pair")
	f.Add("BenchmarkPassportChurn-2 16 1 ns/op 0.81 reused/TLS 2.5e+03 TLS-conn/s")
	f.Add("BenchmarkX 1 2")
	f.Fuzz(func(t *testing.T, line string) {
		r, err := ParseLine(line)
		if err != nil {
			if r.Name != "" || r.Metrics != nil {
				t.Fatalf("error %v with a result %+v", err, r)
			}
			return
		}
		if len(line) > maxLineLen || len(r.Metrics) > maxMetrics || r.Iters <= 0 || !strings.HasPrefix(r.Name, "Benchmark") {
			t.Fatalf("%q parsed out of limits: %+v", line, r)
		}
		for u := range r.Metrics {
			if !validUnit(u) || len(u) > maxUnitLen {
				t.Fatalf("unit %q", u)
			}
		}
	})
}
