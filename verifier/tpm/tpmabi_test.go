package tpm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/attested-tls/go-expat/attester"
	atpm "github.com/attested-tls/go-expat/attester/tpm"
	"github.com/attested-tls/go-expat/attester/tpm/bundle"
	"github.com/attested-tls/go-expat/attester/tpm/tpmsim"
)

// The reference for tpmabi.go's decoders is the path the Verifier took
// before them: go-tpm's decode, accepted only if it re-marshals to exactly
// the input (strictUnmarshal), then the checks the Verifier made on the
// decoded value, plus the rules tpmabi.go adds (listed in its comment).
// The differential tests below hold the decoders to it: the same verdict
// on every input, and on acceptance the same fields.

// refNameOK is tpmabi.go's TPM2B_NAME rule, stated on go-tpm's decode.
func refNameOK(n []byte) bool {
	if len(n) == 0 || len(n) == 4 {
		return true
	}
	if len(n) < 2 {
		return false
	}
	h, ok := hashOf(binary.BigEndian.Uint16(n))
	return ok && h.Size() == len(n)-2
}

func refAttest(data []byte, typ tpm2.TPMST) (*tpm2.TPMSAttest, error) {
	a, err := strictUnmarshal[tpm2.TPMSAttest](data)
	if err != nil {
		return nil, err
	}
	if a.Magic != tpm2.TPMGeneratedValue || a.Type != typ {
		return nil, errors.New("magic or type")
	}
	if !refNameOK(a.QualifiedSigner.Buffer) {
		return nil, errors.New("qualified signer")
	}
	switch typ {
	case tpm2.TPMSTAttestQuote:
		q, err := a.Attested.Quote()
		if err != nil {
			return nil, err
		}
		sels := q.PCRSelect.PCRSelections
		if len(sels) > maxPCRBanks {
			return nil, errors.New("too many banks")
		}
		seen := map[tpm2.TPMAlgID]bool{}
		for _, s := range sels {
			if _, ok := hashOf(uint16(s.Hash)); !ok || len(s.PCRSelect) != pcrSelectSize || seen[s.Hash] {
				return nil, errors.New("selection")
			}
			seen[s.Hash] = true
		}
	case tpm2.TPMSTAttestCertify:
		c, err := a.Attested.Certify()
		if err != nil {
			return nil, err
		}
		if !refNameOK(c.Name.Buffer) || !refNameOK(c.QualifiedName.Buffer) {
			return nil, errors.New("name")
		}
	}
	return a, nil
}

func refSignature(data []byte) (*tpm2.TPMTSignature, error) {
	s, err := strictUnmarshal[tpm2.TPMTSignature](data)
	if err != nil {
		return nil, err
	}
	if s.SigAlg == tpm2.TPMAlgHMAC {
		ha, err := s.Signature.HMAC()
		if err != nil {
			return nil, err
		}
		if h, ok := hashOf(uint16(ha.HashAlg)); !ok || len(ha.Digest) != h.Size() {
			return nil, errors.New("HMAC digest")
		}
	}
	return s, nil
}

func refPublic(data []byte) (*tpm2.TPMTPublic, error) {
	p, err := strictUnmarshal[tpm2.TPMTPublic](data)
	if err != nil {
		return nil, err
	}
	if p.Type != tpm2.TPMAlgRSA && p.Type != tpm2.TPMAlgECC {
		return nil, errors.New("type")
	}
	if _, ok := hashOf(uint16(p.NameAlg)); !ok {
		return nil, errors.New("name algorithm")
	}
	return p, nil
}

// refKey is go-tpm's tpm2.Pub, with tpmabi.go's rule for ECC points.
func refKey(p *tpm2.TPMTPublic) (crypto.PublicKey, error) {
	k, err := tpm2.Pub(*p)
	if err != nil {
		return nil, err
	}
	if ek, ok := k.(*ecdsa.PublicKey); ok {
		pt, _ := p.Unique.ECC()
		size := (ek.Curve.Params().BitSize + 7) / 8
		if len(pt.X.Buffer) != size || len(pt.Y.Buffer) != size {
			return nil, errors.New("coordinate size")
		}
		if _, err := ek.ECDH(); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// refAK is parseAK as it was, on go-tpm's types.
func refAK(data []byte) (*tpm2.TPMTPublic, *ecdsa.PublicKey, error) {
	p, err := refPublic(data)
	if err != nil {
		return nil, nil, err
	}
	a := p.ObjectAttributes
	if p.Type != tpm2.TPMAlgECC || !a.Restricted || !a.SignEncrypt || a.Decrypt ||
		!a.FixedTPM || !a.FixedParent || !a.SensitiveDataOrigin {
		return nil, nil, errors.New("attributes")
	}
	ecc, err := p.Parameters.ECCDetail()
	if err != nil || ecc.CurveID != tpm2.TPMECCNistP256 || ecc.Scheme.Scheme != tpm2.TPMAlgECDSA {
		return nil, nil, errors.New("curve or scheme")
	}
	if sch, err := ecc.Scheme.Details.ECDSA(); err != nil || sch.HashAlg != tpm2.TPMAlgSHA256 {
		return nil, nil, errors.New("scheme hash")
	}
	k, err := refKey(p)
	if err != nil {
		return nil, nil, err
	}
	return p, k.(*ecdsa.PublicKey), nil
}

// diffAttest checks parseAttest and ParseQuoteInfo / ParseCertifyInfo
// against refAttest on data.
func diffAttest(t testing.TB, data []byte) {
	t.Helper()
	for _, typ := range []tpm2.TPMST{tpm2.TPMSTAttestQuote, tpm2.TPMSTAttestCertify} {
		ref, refErr := refAttest(data, typ)
		var a attest
		err := parseAttest(data, typ, &a)
		if (err == nil) != (refErr == nil) {
			t.Fatalf("type %#x: parseAttest: %v, reference: %v, input %x", typ, err, refErr, data)
		}
		if err != nil {
			continue
		}
		// The decoded fields, in go-tpm's form, encode to the input, as
		// the reference's do.
		if !bytes.Equal(tpm2.Marshal(a.goTPM()), data) || !bytes.Equal(tpm2.Marshal(ref), data) {
			t.Fatalf("type %#x: decoded fields differ, input %x", typ, data)
		}
		if a.clock != ref.ClockInfo.Clock || a.safe != ref.ClockInfo.Safe || a.resetCount != ref.ClockInfo.ResetCount ||
			!bytes.Equal(a.extraData, ref.ExtraData.Buffer) {
			t.Fatalf("type %#x: clock or extra data differ", typ)
		}
		parse := ParseQuoteInfo
		if typ == tpm2.TPMSTAttestCertify {
			parse = ParseCertifyInfo
		}
		if got, err := parse(data); err != nil || !bytes.Equal(tpm2.Marshal(got), data) {
			t.Fatalf("type %#x: exported parser: %v", typ, err)
		}
	}
}

func diffSignature(t testing.TB, data []byte) {
	t.Helper()
	ref, refErr := refSignature(data)
	var s signature
	err := parseSignature(data, &s)
	if (err == nil) != (refErr == nil) {
		t.Fatalf("parseSignature: %v, reference: %v, input %x", err, refErr, data)
	}
	sigAlg, hashAlg, perr := ParseSignature(data)
	if (perr == nil) != (err == nil) {
		t.Fatalf("ParseSignature: %v, parseSignature %v", perr, err)
	}
	if err != nil {
		return
	}
	if s.sigAlg != ref.SigAlg || sigAlg != ref.SigAlg {
		t.Fatalf("algorithm %#x, reference %#x", s.sigAlg, ref.SigAlg)
	}
	var hash uint16
	var r, ss []byte
	switch ref.SigAlg {
	case tpm2.TPMAlgECDSA, tpm2.TPMAlgECDAA:
		e, err := ref.Signature.ECDSA()
		if err != nil {
			e, _ = ref.Signature.ECDAA()
		}
		hash, r, ss = uint16(e.Hash), e.SignatureR.Buffer, e.SignatureS.Buffer
		if ref.SigAlg == tpm2.TPMAlgECDSA && hashAlg != e.Hash {
			t.Fatalf("ParseSignature hash %#x, reference %#x", hashAlg, e.Hash)
		}
	case tpm2.TPMAlgRSASSA, tpm2.TPMAlgRSAPSS:
		e, err := ref.Signature.RSASSA()
		if err != nil {
			e, _ = ref.Signature.RSAPSS()
		}
		hash, r = uint16(e.Hash), e.Sig.Buffer
	case tpm2.TPMAlgHMAC:
		e, _ := ref.Signature.HMAC()
		hash, r = uint16(e.HashAlg), e.Digest
	}
	if s.hash != hash || !bytes.Equal(s.r, r) || !bytes.Equal(s.s, ss) {
		t.Fatalf("fields differ: %+v, reference %+v", s, ref)
	}
}

// be16 returns the 16-bit value at off in b, or 0.
func be16(b []byte, off int) uint16 {
	if len(b) < off+2 {
		return 0
	}
	return binary.BigEndian.Uint16(b[off:])
}

func diffPublic(t testing.TB, data []byte) {
	t.Helper()
	ref, refErr := refPublic(data)
	var p public
	err := parsePublic(data, &p)
	if (err == nil) != (refErr == nil) {
		t.Fatalf("parsePublic: %v, reference: %v, input %x", err, refErr, data)
	}
	if err != nil {
		return
	}
	// The fields, read from go-tpm's decode (the nested schemes by their
	// go-tpm encoding: selector, then hash or key bits, then mode or count).
	attrs := binary.BigEndian.Uint32(tpm2.Marshal(&ref.ObjectAttributes))
	var sym, scheme []byte
	switch ref.Type {
	case tpm2.TPMAlgRSA:
		r, _ := ref.Parameters.RSADetail()
		n, _ := ref.Unique.RSA()
		sym, scheme = tpm2.Marshal(&r.Symmetric), tpm2.Marshal(&r.Scheme)
		if p.keyBits != uint16(r.KeyBits) || p.exponent != r.Exponent || !bytes.Equal(p.modulus, n.Buffer) {
			t.Fatal("RSA parameters differ")
		}
	case tpm2.TPMAlgECC:
		e, _ := ref.Parameters.ECCDetail()
		pt, _ := ref.Unique.ECC()
		sym, scheme = tpm2.Marshal(&e.Symmetric), tpm2.Marshal(&e.Scheme)
		kdf := tpm2.Marshal(&e.KDF)
		if p.curve != e.CurveID || uint16(p.kdf) != be16(kdf, 0) || p.kdfHash != be16(kdf, 2) ||
			!bytes.Equal(p.eccX, pt.X.Buffer) || !bytes.Equal(p.eccY, pt.Y.Buffer) {
			t.Fatal("ECC parameters differ")
		}
	}
	if p.typ != ref.Type || p.nameAlg != uint16(ref.NameAlg) || p.attrs != attrs || !bytes.Equal(p.authPolicy, ref.AuthPolicy.Buffer) ||
		uint16(p.symAlg) != be16(sym, 0) || p.symKeyBits != be16(sym, 2) || p.symMode != be16(sym, 4) ||
		uint16(p.scheme) != be16(scheme, 0) || p.schemeHash != be16(scheme, 2) || p.schemeCount != be16(scheme, 4) {
		t.Fatalf("fields differ: %+v, reference %+v", p, ref)
	}
	name, err := tpm2.ObjectName(ref)
	if err != nil || !bytes.Equal(p.name(), name.Buffer) {
		t.Fatalf("name %x, reference %x (%v)", p.name(), name, err)
	}
	// The public key.
	rk, refErr := refKey(ref)
	k, err := p.publicKey()
	if (err == nil) != (refErr == nil) {
		t.Fatalf("publicKey: %v, reference: %v", err, refErr)
	}
	if err == nil && !k.(interface{ Equal(crypto.PublicKey) bool }).Equal(rk) {
		t.Fatal("public keys differ")
	}
	if pk, err := ParseKeyPublic(data); (err == nil) != (refErr == nil) || (err == nil && !pk.(interface{ Equal(crypto.PublicKey) bool }).Equal(rk)) {
		t.Fatalf("ParseKeyPublic: %v", err)
	}
}

func diffAK(t testing.TB, data []byte) {
	t.Helper()
	refP, refK, refErr := refAK(data)
	p, k, err := parseAK(data)
	if (err == nil) != (refErr == nil) {
		t.Fatalf("parseAK: %v, reference: %v, input %x", err, refErr, data)
	}
	if err != nil {
		if p != nil || k != nil {
			t.Fatal("AK with error")
		}
		return
	}
	name, _ := tpm2.ObjectName(refP)
	spki, err := x509.MarshalPKIXPublicKey(refK)
	if err != nil || !k.Equal(refK) || !bytes.Equal(p.name(), name.Buffer) || !bytes.Equal(p.p256SPKI(), spki) {
		t.Fatalf("AK key, name or SPKI differ (%v)", err)
	}
}

// diffAll runs every differential check on data.
func diffAll(t testing.TB, data []byte) {
	t.Helper()
	diffAttest(t, data)
	diffSignature(t, data)
	diffPublic(t, data)
	diffAK(t, data)
}

var update = flag.Bool("update", false, "regenerate testdata/ from the TPM simulator")

const simBundle = "testdata/sim-bundle.cbor"

// TestSimBundle regenerates (-update) or checks testdata/sim-bundle.cbor:
// a key-attesting quote bundle from the go-tpm-tools simulator.
func TestSimBundle(t *testing.T) {
	if *update {
		raw := simulatorBundle(t)
		if err := os.MkdirAll(filepath.Dir(simBundle), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(simBundle, raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b := readSimBundle(t)
	if !b.HasKeyAttestation() {
		t.Fatal("the vector does not attest a key")
	}
}

// simulatorBundle returns an encoded bundle from a fresh simulator, for
// the challenge of label "vector".
func simulatorBundle(t testing.TB) []byte {
	t.Helper()
	sim, err := tpmsim.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	conn, err := atpm.Open(sim, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	a, err := atpm.NewAttester(ctx, conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(ctx)
	k, err := a.NewKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b := sha256.Sum256([]byte("vector"))
	h := sha256.Sum256(k.SPKI())
	ev, err := a.Attest(ctx, attester.Challenge{Hash: crypto.SHA256, Binding: b[:], AIKPubHash: h[:]})
	if err != nil {
		t.Fatal(err)
	}
	bu, err := bundle.Unwrap(ev)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := bundle.Marshal(bu)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func readSimBundle(t testing.TB) *bundle.Bundle {
	t.Helper()
	raw, err := os.ReadFile(simBundle)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundle.Unmarshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// seeds are the TPM structures of the simulator's bundle and of go-tpm's
// templates and constructors, covering the union members the decoders
// know.
func seeds(t testing.TB) [][]byte {
	t.Helper()
	b := readSimBundle(t)
	out := [][]byte{b.Quote, b.QuoteSig, b.AKPublic, b.Certify, b.CertifySig, b.KeyPublic}
	for _, tmpl := range []tpm2.TPMTPublic{tpm2.RSAEKTemplate, tpm2.ECCEKTemplate, tpm2.RSASRKTemplate, tpm2.ECCSRKTemplate} {
		out = append(out, tpm2.Marshal(&tmpl))
	}
	for _, s := range []tpm2.TPMTSignature{
		{SigAlg: tpm2.TPMAlgNull},
		{SigAlg: tpm2.TPMAlgRSASSA, Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgRSASSA,
			&tpm2.TPMSSignatureRSA{Hash: tpm2.TPMAlgSHA256, Sig: tpm2.TPM2BPublicKeyRSA{Buffer: bytes.Repeat([]byte{7}, 256)}})},
		{SigAlg: tpm2.TPMAlgHMAC, Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgHMAC,
			&tpm2.TPMTHA{HashAlg: tpm2.TPMAlgSHA256, Digest: make([]byte, 32)})},
	} {
		out = append(out, tpm2.Marshal(&s))
	}
	// A quote of two banks.
	q, err := refAttest(b.Quote, tpm2.TPMSTAttestQuote)
	if err != nil {
		t.Fatal(err)
	}
	qi, _ := q.Attested.Quote()
	qi.PCRSelect.PCRSelections = append(qi.PCRSelect.PCRSelections,
		tpm2.TPMSPCRSelection{Hash: tpm2.TPMAlgSHA1, PCRSelect: []byte{1, 0, 0x80}})
	out = append(out, tpm2.Marshal(q))
	return out
}

// mutations returns variants of data: every bit flipped, every
// truncation, every byte pair (a 16-bit size, wherever it is) incremented
// and decremented, one byte inserted at every position, and unless
// testing.Short, every byte pair within the first 40 (where the
// selectors of every structure here sit) set to each TPM_ALG_ID up to
// 0x0030.
func mutations(data []byte) [][]byte {
	var out [][]byte
	for i := range min(len(data)-1, 40) {
		if testing.Short() {
			break
		}
		for alg := range uint16(0x31) {
			m := bytes.Clone(data)
			binary.BigEndian.PutUint16(m[i:], alg)
			out = append(out, m)
		}
	}
	for i := range data {
		for bit := range 8 {
			m := bytes.Clone(data)
			m[i] ^= 1 << bit
			out = append(out, m)
		}
		out = append(out, bytes.Clone(data[:i]))
		if i+1 < len(data) {
			for _, d := range []uint16{1, 0xffff} {
				m := bytes.Clone(data)
				binary.BigEndian.PutUint16(m[i:], binary.BigEndian.Uint16(m[i:])+d)
				out = append(out, m)
			}
		}
		out = append(out, append(append(bytes.Clone(data[:i]), 0), data[i:]...))
	}
	return append(out, append(bytes.Clone(data), 0))
}

func TestDecodersMatchGoTPM(t *testing.T) {
	accepted := 0
	n := 0
	for _, s := range seeds(t) {
		for _, m := range append(mutations(s), s) {
			diffAll(t, m)
			n++
			var p public
			var a attest
			var sig signature
			if parsePublic(m, &p) == nil || parseAttest(m, tpm2.TPMSTAttestQuote, &a) == nil ||
				parseAttest(m, tpm2.TPMSTAttestCertify, &a) == nil || parseSignature(m, &sig) == nil {
				accepted++
			}
		}
	}
	// The mutations must exercise both verdicts.
	if accepted < 100 || accepted == n {
		t.Fatalf("%d of %d inputs accepted", accepted, n)
	}
	t.Logf("%d inputs, %d accepted by some decoder", n, accepted)
}

// TestDecoderRules checks the rules tpmabi.go adds to go-tpm's: inputs
// that go-tpm's decode and re-encode accepts and the decoders reject.
func TestDecoderRules(t *testing.T) {
	b := readSimBundle(t)
	q, _ := refAttest(b.Quote, tpm2.TPMSTAttestQuote)
	withSel := func(sels ...tpm2.TPMSPCRSelection) []byte {
		c := *q
		qi, _ := c.Attested.Quote()
		qi2 := *qi
		qi2.PCRSelect.PCRSelections = sels
		c.Attested = tpm2.NewTPMUAttest(tpm2.TPMSTAttestQuote, &qi2)
		return tpm2.Marshal(&c)
	}
	sel := func(h tpm2.TPMAlgID, bits ...byte) tpm2.TPMSPCRSelection {
		return tpm2.TPMSPCRSelection{Hash: h, PCRSelect: bits}
	}
	withSigner := func(n []byte) []byte {
		c := *q
		c.QualifiedSigner = tpm2.TPM2BName{Buffer: n}
		return tpm2.Marshal(&c)
	}
	ak, _ := strictUnmarshal[tpm2.TPMTPublic](b.AKPublic)
	withNameAlg := func(alg tpm2.TPMAlgID) []byte {
		c := *ak
		c.NameAlg = alg
		return tpm2.Marshal(&c)
	}
	quote, sig, pub := parseQuote, parseSig, parsePub
	for _, tc := range []struct {
		name  string
		in    []byte
		parse func([]byte) error
	}{
		{"sizeofSelect 4", withSel(sel(tpm2.TPMAlgSHA256, 0xff, 0, 0, 0)), quote},
		{"sizeofSelect 2", withSel(sel(tpm2.TPMAlgSHA256, 0xff, 0)), quote},
		{"SM3 bank", withSel(sel(tpm2.TPMAlgSM3256, 0xff, 0, 0)), quote},
		{"bank twice", withSel(sel(tpm2.TPMAlgSHA256, 1, 0, 0), sel(tpm2.TPMAlgSHA256, 2, 0, 0)), quote},
		{"five banks", withSel(sel(tpm2.TPMAlgSHA1, 1, 0, 0), sel(tpm2.TPMAlgSHA256, 1, 0, 0), sel(tpm2.TPMAlgSHA384, 1, 0, 0),
			sel(tpm2.TPMAlgSHA512, 1, 0, 0), sel(tpm2.TPMAlgSHA256, 1, 0, 0)), quote},
		{"name of 3 bytes", withSigner([]byte{0, 0x0b, 1}), quote},
		{"name digest short", withSigner(append([]byte{0, 0x0b}, make([]byte, 31)...)), quote},
		{"name of unknown algorithm", withSigner(append([]byte{0, 0x12}, make([]byte, 32)...)), quote},
		{"HMAC digest short", tpm2.Marshal(&tpm2.TPMTSignature{SigAlg: tpm2.TPMAlgHMAC, Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgHMAC,
			&tpm2.TPMTHA{HashAlg: tpm2.TPMAlgSHA256, Digest: make([]byte, 31)})}), sig},
		{"keyed-hash public area", tpm2.Marshal(&tpm2.TPMTPublic{Type: tpm2.TPMAlgKeyedHash, NameAlg: tpm2.TPMAlgSHA256,
			Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgKeyedHash, &tpm2.TPMSKeyedHashParms{}),
			Unique:     tpm2.NewTPMUPublicID(tpm2.TPMAlgKeyedHash, &tpm2.TPM2BDigest{})}), pub},
		{"SM3 name algorithm", withNameAlg(tpm2.TPMAlgSM3256), pub},
		{"off-curve AK", offCurve(t, ak), func(d []byte) error { _, _, err := parseAK(d); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.parse(tc.in); err == nil {
				t.Fatal("accepted")
			}
			// go-tpm's decode and re-encode accepts it: the case tests
			// an added rule, not go-tpm's.
			_, e1 := strictUnmarshal[tpm2.TPMSAttest](tc.in)
			_, e2 := strictUnmarshal[tpm2.TPMTSignature](tc.in)
			_, e3 := strictUnmarshal[tpm2.TPMTPublic](tc.in)
			if e1 != nil && e2 != nil && e3 != nil {
				t.Fatalf("go-tpm rejects it too: %v", e1)
			}
			diffAll(t, tc.in)
		})
	}
}

func parseQuote(d []byte) error { var a attest; return parseAttest(d, tpm2.TPMSTAttestQuote, &a) }
func parsePub(d []byte) error   { var p public; return parsePublic(d, &p) }
func parseSig(d []byte) error   { var s signature; return parseSignature(d, &s) }

// offCurve returns ak with its point's Y coordinate changed (off P-256).
func offCurve(t *testing.T, ak *tpm2.TPMTPublic) []byte {
	c := *ak
	pt, err := ak.Unique.ECC()
	if err != nil {
		t.Fatal(err)
	}
	y := bytes.Clone(pt.Y.Buffer)
	y[31] ^= 1
	c.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{X: pt.X, Y: tpm2.TPM2BECCParameter{Buffer: y}})
	return tpm2.Marshal(&c)
}
