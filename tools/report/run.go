package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// maxOutput bounds what is kept of one command's output.
const maxOutput = 8 << 20

// sample is one result of one round.
type sample struct {
	round int
	res   Result
}

// store holds every result of the run, by benchmark name, and which job
// produced each name.
type store struct {
	byName map[string][]sample
	jobOf  map[string]string
	notes  map[string][]string // job ID -> problems (build failures, failed runs)
	runs   map[string]int      // job ID + " " + unit -> rounds in which it was run
}

func newStore() *store {
	return &store{byName: map[string][]sample{}, jobOf: map[string]string{}, notes: map[string][]string{}, runs: map[string]int{}}
}

func (s *store) add(job string, round int, rs []Result) {
	for _, r := range rs {
		s.byName[r.Name] = append(s.byName[r.Name], sample{round, r})
		s.jobOf[r.Name] = job
	}
}

func (s *store) note(job, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.notes[job] = append(s.notes[job], msg)
	logf("%s: %s", job, msg)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s report: %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// runner builds test binaries and runs benchmarks under one deadline.
type runner struct {
	root, bin string
	goCmd     string
	deadline  time.Time
	binaries  map[string]string // package+tags -> binary ("" if the build failed)
	st        *store
}

func (r *runner) remaining() time.Duration { return time.Until(r.deadline) }

// output runs cmd with a timeout and returns its combined output, at most
// maxOutput bytes of it.
func output(ctx context.Context, timeout time.Duration, dir string, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 5 * time.Second
	var buf limitedBuffer
	buf.max = maxOutput
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %v: %w", timeout, ctx.Err())
	}
	if buf.over {
		err = errors.Join(err, fmt.Errorf("output over %d bytes, cut", maxOutput))
	}
	return buf.String(), err
}

type limitedBuffer struct {
	bytes.Buffer
	max  int
	over bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); len(p) > room {
		b.over = true
		if room > 0 {
			b.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return b.Buffer.Write(p)
}

// binary returns the test binary of job's package, building it once.
func (r *runner) binary(ctx context.Context, j Job) (string, error) {
	key := j.Pkg + "|" + j.Tags
	if b, ok := r.binaries[key]; ok {
		if b == "" {
			return "", errors.New("build failed")
		}
		return b, nil
	}
	name := strings.NewReplacer("/", "_", ".", "_").Replace(strings.TrimPrefix(j.Pkg, "./"))
	if j.Tags != "" {
		name += "_" + j.Tags
	}
	out := filepath.Join(r.bin, name+".test")
	args := []string{"test", "-c", "-o", out}
	if j.Tags != "" {
		args = append(args, "-tags", j.Tags)
	}
	args = append(args, j.Pkg)
	t0 := time.Now()
	text, err := output(ctx, min(10*time.Minute, r.remaining()), r.root, nil, r.goCmd, args...)
	if err == nil {
		if _, serr := os.Stat(out); serr != nil {
			err = fmt.Errorf("no test binary (package has no tests?): %v", serr)
		}
	}
	if err != nil {
		r.binaries[key] = ""
		return "", fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, lastLines(text, 10))
	}
	logf("built %s in %v", j.Pkg, time.Since(t0).Round(time.Second))
	r.binaries[key] = out
	return out, nil
}

// unitRegexp turns "BenchmarkX/sub" into the -test.bench pattern that
// selects exactly it: "^BenchmarkX$/^sub$".
func unitRegexp(unit string) string {
	parts := strings.Split(unit, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// runUnit runs one benchmark of j once (one round) and records its
// results, unless round is negative.
func (r *runner) runUnit(ctx context.Context, j Job, unit string, round int, extra ...string) (string, error) {
	bin, err := r.binary(ctx, j)
	if err != nil {
		return "", err
	}
	timeout := j.Timeout
	if timeout == 0 {
		timeout = 3 * time.Minute
	}
	timeout = min(timeout, r.remaining())
	if timeout <= 0 {
		return "", errors.New("time budget spent")
	}
	args := []string{"-test.run", "^$", "-test.bench", unitRegexp(unit), "-test.benchtime", j.Benchtime,
		"-test.count", "1", "-test.benchmem", "-test.timeout", (timeout + time.Minute).String()}
	args = append(args, extra...)
	text, err := output(ctx, timeout, filepath.Join(r.root, j.Pkg), nil, bin, args...)
	rs, perr := ParseOutput(text)
	if round >= 0 {
		r.st.add(j.ID, round, rs)
		r.st.runs[j.ID+" "+unit]++
	}
	if err == nil && perr != nil {
		err = perr
	}
	if err != nil {
		return text, fmt.Errorf("%s round %d: %v\n%s", unit, round+1, err, lastLines(text, 8))
	}
	if len(rs) == 0 {
		return text, fmt.Errorf("%s: no result (no such benchmark, or it skipped)", unit)
	}
	return text, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// runAll runs every job's units, round by round: in round k, every job
// with more than k rounds runs each of its units once, starting with a
// different unit each round.
func (r *runner) runAll(ctx context.Context, js []Job) {
	for _, j := range js {
		if _, err := r.binary(ctx, j); err != nil {
			r.st.note(j.ID, "%v", err)
		}
	}
	maxRounds := 0
	for _, j := range js {
		maxRounds = max(maxRounds, j.Rounds)
	}
	missing := map[string]bool{}
	for round := range maxRounds {
		for _, j := range js {
			if round >= j.Rounds {
				continue
			}
			if r.binaries[j.Pkg+"|"+j.Tags] == "" {
				continue
			}
			units := slices.Clone(j.Units)
			k := round % len(units)
			units = append(units[k:], units[:k]...)
			for _, u := range units {
				if missing[j.ID+u] {
					continue
				}
				if r.remaining() < time.Minute {
					r.st.note(j.ID, "%s: round %d not run, time budget spent", u, round+1)
					continue
				}
				if _, err := r.runUnit(ctx, j, u, round); err != nil {
					if strings.Contains(err.Error(), "no result") {
						missing[j.ID+u] = true
					}
					r.st.note(j.ID, "%v", err)
				}
			}
		}
		logf("round %d done, %v left", round+1, r.remaining().Round(time.Second))
	}
}

// command is the go test command equivalent to a job (its rounds being
// -count).
func (j Job) command() string {
	var tops []string
	for _, u := range j.Units {
		t, _, _ := strings.Cut(u, "/")
		if !slices.Contains(tops, t) {
			tops = append(tops, t)
		}
	}
	pat := "^" + tops[0] + "$"
	if len(tops) > 1 {
		pat = "^(" + strings.Join(tops, "|") + ")$"
	}
	tags := ""
	if j.Tags != "" {
		tags = "-tags " + j.Tags + " "
	}
	return fmt.Sprintf("go test %s-run '^$' -bench '%s' -benchtime %s -count %d -benchmem %s", tags, pat, j.Benchtime, j.Rounds, j.Pkg)
}
