package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"GET / -> hello over HTTP/2.0, ALPN h2",
		"server attested: test-kit, affirming",
		"POST /transfer -> transferred 100 EUR: client attestation #1",
		"attestation #2",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
