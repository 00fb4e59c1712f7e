package tpm_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/attester"
	atpm "github.com/attested-tls/go-expat/attester/tpm"
	"github.com/attested-tls/go-expat/attester/tpm/bundle"
	"github.com/attested-tls/go-expat/attester/tpm/tpmsim"
	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/internal/checktest"
	"github.com/attested-tls/go-expat/internal/tpmtest"
	"github.com/attested-tls/go-expat/verifier"
	vtpm "github.com/attested-tls/go-expat/verifier/tpm"
)

// The simulator is one per process: no test here runs in parallel.

type fixture struct {
	sim  *tpmsim.Simulator
	conn *atpm.Conn
	att  *atpm.Attester
	key  *atpm.Key
}

func newFixture(t testing.TB, cfg *atpm.Config) *fixture {
	t.Helper()
	sim, err := tpmsim.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return newFixtureOn(t, sim, cfg)
}

func newFixtureOn(t testing.TB, tr atpm.Transport, cfg *atpm.Config) *fixture {
	t.Helper()
	conn, err := atpm.Open(tr, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := atpm.NewAttester(context.Background(), conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	k, err := a.NewKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.Close(context.Background())
		conn.Close()
	})
	f := &fixture{conn: conn, att: a, key: k}
	if s, ok := tr.(*tpmsim.Simulator); ok {
		f.sim = s
	}
	return f
}

// expected is what the relying party computes for an EA signed with key.
func expected(label string, key *atpm.Key) *verifier.Expected {
	b := sha256.Sum256([]byte(label))
	h := sha256.Sum256(key.SPKI())
	return &verifier.Expected{
		Challenge: attester.Challenge{Hash: crypto.SHA256, Binding: b[:], AIKPubHash: h[:]},
		PublicKey: key.Public(),
		SPKI:      key.SPKI(),
		Now:       time.Now(),
	}
}

func pinned(t testing.TB, f *fixture, mod func(*vtpm.Config)) *vtpm.Verifier {
	t.Helper()
	ak, err := vtpm.ParseAKPublic(f.att.AKPublic())
	if err != nil {
		t.Fatal(err)
	}
	// Tests of other steps accept any PCRs; a test that sets a PCRPolicy
	// appraises them.
	cfg := &vtpm.Config{TrustedAKs: []crypto.PublicKey{ak}, AcceptAnyPCRs: true}
	if mod != nil {
		mod(cfg)
	}
	if len(cfg.PCRPolicy) != 0 {
		cfg.AcceptAnyPCRs = false
	}
	v, err := vtpm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVerifyAccepts(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	exp := expected("accept", f.key)
	ev, err := f.att.Attest(ctx, exp.Challenge)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := bundle.Unwrap(ev)
	policy := map[int][][]byte{0: {b.PCRs[0]}, 7: {make([]byte, 32), b.PCRs[7]}}
	for _, tc := range []struct {
		name       string
		mod        func(*vtpm.Config)
		wantStatus verifier.Tier
	}{
		{"AcceptAnyPCRs", nil, verifier.TierWarning},
		{"PCR policy met", func(c *vtpm.Config) { c.PCRPolicy = policy; c.RequireKeyAttestation = true }, verifier.TierAffirming},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := pinned(t, f, tc.mod).Verify(ctx, ev, exp)
			if err != nil {
				t.Fatal(err)
			}
			if res.Technology != "tpm2" || res.Status != tc.wantStatus || res.Model != verifier.BackgroundCheck {
				t.Fatalf("result %+v", res)
			}
			if res.Claims["key-attested"] != "true" || res.Claims["ak-trust"] != "pinned" || res.TrustVector.StorageOpaque != 2 {
				t.Fatalf("claims %v vector %+v", res.Claims, res.TrustVector)
			}
			if len(res.Measurements) != 8 || res.Measurements[0].Name != "PCR0/sha256" {
				t.Fatalf("measurements %v", res.Measurements)
			}
		})
	}
}

// Rejections, each produced by a real misbehaving attester or peer.
func mustDecode(t testing.TB, b []byte) *cmw.CMW {
	t.Helper()
	c, err := cmw.Decode(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestVerifyRejects(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	other, err := f.att.NewKey(ctx) // a second TPM key: K1 in T4
	if err != nil {
		t.Fatal(err)
	}
	exp := expected("reject", f.key)
	good, err := f.att.Attest(ctx, exp.Challenge)
	if err != nil {
		t.Fatal(err)
	}
	goodBundle, _ := bundle.Unwrap(good)
	rewrap := func(mod func(b *bundle.Bundle)) []byte {
		b, _ := bundle.Unwrap(good)
		mod(b)
		out, err := bundle.Wrap(b)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	otherAK, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	for _, tc := range []struct {
		name     string
		evidence func() []byte
		exp      *verifier.Expected
		mod      func(*vtpm.Config)
		check    verifier.Check
	}{
		{"T4 certify names K1, EA signed with K2", func() []byte {
			ev, err := f.att.AttestKey(ctx, exp.Challenge, other)
			if err != nil {
				t.Fatal(err)
			}
			return ev
		}, exp, nil, verifier.CheckKey},
		{"T4 expected key given only as SPKI", func() []byte {
			ev, _ := f.att.AttestKey(ctx, exp.Challenge, other)
			return ev
		}, &verifier.Expected{Challenge: exp.Challenge, SPKI: exp.SPKI}, nil, verifier.CheckKey},
		{"certified key but nothing expected", func() []byte { return good },
			&verifier.Expected{Challenge: exp.Challenge}, nil, verifier.CheckKey},
		{"key attestation required, none sent", func() []byte {
			ev, _ := f.att.Attest(ctx, expected("reject", &atpm.Key{}).Challenge)
			return ev
		}, expected("reject", &atpm.Key{}), func(c *vtpm.Config) { c.RequireKeyAttestation = true }, verifier.CheckKey},
		{"evidence for another connection", func() []byte { return good },
			expected("another connection", f.key), nil, verifier.CheckChallenge},
		{"T22 untrusted AK", func() []byte { return good }, exp,
			func(c *vtpm.Config) { c.TrustedAKs = []crypto.PublicKey{otherAK.Public()} }, verifier.CheckAK},
		{"T22 no trust anchors", func() []byte { return good }, exp,
			func(c *vtpm.Config) { c.TrustedAKs = nil }, verifier.CheckAK},
		{"T22 wrong PCR value vs policy", func() []byte { return good }, exp,
			func(c *vtpm.Config) { c.PCRPolicy = map[int][][]byte{7: {bytes.Repeat([]byte{1}, 32)}} }, verifier.CheckPCR},
		{"T22 policy PCR not quoted", func() []byte { return good }, exp,
			func(c *vtpm.Config) { c.PCRPolicy = map[int][][]byte{16: {make([]byte, 32)}} }, verifier.CheckPCR},
		{"policy on another bank", func() []byte { return good }, exp,
			func(c *vtpm.Config) { c.PCRBank = crypto.SHA384 }, verifier.CheckPCR},
		{"peer reports false PCR values", func() []byte {
			return rewrap(func(b *bundle.Bundle) { b.PCRs[3] = bytes.Repeat([]byte{7}, 32) })
		}, exp, nil, verifier.CheckPCR},
		{"peer drops a quoted PCR", func() []byte {
			return rewrap(func(b *bundle.Bundle) { delete(b.PCRs, 3) })
		}, exp, nil, verifier.CheckPCR},
		{"quote signature altered", func() []byte {
			return rewrap(func(b *bundle.Bundle) { b.QuoteSig[len(b.QuoteSig)-1] ^= 1 })
		}, exp, nil, verifier.CheckSignature},
		{"quote bytes altered", func() []byte {
			return rewrap(func(b *bundle.Bundle) { b.Quote[len(b.Quote)-1] ^= 1 })
		}, exp, nil, verifier.CheckSignature},
		{"certify signature swapped for the quote's", func() []byte {
			return rewrap(func(b *bundle.Bundle) { b.CertifySig = goodBundle.QuoteSig })
		}, exp, nil, verifier.CheckKey},
		{"event log not matching the PCRs", func() []byte {
			log, _ := tpmtest.EventLog([]tpmtest.Event{{PCR: 4, Type: 0x80000003, Data: []byte("never measured")}})
			return rewrap(func(b *bundle.Bundle) { b.EventLog = log })
		}, exp, nil, verifier.CheckEventLog},
		{"event log garbage", func() []byte {
			return rewrap(func(b *bundle.Bundle) { b.EventLog = []byte("garbage") })
		}, exp, nil, verifier.CheckEventLog},
		{"event log required", func() []byte { return good }, exp,
			func(c *vtpm.Config) { c.RequireEventLog = true }, verifier.CheckEventLog},
		{"not a CMW", func() []byte { return []byte("{}") }, exp, nil, verifier.CheckFormat},
		{"truncated", func() []byte { return good[:len(good)-1] }, exp, nil, verifier.CheckFormat},
		{"trailing byte", func() []byte { return append(bytes.Clone(good), 0) }, exp, nil, verifier.CheckFormat},
		{"the bundle in a JSON record, not canonical", func() []byte {
			c, err := cmw.Decode(good, nil)
			if err != nil {
				t.Fatal(err)
			}
			out, err := c.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			return bytes.Replace(out, []byte(`",`), []byte(`", `), 1)
		}, exp, nil, verifier.CheckFormat},
		{"the record in a collection", func() []byte {
			r, _ := mustDecode(t, good).Record()
			rec, _ := cmw.NewRecord(r.MediaType, r.Value, r.Indicator)
			col, _ := cmw.NewCollection("")
			if err := col.Add(cmw.TextLabel("tpm"), rec); err != nil {
				t.Fatal(err)
			}
			out, err := col.MarshalCBOR()
			if err != nil {
				t.Fatal(err)
			}
			return out
		}, exp, nil, verifier.CheckFormat},
		{"the bundle marked as attestation results", func() []byte {
			r, _ := mustDecode(t, good).Record()
			rec, _ := cmw.NewRecord(r.MediaType, r.Value, cmw.AttestationResults)
			out, err := rec.MarshalCBOR()
			if err != nil {
				t.Fatal(err)
			}
			return out
		}, exp, nil, verifier.CheckFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pinned(t, f, tc.mod).Verify(ctx, tc.evidence(), tc.exp)
			checktest.Rejected(t, err, tc.check)
		})
	}
}

func TestEventLogReplay(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "binary_bios_measurements")
	events := []tpmtest.Event{
		{PCR: 0, Type: 3, Data: append([]byte("StartupLocality\x00"), 0)},
		{PCR: 0, Type: 0x8, Data: []byte("firmware")},
		{PCR: 4, Type: 0x80000003, Data: []byte("boot loader")},
		{PCR: 7, Type: 0x800000e0, Data: []byte("secure boot off")},
		{PCR: 4, Type: 0x80000003, Data: []byte("kernel")},
	}
	log, digests := tpmtest.EventLog(events)
	if err := os.WriteFile(logPath, log, 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, &atpm.Config{EventLogPath: logPath})
	for i, e := range events {
		if e.Type != 3 {
			tpmtest.Extend(t, f.sim, int(e.PCR), digests[i])
		}
	}
	exp := expected("log", f.key)
	ev, err := f.att.Attest(context.Background(), exp.Challenge)
	if err != nil {
		t.Fatal(err)
	}
	res, err := pinned(t, f, func(c *vtpm.Config) { c.RequireEventLog = true }).Verify(context.Background(), ev, exp)
	if err != nil {
		t.Fatal(err)
	}
	if res.Claims["event-log"] != "replayed" {
		t.Fatalf("claims %v", res.Claims)
	}
	// One more measurement the log does not record: rejected.
	tpmtest.Extend(t, f.sim, 7, bytes.Repeat([]byte{9}, 32))
	ev, err = f.att.Attest(context.Background(), exp.Challenge)
	if err != nil {
		t.Fatal(err)
	}
	_, err = pinned(t, f, nil).Verify(context.Background(), ev, exp)
	checktest.Rejected(t, err, verifier.CheckEventLog)
}

// An AK certificate from a (test-only) enrollment CA makes the AK trusted;
// one from another CA does not.
func TestAKCertificateTrust(t *testing.T) {
	newCA := func(name string) (*x509.Certificate, *ecdsa.PrivateKey) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c, k
	}
	trustedCA, trustedKey := newCA("test-only enrollment CA")
	otherCA, otherKey := newCA("test-only other CA")

	sim, err := tpmsim.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	shared := noClose{sim}
	probe := newFixtureOn(t, shared, nil)
	akKey := probe.att.AKPublicKey()
	probe.att.Close(context.Background())

	issueAs := func(ca *x509.Certificate, caKey *ecdsa.PrivateKey, eku []asn1.ObjectIdentifier) []byte {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "AK"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
			UnknownExtKeyUsage: eku}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, akKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	issue := func(ca *x509.Certificate, caKey *ecdsa.PrivateKey) []byte {
		return issueAs(ca, caKey, []asn1.ObjectIdentifier{vtpm.OIDAKCertificate})
	}
	roots := x509.NewCertPool()
	roots.AddCert(trustedCA)
	v, err := vtpm.New(&vtpm.Config{AKRoots: roots, AcceptAnyPCRs: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		chain [][]byte
		ok    bool
	}{
		{"certified by the enrollment CA", [][]byte{issue(trustedCA, trustedKey)}, true},
		{"certified by another CA", [][]byte{issue(otherCA, otherKey)}, false},
		{"certificate without the AK profile", [][]byte{issueAs(trustedCA, trustedKey, nil)}, false},
		{"no certificate", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixtureOn(t, shared, &atpm.Config{AKChain: tc.chain})
			exp := expected(tc.name, f.key)
			ev, err := f.att.Attest(context.Background(), exp.Challenge)
			if err != nil {
				t.Fatal(err)
			}
			res, err := v.Verify(context.Background(), ev, exp)
			if tc.ok {
				if err != nil || res.Claims["ak-trust"] != "certificate" {
					t.Fatalf("got %v, %v", res, err)
				}
				return
			}
			checktest.Rejected(t, err, verifier.CheckAK)
		})
	}
}

// noClose shares one transport between several Conns.
type noClose struct{ atpm.Transport }

func (noClose) Close() error { return nil }

func TestSwtpmEndToEnd(t *testing.T) {
	sw := tpmtest.StartSwtpm(t, tpmtest.SwtpmOptions{})
	tr, err := atpm.DialSwtpm(context.Background(), sw.Network, sw.Addr)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixtureOn(t, tr, nil)
	exp := expected("swtpm", f.key)
	ev, err := f.att.Attest(context.Background(), exp.Challenge)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pinned(t, f, func(c *vtpm.Config) { c.RequireKeyAttestation = true }).Verify(context.Background(), ev, exp); err != nil {
		t.Fatal(err)
	}
	_, err = pinned(t, f, nil).Verify(context.Background(), ev, expected("other", f.key))
	checktest.Rejected(t, err, verifier.CheckChallenge)
}

// The zero Config (and nil) rejects a genuine quote; a trusted AK with a
// forgotten PCR policy is a rejection, never a quiet warning.
func TestZeroConfigRejects(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	exp := expected("zero", f.key)
	ev, err := f.att.Attest(ctx, exp.Challenge)
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []*vtpm.Config{nil, {}} {
		v, err := vtpm.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		res, err := v.Verify(ctx, ev, exp)
		checktest.Rejected(t, err, verifier.CheckAK)
		if res != nil {
			t.Fatal("result with an error")
		}
	}
	ak, _ := vtpm.ParseAKPublic(f.att.AKPublic())
	v, err := vtpm.New(&vtpm.Config{TrustedAKs: []crypto.PublicKey{ak}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(ctx, ev, exp)
	checktest.Rejected(t, err, verifier.CheckPCR)
	if _, err := vtpm.New(&vtpm.Config{AcceptAnyPCRs: true, PCRPolicy: map[int][][]byte{7: {make([]byte, 32)}}}); err == nil {
		t.Error("AcceptAnyPCRs with a PCRPolicy accepted")
	}
}
