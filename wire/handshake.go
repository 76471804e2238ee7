package wire

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/binary"
	"errors"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// The connection phase: the server's greeting, the client's handshake
// response (or the SSLRequest before it), auth switch requests, the extra
// rounds of caching_sha2_password, and COM_CHANGE_USER, which reruns a login
// inside a session.

// ErrNoProtocol41 says a client cannot speak the 4.1 protocol, which is all
// the proxy speaks.
var ErrNoProtocol41 = errors.New("client does not support the 4.1 protocol")

// protocolVersion is the only greeting version since MySQL 3.21.
const protocolVersion = 10

// sslRequestSize is the size of an SSLRequest: a handshake response cut
// after its fixed part.
const sslRequestSize = 32

// MariaDB's extended capabilities (the upper 32 bits of its 64-bit
// capability flags). A MariaDB server says it has them by leaving out
// CLIENT_LONG_PASSWORD (which MariaDB calls CLIENT_MYSQL) and sends them in
// the last 4 of the greeting's reserved bytes; a client that leaves out
// CLIENT_LONG_PASSWORD too answers with its own in the last 4 reserved
// bytes of its handshake response.
const (
	// MariaDBExtendedMetadata (MARIADB_CLIENT_EXTENDED_METADATA): column
	// definitions carry a block of extended type information, such as
	// format=json for a JSON column.
	MariaDBExtendedMetadata uint32 = 1 << 3
)

// Greeting is the server's initial handshake packet (protocol version 10).
type Greeting struct {
	ServerVersion string
	ConnectionID  uint32
	Capabilities  uint32
	// ExtCapabilities are MariaDB's extended capabilities, when
	// Capabilities leave out CLIENT_LONG_PASSWORD.
	ExtCapabilities uint32
	Collation       uint8
	Status          uint16
	// AuthData is the scramble: 20 bytes from MySQL and MariaDB.
	AuthData   []byte
	AuthPlugin string
}

// ParseGreeting decodes a server's initial handshake, or returns the error
// a server sends instead (too many connections, host blocked, ...) as a
// *mysql.MyError.
func ParseGreeting(p []byte) (*Greeting, error) {
	if len(p) > 0 && p[0] == ErrHeader {
		return nil, ParseErr(p)
	}
	if len(p) < 1 || p[0] != protocolVersion {
		return nil, errors.New("server speaks an unsupported protocol version")
	}
	r := reader{b: p[1:]}
	g := &Greeting{AuthPlugin: mysql.AUTH_NATIVE_PASSWORD}
	g.ServerVersion = string(r.nulString(false))
	g.ConnectionID = r.u32()
	scramble := append([]byte(nil), r.bytes(8)...)
	r.u8() // filler
	g.Capabilities = uint32(r.u16())
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) < 1+2+2+1+10 {
		g.AuthData = scramble
		return g, nil
	}
	g.Collation = r.u8()
	g.Status = r.u16()
	g.Capabilities |= uint32(r.u16()) << 16
	authLen := int(r.u8())
	reserved := r.bytes(10)
	if g.Capabilities&mysql.CLIENT_LONG_PASSWORD == 0 && len(reserved) == 10 {
		g.ExtCapabilities = binary.LittleEndian.Uint32(reserved[6:])
	}
	if g.Capabilities&mysql.CLIENT_SECURE_CONNECTION != 0 {
		part2 := r.bytes(max(13, authLen-8))
		scramble = append(scramble, bytes.TrimSuffix(part2, []byte{0})...)
	}
	if r.err != nil {
		return nil, r.err
	}
	g.AuthData = scramble
	if g.Capabilities&mysql.CLIENT_PLUGIN_AUTH != 0 && !r.empty() {
		g.AuthPlugin = string(r.nulString(true))
	}
	return g, nil
}

// AppendGreeting appends the payload of g. AuthData must be at least 8 bytes.
func AppendGreeting(b []byte, g *Greeting) []byte {
	b = append(b, protocolVersion)
	b = appendNulString(b, g.ServerVersion)
	b = binary.LittleEndian.AppendUint32(b, g.ConnectionID)
	b = append(b, g.AuthData[:8]...)
	b = append(b, 0)
	b = binary.LittleEndian.AppendUint16(b, uint16(g.Capabilities))
	b = append(b, g.Collation)
	b = binary.LittleEndian.AppendUint16(b, g.Status)
	b = binary.LittleEndian.AppendUint16(b, uint16(g.Capabilities>>16))
	b = append(b, byte(len(g.AuthData)+1))
	b = append(b, make([]byte, 6)...)
	b = binary.LittleEndian.AppendUint32(b, extCapsToSend(g.Capabilities, g.ExtCapabilities))
	// The second part of the scramble is NUL-terminated and at least 13
	// bytes with its NUL.
	part2 := g.AuthData[8:]
	b = append(b, part2...)
	b = append(b, make([]byte, max(1, 13-len(part2)))...)
	return appendNulString(b, g.AuthPlugin)
}

// extCapsToSend is what the reserved bytes carry of ext: nothing when the
// capabilities say CLIENT_LONG_PASSWORD, which makes them reserved bytes
// the other side does not read.
func extCapsToSend(caps, ext uint32) uint32 {
	if caps&mysql.CLIENT_LONG_PASSWORD != 0 {
		return 0
	}
	return ext
}

// HandshakeResponse is a client's HandshakeResponse41, or its SSLRequest
// (the fixed first part alone) that asks to switch to TLS first.
type HandshakeResponse struct {
	Capabilities uint32
	// ExtCapabilities are MariaDB's extended capabilities, when
	// Capabilities leave out CLIENT_LONG_PASSWORD.
	ExtCapabilities uint32
	MaxPacketSize   uint32
	Collation       uint8
	User            string
	AuthData        []byte
	Schema          string
	AuthPlugin      string
	// SSLRequest: the packet ends after the fixed part; TLS starts next.
	SSLRequest bool
}

// ParseHandshakeResponse decodes a HandshakeResponse41 or SSLRequest.
// Connection attributes, if any, are not decoded: the proxy does not use
// them. AuthData aliases p.
func ParseHandshakeResponse(p []byte) (*HandshakeResponse, error) {
	if len(p) < sslRequestSize {
		return nil, ErrMalformed
	}
	r := reader{b: p}
	h := &HandshakeResponse{}
	h.Capabilities = r.u32()
	if h.Capabilities&mysql.CLIENT_PROTOCOL_41 == 0 {
		return nil, ErrNoProtocol41
	}
	h.MaxPacketSize = r.u32()
	h.Collation = r.u8()
	reserved := r.bytes(23)
	if h.Capabilities&mysql.CLIENT_LONG_PASSWORD == 0 && len(reserved) == 23 {
		h.ExtCapabilities = binary.LittleEndian.Uint32(reserved[19:])
	}
	if len(p) == sslRequestSize {
		h.SSLRequest = true
		return h, nil
	}
	h.User = string(r.nulString(false))
	switch {
	case h.Capabilities&mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0:
		h.AuthData = r.lenencString()
	case h.Capabilities&mysql.CLIENT_SECURE_CONNECTION != 0:
		h.AuthData = r.bytes(int(r.u8()))
	default:
		h.AuthData = r.nulString(false)
	}
	if h.Capabilities&mysql.CLIENT_CONNECT_WITH_DB != 0 && !r.empty() {
		h.Schema = string(r.nulString(false))
	}
	if h.Capabilities&mysql.CLIENT_PLUGIN_AUTH != 0 && !r.empty() {
		h.AuthPlugin = string(r.nulString(true))
	}
	if r.err != nil {
		return nil, r.err
	}
	return h, nil
}

// AppendHandshakeResponse appends the payload of h: with SSLRequest set,
// only the fixed part. The auth data is length-encoded when the
// capabilities allow it, else prefixed with its one-byte length under
// CLIENT_SECURE_CONNECTION, else NUL-terminated, as ParseHandshakeResponse
// reads it.
func AppendHandshakeResponse(b []byte, h *HandshakeResponse) []byte {
	b = binary.LittleEndian.AppendUint32(b, h.Capabilities)
	b = binary.LittleEndian.AppendUint32(b, h.MaxPacketSize)
	b = append(b, h.Collation)
	b = append(b, make([]byte, 19)...)
	b = binary.LittleEndian.AppendUint32(b, extCapsToSend(h.Capabilities, h.ExtCapabilities))
	if h.SSLRequest {
		return b
	}
	b = appendNulString(b, h.User)
	switch {
	case h.Capabilities&mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0:
		b = AppendLenencString(b, h.AuthData)
	case h.Capabilities&mysql.CLIENT_SECURE_CONNECTION != 0:
		b = append(b, byte(len(h.AuthData)))
		b = append(b, h.AuthData...)
	default:
		b = appendNulString(b, h.AuthData)
	}
	if h.Capabilities&mysql.CLIENT_CONNECT_WITH_DB != 0 {
		b = appendNulString(b, h.Schema)
	}
	if h.Capabilities&mysql.CLIENT_PLUGIN_AUTH != 0 {
		b = appendNulString(b, h.AuthPlugin)
	}
	return b
}

// AuthSwitchRequest asks the client to answer again for another plugin,
// with the scramble in Data.
type AuthSwitchRequest struct {
	Plugin string
	Data   []byte
	// OldStyle is the request of servers before 4.1, the byte 0xfe alone,
	// which MariaDB still sends a client that answered for
	// mysql_native_password when the account has an old password: answer
	// for mysql_old_password, with the scramble of the greeting (or of
	// the last switch). Parsed, it has Plugin mysql_old_password and no
	// Data; appended, Plugin and Data are not sent.
	OldStyle bool
}

// IsAuthSwitchRequest tells an auth switch request among the packets a
// server may send during login.
func IsAuthSwitchRequest(p []byte) bool { return len(p) > 0 && p[0] == EOFHeader }

// ParseAuthSwitchRequest decodes an auth switch request; Data loses the NUL
// that ends it.
func ParseAuthSwitchRequest(p []byte) (AuthSwitchRequest, error) {
	if !IsAuthSwitchRequest(p) {
		return AuthSwitchRequest{}, ErrMalformed
	}
	if len(p) == 1 {
		return AuthSwitchRequest{Plugin: mysql.AUTH_MYSQL_OLD_PASSWORD, OldStyle: true}, nil
	}
	r := reader{b: p[1:]}
	plugin := r.nulString(false)
	if r.err != nil {
		return AuthSwitchRequest{}, r.err
	}
	return AuthSwitchRequest{Plugin: string(plugin), Data: bytes.TrimSuffix(r.rest(), []byte{0})}, nil
}

// AppendAuthSwitchRequest appends the payload of an auth switch request.
func AppendAuthSwitchRequest(b []byte, r AuthSwitchRequest) []byte {
	b = append(b, EOFHeader)
	if r.OldStyle {
		return b
	}
	b = appendNulString(b, r.Plugin)
	return appendNulString(b, r.Data)
}

// AuthMoreDataHeader starts the server's extra login packets of plugins
// that need more than one round (caching_sha2_password).
const AuthMoreDataHeader = 0x01

// The bytes of the caching_sha2_password exchange.
const (
	// CachingSha2RequestPublicKey is what a client without TLS sends to
	// ask for the server's RSA public key, to encrypt its password with.
	CachingSha2RequestPublicKey = 0x02
	// CachingSha2FastAuthOK (after AuthMoreDataHeader): the scramble
	// matched the cached password hash; an OK packet follows.
	CachingSha2FastAuthOK = 0x03
	// CachingSha2FullAuth (after AuthMoreDataHeader): the server needs the
	// password itself, over TLS in the clear or RSA-encrypted.
	CachingSha2FullAuth = 0x04
)

// The client's packets in caching_sha2_password's full authentication: the
// password in the clear (over TLS), NUL-terminated; or, without TLS, a
// request for the server's RSA public key, then the password encrypted
// with it (see mysql.EncryptPassword), which is opaque bytes.

// AppendClearPassword appends the cleartext password packet.
func AppendClearPassword(b []byte, password string) []byte { return appendNulString(b, password) }

// ParseClearPassword returns the password of a cleartext password packet.
func ParseClearPassword(p []byte) []byte { return bytes.TrimSuffix(p, []byte{0}) }

// DecryptPassword undoes what mysql.EncryptPassword does to the password a
// client sends without TLS: RSA-OAEP (SHA-1) under the server's key of the
// NUL-terminated password XORed with the scramble. The result has no NUL.
func DecryptPassword(key *rsa.PrivateKey, data, scramble []byte) ([]byte, error) {
	plain, err := rsa.DecryptOAEP(sha1.New(), nil, key, data, nil)
	if err != nil {
		return nil, err
	}
	if len(scramble) == 0 {
		return nil, ErrMalformed
	}
	for i := range plain {
		plain[i] ^= scramble[i%len(scramble)]
	}
	return ParseClearPassword(plain), nil
}

// AppendPublicKeyRequest appends a client's request for the public key.
func AppendPublicKeyRequest(b []byte) []byte { return append(b, CachingSha2RequestPublicKey) }

// IsPublicKeyRequest tells a client's request for the public key.
func IsPublicKeyRequest(p []byte) bool { return len(p) == 1 && p[0] == CachingSha2RequestPublicKey }

// IsAuthMoreData tells an AuthMoreData packet among the login packets.
func IsAuthMoreData(p []byte) bool { return len(p) > 0 && p[0] == AuthMoreDataHeader }

// ParseAuthMoreData returns the data of an AuthMoreData packet.
func ParseAuthMoreData(p []byte) ([]byte, error) {
	if !IsAuthMoreData(p) || len(p) < 2 {
		return nil, ErrMalformed
	}
	return p[1:], nil
}

// AppendAuthMoreData appends an AuthMoreData packet's payload.
func AppendAuthMoreData(b, data []byte) []byte {
	return append(append(b, AuthMoreDataHeader), data...)
}

// ChangeUser is a decoded COM_CHANGE_USER.
type ChangeUser struct {
	User       string
	AuthData   []byte
	Schema     string
	Collation  uint8
	AuthPlugin string
}

// ParseChangeUser decodes a COM_CHANGE_USER payload (command byte first);
// caps are the capabilities the client negotiated at login, which decide
// the format. Connection attributes are not decoded.
func ParseChangeUser(p []byte, caps uint32) (*ChangeUser, error) {
	if len(p) < 1 || p[0] != mysql.COM_CHANGE_USER {
		return nil, ErrMalformed
	}
	r := reader{b: p[1:]}
	c := &ChangeUser{}
	c.User = string(r.nulString(false))
	if caps&mysql.CLIENT_SECURE_CONNECTION != 0 {
		c.AuthData = r.bytes(int(r.u8()))
	} else {
		c.AuthData = r.nulString(false)
	}
	c.Schema = string(r.nulString(true))
	if len(r.b) >= 2 {
		c.Collation = uint8(r.u16()) // collation ids the proxy handles fit a byte
	}
	if caps&mysql.CLIENT_PLUGIN_AUTH != 0 && !r.empty() {
		c.AuthPlugin = string(r.nulString(true))
	}
	if r.err != nil {
		return nil, r.err
	}
	return c, nil
}

// AppendChangeUser appends a COM_CHANGE_USER payload for a client that
// negotiated caps.
func AppendChangeUser(b []byte, c *ChangeUser, caps uint32) []byte {
	b = append(b, mysql.COM_CHANGE_USER)
	b = appendNulString(b, c.User)
	if caps&mysql.CLIENT_SECURE_CONNECTION != 0 {
		b = append(b, byte(len(c.AuthData)))
		b = append(b, c.AuthData...)
	} else {
		b = appendNulString(b, c.AuthData)
	}
	b = appendNulString(b, c.Schema)
	b = binary.LittleEndian.AppendUint16(b, uint16(c.Collation))
	if caps&mysql.CLIENT_PLUGIN_AUTH != 0 {
		b = appendNulString(b, c.AuthPlugin)
	}
	return b
}
