package ea

import (
	"crypto/tls"

	"golang.org/x/crypto/cryptobyte"
)

// Handshake message types used by Exported Authenticators
// (RFC 9261, Sections 4 and 5; RFC 8446, Section 4).
const (
	TypeCertificateRequest       uint8 = 13 // sent by a server (RFC 9261, Section 4.2)
	TypeClientCertificateRequest uint8 = 17 // sent by a client (RFC 9261, Section 4.1)
	TypeCertificate              uint8 = 11
	TypeCertificateVerify        uint8 = 15
	TypeFinished                 uint8 = 20
)

// Extension code points this package interprets or polices
// (IANA "TLS ExtensionType Values", TLS 1.3 column).
const (
	ExtensionServerName              uint16 = 0  // CH; allowed in ClientCertificateRequest (RFC 9261, Section 4.1)
	ExtensionStatusRequest           uint16 = 5  // CR, CT
	ExtensionSignatureAlgorithms     uint16 = 13 // CR; mandatory in requests
	ExtensionSCT                     uint16 = 18 // CR, CT
	ExtensionCompressCertificate     uint16 = 27 // CR (RFC 8879)
	ExtensionCertificateAuthorities  uint16 = 47 // CR
	ExtensionOIDFilters              uint16 = 48 // CR
	ExtensionSignatureAlgorithmsCert uint16 = 50 // CR
)

// tls13Message is a set of TLS 1.3 handshake messages, the codes of the
// "TLS 1.3" column of the IANA "TLS ExtensionType Values" registry.
type tls13Message uint8

const (
	inCH  tls13Message = 1 << iota // ClientHello
	inSH                           // ServerHello
	inHRR                          // HelloRetryRequest
	inEE                           // EncryptedExtensions
	inCT                           // Certificate (a CertificateEntry)
	inCR                           // CertificateRequest
	inNST                          // NewSessionTicket
)

// tls13Extensions says, for each extension that the IANA "TLS
// ExtensionType Values" registry (TLS 1.3 column, RFC 8446 Section 4.2 and
// later RFCs) defines for TLS 1.3, which messages it may appear in.
// RFC 8446, Section 4.2: a recognised extension in a message it is not
// specified for is an illegal_parameter. Extensions missing here (private
// use such as cmw_attestation, unassigned ones, and those whose TLS 1.3
// column is "-", i.e. not used in TLS 1.3) are not recognised: RFC 9261,
// Section 4 carries them through and otherwise ignores them, and a
// CertificateEntry may carry them when the request offered them.
var tls13Extensions = map[uint16]tls13Message{
	0:      inCH | inEE,         // server_name (allowed in a ClientCertificateRequest: see allowedInRequest)
	1:      inCH | inEE,         // max_fragment_length
	5:      inCH | inCR | inCT,  // status_request
	10:     inCH | inEE,         // supported_groups
	13:     inCH | inCR,         // signature_algorithms
	14:     inCH | inEE,         // use_srtp
	15:     inCH | inEE,         // heartbeat
	16:     inCH | inEE,         // application_layer_protocol_negotiation
	18:     inCH | inCR | inCT,  // signed_certificate_timestamp
	19:     inCH | inEE,         // client_certificate_type
	20:     inCH | inEE,         // server_certificate_type
	21:     inCH,                // padding
	27:     inCH | inCR,         // compress_certificate (RFC 8879)
	28:     inCH | inEE,         // record_size_limit (RFC 8449)
	29:     inCH,                // pwd_protect (RFC 8492)
	30:     inCH,                // pwd_clear (RFC 8492)
	31:     inCH | inSH | inHRR, // password_salt (RFC 8492)
	32:     inCH | inEE,         // ticket_pinning (RFC 8672)
	33:     inCH | inSH,         // tls_cert_with_extern_psk (RFC 8773)
	34:     inCH | inCR | inCT,  // delegated_credential (RFC 9345)
	39:     inCH | inEE,         // supported_ekt_ciphers (RFC 8870)
	41:     inCH | inSH,         // pre_shared_key
	42:     inCH | inEE | inNST, // early_data
	43:     inCH | inSH | inHRR, // supported_versions
	44:     inCH | inHRR,        // cookie
	45:     inCH,                // psk_key_exchange_modes
	47:     inCH | inCR,         // certificate_authorities
	48:     inCR,                // oid_filters
	49:     inCH,                // post_handshake_auth
	50:     inCH | inCR,         // signature_algorithms_cert
	51:     inCH | inSH | inHRR, // key_share
	52:     inCH | inCR | inCT,  // transparency_info (RFC 9162)
	54:     inCH | inSH,         // connection_id (RFC 9146)
	55:     inCH | inEE,         // external_id_hash (RFC 8844)
	56:     inCH | inEE,         // external_session_id (RFC 8844)
	57:     inCH | inEE,         // quic_transport_parameters (RFC 9001)
	58:     inCH | inEE,         // ticket_request (RFC 9149)
	59:     inCH | inCT,         // dnssec_chain (RFC 9102)
	60:     inCH | inSH | inHRR, // sequence_number_encryption_algorithms (DTLS)
	61:     inCH | inSH,         // rrc (DTLS return routability check)
	0xfd00: inCH,                // ech_outer_extensions (draft-ietf-tls-esni)
	0xfe0d: inCH | inHRR | inEE, // encrypted_client_hello (draft-ietf-tls-esni)
}

// allowedIn reports whether ext may appear in message m: it is either not
// recognised (see tls13Extensions) or specified for m.
func allowedIn(m tls13Message, ext uint16) bool {
	where, known := tls13Extensions[ext]
	return !known || where&m != 0
}

// allowedInRequest reports whether ext may appear in a request of type typ
// (both are CertificateRequest-shaped, RFC 9261, Section 4). server_name
// is allowed in a ClientCertificateRequest only (RFC 9261, Section 4.1).
func allowedInRequest(typ uint8, ext uint16) bool {
	if ext == ExtensionServerName {
		return typ == TypeClientCertificateRequest
	}
	return allowedIn(inCR, ext)
}

// allowedInCertificateEntry reports whether ext may appear in a
// CertificateEntry (RFC 8446, Section 4.4.2): e.g. status_request and
// signed_certificate_timestamp, and unrecognised ones such as
// cmw_attestation, but never signature_algorithms or key_share.
func allowedInCertificateEntry(ext uint16) bool { return allowedIn(inCT, ext) }

// Extension is one TLS extension: its type and its opaque extension_data.
type Extension struct {
	Type uint16
	Data []byte
}

func cloneExtensions(exts []Extension) []Extension {
	if exts == nil {
		return nil
	}
	out := make([]Extension, len(exts))
	for i, e := range exts {
		out[i] = Extension{Type: e.Type, Data: append([]byte{}, e.Data...)}
	}
	return out
}

// readExtensions reads a u16-prefixed extension block. It rejects duplicate
// types (RFC 8446, Section 4.2) and copies every value out of s.
func readExtensions(s *cryptobyte.String, requireNonEmpty bool) ([]Extension, *Error) {
	var block cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&block) {
		return nil, decodeError("malformed extensions block")
	}
	if requireNonEmpty && block.Empty() {
		return nil, decodeError("empty extensions block")
	}
	var exts []Extension
	seen := make(map[uint16]bool)
	for !block.Empty() {
		var typ uint16
		var data cryptobyte.String
		if !block.ReadUint16(&typ) || !block.ReadUint16LengthPrefixed(&data) {
			return nil, decodeError("malformed extension")
		}
		if seen[typ] {
			return nil, newError(alertIllegalParameter, KindDecode, nil, "duplicate extension")
		}
		seen[typ] = true
		exts = append(exts, Extension{Type: typ, Data: append([]byte{}, data...)})
	}
	return exts, nil
}

func addExtensions(b *cryptobyte.Builder, exts []Extension) {
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, e := range exts {
			b.AddUint16(e.Type)
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e.Data) })
		}
	})
}

func checkNoDuplicates(exts []Extension) bool {
	seen := make(map[uint16]bool, len(exts))
	for _, e := range exts {
		if seen[e.Type] {
			return false
		}
		seen[e.Type] = true
	}
	return true
}

// readHandshake reads one handshake message header and body
// (msg_type u8 | length u24 | body).
func readHandshake(s *cryptobyte.String, typ *uint8, body *cryptobyte.String) bool {
	return s.ReadUint8(typ) && s.ReadUint24LengthPrefixed(body)
}

func marshalHandshake(typ uint8, f cryptobyte.BuilderContinuation) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(typ)
	b.AddUint24LengthPrefixed(f)
	return b.Bytes()
}

// parseSignatureAlgorithms decodes the extension_data of
// signature_algorithms (RFC 8446, Section 4.2.3): supported_signature_algorithms<2..2^16-2>.
func parseSignatureAlgorithms(data []byte) ([]tls.SignatureScheme, bool) {
	s := cryptobyte.String(data)
	var list cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&list) || !s.Empty() || list.Empty() || len(list)%2 != 0 {
		return nil, false
	}
	out := make([]tls.SignatureScheme, 0, len(list)/2)
	for !list.Empty() {
		var v uint16
		list.ReadUint16(&v)
		out = append(out, tls.SignatureScheme(v))
	}
	return out, true
}

func marshalSignatureAlgorithms(schemes []tls.SignatureScheme) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, s := range schemes {
			b.AddUint16(uint16(s))
		}
	})
	return b.Bytes()
}

// Request is an authenticator request: a CertificateRequest (type 13, sent
// by a server) or a ClientCertificateRequest (type 17, sent by a client).
// RFC 9261, Section 4. Both have the body of a TLS 1.3 CertificateRequest.
type Request struct {
	Type       uint8
	Context    []byte      // certificate_request_context, 0..255 bytes
	Extensions []Extension // in wire order, including signature_algorithms
}

// ParseRequest parses one framed request message (4-byte handshake header
// and body). Parsing is strict: the length must match, no trailing bytes,
// at least one extension, no duplicate extension types, a well-formed
// signature_algorithms must be present (missing_extension otherwise), and
// extensions that TLS 1.3 defines for other messages are illegal_parameter.
// Unknown extensions are kept in Extensions and otherwise ignored. The
// result never aliases msg.
func ParseRequest(msg []byte) (*Request, error) {
	r, err := parseRequest(msg)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func parseRequest(msg []byte) (*Request, *Error) {
	s := cryptobyte.String(msg)
	var typ uint8
	var body cryptobyte.String
	if !readHandshake(&s, &typ, &body) || !s.Empty() {
		return nil, decodeError("malformed request framing")
	}
	if typ != TypeCertificateRequest && typ != TypeClientCertificateRequest {
		return nil, newError(alertUnexpectedMessage, KindDecode, nil, "not an authenticator request")
	}
	var ctx cryptobyte.String
	if !body.ReadUint8LengthPrefixed(&ctx) {
		return nil, decodeError("malformed request context")
	}
	exts, err := readExtensions(&body, true)
	if err != nil {
		return nil, err
	}
	if !body.Empty() {
		return nil, decodeError("trailing bytes in request")
	}
	r := &Request{Type: typ, Context: append([]byte{}, ctx...), Extensions: exts}
	if err := r.check(); err != nil {
		return nil, err
	}
	return r, nil
}

// check enforces the semantic rules shared by parse and marshal.
func (r *Request) check() *Error {
	if r.Type != TypeCertificateRequest && r.Type != TypeClientCertificateRequest {
		return localError("invalid request type")
	}
	if len(r.Context) > 255 {
		return decodeError("request context longer than 255 bytes")
	}
	if len(r.Extensions) == 0 {
		return decodeError("request without extensions")
	}
	if !checkNoDuplicates(r.Extensions) {
		return newError(alertIllegalParameter, KindDecode, nil, "duplicate extension in request")
	}
	for _, e := range r.Extensions {
		if len(e.Data) > 0xffff {
			return decodeError("extension too long")
		}
		if !allowedInRequest(r.Type, e.Type) {
			return newError(alertIllegalParameter, KindDecode, nil, "extension not allowed in an authenticator request")
		}
	}
	sa, ok := r.Extension(ExtensionSignatureAlgorithms)
	if !ok {
		return newError(alertMissingExtension, KindMissingExtension, nil, "request without signature_algorithms")
	}
	if _, ok := parseSignatureAlgorithms(sa); !ok {
		return decodeError("malformed signature_algorithms")
	}
	return nil
}

// Marshal returns the framed request message. It fails for a request that
// ParseRequest would reject.
func (r *Request) Marshal() ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	out, err := marshalHandshake(r.Type, func(b *cryptobyte.Builder) {
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(r.Context) })
		addExtensions(b, r.Extensions)
	})
	if err != nil {
		return nil, localError("marshalling request: " + err.Error())
	}
	return out, nil
}

// Extension returns the data of the extension of type typ, if present.
// The returned slice aliases r.
func (r *Request) Extension(typ uint16) (data []byte, ok bool) {
	for _, e := range r.Extensions {
		if e.Type == typ {
			return e.Data, true
		}
	}
	return nil, false
}

// SignatureSchemes returns the schemes of the request's
// signature_algorithms extension, in the requester's order of preference,
// or nil if it is missing or malformed.
func (r *Request) SignatureSchemes() []tls.SignatureScheme {
	data, ok := r.Extension(ExtensionSignatureAlgorithms)
	if !ok {
		return nil
	}
	s, _ := parseSignatureAlgorithms(data)
	return s
}

func (r *Request) clone() *Request {
	if r == nil {
		return nil
	}
	return &Request{Type: r.Type, Context: append([]byte{}, r.Context...), Extensions: cloneExtensions(r.Extensions)}
}

// certEntry is one CertificateEntry (RFC 8446, Section 4.4.2), X.509 only.
type certEntry struct {
	der  []byte
	exts []Extension
}

// certificateMsg is the body of a Certificate message.
type certificateMsg struct {
	context []byte
	entries []certEntry
}

func (m *certificateMsg) marshal() ([]byte, error) {
	return marshalHandshake(TypeCertificate, func(b *cryptobyte.Builder) {
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(m.context) })
		b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, e := range m.entries {
				b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e.der) })
				addExtensions(b, e.exts)
			}
		})
	})
}

// parseCertificateBody parses a Certificate body. maxEntries bounds the
// number of entries before anything is kept for an entry beyond it.
func parseCertificateBody(body cryptobyte.String, maxEntries int) (*certificateMsg, *Error) {
	var ctx, list cryptobyte.String
	if !body.ReadUint8LengthPrefixed(&ctx) || !body.ReadUint24LengthPrefixed(&list) || !body.Empty() {
		return nil, decodeError("malformed Certificate")
	}
	m := &certificateMsg{context: append([]byte{}, ctx...)}
	for !list.Empty() {
		if len(m.entries) >= maxEntries {
			return nil, newError(alertBadCertificate, KindCertificate, nil, "certificate chain too long")
		}
		var der cryptobyte.String
		if !list.ReadUint24LengthPrefixed(&der) || der.Empty() {
			return nil, decodeError("malformed CertificateEntry")
		}
		exts, err := readExtensions(&list, false)
		if err != nil {
			return nil, err
		}
		for _, e := range exts {
			if !allowedInCertificateEntry(e.Type) {
				return nil, newError(alertIllegalParameter, KindDecode, nil, "extension not allowed in a CertificateEntry")
			}
		}
		m.entries = append(m.entries, certEntry{der: append([]byte{}, der...), exts: exts})
	}
	return m, nil
}

// certificateVerifyMsg is the body of a CertificateVerify message.
type certificateVerifyMsg struct {
	scheme    tls.SignatureScheme
	signature []byte
}

func (m *certificateVerifyMsg) marshal() ([]byte, error) {
	return marshalHandshake(TypeCertificateVerify, func(b *cryptobyte.Builder) {
		b.AddUint16(uint16(m.scheme))
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(m.signature) })
	})
}

func parseCertificateVerifyBody(body cryptobyte.String) (*certificateVerifyMsg, *Error) {
	var scheme uint16
	var sig cryptobyte.String
	if !body.ReadUint16(&scheme) || !body.ReadUint16LengthPrefixed(&sig) || !body.Empty() {
		return nil, decodeError("malformed CertificateVerify")
	}
	return &certificateVerifyMsg{scheme: tls.SignatureScheme(scheme), signature: append([]byte{}, sig...)}, nil
}

func marshalFinished(verifyData []byte) ([]byte, error) {
	return marshalHandshake(TypeFinished, func(b *cryptobyte.Builder) { b.AddBytes(verifyData) })
}

// rawAuthenticator is an authenticator split into its framed messages.
// For an empty authenticator, cert and cv are nil.
type rawAuthenticator struct {
	certMsg  []byte // framed Certificate
	cvMsg    []byte // framed CertificateVerify
	finished []byte // Finished body (verify_data)
	cert     *certificateMsg
	cv       *certificateVerifyMsg
}

// splitAuthenticator parses Certificate || CertificateVerify || Finished, or
// a lone Finished (the empty authenticator, RFC 9261, Section 6), strictly:
// message order fixed, no trailing bytes, verify_data of exactly hashLen.
func splitAuthenticator(auth []byte, hashLen, maxEntries int) (*rawAuthenticator, *Error) {
	s := cryptobyte.String(auth)
	var typ uint8
	var body cryptobyte.String
	start := s
	if !readHandshake(&s, &typ, &body) {
		return nil, decodeError("malformed authenticator framing")
	}
	ra := &rawAuthenticator{}
	if typ == TypeFinished {
		if !s.Empty() {
			return nil, decodeError("trailing bytes after empty authenticator")
		}
		if len(body) != hashLen {
			return nil, decodeError("Finished of the wrong length")
		}
		ra.finished = append([]byte{}, body...)
		return ra, nil
	}
	if typ != TypeCertificate {
		return nil, newError(alertUnexpectedMessage, KindDecode, nil, "authenticator does not start with Certificate")
	}
	ra.certMsg = append([]byte{}, start[:len(start)-len(s)]...)
	cert, err := parseCertificateBody(body, maxEntries)
	if err != nil {
		return nil, err
	}
	if len(cert.entries) == 0 {
		return nil, decodeError("Certificate without entries in a non-empty authenticator")
	}
	ra.cert = cert

	start = s
	if !readHandshake(&s, &typ, &body) {
		return nil, decodeError("malformed CertificateVerify framing")
	}
	if typ != TypeCertificateVerify {
		return nil, newError(alertUnexpectedMessage, KindDecode, nil, "expected CertificateVerify")
	}
	ra.cvMsg = append([]byte{}, start[:len(start)-len(s)]...)
	if ra.cv, err = parseCertificateVerifyBody(body); err != nil {
		return nil, err
	}

	if !readHandshake(&s, &typ, &body) {
		return nil, decodeError("malformed Finished framing")
	}
	if typ != TypeFinished {
		return nil, newError(alertUnexpectedMessage, KindDecode, nil, "expected Finished")
	}
	if !s.Empty() {
		return nil, decodeError("trailing bytes after Finished")
	}
	if len(body) != hashLen {
		return nil, decodeError("Finished of the wrong length")
	}
	ra.finished = append([]byte{}, body...)
	return ra, nil
}

// GetContext returns the certificate_request_context of a framed request
// (types 13 and 17, parsed strictly) or of an authenticator (the context of
// its Certificate message; RFC 9261, Section 7.2). An empty authenticator
// carries no context and yields an error. The result never aliases msg.
func GetContext(msg []byte) ([]byte, error) {
	if len(msg) == 0 {
		return nil, decodeError("empty message")
	}
	switch msg[0] {
	case TypeCertificateRequest, TypeClientCertificateRequest:
		r, err := parseRequest(msg)
		if err != nil {
			return nil, err
		}
		return r.Context, nil
	case TypeCertificate:
		s := cryptobyte.String(msg)
		var typ uint8
		var body, ctx cryptobyte.String
		if !readHandshake(&s, &typ, &body) || !body.ReadUint8LengthPrefixed(&ctx) {
			return nil, decodeError("malformed Certificate")
		}
		return append([]byte{}, ctx...), nil
	case TypeFinished:
		return nil, decodeError("an empty authenticator carries no context")
	}
	return nil, newError(alertUnexpectedMessage, KindDecode, nil, "not a request or an authenticator")
}
