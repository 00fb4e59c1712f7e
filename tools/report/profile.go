package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// topRow is one line of `go tool pprof -top`.
type topRow struct {
	flat, flatPct, cum, cumPct, name string
}

// parseTop reads the table of `go tool pprof -top` output: after the header
// line "flat  flat%   sum%        cum   cum%", lines of five values and a
// function name. At most n rows; malformed lines end the table.
func parseTop(out string, n int) []topRow {
	var rows []topRow
	in := false
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if !in {
			in = len(f) >= 5 && f[0] == "flat" && f[1] == "flat%" && f[3] == "cum"
			continue
		}
		if len(f) < 6 || !strings.HasSuffix(f[1], "%") || !strings.HasSuffix(f[4], "%") {
			break
		}
		rows = append(rows, topRow{flat: f[0], flatPct: f[1], cum: f[3], cumPct: f[4], name: strings.Join(f[5:], " ")})
		if len(rows) == n {
			break
		}
	}
	return rows
}

// profile runs profileJob with -cpuprofile and returns the document's
// section for it.
func (r *runner) profile(ctx context.Context) string {
	var b strings.Builder
	j := profileJob
	prof := filepath.Join(r.bin, "churn.cpu.pprof")
	cmd := fmt.Sprintf("go test -run '^$' -bench '^%s$' -benchtime %s -cpuprofile cpu.pprof %s && go tool pprof -top -nodecount=10 [-cum] expat.test cpu.pprof",
		j.Units[0], j.Benchtime, j.Pkg)
	fmt.Fprintf(&b, "## Where the time goes\n\n")
	fmt.Fprintf(&b, "CPU profile of %s (both ends of every connection are in the process, so this is client and server together), top 10 functions by own (flat) time and by cumulative time.\n\n", j.Units[0])
	fmt.Fprintf(&b, "Command: `%s`.\n\n", cmd)
	if r.remaining() < 2*time.Minute {
		fmt.Fprintf(&b, "Not run: time budget spent.\n\n")
		return b.String()
	}
	if _, err := r.runUnit(ctx, j, j.Units[0], -1, "-test.cpuprofile", prof); err != nil {
		r.st.note(j.ID, "%v", err)
		fmt.Fprintf(&b, "Not available: the profiled run failed (see Problems).\n\n")
		return b.String()
	}
	bin, _ := r.binary(ctx, j)
	for _, order := range []struct{ title, flag string }{{"flat", ""}, {"cumulative", "-cum"}} {
		args := []string{"tool", "pprof", "-top", "-nodecount=10"}
		if order.flag != "" {
			args = append(args, order.flag)
		}
		args = append(args, bin, prof)
		out, err := output(ctx, 2*time.Minute, r.root, nil, r.goCmd, args...)
		rows := parseTop(out, 10)
		if err != nil || len(rows) == 0 {
			r.st.note(j.ID, "go tool pprof: %v\n%s", err, lastLines(out, 5))
			fmt.Fprintf(&b, "Top by %s time: not available.\n\n", order.title)
			continue
		}
		fmt.Fprintf(&b, "Top by %s time:\n\n| function | flat | flat%% | cum | cum%% |\n| --- | --- | --- | --- | --- |\n", order.title)
		for _, row := range rows {
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", strings.ReplaceAll(row.name, "|", `\|`), row.flat, row.flatPct, row.cum, row.cumPct)
		}
		b.WriteString("\n")
	}
	return b.String()
}
