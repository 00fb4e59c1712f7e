// Command report runs the benchmarks that define go-expat's cost and writes
// docs/PERFORMANCE.md and the plots under docs/perf/ (make report).
//
// It builds each package's test binary once, then runs every benchmark of
// the table in spec.go one at a time, round after round (each round runs
// every job's benchmarks, each job starting with another of its benchmarks
// than the round before), so that a baseline and its subject see the same
// load; figures are medians over the rounds and ratios are medians of the
// per-round ratios. A benchmark that is absent or fails shows as n/a and is
// listed under "Problems in this run"; only a failure to write the document
// is fatal.
//
// It lives in its own module so that its plotting dependency never enters
// the library's go.mod; it does not import the library, it runs `go test`
// binaries and parses their standard benchmark output (benchfmt.go).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

func main() {
	root := flag.String("root", "../..", "the repository's root")
	out := flag.String("out", "docs/PERFORMANCE.md", "the document to write, relative to -root")
	plotDir := flag.String("plots", "docs/perf", "where the plots go, relative to -root")
	budget := flag.Duration("budget", 27*time.Minute, "time for the whole run; rounds not started by then are skipped")
	only := flag.String("only", "", "comma-separated job IDs to run (default: all), for trying a change")
	rounds := flag.Int("rounds", 0, "rounds of every job (default: the table's)")
	veraison := flag.Bool("veraison", true, "run the live Veraison benchmarks (scripts/veraison/run-tests.sh)")
	fuzz := flag.String("fuzz", "docs/perf/fuzz.tsv", "the summary of make fuzz-long to render, relative to -root")
	flag.Parse()
	if err := run(*root, *out, *plotDir, *fuzz, *budget, *only, *rounds, *veraison); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func run(root, out, plotDir, fuzzFile string, budget time.Duration, only string, rounds int, veraison bool) error {
	start := time.Now()
	root, err := filepath.Abs(root)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return fmt.Errorf("-root %s: %w", root, err)
	}
	bin, err := os.MkdirTemp("", "expat-report-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bin)
	goCmd := os.Getenv("GO")
	if goCmd == "" {
		goCmd = "go"
	}
	ctx := context.Background()
	r := &runner{root: root, bin: bin, goCmd: goCmd, deadline: start.Add(budget), binaries: map[string]string{}, st: newStore()}
	s := machineStamp(ctx, root, goCmd)

	var js []Job
	for _, j := range jobs {
		if only != "" && !contains(strings.Split(only, ","), j.ID) {
			continue
		}
		if rounds > 0 {
			j.Rounds = rounds
		}
		js = append(js, j)
	}
	r.runAll(ctx, js)
	profile := ""
	if only == "" || contains(strings.Split(only, ","), "profile") {
		profile = r.profile(ctx)
	}
	live := "Not run (-veraison=false)."
	if veraison && (only == "" || contains(strings.Split(only, ","), "veraison")) {
		live = r.veraison(ctx)
	}
	s.loadEnd = loadAvg()
	s.elapsed = time.Since(start).Round(time.Second).String()

	out, plotDir = under(root, out), under(root, plotDir)
	d := &doc{st: r.st, jobs: js, plotDir: relPath(filepath.Dir(out), plotDir)}
	g := map[string][]goalRow{}
	for _, gl := range append(slices.Clone(goals), robustGoals...) {
		g[gl.ID] = r.st.evalGoal(gl)
		r.st.requireRounds(g[gl.ID], js)
	}
	d.header(s, budget)
	d.goalsTable(g)
	for _, sec := range sections {
		d.section(sec, g)
		if sec.Title == "Appraisals per second" {
			d.p("Live Veraison: %s\n", live)
		}
	}
	d.fuzzSection(under(root, fuzzFile), fuzzFile)
	d.p("%s", profile)
	d.p("%s", peersSection)
	d.notes()
	for _, err := range drawPlots(r.st, plotDir) {
		logf("%v", err)
		d.p("- plot error: %v", err)
	}
	if err := os.WriteFile(out, []byte(d.String()), 0o644); err != nil {
		return err
	}
	logf("wrote %s and %s/ in %v", out, plotDir, time.Since(start).Round(time.Second))
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if strings.TrimSpace(v) == s {
			return true
		}
	}
	return false
}

// under returns p if absolute, else p under root.
func under(root, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(root, p)
}

func relPath(from, to string) string {
	p, err := filepath.Rel(from, to)
	if err != nil {
		return to
	}
	return filepath.ToSlash(p)
}

func machineStamp(ctx context.Context, root, goCmd string) *stamp {
	s := &stamp{date: time.Now().UTC().Format("2006-01-02 15:04 UTC"), cpus: runtime.NumCPU(), loadStart: loadAvg()}
	s.host, _ = os.Hostname()
	s.cpuModel = "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				s.cpuModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if v, err := output(ctx, time.Minute, root, nil, goCmd, "version"); err == nil {
		s.goVersion = strings.TrimSpace(v)
	}
	if v, err := output(ctx, time.Minute, root, nil, "git", "rev-parse", "HEAD"); err == nil {
		s.commit = strings.TrimSpace(v)
	}
	if v, err := output(ctx, time.Minute, root, nil, "git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!docs/PERFORMANCE.md", ":!docs/perf"); err == nil {
		s.dirty = strings.TrimSpace(v) != ""
	}
	return s
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func (d *doc) header(s *stamp, budget time.Duration) {
	d.p("# go-expat performance\n")
	d.p("<!-- Generated by `make report` (tools/report); do not edit: edit tools/report/spec.go and run it again. -->\n")
	d.p("What go-expat costs, measured with Go benchmarks on one machine in one run, each figure next to a baseline measured in the same run. " +
		"Absolute numbers depend on the machine; read the ratios.\n")
	commit := s.commit
	if s.dirty {
		commit += " with uncommitted changes"
	}
	d.p("| | |\n| --- | --- |")
	d.p("| generated | %s, by `make report`, in %s (budget %v) |", s.date, s.elapsed, budget)
	d.p("| machine | %s, %s |", s.host, s.cpuModel)
	d.p("| CPUs | %d (GOMAXPROCS %d) |", s.cpus, runtime.GOMAXPROCS(0))
	d.p("| Go | %s |", s.goVersion)
	d.p("| commit | %s |", commit)
	d.p("| load average (1, 5, 15 min) | %s at the start, %s at the end |", s.loadStart, s.loadEnd)
	d.p("")
	d.p("**Method.** `make report` builds each package's test binary once (`go test -c`) and runs every benchmark on its own " +
		"(`pkg.test -test.run '^$' -test.bench '^Name$' -test.benchtime T -test.count 1 -test.benchmem`, in the package's directory), " +
		"round after round: each round runs every benchmark of every package once, each package starting with another of its benchmarks than " +
		"the round before, so a baseline and its subject share the machine's load of the moment. A figure is the median over the rounds " +
		"(min–max and the number of samples beside it); a ratio is the median of the per-round ratios. The `go test` command printed beside each " +
		"figure runs the same benchmarks with the same -benchtime, its -count being the number of rounds (not interleaved). " +
		"Both ends of every connection run in one process, over loopback TCP or net.Pipe, so the CPU is shared by client and server. " +
		"The load average above says how busy the machine was: when it is above the number of CPUs, other work shared them and " +
		"absolute figures are low and noisy.\n")
}

// veraison runs the live Veraison benchmarks through the project's script,
// which builds Veraison (cached after the first time) and starts it.
func (r *runner) veraison(ctx context.Context) string {
	v := veraisonLive
	timeout := min(v.Timeout, r.remaining()-30*time.Second)
	if timeout < time.Minute {
		r.st.note("veraison", "not run: time budget spent")
		return "not run in this report (time budget spent); run `make test-veraison-bench`."
	}
	if _, err := exec.LookPath("bash"); err != nil {
		return "not run: no bash; run `make test-veraison-bench`."
	}
	t0 := time.Now()
	out, err := output(ctx, timeout, r.root, nil, "bash", append([]string{v.Script}, v.Args...)...)
	rs, perr := ParseOutput(out)
	seen := map[string]int{}
	for _, res := range rs {
		r.st.add("veraison", seen[res.Name], []Result{res})
		seen[res.Name]++
	}
	if err == nil {
		err = perr
	}
	if err != nil {
		r.st.note("veraison", "%s: %v\n%s", v.Script, err, lastLines(out, 8))
		if len(rs) == 0 {
			return fmt.Sprintf("not available in this run (%v; see Problems); run `make test-veraison-bench`.", firstLine(err.Error()))
		}
	}
	return fmt.Sprintf("the rows above marked live Veraison come from `make test-veraison-bench` (Veraison v0.0.2501 built from the module proxy, "+
		"cached after the first build, started on loopback with in-memory stores; this step took %v).", time.Since(t0).Round(time.Second))
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
