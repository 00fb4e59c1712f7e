package expat

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkConcurrentSetup measures the cost of n connections set up at
// once through one listener, plain TLS 1.3 against server attestation with
// the test kit, for n = 1, 10, 100 and 1,000 (both ends in this process,
// over loopback TCP). Each iteration dials n connections concurrently,
// waits until the server has accepted all of them, then closes them. It
// reports:
//
//	ns/conn        wall time of the whole batch divided by n
//	p50-setup-ms   median time from Dial to a completed setup (client side)
//	cpu-ns/conn    user+system CPU of the process (getrusage) per connection
//	B/pair         heap and stack held per open pair (both ends), with all
//	               n open
//
// Compare kind=tls and kind=attested at the same n:
//
//	go test -run '^$' -bench 'ConcurrentSetup' -benchtime 3x ./expat
func BenchmarkConcurrentSetup(b *testing.B) {
	p := newPKI(b)
	k := newKit(b)
	for _, n := range []int{1, 10, 100, 1000} {
		for _, kind := range []string{"tls", "attested"} {
			b.Run(fmt.Sprintf("kind=%s/n=%d", kind, n), func(b *testing.B) {
				benchConcurrentSetup(b, p, k, kind == "attested", n)
			})
		}
	}
}

// scaleServer is a listener whose accepted connections have completed
// their TLS handshake (and, attested, their setup).
type scaleServer struct {
	ln       net.Listener
	accepted chan net.Conn
	dial     func(ctx context.Context) (net.Conn, error)
}

func newScaleServer(b *testing.B, p *pki, k *kit, attested bool, n int) *scaleServer {
	s := &scaleServer{accepted: make(chan net.Conn, n)}
	addr := ""
	if attested {
		l, err := Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{p.server}},
			&Config{Attester: k.att, Certificate: &p.server})
		if err != nil {
			b.Fatal(err)
		}
		s.ln, addr = l, l.Addr().String()
		go func() {
			for {
				c, err := l.AcceptConn()
				if err != nil {
					return
				}
				s.accepted <- c
			}
		}()
		ccfg := &Config{RequirePeerAttestation: true, Verifier: k.ver}
		s.dial = func(ctx context.Context) (net.Conn, error) {
			return DialContext(ctx, "tcp", addr, dialConfig(p), ccfg)
		}
	} else {
		l, err := tls.Listen("tcp", "127.0.0.1:0", ServerTLSConfig(&tls.Config{Certificates: []tls.Certificate{p.server}}))
		if err != nil {
			b.Fatal(err)
		}
		s.ln, addr = l, l.Addr().String()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
					defer cancel()
					if err := c.(*tls.Conn).HandshakeContext(ctx); err != nil {
						c.Close()
						return
					}
					s.accepted <- c
				}()
			}
		}()
		ccfg := ClientTLSConfig(dialConfig(p))
		s.dial = func(ctx context.Context) (net.Conn, error) {
			d := &tls.Dialer{Config: ccfg}
			return d.DialContext(ctx, "tcp", addr)
		}
	}
	b.Cleanup(func() { s.ln.Close() })
	return s
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchConcurrentSetup(b *testing.B, p *pki, k *kit, attested bool, n int) {
	s := newScaleServer(b, p, k, attested, n)
	var wall, cpu time.Duration
	var lat []time.Duration
	var mem float64
	rounds := 0
	for b.Loop() {
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		clients := make([]net.Conn, n)
		errs := make([]error, n)
		took := make([]time.Duration, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				t0 := time.Now()
				clients[i], errs[i] = s.dial(ctx)
				took[i] = time.Since(t0)
			})
		}
		c0, t0 := cpuTime(), time.Now()
		close(start)
		wg.Wait()
		servers := make([]net.Conn, 0, n)
		for range n {
			select {
			case c := <-s.accepted:
				servers = append(servers, c)
			case <-time.After(60 * time.Second):
				b.Fatalf("%d server connections of %d", len(servers), n)
			}
		}
		wall += time.Since(t0)
		cpu += cpuTime() - c0
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		lat = append(lat, took...)
		runtime.GC()
		runtime.ReadMemStats(&m1)
		mem += float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc)+int64(m1.StackInuse)-int64(m0.StackInuse)) / float64(n)
		runtime.KeepAlive(clients)
		for _, c := range clients {
			c.Close()
		}
		for _, c := range servers {
			c.Close()
		}
		rounds++
	}
	slices.Sort(lat)
	total := float64(rounds * n)
	b.ReportMetric(float64(wall.Nanoseconds())/total, "ns/conn")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-setup-ms")
	b.ReportMetric(float64(cpu.Nanoseconds())/total, "cpu-ns/conn")
	b.ReportMetric(mem/float64(rounds), "B/pair")
}
