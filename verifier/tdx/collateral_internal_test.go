package tdx

import (
	"strings"
	"time"

	"bytes"
	"encoding/hex"
	"fmt"
	"github.com/attested-tls/go-expat/attester/tdx/tdxtest"
	"testing"
)

func TestSplitSigned(t *testing.T) {
	sig := hex.EncodeToString(bytes.Repeat([]byte{1}, 64))
	good := fmt.Sprintf(`{"tcbInfo":{"a":1},"signature":"%s"}`, sig)
	if inner, s, err := splitSigned([]byte(good), "tcbInfo"); err != nil || string(inner) != `{"a":1}` || len(s) != 64 {
		t.Fatalf("splitSigned = %s, %x, %v", inner, s, err)
	}
	for name, in := range map[string]string{
		"duplicate field":  fmt.Sprintf(`{"tcbInfo":{"a":1},"tcbInfo":{"a":2},"signature":"%s"}`, sig),
		"duplicate sig":    fmt.Sprintf(`{"tcbInfo":{"a":1},"signature":"%s","signature":"%s"}`, sig, sig),
		"unknown key":      fmt.Sprintf(`{"tcbInfo":{"a":1},"signature":"%s","x":0}`, sig),
		"trailing":         good + `{}`,
		"short sig":        `{"tcbInfo":{"a":1},"signature":"0102"}`,
		"inner not object": fmt.Sprintf(`{"tcbInfo":[1],"signature":"%s"}`, sig),
		"missing inner":    fmt.Sprintf(`{"signature":"%s"}`, sig),
		"other field name": fmt.Sprintf(`{"enclaveIdentity":{"a":1},"signature":"%s"}`, sig),
		"not json":         `tcbInfo`,
		"unterminated":     good[:len(good)-1],
	} {
		if inner, s, err := splitSigned([]byte(in), "tcbInfo"); err == nil || inner != nil || s != nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzSplitSigned(f *testing.F) {
	sig := hex.EncodeToString(bytes.Repeat([]byte{1}, 64))
	f.Add([]byte(fmt.Sprintf(`{"tcbInfo":{"a":[1,2]},"signature":"%s"}`, sig)))
	f.Add([]byte(`{"tcbInfo":{},"signature":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		inner, sig, err := splitSigned(b, "tcbInfo")
		if err != nil {
			if inner != nil || sig != nil {
				t.Fatal("non-nil result with an error")
			}
			return
		}
		// Re-encoding the parts gives an input with the same meaning.
		re := fmt.Sprintf(`{"tcbInfo":%s,"signature":"%s"}`, inner, hex.EncodeToString(sig))
		inner2, sig2, err := splitSigned([]byte(re), "tcbInfo")
		if err != nil || !bytes.Equal(inner, inner2) || !bytes.Equal(sig, sig2) {
			t.Fatalf("round trip: %v", err)
		}
		for i := 0; i < len(b); i++ {
			if len(bytes.TrimSpace(b[i:])) == 0 {
				break // only trailing whitespace left
			}
			if _, _, err := splitSigned(b[:i], "tcbInfo"); err == nil {
				t.Fatalf("prefix of %d bytes parsed", i)
			}
		}
	})
}

func TestParsePEMChainStrict(t *testing.T) {
	pki, err := tdxtest.NewPKI(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	good := string(tdxtest.PEM(pki.PlatformCA, pki.Root))
	if c, err := parsePEMChain([]byte(good), 2); err != nil || len(c) != 2 {
		t.Fatalf("valid chain: %v", err)
	}
	if _, err := parsePEMChain([]byte(good+"\x00"), 2); err != nil {
		t.Fatalf("chain with the QE's trailing NUL: %v", err)
	}
	for name, in := range map[string]string{
		"leading junk":   "x" + good,
		"junk between":   strings.Replace(good, "-----\n-----BEGIN", "-----\njunk-----BEGIN", 1),
		"trailing junk":  good + "junk",
		"too few blocks": string(tdxtest.PEM(pki.Root)),
		"too many":       good + string(tdxtest.PEM(pki.Root)),
	} {
		if c, err := parsePEMChain([]byte(in), 2); err == nil || c != nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParsePEMChain(f *testing.F) {
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		certs, err := parsePEMChain(b, 3)
		if err != nil && certs != nil {
			t.Fatal("non-nil result with an error")
		}
		if err == nil && len(certs) != 3 {
			t.Fatalf("%d certificates", len(certs))
		}
	})
}
