package ear

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/verifier"
)

// Key-bound passports: an EAR that attests the Exported Authenticator's
// key (Veraison's key-attestation akpub) and carries no eat_nonce, so that
// one EAR serves every connection made with that key until it expires.
//
// The Evidence behind such an EAR cannot carry a connection's challenge;
// it carries the key challenge instead, defined here and only here:
//
//	nonce        = 32 random bytes from the Issuer, one per issuance
//	Binding      = SHA-256(KeyChallengeLabel || 0x00 || SPKI || nonce)
//	AIKPubHash   = SHA-256(SPKI)
//	Hash         = SHA-256, whatever suite the connections use
//
// laid into the Evidence's user-data field like any attester.Challenge
// (ReportData64 or QualifyingData32). SPKI is the DER
// SubjectPublicKeyInfo of the Exported Authenticator's end-entity key. The
// Evidence thus commits to the key and to this issuance, never to one
// connection; the nonce keeps old Evidence from being appraised again. A
// connection's binding is Hash(SPKI || exported), whose input begins with
// SPKI's DER SEQUENCE tag 0x30, while the key challenge's input begins with
// the label: the two kinds of challenge are never equal, so Evidence made
// for an issuance is never valid for a connection or the reverse.

// KeyChallengeLabel separates the key challenge from a connection's
// binding (see above).
const KeyChallengeLabel = "go-expat key-bound passport v1"

// KeyRequestLifetime is how long after NewKeyRequest an Issuer still
// issues for the request: the Evidence is at most this much older than the
// EAR that vouches for it.
const KeyRequestLifetime = time.Minute

// keyNonceSize is the size of an issuance nonce.
const keyNonceSize = 32

// KeyChallenge returns the challenge that Evidence for a key-bound
// passport carries: the EA key spki (DER SubjectPublicKeyInfo) and the
// Issuer's issuance nonce, as laid out above. Issuers and attesters that
// run the exchange themselves (a remote Issuer whose session supplies the
// nonce) use it; NewKeyRequest calls it.
func KeyChallenge(spki, nonce []byte) (attester.Challenge, error) {
	if len(spki) == 0 {
		return attester.Challenge{}, errors.New("ear: key challenge without a SubjectPublicKeyInfo")
	}
	if len(nonce) != keyNonceSize {
		return attester.Challenge{}, fmt.Errorf("ear: key challenge nonce of %d bytes, want %d", len(nonce), keyNonceSize)
	}
	b := sha256.New()
	b.Write([]byte(KeyChallengeLabel))
	b.Write([]byte{0})
	b.Write(spki)
	b.Write(nonce)
	k := sha256.Sum256(spki)
	return attester.Challenge{Hash: crypto.SHA256, Binding: b.Sum(nil), AIKPubHash: k[:]}, nil
}

// KeyRequest is one issuance of a key-bound passport: the EA key, a fresh
// nonce from the Issuer and the Challenge the Evidence must carry. It is
// used once (IssueForKey), by the Issuer that made it, within
// KeyRequestLifetime.
type KeyRequest struct {
	issuer  *Issuer
	spki    []byte
	pub     crypto.PublicKey
	ch      attester.Challenge
	created time.Time
	used    atomic.Bool
}

// NewKeyRequest starts the issuance of a key-bound passport for the
// Exported Authenticator key whose DER SubjectPublicKeyInfo is spki: it
// draws the issuance nonce (from Rand) and returns the request, whose
// Challenge the attester's Evidence must carry.
func (i *Issuer) NewKeyRequest(spki []byte) (*KeyRequest, error) {
	if err := i.check(); err != nil {
		return nil, err
	}
	pub, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		return nil, fmt.Errorf("ear: key-bound passport: EA key: %w", err)
	}
	r := i.Rand
	if r == nil {
		r = rand.Reader
	}
	nonce := make([]byte, keyNonceSize)
	if _, err := io.ReadFull(r, nonce); err != nil {
		return nil, fmt.Errorf("ear: issuance nonce: %w", err)
	}
	spki = append([]byte(nil), spki...)
	ch, err := KeyChallenge(spki, nonce)
	if err != nil {
		return nil, err
	}
	return &KeyRequest{issuer: i, spki: spki, pub: pub, ch: ch, created: i.now()}, nil
}

// Challenge returns the challenge the Evidence for r must carry
// (KeyChallenge of the key and the issuance nonce).
func (r *KeyRequest) Challenge() attester.Challenge {
	return attester.Challenge{
		Hash:       r.ch.Hash,
		Binding:    append([]byte(nil), r.ch.Binding...),
		AIKPubHash: append([]byte(nil), r.ch.AIKPubHash...),
	}
}

// IssueForKey appraises evidence, which must carry r's Challenge, with the
// Appraiser (Expected: that challenge, the key of r as SPKI and
// PublicKey) and, if it is accepted, returns a key-bound EAR: Veraison's
// key attestation with akpub = the key of r, no eat_nonce, exp = iat +
// Validity. r must come from this Issuer's NewKeyRequest, no longer ago
// than KeyRequestLifetime, and is used up by the call whatever its
// outcome. A rejection by the Appraiser is returned as is.
func (i *Issuer) IssueForKey(ctx context.Context, r *KeyRequest, evidence []byte) ([]byte, *verifier.Result, error) {
	if err := i.check(); err != nil {
		return nil, nil, err
	}
	if r == nil || r.issuer != i {
		return nil, nil, errors.New("ear: key request from another Issuer")
	}
	if !r.used.CompareAndSwap(false, true) {
		return nil, nil, errors.New("ear: key request already used")
	}
	now := i.now()
	if age := now.Sub(r.created); age > KeyRequestLifetime || age < -DefaultClockSkew {
		return nil, nil, fmt.Errorf("ear: key request made %v ago, more than %v", age.Round(time.Millisecond), KeyRequestLifetime)
	}
	exp := &verifier.Expected{Challenge: r.Challenge(), SPKI: r.spki, PublicKey: r.pub, Now: now}
	return i.issue(ctx, evidence, exp, nil, r.spki)
}
