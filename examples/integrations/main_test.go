package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	var out bytes.Buffer
	err := run(nil, &out)
	if errors.Is(err, errNoSimulator) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{
		"GET / -> hello over HTTP/2.0 (ALPN h2)",
		"server attestation: #1 tpm2 affirming",
		"POST /transfer -> transferred 100 EUR after client attestation #1 tpm2",
		"re-attested the server on the same connection: #2 tpm2",
		"Check -> SERVING over expat-grpc/1, TLS 1.3 true",
		"Watch -> SERVING",
		"re-attested the server during the stream: #2 tpm2",
		"Watch -> NOT_SERVING",
		"connected (echo/1 over expat-quic/1/echo/1); server attestation #1 tpm2 affirming",
		"stream -> echo hello, client attestation #1 tpm2 affirming",
		"the server re-attested the client",
		"re-attested the server: #2 tpm2",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if err := run([]string{"nope"}, &out); err == nil {
		t.Error("unknown demo accepted")
	}
}
