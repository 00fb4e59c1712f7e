package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/google/go-configfs-tsm/configfs/linuxtsm"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/attester/cca"
	"github.com/attested-tls/go-expat/attester/sevsnp"
	"github.com/attested-tls/go-expat/attester/tdx"
	"github.com/attested-tls/go-expat/attester/tpm"
	"github.com/attested-tls/go-expat/attester/tpm/tpmsim"
	"github.com/attested-tls/go-expat/verifier"
	"github.com/attested-tls/go-expat/verifier/policy"
)

// attesterSpecs lists the --attester values.
const attesterSpecs = "tpm-sim | swtpm:HOST:PORT | tpm:/dev/tpmrm0 | sevsnp | tdx | cca | testkit"

// localAttester is the attester a command was told to use, with what its
// reports say about it.
type localAttester struct {
	attester.Attester
	// Desc says what it is, and whether it proves anything.
	Desc  string
	close func()
}

func (a *localAttester) Close() {
	if a != nil && a.close != nil {
		a.close()
	}
}

// attesterFlags are the flags that choose the local attester.
type attesterFlags struct {
	spec            string
	insecureTestKit bool
	testKitKey      string
	testKitMeasure  string
	writeAK         string
	pcrs            string
}

// open returns the attester f names, nil when none is named. A value from
// the policy's "attester" member is used when the flag is empty.
func (f *attesterFlags) open(ctx context.Context, fromPolicy string) (*localAttester, error) {
	spec := f.spec
	if spec == "" {
		spec = fromPolicy
	}
	if spec == "" {
		return nil, nil
	}
	kind, arg, _ := strings.Cut(spec, ":")
	switch kind {
	case "tpm-sim":
		sim, err := tpmsim.Open()
		if errors.Is(err, tpmsim.ErrNoCgo) {
			return nil, errors.New("expat: --attester tpm-sim needs a binary built with cgo (gcc and libssl-dev)")
		}
		if err != nil {
			return nil, fmt.Errorf("expat: TPM simulator: %w", err)
		}
		return f.tpm(ctx, sim, "TPM 2.0: the Microsoft reference simulator inside this process. DEMO ONLY: a simulator proves nothing about this machine")
	case "swtpm":
		if arg == "" {
			return nil, errors.New("expat: --attester swtpm:HOST:PORT needs swtpm's server address")
		}
		t, err := tpm.DialSwtpm(ctx, "tcp", arg)
		if err != nil {
			return nil, fmt.Errorf("expat: swtpm: %w", err)
		}
		return f.tpm(ctx, t, "TPM 2.0: swtpm at "+arg+" (a software TPM: it proves nothing about this machine)")
	case "tpm":
		if arg == "" {
			arg = "/dev/tpmrm0"
		}
		t, err := tpm.OpenDevice(arg)
		if err != nil {
			return nil, fmt.Errorf("expat: TPM: %w", err)
		}
		return f.tpm(ctx, t, "TPM 2.0: device "+arg)
	case "sevsnp", "tdx", "cca":
		if arg != "" {
			return nil, fmt.Errorf("expat: --attester %s takes no argument", kind)
		}
		client, err := linuxtsm.MakeClient()
		if err != nil {
			return nil, fmt.Errorf("expat: configfs-tsm (is this a %s guest?): %w", kind, err)
		}
		var a attester.Attester
		switch kind {
		case "sevsnp":
			a, err = sevsnp.NewTSMAttester(client, nil)
		case "tdx":
			a, err = tdx.NewTSMAttester(client, nil)
		default:
			a, err = cca.NewTSMAttester(client, nil)
		}
		if err != nil {
			return nil, fmt.Errorf("expat: %s attester: %w", kind, err)
		}
		return &localAttester{Attester: a, Desc: kind + " guest, through configfs-tsm"}, nil
	case "testkit":
		return openTestKit(f)
	}
	return nil, fmt.Errorf("expat: unknown attester %q (want %s)", spec, attesterSpecs)
}

func (f *attesterFlags) tpm(ctx context.Context, t tpm.Transport, desc string) (*localAttester, error) {
	conn, err := tpm.Open(t, nil)
	if err != nil {
		return nil, fmt.Errorf("expat: TPM: %w", err)
	}
	cfg := &tpm.Config{}
	if f.pcrs != "" {
		for _, s := range strings.Split(f.pcrs, ",") {
			var n int
			if _, err := fmt.Sscanf(s, "%d", &n); err != nil {
				conn.Close()
				return nil, fmt.Errorf("expat: --pcrs: %q is not a PCR index", s)
			}
			cfg.PCRs = append(cfg.PCRs, n)
		}
	}
	a, err := tpm.NewAttester(ctx, conn, cfg)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("expat: TPM attester: %w", err)
	}
	if f.writeAK != "" {
		der, err := x509.MarshalPKIXPublicKey(a.AKPublicKey())
		if err == nil {
			err = os.WriteFile(f.writeAK, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
		}
		if err != nil {
			a.Close(ctx)
			conn.Close()
			return nil, fmt.Errorf("expat: --write-ak: %w", err)
		}
	}
	return &localAttester{Attester: a, Desc: desc, close: func() {
		a.Close(context.Background())
		conn.Close()
	}}, nil
}

// buildVerifier builds the policy's verifier; test-kit policies only with
// --insecure-test-kit in a binary that has the test kit.
func buildVerifier(p *policy.Policy, dir string, insecureTestKit bool) (verifier.Verifier, error) {
	opts := &policy.Options{Dir: dir}
	if insecureTestKit {
		opts.TestKit = testKitVerifier
	}
	return policy.Build(p, opts)
}
