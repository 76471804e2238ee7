package proxy

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/backend"
	"switchyard/internal/mysqltest"
	"switchyard/wire"
)

// Accounts with old passwords (users_from_servers) log in as on MariaDB:
// refused with 1275 right after the handshake response while the servers'
// @@secure_auth is ON; with it OFF asked again for the old scramble (the
// one-byte request after a native answer, a full switch after another),
// and the answer checked as the server checks it. The proxy logs in to
// the (fake) servers with the stored hash alone. secure_auth is read
// again at each such login; listed users never cause a read.
func TestOldPasswordLogin(t *testing.T) {
	var secureAuth atomic.Bool
	var reads atomic.Int32
	hash := func(pw string) string {
		h := wire.HashOldPassword([]byte(pw))
		return fmt.Sprintf("%08x%08x", h[0], h[1])
	}
	accounts := func(context.Context) (backend.Accounts, error) {
		reads.Add(1)
		old := mysql.AUTH_MYSQL_OLD_PASSWORD
		return backend.Accounts{List: []backend.Account{
			{User: "legacy", Host: "%", Plugin: old, AuthString: hash("oldpw"), SecureAuth: secureAuth.Load()},
			{User: "legacy_nopw", Host: "%", Plugin: old, SecureAuth: secureAuth.Load()},
			{User: "legacy_bad", Host: "%", Plugin: old, AuthString: "*" + hash("x")[1:], SecureAuth: secureAuth.Load()},
		}}, nil
	}
	h := newHarness(t, harnessConfig{listener: ListenerOptions{Accounts: accounts}})
	login := func(user, pass, plugin string) (*mysqltest.Client, error) {
		c := h.dial(t)
		return c, c.Login(mysqltest.Login{User: user, Pass: pass, Plugin: plugin})
	}
	wantErr := func(what string, err error, code uint16, msg string) {
		t.Helper()
		if c, _, m := mysqltest.ServerError(err); c != code || m != msg {
			t.Fatalf("%s: %v, want %d %q", what, err, code, msg)
		}
	}

	secureAuth.Store(true)
	c, err := login("legacy", "oldpw", "")
	wantErr("secure_auth ON", err, mysql.ER_SERVER_IS_IN_SECURE_AUTH_MODE,
		"Server is running in --secure-auth mode, but 'legacy'@'127.0.0.1' has a password in the old format; please change the password to the new format")
	if c.Switched {
		t.Fatal("secure_auth ON: the client was asked for the old scramble before the refusal")
	}

	secureAuth.Store(false)
	before := reads.Load()
	c, err = login("legacy", "oldpw", "")
	if err != nil || !c.Switch.OldStyle {
		t.Fatalf("native answer, secure_auth OFF: %v, switch %+v (want the one-byte request)", err, c.Switch)
	}
	if n := reads.Load() - before; n != 1 {
		t.Errorf("an old-password login read the accounts %d times, want once", n)
	}
	if got := c.Value("SELECT 1"); got != "1" {
		t.Fatalf("SELECT 1 as legacy: %q", got)
	}
	c, err = login("legacy", "oldpw", mysql.AUTH_CACHING_SHA2_PASSWORD)
	if err != nil || c.Switch.OldStyle || c.Switch.Plugin != mysql.AUTH_MYSQL_OLD_PASSWORD || string(c.Switch.Data) != string(c.Scramble) {
		t.Fatalf("caching_sha2_password answer: %v, switch %+v (want a full one with the greeting's scramble)", err, c.Switch)
	}
	_, err = login("legacy", "wrong", "")
	wantErr("wrong password", err, mysql.ER_ACCESS_DENIED_ERROR, "Access denied for user 'legacy'@'127.0.0.1' (using password: YES)")
	_, err = login("legacy", "", "")
	wantErr("no password", err, mysql.ER_ACCESS_DENIED_ERROR, "Access denied for user 'legacy'@'127.0.0.1' (using password: NO)")
	if _, err := login("legacy_nopw", "", ""); err != nil {
		t.Fatalf("account without a password: %v", err)
	}
	_, err = login("legacy_nopw", "x", "")
	wantErr("a password for an account without one", err, mysql.ER_ACCESS_DENIED_ERROR, "Access denied for user 'legacy_nopw'@'127.0.0.1' (using password: YES)")
	_, err = login("legacy_bad", "x", "")
	wantErr("an account whose hash is not one", err, mysql.ER_ACCESS_DENIED_ERROR, "Access denied for user 'legacy_bad'@'127.0.0.1' (using password: YES)")

	// An answer of another length is a broken handshake, as on MariaDB.
	c = h.dial(t)
	c.ReadGreeting()
	c.Write(wire.AppendHandshakeResponse(nil, &wire.HandshakeResponse{Capabilities: rawCaps, MaxPacketSize: 1 << 24,
		Collation: 45, User: "legacy", AuthData: mysqltest.AuthAnswer(mysql.AUTH_NATIVE_PASSWORD, c.Scramble, "oldpw"),
		AuthPlugin: mysql.AUTH_NATIVE_PASSWORD}))
	if sw, err := wire.ParseAuthSwitchRequest(c.Read()); err != nil || !sw.OldStyle {
		t.Fatalf("want the one-byte request: %+v, %v", sw, err)
	}
	c.Write([]byte("abc"))
	if err := c.AuthResult("", nil); err == nil || err.(*mysql.MyError).Code != mysql.ER_HANDSHAKE_ERROR {
		t.Fatalf("3-byte answer: %v, want 1043", err)
	}

	// COM_CHANGE_USER: the same, on a connection logged in as a listed
	// user, whose own logins never read the accounts.
	before = reads.Load()
	c = h.login(t, mysqltest.Login{User: "app", Pass: "secret"})
	if n := reads.Load() - before; n != 0 {
		t.Errorf("a listed user's login read the accounts %d times", n)
	}
	if err := c.ChangeUser("legacy", "oldpw", "", mysql.AUTH_NATIVE_PASSWORD); err != nil || !c.Switch.OldStyle {
		t.Fatalf("COM_CHANGE_USER to legacy: %v, switch %+v", err, c.Switch)
	}
	if got := c.Value("SELECT 1"); got != "1" {
		t.Fatalf("SELECT 1 after the change: %q", got)
	}
	secureAuth.Store(true)
	err = c.ChangeUser("legacy", "oldpw", "", mysql.AUTH_NATIVE_PASSWORD)
	wantErr("COM_CHANGE_USER, secure_auth ON", err, mysql.ER_SERVER_IS_IN_SECURE_AUTH_MODE,
		"Server is running in --secure-auth mode, but 'legacy'@'127.0.0.1' has a password in the old format; please change the password to the new format")
	if got := c.Value("SELECT 1"); got != "1" {
		t.Fatalf("SELECT 1 after a refused change: %q", got)
	}
}
