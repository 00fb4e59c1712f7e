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
	for _, want := range []string{`subject="client.eaexchange.test"`, `subject="server-ea.eaexchange.test"`, "ECDSAWithP256AndSHA256", "TLS_AES_128_GCM_SHA256"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
