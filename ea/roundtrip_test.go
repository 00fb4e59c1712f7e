package ea

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"testing"
)

var allSchemes = []tls.SignatureScheme{
	tls.ECDSAWithP256AndSHA256, tls.ECDSAWithP384AndSHA384, tls.ECDSAWithP521AndSHA512,
	tls.Ed25519, tls.PSSWithSHA256, tls.PSSWithSHA384, tls.PSSWithSHA512, 0x0809, 0x080a, 0x080b,
}

// TestRoundTripTLS: over a real crypto/tls connection (SHA-256 suite), each
// side requests and validates an authenticator from the other, for every
// scheme.
func TestRoundTripTLS(t *testing.T) {
	for _, scheme := range allSchemes {
		for _, dir := range []string{"server-asks-client", "client-asks-server"} {
			t.Run(fmt.Sprintf("%v/%s", scheme, dir), func(t *testing.T) {
				// Offer exactly this scheme so it is the one used.
				cfg := &Config{SignatureSchemes: []tls.SignatureScheme{scheme}}
				cli, srv := sessionPair(t, cfg, cfg)
				requester, responder := srv, cli
				if dir == "client-asks-server" {
					requester, responder = cli, srv
				}
				ext := Extension{Type: 0xFF00}
				req, err := requester.NewRequest([]Extension{ext})
				if err != nil {
					t.Fatal(err)
				}
				wire, err := req.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				peerReq, err := ParseRequest(wire)
				if err != nil {
					t.Fatal(err)
				}
				cert := schemeCert(scheme, "peer.test")
				leafExt := []Extension{{Type: 0xFF00, Data: []byte("evidence")}}
				auth, err := responder.Authenticate(peerReq, cert, leafExt)
				if err != nil {
					t.Fatal(err)
				}
				usage := x509.ExtKeyUsageClientAuth
				if dir == "client-asks-server" {
					usage = x509.ExtKeyUsageServerAuth
				}
				got, err := requester.Validate(auth, &ValidateOptions{VerifyOptions: &x509.VerifyOptions{
					Roots: testCAInstance().pool(), KeyUsages: []x509.ExtKeyUsage{usage}, CurrentTime: testNotBefore.AddDate(1, 0, 0)}})
				if err != nil {
					t.Fatal(err)
				}
				if got.Scheme != scheme {
					t.Errorf("scheme = %v, want %v", got.Scheme, scheme)
				}
				if got.Chain[0].Subject.CommonName != "peer.test" || len(got.VerifiedChains) == 0 {
					t.Errorf("unexpected chain %v / %d verified", got.Chain[0].Subject, len(got.VerifiedChains))
				}
				if len(got.Extensions) != 1 || string(got.Extensions[0].Data) != "evidence" {
					t.Errorf("extensions = %v", got.Extensions)
				}
				// Second validation of the same authenticator: replay.
				if _, err := requester.Validate(auth, &ValidateOptions{InsecureSkipChainVerify: true}); !errors.Is(err, ErrContextUsed) {
					t.Errorf("replay: got %v, want ErrContextUsed", err)
				}
				// Second authenticator for the same request.
				if _, err := responder.Authenticate(peerReq, cert, nil); !errors.Is(err, ErrContextUsed) {
					t.Errorf("second Authenticate: got %v, want ErrContextUsed", err)
				}
			})
		}
	}
}
