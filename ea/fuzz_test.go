package ea

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/cryptobyte"
)

// Seeds come from the golden vectors in testdata/ea.
func seedVectors(f *testing.F) (auths []authVector, reqs []requestVector) {
	var af authVectorFile
	var rf requestVectorFile
	for name, v := range map[string]any{authFile: &af, requestFile: &rf} {
		b, err := os.ReadFile(filepath.Join(vectorDir, name))
		if err != nil {
			f.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			f.Fatal(err)
		}
	}
	return af.Vectors, rf.Vectors
}

// FuzzParseRequest: no panic, nil on error, re-marshal gives the same
// bytes, and no strict prefix of a valid request parses.
func FuzzParseRequest(f *testing.F) {
	auths, reqs := seedVectors(f)
	for _, v := range reqs {
		f.Add([]byte(v.Message))
	}
	for _, v := range auths {
		if len(v.Request) > 0 {
			f.Add([]byte(v.Request))
		}
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		r, err := ParseRequest(msg)
		if err != nil {
			if r != nil {
				t.Fatal("non-nil request with an error")
			}
			return
		}
		out, err := r.Marshal()
		if err != nil || !bytes.Equal(out, msg) {
			t.Fatalf("re-marshal: %v\n in  %x\n out %x", err, msg, out)
		}
		if ctx, err := GetContext(msg); err != nil || !bytes.Equal(ctx, r.Context) {
			t.Fatalf("GetContext disagrees with ParseRequest: %v", err)
		}
		for i := 0; i < len(msg); i++ {
			if _, err := ParseRequest(msg[:i]); err == nil {
				t.Fatalf("strict prefix of length %d parses", i)
			}
		}
		// Aliasing: the result must not share memory with the input.
		if len(r.Context) > 0 {
			c := bytes.Clone(msg)
			r2, _ := ParseRequest(c)
			c[5] ^= 0xff
			if r2.Context[0] == c[5] {
				t.Fatal("context aliases the input")
			}
		}
	})
}

func marshalRaw(ra *rawAuthenticator) []byte {
	fin, _ := marshalFinished(ra.finished)
	return append(append(append([]byte{}, ra.certMsg...), ra.cvMsg...), fin...)
}

// FuzzAuthenticatorFraming: the authenticator splitter and the message
// parsers under it (Certificate, CertificateVerify, Finished).
func FuzzAuthenticatorFraming(f *testing.F) {
	auths, _ := seedVectors(f)
	for _, v := range auths {
		f.Add([]byte(v.Authenticator), v.CipherSuite == tls.TLS_AES_256_GCM_SHA384)
	}
	f.Fuzz(func(t *testing.T, auth []byte, sha384 bool) {
		n := 32
		if sha384 {
			n = 48
		}
		ra, err := splitAuthenticator(auth, n, DefaultMaxChainLength)
		if err != nil {
			if ra != nil {
				t.Fatal("non-nil result with an error")
			}
			return
		}
		if !bytes.Equal(marshalRaw(ra), auth) {
			t.Fatal("re-marshal differs")
		}
		if ra.cert != nil {
			cm, _ := ra.cert.marshal()
			cv, _ := ra.cv.marshal()
			if !bytes.Equal(cm, ra.certMsg) || !bytes.Equal(cv, ra.cvMsg) {
				t.Fatal("message re-marshal differs")
			}
			if ctx, err := GetContext(auth); err != nil || !bytes.Equal(ctx, ra.cert.context) {
				t.Fatal("GetContext disagrees")
			}
		}
		for i := 0; i < len(auth); i++ {
			if _, err := splitAuthenticator(auth[:i], n, DefaultMaxChainLength); err == nil {
				t.Fatalf("strict prefix of length %d parses", i)
			}
		}
	})
}

// FuzzValidate: full validation of arbitrary bytes against a session with
// an outstanding request: no panic, nil result on error, and mutations of
// a vector are never accepted unless identical.
func FuzzValidate(f *testing.F) {
	auths, _ := seedVectors(f)
	var base *authVector
	for i := range auths {
		if auths[i].Name == "success/cmw-extension" {
			base = &auths[i]
		}
		f.Add([]byte(auths[i].Authenticator))
	}
	if base == nil {
		f.Fatal("seed vector missing")
	}
	f.Fuzz(func(t *testing.T, auth []byte) {
		v := *base
		v.Authenticator = auth
		a, err := runAuthVector(v)
		if err != nil {
			if a != nil {
				t.Fatal("non-nil result with an error")
			}
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error of type %T", err)
			}
			return
		}
		if !bytes.Equal(auth, base.Authenticator) {
			t.Fatalf("a different authenticator was accepted: %x", auth)
		}
	})
}

// FuzzClientHello: the ClientHello recorder's parser.
func FuzzClientHello(f *testing.F) {
	var b cryptobyte.Builder
	b.AddUint8(1)
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint16(0x0303)
		b.AddBytes(make([]byte, 32))
		b.AddUint8(0)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint16(0x1301) })
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint8(0) })
		addExtensions(b, []Extension{sigAlgsExt(tls.Ed25519), {Type: 43, Data: []byte{2, 3, 4}}})
	})
	f.Add(b.BytesOrPanic())
	f.Fuzz(func(t *testing.T, msg []byte) {
		ch := parseClientHello(msg)
		if ch == nil {
			return
		}
		for i := 0; i < len(msg); i++ {
			if parseClientHello(msg[:i]) != nil {
				t.Fatalf("strict prefix of length %d parses", i)
			}
		}
	})
}

// FuzzPSSKey: the id-RSASSA-PSS SubjectPublicKeyInfo parser.
func FuzzPSSKey(f *testing.F) {
	f.Add(schemeCert(0x0809, "f").Leaf.RawSubjectPublicKeyInfo)
	f.Fuzz(func(t *testing.T, spki []byte) {
		k, err := parsePSSKey(spki)
		if err != nil && k.pub != nil {
			t.Fatal("key with an error")
		}
	})
}
