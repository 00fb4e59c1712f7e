//go:build expattestkit

package main

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/attested-tls/go-expat/expat/expattest/testkit"
	"github.com/attested-tls/go-expat/verifier"
)

// hasTestKit: this binary was built with -tags expattestkit and contains
// the TEST-ONLY test kit, usable only with --insecure-test-kit.
const hasTestKit = true

// testKitBanner is printed whenever the test kit is used.
const testKitBanner = "*** TEST KIT: TEST ONLY, INSECURE: software Evidence signed by a key in ordinary memory; it proves nothing about any platform ***"

func openTestKit(f *attesterFlags) (*localAttester, error) {
	if !f.insecureTestKit {
		return nil, errors.New("expat: --attester testkit is TEST ONLY and needs --insecure-test-kit")
	}
	if f.testKitKey == "" {
		return nil, errors.New("expat: --attester testkit needs --test-kit-key FILE (a PEM EC PRIVATE KEY)")
	}
	b, err := os.ReadFile(f.testKitKey)
	if err != nil {
		return nil, fmt.Errorf("expat: --test-kit-key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "EC PRIVATE KEY" {
		return nil, errors.New("expat: --test-kit-key: want a PEM EC PRIVATE KEY")
	}
	key, err := x509.ParseECPrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("expat: --test-kit-key: %w", err)
	}
	fmt.Fprintln(os.Stderr, testKitBanner)
	a := &testkit.Attester{Key: key}
	if f.testKitMeasure != "" {
		name, h, ok := strings.Cut(f.testKitMeasure, "=")
		v, err := hex.DecodeString(h)
		if !ok || name == "" || err != nil {
			return nil, errors.New("expat: --test-kit-measurement: want NAME=HEX")
		}
		a.Measurements = []verifier.Measurement{{Name: name, Value: v}}
	}
	return &localAttester{Attester: a, Desc: testKitBanner}, nil
}

func testKitVerifier(keys []*ecdsa.PublicKey, refs []verifier.Measurement) (verifier.Verifier, error) {
	fmt.Fprintln(os.Stderr, testKitBanner)
	return &testkit.Verifier{TrustedKeys: keys, ReferenceMeasurements: refs}, nil
}
