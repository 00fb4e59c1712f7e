package main

import (
	"math"
	"regexp"
	"testing"
)

func res(name string, m map[string]float64) []Result {
	return []Result{{Name: name, Iters: 1, Metrics: m}}
}

// Ratios are taken within each round, then the median: a round where the
// machine was slow for both cancels out, which the ratio of medians would
// not do.
func TestRatioPerRound(t *testing.T) {
	s := newStore()
	for round, v := range [][2]float64{{100, 50}, {400, 200}, {1000, 250}} {
		s.add("j", round, res("BenchmarkBase", map[string]float64{"ns/op": v[0]}))
		s.add("j", round, res("BenchmarkSubj", map[string]float64{"ns/op": v[1]}))
	}
	s.add("j", 3, res("BenchmarkSubj", map[string]float64{"ns/op": 1})) // no baseline in round 4: ignored
	got := s.ratio(faster("BenchmarkSubj", "BenchmarkBase"))
	if !got.ok || got.n != 3 || got.med != 2 || got.lo != 2 || got.hi != 4 {
		t.Fatalf("%+v", got)
	}
	if st := s.stat(Ref{"BenchmarkSubj", "op/s"}); st.n != 4 || st.hi != 1e9 {
		t.Fatalf("%+v", st)
	}
	// A sum in the denominator needs every part in the round.
	s.add("j", 0, res("BenchmarkPart", map[string]float64{"ns/op": 50}))
	q := &Ratio{Num: []Ref{{"BenchmarkBase", "ns/op"}}, Den: []Ref{{"BenchmarkSubj", "ns/op"}, {"BenchmarkPart", "ns/op"}}}
	if got := s.ratio(q); got.n != 1 || got.med != 1 {
		t.Fatalf("%+v", got)
	}
	if got := s.ratio(faster("BenchmarkAbsent", "BenchmarkBase")); got.ok {
		t.Fatalf("absent benchmark gave %+v", got)
	}
}

func TestGoals(t *testing.T) {
	s := newStore()
	s.add("j", 0, res("BenchmarkVerify/cached", map[string]float64{"ns/op": 10}))
	s.add("j", 0, res("BenchmarkVerify/uncached", map[string]float64{"ns/op": 30}))
	s.add("j", 0, res("BenchmarkVerify/table/cached", map[string]float64{"ns/op": 10}))
	s.add("j", 0, res("BenchmarkVerify/table/uncached", map[string]float64{"ns/op": 15}))
	g := Goal{Match: regexp.MustCompile(`^(BenchmarkVerify\w*)/(.*/)?cached$`), Base: "${1}/${2}uncached", Target: 2, Unit: "×"}
	rows := s.evalGoal(g)
	if len(rows) != 2 || rows[0].verdict() != "PASS" || rows[0].display() != 3 || rows[1].verdict() != "MISS" {
		t.Fatalf("%+v", rows)
	}
	if rows := s.evalGoal(Goal{Match: regexp.MustCompile(`^BenchmarkNone/`)}); len(rows) != 1 || rows[0].verdict() != "n/a" {
		t.Fatalf("%+v", rows)
	}
	at := Goal{Ratio: &Ratio{Num: []Ref{{"BenchmarkVerify/cached", "ns/op"}}}, AtMost: true, Target: 0.01, Scale: 1e-3, Unit: "µs"}
	if r := s.evalGoal(at)[0]; r.verdict() != "PASS" || math.Abs(r.display()-0.01) > 1e-12 {
		t.Fatalf("%+v %v", r, r.display())
	}
}

func TestNaturalOrder(t *testing.T) {
	s := newStore()
	for _, n := range []string{"B/n=1000", "B/n=10", "B/n=1", "B/n=100"} {
		s.add("j", 0, res(n, map[string]float64{"ns/op": 1}))
	}
	got := s.names(func(string) bool { return true })
	if got[0] != "B/n=1" || got[1] != "B/n=10" || got[2] != "B/n=100" || got[3] != "B/n=1000" {
		t.Fatal(got)
	}
}

func TestParseTop(t *testing.T) {
	out := `File: expat.test
Type: cpu
Showing nodes accounting for 3.10s, 60.00% of 5.17s total
      flat  flat%   sum%        cum   cum%
     1.20s 23.21% 23.21%      1.20s 23.21%  crypto/internal/fips140/nistec.p256OrdSqr
     0.30s  5.80% 29.01%      2.00s 38.68%  runtime.mallocgc (inline)
`
	rows := parseTop(out, 10)
	if len(rows) != 2 || rows[0].flat != "1.20s" || rows[1].name != "runtime.mallocgc (inline)" || rows[1].cumPct != "38.68%" {
		t.Fatalf("%+v", rows)
	}
	if rows := parseTop("no table\n", 10); len(rows) != 0 {
		t.Fatal(rows)
	}
}
