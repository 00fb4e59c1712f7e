package tdxtest

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/attested-tls/go-expat/attester/tdx/wire"
)

// TCBLevel is one level of a test TCB info.
type TCBLevel struct {
	SGX        [16]byte
	PCESVN     uint16
	TDX        [16]byte
	Status     string
	Advisories []string
}

// ModuleLevel is one TCB level of a TDX module identity (TDX 1.5).
type ModuleLevel struct {
	ISVSVN uint8
	Status string
}

// ModuleIdentity is a TDX module identity ("TDX_01", ...).
type ModuleIdentity struct {
	ID     string
	Levels []ModuleLevel
}

// TCBInfoSpec describes a test TCB info.
type TCBInfoSpec struct {
	FMSPC        [6]byte
	PCEID        [2]byte
	MRSignerSeam [48]byte
	Levels       []TCBLevel
	Modules      []ModuleIdentity
	Validity
}

type jsonComp struct {
	SVN      uint8  `json:"svn"`
	Category string `json:"category,omitempty"`
}

type jsonTCB struct {
	SGX    []jsonComp `json:"sgxtcbcomponents,omitempty"`
	PCESVN *uint16    `json:"pcesvn,omitempty"`
	TDX    []jsonComp `json:"tdxtcbcomponents,omitempty"`
	ISVSVN *uint16    `json:"isvsvn,omitempty"`
}

type jsonLevel struct {
	TCB        jsonTCB  `json:"tcb"`
	TCBDate    string   `json:"tcbDate"`
	TCBStatus  string   `json:"tcbStatus"`
	Advisories []string `json:"advisoryIDs,omitempty"`
}

type jsonModule struct {
	MRSigner       string `json:"mrsigner"`
	Attributes     string `json:"attributes"`
	AttributesMask string `json:"attributesMask"`
}

type jsonModuleIdentity struct {
	ID string `json:"id"`
	jsonModule
	Levels []jsonLevel `json:"tcbLevels"`
}

type jsonTCBInfo struct {
	ID         string               `json:"id"`
	Version    int                  `json:"version"`
	IssueDate  string               `json:"issueDate"`
	NextUpdate string               `json:"nextUpdate"`
	FMSPC      string               `json:"fmspc"`
	PCEID      string               `json:"pceId"`
	TCBType    int                  `json:"tcbType"`
	EvalNum    int                  `json:"tcbEvaluationDataNumber"`
	Module     jsonModule           `json:"tdxModule"`
	Identities []jsonModuleIdentity `json:"tdxModuleIdentities,omitempty"`
	Levels     []jsonLevel          `json:"tcbLevels"`
}

func comps(b [16]byte) []jsonComp {
	out := make([]jsonComp, 16)
	for i := range b {
		out[i] = jsonComp{SVN: b[i]}
	}
	return out
}

const tdate = "2006-01-02T15:04:05Z"

func (p *PKI) signBody(field string, inner []byte) ([]byte, error) {
	sig, err := rawSig(p.TCBSigningKey, inner)
	if err != nil {
		return nil, err
	}
	return []byte(fmt.Sprintf(`{"%s":%s,"signature":"%s"}`, field, inner, hex.EncodeToString(sig))), nil
}

// TCBInfo returns a PCS-shaped TDX TCB info response body signed by the
// test TCB signing key.
func (p *PKI) TCBInfo(s TCBInfoSpec) ([]byte, error) {
	mod := jsonModule{MRSigner: hex.EncodeToString(s.MRSignerSeam[:]), Attributes: "0000000000000000", AttributesMask: "FFFFFFFFFFFFFFFF"}
	ti := jsonTCBInfo{ID: "TDX", Version: 3, IssueDate: s.Issue.UTC().Format(tdate), NextUpdate: s.Next.UTC().Format(tdate),
		FMSPC: hex.EncodeToString(s.FMSPC[:]), PCEID: hex.EncodeToString(s.PCEID[:]), EvalNum: 17, Module: mod}
	for _, l := range s.Levels {
		pce := l.PCESVN
		ti.Levels = append(ti.Levels, jsonLevel{TCB: jsonTCB{SGX: comps(l.SGX), PCESVN: &pce, TDX: comps(l.TDX)},
			TCBDate: "2024-03-13T00:00:00Z", TCBStatus: l.Status, Advisories: l.Advisories})
	}
	for _, m := range s.Modules {
		mi := jsonModuleIdentity{ID: m.ID, jsonModule: mod}
		for _, l := range m.Levels {
			isv := uint16(l.ISVSVN)
			mi.Levels = append(mi.Levels, jsonLevel{TCB: jsonTCB{ISVSVN: &isv}, TCBDate: "2024-03-13T00:00:00Z", TCBStatus: l.Status})
		}
		ti.Identities = append(ti.Identities, mi)
	}
	inner, err := json.Marshal(ti)
	if err != nil {
		return nil, err
	}
	return p.signBody("tcbInfo", inner)
}

// QEIdentitySpec describes a test TD_QE identity.
type QEIdentitySpec struct {
	QE     wire.QEReport // MiscSelect, Attributes, MRSigner and ISVProdID are used
	Levels []ModuleLevel // ISVSVN thresholds, highest first
	Validity
}

// QEIdentity returns a PCS-shaped TD_QE identity response body.
func (p *PKI) QEIdentity(s QEIdentitySpec) ([]byte, error) {
	type jq struct {
		ID             string      `json:"id"`
		Version        int         `json:"version"`
		IssueDate      string      `json:"issueDate"`
		NextUpdate     string      `json:"nextUpdate"`
		EvalNum        int         `json:"tcbEvaluationDataNumber"`
		MiscSelect     string      `json:"miscselect"`
		MiscSelectMask string      `json:"miscselectMask"`
		Attributes     string      `json:"attributes"`
		AttributesMask string      `json:"attributesMask"`
		MRSigner       string      `json:"mrsigner"`
		ISVProdID      uint16      `json:"isvprodid"`
		Levels         []jsonLevel `json:"tcbLevels"`
	}
	ms := []byte{byte(s.QE.MiscSelect), byte(s.QE.MiscSelect >> 8), byte(s.QE.MiscSelect >> 16), byte(s.QE.MiscSelect >> 24)}
	q := jq{ID: "TD_QE", Version: 2, IssueDate: s.Issue.UTC().Format(tdate), NextUpdate: s.Next.UTC().Format(tdate), EvalNum: 17,
		MiscSelect: hex.EncodeToString(ms), MiscSelectMask: "FFFFFFFF",
		Attributes: hex.EncodeToString(s.QE.Attributes[:]), AttributesMask: "FBFFFFFFFFFFFFFF0000000000000000",
		MRSigner: hex.EncodeToString(s.QE.MRSigner[:]), ISVProdID: s.QE.ISVProdID}
	for _, l := range s.Levels {
		isv := uint16(l.ISVSVN)
		q.Levels = append(q.Levels, jsonLevel{TCB: jsonTCB{ISVSVN: &isv}, TCBDate: "2024-03-13T00:00:00Z", TCBStatus: l.Status})
	}
	inner, err := json.Marshal(q)
	if err != nil {
		return nil, err
	}
	return p.signBody("enclaveIdentity", inner)
}

// Collateral is a complete set of test collateral, as Intel's PCS would
// serve it.
type Collateral struct {
	TCBInfo, QEIdentity, PCKCRL, RootCRL []byte
	// Issuer chains (PEM, signing certificate then root).
	TCBInfoChain, QEIdentityChain, PCKCRLChain []byte
}

// UpToDateLevels returns a single UpToDate level matching pl and its
// default body.
func (pl *Platform) UpToDateLevels() []TCBLevel {
	return []TCBLevel{{SGX: pl.Opts.CPUSVN, PCESVN: pl.Opts.PCESVN, TDX: pl.Template.TeeTCBSVN, Status: "UpToDate"}}
}

// Collateral builds collateral for pl valid over v, with the given TCB
// levels (nil: pl.UpToDateLevels()) and PCK serials revoked.
func (pl *Platform) Collateral(v Validity, levels []TCBLevel, revoked ...*big.Int) (*Collateral, error) {
	p := pl.PKI
	if levels == nil {
		levels = pl.UpToDateLevels()
	}
	ti, err := p.TCBInfo(TCBInfoSpec{FMSPC: pl.Opts.FMSPC, PCEID: pl.Opts.PCEID, MRSignerSeam: pl.Template.MRSignerSeam, Levels: levels, Validity: v})
	if err != nil {
		return nil, err
	}
	qe, err := p.QEIdentity(QEIdentitySpec{QE: pl.QE, Levels: []ModuleLevel{{ISVSVN: uint8(pl.QE.ISVSVN), Status: "UpToDate"}, {ISVSVN: 0, Status: "OutOfDate"}}, Validity: v})
	if err != nil {
		return nil, err
	}
	pckcrl, err := p.PCKCRL(v.Issue, v.Next, revoked...)
	if err != nil {
		return nil, err
	}
	rootcrl, err := p.RootCRL(v.Issue, v.Next)
	if err != nil {
		return nil, err
	}
	return &Collateral{TCBInfo: ti, QEIdentity: qe, PCKCRL: pckcrl, RootCRL: rootcrl,
		TCBInfoChain: PEM(p.TCBSigning, p.Root), QEIdentityChain: PEM(p.TCBSigning, p.Root), PCKCRLChain: PEM(p.PlatformCA, p.Root)}, nil
}

// PCSServer is an http.Handler that imitates the Intel PCS v4 endpoints
// used for TDX (tcb, qe/identity, pckcrl, and the root CA CRL) and counts
// requests per endpoint. Swap the served collateral with Set.
type PCSServer struct {
	cur atomic.Pointer[Collateral]
	// Hits counts requests: "tcb", "qe", "pckcrl", "rootcrl".
	TCB, QE, PCKCRL, RootCRL atomic.Int64
	// Fail, when > 0, makes that many next requests answer 503.
	Fail atomic.Int64
	// Gate, when non-nil, holds every request until it is closed.
	Gate chan struct{}
}

// Set replaces the collateral served.
func (s *PCSServer) Set(c *Collateral) { s.cur.Store(c) }

func (s *PCSServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.Gate != nil {
		<-s.Gate
	}
	if s.Fail.Load() > 0 {
		s.Fail.Add(-1)
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	c := s.cur.Load()
	if c == nil {
		http.NotFound(w, r)
		return
	}
	p := r.URL.Path
	switch {
	case strings.HasSuffix(p, "/tdx/certification/v4/tcb"):
		s.TCB.Add(1)
		w.Header().Set("TCB-Info-Issuer-Chain", url.QueryEscape(string(c.TCBInfoChain)))
		_, _ = w.Write(c.TCBInfo)
	case strings.HasSuffix(p, "/tdx/certification/v4/qe/identity"):
		s.QE.Add(1)
		w.Header().Set("SGX-Enclave-Identity-Issuer-Chain", url.QueryEscape(string(c.QEIdentityChain)))
		_, _ = w.Write(c.QEIdentity)
	case strings.HasSuffix(p, "/sgx/certification/v4/pckcrl"):
		s.PCKCRL.Add(1)
		w.Header().Set("SGX-PCK-CRL-Issuer-Chain", url.QueryEscape(string(c.PCKCRLChain)))
		_, _ = w.Write(c.PCKCRL)
	case strings.HasSuffix(p, "/IntelSGXRootCA.der"):
		s.RootCRL.Add(1)
		_, _ = w.Write(c.RootCRL)
	default:
		http.NotFound(w, r)
	}
}

// Window returns a validity window [now-1h, now+d].
func Window(now time.Time, d time.Duration) Validity {
	return Validity{Issue: now.Add(-time.Hour), Next: now.Add(d)}
}
