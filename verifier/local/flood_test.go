package local_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/local"
	"github.com/attested-tls/go-expat/verifier/veraison"
)

// clientFrom returns an HTTP client whose connections come from the
// loopback address ip (127.0.0.x), a client of its own for the service.
func clientFrom(t testing.TB, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// post sends one POST with c and returns the status, the Location (as an
// absolute URL) and the body.
func post(t testing.TB, c *http.Client, url, ctype string, body []byte) (int, string, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(http.MethodPost, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Error(err)
		return 0, "", nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	loc := ""
	if l, err := resp.Location(); err == nil {
		loc = l.String()
	}
	return resp.StatusCode, loc, b
}

// countingRand counts the reads of Config.Rand: a refusal must come before
// any.
type countingRand struct{ n atomic.Int64 }

func (c *countingRand) Read(p []byte) (int, error) {
	c.n.Add(1)
	return rand.Read(p)
}

// One unauthenticated client floods newSession with empty POSTs, as fast
// as it can from 8 connections. It only ever holds its own quota of
// sessions (evicting its own oldest), and another relying party appraises
// throughout and afterwards without a single refusal.
func TestSessionFloodFromOneClient(t *testing.T) {
	e := newEnv(t)
	attacker := clientFrom(t, "127.0.0.2")
	const n = 2048
	var codes sync.Map
	var next atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	victimErrs := make(chan error, 1)
	var served atomic.Int64
	go func() { // the victim, during the flood
		defer close(victimErrs)
		for {
			select {
			case <-stop:
				return
			default:
			}
			ch := challenge(t)
			ev, _ := e.att.Attest(context.Background(), ch)
			if _, err := e.client.Appraise(context.Background(), ev, rd64(t, ch)); err != nil {
				victimErrs <- err
				return
			}
			served.Add(1)
		}
	}()
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= n {
				code, _, _ := post(t, attacker, e.srv.URL+local.PathNewSession, "", nil)
				v, _ := codes.LoadOrStore(code, new(atomic.Int64))
				v.(*atomic.Int64).Add(1)
			}
		}()
	}
	wg.Wait()
	flood := time.Since(start)
	close(stop)
	if err := <-victimErrs; err != nil {
		t.Fatalf("the victim was refused during the flood: %v", err)
	}
	if served.Load() == 0 {
		t.Fatal("no appraisal of the victim ran during the flood")
	}
	codes.Range(func(k, v any) bool {
		if k.(int) != http.StatusCreated {
			t.Errorf("%d answers with HTTP %d", v.(*atomic.Int64).Load(), k)
		}
		return true
	})
	// The victim's Client deletes its sessions in the background (each
	// within veraison.DeleteTimeout): its last one may still be live.
	deadline := time.Now().Add(veraison.DeleteTimeout + time.Second)
	for e.svc.Sessions() > local.DefaultMaxSessionsPerClient && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := e.svc.Sessions(); got > local.DefaultMaxSessionsPerClient {
		t.Fatalf("%d live sessions after the flood, want at most the client's quota %d", got, local.DefaultMaxSessionsPerClient)
	}
	vstart := time.Now()
	ch := challenge(t)
	ev, _ := e.att.Attest(context.Background(), ch)
	if _, err := e.client.Appraise(context.Background(), ev, rd64(t, ch)); err != nil {
		t.Fatalf("the victim after the flood: %v", err)
	}
	t.Logf("%d empty POSTs from one client in %v, %d appraisals of another client meanwhile; one afterwards took %v",
		n, flood, served.Load(), time.Since(vstart))
}

// Many clients fill the table: a new session then evicts the oldest
// session of the client holding the most, so a relying party with few
// sessions always gets one.
func TestSessionFloodFromManyClients(t *testing.T) {
	e := newEnv(t, func(c *local.Config, _ *verifier.Dispatch) {
		c.MaxSessions = 64
		c.MaxSessionsPerClient = 8
	})
	for i := range 16 { // 16 × 8 = twice the table
		c := clientFrom(t, fmt.Sprintf("127.0.0.%d", 10+i))
		for range 8 {
			if code, _, body := post(t, c, e.srv.URL+local.PathNewSession, "", nil); code != http.StatusCreated {
				t.Fatalf("client %d: HTTP %d: %s", i, code, body)
			}
		}
	}
	if n := e.svc.Sessions(); n != 64 {
		t.Fatalf("%d sessions, want a full table of 64", n)
	}
	ch := challenge(t)
	ev, _ := e.att.Attest(context.Background(), ch)
	if _, err := e.client.Appraise(context.Background(), ev, rd64(t, ch)); err != nil {
		t.Fatalf("the victim with a full table: %v", err)
	}
}

// slowVerifier models an expensive appraisal: it holds its caller until
// released (or its ctx ends), then rejects.
type slowVerifier struct {
	running atomic.Int64
	release chan struct{}
}

const slowType = "application/vnd.example.slow"

func (s *slowVerifier) Verify(ctx context.Context, _ []byte, _ *verifier.Expected) (*verifier.Result, error) {
	s.running.Add(1)
	defer s.running.Add(-1)
	select {
	case <-s.release:
	case <-ctx.Done():
	}
	return nil, verifier.Reject(verifier.CheckMeasurement, nil, "test: slow evidence refused")
}

// One client submits expensive Evidence to all its sessions at once: it
// gets at most its share of the appraisal slots, another relying party's
// appraisal runs at once, and when every session of the flooding client is
// being appraised its further sessions are refused cheaply (429, before
// any nonce or id is minted) while the other client still gets one.
func TestAppraisalFloodFromOneClient(t *testing.T) {
	slow := &slowVerifier{release: make(chan struct{})}
	rnd := &countingRand{}
	e := newEnv(t, func(c *local.Config, d *verifier.Dispatch) {
		d.Verifiers[slowType] = slow
		c.MaxSessionsPerClient = 4
		c.Rand = rnd
	})
	released := false
	defer func() {
		if !released {
			close(slow.release)
		}
	}()
	attacker := clientFrom(t, "127.0.0.2")
	slowEv, err := cmw.MarshalEvidence(slowType, []byte{1})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for range 4 {
		code, loc, body := post(t, attacker, e.srv.URL+local.PathNewSession, "", nil)
		if code != http.StatusCreated || loc == "" {
			t.Fatalf("HTTP %d (Location %q): %s", code, loc, body)
		}
		paths = append(paths, loc)
	}
	var wg sync.WaitGroup
	for _, p := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			post(t, attacker, p, local.MediaTypeCMWCBOR, slowEv)
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for slow.running.Load() < 4 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if r := slow.running.Load(); r != 4 { // MaxConcurrentAppraisals 8: a share of 4
		t.Fatalf("%d of the flooding client's appraisals running, want its share of 4", r)
	}

	// Every session of the attacker is being appraised: refused, cheaply.
	reads := rnd.n.Load()
	code, _, _ := post(t, attacker, e.srv.URL+local.PathNewSession, "", nil)
	if code != http.StatusTooManyRequests {
		t.Fatalf("a fifth session of the flooding client: HTTP %d, want 429", code)
	}
	if rnd.n.Load() != reads {
		t.Fatal("the refusal read randomness: not refused before minting")
	}

	// The other relying party is served at once.
	start := time.Now()
	ch := challenge(t)
	ev, _ := e.att.Attest(context.Background(), ch)
	if _, err := e.client.Appraise(context.Background(), ev, rd64(t, ch)); err != nil {
		t.Fatalf("the victim during the appraisal flood: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the victim waited %v", d)
	}
	close(slow.release)
	released = true
	wg.Wait()
}
