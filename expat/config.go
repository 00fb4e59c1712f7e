package expat

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/ea"
	"github.com/attested-tls/go-expat/verifier"
)

// Config configures one side of an attested connection (or an Endpoint).
// The zero value attests nothing and requires nothing; a Config must not be
// modified after it has been passed to Server, Client or NewEndpoint.
type Config struct {
	// Attester produces Evidence (or, in the passport model, an
	// Attestation Result) when the peer asks us to attest. Nil means we
	// refuse such requests with the empty authenticator (RFC 9261,
	// Section 6), which a peer that requires attestation treats as failure.
	Attester attester.Attester

	// Release decides to which peers we release our Evidence (privacy,
	// use cases §4.8): by default to any peer that completed the TLS
	// handshake with us and asked. A request from a peer that does not
	// qualify (yet) is answered, once the condition holds or after
	// SetupTimeout, with the empty authenticator (a refusal).
	Release Release

	// Certificate is the identity we authenticate with in our Exported
	// Authenticators: a chain and a crypto.Signer (possibly opaque, e.g. a
	// TPM-resident key for key attestation). Required when Attester is set.
	// It may be the certificate of the TLS handshake or a different one.
	Certificate *tls.Certificate

	// RequirePeerAttestation makes the connection ask the peer to attest
	// during setup and refuse application data in both directions until the
	// peer's attestation has been verified. Verifier must be set.
	RequirePeerAttestation bool

	// Verifier appraises what the peer sends (Evidence in the background-
	// check model, an Attestation Result in the passport model). Required
	// when RequirePeerAttestation is set or Attest is called. On a Conn, a
	// Verifier without RequirePeerAttestation is refused unless
	// PeerAttestationOnDemand says that is meant.
	//
	// Verify is called once the authenticator's Finished has verified
	// (it comes from this connection's peer), while its CertificateVerify
	// signature is still being checked on another CPU; the appraisal
	// counts only if that signature and the peer's identity then pass.
	// Like everything from the peer, the Evidence is untrusted input.
	Verifier verifier.Verifier

	// PeerAttestationOnDemand, with a Verifier and without
	// RequirePeerAttestation, is the explicit choice of a Conn that sends
	// and accepts application data before the peer has attested, and
	// attests the peer only when Attest is called. Without it such a
	// Config is an error, since a Verifier suggests an attested peer was
	// meant.
	PeerAttestationOnDemand bool

	// MinKeyBinding is the weakest tie between the peer's Exported
	// Authenticator key and its attested environment that we accept
	// (Result.KeyBinding): for example verifier.KeyCertified for a
	// secret-provisioning server whose TLS key must be TPM-resident. The
	// zero value, verifier.KeyByBinder, accepts any.
	MinKeyBinding verifier.KeyBinding

	// AllowedPlatforms, when not empty, pins the peer's machine: an
	// attestation is accepted only if its Result.PlatformIDs include one
	// of these identifiers (same Kind and Value), against diversion to
	// another genuine machine. The rejection names the identifiers the
	// peer presented.
	AllowedPlatforms []verifier.PlatformID

	// AcceptedFormats and ProducedFormats are the CMW media types we
	// accept from the peer (as relying party) and produce (as attester),
	// stated in our SETUP frame for capability discovery (see formats.go).
	// Nil means the Verifier's and the Attester's Formats method, if they
	// have one; empty states nothing.
	AcceptedFormats []string
	ProducedFormats []string

	// PeerIdentity decides how the peer's Exported Authenticator
	// certificate is trusted. Its zero value requires the EA certificate to
	// be the very certificate the peer presented, and crypto/tls verified,
	// in the TLS handshake: attestation augments X.509, never replaces it.
	PeerIdentity PeerIdentity

	// ExtensionType is the cmw_attestation code point. Zero means
	// DefaultExtensionType (0xFF00, private use).
	ExtensionType uint16

	// LegacyBinderLabel, when non-empty, replaces ExporterLabel in the
	// binder for interoperability with prototypes of older drafts. Only
	// LegacyLabelDraft02 and LegacyLabelDraft01 are accepted. Both peers
	// must agree; do not set it for new deployments.
	LegacyBinderLabel string

	// SetupTimeout bounds the setup however it was started (Handshake, or
	// the first Read or Write), and each answer to a peer's request (an
	// Attester still at work then is abandoned and the request refused).
	// Listeners and Dial also bound the TLS handshake with it. Zero means
	// DefaultSetupTimeout.
	SetupTimeout time.Duration

	// KeepOnFailure keeps the connection open (but marks it unattested and
	// blocks application data) when a re-attestation started by Attest
	// fails. By default a failed attestation closes the connection, as the
	// draft recommends (Section 7: failed validation SHOULD be fatal).
	KeepOnFailure bool

	// MaxAttestationAge bounds how long a verified attestation of the peer
	// is relied on: Attestation.ValidUntil is the earlier of the Result's
	// Expires and VerifiedAt + MaxAttestationAge. Zero means no bound of
	// our own (the Result's Expires, if any, still applies). When an
	// attestation's ValidUntil passes without a newer one, the peer is no
	// longer attested: the connection closes, or with KeepOnFailure stays
	// open with application data blocked (ErrAttestationExpired).
	MaxAttestationAge time.Duration

	// ReattestBefore, when positive, makes the Conn re-attest the peer on
	// its own this long before the latest attestation's ValidUntil, so
	// that a long-lived connection stays attested without the application
	// doing anything. ReattestEvery, when positive, re-attests at least
	// this often after each attestation, whatever its lifetime. Either
	// needs Verifier. A scheduled re-attestation that fails is a failed
	// Attest (KeepOnFailure decides), and is reported to OnReattest. The
	// application triggers a re-attestation on its own events (a
	// configuration change, the use of a privilege) with Conn.Attest.
	ReattestBefore time.Duration
	ReattestEvery  time.Duration

	// OnReattest, if set, is called after each scheduled re-attestation
	// with its result (from the scheduler's goroutine; it must not block
	// for long).
	OnReattest func(att *Attestation, err error)

	// MaxPeerRequests bounds how many of the peer's attestation requests
	// may be waiting or in progress at once; a request beyond it closes the
	// connection (unexpected_message, ErrTooManyRequests). A go-expat peer
	// never sends more than one at a time. Zero means 2.
	MaxPeerRequests int

	// PeerRequestInterval is the minimum interval between the starts of
	// two attestations we perform for the peer: the protection against a
	// peer forcing thousands of hardware quotes. A request arriving sooner
	// waits for its turn (it is not refused). Zero means
	// DefaultPeerRequestInterval (at most four quotes a second); set a
	// smaller positive value for peers that re-attest more often. Negative
	// is invalid.
	PeerRequestInterval time.Duration

	// MaxAuthenticatorSize bounds the authenticators we accept. Zero means
	// 256 KiB.
	MaxAuthenticatorSize int

	// MaxContexts bounds, for the connection's whole life, the record of
	// request contexts it keeps (ours and the peer's; RFC 9261 requires
	// them unique per connection). When it is full the connection is
	// closed (internal_error, ea.ErrTooManyContexts): with the default
	// pacing of peer requests, a flooding peer reaches the default bound
	// (ea.DefaultMaxContexts, 4096) after about 17 minutes. Zero means
	// ea.DefaultMaxContexts.
	MaxContexts int

	// SendQueue bounds how much of our data the kernel may hold unsent for
	// this connection, so that an attestation request or answer written
	// behind bulk data waits for at most about this much of it (without a
	// bound, Linux lets 4 MiB queue, and re-attestation behind bulk data
	// took 13-35 ms on loopback): TCP_NOTSENT_LOWAT, on Linux, when the
	// TLS connection runs over a *net.TCPConn. It does not limit the data
	// in flight (the congestion window), so it costs no throughput on long
	// paths. Zero means DefaultSendQueue; negative leaves the socket as it
	// is. Elsewhere, or over other connections, it has no effect.
	SendQueue int

	// Rand is the source of request contexts. Nil means crypto/rand.
	Rand io.Reader
	// Time returns the current time. Nil means time.Now.
	Time func() time.Time
	// Logger receives debug and warning events. Nil discards them.
	Logger *slog.Logger
}

// Release is a policy for releasing our Evidence to the peer.
type Release uint8

const (
	// ReleaseToAny releases Evidence to any peer that completed the TLS
	// handshake and asks: the peer learns our platform's state before we
	// know who it is.
	ReleaseToAny Release = iota
	// ReleaseToAuthenticated releases Evidence only to a peer that
	// authenticated: its TLS handshake certificate was verified by
	// crypto/tls (for a server: tls.Config.ClientAuth with
	// RequireAndVerifyClientCert, or VerifyClientCertIfGiven and a
	// certificate given), or its own attestation was verified on this
	// connection.
	ReleaseToAuthenticated
	// ReleaseToAttested releases Evidence only after the peer's own
	// attestation was verified on this connection (mutual attestation
	// where the peer goes first). Needs RequirePeerAttestation. Two peers
	// that both insist on going second refuse each other.
	ReleaseToAttested
)

// PeerIdentity selects how the peer's Exported Authenticator certificate
// chain is trusted. At most one field may be set; the zero value is the
// secure default described on Config.PeerIdentity.
type PeerIdentity struct {
	// VerifyOptions validates the EA chain as X.509 (Roots, KeyUsages, DNS
	// name, ...).
	VerifyOptions *x509.VerifyOptions
	// VerifyChain is called with the EA chain as sent.
	VerifyChain func(chain []*x509.Certificate) error
	// PinnedKey requires the EA end-entity key to equal this key.
	PinnedKey crypto.PublicKey
	// AttestationOnly accepts any EA certificate and identifies the peer by
	// its attested state alone (remote-attestation-only authentication).
	// Use it only for constrained cases such as onboarding or anonymous
	// client attestation, where the Evidence (for example a measurement) IS
	// the identity that policy checks. It is not X.509 authentication.
	AttestationOnly bool
}

func (p *PeerIdentity) count() int {
	n := 0
	if p.VerifyOptions != nil {
		n++
	}
	if p.VerifyChain != nil {
		n++
	}
	if p.PinnedKey != nil {
		n++
	}
	if p.AttestationOnly {
		n++
	}
	return n
}

func (c *Config) extType() uint16 {
	if c.ExtensionType == 0 {
		return DefaultExtensionType
	}
	return c.ExtensionType
}

func (c *Config) label() string {
	if c.LegacyBinderLabel != "" {
		return c.LegacyBinderLabel
	}
	return ExporterLabel
}

func (c *Config) now() time.Time {
	if c.Time != nil {
		return c.Time()
	}
	return time.Now()
}

func (c *Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Defaults for the zero values of Config.
const (
	DefaultSetupTimeout        = 30 * time.Second
	DefaultPeerRequestInterval = 250 * time.Millisecond
	DefaultMaxPeerRequests     = 2
	DefaultSendQueue           = 256 << 10
)

func (c *Config) sendQueue() int {
	switch {
	case c.SendQueue > 0:
		return c.SendQueue
	case c.SendQueue < 0:
		return 0
	}
	return DefaultSendQueue
}

func (c *Config) setupTimeout() time.Duration {
	if c.SetupTimeout > 0 {
		return c.SetupTimeout
	}
	return DefaultSetupTimeout
}

func (c *Config) peerRequestInterval() time.Duration {
	if c.PeerRequestInterval > 0 {
		return c.PeerRequestInterval
	}
	return DefaultPeerRequestInterval
}

// eaConfig is the configuration of the connection's ea.Session.
func (c *Config) eaConfig() *ea.Config {
	return &ea.Config{Rand: c.Rand, MaxAuthenticatorSize: c.maxAuthenticatorSize(), MaxContexts: c.MaxContexts}
}

func (c *Config) maxPeerRequests() int {
	if c.MaxPeerRequests > 0 {
		return c.MaxPeerRequests
	}
	return DefaultMaxPeerRequests
}

func (c *Config) maxAuthenticatorSize() int {
	if c.MaxAuthenticatorSize > 0 {
		return c.MaxAuthenticatorSize
	}
	return 256 << 10
}

// check validates the configuration.
func (c *Config) check() error {
	if c.Attester != nil && c.Certificate == nil {
		return errors.New("expat: Config.Attester requires Config.Certificate")
	}
	if c.Certificate != nil && len(c.Certificate.Certificate) == 0 {
		return errors.New("expat: Config.Certificate has no certificate")
	}
	if c.RequirePeerAttestation && c.Verifier == nil {
		return errors.New("expat: Config.RequirePeerAttestation requires Config.Verifier")
	}
	if c.PeerIdentity.count() > 1 {
		return errors.New("expat: Config.PeerIdentity: set at most one way of trusting the peer")
	}
	switch c.LegacyBinderLabel {
	case "", LegacyLabelDraft02, LegacyLabelDraft01:
	default:
		return errors.New("expat: Config.LegacyBinderLabel must be empty or one of the legacy labels")
	}
	if c.PeerRequestInterval < 0 || c.SetupTimeout < 0 || c.MaxPeerRequests < 0 || c.MaxAuthenticatorSize < 0 || c.MaxContexts < 0 {
		return errors.New("expat: negative limit in Config")
	}
	if c.MaxAttestationAge < 0 || c.ReattestBefore < 0 || c.ReattestEvery < 0 {
		return errors.New("expat: negative attestation lifetime in Config")
	}
	if (c.ReattestBefore > 0 || c.ReattestEvery > 0) && c.Verifier == nil {
		return errors.New("expat: Config.ReattestBefore and ReattestEvery require Config.Verifier")
	}
	if err := checkFormats("AcceptedFormats", c.AcceptedFormats); err != nil {
		return err
	}
	if err := checkFormats("ProducedFormats", c.ProducedFormats); err != nil {
		return err
	}
	switch c.Release {
	case ReleaseToAny, ReleaseToAuthenticated:
	case ReleaseToAttested:
		if !c.RequirePeerAttestation {
			return errors.New("expat: Config.Release ReleaseToAttested requires RequirePeerAttestation")
		}
	default:
		return errors.New("expat: Config.Release is not a Release value")
	}
	if c.PeerAttestationOnDemand && c.RequirePeerAttestation {
		return errors.New("expat: Config.PeerAttestationOnDemand and RequirePeerAttestation exclude each other")
	}
	if c.PeerAttestationOnDemand && c.Verifier == nil {
		return errors.New("expat: Config.PeerAttestationOnDemand requires Config.Verifier")
	}
	return nil
}

// Check validates c for a connection that carries application data: a
// Conn, Listen, Dial, and the integrations (expathttp, expatgrpc,
// expatquic) all call it first. NewEndpoint, for carriers of EA messages
// alone, checks less: a Verifier without RequirePeerAttestation is fine
// there.
func (c *Config) Check() error { return c.checkConn() }

// checkConn validates the configuration of a Conn.
func (c *Config) checkConn() error {
	if err := c.check(); err != nil {
		return err
	}
	if c.Verifier != nil && !c.RequirePeerAttestation && !c.PeerAttestationOnDemand {
		return errors.New("expat: Config.Verifier is set but RequirePeerAttestation is not, so application data would flow before the peer is attested: set RequirePeerAttestation, or PeerAttestationOnDemand to attest the peer only when Attest is called")
	}
	return nil
}

// ServerTLSConfig returns a copy of base prepared for an attested server:
// TLS 1.3 only and session tickets off, so that no connection is ever
// resumed (draft -04, Section 7: a server requiring attestation MUST NOT
// send NewSessionTicket). A nil base starts from an empty config.
func ServerTLSConfig(base *tls.Config) *tls.Config {
	var c *tls.Config
	if base == nil {
		c = &tls.Config{}
	} else {
		c = base.Clone()
	}
	c.MinVersion = tls.VersionTLS13
	c.MaxVersion = tls.VersionTLS13
	c.SessionTicketsDisabled = true
	return c
}

// ClientTLSConfig returns a copy of base prepared for an attested client:
// TLS 1.3 only, no session cache (tickets are discarded, nothing is resumed,
// no 0-RTT) and renegotiation off.
func ClientTLSConfig(base *tls.Config) *tls.Config {
	var c *tls.Config
	if base == nil {
		c = &tls.Config{}
	} else {
		c = base.Clone()
	}
	c.MinVersion = tls.VersionTLS13
	c.MaxVersion = tls.VersionTLS13
	c.ClientSessionCache = nil
	c.SessionTicketsDisabled = true
	c.Renegotiation = tls.RenegotiateNever
	return c
}
