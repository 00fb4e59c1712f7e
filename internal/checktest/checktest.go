// Package checktest is the one assertion that go-expat's tests use for
// verifier rejections: the error is a *verifier.RejectedError of the
// expected Check, and its message never repeats itself; and SameVerdict,
// the comparison of two verdicts in differential tests.
package checktest

import (
	"errors"
	"strings"
	"testing"

	"github.com/attested-tls/go-expat/verifier"
)

// Rejected fails t unless err matches verifier.ErrRejected, is a
// *verifier.RejectedError whose Check is want, and has a message without
// repetitions (see NoRepeat).
func Rejected(t testing.TB, err error, want verifier.Check) {
	t.Helper()
	var re *verifier.RejectedError
	if !errors.As(err, &re) || !errors.Is(err, verifier.ErrRejected) {
		t.Fatalf("got %v, want a %v rejection", err, want)
	}
	if re.Check != want {
		t.Fatalf("rejected by %v (%v), want %v", re.Check, err, want)
	}
	NoRepeat(t, err)
}

// NoRepeat fails t if err's message, split at ": ", has a segment twice
// (a package prefix such as "tdx" repeated, or a cause printed twice).
func NoRepeat(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	seen := map[string]bool{}
	for _, seg := range strings.Split(err.Error(), ": ") {
		seg = strings.TrimSpace(seg)
		if seg == "" {
			continue
		}
		if seen[seg] {
			t.Fatalf("message repeats %q: %v", seg, err)
		}
		seen[seg] = true
	}
}

// SameVerdict fails t (without stopping it) unless a and b are the same
// verdict: both nil, or both errors with the same message and, for
// rejections, the same Check. For differential tests: a cached path
// against the uncached one, a new implementation against the old.
func SameVerdict(t testing.TB, name string, a, b error) {
	t.Helper()
	if (a == nil) != (b == nil) {
		t.Errorf("%s: %v, want %v", name, a, b)
		return
	}
	if a == nil {
		return
	}
	var ra, rb *verifier.RejectedError
	if errors.As(a, &ra) != errors.As(b, &rb) || (ra != nil && ra.Check != rb.Check) || a.Error() != b.Error() {
		t.Errorf("%s: %v, want %v", name, a, b)
	}
}
