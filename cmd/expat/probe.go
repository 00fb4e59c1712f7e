package main

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/verifier"
)

// peerVerdictWait is how long probe waits after its setup for the server
// to refuse it.
const peerVerdictWait = 300 * time.Millisecond

// probeReport is what probe found, as printed (--json uses the field names).
type probeReport struct {
	Address    string            `json:"address"`
	Verdict    string            `json:"verdict"` // verified, rejected, unavailable, error, refused-by-peer
	Error      string            `json:"error,omitempty"`
	Attester   string            `json:"local_attester,omitempty"`
	TLS        *tlsReport        `json:"tls,omitempty"`
	Platform   *platformReport   `json:"platform,omitempty"`
	Binding    *bindingReport    `json:"binding,omitempty"`
	TimingsMS  map[string]string `json:"timings_ms"`
	PolicyFile string            `json:"policy"`
}

type tlsReport struct {
	Version     string `json:"version"`
	CipherSuite string `json:"cipher_suite"`
	PeerSubject string `json:"peer_subject,omitempty"`
}

type platformReport struct {
	Technology     string            `json:"technology"`
	Model          string            `json:"model"`
	Status         string            `json:"status"`
	Verifier       string            `json:"verifier"`
	MediaType      string            `json:"media_type"`
	KeyAttestation string            `json:"key_attestation"`
	Measurements   map[string]string `json:"measurements,omitempty"`
	Claims         map[string]string `json:"claims,omitempty"`
	Expires        string            `json:"expires,omitempty"`
}

type bindingReport struct {
	Hash       string `json:"hash"`
	Binding    string `json:"binding"`
	AIKPubHash string `json:"aik_pub_hash"`
	Context    string `json:"certificate_request_context"`
}

func probe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("expat probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f commonFlags
	f.register(fs)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	fs.StringVar(&f.saveEvidence, "save-evidence", "", "write the CMW the server presented to `FILE` (for expat inspect), whatever the verdict")
	if err := fs.Parse(args); err != nil {
		return exitError
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: expat probe --policy FILE [flags] HOST:PORT")
		return exitError
	}
	rep := &probeReport{Address: fs.Arg(0), PolicyFile: f.policyFile, TimingsMS: map[string]string{}}
	status := f.probe(ctx, rep)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		printProbe(stdout, rep)
	}
	return status
}

func (f *commonFlags) probe(ctx context.Context, rep *probeReport) int {
	fail := func(v string, err error) int {
		rep.Verdict, rep.Error = v, err.Error()
		if v == "rejected" || v == "refused-by-peer" {
			return exitRejected
		}
		return exitError
	}
	if f.policyFile == "" {
		return fail("error", errors.New("expat: probe needs --policy FILE"))
	}
	pol, err := newPolicyState(f.policyFile, f.att.insecureTestKit)
	if err != nil {
		return fail("error", err)
	}
	lp := pol.load()
	att, err := f.att.open(ctx, lp.policy.Attester)
	if err != nil {
		return fail("error", err)
	}
	defer att.Close()
	cert, err := f.certificate()
	if err != nil {
		return fail("error", err)
	}
	roots, err := f.pool()
	if err != nil {
		return fail("error", err)
	}
	rec := &recordingVerifier{Verifier: lp.verifier}
	cfg := &expat.Config{RequirePeerAttestation: true, Verifier: rec, SetupTimeout: f.setupTimeout}
	if f.saveEvidence != "" {
		defer func() {
			if b := rec.last(); b != nil {
				if err := os.WriteFile(f.saveEvidence, b, 0o644); err != nil {
					rep.Error += "; expat: --save-evidence: " + err.Error()
				}
			}
		}()
	}
	tlsCfg := &tls.Config{RootCAs: roots, ServerName: f.serverName}
	if att != nil {
		if cert == nil {
			return fail("error", errors.New("expat: --attester needs --cert and --key: the Evidence is bound to that key"))
		}
		rep.Attester = att.Desc
		cfg.Attester, cfg.Certificate = att, cert
	}
	if cert != nil {
		tlsCfg.Certificates = []tls.Certificate{*cert}
	}
	if tlsCfg.ServerName == "" {
		tlsCfg.ServerName, _, _ = net.SplitHostPort(rep.Address)
	}
	ctx, cancel := context.WithTimeout(ctx, f.setupTimeout)
	defer cancel()
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d.Microseconds())/1000) }

	t0 := time.Now()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", rep.Address)
	if err != nil {
		return fail("unavailable", fmt.Errorf("expat: connect: %w", err))
	}
	defer raw.Close()
	rep.TimingsMS["tcp_connect"] = ms(time.Since(t0))
	t1 := time.Now()
	tc := tls.Client(raw, expat.ClientTLSConfig(tlsCfg))
	if err := tc.HandshakeContext(ctx); err != nil {
		return fail("error", fmt.Errorf("expat: TLS handshake: %w", err))
	}
	rep.TimingsMS["tls_handshake"] = ms(time.Since(t1))
	cs := tc.ConnectionState()
	rep.TLS = &tlsReport{Version: tls.VersionName(cs.Version), CipherSuite: tls.CipherSuiteName(cs.CipherSuite)}
	if len(cs.PeerCertificates) > 0 {
		rep.TLS.PeerSubject = cs.PeerCertificates[0].Subject.String()
	}
	t2 := time.Now()
	conn, err := expat.Client(tc, cfg)
	if err != nil {
		return fail("error", err)
	}
	defer conn.Close()
	if err := conn.Handshake(ctx); err != nil {
		rep.TimingsMS["attestation"] = ms(time.Since(t2))
		return fail(verdict(err), err)
	}
	rep.TimingsMS["attestation"] = ms(time.Since(t2))
	// The server may still be appraising what we sent (mutual attestation,
	// or our refusal to attest) and close with an alert: give it a moment,
	// so that its refusal is reported rather than missed.
	conn.SetReadDeadline(time.Now().Add(peerVerdictWait))
	var one [1]byte
	if _, err := conn.Read(one[:]); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, io.EOF) {
		return fail(verdict(err), err)
	}
	rep.TimingsMS["total"] = ms(time.Since(t0))
	a := conn.PeerAttestation()
	r := a.Result
	rep.Verdict = "verified"
	p := &platformReport{Technology: r.Technology, Model: r.Model.String(), Status: r.Status.String(),
		Verifier: r.Verifier, MediaType: r.MediaType, Claims: r.Claims, KeyAttestation: keyAttestation(r.Claims)}
	if len(r.Measurements) > 0 {
		p.Measurements = map[string]string{}
		for _, m := range r.Measurements {
			p.Measurements[m.Name] = hex.EncodeToString(m.Value)
		}
	}
	if !a.ValidUntil.IsZero() {
		p.Expires = a.ValidUntil.UTC().Format(time.RFC3339)
	}
	rep.Platform = p
	rep.Binding = &bindingReport{Hash: a.Challenge.Hash.String(), Binding: hex.EncodeToString(a.Challenge.Binding),
		AIKPubHash: hex.EncodeToString(a.Challenge.AIKPubHash), Context: hex.EncodeToString(a.Context)}
	return exitOK
}

// recordingVerifier keeps a copy of the last CMW it was asked to appraise.
type recordingVerifier struct {
	verifier.Verifier
	mu  sync.Mutex
	cmw []byte
}

func (r *recordingVerifier) Verify(ctx context.Context, b []byte, exp *verifier.Expected) (*verifier.Result, error) {
	r.mu.Lock()
	r.cmw = append([]byte(nil), b...)
	r.mu.Unlock()
	return r.Verifier.Verify(ctx, b, exp)
}

func (r *recordingVerifier) last() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cmw
}

// keyAttestation says what the Evidence proves about the EA key.
func keyAttestation(claims map[string]string) string {
	if claims["key-attested"] == "true" {
		return "the EA key is certified by the attesting platform (non-exportable)"
	}
	return "none: the Evidence is bound to the EA key through the binder, but does not prove where the key lives"
}

func printProbe(w io.Writer, r *probeReport) {
	fmt.Fprintf(w, "expat probe %s\n", r.Address)
	fmt.Fprintf(w, "  policy          %s\n", r.PolicyFile)
	if r.Attester != "" {
		fmt.Fprintf(w, "  local attester  %s\n", r.Attester)
	} else {
		fmt.Fprintf(w, "  local attester  none (only the server attests)\n")
	}
	if t := r.TLS; t != nil {
		fmt.Fprintf(w, "  TLS             %s, %s, peer %q\n", t.Version, t.CipherSuite, t.PeerSubject)
	}
	if p := r.Platform; p != nil {
		fmt.Fprintf(w, "  platform        %s (%s model, verifier %s, %s)\n", p.Technology, p.Model, p.Verifier, p.MediaType)
		if p.Technology == "test-kit" {
			fmt.Fprintln(w, "                  TEST KIT: software Evidence, proves nothing about any platform")
		}
		for _, k := range sortedKeys(p.Measurements) {
			fmt.Fprintf(w, "  measurement     %s = %s\n", k, p.Measurements[k])
		}
		for _, k := range sortedKeys(p.Claims) {
			fmt.Fprintf(w, "  claim           %s = %s\n", k, p.Claims[k])
		}
		fmt.Fprintf(w, "  key attestation %s\n", p.KeyAttestation)
		if p.Expires != "" {
			fmt.Fprintf(w, "  valid until     %s\n", p.Expires)
		}
	}
	if b := r.Binding; b != nil {
		fmt.Fprintf(w, "  binding         %s %s (AIK_pub_hash %s, context %s)\n", b.Hash, b.Binding, b.AIKPubHash, b.Context)
	}
	var ts []string
	for _, k := range []string{"tcp_connect", "tls_handshake", "attestation", "total"} {
		if v, ok := r.TimingsMS[k]; ok {
			ts = append(ts, k+" "+v+" ms")
		}
	}
	fmt.Fprintf(w, "  timings         %s\n", strings.Join(ts, ", "))
	status := "status " + r.Platform.statusOr("-")
	fmt.Fprintf(w, "  verdict         %s (%s)\n", strings.ToUpper(r.Verdict), status)
	if r.Error != "" {
		fmt.Fprintf(w, "  reason          %s\n", r.Error)
	}
}

func (p *platformReport) statusOr(s string) string {
	if p == nil {
		return s
	}
	return p.Status
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
