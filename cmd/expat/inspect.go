package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	"github.com/google/go-tpm/tpm2"

	ccawire "github.com/attested-tls/go-expat/attester/cca/wire"
	snpwire "github.com/attested-tls/go-expat/attester/sevsnp/wire"
	tdxwire "github.com/attested-tls/go-expat/attester/tdx/wire"
	"github.com/attested-tls/go-expat/attester/tpm/bundle"
	"github.com/attested-tls/go-expat/cmw"
	vtpm "github.com/attested-tls/go-expat/verifier/tpm"
)

// maxInspectInput bounds what inspect reads (a CMW is at most cmw.MaxSize;
// raw quotes and tokens are smaller than this too).
const maxInspectInput = 1 << 20

// maxDepth bounds nested collections.
const maxInspectDepth = 8

// node is one decoded message: a CMW record or collection, an EAR, or a
// backend's Evidence, with its readable claims (in order) and children.
type node struct {
	Kind       string  `json:"kind"`
	Label      string  `json:"label,omitempty"`
	MediaType  string  `json:"media_type,omitempty"`
	Indicator  string  `json:"indicator,omitempty"`
	Format     string  `json:"format,omitempty"`
	Verified   *bool   `json:"verified,omitempty"`
	Note       string  `json:"note,omitempty"`
	Claims     []claim `json:"claims,omitempty"`
	Children   []*node `json:"children,omitempty"`
	DecodeNote string  `json:"decode_error,omitempty"`

	raw []byte // an EAR's JWT, for --verify
}

type claim struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

func (n *node) add(name string, format string, args ...any) {
	n.Claims = append(n.Claims, claim{Name: name, Value: fmt.Sprintf(format, args...)})
}

// The raw forms --as accepts.
var rawForms = map[string]func([]byte) (*node, error){
	"sev-snp-evidence": decodeSEVSNP,
	"tdx-evidence":     decodeTDX,
	"tpm-bundle":       decodeTPM,
	"cca-token":        decodeCCA,
	"ear":              func(b []byte) (*node, error) { return decodeEAR(bytes.TrimSpace(b)) },
}

func inspect(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("expat inspect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the decoded claims as JSON")
	as := fs.String("as", "", "decode the input as this raw `FORM` instead of a CMW or an EAR: sev-snp-evidence, tdx-evidence, tpm-bundle, cca-token, ear")
	verifyKey := fs.String("verify", "", "EAR: check the signature (and profile, age, status) with this public key `FILE` (PEM) or JWK Set")
	nonce := fs.String("nonce", "", "EAR with --verify: the session nonce (hex) the EAR must echo; default: the EAR's own (the binding is then NOT checked)")
	maxAge := fs.Duration("max-age", 0, "EAR with --verify: the oldest issued-at accepted (default verifier/ear's)")
	if err := fs.Parse(args); err != nil {
		return exitError
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: expat inspect [flags] FILE|-")
		return exitError
	}
	var r io.Reader = stdin
	if name := fs.Arg(0); name != "-" {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintf(stderr, "expat: %v\n", err)
			return exitError
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxInspectInput+1))
	if err != nil {
		fmt.Fprintf(stderr, "expat: %v\n", err)
		return exitError
	}
	if len(b) > maxInspectInput {
		fmt.Fprintf(stderr, "expat: input larger than %d bytes\n", maxInspectInput)
		return exitError
	}
	var n *node
	if *as != "" {
		dec, ok := rawForms[*as]
		if !ok {
			fmt.Fprintf(stderr, "expat: unknown --as %q\n", *as)
			return exitError
		}
		n, err = dec(b)
	} else {
		n, err = decodeInput(b)
	}
	if err != nil {
		fmt.Fprintf(stderr, "expat: inspect: %v\n", err)
		return exitError
	}
	status := exitOK
	if *verifyKey != "" {
		status = verifyEARs(n, *verifyKey, *nonce, *maxAge, stderr)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(n)
	} else {
		printNode(stdout, n, "")
	}
	return status
}

// decodeInput decodes b as a CMW (JSON or CBOR) or, failing that, as a bare
// EAR JWT.
func decodeInput(b []byte) (*node, error) {
	c, cerr := cmw.Decode(b, nil)
	if cerr == nil {
		return decodeCMW(c, "", 0), nil
	}
	if t := bytes.TrimSpace(b); bytes.Count(t, []byte(".")) == 2 && !bytes.ContainsAny(t, " \n{[") {
		return decodeEAR(t)
	}
	return nil, fmt.Errorf("not a CMW (%w) nor an EAR JWT; for raw Evidence use --as", cerr)
}

func decodeCMW(c *cmw.CMW, label string, depth int) *node {
	format := c.Format().String()
	if c.IsCollection() {
		n := &node{Kind: "CMW collection", Label: label, Format: format, MediaType: c.CollectionType()}
		if depth >= maxInspectDepth {
			n.DecodeNote = "nested too deeply"
			return n
		}
		for _, it := range c.Items() {
			n.Children = append(n.Children, decodeCMW(it.CMW, it.Label.String(), depth+1))
		}
		return n
	}
	rec, _ := c.Record()
	n := &node{Kind: "CMW record", Label: label, Format: format, MediaType: rec.MediaType, Indicator: rec.Indicator.String()}
	var child *node
	var err error
	switch {
	case cmw.EqualMediaTypes(rec.MediaType, cmw.MediaTypeSEVSNP):
		child, err = decodeSEVSNP(rec.Value)
	case cmw.EqualMediaTypes(rec.MediaType, cmw.MediaTypeTDX):
		child, err = decodeTDX(rec.Value)
	case cmw.EqualMediaTypes(rec.MediaType, cmw.MediaTypeTPM2):
		child, err = decodeTPM(rec.Value)
	case cmw.EqualMediaTypes(rec.MediaType, cmw.MediaTypeCCA):
		child, err = decodeCCA(rec.Value)
	case cmw.EqualMediaTypes(rec.MediaType, cmw.MediaTypeEAR):
		child, err = decodeEAR(rec.Value)
	case cmw.EqualMediaTypes(rec.MediaType, cmw.MediaTypeTestKit):
		n.Note = "TEST KIT Evidence (TEST ONLY): signed by a software key, proves nothing about any platform"
		n.add("value", "%d bytes, SHA-256 %s", len(rec.Value), sha256Hex(rec.Value))
		return n
	default:
		n.Note = "media type not known to go-expat: value not decoded"
		n.add("value", "%d bytes, SHA-256 %s", len(rec.Value), sha256Hex(rec.Value))
		return n
	}
	if err != nil {
		n.DecodeNote = err.Error()
		return n
	}
	n.Children = []*node{child}
	return n
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func decodeSEVSNP(b []byte) (*node, error) {
	ev, err := snpwire.Unmarshal(b)
	if err != nil {
		return nil, err
	}
	r, err := abi.ReportToProto(ev.Report)
	if err != nil {
		return nil, fmt.Errorf("sev-snp report: %w", err)
	}
	n := &node{Kind: "SEV-SNP attestation report", Note: "unverified: decoded only (expat probe or verifier/sevsnp checks signatures and policy)"}
	n.add("version", "%d", r.Version)
	n.add("measurement", "%x", r.Measurement)
	n.add("host_data", "%x", r.HostData)
	n.add("report_data", "%x", r.ReportData)
	n.add("guest_svn", "%d", r.GuestSvn)
	n.add("policy", "%#x (debug %v, migration agent %v)", r.Policy, r.Policy&(1<<19) != 0, r.Policy&(1<<18) != 0)
	n.add("vmpl", "%d", r.Vmpl)
	for _, t := range []struct {
		name string
		v    uint64
	}{{"current_tcb", r.CurrentTcb}, {"committed_tcb", r.CommittedTcb}, {"reported_tcb", r.ReportedTcb}, {"launch_tcb", r.LaunchTcb}} {
		p := kds.DecomposeTCBVersion(kds.TCBVersion(t.v))
		n.add(t.name, "%#016x (Milan/Genoa layout: bootloader %d, tee %d, snp %d, microcode %d)", t.v, p.BlSpl, p.TeeSpl, p.SnpSpl, p.UcodeSpl)
	}
	n.add("family_id", "%x", r.FamilyId)
	n.add("image_id", "%x", r.ImageId)
	n.add("id_key_digest", "%x", r.IdKeyDigest)
	n.add("author_key_digest", "%x", r.AuthorKeyDigest)
	n.add("chip_id", "%x", r.ChipId)
	n.add("signer_info", "%#x", r.SignerInfo)
	if ev.CertTable != nil {
		tbl, err := snpwire.ParseCertTable(ev.CertTable)
		if err != nil {
			return nil, err
		}
		for _, e := range tbl {
			n.add("certificate", "GUID %x, %d bytes", e.GUID, len(e.Data))
		}
	}
	return n, nil
}

func decodeTDX(b []byte) (*node, error) {
	ev, err := tdxwire.Parse(b)
	if err != nil {
		return nil, err
	}
	q, err := tdxwire.ParseQuote(ev.Quote)
	if err != nil {
		return nil, err
	}
	n := &node{Kind: "TDX quote", Note: "unverified: decoded only (verifier/tdx checks the PCK chain, collateral and policy)"}
	body := q.Body
	n.add("version", "%d (body type %d)", q.Version, q.BodyType)
	n.add("mrtd", "%x", body.MRTD)
	for i, r := range body.RTMR {
		n.add(fmt.Sprintf("rtmr%d", i), "%x", r)
	}
	n.add("report_data", "%x", body.ReportData)
	n.add("td_attributes", "%x (debug %v)", body.TDAttributes, body.TDAttributes[0]&1 != 0)
	n.add("xfam", "%x", body.XFAM)
	n.add("mr_config_id", "%x", body.MRConfigID)
	n.add("mr_owner", "%x", body.MROwner)
	n.add("mr_owner_config", "%x", body.MROwnerConfig)
	n.add("mr_seam", "%x", body.MRSeam)
	n.add("tee_tcb_svn", "%x", body.TeeTCBSVN)
	n.add("qe_svn", "%d", q.QESVN)
	n.add("pce_svn", "%d", q.PCESVN)
	if len(ev.FMSPC) > 0 {
		n.add("fmspc_hint", "%x", ev.FMSPC)
	}
	if rest := q.PCKChain; len(rest) > 0 {
		for i := 0; i < 4; i++ {
			c, r, ok := nextPEMCert(rest)
			if !ok {
				break
			}
			rest = r
			n.add("pck_chain", "%s (issuer %s)", c.Subject, c.Issuer)
		}
	}
	return n, nil
}

func decodeTPM(b []byte) (*node, error) {
	bd, err := bundle.Unmarshal(b)
	if err != nil {
		return nil, err
	}
	n := &node{Kind: "TPM 2.0 quote bundle", Note: "unverified: decoded only (verifier/tpm checks the AK, the quote signature and the PCRs)"}
	n.add("pcr_bank", "TPM_ALG %#04x", bd.PCRAlg)
	idx := make([]int, 0, len(bd.PCRs))
	for i := range bd.PCRs {
		idx = append(idx, int(i))
	}
	sort.Ints(idx)
	for _, i := range idx {
		n.add(fmt.Sprintf("pcr%d", i), "%x", bd.PCRs[uint32(i)])
	}
	if pub, err := vtpm.ParseAKPublic(bd.AKPublic); err == nil {
		der, _ := x509.MarshalPKIXPublicKey(pub)
		n.add("ak", "%T, SPKI SHA-256 %s", pub, sha256Hex(der))
	} else {
		n.add("ak", "undecodable TPMT_PUBLIC (%v)", err)
	}
	addTPMAttest(n, "quote", bd.Quote, vtpm.ParseQuoteInfo)
	addTPMSignature(n, "quote_signature", bd.QuoteSig)
	n.add("key_attestation", "%v", bd.HasKeyAttestation())
	if bd.HasKeyAttestation() {
		addTPMAttest(n, "certify", bd.Certify, vtpm.ParseCertifyInfo)
		addTPMSignature(n, "certify_signature", bd.CertifySig)
		if pub, err := vtpm.ParseKeyPublic(bd.KeyPublic); err == nil {
			der, _ := x509.MarshalPKIXPublicKey(pub)
			n.add("certified_key", "%T, SPKI SHA-256 %s", pub, sha256Hex(der))
		} else {
			n.add("certified_key", "undecodable TPMT_PUBLIC (%v)", err)
		}
	}
	for _, der := range bd.AKChain {
		n.add("ak_chain", "%s", certSummary(der))
	}
	for _, der := range bd.EKCerts {
		n.add("ek_certificate", "%s", certSummary(der))
	}
	if len(bd.EventLog) > 0 {
		n.add("event_log", "%d bytes", len(bd.EventLog))
	}
	return n, nil
}

// addTPMAttest shows a TPMS_ATTEST's fields under prefix (decoded by
// verifier/tpm's strict parser, not verified), or why it is undecodable.
func addTPMAttest(n *node, prefix string, raw []byte, parse func([]byte) (*tpm2.TPMSAttest, error)) {
	a, err := parse(raw)
	if err != nil {
		n.add(prefix, "%d bytes, undecodable (%v)", len(raw), err)
		return
	}
	n.add(prefix+".type", "%#04x", uint16(a.Type))
	n.add(prefix+".qualified_signer", "%x", a.QualifiedSigner.Buffer)
	n.add(prefix+".extra_data", "%x", a.ExtraData.Buffer)
	n.add(prefix+".clock", "%d ms, resets %d, restarts %d, safe %v", a.ClockInfo.Clock, a.ClockInfo.ResetCount, a.ClockInfo.RestartCount, a.ClockInfo.Safe)
	n.add(prefix+".firmware_version", "%#016x", a.FirmwareVersion)
	if q, err := a.Attested.Quote(); err == nil {
		for _, sel := range q.PCRSelect.PCRSelections {
			var pcrs []string
			for i, b := range sel.PCRSelect {
				for bit := 0; bit < 8; bit++ {
					if b&(1<<bit) != 0 {
						pcrs = append(pcrs, strconv.Itoa(i*8+bit))
					}
				}
			}
			n.add(prefix+".pcr_selection", "TPM_ALG %#04x: %s", uint16(sel.Hash), strings.Join(pcrs, ","))
		}
		n.add(prefix+".pcr_digest", "%x", q.PCRDigest.Buffer)
	}
	if c, err := a.Attested.Certify(); err == nil {
		n.add(prefix+".name", "%x", c.Name.Buffer)
		n.add(prefix+".qualified_name", "%x", c.QualifiedName.Buffer)
	}
}

// addTPMSignature shows a TPMT_SIGNATURE's algorithms (not verified).
func addTPMSignature(n *node, label string, raw []byte) {
	sigAlg, hashAlg, err := vtpm.ParseSignature(raw)
	if err != nil {
		n.add(label, "%d bytes, undecodable (%v)", len(raw), err)
		return
	}
	n.add(label, "TPM_ALG %#04x with hash TPM_ALG %#04x, %d bytes", uint16(sigAlg), uint16(hashAlg), len(raw))
}

func certSummary(der []byte) string {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Sprintf("undecodable certificate (%v)", err)
	}
	return fmt.Sprintf("%s (issuer %s, until %s)", c.Subject, c.Issuer, c.NotAfter.UTC().Format(time.DateOnly))
}

func decodeCCA(b []byte) (*node, error) {
	tok, err := ccawire.ParseToken(b)
	if err != nil {
		return nil, err
	}
	n := &node{Kind: "Arm CCA attestation token", Note: "unverified: decoded only (verifier/cca checks the CPAK, RAK and policy)"}
	p := &node{Kind: "CCA platform token"}
	if v, err := tok.Platform.GetProfile(); err == nil {
		p.add("profile", "%s", v)
	}
	if v, err := tok.Platform.GetImplID(); err == nil {
		p.add("implementation_id", "%x", v)
	}
	if v, err := tok.Platform.GetInstID(); err == nil {
		p.add("instance_id", "%x", v)
	}
	if v, err := tok.Platform.GetSecurityLifeCycle(); err == nil {
		p.add("lifecycle", "%#04x", v)
	}
	if v, err := tok.Platform.GetConfig(); err == nil {
		p.add("config", "%x", v)
	}
	if v, err := tok.Platform.GetHashAlgID(); err == nil {
		p.add("hash_algorithm", "%s", v)
	}
	if v, err := tok.Platform.GetNonce(); err == nil {
		p.add("challenge", "%x", v)
	}
	if v, err := tok.Platform.GetVSI(); err == nil {
		p.add("verification_service", "%s", v)
	}
	if sw, err := tok.Platform.GetSoftwareComponents(); err == nil {
		for _, c := range sw {
			typ, _ := c.GetMeasurementType()
			val, _ := c.GetMeasurementValue()
			ver, _ := c.GetVersion()
			p.add("software", "%s %x (version %q)", typ, val, ver)
		}
	}
	r := &node{Kind: "CCA realm token"}
	if v, err := tok.Realm.GetInitialMeasurement(); err == nil {
		r.add("rim", "%x", v)
	}
	if v, err := tok.Realm.GetExtensibleMeasurements(); err == nil {
		for i, m := range v {
			r.add(fmt.Sprintf("rem%d", i), "%x", m)
		}
	}
	if v, err := tok.Realm.GetPersonalizationValue(); err == nil {
		r.add("personalization_value", "%x", v)
	}
	if v, err := tok.Realm.GetChallenge(); err == nil {
		r.add("challenge", "%x", v)
	}
	if v, err := tok.Realm.GetHashAlgID(); err == nil {
		r.add("hash_algorithm", "%s", v)
	}
	if v, err := tok.Realm.GetPubKey(); err == nil {
		r.add("rak", "%d bytes, SHA-256 %s", len(v), sha256Hex(v))
	}
	n.Children = []*node{p, r}
	return n, nil
}

// maxEARSize bounds an EAR JWT.
const maxEARSize = 64 << 10

func decodeEAR(b []byte) (*node, error) {
	if len(b) > maxEARSize {
		return nil, fmt.Errorf("EAR larger than %d bytes", maxEARSize)
	}
	parts := strings.Split(string(b), ".")
	if len(parts) != 3 {
		return nil, errors.New("EAR: not a compact JWS (three dot-separated parts)")
	}
	header, err := base64.RawURLEncoding.Strict().DecodeString(parts[0])
	if err != nil {
		return nil, errors.New("EAR: header is not base64url")
	}
	payload, err := base64.RawURLEncoding.Strict().DecodeString(parts[1])
	if err != nil {
		return nil, errors.New("EAR: payload is not base64url")
	}
	n := &node{Kind: "EAR (EAT Attestation Result)", Note: "claims UNVERIFIED: shown without checking the signature (use --verify KEY)"}
	n.Verified = new(bool)
	n.raw = b
	for _, part := range []struct {
		name string
		b    []byte
	}{{"header", header}, {"claims", payload}} {
		var v map[string]any
		dec := json.NewDecoder(bytes.NewReader(part.b))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil || dec.More() {
			return nil, fmt.Errorf("EAR: %s is not one JSON object", part.name)
		}
		flatten(n, part.name, v, 0)
	}
	return n, nil
}

// flatten adds the members of v as claims named by their paths.
func flatten(n *node, prefix string, v any, depth int) {
	if depth > 8 {
		n.add(prefix, "(nested too deeply)")
		return
	}
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			flatten(n, prefix+"."+k, x[k], depth+1)
		}
	case []any:
		for i, e := range x {
			flatten(n, fmt.Sprintf("%s[%d]", prefix, i), e, depth+1)
		}
	default:
		n.add(prefix, "%v", x)
	}
}

func printNode(w io.Writer, n *node, indent string) {
	title := n.Kind
	if n.Label != "" {
		title = fmt.Sprintf("[%s] %s", n.Label, title)
	}
	if n.Format != "" {
		title += " (" + n.Format + ")"
	}
	fmt.Fprintf(w, "%s%s\n", indent, title)
	in := indent + "  "
	if n.MediaType != "" {
		fmt.Fprintf(w, "%smedia type: %s\n", in, n.MediaType)
	}
	if n.Indicator != "" {
		fmt.Fprintf(w, "%sindicator:  %s\n", in, n.Indicator)
	}
	if n.Note != "" {
		fmt.Fprintf(w, "%s%s\n", in, n.Note)
	}
	if n.DecodeNote != "" {
		fmt.Fprintf(w, "%sNOT DECODED: %s\n", in, n.DecodeNote)
	}
	for _, c := range n.Claims {
		fmt.Fprintf(w, "%s%-22s %s\n", in, c.Name, c.Value)
	}
	for _, c := range n.Children {
		printNode(w, c, in)
	}
}
