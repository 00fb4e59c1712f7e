package main_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/expat/expattest"
)

var (
	good = []byte("good-app-v1")
	bad  = []byte("rogue-app")
)

// attestedServer starts a tunnel server whose test kit reports measurement
// app = m, forwarding to backend.
func attestedServer(t testing.TB, f *fixture, backend string, m []byte, extra ...string) *proc {
	t.Helper()
	args := append([]string{"tunnel", "server", "--listen", "127.0.0.1:0", "--connect", backend,
		"--cert", f.srvCert, "--key", f.srvKey,
		"--attester", "testkit", "--insecure-test-kit", "--test-kit-key", f.kitKey,
		"--test-kit-measurement", "app=" + hex.EncodeToString(m)}, extra...)
	return start(t, args...)
}

func tunnelClient(t testing.TB, f *fixture, server, pol string, extra ...string) *proc {
	t.Helper()
	args := append([]string{"tunnel", "client", "--listen", "127.0.0.1:0", "--connect", server,
		"--ca", f.ca, "--server-name", expattest.ServerName, "--policy", pol, "--insecure-test-kit"}, extra...)
	return start(t, args...)
}

// serveTCP serves each connection to a fresh loopback listener with
// handle (which closes it) until the test ends, and returns the address.
func serveTCP(t testing.TB, ln net.Listener, handle func(net.Conn)) string {
	t.Helper()
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// echoBackend answers each connection with everything it read, once the
// client has half-closed, then closes.
func echoBackend(t testing.TB) string {
	return serveTCP(t, nil, func(c net.Conn) {
		if b, err := io.ReadAll(c); err == nil {
			c.Write(b)
		}
	})
}

// lineEcho echoes what arrives as it arrives (an interactive protocol).
func lineEcho(t testing.TB) string {
	return serveTCP(t, nil, func(c net.Conn) { io.Copy(c, c) })
}

// TestTunnelEchoHalfClose: the client writes 1 MiB and half-closes; the
// backend sees the end of stream only through the tunnel's CloseWrite in
// both proxies, and answers with the same bytes, which arrive in full.
func TestTunnelEchoHalfClose(t *testing.T) {
	f := newFixture(t)
	srv := attestedServer(t, f, echoBackend(t), good)
	cli := tunnelClient(t, f, srv.addr(), f.policy(t, "p.json", good))
	c, err := net.Dial("tcp", cli.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	msg := make([]byte, 1<<20)
	rand.Read(msg)
	go func() {
		c.Write(msg)
		c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo: got %d bytes, want %d equal bytes", len(got), len(msg))
	}
	l, _ := cli.waitLog(0, msg2("connection"))
	if l["verdict"] != "verified" || l["technology"] != "test-kit" {
		t.Fatalf("client log: %v", l)
	}
	if l["bytes_up"].(float64) != float64(len(msg)) || l["bytes_down"].(float64) != float64(len(msg)) {
		t.Fatalf("client log bytes: %v", l)
	}
	l, _ = srv.waitLog(0, msg2("connection"))
	if l["verdict"] != "not-required" || l["bytes_up"].(float64) != float64(len(msg)) {
		t.Fatalf("server log: %v", l)
	}
}

func msg2(m string) func(map[string]any) bool { return msg(m) }

// TestTunnelHTTP: an unmodified net/http client and server talk through the
// tunnel (keep-alive, several requests on one connection).
func TestTunnelHTTP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, body)
	})}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })

	f := newFixture(t)
	srv := attestedServer(t, f, ln.Addr().String(), good)
	cli := tunnelClient(t, f, srv.addr(), f.policy(t, "p.json", good))
	client := &http.Client{Timeout: 20 * time.Second}
	defer client.CloseIdleConnections()
	for i := 0; i < 3; i++ {
		resp, err := client.Post("http://"+cli.addr()+"/x", "text/plain", strings.NewReader(fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("POST /x %d", i); string(b) != want {
			t.Fatalf("got %q, want %q", b, want)
		}
	}
	client.CloseIdleConnections()
	l, _ := cli.waitLog(0, msg("connection"))
	if l["verdict"] != "verified" {
		t.Fatalf("client log: %v", l)
	}
}

// TestTunnelRejectsTampered: the server's platform reports an unapproved
// measurement; the client side refuses it, forwards nothing and logs the
// rejection with its reason. (The server side, which requires nothing of
// the client, may already have connected to its backend: that backend
// receives no byte.)
func TestTunnelRejectsTampered(t *testing.T) {
	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	received := make(chan int, 1)
	go func() {
		c, err := backend.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		b, _ := io.ReadAll(c)
		received <- len(b)
	}()
	f := newFixture(t)
	srv := attestedServer(t, f, backend.Addr().String(), bad)
	cli := tunnelClient(t, f, srv.addr(), f.policy(t, "p.json", good))
	c, err := net.Dial("tcp", cli.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	c.Write([]byte("secret"))
	if n, err := io.ReadAll(c); len(n) != 0 || (err != nil && !errors.Is(err, syscall.ECONNRESET)) {
		t.Fatalf("read %q, %v: want a close with nothing", n, err)
	}
	l, _ := cli.waitLog(0, msg("connection"))
	if l["verdict"] != "rejected" || !strings.Contains(l["err"].(string), "measurement") {
		t.Fatalf("client log: %v", l)
	}
	select {
	case n := <-received:
		if n != 0 {
			t.Fatalf("the backend received %d bytes", n)
		}
	case <-time.After(200 * time.Millisecond):
	}
}

// TestTunnelServerPolicy: mutual attestation; the server side enforces its
// policy on the client's platform (a client with an untrusted kit key is
// refused and logged by the server).
func TestTunnelServerPolicy(t *testing.T) {
	f := newFixture(t)
	backend := echoBackend(t)
	srv := attestedServer(t, f, backend, good, "--ca", f.ca, "--policy", f.policy(t, "srv.json", good))
	for _, tc := range []struct {
		key, verdict string
	}{{f.kitKey, "verified"}, {f.otherKitKey, "rejected"}} {
		cli := tunnelClient(t, f, srv.addr(), f.policy(t, "cli.json", good),
			"--cert", f.cliCert, "--key", f.cliKey, "--attester", "testkit", "--test-kit-key", tc.key,
			"--test-kit-measurement", "app="+hex.EncodeToString(good))
		c, err := net.Dial("tcp", cli.addr())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		c.Write([]byte("ping"))
		c.(*net.TCPConn).CloseWrite()
		got, _ := io.ReadAll(c)
		c.Close()
		if (string(got) == "ping") != (tc.verdict == "verified") {
			t.Fatalf("%s: got %q", tc.verdict, got)
		}
	}
	l, next := srv.waitLog(0, msg("connection"))
	if l["verdict"] != "verified" {
		t.Fatalf("server log 1: %v", l)
	}
	l, _ = srv.waitLog(next, msg("connection"))
	if l["verdict"] != "rejected" {
		t.Fatalf("server log 2: %v", l)
	}
}

// TestTunnelReload: SIGHUP loads the new policy for new connections while
// a live connection keeps working; a broken policy file is refused and the
// current policy stays.
func TestTunnelReload(t *testing.T) {
	f := newFixture(t)
	srv := attestedServer(t, f, lineEcho(t), good)
	pol := f.policy(t, "p.json", good)
	cli := tunnelClient(t, f, srv.addr(), pol)
	addr := cli.addr()

	live, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	live.SetDeadline(time.Now().Add(30 * time.Second))
	roundTrip := func(s string) {
		t.Helper()
		if _, err := live.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(s))
		if _, err := io.ReadFull(live, buf); err != nil || string(buf) != s {
			t.Fatalf("live connection: %q, %v", buf, err)
		}
	}
	roundTrip("before")

	// A broken file: refused, the current policy stays.
	if err := os.WriteFile(pol, []byte(`{"version":1,"model":"passport","nope":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cli.cmd.Process.Signal(syscall.SIGHUP)
	l, _ := cli.waitLog(0, msg("policy reload failed; keeping the current policy"))
	if !strings.Contains(l["err"].(string), "$.nope") {
		t.Fatalf("reload error does not name the member: %v", l)
	}

	// Now the good platform is no longer approved.
	f.policy(t, "p.json", []byte("good-app-v2"))
	cli.cmd.Process.Signal(syscall.SIGHUP)
	l, _ = cli.waitLog(0, msg("policy reloaded"))
	if l["generation"].(float64) != 2 {
		t.Fatalf("reload: %v", l)
	}
	roundTrip("after") // the live connection is not dropped

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	c.Write([]byte("x"))
	if got, _ := io.ReadAll(c); len(got) != 0 {
		t.Fatalf("new connection under the new policy got %q", got)
	}
	c.Close()
	l, _ = cli.waitLog(0, func(l map[string]any) bool { return l["msg"] == "connection" && l["verdict"] == "rejected" })
	if l["policy_generation"].(float64) != 2 {
		t.Fatalf("rejection under generation %v", l["policy_generation"])
	}
	roundTrip("still")
	live.(*net.TCPConn).CloseWrite()
	io.ReadAll(live)
	l, _ = cli.waitLog(0, func(l map[string]any) bool { return l["msg"] == "connection" && l["verdict"] == "verified" })
	if l["policy_generation"].(float64) != 1 {
		t.Fatalf("live connection logged under generation %v", l["policy_generation"])
	}
}

// TestTunnelConnectionLimit: with --max-conns 1 a second connection is not
// served until the first ends.
func TestTunnelConnectionLimit(t *testing.T) {
	f := newFixture(t)
	srv := attestedServer(t, f, lineEcho(t), good)
	cli := tunnelClient(t, f, srv.addr(), f.policy(t, "p.json", good), "--max-conns", "1")
	addr := cli.addr()
	first, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	first.SetDeadline(time.Now().Add(20 * time.Second))
	first.Write([]byte("1"))
	b := make([]byte, 1)
	if _, err := io.ReadFull(first, b); err != nil {
		t.Fatal(err)
	}
	second, err := net.Dial("tcp", addr) // queued in the kernel's backlog
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	second.Write([]byte("2"))
	second.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := second.Read(b); err == nil {
		t.Fatal("second connection served while the first holds the only slot")
	}
	first.Close()
	second.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadFull(second, b); err != nil || b[0] != '2' {
		t.Fatalf("second connection after the first ended: %q %v", b, err)
	}
}

// TestTunnelServerReload: on the server side too, SIGHUP makes new
// connections use the new policy (here: the attesting client's measurement
// is no longer approved) while a live connection keeps working.
func TestTunnelServerReload(t *testing.T) {
	f := newFixture(t)
	srvPol := f.policy(t, "srv.json", good)
	srv := attestedServer(t, f, lineEcho(t), good, "--ca", f.ca, "--policy", srvPol)
	cli := tunnelClient(t, f, srv.addr(), f.policy(t, "cli.json", good),
		"--cert", f.cliCert, "--key", f.cliKey, "--attester", "testkit", "--test-kit-key", f.kitKey,
		"--test-kit-measurement", "app="+hex.EncodeToString(good))
	addr := cli.addr()
	live, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	live.SetDeadline(time.Now().Add(30 * time.Second))
	echo := func(s string) {
		t.Helper()
		live.Write([]byte(s))
		buf := make([]byte, len(s))
		if _, err := io.ReadFull(live, buf); err != nil || string(buf) != s {
			t.Fatalf("live connection: %q, %v", buf, err)
		}
	}
	echo("before")
	f.policy(t, "srv.json", []byte("good-app-v2"))
	srv.cmd.Process.Signal(syscall.SIGHUP)
	srv.waitLog(0, msg("policy reloaded"))
	echo("after")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	c.Write([]byte("x"))
	if got, _ := io.ReadAll(c); len(got) != 0 {
		t.Fatalf("new connection under the server's new policy got %q", got)
	}
	c.Close()
	l, _ := srv.waitLog(0, func(l map[string]any) bool { return l["msg"] == "connection" && l["verdict"] == "rejected" })
	if l["policy_generation"].(float64) != 2 {
		t.Fatalf("rejected under generation %v", l["policy_generation"])
	}
	echo("still")
}
