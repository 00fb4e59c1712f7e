// Command localverifier runs a go-expat Verifier as a small HTTP service
// speaking Veraison's challenge-response API (package verifier/local), so
// that relying parties using verifier/veraison can appraise Evidence
// against the backends and trust anchors configured here.
//
//	go run ./examples/localverifier -genkey ear-key.pem   # once: EAR signing key
//	go run ./examples/localverifier -listen 127.0.0.1:8080 -config cfg.json
//
// See README.md in this directory for the configuration file.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/attested-tls/go-expat/verifier/local"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, nil); err != nil {
		fmt.Fprintln(os.Stderr, "localverifier:", err)
		os.Exit(1)
	}
}

// run parses args and serves until ctx ends. ready, if not nil, is told the
// listening address.
func run(ctx context.Context, args []string, out io.Writer, ready func(net.Addr)) error {
	fs := flag.NewFlagSet("localverifier", flag.ContinueOnError)
	fs.SetOutput(out)
	listen := fs.String("listen", "127.0.0.1:8080", "address to listen on")
	cfgPath := fs.String("config", "", "configuration file (JSON: service settings and verifier/policy documents, see README.md)")
	genkey := fs.String("genkey", "", "write a new ECDSA P-256 EAR signing key (PKCS #8 PEM) to this file, print its public key and exit")
	tlsCert := fs.String("tls-cert", "", "serve HTTPS with this certificate chain (PEM)")
	tlsKey := fs.String("tls-key", "", "private key for -tls-cert (PEM)")
	verbose := fs.Bool("v", false, "log every session")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *genkey != "" {
		return generateKey(*genkey, out)
	}
	if *cfgPath == "" {
		return errors.New("-config is required")
	}
	// Collateral fetches (AMD KDS, Intel PCS) are bounded per request.
	cfg, techs, err := load(*cfgPath, &http.Client{Timeout: 20 * time.Second})
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level}))
	cfg.Logger = logger
	svc, err := local.NewService(cfg)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           svc,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      cfg.AppraisalTimeout + 60*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	if *tlsCert != "" || *tlsKey != "" {
		cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			ln.Close()
			return err
		}
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		ln = tls.NewListener(ln, srv.TLSConfig)
		scheme = "https"
	}
	logger.Info("localverifier: serving", "url", scheme+"://"+ln.Addr().String(), "backends", techs)
	if ready != nil {
		ready(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// generateKey writes a fresh EAR signing key and prints its public key.
func generateKey(path string, out io.Writer) error {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return err
	}
	return pem.Encode(out, &pem.Block{Type: "PUBLIC KEY", Bytes: pub})
}
