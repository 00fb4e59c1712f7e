package expat

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Benchmarks of the server helpers, meant to be read as ratios within one
// run:
//
//	BenchmarkChurnTLS            new TCP + TLS 1.3 handshake + one byte each way + close
//	BenchmarkChurnAttested       the same through Listen/Dial with server attestation (test kit)
//	BenchmarkChurnMutual         ... with mutual attestation (client certificates on both sides)
//	BenchmarkThousandConcurrent  1,000 Dials at once through one Listener: failures,
//	                             peak RSS, heap+stack per idle attested pair

// churn runs dial-exchange-close loops against srv's address.
func churn(b *testing.B, addr string, dial func() (net.Conn, error)) {
	b.Helper()
	one := []byte{1}
	for b.Loop() {
		c, err := dial()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Write(one); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Read(one); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "conn/s")
}

// echoOne serves one byte back on every accepted connection.
func echoOne(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			b := []byte{0}
			if _, err := c.Read(b); err == nil {
				c.Write(b)
			}
		}()
	}
}

func BenchmarkChurnTLS(b *testing.B) {
	p := newPKI(b)
	l, err := tls.Listen("tcp", "127.0.0.1:0", ServerTLSConfig(&tls.Config{Certificates: []tls.Certificate{p.server}}))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go echoOne(l)
	ccfg := ClientTLSConfig(dialConfig(p))
	churn(b, l.Addr().String(), func() (net.Conn, error) { return tls.Dial("tcp", l.Addr().String(), ccfg) })
}

func BenchmarkChurnAttested(b *testing.B) {
	p := newPKI(b)
	k := newKit(b)
	l, err := Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{p.server}},
		&Config{Attester: k.att, Certificate: &p.server})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go echoOne(l)
	ccfg := &Config{RequirePeerAttestation: true, Verifier: k.ver}
	churn(b, l.Addr().String(), func() (net.Conn, error) { return Dial("tcp", l.Addr().String(), dialConfig(p), ccfg) })
}

func BenchmarkChurnMutualTLS(b *testing.B) {
	p := newPKI(b)
	scfg := ServerTLSConfig(&tls.Config{Certificates: []tls.Certificate{p.server}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: p.roots})
	l, err := tls.Listen("tcp", "127.0.0.1:0", scfg)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go echoOne(l)
	ccfg := ClientTLSConfig(dialConfig(p))
	ccfg.Certificates = []tls.Certificate{p.client}
	churn(b, l.Addr().String(), func() (net.Conn, error) { return tls.Dial("tcp", l.Addr().String(), ccfg) })
}

func BenchmarkChurnMutual(b *testing.B) {
	p := newPKI(b)
	sk, ck := newKit(b), newKit(b)
	scfg := &tls.Config{Certificates: []tls.Certificate{p.server}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: p.roots}
	l, err := Listen("tcp", "127.0.0.1:0", scfg,
		&Config{Attester: sk.att, Certificate: &p.server, RequirePeerAttestation: true, Verifier: ck.ver})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go echoOne(l)
	tcfg := dialConfig(p)
	tcfg.Certificates = []tls.Certificate{p.client}
	ccfg := &Config{Attester: ck.att, Certificate: &p.client, RequirePeerAttestation: true, Verifier: sk.ver}
	churn(b, l.Addr().String(), func() (net.Conn, error) { return Dial("tcp", l.Addr().String(), tcfg, ccfg) })
}

// peakRSS returns the process's peak resident set size (VmHWM), in bytes.
func peakRSS() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb * 1024
		}
	}
	return 0
}

func BenchmarkThousandConcurrent(b *testing.B) {
	p := newPKI(b)
	k := newKit(b)
	const n = 1000
	for b.Loop() {
		l, err := Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{p.server}},
			&Config{Attester: k.att, Certificate: &p.server})
		if err != nil {
			b.Fatal(err)
		}
		server := acceptAll(l, n)
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		clients := make([]*Conn, n)
		var failures atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		ccfg := &Config{RequirePeerAttestation: true, Verifier: k.ver}
		for i := range n {
			wg.Go(func() {
				<-start
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				c, err := DialContext(ctx, "tcp", l.Addr().String(), dialConfig(p), ccfg)
				if err != nil {
					failures.Add(1)
					return
				}
				clients[i] = c
			})
		}
		t0 := time.Now()
		close(start)
		wg.Wait()
		setup := time.Since(t0)
		got := 0
		var servers []*Conn
		for got < n-int(failures.Load()) {
			select {
			case c := <-server:
				servers = append(servers, c)
				got++
			case <-time.After(30 * time.Second):
				b.Fatalf("%d server connections of %d", got, n)
			}
		}
		time.Sleep(100 * time.Millisecond)
		runtime.GC()
		runtime.ReadMemStats(&m1)
		perPair := float64(m1.HeapAlloc-m0.HeapAlloc+(m1.StackInuse-m0.StackInuse)) / float64(got)
		b.ReportMetric(float64(failures.Load()), "failures")
		b.ReportMetric(setup.Seconds()*1000, "ms/1000-setups")
		b.ReportMetric(peakRSS()/(1<<20), "MiB-peak-RSS")
		b.ReportMetric(perPair, "B/idle-pair")
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
		for _, c := range servers {
			c.Close()
		}
		l.Close()
	}
}
