package ea

import (
	"crypto/x509"
	"errors"
	"fmt"
	"runtime"
	"testing"
)

// TestValidateAlongside runs every case of the table through
// ValidateAlongside, with one CPU and with two, and with an f that accepts
// and one that refuses: the outcome is the case's whatever f says (a bad
// signature or chain wins over f), f's own error comes back unchanged when
// the authenticator is good, and f never sees an authenticator that failed
// before its signature check (or, with one CPU, one that failed at all).
func TestValidateAlongside(t *testing.T) {
	s, c := testTLSConfigs()
	errF := errors.New("refused by f")
	for _, procs := range []int{1, 2} {
		for _, refuse := range []bool{false, true} {
			for _, tc := range evCases() {
				if tc.suite == 0x1302 {
					continue
				}
				t.Run(fmt.Sprintf("procs=%d/refuse=%v/%s", procs, refuse, tc.name), func(t *testing.T) {
					cc, sc := pipePair(t, s, c)
					defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
					ccs, scs := cc.ConnectionState(), sc.ConnectionState()
					vExp, pExp := &ccs, &scs
					if tc.validatorIsServer {
						vExp, pExp = &scs, &ccs
					}
					p := tc.prepare(vExp, pExp, ccs.CipherSuite)
					calls := 0
					var seen *Authenticated
					got, err := p.validator.ValidateAlongside(p.auth, p.opts, func(a *Authenticated) error {
						calls++
						seen = a
						if a.VerifiedChains != nil {
							t.Error("f saw VerifiedChains set")
						}
						if refuse {
							return errF
						}
						return nil
					})
					switch {
					case tc.want == "" && refuse:
						if got != nil || err != errF {
							t.Fatalf("got %v, %v; want f's error unchanged", got, err)
						}
					default:
						if err := tc.checkResult(got, err); err != nil {
							t.Fatal(err)
						}
					}
					lateKind := tc.want == KindSignature || (tc.want == KindCertificate && tc.trustOther)
					switch {
					case tc.want == "" && (calls != 1 || seen == nil || string(seen.Context) != string(p.auth[5:5+int(p.auth[4])])):
						t.Fatalf("f called %d times with %v for a good authenticator, want once with it", calls, seen)
					case tc.want != "" && calls > 0 && (!lateKind || procs == 1):
						t.Fatalf("f called for an authenticator that failed with %s (procs %d)", tc.want, procs)
					}
				})
			}
		}
	}
}

// TestValidateParsed: a certificate the caller parsed already (the
// handshake's) is reused, not parsed again; an entry that differs is parsed.
func TestValidateParsed(t *testing.T) {
	tc := evCase{name: "parsed", certScheme: 0x0403}
	s, c := testTLSConfigs()
	cc, sc := pipePair(t, s, c)
	ccs, scs := cc.ConnectionState(), sc.ConnectionState()
	p := tc.prepare(&ccs, &scs, ccs.CipherSuite)
	leaf, err := x509.ParseCertificate(schemeCert(0x0403, "peer.test").Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	other, err := x509.ParseCertificate(schemeCert(0x0807, "peer.test").Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	p.opts.Parsed = []*x509.Certificate{other, leaf}
	got, err := p.validator.Validate(p.auth, p.opts)
	if err != nil {
		t.Fatal(err)
	}
	if got.Chain[0] != leaf {
		t.Fatal("the end-entity certificate was parsed again although the caller had it")
	}
}
