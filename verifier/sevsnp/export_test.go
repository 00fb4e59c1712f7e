package sevsnp

import (
	"time"

	"github.com/google/go-sev-guest/abi"

	"github.com/attested-tls/go-expat/verifier"
)

// ChainAndSignature runs the report-format, signature and chain steps of
// Verify on a raw report and the DER certificate of the key it
// names, as the Verifier does, and nothing else (no certificate table, no
// collateral, no TCB or chip ID match, no policy). For the differential
// tests against go-sev-guest's verify package.
func (v *Verifier) ChainAndSignature(report, ekDER []byte, now time.Time) error {
	r, info, err := parseReport(report)
	if err != nil {
		return err
	}
	if info.SigningKey != abi.VcekReportSigner && info.SigningKey != abi.VlekReportSigner {
		return verifier.Reject(verifier.CheckFormat, nil, "sevsnp: report signed by %v, want VCEK or VLEK", info.SigningKey)
	}
	_, err = v.chainAndSignature(report, r, info.SigningKey, ekDER, now)
	return err
}

// DisableCaches turns off v's caches of verified chains and checked CRLs
// (before first use): the uncached baseline of the benchmarks, and the
// other side of the cache's differential tests.
func (v *Verifier) DisableCaches() {
	v.chains.MaxEntries, v.crls.MaxEntries = -1, -1
}

// CacheLens returns how many verified chains and checked CRLs v keeps.
func (v *Verifier) CacheLens() (chains, crls int) {
	return v.chains.Len(), v.crls.Len()
}
