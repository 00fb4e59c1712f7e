// Package composite appraises composite Evidence (attester/composite): a
// CMW collection whose items are bound to each other and to the channel,
// as one. The anchor item (a SEV-SNP or TDX report) is appraised by its own
// Verifier with Expected.ReportData set to the commitment to the bound
// items' keys (attester/composite's layout); each bound item (a vTPM's
// quote bundle) is appraised by its Kind against this connection's
// challenge, trusting exactly the key the anchor vouched for. Two genuine
// items from two machines therefore do not pass together: the anchor of
// one does not commit to the key of the other (verifier.CheckLink).
//
// Verify accepts a collection only when all of these hold:
//
//   - format: it decodes with package cmw (within Config.Limits), is a
//     collection of type attester/composite.CollectionType whose items are
//     exactly the anchor's label and each bound item's label, each a
//     record (nothing missing, nothing extra, nothing nested; a label
//     given twice does not decode);
//   - each bound item's Kind finds its key (BoundKey);
//   - link: the anchor's Verifier accepts the anchor with the commitment
//     to those keys as its expected user data; a user data that is not it
//     is CheckLink (other rejections of the anchor are the anchor
//     Verifier's own: chain, measurement, TCB, ...);
//   - each bound item's Kind accepts it against the caller's Expected (the
//     channel's challenge: CheckChallenge when it is another connection's).
//
// The Result is verifier.Merge of the items' Results (labels prefix the
// measurements and claims: "tee/MEASUREMENT", "vtpm/PCR0/sha256"), with
// MediaType the collection type, KeyBinding the weakest of the bound items'
// (the anchor's user data names no Exported Authenticator key), and
// PlatformIDs the anchor's followed by the bound items'.
//
// # Caveat: who vouches
//
// The link means "the environment the anchor describes committed to this
// key". It means "this key is that VM's vTPM" only when the anchor's policy
// pins the component that owns the vTPM: for SEV-SNP the VMPL of the SVSM
// that hosts it (verifier/sevsnp accepts VMPL 0 only by default; a guest
// kernel at VMPL 2 can have a report commit to a software "vTPM" of its
// own), for TDX the measurements of the TD (or L1 VMM) that hosts it. The
// anchor is not bound to the channel and may predate the connection;
// freshness and the channel binding come from the bound items.
//
// # Adding an item kind
//
// A kind of bound item (a GPU's Evidence with its own verifier) is a Kind:
// BoundKey takes the key the anchor commits to out of the item's record,
// VerifyBound appraises the item against the channel's Expected trusting
// that key. Register it as one more Bound in Config; the attester side
// lists it as one more attester/composite.Item. verifier/tpm's BoundAK is
// the vTPM's Kind. No other kind is implemented here.
package composite

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	acomposite "github.com/attested-tls/go-expat/attester/composite"
	"github.com/attested-tls/go-expat/cmw"
	"github.com/attested-tls/go-expat/verifier"
)

// Kind is a kind of item bound to the anchor.
type Kind interface {
	// BoundKey returns, strictly parsed from rec, the key that the anchor
	// must commit to; a record it cannot take apart is a
	// *verifier.RejectedError.
	BoundKey(rec cmw.Record) ([]byte, error)
	// VerifyBound appraises rec against exp (the channel's Expected) with
	// key, the value BoundKey returned and the anchor vouched for, as the
	// item's only trusted key. Like Verify, it returns a Result only on
	// acceptance.
	VerifyBound(ctx context.Context, rec cmw.Record, key []byte, exp *verifier.Expected) (*verifier.Result, error)
}

// Bound is one bound item: its label in the collection and its Kind.
type Bound struct {
	Label string
	Kind  Kind
}

// Config configures a Verifier. Anchor and at least one Bound are
// required; the zero Config is refused by New, and a zero Verifier rejects
// everything.
type Config struct {
	// Anchor appraises the anchor item. It must check the item's 64-byte
	// user-data field against Expected.ReportData, as verifier/sevsnp and
	// verifier/tdx do.
	Anchor verifier.RecordVerifier
	// AnchorLabel is the anchor item's label; empty means
	// attester/composite.AnchorLabel ("tee").
	AnchorLabel string
	// Bound are the bound items (at most attester/composite.MaxBound), each
	// with a distinct label.
	Bound []Bound
	// Limits bound the CMW; nil means package cmw's defaults.
	Limits *cmw.Limits
}

// Verifier appraises composite Evidence. It is safe for concurrent use when
// its anchor Verifier and Kinds are.
type Verifier struct {
	anchor      verifier.RecordVerifier
	anchorLabel string
	bound       []Bound
	limits      *cmw.Limits
}

var _ verifier.DecodedVerifier = (*Verifier)(nil)

// New checks cfg and returns a Verifier; cfg is copied.
func New(cfg *Config) (*Verifier, error) {
	if cfg == nil || cfg.Anchor == nil {
		return nil, errors.New("composite: no anchor verifier")
	}
	v := &Verifier{anchor: cfg.Anchor, anchorLabel: cfg.AnchorLabel, bound: slices.Clone(cfg.Bound)}
	if v.anchorLabel == "" {
		v.anchorLabel = acomposite.AnchorLabel
	}
	if len(v.bound) == 0 || len(v.bound) > acomposite.MaxBound {
		return nil, fmt.Errorf("composite: %d bound items, want 1 to %d", len(v.bound), acomposite.MaxBound)
	}
	links := make([]acomposite.Link, len(v.bound))
	for i, b := range v.bound {
		if b.Kind == nil {
			return nil, fmt.Errorf("composite: bound item %q has no Kind", b.Label)
		}
		links[i] = acomposite.Link{Label: b.Label, Key: []byte{0}}
	}
	// The labels as the layout requires them (distinct, not the anchor's).
	if _, err := acomposite.Commitment(v.anchorLabel, links); err != nil {
		return nil, err
	}
	if cfg.Limits != nil {
		l := *cfg.Limits
		v.limits = &l
	}
	return v, nil
}

// parsed is a composite taken apart: the anchor's record, and each bound
// item's record and key, in Config order.
type parsed struct {
	anchor cmw.Record
	recs   []cmw.Record
	keys   [][]byte
}

// parse decodes b and takes the composite apart (no appraisal).
func (v *Verifier) parse(b []byte) (*parsed, error) {
	if v == nil || v.anchor == nil {
		return nil, errNotConfigured
	}
	c, err := cmw.Decode(b, v.limits)
	if err != nil {
		return nil, verifier.Reject(verifier.CheckFormat, err, "composite: undecodable CMW")
	}
	return v.split(c)
}

var errNotConfigured = verifier.Reject(verifier.CheckFormat, nil, "composite: no composite is configured")

// split takes a decoded composite apart (no appraisal).
func (v *Verifier) split(c *cmw.CMW) (*parsed, error) {
	if v == nil || v.anchor == nil {
		return nil, errNotConfigured
	}
	if !c.IsCollection() || c.CollectionType() != acomposite.CollectionType {
		return nil, verifier.Reject(verifier.CheckFormat, nil, "composite: not a collection of type %q", acomposite.CollectionType)
	}
	items := map[string]cmw.Record{}
	for _, it := range c.Items() {
		label, ok := it.Label.Text()
		if !ok || !v.known(label) {
			return nil, verifier.Reject(verifier.CheckFormat, nil, "composite: unexpected item %q", it.Label.String())
		}
		rec, ok := it.CMW.Record()
		if !ok {
			return nil, verifier.Reject(verifier.CheckFormat, nil, "composite: item %q is a collection, not a record", label)
		}
		items[label] = rec
	}
	p := &parsed{}
	var ok bool
	if p.anchor, ok = items[v.anchorLabel]; !ok {
		return nil, verifier.Reject(verifier.CheckFormat, nil, "composite: no %q item", v.anchorLabel)
	}
	for _, bd := range v.bound {
		rec, ok := items[bd.Label]
		if !ok {
			return nil, verifier.Reject(verifier.CheckFormat, nil, "composite: no %q item", bd.Label)
		}
		key, err := bd.Kind.BoundKey(rec)
		if err != nil {
			return nil, err
		}
		p.recs = append(p.recs, rec)
		p.keys = append(p.keys, key)
	}
	return p, nil
}

func (v *Verifier) known(label string) bool {
	if label == v.anchorLabel {
		return true
	}
	for _, b := range v.bound {
		if b.Label == label {
			return true
		}
	}
	return false
}

// Verify appraises composite Evidence b against exp (see the package
// documentation).
func (v *Verifier) Verify(ctx context.Context, b []byte, exp *verifier.Expected) (*verifier.Result, error) {
	if exp == nil {
		return nil, errors.New("composite: nil Expected")
	}
	p, err := v.parse(b)
	if err != nil {
		return nil, err
	}
	return v.verify(ctx, p, exp)
}

// VerifyDecoded is Verify for a CMW already decoded by package cmw (within
// limits no larger than Config.Limits): verifier.Dispatch hands it a
// collection of type attester/composite.CollectionType registered in
// Dispatch.Collections.
func (v *Verifier) VerifyDecoded(ctx context.Context, c *cmw.CMW, exp *verifier.Expected) (*verifier.Result, error) {
	if exp == nil {
		return nil, errors.New("composite: nil Expected")
	}
	if c == nil {
		return nil, verifier.Reject(verifier.CheckFormat, nil, "composite: no CMW")
	}
	p, err := v.split(c)
	if err != nil {
		return nil, err
	}
	return v.verify(ctx, p, exp)
}

func (v *Verifier) verify(ctx context.Context, p *parsed, exp *verifier.Expected) (*verifier.Result, error) {
	links := make([]acomposite.Link, len(v.bound))
	for i, bd := range v.bound {
		links[i] = acomposite.Link{Label: bd.Label, Key: p.keys[i]}
	}
	commitment, err := acomposite.Commitment(v.anchorLabel, links)
	if err != nil {
		return nil, verifier.Reject(verifier.CheckFormat, err, "composite: bound keys")
	}

	// The anchor, with the commitment as its expected user data.
	ares, err := v.anchor.VerifyRecord(ctx, p.anchor, &verifier.Expected{ReportData: &commitment, Now: exp.Now})
	var re *verifier.RejectedError
	if errors.As(err, &re) && re.Check == verifier.CheckChallenge {
		// With ReportData set, the anchor's only challenge check is its
		// user data against the commitment.
		return nil, verifier.Reject(verifier.CheckLink, re.Err, "composite: the %q item does not commit to the keys of %s (%s)", v.anchorLabel, labels(v.bound), re.Reason)
	}
	if err != nil {
		return nil, err
	}
	if ares == nil {
		return nil, fmt.Errorf("composite: nil result for item %q", v.anchorLabel)
	}
	results := []verifier.ItemResult{{Path: v.anchorLabel, Result: ares}}
	ids := slices.Clone(ares.PlatformIDs)

	// The bound items, against the channel, trusting the vouched-for keys.
	var kb verifier.KeyBinding
	for i, bd := range v.bound {
		res, err := bd.Kind.VerifyBound(ctx, p.recs[i], p.keys[i], exp)
		if err != nil {
			return nil, err
		}
		if res == nil {
			return nil, fmt.Errorf("composite: nil result for item %q", bd.Label)
		}
		if i == 0 || res.KeyBinding < kb {
			kb = res.KeyBinding
		}
		ids = append(ids, res.PlatformIDs...)
		results = append(results, verifier.ItemResult{Path: bd.Label, Result: res})
	}
	out := verifier.Merge(acomposite.CollectionType, results)
	out.KeyBinding = kb
	out.PlatformIDs = ids
	return out, nil
}

func labels(bs []Bound) string {
	q := make([]string, len(bs))
	for i, b := range bs {
		q[i] = strconv.Quote(b.Label)
	}
	return strings.Join(q, ", ")
}
