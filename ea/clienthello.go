package ea

import (
	"crypto/tls"
	"net"
	"slices"
	"sync"

	"golang.org/x/crypto/cryptobyte"
)

// ClientHello is what a client offered in its ClientHello that matters to
// spontaneous server authenticators (RFC 9261, Sections 5.1 and 5.2.1): for
// those, the ClientHello stands in for the authenticator request, so the
// CertificateVerify scheme must be one of SignatureSchemes and every
// certificate extension one of Extensions.
//
// With a HelloRetryRequest, the first ClientHello is the one recorded.
type ClientHello struct {
	SignatureSchemes []tls.SignatureScheme // signature_algorithms, in the client's order
	Extensions       []uint16              // extension types, in wire order
}

func (ch *ClientHello) hasExtension(typ uint16) bool {
	return slices.Contains(ch.Extensions, typ)
}

// ClientHelloFromInfo copies the fields of a server's view of a ClientHello.
// tls.ClientHelloInfo.Extensions exists since Go 1.24.
func ClientHelloFromInfo(chi *tls.ClientHelloInfo) *ClientHello {
	return &ClientHello{
		SignatureSchemes: slices.Clone(chi.SignatureSchemes),
		Extensions:       slices.Clone(chi.Extensions),
	}
}

// RecordClientHello is for servers that send spontaneous authenticators. It
// returns a clone of base for ONE connection, whose GetConfigForClient
// records the client's ClientHello into the returned *ClientHello before
// calling base.GetConfigForClient, if any. Once Handshake has returned, put
// the record in Config.ClientHello of that connection's Session.
func RecordClientHello(base *tls.Config) (*tls.Config, *ClientHello) {
	ch := new(ClientHello)
	cfg := base.Clone()
	if cfg == nil {
		cfg = new(tls.Config)
	}
	next := cfg.GetConfigForClient
	cfg.GetConfigForClient = func(chi *tls.ClientHelloInfo) (*tls.Config, error) {
		*ch = *ClientHelloFromInfo(chi)
		if next != nil {
			return next(chi)
		}
		return nil, nil
	}
	return cfg, ch
}

// ClientHelloConn wraps a client's transport and records the first
// ClientHello the client writes to it, so the client knows exactly which
// signature schemes and extension types it offered (crypto/tls does not
// say), as it must to check a spontaneous server authenticator. Pass it to
// tls.Client instead of the raw connection. It inspects only bytes we send.
type ClientHelloConn struct {
	net.Conn

	mu    sync.Mutex
	buf   []byte // handshake bytes of the first flight, until parsed
	rec   []byte // partial TLS record
	done  bool
	hello *ClientHello
}

// maxClientHello bounds what ClientHelloConn buffers.
const maxClientHello = 1 << 17

// RecordClientHelloConn wraps conn; see ClientHelloConn.
func RecordClientHelloConn(conn net.Conn) *ClientHelloConn {
	return &ClientHelloConn{Conn: conn}
}

// ClientHello returns the recorded ClientHello, or nil if none was written
// or it could not be parsed.
func (c *ClientHelloConn) ClientHello() *ClientHello {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hello
}

func (c *ClientHelloConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if !c.done {
		c.observe(p)
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// observe reassembles the handshake records written so far.
func (c *ClientHelloConn) observe(p []byte) {
	c.rec = append(c.rec, p...)
	for len(c.rec) >= 5 {
		n := int(c.rec[3])<<8 | int(c.rec[4])
		if len(c.rec) < 5+n {
			break
		}
		if c.rec[0] != 22 { // not a handshake record: give up
			c.finish()
			return
		}
		c.buf = append(c.buf, c.rec[5:5+n]...)
		c.rec = c.rec[5+n:]
		if len(c.buf) >= 4 {
			l := int(c.buf[1])<<16 | int(c.buf[2])<<8 | int(c.buf[3])
			if len(c.buf) >= 4+l {
				c.hello = parseClientHello(c.buf[:4+l])
				c.finish()
				return
			}
		}
	}
	if len(c.rec)+len(c.buf) > maxClientHello {
		c.finish()
	}
}

func (c *ClientHelloConn) finish() {
	c.done, c.buf, c.rec = true, nil, nil
}

// parseClientHello extracts signature_algorithms and the extension types of
// a framed ClientHello (RFC 8446, Section 4.1.2).
func parseClientHello(msg []byte) *ClientHello {
	s := cryptobyte.String(msg)
	var typ uint8
	var body, sid, suites, comp, exts cryptobyte.String
	var vers uint16
	if !readHandshake(&s, &typ, &body) || typ != 1 || !s.Empty() ||
		!body.ReadUint16(&vers) || !body.Skip(32) ||
		!body.ReadUint8LengthPrefixed(&sid) ||
		!body.ReadUint16LengthPrefixed(&suites) ||
		!body.ReadUint8LengthPrefixed(&comp) ||
		!body.ReadUint16LengthPrefixed(&exts) || !body.Empty() {
		return nil
	}
	ch := &ClientHello{}
	for !exts.Empty() {
		var t uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&t) || !exts.ReadUint16LengthPrefixed(&data) {
			return nil
		}
		ch.Extensions = append(ch.Extensions, t)
		if t == ExtensionSignatureAlgorithms {
			sa, ok := parseSignatureAlgorithms(data)
			if !ok {
				return nil
			}
			ch.SignatureSchemes = sa
		}
	}
	return ch
}
