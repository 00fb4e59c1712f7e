package ea

import (
	"crypto/tls"
	"errors"
	"testing"
)

// peerRequest is srv's request as cli parses it off the wire.
func peerRequest(t *testing.T, srv *Session) (*Request, *Request) {
	t.Helper()
	r, err := srv.NewRequest(nil)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := r.Marshal()
	p, err := ParseRequest(w)
	if err != nil {
		t.Fatal(err)
	}
	return r, p
}

// T31: Reserve checks role and context before any costly work, and a
// reserved context is answered exactly once.
func TestReserve(t *testing.T) {
	cli, srv := sessionPair(t, nil, nil)
	_, p := peerRequest(t, srv)
	if err := cli.Reserve(p); err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	if err := cli.Reserve(p); !errors.Is(err, ErrContextUsed) {
		t.Fatalf("second Reserve: got %v, want ErrContextUsed", err)
	}
	cert := schemeCert(tls.Ed25519, "client.test")
	if _, err := cli.Authenticate(p, cert, nil); err != nil {
		t.Fatalf("Authenticate after Reserve: %v", err)
	}
	if _, err := cli.Refuse(p); !errors.Is(err, ErrContextUsed) {
		t.Fatalf("Refuse after the answer: got %v, want ErrContextUsed", err)
	}
	// Wrong role: the server's own request type reflected back to it.
	own, _ := peerRequest(t, srv)
	if err := srv.Reserve(own); err == nil || errors.Is(err, ErrContextUsed) {
		t.Fatalf("Reserve of a CertificateRequest on the server: got %v, want a role error", err)
	}
	// Our own context reflected in a request of the right type.
	r, _ := cli.NewRequest(nil)
	refl := &Request{Type: TypeClientCertificateRequest, Context: r.Context, Extensions: r.Extensions}
	w, _ := refl.Marshal()
	pr, _ := ParseRequest(w)
	if err := cli.Reserve(&Request{Type: TypeCertificateRequest, Context: pr.Context, Extensions: pr.Extensions}); !errors.Is(err, ErrContextUsed) {
		t.Fatalf("Reserve of our own context: got %v, want ErrContextUsed", err)
	}
}

// A cancelled request's late answer is recognised once; a never-sent or a
// second answer is not.
func TestCancelLateAnswer(t *testing.T) {
	cli, srv := sessionPair(t, nil, nil)
	r, p := peerRequest(t, srv)
	if srv.LateAnswer(r.Context) {
		t.Fatal("LateAnswer of an outstanding request")
	}
	if !srv.Cancel(r) {
		t.Fatal("Cancel of an outstanding request returned false")
	}
	cert := schemeCert(tls.Ed25519, "client.test")
	auth, err := cli.Authenticate(p, cert, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Validate(auth, &ValidateOptions{InsecureSkipChainVerify: true}); !errors.Is(err, ErrContextUsed) {
		t.Fatalf("Validate of a cancelled request's answer: got %v, want ErrContextUsed", err)
	}
	if !srv.LateAnswer(r.Context) {
		t.Fatal("LateAnswer did not recognise the cancelled request")
	}
	if srv.LateAnswer(r.Context) {
		t.Fatal("LateAnswer reported the same context twice")
	}
	if srv.LateAnswer(testBytes("never sent", 32)) {
		t.Fatal("LateAnswer of a context never sent")
	}
}

// T31: the record of contexts is bounded for the session's life; at the
// bound, new requests and answers fail with ErrTooManyContexts.
func TestMaxContexts(t *testing.T) {
	cli, srv := sessionPair(t, &Config{MaxContexts: 3}, &Config{MaxContexts: 3})
	for i := range 3 {
		_, p := peerRequest(t, srv)
		if _, err := cli.Refuse(p); err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
	}
	if _, err := srv.NewRequest(nil); !errors.Is(err, ErrTooManyContexts) {
		t.Fatalf("NewRequest at the bound: got %v, want ErrTooManyContexts", err)
	}
	// The client has answered three contexts: a fourth is refused even
	// before anything is built for it.
	_, other := sessionPair(t, nil, nil)
	_, p4 := peerRequest(t, other)
	if err := cli.Reserve(p4); !errors.Is(err, ErrTooManyContexts) {
		t.Fatalf("Reserve at the bound: got %v, want ErrTooManyContexts", err)
	}
	var alert tls.AlertError
	if err := cli.Reserve(p4); !errors.As(err, &alert) || alert != alertInternalError {
		t.Fatalf("alert %v, want internal_error", alert)
	}
}
