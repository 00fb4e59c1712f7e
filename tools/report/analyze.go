package main

import (
	"math"
	"slices"
	"sort"
	"strings"
)

// value is ref's value in one sample, false if the sample lacks it.
func value(res Result, metric string) (float64, bool) {
	if metric == "op/s" {
		ns, ok := res.Metrics["ns/op"]
		if !ok || ns <= 0 {
			return 0, false
		}
		return 1e9 / ns, true
	}
	v, ok := res.Metrics[metric]
	return v, ok
}

// perRound returns ref's value in each round (the median if a round has
// several samples of it).
func (s *store) perRound(ref Ref) map[int]float64 {
	by := map[int][]float64{}
	for _, sm := range s.byName[ref.Bench] {
		if v, ok := value(sm.res, ref.Metric); ok {
			by[sm.round] = append(by[sm.round], v)
		}
	}
	out := make(map[int]float64, len(by))
	for r, vs := range by {
		out[r] = median(vs)
	}
	return out
}

// stat is a median with its spread and sample count.
type stat struct {
	med, lo, hi float64
	n           int
	ok          bool
}

func statOf(vs []float64) stat {
	if len(vs) == 0 {
		return stat{}
	}
	return stat{med: median(vs), lo: slices.Min(vs), hi: slices.Max(vs), n: len(vs), ok: true}
}

// values is every sample of ref, all rounds.
func (s *store) values(ref Ref) []float64 {
	var vs []float64
	for _, sm := range s.byName[ref.Bench] {
		if v, ok := value(sm.res, ref.Metric); ok {
			vs = append(vs, v)
		}
	}
	return vs
}

func (s *store) stat(ref Ref) stat { return statOf(s.values(ref)) }

// ratio evaluates q: per round, sum(Num)/sum(Den), then the median and
// spread over the rounds where every ref was measured.
func (s *store) ratio(q *Ratio) stat {
	if q == nil {
		return stat{}
	}
	sums := func(refs []Ref) map[int]float64 {
		var acc map[int]float64
		for i, ref := range refs {
			pr := s.perRound(ref)
			if i == 0 {
				acc = pr
				continue
			}
			for r := range acc {
				if v, ok := pr[r]; ok {
					acc[r] += v
				} else {
					delete(acc, r)
				}
			}
		}
		return acc
	}
	num := sums(q.Num)
	var vs []float64
	if len(q.Den) == 0 {
		for _, v := range num {
			vs = append(vs, v)
		}
		return statOf(vs)
	}
	den := sums(q.Den)
	for r, n := range num {
		if d, ok := den[r]; ok && d != 0 {
			vs = append(vs, n/d)
		}
	}
	return statOf(vs)
}

// names returns the benchmark names matched by re, in a natural order
// (numbers inside names compared as numbers, so n=10 follows n=1).
func (s *store) names(match func(string) bool) []string {
	var out []string
	for n := range s.byName {
		if match(n) {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return naturalLess(out[i], out[j]) })
	return out
}

// naturalLess compares a and b with runs of digits compared as numbers.
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := digitRun(a), digitRun(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func digitRun(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// substitute replaces the placeholders of a row's ratio: $0 is the matched
// name, $tls the same name with kind=attested replaced by kind=tls,
// $inproc the same name with its last element replaced by "in-process"
// (verifier/local's per-backend baseline).
func substitute(q *Ratio, name string) *Ratio {
	if q == nil {
		return nil
	}
	sub := func(refs []Ref) []Ref {
		out := make([]Ref, len(refs))
		for i, r := range refs {
			switch r.Bench {
			case "$0":
				r.Bench = name
			case "$tls":
				r.Bench = strings.Replace(name, "kind=attested", "kind=tls", 1)
			case "$inproc":
				r.Bench = name[:strings.LastIndex(name, "/")+1] + "in-process"
			}
			out[i] = r
		}
		return out
	}
	return &Ratio{Num: sub(q.Num), Den: sub(q.Den)}
}

// goalRow is one evaluated goal.
type goalRow struct {
	g     Goal
	label string // the benchmark for Match goals
	st    stat
	refs  []Ref
	need  int // rounds a Worst goal must have been measured in (0: any)
	floor stat
}

func (r goalRow) verdict() string {
	if !r.st.ok || r.st.n < r.need {
		return "n/a"
	}
	v := r.display()
	if (r.g.AtMost && v <= r.g.Target) || (!r.g.AtMost && v >= r.g.Target) {
		return "PASS"
	}
	return "MISS"
}

func (r goalRow) display() float64 {
	sc := r.g.Scale
	if sc == 0 {
		sc = 1
	}
	switch {
	case r.g.Worst && r.g.AtMost:
		return r.st.hi * sc
	case r.g.Worst:
		return r.st.lo * sc
	}
	return r.st.med * sc
}

func (s *store) evalGoal(g Goal) []goalRow {
	if g.Match == nil {
		r := goalRow{g: g, st: s.ratio(g.Ratio), refs: append(slices.Clone(g.Ratio.Num), g.Ratio.Den...)}
		if g.Floor != nil {
			r.floor = s.ratio(g.Floor)
		}
		return []goalRow{r}
	}
	var rows []goalRow
	for _, name := range s.names(g.Match.MatchString) {
		if g.Metric != "" {
			ref := Ref{name, g.Metric}
			if st := s.ratio(&Ratio{Num: []Ref{ref}}); st.ok {
				rows = append(rows, goalRow{g: g, label: name, st: st, refs: []Ref{ref}})
			}
			continue
		}
		base := g.Match.ReplaceAllString(name, g.Base)
		q := faster(name, base)
		rows = append(rows, goalRow{g: g, label: name, st: s.ratio(q), refs: []Ref{{name, "ns/op"}, {base, "ns/op"}}})
	}
	if len(rows) == 0 {
		what := "no benchmark matching `" + g.Match.String() + "`"
		if g.Metric != "" {
			what += " with " + g.Metric
		}
		rows = append(rows, goalRow{g: g, label: what + " in this run"})
	}
	return rows
}

// requireRounds makes each Worst goal row need as many rounds as its
// benchmarks' units were run in (a unit cut by the time budget is not
// counted): an invariant that held only in the rounds where its scenario
// did not fail is not shown as holding.
func (s *store) requireRounds(rows []goalRow, js []Job) {
	for i := range rows {
		if !rows[i].g.Worst {
			continue
		}
		for _, ref := range rows[i].refs {
			for _, j := range js {
				if j.ID != s.jobOf[ref.Bench] {
					continue
				}
				for _, u := range j.Units {
					if ref.Bench == u || strings.HasPrefix(ref.Bench, u+"/") {
						rows[i].need = max(rows[i].need, s.runs[j.ID+" "+u])
					}
				}
			}
		}
	}
}
