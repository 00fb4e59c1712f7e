package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Limits of one result line of `go test -bench` output (the Go benchmark
// data format, golang.org/design/14313-benchmark-format). A line past them
// is an error, not truncated.
const (
	maxLineLen    = 4096
	maxNameLen    = 512
	maxMetrics    = 32
	maxUnitLen    = 64
	maxResultRows = 100000 // result lines taken from one run's output
)

// Result is one benchmark result line.
type Result struct {
	Name    string // full name, sub-benchmarks included, without the -GOMAXPROCS suffix
	Procs   int    // the GOMAXPROCS suffix, 0 if absent
	Iters   int64
	Metrics map[string]float64 // unit -> value ("ns/op", "B/op", "conn/s", ...)
}

var errNotResult = errors.New("not a benchmark result line")

// ParseLine parses one result line: "BenchmarkName[-procs] iters (value
// unit)+". It returns errNotResult for lines that do not start with
// "Benchmark" followed by a field separator-delimited result (so that
// "BenchmarkX" headers printed by -v, logs and PASS lines are skipped), and
// another error for a line that looks like a result but is malformed.
func ParseLine(line string) (Result, error) {
	if !strings.HasPrefix(line, "Benchmark") {
		return Result{}, errNotResult
	}
	if len(line) > maxLineLen {
		return Result{}, fmt.Errorf("result line of %d bytes (at most %d)", len(line), maxLineLen)
	}
	f := strings.Fields(line)
	if len(f) < 3 {
		// "BenchmarkX" alone (a -v header, or a benchmark that failed) or
		// "BenchmarkX-2 --- FAIL": not a result.
		return Result{}, errNotResult
	}
	if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
		return Result{}, errNotResult
	}
	if len(f[0]) > maxNameLen {
		return Result{}, fmt.Errorf("benchmark name of %d bytes (at most %d)", len(f[0]), maxNameLen)
	}
	if (len(f)-2)%2 != 0 {
		return Result{}, fmt.Errorf("%s: odd number of value/unit fields", f[0])
	}
	if (len(f)-2)/2 > maxMetrics {
		return Result{}, fmt.Errorf("%s: more than %d metrics", f[0], maxMetrics)
	}
	r := Result{Name: f[0], Metrics: make(map[string]float64, (len(f)-2)/2)}
	if i := strings.LastIndexByte(r.Name, '-'); i > 0 {
		if p, err := strconv.Atoi(r.Name[i+1:]); err == nil && p > 0 && allDigits(r.Name[i+1:]) {
			r.Name, r.Procs = r.Name[:i], p
		}
	}
	n, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || n <= 0 {
		return Result{}, fmt.Errorf("%s: iteration count %q", f[0], f[1])
	}
	r.Iters = n
	for i := 2; i < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return Result{}, fmt.Errorf("%s: value %q", r.Name, f[i])
		}
		unit := f[i+1]
		if len(unit) > maxUnitLen || !validUnit(unit) {
			return Result{}, fmt.Errorf("%s: unit %q", r.Name, unit)
		}
		if _, dup := r.Metrics[unit]; dup {
			return Result{}, fmt.Errorf("%s: unit %q twice", r.Name, unit)
		}
		r.Metrics[unit] = v
	}
	return r, nil
}

// validUnit reports whether u is a unit as the testing package writes them:
// printable ASCII without spaces, not starting with a digit or a sign.
func validUnit(u string) bool {
	if u == "" || (u[0] >= '0' && u[0] <= '9') || u[0] == '-' || u[0] == '+' || u[0] == '.' {
		return false
	}
	for i := 0; i < len(u); i++ {
		if u[i] <= ' ' || u[i] > '~' {
			return false
		}
	}
	return true
}

// ParseOutput returns every result line of a benchmark run's output (at
// most maxResultRows), and the first malformed result line's error.
func ParseOutput(out string) ([]Result, error) {
	var rs []Result
	for line := range strings.Lines(out) {
		line = strings.TrimRight(line, "\r\n")
		r, err := ParseLine(line)
		if errors.Is(err, errNotResult) {
			continue
		}
		if err != nil {
			return rs, err
		}
		if len(rs) == maxResultRows {
			return rs, fmt.Errorf("more than %d result lines", maxResultRows)
		}
		rs = append(rs, r)
	}
	return rs, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
