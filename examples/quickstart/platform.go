package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-tpm/tpm2"

	"github.com/attested-tls/go-expat/attester/tpm"
	"github.com/attested-tls/go-expat/attester/tpm/tpmsim"
)

// A measurement is what a boot component records about the next one before
// running it: SHA-256 of its code, extended into a PCR. Real firmware and
// boot loaders do this into PCRs 0-9; the demo uses PCR 16 (the debug PCR)
// and PCR 23 (the application PCR), which software may extend freely.
type measurement struct {
	PCR  int
	What string // shown in the output
	Code string // stands in for the measured binary
}

// bootChain is what the demo "boots" on the simulated TPM, and what the
// relying party expects (its PCR policy is computed from this list).
var bootChain = []measurement{
	{PCR: 16, What: "demo boot loader", Code: "go-expat quickstart boot loader v1"},
	{PCR: 23, What: "demo server application", Code: "go-expat quickstart server v1"},
}

// rogueComponent is what -tamper loads after boot: a component nobody
// approved, measured like any other.
var rogueComponent = measurement{PCR: 23, What: "unapproved kernel module", Code: "rootkit.ko"}

// quotedPCRs are the PCRs the attester quotes and the verifier appraises.
var quotedPCRs = []int{16, 23}

func (m measurement) digest() []byte {
	d := sha256.Sum256([]byte(m.Code))
	return d[:]
}

// expectedPCRs replays bootChain in software: a PCR starts at zero and each
// extension sets it to SHA-256(old value || measurement).
func expectedPCRs() map[int][]byte {
	pcrs := map[int][]byte{}
	for _, p := range quotedPCRs {
		pcrs[p] = make([]byte, sha256.Size)
	}
	for _, m := range bootChain {
		h := sha256.New()
		h.Write(pcrs[m.PCR])
		h.Write(m.digest())
		pcrs[m.PCR] = h.Sum(nil)
	}
	return pcrs
}

// pcrPolicy is the relying party's appraisal policy: each quoted PCR must
// hold the value the expected boot chain produces.
func pcrPolicy() map[int][][]byte {
	pol := map[int][][]byte{}
	for i, v := range expectedPCRs() {
		pol[i] = [][]byte{v}
	}
	return pol
}

// platform is one simulated machine: a TPM with measurements in its PCRs
// and an attester (with its attestation key, AK) over it.
type platform struct {
	sim          *tpmsim.Simulator
	conn         *tpm.Conn
	att          *tpm.Attester
	manufacturer string // TPM_PT_MANUFACTURER, read locally
	firmware     uint64 // TPM_PT_FIRMWARE_VERSION_1 and _2
}

// errNoSimulator marks a build without cgo, where the simulator is absent.
var errNoSimulator = errors.New("go-expat quickstart: the TPM simulator needs cgo: install gcc and the OpenSSL headers (apt-get install gcc libssl-dev) and build with CGO_ENABLED=1")

// bootPlatform starts the in-process TPM simulator with openTPM (tpmsim.Open
// but in tests), "boots" bootChain into its PCRs (and the rogue component
// when tampered), and creates the attester. Only one simulator exists per
// process: close the platform before booting another.
func bootPlatform(ctx context.Context, openTPM func() (*tpmsim.Simulator, error), tampered bool) (*platform, error) {
	sim, err := openTPM()
	if errors.Is(err, tpmsim.ErrNoCgo) {
		return nil, errNoSimulator
	}
	if err != nil {
		return nil, err
	}
	p := &platform{sim: sim}
	raw := rawTPM{ctx: ctx, sim: sim}
	measured := bootChain
	if tampered {
		measured = append(measured[:len(measured):len(measured)], rogueComponent)
	}
	for _, m := range measured {
		if err := raw.extend(m.PCR, m.digest()); err != nil {
			sim.Close()
			return nil, err
		}
	}
	if p.manufacturer, p.firmware, err = raw.identify(); err != nil {
		sim.Close()
		return nil, err
	}

	p.conn, err = tpm.Open(sim, nil)
	if err != nil {
		sim.Close()
		return nil, err
	}
	p.att, err = tpm.NewAttester(ctx, p.conn, &tpm.Config{PCRs: quotedPCRs})
	if err != nil {
		p.conn.Close()
		return nil, err
	}
	return p, nil
}

// close flushes the TPM objects and shuts the simulator down.
func (p *platform) close(ctx context.Context) {
	p.att.Close(ctx)
	p.conn.Close() // closes the simulator too
}

// rawTPM sends the few commands the demo needs outside package tpm (PCR
// extension stands in for firmware; GetCapability for the platform line).
// It is used only before the attester starts.
type rawTPM struct {
	ctx context.Context
	sim *tpmsim.Simulator
}

func (r rawTPM) Send(cmd []byte) ([]byte, error) { return r.sim.Send(r.ctx, cmd) }

func (r rawTPM) extend(pcr int, digest []byte) error {
	_, err := tpm2.PCRExtend{
		PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(pcr), Auth: tpm2.PasswordAuth(nil)},
		Digests: tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{
			{HashAlg: tpm2.TPMAlgSHA256, Digest: digest},
		}},
	}.Execute(r)
	if err != nil {
		return fmt.Errorf("extend PCR %d: %w", pcr, err)
	}
	return nil
}

// identify reads the TPM's manufacturer and firmware version.
func (r rawTPM) identify() (manufacturer string, firmware uint64, err error) {
	rsp, err := tpm2.GetCapability{
		Capability:    tpm2.TPMCapTPMProperties,
		Property:      uint32(tpm2.TPMPTManufacturer),
		PropertyCount: 8,
	}.Execute(r)
	if err != nil {
		return "", 0, fmt.Errorf("read TPM properties: %w", err)
	}
	props, err := rsp.CapabilityData.Data.TPMProperties()
	if err != nil {
		return "", 0, fmt.Errorf("read TPM properties: %w", err)
	}
	for _, p := range props.TPMProperty {
		v := p.Value
		switch p.Property {
		case tpm2.TPMPTManufacturer:
			manufacturer = strings.TrimRight(string([]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), "\x00 ")
		case tpm2.TPMPTFirmwareVersion1:
			firmware |= uint64(v) << 32
		case tpm2.TPMPTFirmwareVersion2:
			firmware |= uint64(v)
		}
	}
	return manufacturer, firmware, nil
}
