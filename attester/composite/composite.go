// Package composite produces composite Evidence: a CMW collection whose
// items are bound to each other and to the channel, as in a confidential
// VM with a virtual TPM. verifier/composite appraises it as one.
//
// # The confidential-VM pattern
//
// A TEE's report (SEV-SNP, TDX: the anchor) vouches for the VM's launch
// state and machine, and its 64-byte user data (REPORT_DATA, REPORTDATA)
// commits to the keys of the other items, such as the attestation key (AK)
// of the VM's vTPM. Each bound item then carries the channel's challenge
// in its own Evidence (the vTPM quote's qualifyingData). A verifier that
// checks both links knows that the channel-bound quote was made by the
// vTPM of the very VM the report describes; two genuine items from two
// machines do not pass together.
//
// The anchor's report is not bound to the channel, only to the bound
// items' keys: it may be older than the connection (a real platform may
// produce it once, at boot). Freshness and the channel binding come from
// the bound items. The anchor must be asked for its report by the
// component that owns the bound items (on SEV-SNP, the SVSM at VMPL 0 that
// hosts the vTPM): a report from a less privileged level vouches for
// nothing the verifier should trust (see verifier/composite).
//
// # Layout
//
// The collection (CBOR, "__cmwc_t" CollectionType) has the anchor's record
// under AnchorLabel ("tee") and each bound item's record under its own
// label ("vtpm"); nothing else. The anchor's user data is Commitment of the
// bound items' keys:
//
//	SHA-512( "go-expat composite v1" || 0x00 || n
//	         || for each bound item, in increasing byte order of labels:
//	              len(label) (1 byte) || label || len(key) (2 bytes, big endian) || key )
//
// where n (1 byte) is the number of bound items, labels are 1 to
// MaxLabelSize bytes and keys 1 to MaxKeySize bytes. For a vTPM (attester/tpm)
// the key is the AK's TPMT_PUBLIC, exactly as its quote bundle carries it
// (Attester.AKPublic). The test vector is in commitment_test.go.
//
// # Further items
//
// An item with its own Evidence and verifier (a GPU's, say) joins by being
// an Item: an Attester for the channel challenge and the key by which the
// anchor vouches for it; on the verifier side, a verifier/composite Kind.
// This package fakes no item of any kind.
package composite

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/cmw"
)

// Layout constants (see the package documentation).
const (
	// CollectionType is the collection's "__cmwc_t".
	CollectionType = "tag:github.com/attested-tls/go-expat,2026:composite/v1"
	// AnchorLabel is the default label of the anchor item.
	AnchorLabel = "tee"
	// VTPMLabel is the conventional label of a vTPM item.
	VTPMLabel = "vtpm"

	// MaxBound is the largest number of bound items.
	MaxBound = 8
	// MaxLabelSize and MaxKeySize bound a bound item's label and key.
	MaxLabelSize = 64
	MaxKeySize   = 4096

	commitmentDomain = "go-expat composite v1"
)

// Link is one bound item's part of the commitment: its label and the key
// the anchor vouches for.
type Link struct {
	Label string
	Key   []byte
}

// ErrLayout matches every error of Commitment.
var ErrLayout = errors.New("composite: invalid links")

// Commitment returns the anchor's 64-byte user data for links (in any
// order; they are sorted by label). It fails for no links, more than
// MaxBound, a label that is empty, longer than MaxLabelSize or repeated,
// or the anchor's, and a key that is empty or longer than MaxKeySize.
func Commitment(anchorLabel string, links []Link) ([64]byte, error) {
	if len(links) == 0 || len(links) > MaxBound {
		return [64]byte{}, fmt.Errorf("%w: %d bound items, want 1 to %d", ErrLayout, len(links), MaxBound)
	}
	ls := slices.Clone(links)
	slices.SortFunc(ls, func(a, b Link) int { return bytes.Compare([]byte(a.Label), []byte(b.Label)) })
	h := sha512.New()
	h.Write([]byte(commitmentDomain))
	h.Write([]byte{0, byte(len(ls))})
	for i, l := range ls {
		switch {
		case l.Label == "" || len(l.Label) > MaxLabelSize:
			return [64]byte{}, fmt.Errorf("%w: label of %d bytes, want 1 to %d", ErrLayout, len(l.Label), MaxLabelSize)
		case l.Label == anchorLabel:
			return [64]byte{}, fmt.Errorf("%w: bound item labelled %q like the anchor", ErrLayout, l.Label)
		case i > 0 && ls[i-1].Label == l.Label:
			return [64]byte{}, fmt.Errorf("%w: label %q repeated", ErrLayout, l.Label)
		case len(l.Key) == 0 || len(l.Key) > MaxKeySize:
			return [64]byte{}, fmt.Errorf("%w: key of %q has %d bytes, want 1 to %d", ErrLayout, l.Label, len(l.Key), MaxKeySize)
		}
		h.Write([]byte{byte(len(l.Label))})
		h.Write([]byte(l.Label))
		h.Write(binary.BigEndian.AppendUint16(nil, uint16(len(l.Key))))
		h.Write(l.Key)
	}
	var out [64]byte
	h.Sum(out[:0])
	return out, nil
}

// Anchor produces the anchor's Evidence, a CMW record, for user data
// chosen by the caller. attester/sevsnp's and attester/tdx's Attesters are
// Anchors.
type Anchor interface {
	AttestReportData(ctx context.Context, reportData [64]byte) ([]byte, error)
}

// Item is a bound item: Attester produces its Evidence (a CMW record) for
// the channel challenge, and Key is what the anchor vouches for (for
// attester/tpm: Attester.AKPublic()).
type Item struct {
	Label    string
	Attester attester.Attester
	Key      []byte
}

// Config configures an Attester. Anchor and at least one Item are
// required.
type Config struct {
	Anchor Anchor
	// AnchorLabel is the anchor item's label; empty means AnchorLabel.
	AnchorLabel string
	Items       []Item
}

// Attester produces composite Evidence. It is safe for concurrent use when
// its anchor and items are.
type Attester struct {
	anchor      Anchor
	anchorLabel string
	items       []Item
	commitment  [64]byte
}

var _ attester.Attester = (*Attester)(nil)

// New checks cfg, computes the commitment and returns an Attester.
func New(cfg *Config) (*Attester, error) {
	if cfg == nil || cfg.Anchor == nil {
		return nil, errors.New("composite: no anchor")
	}
	a := &Attester{anchor: cfg.Anchor, anchorLabel: cfg.AnchorLabel}
	if a.anchorLabel == "" {
		a.anchorLabel = AnchorLabel
	}
	if len(a.anchorLabel) > MaxLabelSize {
		return nil, fmt.Errorf("%w: anchor label of %d bytes", ErrLayout, len(a.anchorLabel))
	}
	links := make([]Link, len(cfg.Items))
	for i, it := range cfg.Items {
		if it.Attester == nil {
			return nil, fmt.Errorf("composite: item %q has no attester", it.Label)
		}
		links[i] = Link{Label: it.Label, Key: bytes.Clone(it.Key)}
		a.items = append(a.items, Item{Label: it.Label, Attester: it.Attester, Key: links[i].Key})
	}
	var err error
	if a.commitment, err = Commitment(a.anchorLabel, links); err != nil {
		return nil, err
	}
	return a, nil
}

// Commitment returns the anchor's user data (the package's layout).
func (a *Attester) Commitment() [64]byte { return a.commitment }

// Attest asks each bound item for Evidence bound to ch, then the anchor for
// a report committing to the items' keys, and returns the collection
// (CBOR). It honours ctx through its items and anchor.
func (a *Attester) Attest(ctx context.Context, ch attester.Challenge) ([]byte, error) {
	if err := ch.Check(); err != nil {
		return nil, err
	}
	col, err := cmw.NewCollection(CollectionType)
	if err != nil {
		return nil, err
	}
	add := func(label string, b []byte) error {
		c, err := cmw.Decode(b, nil)
		if err != nil {
			return fmt.Errorf("composite: item %q: %w", label, err)
		}
		if c.IsCollection() {
			return fmt.Errorf("composite: item %q is a collection, not a record", label)
		}
		return col.Add(cmw.TextLabel(label), c)
	}
	for _, it := range a.items {
		b, err := it.Attester.Attest(ctx, ch)
		if err != nil {
			return nil, fmt.Errorf("composite: item %q: %w", it.Label, err)
		}
		if err := add(it.Label, b); err != nil {
			return nil, err
		}
	}
	b, err := a.anchor.AttestReportData(ctx, a.commitment)
	if err != nil {
		return nil, fmt.Errorf("composite: anchor: %w", err)
	}
	if err := add(a.anchorLabel, b); err != nil {
		return nil, err
	}
	out, err := col.MarshalCBOR()
	if err != nil {
		return nil, err
	}
	if len(out) > cmw.MaxSize {
		return nil, fmt.Errorf("composite: collection of %d bytes exceeds %d", len(out), cmw.MaxSize)
	}
	return out, nil
}
