package main

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// bar is one bar: the median of ref, times scale.
type bar struct {
	label string
	ref   Ref
	scale float64
}

// line is one series: every benchmark name match matches, at the x that
// the name's first submatch gives (a number).
type line struct {
	name   string
	match  *regexp.Regexp
	metric string
	scale  float64
}

type plotSpec struct {
	id, title, ylabel, xlabel string
	bars                      []bar
	lines                     []line
	logX                      bool
}

var plots = []plotSpec{
	{id: "ea", title: "EA round per signature scheme vs TLS handshake", ylabel: "µs per round (median)", bars: []bar{
		{"TLS 1.3 handshake", Ref{"BenchmarkHandshake", "ns/op"}, 1e-3},
		{"bare crypto P-256", Ref{"BenchmarkBareCrypto", "ns/op"}, 1e-3},
		{"EA P-256", Ref{p256Round, "ns/op"}, 1e-3},
		{"EA P-384", Ref{"BenchmarkEARound/ECDSAWithP384AndSHA384", "ns/op"}, 1e-3},
		{"EA Ed25519", Ref{"BenchmarkEARound/Ed25519", "ns/op"}, 1e-3},
		{"EA RSA-PSS 2048", Ref{"BenchmarkEARound/PSSWithSHA256", "ns/op"}, 1e-3},
	}},
	{id: "setup", title: "Connection setups per second, per backend and model", ylabel: "setups/s (median)", bars: []bar{
		{"TLS", Ref{"BenchmarkChurnTLS", "conn/s"}, 1},
		{"test kit", Ref{"BenchmarkChurnAttested", "conn/s"}, 1},
		{"mTLS", Ref{"BenchmarkChurnMutualTLS", "conn/s"}, 1},
		{"kit mutual", Ref{"BenchmarkChurnMutual", "conn/s"}, 1},
		{"EAR fresh", Ref{"BenchmarkPassportChurn", "fresh-conn/s"}, 1},
		{"EAR reused", Ref{"BenchmarkPassportChurn", "reused-conn/s"}, 1},
		{"TLS pair", Ref{"BenchmarkTLSHandshake", "op/s"}, 1},
		{"SEV-SNP", Ref{"BenchmarkSEVSNPAttestedSetup", "op/s"}, 1},
		{"TPM sim", Ref{"BenchmarkTPMAttestedSetup", "op/s"}, 1},
	}},
	{id: "throughput", title: "Bulk throughput, plain vs attested", ylabel: "MB/s (median)", bars: []bar{
		{"TLS", Ref{"BenchmarkThroughputTLS", "MB/s"}, 1},
		{"expat", Ref{"BenchmarkThroughputAttested", "MB/s"}, 1},
		{"QUIC", Ref{"BenchmarkStreamThroughput/plain", "MB/s"}, 1},
		{"expatquic", Ref{"BenchmarkStreamThroughput/attested", "MB/s"}, 1},
		{"tunnel TLS", Ref{"BenchmarkTunnel", "tls-MB/s"}, 1},
		{"tunnel expat", Ref{"BenchmarkTunnel", "tunnel-MB/s"}, 1},
	}},
	{id: "memory", title: "Memory per idle connection pair", ylabel: "KiB per pair (median)", bars: []bar{
		{"plain TLS", Ref{"BenchmarkIdleConnMemory", "B/plain-pair"}, 1.0 / 1024},
		{"attested", Ref{"BenchmarkIdleConnMemory", "B/attested-pair"}, 1.0 / 1024},
		{"TLS, 1000 open", Ref{"BenchmarkConcurrentSetup/kind=tls/n=1000", "B/pair"}, 1.0 / 1024},
		{"attested, 1000 open", Ref{"BenchmarkConcurrentSetup/kind=attested/n=1000", "B/pair"}, 1.0 / 1024},
	}},
	{id: "integrations", title: "Integrations: attested rate ÷ plain rate", ylabel: "× plain (median)", bars: nil},
	{id: "scale-latency", title: "Median setup latency, n concurrent setups", xlabel: "concurrent connections n", ylabel: "ms (p50)", logX: true, lines: []line{
		{"plain TLS", regexp.MustCompile(`^BenchmarkConcurrentSetup/kind=tls/n=(\d+)$`), "p50-setup-ms", 1},
		{"attested", regexp.MustCompile(`^BenchmarkConcurrentSetup/kind=attested/n=(\d+)$`), "p50-setup-ms", 1},
	}},
	{id: "scale-cpu", title: "CPU per connection, n concurrent setups", xlabel: "concurrent connections n", ylabel: "µs CPU per connection (getrusage)", logX: true, lines: []line{
		{"plain TLS", regexp.MustCompile(`^BenchmarkConcurrentSetup/kind=tls/n=(\d+)$`), "cpu-ns/conn", 1e-3},
		{"attested", regexp.MustCompile(`^BenchmarkConcurrentSetup/kind=attested/n=(\d+)$`), "cpu-ns/conn", 1e-3},
	}},
	{id: "scale-memory", title: "Memory per open pair, n concurrent setups", xlabel: "concurrent connections n", ylabel: "KiB per pair", logX: true, lines: []line{
		{"plain TLS", regexp.MustCompile(`^BenchmarkConcurrentSetup/kind=tls/n=(\d+)$`), "B/pair", 1.0 / 1024},
		{"attested", regexp.MustCompile(`^BenchmarkConcurrentSetup/kind=attested/n=(\d+)$`), "B/pair", 1.0 / 1024},
	}},
	{id: "appraisal-size", title: "Appraisal time against Evidence size", xlabel: "entries: TPM events, CMW collection items (0 drawn at 0.5)", ylabel: "µs per appraisal", logX: true, lines: []line{
		{"TPM event log", regexp.MustCompile(`^BenchmarkVerifyEventLog/events=(\d+)$`), "ns/op", 1e-3},
		{"CMW collection", regexp.MustCompile(`^BenchmarkDispatchCollection/items=(\d+)$`), "ns/op", 1e-3},
	}},
}

// integrationRatios are the bars of the "integrations" plot.
var integrationRatios = []struct {
	label string
	q     *Ratio
}{
	{"HTTP keep-alive", faster("BenchmarkKeepAlive/attested", "BenchmarkKeepAlive/plain")},
	{"HTTP first req.", faster("BenchmarkFirstRequest/attested", "BenchmarkFirstRequest/plain")},
	{"gRPC unary", faster("BenchmarkUnary/attested", "BenchmarkUnary/plain")},
	{"QUIC stream", per("BenchmarkStreamThroughput/attested", "BenchmarkStreamThroughput/plain", "MB/s")},
	{"tunnel", &Ratio{Num: []Ref{{"BenchmarkTunnel", "ratio-vs-plain"}}}},
}

func plotByID(id string) *plotSpec {
	for i := range plots {
		if plots[i].id == id {
			return &plots[i]
		}
	}
	return nil
}

// refs lists what the plot draws from.
func (p *plotSpec) refs(st *store) []Ref {
	var refs []Ref
	for _, b := range p.bars {
		refs = append(refs, b.ref)
	}
	for _, l := range p.lines {
		for _, n := range st.names(l.match.MatchString) {
			refs = append(refs, Ref{n, l.metric})
		}
	}
	if p.id == "integrations" {
		for _, r := range integrationRatios {
			refs = append(refs, r.q.Num...)
			refs = append(refs, r.q.Den...)
		}
	}
	return refs
}

// draw writes the plot as dir/id.png. Bars or points without a value are
// left out (a bar of height 0 labelled "n/a").
func (p *plotSpec) draw(st *store, dir string) error {
	pl := plot.New()
	pl.Title.Text = p.title
	pl.Y.Label.Text = p.ylabel
	pl.X.Label.Text = p.xlabel
	switch {
	case p.id == "integrations":
		var labels []string
		var vals plotter.Values
		for _, r := range integrationRatios {
			s := st.ratio(r.q)
			labels, vals = append(labels, barLabel(r.label, s.ok)), append(vals, zeroIfMissing(s))
		}
		if err := addBars(pl, labels, vals); err != nil {
			return err
		}
		one := plotter.NewFunction(func(float64) float64 { return 1 })
		one.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		pl.Add(one)
		pl.Legend.Add("plain = 1", one)
		pl.Legend.Top = true
	case len(p.bars) > 0:
		var labels []string
		var vals plotter.Values
		for _, b := range p.bars {
			s := st.stat(b.ref)
			s.med *= scaleOf(b.scale)
			labels, vals = append(labels, barLabel(b.label, s.ok)), append(vals, zeroIfMissing(s))
		}
		if err := addBars(pl, labels, vals); err != nil {
			return err
		}
	default:
		if p.logX {
			pl.X.Scale = plot.LogScale{}
			pl.X.Tick.Marker = plot.LogTicks{Prec: -1}
		}
		any := false
		for i, l := range p.lines {
			var xy plotter.XYs
			for _, n := range st.names(l.match.MatchString) {
				m := l.match.FindStringSubmatch(n)
				x, err := strconv.ParseFloat(m[1], 64)
				if err != nil {
					continue
				}
				if p.logX && x <= 0 {
					x = 0.5 // a lone record / empty log, drawn left of 1
				}
				s := st.stat(Ref{n, l.metric})
				if !s.ok {
					continue
				}
				xy = append(xy, plotter.XY{X: x, Y: s.med * scaleOf(l.scale)})
			}
			if len(xy) == 0 {
				continue
			}
			any = true
			ln, pts, err := plotter.NewLinePoints(xy)
			if err != nil {
				return err
			}
			ln.Color = plotutil.Color(i)
			pts.Color = plotutil.Color(i)
			pts.Shape = plotutil.Shape(i)
			pl.Add(ln, pts)
			pl.Legend.Add(l.name, ln, pts)
		}
		if !any {
			pl.Title.Text += " (no data in this run)"
			pl.X.Scale = plot.LinearScale{}
			pl.X.Tick.Marker = plot.DefaultTicks{}
		}
		pl.Legend.Top = true
		pl.Legend.Left = true
		pl.Add(plotter.NewGrid())
	}
	return pl.Save(6*vg.Inch, 3.6*vg.Inch, filepath.Join(dir, p.id+".png"))
}

func barLabel(l string, ok bool) string {
	if ok {
		return l
	}
	return l + " (n/a)"
}

func zeroIfMissing(s stat) float64 {
	if !s.ok {
		return 0
	}
	return s.med
}

func addBars(pl *plot.Plot, labels []string, vals plotter.Values) error {
	bc, err := plotter.NewBarChart(vals, vg.Points(18))
	if err != nil {
		return err
	}
	bc.Color = color.RGBA{R: 60, G: 110, B: 170, A: 255}
	bc.LineStyle.Width = 0
	bc.Horizontal = true
	pl.Add(bc)
	pl.NominalY(labels...)
	pl.Add(plotter.NewGrid())
	// Horizontal bars: the value axis is X.
	pl.X.Label.Text, pl.Y.Label.Text = pl.Y.Label.Text, ""
	pl.X.Min = 0
	return nil
}

func drawPlots(st *store, dir string) []error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return []error{err}
	}
	var errs []error
	for i := range plots {
		if err := plots[i].draw(st, dir); err != nil {
			errs = append(errs, fmt.Errorf("plot %s: %w", plots[i].id, err))
		}
	}
	return errs
}
