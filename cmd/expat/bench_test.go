package main_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/expat/expattest"
)

// sinkBackend discards what it reads and answers each connection's first
// byte with one byte (for the connection latency), and its end of stream
// with another.
func sinkBackend(tb testing.TB) string {
	return serveTCP(tb, nil, func(c net.Conn) {
		b := make([]byte, 1)
		if _, err := io.ReadFull(c, b); err != nil {
			return
		}
		c.Write(b)
		io.Copy(io.Discard, c)
		c.Write(b)
	})
}

// relay forwards c to the connection dial returns, both ways, passing each
// end of stream on.
func relay(c net.Conn, dial func() (net.Conn, error)) {
	d, err := dial()
	if err != nil {
		return
	}
	defer d.Close()
	go func() { io.Copy(d, c); d.(interface{ CloseWrite() error }).CloseWrite() }()
	io.Copy(c, d)
	c.(interface{ CloseWrite() error }).CloseWrite()
}

// The baselines of BenchmarkTunnel are forwarders of the same shape as
// the tunnel: each hop its own process (this test binary, run again with
// forwarderEnv set), forwarding with relay. The tunnel's two hops are
// processes too; forwarders inside the benchmark's process would share
// its scheduler and skip the process switches, and the comparison would
// measure topology instead of the tunnel.
const (
	forwarderEnv     = "EXPAT_TEST_FORWARDER" // plain, tls-server or tls-client
	forwarderToEnv   = "EXPAT_TEST_FORWARD_TO"
	forwarderCertEnv = "EXPAT_TEST_FORWARD_CERT" // tls-server: cert and key files, comma-separated; tls-client: CA file
)

// forwarderMain is the forwarder process: it listens on loopback, says
// where in a JSON "listening" line on stderr (as the expat command does),
// and relays each connection to forwarderToEnv until it is killed.
func forwarderMain(mode string) int {
	to := os.Getenv(forwarderToEnv)
	files := os.Getenv(forwarderCertEnv)
	var ln net.Listener
	var err error
	dial := func() (net.Conn, error) { return net.Dial("tcp", to) }
	switch mode {
	case "plain":
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	case "tls-server":
		cert, key, _ := strings.Cut(files, ",")
		var kp tls.Certificate
		if kp, err = tls.LoadX509KeyPair(cert, key); err == nil {
			ln, err = tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS13})
		}
	case "tls-client":
		var pemb []byte
		if pemb, err = os.ReadFile(files); err == nil {
			roots := x509.NewCertPool()
			roots.AppendCertsFromPEM(pemb)
			cfg := &tls.Config{RootCAs: roots, ServerName: expattest.ServerName, MinVersion: tls.VersionTLS13}
			dial = func() (net.Conn, error) { return tls.Dial("tcp", to, cfg) }
			ln, err = net.Listen("tcp", "127.0.0.1:0")
		}
	default:
		err = fmt.Errorf("unknown forwarder %q", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "forwarder:", err)
		return 2
	}
	line, _ := json.Marshal(map[string]string{"msg": "listening", "addr": ln.Addr().String()})
	fmt.Fprintln(os.Stderr, string(line))
	for {
		c, err := ln.Accept()
		if err != nil {
			return 1
		}
		go func() {
			defer c.Close()
			relay(c, dial)
		}()
	}
}

// forwarder starts a forwarder process (see forwarderMain) and returns its
// address.
func forwarder(tb testing.TB, mode, to, files string) string {
	tb.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), forwarderEnv+"="+mode, forwarderToEnv+"="+to, forwarderCertEnv+"="+files)
	return startCmd(tb, cmd).addr()
}

// plainForward is two plain TCP forwarder processes (io.Copy both ways,
// half-close), the baseline: the same bytes over two such hops.
func plainForward(tb testing.TB, to string) string {
	return forwarder(tb, "plain", forwarder(tb, "plain", to, ""), "")
}

// tlsForward is the second baseline: the same two hops with plain TLS 1.3
// (crypto/tls, no attestation, no expat framing) between them.
func tlsForward(tb testing.TB, f *fixture, to string) string {
	srv := forwarder(tb, "tls-server", to, f.srvCert+","+f.srvKey)
	return forwarder(tb, "tls-client", srv, f.ca)
}

// inProcessForward is the plain TCP forward of two hops inside this
// process (goroutines; io.Copy between TCP connections splices), shown
// beside the process baselines.
func inProcessForward(tb testing.TB, to string) string {
	hop := func(to string) string {
		return serveTCP(tb, nil, func(c net.Conn) {
			relay(c, func() (net.Conn, error) { return net.Dial("tcp", to) })
		})
	}
	return hop(hop(to))
}

// transfer opens a connection to addr, measures the time to the first
// answer byte (connection latency), sends n bytes, half-closes and waits
// for the backend's last byte; it returns the latency and the throughput.
func transfer(tb testing.TB, addr string, n int) (time.Duration, float64) {
	t0 := time.Now()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	one := []byte{1}
	c.Write(one)
	if _, err := io.ReadFull(c, one); err != nil {
		tb.Fatal(err)
	}
	lat := time.Since(t0)
	if n == 0 {
		return lat, 0
	}
	buf := make([]byte, 256<<10)
	t1 := time.Now()
	for sent := 0; sent < n; sent += len(buf) {
		if _, err := c.Write(buf); err != nil {
			tb.Fatal(err)
		}
	}
	c.(*net.TCPConn).CloseWrite()
	if _, err := io.ReadFull(c, one); err != nil {
		tb.Fatal(err)
	}
	return lat, float64(n) / time.Since(t1).Seconds() / 1e6
}

func median[T int64 | float64 | time.Duration](v []T) T {
	s := append([]T(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// BenchmarkTunnel measures, in one run, the tunnel (two expat processes,
// attested TLS between them) against two plain TCP forwarder processes
// carrying the same bytes, and against two forwarder processes with plain
// TLS 1.3 between them (crypto/tls alone: the cost of encryption without
// attestation or expat's framing): throughput (MB/s, median over b.N
// transfers of 64 MiB each, alternating) and the latency of a new
// connection to the first answer byte (median of 20 each, after the
// transfers). plain-inproc-MB/s is the plain forward with both hops inside
// the benchmark's process, for reference.
func BenchmarkTunnel(b *testing.B) {
	f := newFixture(b)
	backend := sinkBackend(b)
	srv := attestedServer(b, f, backend, good)
	cli := tunnelClient(b, f, srv.addr(), f.policy(b, "p.json", good))
	tun := cli.addr()
	plain := plainForward(b, backend)
	tlsf := tlsForward(b, f, backend)
	inproc := inProcessForward(b, backend)
	const n = 64 << 20
	for _, a := range []string{tun, plain, tlsf, inproc} {
		transfer(b, a, n/8) // warm up
	}
	var tunRate, plainRate, tlsRate, inprocRate []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, r := transfer(b, tun, n)
		tunRate = append(tunRate, r)
		_, r = transfer(b, plain, n)
		plainRate = append(plainRate, r)
		_, r = transfer(b, tlsf, n)
		tlsRate = append(tlsRate, r)
		_, r = transfer(b, inproc, n)
		inprocRate = append(inprocRate, r)
	}
	b.StopTimer()
	var tunLat, plainLat []time.Duration
	for i := 0; i < 20; i++ {
		l, _ := transfer(b, tun, 0)
		tunLat = append(tunLat, l)
		l, _ = transfer(b, plain, 0)
		plainLat = append(plainLat, l)
	}
	tr, pr, sr := median(tunRate), median(plainRate), median(tlsRate)
	b.ReportMetric(tr, "tunnel-MB/s")
	b.ReportMetric(pr, "plain-MB/s")
	b.ReportMetric(sr, "tls-MB/s")
	b.ReportMetric(tr/pr, "ratio-vs-plain")
	b.ReportMetric(tr/sr, "ratio-vs-tls")
	b.ReportMetric(median(inprocRate), "plain-inproc-MB/s")
	b.ReportMetric(float64(median(tunLat).Microseconds())/1000, "tunnel-connect-ms")
	b.ReportMetric(float64(median(plainLat).Microseconds())/1000, "plain-connect-ms")
	b.ReportMetric(float64((median(tunLat)-median(plainLat)).Microseconds())/1000, "added-connect-ms")
}
