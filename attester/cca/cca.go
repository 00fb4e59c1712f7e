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
// (attester/cca/wire.ParseToken) and checks that its realm challenge is the one it
// asked for, so a provider that ignores the inblob fails here rather than at
// the relying party. It verifies no signature: that is the verifier's job.
//
// # Caveats
//
// configfs-tsm calls are blocking file operations that cannot be
// interrupted: when ctx ends first, Attest returns at once (an
// *attester.DeviceError wrapping ctx's error) and the pending request
// finishes (and is discarded) in the background. Requests are serialized
// per Attester (configfs-tsm report entries are a scarce kernel resource);
// "try again later" answers (EBUSY, EAGAIN, EINTR, ETIMEDOUT, a configfs
// generation race) are retried under Options.Retry, as in attester/sevsnp
// and attester/tdx. Failures of the provider are *attester.DeviceError
// (errors.Is(err, attester.ErrThrottled) for throttling). Hardware tests need a CCA realm; the tests here
// use attester/cca/ccatest, a software platform whose keys nothing trusts.
package cca

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/report"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/attester/cca/wire"
	"github.com/attested-tls/go-expat/attester/internal/device"
	"github.com/attested-tls/go-expat/attester/internal/tsm"
	"github.com/attested-tls/go-expat/cmw"
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

// Options configures an Attester. The zero value (and a nil *Options) is
// usable: CBOR, the arm_cca_guest provider only, DefaultRetry. Options must
// not be modified after use.
type Options struct {
	// Format is the CMW serialization; the zero value is CBOR.
	Format Format
	// AnyProvider accepts a configfs-tsm provider other than
	// arm_cca_guest (for example a future provider name). The token is
	// still parsed and its challenge checked.
	AnyProvider bool
	// Retry bounds the requests made for one Attest call when the provider
	// is throttled; zero fields mean DefaultRetry's.
	Retry attester.RetryPolicy
}

// DefaultRetry is the retry policy of Options' zero Retry fields.
var DefaultRetry = attester.RetryPolicy{MaxAttempts: 5, Initial: 50 * time.Millisecond, Max: time.Second}

// Attester produces Arm CCA Evidence. It is safe for concurrent use.
type Attester struct {
	c    configfsi.Client
	opts Options
	dev  *device.Device
}

var _ attester.Attester = (*Attester)(nil)

// ErrProvider reports a configfs-tsm provider that is not arm_cca_guest.
var ErrProvider = errors.New("cca: configfs-tsm provider is not arm_cca_guest")

// NewTSMAttester returns an Attester that requests tokens through Linux's
// configfs-tsm report interface with client (linuxtsm.MakeClient() in a
// realm; any configfsi.Client in tests, such as attester/cca/ccatest's).
// opts may be nil.
func NewTSMAttester(client configfsi.Client, opts *Options) (*Attester, error) {
	if client == nil {
		return nil, errors.New("cca: nil configfs-tsm client")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Format != CBOR && o.Format != JSON {
		return nil, fmt.Errorf("cca: unknown format %d", o.Format)
	}
	return &Attester{c: client, opts: o, dev: device.New("cca", "configfs-tsm", o.Retry, DefaultRetry, 1)}, nil
}

// Token obtains a raw CCA attestation token whose realm challenge is
// challenge, checked as Attest describes. Failures are
// *attester.DeviceError.
func (a *Attester) Token(ctx context.Context, challenge [64]byte) ([]byte, error) {
	return device.Do(ctx, a.dev, func() ([]byte, error) {
		resp, err := tsm.Get(a.c, &report.Request{InBlob: challenge[:]})
		if err != nil {
			return nil, err
		}
		if p := strings.TrimSpace(resp.Provider); p != Provider && !a.opts.AnyProvider {
			return nil, fmt.Errorf("%w: %q", ErrProvider, p)
		}
		tok, err := wire.ParseToken(resp.OutBlob)
		if err != nil {
			return nil, fmt.Errorf("the provider returned a bad token: %w", err)
		}
		got, err := tok.Realm.GetChallenge()
		if err != nil || subtle.ConstantTimeCompare(got, challenge[:]) != 1 {
			return nil, errors.New("the provider returned a token with another realm challenge")
		}
		return tok.Raw, nil
	})
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
	if a.opts.Format == JSON {
		return rec.MarshalJSON()
	}
	return rec.MarshalCBOR()
}
