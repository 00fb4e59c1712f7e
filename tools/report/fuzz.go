package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// The summary of make fuzz-long (scripts/fuzz-long.sh): optional comment
// lines "# fuzz-long key=value ...", then a header line, then one
// tab-separated line per fuzz target with the columns of fuzzColumns.

var fuzzColumns = []string{"package", "target", "seconds", "execs", "execs_per_sec", "new_interesting", "crashed", "kept", "crasher"}

// Limits of a summary; a file past them is an error, not truncated.
const (
	maxFuzzFile    = 1 << 20
	maxFuzzTargets = 10000
	maxFuzzField   = 512
	maxFuzzCount   = 1 << 53 // integers stay exact as float64
	maxFuzzMeta    = 16
)

// fuzzTarget is one line of the summary.
type fuzzTarget struct {
	Pkg, Target                                 string
	Seconds, Execs, ExecsPerSec, NewInteresting int64
	Crashed                                     bool
	Kept                                        int64
	Crasher                                     string // "" for none ("-" in the file)
}

// fuzzSummary is a parsed summary.
type fuzzSummary struct {
	Meta    map[string]string // from the "# fuzz-long" line: fuzztime, date, commit
	Targets []fuzzTarget
}

var errFuzzTSV = errors.New("fuzz summary")

func fuzzErr(line int, format string, args ...any) error {
	return fmt.Errorf("%w: line %d: %s", errFuzzTSV, line, fmt.Sprintf(format, args...))
}

// parseFuzzTSV parses a summary strictly: the exact header, every line with
// every column, counts as non-negative decimal integers, crashed 0 or 1,
// each target once. It returns nil and an error for anything else.
func parseFuzzTSV(b []byte) (*fuzzSummary, error) {
	if len(b) > maxFuzzFile {
		return nil, fmt.Errorf("%w: %d bytes (at most %d)", errFuzzTSV, len(b), maxFuzzFile)
	}
	text := string(b)
	if !strings.HasSuffix(text, "\n") {
		return nil, fmt.Errorf("%w: does not end with a newline (cut short?)", errFuzzTSV)
	}
	s := &fuzzSummary{Meta: map[string]string{}}
	header := false
	seen := map[string]bool{}
	n := 0
	for line := range strings.Lines(text) {
		n++
		line = strings.TrimSuffix(line, "\n")
		if !header && strings.HasPrefix(line, "#") {
			if err := s.parseMeta(n, line); err != nil {
				return nil, err
			}
			continue
		}
		f := strings.Split(line, "\t")
		if !header {
			if strings.Join(f, "\t") != strings.Join(fuzzColumns, "\t") {
				return nil, fuzzErr(n, "header %q, want %q", line, strings.Join(fuzzColumns, "\t"))
			}
			header = true
			continue
		}
		if len(f) != len(fuzzColumns) {
			return nil, fuzzErr(n, "%d fields, want %d", len(f), len(fuzzColumns))
		}
		for i, v := range f {
			if v == "" || len(v) > maxFuzzField || !printable(v) {
				return nil, fuzzErr(n, "%s %q", fuzzColumns[i], v)
			}
		}
		t := fuzzTarget{Pkg: f[0], Target: f[1], Crasher: f[8]}
		if !strings.HasPrefix(t.Target, "Fuzz") {
			return nil, fuzzErr(n, "target %q is not a fuzz target", t.Target)
		}
		if seen[t.Pkg+"."+t.Target] {
			return nil, fuzzErr(n, "%s.%s twice", t.Pkg, t.Target)
		}
		seen[t.Pkg+"."+t.Target] = true
		for i, p := range []*int64{&t.Seconds, &t.Execs, &t.ExecsPerSec, &t.NewInteresting, nil, &t.Kept} {
			if p == nil {
				continue
			}
			v, err := parseCount(f[2+i])
			if err != nil {
				return nil, fuzzErr(n, "%s: %v", fuzzColumns[2+i], err)
			}
			*p = v
		}
		switch f[6] {
		case "0":
		case "1":
			t.Crashed = true
		default:
			return nil, fuzzErr(n, "crashed %q, want 0 or 1", f[6])
		}
		if t.Crasher == "-" {
			t.Crasher = ""
		} else if !t.Crashed {
			return nil, fuzzErr(n, "a crasher (%q) for a target that did not crash", t.Crasher)
		}
		if len(s.Targets) == maxFuzzTargets {
			return nil, fuzzErr(n, "more than %d targets", maxFuzzTargets)
		}
		s.Targets = append(s.Targets, t)
	}
	if !header {
		return nil, fmt.Errorf("%w: no header line", errFuzzTSV)
	}
	return s, nil
}

// parseMeta reads "# fuzz-long key=value ...".
func (s *fuzzSummary) parseMeta(n int, line string) error {
	f := strings.Fields(strings.TrimPrefix(line, "#"))
	if len(f) == 0 || f[0] != "fuzz-long" {
		return fuzzErr(n, "comment %q is not a fuzz-long stamp", line)
	}
	for _, kv := range f[1:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || v == "" || len(kv) > maxFuzzField || !printable(kv) {
			return fuzzErr(n, "stamp field %q", kv)
		}
		if _, dup := s.Meta[k]; dup {
			return fuzzErr(n, "stamp field %q twice", k)
		}
		if len(s.Meta) == maxFuzzMeta {
			return fuzzErr(n, "more than %d stamp fields", maxFuzzMeta)
		}
		s.Meta[k] = v
	}
	return nil
}

func parseCount(v string) (int64, error) {
	if !allDigits(v) {
		return 0, fmt.Errorf("%q is not a count", v)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n > maxFuzzCount {
		return 0, fmt.Errorf("%q out of range", v)
	}
	return n, nil
}

// printable is printable ASCII without tabs, and no Markdown table
// separator.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' || s[i] == '|' {
			return false
		}
	}
	return true
}

// readFuzzFile reads at most maxFuzzFile+1 bytes of path (so that a larger
// file is rejected by the parser, not read whole).
func readFuzzFile(path string) ([]byte, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, maxFuzzFile+1))
	return b, fi, err
}

const fuzzCommand = "`make fuzz-long` (every fuzz target for 5 min; `make fuzz-long FUZZTIME=30s` for a shorter pass)"

// fuzzSection renders the summary at path (shown as name): its targets,
// executions and crashes, or why there is nothing to show.
func (d *doc) fuzzSection(path, name string) {
	d.p("## Fuzzing (make fuzz-long)\n")
	d.p("%s runs every fuzz target of the module for its budget, keeps a bounded part of the corpus it grows under each package's "+
		"testdata/fuzz/<Target>/, and writes `%s`, which this section renders; `make report` does not run it.\n", fuzzCommand, name)
	b, fi, err := readFuzzFile(path)
	if errors.Is(err, os.ErrNotExist) {
		d.p("Not run: there is no `%s`. Run %s, then `make report`.\n", name, fuzzCommand)
		return
	}
	var s *fuzzSummary
	if err == nil {
		s, err = parseFuzzTSV(b)
	}
	if err != nil {
		d.p("`%s` could not be read: %v. Run %s again.\n", name, err, fuzzCommand)
		d.st.note("fuzz", "%s: %v", name, err)
		return
	}
	stamp := []string{"file written " + fi.ModTime().UTC().Format("2006-01-02 15:04 UTC")}
	if v, ok := s.Meta["date"]; ok {
		stamp = append([]string{"run started " + v}, stamp...)
	}
	if v, ok := s.Meta["commit"]; ok {
		stamp = append(stamp, "commit "+v)
	}
	budget := "budget per target not recorded (a file from before the stamp line)"
	if v, ok := s.Meta["fuzztime"]; ok {
		budget = "budget " + v + " per target"
	}
	var execs, kept, secs int64
	var crashed []string
	pkgs := map[string]bool{}
	for _, t := range s.Targets {
		execs += t.Execs
		kept += t.Kept
		secs += t.Seconds
		pkgs[t.Pkg] = true
		if t.Crashed {
			crashed = append(crashed, t.Target)
		}
	}
	d.p("%s; %s.\n", strings.Join(stamp, ", "), budget)
	verdict := "PASS"
	if len(crashed) > 0 {
		verdict = "MISS"
	}
	if len(s.Targets) == 0 {
		verdict = "n/a"
	}
	d.p("- **%s** — goal: no fuzz target crashed; measured: %d of %d targets crashed%s (packages: %d; executions: %s in %v of fuzzing; corpus entries kept: %d).\n",
		verdict, len(crashed), len(s.Targets), crashList(crashed), len(pkgs), fmtCount(execs), time.Duration(secs)*time.Second, kept)
	d.p("| package | target | seconds | executions | execs/s | new interesting | crashed | corpus kept | failing input |")
	d.p("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, t := range s.Targets {
		crash, input := "no", "—"
		if t.Crashed {
			crash = "**yes**"
		}
		if t.Crasher != "" {
			input = "`" + t.Crasher + "`"
		}
		d.p("| %s | %s | %d | %s | %s | %d | %s | %d | %s |", strings.TrimPrefix(t.Pkg, modulePath+"/"), t.Target, t.Seconds,
			fmtCount(t.Execs), fmtCount(t.ExecsPerSec), t.NewInteresting, crash, t.Kept, input)
	}
	d.p("")
}

// modulePath is the library's module, trimmed from package paths.
const modulePath = "github.com/attested-tls/go-expat"

func crashList(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return ": " + strings.Join(names, ", ")
}

// fmtCount prints n with commas between thousands.
func fmtCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString(",")
		}
		b.WriteRune(c)
	}
	return b.String()
}
