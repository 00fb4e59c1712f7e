//go:build !expattestkit

package main

import (
	"crypto/ecdsa"
	"errors"

	"github.com/attested-tls/go-expat/verifier"
)

// hasTestKit says whether this binary was built with the TEST-ONLY test
// kit (go build -tags expattestkit). Released binaries are not.
const hasTestKit = false

var errNoTestKit = errors.New("expat: this binary has no test kit (it is TEST ONLY: build with -tags expattestkit)")

func openTestKit(*attesterFlags) (*localAttester, error) { return nil, errNoTestKit }

func testKitVerifier([]*ecdsa.PublicKey, []verifier.Measurement) (verifier.Verifier, error) {
	return nil, errNoTestKit
}
