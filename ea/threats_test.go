package ea

import (
	"testing"
)

// TestThreatsOverTLS runs every case of the table with a misbehaving peer
// on a real TLS 1.3 connection (SHA-256 suite: SHA-384 cases run in
// TestSHA384OpenSSL and in the vectors).
func TestThreatsOverTLS(t *testing.T) {
	s, c := testTLSConfigs()
	for _, tc := range evCases() {
		if tc.suite == 0x1302 {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			cc, sc := pipePair(t, s, c)
			ccs, scs := cc.ConnectionState(), sc.ConnectionState()
			vExp, pExp := &ccs, &scs
			if tc.validatorIsServer {
				vExp, pExp = &scs, &ccs
			}
			p := tc.prepare(vExp, pExp, ccs.CipherSuite)
			if err := tc.check(p); err != nil {
				t.Fatal(err)
			}
		})
	}
}
