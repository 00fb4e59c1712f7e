package cca

import (
	"fmt"

	cose "github.com/veraison/go-cose"
)

// verifySign1 checks a COSE_Sign1 signature with key. Only ECDSA algorithms
// (ES256, ES384, ES512) are accepted, as CCA uses.
func verifySign1(b []byte, key any) error {
	msg := cose.NewSign1Message()
	if err := msg.UnmarshalCBOR(b); err != nil {
		return err
	}
	alg, err := msg.Headers.Protected.Algorithm()
	if err != nil {
		return err
	}
	switch alg {
	case cose.AlgorithmES256, cose.AlgorithmES384, cose.AlgorithmES512:
	default:
		return fmt.Errorf("algorithm %v not allowed", alg)
	}
	v, err := cose.NewVerifier(alg, key)
	if err != nil {
		return err
	}
	return msg.Verify(nil, v)
}
