package local

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// maxQuery bounds the newSession query string: a 64-byte nonce is 88
// base64url characters.
const maxQuery = 256

// maxAcceptRanges bounds the media ranges looked at in Accept headers.
const maxAcceptRanges = 32

// nonceQuery is a parsed newSession query: the relying party's nonce, or
// the size of a nonce to mint.
type nonceQuery struct {
	nonce []byte
	size  int
}

// parseNewSessionQuery parses the query of a newSession request, as
// Veraison does (nonce=<base64url> or nonceSize=<8..64>, mutually
// exclusive, neither: a server-chosen nonce), but strictly: only those two
// parameters, each at most once, canonical encodings only, and only the
// nonce sizes this service can match (32 and 64 bytes; see the package
// documentation).
func parseNewSessionQuery(raw string) (nonceQuery, error) {
	if raw == "" {
		return nonceQuery{size: DefaultNonceSize}, nil
	}
	if len(raw) > maxQuery {
		return nonceQuery{}, errors.New("query too long")
	}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return nonceQuery{}, errors.New("malformed query")
	}
	for k, v := range vals {
		if k != "nonce" && k != "nonceSize" {
			return nonceQuery{}, fmt.Errorf("unknown query parameter %q", k)
		}
		if len(v) != 1 {
			return nonceQuery{}, fmt.Errorf("query parameter %s given %d times", k, len(v))
		}
	}
	n, hasNonce := vals["nonce"]
	sz, hasSize := vals["nonceSize"]
	switch {
	case !hasNonce && !hasSize: // e.g. "&": no parameter after all
		return nonceQuery{size: DefaultNonceSize}, nil
	case hasNonce && hasSize:
		return nonceQuery{}, errors.New("nonce and nonceSize are mutually exclusive")
	case hasSize:
		size, err := parseSize(sz[0])
		if err != nil {
			return nonceQuery{}, err
		}
		if err := supportedSize(size); err != nil {
			return nonceQuery{}, err
		}
		return nonceQuery{size: size}, nil
	}
	nonce, err := decodeBase64URL(n[0])
	if err != nil {
		return nonceQuery{}, errors.New("nonce must be canonical base64url")
	}
	if err := supportedSize(len(nonce)); err != nil {
		return nonceQuery{}, err
	}
	return nonceQuery{nonce: nonce}, nil
}

// parseSize parses a decimal nonceSize: digits only, no sign, no leading
// zero.
func parseSize(s string) (int, error) {
	if len(s) == 0 || len(s) > 2 || s[0] == '0' {
		return 0, errors.New("nonceSize must be in range 8..64")
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, errors.New("nonceSize must be in range 8..64")
		}
	}
	n, _ := strconv.Atoi(s)
	return n, nil
}

// supportedSize accepts Veraison's range (8..64) and, within it, only the
// sizes whose value a backend compares: 32 (TPM qualifyingData) and 64
// (64-byte user data).
func supportedSize(n int) error {
	if n < 8 || n > 64 {
		return fmt.Errorf("nonce must be between 8 and 64 bytes long; got %d", n)
	}
	if n != 32 && n != 64 {
		return fmt.Errorf("nonce of %d bytes: this Verifier matches Evidence against 32-byte (TPM qualifyingData) or 64-byte (report data) nonces only", n)
	}
	return nil
}

// decodeBase64URL accepts padded (what Veraison and verifier/veraison
// send) or unpadded base64url, in canonical form only.
func decodeBase64URL(s string) ([]byte, error) {
	enc := base64.RawURLEncoding
	if strings.HasSuffix(s, "=") {
		enc = base64.URLEncoding
	}
	b, err := enc.Strict().DecodeString(s)
	if err != nil {
		return nil, err
	}
	if enc.EncodeToString(b) != s {
		return nil, errors.New("non-canonical base64url")
	}
	return b, nil
}

// newSessionID returns a random (version 4) UUID in its canonical
// lowercase form.
func newSessionID(r io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32], nil
}

// parseSessionID accepts exactly the form newSessionID produces.
func parseSessionID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	for i := range len(s) {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return "", false
			}
		}
	}
	return s, true
}

// acceptable reports whether the Accept header values admit one of
// offered. No Accept header admits everything; media ranges with q=0 are
// refusals; malformed ranges are ignored.
func acceptable(values []string, offered ...string) bool {
	if len(values) == 0 {
		return true
	}
	n := 0
	for _, v := range values {
		for _, rng := range strings.Split(v, ",") {
			if n++; n > maxAcceptRanges {
				return false
			}
			rng = strings.TrimSpace(rng)
			if rng == "" {
				continue
			}
			mt, params, err := mime.ParseMediaType(rng)
			if err != nil {
				continue
			}
			if q, ok := params["q"]; ok {
				f, err := strconv.ParseFloat(q, 64)
				if err != nil || f <= 0 || f > 1 {
					continue
				}
			}
			if mt == "*/*" {
				return true
			}
			for _, o := range offered {
				if mt == o || (mt == "application/*" && strings.HasPrefix(o, "application/")) {
					return true
				}
			}
		}
	}
	return false
}

// evidenceContentType checks the Content-Type of an Evidence submission:
// exactly one, application/cmw+cbor or application/cmw+json (which may
// say charset=utf-8), no other parameter. It reports whether JSON was
// declared.
func evidenceContentType(values []string) (bool, error) {
	bad := fmt.Errorf("Content-Type must be %s or %s", MediaTypeCMWCBOR, MediaTypeCMWJSON)
	if len(values) != 1 {
		return false, bad
	}
	mt, params, err := mime.ParseMediaType(values[0])
	if err != nil {
		return false, bad
	}
	switch mt {
	case MediaTypeCMWCBOR:
		if len(params) != 0 {
			return false, bad
		}
		return false, nil
	case MediaTypeCMWJSON:
		for k, v := range params {
			if k != "charset" || !strings.EqualFold(v, "utf-8") {
				return false, bad
			}
		}
		return true, nil
	}
	return false, bad
}

// readBody reads a request body of at most limit bytes, refusing a larger
// declared Content-Length before reading. It returns the HTTP status to
// answer on error.
func readBody(w http.ResponseWriter, r *http.Request, limit int) ([]byte, int, error) {
	if r.ContentLength > int64(limit) {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("evidence larger than %d bytes", limit)
	}
	buf, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(limit)))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("evidence larger than %d bytes", limit)
		}
		return nil, http.StatusBadRequest, errors.New("unable to read evidence from the request body")
	}
	if len(buf) == 0 {
		return nil, http.StatusBadRequest, errors.New("unable to read evidence from the request body: empty")
	}
	return buf, 0, nil
}

// emptyBody refuses a newSession request that carries a body.
func emptyBody(r *http.Request) error {
	if r.ContentLength > 0 {
		return errors.New("newSession takes no body")
	}
	if r.ContentLength < 0 && r.Body != nil {
		var one [1]byte
		if n, _ := io.ReadFull(r.Body, one[:]); n > 0 {
			return errors.New("newSession takes no body")
		}
	}
	return nil
}
