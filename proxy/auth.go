package proxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/backend"
	"switchyard/wire"
)

// The connection phase towards clients. The proxy writes its own instead of
// using go-mysql's server.Conn: logging in to the servers as the client's
// user needs the scramble and the client's auth response (to recover
// SHA1(password) for users configured with only a password hash), which
// go-mysql keeps private.

// serverCaps are the capabilities the proxy offers clients. Each one is
// either passed through to the server unchanged or handled by the proxy.
const serverCaps = mysql.CLIENT_LONG_PASSWORD | mysql.CLIENT_FOUND_ROWS | mysql.CLIENT_LONG_FLAG |
	mysql.CLIENT_CONNECT_WITH_DB | mysql.CLIENT_NO_SCHEMA | mysql.CLIENT_ODBC | mysql.CLIENT_LOCAL_FILES |
	mysql.CLIENT_IGNORE_SPACE | mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_INTERACTIVE |
	mysql.CLIENT_IGNORE_SIGPIPE | mysql.CLIENT_TRANSACTIONS | mysql.CLIENT_SECURE_CONNECTION |
	mysql.CLIENT_MULTI_STATEMENTS | mysql.CLIENT_MULTI_RESULTS | mysql.CLIENT_PS_MULTI_RESULTS |
	mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_CONNECT_ATTRS | mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA |
	mysql.CLIENT_SESSION_TRACK | mysql.CLIENT_DEPRECATE_EOF | mysql.CLIENT_COMPRESS

// defaultCollation is utf8mb4_general_ci, announced until the client names its own.
const defaultCollation = 45

// maxLoginPacket bounds the packets of the connection phase.
const maxLoginPacket = 1 << 16

var errBadHandshake = mysql.NewDefaultError(mysql.ER_HANDSHAKE_ERROR)

// loginError marks an error the client has already been told about.
type loginError struct{ *mysql.MyError }

// offeredExtCaps are the MariaDB extended capabilities the proxy offers:
// each is passed through to the server, and the pool keeps sessions with
// and without them apart.
const offeredExtCaps = wire.MariaDBExtendedMetadata

// greetingCaps are the capabilities the greeting announces for a server of
// version. In front of MariaDB the proxy announces itself as MariaDB does,
// without CLIENT_LONG_PASSWORD (MariaDB's CLIENT_MYSQL) and with extended
// capabilities, so MariaDB clients ask for extended metadata (a JSON
// column's format=json) as they would from the server.
func (ln *Listener) greetingCaps(version string) (caps, ext uint32) {
	caps = ln.offeredCaps()
	if strings.Contains(version, "MariaDB") {
		return caps &^ mysql.CLIENT_LONG_PASSWORD, offeredExtCaps
	}
	return caps, 0
}

func (ln *Listener) offeredCaps() uint32 {
	if ln.opt.TLS != nil {
		return serverCaps | mysql.CLIENT_SSL
	}
	return serverCaps
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

// readPacket reads a packet of the connection phase, which must carry the
// next sequence id.
func (c *ClientConn) readPacket() ([]byte, error) {
	p, next, err := wire.ReadPacket(c.br, nil, maxLoginPacket, c.seq)
	c.seq = next
	return p, err
}

// authenticateLogin runs the connection phase: greeting, optional TLS
// upgrade, user lookup and authentication. On success the client has been
// sent nothing yet beyond the auth exchange: the listener sends OK once the
// handler has opened the session, so that server-side errors (unknown
// schema) reach the client at connect time, as with a real server.
func (c *ClientConn) authenticateLogin() error {
	ln := c.ln
	c.salt = newSalt()
	version := ln.opt.Version()
	caps, ext := ln.greetingCaps(version)
	g := &wire.Greeting{ServerVersion: version, ConnectionID: c.id, Capabilities: caps, ExtCapabilities: ext,
		Collation: defaultCollation, Status: mysql.SERVER_STATUS_AUTOCOMMIT, AuthData: c.salt, AuthPlugin: mysql.AUTH_NATIVE_PASSWORD}
	if err := c.WritePacket(wire.AppendGreeting(make([]byte, wire.HeaderSize, 128), g)); err != nil {
		return err
	}
	if err := c.refuseProxyHeader(); err != nil {
		return err
	}
	pkt, err := c.readPacket()
	if err != nil {
		return err
	}
	resp, err := wire.ParseHandshakeResponse(pkt)
	if err != nil {
		return c.fail(handshakeError(err))
	}
	if resp.SSLRequest {
		if ln.opt.TLS == nil {
			return c.fail(wire.Errorf(mysql.ER_HANDSHAKE_ERROR, "TLS was requested but switchyard has no tls: section configured"))
		}
		// The client may have sent its TLS hello right behind the request,
		// into our read buffer: TLS must start with those bytes.
		early, _ := c.br.Peek(c.br.Buffered())
		tc := tls.Server(&prefixConn{Conn: c.nc, prefix: append([]byte(nil), early...)}, ln.opt.TLS)
		if err := tc.Handshake(); err != nil {
			return fmt.Errorf("TLS handshake: %w", err)
		}
		c.nc, c.out, c.tls = tc, tc, true
		st := tc.ConnectionState()
		c.tlsVersion, c.tlsCipher = st.Version, st.CipherSuite
		c.br.Reset(tc)
		if pkt, err = c.readPacket(); err != nil {
			return err
		}
		if resp, err = wire.ParseHandshakeResponse(pkt); err != nil || resp.SSLRequest {
			return c.fail(errBadHandshake)
		}
	}
	c.setUserName(resp.User)
	u, creds, err := c.logIn(resp.User, resp.AuthPlugin, resp.AuthData)
	if err != nil {
		return c.fail(err)
	}
	if !ln.takeUserSlot(u) {
		return c.fail(mysql.NewDefaultError(mysql.ER_TOO_MANY_USER_CONNECTIONS, u.Name))
	}
	c.counted = u
	c.caps = resp.Capabilities & ln.offeredCaps()
	c.extCaps = resp.ExtCapabilities & ext
	l := Login{User: u, Creds: creds, Schema: resp.Schema, Collation: resp.Collation}
	if l.Schema == "" {
		l.Schema = u.DefaultSchema
	}
	c.setLogin(l)
	return nil
}

func handshakeError(err error) error {
	if errors.Is(err, wire.ErrNoProtocol41) {
		return wire.Errorf(mysql.ER_NOT_SUPPORTED_AUTH_MODE, "Client does not support the 4.1 protocol; upgrade the MySQL client")
	}
	return errBadHandshake
}

// checkTLS refuses a plain connection for an account that needs TLS.
func (c *ClientConn) checkTLS(name string, u *User) error {
	if u != nil && !c.tls && (c.ln.lim().RequireTLS || u.RequireTLS) {
		return wire.Errorf(3159, "Connections using insecure transport are prohibited: user %q must connect with TLS", name)
	}
	return nil
}

// fail sends err to the client during login and returns it.
func (c *ClientConn) fail(err error) error {
	var me *mysql.MyError
	if !errors.As(err, &me) {
		me = wire.Errorf(mysql.ER_HANDSHAKE_ERROR, "%v", err)
	}
	_ = c.WriteError(me)
	return &loginError{me}
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

func (c *ClientConn) accessDenied(user string, usedPassword bool) *mysql.MyError {
	yes := "NO"
	if usedPassword {
		yes = "YES"
	}
	return mysql.NewDefaultError(mysql.ER_ACCESS_DENIED_ERROR, user, c.hostInErrors(), yes)
}

// secureAuthRefusal is what MariaDB answers a login to an account with an
// old password while @@secure_auth is ON, before asking for the old
// scramble.
func (c *ClientConn) secureAuthRefusal(user string) *mysql.MyError {
	return mysql.NewDefaultError(mysql.ER_SERVER_IS_IN_SECURE_AUTH_MODE, user, c.hostInErrors())
}

// hostInErrors names the client as the servers do in their login errors:
// its address with skip_name_resolve (the usual setting for servers
// behind a proxy), else 'localhost' for a loopback client and the address
// for others (the proxy does no reverse lookups).
func (c *ClientConn) hostInErrors() string {
	if rn := c.ln.opt.ResolvesNames; rn != nil && rn() {
		return clientHost(c.addr)
	}
	host, _, err := net.SplitHostPort(c.addr)
	if err != nil {
		host = c.addr
	}
	return host
}

// clientHost is the host name MariaDB gives a client at addr in account
// matching: a loopback address is 'localhost', which
// MariaDB assumes without a DNS lookup; any other is its IP address (as
// with skip-name-resolve: the proxy does no reverse lookups).
func clientHost(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return "localhost"
	}
	return host
}

// logIn finds the account a login (or a change of user) names, checks
// the client's TLS and proof of the password for it, and returns the
// account with what the proxy needs to log in to servers as that user.
//
// For the servers' accounts (users_from_servers) the client's answer is
// checked against each account of that name its address may use (a
// loopback client may be user@localhost or user@127.0.0.1, depending on
// the server's name resolution, which the proxy does not know), then
// against a fresh read of the accounts: the password may have changed on
// the servers since the last read. The server's own login check follows
// in any case, so this never lets in a client the server would refuse.
//
// A server account that has had max_password_errors wrong passwords in a
// row is refused before its password is looked at, as MariaDB does; a
// wrong password counts against the account the server would take (the
// first tried), a good one ends the run of the account it logged in as.
func (c *ClientConn) logIn(name, clientPlugin string, authData []byte) (*User, backend.Credentials, error) {
	ctx := c.ln.ctx
	asked := time.Now()
	u := c.ln.users().lookup(name)
	var more []*User
	if u == nil && c.ln.accounts != nil {
		more = c.ln.accounts.find(ctx, name, c.addr, time.Time{})
		if len(more) == 0 || more[0].oldPassword() {
			// An unknown name may have been created a moment ago. An
			// old password: the servers decide at each login whether they
			// take it (@@secure_auth), and so does the proxy, from a
			// read made for it. Legacy accounts only pay for that.
			more = c.ln.accounts.find(ctx, name, c.addr, asked)
		}
		if len(more) > 0 {
			u, more = more[0], more[1:]
		}
	}
	if c.ln.accounts.blocked(u) {
		return nil, backend.Credentials{}, errUserBlocked()
	}
	if err := c.checkTLS(name, u); err != nil {
		return nil, backend.Credentials{}, err
	}
	if u != nil && u.oldRefused {
		return nil, backend.Credentials{}, c.secureAuthRefusal(name)
	}
	creds, last, err := c.authenticate(u, name, clientPlugin, authData)
	logged, creds, err := c.retryServerAccounts(ctx, u, more, name, asked, creds, last, err)
	var me *mysql.MyError
	switch {
	case err == nil:
		c.ln.accounts.passwordAccepted(logged)
	case errors.As(err, &me) && me.Code == mysql.ER_ACCESS_DENIED_ERROR && !emptyAnswer(last.data):
		// As MariaDB, only a password counts: a login without one is
		// refused without counting.
		c.ln.accounts.passwordRefused(u)
	}
	return logged, creds, err
}

// errUserBlocked is MariaDB's ER_USER_IS_BLOCKED, word for word.
func errUserBlocked() *mysql.MyError {
	return wire.Errorf(erUserIsBlocked, "User is blocked because of too many credential errors; unblock with 'ALTER USER / FLUSH PRIVILEGES'")
}

// erUserIsBlocked is MariaDB's error number (10.4 and later), SQLSTATE HY000.
const erUserIsBlocked = 4150

// emptyAnswer reports whether a client's auth answer carries no password.
func emptyAnswer(data []byte) bool { return len(data) == 0 || len(data) == 1 && data[0] == 0 }

// retryServerAccounts follows a refused login of u, one of the servers'
// accounts: the client's answer is checked against the user's other
// accounts its address may use (more), then against a fresh read of the
// accounts. It returns the account that took the login, or u and the
// first refusal.
func (c *ClientConn) retryServerAccounts(ctx context.Context, u *User, more []*User, name string, asked time.Time,
	creds backend.Credentials, last authAnswer, err error) (*User, backend.Credentials, error) {
	var me *mysql.MyError
	if err == nil || u == nil || !u.fromServer || !errors.As(err, &me) || me.Code != mysql.ER_ACCESS_DENIED_ERROR ||
		last.plugin != mysql.AUTH_NATIVE_PASSWORD && last.plugin != mysql.AUTH_MYSQL_OLD_PASSWORD {
		return u, creds, err
	}
	tried := map[*User]bool{u: true}
	try := func(cands []*User) (*User, backend.Credentials, bool) {
		for _, cand := range cands {
			if tried[cand] || cand.oldRefused || c.ln.accounts.blocked(cand) {
				// A blocked account takes no login, whatever the password:
				// taking it here would also end its block.
				continue
			}
			tried[cand] = true
			if cr, err := c.verify(cand, last.plugin, last.data); err == nil {
				return cand, cr, true
			}
		}
		return nil, backend.Credentials{}, false
	}
	if ok, cr, found := try(more); found {
		return ok, cr, nil
	}
	if ok, cr, found := try(c.ln.accounts.find(ctx, name, c.addr, asked)); found {
		return ok, cr, nil
	}
	return u, creds, err
}

// authAnswer is the client's final answer in an authentication, after any
// auth switch: its plugin and data.
type authAnswer struct {
	plugin string
	data   []byte
}

// authenticate checks the client's proof of the password for account u
// (nil: unknown user name), switching the client to another plugin when
// needed, and returns what the proxy needs to log in to servers as that
// user, and the client's final answer. The packets exchanged continue the
// current sequence.
func (c *ClientConn) authenticate(u *User, name, clientPlugin string, authData []byte) (backend.Credentials, authAnswer, error) {
	if u == nil {
		return backend.Credentials{}, authAnswer{clientPlugin, authData}, c.accessDenied(name, len(authData) > 0)
	}
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
	if want == mysql.AUTH_MYSQL_OLD_PASSWORD {
		// As MariaDB: the client is always asked again, a client that
		// answered for native password with the pre-4.1 request, which
		// keeps the scramble it has; both carry our scramble.
		data, err := c.switchAuth(wire.AuthSwitchRequest{Plugin: want, Data: c.salt, OldStyle: plugin == mysql.AUTH_NATIVE_PASSWORD})
		if err != nil {
			return backend.Credentials{}, authAnswer{}, err
		}
		creds, err := c.verify(u, want, data)
		return creds, authAnswer{want, data}, err
	}
	switch {
	case plugin == want:
	case plugin == mysql.AUTH_CACHING_SHA2_PASSWORD && u.Password != "":
	default:
		plugin = want
		if plugin == mysql.AUTH_CACHING_SHA2_PASSWORD && u.Password == "" {
			plugin = mysql.AUTH_NATIVE_PASSWORD
		}
		data, err := c.authSwitch(plugin)
		if err != nil {
			return backend.Credentials{}, authAnswer{}, err
		}
		authData = data
	}
	creds, err := c.verify(u, plugin, authData)
	return creds, authAnswer{plugin, authData}, err
}

// verify checks authData, the client's answer for plugin, against account
// u.
func (c *ClientConn) verify(u *User, plugin string, authData []byte) (backend.Credentials, error) {
	creds := backend.Credentials{User: u.Name, HasPassword: u.hasPassword()}
	if u.oldPassword() || plugin == mysql.AUTH_MYSQL_OLD_PASSWORD {
		return c.verifyOld(u, plugin, authData)
	}
	if emptyAnswer(authData) {
		if u.hasPassword() {
			return creds, c.accessDenied(u.Name, false)
		}
		return creds, nil
	}
	if !u.hasPassword() {
		return creds, c.accessDenied(u.Name, true)
	}
	switch plugin {
	case mysql.AUTH_NATIVE_PASSWORD:
		stage1, ok := checkNative(authData, c.salt, u.stage2)
		if !ok {
			return creds, c.accessDenied(u.Name, true)
		}
		creds.Stage1 = stage1
		creds.Plain = u.Password
		return creds, nil
	case mysql.AUTH_CACHING_SHA2_PASSWORD:
		return c.cachingSha2(u, authData)
	}
	return creds, c.accessDenied(u.Name, true)
}

// verifyOld checks a mysql_old_password answer as MariaDB does: 9 bytes
// are taken up to their first NUL; then none is no password, 8 are the
// old scramble, and any other length is a broken handshake. The account's
// hash is all the proxy needs to log in to the servers as it.
func (c *ClientConn) verifyOld(u *User, plugin string, authData []byte) (backend.Credentials, error) {
	creds := backend.Credentials{User: u.Name, HasPassword: u.hasPassword()}
	if !u.oldPassword() || plugin != mysql.AUTH_MYSQL_OLD_PASSWORD {
		// An answer for another account of the name (logIn's retries),
		// for the other scheme.
		return creds, c.accessDenied(u.Name, len(authData) > 0)
	}
	answer := authData
	if len(answer) == wire.OldPasswordScrambleLen+1 {
		if i := bytes.IndexByte(answer, 0); i >= 0 {
			answer = answer[:i]
		}
	}
	switch {
	case len(answer) == 0:
		if u.hasPassword() {
			return creds, c.accessDenied(u.Name, false)
		}
		return creds, nil
	case len(answer) != wire.OldPasswordScrambleLen:
		return creds, errBadHandshake
	case !u.hasPassword() || !wire.CheckOldPassword(answer, c.salt, u.oldHash):
		return creds, c.accessDenied(u.Name, true)
	}
	creds.OldHash = &u.oldHash
	return creds, nil
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
func (c *ClientConn) authSwitch(plugin string) ([]byte, error) {
	return c.switchAuth(wire.AuthSwitchRequest{Plugin: plugin, Data: c.salt})
}

// switchAuth sends an auth switch request and reads the client's answer.
func (c *ClientConn) switchAuth(r wire.AuthSwitchRequest) ([]byte, error) {
	p := wire.AppendAuthSwitchRequest(make([]byte, wire.HeaderSize, 64), r)
	if err := c.WritePacket(p); err != nil {
		return nil, err
	}
	return c.readPacket()
}

// writeAuthMoreData sends an AuthMoreData packet.
func (c *ClientConn) writeAuthMoreData(data ...byte) error {
	return c.WritePacket(wire.AppendAuthMoreData(make([]byte, wire.HeaderSize, wire.HeaderSize+1+len(data)), data))
}

// cachingSha2 runs caching_sha2_password as MySQL does: a fast answer is
// accepted only when this user has completed a full login (over TLS, or with
// the RSA key) since the proxy started or the password changed; otherwise
// the client is asked for the password itself.
func (c *ClientConn) cachingSha2(u *User, answer []byte) (backend.Credentials, error) {
	creds := backend.Credentials{User: u.Name, HasPassword: true}
	if e, ok := c.ln.sha2Cache.get(u); ok && checkSha2Fast(e.sha2, c.salt, answer) {
		if err := c.writeAuthMoreData(wire.CachingSha2FastAuthOK); err != nil {
			return creds, err
		}
		creds.Plain, creds.Stage1 = e.plain, e.stage1
		return creds, nil
	}
	if err := c.writeAuthMoreData(wire.CachingSha2FullAuth); err != nil {
		return creds, err
	}
	data, err := c.readPacket()
	if err != nil {
		return creds, err
	}
	var plain []byte
	if c.tls {
		plain = wire.ParseClearPassword(data)
	} else {
		key, err := c.ln.key.get()
		if err != nil {
			return creds, err
		}
		if wire.IsPublicKeyRequest(data) {
			pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
			if err != nil {
				return creds, err
			}
			if err := c.writeAuthMoreData(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})...); err != nil {
				return creds, err
			}
			if data, err = c.readPacket(); err != nil {
				return creds, err
			}
		}
		if plain, err = wire.DecryptPassword(key, data, c.salt); err != nil {
			return creds, c.accessDenied(u.Name, true)
		}
	}
	if !u.matchesPlain(plain) {
		return creds, c.accessDenied(u.Name, true)
	}
	st1 := sha1.Sum(plain)
	creds.Plain, creds.Stage1 = string(plain), st1[:]
	c.ln.sha2Cache.put(u, creds.Plain, creds.Stage1)
	return creds, nil
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

// changeUser re-runs authentication for COM_CHANGE_USER: the account is
// looked up, TLS required where configured, the client's answer checked
// against the login's scramble (with an auth switch when needed), and its
// connection counted against the new account. The connection stays logged
// in as before on any error; only a broken exchange with the client is
// returned wrapped by EndSession.
func (c *ClientConn) changeUser(cu *wire.ChangeUser) (Login, error) {
	u, creds, err := c.logIn(cu.User, cu.AuthPlugin, cu.AuthData)
	if err != nil {
		var me *mysql.MyError
		if !errors.As(err, &me) {
			return Login{}, EndSession(err)
		}
		c.Logger().Info("change user refused", "to_user", cu.User, "code", me.Code)
		return Login{}, me
	}
	if u != c.counted {
		if !c.ln.takeUserSlot(u) {
			return Login{}, mysql.NewDefaultError(mysql.ER_TOO_MANY_USER_CONNECTIONS, u.Name)
		}
	}
	l := Login{User: u, Creds: creds, Schema: cu.Schema, Collation: c.login.Collation}
	if l.Schema == "" {
		l.Schema = u.DefaultSchema
	}
	if cu.Collation != 0 {
		l.Collation = cu.Collation
	}
	return l, nil
}

// commitLogin makes l the connection's login after a change of user that
// worked; its previous account's slot is released. abandonLogin gives back
// the slot changeUser took for l when the change failed later.
func (c *ClientConn) commitLogin(l Login) {
	if l.User != c.counted {
		if c.counted != nil {
			c.ln.releaseUserSlot(c.counted)
		}
		c.counted = l.User
	}
	c.setLogin(l)
	c.setUserName(l.User.Name)
}

func (c *ClientConn) abandonLogin(l Login) {
	if l.User != c.counted {
		c.ln.releaseUserSlot(l.User)
	}
}
