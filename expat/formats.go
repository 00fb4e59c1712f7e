package expat

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/attested-tls/go-expat/attester"
	"golang.org/x/crypto/cryptobyte"
)

// Capability discovery (use cases §4.4): inside the TLS channel, in the
// SETUP frame, each side states which attestation formats — CMW media
// types of Evidence (background check) and of Attestation Results such as
// EAR (passport) — it produces and which it accepts. An attester whose
// formats the relying party does not accept, or a relying party offered
// only formats it does not accept, fails the setup at once with a
// *FormatMismatchError naming both lists (alert handshake_failure), instead
// of sending Evidence that is bound to be rejected. Nothing ever falls back
// to an unattested connection: the lists only make a failure early and
// precise, and they travel inside TLS, out of an active attacker's reach.
//
// A side states a list when it knows it: Config.ProducedFormats and
// Config.AcceptedFormats, or else the Attester's and the Verifier's
// Formats method (the Formats interface). An empty list states nothing and
// matches anything. Formats are compared as exact strings.

// Formats is implemented by Attesters and Verifiers that know the CMW
// media types they produce or accept.
type Formats interface {
	Formats() []string
}

// FormatMismatchError is a setup failure for want of a common format.
type FormatMismatchError struct {
	// Produced is what the attesting side produces, Accepted what the
	// relying side accepts; one of them is ours, the other the peer's.
	Produced, Accepted []string
	// WeAttest tells which: true when Produced is ours.
	WeAttest bool
}

// ErrNoCommonFormat is matched by every *FormatMismatchError.
var ErrNoCommonFormat = errors.New("expat: no attestation format in common")

func (e *FormatMismatchError) Error() string {
	who := "the peer produces %q, we accept %q"
	if e.WeAttest {
		who = "we produce %q, the peer accepts %q"
	}
	return "expat: no attestation format in common: " + fmt.Sprintf(who, e.Produced, e.Accepted)
}

func (e *FormatMismatchError) Unwrap() error { return ErrNoCommonFormat }

// Bounds on the formats a SETUP frame may carry.
const (
	maxFormats       = 32
	maxFormatLen     = 255
	maxFormatsLength = 2 * maxFormats * (2 + maxFormatLen)
	// MaxFormatsLength bounds EncodeFormats' output: what a carrier's
	// frame limit must allow for it.
	MaxFormatsLength = maxFormatsLength
)

// Roles of a format list in a SETUP frame.
const (
	formatAccepts  byte = 1
	formatProduces byte = 2
)

// setupFormats are the format lists of one side's SETUP frame.
type setupFormats struct {
	accepts, produces []string
}

func (f setupFormats) empty() bool { return len(f.accepts) == 0 && len(f.produces) == 0 }

// ourFormats is what our SETUP states.
func (c *Config) ourFormats() setupFormats {
	var f setupFormats
	if c.RequirePeerAttestation || c.PeerAttestationOnDemand {
		f.accepts = c.AcceptedFormats
		if f.accepts == nil {
			if v, ok := c.Verifier.(Formats); ok {
				f.accepts = v.Formats()
			}
		}
	}
	if c.Attester != nil {
		f.produces = c.ProducedFormats
		if f.produces == nil {
			if a, ok := c.Attester.(Formats); ok {
				f.produces = a.Formats()
			}
		}
	}
	return f
}

// checkFormats validates a configured format list.
func checkFormats(name string, l []string) error {
	if len(l) > maxFormats {
		return fmt.Errorf("expat: Config.%s: more than %d formats", name, maxFormats)
	}
	for _, f := range l {
		if err := checkFormat(f); err != nil {
			return fmt.Errorf("expat: Config.%s: %w", name, err)
		}
	}
	return nil
}

func checkFormat(f string) error {
	if len(f) == 0 || len(f) > maxFormatLen {
		return fmt.Errorf("format of %d bytes (1..%d)", len(f), maxFormatLen)
	}
	for i := 0; i < len(f); i++ {
		if f[i] < 0x20 || f[i] > 0x7e {
			return fmt.Errorf("format %q is not printable ASCII", f)
		}
	}
	return nil
}

// marshal appends the lists: entries of role (1) | length (1) | format.
func (f setupFormats) marshal() []byte {
	var b cryptobyte.Builder
	for _, role := range []struct {
		r byte
		l []string
	}{{formatAccepts, f.accepts}, {formatProduces, f.produces}} {
		for _, s := range role.l {
			b.AddUint8(role.r)
			b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(s)) })
		}
	}
	out, _ := b.Bytes() // the lists were checked with checkFormats
	return out
}

// parseSetup splits a SETUP payload into its formats and its request.
func parseSetup(payload []byte) (setupFormats, []byte, error) {
	switch payload[0] {
	case frameVersion:
		return setupFormats{}, payload[1:], nil
	case frameVersionFormats:
		if len(payload) < 3 {
			return setupFormats{}, nil, framingError("SETUP without its formats length")
		}
		n := int(payload[1])<<8 | int(payload[2])
		if n > maxFormatsLength || len(payload) < 3+n {
			return setupFormats{}, nil, framingError("SETUP formats longer than the frame or the limit")
		}
		f, err := parseSetupFormats(payload[3 : 3+n])
		if err != nil {
			return setupFormats{}, nil, err
		}
		return f, payload[3+n:], nil
	}
	return setupFormats{}, nil, framingError(fmt.Sprintf("unsupported framing version %d", payload[0]))
}

// parseSetupFormats parses the format lists of a peer's SETUP.
func parseSetupFormats(data []byte) (setupFormats, error) {
	var f setupFormats
	s := cryptobyte.String(data)
	for !s.Empty() {
		var role uint8
		var v cryptobyte.String
		if !s.ReadUint8(&role) || !s.ReadUint8LengthPrefixed(&v) {
			return setupFormats{}, framingError("malformed formats in SETUP")
		}
		if err := checkFormat(string(v)); err != nil {
			return setupFormats{}, framingError("SETUP formats: " + err.Error())
		}
		switch role {
		case formatAccepts:
			f.accepts = append(f.accepts, string(v))
		case formatProduces:
			f.produces = append(f.produces, string(v))
		default:
			return setupFormats{}, framingError(fmt.Sprintf("unknown format role %d in SETUP", role))
		}
		if len(f.accepts) > maxFormats || len(f.produces) > maxFormats {
			return setupFormats{}, framingError("too many formats in SETUP")
		}
	}
	return f, nil
}

// matchFormats fails when both lists are stated and share nothing.
func matchFormats(produced, accepted []string, weAttest bool) error {
	if len(produced) == 0 || len(accepted) == 0 {
		return nil
	}
	for _, p := range produced {
		if slices.Contains(accepted, p) {
			return nil
		}
	}
	return wrapErr("setup", alertHandshakeFailure, &FormatMismatchError{
		Produced: slices.Clone(produced), Accepted: slices.Clone(accepted), WeAttest: weAttest})
}

type acceptedKey struct{}

// PeerAcceptedFormats returns the formats the peer said it accepts, from
// the ctx an Attester is called with on a Conn (nil when the peer stated
// none). An Attester that can produce several formats picks one of these;
// SelectAttester does so.
func PeerAcceptedFormats(ctx context.Context) []string {
	l, _ := ctx.Value(acceptedKey{}).([]string)
	return l
}

// FormatAttester is one choice of a SelectAttester.
type FormatAttester struct {
	Format   string
	Attester attester.Attester
}

// SelectAttester is an Attester that answers with the first of its
// choices whose Format the peer accepts (PeerAcceptedFormats), or the first
// choice when the peer stated nothing: for example Evidence for relying
// parties with their own Verifier, a passport for the others.
type SelectAttester []FormatAttester

// Attest implements attester.Attester.
func (s SelectAttester) Attest(ctx context.Context, ch attester.Challenge) ([]byte, error) {
	if len(s) == 0 {
		return nil, errors.New("expat: SelectAttester with no choices")
	}
	accepted := PeerAcceptedFormats(ctx)
	if len(accepted) == 0 {
		return s[0].Attester.Attest(ctx, ch)
	}
	for _, c := range s {
		if slices.Contains(accepted, c.Format) {
			return c.Attester.Attest(ctx, ch)
		}
	}
	return nil, &FormatMismatchError{Produced: s.Formats(), Accepted: slices.Clone(accepted), WeAttest: true}
}

// Formats implements Formats.
func (s SelectAttester) Formats() []string {
	out := make([]string, len(s))
	for i, c := range s {
		out[i] = c.Format
	}
	return out
}

var (
	_ attester.Attester = SelectAttester(nil)
	_ Formats           = SelectAttester(nil)
)

// Capability discovery for other carriers (expathttp, expatquic): the same
// lists, their one binary encoding (the SETUP frame's), the same check.

// Formats returns what c states in capability discovery: the formats it
// accepts (as a relying party) and produces (as an attester).
func (c *Config) Formats() (accepted, produced []string) {
	f := c.ourFormats()
	return f.accepts, f.produces
}

// EncodeFormats is the binary encoding of format lists that SETUP version 2
// carries: entries of role (1: accepts, 2: produces) | length (1) | media
// type. The lists must have passed Config.Check.
func EncodeFormats(accepted, produced []string) []byte {
	return setupFormats{accepts: accepted, produces: produced}.marshal()
}

// DecodeFormats parses EncodeFormats' encoding strictly (bounded counts
// and lengths, printable ASCII); a malformed list matches ErrFraming.
func DecodeFormats(b []byte) (accepted, produced []string, err error) {
	if len(b) > maxFormatsLength {
		return nil, nil, framingError("formats longer than the limit")
	}
	f, err := parseSetupFormats(b)
	if err != nil {
		return nil, nil, err
	}
	return f.accepts, f.produces, nil
}

// CheckFormats fails, with an *Error (handshake_failure) wrapping a
// *FormatMismatchError, when both lists are stated and share nothing.
// weAttest says which list is ours (produced when true).
func CheckFormats(produced, accepted []string, weAttest bool) error {
	return matchFormats(produced, accepted, weAttest)
}

// WithPeerAcceptedFormats returns ctx carrying the formats the peer
// accepts, for the Attester (PeerAcceptedFormats reads them).
func WithPeerAcceptedFormats(ctx context.Context, accepted []string) context.Context {
	if accepted == nil {
		return ctx
	}
	return context.WithValue(ctx, acceptedKey{}, accepted)
}
