//go:build veraison

// Live tests against real Veraison services (v0.0.2501), started by
// scripts/veraison/run-tests.sh (or start.sh), which sets:
//
//	EXPAT_VERAISON_URL               verification API
//	EXPAT_VERAISON_PROVISIONING_URL  provisioning API
//	EXPAT_VERAISON_EAR_JWK           the service's EAR signing key (JWK)
//	EXPAT_VERAISON_STOPPED=1         only for TestLiveStopped, after stop.sh
//
// Build tag "veraison". Without the variables these tests skip, except under
// CI=true, where they fail.
package veraison_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/veraison/corim/comid"
	"github.com/veraison/corim/corim"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/attester/cca"
	"github.com/attested-tls/go-expat/attester/cca/ccatest"
	"github.com/attested-tls/go-expat/verifier"
	vcca "github.com/attested-tls/go-expat/verifier/cca"
	expatear "github.com/attested-tls/go-expat/verifier/ear"
	"github.com/attested-tls/go-expat/verifier/veraison"
)

func liveEnv(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: run the live Veraison tests through scripts/veraison/run-tests.sh", name)
		}
		t.Skipf("%s not set (see scripts/veraison/run-tests.sh)", name)
	}
	return v
}

// liveKeys is the key the service signs its EARs with, as the relying
// party configures it: the public part of the EAR signing JWK the harness
// gives Veraison, with the JWK's kid (if any) as its ID.
func liveKeys(t testing.TB) []expatear.TrustedKey {
	t.Helper()
	b, err := os.ReadFile(liveEnv(t, "EXPAT_VERAISON_EAR_JWK"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := jwk.ParseKey(b)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := k.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	var pub any
	if err := jwk.Export(pk, &pub); err != nil {
		t.Fatal(err)
	}
	kid, _ := k.KeyID()
	return []expatear.TrustedKey{{ID: kid, Key: pub}}
}

// liveKey is the public part of the service's EAR signing key.
func liveKey(t testing.TB) crypto.PublicKey { return liveKeys(t)[0].Key }

// provision registers p's CPAK (trust anchor) and its platform and realm
// reference values with the live Veraison, as unsigned CoRIMs.
func provision(t testing.TB, p *ccatest.Platform) {
	t.Helper()
	prov := liveEnv(t, "EXPAT_VERAISON_PROVISIONING_URL")
	c := p.Claims
	b64 := base64.StdEncoding.EncodeToString
	implID := map[string]any{"type": "psa.impl-id", "value": b64(c.ImplementationID)}
	class := map[string]any{"id": implID, "vendor": "go-expat test", "model": "software CCA platform"}
	var meas []any
	for _, s := range c.Software {
		meas = append(meas, map[string]any{
			"key":   map[string]any{"type": "psa.refval-id", "value": map[string]any{"label": s.Type, "version": s.Version, "signer-id": b64(s.SignerID)}},
			"value": map[string]any{"digests": []string{"sha-256:" + b64(s.Value)}},
		})
	}
	meas = append(meas, map[string]any{
		"key":   map[string]any{"type": "cca.platform-config-id", "value": "go-expat test config"},
		"value": map[string]any{"raw-value": map[string]any{"type": "bytes", "value": b64(c.Config)}},
	})
	platform := map[string]any{
		"tag-identity": map[string]any{"id": newUUID(t), "version": 0},
		"entities":     []any{map[string]any{"name": "go-expat tests", "regid": "https://go-expat.example", "roles": []string{"tagCreator", "creator", "maintainer"}}},
		"triples": map[string]any{
			"reference-values": []any{map[string]any{"environment": map[string]any{"class": class}, "measurements": meas}},
			"attester-verification-keys": []any{map[string]any{
				"environment":       map[string]any{"class": class, "instance": map[string]any{"type": "ueid", "value": b64(c.InstanceID)}},
				"verification-keys": []any{map[string]any{"type": "pkix-base64-key", "value": p.CPAKPEM()}},
			}},
		},
	}
	regs := map[string]any{"rim": map[string]any{"key-type": "text", "value": []string{c.RealmHashAlg + ";" + b64(c.RIM)}}}
	for i, r := range c.REMs {
		regs[fmt.Sprintf("rem%d", i)] = map[string]any{"key-type": "text", "value": []string{c.RealmHashAlg + ";" + b64(r)}}
	}
	realm := map[string]any{
		"tag-identity": map[string]any{"id": newUUID(t), "version": 0},
		"entities":     []any{map[string]any{"name": "go-expat tests", "regid": "https://go-expat.example", "roles": []string{"tagCreator", "creator", "maintainer"}}},
		"triples": map[string]any{"reference-values": []any{map[string]any{
			"environment": map[string]any{
				"class":    map[string]any{"id": map[string]any{"type": "uuid", "value": newUUID(t)}, "vendor": "go-expat test realm vendor"},
				"instance": map[string]any{"type": "bytes", "value": b64(c.RIM)},
			},
			"measurements": []any{map[string]any{"value": map[string]any{
				"raw-value":           map[string]any{"type": "bytes", "value": b64(c.PersonalizationValue)},
				"integrity-registers": regs,
			}}},
		}}},
	}
	submitCoRIM(t, prov, "http://arm.com/cca/ssd/1", platform)
	submitCoRIM(t, prov, "http://arm.com/cca/realm/1", realm)
}

func newUUID(t testing.TB) string {
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		t.Fatal(err)
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:])
}

func submitCoRIM(t testing.TB, prov, profile string, comidJSON map[string]any) {
	t.Helper()
	js, err := jsonMarshal(comidJSON)
	if err != nil {
		t.Fatal(err)
	}
	var m comid.Comid
	if err := m.FromJSON(js); err != nil {
		t.Fatalf("CoMID: %v\n%s", err, js)
	}
	if err := m.Valid(); err != nil {
		t.Fatalf("CoMID: %v", err)
	}
	uc := corim.NewUnsignedCorim().SetID(newUUID(t)).SetProfile(profile).AddComid(&m)
	if uc == nil {
		t.Fatal("CoRIM construction failed")
	}
	cb, err := uc.ToCBOR()
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, prov+"/endorsement-provisioning/v1/submit", bytes.NewReader(cb))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", `application/corim-unsigned+cbor; profile="`+profile+`"`)
	req.Header.Set("Accept", "application/vnd.veraison.provisioning-session+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"success"`) {
		t.Fatalf("provisioning %s: HTTP %d: %s", profile, resp.StatusCode, body)
	}
}

// tlsChallenge runs a real TLS 1.3 handshake over loopback TCP and computes
// the go-expat Challenge from the client's exporter, as package expat does
// (draft-fossati-seat-expat-04: label EXPORTER-cmw-attestation, context =
// certificate_request_context, 32 bytes; binding = H(SPKI || exported),
// AIK_pub_hash = H(SPKI), H = the suite hash).
func tlsChallenge(t testing.TB) attester.Challenge {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "attester.test"},
		DNSNames: []string{"attester.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s := tls.Server(c, &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
		s.Handshake()
		io.Copy(io.Discard, s)
		s.Close()
	}()
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool, ServerName: "attester.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st := conn.ConnectionState()
	crc := make([]byte, 32)
	rand.Read(crc)
	exported, err := st.ExportKeyingMaterial("EXPORTER-cmw-attestation", crc, 32)
	if err != nil {
		t.Fatal(err)
	}
	spki := cert.RawSubjectPublicKeyInfo
	h := sha256.New()
	h.Write(spki)
	h.Write(exported)
	aik := sha256.Sum256(spki)
	return attester.Challenge{Hash: crypto.SHA256, Binding: h.Sum(nil), AIKPubHash: aik[:]}
}

type live struct {
	p   *ccatest.Platform
	a   *cca.Attester
	v   *veraison.Verifier
	c   *veraison.Client
	loc *vcca.Verifier
}

func setupLive(t testing.TB, keyFromWellKnown bool) *live {
	t.Helper()
	url := liveEnv(t, "EXPAT_VERAISON_URL")
	p, err := ccatest.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	provision(t, p)
	a, err := cca.NewTSMAttester(p.Client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := veraison.Config{URL: url, EARKeys: liveKeys(t)}
	if keyFromWellKnown {
		cfg.EARKeys, cfg.InsecureTrustServiceKey = nil, true
	}
	c, err := veraison.New(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	var sw []vcca.SoftwareComponent
	for _, s := range p.Claims.Software {
		sw = append(sw, vcca.SoftwareComponent{Type: s.Type, Value: s.Value, SignerID: s.SignerID, Version: s.Version})
	}
	loc, err := vcca.New(&vcca.Config{
		TrustedKeys: []vcca.TrustedKey{{Name: "test-only CPAK", Key: p.CPAK()}},
		Policy: vcca.Policy{RIMs: [][]byte{p.Claims.RIM}, REMs: [][4][]byte{p.Claims.REMs},
			PersonalizationValues: [][]byte{p.Claims.PersonalizationValue}, Software: sw, PlatformConfigs: [][]byte{p.Claims.Config}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &live{p: p, a: a, c: c, v: veraison.NewVerifier(c), loc: loc}
}

func TestLiveAffirming(t *testing.T) {
	for _, wk := range []bool{false, true} {
		t.Run(fmt.Sprintf("keyFromWellKnown=%v", wk), func(t *testing.T) {
			l := setupLive(t, wk)
			ch := tlsChallenge(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ev, err := l.a.Attest(ctx, ch)
			if err != nil {
				t.Fatal(err)
			}
			res, err := l.v.Verify(ctx, ev, &verifier.Expected{Challenge: ch})
			if err != nil {
				t.Fatalf("Veraison: %v", err)
			}
			if res.Status != verifier.TierAffirming || res.Technology != "cca" || res.Model != verifier.BackgroundCheck || len(res.EAR) == 0 {
				t.Fatalf("result %+v", res)
			}
			t.Logf("Veraison: %v %+v %v", res.Status, res.TrustVector, res.Claims)
			if _, err := l.loc.Verify(ctx, ev, &verifier.Expected{Challenge: ch}); err != nil {
				t.Fatalf("local verifier disagrees: %v", err)
			}
		})
	}
}

func TestLiveRejections(t *testing.T) {
	l := setupLive(t, false)
	ch := tlsChallenge(t)
	tests := []struct {
		name  string
		mut   func(c *ccatest.Claims)
		ch    attester.Challenge // expected challenge, if not ch
		check verifier.Check
	}{
		{name: "changed personalization value (contraindicated)", mut: func(c *ccatest.Claims) { c.PersonalizationValue = bytes.Repeat([]byte{0x55}, 64) }, check: verifier.CheckStatus},
		{name: "changed RIM", mut: func(c *ccatest.Claims) { c.RIM = bytes.Repeat([]byte{0x77}, 48) }, check: verifier.CheckStatus},
		{name: "changed platform firmware", mut: func(c *ccatest.Claims) { c.Software[0].Value = bytes.Repeat([]byte{0x88}, 32) }, check: verifier.CheckStatus},
		{name: "evidence for another connection", ch: tlsChallenge(t), check: verifier.CheckStatus},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := l.p.Clone()
			if tc.mut != nil {
				tc.mut(&q.Claims)
			}
			a, err := cca.NewTSMAttester(q.Client(), nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ev, err := a.Attest(ctx, ch)
			if err != nil {
				t.Fatal(err)
			}
			want := ch
			if tc.ch.Hash != 0 {
				want = tc.ch
			}
			res, err := l.v.Verify(ctx, ev, &verifier.Expected{Challenge: want})
			var re *verifier.RejectedError
			if !errors.As(err, &re) || res != nil {
				t.Fatalf("Veraison accepted or failed otherwise: %v", err)
			}
			if re.Check != tc.check {
				t.Fatalf("check %q, want %q (%v)", re.Check, tc.check, err)
			}
			t.Log(err)
		})
	}
}

// TestLiveChangedREM records a difference between Veraison v0.0.2501 and
// verifier/cca: with realm extensible measurements that differ from the
// reference values, Veraison still affirms the realm (executables claim 3,
// "approved boot" instead of 2, "approved runtime"), while the local
// verifier rejects the token.
func TestLiveChangedREM(t *testing.T) {
	l := setupLive(t, false)
	ch := tlsChallenge(t)
	q := l.p.Clone()
	q.Claims.REMs[2] = bytes.Repeat([]byte{0x66}, 48)
	a, err := cca.NewTSMAttester(q.Client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ev, err := a.Attest(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	res, err := l.v.Verify(ctx, ev, &verifier.Expected{Challenge: ch})
	if err != nil {
		t.Fatalf("Veraison: %v", err)
	}
	if res.Status != verifier.TierAffirming || res.TrustVector.Executables != 3 {
		t.Fatalf("Veraison's behaviour changed: %v %+v", res.Status, res.TrustVector)
	}
	_, err = l.loc.Verify(ctx, ev, &verifier.Expected{Challenge: ch})
	var re *verifier.RejectedError
	if !errors.As(err, &re) || re.Check != verifier.CheckMeasurement {
		t.Fatalf("local verifier: %v", err)
	}
}

func TestLivePassport(t *testing.T) {
	l := setupLive(t, false)
	ch := tlsChallenge(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pa := &veraison.Passport{Evidence: l.a, Client: l.c}
	rec, err := pa.Attest(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	res, err := l.v.Verify(ctx, rec, &verifier.Expected{Challenge: ch})
	if err != nil || res.Model != verifier.Passport || res.Status != verifier.TierAffirming {
		t.Fatalf("%v %+v", err, res)
	}
	if _, err := l.v.Verify(ctx, rec, &verifier.Expected{Challenge: tlsChallenge(t)}); !errors.Is(err, verifier.ErrRejected) {
		t.Fatalf("passport replayed on another connection: %v", err)
	}
}

// TestLiveStopped runs after scripts/veraison/stop.sh: the service is gone
// and the verifier must fail closed within the caller's deadline.
func TestLiveStopped(t *testing.T) {
	if os.Getenv("EXPAT_VERAISON_STOPPED") != "1" {
		t.Skip("runs only after stop.sh (EXPAT_VERAISON_STOPPED=1)")
	}
	url := liveEnv(t, "EXPAT_VERAISON_URL")
	p, _ := ccatest.New(nil)
	a, _ := cca.NewTSMAttester(p.Client(), nil)
	ch := tlsChallenge(t)
	ev, err := a.Attest(context.Background(), ch)
	if err != nil {
		t.Fatal(err)
	}
	for _, withKey := range []bool{true, false} {
		cfg := veraison.Config{URL: url, InsecureTrustServiceKey: true}
		if withKey {
			cfg.EARKeys = liveKeys(t)
		}
		c, _ := veraison.New(&cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		start := time.Now()
		res, err := veraison.NewVerifier(c).Verify(ctx, ev, &verifier.Expected{Challenge: ch})
		cancel()
		if res != nil || !errors.Is(err, verifier.ErrUnavailable) {
			t.Fatalf("stopped Veraison: %v %+v", err, res)
		}
		if d := time.Since(start); d > 1600*time.Millisecond {
			t.Fatalf("took %v", d)
		}
		t.Logf("withKey=%v: %v after %v", withKey, err, time.Since(start))
	}
}

// BenchmarkLiveEndToEnd: attest (software CCA platform) + appraisal by the
// live Veraison, one at a time; compare with BenchmarkLocalEndToEnd.
func BenchmarkLiveEndToEnd(b *testing.B) {
	l := setupLive(b, false)
	benchEndToEnd(b, l, l.v)
}

func BenchmarkLocalEndToEnd(b *testing.B) {
	l := setupLive(b, false)
	benchEndToEnd(b, l, l.loc)
}

// benchEndToEnd attests with the software CCA platform and appraises with v,
// one at a time.
func benchEndToEnd(b *testing.B, l *live, v verifier.Verifier) {
	ch := tlsChallenge(b)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		ev, err := l.a.Attest(ctx, ch)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := v.Verify(ctx, ev, &verifier.Expected{Challenge: ch}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLiveThroughput4: appraisals per second from one relying party
// with 4 appraisals in flight (Evidence prepared beforehand).
func BenchmarkLiveThroughput4(b *testing.B) {
	l := setupLive(b, false)
	ch := tlsChallenge(b)
	ev, err := l.a.Attest(context.Background(), ch)
	if err != nil {
		b.Fatal(err)
	}
	var lat []time.Duration
	var mu sync.Mutex
	var n atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	work := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				t0 := time.Now()
				if _, err := l.v.Verify(context.Background(), ev, &verifier.Expected{Challenge: ch}); err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				lat = append(lat, time.Since(t0))
				mu.Unlock()
				n.Add(1)
			}
		}()
	}
	for i := 0; i < b.N; i++ {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	el := time.Since(start)
	b.ReportMetric(float64(n.Load())/el.Seconds(), "appraisals/s")
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median-ms")
	}
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
