package local

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
)

func TestParseNewSessionQuery(t *testing.T) {
	n64 := bytes.Repeat([]byte{0xfb}, 64)
	n32 := bytes.Repeat([]byte{0x03}, 32)
	tests := []struct {
		name      string
		raw       string
		wantNonce []byte
		wantSize  int
		wantErr   bool
	}{
		{"empty", "", nil, DefaultNonceSize, false},
		{"lone ampersand (found by fuzzing)", "&", nil, DefaultNonceSize, false},
		{"padded 64", "nonce=" + base64.URLEncoding.EncodeToString(n64), n64, 0, false},
		{"unpadded 64", "nonce=" + base64.RawURLEncoding.EncodeToString(n64), n64, 0, false},
		{"padded 32", "nonce=" + base64.URLEncoding.EncodeToString(n32), n32, 0, false},
		{"escaped padding", "nonce=" + strings.ReplaceAll(base64.URLEncoding.EncodeToString(n32), "=", "%3D"), n32, 0, false},
		{"size 32", "nonceSize=32", nil, 32, false},
		{"size 64", "nonceSize=64", nil, 64, false},
		{"size 8 (Veraison's minimum, no backend)", "nonceSize=8", nil, 0, true},
		{"size 064", "nonceSize=064", nil, 0, true},
		{"size -32", "nonceSize=-32", nil, 0, true},
		{"size empty", "nonceSize=", nil, 0, true},
		{"empty nonce", "nonce=", nil, 0, true},
		{"standard alphabet", "nonce=" + base64.StdEncoding.EncodeToString(n64), nil, 0, true},
		{"semicolon", "nonce=" + base64.URLEncoding.EncodeToString(n32) + ";x=1", nil, 0, true},
		{"repeated size", "nonceSize=32&nonceSize=32", nil, 0, true},
		{"too long", "nonce=" + strings.Repeat("A", 300), nil, 0, true},
		{"case of the name", "Nonce=" + base64.URLEncoding.EncodeToString(n32), nil, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := parseNewSessionQuery(tt.raw)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if !bytes.Equal(q.nonce, tt.wantNonce) || q.size != tt.wantSize {
				t.Fatalf("got nonce %x size %d, want %x %d", q.nonce, q.size, tt.wantNonce, tt.wantSize)
			}
		})
	}
}

func TestSessionIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id, err := newSessionID(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := parseSessionID(id); !ok || got != id {
			t.Fatalf("own id %q refused", id)
		}
		if id[14] != '4' || !strings.ContainsRune("89ab", rune(id[19])) {
			t.Fatalf("%q is not a version 4 UUID", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
	if _, err := newSessionID(bytes.NewReader(make([]byte, 15))); err == nil {
		t.Fatal("short randomness accepted")
	}
}

func TestAcceptable(t *testing.T) {
	tests := []struct {
		values []string
		want   bool
	}{
		{nil, true},
		{[]string{MediaTypeSession}, true},
		{[]string{"text/html, " + MediaTypeSession + ";q=0.5"}, true},
		{[]string{"*/*"}, true},
		{[]string{"application/*"}, true},
		{[]string{"text/*"}, false},
		{[]string{MediaTypeSession + ";q=0"}, false},
		{[]string{MediaTypeSession + ";q=2"}, false},
		{[]string{"garbage;;"}, false},
		{[]string{strings.Repeat("text/html,", 40) + MediaTypeSession}, false},
	}
	for _, tt := range tests {
		if got := acceptable(tt.values, MediaTypeSession); got != tt.want {
			t.Errorf("acceptable(%q) = %v, want %v", tt.values, got, tt.want)
		}
	}
}

// FuzzParseNewSessionQuery: no panic; a result is exactly one of a nonce
// of a supported size or a supported size; the nonce re-encoded in both
// canonical forms parses to itself; a strict prefix of a nonce parameter
// never parses to the same nonce (except the unpadded form of a padded one).
func FuzzParseNewSessionQuery(f *testing.F) {
	f.Add("")
	f.Add("nonce=" + base64.URLEncoding.EncodeToString(make([]byte, 64)))
	f.Add("nonce=" + base64.RawURLEncoding.EncodeToString(make([]byte, 32)))
	f.Add("nonceSize=32")
	f.Add("nonceSize=64&nonce=AAAA")
	f.Add("nonce=%41%41")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := parseNewSessionQuery(raw)
		if err != nil {
			if q.nonce != nil || q.size != 0 {
				t.Fatalf("error %v with a result %+v", err, q)
			}
			return
		}
		switch {
		case q.nonce != nil && q.size == 0:
			if len(q.nonce) != 32 && len(q.nonce) != 64 {
				t.Fatalf("nonce of %d bytes", len(q.nonce))
			}
			for _, enc := range []*base64.Encoding{base64.URLEncoding, base64.RawURLEncoding} {
				s := enc.EncodeToString(q.nonce)
				again, err := parseNewSessionQuery("nonce=" + s)
				if err != nil || !bytes.Equal(again.nonce, q.nonce) {
					t.Fatalf("re-encoded nonce %q: %v", s, err)
				}
				for i := 1; i < len(s); i++ {
					p, err := parseNewSessionQuery("nonce=" + s[:i])
					// Dropping the padding gives the other canonical form.
					if err == nil && bytes.Equal(p.nonce, q.nonce) && s[:i] != base64.RawURLEncoding.EncodeToString(q.nonce) {
						t.Fatalf("prefix %q parses to the same nonce", s[:i])
					}
				}
			}
		case q.nonce == nil && (q.size == 32 || q.size == 64):
		default:
			t.Fatalf("result %+v", q)
		}
	})
}

// FuzzHeaders: the header parsers never panic and accept only what they
// document.
func FuzzHeaders(f *testing.F) {
	f.Add(MediaTypeCMWCBOR, MediaTypeSession, "abcdef01-2345-4789-8bcd-ef0123456789")
	f.Add(MediaTypeCMWJSON+"; charset=UTF-8", "*/*;q=0.1", "")
	f.Add("application/cmw+json; charset=latin1", "application/*;q=0", "ABCDEF01-2345-4789-8bcd-ef0123456789")
	f.Fuzz(func(t *testing.T, ct, accept, id string) {
		isJSON, err := evidenceContentType([]string{ct})
		if err == nil {
			mt := strings.ToLower(strings.TrimSpace(strings.SplitN(ct, ";", 2)[0]))
			if want := MediaTypeCMWJSON; isJSON != (mt == want) || (mt != MediaTypeCMWCBOR && mt != MediaTypeCMWJSON) {
				t.Fatalf("Content-Type %q accepted as JSON=%v", ct, isJSON)
			}
		}
		acceptable([]string{accept}, MediaTypeSession)
		if got, ok := parseSessionID(id); ok {
			if got != id || len(id) != 36 || strings.ToLower(id) != id {
				t.Fatalf("id %q accepted", id)
			}
		}
	})
}
