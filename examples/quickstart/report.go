package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/verifier"
)

// printer writes whole lines from the server and client goroutines without
// interleaving them.
type printer struct {
	mu sync.Mutex
	w  io.Writer
}

func newPrinter(w io.Writer) *printer { return &printer{w: w} }

func (p *printer) lines(ls ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range ls {
		fmt.Fprintln(p.w, l)
	}
}

// say prints one line attributed to role ("demo", "server", "client").
func (p *printer) say(role, format string, args ...any) {
	p.lines(fmt.Sprintf("[%s] %s", role, fmt.Sprintf(format, args...)))
}

func (p *printer) header() {
	p.lines("go-expat quickstart: attested TLS 1.3 (draft-fossati-seat-expat over RFC 9261) with a simulated TPM 2.0")
}

// platform describes a freshly booted platform, honestly.
func (p *printer) platform(role string, plat *platform, tampered bool) {
	p.say(role, "TPM: Microsoft reference TPM 2.0 simulator inside this process (manufacturer %q, firmware 0x%016x). DEMO ONLY: it proves nothing about this machine; on a real host use tpm.OpenDevice(\"/dev/tpmrm0\")",
		plat.manufacturer, plat.firmware)
	var boot []string
	for _, m := range bootChain {
		boot = append(boot, fmt.Sprintf("%q into PCR %d", m.What, m.PCR))
	}
	p.say(role, "boot: measured %s (the demo plays the firmware's part)", strings.Join(boot, " and "))
	if tampered {
		p.say(role, "TAMPER: after boot, measured %q into PCR %d", rogueComponent.What, rogueComponent.PCR)
	}
	p.say(role, "attestation key (AK) derived in the TPM's endorsement hierarchy: name %s", short(plat.att.AKName()))
}

// enrollment tells what the client trusts, and why.
func (p *printer) enrollment(t *peerTrust, passport bool) {
	if passport {
		der, _ := x509.MarshalPKIXPublicKey(t.Issuer)
		fp := sha256.Sum256(der)
		p.say("client", "trust: the server's Verifier, by its EAR signing key (ES256, SHA-256 fingerprint %s), handed over by the demo; the client sees that Verifier's verdict, not the TPM's PCRs", short(fp[:]))
		return
	}
	p.say("client", "enrollment: pinned the server's AK (name %s), handed over by the demo. A deployment enrolls the AK through the TPM's EK certificate instead (verifier/tpm EnrollmentCA + TPM2_ActivateCredential)", short(akName(t.AKPublic)))
	var pol []string
	exp := expectedPCRs()
	for _, i := range quotedPCRs {
		pol = append(pol, fmt.Sprintf("PCR %d = %s", i, short(exp[i])))
	}
	p.say("client", "policy: %s, computed by the client from the boot chain it expects, not read from the server", strings.Join(pol, ", "))
}

// timings are what the report shows; zero durations are left out.
type timings struct {
	handshake   time.Duration // TLS handshake
	attestation time.Duration // attestation setup: request, Evidence, validation, appraisal
	appraisal   time.Duration // the Verifier alone
}

// printReport prints the verified attestation of peer, as role saw it.
func printReport(out *printer, role, peer string, a *expat.Attestation, t timings) {
	r := a.Result
	leaf := a.Chain[0]
	ls := []string{
		fmt.Sprintf("[%s] attestation report for the %s", role, peer),
		row("identity", "CN=%s, issued by %q; the Exported Authenticator certificate is the TLS certificate crypto/tls verified", leaf.Subject.CommonName, leaf.Issuer.CommonName),
	}
	switch r.Model {
	case verifier.BackgroundCheck:
		ls = append(ls, row("platform", "TPM 2.0, firmware 0x%s (signed in the quote); AK %s (%s); TPM manufacturer: not in a quote (an EK certificate names it)",
			strings.TrimLeft(r.Claims["firmware-version"], "0"), short(mustHex(r.Claims["ak-name"])), r.Claims["ak-trust"]))
		exp := expectedPCRs()
		for _, m := range r.Measurements {
			var i int
			if _, err := fmt.Sscanf(m.Name, "PCR%d/", &i); err != nil {
				continue
			}
			verdict := "not in the policy"
			if want, ok := exp[i]; ok && bytes.Equal(want, m.Value) {
				verdict = "matches the policy"
			}
			ls = append(ls, row(fmt.Sprintf("PCR %d", i), "%s  %s", short(m.Value), verdict))
		}
		ls = append(ls,
			row("binding", "quote and certification carry SHA-256(binding || AIK_pub_hash) of this connection (challenge %s): ok", short(a.Challenge.Binding)),
			row("key attestation", "the TLS key is TPM-resident and non-exportable, certified by the AK (TPM2_Certify): %s", okIf(r.Claims["key-attested"] == "true")))
	case verifier.Passport:
		tv := r.TrustVector
		ls = append(ls,
			row("platform", "appraised by %q, trusted by its EAR key; EAR issued at %s", r.Verifier, r.AppraisedAt.UTC().Format("15:04:05 MST")),
			row("trust vector", "instance-identity %v, hardware %v, executables %v (the PCR policy), storage-opaque %v",
				verifier.TierOf(tv.InstanceIdentity), verifier.TierOf(tv.Hardware), verifier.TierOf(tv.Executables), verifier.TierOf(tv.StorageOpaque)),
			row("binding", "the EAR's eat_nonce is this connection's challenge (%s): ok", short(a.Challenge.Binding)),
			row("key attestation", "the Verifier checked the TPM2_Certify of the TLS key (storage-opaque %v) and the EAR names that key",
				verifier.TierOf(tv.StorageOpaque)))
	}
	ls = append(ls, row("verdict", "VERIFIED: %s (%s model, appraised by %s)", strings.ToUpper(r.Status.String()), r.Model, r.Verifier))
	var ts []string
	if t.handshake > 0 {
		ts = append(ts, "TLS handshake "+ms(t.handshake))
	}
	if t.attestation > 0 {
		ts = append(ts, "attestation "+ms(t.attestation))
	}
	if t.appraisal > 0 {
		ts = append(ts, "of which appraisal "+ms(t.appraisal))
	}
	ls = append(ls, row("timings", "%s", strings.Join(ts, ", ")))
	out.lines(ls...)
}

// reportFailure explains why the peer's attestation failed, with the most
// precise reason known: our own Verifier's rejection when it ran, else
// the connection's error.
func reportFailure(out *printer, role, peer string, err error, ver *timedVerifier, setup time.Duration) {
	ls := []string{fmt.Sprintf("[%s] attestation of the %s FAILED after %s", role, peer, ms(setup))}
	_, verr := ver.mu.get()
	var rej *verifier.RejectedError
	switch {
	case errors.As(verr, &rej):
		ls = append(ls, row("verdict", "REJECTED by check %q: %s", rej.Check, rej.Reason))
		if rej.Check == verifier.CheckPCR {
			exp := expectedPCRs()
			for _, i := range quotedPCRs {
				ls = append(ls, row("policy", "PCR %d = %x", i, exp[i]))
			}
		}
	case verr != nil:
		ls = append(ls, row("verdict", "NOT VERIFIED: %v", verr))
	case isClosedByPeer(err):
		alert, _ := closedByPeer(err)
		ls = append(ls, row("verdict", "NOT VERIFIED: the %s closed the connection (%v) before our appraisal: it did not accept our own attestation", peer, alert))
	case errors.Is(err, expat.ErrPeerRefused):
		ls = append(ls, row("verdict", "REJECTED: the %s refused to attest (its attester failed; with -passport, its Verifier would not issue an EAR)", peer))
	default:
		ls = append(ls, row("verdict", "NOT VERIFIED: %v", err))
	}
	ls = append(ls, row("data", "no application data was exchanged"))
	out.lines(ls...)
}

func isClosedByPeer(err error) bool { _, ok := closedByPeer(err); return ok }

func row(label, format string, args ...any) string {
	return fmt.Sprintf("    %-16s %s", label, fmt.Sprintf(format, args...))
}

func okIf(b bool) string {
	if b {
		return "ok"
	}
	return "NO"
}

// short shows the first 8 bytes of a value in hex.
func short(b []byte) string {
	if len(b) > 8 {
		return hex.EncodeToString(b[:8]) + "…"
	}
	return hex.EncodeToString(b)
}

func mustHex(s string) []byte {
	b, _ := hex.DecodeString(s)
	return b
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// akName is the TPM Name of an AK public area (as the TPM computes it).
func akName(tpmtPublic []byte) []byte {
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](tpmtPublic)
	if err != nil {
		return nil
	}
	name, err := tpm2.ObjectName(pub)
	if err != nil {
		return nil
	}
	return name.Buffer
}

// lockedResult holds the duration and outcome of the last call.
type lockedResult struct {
	mu  sync.Mutex
	d   time.Duration
	err error
}

func (l *lockedResult) set(d time.Duration, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.d, l.err = d, err
}

func (l *lockedResult) get() (time.Duration, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.d, l.err
}
