package integration_test

// The TPM simulator is one per process: no test in this package runs in
// parallel.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/attester/tpm"
	"github.com/attested-tls/go-expat/attester/tpm/bundle"
	"github.com/attested-tls/go-expat/attester/tpm/tpmsim"
	"github.com/attested-tls/go-expat/expat"
	"github.com/attested-tls/go-expat/internal/expattest"
	"github.com/attested-tls/go-expat/verifier"
	vtpm "github.com/attested-tls/go-expat/verifier/tpm"
)

// openTPM starts the in-process simulator and an attester on it, both
// closed when the test ends (after the connections, closed by cleanups
// registered later).
func openTPM(t testing.TB) *tpm.Attester {
	t.Helper()
	sim, err := tpmsim.Open()
	if errors.Is(err, tpmsim.ErrNoCgo) && os.Getenv("CI") != "true" {
		t.Skip(err) // CI builds with cgo: there, a missing simulator is a failure
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	conn, err := tpm.Open(sim, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	a, err := tpm.NewAttester(context.Background(), conn, &tpm.Config{PCRs: []int{0, 7}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(context.Background()) })
	return a
}

func newKey(t testing.TB, a *tpm.Attester) *tpm.Key {
	t.Helper()
	k, err := a.NewKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// tpmVerifier pins a's AK, requires key attestation and expects PCRs 0
// and 7 of a freshly started simulator (nothing measured: zero).
func tpmVerifier(t testing.TB, a *tpm.Attester, mod func(*vtpm.Config)) *vtpm.Verifier {
	t.Helper()
	zero := make([]byte, 32)
	cfg := &vtpm.Config{TrustedAKs: []crypto.PublicKey{a.AKPublicKey()}, RequireKeyAttestation: true,
		PCRPolicy: map[int][][]byte{0: {zero}, 7: {zero}}}
	if mod != nil {
		mod(cfg)
	}
	v, err := vtpm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A server whose TLS and Exported Authenticator key lives in the TPM
// attests with a quote and TPM2_Certify of that key; the client pins the
// AK and requires the key attestation. Then the client re-attests the
// server on the live connection.
func TestTPMServerKeyAttestation(t *testing.T) {
	a := openTPM(t)
	p := expattest.NewPKI(t)
	key := newKey(t, a)
	srvCert := p.Issue(t, expattest.ServerName, key) // the TLS handshake is signed in the TPM too
	rec := &expattest.Recorder{Attester: a}
	srv, cli := expattest.TLSPair(t, p, srvCert, nil)
	s, c, serr, cerr := expattest.AttestedPair(t, srv, cli,
		&expat.Config{Attester: rec, Certificate: &srvCert},
		&expat.Config{RequirePeerAttestation: true, Verifier: tpmVerifier(t, a, nil)})
	if serr != nil || cerr != nil {
		t.Fatalf("setup: server %v, client %v", serr, cerr)
	}
	att := c.PeerAttestation()
	if att == nil {
		t.Fatal("client has no attestation of the server")
	}
	if res := att.Result; res.Technology != vtpm.Technology || res.Claims["key-attested"] != "true" || res.Claims["ak-trust"] == "" {
		t.Fatalf("result %+v", res)
	}
	if !bytes.Equal(att.Chain[0].RawSubjectPublicKeyInfo, key.SPKI()) {
		t.Fatal("the attested EA key is not the TPM key")
	}
	// The bundle that went over the wire certifies exactly that key.
	sent, _ := rec.Last(t)
	b, err := bundle.Unwrap(sent)
	if err != nil || !b.HasKeyAttestation() || !bytes.Equal(b.KeyPublic, key.TPMPublic()) {
		t.Fatalf("sent bundle: %v (key attestation %v)", err, b != nil && b.HasKeyAttestation())
	}
	expattest.Exchange(t, c, s)

	// Re-attestation: a fresh context, a fresh quote.
	go io.Copy(io.Discard, s) // the server's application keeps reading
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	again, err := c.Attest(ctx)
	if err != nil {
		t.Fatalf("re-attestation: %v", err)
	}
	if again.Seq != 2 || bytes.Equal(again.Context, att.Context) || bytes.Equal(again.Challenge.Binding, att.Challenge.Binding) {
		t.Fatalf("re-attestation reused the exchange: seq %d", again.Seq)
	}
	if resent, _ := rec.Last(t); bytes.Equal(resent, sent) {
		t.Fatal("re-attestation sent the same Evidence")
	}
}

// keySwap is a misbehaving TPM attester: its bundle certifies key k
// whatever key the Exported Authenticator uses (T4, key substitution).
type keySwap struct {
	a *tpm.Attester
	k *tpm.Key
}

func (s keySwap) Attest(ctx context.Context, ch attester.Challenge) ([]byte, error) {
	return s.a.AttestKey(ctx, ch, s.k)
}

// TPM attestations that the client rejects over the wire, each with its
// precise check.
func TestTPMRejected(t *testing.T) {
	a := openTPM(t)
	eaKey, otherKey := newKey(t, a), newKey(t, a) // the simulator holds 3 objects: AK and these
	otherAK, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		tpmKey bool // the EA certificate's key is eaKey (else a software key)
		att    attester.Attester
		mod    func(*vtpm.Config)
		check  verifier.Check
	}{
		{"T4: software EA key, the evidence certifies a TPM key", false, keySwap{a, otherKey}, nil, verifier.CheckKey},
		{"T4: TPM EA key, the evidence certifies another TPM key", true, keySwap{a, otherKey}, nil, verifier.CheckKey},
		{"software EA key, no key attestation, required", false, a, nil, verifier.CheckKey},
		{"AK not pinned", true, a, func(c *vtpm.Config) { c.TrustedAKs = []crypto.PublicKey{otherAK.Public()} }, verifier.CheckAK},
		{"PCR 7 not the policy value", true, a, func(c *vtpm.Config) {
			c.PCRPolicy = map[int][][]byte{7: {bytes.Repeat([]byte{0xee}, 32)}}
		}, verifier.CheckPCR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := expattest.NewPKI(t)
			var signer crypto.Signer
			if tc.tpmKey {
				signer = eaKey
			}
			srvCert := p.Issue(t, expattest.ServerName, signer)
			srv, cli := expattest.TLSPair(t, p, srvCert, nil)
			_, c, _, cerr := expattest.AttestedPair(t, srv, cli,
				&expat.Config{Attester: tc.att, Certificate: &srvCert},
				&expat.Config{RequirePeerAttestation: true, Verifier: tpmVerifier(t, a, tc.mod)})
			if cerr == nil {
				t.Fatal("client accepted the server's attestation")
			}
			expattest.WantRejected(t, cerr, tc.check)
			expattest.WantNoData(t, c)
		})
	}
	// The control: the same set-up with the honest attester and the EA key
	// in the TPM is accepted.
	p := expattest.NewPKI(t)
	srvCert := p.Issue(t, expattest.ServerName, eaKey)
	srv, cli := expattest.TLSPair(t, p, srvCert, nil)
	if _, _, serr, cerr := expattest.AttestedPair(t, srv, cli,
		&expat.Config{Attester: a, Certificate: &srvCert},
		&expat.Config{RequirePeerAttestation: true, Verifier: tpmVerifier(t, a, nil)}); serr != nil || cerr != nil {
		t.Fatalf("control: server %v, client %v", serr, cerr)
	}
}
