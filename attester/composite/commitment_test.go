package composite_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/attested-tls/go-expat/attester/composite"
)

// The layout's test vectors, computed independently of this package (with
// Python's hashlib over the preimage written out by hand):
//
//	"go-expat composite v1" 00 | n | (len label | label | len16 key | key)*
func TestCommitmentVectors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		links []composite.Link
		want  string
	}{
		{"one vTPM", []composite.Link{{Label: "vtpm", Key: []byte{1, 2, 3}}},
			"e4440c3440dd1f991cc5250cd34c7a2db109ffb2c6275e4b8e42c2b02ab2874ec1ed6bd40e6950ed477955b2c948c3c0b801121be6906cffac2d020749fb6eeb"},
		{"two items, given out of label order", []composite.Link{{Label: "vtpm", Key: []byte{1, 2, 3}}, {Label: "gpu", Key: []byte{0xaa, 0xbb}}},
			"088bcd9bb25158407614e357f26e86fa8ec3dee1ed27a98e467aa2c39a162473409d02c2a116ffe5c7f60a13001fda10cf21f51c9d147a81800c0336976f44c0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := composite.Commitment(composite.AnchorLabel, tc.links)
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(got[:]) != tc.want {
				t.Errorf("got %x, want %s", got, tc.want)
			}
		})
	}
}

func TestCommitmentRejects(t *testing.T) {
	key := []byte{1}
	many := make([]composite.Link, composite.MaxBound+1)
	for i := range many {
		many[i] = composite.Link{Label: string(rune('a' + i)), Key: key}
	}
	for _, tc := range []struct {
		name  string
		links []composite.Link
	}{
		{"none", nil},
		{"too many", many},
		{"empty label", []composite.Link{{Label: "", Key: key}}},
		{"long label", []composite.Link{{Label: strings.Repeat("l", composite.MaxLabelSize+1), Key: key}}},
		{"the anchor's label", []composite.Link{{Label: composite.AnchorLabel, Key: key}}},
		{"repeated label", []composite.Link{{Label: "vtpm", Key: key}, {Label: "vtpm", Key: []byte{2}}}},
		{"empty key", []composite.Link{{Label: "vtpm"}}},
		{"long key", []composite.Link{{Label: "vtpm", Key: bytes.Repeat([]byte{1}, composite.MaxKeySize+1)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := composite.Commitment(composite.AnchorLabel, tc.links); !errors.Is(err, composite.ErrLayout) {
				t.Fatalf("got %v, want ErrLayout", err)
			}
		})
	}
	// A different key or label is a different commitment.
	a, _ := composite.Commitment(composite.AnchorLabel, []composite.Link{{Label: "vtpm", Key: []byte{1}}})
	b, _ := composite.Commitment(composite.AnchorLabel, []composite.Link{{Label: "vtpm", Key: []byte{2}}})
	c, _ := composite.Commitment(composite.AnchorLabel, []composite.Link{{Label: "vtpn", Key: []byte{1}}})
	if a == b || a == c {
		t.Error("commitment does not depend on the key or the label")
	}
}

func TestNewRejectsZeroConfig(t *testing.T) {
	if _, err := composite.New(nil); err == nil {
		t.Error("New(nil) succeeded")
	}
	if _, err := composite.New(&composite.Config{}); err == nil {
		t.Error("New of the zero Config succeeded")
	}
}
