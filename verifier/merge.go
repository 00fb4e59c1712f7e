package verifier

import (
	"strings"
)

// ItemResult is the Result of one item of a CMW collection, with the
// labels leading to it ("gpu/firmware" is Path "gpu/firmware").
type ItemResult struct {
	Path   string
	Result *Result
}

// Merge is the one way go-expat merges the Results of a collection's items
// (Dispatch, verifier/composite). The merged Result has: Model and
// Technology of the items when they all agree (else Model BackgroundCheck
// only if all items were background-check, Passport otherwise, and
// Technology the items' technologies joined by "+"), MediaType mediaType
// (or "cmw-collection" when empty), Status the WorstTier and each
// TrustVector claim the WorstClaim over the items, Measurements and
// Claims prefixed with the item's Path ("gpu/firmware"), Verifier the
// distinct verifiers joined by ", ", AppraisedAt and Expires the earliest
// (of those set), and EAR only when exactly one item carried one.
//
// KeyBinding and PlatformIDs are left unset (KeyByBinder, none): how the
// items relate to each other decides them, which only the caller knows.
// Merge returns nil for no items; every Result must be non-nil.
func Merge(mediaType string, items []ItemResult) *Result {
	if len(items) == 0 {
		return nil
	}
	first := items[0].Result
	out := &Result{
		Model:       first.Model,
		Technology:  first.Technology,
		Status:      first.Status,
		TrustVector: first.TrustVector,
		MediaType:   mediaType,
		Claims:      map[string]string{},
	}
	if out.MediaType == "" {
		out.MediaType = "cmw-collection"
	}
	var techs, verifiers []string
	seenTech, seenVer := map[string]bool{}, map[string]bool{}
	ears := 0
	allBG := true
	for _, ir := range items {
		r := ir.Result
		if r.Model != BackgroundCheck {
			allBG = false
		}
		if !seenTech[r.Technology] {
			seenTech[r.Technology] = true
			techs = append(techs, r.Technology)
		}
		if !seenVer[r.Verifier] {
			seenVer[r.Verifier] = true
			verifiers = append(verifiers, r.Verifier)
		}
		out.Status = WorstTier(out.Status, r.Status)
		out.TrustVector.Merge(r.TrustVector)
		for _, m := range r.Measurements {
			out.Measurements = append(out.Measurements, Measurement{Name: ir.Path + "/" + m.Name, Value: m.Value})
		}
		for k, v := range r.Claims {
			out.Claims[ir.Path+"/"+k] = v
		}
		if out.AppraisedAt.IsZero() || (!r.AppraisedAt.IsZero() && r.AppraisedAt.Before(out.AppraisedAt)) {
			out.AppraisedAt = r.AppraisedAt
		}
		if out.Expires.IsZero() || (!r.Expires.IsZero() && r.Expires.Before(out.Expires)) {
			out.Expires = r.Expires
		}
		if len(r.EAR) > 0 {
			ears++
			out.EAR = r.EAR
		}
		if r.Model != out.Model {
			out.Model = 0 // decided below
		}
	}
	if ears != 1 {
		out.EAR = nil
	}
	if len(techs) > 1 {
		out.Technology = strings.Join(techs, "+")
	}
	if out.Model == 0 {
		out.Model = Passport
		if allBG {
			out.Model = BackgroundCheck
		}
	}
	out.Verifier = strings.Join(verifiers, ", ")
	return out
}
