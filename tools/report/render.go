package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// stamp describes the machine and the code measured.
type stamp struct {
	date, host, cpuModel, goVersion, commit string
	cpus                                    int
	dirty                                   bool
	loadStart, loadEnd                      string
	elapsed                                 string
}

// doc accumulates the Markdown document.
type doc struct {
	strings.Builder
	st      *store
	jobs    []Job  // as run (rounds may differ from the table's)
	plotDir string // relative to the document
}

func (d *doc) p(format string, args ...any) { fmt.Fprintf(d, format+"\n", args...) }

// fmtNum prints v with three significant digits (more for large values,
// no exponent).
func fmtNum(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	a := math.Abs(v)
	switch {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	case a == 0:
		return "0"
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

// fmtCell is fmtNum, but prints whole numbers (counts) without decimals.
func fmtCell(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmtNum(v)
}

func scaleOf(s float64) float64 {
	if s == 0 {
		return 1
	}
	return s
}

// cell prints a stat: "median (min–max, n)".
func cell(s stat, scale float64, unit string) string {
	if !s.ok {
		return "n/a"
	}
	sc := scaleOf(scale)
	v := fmtNum(s.med*sc) + " " + unit
	if s.n > 1 {
		v += fmt.Sprintf(" <sub>%s–%s, n=%d</sub>", fmtNum(s.lo*sc), fmtNum(s.hi*sc), s.n)
	}
	return v
}

func ratioCell(s stat) string {
	if !s.ok {
		return "n/a"
	}
	v := fmtNum(s.med) + "×"
	if s.n > 1 {
		v += fmt.Sprintf(" <sub>%s–%s</sub>", fmtNum(s.lo), fmtNum(s.hi))
	}
	return v
}

// commands returns the commands of the jobs that produced refs, in the
// order of the job table.
func (d *doc) commands(refs []Ref) []string {
	ids := map[string]bool{}
	for _, r := range refs {
		if id, ok := d.st.jobOf[r.Bench]; ok {
			ids[id] = true
		}
	}
	var out []string
	for _, j := range d.jobs {
		if ids[j.ID] {
			out = append(out, "`"+j.command()+"`")
		}
	}
	if ids["veraison"] {
		out = append(out, "`make test-veraison-bench`")
	}
	return out
}

// rowRefs lists the refs of a row (value and ratio).
func rowRefs(v Ref, q *Ratio) []Ref {
	refs := []Ref{v}
	if q != nil {
		refs = append(refs, q.Num...)
		refs = append(refs, q.Den...)
	}
	return refs
}

func (d *doc) section(sec Section, g map[string][]goalRow) {
	d.p("## %s\n", sec.Title)
	d.p("%s\n", sec.Text)
	// Without a ratio column header, the table has two columns.
	row := func(label, val, vs string) {
		if sec.VsHeader == "" {
			d.p("| %s | %s |", label, val)
			return
		}
		d.p("| %s | %s | %s |", label, val, vs)
	}
	row("benchmark", "median (min–max, samples)", sec.VsHeader)
	row("---", "---", "---")
	var refs []Ref
	for _, r := range sec.Rows {
		if r.Match != nil {
			names := d.st.names(r.Match.MatchString)
			if len(names) == 0 {
				row(strings.TrimPrefix(r.Match.String(), "^")+" (none in this run)", "n/a", "n/a")
			}
			for _, n := range names {
				ref := Ref{n, r.Metric}
				q := substitute(r.Vs, n)
				refs = append(refs, rowRefs(ref, q)...)
				unit := r.Unit
				if unit == "" {
					unit = r.Metric
				}
				vs := "—"
				if q != nil {
					vs = ratioCell(d.st.ratio(q))
				}
				row(strings.TrimPrefix(n, "Benchmark"), cell(d.st.stat(ref), r.Scale, unit), vs)
			}
			continue
		}
		refs = append(refs, rowRefs(r.Val, r.Vs)...)
		unit := r.Unit
		if unit == "" {
			unit = r.Val.Metric
		}
		val := "—"
		if r.Val.Bench != "" {
			val = cell(d.st.stat(r.Val), r.Scale, unit)
		}
		vs := "—"
		if r.Vs != nil {
			vs = ratioCell(d.st.ratio(r.Vs))
		}
		row(r.Label, val, vs)
	}
	d.p("")
	if sec.Matrix != nil {
		refs = append(refs, d.matrix(sec.Matrix)...)
	}
	d.commandLines(refs)
	for _, id := range sec.Goals {
		for _, r := range g[id] {
			d.goalLine(r)
		}
	}
	if len(sec.Goals) > 0 {
		d.p("")
	}
	for _, id := range sec.Plots {
		pl := plotByID(id)
		if pl == nil {
			continue
		}
		d.p("![%s](%s/%s.png)\n", pl.title, d.plotDir, id)
		cmds := d.commands(pl.refs(d.st))
		if len(cmds) == 0 {
			cmds = []string{"no data in this run"}
		}
		d.p("<sub>Plot: %s, drawn from the table above; %s.</sub>\n", pl.title, strings.Join(cmds, ", "))
	}
}

// matrix writes m's table and returns the refs it showed.
func (d *doc) matrix(m *Matrix) []Ref {
	names := d.st.names(m.Match.MatchString)
	// In the order of the job table's units where they are listed.
	pos := map[string]int{}
	for _, j := range d.jobs {
		for _, u := range j.Units {
			if _, ok := pos[u]; !ok {
				pos[u] = len(pos)
			}
		}
	}
	slices.SortStableFunc(names, func(a, b string) int {
		pa, oka := pos[a]
		pb, okb := pos[b]
		switch {
		case oka && okb:
			return pa - pb
		case oka:
			return -1
		case okb:
			return 1
		}
		return 0
	})
	if len(names) == 0 {
		d.p("No benchmark matching `%s` in this run.\n", m.Match.String())
		return nil
	}
	head, rule := "| "+m.Header+" |", "| --- |"
	for _, c := range m.Columns {
		head += " " + c.Header + " |"
		rule += " --- |"
	}
	d.p("%s\n%s", head, rule)
	var refs []Ref
	for _, n := range names {
		line := "| " + strings.TrimPrefix(n, "Benchmark") + " |"
		shown := false
		for _, c := range m.Columns {
			ref := Ref{n, c.Metric}
			st := d.st.stat(ref)
			if !st.ok {
				line += " — |"
				continue
			}
			shown = true
			refs = append(refs, ref)
			sc := scaleOf(c.Scale)
			v := fmtCell(st.med * sc)
			if st.n > 1 {
				v += fmt.Sprintf(" <sub>%s–%s</sub>", fmtCell(st.lo*sc), fmtCell(st.hi*sc))
			}
			line += " " + v + " |"
		}
		if shown {
			d.p("%s", line)
		}
	}
	d.p("")
	return refs
}

func (d *doc) commandLines(refs []Ref) {
	cmds := d.commands(refs)
	if len(cmds) == 0 {
		d.p("Command: none of these benchmarks ran.\n")
		return
	}
	d.p("Command: %s.\n", strings.Join(cmds, "; "))
}

func (d *doc) goalLine(r goalRow) {
	what := r.g.Text
	if r.label != "" {
		what += " — " + strings.TrimPrefix(r.label, "Benchmark")
	}
	measured := "n/a"
	if r.st.ok {
		measured = fmtNum(r.display()) + " " + r.g.Unit
		if r.g.Unit == "×" {
			measured = fmtNum(r.display()) + "×"
		}
	}
	d.p("- **%s** — goal: %s; measured: %s (%s).", r.verdict(), what, measured, goalHow(r))
}

func goalHow(r goalRow) string {
	if !r.st.ok {
		return "not measured in this run"
	}
	if r.st.n < r.need {
		return fmt.Sprintf("measured in %d of %d rounds: see Problems", r.st.n, r.need)
	}
	of := "median"
	if r.g.Worst {
		of = "worst"
	}
	if (r.g.Match != nil && r.g.Metric == "") || (r.g.Ratio != nil && len(r.g.Ratio.Den) > 0) {
		return fmt.Sprintf("%s of %d per-round ratio%s", of, r.st.n, plural(r.st.n))
	}
	return fmt.Sprintf("%s of %d round%s", of, r.st.n, plural(r.st.n))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func (d *doc) goalsTable(g map[string][]goalRow) {
	d.p("## Goals (issue #14 item 3; the integrations' targets of #11 and #12)\n")
	d.p("Each goal is a ratio of two benchmarks measured in this run, interleaved (or, for the passport and the tunnel, a ratio the benchmark takes within each of its own rounds), except re-attestation behind bulk data, which is absolute. It is repeated beside its figure below.\n")
	d.p("Where a goal has a floor, the floor is the best its ratio could be on this machine: the baseline plus only the cryptography the attested arm cannot avoid, each measured alone in this run (median of per-round ratios); the notes below the table say what each floor adds.\n")
	d.p("| verdict | goal | measured | floor | command |")
	d.p("| --- | --- | --- | --- | --- |")
	for _, gl := range goals {
		for _, r := range g[gl.ID] {
			what := gl.Text
			if r.label != "" {
				what += " — " + strings.TrimPrefix(r.label, "Benchmark")
			}
			m := "n/a"
			if r.st.ok {
				m = fmtNum(r.display())
				if gl.Unit == "×" {
					m += "×"
				} else {
					m += " " + gl.Unit
				}
			}
			cmds := d.commands(r.refs)
			if len(cmds) == 0 {
				cmds = []string{"(not run)"}
			}
			fl := "—"
			if r.floor.ok {
				fl = fmtNum(r.floor.med) + "×"
			}
			d.p("| **%s** | %s | %s | %s | %s |", r.verdict(), what, m, fl, strings.Join(cmds, "<br>"))
		}
	}
	d.p("")
	for _, gl := range goals {
		if gl.FloorText != "" {
			d.p("- Floor of %q: %s.", gl.ID, gl.FloorText)
		}
	}
	d.p("")
}

func (d *doc) notes() {
	var ids []string
	for id := range d.st.notes {
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return
	}
	slices.Sort(ids)
	d.p("## Problems in this run\n")
	d.p("Benchmarks that failed, were absent (n/a above) or were cut by the time budget:\n")
	for _, id := range ids {
		for _, n := range d.st.notes[id] {
			first, rest, _ := strings.Cut(n, "\n")
			d.p("- `%s`: %s", id, first)
			if strings.TrimSpace(rest) != "" {
				d.p("\n  ```\n%s\n  ```", indent(rest, "  "))
			}
		}
	}
	d.p("")
}

func indent(s, pre string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = pre + l
	}
	return strings.Join(lines, "\n")
}
