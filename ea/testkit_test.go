package ea

// Test-only PKI and connections. Every key here is derived from a public
// label: these keys are TEST KEYS, trusted by nothing but the tests that
// build a pool from testCAInstance.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// testStream is a deterministic byte stream: SHA-256(label || counter).
type testStream struct {
	label   string
	counter uint64
	buf     []byte
}

func (s *testStream) Read(p []byte) (int, error) {
	for i := range p {
		if len(s.buf) == 0 {
			h := sha256.New()
			h.Write([]byte(s.label))
			h.Write(big.NewInt(int64(s.counter)).Bytes())
			s.counter++
			s.buf = h.Sum(nil)
		}
		p[i] = s.buf[0]
		s.buf = s.buf[1:]
	}
	return len(p), nil
}

func testBytes(label string, n int) []byte {
	b := make([]byte, n)
	(&testStream{label: label}).Read(b)
	return b
}

// testECDSAKey derives a P-256/384/521 key from label.
func testECDSAKey(curve elliptic.Curve, label string) *ecdsa.PrivateKey {
	n := (curve.Params().BitSize + 7) / 8
	for i := 0; ; i++ {
		d := testBytes(label+string(rune('a'+i)), n)
		if curve == elliptic.P521() {
			d[0] &= 1
		}
		k, err := ecdsa.ParseRawPrivateKey(curve, d)
		if err == nil {
			return k
		}
	}
}

func testEd25519Key(label string) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(testBytes(label, 32))
}

var rsaKeys sync.Map

// testRSAKey derives a 2048-bit RSA key from label (deterministic primes).
func testRSAKey(label string) *rsa.PrivateKey {
	if k, ok := rsaKeys.Load(label); ok {
		return k.(*rsa.PrivateKey)
	}
	prime := func(l string) *big.Int {
		s := &testStream{label: l}
		b := make([]byte, 128)
		for {
			s.Read(b)
			b[0] |= 0xc0
			b[127] |= 1
			p := new(big.Int).SetBytes(b)
			if p.ProbablyPrime(20) && new(big.Int).Mod(p, big.NewInt(65537)).Int64() != 1 {
				return p
			}
		}
	}
	p, q := prime(label+" p"), prime(label+" q")
	n := new(big.Int).Mul(p, q)
	phi := new(big.Int).Mul(new(big.Int).Sub(p, big.NewInt(1)), new(big.Int).Sub(q, big.NewInt(1)))
	e := big.NewInt(65537)
	d := new(big.Int).ModInverse(e, phi)
	k := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: n, E: 65537}, D: d, Primes: []*big.Int{p, q}}
	k.Precompute()
	if err := k.Validate(); err != nil {
		panic(err)
	}
	rsaKeys.Store(label, k)
	return k
}

var (
	testNotBefore = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	testNotAfter  = time.Date(2045, 1, 1, 0, 0, 0, 0, time.UTC)
)

// testCA is an Ed25519 CA: with it every certificate is deterministic.
type testCA struct {
	key  ed25519.PrivateKey
	cert *x509.Certificate
}

var (
	caOnce sync.Once
	caVal  *testCA
)

func testCAInstance() *testCA {
	caOnce.Do(func() {
		k := testEd25519Key("go-expat ea test CA")
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(1),
			Subject:               pkix.Name{CommonName: "go-expat ea TEST CA (not trusted)"},
			NotBefore:             testNotBefore,
			NotAfter:              testNotAfter,
			IsCA:                  true,
			BasicConstraintsValid: true,
			KeyUsage:              x509.KeyUsageCertSign,
		}
		der, err := x509.CreateCertificate(nil, tmpl, tmpl, k.Public(), k)
		if err != nil {
			panic(err)
		}
		c, _ := x509.ParseCertificate(der)
		caVal = &testCA{key: k, cert: c}
	})
	return caVal
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// issue returns a leaf certificate for key, deterministic given its inputs.
func (ca *testCA) issue(cn string, serial int64, key crypto.Signer) *tls.Certificate {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     []string{cn},
		NotBefore:    testNotBefore,
		NotAfter:     testNotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(nil, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		panic(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return &tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: key, Leaf: leaf}
}

// issuePSS returns a certificate whose SubjectPublicKeyInfo is
// id-RSASSA-PSS (RFC 4055), which crypto/x509 cannot create; hashOID, if
// set, goes into the parameters' hashAlgorithm.
func (ca *testCA) issuePSS(cn string, serial int64, key *rsa.PrivateKey, hashOID asn1.ObjectIdentifier) *tls.Certificate {
	var spki cryptobyte.Builder
	spki.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oidRSASSAPSS)
			if hashOID != nil {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(hashOID) })
					})
				})
			}
		})
		b.AddASN1BitString(x509.MarshalPKCS1PublicKey(&key.PublicKey))
	})
	name, _ := asn1.Marshal(pkix.Name{CommonName: cn}.ToRDNSequence())
	oidEd25519 := asn1.ObjectIdentifier{1, 3, 101, 112}
	var tbs cryptobyte.Builder
	tbs.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { b.AddASN1Int64(2) })
		b.AddASN1Int64(serial)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidEd25519) })
		b.AddBytes(ca.cert.RawSubject)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1UTCTime(testNotBefore)
			b.AddASN1UTCTime(testNotAfter)
		})
		b.AddBytes(name)
		b.AddBytes(spki.BytesOrPanic())
	})
	tbsDER := tbs.BytesOrPanic()
	sig := ed25519.Sign(ca.key, tbsDER)
	var cert cryptobyte.Builder
	cert.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(tbsDER)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidEd25519) })
		b.AddASN1BitString(sig)
	})
	der := cert.BytesOrPanic()
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: key, Leaf: leaf}
}

// schemeCert returns a test certificate whose key signs with scheme.
func schemeCert(scheme tls.SignatureScheme, cn string) *tls.Certificate {
	ca := testCAInstance()
	switch scheme {
	case tls.ECDSAWithP256AndSHA256:
		return ca.issue(cn, 256, testECDSAKey(elliptic.P256(), cn))
	case tls.ECDSAWithP384AndSHA384:
		return ca.issue(cn, 384, testECDSAKey(elliptic.P384(), cn))
	case tls.ECDSAWithP521AndSHA512:
		return ca.issue(cn, 521, testECDSAKey(elliptic.P521(), cn))
	case tls.Ed25519:
		return ca.issue(cn, 25519, testEd25519Key(cn))
	case tls.PSSWithSHA256, tls.PSSWithSHA384, tls.PSSWithSHA512:
		return ca.issue(cn, 2048, testRSAKey("go-expat ea test RSA"))
	case 0x0809, 0x080a, 0x080b:
		return ca.issuePSS(cn, 2049, testRSAKey("go-expat ea test RSA"), nil)
	}
	panic("no test certificate for scheme")
}

// pipePair runs a TLS 1.3 handshake between a Go client and a Go server
// over net.Pipe and returns both connections.
func pipePair(t testing.TB, serverCfg, clientCfg *tls.Config) (client, server *tls.Conn) {
	t.Helper()
	a, b := net.Pipe()
	client = tls.Client(a, clientCfg)
	server = tls.Server(b, serverCfg)
	errc := make(chan error, 1)
	go func() { errc <- server.Handshake() }()
	if err := client.Handshake(); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	// Closing the raw pipes: a tls.Conn.Close would block on net.Pipe
	// sending close_notify to a peer that no longer reads.
	t.Cleanup(func() { a.Close(); b.Close() })
	return client, server
}

func testTLSConfigs() (server, client *tls.Config) {
	ca := testCAInstance()
	srvCert := ca.issue("server.test", 10, testECDSAKey(elliptic.P256(), "tls server"))
	server = &tls.Config{Certificates: []tls.Certificate{*srvCert}, MinVersion: tls.VersionTLS13, SessionTicketsDisabled: true}
	client = &tls.Config{RootCAs: ca.pool(), ServerName: "server.test", MinVersion: tls.VersionTLS13}
	return server, client
}

// sessionPair returns the client and server Sessions of a real TLS 1.3
// connection.
func sessionPair(t testing.TB, clientCfg, serverCfg *Config) (cli, srv *Session) {
	t.Helper()
	s, c := testTLSConfigs()
	cc, sc := pipePair(t, s, c)
	ccs, scs := cc.ConnectionState(), sc.ConnectionState()
	cli, err := NewSession(&ccs, false, clientCfg)
	if err != nil {
		t.Fatal(err)
	}
	srv, err = NewSession(&scs, true, serverCfg)
	if err != nil {
		t.Fatal(err)
	}
	return cli, srv
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b...)
}
