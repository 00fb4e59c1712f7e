// Package attester defines how go-expat obtains Evidence: the Attester
// interface that every backend (attester/tpm, attester/sevsnp, attester/tdx,
// attester/cca) implements, and Challenge, the connection-bound value that the
// Evidence must carry.
//
// # The challenge layout
//
// draft-fossati-seat-expat (2026-09 editor's copy) defines two values that
// Evidence must contain: the binding, Hash(SPKI || exported), and
// AIK_pub_hash, Hash(SPKI), where Hash is the TLS 1.3 suite's hash (32 or 48
// bytes) and SPKI is the DER SubjectPublicKeyInfo of the Exported
// Authenticator's end-entity certificate. The draft does not say how the two
// are laid into a fixed-size user-data field. go-expat uses one layout for
// every backend, keyed only by the field's size:
//
//	64-byte fields (SEV-SNP REPORT_DATA, TDX REPORTDATA, CCA realm challenge,
//	test-kit eat_nonce):      SHA-512(binding || AIK_pub_hash)
//	32-byte fields (TPM 2.0 qualifyingData, which is at most 34 bytes on
//	SHA-256-only TPMs):      SHA-256(binding || AIK_pub_hash)
//
// binding and AIK_pub_hash both have the suite's hash length, so the
// concatenation is unambiguous. Hashing (rather than copying the two values
// side by side) makes the layout identical for SHA-256 and SHA-384 suites,
// whose raw values (96 bytes) would not fit a 64-byte field. Vectors are in
// testdata/expat/.
package attester

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
)

// Attester produces Evidence, wrapped in a CMW, that carries a challenge.
//
// Implementations must put the challenge into signed Evidence (never beside
// it) using the layout of the field they fill (ReportData64 or
// QualifyingData32), and must be safe for concurrent use or document
// otherwise.
type Attester interface {
	// Attest returns the serialized CMW (JSON or CBOR) carrying Evidence
	// bound to ch. It must honour ctx's deadline.
	Attest(ctx context.Context, ch Challenge) ([]byte, error)
}

// Challenge is the connection-bound input to an attestation, computed by
// package expat from the TLS exporter and the Exported Authenticator's key.
type Challenge struct {
	// Hash is the TLS 1.3 suite's hash: crypto.SHA256 or crypto.SHA384.
	Hash crypto.Hash
	// Binding is Hash(SPKI || exported).
	Binding []byte
	// AIKPubHash is Hash(SPKI).
	AIKPubHash []byte
}

// ErrInvalidChallenge reports a Challenge whose fields are inconsistent.
var ErrInvalidChallenge = errors.New("attester: invalid challenge")

// Check reports whether c is well formed: a supported hash and both values
// of that hash's length.
func (c Challenge) Check() error {
	if c.Hash != crypto.SHA256 && c.Hash != crypto.SHA384 {
		return fmt.Errorf("%w: hash %v is not a TLS 1.3 suite hash", ErrInvalidChallenge, c.Hash)
	}
	if len(c.Binding) != c.Hash.Size() || len(c.AIKPubHash) != c.Hash.Size() {
		return fmt.Errorf("%w: binding and AIK_pub_hash must be %d bytes (got %d and %d)",
			ErrInvalidChallenge, c.Hash.Size(), len(c.Binding), len(c.AIKPubHash))
	}
	return nil
}

// ReportData64 returns the value for 64-byte user-data fields:
// SHA-512(binding || AIK_pub_hash).
func (c Challenge) ReportData64() ([64]byte, error) {
	if err := c.Check(); err != nil {
		return [64]byte{}, err
	}
	h := sha512.New()
	h.Write(c.Binding)
	h.Write(c.AIKPubHash)
	var out [64]byte
	h.Sum(out[:0])
	return out, nil
}

// QualifyingData32 returns the value for TPM 2.0 qualifyingData:
// SHA-256(binding || AIK_pub_hash).
func (c Challenge) QualifyingData32() ([32]byte, error) {
	if err := c.Check(); err != nil {
		return [32]byte{}, err
	}
	h := sha256.New()
	h.Write(c.Binding)
	h.Write(c.AIKPubHash)
	var out [32]byte
	h.Sum(out[:0])
	return out, nil
}
