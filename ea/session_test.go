package ea

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

// T17: EA before the handshake completes.
func TestNewSessionBeforeHandshake(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	_, c := testTLSConfigs()
	cs := tls.Client(a, c).ConnectionState()
	cs.Version = tls.VersionTLS13 // even claiming 1.3, an incomplete handshake is refused
	_, err := NewSession(&cs, false, nil)
	if !errors.Is(err, ErrHandshakeIncomplete) {
		t.Fatalf("got %v, want ErrHandshakeIncomplete", err)
	}
}

// T18: a TLS 1.2 connection (where renegotiation could exist) is refused.
func TestNewSessionTLS12(t *testing.T) {
	s, c := testTLSConfigs()
	s.MinVersion, s.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	c.MinVersion = tls.VersionTLS12
	c.Renegotiation = tls.RenegotiateFreelyAsClient
	cc, sc := pipePair(t, s, c)
	for _, side := range []struct {
		conn     *tls.Conn
		isServer bool
	}{{cc, false}, {sc, true}} {
		cs := side.conn.ConnectionState()
		_, err := NewSession(&cs, side.isServer, nil)
		var alert tls.AlertError
		if !errors.Is(err, ErrNotTLS13) || !errors.As(err, &alert) || alert != alertProtocolVersion {
			t.Errorf("got %v, want ErrNotTLS13 with protocol_version", err)
		}
	}
	if _, err := New(&tls.ConnectionState{}, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, true, nil); !errors.Is(err, ErrNotTLS13) {
		t.Errorf("New with a TLS 1.2 suite: got %v", err)
	}
}

// T9: concurrent validations of one context accept exactly once.
func TestConcurrentValidation(t *testing.T) {
	cli, srv := sessionPair(t, nil, nil)
	req, err := srv.NewRequest(nil)
	if err != nil {
		t.Fatal(err)
	}
	wire, _ := req.Marshal()
	peerReq, _ := ParseRequest(wire)
	cert := schemeCert(tls.ECDSAWithP256AndSHA256, "client.test")
	auth, err := cli.Authenticate(peerReq, cert, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ok, used atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := srv.Validate(auth, &ValidateOptions{PinnedKey: cert.Leaf.PublicKey})
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrContextUsed):
				used.Add(1)
			default:
				t.Errorf("unexpected error %v", err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || used.Load() != 31 {
		t.Fatalf("accepted %d, rejected as used %d; want 1 and 31", ok.Load(), used.Load())
	}
}

// T9: one record across CR and CCR: the peer's request may not reuse one
// of our contexts, and an answered context is never accepted back.
func TestContextSharedAcrossRequestTypes(t *testing.T) {
	cli, srv := sessionPair(t, nil, nil)
	own, err := srv.NewRequest(nil) // CR (13) from the server
	if err != nil {
		t.Fatal(err)
	}
	// A client that sends a ClientCertificateRequest (17) with the same context.
	evil, err := ParseRequest(rawRequest(TypeClientCertificateRequest, own.Context, []Extension{sigAlgsExt(tls.Ed25519)}))
	if err != nil {
		t.Fatal(err)
	}
	cert := schemeCert(tls.Ed25519, "server.test")
	if _, err := srv.Authenticate(evil, cert, nil); !errors.Is(err, ErrContextUsed) {
		t.Fatalf("Authenticate for a CCR reusing our CR context: got %v, want ErrContextUsed", err)
	}
	if _, err := srv.Refuse(evil); !errors.Is(err, ErrContextUsed) {
		t.Fatalf("Refuse for a CCR reusing our CR context: got %v, want ErrContextUsed", err)
	}
	// The server answered a CCR; a client authenticator naming that context is refused.
	ccr, _ := cli.NewRequest(nil)
	w, _ := ccr.Marshal()
	pccr, _ := ParseRequest(w)
	if _, err := srv.Authenticate(pccr, cert, nil); err != nil {
		t.Fatal(err)
	}
	peer := &rawPeer{exp: srv.exp, hash: srv.hash, senderIsServer: false}
	ccert := schemeCert(tls.Ed25519, "client.test")
	auth := peer.build(rawSpec{request: w, context: ccr.Context, chain: ccert.Certificate, signer: ccert.PrivateKey.(crypto.Signer), scheme: tls.Ed25519})
	if _, err := srv.Validate(auth, &ValidateOptions{InsecureSkipChainVerify: true}); !errors.Is(err, ErrContextUsed) {
		t.Fatalf("got %v, want ErrContextUsed", err)
	}
}

// T20: CR/CCR confusion when building: a server answers only
// ClientCertificateRequest (17), a client only CertificateRequest (13).
func TestAuthenticateWrongRequestType(t *testing.T) {
	cli, srv := sessionPair(t, nil, nil)
	cert := schemeCert(tls.Ed25519, "x.test")
	ownCR, _ := srv.NewRequest(nil)
	// The server's own CertificateRequest reflected back at it.
	if _, err := srv.Authenticate(ownCR, cert, nil); err == nil || !errors.As(err, new(*Error)) {
		t.Fatalf("server answered a CertificateRequest: %v", err)
	}
	ownCCR, _ := cli.NewRequest(nil)
	_, err := cli.Authenticate(ownCCR, cert, nil)
	var alert tls.AlertError
	if !errors.As(err, &alert) || alert != alertUnexpectedMessage {
		t.Fatalf("client answered a ClientCertificateRequest: %v", err)
	}
	// Clients never build spontaneous authenticators.
	if _, err := cli.Authenticate(nil, cert, nil); err == nil {
		t.Fatal("client built a spontaneous authenticator")
	}
}

// Spontaneous server authenticators over a real connection, with the
// ClientHello recorded on both sides (T10, T24).
func TestSpontaneousOverTLS(t *testing.T) {
	s, c := testTLSConfigs()
	sCfg, serverView := RecordClientHello(s)
	a, b := net.Pipe()
	rec := RecordClientHelloConn(a)
	cc, sc := tls.Client(rec, c), tls.Server(b, sCfg)
	t.Cleanup(func() { a.Close(); b.Close() })
	errc := make(chan error, 1)
	go func() { errc <- sc.Handshake() }()
	if err := cc.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	clientView := rec.ClientHello()
	if clientView == nil || !slices.Equal(clientView.Extensions, serverView.Extensions) ||
		!slices.Equal(clientView.SignatureSchemes, serverView.SignatureSchemes) || len(clientView.SignatureSchemes) == 0 {
		t.Fatalf("ClientHello records differ:\nclient %+v\nserver %+v", clientView, serverView)
	}
	ccs, scs := cc.ConnectionState(), sc.ConnectionState()
	srv, _ := NewSession(&scs, true, &Config{ClientHello: serverView})
	cli, _ := NewSession(&ccs, false, &Config{ClientHello: clientView})
	cliNoCH, _ := NewSession(&ccs, false, nil)

	cert := schemeCert(tls.ECDSAWithP256AndSHA256, "server.test")
	// SCT (18) is in every Go ClientHello: allowed in a spontaneous authenticator.
	sct := []Extension{{Type: ExtensionSCT, Data: []byte{0, 0}}}
	auth, err := srv.Authenticate(nil, cert, sct)
	if err != nil {
		t.Fatal(err)
	}
	pin := &ValidateOptions{PinnedKey: cert.Leaf.PublicKey, AllowSpontaneous: true}
	if _, err := cliNoCH.Validate(auth, pin); !errors.Is(err, ErrUnknownContext) {
		t.Fatalf("without a ClientHello record: got %v", err)
	}
	if _, err := cli.Validate(auth, &ValidateOptions{PinnedKey: cert.Leaf.PublicKey}); !errors.Is(err, ErrUnknownContext) {
		t.Fatalf("policy forbids spontaneous: got %v", err)
	}
	auth2, _ := srv.Authenticate(nil, cert, sct)
	got, err := cli.Validate(auth2, pin)
	if err != nil || !got.Spontaneous || got.Request != nil {
		t.Fatalf("spontaneous: %v %+v", err, got)
	}
	// The server refuses to put an extension the client never offered.
	_, err = srv.Authenticate(nil, cert, []Extension{{Type: 0xFF00}})
	var alert tls.AlertError
	if !errors.As(err, &alert) || alert != alertUnsupportedExt {
		t.Fatalf("unoffered extension: got %v", err)
	}
	// A server never accepts a spontaneous (client) authenticator, even if asked to.
	ccert := schemeCert(tls.Ed25519, "client.test")
	peer := &rawPeer{exp: &ccs, hash: cli.hash, senderIsServer: false}
	spont := peer.build(rawSpec{context: testBytes("x", 32), chain: ccert.Certificate, signer: ccert.PrivateKey.(crypto.Signer), scheme: tls.Ed25519})
	if _, err := srv.Validate(spont, &ValidateOptions{InsecureSkipChainVerify: true, AllowSpontaneous: true}); !errors.Is(err, ErrUnknownContext) {
		t.Fatalf("spontaneous client authenticator: got %v", err)
	}
}

func TestRefuseRoundTrip(t *testing.T) {
	cli, srv := sessionPair(t, nil, nil)
	r1, _ := srv.NewRequest(nil)
	r2, _ := srv.NewRequest(nil)
	w, _ := r2.Marshal()
	p2, _ := ParseRequest(w)
	empty, err := cli.Refuse(p2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := GetContext(empty); err == nil {
		t.Error("GetContext of an empty authenticator succeeded")
	}
	_, err = srv.Validate(empty, &ValidateOptions{InsecureSkipChainVerify: true})
	var e *Error
	if !errors.Is(err, ErrEmptyAuthenticator) || !errors.As(err, &e) || string(e.Context) != string(r2.Context) || e.Kind != KindEmpty {
		t.Fatalf("got %v, want ErrEmptyAuthenticator for the second request", err)
	}
	if _, err := srv.Validate(empty, &ValidateOptions{InsecureSkipChainVerify: true}); err == nil || errors.Is(err, ErrEmptyAuthenticator) {
		t.Fatalf("refusal replayed: got %v", err)
	}
	// The other request is still outstanding and can succeed.
	w1, _ := r1.Marshal()
	p1, _ := ParseRequest(w1)
	cert := schemeCert(tls.Ed25519, "client.test")
	auth, _ := cli.Authenticate(p1, cert, nil)
	if _, err := srv.Validate(auth, &ValidateOptions{VerifyOptions: &x509.VerifyOptions{Roots: testCAInstance().pool(),
		CurrentTime: validationTime, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}}); err != nil {
		t.Fatal(err)
	}
}

func TestValidateOptionsFailClosed(t *testing.T) {
	_, srv := sessionPair(t, nil, nil)
	for _, o := range []*ValidateOptions{nil, {}, {AllowSpontaneous: true}, {InsecureSkipChainVerify: true, PinnedKey: "x"}} {
		if _, err := srv.Validate([]byte{11, 0, 0, 0}, o); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
}

// Our own authenticator never carries an extension that TLS 1.3 does not
// allow in a CertificateEntry, even one the request sent (RFC 8446,
// Section 4.2); status_request, which it allows, goes through when offered.
func TestAuthenticateEntryExtensions(t *testing.T) {
	cli, srv := sessionPair(t, nil, nil)
	cert := schemeCert(tls.Ed25519, "client.test")
	for _, tc := range []struct {
		name string
		ext  Extension
		ok   bool
	}{
		{"signature_algorithms", sigAlgsExt(tls.Ed25519), false},
		{"status_request", Extension{Type: ExtensionStatusRequest, Data: []byte{1, 0, 0, 0}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := srv.NewRequest([]Extension{{Type: ExtensionStatusRequest}})
			if err != nil {
				t.Fatal(err)
			}
			w, _ := req.Marshal()
			preq, err := ParseRequest(w)
			if err != nil {
				t.Fatal(err)
			}
			auth, err := cli.Authenticate(preq, cert, []Extension{tc.ext})
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				got, err := srv.Validate(auth, &ValidateOptions{InsecureSkipChainVerify: true})
				if err != nil || len(got.Extensions) != 1 || got.Extensions[0].Type != ExtensionStatusRequest {
					t.Fatalf("got %+v, %v", got, err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Kind != KindLocal || e.Alert != alertInternalError ||
				e.Error() != "ea: extension not allowed in a CertificateEntry (RFC 8446, Section 4.2)" {
				t.Fatalf("got %v, want a local refusal", err)
			}
		})
	}
}
