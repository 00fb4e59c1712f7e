package verifier_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/attested-tls/go-expat/internal/checktest"
	"github.com/attested-tls/go-expat/verifier"
)

// tiersBestFirst is go-expat's one tier order.
var tiersBestFirst = []verifier.Tier{verifier.TierAffirming, verifier.TierWarning, verifier.TierNone, verifier.TierContraindicated}

func TestWorstTierEveryPair(t *testing.T) {
	for i, a := range tiersBestFirst {
		for j, b := range tiersBestFirst {
			want := tiersBestFirst[max(i, j)]
			if got := verifier.WorstTier(a, b); got != want {
				t.Errorf("WorstTier(%v, %v) = %v, want %v", a, b, got, want)
			}
			if got := a.Worse(b); got != (i > j) {
				t.Errorf("%v.Worse(%v) = %v", a, b, got)
			}
		}
	}
	// A value that is no tier ranks as contraindicated.
	if got := verifier.WorstTier(verifier.TierWarning, verifier.Tier(7)); got != verifier.Tier(7) {
		t.Errorf("unknown tier merged to %v", got)
	}
}

func TestWorstClaim(t *testing.T) {
	// One representative claim per tier, and a second of the same tier.
	claims := map[verifier.Tier][]int8{
		verifier.TierAffirming:       {2, 3},
		verifier.TierWarning:         {32, 33},
		verifier.TierNone:            {1, -1},
		verifier.TierContraindicated: {96, 99},
	}
	for i, ta := range tiersBestFirst {
		for j, tb := range tiersBestFirst {
			for _, a := range claims[ta] {
				for _, b := range claims[tb] {
					got := verifier.WorstClaim(a, b)
					if got != verifier.WorstClaim(b, a) {
						t.Fatalf("WorstClaim(%d, %d) is not symmetric", a, b)
					}
					want := tiersBestFirst[max(i, j)]
					if verifier.TierOf(got) != want || (got != a && got != b) {
						t.Errorf("WorstClaim(%d, %d) = %d, want a claim of tier %v", a, b, got, want)
					}
				}
			}
		}
	}
	for _, v := range []int8{2, 32, 1, -1, 96} {
		if verifier.WorstClaim(0, v) != v || verifier.WorstClaim(v, 0) != v {
			t.Errorf("no claim (0) merged with %d is not %d", v, v)
		}
	}
	tv := verifier.TrustVector{InstanceIdentity: 2, Executables: 32, Hardware: 2}
	tv.Merge(verifier.TrustVector{InstanceIdentity: 96, Executables: 2, Configuration: 2})
	if want := (verifier.TrustVector{InstanceIdentity: 96, Executables: 32, Hardware: 2, Configuration: 2}); tv != want {
		t.Errorf("Merge = %+v, want %+v", tv, want)
	}
}

func TestCheckNames(t *testing.T) {
	seen := map[string]bool{}
	for c := verifier.CheckFormat; c <= verifier.CheckIssuer; c++ {
		b, err := c.MarshalText()
		if err != nil || seen[string(b)] || string(b) != c.String() {
			t.Fatalf("check %d: %q, %v", c, b, err)
		}
		seen[string(b)] = true
		var back verifier.Check
		if err := back.UnmarshalText(b); err != nil || back != c {
			t.Fatalf("round trip of %q: %v, %v", b, back, err)
		}
	}
	if len(seen) != 21 {
		t.Errorf("%d checks", len(seen))
	}
	var c verifier.Check
	if _, err := c.MarshalText(); err == nil {
		t.Error("the zero Check marshals")
	}
	if err := c.UnmarshalText([]byte("Format")); err == nil {
		t.Error("check names are case-sensitive")
	}
}

func TestErrorMessages(t *testing.T) {
	inner := fmt.Errorf("tdx: malformed quote: %w", errors.New("short"))
	err := verifier.Reject(verifier.CheckFormat, inner, "tdx: quote")
	if got, want := err.Error(), "verifier: rejected (format): tdx: quote: malformed quote: short"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	checktest.Rejected(t, err, verifier.CheckFormat)
	if !errors.Is(err, inner) {
		t.Error("cause lost")
	}
	// A cause from another package keeps its prefix.
	err = verifier.Reject(verifier.CheckFormat, errors.New("cmw: trailing data"), "sevsnp: CMW")
	if got, want := err.Error(), "verifier: rejected (format): sevsnp: CMW: cmw: trailing data"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}

	u := verifier.Unavailable(false, verifier.Unavailable(true, nil, "tdx: PCS throttled"), "tdx: collateral")
	var ue *verifier.UnavailableError
	if !errors.As(u, &ue) || !ue.Retryable || !errors.Is(u, verifier.ErrUnavailable) || errors.Is(u, verifier.ErrRejected) {
		t.Errorf("Unavailable over a retryable cause: %v", u)
	}
	if got, want := u.Error(), "verifier: unavailable: tdx: collateral: PCS throttled"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
