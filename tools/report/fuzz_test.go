package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sampleFuzzTSV is a summary as scripts/fuzz-long.sh writes it: a stamp,
// the header, a clean target and one that crashed.
func sampleFuzzTSV(stamp bool) string {
	var b strings.Builder
	if stamp {
		b.WriteString("# fuzz-long fuzztime=5m date=2026-12-02T16:00:00Z commit=0123456789ab\n")
	}
	b.WriteString(strings.Join(fuzzColumns, "\t") + "\n")
	for _, row := range [][]string{
		{modulePath + "/ea", "FuzzParseRequest", "300", "12345678", "41152", "17", "0", "3", "-"},
		{modulePath + "/expat", "FuzzFrame", "12", "9000", "750", "0", "1", "0", "expat/testdata/fuzz/FuzzFrame/abc123"},
	} {
		b.WriteString(strings.Join(row, "\t") + "\n")
	}
	return b.String()
}

func TestParseFuzzTSV(t *testing.T) {
	s, err := parseFuzzTSV([]byte(sampleFuzzTSV(true)))
	if err != nil {
		t.Fatal(err)
	}
	want := fuzzTarget{Pkg: modulePath + "/ea", Target: "FuzzParseRequest", Seconds: 300, Execs: 12345678, ExecsPerSec: 41152, NewInteresting: 17, Kept: 3}
	if len(s.Targets) != 2 || s.Targets[0] != want || !s.Targets[1].Crashed || s.Targets[1].Crasher == "" {
		t.Fatalf("%+v", s.Targets)
	}
	if s.Meta["fuzztime"] != "5m" || s.Meta["commit"] != "0123456789ab" || len(s.Meta) != 3 {
		t.Fatalf("meta %v", s.Meta)
	}
	// A file from before the stamp line, and one with no target yet.
	if s, err := parseFuzzTSV([]byte(sampleFuzzTSV(false))); err != nil || len(s.Meta) != 0 || len(s.Targets) != 2 {
		t.Fatalf("%+v %v", s, err)
	}
	if s, err := parseFuzzTSV([]byte(strings.Join(fuzzColumns, "\t") + "\n")); err != nil || len(s.Targets) != 0 {
		t.Fatalf("%+v %v", s, err)
	}
}

func TestParseFuzzTSVRejects(t *testing.T) {
	good := sampleFuzzTSV(true)
	header := strings.Join(fuzzColumns, "\t") + "\n"
	row := func(f ...string) string { return header + strings.Join(f, "\t") + "\n" }
	ok := []string{"p", "FuzzX", "1", "2", "3", "4", "0", "5", "-"}
	with := func(i int, v string) string {
		f := append([]string(nil), ok...)
		f[i] = v
		return row(f...)
	}
	for name, in := range map[string]string{
		"empty":              "",
		"no final newline":   strings.TrimSuffix(good, "\n"),
		"no header":          "# fuzz-long fuzztime=5m\n",
		"other header":       strings.Replace(good, "execs_per_sec", "rate", 1),
		"header twice":       header + header,
		"short line":         row(ok[:8]...),
		"long line":          row(append(ok, "x")...),
		"empty line":         header + "\n",
		"empty field":        with(8, ""),
		"not a fuzz target":  with(1, "TestX"),
		"negative count":     with(3, "-2"),
		"signed count":       with(3, "+2"),
		"float count":        with(2, "1.5"),
		"huge count":         with(3, "99999999999999999999"),
		"crashed 2":          with(6, "2"),
		"crasher, no crash":  with(8, "a/b"),
		"markdown separator": with(0, "a|b"),
		"control byte":       with(0, "a\x01b"),
		"twice":              header + strings.Repeat(strings.Join(ok, "\t")+"\n", 2),
		"comment after head": header + "# fuzz-long x=y\n",
		"other comment":      "# hello\n" + header,
		"stamp field":        "# fuzz-long fuzztime\n" + header,
		"stamp field twice":  "# fuzz-long a=1 a=2\n" + header,
		"too large":          header + strings.Repeat("#", maxFuzzFile) + "\n",
	} {
		if s, err := parseFuzzTSV([]byte(in)); err == nil || s != nil || !errors.Is(err, errFuzzTSV) {
			t.Errorf("%s: %+v, %v", name, s, err)
		}
	}
}

func TestFuzzSection(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fuzz.tsv")
	render := func() string {
		d := &doc{st: newStore()}
		d.fuzzSection(path, "docs/perf/fuzz.tsv")
		return d.String()
	}
	if out := render(); !strings.Contains(out, "Not run: there is no `docs/perf/fuzz.tsv`") || !strings.Contains(out, "make fuzz-long") {
		t.Fatalf("absent file:\n%s", out)
	}
	if err := os.WriteFile(path, []byte(sampleFuzzTSV(true)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := render()
	for _, want := range []string{
		"run started 2026-12-02T16:00:00Z", "commit 0123456789ab", "budget 5m per target",
		"**MISS** — goal: no fuzz target crashed; measured: 1 of 2 targets crashed: FuzzFrame (packages: 2; executions: 12,354,678 in 5m12s",
		"| ea | FuzzParseRequest | 300 | 12,345,678 | 41,152 | 17 | no | 3 | — |",
		"| expat | FuzzFrame | 12 | 9,000 | 750 | 0 | **yes** | 0 | `expat/testdata/fuzz/FuzzFrame/abc123` |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	clean := strings.Replace(sampleFuzzTSV(false), "\t1\t0\texpat/testdata/fuzz/FuzzFrame/abc123\n", "\t0\t0\t-\n", 1)
	if err := os.WriteFile(path, []byte(clean), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := render(); !strings.Contains(out, "**PASS** — goal: no fuzz target crashed; measured: 0 of 2") || !strings.Contains(out, "budget per target not recorded") {
		t.Fatalf("clean run:\n%s", out)
	}
	if err := os.WriteFile(path, []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &doc{st: newStore()}
	d.fuzzSection(path, "docs/perf/fuzz.tsv")
	if !strings.Contains(d.String(), "could not be read") || len(d.st.notes["fuzz"]) != 1 {
		t.Fatalf("malformed file:\n%s\nnotes %v", d.String(), d.st.notes)
	}
}

// FuzzParseFuzzTSV: any input is rejected with nil or parsed within the
// limits; never a panic.
func FuzzParseFuzzTSV(f *testing.F) {
	f.Add([]byte(sampleFuzzTSV(true)))
	f.Add([]byte(sampleFuzzTSV(false)))
	f.Add([]byte(strings.Join(fuzzColumns, "\t") + "\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseFuzzTSV(b)
		if err != nil {
			if s != nil {
				t.Fatalf("error %v with a result", err)
			}
			return
		}
		if len(s.Targets) > maxFuzzTargets || len(s.Meta) > maxFuzzMeta {
			t.Fatalf("past the limits: %d targets, %d stamp fields", len(s.Targets), len(s.Meta))
		}
		seen := map[string]bool{}
		for _, tg := range s.Targets {
			key := fmt.Sprint(tg.Pkg, ".", tg.Target)
			if seen[key] || !strings.HasPrefix(tg.Target, "Fuzz") || !printable(tg.Pkg) || (tg.Crasher != "" && !tg.Crashed) {
				t.Fatalf("%+v", tg)
			}
			for _, n := range []int64{tg.Seconds, tg.Execs, tg.ExecsPerSec, tg.NewInteresting, tg.Kept} {
				if n < 0 || n > maxFuzzCount {
					t.Fatalf("count %d", n)
				}
			}
			seen[key] = true
		}
	})
}
