package expat

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/ea"
	"github.com/attested-tls/go-expat/verifier"
)

// The tests in this file build the attacks of ../shared/THREATS.md that
// package expat owns as misbehaving peers over real TLS connections.

// victimClient starts a client Conn that requires the server to attest and
// returns it with the raw server peer that will misbehave.
func victimClient(t testing.TB, p *pki, k *kit, o tlsOpts, cfg *Config) (*Conn, *rawPeer, <-chan error) {
	t.Helper()
	return victimClientSetup(t, p, k, o, cfg, 5*time.Second)
}

// victimClientWithin is victimClient whose setup gives up after d.
func victimClientWithin(t testing.TB, p *pki, k *kit, d time.Duration) (*Conn, *rawPeer, <-chan error) {
	t.Helper()
	return victimClientSetup(t, p, k, tlsOpts{}, nil, d)
}

func victimClientSetup(t testing.TB, p *pki, k *kit, o tlsOpts, cfg *Config, d time.Duration) (*Conn, *rawPeer, <-chan error) {
	t.Helper()
	srv, cli := tlsPair(t, p, o)
	if cfg == nil {
		cfg = &Config{}
	}
	cfg.RequirePeerAttestation = true
	cfg.Verifier = k.ver
	c, err := Client(cli, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	hs := handshakeAsync(c, d)
	peer := newRawPeer(t, srv, true)
	if err := peer.send(frameSetup, []byte{frameVersion}); err != nil {
		t.Fatal(err)
	}
	return c, peer, hs
}

// answerWith has the raw server answer req with a genuine-looking EA carrying
// Evidence that the test kit signed over ch.
func answerWith(t testing.TB, peer *rawPeer, req *ea.Request, cert *tls.Certificate, k *kit, ch attester.Challenge) {
	t.Helper()
	cmw, err := k.att.Attest(context.Background(), ch)
	if err != nil {
		t.Fatal(err)
	}
	ext, err := MarshalExtensionData(cmw)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := peer.sess.Authenticate(req, cert, []ea.Extension{{Type: DefaultExtensionType, Data: ext}})
	if err != nil {
		t.Fatal(err)
	}
	if err := peer.sendAuth(req.Context, auth); err != nil {
		t.Fatal(err)
	}
}

// assertRejected checks that the victim's setup failed with want and that
// the victim never sent application data although its application tried.
func assertRejected(t *testing.T, c *Conn, peer *rawPeer, hs <-chan error, check func(error) bool, what string) {
	t.Helper()
	err := waitErr(t, hs)
	if err == nil {
		t.Fatalf("%s: accepted", what)
	}
	if !check(err) {
		t.Fatalf("%s: wrong error: %v", what, err)
	}
	t.Logf("%s: rejected: %v", what, err)
	if _, werr := c.Write([]byte("secret")); werr == nil {
		t.Fatalf("%s: Write succeeded on an unattested connection", what)
	}
	if c.PeerAttestation() != nil {
		t.Fatalf("%s: PeerAttestation committed", what)
	}
	if gotData, _ := peer.drain(); gotData {
		t.Fatalf("%s: application data reached the unattested peer", what)
	}
}

func rejectedCheck(check verifier.Check) func(error) bool {
	return func(err error) bool {
		var r *verifier.RejectedError
		return errors.As(err, &r) && r.Check == check
	}
}

func eaKind(kind ea.Kind) func(error) bool {
	return func(err error) bool {
		var e *ea.Error
		return errors.As(err, &e) && e.Kind == kind
	}
}

// framing is a framing violation: a typed *Error carrying
// unexpected_message and matching ErrFraming.
func framing(err error) bool {
	var e *Error
	return errors.Is(err, ErrFraming) && errors.As(err, &e) && e.Alert == alertUnexpectedMessage
}

func isErr(target error) func(error) bool {
	return func(err error) bool { return errors.Is(err, target) }
}

func spki(t testing.TB, c *tls.Certificate) []byte {
	t.Helper()
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf.RawSubjectPublicKeyInfo
}

// TestBindingAttacks covers T3 (Evidence bound to another label, context,
// length, direction) and T4 (key substitution): in each case a server
// holding the right TLS identity answers with a valid EA and validly signed
// Evidence whose challenge was computed the wrong way.
func TestBindingAttacks(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	cases := []struct {
		name string
		ch   func(cs *tls.ConnectionState, req *ea.Request) attester.Challenge
	}{
		{"T3 other label", func(cs *tls.ConnectionState, req *ea.Request) attester.Challenge {
			ch, _ := ComputeChallenge(cs, crypto.SHA256, LegacyLabelDraft02, req.Context, spki(t, &p.server))
			return ch
		}},
		{"T3 other context", func(cs *tls.ConnectionState, req *ea.Request) attester.Challenge {
			ch, _ := ComputeChallenge(cs, crypto.SHA256, ExporterLabel, nil, spki(t, &p.server))
			return ch
		}},
		{"T3 other length", func(cs *tls.ConnectionState, req *ea.Request) attester.Challenge {
			exported, _ := cs.ExportKeyingMaterial(ExporterLabel, req.Context, 48)
			h := crypto.SHA256.New()
			h.Write(spki(t, &p.server))
			h.Write(exported)
			k := crypto.SHA256.New()
			k.Write(spki(t, &p.server))
			return attester.Challenge{Hash: crypto.SHA256, Binding: h.Sum(nil), AIKPubHash: k.Sum(nil)}
		}},
		{"T3 other direction (relying party's key)", func(cs *tls.ConnectionState, req *ea.Request) attester.Challenge {
			ch, _ := ComputeChallenge(cs, crypto.SHA256, ExporterLabel, req.Context, spki(t, &p.client))
			return ch
		}},
		{"T3 EA handshake-context exporter instead of the binder", func(cs *tls.ConnectionState, req *ea.Request) attester.Challenge {
			ch, _ := ComputeChallenge(cs, crypto.SHA256, "EXPORTER-server authenticator handshake context", req.Context, spki(t, &p.server))
			return ch
		}},
		{"T4 key substitution", func(cs *tls.ConnectionState, req *ea.Request) attester.Challenge {
			// Evidence names K1 (another certified key); the EA is signed with K2.
			ch, _ := ComputeChallenge(cs, crypto.SHA256, ExporterLabel, req.Context, spki(t, &p.other))
			return ch
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, peer, hs := victimClient(t, p, k, tlsOpts{}, nil)
			req := peer.setupRequest()
			cs := peer.tc.ConnectionState()
			answerWith(t, peer, req, &p.server, k, tc.ch(&cs, req))
			assertRejected(t, c, peer, hs, rejectedCheck(verifier.CheckChallenge), tc.name)
			var e *Error
			if err := c.Handshake(context.Background()); !errors.As(err, &e) || e.Alert != alertBadCertificate {
				t.Fatalf("alert: %v", err)
			}
		})
	}
}

// recordingAttester returns the first CMW it produced for every later
// challenge: genuine, validly signed, stale Evidence.
type recordingAttester struct {
	mu       sync.Mutex
	inner    attester.Attester
	recorded []byte
}

func (a *recordingAttester) Attest(ctx context.Context, ch attester.Challenge) ([]byte, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.recorded != nil {
		return a.recorded, nil
	}
	b, err := a.inner.Attest(ctx, ch)
	a.recorded = b
	return b, err
}

// TestReplayedEvidence covers T1/T12: Evidence from an earlier connection
// (genuinely signed) presented in a fresh, valid EA on a new connection.
func TestReplayedEvidence(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	rec := &recordingAttester{inner: k.att}
	scfg := &Config{Attester: rec, Certificate: &p.server}
	srv, cli := tlsPair(t, p, tlsOpts{})
	_, _, serr, cerr := attestedPair(t, srv, cli, scfg, &Config{RequirePeerAttestation: true, Verifier: k.ver})
	if serr != nil || cerr != nil {
		t.Fatalf("first connection: %v %v", serr, cerr)
	}
	srv, cli = tlsPair(t, p, tlsOpts{})
	_, _, _, cerr = attestedPair(t, srv, cli, scfg, &Config{RequirePeerAttestation: true, Verifier: k.ver})
	if !rejectedCheck(verifier.CheckChallenge)(cerr) {
		t.Fatalf("replayed evidence: %v, want a challenge rejection", cerr)
	}
}

// TestReplayedAuthenticator covers T1: a whole authenticator recorded on
// one connection replayed on another.
func TestReplayedAuthenticator(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	// Connection 1: a genuine server; the attacker (raw client) records
	// the authenticator it is given.
	srv1, cli1 := tlsPair(t, p, tlsOpts{})
	s1, err := Server(srv1, &Config{Attester: k.att, Certificate: &p.server})
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	hs1 := handshakeAsync(s1, 5*time.Second)
	rc := newRawPeer(t, cli1, false)
	reqMsg := rc.request(t)
	rc.send(frameSetup, append([]byte{frameVersion}, reqMsg...))
	b := rc.expect(frameAuthenticator)
	recorded := b[1+int(b[0]):]
	waitErr(t, hs1)

	for _, sameFrameContext := range []bool{true, false} {
		c, peer, hs := victimClient(t, p, k, tlsOpts{}, nil)
		req := peer.setupRequest()
		frameCtx := req.Context
		if !sameFrameContext {
			frameCtx, _ = ea.GetContext(recorded)
		}
		peer.sendAuth(frameCtx, recorded)
		assertRejected(t, c, peer, hs, isErr(ea.ErrUnknownContext), "replayed authenticator")
	}
}

// TestRelay covers T2: a man in the middle holding two TLS sessions
// forwards the victim's request to a genuine attester and relays the
// answer, or re-wraps the genuine Evidence in its own authenticator.
func TestRelay(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	for _, rewrap := range []bool{false, true} {
		name := "forward authenticator"
		if rewrap {
			name = "re-wrap evidence in own authenticator"
		}
		t.Run(name, func(t *testing.T) {
			// Session 2: MITM (client) ↔ genuine server.
			gsrv, mcli := tlsPair(t, p, tlsOpts{})
			g, err := Server(gsrv, &Config{Attester: k.att, Certificate: &p.server})
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			ghs := handshakeAsync(g, 5*time.Second)
			toGenuine := newRawPeer(t, mcli, false)

			// Session 1: victim client ↔ MITM, who holds its own
			// CA-issued certificate for the server's name (p.other).
			c, toVictim, hs := victimClient(t, p, k, tlsOpts{serverCert: &p.other}, nil)
			req := toVictim.setupRequest()
			reqMsg, _ := req.Marshal()
			toGenuine.send(frameSetup, append([]byte{frameVersion}, reqMsg...))
			b := toGenuine.expect(frameAuthenticator)
			genuine := b[1+int(b[0]):]
			waitErr(t, ghs)

			if !rewrap {
				toVictim.sendAuth(req.Context, genuine)
				assertRejected(t, c, toVictim, hs, eaKind(ea.KindFinished), name)
				return
			}
			// Extract the genuine Evidence and present it in a valid EA of
			// the MITM's own on session 1.
			cmw := extractCMW(t, genuine)
			ext, _ := MarshalExtensionData(cmw)
			auth, err := toVictim.sess.Authenticate(req, &p.other, []ea.Extension{{Type: DefaultExtensionType, Data: ext}})
			if err != nil {
				t.Fatal(err)
			}
			toVictim.sendAuth(req.Context, auth)
			assertRejected(t, c, toVictim, hs, rejectedCheck(verifier.CheckChallenge), name)
		})
	}
}

// extractCMW pulls the cmw_attestation data out of an authenticator's
// end-entity entry, as an attacker would, without validating anything.
func extractCMW(t *testing.T, auth []byte) []byte {
	t.Helper()
	// Certificate: type(1) len(3) ctxlen(1) ctx listlen(3) certlen(3) cert extlen(2) exts
	b := auth[4:]
	b = b[1+int(b[0]):]
	b = b[3:]
	n := int(b[0])<<16 | int(b[1])<<8 | int(b[2])
	b = b[3+n:]
	exts := b[2 : 2+(int(b[0])<<8|int(b[1]))]
	for len(exts) >= 4 {
		typ := uint16(exts[0])<<8 | uint16(exts[1])
		l := int(exts[2])<<8 | int(exts[3])
		if typ == DefaultExtensionType {
			cmw, err := ParseExtensionData(exts[4 : 4+l])
			if err != nil {
				t.Fatal(err)
			}
			return cmw
		}
		exts = exts[4+l:]
	}
	t.Fatal("no cmw_attestation in the genuine authenticator")
	return nil
}

// TestDowngrade covers T11.
func TestDowngrade(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	t.Run("answer without attestation", func(t *testing.T) {
		c, peer, hs := victimClient(t, p, k, tlsOpts{}, nil)
		req := peer.setupRequest()
		auth, err := peer.sess.Authenticate(req, &p.server, nil)
		if err != nil {
			t.Fatal(err)
		}
		peer.sendAuth(req.Context, auth)
		assertRejected(t, c, peer, hs, isErr(ErrMissingAttestation), "no attestation")
		var e *Error
		errors.As(c.Handshake(context.Background()), &e)
		if e == nil || e.Alert != alertMissingExtension {
			t.Fatalf("alert %v, want missing_extension", e)
		}
	})
	t.Run("empty authenticator", func(t *testing.T) {
		c, peer, hs := victimClient(t, p, k, tlsOpts{}, nil)
		req := peer.setupRequest()
		auth, err := peer.sess.Refuse(req)
		if err != nil {
			t.Fatal(err)
		}
		peer.sendAuth(req.Context, auth)
		assertRejected(t, c, peer, hs, isErr(ErrPeerRefused), "empty authenticator")
	})
	t.Run("no answer", func(t *testing.T) {
		c, peer, hs := victimClientWithin(t, p, k, 300*time.Millisecond)
		peer.setupRequest()
		start := time.Now()
		assertRejected(t, c, peer, hs, isErr(context.DeadlineExceeded), "silent peer")
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("took %v to give up", d)
		}
	})
	t.Run("request stripped of cmw_attestation in transit", func(t *testing.T) {
		// The peer answers a request that is not ours (our context, but
		// no cmw_attestation offered): the EA transcript differs.
		c, peer, hs := victimClient(t, p, k, tlsOpts{}, nil)
		req := peer.setupRequest()
		tampered := &ea.Request{Type: req.Type, Context: req.Context}
		for _, x := range req.Extensions {
			if x.Type != DefaultExtensionType {
				tampered.Extensions = append(tampered.Extensions, x)
			}
		}
		tmsg, err := tampered.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		cs := peer.tc.ConnectionState()
		auth := forgeAuthenticator(t, &cs, true, tmsg, req.Context, &p.server, nil)
		peer.sendAuth(req.Context, auth)
		assertRejected(t, c, peer, hs, eaKind(ea.KindFinished), "tampered request")
	})
	t.Run("attester cannot fit its evidence", func(t *testing.T) {
		// An honest server whose Evidence exceeds the extension refuses
		// (empty authenticator): the client fails closed.
		big := *k.att
		big.PadTo = 70000
		srv, cli := tlsPair(t, p, tlsOpts{})
		_, _, _, cerr := attestedPair(t, srv, cli, &Config{Attester: &big, Certificate: &p.server},
			&Config{RequirePeerAttestation: true, Verifier: k.ver})
		if !errors.Is(cerr, ErrPeerRefused) {
			t.Fatalf("got %v, want ErrPeerRefused", cerr)
		}
	})
}

// TestExtensionPlacement covers T7.
func TestExtensionPlacement(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	chain := tls.Certificate{Certificate: [][]byte{p.server.Certificate[0], p.caCert.Raw}, PrivateKey: p.server.PrivateKey}
	evidence := func(peer *rawPeer, req *ea.Request) []byte {
		cs := peer.tc.ConnectionState()
		ch, _ := ComputeChallenge(&cs, crypto.SHA256, ExporterLabel, req.Context, spki(t, &p.server))
		cmw, _ := k.att.Attest(context.Background(), ch)
		ext, _ := MarshalExtensionData(cmw)
		return ext
	}
	t.Run("on an intermediate entry", func(t *testing.T) {
		c, peer, hs := victimClient(t, p, k, tlsOpts{}, nil)
		req := peer.setupRequest()
		ext := evidence(peer, req)
		reqMsg, _ := req.Marshal()
		cs := peer.tc.ConnectionState()
		auth := forgeAuthenticator(t, &cs, true, reqMsg, req.Context, &chain,
			[][]ea.Extension{{{Type: DefaultExtensionType, Data: ext}}, {{Type: DefaultExtensionType, Data: ext}}})
		peer.sendAuth(req.Context, auth)
		assertRejected(t, c, peer, hs, func(err error) bool {
			var e *Error
			return errors.As(err, &e) && e.Alert == alertIllegalParameter
		}, "intermediate entry")
	})
	t.Run("twice in the end-entity entry", func(t *testing.T) {
		c, peer, hs := victimClient(t, p, k, tlsOpts{}, nil)
		req := peer.setupRequest()
		ext := evidence(peer, req)
		reqMsg, _ := req.Marshal()
		cs := peer.tc.ConnectionState()
		auth := forgeAuthenticator(t, &cs, true, reqMsg, req.Context, &p.server,
			[][]ea.Extension{{{Type: DefaultExtensionType, Data: ext}, {Type: DefaultExtensionType, Data: ext}}})
		peer.sendAuth(req.Context, auth)
		assertRejected(t, c, peer, hs, eaKind(ea.KindDecode), "duplicate extension")
	})
	t.Run("not offered", func(t *testing.T) {
		// A relying party that made a plain EA request (no cmw_attestation
		// offered) gets Evidence anyway: unsupported_extension.
		srv, cli := tlsPair(t, p, tlsOpts{})
		ccs := cli.ConnectionState()
		victim, err := ea.NewSession(&ccs, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := victim.NewRequest(nil)
		reqMsg, _ := req.Marshal()
		scs := srv.ConnectionState()
		ch, _ := ComputeChallenge(&scs, crypto.SHA256, ExporterLabel, req.Context, spki(t, &p.server))
		cmw, _ := k.att.Attest(context.Background(), ch)
		ext, _ := MarshalExtensionData(cmw)
		auth := forgeAuthenticator(t, &scs, true, reqMsg, req.Context, &p.server, [][]ea.Extension{{{Type: DefaultExtensionType, Data: ext}}})
		_, err = victim.Validate(auth, &ea.ValidateOptions{VerifyOptions: verifyOpts(p.roots)})
		var e *ea.Error
		if !errors.As(err, &e) || e.Alert != alertUnsupportedExtension {
			t.Fatalf("got %v, want unsupported_extension", err)
		}
	})
}

// TestMalformedEvidence covers T6 end to end: hostile CMW bytes in a valid
// EA are rejected by the verifier's strict decoding.
func TestMalformedEvidence(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	// A collection nesting collections 5000 deep: {"a": {"a": ... }}.
	bomb := make([]byte, 0, 20000)
	for range 5000 {
		bomb = append(bomb, 0xa1, 0x61, 'a')
	}
	bomb = append(bomb, 0x00)
	cases := map[string][]byte{
		"indefinite length":  {0x9f, 0x78, 0x01, 'a', 0x41, 0x00, 0xff},
		"2^64 length":        {0x83, 0x7b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"depth bomb":         bomb,
		"duplicate JSON key": []byte(`{"a":["application/x","AA"],"a":["application/x","AA"]}`),
		"wrong type":         {0x01},
		"truncated record":   {0x83, 0x78},
	}
	for name, garbage := range cases {
		t.Run(name, func(t *testing.T) {
			c, peer, hs := victimClient(t, p, k, tlsOpts{}, nil)
			req := peer.setupRequest()
			ext, err := MarshalExtensionData(garbage)
			if err != nil {
				t.Fatal(err)
			}
			auth, err := peer.sess.Authenticate(req, &p.server, []ea.Extension{{Type: DefaultExtensionType, Data: ext}})
			if err != nil {
				t.Fatal(err)
			}
			peer.sendAuth(req.Context, auth)
			assertRejected(t, c, peer, hs, rejectedCheck(verifier.CheckFormat), name)
		})
	}
}

// TestOversizedFrames covers T14: size caps are enforced on the header,
// before reading, and a partial send is bounded by the setup deadline.
func TestOversizedFrames(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	t.Run("claimed 16 MiB authenticator", func(t *testing.T) {
		c, peer, hs := victimClient(t, p, k, tlsOpts{}, nil)
		peer.setupRequest()
		peer.tc.Write([]byte{frameAuthenticator, 0xff, 0xff, 0xff})
		assertRejected(t, c, peer, hs, framing, "huge frame")
	})
	t.Run("partial send", func(t *testing.T) {
		c, peer, hs := victimClientWithin(t, p, k, 300*time.Millisecond)
		peer.setupRequest()
		peer.tc.Write([]byte{frameAuthenticator, 0x01, 0x00, 0x00, 1, 2, 3})
		assertRejected(t, c, peer, hs, isErr(context.DeadlineExceeded), "partial send")
	})
	t.Run("unknown frame type", func(t *testing.T) {
		c, peer, hs := victimClient(t, p, k, tlsOpts{}, nil)
		peer.setupRequest()
		peer.send(0x7f, []byte{1})
		assertRejected(t, c, peer, hs, framing, "unknown frame")
	})
	t.Run("data before attestation", func(t *testing.T) {
		c, peer, hs := victimClient(t, p, k, tlsOpts{}, nil)
		peer.setupRequest()
		peer.send(frameData, []byte("early"))
		assertRejected(t, c, peer, hs, isErr(ErrNotAttested), "early data")
	})
}

// TestReattestationFailure covers T25.
func TestReattestationFailure(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	for _, keep := range []bool{false, true} {
		t.Run(map[bool]string{false: "close", true: "keep unattested"}[keep], func(t *testing.T) {
			sw := &switchAttester{inner: k.att}
			srv, cli := tlsPair(t, p, tlsOpts{})
			s, c, serr, cerr := attestedPair(t, srv, cli,
				&Config{Attester: sw, Certificate: &p.server},
				&Config{RequirePeerAttestation: true, Verifier: k.ver, KeepOnFailure: keep})
			if serr != nil || cerr != nil {
				t.Fatal(serr, cerr)
			}
			go func() {
				buf := make([]byte, 64)
				for {
					if _, err := s.Read(buf); err != nil {
						return
					}
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			sw.set(errors.New("platform measurement changed"))
			if _, err := c.Attest(ctx); !errors.Is(err, ErrPeerRefused) {
				t.Fatalf("Attest: %v, want ErrPeerRefused", err)
			}
			if c.PeerAttestation() != nil {
				t.Fatal("PeerAttestation survived a failed re-attestation")
			}
			_, werr := c.Write([]byte("x"))
			if !keep {
				if werr == nil || errors.Is(werr, ErrNotAttested) {
					t.Fatalf("Write after failure: %v, want closed", werr)
				}
				return
			}
			if !errors.Is(werr, ErrNotAttested) {
				t.Fatalf("Write: %v, want ErrNotAttested", werr)
			}
			sw.set(nil)
			att, err := c.Attest(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if att.Seq != 2 {
				t.Fatalf("seq %d", att.Seq)
			}
			if _, err := c.Write([]byte("x")); err != nil {
				t.Fatalf("Write after recovery: %v", err)
			}
		})
	}
}

type switchAttester struct {
	mu    sync.Mutex
	err   error
	inner attester.Attester
}

func (a *switchAttester) set(err error) { a.mu.Lock(); a.err = err; a.mu.Unlock() }

func (a *switchAttester) Attest(ctx context.Context, ch attester.Challenge) ([]byte, error) {
	a.mu.Lock()
	err := a.err
	a.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return a.inner.Attest(ctx, ch)
}

// TestPeerClosesMidExchange covers T28: no goroutine leak, bounded close.
func TestPeerClosesMidExchange(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	before := runtime.NumGoroutine()
	for range 5 {
		c, peer, hs := victimClient(t, p, k, tlsOpts{}, nil)
		peer.setupRequest()
		peer.tc.Close()
		start := time.Now()
		if err := waitErr(t, hs); err == nil {
			t.Fatal("setup succeeded against a closed peer")
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("took %v", d)
		}
		c.Close()
	}
	// A slow attester interrupted by the relying party closing.
	slow := *k.att
	slow.Delay = time.Minute
	srv, cli := tlsPair(t, p, tlsOpts{})
	s, err := Server(srv, &Config{Attester: &slow, Certificate: &p.server})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Client(cli, &Config{RequirePeerAttestation: true, Verifier: k.ver})
	if err != nil {
		t.Fatal(err)
	}
	shs := handshakeAsync(s, time.Minute)
	chs := handshakeAsync(c, 200*time.Millisecond)
	if err := waitErr(t, chs); err == nil {
		t.Fatal("client setup succeeded")
	}
	start := time.Now()
	s.Close()
	waitErr(t, shs)
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Close took %v with an attestation in progress", d)
	}
	if n := goroutinesAbove(before+2, 5*time.Second); n > 0 {
		t.Fatalf("goroutines: %d before, %d more than that + 2 after\n%s", before, n, goroutineDump())
	}
}
