package sevsnp

import (
	"errors"
	"fmt"

	labi "github.com/google/go-sev-guest/client/linuxabi"

	"github.com/attested-tls/go-expat/attester/sevsnp/wire"
)

// Device is the SEV guest device: it performs sev-guest ioctls whose
// argument is a *linuxabi.SnpUserGuestRequest. go-sev-guest's device types
// (its Linux device and its test fake) satisfy it, as does the device
// OpenDevice returns.
type Device interface {
	Ioctl(command uintptr, req any) (uintptr, error)
}

// maxCertBuffer bounds the certificate buffer a host may ask for.
const maxCertBuffer = 64 * 1024

// NewDeviceAttester returns an Attester that requests reports from d with
// SNP_GET_EXT_REPORT (SNP_GET_REPORT when no certificate table is wanted or
// the host offers none). The caller keeps ownership of d.
func NewDeviceAttester(d Device, opts *Options) (*Attester, error) {
	if d == nil {
		return nil, errors.New("sevsnp: nil device")
	}
	return newAttester(&deviceBackend{d: d}, opts)
}

type deviceBackend struct{ d Device }

func (*deviceBackend) name() string { return "sev-guest" }

func (b *deviceBackend) ioctl(cmd uintptr, req, resp labi.BinaryConvertible) (uint64, error) {
	r := &labi.SnpUserGuestRequest{ReqData: req, RespData: resp}
	ret, err := b.d.Ioctl(cmd, r)
	if err != nil {
		return r.FwErr, err
	}
	if ret != uintptr(labi.EsOk) {
		return r.FwErr, &labi.SevEsErr{Result: labi.EsResult(ret)}
	}
	return r.FwErr, nil
}

func (b *deviceBackend) get(rd [64]byte, vmpl uint32, wantCerts bool) ([]byte, []byte, uint64, error) {
	if wantCerts {
		// Ask for the table's size: the host answers "invalid length" with
		// the size it needs, or success when it has no table.
		q := &labi.SnpExtendedReportReq{Data: labi.SnpReportReqABI{ReportData: rd, Vmpl: vmpl}}
		var resp labi.SnpReportRespABI
		fwErr, err := b.ioctl(labi.IocSnpGetExtendedReport, q, &resp)
		switch {
		case err != nil && invalidLength(fwErr) && q.CertsLength == 0:
			// "Too small" for an empty table: the host has none.
		case err != nil && invalidLength(fwErr):
			if q.CertsLength > maxCertBuffer {
				return nil, nil, 0, fmt.Errorf("host asks for a %d-byte certificate buffer (limit %d)", q.CertsLength, maxCertBuffer)
			}
			certs := make([]byte, q.CertsLength)
			req := &labi.SnpExtendedReportReq{
				Data:        labi.SnpReportReqABI{ReportData: rd, Vmpl: vmpl},
				Certs:       certs,
				CertsLength: uint32(len(certs)),
			}
			var resp labi.SnpReportRespABI
			fwErr, err := b.ioctl(labi.IocSnpGetExtendedReport, req, &resp)
			if err != nil {
				if invalidLength(fwErr) { // the table grew meanwhile
					return nil, nil, vmmBusy, fmt.Errorf("certificate table size changed: %w", err)
				}
				return nil, nil, fwErr, err
			}
			return reportBytes(&resp), certs, 0, nil
		case err != nil && throttled(err, fwErr):
			return nil, nil, fwErr, err
		case err == nil && q.CertsLength == 0:
			// No table: fall through to a plain report for our data (the
			// query itself carried it, but keep one code path).
		case err == nil:
			return nil, nil, 0, errors.New("host returned a report to a size query")
		default:
			// Extended requests unsupported: use a plain report.
		}
	}
	req := &labi.SnpReportReqABI{ReportData: rd, Vmpl: vmpl}
	var resp labi.SnpReportRespABI
	fwErr, err := b.ioctl(labi.IocSnpGetReport, req, &resp)
	if err != nil {
		return nil, nil, fwErr, err
	}
	return reportBytes(&resp), nil, 0, nil
}

func reportBytes(resp *labi.SnpReportRespABI) []byte {
	out := make([]byte, wire.ReportSize)
	copy(out, resp.Data[:wire.ReportSize])
	return out
}
