package integration

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/integration/harness"
	"switchyard/internal/mysqltest"
)

// blockedMessage is MariaDB 10.11's text of ER_USER_IS_BLOCKED (4150).
const blockedMessage = "User is blocked because of too many credential errors; unblock with 'ALTER USER / FLUSH PRIVILEGES'"

// TestMaxPasswordErrors: with users_from_servers the proxy refuses a
// wrong password itself, so the server never counts it; the proxy must
// then count and block as MariaDB does with max_password_errors (mtr's
// max_password_errors): after that many consecutive wrong passwords an
// account gets 4150 (HY000) whatever the password, until a FLUSH
// PRIVILEGES or an ALTER USER of it through the proxy; a good login
// resets the count, a re-read of the accounts does not; COM_CHANGE_USER
// counts; local accounts with SUPER or CONNECTION ADMIN are exempt. Before
// the fix the third login with the good password succeeded.
func TestMaxPasswordErrors(t *testing.T) {
	ctx := context.Background()
	direct, err := cluster.Primary.DB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { direct.Close() }) // after the cleanups below, which use it
	var orig uint64
	if err := direct.QueryRow("SELECT @@global.max_password_errors").Scan(&orig); err != nil {
		t.Fatal(err)
	}
	accounts := []string{"'sy_pwerr'@'%'", "'sy_pwerr_super'@'%'", "'sy_pwerr_local'@'127.0.0.1'", "'sy_pwerr_admin'@'127.0.0.1'"}
	drop := func() {
		for _, a := range accounts {
			_, _ = direct.Exec("DROP USER IF EXISTS " + a)
		}
	}
	drop()
	t.Cleanup(func() {
		drop()
		_, _ = direct.Exec(fmt.Sprintf("SET GLOBAL max_password_errors = %d", orig))
		_, _ = direct.Exec("REVOKE SELECT ON mysql.global_priv FROM " + harness.MonitorUser + "@'%'")
	})
	for _, a := range accounts {
		mustExec(t, direct, "CREATE USER "+a+" IDENTIFIED BY 'good-pw'")
	}
	// Exempt only with the privilege and a local host; the monitor reads
	// SUPER from mysql.user and CONNECTION ADMIN from mysql.global_priv.
	mustExec(t, direct, "GRANT SUPER ON *.* TO 'sy_pwerr_super'@'%', 'sy_pwerr_local'@'127.0.0.1'")
	mustExec(t, direct, "GRANT CONNECTION ADMIN ON *.* TO 'sy_pwerr_admin'@'127.0.0.1'")

	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", ExtraYAML: "users_from_servers: true\n",
		Servers: []*harness.Server{cluster.Primary}})
	// root@127.0.0.1 through the proxy: a server account, exempt.
	admin := openDB(t, p, "root", cluster.RootPassword(), "", "")
	mustExec(t, admin, "SET GLOBAL max_password_errors = 2")

	login := func(user, pass string) error {
		c := mysqltest.Dial(t, p.Addr(), fsRawCaps, nil)
		return c.Login(mysqltest.Login{User: user, Pass: pass})
	}
	expect := func(what string, err error, code uint16) {
		t.Helper()
		var me *mysql.MyError
		switch {
		case code == 0 && err != nil:
			t.Fatalf("%s: %v, want a login", what, err)
		case code == 0:
		case !errors.As(err, &me) || me.Code != code:
			t.Fatalf("%s: %v, want error %d", what, err, code)
		case code == 4150 && (me.State != "HY000" || me.Message != blockedMessage):
			t.Fatalf("%s: %d (%s) %q, want MariaDB's (HY000) %q", what, me.Code, me.State, me.Message, blockedMessage)
		}
	}
	block := func(user string) {
		t.Helper()
		expect(user+": first wrong password", login(user, "bad-pw"), 1045)
		expect(user+": second wrong password", login(user, "bad-pw"), 1045)
	}

	block("sy_pwerr")
	expect("the good password after two wrong ones", login("sy_pwerr", "good-pw"), 4150)
	expect("a wrong password when blocked", login("sy_pwerr", "bad-pw"), 4150)
	expect("an empty password when blocked", login("sy_pwerr", ""), 4150)
	// An unknown name makes the proxy read the accounts again: a refresh
	// does not unblock.
	expect("an unknown user", login("sy_pwerr_nobody", "x"), 1045)
	expect("blocked after a re-read of the accounts", login("sy_pwerr", "good-pw"), 4150)

	mustExec(t, admin, "FLUSH PRIVILEGES")
	expect("after FLUSH PRIVILEGES", login("sy_pwerr", "good-pw"), 0)

	// A good login resets the count; an empty password does not count.
	expect("a wrong password", login("sy_pwerr", "bad-pw"), 1045)
	expect("then the good one", login("sy_pwerr", "good-pw"), 0)
	expect("a wrong password again", login("sy_pwerr", "bad-pw"), 1045)
	expect("no password", login("sy_pwerr", ""), 1045)
	expect("the good one again", login("sy_pwerr", "good-pw"), 0)

	// COM_CHANGE_USER counts and is refused the same way.
	c := mysqltest.Dial(t, p.Addr(), fsRawCaps, nil)
	expect("login before change user", c.Login(mysqltest.Login{User: "sy_pwerr", Pass: "good-pw"}), 0)
	expect("change user, wrong password", c.ChangeUser("sy_pwerr", "bad-pw", "", ""), 1045)
	expect("change user, wrong password again", c.ChangeUser("sy_pwerr", "bad-pw", "", ""), 1045)
	expect("change user, good password", c.ChangeUser("sy_pwerr", "good-pw", "", ""), 4150)
	expect("a new login after the changes of user", login("sy_pwerr", "good-pw"), 4150)

	// The limit is the server's current one, read again after a SET GLOBAL
	// through the proxy.
	mustExec(t, admin, "SET GLOBAL max_password_errors = 3")
	expect("two errors under a limit of three", login("sy_pwerr", "good-pw"), 0)
	mustExec(t, admin, "SET GLOBAL max_password_errors = 2")

	// ALTER USER of another account leaves it blocked; of its own, not.
	block("sy_pwerr")
	mustExec(t, admin, "ALTER USER 'sy_pwerr_local'@'127.0.0.1' ACCOUNT UNLOCK")
	expect("after ALTER USER of another account", login("sy_pwerr", "good-pw"), 4150)
	mustExec(t, admin, "ALTER USER sy_pwerr ACCOUNT UNLOCK")
	expect("after ALTER USER of the account", login("sy_pwerr", "good-pw"), 0)

	// SUPER exempts a local account only.
	block("sy_pwerr_super")
	expect("SUPER at '%'", login("sy_pwerr_super", "good-pw"), 4150)
	block("sy_pwerr_local")
	expect("a wrong password more", login("sy_pwerr_local", "bad-pw"), 1045)
	expect("SUPER at 127.0.0.1", login("sy_pwerr_local", "good-pw"), 0)
	// CONNECTION ADMIN is not in mysql.user: with the monitor allowed to
	// read mysql.global_priv it exempts too.
	mustExec(t, direct, "GRANT SELECT ON mysql.global_priv TO "+harness.MonitorUser+"@'%'")
	mustExec(t, admin, "FLUSH PRIVILEGES")
	block("sy_pwerr_admin")
	expect("a wrong password more", login("sy_pwerr_admin", "bad-pw"), 1045)
	expect("CONNECTION ADMIN at 127.0.0.1", login("sy_pwerr_admin", "good-pw"), 0)
}
