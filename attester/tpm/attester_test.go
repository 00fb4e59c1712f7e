package tpm_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/attester/tpm"
	"github.com/attested-tls/go-expat/attester/tpm/bundle"
	"github.com/attested-tls/go-expat/attester/tpm/tpmsim"
	"github.com/attested-tls/go-expat/internal/tpmtest"
)

// The simulator is one per process: no test here runs in parallel.

func openSim(t testing.TB) *tpmsim.Simulator {
	t.Helper()
	sim, err := tpmsim.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}

func challengeFor(t testing.TB, label string, spki []byte) attester.Challenge {
	t.Helper()
	b := sha256.Sum256([]byte(label))
	var h [32]byte
	if spki != nil {
		h = sha256.Sum256(spki)
	} else {
		h = sha256.Sum256([]byte("no key " + label))
	}
	return attester.Challenge{Hash: crypto.SHA256, Binding: b[:], AIKPubHash: h[:]}
}

func newAttester(t testing.TB, tr tpm.Transport, opts *tpm.ConnOptions, cfg *tpm.Config) (*tpm.Conn, *tpm.Attester) {
	t.Helper()
	conn, err := tpm.Open(tr, opts)
	if err != nil {
		t.Fatal(err)
	}
	a, err := tpm.NewAttester(context.Background(), conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = a.Close(context.Background())
		_ = conn.Close()
	})
	return conn, a
}

func TestAttestQuoteAndCertify(t *testing.T) {
	sim := openSim(t)
	_, a := newAttester(t, sim, nil, nil)
	ctx := context.Background()
	k, err := a.NewKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		spki        []byte
		wantCertify bool
	}{
		{"challenge names the key", k.SPKI(), true},
		{"challenge names another key", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := a.Attest(ctx, challengeFor(t, tc.name, tc.spki))
			if err != nil {
				t.Fatal(err)
			}
			b, err := bundle.Unwrap(out)
			if err != nil {
				t.Fatal(err)
			}
			if got := b.HasKeyAttestation(); got != tc.wantCertify {
				t.Fatalf("key attestation %v, want %v", got, tc.wantCertify)
			}
			if len(b.PCRs) != len(tpm.DefaultPCRs) || b.PCRAlg != uint16(tpm2.TPMAlgSHA256) {
				t.Fatalf("PCRs %d in bank %#x", len(b.PCRs), b.PCRAlg)
			}
		})
	}
}

func TestAKIsStableAcrossAttesters(t *testing.T) {
	sim := openSim(t)
	_, a1 := newAttester(t, sim, nil, nil)
	ak1 := a1.AKPublic()
	if err := a1.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	conn, err := tpm.Open(sim, nil)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := tpm.NewAttester(context.Background(), conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a2.Close(context.Background())
	if string(a2.AKPublic()) != string(ak1) {
		t.Fatal("derived AK differs between attesters on the same TPM")
	}
}

func TestKeySignsAsCryptoSigner(t *testing.T) {
	sim := openSim(t)
	_, a := newAttester(t, sim, nil, nil)
	k, err := a.NewKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// A certificate signed by the TPM key verifies (the EA end-entity use).
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tpm key"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("msg"))
	sig, err := k.Sign(nil, d[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(k.Public().(*ecdsa.PublicKey), d[:], sig) {
		t.Fatal("signature does not verify")
	}
	for _, tc := range []struct {
		name   string
		digest []byte
		opts   crypto.SignerOpts
	}{
		{"SHA-384", make([]byte, 48), crypto.SHA384},
		{"short digest", d[:31], crypto.SHA256},
	} {
		if _, err := k.Sign(nil, tc.digest, tc.opts); err == nil {
			t.Errorf("%s: signed", tc.name)
		}
	}
	if err := k.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Sign(nil, d[:], crypto.SHA256); !errors.Is(err, tpm.ErrClosed) {
		t.Fatalf("sign after close: %v, want ErrClosed", err)
	}
}

// faultTransport answers chosen commands with a response code instead of
// passing them to the TPM.
type faultTransport struct {
	tpm.Transport
	cc       tpm2.TPMCC // command to fault
	rc       tpm2.TPMRC
	failures int32 // how many times (negative: always)
	faulted  atomic.Int32
	hang     chan struct{} // if non-nil, hang on cc until closed
}

func (f *faultTransport) Send(ctx context.Context, cmd []byte) ([]byte, error) {
	if len(cmd) >= 10 && tpm2.TPMCC(binary.BigEndian.Uint32(cmd[6:10])) == f.cc {
		if f.hang != nil {
			<-f.hang
			return nil, errors.New("closed")
		}
		if f.failures < 0 || f.faulted.Load() < f.failures {
			f.faulted.Add(1)
			rsp := make([]byte, 10)
			binary.BigEndian.PutUint16(rsp[0:2], uint16(tpm2.TPMSTNoSessions))
			binary.BigEndian.PutUint32(rsp[2:6], 10)
			binary.BigEndian.PutUint32(rsp[6:10], uint32(f.rc))
			return rsp, nil
		}
	}
	return f.Transport.Send(ctx, cmd)
}

func (f *faultTransport) Close() error {
	if f.hang != nil {
		select {
		case <-f.hang:
		default:
			close(f.hang)
		}
	}
	return nil // the simulator is closed by openSim's cleanup
}

// T27: TPM faults surface as typed errors, retried only where the TPM says
// so, within the caller's deadline.
func TestTPMFaults(t *testing.T) {
	fast := &tpm.ConnOptions{Retry: attester.RetryPolicy{MaxAttempts: 4, Initial: time.Millisecond, Max: 4 * time.Millisecond}}
	for _, tc := range []struct {
		name          string
		rc            tpm2.TPMRC
		failures      int32
		wantOK        bool
		wantRetryable bool
		wantFaults    int32
	}{
		{"RETRY twice then success", tpm2.TPMRCRetry, 2, true, false, 2},
		{"YIELDED once then success", tpm2.TPMRCYielded, 1, true, false, 1},
		{"TESTING once then success", tpm2.TPMRCTesting, 1, true, false, 1},
		{"NV_RATE once then success", tpm2.TPMRCNVRate, 1, true, false, 1},
		{"RETRY forever", tpm2.TPMRCRetry, -1, false, true, 4},
		{"fatal FAILURE", tpm2.TPMRCFailure, -1, false, false, 1},
		{"LOCKOUT is not retried", tpm2.TPMRCLockout, -1, false, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := openSim(t)
			ft := &faultTransport{Transport: sim, cc: tpm2.TPMCCQuote, rc: tc.rc, failures: tc.failures}
			_, a := newAttester(t, ft, fast, nil)
			_, err := a.Attest(context.Background(), challengeFor(t, tc.name, nil))
			if got := ft.faulted.Load(); got != tc.wantFaults {
				t.Errorf("faulted %d times, want %d", got, tc.wantFaults)
			}
			if tc.wantOK {
				if err != nil {
					t.Fatalf("Attest: %v", err)
				}
				return
			}
			var te *tpm.Error
			if !errors.As(err, &te) {
				t.Fatalf("error %v (%T), want *tpm.Error", err, err)
			}
			if te.Temporary() != tc.wantRetryable || !errors.Is(te.Code, tc.rc) {
				t.Fatalf("got code %v retryable %v, want %v retryable %v", te.Code, te.Temporary(), tc.rc, tc.wantRetryable)
			}
		})
	}
}

func TestRetryHonoursDeadline(t *testing.T) {
	sim := openSim(t)
	ft := &faultTransport{Transport: sim, cc: tpm2.TPMCCQuote, rc: tpm2.TPMRCRetry, failures: -1}
	slow := &tpm.ConnOptions{Retry: attester.RetryPolicy{MaxAttempts: 1000, Initial: 20 * time.Millisecond, Max: 20 * time.Millisecond}}
	_, a := newAttester(t, ft, slow, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := a.Attest(ctx, challengeFor(t, "deadline", nil))
	if el := time.Since(start); el > time.Second {
		t.Fatalf("returned after %v", el)
	}
	var te *tpm.Error
	if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &te) || !te.Temporary() {
		t.Fatalf("got %v, want a retryable *tpm.Error wrapping DeadlineExceeded", err)
	}
}

func TestHungTransport(t *testing.T) {
	sim := openSim(t)
	ft := &faultTransport{Transport: sim, cc: tpm2.TPMCCQuote, hang: make(chan struct{})}
	conn, a := newAttester(t, ft, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := a.Attest(ctx, challengeFor(t, "hung", nil))
	if el := time.Since(start); el > time.Second {
		t.Fatalf("returned after %v", el)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
	// The stream is out of step: later commands fail fast, no deadlock.
	_, err = a.Attest(context.Background(), challengeFor(t, "after", nil))
	if !errors.Is(err, tpm.ErrBroken) {
		t.Fatalf("after abandon: %v, want ErrBroken", err)
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
}

// Concurrent attestations and signatures share one command stream.
func TestConcurrentUse(t *testing.T) {
	sim := openSim(t)
	_, a := newAttester(t, sim, nil, nil)
	k, err := a.NewKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 8; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, err := a.Attest(context.Background(), challengeFor(t, "c", k.SPKI()))
			errs <- err
		}()
		go func() {
			defer wg.Done()
			d := sha256.Sum256([]byte{byte(i)})
			_, err := k.Sign(nil, d[:], crypto.SHA256)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	sim := openSim(t)
	conn, err := tpm.Open(sim, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  tpm.Config
	}{
		{"PCR out of range", tpm.Config{PCRs: []int{24}}},
		{"negative PCR", tpm.Config{PCRs: []int{-1}}},
		{"empty selection", tpm.Config{PCRs: []int{}}},
		{"bad bank", tpm.Config{PCRBank: crypto.MD5}},
		{"AK handle not persistent", tpm.Config{AKHandle: 0x80000001}},
		{"AK handle absent", tpm.Config{AKHandle: 0x81000123}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := tpm.NewAttester(context.Background(), conn, &tc.cfg)
			if err == nil {
				_, err = a.Attest(context.Background(), challengeFor(t, "x", nil))
				a.Close(context.Background())
			}
			if err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestSwtpmTransport(t *testing.T) {
	for _, unix := range []bool{false, true} {
		t.Run(map[bool]string{false: "tcp", true: "unix"}[unix], func(t *testing.T) {
			testSwtpmTransport(t, tpmtest.StartSwtpm(t, tpmtest.SwtpmOptions{Unix: unix}))
		})
	}
}

func testSwtpmTransport(t *testing.T, sw *tpmtest.Swtpm) {
	tr, err := tpm.DialSwtpm(context.Background(), sw.Network, sw.Addr)
	if err != nil {
		t.Fatal(err)
	}
	_, a := newAttester(t, tr, nil, nil)
	k, err := a.NewKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out, err := a.Attest(context.Background(), challengeFor(t, "swtpm", k.SPKI()))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := bundle.Unwrap(out); err != nil || !b.HasKeyAttestation() {
		t.Fatalf("bundle %v, %v", b, err)
	}
}
