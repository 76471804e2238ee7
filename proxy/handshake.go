package proxy

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/backend"
	"switchyard/wire"
)

// The proxy writes its own handshake instead of using go-mysql's server.Conn:
// logging in to the servers as the client's user needs the scramble and the
// client's auth response (to recover SHA1(password) for users configured with
// only a password hash), which go-mysql keeps private. Framing, constants and
// password arithmetic still come from go-mysql.

// serverCaps are the capabilities the proxy offers clients. Each one is either
// passed through to the server unchanged or handled by the proxy itself.
const serverCaps = mysql.CLIENT_LONG_PASSWORD | mysql.CLIENT_FOUND_ROWS | mysql.CLIENT_LONG_FLAG |
	mysql.CLIENT_CONNECT_WITH_DB | mysql.CLIENT_NO_SCHEMA | mysql.CLIENT_ODBC | mysql.CLIENT_LOCAL_FILES |
	mysql.CLIENT_IGNORE_SPACE | mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_INTERACTIVE |
	mysql.CLIENT_IGNORE_SIGPIPE | mysql.CLIENT_TRANSACTIONS | mysql.CLIENT_SECURE_CONNECTION |
	mysql.CLIENT_MULTI_STATEMENTS | mysql.CLIENT_MULTI_RESULTS | mysql.CLIENT_PS_MULTI_RESULTS |
	mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_CONNECT_ATTRS | mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA |
	mysql.CLIENT_SESSION_TRACK | mysql.CLIENT_DEPRECATE_EOF | mysql.CLIENT_COMPRESS

// defaultCollation is utf8mb4_general_ci, announced until the client names its own.
const defaultCollation = 45

// HandshakeResponse is the decoded login packet of a client.
type HandshakeResponse struct {
	Capabilities uint32
	Collation    uint8
	User         string
	AuthData     []byte
	Schema       string
	AuthPlugin   string
	// SSLRequest is true for the short packet that asks to switch to TLS.
	SSLRequest bool
}

// ParseHandshakeResponse decodes a HandshakeResponse41 or SSLRequest packet.
func ParseHandshakeResponse(p []byte) (*HandshakeResponse, error) {
	if len(p) < 32 {
		return nil, errBadHandshake
	}
	r := &HandshakeResponse{}
	r.Capabilities = uint32(p[0]) | uint32(p[1])<<8 | uint32(p[2])<<16 | uint32(p[3])<<24
	if r.Capabilities&mysql.CLIENT_PROTOCOL_41 == 0 {
		return nil, wire.Errorf(mysql.ER_NOT_SUPPORTED_AUTH_MODE, "Client does not support the 4.1 protocol; upgrade the MySQL client")
	}
	r.Collation = p[8]
	if len(p) == 32 {
		r.SSLRequest = true
		return r, nil
	}
	rest := p[32:]
	i := bytes.IndexByte(rest, 0)
	if i < 0 {
		return nil, errBadHandshake
	}
	r.User = string(rest[:i])
	rest = rest[i+1:]
	switch {
	case r.Capabilities&mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0:
		s, n, err := wire.LenencString(rest)
		if err != nil {
			return nil, errBadHandshake
		}
		r.AuthData, rest = s, rest[n:]
	case r.Capabilities&mysql.CLIENT_SECURE_CONNECTION != 0:
		if len(rest) < 1 || int(rest[0]) > len(rest)-1 {
			return nil, errBadHandshake
		}
		n := int(rest[0])
		r.AuthData, rest = rest[1:1+n], rest[1+n:]
	default:
		i := bytes.IndexByte(rest, 0)
		if i < 0 {
			return nil, errBadHandshake
		}
		r.AuthData, rest = rest[:i], rest[i+1:]
	}
	if r.Capabilities&mysql.CLIENT_CONNECT_WITH_DB != 0 && len(rest) > 0 {
		i := bytes.IndexByte(rest, 0)
		if i < 0 {
			return nil, errBadHandshake
		}
		r.Schema, rest = string(rest[:i]), rest[i+1:]
	}
	if r.Capabilities&mysql.CLIENT_PLUGIN_AUTH != 0 && len(rest) > 0 {
		i := bytes.IndexByte(rest, 0)
		if i < 0 {
			i = len(rest) // some clients omit the final NUL
		}
		r.AuthPlugin = string(rest[:i])
	}
	// Connection attributes follow; the proxy does not use them.
	return r, nil
}

// prefixConn reads prefix before the connection's own bytes.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

var errBadHandshake = mysql.NewDefaultError(mysql.ER_HANDSHAKE_ERROR)

// appendGreeting builds the initial handshake packet payload.
func appendGreeting(b []byte, version string, connID uint32, salt []byte, caps uint32) []byte {
	b = append(b, 10)
	b = append(b, version...)
	b = append(b, 0)
	b = append(b, byte(connID), byte(connID>>8), byte(connID>>16), byte(connID>>24))
	b = append(b, salt[:8]...)
	b = append(b, 0)
	b = append(b, byte(caps), byte(caps>>8), defaultCollation)
	status := mysql.SERVER_STATUS_AUTOCOMMIT
	b = append(b, byte(status), byte(status>>8))
	b = append(b, byte(caps>>16), byte(caps>>24), byte(len(salt)+1))
	b = append(b, make([]byte, 10)...)
	b = append(b, salt[8:]...)
	b = append(b, 0)
	b = append(b, mysql.AUTH_NATIVE_PASSWORD...)
	return append(b, 0)
}

// newSalt returns a 20-byte scramble of printable bytes without NULs, since
// some clients treat the scramble as a C string.
func newSalt() []byte {
	salt := make([]byte, 20)
	_, _ = rand.Read(salt)
	for i := range salt {
		salt[i] = 33 + salt[i]%94
	}
	return salt
}

// login runs the connection phase: greeting, optional TLS upgrade, user
// lookup and authentication. On success the client has been sent nothing yet
// beyond the auth exchange; the caller sends OK after the server connection
// is up, so that server-side errors (unknown schema) reach the client at
// connect time like with a real server.
func (s *session) login() error {
	salt := newSalt()
	s.salt = salt
	version := s.srv.serverVersion()
	greeting := appendGreeting(make([]byte, 4, 128), version, s.id32(), salt, s.srv.offeredCaps())
	if err := s.writePacket(greeting, 0); err != nil {
		return err
	}
	pkt, seq, err := wire.ReadPacket(s.br, nil, 1<<16)
	if err != nil {
		return err
	}
	resp, err := ParseHandshakeResponse(pkt)
	if err != nil {
		return s.fail(err, seq+1)
	}
	if resp.SSLRequest {
		if s.srv.tls == nil {
			return s.fail(wire.Errorf(mysql.ER_HANDSHAKE_ERROR, "TLS was requested but switchyard has no tls: section configured"), seq+1)
		}
		// The client may have sent its TLS hello right behind the request,
		// into our read buffer: TLS must start with those bytes.
		early, _ := s.br.Peek(s.br.Buffered())
		tc := tls.Server(&prefixConn{Conn: s.conn, prefix: append([]byte(nil), early...)}, s.srv.tls)
		if err := tc.Handshake(); err != nil {
			return fmt.Errorf("TLS handshake: %w", err)
		}
		s.conn = tc
		s.out = tc
		s.br.Reset(tc)
		s.tls = true
		pkt, seq, err = wire.ReadPacket(s.br, nil, 1<<16)
		if err != nil {
			return err
		}
		if resp, err = ParseHandshakeResponse(pkt); err != nil || resp.SSLRequest {
			return s.fail(errBadHandshake, seq+1)
		}
	}
	s.user = resp.User
	s.log = nil // rebuilt with the user name
	u := s.srv.users().lookup(resp.User)
	if u != nil && !s.tls && (s.srv.requireTLS || u.RequireTLS) {
		return s.fail(wire.Errorf(3159, "Connections using insecure transport are prohibited: user %q must connect with TLS", resp.User), seq+1)
	}
	creds, seq, err := s.authenticate(u, resp.AuthPlugin, resp.AuthData, seq)
	if err != nil {
		return s.fail(err, seq+1)
	}
	if !s.srv.takeUserSlot(u) {
		return s.fail(mysql.NewDefaultError(mysql.ER_TOO_MANY_USER_CONNECTIONS, u.Name), seq+1)
	}
	s.countedUser = u
	s.creds = creds
	s.caps = resp.Capabilities & s.srv.offeredCaps()
	s.collation = resp.Collation
	s.schema = resp.Schema
	if s.schema == "" && u.DefaultSchema != "" {
		s.schema = u.DefaultSchema
	}
	s.userCfg = u
	s.seq = seq + 1
	return nil
}

// fail sends err to the client during login and returns it.
func (s *session) fail(err error, seq uint8) error {
	var me *mysql.MyError
	if !errors.As(err, &me) {
		me = wire.Errorf(mysql.ER_HANDSHAKE_ERROR, "%v", err)
	}
	_ = s.writePacket(wire.AppendErr(make([]byte, 4, 64+len(me.Message)), me), seq)
	return &loginError{me}
}

// loginError marks an error the client has already been told about.
type loginError struct{ *mysql.MyError }

func (s *session) accessDenied(user string, usedPassword bool) *mysql.MyError {
	yes := "NO"
	if usedPassword {
		yes = "YES"
	}
	host, _, _ := net.SplitHostPort(s.clientAddr)
	return mysql.NewDefaultError(mysql.ER_ACCESS_DENIED_ERROR, user, host, yes)
}

// authenticate checks the client's proof of the password, switching the
// client to another plugin when needed, and returns what the proxy needs to
// log in to servers as that user. seq is the sequence id of the last packet
// read; the returned one is the id of the last packet exchanged.
func (s *session) authenticate(u *User, clientPlugin string, authData []byte, seq uint8) (backend.Credentials, uint8, error) {
	creds := backend.Credentials{}
	if u == nil {
		return creds, seq, s.accessDenied(s.user, len(authData) > 0)
	}
	creds.User = u.Name
	creds.HasPassword = u.hasPassword()
	want := u.AuthPlugin
	if want == "" {
		want = mysql.AUTH_NATIVE_PASSWORD
	}
	// A client that already answered for a plugin we support keeps it, as a
	// server would let it; a hash-only user cannot be checked by a
	// caching_sha2_password fast-path answer, so it is moved to native.
	plugin := clientPlugin
	if plugin == "" {
		plugin = mysql.AUTH_NATIVE_PASSWORD
	}
	switch {
	case plugin == want:
	case plugin == mysql.AUTH_CACHING_SHA2_PASSWORD && u.Password != "":
	case plugin == mysql.AUTH_NATIVE_PASSWORD && want == mysql.AUTH_CACHING_SHA2_PASSWORD:
		plugin = want
		seq++
		data, nseq, err := s.authSwitch(plugin, seq)
		if err != nil {
			return creds, seq, err
		}
		authData, seq = data, nseq
	default:
		plugin = want
		if plugin == mysql.AUTH_CACHING_SHA2_PASSWORD && u.Password == "" {
			plugin = mysql.AUTH_NATIVE_PASSWORD
		}
		seq++
		data, nseq, err := s.authSwitch(plugin, seq)
		if err != nil {
			return creds, seq, err
		}
		authData, seq = data, nseq
	}
	empty := len(authData) == 0 || (len(authData) == 1 && authData[0] == 0)
	if empty {
		if u.hasPassword() {
			return creds, seq, s.accessDenied(u.Name, false)
		}
		return creds, seq, nil
	}
	if !u.hasPassword() {
		return creds, seq, s.accessDenied(u.Name, true)
	}
	switch plugin {
	case mysql.AUTH_NATIVE_PASSWORD:
		stage1, ok := checkNative(authData, s.salt, u.stage2)
		if !ok {
			return creds, seq, s.accessDenied(u.Name, true)
		}
		creds.Stage1 = stage1
		creds.Plain = u.Password
		return creds, seq, nil
	case mysql.AUTH_CACHING_SHA2_PASSWORD:
		return s.cachingSha2(u, authData, seq)
	}
	return creds, seq, s.accessDenied(u.Name, true)
}

// checkNative verifies a mysql_native_password answer against SHA1(SHA1(pw))
// and returns SHA1(pw), which the answer reveals to whoever knows the hash.
func checkNative(answer, salt, stage2 []byte) ([]byte, bool) {
	if len(answer) != sha1.Size || len(stage2) != sha1.Size {
		return nil, false
	}
	h := sha1.New()
	h.Write(salt)
	h.Write(stage2)
	stage1 := h.Sum(nil)
	for i := range stage1 {
		stage1[i] ^= answer[i]
	}
	got := sha1.Sum(stage1)
	return stage1, subtle.ConstantTimeCompare(got[:], stage2) == 1
}

// authSwitch asks the client to answer again for plugin with our scramble.
func (s *session) authSwitch(plugin string, seq uint8) ([]byte, uint8, error) {
	p := make([]byte, 4, 64)
	p = append(p, wire.EOFHeader)
	p = append(p, plugin...)
	p = append(p, 0)
	p = append(p, s.salt...)
	p = append(p, 0)
	if err := s.writePacket(p, seq); err != nil {
		return nil, seq, err
	}
	data, rseq, err := wire.ReadPacket(s.br, nil, 1<<16)
	return data, rseq, err
}

// cachingSha2 runs caching_sha2_password as MySQL does: a fast answer is
// accepted only when this user has completed a full login (over TLS, or with
// the RSA key) since the proxy started or the password changed; otherwise
// the client is asked for the password itself.
func (s *session) cachingSha2(u *User, answer []byte, seq uint8) (backend.Credentials, uint8, error) {
	creds := backend.Credentials{User: u.Name, HasPassword: true}
	if e, ok := s.srv.sha2Cache.get(u); ok && checkSha2Fast(e.sha2, s.salt, answer) {
		seq++
		if err := s.writePacket([]byte{0, 0, 0, 0, 0x01, 0x03}, seq); err != nil {
			return creds, seq, err
		}
		creds.Plain, creds.Stage1 = e.plain, e.stage1
		return creds, seq, nil
	}
	seq++
	if err := s.writePacket([]byte{0, 0, 0, 0, 0x01, 0x04}, seq); err != nil {
		return creds, seq, err
	}
	data, seq, err := wire.ReadPacket(s.br, nil, 1<<16)
	if err != nil {
		return creds, seq, err
	}
	var plain []byte
	if s.tls {
		plain = bytes.TrimSuffix(data, []byte{0})
	} else {
		key, err := s.srv.rsaKey()
		if err != nil {
			return creds, seq, err
		}
		if len(data) == 1 && data[0] == 0x02 {
			pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
			if err != nil {
				return creds, seq, err
			}
			p := append([]byte{0, 0, 0, 0, 0x01}, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})...)
			seq++
			if err := s.writePacket(p, seq); err != nil {
				return creds, seq, err
			}
			if data, seq, err = wire.ReadPacket(s.br, nil, 1<<16); err != nil {
				return creds, seq, err
			}
		}
		dec, err := rsa.DecryptOAEP(sha1.New(), rand.Reader, key, data, nil)
		if err != nil {
			return creds, seq, s.accessDenied(u.Name, true)
		}
		for i := range dec {
			dec[i] ^= s.salt[i%len(s.salt)]
		}
		plain = bytes.TrimSuffix(dec, []byte{0})
	}
	if !u.matchesPlain(plain) {
		return creds, seq, s.accessDenied(u.Name, true)
	}
	st1 := sha1.Sum(plain)
	creds.Plain, creds.Stage1 = string(plain), st1[:]
	s.srv.sha2Cache.put(u, creds.Plain, creds.Stage1)
	return creds, seq, nil
}

// checkSha2Fast verifies XOR(SHA256(pw), SHA256(SHA256(SHA256(pw)), salt))
// against the cached SHA256(SHA256(pw)).
func checkSha2Fast(sha2, salt, answer []byte) bool {
	if len(answer) != sha256.Size {
		return false
	}
	h := sha256.New()
	h.Write(sha2)
	h.Write(salt)
	m := h.Sum(nil)
	for i := range m {
		m[i] ^= answer[i]
	}
	got := sha256.Sum256(m)
	return subtle.ConstantTimeCompare(got[:], sha2) == 1
}
