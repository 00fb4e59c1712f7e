package main

import (
	"math"
	"regexp"
	"strings"
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

// Invariant goals judge the worst round, and are n/a unless measured in
// every round their job ran; Metric goals make a row per benchmark that
// reports the metric.
func TestWorstGoals(t *testing.T) {
	s := newStore()
	for round, v := range []float64{0, 2, 0} {
		s.add("load", round, res("BenchmarkLoad/a", map[string]float64{"leaked-goroutines": v, "fail/bound": 1 + v/10}))
		s.add("load", round, res("BenchmarkLoad/b", map[string]float64{"leaked-goroutines": 0}))
	}
	js := []Job{{ID: "load", Units: []string{"BenchmarkLoad/a", "BenchmarkLoad/b"}}}
	s.runs["load BenchmarkLoad/a"], s.runs["load BenchmarkLoad/b"] = 3, 3
	sum := Goal{Ratio: &Ratio{Num: []Ref{{"BenchmarkLoad/a", "leaked-goroutines"}, {"BenchmarkLoad/b", "leaked-goroutines"}}}, AtMost: true, Worst: true}
	rows := s.evalGoal(sum)
	s.requireRounds(rows, js)
	if r := rows[0]; r.verdict() != "MISS" || r.display() != 2 || r.st.med != 0 || goalHow(r) != "worst of 3 rounds" {
		t.Fatalf("%+v %v %q", r, r.display(), goalHow(r))
	}
	bound := Goal{Match: regexp.MustCompile(`^BenchmarkLoad/`), Metric: "fail/bound", AtMost: true, Target: 1.2, Worst: true}
	rows = s.evalGoal(bound)
	s.requireRounds(rows, js)
	if len(rows) != 1 || rows[0].label != "BenchmarkLoad/a" || rows[0].verdict() != "PASS" || rows[0].display() != 1.2 {
		t.Fatalf("%+v", rows)
	}
	// A round whose scenario failed (no result) is not a pass.
	s.add("load", 3, res("BenchmarkLoad/b", map[string]float64{"leaked-goroutines": 0}))
	s.runs["load BenchmarkLoad/a"], s.runs["load BenchmarkLoad/b"] = 4, 4
	rows = s.evalGoal(bound)
	s.requireRounds(rows, js)
	if rows[0].verdict() != "n/a" || !strings.Contains(goalHow(rows[0]), "3 of 4 rounds") {
		t.Fatalf("%+v %q", rows[0], goalHow(rows[0]))
	}
	// A round cut by the time budget is not one that failed.
	s.runs["load BenchmarkLoad/a"] = 3
	rows = s.evalGoal(bound)
	s.requireRounds(rows, js)
	if rows[0].verdict() != "PASS" {
		t.Fatalf("%+v", rows[0])
	}
	if rows := s.evalGoal(Goal{Match: regexp.MustCompile(`^BenchmarkLoad/`), Metric: "absent"}); len(rows) != 1 || rows[0].verdict() != "n/a" {
		t.Fatalf("%+v", rows)
	}
}

// A section without a ratio header has two columns; its matrix has a row
// per benchmark reporting any of its metrics, in the job table's order.
func TestMatrixSection(t *testing.T) {
	s := newStore()
	s.add("load", 0, res("BenchmarkLoad/z", map[string]float64{"ns/op": 1, "x": 3}))
	s.add("load", 0, res("BenchmarkLoad/a", map[string]float64{"ns/op": 1, "y": 0.5}))
	s.add("load", 0, res("BenchmarkLoad/none", map[string]float64{"ns/op": 1}))
	s.add("load", 1, res("BenchmarkLoad/z", map[string]float64{"ns/op": 1, "x": 5}))
	d := &doc{st: s, jobs: []Job{{ID: "load", Pkg: "./expat", Units: []string{"BenchmarkLoad/z", "BenchmarkLoad/a"}, Benchtime: "1x", Rounds: 2}}}
	d.section(Section{Title: "T", Text: "text", Rows: []Row{{Label: "z x", Val: Ref{"BenchmarkLoad/z", "x"}, Unit: "u"}},
		Matrix: &Matrix{Match: regexp.MustCompile(`^BenchmarkLoad/`), Header: "scenario", Columns: []Column{{Header: "X", Metric: "x"}, {Header: "Y", Metric: "y", Scale: 100}}}}, nil)
	want := "| benchmark | median (min–max, samples) |\n| --- | --- |\n| z x | 4.00 u <sub>3.00–5.00, n=2</sub> |\n\n" +
		"| scenario | X | Y |\n| --- | --- | --- |\n| Load/z | 4 <sub>3–5</sub> | — |\n| Load/a | — | 50 |\n\n" +
		"Command: `go test -run '^$' -bench '^BenchmarkLoad$' -benchtime 1x -count 2 -benchmem ./expat`."
	if !strings.Contains(d.String(), want) {
		t.Fatalf("got\n%s\nwant\n%s", d.String(), want)
	}
}
