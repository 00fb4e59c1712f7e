package expat

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/expat/expattest/testkit"
	"github.com/attested-tls/go-expat/verifier"
)

// BenchmarkLoad is the load harness of the robustness report (make report,
// section "Robustness under load"; issue #14 item 6). Each sub-benchmark is
// a scenario, run once per iteration (-benchtime 1x is the intended use),
// that fails (b.Fatal) when an invariant breaks — a corrupted or lost byte,
// a failed setup or re-attestation that should have succeeded, one that
// should have failed and did not, a call still blocked after twice its
// bound, a goroutine left behind once everything is closed — and otherwise
// reports its figures as metrics (the worst iteration's when there are
// several):
//
//	thousand            1,000 attested connections dialled at once through Listen/Dial,
//	                    each echoing a checked 4 KiB stream, all open together, then closed
//	churn               400 dial, attest, checked echo, close cycles, 4 at a time
//	storm               50 mutually attested connections whose ends re-attest each other
//	                    10 times while checked streams flow both ways
//	slow-attester       the server's Attester answers after 3 × the client's SetupTimeout
//	failing-attester    the server's Attester fails
//	stuck-attester      the server's Attester ignores ctx and never returns (until released)
//	slow-verifier       the client's Verifier answers after 3 × its SetupTimeout
//	failing-verifier    the client's Verifier is unavailable
//	rejecting-verifier  the client's Verifier trusts another key
//	stuck-verifier      the client's Verifier ignores ctx and never returns (until released)
//	silent-server       a TLS server that completes the handshake, then never sends
//	silent-client       TLS clients of a Listener that complete the handshake, then never
//	                    send, while a genuine client dials
//	silent-after-setup  an attested connection whose server then never answers: Attest, Close
//	not-reading         an attested connection whose server then stops reading, with a
//	                    Write blocked: Attest, Close
//
// Metrics: failures (setups or exchanges that failed), p50/p99-setup-ms,
// conn/s, leaked-goroutines (still running loadLeakWait after everything
// was closed), heap-growth-B/conn (live heap after close minus before,
// per connection), integrity-errors (stream directions whose bytes
// differed from what the peer wrote, or stopped short), failed-reattests,
// p50/max-reattest-ms, MB-checked; for the misbehaving parties
// expected-failures, unexpected-successes, wrong-errors (a failure of
// another kind than the scenario's), max-fail-ms and fail/bound (the
// slowest call's time over its configured bound); close/bound (Close's
// time over closeGrace); good-setup-ms (a genuine client's setup while
// silent peers hold theirs).
//
//	go test -run '^$' -bench 'BenchmarkLoad' -benchtime 1x ./expat
func BenchmarkLoad(b *testing.B) {
	p := newPKI(b)
	k := newKit(b)
	b.Run("thousand", func(b *testing.B) { loadThousand(b, p, k) })
	b.Run("churn", func(b *testing.B) { loadChurn(b, p, k) })
	b.Run("storm", func(b *testing.B) { loadStorm(b, p, k) })

	slow := *k.att
	slow.Delay = 3 * loadBound
	failing := *k.att
	failing.Err = errors.New("load test: attester failed")
	other := newKit(b)
	clientCfg := func(v verifier.Verifier) *Config {
		return &Config{RequirePeerAttestation: true, Verifier: v, SetupTimeout: loadBound}
	}
	serverCfg := func(a *testkit.Attester) *Config {
		return &Config{Attester: a, Certificate: &p.server, SetupTimeout: 4 * loadBound}
	}
	// Each scenario's parties, new for each iteration (a stuck party,
	// once released, stays free).
	fixed := func(scfg, ccfg *Config) func() (*Config, *Config, func()) {
		return func() (*Config, *Config, func()) { return scfg, ccfg, nil }
	}
	b.Run("slow-attester", func(b *testing.B) {
		loadFaults(b, p, timeoutErr, fixed(serverCfg(&slow), clientCfg(k.ver)))
	})
	b.Run("failing-attester", func(b *testing.B) {
		loadFaults(b, p, isErr(ErrPeerRefused), fixed(serverCfg(&failing), clientCfg(k.ver)))
	})
	b.Run("stuck-attester", func(b *testing.B) {
		loadFaults(b, p, timeoutErr, func() (*Config, *Config, func()) {
			st := newStubborn(b, k.att, nil)
			return &Config{Attester: st, Certificate: &p.server, SetupTimeout: 4 * loadBound}, clientCfg(k.ver), st.open
		})
	})
	b.Run("slow-verifier", func(b *testing.B) {
		loadFaults(b, p, timeoutErr, fixed(serverCfg(k.att), clientCfg(&faultyVerifier{inner: k.ver, delay: 3 * loadBound})))
	})
	b.Run("failing-verifier", func(b *testing.B) {
		down := &faultyVerifier{err: verifier.Unavailable(true, nil, "load test: verifier unreachable")}
		loadFaults(b, p, isErr(verifier.ErrUnavailable), fixed(serverCfg(k.att), clientCfg(down)))
	})
	b.Run("rejecting-verifier", func(b *testing.B) {
		loadFaults(b, p, isErr(verifier.ErrRejected), fixed(serverCfg(k.att), clientCfg(other.ver)))
	})
	b.Run("stuck-verifier", func(b *testing.B) {
		loadFaults(b, p, timeoutErr, func() (*Config, *Config, func()) {
			st := newStubborn(b, nil, k.ver)
			return serverCfg(k.att), clientCfg(st), st.open
		})
	})
	b.Run("silent-server", func(b *testing.B) { loadSilentServer(b, p, k) })
	b.Run("silent-client", func(b *testing.B) { loadSilentClient(b, p, k) })
	b.Run("silent-after-setup", func(b *testing.B) { loadSilentAfterSetup(b, p, k, false) })
	b.Run("not-reading", func(b *testing.B) { loadSilentAfterSetup(b, p, k, true) })
}

const (
	// loadBound is the configured bound of the misbehaving and silent
	// scenarios: the client's SetupTimeout, Attest's ctx.
	loadBound = 500 * time.Millisecond
	// loadHang: a call still blocked after loadHang times its bound is a
	// hang (b.Fatal).
	loadHang = 2
	// loadLeakWait is how long goroutines have to end after everything
	// was closed before those left count as leaked.
	loadLeakWait = 5 * time.Second
	// loadFaultSetups is how many setups the misbehaving scenarios run at
	// once.
	loadFaultSetups = 20
)

// loadMetrics keeps the worst value of each metric over a benchmark's
// iterations.
type loadMetrics map[string]float64

func (m loadMetrics) worst(unit string, v float64) {
	if old, ok := m[unit]; !ok || v > old {
		m[unit] = v
	}
}

func (m loadMetrics) report(b *testing.B) {
	for unit, v := range m {
		b.ReportMetric(v, unit)
	}
}

// loadStart collects garbage and returns the goroutine count and the live
// heap, the baseline of leakedAfter.
func loadStart() (goroutines int, heap uint64) {
	return runtime.NumGoroutine(), liveHeap()
}

// warmGoroutines has n goroutines exist at once, so that the runtime's
// pool of goroutine descriptors, which it keeps for reuse and never frees,
// already holds what a scenario needs: heap growth is then the library's.
func warmGoroutines(n int) {
	var wg sync.WaitGroup
	release := make(chan struct{})
	for range n {
		wg.Go(func() { <-release })
	}
	close(release)
	wg.Wait()
}

func liveHeap() uint64 {
	// Twice: sync.Pool contents survive one collection.
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// leakedAfter records the goroutines still running loadLeakWait after
// everything was closed (and fails b if there are any) and, for n > 0
// connections, the growth of the live heap per connection.
func leakedAfter(b *testing.B, m loadMetrics, goroutines int, heap uint64, n int) {
	b.Helper()
	left := goroutinesAbove(goroutines, loadLeakWait)
	m.worst("leaked-goroutines", float64(left))
	if left > 0 {
		b.Fatalf("%d goroutines left %v after everything was closed (%d before)\n%s", left, loadLeakWait, goroutines, goroutineDump())
	}
	if n > 0 {
		m.worst("heap-growth-B/conn", float64(int64(liveHeap())-int64(heap))/float64(n))
	}
}

// concurrently runs f(0), ..., f(n-1) at once and returns how long each
// took; it fails b if any is still running after limit.
func concurrently(b *testing.B, what string, n int, limit time.Duration, f func(i int)) []time.Duration {
	b.Helper()
	took := make([]time.Duration, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			t0 := time.Now()
			f(i)
			took[i] = time.Since(t0)
		})
	}
	close(start)
	timed(b, what, limit, wg.Wait)
	return took
}

// percentile returns the q-quantile (0..1) of d, in milliseconds.
func percentile(d []time.Duration, q float64) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[min(len(s)-1, int(q*float64(len(s))))].Microseconds()) / 1000
}

// expectFailures records calls that each had to fail with an error that
// want accepts, within bound, and fails b if one succeeded, failed
// otherwise, or took more than loadHang times bound.
func expectFailures(b *testing.B, m loadMetrics, what string, bound time.Duration, took []time.Duration, errs []error, want func(error) bool) {
	b.Helper()
	var expected, succeeded, wrong int
	var firstWrong error
	for _, err := range errs {
		switch {
		case err == nil:
			succeeded++
		case want(err):
			expected++
		default:
			wrong++
			if firstWrong == nil {
				firstWrong = err
			}
		}
	}
	slowest := slices.Max(took)
	m.worst("expected-failures", float64(expected))
	m.worst("unexpected-successes", float64(succeeded))
	m.worst("wrong-errors", float64(wrong))
	m.worst("max-fail-ms", float64(slowest.Microseconds())/1000)
	m.worst("fail/bound", slowest.Seconds()/bound.Seconds())
	switch {
	case succeeded > 0:
		b.Fatalf("%s: %d of %d succeeded, want all to fail", what, succeeded, len(errs))
	case wrong > 0:
		b.Fatalf("%s: %d of %d failed otherwise than expected, first: %v", what, wrong, len(errs), firstWrong)
	case slowest > loadHang*bound:
		b.Fatalf("%s: the slowest took %v, more than %d × its bound %v", what, slowest, loadHang, bound)
	}
}

// mix64 is SplitMix64's output function.
func mix64(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// stream is the checked data of the load scenarios: byte o of the stream
// of seed s is byte o%8 of mix64(s + o/8), so that a byte lost,
// duplicated, moved or altered anywhere shows.
type stream struct{ seed, off uint64 }

// fill writes the stream's next len(p) bytes into p.
func (s *stream) fill(p []byte) {
	o := s.off
	for i := 0; i < len(p); {
		w := mix64(s.seed+o/8) >> (8 * (o % 8))
		for k := o % 8; k < 8 && i < len(p); k++ {
			p[i] = byte(w)
			w >>= 8
			i++
			o++
		}
	}
	s.off = o
}

// check reports whether p is the stream's next len(p) bytes; scratch is at
// least as long as p.
func (s *stream) check(p, scratch []byte) bool {
	s.fill(scratch[:len(p)])
	return bytes.Equal(p, scratch[:len(p)])
}

// echoCheck writes size bytes of the stream of seed to c and checks that
// they come back.
func echoCheck(c net.Conn, seed uint64, size int) error {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	out := make([]byte, size)
	(&stream{seed: seed}).fill(out)
	if _, err := c.Write(out); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	in := make([]byte, size)
	if _, err := io.ReadFull(c, in); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if !bytes.Equal(in, out) {
		return errors.New("echo differs from what was written")
	}
	return nil
}

// echoAll accepts connections from l until it is closed and echoes each
// one's data until the peer ends it; wait returns once every connection's
// goroutine has ended.
func echoAll(l *Listener) (wait func()) {
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.AcceptConn()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				io.Copy(c, c)
			})
		}
	})
	return wg.Wait
}

// acceptAll hands every connection l accepts to the channel it returns
// (of capacity n), which is closed once l is.
func acceptAll(l *Listener, n int) <-chan *Conn {
	ch := make(chan *Conn, n)
	go func() {
		defer close(ch)
		for {
			c, err := l.AcceptConn()
			if err != nil {
				return
			}
			ch <- c
		}
	}()
	return ch
}

// loadServer is Listen on loopback with the test kit attesting the server.
func loadServer(b *testing.B, p *pki, cfg *Config) *Listener {
	b.Helper()
	l, err := Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{p.server}}, cfg)
	if err != nil {
		b.Fatal(err)
	}
	return l
}

func loadThousand(b *testing.B, p *pki, k *kit) {
	const n, size = 1000, 4 << 10
	m := loadMetrics{}
	ccfg := &Config{RequirePeerAttestation: true, Verifier: k.ver}
	for b.Loop() {
		warmGoroutines(10 * n)
		goroutines, heap := loadStart()
		l := loadServer(b, p, &Config{Attester: k.att, Certificate: &p.server})
		wait := echoAll(l)
		clients := make([]*Conn, n)
		errs := make([]error, n)
		setup := make([]time.Duration, n)
		// Every connection stays open until all have been set up and
		// have exchanged their data.
		concurrently(b, "1,000 setups and exchanges", n, 3*time.Minute, func(i int) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			t0 := time.Now()
			c, err := DialContext(ctx, "tcp", l.Addr().String(), dialConfig(p), ccfg)
			setup[i] = time.Since(t0)
			if err != nil {
				errs[i] = err
				return
			}
			clients[i] = c
			if c.PeerAttestation() == nil {
				errs[i] = errors.New("Dial returned an unattested connection")
				return
			}
			errs[i] = echoCheck(c, uint64(i), size)
		})
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
		l.Close()
		timed(b, "server goroutines", time.Minute, wait)
		failures := 0
		var first error
		for _, err := range errs {
			if err != nil {
				failures++
				if first == nil {
					first = err
				}
			}
		}
		m.worst("failures", float64(failures))
		m.worst("p50-setup-ms", percentile(setup, 0.5))
		m.worst("p99-setup-ms", percentile(setup, 0.99))
		if failures > 0 {
			b.Fatalf("%d of %d connections failed, first: %v", failures, n, first)
		}
		leakedAfter(b, m, goroutines, heap, n)
	}
	m.report(b)
}

func loadChurn(b *testing.B, p *pki, k *kit) {
	const n, workers, size = 400, 4, 1 << 10
	m := loadMetrics{}
	ccfg := &Config{RequirePeerAttestation: true, Verifier: k.ver}
	for b.Loop() {
		goroutines, heap := loadStart()
		l := loadServer(b, p, &Config{Attester: k.att, Certificate: &p.server})
		wait := echoAll(l)
		var failures atomic.Int32
		var first atomic.Value
		fail := func(err error) {
			failures.Add(1)
			first.CompareAndSwap(nil, err)
		}
		t0 := time.Now()
		concurrently(b, "churn", workers, 3*time.Minute, func(w int) {
			for j := range n / workers {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				c, err := DialContext(ctx, "tcp", l.Addr().String(), dialConfig(p), ccfg)
				cancel()
				if err != nil {
					fail(err)
					continue
				}
				if att := c.PeerAttestation(); att == nil || att.Seq != 1 {
					fail(fmt.Errorf("attestation %+v after Dial, want Seq 1", att))
				} else if err := echoCheck(c, uint64(w*n+j), size); err != nil {
					fail(err)
				}
				c.Close()
			}
		})
		elapsed := time.Since(t0)
		l.Close()
		timed(b, "server goroutines", time.Minute, wait)
		m.worst("failures", float64(failures.Load()))
		m.worst("conn/s", -float64(n)/elapsed.Seconds()) // negated: worst is slowest
		if failures.Load() > 0 {
			b.Fatalf("%d of %d cycles failed, first: %v", failures.Load(), n, first.Load())
		}
		leakedAfter(b, m, goroutines, heap, n)
	}
	m["conn/s"] = -m["conn/s"]
	m.report(b)
}

// storm chunk sizes: below, at and above one DATA frame, and odd.
var stormChunks = []int{1, 777, maxDataPayload, maxDataPayload + 1, 64<<10 + 3, 250_000}

func loadStorm(b *testing.B, p *pki, k *kit) {
	const pairs, rounds, flood = 50, 10, 1 << 20
	m := loadMetrics{}
	ck := newKit(b)
	stls := &tls.Config{Certificates: []tls.Certificate{p.server}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: p.roots}
	scfg := &Config{Attester: k.att, Certificate: &p.server, RequirePeerAttestation: true, Verifier: ck.ver, PeerRequestInterval: time.Nanosecond}
	ctls := dialConfig(p)
	ctls.Certificates = []tls.Certificate{p.client}
	ccfg := &Config{Attester: ck.att, Certificate: &p.client, RequirePeerAttestation: true, Verifier: k.ver, PeerRequestInterval: time.Nanosecond}
	for b.Loop() {
		goroutines, _ := loadStart()
		l, err := Listen("tcp", "127.0.0.1:0", stls, scfg)
		if err != nil {
			b.Fatal(err)
		}
		accepted := acceptAll(l, pairs)
		// ends[2i] is a client, ends[2i+1] its server.
		ends := make([]*Conn, 2*pairs)
		concurrently(b, "storm setups", pairs, 2*time.Minute, func(i int) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c, err := DialContext(ctx, "tcp", l.Addr().String(), ctls, ccfg)
			if err != nil {
				b.Errorf("Dial: %v", err)
				return
			}
			ends[2*i] = c
		})
		if b.Failed() {
			b.FailNow()
		}
		byAddr := map[string]*Conn{}
		for range pairs {
			select {
			case c := <-accepted:
				byAddr[c.RemoteAddr().String()] = c
			case <-time.After(time.Minute):
				b.Fatalf("%d of %d server connections", len(byAddr), pairs)
			}
		}
		for i := range pairs {
			s := byAddr[ends[2*i].LocalAddr().String()]
			if s == nil {
				b.Fatalf("no server end for client %v", ends[2*i].LocalAddr())
			}
			ends[2*i+1] = s
		}

		var attests sync.WaitGroup
		attested := make(chan struct{})
		var mu sync.Mutex
		var lat []time.Duration
		var failed int
		var firstFail error
		written := make([]int64, len(ends))
		got := make([]int64, len(ends))
		bad := make([]error, len(ends))
		var flows sync.WaitGroup
		for i, e := range ends {
			attests.Go(func() {
				for range rounds {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					t0 := time.Now()
					_, err := e.Attest(ctx)
					d := time.Since(t0)
					cancel()
					mu.Lock()
					lat = append(lat, d)
					if err != nil {
						failed++
						if firstFail == nil {
							firstFail = err
						}
					}
					mu.Unlock()
				}
			})
			flows.Go(func() { written[i] = stormWrite(e, uint64(i)+1, flood, attested) })
			flows.Go(func() { got[i], bad[i] = stormRead(e) })
		}
		attests.Wait()
		close(attested)
		timed(b, "storm streams", 2*time.Minute, flows.Wait)

		integrity := 0
		var checked int64
		var firstBad error
		for i := range ends {
			peer := i ^ 1
			checked += got[i]
			if bad[i] == nil && got[i] != written[peer] {
				bad[i] = fmt.Errorf("%d bytes read, %d written", got[i], written[peer])
			}
			if bad[i] != nil {
				integrity++
				if firstBad == nil {
					firstBad = bad[i]
				}
			}
		}
		for _, e := range ends {
			if att := e.PeerAttestation(); att == nil || att.Seq != 1+rounds {
				failed++
				if firstFail == nil {
					firstFail = fmt.Errorf("latest attestation %+v, want Seq %d", att, 1+rounds)
				}
			}
		}
		for _, e := range ends {
			e.Close()
		}
		l.Close()
		m.worst("integrity-errors", float64(integrity))
		m.worst("failed-reattests", float64(failed))
		m.worst("p50-reattest-ms", percentile(lat, 0.5))
		m.worst("max-reattest-ms", percentile(lat, 1))
		m.worst("MB-checked", -float64(checked)/1e6) // negated: worst is least
		if integrity > 0 {
			b.Fatalf("%d of %d stream directions corrupted or cut, first: %v", integrity, len(ends), firstBad)
		}
		if failed > 0 {
			b.Fatalf("%d of %d re-attestations failed, first: %v", failed, len(ends)*rounds, firstFail)
		}
		leakedAfter(b, m, goroutines, 0, 0)
	}
	m["MB-checked"] = -m["MB-checked"]
	m.report(b)
}

// stormWrite writes seed (8 bytes), then the stream of seed in chunks of
// every size of stormChunks, at least flood bytes and until stop is
// closed, then ends its side of the connection; it returns the stream
// bytes written. Past flood it slows to a chunk of at most 4 KiB every
// 5 ms: data keeps flowing while the re-attestations finish, without
// starving them.
func stormWrite(c *Conn, seed uint64, flood int64, stop <-chan struct{}) int64 {
	s := &stream{seed: seed}
	buf := make([]byte, slices.Max(stormChunks))
	var n int64
	if _, err := c.Write(binary.LittleEndian.AppendUint64(nil, seed)); err != nil {
		return 0
	}
	for i := 0; ; i++ {
		size := stormChunks[i%len(stormChunks)]
		if n >= flood {
			select {
			case <-stop:
				c.CloseWrite()
				return n
			case <-time.After(5 * time.Millisecond):
			}
			size = min(size, 4<<10)
		}
		p := buf[:size]
		s.fill(p)
		w, err := c.Write(p)
		n += int64(w)
		if err != nil {
			return n
		}
	}
}

// stormRead reads the peer's seed and checks its stream until io.EOF; it
// returns the stream bytes that matched until then and, if they were not
// all, why.
func stormRead(c *Conn) (int64, error) {
	var hdr [8]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return 0, fmt.Errorf("reading the seed: %w", err)
	}
	s := &stream{seed: binary.LittleEndian.Uint64(hdr[:])}
	buf := make([]byte, 64<<10)
	scratch := make([]byte, len(buf))
	var n int64
	for {
		r, err := c.Read(buf)
		if r > 0 {
			if !s.check(buf[:r], scratch) {
				// Drain the rest, so that the peer's writer is not
				// left blocked behind us.
				io.Copy(io.Discard, c)
				return n, fmt.Errorf("bytes %d to %d differ from the stream", n, n+int64(r))
			}
			n += int64(r)
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// faultyVerifier is a Verifier that misbehaves on purpose, as a remote
// verifier under trouble does: it fails with err, or delegates to inner
// only after delay (giving up with ctx). It fails closed: the only Results
// it returns are inner's.
type faultyVerifier struct {
	inner verifier.Verifier
	delay time.Duration
	err   error
}

var _ verifier.Verifier = (*faultyVerifier)(nil)

func (v *faultyVerifier) Verify(ctx context.Context, cmw []byte, exp *verifier.Expected) (*verifier.Result, error) {
	if v.delay > 0 {
		t := time.NewTimer(v.delay)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return nil, verifier.Unavailable(true, ctx.Err(), "load test: slow verifier")
		case <-t.C:
		}
	}
	if v.err != nil {
		return nil, v.err
	}
	if v.inner == nil {
		return nil, verifier.Unavailable(false, nil, "load test: no verifier")
	}
	return v.inner.Verify(ctx, cmw, exp)
}

// loadFaults dials loadFaultSetups connections at once to a Listener
// with the server Config that parties returns, each with its client
// Config, all of which must fail with an error that want accepts within
// the client's SetupTimeout; release, if not nil, frees a stuck party once
// they have.
func loadFaults(b *testing.B, p *pki, want func(error) bool, parties func() (scfg, ccfg *Config, release func())) {
	m := loadMetrics{}
	for b.Loop() {
		scfg, ccfg, release := parties()
		goroutines, _ := loadStart()
		l := loadServer(b, p, scfg)
		// Server ends stay open until every dial has returned, so that
		// what ends a client's setup is the fault, not a closed peer.
		servers := acceptAll(l, loadFaultSetups)
		errs := make([]error, loadFaultSetups)
		took := concurrently(b, "setups", loadFaultSetups, loadHang*ccfg.SetupTimeout+10*time.Second, func(i int) {
			c, err := DialContext(context.Background(), "tcp", l.Addr().String(), dialConfig(p), ccfg)
			if err == nil {
				c.Close()
			}
			errs[i] = err
		})
		if release != nil {
			release()
		}
		l.Close()
		for c := range servers {
			c.Close()
		}
		expectFailures(b, m, "Dial", ccfg.SetupTimeout, took, errs, want)
		leakedAfter(b, m, goroutines, 0, 0)
	}
	m.report(b)
}

// loadSilentServer dials a TLS server that completes the handshake, reads
// what it gets and never sends.
func loadSilentServer(b *testing.B, p *pki, k *kit) {
	m := loadMetrics{}
	ccfg := &Config{RequirePeerAttestation: true, Verifier: k.ver, SetupTimeout: loadBound}
	for b.Loop() {
		goroutines, _ := loadStart()
		ln, err := tls.Listen("tcp", "127.0.0.1:0", ServerTLSConfig(&tls.Config{Certificates: []tls.Certificate{p.server}}))
		if err != nil {
			b.Fatal(err)
		}
		var peers sync.WaitGroup
		peers.Go(func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				peers.Go(func() {
					defer c.Close()
					c.SetDeadline(time.Now().Add(time.Minute))
					io.Copy(io.Discard, c)
				})
			}
		})
		errs := make([]error, loadFaultSetups)
		took := concurrently(b, "Dial to a silent server", loadFaultSetups, loadHang*loadBound+10*time.Second, func(i int) {
			c, err := DialContext(context.Background(), "tcp", ln.Addr().String(), dialConfig(p), ccfg)
			if err == nil {
				c.Close()
			}
			errs[i] = err
		})
		ln.Close()
		timed(b, "silent server goroutines", time.Minute, peers.Wait)
		expectFailures(b, m, "Dial", loadBound, took, errs, timeoutErr)
		leakedAfter(b, m, goroutines, 0, 0)
	}
	m.report(b)
}

// loadSilentClient has TLS clients complete the handshake with a Listener
// and then send nothing; the Listener must drop each at its SetupTimeout,
// never hand one to Accept, and set up a genuine client meanwhile at once.
func loadSilentClient(b *testing.B, p *pki, k *kit) {
	m := loadMetrics{}
	for b.Loop() {
		goroutines, _ := loadStart()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		// The Listener's bound runs from its Accept of the TCP
		// connection: its setup failures are timed from then.
		inner := &acceptTimes{Listener: ln, at: map[string]time.Time{}}
		var mu sync.Mutex
		var setupErrs []error
		var dropped []time.Duration
		l, err := NewListener(inner, &tls.Config{Certificates: []tls.Certificate{p.server}},
			&Config{Attester: k.att, Certificate: &p.server, SetupTimeout: loadBound},
			&ListenerConfig{OnSetupError: func(remote net.Addr, err error) {
				d := inner.since(remote)
				mu.Lock()
				setupErrs = append(setupErrs, err)
				dropped = append(dropped, d)
				mu.Unlock()
			}})
		if err != nil {
			b.Fatal(err)
		}
		accepted := acceptAll(l, loadFaultSetups+1)
		// Each silent client waits until the server has closed the
		// connection on it (a hang if it never does).
		errs := make([]error, loadFaultSetups)
		var shook sync.WaitGroup
		shook.Add(loadFaultSetups)
		var good time.Duration
		var goodConn *Conn
		var goodErr error
		concurrently(b, "silent clients", loadFaultSetups+1, loadHang*loadBound+10*time.Second, func(i int) {
			if i == loadFaultSetups {
				// The genuine client, once the silent ones hold
				// their setups.
				shook.Wait()
				t0 := time.Now()
				// Kept open until Accept has returned its server end.
				goodConn, goodErr = Dial("tcp", l.Addr().String(), dialConfig(p), &Config{RequirePeerAttestation: true, Verifier: k.ver})
				good = time.Since(t0)
				return
			}
			raw, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				shook.Done()
				errs[i] = err
				return
			}
			defer raw.Close()
			tc := tls.Client(raw, ClientTLSConfig(dialConfig(p)))
			err = tc.Handshake()
			shook.Done()
			if err != nil {
				errs[i] = err
				return
			}
			tc.SetReadDeadline(time.Now().Add(loadHang*loadBound + 5*time.Second))
			_, err = io.Copy(io.Discard, tc)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				errs[i] = fmt.Errorf("the server never closed the connection: %w", err)
			}
		})
		l.Close()
		var silentAccepted int
		for c := range accepted {
			silentAccepted++
			c.Close()
		}
		silentAccepted-- // the genuine client's
		if goodConn != nil {
			goodConn.Close()
		}
		mu.Lock()
		timedOut := 0
		var firstWrong error
		for _, err := range setupErrs {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
				timedOut++
			} else if firstWrong == nil {
				firstWrong = err
			}
		}
		slowest := slices.Max(append(dropped, 0))
		mu.Unlock()
		for _, err := range errs {
			if err != nil && firstWrong == nil {
				firstWrong = err
			}
		}
		m.worst("expected-failures", float64(timedOut))
		m.worst("unexpected-successes", float64(max(0, silentAccepted)))
		m.worst("wrong-errors", float64(loadFaultSetups-timedOut))
		m.worst("max-fail-ms", float64(slowest.Microseconds())/1000)
		m.worst("fail/bound", slowest.Seconds()/loadBound.Seconds())
		m.worst("good-setup-ms", float64(good.Microseconds())/1000)
		switch {
		case goodErr != nil:
			b.Fatalf("the genuine client: %v", goodErr)
		case silentAccepted < 0:
			b.Fatal("Accept never returned the genuine client")
		case silentAccepted > 0:
			b.Fatalf("Accept returned %d silent clients", silentAccepted)
		case timedOut != loadFaultSetups:
			b.Fatalf("%d silent clients dropped at the setup deadline, want %d; first other outcome: %v", timedOut, loadFaultSetups, firstWrong)
		case slowest > loadHang*loadBound:
			b.Fatalf("a silent client was dropped after %v, more than %d × the bound %v", slowest, loadHang, loadBound)
		case good >= loadBound:
			b.Fatalf("the genuine client's setup took %v behind silent clients, want well under their %v", good, loadBound)
		}
		leakedAfter(b, m, goroutines, 0, 0)
	}
	m.report(b)
}

// acceptTimes is a net.Listener that records when it accepted each
// connection, by remote address.
type acceptTimes struct {
	net.Listener
	mu sync.Mutex
	at map[string]time.Time
}

func (l *acceptTimes) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.at[c.RemoteAddr().String()] = time.Now()
		l.mu.Unlock()
	}
	return c, err
}

// since is the time since the connection from remote was accepted.
func (l *acceptTimes) since(remote net.Addr) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Since(l.at[remote.String()])
}

// loadSilentAfterSetup sets up attested connections to raw servers that
// then never answer again (and, notReading, stop reading too, with a
// Write of ours blocked behind them): Attest must fail at its ctx's bound
// and Close return within closeGrace.
func loadSilentAfterSetup(b *testing.B, p *pki, k *kit, notReading bool) {
	const n = 10
	m := loadMetrics{}
	for b.Loop() {
		goroutines, _ := loadStart()
		conns := make([]*Conn, n)
		peers := make([]*rawPeer, n)
		var bg sync.WaitGroup
		writes := make(chan error, n)
		blocked := make([]byte, 8<<20) // far more than the socket buffers
		for i := range n {
			conns[i], peers[i] = clientWithSilentServer(b, p, k, &Config{})
			if notReading {
				// Small socket buffers: the Write blocks after a few
				// frames, not after megabytes of encryption that would
				// compete with the Attest calls for the CPU.
				if tcp, ok := peers[i].tc.NetConn().(*net.TCPConn); ok {
					tcp.SetReadBuffer(4 << 10)
				}
				if tcp, ok := conns[i].NetConn().NetConn().(*net.TCPConn); ok {
					tcp.SetWriteBuffer(4 << 10)
				}
				bg.Go(func() {
					_, err := conns[i].Write(blocked)
					writes <- err
				})
			} else {
				bg.Go(func() { peers[i].drain() })
			}
		}
		if notReading {
			// Let the Writes fill the socket buffers.
			time.Sleep(200 * time.Millisecond)
		}
		errs := make([]error, n)
		took := concurrently(b, "Attest", n, loadHang*loadBound+10*time.Second, func(i int) {
			ctx, cancel := context.WithTimeout(context.Background(), loadBound)
			defer cancel()
			_, errs[i] = conns[i].Attest(ctx)
		})
		closed := concurrently(b, "Close", n, loadHang*closeGrace+10*time.Second, func(i int) { conns[i].Close() })
		if notReading {
			for range n {
				select {
				case err := <-writes:
					if err == nil {
						b.Fatal("a Write blocked on a peer that does not read succeeded after Close")
					}
				case <-time.After(loadHang * closeGrace):
					b.Fatal("a Write blocked on a peer that does not read still blocked after Close")
				}
			}
		}
		for _, pr := range peers {
			pr.tc.Close()
		}
		timed(b, "raw peers", time.Minute, bg.Wait)
		want := timeoutErr
		if notReading {
			// Behind the blocked Write the request is never sent, and
			// the connection is left as it was.
			want = func(err error) bool { return timeoutErr(err) && errors.Is(err, ErrNotSent) }
		}
		expectFailures(b, m, "Attest", loadBound, took, errs, want)
		slowClose := slices.Max(closed)
		m.worst("close/bound", slowClose.Seconds()/closeGrace.Seconds())
		if slowClose > loadHang*closeGrace {
			b.Fatalf("Close took %v, more than %d × closeGrace", slowClose, loadHang)
		}
		leakedAfter(b, m, goroutines, 0, 0)
	}
	m.report(b)
}

// The load scenarios' stream check sees a byte altered, lost, duplicated
// or moved, whatever the chunking.
func TestLoadStream(t *testing.T) {
	const n = 3000
	whole := make([]byte, n)
	(&stream{seed: 7}).fill(whole)
	var parts []byte
	s := &stream{seed: 7}
	for _, size := range []int{1, 7, 8, 9, 777, n - 802} {
		p := make([]byte, size)
		s.fill(p)
		parts = append(parts, p...)
	}
	if !bytes.Equal(parts, whole) {
		t.Fatal("the stream depends on how it is chunked")
	}
	scratch := make([]byte, n)
	if !(&stream{seed: 7}).check(whole, scratch) {
		t.Fatal("the stream does not check against itself")
	}
	moved := slices.Clone(whole)
	copy(moved[100:108], whole[108:116])
	copy(moved[108:116], whole[100:108])
	for name, bad := range map[string][]byte{
		"altered":    append(append(slices.Clone(whole[:500]), whole[500]^1), whole[501:]...),
		"lost":       append(slices.Clone(whole[:500]), whole[501:]...),
		"duplicated": append(slices.Clone(whole[:501]), whole[500:n-1]...),
		"moved":      moved,
		"other seed": func() []byte { o := make([]byte, n); (&stream{seed: 8}).fill(o); return o }(),
	} {
		if (&stream{seed: 7}).check(bad, scratch) {
			t.Errorf("%s: passed the check", name)
		}
	}
}
