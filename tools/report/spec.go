package main

import (
	"regexp"
	"slices"
	"time"
)

// This file is the table that drives the report: which benchmarks run
// (jobs), what the document shows of them (sections, rows), and the goals
// (issue #14 item 3, and the integrations' targets). Benchmark names are the only coupling with the
// library's tests: a name that matches nothing shows as n/a.

// Job is a set of benchmarks of one package, each run `Rounds` times, one
// round of every job after another (so that a baseline and its subject, and
// figures compared across packages, see the same load).
type Job struct {
	ID        string
	Pkg       string   // relative to the repository root, "./expat"
	Units     []string // benchmarks run one at a time: "BenchmarkX" or "BenchmarkX/sub"
	Benchtime string
	Rounds    int
	Tags      string
	Timeout   time.Duration // for one unit's run
}

var jobs = []Job{
	{ID: "ea", Pkg: "./ea", Units: []string{"BenchmarkHandshake", "BenchmarkBareCrypto", "BenchmarkEARound"},
		Benchtime: "300ms", Rounds: 5},
	{ID: "testkit", Pkg: "./expat/expattest/testkit", Units: []string{"BenchmarkAttestVerify", "BenchmarkBaselineECDSA"},
		Benchtime: "300ms", Rounds: 5},
	{ID: "churn", Pkg: "./expat", Units: []string{"BenchmarkChurnTLS", "BenchmarkChurnAttested", "BenchmarkChurnMutualTLS", "BenchmarkChurnMutual"},
		Benchtime: "1s", Rounds: 5},
	{ID: "pipe", Pkg: "./expat", Units: []string{"BenchmarkHandshakeTLS", "BenchmarkSetupMutualAttested"},
		Benchtime: "500ms", Rounds: 5},
	{ID: "passport", Pkg: "./verifier/ear", Units: []string{"BenchmarkPassportChurn"},
		Benchtime: "16x", Rounds: 5},
	{ID: "backends", Pkg: "./internal/integration", Units: []string{"BenchmarkTLSHandshake", "BenchmarkSEVSNPAttestedSetup", "BenchmarkTPMAttestedSetup"},
		Benchtime: "500ms", Rounds: 5},
	{ID: "bulk", Pkg: "./expat", Units: []string{"BenchmarkThroughputTLS", "BenchmarkThroughputAttested"},
		Benchtime: "1s", Rounds: 5},
	{ID: "memory", Pkg: "./expat", Units: []string{"BenchmarkIdleConnMemory"},
		Benchtime: "2x", Rounds: 3},
	{ID: "reattest", Pkg: "./expat", Units: []string{"BenchmarkAttestIdle", "BenchmarkAttestUnderBulk"},
		Benchtime: "1s", Rounds: 5},
	{ID: "scale", Pkg: "./expat", Units: []string{"BenchmarkConcurrentSetup"},
		Benchtime: "3x", Rounds: 2, Timeout: 5 * time.Minute},
	{ID: "local", Pkg: "./verifier/local", Units: []string{"BenchmarkAppraisal"},
		Benchtime: "300ms", Rounds: 5},
	{ID: "sevsnp", Pkg: "./verifier/sevsnp", Units: []string{"BenchmarkVerifyWarm", "BenchmarkVerifyTable", "BenchmarkBaselineGoSevGuest", "BenchmarkVerifyCached"},
		Benchtime: "300ms", Rounds: 3},
	{ID: "tdx", Pkg: "./verifier/tdx", Units: []string{"BenchmarkQuoteVerify", "BenchmarkGoTDXGuestVerify"},
		Benchtime: "300ms", Rounds: 3},
	{ID: "tpmsize", Pkg: "./verifier/tpm", Units: []string{"BenchmarkVerify", "BenchmarkVerifyEventLog"},
		Benchtime: "300ms", Rounds: 3},
	{ID: "cmwsize", Pkg: "./verifier", Units: []string{"BenchmarkDispatchCollection"},
		Benchtime: "300ms", Rounds: 3},
	{ID: "http", Pkg: "./expat/expathttp", Units: []string{"BenchmarkKeepAlive/plain", "BenchmarkKeepAlive/attested", "BenchmarkFirstRequest/plain", "BenchmarkFirstRequest/attested"},
		Benchtime: "500ms", Rounds: 5},
	{ID: "grpc", Pkg: "./expat/expatgrpc", Units: []string{"BenchmarkUnary/plain", "BenchmarkUnary/attested"},
		Benchtime: "500ms", Rounds: 5},
	{ID: "quic", Pkg: "./expat/expatquic", Units: []string{"BenchmarkStreamThroughput/plain", "BenchmarkStreamThroughput/attested"},
		Benchtime: "1s", Rounds: 5},
	{ID: "tunnel", Pkg: "./cmd/expat", Units: []string{"BenchmarkTunnel"},
		Benchtime: "3x", Rounds: 2, Timeout: 5 * time.Minute},
	// One process per scenario, so that one's goroutines and heap are not
	// another's baseline.
	{ID: "load", Pkg: "./expat", Units: loadUnits(), Benchtime: "1x", Rounds: 2, Timeout: 3 * time.Minute},
}

// loadScenarios are BenchmarkLoad's sub-benchmarks (expat/load_bench_test.go):
// the connection-core load harness, then the misbehaving parties.
var (
	loadScenarios  = []string{"thousand", "churn", "storm"}
	faultScenarios = []string{"slow-attester", "failing-attester", "stuck-attester", "slow-verifier", "failing-verifier",
		"rejecting-verifier", "stuck-verifier", "silent-server", "silent-client", "silent-after-setup", "not-reading"}
)

func loadUnits() []string {
	var us []string
	for _, s := range append(slices.Clone(loadScenarios), faultScenarios...) {
		us = append(us, "BenchmarkLoad/"+s)
	}
	return us
}

// loadRefs is metric of every scenario in names.
func loadRefs(names []string, metrics ...string) []Ref {
	var refs []Ref
	for _, n := range names {
		for _, m := range metrics {
			refs = append(refs, Ref{"BenchmarkLoad/" + n, m})
		}
	}
	return refs
}

// profileJob is the benchmark whose CPU profile the report summarizes.
var profileJob = Job{ID: "profile", Pkg: "./expat", Units: []string{"BenchmarkChurnAttested"}, Benchtime: "4s", Rounds: 1}

// veraisonLive runs the live Veraison benchmarks through the project's
// script (which builds Veraison once, cached, and starts it on loopback).
var veraisonLive = struct {
	Script  string
	Args    []string
	Timeout time.Duration
}{
	Script:  "scripts/veraison/run-tests.sh",
	Args:    []string{"-run", "^$", "-bench", "^Benchmark(LiveEndToEnd|LocalEndToEnd|LiveThroughput4)$", "-benchtime", "2s", "-count", "3"},
	Timeout: 6 * time.Minute,
}

// Ref names one metric of one benchmark. Metric "op/s" is 1e9 / ns/op.
type Ref struct{ Bench, Metric string }

// Ratio is, per round, the sum of Num over the sum of Den, and then the
// median over the rounds where all of them were measured. With no Den it is
// the median of Num's sum itself.
type Ratio struct{ Num, Den []Ref }

// faster is how many times subject's rate the baseline's is, from times
// (subject rate / baseline rate).
func faster(subj, base string) *Ratio {
	return &Ratio{Num: []Ref{{base, "ns/op"}}, Den: []Ref{{subj, "ns/op"}}}
}

// per is subject's metric over the baseline's.
func per(subj, base, metric string) *Ratio {
	return &Ratio{Num: []Ref{{subj, metric}}, Den: []Ref{{base, metric}}}
}

// Goal is one target of issue #14 item 3, or of an integration (#11, #12).
type Goal struct {
	ID     string
	Text   string
	Ratio  *Ratio
	AtMost bool    // the target is an upper bound (else a lower bound)
	Target float64 // in display units
	Scale  float64 // display value = measured * Scale (0: 1)
	Unit   string  // "×" or "ms"
	// Match, if set, makes one goal row per benchmark name it matches;
	// Base (a regexp replacement of that name) names the baseline, and
	// the row's ratio is the baseline's ns/op over the match's.
	Match *regexp.Regexp
	Base  string
	// Metric, with Match, makes each row's value that benchmark's metric
	// (for the benchmarks that report it) instead of a ratio to Base.
	Metric string
	// Floor, if set, is the best the goal's ratio can be on this machine:
	// the baseline plus only the cryptography the attested arm cannot
	// avoid, from benchmarks of this run (FloorText says which).
	Floor     *Ratio
	FloorText string
	// Worst judges the worst round (the highest value for an upper
	// bound) instead of the median: for invariants that must hold in
	// every run.
	Worst bool
}

var goals = []Goal{
	{ID: "passport", Text: "conn/s with a reused key-bound passport ≥ 0.75× plain TLS",
		Ratio: &Ratio{Num: []Ref{{"BenchmarkPassportChurn", "reused/TLS"}}}, Target: 0.75, Unit: "×"},
	{ID: "server", Text: "conn/s with test-kit Evidence, server-only ≥ 0.72× plain TLS",
		Ratio: per("BenchmarkChurnAttested", "BenchmarkChurnTLS", "conn/s"), Target: 0.72, Unit: "×",
		Floor: &Ratio{Num: []Ref{{"BenchmarkChurnTLS", "ns/op"}},
			Den: []Ref{{"BenchmarkChurnTLS", "ns/op"}, {"BenchmarkEARound/ECDSAWithP256AndSHA256", "ns/op"}, {"BenchmarkAttestVerify/attest+verify", "ns/op"}}},
		FloorText: "plain TLS conn + one EA round + one test-kit attest and verify, all in sequence"},
	{ID: "mutual", Text: "conn/s with mutual test-kit Evidence ≥ 0.65× mutual TLS",
		Ratio: per("BenchmarkChurnMutual", "BenchmarkChurnMutualTLS", "conn/s"), Target: 0.65, Unit: "×",
		Floor: &Ratio{Num: []Ref{{"BenchmarkChurnMutualTLS", "ns/op"}},
			Den: []Ref{{"BenchmarkChurnMutualTLS", "ns/op"}, {"BenchmarkEARound/ECDSAWithP256AndSHA256", "ns/op"}, {"BenchmarkAttestVerify/attest+verify", "ns/op"},
				{"BenchmarkEARound/ECDSAWithP256AndSHA256", "ns/op"}, {"BenchmarkAttestVerify/attest+verify", "ns/op"}}},
		FloorText: "mutual TLS conn + two EA rounds + two test-kit attest and verify, all in sequence (the two directions may overlap, so the floor can be beaten)"},
	{ID: "sevsnp", Text: "SEV-SNP appraisals/s with the verified-chain cache ≥ 2× uncached",
		Match: regexp.MustCompile(`^BenchmarkVerifyWarm/(vcek(\+crl)?)$`), Base: "BenchmarkVerifyWarm/${1}-uncached", Target: 2, Unit: "×"},
	{ID: "local", Text: "appraisals/s through the local Verifier service ≥ 0.6× in process (every backend)",
		Match: regexp.MustCompile(`^BenchmarkAppraisal/(.+)/service$`), Base: "BenchmarkAppraisal/${1}/in-process", Target: 0.6, Unit: "×"},
	{ID: "reattest", Text: "re-attestation (idle) ≤ 1.3× one EA round + Attest + Verify",
		Ratio: &Ratio{Num: []Ref{{"BenchmarkAttestIdle", "ns/op"}},
			Den: []Ref{{"BenchmarkEARound/ECDSAWithP256AndSHA256", "ns/op"}, {"BenchmarkAttestVerify/attest+verify", "ns/op"}}},
		AtMost: true, Target: 1.3, Unit: "×"},
	{ID: "memory", Text: "idle attested pair's memory ≤ 2× plain TLS pair",
		Ratio:  &Ratio{Num: []Ref{{"BenchmarkIdleConnMemory", "B/attested-pair"}}, Den: []Ref{{"BenchmarkIdleConnMemory", "B/plain-pair"}}},
		AtMost: true, Target: 2, Unit: "×"},
	{ID: "bulk", Text: "bulk throughput ≥ 0.95× bare TLS",
		Ratio: per("BenchmarkThroughputAttested", "BenchmarkThroughputTLS", "MB/s"), Target: 0.95, Unit: "×"},
	{ID: "underbulk", Text: "re-attestation behind bulk data ≤ 10 ms",
		Ratio: &Ratio{Num: []Ref{{"BenchmarkAttestUnderBulk", "ns/op"}}}, AtMost: true, Target: 10, Scale: 1e-6, Unit: "ms"},
	// The integrations' targets (issue #11 item 6, issue #12 item 7).
	{ID: "h2", Text: "#11: HTTP/2 keep-alive requests/s attested ≥ 0.95× plain TLS",
		Ratio: faster("BenchmarkKeepAlive/attested", "BenchmarkKeepAlive/plain"), Target: 0.95, Unit: "×"},
	{ID: "first", Text: "#11: first-request latency on a new attested connection ≤ 1.5× plain TLS (test kit)",
		Ratio: per("BenchmarkFirstRequest/attested", "BenchmarkFirstRequest/plain", "ns/op"), AtMost: true, Target: 1.5, Unit: "×"},
	{ID: "grpc", Text: "#11: gRPC unary RPCs/s attested ≥ 0.95× plain",
		Ratio: faster("BenchmarkUnary/attested", "BenchmarkUnary/plain"), Target: 0.95, Unit: "×"},
	{ID: "quic", Text: "#11: QUIC stream throughput attested ≥ 0.95× plain",
		Ratio: per("BenchmarkStreamThroughput/attested", "BenchmarkStreamThroughput/plain", "MB/s"), Target: 0.95, Unit: "×"},
	{ID: "tunnel", Text: "#12: tunnel throughput ≥ 0.9× a plain TCP forward (two processes each)",
		Ratio: &Ratio{Num: []Ref{{"BenchmarkTunnel", "ratio-vs-plain"}}}, Target: 0.9, Unit: "×"},
}

// robustGoals are the invariants of the robustness section (issue #14
// item 6). They are judged on the worst round and shown beside their
// figures only, not in the goals table of item 3.
var robustGoals = []Goal{
	{ID: "load-failures", Text: "no setup or checked exchange failed, 1,000 concurrent connections and 400 churned",
		Ratio: &Ratio{Num: loadRefs([]string{"thousand", "churn"}, "failures")}, AtMost: true, Target: 0, Unit: "failures", Worst: true},
	{ID: "load-integrity", Text: "storm: every byte arrived as written, in order, in both directions of all 50 connections",
		Ratio: &Ratio{Num: loadRefs([]string{"storm"}, "integrity-errors")}, AtMost: true, Target: 0, Unit: "integrity errors", Worst: true},
	{ID: "load-reattest", Text: "storm: every re-attestation succeeded (1,000, both ends of 50 connections)",
		Ratio: &Ratio{Num: loadRefs([]string{"storm"}, "failed-reattests")}, AtMost: true, Target: 0, Unit: "failed", Worst: true},
	{ID: "load-unexpected", Text: "no setup with a misbehaving or silent party succeeded, and each failed with the error of its fault",
		Ratio: &Ratio{Num: loadRefs(faultScenarios, "unexpected-successes", "wrong-errors")}, AtMost: true, Target: 0, Unit: "setups", Worst: true},
	{ID: "load-leaks", Text: "no goroutine left 5 s after everything was closed, in any scenario",
		Ratio: &Ratio{Num: loadRefs(append(slices.Clone(loadScenarios), faultScenarios...), "leaked-goroutines")}, AtMost: true, Target: 0, Unit: "goroutines", Worst: true},
	{ID: "load-heap", Text: "live heap after close ≤ 1 KiB more per connection than before (an open pair holds about 30 KB)",
		Match: regexp.MustCompile(`^BenchmarkLoad/`), Metric: "heap-growth-B/conn", AtMost: true, Target: 1024, Unit: "B/conn", Worst: true},
	{ID: "load-bound", Text: "the slowest failing call returned within 1.2× its configured bound",
		Match: regexp.MustCompile(`^BenchmarkLoad/`), Metric: "fail/bound", AtMost: true, Target: 1.2, Unit: "×", Worst: true},
	{ID: "load-close", Text: "Close returned within 1.2× closeGrace (1 s) though the peer was silent or not reading",
		Match: regexp.MustCompile(`^BenchmarkLoad/`), Metric: "close/bound", AtMost: true, Target: 1.2, Unit: "×", Worst: true},
	{ID: "load-good", Text: "silent clients: a genuine client's setup meanwhile ≤ 250 ms (half their bound)",
		Ratio: &Ratio{Num: loadRefs([]string{"silent-client"}, "good-setup-ms")}, AtMost: true, Target: 250, Unit: "ms", Worst: true},
}

// Row is one line of a section's table. With Match set it expands to one
// row per benchmark name matched (Label then is the name), and Vs, if set,
// is applied with "$0" in its refs replaced by that name.
type Row struct {
	Label  string
	Val    Ref
	Scale  float64 // display value = median * Scale (0: 1)
	Unit   string  // display unit (default: the metric)
	Vs     *Ratio  // the ratio column
	Match  *regexp.Regexp
	Metric string // with Match: the metric shown
}

// Section is a part of the document: a table, its goals, its plots.
type Section struct {
	Title    string
	Text     string
	VsHeader string
	Rows     []Row
	Matrix   *Matrix // a second table, after Rows
	Goals    []string
	Plots    []string // plot IDs (plots.go)
}

// Matrix is a table with one row per benchmark that Match matches and one
// column per metric ("—" where a benchmark does not report it).
type Matrix struct {
	Match   *regexp.Regexp
	Header  string // of the first column
	Columns []Column
}

// Column is one metric of a Matrix.
type Column struct {
	Header string
	Metric string
	Scale  float64 // display value = median * Scale (0: 1)
}

func rate(bench string) Ref { return Ref{bench, "op/s"} }

const (
	p256Round = "BenchmarkEARound/ECDSAWithP256AndSHA256"
)

var sections = []Section{
	{Title: "Exported Authenticator round per signature scheme",
		Text: "One RFC 9261 round in process (NewRequest, Marshal, ParseRequest, Authenticate, Validate with a pinned key) per signature scheme, " +
			"against a full TLS 1.3 handshake over net.Pipe (P-256) and the bare cryptography of a P-256 round (one sign, one verify, four exporter calls, two HMACs).",
		VsHeader: "× handshake time",
		Rows: []Row{
			{Label: "TLS 1.3 handshake (P-256, both sides)", Val: Ref{"BenchmarkHandshake", "ns/op"}, Scale: 1e-3, Unit: "µs"},
			{Label: "bare crypto of a P-256 round", Val: Ref{"BenchmarkBareCrypto", "ns/op"}, Scale: 1e-3, Unit: "µs",
				Vs: per("BenchmarkBareCrypto", "BenchmarkHandshake", "ns/op")},
			{Match: regexp.MustCompile(`^BenchmarkEARound/`), Metric: "ns/op", Scale: 1e-3, Unit: "µs",
				Vs: per("$0", "BenchmarkHandshake", "ns/op")},
			{Label: "P-256 round ÷ its bare crypto", Val: Ref{}, Vs: per(p256Round, "BenchmarkBareCrypto", "ns/op")},
		},
		Plots: []string{"ea"}},
	{Title: "Attested setup per backend and model",
		Text: "New connections per second over loopback TCP (dial, TLS 1.3 handshake, attestation setup, one byte each way, close; both ends in one process), " +
			"and per backend a connection pair with its setup (expattest.TLSPair + AttestedPair). Ratios are per round, median over rounds.",
		VsHeader: "× plain",
		Rows: []Row{
			{Label: "plain TLS, server certificate (ChurnTLS)", Val: Ref{"BenchmarkChurnTLS", "conn/s"}},
			{Label: "test kit, server attests (ChurnAttested)", Val: Ref{"BenchmarkChurnAttested", "conn/s"},
				Vs: per("BenchmarkChurnAttested", "BenchmarkChurnTLS", "conn/s")},
			{Label: "plain mutual TLS (ChurnMutualTLS)", Val: Ref{"BenchmarkChurnMutualTLS", "conn/s"}},
			{Label: "test kit, both attest (ChurnMutual)", Val: Ref{"BenchmarkChurnMutual", "conn/s"},
				Vs: per("BenchmarkChurnMutual", "BenchmarkChurnMutualTLS", "conn/s")},
			{Label: "passport: plain TLS (PassportChurn)", Val: Ref{"BenchmarkPassportChurn", "TLS-conn/s"}, Unit: "conn/s"},
			{Label: "passport: fresh EAR per connection", Val: Ref{"BenchmarkPassportChurn", "fresh-conn/s"}, Unit: "conn/s",
				Vs: &Ratio{Num: []Ref{{"BenchmarkPassportChurn", "fresh/TLS"}}}},
			{Label: "passport: reused key-bound EAR", Val: Ref{"BenchmarkPassportChurn", "reused-conn/s"}, Unit: "conn/s",
				Vs: &Ratio{Num: []Ref{{"BenchmarkPassportChurn", "reused/TLS"}}}},
			{Label: "net.Pipe: TLS handshake, client certs (HandshakeTLS)", Val: rate("BenchmarkHandshakeTLS"), Unit: "setups/s"},
			{Label: "net.Pipe: + mutual test-kit attestation (SetupMutualAttested)", Val: rate("BenchmarkSetupMutualAttested"), Unit: "setups/s",
				Vs: faster("BenchmarkSetupMutualAttested", "BenchmarkHandshakeTLS")},
			{Label: "loopback TLS pair (integration TLSHandshake)", Val: rate("BenchmarkTLSHandshake"), Unit: "setups/s"},
			{Label: "SEV-SNP, server attests (fake configfs-tsm, P-384 VCEK)", Val: rate("BenchmarkSEVSNPAttestedSetup"), Unit: "setups/s",
				Vs: faster("BenchmarkSEVSNPAttestedSetup", "BenchmarkTLSHandshake")},
			{Label: "TPM 2.0 simulator, server attests (key in the TPM)", Val: rate("BenchmarkTPMAttestedSetup"), Unit: "setups/s",
				Vs: faster("BenchmarkTPMAttestedSetup", "BenchmarkTLSHandshake")},
		},
		Goals: []string{"passport", "server", "mutual"},
		Plots: []string{"setup"}},
	{Title: "Bulk throughput",
		Text:     "1 MiB writes over an established connection pair on loopback TCP, one direction.",
		VsHeader: "× bare TLS",
		Rows: []Row{
			{Label: "bare tls.Conn (ThroughputTLS)", Val: Ref{"BenchmarkThroughputTLS", "MB/s"}},
			{Label: "attested expat.Conn (ThroughputAttested)", Val: Ref{"BenchmarkThroughputAttested", "MB/s"},
				Vs: per("BenchmarkThroughputAttested", "BenchmarkThroughputTLS", "MB/s")},
			{Label: "allocations per MiB, attested", Val: Ref{"BenchmarkThroughputAttested", "allocs/op"}, Unit: "allocs"},
		},
		Goals: []string{"bulk"},
		Plots: []string{"throughput"}},
	{Title: "Memory per idle connection",
		Text:     "Heap and stack held per idle connection pair (both ends, loopback TCP), 50 pairs, after a warm-up.",
		VsHeader: "× plain",
		Rows: []Row{
			{Label: "plain TLS pair", Val: Ref{"BenchmarkIdleConnMemory", "B/plain-pair"}, Unit: "B"},
			{Label: "attested pair (test kit)", Val: Ref{"BenchmarkIdleConnMemory", "B/attested-pair"}, Unit: "B",
				Vs: &Ratio{Num: []Ref{{"BenchmarkIdleConnMemory", "B/attested-pair"}}, Den: []Ref{{"BenchmarkIdleConnMemory", "B/plain-pair"}}}},
		},
		Goals: []string{"memory"},
		Plots: []string{"memory"}},
	{Title: "Re-attestation latency",
		Text: "Conn.Attest on an established connection (request, test-kit Evidence, appraisal), idle and while 1 MiB writes stream both ways, " +
			"against its parts measured alone: one P-256 EA round and one test-kit Attest + Verify.",
		VsHeader: "× EA round + Attest + Verify",
		Rows: []Row{
			{Label: "EA round, P-256 (ea)", Val: Ref{p256Round, "ns/op"}, Scale: 1e-6, Unit: "ms"},
			{Label: "test-kit Attest + Verify", Val: Ref{"BenchmarkAttestVerify/attest+verify", "ns/op"}, Scale: 1e-6, Unit: "ms"},
			{Label: "re-attestation, idle (AttestIdle)", Val: Ref{"BenchmarkAttestIdle", "ns/op"}, Scale: 1e-6, Unit: "ms",
				Vs: &Ratio{Num: []Ref{{"BenchmarkAttestIdle", "ns/op"}}, Den: []Ref{{p256Round, "ns/op"}, {"BenchmarkAttestVerify/attest+verify", "ns/op"}}}},
			{Label: "re-attestation behind bulk data (AttestUnderBulk)", Val: Ref{"BenchmarkAttestUnderBulk", "ns/op"}, Scale: 1e-6, Unit: "ms",
				Vs: &Ratio{Num: []Ref{{"BenchmarkAttestUnderBulk", "ns/op"}}, Den: []Ref{{p256Round, "ns/op"}, {"BenchmarkAttestVerify/attest+verify", "ns/op"}}}},
		},
		Goals: []string{"reattest", "underbulk"}},
	{Title: "Appraisals per second",
		Text: "One appraisal of the same Evidence at a time, per backend: in process (verifier.Dispatch), in process plus EAR signing and checking " +
			"(ear.Issuer, ear.Verifier), and through the local Verifier service over loopback HTTP (veraison.Client: new session, submission, " +
			"the complete EAR check; the session's deletion runs in the background).",
		VsHeader: "× in process",
		Rows: []Row{
			{Match: regexp.MustCompile(`^BenchmarkAppraisal/[^/]+/in-process$`), Metric: "op/s", Unit: "appraisals/s"},
			{Match: regexp.MustCompile(`^BenchmarkAppraisal/[^/]+/in-process\+ear$`), Metric: "op/s", Unit: "appraisals/s",
				Vs: faster("$0", "$inproc")},
			{Match: regexp.MustCompile(`^BenchmarkAppraisal/[^/]+/service$`), Metric: "op/s", Unit: "appraisals/s",
				Vs: faster("$0", "$inproc")},
			{Label: "test kit Verify alone (testkit)", Val: rate("BenchmarkAttestVerify/verify"), Unit: "appraisals/s"},
			{Label: "raw ECDSA P-256 sign + verify (testkit baseline)", Val: rate("BenchmarkBaselineECDSA"), Unit: "op/s"},
			{Label: "TPM quote + certify, simulator (verifier/tpm Verify)", Val: rate("BenchmarkVerify"), Unit: "appraisals/s"},
			{Match: regexp.MustCompile(`^BenchmarkVerify(Warm|Table|Cached)(/|$)`), Metric: "op/s", Unit: "appraisals/s",
				Vs: faster("$0", "BenchmarkBaselineGoSevGuest")},
			{Label: "go-sev-guest verify.SnpAttestation alone", Val: rate("BenchmarkBaselineGoSevGuest"), Unit: "appraisals/s"},
			{Match: regexp.MustCompile(`^BenchmarkQuoteVerify/`), Metric: "op/s", Unit: "appraisals/s",
				Vs: faster("$0", "BenchmarkGoTDXGuestVerify")},
			{Label: "TDX: cached ÷ uncached PCK chain (QuoteVerify)", Val: Ref{}, Vs: faster("BenchmarkQuoteVerify/cached", "BenchmarkQuoteVerify/uncached")},
			{Label: "go-tdx-guest verify.TdxQuote alone (collateral over loopback)", Val: rate("BenchmarkGoTDXGuestVerify"), Unit: "appraisals/s"},
			{Label: "live Veraison: attest + appraisal (CCA)", Val: rate("BenchmarkLiveEndToEnd"), Unit: "appraisals/s",
				Vs: faster("BenchmarkLiveEndToEnd", "BenchmarkLocalEndToEnd")},
			{Label: "same, appraised in process (LocalEndToEnd)", Val: rate("BenchmarkLocalEndToEnd"), Unit: "appraisals/s"},
			{Label: "live Veraison, 4 in flight", Val: Ref{"BenchmarkLiveThroughput4", "appraisals/s"}, Unit: "appraisals/s"},
		},
		Goals: []string{"local", "sevsnp"}},
	{Title: "Integrations",
		Text:     "Each integration against its plain-TLS baseline, measured in the same run.",
		VsHeader: "× plain",
		Rows: []Row{
			{Label: "HTTP/2 keep-alive requests, plain", Val: rate("BenchmarkKeepAlive/plain"), Unit: "req/s"},
			{Label: "HTTP/2 keep-alive requests, attested (expathttp)", Val: rate("BenchmarkKeepAlive/attested"), Unit: "req/s",
				Vs: faster("BenchmarkKeepAlive/attested", "BenchmarkKeepAlive/plain")},
			{Label: "HTTP first request on a new connection, plain", Val: rate("BenchmarkFirstRequest/plain"), Unit: "req/s"},
			{Label: "HTTP first request, attested", Val: rate("BenchmarkFirstRequest/attested"), Unit: "req/s",
				Vs: faster("BenchmarkFirstRequest/attested", "BenchmarkFirstRequest/plain")},
			{Label: "gRPC unary, plain TLS credentials", Val: rate("BenchmarkUnary/plain"), Unit: "RPC/s"},
			{Label: "gRPC unary, attested (expatgrpc, mutual)", Val: rate("BenchmarkUnary/attested"), Unit: "RPC/s",
				Vs: faster("BenchmarkUnary/attested", "BenchmarkUnary/plain")},
			{Label: "QUIC stream, plain quic-go", Val: Ref{"BenchmarkStreamThroughput/plain", "MB/s"}},
			{Label: "QUIC stream, attested (expatquic)", Val: Ref{"BenchmarkStreamThroughput/attested", "MB/s"},
				Vs: per("BenchmarkStreamThroughput/attested", "BenchmarkStreamThroughput/plain", "MB/s")},
			{Label: "tunnel: plain TCP forward, two hops in the benchmark's process", Val: Ref{"BenchmarkTunnel", "plain-inproc-MB/s"}, Unit: "MB/s"},
			{Label: "tunnel: plain TCP forward, two forwarder processes (baseline)", Val: Ref{"BenchmarkTunnel", "plain-MB/s"}, Unit: "MB/s"},
			{Label: "tunnel: two forwarder processes with plain TLS 1.3 between them", Val: Ref{"BenchmarkTunnel", "tls-MB/s"}, Unit: "MB/s",
				Vs: &Ratio{Num: []Ref{{"BenchmarkTunnel", "tls-MB/s"}}, Den: []Ref{{"BenchmarkTunnel", "plain-MB/s"}}}},
			{Label: "tunnel: cmd/expat attested, two processes (× plain TCP forward)", Val: Ref{"BenchmarkTunnel", "tunnel-MB/s"}, Unit: "MB/s",
				Vs: &Ratio{Num: []Ref{{"BenchmarkTunnel", "ratio-vs-plain"}}}},
			{Label: "tunnel: cmd/expat attested ÷ plain TLS forwarders", Val: Ref{}, Vs: &Ratio{Num: []Ref{{"BenchmarkTunnel", "ratio-vs-tls"}}}},
			{Label: "tunnel: added connect latency", Val: Ref{"BenchmarkTunnel", "added-connect-ms"}, Unit: "ms"},
		},
		Goals: []string{"h2", "first", "grpc", "quic", "tunnel"},
		Plots: []string{"integrations"}},
	{Title: "Cost at scale: 1 to 1,000 concurrent setups",
		Text: "n connections dialled at once through one listener (both ends in this process, loopback TCP), plain TLS 1.3 against server attestation " +
			"with the test kit: wall time per connection, median setup latency, process CPU (getrusage) per connection, memory per open pair.",
		VsHeader: "× tls at the same n",
		Rows: []Row{
			{Match: regexp.MustCompile(`^BenchmarkConcurrentSetup/`), Metric: "p50-setup-ms", Unit: "ms p50 setup"},
			{Match: regexp.MustCompile(`^BenchmarkConcurrentSetup/kind=attested/`), Metric: "cpu-ns/conn", Scale: 1e-3, Unit: "µs CPU/conn",
				Vs: per("$0", "$tls", "cpu-ns/conn")},
			{Match: regexp.MustCompile(`^BenchmarkConcurrentSetup/kind=attested/`), Metric: "B/pair", Unit: "B/pair",
				Vs: per("$0", "$tls", "B/pair")},
		},
		Plots: []string{"scale-latency", "scale-cpu", "scale-memory"}},
	{Title: "Appraisal cost against Evidence size",
		Text: "verifier/tpm Verify of Evidence carrying a TCG event log of n measurements (replayed against the quoted PCRs), and verifier.Dispatch " +
			"of a CMW collection of n test-kit records (items=0: a lone record). A SEV-SNP chain is ARK → ASK → VCEK/VLEK by construction, so " +
			"its length is not a variable; with the certificate table in the Evidence or the VCEK from the KDS see the SEV-SNP rows above.",
		VsHeader: "× smallest",
		Rows: []Row{
			{Match: regexp.MustCompile(`^BenchmarkVerifyEventLog/`), Metric: "ns/op", Scale: 1e-3, Unit: "µs",
				Vs: per("$0", "BenchmarkVerifyEventLog/events=0", "ns/op")},
			{Match: regexp.MustCompile(`^BenchmarkDispatchCollection/`), Metric: "ns/op", Scale: 1e-3, Unit: "µs",
				Vs: per("$0", "BenchmarkDispatchCollection/items=0", "ns/op")},
		},
		Plots: []string{"appraisal-size"}},
	{Title: "Robustness under load",
		Text: "expat's BenchmarkLoad (expat/load_bench_test.go), one process per scenario, both ends in the process over loopback TCP, test-kit " +
			"attestation. Connections carry checked data (a keyed stream whose every byte depends on its position, compared on the other end). " +
			"The misbehaving parties are real Attesters and Verifiers that misbehave (answer 3× too late, fail, ignore ctx and never return " +
			"until released, trust another key) and raw TLS peers that go silent or stop reading; each scenario runs 20 setups at once " +
			"(10 connections for the last two), the client's SetupTimeout or Attest's ctx being 500 ms. The time to fail is Dial's (Attest's for the last two; for silent-client the Listener's drop of each silent client, timed from its Accept of the TCP connection, its SetupTimeout being 500 ms), and Close ÷ closeGrace is Close's after that failure. A scenario fails, and shows as n/a with " +
			"its reason under Problems, when an invariant breaks: a corrupted or cut stream, a failed setup or re-attestation that should have " +
			"succeeded, one that should have failed and did not (or failed otherwise), a call still blocked after 2× its bound, a goroutine " +
			"still running 5 s after everything was closed. Each figure is the worst of the scenario's run (over its iterations); " +
			"the verdicts below judge the worst round.",
		Rows: []Row{
			{Label: "thousand: 1,000 concurrent setups + 4 KiB checked echo, failed", Val: Ref{"BenchmarkLoad/thousand", "failures"}, Unit: "of 1,000"},
			{Label: "thousand: setup latency p50 (Dial to attested)", Val: Ref{"BenchmarkLoad/thousand", "p50-setup-ms"}, Unit: "ms"},
			{Label: "thousand: setup latency p99", Val: Ref{"BenchmarkLoad/thousand", "p99-setup-ms"}, Unit: "ms"},
			{Label: "thousand: whole run (setups, exchanges, all open, closes)", Val: Ref{"BenchmarkLoad/thousand", "ns/op"}, Scale: 1e-9, Unit: "s"},
			{Label: "thousand: live heap growth after close", Val: Ref{"BenchmarkLoad/thousand", "heap-growth-B/conn"}, Unit: "B/conn"},
			{Label: "churn: 400 dial, attest, checked echo, close cycles, failed", Val: Ref{"BenchmarkLoad/churn", "failures"}, Unit: "of 400"},
			{Label: "churn: rate, 4 at a time", Val: Ref{"BenchmarkLoad/churn", "conn/s"}, Unit: "conn/s"},
			{Label: "churn: live heap growth after close", Val: Ref{"BenchmarkLoad/churn", "heap-growth-B/conn"}, Unit: "B/conn"},
			{Label: "storm: stream directions corrupted or cut", Val: Ref{"BenchmarkLoad/storm", "integrity-errors"}, Unit: "of 100"},
			{Label: "storm: re-attestations failed", Val: Ref{"BenchmarkLoad/storm", "failed-reattests"}, Unit: "of 1,000"},
			{Label: "storm: re-attestation latency p50", Val: Ref{"BenchmarkLoad/storm", "p50-reattest-ms"}, Unit: "ms"},
			{Label: "storm: re-attestation latency, slowest", Val: Ref{"BenchmarkLoad/storm", "max-reattest-ms"}, Unit: "ms"},
			{Label: "storm: data checked, both directions", Val: Ref{"BenchmarkLoad/storm", "MB-checked"}, Unit: "MB"},
		},
		Matrix: &Matrix{Match: regexp.MustCompile(`^BenchmarkLoad/`), Header: "scenario", Columns: []Column{
			{Header: "failed as expected", Metric: "expected-failures"},
			{Header: "unexpected successes", Metric: "unexpected-successes"},
			{Header: "other errors", Metric: "wrong-errors"},
			{Header: "slowest to fail, ms", Metric: "max-fail-ms"},
			{Header: "÷ bound", Metric: "fail/bound"},
			{Header: "Close ÷ closeGrace", Metric: "close/bound"},
			{Header: "genuine setup, ms", Metric: "good-setup-ms"},
			{Header: "goroutines left", Metric: "leaked-goroutines"},
		}},
		Goals: []string{"load-failures", "load-integrity", "load-reattest", "load-unexpected", "load-leaks", "load-heap", "load-bound", "load-close", "load-good"}},
}
