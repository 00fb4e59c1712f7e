package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/ear"
	"github.com/attested-tls/go-expat/verifier/policy"
)

// nextPEMCert returns the first certificate of a PEM bundle and the rest.
func nextPEMCert(b []byte) (*x509.Certificate, []byte, bool) {
	blk, rest := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, nil, false
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, nil, false
	}
	return c, rest, true
}

// verifyEARs checks every EAR in n with the key in keyFile, through the
// one policy loader (a passport policy naming that key), and marks each as
// verified or not. It returns exitRejected if any fails.
func verifyEARs(n *node, keyFile, nonceHex string, maxAge time.Duration, stderr io.Writer) int {
	var ears []*node
	var walk func(*node)
	walk = func(n *node) {
		if n.raw != nil {
			ears = append(ears, n)
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(n)
	if len(ears) == 0 {
		fmt.Fprintln(stderr, "expat: --verify: the input holds no EAR")
		return exitError
	}
	abs, err := filepath.Abs(keyFile)
	if err != nil {
		fmt.Fprintf(stderr, "expat: --verify: %v\n", err)
		return exitError
	}
	head, err := os.ReadFile(abs)
	if err != nil {
		fmt.Fprintf(stderr, "expat: --verify: %v\n", err)
		return exitError
	}
	sec := map[string]any{}
	if bytes.HasPrefix(bytes.TrimSpace(head), []byte("{")) {
		sec["jwks"] = abs
	} else {
		sec["keys"] = []map[string]string{{"key": abs}}
	}
	if maxAge > 0 {
		sec["max_age"] = maxAge.String()
	}
	doc, _ := json.Marshal(map[string]any{"version": 1, "model": "passport", "ear": sec})
	p, err := policy.Parse(doc)
	var v *ear.Verifier
	if err == nil {
		var vv verifier.Verifier
		vv, err = policy.Build(p, nil)
		v, _ = vv.(*ear.Verifier)
	}
	if err != nil || v == nil {
		fmt.Fprintf(stderr, "expat: --verify: %v\n", err)
		return exitError
	}
	status := exitOK
	for _, e := range ears {
		nonce, how, err := earNonce(e, nonceHex)
		if err == nil {
			var exp *verifier.Expected
			if exp, err = ear.ExpectedForNonce(nonce, time.Now()); err == nil {
				_, err = v.VerifyJWT(context.Background(), e.raw, exp)
			}
		}
		ok := err == nil
		e.Verified = &ok
		if ok {
			e.Note = "VERIFIED with " + keyFile + " (signature, profile, age, status); " + how
		} else {
			e.Note = "REJECTED: " + err.Error()
			status = exitRejected
		}
	}
	return status
}

// earNonce is the nonce the EAR must echo: --nonce, or the EAR's own.
func earNonce(e *node, nonceHex string) ([]byte, string, error) {
	if nonceHex != "" {
		b, err := hex.DecodeString(nonceHex)
		if err != nil {
			return nil, "", fmt.Errorf("expat: --nonce: want hex")
		}
		return b, "bound to the given nonce", nil
	}
	for _, c := range e.Claims {
		if c.Name == "claims.eat_nonce" {
			b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(c.Value, "="))
			if err != nil {
				return nil, "", fmt.Errorf("expat: the EAR's eat_nonce is not base64url")
			}
			return b, "the nonce was taken from the EAR itself: its binding to any session is NOT checked (give --nonce)", nil
		}
	}
	return nil, "", fmt.Errorf("expat: the EAR has no eat_nonce; give --nonce")
}
