package tdx

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/attested-tls/go-expat/attester/tdx/wire"
	"github.com/google/go-tdx-guest/pcs"
)

// TCBStatus is an Intel TCB status, kept as a set of facets so that
// statuses from the platform, the TDX module and the quoting enclave can
// be combined without losing any of them.
type TCBStatus uint8

const (
	// StatusSWHardeningNeeded: up to date, but software mitigations for
	// advisories are needed.
	StatusSWHardeningNeeded TCBStatus = 1 << iota
	// StatusConfigurationNeeded: platform configuration (BIOS) changes
	// are needed.
	StatusConfigurationNeeded
	// StatusOutOfDate: a TCB component is older than Intel's latest.
	StatusOutOfDate
	// StatusRevoked: the TCB level is revoked. Never accepted.
	StatusRevoked
)

// StatusUpToDate is the empty set.
const StatusUpToDate TCBStatus = 0

func (s TCBStatus) String() string {
	switch s {
	case StatusUpToDate:
		return "UpToDate"
	case StatusSWHardeningNeeded:
		return "SWHardeningNeeded"
	case StatusConfigurationNeeded:
		return "ConfigurationNeeded"
	case StatusConfigurationNeeded | StatusSWHardeningNeeded:
		return "ConfigurationAndSWHardeningNeeded"
	case StatusOutOfDate, StatusOutOfDate | StatusSWHardeningNeeded:
		return "OutOfDate"
	case StatusOutOfDate | StatusConfigurationNeeded, StatusOutOfDate | StatusConfigurationNeeded | StatusSWHardeningNeeded:
		return "OutOfDateConfigurationNeeded"
	}
	if s&StatusRevoked != 0 {
		return "Revoked"
	}
	return fmt.Sprintf("TCBStatus(%#x)", uint8(s))
}

func statusOf(s pcs.TcbComponentStatus) (TCBStatus, bool) {
	switch s {
	case pcs.TcbComponentStatusUpToDate:
		return StatusUpToDate, true
	case pcs.TcbComponentStatusSwHardeningNeeded:
		return StatusSWHardeningNeeded, true
	case pcs.TcbComponentStatusConfigurationNeeded:
		return StatusConfigurationNeeded, true
	case pcs.TcbComponentStatusConfigurationAndSWHardeningNeeded:
		return StatusConfigurationNeeded | StatusSWHardeningNeeded, true
	case pcs.TcbComponentStatusOutOfDate:
		return StatusOutOfDate, true
	case pcs.TcbComponentStatusOutOfDateConfigurationNeeded:
		return StatusOutOfDate | StatusConfigurationNeeded, true
	case pcs.TcbComponentStatusRevoked:
		return StatusRevoked, true
	}
	return 0, false
}

// TCBReport is the precise outcome of TCB evaluation.
type TCBReport struct {
	// Matched is false when no TCB level of the TCB info (or of the TDX
	// module identity, or of the QE identity) covers the platform: the
	// platform is older than anything Intel still lists.
	Matched bool
	// Status is the combined status of the platform TCB level, the TDX
	// module identity (TDX 1.5) and the quoting enclave.
	Status TCBStatus
	// Platform, Module and QE are the individual statuses.
	Platform, Module, QE TCBStatus
	// ModuleID names the TDX module identity used ("TDX_01"), if any.
	ModuleID string
	// TCBDate is the matched platform level's date.
	TCBDate string
	// Advisories lists Intel advisory IDs of the matched levels.
	Advisories []string
	// Short lists every component below Intel's latest TCB level, e.g.
	// "sgx_tcb_comp[3] (BIOS) svn 2 < 3", "pcesvn 10 < 11",
	// "tdx_tcb_comp[2] (TDX Late Microcode Update) svn 4 < 5",
	// "tdx_module isvsvn 2 < 3", "qe isvsvn 3 < 4".
	Short []string
}

func compName(c pcs.TcbComponent) string {
	switch {
	case c.Type != "" && c.Category != "":
		return " (" + c.Category + ": " + c.Type + ")"
	case c.Type != "":
		return " (" + c.Type + ")"
	case c.Category != "":
		return " (" + c.Category + ")"
	}
	return ""
}

// tcbInputs are the platform's values, from the PCK certificate and the quote.
type tcbInputs struct {
	sgx    []byte // 16 SGX TCB components (PCK certificate)
	pcesvn uint16
	tee    [16]byte // TEE_TCB_SVN (quote body)
	qe     *wire.QEReport
}

func tdxGE(tee [16]byte, comps []pcs.TcbComponent) bool {
	start := 0
	if tee[1] > 0 {
		// TDX 1.5: indices 0 and 1 (module SVN, module version) are
		// evaluated against the TDX module identity instead.
		start = 2
	}
	for i := start; i < 16; i++ {
		if tee[i] < comps[i].Svn {
			return false
		}
	}
	return true
}

func sgxGE(sgx []byte, comps []pcs.TcbComponent) bool {
	for i := 0; i < 16; i++ {
		if sgx[i] < comps[i].Svn {
			return false
		}
	}
	return true
}

// evaluateTCB follows Intel's TDX TCB evaluation (PCS "TDX TCB Info"
// algorithm): the first level (in Intel's descending order) whose SGX
// components, PCESVN and TDX components are all met gives the platform
// status; for TEE_TCB_SVN[1] > 0 the TDX module identity TDX_<version>
// gives the module status; the QE identity level by ISVSVN gives the QE
// status. Statuses are combined as sets (Intel's QVL converges them the
// same way: OutOfDate anywhere makes the whole OutOfDate).
func evaluateTCB(ti *pcs.TcbInfo, qi *pcs.EnclaveIdentity, in tcbInputs) (*TCBReport, error) {
	rep := &TCBReport{}
	latest := ti.TcbLevels[0].Tcb
	for i := 0; i < 16; i++ {
		if c := latest.SgxTcbcomponents[i]; in.sgx[i] < c.Svn {
			rep.Short = append(rep.Short, fmt.Sprintf("sgx_tcb_comp[%d]%s svn %d < %d", i, compName(c), in.sgx[i], c.Svn))
		}
	}
	if in.pcesvn < latest.Pcesvn {
		rep.Short = append(rep.Short, fmt.Sprintf("pcesvn %d < %d", in.pcesvn, latest.Pcesvn))
	}
	start := 0
	if in.tee[1] > 0 {
		start = 2
	}
	for i := start; i < 16; i++ {
		if c := latest.TdxTcbcomponents[i]; in.tee[i] < c.Svn {
			rep.Short = append(rep.Short, fmt.Sprintf("tdx_tcb_comp[%d]%s svn %d < %d", i, compName(c), in.tee[i], c.Svn))
		}
	}

	var matched *pcs.TcbLevel
	for i := range ti.TcbLevels {
		l := &ti.TcbLevels[i]
		if sgxGE(in.sgx, l.Tcb.SgxTcbcomponents) && in.pcesvn >= l.Tcb.Pcesvn && tdxGE(in.tee, l.Tcb.TdxTcbcomponents) {
			matched = l
			break
		}
	}
	if matched == nil {
		return rep, fmt.Errorf("no TCB level of FMSPC %s matches the platform", ti.Fmspc)
	}
	st, ok := statusOf(matched.TcbStatus)
	if !ok {
		return rep, fmt.Errorf("unknown TCB status %q", matched.TcbStatus)
	}
	rep.Platform, rep.TCBDate = st, matched.TcbDate
	rep.Advisories = append(rep.Advisories, matched.AdvisoryIDs...)

	if in.tee[1] > 0 {
		id := "TDX_" + strings.ToUpper(hex.EncodeToString(in.tee[1:2]))
		var mod *pcs.TdxModuleIdentity
		for i := range ti.TdxModuleIdentities {
			if strings.EqualFold(ti.TdxModuleIdentities[i].ID, id) {
				mod = &ti.TdxModuleIdentities[i]
				break
			}
		}
		if mod == nil {
			return rep, fmt.Errorf("no TDX module identity %s in the TCB info", id)
		}
		rep.ModuleID = id
		if l0 := mod.TcbLevels[0].Tcb.Isvsvn; uint32(in.tee[0]) < l0 {
			rep.Short = append(rep.Short, fmt.Sprintf("tdx_module isvsvn %d < %d", in.tee[0], l0))
		}
		var ml *pcs.TcbLevel
		for i := range mod.TcbLevels {
			if uint32(in.tee[0]) >= mod.TcbLevels[i].Tcb.Isvsvn {
				ml = &mod.TcbLevels[i]
				break
			}
		}
		if ml == nil {
			return rep, fmt.Errorf("TDX module %s ISVSVN %d is below every TCB level", id, in.tee[0])
		}
		if rep.Module, ok = statusOf(ml.TcbStatus); !ok {
			return rep, fmt.Errorf("unknown TDX module status %q", ml.TcbStatus)
		}
		rep.Advisories = append(rep.Advisories, ml.AdvisoryIDs...)
	}

	// Quoting enclave identity (PCS "Enclave Identity" algorithm).
	q := in.qe
	mask := binary.LittleEndian.Uint32(qi.MiscselectMask.Bytes)
	if q.MiscSelect&mask != binary.LittleEndian.Uint32(qi.Miscselect.Bytes) {
		return rep, fmt.Errorf("QE MISCSELECT %#x does not match the TD_QE identity", q.MiscSelect)
	}
	for i := 0; i < 16; i++ {
		if q.Attributes[i]&qi.AttributesMask.Bytes[i] != qi.Attributes.Bytes[i] {
			return rep, fmt.Errorf("QE ATTRIBUTES %x do not match the TD_QE identity", q.Attributes)
		}
	}
	if !bytes.Equal(q.MRSigner[:], qi.Mrsigner.Bytes) {
		return rep, fmt.Errorf("QE MRSIGNER %x is not the TD_QE signer", q.MRSigner)
	}
	if uint16(q.ISVProdID) != qi.IsvProdID {
		return rep, fmt.Errorf("QE ISVPRODID %d, want %d", q.ISVProdID, qi.IsvProdID)
	}
	if l0 := qi.TcbLevels[0].Tcb.Isvsvn; uint32(q.ISVSVN) < l0 {
		rep.Short = append(rep.Short, fmt.Sprintf("qe isvsvn %d < %d", q.ISVSVN, l0))
	}
	var ql *pcs.TcbLevel
	for i := range qi.TcbLevels {
		if qi.TcbLevels[i].Tcb.Isvsvn <= uint32(q.ISVSVN) {
			ql = &qi.TcbLevels[i]
			break
		}
	}
	if ql == nil {
		return rep, fmt.Errorf("QE ISVSVN %d is below every TD_QE TCB level", q.ISVSVN)
	}
	if rep.QE, ok = statusOf(ql.TcbStatus); !ok {
		return rep, fmt.Errorf("unknown QE status %q", ql.TcbStatus)
	}
	rep.Advisories = append(rep.Advisories, ql.AdvisoryIDs...)
	rep.Status = rep.Platform | rep.Module | rep.QE
	rep.Matched = true
	return rep, nil
}
