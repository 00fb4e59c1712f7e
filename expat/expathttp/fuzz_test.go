package expathttp

import (
	"bytes"
	"net/http"
	"testing"
)

// FuzzHeaders: the Expat-* header parsers never panic, return nothing on
// error, bound what they return, and round-trip what they accept.
func FuzzHeaders(f *testing.F) {
	f.Add(formatAuthenticator([]byte{1, 2, 3}, []byte{20, 0, 0, 32}))
	f.Add("AA.AA")
	f.Add(".AA")
	f.Add("A=.AA")
	f.Add("120")
	f.Add("0120")
	f.Fuzz(func(t *testing.T, v string) {
		h := http.Header{}
		h.Set(HeaderAuthenticator, v)
		h.Set(HeaderRequest, v)
		h.Set(HeaderAlert, v)
		c, a, ok, err := parseAuthenticatorHeader(h, 1024)
		if err != nil && (ok || c != nil || a != nil) {
			t.Fatal("result on error")
		}
		if ok {
			if len(c) > 255 || len(a) > 1024 || len(a) == 0 {
				t.Fatalf("out of bounds: %d, %d", len(c), len(a))
			}
			if formatAuthenticator(c, a) != v {
				t.Fatalf("%q does not round-trip", v)
			}
		}
		req, err := parseRequestHeader(h)
		if err != nil && req != nil {
			t.Fatal("request on error")
		}
		if req != nil && base64URL(req) != v {
			t.Fatalf("%q does not round-trip", v)
		}
		if al, ok := parseAlert(h); ok && (al == 0 || !bytes.Equal([]byte(v), []byte(fmtUint(uint8(al))))) {
			t.Fatalf("alert %q parsed as %d", v, al)
		}
	})
}

func fmtUint(n uint8) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{'0' + n%10}, b...)
	}
	return string(b)
}
