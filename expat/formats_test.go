package expat

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/verifier"
)

// Capability discovery (use cases §4.4): a mismatch fails the setup at
// once, on both sides, with an error naming both lists, and no Evidence is
// produced for it.
func TestFormatMismatch(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	calls := &countingAttester{inner: k.att}
	srv, cli := tlsPair(t, p, tlsOpts{})
	_, _, serr, cerr := attestedPair(t, srv, cli,
		&Config{Attester: calls, Certificate: &p.server, ProducedFormats: []string{cmw.MediaTypeTestKit}},
		&Config{RequirePeerAttestation: true, Verifier: k.ver, AcceptedFormats: []string{cmw.MediaTypeEAR}})
	for _, side := range []struct {
		name     string
		err      error
		weAttest bool
	}{{"server", serr, true}, {"client", cerr, false}} {
		var fm *FormatMismatchError
		var e *Error
		switch {
		case errors.As(side.err, &fm) && side.weAttest == fm.WeAttest:
			if !slices.Equal(fm.Produced, []string{cmw.MediaTypeTestKit}) || !slices.Equal(fm.Accepted, []string{cmw.MediaTypeEAR}) {
				t.Errorf("%s: lists %q / %q", side.name, fm.Produced, fm.Accepted)
			}
			if !errors.Is(side.err, ErrNoCommonFormat) || !errors.As(side.err, &e) || e.Alert != alertHandshakeFailure {
				t.Errorf("%s: %v: want ErrNoCommonFormat with handshake_failure", side.name, side.err)
			}
		case errors.As(side.err, &e) && e.Remote && e.Alert == alertHandshakeFailure:
			// This side learnt it from the peer's CLOSE first.
		default:
			t.Errorf("%s: %v, want a *FormatMismatchError or the peer's handshake_failure", side.name, side.err)
		}
	}
	if calls.n() != 0 {
		t.Fatalf("the attester ran %d times for a peer that accepts none of its formats", calls.n())
	}
}

// Formats come from the Attester's and the Verifier's Formats method when
// Config does not list them; a common format lets the setup proceed.
func TestFormatsFromBackends(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	cfg := &Config{RequirePeerAttestation: true, Verifier: k.ver}
	if f := cfg.ourFormats(); !slices.Equal(f.accepts, []string{cmw.MediaTypeTestKit}) {
		t.Fatalf("accepts %q, want the test kit's", f.accepts)
	}
	s, c := reattestPair(t, p, k)
	if c.PeerAttestation() == nil || s == nil {
		t.Fatal("setup with matching formats failed")
	}
}

// SelectAttester answers each relying party in a format it accepts.
func TestSelectAttester(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	pa, ev := passportKit(t, k, nil)
	sel := SelectAttester{{Format: cmw.MediaTypeEAR, Attester: pa}, {Format: cmw.MediaTypeTestKit, Attester: k.att}}
	for _, tc := range []struct {
		name      string
		client    *Config
		wantModel verifier.Model
	}{
		{"passport for a relying party that accepts EARs", &Config{RequirePeerAttestation: true, Verifier: ev, AcceptedFormats: []string{cmw.MediaTypeEAR}}, verifier.Passport},
		{"Evidence for one with its own Verifier", &Config{RequirePeerAttestation: true, Verifier: k.ver}, verifier.BackgroundCheck},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := tlsPair(t, p, tlsOpts{})
			_, c, serr, cerr := attestedPair(t, srv, cli, &Config{Attester: sel, Certificate: &p.server}, tc.client)
			if serr != nil || cerr != nil {
				t.Fatalf("setup: %v %v", serr, cerr)
			}
			if m := c.PeerAttestation().Result.Model; m != tc.wantModel {
				t.Fatalf("model %v, want %v", m, tc.wantModel)
			}
		})
	}
}

// Malformed formats in a SETUP frame are a framing violation.
func TestMalformedSetupFormats(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	for _, tc := range []struct {
		name    string
		payload []byte
	}{
		{"length beyond the frame", []byte{frameVersionFormats, 0, 9, formatAccepts, 3, 'a', '/', 'b'}},
		{"unknown role", []byte{frameVersionFormats, 0, 5, 9, 3, 'a', '/', 'b'}},
		{"control byte", []byte{frameVersionFormats, 0, 5, formatAccepts, 3, 'a', 0, 'b'}},
		{"truncated entry", []byte{frameVersionFormats, 0, 3, formatAccepts, 5, 'a'}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := tlsPair(t, p, tlsOpts{})
			vc, err := Client(cli, &Config{RequirePeerAttestation: true, Verifier: k.ver})
			if err != nil {
				t.Fatal(err)
			}
			defer vc.Close()
			h := handshakeAsync(vc, 5*time.Second)
			raw := newRawPeer(t, srv, true)
			raw.send(frameSetup, tc.payload)
			if err := waitErr(t, h); !framing(err) {
				t.Fatalf("setup: %v, want a framing violation", err)
			}
		})
	}
}

// FuzzSetupFormats: no panic; what parses re-marshals to what parses the
// same; every prefix of a valid list either parses or is refused cleanly.
func FuzzSetupFormats(f *testing.F) {
	f.Add(setupFormats{accepts: []string{cmw.MediaTypeEAR}, produces: []string{cmw.MediaTypeTestKit}}.marshal())
	f.Add([]byte{formatAccepts, 3, 'a', '/', 'b'})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		sf, err := parseSetupFormats(b)
		if err != nil {
			if !errors.Is(err, ErrFraming) {
				t.Fatalf("error %v is not a framing violation", err)
			}
			return
		}
		again, err := parseSetupFormats(sf.marshal())
		if err != nil || !slices.Equal(again.accepts, sf.accepts) || !slices.Equal(again.produces, sf.produces) {
			t.Fatalf("re-marshal: %v, %+v vs %+v", err, again, sf)
		}
	})
}
