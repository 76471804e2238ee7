package fakemysql

import (
	"bufio"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/wire"
)

// scrambleLen is the length of the scramble MariaDB and MySQL send.
const scrambleLen = 20

// newScramble returns 20 random printable ASCII bytes.
func newScramble() []byte {
	b := make([]byte, scrambleLen)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	for i := range b {
		b[i] = '!' + b[i]%('~'-'!'+1)
	}
	return b
}

// handshake runs the connection phase; false: the connection is to close.
func (c *Conn) handshake() bool {
	c.scramble = newScramble()
	caps := uint32(serverCaps)
	if c.s.opt.TLS != nil {
		caps |= mysql.CLIENT_SSL
	}
	c.seq = 0
	c.writePacket(wire.AppendGreeting(nil, &wire.Greeting{
		ServerVersion: c.s.opt.Version,
		ConnectionID:  c.id,
		Capabilities:  caps,
		Collation:     collationUTF8MB4,
		Status:        mysql.SERVER_STATUS_AUTOCOMMIT,
		AuthData:      c.scramble,
		AuthPlugin:    c.s.opt.AuthPlugin,
	}))
	if c.flush() != nil {
		return false
	}
	p, err := c.readPacket()
	if err != nil {
		return false
	}
	h, err := wire.ParseHandshakeResponse(p)
	if err == nil && h.SSLRequest {
		if c.s.opt.TLS == nil {
			err = fmt.Errorf("SSL request without CLIENT_SSL")
		} else {
			// The client may have sent its ClientHello right after the
			// SSLRequest: it can be in c.br already.
			tc := tls.Server(&bufferedConn{Conn: c.nc, r: c.br}, c.s.opt.TLS)
			if tc.Handshake() != nil {
				return false
			}
			c.rw, c.br, c.tls = tc, bufio.NewReaderSize(tc, 16<<10), true
			if p, err = c.readPacket(); err != nil {
				return false
			}
			if h, err = wire.ParseHandshakeResponse(p); err == nil && h.SSLRequest {
				err = fmt.Errorf("second SSL request")
			}
		}
	}
	if err != nil {
		c.writeErr(mysql.NewError(mysql.ER_HANDSHAKE_ERROR, "Bad handshake"))
		c.flush()
		return false
	}
	c.caps = h.Capabilities & caps
	auth := append([]byte(nil), h.AuthData...)
	plugin := h.AuthPlugin
	if h.Capabilities&mysql.CLIENT_PLUGIN_AUTH == 0 || plugin == "" {
		plugin = mysql.AUTH_NATIVE_PASSWORD
	}
	e, err := c.authenticate(h.User, auth, plugin)
	if err != nil {
		return false
	}
	if e == nil && h.Schema != "" && !c.s.hasSchema(h.Schema) {
		e = mysql.NewError(mysql.ER_BAD_DB_ERROR, fmt.Sprintf("Unknown database '%s'", h.Schema))
	}
	if e != nil {
		c.writeErr(e)
		c.flush()
		return false
	}
	c.user, c.login = h.User, h.Schema
	c.resetSession(h.Schema)
	c.writeOK(0, 0, c.status(), "")
	return c.flush() == nil
}

// bufferedConn is a connection whose first bytes were read into a buffer.
type bufferedConn struct {
	net.Conn
	r io.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// accessDenied is MariaDB's ERR 1045.
func (c *Conn) accessDenied(user string, usedPassword bool) *mysql.MyError {
	yes := "NO"
	if usedPassword {
		yes = "YES"
	}
	return mysql.NewError(mysql.ER_ACCESS_DENIED_ERROR,
		fmt.Sprintf("Access denied for user '%s'@'%s' (using password: %s)", user, c.host, yes))
}

// authenticate checks a login (or COM_CHANGE_USER) of user, whose client
// answered resp for plugin; c.seq is the sequence id of the server's next
// packet. It switches the client to the server's plugin if needed and runs
// the plugin's extra rounds. A nil *MyError means success (the OK packet is
// the caller's); an error means the connection failed.
func (c *Conn) authenticate(user string, resp []byte, plugin string) (*mysql.MyError, error) {
	if password, old := c.s.opt.OldPasswords[user]; old {
		return c.authenticateOld(user, password, plugin)
	}
	want := c.s.opt.AuthPlugin
	if plugin != want {
		c.writePacket(wire.AppendAuthSwitchRequest(nil, wire.AuthSwitchRequest{Plugin: want, Data: c.scramble}))
		if err := c.flush(); err != nil {
			return nil, err
		}
		p, err := c.readPacket()
		if err != nil {
			return nil, err
		}
		resp = p
	}
	password, known := c.s.opt.Users[user]
	if !known {
		return c.accessDenied(user, len(resp) > 0), nil
	}
	if password == "" || len(resp) == 0 {
		if password == "" && len(resp) == 0 {
			return nil, nil
		}
		return c.accessDenied(user, len(resp) > 0), nil
	}
	if want == mysql.AUTH_NATIVE_PASSWORD {
		if subtle.ConstantTimeCompare(resp, mysql.CalcNativePassword(c.scramble, []byte(password))) == 1 {
			return nil, nil
		}
		return c.accessDenied(user, true), nil
	}

	// caching_sha2_password: fast authentication when this server already
	// saw a full authentication of this user with this password and the
	// scramble matches, else full authentication.
	key := user + "\x00" + password
	c.s.mu.Lock()
	cached := c.s.sha2Cache[key]
	c.s.mu.Unlock()
	if cached && subtle.ConstantTimeCompare(resp, mysql.CalcCachingSha2Password(c.scramble, []byte(password))) == 1 {
		c.writePacket(wire.AppendAuthMoreData(nil, []byte{wire.CachingSha2FastAuthOK}))
		return nil, nil
	}
	c.writePacket(wire.AppendAuthMoreData(nil, []byte{wire.CachingSha2FullAuth}))
	if err := c.flush(); err != nil {
		return nil, err
	}
	p, err := c.readPacket()
	if err != nil {
		return nil, err
	}
	var clear []byte
	if c.tls {
		clear = wire.ParseClearPassword(p)
	} else {
		if wire.IsPublicKeyRequest(p) {
			c.writePacket(wire.AppendAuthMoreData(nil, c.s.publicKeyPEM()))
			if err := c.flush(); err != nil {
				return nil, err
			}
			if p, err = c.readPacket(); err != nil {
				return nil, err
			}
		}
		// A client that knows the key already sends the password at once.
		clear = c.s.decryptPassword(p, c.scramble)
	}
	if clear == nil || subtle.ConstantTimeCompare(clear, []byte(password)) != 1 {
		return c.accessDenied(user, true), nil
	}
	c.s.mu.Lock()
	c.s.sha2Cache[key] = true
	c.s.mu.Unlock()
	return nil, nil
}

// publicKeyPEM returns the server's RSA public key, made on first use.
func (s *Server) publicKeyPEM() []byte {
	s.keyOnce.Do(func() {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
		if err != nil {
			panic(err)
		}
		s.key = key
		s.keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	})
	return s.keyPEM
}

// decryptPassword undoes what a caching_sha2_password client does without
// TLS (wire.DecryptPassword). nil: not decryptable.
func (s *Server) decryptPassword(p, scramble []byte) []byte {
	s.publicKeyPEM()
	plain, err := wire.DecryptPassword(s.key, p, scramble)
	if err != nil {
		return nil
	}
	return plain
}

// changeUser answers COM_CHANGE_USER: on success the session is reset for
// the new user; on failure (ERR 1045 or 1049) it stays as it was. An error
// means the connection failed.
func (c *Conn) changeUser(p []byte) error {
	cu, err := wire.ParseChangeUser(p, c.caps)
	if err != nil {
		c.writeErr(malformed())
		return nil
	}
	plugin := cu.AuthPlugin
	if c.caps&mysql.CLIENT_PLUGIN_AUTH == 0 || plugin == "" {
		plugin = mysql.AUTH_NATIVE_PASSWORD
	}
	e, err := c.authenticate(cu.User, append([]byte(nil), cu.AuthData...), plugin)
	if err != nil {
		return err
	}
	if e == nil && cu.Schema != "" && !c.s.hasSchema(cu.Schema) {
		e = mysql.NewError(mysql.ER_BAD_DB_ERROR, fmt.Sprintf("Unknown database '%s'", cu.Schema))
	}
	if e != nil {
		c.writeErr(e)
		return nil
	}
	c.user, c.login = cu.User, cu.Schema
	c.resetSession(cu.Schema)
	c.writeOK(0, 0, c.status(), "")
	return nil
}

// authenticateOld checks a login of an account with an old password as
// MariaDB does with @@secure_auth OFF: the client is always asked again,
// and its answer taken up to a NUL: none is no password, 8 bytes the old
// scramble, anything else a broken handshake.
func (c *Conn) authenticateOld(user, password, plugin string) (*mysql.MyError, error) {
	c.writePacket(wire.AppendAuthSwitchRequest(nil, wire.AuthSwitchRequest{Plugin: mysql.AUTH_MYSQL_OLD_PASSWORD,
		Data: c.scramble, OldStyle: plugin == mysql.AUTH_NATIVE_PASSWORD}))
	if err := c.flush(); err != nil {
		return nil, err
	}
	resp, err := c.readPacket()
	if err != nil {
		return nil, err
	}
	if len(resp) == wire.OldPasswordScrambleLen+1 && resp[wire.OldPasswordScrambleLen] == 0 {
		resp = resp[:wire.OldPasswordScrambleLen]
	}
	switch {
	case len(resp) == 0:
		if password == "" {
			return nil, nil
		}
		return c.accessDenied(user, false), nil
	case len(resp) != wire.OldPasswordScrambleLen:
		return mysql.NewError(mysql.ER_HANDSHAKE_ERROR, "Bad handshake"), nil
	case password == "" || !wire.CheckOldPassword(resp, c.scramble, wire.HashOldPassword([]byte(password))):
		return c.accessDenied(user, true), nil
	}
	return nil, nil
}
