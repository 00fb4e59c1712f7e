package expathttp

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"

	"github.com/attested-tls/go-expat/expat"
)

// ErrChallenged is returned by AttestPeer when it has written a 401
// challenge asking the client to attest: the handler must return without
// writing anything else. A client using Transport answers the challenge on
// the same connection and repeats the request.
var ErrChallenged = errors.New("expathttp: attestation challenge sent to the client")

// PeerAttestation returns the peer's verified attestation as seen by the
// request or response whose context is ctx, or nil if there is none.
//
// On the server, ctx is r.Context() inside a handler behind ConfigureServer:
// the attestation the client made for this very request if there is one
// (see AttestPeer), otherwise the connection's latest, nil if the client
// has not attested or its latest attestation failed.
//
// On the client, ctx is resp.Request.Context() for a response from
// Transport: the server's attestation in force when the request was sent on
// its connection.
func PeerAttestation(ctx context.Context) *expat.Attestation {
	switch v := ctx.Value(requestKey{}).(type) {
	case *reqState:
		return v.fresh
	case *respState:
		return v.att
	}
	if sc, ok := ctx.Value(serverConnKey{}).(*serverConn); ok {
		return sc.peer()
	}
	return nil
}

// AttestPeer returns an attestation of the client made for this request:
// the client answered, on this connection and within the setup timeout, a
// challenge the server sent in an earlier 401 response. Otherwise it writes
// such a challenge (401, WWW-Authenticate: Expat, the EA request in
// Expat-Request) and returns ErrChallenged; on any other error it writes a
// refusal. Either way the handler must return when the error is not nil.
//
// Use it before a high-impact operation (draft use cases, Section 3.4): the
// Evidence is fresh, bound to this connection and this request's challenge.
// The server's expat.Config must have a Verifier, with
// RequirePeerAttestation or PeerAttestationOnDemand.
func AttestPeer(w http.ResponseWriter, r *http.Request) (*expat.Attestation, error) {
	return attestPeer(w, r, true)
}

func attestPeer(w http.ResponseWriter, r *http.Request, fresh bool) (*expat.Attestation, error) {
	st, _ := r.Context().Value(requestKey{}).(*reqState)
	if st == nil {
		if sc, ok := r.Context().Value(serverConnKey{}).(*serverConn); ok && sc.ep != nil {
			st = &reqState{sc: sc}
		}
	}
	if st == nil {
		err := errors.New("expathttp: AttestPeer outside a handler served by ConfigureServer")
		refuse(w, err)
		return nil, err
	}
	if st.fresh != nil {
		return st.fresh, nil
	}
	if !fresh {
		if att := st.sc.peer(); att != nil {
			return att, nil
		}
	}
	if st.sc.cfg.Verifier == nil {
		err := errors.New("expathttp: client attestation required by a route, but the server's expat.Config has no Verifier")
		refuse(w, err)
		return nil, err
	}
	raw, _, err := st.sc.request()
	if err != nil {
		st.sc.fail(w, r, err)
		return nil, err
	}
	h := w.Header()
	h.Set("WWW-Authenticate", AuthScheme)
	h.Set(HeaderRequest, base64URL(raw))
	h.Set("Cache-Control", "no-store")
	http.Error(w, "expathttp: this request needs a fresh attestation of the client", http.StatusUnauthorized)
	return nil, ErrChallenged
}

// RequirePeerAttestation serves next only to clients whose connection is
// attested (by the setup exchange or a later challenge); others get a 401
// challenge (see AttestPeer).
func RequirePeerAttestation(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := attestPeer(w, r, false); err != nil {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// RequireFreshAttestation serves next only for requests that carry an
// attestation made for them (see AttestPeer): every request to next costs
// the client one attestation and one extra round trip.
func RequireFreshAttestation(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := AttestPeer(w, r); err != nil {
			return
		}
		next.ServeHTTP(w, r)
	})
}

func base64URL(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
