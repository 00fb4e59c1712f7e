// Package cca is the Arm CCA (Confidential Compute Architecture) attester:
// it obtains a realm attestation token through Linux's configfs-tsm report
// interface (the arm_cca_guest provider, via
// github.com/google/go-configfs-tsm) and wraps it in a CMW record of media
// type cmw.MediaTypeCCA.
//
// # What is implemented
//
// The realm challenge (the 64-byte inblob) is ch.ReportData64():
// SHA-512(binding || AIK_pub_hash), go-expat's layout for 64-byte user-data
// fields (see package attester). The token is the CCA attestation token
// collection (CBOR tag 399) holding the platform token, signed by the
// platform's CPAK, and the realm token, signed by the RAK that the platform
// token binds. Before returning it, Attest parses the token strictly
// (verifier/cca.ParseToken) and checks that its realm challenge is the one it
// asked for, so a provider that ignores the inblob fails here rather than at
// the relying party. It verifies no signature: that is the verifier's job.
//
// # Caveats
//
// configfs-tsm calls are blocking file operations that cannot be
// interrupted: when ctx ends first, Attest returns ctx's error at once and
// the pending request finishes (and is discarded) in the background.
// Requests are serialized per Attester (configfs-tsm report entries are a
// scarce kernel resource). Hardware tests need a CCA realm; the tests here
// use attester/cca/ccatest, a software platform whose keys nothing trusts.
package cca

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/linuxtsm"
	"github.com/google/go-configfs-tsm/report"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/cmw"
	vcca "github.com/attested-tls/go-expat/verifier/cca"
)

// Provider is the configfs-tsm provider name of Linux's Arm CCA guest
// driver.
const Provider = "arm_cca_guest"

// Format selects the CMW serialization.
type Format int

const (
	// CBOR is a CBOR CMW record (the default).
	CBOR Format = iota
	// JSON is a JSON CMW record.
	JSON
)

// Config configures an Attester. It must not be modified after New.
type Config struct {
	// Client is the configfs-tsm client. nil means the real
	// /sys/kernel/config/tsm (linuxtsm.MakeClient), opened by New.
	Client configfsi.Client
	// Format is the CMW serialization; the zero value is CBOR.
	Format Format
	// AnyProvider accepts a configfs-tsm provider other than
	// arm_cca_guest (for example a future provider name). The token is
	// still parsed and its challenge checked.
	AnyProvider bool
}

// Attester produces Arm CCA Evidence. It is safe for concurrent use.
type Attester struct {
	cfg Config
	mu  sync.Mutex // serializes configfs-tsm requests
}

var _ attester.Attester = (*Attester)(nil)

// ErrProvider reports a configfs-tsm provider that is not arm_cca_guest.
var ErrProvider = errors.New("cca: configfs-tsm provider is not arm_cca_guest")

// New returns an Attester. With a nil cfg.Client it opens the Linux
// configfs-tsm interface and fails when it is absent.
func New(cfg Config) (*Attester, error) {
	if cfg.Format != CBOR && cfg.Format != JSON {
		return nil, fmt.Errorf("cca: unknown format %d", cfg.Format)
	}
	if cfg.Client == nil {
		c, err := linuxtsm.MakeClient()
		if err != nil {
			return nil, fmt.Errorf("cca: configfs-tsm unavailable: %w", err)
		}
		cfg.Client = c
	}
	return &Attester{cfg: cfg}, nil
}

// Token obtains a raw CCA attestation token whose realm challenge is
// challenge, checked as Attest describes.
func (a *Attester) Token(ctx context.Context, challenge [64]byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	type out struct {
		tok []byte
		err error
	}
	done := make(chan out, 1)
	go func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if err := ctx.Err(); err != nil {
			done <- out{nil, err}
			return
		}
		resp, err := report.Get(a.cfg.Client, &report.Request{InBlob: challenge[:]})
		if err != nil {
			done <- out{nil, fmt.Errorf("cca: configfs-tsm report: %w", err)}
			return
		}
		if p := strings.TrimSpace(resp.Provider); p != Provider && !a.cfg.AnyProvider {
			done <- out{nil, fmt.Errorf("%w: %q", ErrProvider, p)}
			return
		}
		done <- out{resp.OutBlob, nil}
	}()
	var o out
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case o = <-done:
	}
	if o.err != nil {
		return nil, o.err
	}
	tok, err := vcca.ParseToken(o.tok)
	if err != nil {
		return nil, fmt.Errorf("cca: provider returned a bad token: %w", err)
	}
	got, err := tok.Realm.GetChallenge()
	if err != nil || subtle.ConstantTimeCompare(got, challenge[:]) != 1 {
		return nil, errors.New("cca: provider returned a token with another realm challenge")
	}
	return tok.Raw, nil
}

// Attest returns a CMW record (cmw.MediaTypeCCA, indicator evidence)
// holding a CCA attestation token whose realm challenge is
// ch.ReportData64().
func (a *Attester) Attest(ctx context.Context, ch attester.Challenge) ([]byte, error) {
	rd, err := ch.ReportData64()
	if err != nil {
		return nil, fmt.Errorf("cca: %w", err)
	}
	tok, err := a.Token(ctx, rd)
	if err != nil {
		return nil, err
	}
	rec, err := cmw.NewRecord(cmw.MediaTypeCCA, tok, cmw.Evidence)
	if err != nil {
		return nil, fmt.Errorf("cca: %w", err)
	}
	if a.cfg.Format == JSON {
		return rec.MarshalJSON()
	}
	return rec.MarshalCBOR()
}
