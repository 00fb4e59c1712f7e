package expathttp

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"testing"
)

// servePlain runs an ordinary HTTPS server (HTTP/2) with tlsCfg, for the
// baselines.
func servePlain(b *testing.B, h http.Handler, tlsCfg *tls.Config) string {
	srv := &http.Server{Handler: h, TLSConfig: tlsCfg, ErrorLog: log.New(io.Discard, "", 0)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.ServeTLS(ln, "", "")
	b.Cleanup(func() { srv.Close() })
	return "https://" + ln.Addr().String()
}

// benchTLS returns the TLS configurations both arms of a benchmark use, so
// that the ratio is the cost of attestation alone: the server's
// certificate and no client authentication. The benchmarks attest the
// server only; a client certificate would add a signature and a chain
// verification to the handshake of whichever arm presents it (the
// attested arm once did, and that, not attestation, was about 0.3 ms of
// its first-request latency).
func (k *kit) benchTLS() (srv, cli *tls.Config) {
	srv = &tls.Config{Certificates: []tls.Certificate{k.SrvCert}, MinVersion: tls.VersionTLS13}
	cli = k.clientTLS()
	cli.Certificates = nil
	return srv, cli
}

func benchGet(b *testing.B, c *http.Client, url string) {
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatal(resp.Status)
	}
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })

// BenchmarkKeepAlive: sequential requests on one kept-alive HTTP/2
// connection, plain TLS vs attested (server attestation at setup).
func BenchmarkKeepAlive(b *testing.B) {
	k := newKit(b)
	b.Run("plain", func(b *testing.B) {
		srvTLS, cliTLS := k.benchTLS()
		url := servePlain(b, okHandler, srvTLS)
		tr := &http.Transport{TLSClientConfig: cliTLS, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr}
		benchGet(b, c, url)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			benchGet(b, c, url)
		}
	})
	b.Run("attested", func(b *testing.B) {
		srvTLS, cliTLS := k.benchTLS()
		url := serve(b, okHandler, srvTLS, k.serverConfig(false))
		tr := newTransport(b, cliTLS, k.clientConfig(false))
		c := &http.Client{Transport: tr}
		benchGet(b, c, url)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			benchGet(b, c, url)
		}
	})
}

// BenchmarkFirstRequest: a new connection (TCP, TLS 1.3, and for the
// attested case the setup exchange with the test kit) and its first
// request, plain TLS vs attested.
func BenchmarkFirstRequest(b *testing.B) {
	k := newKit(b)
	b.Run("plain", func(b *testing.B) {
		srvTLS, cliTLS := k.benchTLS()
		url := servePlain(b, okHandler, srvTLS)
		tr := &http.Transport{TLSClientConfig: cliTLS, ForceAttemptHTTP2: true}
		c := &http.Client{Transport: tr}
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			benchGet(b, c, url)
			tr.CloseIdleConnections()
		}
	})
	b.Run("attested", func(b *testing.B) {
		srvTLS, cliTLS := k.benchTLS()
		url := serve(b, okHandler, srvTLS, k.serverConfig(false))
		tr := newTransport(b, cliTLS, k.clientConfig(false))
		c := &http.Client{Transport: tr}
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			benchGet(b, c, url)
			tr.CloseIdleConnections()
		}
	})
}
