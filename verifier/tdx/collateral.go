package tdx

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-tdx-guest/pcs"

	"github.com/attested-tls/go-expat/verifier/collateral"
)

// Item names one kind of collateral.
type Item int

const (
	// TCBInfo is the TDX TCB info for one FMSPC (Intel PCS
	// /tdx/certification/v4/tcb).
	TCBInfo Item = iota + 1
	// QEIdentity is the TD quoting enclave identity
	// (/tdx/certification/v4/qe/identity).
	QEIdentity
	// PCKCRL is the CRL of a PCK CA (/sgx/certification/v4/pckcrl).
	PCKCRL
	// RootCRL is the CRL of the SGX root CA.
	RootCRL
)

func (i Item) String() string {
	switch i {
	case TCBInfo:
		return "tcb-info"
	case QEIdentity:
		return "qe-identity"
	case PCKCRL:
		return "pck-crl"
	case RootCRL:
		return "root-crl"
	}
	return fmt.Sprintf("Item(%d)", int(i))
}

// Request asks a Getter for one collateral item.
type Request struct {
	Item Item
	// FMSPC (12 lower-case hex digits) selects the TCB info.
	FMSPC string
	// CA ("platform" or "processor") selects the PCK CRL.
	CA string
}

// Response is one collateral item as Intel's PCS serves it.
type Response struct {
	// Body is the response body: JSON for TCB info and QE identity, DER
	// for CRLs.
	Body []byte
	// IssuerChain is the PEM chain of the signer (signing certificate,
	// then root) from the PCS response header; empty for the root CRL.
	IssuerChain []byte
}

// Getter fetches collateral. Implementations must honour ctx. Errors are
// reported by Verify as *verifier.UnavailableError ("could not check");
// a *collateral.FetchError tells whether a retry may help.
type Getter interface {
	Get(ctx context.Context, req Request) (*Response, error)
}

// Default Intel PCS locations.
const (
	DefaultPCSBaseURL = "https://api.trustedservices.intel.com"
	DefaultRootCRLURL = "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der"
	// MaxCollateralSize bounds every collateral body and issuer chain.
	MaxCollateralSize = 1 << 20
)

// PCS fetches collateral from Intel's Provisioning Certification Service
// (API v4) or a caching service with the same paths (a PCCS). The zero
// value uses Intel's URLs and collateral.HTTP's defaults (http.DefaultClient,
// bounded retries of 429/5xx answers).
type PCS struct {
	// HTTP makes the requests (its Client, retries and size bound; the
	// size bound defaults to MaxCollateralSize here). Pass a ctx with a
	// deadline.
	HTTP collateral.HTTP
	// BaseURL replaces "https://api.trustedservices.intel.com".
	BaseURL string
	// RootCRLURL replaces Intel's root CA CRL location.
	RootCRLURL string
}

var _ Getter = (*PCS)(nil)

// Get implements Getter.
func (p *PCS) Get(ctx context.Context, req Request) (*Response, error) {
	base := p.BaseURL
	if base == "" {
		base = DefaultPCSBaseURL
	}
	base = strings.TrimSuffix(base, "/")
	var u, header string
	switch req.Item {
	case TCBInfo:
		if !validFMSPC(req.FMSPC) {
			return nil, &collateral.FetchError{Item: req.Item.String(), Err: errors.New("invalid FMSPC")}
		}
		u, header = base+"/tdx/certification/v4/tcb?fmspc="+req.FMSPC, "TCB-Info-Issuer-Chain"
	case QEIdentity:
		u, header = base+"/tdx/certification/v4/qe/identity", "SGX-Enclave-Identity-Issuer-Chain"
	case PCKCRL:
		if req.CA != "platform" && req.CA != "processor" {
			return nil, &collateral.FetchError{Item: req.Item.String(), Err: errors.New("invalid CA")}
		}
		u, header = base+"/sgx/certification/v4/pckcrl?ca="+req.CA+"&encoding=der", "SGX-PCK-CRL-Issuer-Chain"
	case RootCRL:
		u = p.RootCRLURL
		if u == "" {
			u = DefaultRootCRLURL
		}
	default:
		return nil, &collateral.FetchError{Item: req.Item.String(), Err: errors.New("unknown item")}
	}
	h := p.HTTP
	if h.MaxSize == 0 {
		h.MaxSize = MaxCollateralSize
	}
	body, hdr, err := h.Get(ctx, u)
	if err != nil {
		return nil, err
	}
	out := &Response{Body: body}
	if header != "" {
		vals := hdr.Values(header)
		if len(vals) != 1 || len(vals[0]) > 3*MaxCollateralSize/4 {
			return nil, &collateral.FetchError{Item: req.Item.String(), Err: fmt.Errorf("want one %s header, got %d", header, len(vals))}
		}
		chain, err := url.QueryUnescape(vals[0])
		if err != nil {
			return nil, &collateral.FetchError{Item: req.Item.String(), Err: fmt.Errorf("%s: %v", header, err)}
		}
		out.IssuerChain = []byte(chain)
	}
	return out, nil
}

func validFMSPC(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Bundle is collateral supplied by the caller, for offline verification:
// Get never touches the network and answers every request with the
// matching field (an empty field is reported as unavailable). The
// collateral is verified exactly like fetched collateral, including its
// nextUpdate.
type Bundle struct {
	TCBInfo, TCBInfoIssuerChain       []byte
	QEIdentity, QEIdentityIssuerChain []byte
	PCKCRL, PCKCRLIssuerChain         []byte
	RootCRL                           []byte
}

var _ Getter = (*Bundle)(nil)

// Get implements Getter.
func (b *Bundle) Get(ctx context.Context, req Request) (*Response, error) {
	var r *Response
	switch req.Item {
	case TCBInfo:
		r = &Response{Body: b.TCBInfo, IssuerChain: b.TCBInfoIssuerChain}
	case QEIdentity:
		r = &Response{Body: b.QEIdentity, IssuerChain: b.QEIdentityIssuerChain}
	case PCKCRL:
		r = &Response{Body: b.PCKCRL, IssuerChain: b.PCKCRLIssuerChain}
	case RootCRL:
		r = &Response{Body: b.RootCRL}
	}
	if r == nil || len(r.Body) == 0 {
		return nil, &collateral.FetchError{Item: "bundle " + req.Item.String(), Err: collateral.ErrNotFound}
	}
	return r, nil
}

// collateralError is an invalid (not unavailable) collateral item.
type collateralError struct {
	item Item
	msg  string
}

func (e *collateralError) Error() string { return "tdx: " + e.item.String() + ": " + e.msg }

func badCollateral(i Item, f string, a ...any) error {
	return &collateralError{item: i, msg: fmt.Sprintf(f, a...)}
}

// Names in Intel's hierarchy (Intel SGX PCK Certificate and CRL Profile).
const (
	rootCN       = "Intel SGX Root CA"
	tcbSigningCN = "Intel SGX TCB Signing"
	pckCN        = "Intel SGX PCK Certificate"
	platformCACN = "Intel SGX PCK Platform CA"
	processorCN  = "Intel SGX PCK Processor CA"
)

// IntelRootSHA256 is the SHA-256 of the DER of Intel's "Intel SGX Root CA"
// certificate (valid 2018-05-21 to 2049-12-31), the default trust anchor.
// Tests check it against the copy go-tdx-guest embeds.
const IntelRootSHA256 = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"

// trust holds the trust anchors.
type trust struct {
	roots []*x509.Certificate // nil: the Intel pin
}

func (t *trust) trusted(c *x509.Certificate) bool {
	if t.roots == nil {
		h := sha256.Sum256(c.Raw)
		return hex.EncodeToString(h[:]) == IntelRootSHA256
	}
	for _, r := range t.roots {
		if r.Equal(c) {
			return true
		}
	}
	return false
}

func checkP256(c *x509.Certificate) error {
	if c.SignatureAlgorithm != x509.ECDSAWithSHA256 {
		return fmt.Errorf("%q is signed with %v, want ECDSA-SHA256", c.Subject.CommonName, c.SignatureAlgorithm)
	}
	k, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || k.Curve.Params().Name != "P-256" {
		return fmt.Errorf("%q does not have a P-256 key", c.Subject.CommonName)
	}
	return nil
}

// parsePEMChain parses exactly n CERTIFICATE blocks; a single trailing
// NUL (as quoting enclaves emit) is tolerated.
func parsePEMChain(b []byte, n int) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := b
	for i := 0; i < n; i++ {
		// pem.Decode skips anything before a block; we do not.
		if !bytes.HasPrefix(rest, []byte("-----BEGIN CERTIFICATE-----\n")) {
			return nil, fmt.Errorf("want %d PEM certificates, found %d", n, i)
		}
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil || blk.Type != "CERTIFICATE" || len(blk.Headers) != 0 {
			return nil, fmt.Errorf("want %d PEM certificates, found %d", n, i)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %v", i, err)
		}
		out = append(out, c)
	}
	if len(bytes.TrimRight(rest, "\x00\n")) != 0 || len(rest) > 2 {
		return nil, fmt.Errorf("%d trailing bytes after the certificates", len(rest))
	}
	return out, nil
}

// verifyTo checks that leaf, through the optional intermediate, chains to
// a trusted root at now, with Intel's names and algorithms.
func (t *trust) verifyTo(now time.Time, leaf *x509.Certificate, leafCN string, inter *x509.Certificate, root *x509.Certificate) error {
	if root.Subject.CommonName != rootCN || !bytes.Equal(root.RawSubject, root.RawIssuer) {
		return fmt.Errorf("root is %q, want self-issued %q", root.Subject.CommonName, rootCN)
	}
	if !t.trusted(root) {
		return errors.New("root certificate is not a trusted root")
	}
	if leaf.Subject.CommonName != leafCN {
		return fmt.Errorf("certificate is %q, want %q", leaf.Subject.CommonName, leafCN)
	}
	for _, c := range []*x509.Certificate{leaf, inter, root} {
		if c == nil {
			continue
		}
		if err := checkP256(c); err != nil {
			return err
		}
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	inters := x509.NewCertPool()
	if inter != nil {
		inters.AddCert(inter)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return err
	}
	want := 2
	if inter != nil {
		want = 3
	}
	for _, ch := range chains {
		if len(ch) == want && (inter == nil || ch[1].Equal(inter)) {
			return nil
		}
	}
	return errors.New("certificate does not chain through the expected issuer")
}

func rawSigToDER(sig []byte) (r, s *big.Int, ok bool) {
	if len(sig) != 64 {
		return nil, nil, false
	}
	return new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]), true
}

// verifyRaw checks an ECDSA P-256 r||s signature over SHA-256(msg).
func verifyRaw(pub *ecdsa.PublicKey, msg, sig []byte) bool {
	r, s, ok := rawSigToDER(sig)
	if !ok {
		return false
	}
	h := sha256.Sum256(msg)
	return ecdsa.Verify(pub, h[:], r, s)
}

// splitSigned extracts the raw value of field and the hex signature from a
// PCS JSON body {"<field>": {...}, "signature": "<hex>"}: exactly these two
// keys, once each, nothing after.
func splitSigned(body []byte, field string) (json.RawMessage, []byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, errors.New("not a JSON object")
	}
	var inner json.RawMessage
	var sigHex string
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		k, _ := tok.(string)
		if seen[k] {
			return nil, nil, fmt.Errorf("duplicate key %q", k)
		}
		seen[k] = true
		switch k {
		case field:
			if err := dec.Decode(&inner); err != nil {
				return nil, nil, err
			}
		case "signature":
			if err := dec.Decode(&sigHex); err != nil {
				return nil, nil, err
			}
		default:
			return nil, nil, fmt.Errorf("unexpected key %q", k)
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, nil, errors.New("unterminated object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, errors.New("trailing data")
	}
	if inner == nil || len(inner) == 0 || inner[0] != '{' {
		return nil, nil, fmt.Errorf("missing %q object", field)
	}
	sig, err := hex.DecodeString(sigHex)
	if err != nil || len(sig) != 64 {
		return nil, nil, errors.New("signature is not 64 hex-encoded bytes")
	}
	return inner, sig, nil
}

// signer verifies a PCS issuer chain (TCB signing certificate, root).
func (t *trust) signer(item Item, chain []byte, now time.Time) (*x509.Certificate, error) {
	certs, err := parsePEMChain(chain, 2)
	if err != nil {
		return nil, badCollateral(item, "issuer chain: %v", err)
	}
	if err := t.verifyTo(now, certs[0], tcbSigningCN, nil, certs[1]); err != nil {
		return nil, badCollateral(item, "issuer chain: %v", err)
	}
	return certs[0], nil
}

// verifiedTCBInfo is TCB info whose signature and shape were checked.
type verifiedTCBInfo struct {
	info    pcs.TcbInfo
	signer  *x509.Certificate
	expires time.Time
}

// verifiedQEIdentity is a checked QE identity.
type verifiedQEIdentity struct {
	id      pcs.EnclaveIdentity
	signer  *x509.Certificate
	expires time.Time
}

// verifiedCRL is a checked CRL with its issuer.
type verifiedCRL struct {
	crl     *x509.RevocationList
	issuer  *x509.Certificate
	expires time.Time
}

func earliest(ts ...time.Time) time.Time {
	e := ts[0]
	for _, t := range ts[1:] {
		if t.Before(e) {
			e = t
		}
	}
	return e
}

func checkWindow(item Item, issue, next, now time.Time) error {
	if next.IsZero() || issue.IsZero() || !issue.Before(next) {
		return badCollateral(item, "invalid validity window %v .. %v", issue, next)
	}
	if now.Before(issue) {
		return badCollateral(item, "issued at %v, after the appraisal time %v", issue.UTC(), now.UTC())
	}
	if !now.Before(next) {
		return badCollateral(item, "expired: nextUpdate %v is not after %v", next.UTC(), now.UTC())
	}
	return nil
}

func (t *trust) parseTCBInfo(r *Response, now time.Time) (*verifiedTCBInfo, error) {
	signer, err := t.signer(TCBInfo, r.IssuerChain, now)
	if err != nil {
		return nil, err
	}
	inner, sig, err := splitSigned(r.Body, "tcbInfo")
	if err != nil {
		return nil, badCollateral(TCBInfo, "%v", err)
	}
	if !verifyRaw(signer.PublicKey.(*ecdsa.PublicKey), inner, sig) {
		return nil, badCollateral(TCBInfo, "signature does not verify")
	}
	var ti pcs.TcbInfo
	if err := json.Unmarshal(inner, &ti); err != nil {
		return nil, badCollateral(TCBInfo, "%v", err)
	}
	if ti.ID != "TDX" || ti.Version != 3 {
		return nil, badCollateral(TCBInfo, "id %q version %d, want TDX version 3", ti.ID, ti.Version)
	}
	if len(ti.TcbLevels) == 0 {
		return nil, badCollateral(TCBInfo, "no TCB levels")
	}
	for i, l := range ti.TcbLevels {
		if len(l.Tcb.SgxTcbcomponents) != 16 || len(l.Tcb.TdxTcbcomponents) != 16 {
			return nil, badCollateral(TCBInfo, "TCB level %d does not have 16 SGX and 16 TDX components", i)
		}
	}
	if len(ti.TdxModule.AttributesMask.Bytes) != 8 || len(ti.TdxModule.Attributes.Bytes) != 8 || len(ti.TdxModule.Mrsigner.Bytes) != 48 {
		return nil, badCollateral(TCBInfo, "malformed tdxModule")
	}
	for _, m := range ti.TdxModuleIdentities {
		if len(m.TcbLevels) == 0 {
			return nil, badCollateral(TCBInfo, "TDX module identity %q has no TCB levels", m.ID)
		}
	}
	if err := checkWindow(TCBInfo, ti.IssueDate, ti.NextUpdate, now); err != nil {
		return nil, err
	}
	return &verifiedTCBInfo{info: ti, signer: signer, expires: earliest(ti.NextUpdate, signer.NotAfter)}, nil
}

func (t *trust) parseQEIdentity(r *Response, now time.Time) (*verifiedQEIdentity, error) {
	signer, err := t.signer(QEIdentity, r.IssuerChain, now)
	if err != nil {
		return nil, err
	}
	inner, sig, err := splitSigned(r.Body, "enclaveIdentity")
	if err != nil {
		return nil, badCollateral(QEIdentity, "%v", err)
	}
	if !verifyRaw(signer.PublicKey.(*ecdsa.PublicKey), inner, sig) {
		return nil, badCollateral(QEIdentity, "signature does not verify")
	}
	var id pcs.EnclaveIdentity
	if err := json.Unmarshal(inner, &id); err != nil {
		return nil, badCollateral(QEIdentity, "%v", err)
	}
	if id.ID != "TD_QE" || id.Version != 2 {
		return nil, badCollateral(QEIdentity, "id %q version %d, want TD_QE version 2", id.ID, id.Version)
	}
	if len(id.TcbLevels) == 0 || len(id.Miscselect.Bytes) != 4 || len(id.MiscselectMask.Bytes) != 4 ||
		len(id.Attributes.Bytes) != 16 || len(id.AttributesMask.Bytes) != 16 || len(id.Mrsigner.Bytes) != 32 {
		return nil, badCollateral(QEIdentity, "malformed identity")
	}
	if err := checkWindow(QEIdentity, id.IssueDate, id.NextUpdate, now); err != nil {
		return nil, err
	}
	return &verifiedQEIdentity{id: id, signer: signer, expires: earliest(id.NextUpdate, signer.NotAfter)}, nil
}

func (t *trust) parseCRL(item Item, r *Response, now time.Time) (*verifiedCRL, error) {
	crl, err := x509.ParseRevocationList(r.Body)
	if err != nil {
		return nil, badCollateral(item, "%v", err)
	}
	var issuer *x509.Certificate
	switch item {
	case RootCRL:
		// Signed by the root itself; the caller checks it against the
		// trusted root it uses.
	case PCKCRL:
		certs, err := parsePEMChain(r.IssuerChain, 2)
		if err != nil {
			return nil, badCollateral(item, "issuer chain: %v", err)
		}
		if cn := certs[0].Subject.CommonName; cn != platformCACN && cn != processorCN {
			return nil, badCollateral(item, "issuer is %q", cn)
		}
		if err := t.verifyTo(now, certs[0], certs[0].Subject.CommonName, nil, certs[1]); err != nil {
			return nil, badCollateral(item, "issuer chain: %v", err)
		}
		if err := crl.CheckSignatureFrom(certs[0]); err != nil {
			return nil, badCollateral(item, "signature: %v", err)
		}
		issuer = certs[0]
	}
	if err := checkWindow(item, crl.ThisUpdate, crl.NextUpdate, now); err != nil {
		return nil, err
	}
	exp := crl.NextUpdate
	if issuer != nil {
		exp = earliest(exp, issuer.NotAfter)
	}
	return &verifiedCRL{crl: crl, issuer: issuer, expires: exp}, nil
}

func revoked(crl *x509.RevocationList, c *x509.Certificate) bool {
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber != nil && e.SerialNumber.Cmp(c.SerialNumber) == 0 {
			return true
		}
	}
	return false
}
