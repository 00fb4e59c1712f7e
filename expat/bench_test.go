package expat

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"runtime"
	"testing"
	"time"
)

// Benchmarks, meant to be compared within one run (ratios):
//
//	BenchmarkHandshakeTLS          plain TLS 1.3 handshake, P-256, both sides
//	BenchmarkSetupMutualAttested   the same handshake + mutual attestation
//	                               with the test kit (one extra round trip)
//	BenchmarkThroughputTLS         bulk data over a bare tls.Conn
//	BenchmarkThroughputAttested    bulk data over an attested Conn
//	BenchmarkIdleConnMemory        heap per idle connection pair, plain vs attested

func pipeTLS(b *testing.B, p *pki, clientCert bool) (*tls.Conn, *tls.Conn) {
	a, c := net.Pipe()
	scfg := ServerTLSConfig(&tls.Config{Certificates: []tls.Certificate{p.server}})
	ccfg := ClientTLSConfig(&tls.Config{RootCAs: p.roots, ServerName: p.serverName})
	if clientCert {
		scfg.ClientAuth = tls.RequireAndVerifyClientCert
		scfg.ClientCAs = p.roots
		ccfg.Certificates = []tls.Certificate{p.client}
	}
	srv, cli := tls.Server(a, scfg), tls.Client(c, ccfg)
	// Closing ends the pipe itself: a TLS close_notify on a synchronous
	// pipe nobody reads would block and distort the figures.
	b.Cleanup(func() { a.Close(); c.Close() })
	errc := make(chan error, 1)
	go func() { errc <- srv.Handshake() }()
	if err := cli.Handshake(); err != nil {
		b.Fatal(err)
	}
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	return srv, cli
}

func BenchmarkHandshakeTLS(b *testing.B) {
	p := newPKI(b)
	b.ReportAllocs()
	for b.Loop() {
		srv, cli := pipeTLS(b, p, true)
		srv.NetConn().Close()
		cli.NetConn().Close()
	}
}

func BenchmarkSetupMutualAttested(b *testing.B) {
	p := newPKI(b)
	sk, ck := newKit(b), newKit(b)
	scfg := &Config{Attester: sk.att, Certificate: &p.server, RequirePeerAttestation: true, Verifier: ck.ver}
	ccfg := &Config{Attester: ck.att, Certificate: &p.client, RequirePeerAttestation: true, Verifier: sk.ver}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		srv, cli := pipeTLS(b, p, true)
		s, err := Server(srv, scfg)
		if err != nil {
			b.Fatal(err)
		}
		c, err := Client(cli, ccfg)
		if err != nil {
			b.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { errc <- s.Handshake(ctx) }()
		if err := c.Handshake(ctx); err != nil {
			b.Fatal(err)
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
		srv.NetConn().Close()
		cli.NetConn().Close()
		s.Close()
		c.Close()
	}
}

const throughputChunk = 1 << 20

func benchThroughput(b *testing.B, w io.Writer, r io.Reader) {
	buf := make([]byte, throughputChunk)
	done := make(chan error, 1)
	go func() {
		rb := make([]byte, 64<<10)
		total := 0
		want := b.N * throughputChunk
		for total < want {
			n, err := r.Read(rb)
			total += n
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	b.SetBytes(throughputChunk)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := w.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

func BenchmarkThroughputTLS(b *testing.B) {
	p := newPKI(b)
	srv, cli := tlsPair(b, p, tlsOpts{})
	benchThroughput(b, cli, srv)
}

func BenchmarkThroughputAttested(b *testing.B) {
	p := newPKI(b)
	k := newKit(b)
	srv, cli := tlsPair(b, p, tlsOpts{})
	s, c, serr, cerr := attestedPair(b, srv, cli,
		&Config{Attester: k.att, Certificate: &p.server},
		&Config{RequirePeerAttestation: true, Verifier: k.ver})
	if serr != nil || cerr != nil {
		b.Fatal(serr, cerr)
	}
	benchThroughput(b, c, s)
}

// BenchmarkIdleConnMemory reports the heap held per idle connection pair
// (both ends, over loopback TCP), plain TLS and attested, as custom metrics.
func BenchmarkIdleConnMemory(b *testing.B) {
	p := newPKI(b)
	k := newKit(b)
	const n = 50
	measure := func(attested bool) float64 {
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		var keep []any
		for range n {
			srv, cli := tlsPair(b, p, tlsOpts{})
			if !attested {
				keep = append(keep, srv, cli)
				continue
			}
			s, c, serr, cerr := attestedPair(b, srv, cli,
				&Config{Attester: k.att, Certificate: &p.server},
				&Config{RequirePeerAttestation: true, Verifier: k.ver})
			if serr != nil || cerr != nil {
				b.Fatal(serr, cerr)
			}
			keep = append(keep, s, c)
		}
		time.Sleep(50 * time.Millisecond)
		runtime.GC()
		runtime.ReadMemStats(&m1)
		runtime.KeepAlive(keep)
		return float64(m1.HeapAlloc-m0.HeapAlloc+(m1.StackInuse-m0.StackInuse)) / n
	}
	// Warm up: one-time, process-wide allocations (CBOR type caches, TLS
	// and x509 lazy tables) are not per-connection memory.
	measure(true)
	var plain, att float64
	for b.Loop() {
		plain = measure(false)
		att = measure(true)
	}
	b.ReportMetric(plain, "B/plain-pair")
	b.ReportMetric(att, "B/attested-pair")
}

// attestBench measures one re-attestation round (request, Evidence,
// verification) on an established connection, optionally while bulk data
// streams in both directions without pause (T32).
func attestBench(b *testing.B, bulk bool) {
	p := newPKI(b)
	k := newKit(b)
	s, c := reattestPair(b, p, k)
	go io.Copy(io.Discard, s)
	go io.Copy(io.Discard, c)
	stop := make(chan struct{})
	if bulk {
		go pump(c, stop)
		go pump(s, stop)
		time.Sleep(50 * time.Millisecond)
	}
	ctx := context.Background()
	for b.Loop() {
		if _, err := c.Attest(ctx); err != nil {
			b.Fatal(err)
		}
	}
	close(stop)
}

// BenchmarkAttestIdle is one re-attestation on an idle connection.
func BenchmarkAttestIdle(b *testing.B) { attestBench(b, false) }

// BenchmarkAttestUnderBulk is one re-attestation while 1 MiB writes stream
// both ways; compare with BenchmarkAttestIdle.
func BenchmarkAttestUnderBulk(b *testing.B) { attestBench(b, true) }
