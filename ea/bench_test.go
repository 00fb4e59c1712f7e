package ea

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"net"
	"testing"
)

// BenchmarkHandshake is the baseline: one full TLS 1.3 handshake over
// net.Pipe with a P-256 server certificate, both sides' CPU.
func BenchmarkHandshake(b *testing.B) {
	s, c := testTLSConfigs()
	b.ReportAllocs()
	for b.Loop() {
		x, y := net.Pipe()
		cc, sc := tls.Client(x, c), tls.Server(y, s)
		done := make(chan error, 1)
		go func() { done <- sc.Handshake() }()
		if err := cc.Handshake(); err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		x.Close()
		y.Close()
	}
}

// BenchmarkBareCrypto is the floor of one EA round: one ECDSA P-256 sign,
// one verify, the four exporter calls and two HMACs (with their hashes).
func BenchmarkBareCrypto(b *testing.B) {
	cli, _ := sessionPair(b, nil, nil)
	cs := cli.exp
	key := testECDSAKey(elliptic.P256(), "bench")
	msg := make([]byte, 600)
	b.ReportAllocs()
	for b.Loop() {
		var keys [4][]byte
		for i, l := range []string{labelClientHC, labelClientFK, labelServerHC, labelServerFK} {
			keys[i], _ = cs.ExportKeyingMaterial(l, nil, 32)
		}
		d := sha256.Sum256(msg)
		sig, err := ecdsa.SignASN1(rand.Reader, key, d[:])
		if err != nil {
			b.Fatal(err)
		}
		if !ecdsa.VerifyASN1(&key.PublicKey, d[:], sig) {
			b.Fatal("verify")
		}
		for i := 0; i < 2; i++ {
			m := hmac.New(sha256.New, keys[1])
			m.Write(d[:])
			m.Sum(nil)
		}
	}
}

// BenchmarkEARound is one real round: NewRequest, Marshal, ParseRequest,
// Authenticate and Validate with a pinned key, for each signature scheme
// (ECDSA P-256 is the one BenchmarkBareCrypto floors).
func BenchmarkEARound(b *testing.B) {
	for _, scheme := range []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256, tls.ECDSAWithP384AndSHA384,
		tls.Ed25519, tls.PSSWithSHA256} {
		b.Run(scheme.String(), func(b *testing.B) { benchEARound(b, scheme) })
	}
}

func benchEARound(b *testing.B, scheme tls.SignatureScheme) {
	// Every round uses a new context: the record must outlast b.N rounds.
	cfg := &Config{SignatureSchemes: []tls.SignatureScheme{scheme}, MaxContexts: 1 << 30}
	cli, srv := sessionPair(b, cfg, cfg)
	cert := schemeCert(scheme, "bench.test")
	opts := &ValidateOptions{PinnedKey: cert.PrivateKey.(crypto.Signer).Public()}
	b.ReportAllocs()
	for b.Loop() {
		req, err := srv.NewRequest(nil)
		if err != nil {
			b.Fatal(err)
		}
		wire, _ := req.Marshal()
		peerReq, err := ParseRequest(wire)
		if err != nil {
			b.Fatal(err)
		}
		auth, err := cli.Authenticate(peerReq, cert, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := srv.Validate(auth, opts); err != nil {
			b.Fatal(err)
		}
	}
}
