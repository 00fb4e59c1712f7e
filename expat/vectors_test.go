package expat

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/expat vectors")

// challengeVector is one entry of testdata/expat/challenge.json.
type challengeVector struct {
	Name             string `json:"name"`
	Hash             string `json:"hash"`
	ExporterLabel    string `json:"exporter_label"`
	Context          string `json:"certificate_request_context"`
	ExporterOutput   string `json:"exporter_output"`
	SPKI             string `json:"spki"`
	Binding          string `json:"binding"`
	AIKPubHash       string `json:"aik_pub_hash"`
	ReportData64     string `json:"report_data_64"`
	QualifyingData32 string `json:"qualifying_data_32"`
}

// tableExporter answers ExportKeyingMaterial from fixed values, so vectors
// do not depend on a live TLS connection.
type tableExporter map[string][]byte

func (t tableExporter) ExportKeyingMaterial(label string, context []byte, n int) ([]byte, error) {
	v, ok := t[fmt.Sprintf("%s|%x|%d", label, context, n)]
	if !ok {
		return nil, fmt.Errorf("no exporter value for %q %x %d", label, context, n)
	}
	return v, nil
}

func deterministic(tag string, n int) []byte {
	var out []byte
	for i := 0; len(out) < n; i++ {
		s := sha256.Sum256([]byte(fmt.Sprintf("go-expat vector %s %d", tag, i)))
		out = append(out, s[:]...)
	}
	return out[:n]
}

func buildChallengeVectors(t *testing.T) []challengeVector {
	seed := deterministic("ed25519 key", ed25519.SeedSize)
	pub := ed25519.NewKeyFromSeed(seed).Public()
	spkiDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	var out []challengeVector
	for _, v := range []struct {
		name    string
		h       crypto.Hash
		label   string
		context []byte
	}{
		{"sha256-32-byte-context", crypto.SHA256, ExporterLabel, deterministic("context", 32)},
		{"sha384-32-byte-context", crypto.SHA384, ExporterLabel, deterministic("context", 32)},
		{"sha256-empty-context", crypto.SHA256, ExporterLabel, []byte{}},
		{"sha256-255-byte-context", crypto.SHA256, ExporterLabel, deterministic("long context", 255)},
		{"sha256-legacy-label-draft02", crypto.SHA256, LegacyLabelDraft02, deterministic("context", 32)},
	} {
		exported := deterministic("exporter "+v.name, ExporterLength)
		exp := tableExporter{fmt.Sprintf("%s|%x|%d", v.label, v.context, ExporterLength): exported}
		ch, err := ComputeChallenge(exp, v.h, v.label, v.context, spkiDER)
		if err != nil {
			t.Fatal(err)
		}
		rd, err := ch.ReportData64()
		if err != nil {
			t.Fatal(err)
		}
		qd, err := ch.QualifyingData32()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, challengeVector{
			Name: v.name, Hash: v.h.String(), ExporterLabel: v.label,
			Context: hex.EncodeToString(v.context), ExporterOutput: hex.EncodeToString(exported),
			SPKI: hex.EncodeToString(spkiDER), Binding: hex.EncodeToString(ch.Binding),
			AIKPubHash: hex.EncodeToString(ch.AIKPubHash), ReportData64: hex.EncodeToString(rd[:]),
			QualifyingData32: hex.EncodeToString(qd[:]),
		})
	}
	return out
}

// TestChallengeVectors checks the binder and the challenge layout against
// testdata/expat/challenge.json (regenerate with -update), and recomputes
// every vector independently of ComputeChallenge from its own fields.
func TestChallengeVectors(t *testing.T) {
	path := filepath.Join("..", "testdata", "expat", "challenge.json")
	got := buildChallengeVectors(t)
	if *update {
		b, _ := json.MarshalIndent(got, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var want []challengeVector
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if len(want) != len(got) {
		t.Fatalf("%d vectors on disk, %d computed", len(want), len(got))
	}
	for i := range want {
		if want[i] != got[i] {
			t.Errorf("vector %s differs:\n got %+v\nwant %+v", want[i].Name, got[i], want[i])
		}
		// Independent recomputation from the vector's own inputs.
		v := want[i]
		h := map[string]crypto.Hash{"SHA-256": crypto.SHA256, "SHA-384": crypto.SHA384}[v.Hash]
		spki, _ := hex.DecodeString(v.SPKI)
		exported, _ := hex.DecodeString(v.ExporterOutput)
		hb := h.New()
		hb.Write(spki)
		hb.Write(exported)
		hk := h.New()
		hk.Write(spki)
		binding, aik := hb.Sum(nil), hk.Sum(nil)
		if hex.EncodeToString(binding) != v.Binding || hex.EncodeToString(aik) != v.AIKPubHash {
			t.Errorf("%s: binding/AIK_pub_hash do not follow from the inputs", v.Name)
		}
		h512 := crypto.SHA512.New()
		h512.Write(binding)
		h512.Write(aik)
		h256 := crypto.SHA256.New()
		h256.Write(binding)
		h256.Write(aik)
		if hex.EncodeToString(h512.Sum(nil)) != v.ReportData64 || hex.EncodeToString(h256.Sum(nil)) != v.QualifyingData32 {
			t.Errorf("%s: layout does not follow from binding and AIK_pub_hash", v.Name)
		}
	}
}

// TestExtensionCodec checks the cmw_attestation data encoding.
func TestExtensionCodec(t *testing.T) {
	cmw := []byte(`["application/x","AA"]`)
	data, err := MarshalExtensionData(cmw)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data[:2], []byte{0, byte(len(cmw))}) {
		t.Fatalf("length prefix %x", data[:2])
	}
	back, err := ParseExtensionData(data)
	if err != nil || !bytes.Equal(back, cmw) {
		t.Fatalf("round trip: %v", err)
	}
	back[0] = 'X'
	if data[2] == 'X' {
		t.Fatal("parsed CMW aliases the input")
	}
	for name, bad := range map[string][]byte{
		"empty":          {},
		"short prefix":   {0},
		"empty cmw":      {0, 0},
		"length too big": {0, 5, 1, 2},
		"trailing bytes": {0, 1, 1, 2},
	} {
		if v, err := ParseExtensionData(bad); err == nil || v != nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := MarshalExtensionData(nil); err == nil {
		t.Error("empty CMW marshalled")
	}
	if _, err := MarshalExtensionData(make([]byte, MaxCMWSize+1)); err == nil {
		t.Error("oversized CMW marshalled")
	}
	if _, err := MarshalExtensionData(make([]byte, MaxCMWSize)); err != nil {
		t.Errorf("CMW of MaxCMWSize: %v", err)
	}
}

func FuzzExtensionData(f *testing.F) {
	f.Add([]byte{0, 1, 0x80})
	f.Add([]byte{0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		cmw, err := ParseExtensionData(data)
		if err != nil {
			if cmw != nil {
				t.Fatal("non-nil result with error")
			}
			return
		}
		again, err := MarshalExtensionData(cmw)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("re-marshal differs: %x vs %x (%v)", again, data, err)
		}
		for i := 0; i < len(data); i++ {
			if _, err := ParseExtensionData(data[:i]); err == nil {
				t.Fatalf("strict prefix of %d bytes parsed", i)
			}
		}
	})
}

func FuzzFrames(f *testing.F) {
	f.Add(appendFrame(nil, frameSetup, []byte{frameVersion}))
	f.Add(appendFrame(appendFrame(nil, frameData, []byte("hi")), frameClose, []byte{10}))
	f.Add(appendFrame(nil, frameAuthenticator, []byte{0}, []byte{20, 0, 0, 1, 0}))
	f.Add([]byte{frameAuthenticator, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		frames, err := parseFrames(b, 1<<16)
		if err != nil {
			if frames != nil {
				t.Fatal("frames with error")
			}
			return
		}
		var again []byte
		for _, fr := range frames {
			again = appendFrame(again, fr[0][0], fr[1])
		}
		if !bytes.Equal(again, b) {
			t.Fatal("re-framing differs")
		}
	})
}
