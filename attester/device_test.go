package attester

import (
	"testing"
	"time"
)

// TestRetryPolicyBackoff: Initial doubled per attempt, capped at Max,
// drawn from the upper half, and actually jittered.
func TestRetryPolicyBackoff(t *testing.T) {
	p := RetryPolicy{MaxAttempts: 9, Initial: 100 * time.Millisecond, Max: time.Second}
	for _, tc := range []struct {
		attempt int
		want    time.Duration // before jitter
	}{{1, 100 * time.Millisecond}, {2, 200 * time.Millisecond}, {4, 800 * time.Millisecond}, {5, time.Second}, {60, time.Second}} {
		seen := map[time.Duration]bool{}
		for range 200 {
			d := p.Backoff(tc.attempt)
			if d < tc.want/2 || d > tc.want {
				t.Fatalf("attempt %d: %v, want in [%v, %v]", tc.attempt, d, tc.want/2, tc.want)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("attempt %d: %d distinct waits in 200, not jittered", tc.attempt, len(seen))
		}
	}
}
