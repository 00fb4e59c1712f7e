// Package wire is the Arm CCA attestation token format (Arm DEN0137: a CBOR
// tag 399 collection of the platform token and the realm delegated token,
// each a COSE_Sign1), shared by attester/cca (which checks what its
// provider returned), verifier/cca (which appraises it) and the test kit
// attester/cca/ccatest. It parses strictly and checks no signature.
package wire

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/ccatoken"
	"github.com/veraison/ccatoken/platform"
	"github.com/veraison/ccatoken/realm"
	cose "github.com/veraison/go-cose"

	"github.com/attested-tls/go-expat/internal/strictcbor"
)

// Arm CCA Security Model (DEN0137) and the Realm Management Monitor
// specification (DEN0137 1.0-rel0, A7.2): the attestation token is a CMW
// collection, CBOR tag 399, holding the CCA platform token (key 44234) and the
// realm delegated token (key 44241), each a COSE_Sign1.
const (
	tagCCAToken      = 399
	keyPlatformToken = 44234
	keyRealmToken    = 44241

	// MaxTokenSize bounds the size of an attestation token that ParseToken
	// accepts. Real tokens are about 1.5-3 KiB.
	MaxTokenSize = 32 << 10
)

// ErrMalformed matches every token that ParseToken rejects.
var ErrMalformed = errors.New("cca: malformed attestation token")

// strictDecMode rejects what the CCA token grammar never needs: duplicate
// map keys, indefinite lengths, deep nesting, huge arrays and maps. It is only
// used to screen peer bytes before github.com/veraison/ccatoken (which
// tolerates duplicate keys) decodes them.
var strictDecMode = strictcbor.DecMode(strictcbor.Limits{MaxNestedLevels: 16, MaxArrayElements: 256, MaxMapPairs: 256, AllowTags: true})

// Token is a parsed, not yet verified, Arm CCA attestation token.
type Token struct {
	// Raw is a copy of the whole token (tag 399 collection).
	Raw []byte
	// PlatformToken and RealmToken are copies of the two COSE_Sign1
	// messages.
	PlatformToken []byte
	RealmToken    []byte
	// Platform and Realm are the decoded, syntactically valid claims.
	Platform platform.IClaims
	Realm    realm.IClaims

	ev *ccatoken.Evidence
}

// Evidence returns github.com/veraison/ccatoken's view of the token, for
// signature checks (verifier/cca). It is nil for a Token not made by
// ParseToken.
func (t *Token) Evidence() *ccatoken.Evidence { return t.ev }

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// ParseToken decodes an Arm CCA attestation token strictly: at most
// MaxTokenSize bytes, exactly one tag-399 map with exactly the platform and
// realm entries, well-formed COSE_Sign1 messages whose payloads have no
// duplicate keys, no trailing bytes, and claims that
// github.com/veraison/ccatoken validates (a 64-byte realm challenge, a
// platform challenge, an EC2 realm public key, ...). It checks no signature
// (verifier/cca does). The returned Token does not alias b.
func ParseToken(b []byte) (*Token, error) {
	if len(b) == 0 {
		return nil, malformed("empty")
	}
	if len(b) > MaxTokenSize {
		return nil, malformed("%d bytes, more than %d", len(b), MaxTokenSize)
	}
	b = bytes.Clone(b)

	var tagged cbor.RawTag
	if err := strictDecMode.Unmarshal(b, &tagged); err != nil {
		return nil, malformed("not a tagged CBOR item: %v", err)
	}
	if tagged.Number != tagCCAToken {
		return nil, malformed("CBOR tag %d, want %d", tagged.Number, tagCCAToken)
	}
	var entries map[uint64]cbor.RawMessage
	if err := strictDecMode.Unmarshal(tagged.Content, &entries); err != nil {
		return nil, malformed("collection is not a map with unsigned keys: %v", err)
	}
	if len(entries) != 2 {
		return nil, malformed("collection has %d entries, want 2", len(entries))
	}
	var toks [2][]byte
	for i, k := range []uint64{keyPlatformToken, keyRealmToken} {
		raw, ok := entries[k]
		if !ok {
			return nil, malformed("collection has no entry %d", k)
		}
		if err := strictDecMode.Unmarshal(raw, &toks[i]); err != nil {
			return nil, malformed("entry %d is not a byte string: %v", k, err)
		}
		claims, err := checkSign1(toks[i])
		if err != nil {
			return nil, malformed("entry %d: %v", k, err)
		}
		if k == keyRealmToken {
			if err := checkRAK(claims); err != nil {
				return nil, malformed("realm public key: %v", err)
			}
		}
	}

	ev, err := decodeEvidence(b)
	if err != nil {
		return nil, malformed("%v", err)
	}
	return &Token{
		Raw:           b,
		PlatformToken: bytes.Clone(toks[0]),
		RealmToken:    bytes.Clone(toks[1]),
		Platform:      ev.PlatformClaims,
		Realm:         ev.RealmClaims,
		ev:            ev,
	}, nil
}

// checkSign1 screens one COSE_Sign1 (RFC 9052, Section 4.2): well-formed,
// no duplicate keys anywhere (headers or claims), an attached payload that
// is a claims map with integer keys, which it returns.
func checkSign1(b []byte) (map[int64]cbor.RawMessage, error) {
	var v any
	if err := strictDecMode.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("COSE_Sign1: %v", err)
	}
	msg := cose.NewSign1Message()
	if err := msg.UnmarshalCBOR(b); err != nil {
		return nil, fmt.Errorf("COSE_Sign1: %v", err)
	}
	if len(msg.Payload) == 0 {
		return nil, errors.New("COSE_Sign1 has no attached payload")
	}
	var claims map[int64]cbor.RawMessage
	if err := strictDecMode.Unmarshal(msg.Payload, &claims); err != nil {
		return nil, fmt.Errorf("claims are not a map with integer keys: %v", err)
	}
	return claims, nil
}

// claimRealmPublicKey is the realm token's RAK claim (cca-realm-public-key).
const claimRealmPublicKey = 44237

// checkRAK screens a realm public key given as a COSE_Key (RFC 9052,
// Section 7) before go-cose decodes it: github.com/veraison/go-cose v1.3.0
// panics on an EC2/OKP key whose curve parameter (-1) is not an integer.
// Labels must be integers or text, the curve an integer.
func checkRAK(claims map[int64]cbor.RawMessage) error {
	raw, ok := claims[claimRealmPublicKey]
	if !ok {
		return nil // ccatoken reports the missing claim
	}
	var pk []byte
	if err := strictDecMode.Unmarshal(raw, &pk); err != nil {
		return fmt.Errorf("not a byte string: %v", err)
	}
	if len(pk) == 0 || pk[0]>>5 != 5 { // not a CBOR map: a raw EC point
		return nil
	}
	var key map[any]any
	if err := strictDecMode.Unmarshal(pk, &key); err != nil {
		return fmt.Errorf("COSE_Key: %v", err)
	}
	for l, v := range key {
		switch l := l.(type) {
		case int64:
			if l == -1 {
				if _, ok := v.(uint64); !ok {
					if _, ok := v.(int64); !ok {
						return fmt.Errorf("COSE_Key curve of type %T", v)
					}
				}
			}
		case uint64, string:
		default:
			return fmt.Errorf("COSE_Key label of type %T", l)
		}
	}
	return nil
}

// decodeEvidence runs ccatoken on screened input. The recover is a second
// line of defence against panics in ccatoken or go-cose on peer input.
func decodeEvidence(b []byte) (ev *ccatoken.Evidence, err error) {
	defer func() {
		if r := recover(); r != nil {
			ev, err = nil, fmt.Errorf("ccatoken panicked: %v", r)
		}
	}()
	return ccatoken.DecodeAndValidateEvidenceFromCBOR(b)
}
