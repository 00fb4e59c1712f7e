package tpm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/attested-tls/go-expat/attester"
	"github.com/attested-tls/go-expat/attester/tpm/bundle"
)

// DefaultPCRs is the PCR selection used when Config.PCRs is nil: PCRs 0 to
// 7, the firmware and boot-loader measurements of a PC Client platform.
var DefaultPCRs = []int{0, 1, 2, 3, 4, 5, 6, 7}

// Well-known NV indices of EK certificates (TCG EK Credential Profile 2.x,
// Section 2.2.1.4): RSA 2048 (template L-1) and ECC NIST P-256 (L-2).
const (
	NVIndexEKCertRSA2048 = 0x01c00002
	NVIndexEKCertECCP256 = 0x01c0000a
)

// Config configures an Attester. The zero value derives the AK in the
// endorsement hierarchy, quotes SHA-256 PCRs 0-7 and carries no event log
// and no certificates.
type Config struct {
	// AKHandle is the persistent handle (0x81xxxxxx) of an existing
	// attestation key: a restricted ECC P-256 ECDSA-SHA256 signing key. Zero
	// derives the AK as a primary key of the endorsement hierarchy from a
	// fixed go-expat template, which yields the same key on every run of
	// the same TPM (until its endorsement seed changes), so enrollment
	// survives restarts without any persistent handle.
	AKHandle uint32
	// AKChain is the AK certificate (DER) issued at enrollment, followed by
	// intermediates, carried in the Evidence for verifiers that trust the
	// enrollment CA. Nil carries none (verifiers then need the AK pinned).
	AKChain [][]byte
	// PCRs is the quoted PCR selection (indices 0-23). Nil means DefaultPCRs.
	PCRs []int
	// PCRBank is the PCR bank quoted: crypto.SHA256 (the zero value),
	// crypto.SHA1, crypto.SHA384 or crypto.SHA512. The bank must be
	// allocated on the TPM.
	PCRBank crypto.Hash
	// EventLogPath is the TCG event log to carry, for example
	// /sys/kernel/security/tpm0/binary_bios_measurements. Empty carries
	// none. The log is read at every Attest; note that the whole Evidence
	// must fit in 65535 bytes, which many firmware logs exceed.
	EventLogPath string
	// IncludeEKCerts carries the EK certificates found at the well-known NV
	// indices. They identify the platform: include them only where that is
	// acceptable. They are informational; the AK's link to the EK is made
	// at enrollment (see ActivateCredential).
	IncludeEKCerts bool
	// EndorsementAuth and OwnerAuth are the hierarchy authorization values
	// (nil when unset, the usual case).
	EndorsementAuth, OwnerAuth []byte
}

// MaxEventLogSize bounds the event log read from EventLogPath.
const MaxEventLogSize = bundle.MaxSize

// Attester produces TPM 2.0 quote bundles bound to a challenge, and
// creates TPM-resident keys whose attestation it includes. It implements
// attester.Attester and is safe for concurrent use; all TPM access goes
// through its Conn, one command sequence at a time.
type Attester struct {
	conn  *Conn
	cfg   Config
	ak    tpm2.NamedHandle
	akPub []byte // TPMT_PUBLIC
	akKey *ecdsa.PublicKey
	// akTransient is set when the AK was derived (and must be flushed).
	akTransient bool
	sel         tpm2.TPMLPCRSelection
	pcrs        []int
	bankAlg     tpm2.TPMAlgID
	ekCerts     [][]byte

	mu     sync.Mutex // guards keys and closed
	keys   []*Key
	closed bool
}

var _ attester.Attester = (*Attester)(nil)

// akTemplate is the go-expat AK: ECC NIST P-256, ECDSA with SHA-256,
// restricted signing, fixedTPM|fixedParent|sensitiveDataOrigin. The unique
// field names go-expat so that this AK differs from other software's
// primaries derived from otherwise equal templates.
func akTemplate() tpm2.TPMTPublic {
	unique := make([]byte, 32)
	copy(unique, "go-expat attestation key v1")
	return eccSigningTemplate(tpm2.TPMAObject{
		FixedTPM:            true,
		FixedParent:         true,
		SensitiveDataOrigin: true,
		UserWithAuth:        true,
		Restricted:          true,
		SignEncrypt:         true,
	}, unique)
}

// eccSigningTemplate is the public area of an ECDSA P-256 / SHA-256
// signing key with attributes attrs; unique (32 bytes) goes into the X
// coordinate, so that different uniques give different primaries.
func eccSigningTemplate(attrs tpm2.TPMAObject, unique []byte) tpm2.TPMTPublic {
	return tpm2.TPMTPublic{
		Type:             tpm2.TPMAlgECC,
		NameAlg:          tpm2.TPMAlgSHA256,
		ObjectAttributes: attrs,
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
			Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
			Scheme: tpm2.TPMTECCScheme{
				Scheme: tpm2.TPMAlgECDSA,
				Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA,
					&tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256}),
			},
			CurveID: tpm2.TPMECCNistP256,
			KDF:     tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
			X: tpm2.TPM2BECCParameter{Buffer: unique},
			Y: tpm2.TPM2BECCParameter{Buffer: make([]byte, 32)},
		}),
	}
}

func bankAlg(h crypto.Hash) (tpm2.TPMAlgID, error) {
	switch h {
	case 0, crypto.SHA256:
		return tpm2.TPMAlgSHA256, nil
	case crypto.SHA1:
		return tpm2.TPMAlgSHA1, nil
	case crypto.SHA384:
		return tpm2.TPMAlgSHA384, nil
	case crypto.SHA512:
		return tpm2.TPMAlgSHA512, nil
	}
	return 0, fmt.Errorf("tpm: unsupported PCR bank %v", h)
}

// pcrSelection builds a one-bank selection (3-byte bitmap, PCR_SELECT_MIN).
func pcrSelection(alg tpm2.TPMAlgID, pcrs []int) tpm2.TPMLPCRSelection {
	bitmap := make([]byte, 3)
	for _, p := range pcrs {
		bitmap[p/8] |= 1 << (p % 8)
	}
	return tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: alg, PCRSelect: bitmap}}}
}

// NewAttester loads or derives the AK and returns an Attester over conn.
// Close the Attester before the Conn.
func NewAttester(ctx context.Context, conn *Conn, cfg *Config) (*Attester, error) {
	if conn == nil {
		return nil, errors.New("tpm: nil Conn")
	}
	var c Config
	if cfg != nil {
		c = *cfg
	}
	alg, err := bankAlg(c.PCRBank)
	if err != nil {
		return nil, err
	}
	pcrs := c.PCRs
	if pcrs == nil {
		pcrs = DefaultPCRs
	}
	pcrs = slices.Clone(pcrs)
	slices.Sort(pcrs)
	pcrs = slices.Compact(pcrs)
	if len(pcrs) == 0 || pcrs[0] < 0 || pcrs[len(pcrs)-1] > bundle.MaxPCR {
		return nil, fmt.Errorf("tpm: PCR selection %v must name PCRs 0-%d", c.PCRs, bundle.MaxPCR)
	}
	if c.AKHandle != 0 && c.AKHandle>>24 != 0x81 {
		return nil, fmt.Errorf("tpm: AK handle 0x%08x is not a persistent handle", c.AKHandle)
	}
	c.AKChain = cloneList(c.AKChain)
	a := &Attester{conn: conn, cfg: c, pcrs: pcrs, bankAlg: alg, sel: pcrSelection(alg, pcrs)}

	err = conn.do(ctx, func(s *session) error {
		var pub tpm2.TPM2BPublic
		if c.AKHandle != 0 {
			rsp, err := run(s, "read AK public area", func(t transport.TPM) (*tpm2.ReadPublicResponse, error) {
				return tpm2.ReadPublic{ObjectHandle: tpm2.TPMHandle(c.AKHandle)}.Execute(t)
			})
			if err != nil {
				return err
			}
			a.ak = tpm2.NamedHandle{Handle: tpm2.TPMHandle(c.AKHandle), Name: rsp.Name}
			pub = rsp.OutPublic
		} else {
			rsp, err := run(s, "derive AK", func(t transport.TPM) (*tpm2.CreatePrimaryResponse, error) {
				return tpm2.CreatePrimary{
					PrimaryHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHEndorsement, Auth: tpm2.PasswordAuth(c.EndorsementAuth)},
					InPublic:      tpm2.New2B(akTemplate()),
				}.Execute(t)
			})
			if err != nil {
				return err
			}
			a.ak = tpm2.NamedHandle{Handle: rsp.ObjectHandle, Name: rsp.Name}
			a.akTransient = true
			pub = rsp.OutPublic
		}
		p, err := pub.Contents()
		if err != nil {
			return &Error{Op: "AK public area", Err: err}
		}
		if err := checkAKPublic(p); err != nil {
			if a.akTransient {
				s.flush(a.ak.Handle)
			}
			return err
		}
		a.akPub = tpm2.Marshal(p)
		k, err := tpm2.Pub(*p)
		if err != nil {
			return &Error{Op: "AK public key", Err: err}
		}
		a.akKey = k.(*ecdsa.PublicKey)
		if c.IncludeEKCerts {
			for _, idx := range []uint32{NVIndexEKCertECCP256, NVIndexEKCertRSA2048} {
				cert, err := readNV(s, idx)
				if errors.Is(err, ErrNoEvidence) {
					continue
				}
				if err != nil {
					if a.akTransient {
						s.flush(a.ak.Handle)
					}
					return err
				}
				a.ekCerts = append(a.ekCerts, cert)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// checkAKPublic accepts only the AK shape this package quotes with.
func checkAKPublic(p *tpm2.TPMTPublic) error {
	attrs := p.ObjectAttributes
	if p.Type != tpm2.TPMAlgECC || !attrs.Restricted || !attrs.SignEncrypt || attrs.Decrypt ||
		!attrs.FixedTPM || !attrs.FixedParent || !attrs.SensitiveDataOrigin {
		return errors.New("tpm: AK is not a restricted, TPM-generated, non-duplicable ECC signing key")
	}
	ecc, err := p.Parameters.ECCDetail()
	if err != nil || ecc.CurveID != tpm2.TPMECCNistP256 || ecc.Scheme.Scheme != tpm2.TPMAlgECDSA {
		return errors.New("tpm: AK is not an ECDSA NIST P-256 key")
	}
	sch, err := ecc.Scheme.Details.ECDSA()
	if err != nil || sch.HashAlg != tpm2.TPMAlgSHA256 {
		return errors.New("tpm: AK scheme is not ECDSA with SHA-256")
	}
	return nil
}

func cloneList(l [][]byte) [][]byte {
	if l == nil {
		return nil
	}
	out := make([][]byte, len(l))
	for i, b := range l {
		out[i] = bytes.Clone(b)
	}
	return out
}

// AKPublic returns the AK's TPMT_PUBLIC (TPM marshalling), the input to
// enrollment (pinning, or verifier/tpm's credential activation).
func (a *Attester) AKPublic() []byte { return bytes.Clone(a.akPub) }

// AKPublicKey returns the AK's public key (an *ecdsa.PublicKey).
func (a *Attester) AKPublicKey() crypto.PublicKey { return a.akKey }

// AKName returns the AK's TPM Name (nameAlg || digest of TPMT_PUBLIC).
func (a *Attester) AKName() []byte { return bytes.Clone(a.ak.Name.Buffer) }

// EKCertificates returns the EK certificates read at NewAttester
// (Config.IncludeEKCerts), parsed.
func (a *Attester) EKCertificates() ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for _, der := range a.ekCerts {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("tpm: EK certificate: %w", err)
		}
		out = append(out, c)
	}
	return out, nil
}

// Attest quotes the configured PCRs with qualifyingData =
// ch.QualifyingData32() and returns the CMW-wrapped bundle. When one of the
// Attester's keys (NewKey) has ch.AIKPubHash as the hash of its SPKI, the
// bundle also certifies that key with the same qualifyingData.
func (a *Attester) Attest(ctx context.Context, ch attester.Challenge) ([]byte, error) {
	return a.attest(ctx, ch, nil, true)
}

// AttestKey is Attest with the certified key chosen by the caller: k is
// certified whatever ch.AIKPubHash says (the verifier checks that the key
// is the Exported Authenticator's).
func (a *Attester) AttestKey(ctx context.Context, ch attester.Challenge, k *Key) ([]byte, error) {
	if k == nil {
		return nil, errors.New("tpm: nil key")
	}
	return a.attest(ctx, ch, k, false)
}

func (a *Attester) attest(ctx context.Context, ch attester.Challenge, k *Key, match bool) ([]byte, error) {
	qd, err := ch.QualifyingData32()
	if err != nil {
		return nil, fmt.Errorf("tpm: %w", err)
	}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil, ErrClosed
	}
	if match {
		for _, cand := range a.keys {
			h := ch.Hash.New()
			h.Write(cand.spki)
			if bytes.Equal(h.Sum(nil), ch.AIKPubHash) {
				k = cand
				break
			}
		}
	}
	a.mu.Unlock()

	b := &bundle.Bundle{AKPublic: a.akPub, PCRAlg: uint16(a.bankAlg), AKChain: a.cfg.AKChain, EKCerts: a.ekCerts}
	if a.cfg.EventLogPath != "" {
		log, err := readBounded(a.cfg.EventLogPath, MaxEventLogSize)
		if err != nil {
			return nil, err
		}
		b.EventLog = log
	}
	err = a.conn.do(ctx, func(s *session) error {
		if err := a.quote(s, qd[:], b); err != nil {
			return err
		}
		if k != nil {
			return a.certify(s, k, qd[:], b)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return bundle.Wrap(b)
}

// quote reads the PCRs, quotes them and checks that the quote covers the
// values read; a PCR extended in between makes it start over (bounded).
func (a *Attester) quote(s *session, qd []byte, b *bundle.Bundle) error {
	for try := 0; try < 3; try++ {
		vals, err := readPCRs(s, a.bankAlg, a.pcrs)
		if err != nil {
			return err
		}
		rsp, err := run(s, "quote", func(t transport.TPM) (*tpm2.QuoteResponse, error) {
			return tpm2.Quote{
				SignHandle:     tpm2.AuthHandle{Handle: a.ak.Handle, Name: a.ak.Name, Auth: tpm2.PasswordAuth(nil)},
				QualifyingData: tpm2.TPM2BData{Buffer: qd},
				InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
				PCRSelect:      a.sel,
			}.Execute(t)
		})
		if err != nil {
			return err
		}
		att, err := rsp.Quoted.Contents()
		if err != nil {
			return &Error{Op: "quote", Err: err}
		}
		info, err := att.Attested.Quote()
		if err != nil {
			return &Error{Op: "quote", Err: err}
		}
		d := crypto.SHA256.New() // the AK's scheme hash
		for _, p := range a.pcrs {
			d.Write(vals[uint32(p)])
		}
		if !bytes.Equal(d.Sum(nil), info.PCRDigest.Buffer) {
			continue // a PCR changed between read and quote
		}
		b.Quote = bytes.Clone(rsp.Quoted.Bytes())
		b.QuoteSig = tpm2.Marshal(&rsp.Signature)
		b.PCRs = vals
		return nil
	}
	return &Error{Op: "quote", Err: errors.New("PCRs kept changing while quoting"), Retryable: true}
}

// readPCRs reads the selected PCRs of one bank; TPM2_PCR_Read returns at
// most 8 values per call.
func readPCRs(s *session, alg tpm2.TPMAlgID, pcrs []int) (map[uint32][]byte, error) {
	out := make(map[uint32][]byte, len(pcrs))
	left := slices.Clone(pcrs)
	for len(left) > 0 {
		rsp, err := run(s, "read PCRs", func(t transport.TPM) (*tpm2.PCRReadResponse, error) {
			return tpm2.PCRRead{PCRSelectionIn: pcrSelection(alg, left)}.Execute(t)
		})
		if err != nil {
			return nil, err
		}
		var got []int
		for _, sel := range rsp.PCRSelectionOut.PCRSelections {
			if sel.Hash != alg {
				continue
			}
			for i := 0; i < len(sel.PCRSelect)*8; i++ {
				if sel.PCRSelect[i/8]&(1<<(i%8)) != 0 {
					got = append(got, i)
				}
			}
		}
		if len(got) == 0 || len(got) != len(rsp.PCRValues.Digests) {
			return nil, &Error{Op: "read PCRs", Err: fmt.Errorf("PCR bank %v is not allocated or answered %d values for %d PCRs", alg, len(rsp.PCRValues.Digests), len(got))}
		}
		for i, p := range got {
			if !slices.Contains(left, p) {
				return nil, &Error{Op: "read PCRs", Err: fmt.Errorf("TPM returned unrequested PCR %d", p)}
			}
			out[uint32(p)] = bytes.Clone(rsp.PCRValues.Digests[i].Buffer)
		}
		left = slices.DeleteFunc(left, func(p int) bool { return slices.Contains(got, p) })
	}
	return out, nil
}

func (a *Attester) certify(s *session, k *Key, qd []byte, b *bundle.Bundle) error {
	k.mu.Lock()
	closed := k.closed
	k.mu.Unlock()
	if closed {
		return fmt.Errorf("%w: key", ErrClosed)
	}
	rsp, err := run(s, "certify key", func(t transport.TPM) (*tpm2.CertifyResponse, error) {
		return tpm2.Certify{
			ObjectHandle:   tpm2.AuthHandle{Handle: k.h.Handle, Name: k.h.Name, Auth: tpm2.PasswordAuth(nil)},
			SignHandle:     tpm2.AuthHandle{Handle: a.ak.Handle, Name: a.ak.Name, Auth: tpm2.PasswordAuth(nil)},
			QualifyingData: tpm2.TPM2BData{Buffer: qd},
			InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
		}.Execute(t)
	})
	if err != nil {
		return err
	}
	b.Certify = bytes.Clone(rsp.CertifyInfo.Bytes())
	b.CertifySig = tpm2.Marshal(&rsp.Signature)
	b.KeyPublic = k.pub
	return nil
}

// readNV reads a whole NV index (ErrNoEvidence when it is not defined).
func readNV(s *session, idx uint32) ([]byte, error) {
	pubRsp, err := run(s, "read NV public area", func(t transport.TPM) (*tpm2.NVReadPublicResponse, error) {
		return tpm2.NVReadPublic{NVIndex: tpm2.TPMHandle(idx)}.Execute(t)
	})
	if err != nil {
		var te *Error
		if errors.As(err, &te) && errors.Is(te.Code, tpm2.TPMRCHandle) {
			return nil, fmt.Errorf("%w: NV index 0x%08x", ErrNoEvidence, idx)
		}
		return nil, err
	}
	pub, err := pubRsp.NVPublic.Contents()
	if err != nil {
		return nil, &Error{Op: "NV public area", Err: err}
	}
	const chunk = 512 // below every TPM's MAX_NV_BUFFER_SIZE
	size := int(pub.DataSize)
	out := make([]byte, 0, size)
	for off := 0; off < size; off += chunk {
		n := min(chunk, size-off)
		rsp, err := run(s, "read NV", func(t transport.TPM) (*tpm2.NVReadResponse, error) {
			return tpm2.NVRead{
				AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(idx), Name: pubRsp.NVName, Auth: tpm2.PasswordAuth(nil)},
				NVIndex:    tpm2.NamedHandle{Handle: tpm2.TPMHandle(idx), Name: pubRsp.NVName},
				Size:       uint16(n),
				Offset:     uint16(off),
			}.Execute(t)
		})
		if err != nil {
			return nil, err
		}
		if len(rsp.Data.Buffer) != n {
			return nil, &Error{Op: "read NV", Err: fmt.Errorf("got %d bytes, asked %d", len(rsp.Data.Buffer), n)}
		}
		out = append(out, rsp.Data.Buffer...)
	}
	return out, nil
}

func readBounded(path string, max int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tpm: event log: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("tpm: event log: %w", err)
	}
	if len(data) > max {
		return nil, fmt.Errorf("%w: event log exceeds %d bytes", bundle.ErrTooLarge, max)
	}
	return data, nil
}

// Close flushes the keys created by NewKey and the derived AK. It does not
// close the Conn.
func (a *Attester) Close(ctx context.Context) error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	keys := a.keys
	a.keys = nil
	a.mu.Unlock()
	var errs []error
	for _, k := range keys {
		errs = append(errs, k.close(ctx, false))
	}
	if a.akTransient {
		errs = append(errs, a.conn.do(ctx, func(s *session) error {
			_, err := run(s, "flush AK", func(t transport.TPM) (*tpm2.FlushContextResponse, error) {
				return tpm2.FlushContext{FlushHandle: a.ak.Handle}.Execute(t)
			})
			return err
		}))
	}
	return errors.Join(errs...)
}
