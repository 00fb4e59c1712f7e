package tpm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"sync"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// DefaultSignTimeout bounds Key.Sign, which has no context.
const DefaultSignTimeout = 10 * time.Second

// Key is a TPM-resident ECC P-256 signing key for an Exported
// Authenticator's end-entity certificate: not restricted, signing only,
// fixedTPM|fixedParent|sensitiveDataOrigin, so its private part never
// leaves the TPM. It implements crypto.Signer (ECDSA with SHA-256, ASN.1
// signatures), so it can be the PrivateKey of a tls.Certificate. Attest
// certifies it with TPM2_Certify when the challenge names it.
type Key struct {
	a    *Attester
	h    tpm2.NamedHandle
	pub  []byte // TPMT_PUBLIC
	spki []byte
	key  *ecdsa.PublicKey

	mu     sync.Mutex
	closed bool
}

var _ crypto.Signer = (*Key)(nil)

func keyTemplate(unique []byte) tpm2.TPMTPublic {
	return eccSigningTemplate(tpm2.TPMAObject{
		FixedTPM:            true,
		FixedParent:         true,
		SensitiveDataOrigin: true,
		UserWithAuth:        true,
		NoDA:                true,
		SignEncrypt:         true,
	}, unique)
}

// NewKey creates a fresh signing key in the TPM: a primary key of the
// owner hierarchy whose template carries 32 random bytes, so each call
// yields a different key. It stays loaded (one transient object) until
// Key.Close or Attester.Close: without a resource manager a TPM holds only
// a few transient objects (3 on the reference simulator, counting the AK).
func (a *Attester) NewKey(ctx context.Context) (*Key, error) {
	unique := make([]byte, 32)
	if _, err := io.ReadFull(rand.Reader, unique); err != nil {
		return nil, fmt.Errorf("tpm: %w", err)
	}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil, ErrClosed
	}
	a.mu.Unlock()
	k := &Key{a: a}
	err := a.conn.do(ctx, func(s *session) error {
		rsp, err := run(s, "create key", func(t transport.TPM) (*tpm2.CreatePrimaryResponse, error) {
			return tpm2.CreatePrimary{
				PrimaryHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(a.cfg.OwnerAuth)},
				InPublic:      tpm2.New2B(keyTemplate(unique)),
			}.Execute(t)
		})
		if err != nil {
			return err
		}
		k.h = tpm2.NamedHandle{Handle: rsp.ObjectHandle, Name: rsp.Name}
		p, err := rsp.OutPublic.Contents()
		if err == nil {
			var pk crypto.PublicKey
			pk, err = tpm2.Pub(*p)
			if err == nil {
				k.key = pk.(*ecdsa.PublicKey)
				k.spki, err = x509.MarshalPKIXPublicKey(k.key)
			}
		}
		if err != nil {
			s.flush(k.h.Handle)
			return &Error{Op: "create key", Err: err}
		}
		k.pub = tpm2.Marshal(p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed { // closed meanwhile: do not leak the object
		_ = k.close(ctx, false)
		return nil, ErrClosed
	}
	a.keys = append(a.keys, k)
	return k, nil
}

// Public returns the key's *ecdsa.PublicKey.
func (k *Key) Public() crypto.PublicKey { return k.key }

// SPKI returns the key's DER SubjectPublicKeyInfo.
func (k *Key) SPKI() []byte { return bytes.Clone(k.spki) }

// TPMPublic returns the key's TPMT_PUBLIC (TPM marshalling).
func (k *Key) TPMPublic() []byte { return bytes.Clone(k.pub) }

// Sign signs a SHA-256 digest with DefaultSignTimeout. The random source is
// the TPM's own; rand is ignored.
func (k *Key) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultSignTimeout)
	defer cancel()
	return k.SignContext(ctx, digest, opts)
}

// SignContext signs a SHA-256 digest with TPM2_Sign and returns an ASN.1
// ECDSA signature.
func (k *Key) SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts == nil || opts.HashFunc() != crypto.SHA256 || len(digest) != crypto.SHA256.Size() {
		return nil, errors.New("tpm: key signs SHA-256 digests only")
	}
	var sig []byte
	err := k.a.conn.do(ctx, func(s *session) error {
		k.mu.Lock()
		closed := k.closed
		k.mu.Unlock()
		if closed {
			return fmt.Errorf("%w: key", ErrClosed)
		}
		rsp, err := run(s, "sign", func(t transport.TPM) (*tpm2.SignResponse, error) {
			return tpm2.Sign{
				KeyHandle: tpm2.AuthHandle{Handle: k.h.Handle, Name: k.h.Name, Auth: tpm2.PasswordAuth(nil)},
				Digest:    tpm2.TPM2BDigest{Buffer: digest},
				InScheme: tpm2.TPMTSigScheme{
					Scheme:  tpm2.TPMAlgECDSA,
					Details: tpm2.NewTPMUSigScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSchemeHash{HashAlg: tpm2.TPMAlgSHA256}),
				},
				Validation: tpm2.TPMTTKHashCheck{Tag: tpm2.TPMSTHashCheck, Hierarchy: tpm2.TPMRHNull},
			}.Execute(t)
		})
		if err != nil {
			return err
		}
		ecc, err := rsp.Signature.Signature.ECDSA()
		if err != nil {
			return &Error{Op: "sign", Err: err}
		}
		sig, err = asn1ECDSA(ecc.SignatureR.Buffer, ecc.SignatureS.Buffer)
		if err != nil {
			return &Error{Op: "sign", Err: err}
		}
		return nil
	})
	return sig, err
}

func asn1ECDSA(r, s []byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(new(big.Int).SetBytes(r))
		b.AddASN1BigInt(new(big.Int).SetBytes(s))
	})
	return b.Bytes()
}

// Close flushes the key from the TPM.
func (k *Key) Close(ctx context.Context) error { return k.close(ctx, true) }

func (k *Key) close(ctx context.Context, unlink bool) error {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return nil
	}
	k.closed = true
	k.mu.Unlock()
	if unlink {
		k.a.mu.Lock()
		k.a.keys = slices.DeleteFunc(k.a.keys, func(c *Key) bool { return c == k })
		k.a.mu.Unlock()
	}
	return k.a.conn.do(ctx, func(s *session) error {
		_, err := run(s, "flush key", func(t transport.TPM) (*tpm2.FlushContextResponse, error) {
			return tpm2.FlushContext{FlushHandle: k.h.Handle}.Execute(t)
		})
		return err
	})
}
