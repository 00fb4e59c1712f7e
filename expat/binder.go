package expat

import (
	"crypto"
	"fmt"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/ea"
)

// ComputeChallenge returns the binding and AIK_pub_hash for an Exported
// Authenticator whose end-entity key has the DER SubjectPublicKeyInfo spki,
// answering the request with certificate_request_context reqContext, on the
// connection whose exporter is exp and whose suite hash is h
// (draft -04, Sections 5.1 and 5.2):
//
//	exported     = TLS-Exporter(label, reqContext, 32)
//	binding      = Hash(spki || exported)
//	AIK_pub_hash = Hash(spki)
//
// label is ExporterLabel unless a legacy label was configured explicitly.
// Both sides of a connection compute the same value; the attester puts it
// into signed Evidence and the relying party recomputes it. Because spki is
// the attester's own key and the exporter depends on this connection's
// secrets, a challenge cannot be reflected to the other direction or relayed
// to another connection.
func ComputeChallenge(exp ea.Exporter, h crypto.Hash, label string, reqContext, spki []byte) (attester.Challenge, error) {
	if h != crypto.SHA256 && h != crypto.SHA384 {
		return attester.Challenge{}, fmt.Errorf("expat: hash %v is not a TLS 1.3 suite hash", h)
	}
	if len(spki) == 0 {
		return attester.Challenge{}, fmt.Errorf("expat: empty SubjectPublicKeyInfo")
	}
	exported, err := exp.ExportKeyingMaterial(label, reqContext, ExporterLength)
	if err != nil {
		return attester.Challenge{}, fmt.Errorf("expat: exporter: %w", err)
	}
	if len(exported) != ExporterLength {
		return attester.Challenge{}, fmt.Errorf("expat: exporter returned %d bytes, want %d", len(exported), ExporterLength)
	}
	b := h.New()
	b.Write(spki)
	b.Write(exported)
	k := h.New()
	k.Write(spki)
	return attester.Challenge{Hash: h, Binding: b.Sum(nil), AIKPubHash: k.Sum(nil)}, nil
}
