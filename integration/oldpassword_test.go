package integration

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-sql-driver/mysql"

	"switchyard/integration/harness"
	"switchyard/internal/mysqltest"
)

// TestOldPasswordAccounts: a server account with a mysql_old_password
// hash (16 hex digits; mtr's change_user and set_password) logs in through
// the proxy exactly when it logs in directly: while the server's
// @@secure_auth is ON (its default) both refuse it with the server's 1275,
// before asking for the old scramble; with it OFF both accept the right
// password, from go-sql-driver, from the mariadb CLI (libmariadb) and by
// COM_CHANGE_USER, and refuse a wrong one with the same 1045. secure_auth
// is changed on the server directly, not through the proxy, so the proxy
// must notice it by itself. One server: secure_auth is not replicated.
func TestOldPasswordAccounts(t *testing.T) {
	ctx := context.Background()
	direct, err := cluster.Primary.DB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { direct.Close() }) // after the cleanups below, which use it
	const user, pass = "sy_oldpw", "old-pw 1"
	cleanup := func() {
		_, _ = direct.Exec("SET GLOBAL secure_auth = DEFAULT")
		_, _ = direct.Exec("DROP USER IF EXISTS '" + user + "'@'%'")
	}
	cleanup()
	t.Cleanup(cleanup)
	var hash string
	if err := direct.QueryRow("SELECT OLD_PASSWORD(?)", pass).Scan(&hash); err != nil || len(hash) != 16 {
		t.Fatalf("OLD_PASSWORD: %q, %v", hash, err)
	}
	mustExec(t, direct, "CREATE USER '"+user+"'@'%' IDENTIFIED BY PASSWORD '"+hash+"'")
	mustExec(t, direct, "GRANT SELECT ON "+cluster.Database+".* TO '"+user+"'@'%'")
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", ExtraYAML: "users_from_servers: true\n",
		Servers: []*harness.Server{cluster.Primary}})

	// login logs in with go-sql-driver (which answers the old scramble
	// when allowed to) and returns CURRENT_USER().
	login := func(dsn string) (string, error) {
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var who string
		err = db.QueryRow("SELECT CURRENT_USER()").Scan(&who)
		return who, err
	}
	const params = "allowOldPasswords=true"
	viaProxy := func(pw string) (string, error) { return login(p.DSN(user, pw, cluster.Database, params)) }
	viaServer := func(pw string) (string, error) {
		return login(cluster.Primary.DSN(user, pw, cluster.Database) + "?" + params)
	}
	// sameRefusal checks that the proxy refuses pw as the server does.
	sameRefusal := func(what, pw string, code uint16) {
		t.Helper()
		_, serverErr := viaServer(pw)
		_, proxyErr := viaProxy(pw)
		var se, pe *mysql.MySQLError
		if !errors.As(serverErr, &se) || se.Number != code {
			t.Fatalf("%s: the server answered %v, want error %d", what, serverErr, code)
		}
		if !errors.As(proxyErr, &pe) || pe.Number != se.Number || pe.SQLState != se.SQLState || pe.Message != se.Message {
			t.Fatalf("%s: the proxy answered %v; the server %v", what, proxyErr, serverErr)
		}
	}
	changeUser := func(pw string) (string, error) {
		c := mysqltest.Dial(t, p.Addr(), fsRawCaps, nil)
		_ = c.TCP.SetDeadline(time.Now().Add(30 * time.Second))
		if err := c.Login(mysqltest.Login{User: cluster.AppUser, Pass: cluster.AppPassword, Schema: cluster.Database}); err != nil {
			t.Fatal(err)
		}
		// Answered for mysql_native_password first, as libmariadb does:
		// the proxy asks for the old scramble as the server does.
		if err := c.ChangeUser(user, pw, cluster.Database, gomysql.AUTH_NATIVE_PASSWORD); err != nil {
			return "", err
		}
		return c.Value("SELECT CURRENT_USER()"), nil
	}

	// secure_auth ON: refused with 1275, whatever the password.
	sameRefusal("secure_auth ON", pass, gomysql.ER_SERVER_IS_IN_SECURE_AUTH_MODE)
	sameRefusal("secure_auth ON, wrong password", "wrong", gomysql.ER_SERVER_IS_IN_SECURE_AUTH_MODE)
	if _, err := changeUser(pass); err == nil || !strings.Contains(err.Error(), "1275") {
		t.Fatalf("COM_CHANGE_USER with secure_auth ON: %v, want 1275", err)
	}

	mustExec(t, direct, "SET GLOBAL secure_auth = OFF")
	if who, err := viaServer(pass); err != nil || who != user+"@%" {
		t.Fatalf("directly, secure_auth OFF: %q, %v", who, err)
	}
	if who, err := viaProxy(pass); err != nil || who != user+"@%" {
		t.Fatalf("through the proxy, secure_auth OFF: %q, %v", who, err)
	}
	sameRefusal("secure_auth OFF, wrong password", "wrong", gomysql.ER_ACCESS_DENIED_ERROR)
	if out, err := mariadbCLI(t, p, user, pass, "-N", "-e", "SELECT CURRENT_USER()"); err != nil || strings.TrimSpace(out) != user+"@%" {
		t.Fatalf("mariadb CLI, secure_auth OFF: %q, %v", out, err)
	}
	if who, err := changeUser(pass); err != nil || who != user+"@%" {
		t.Fatalf("COM_CHANGE_USER, secure_auth OFF: %q, %v", who, err)
	}
	if _, err := changeUser("wrong"); err == nil || !strings.Contains(err.Error(), "1045") {
		t.Fatalf("COM_CHANGE_USER with a wrong password: %v, want 1045", err)
	}

	// Back ON: refused again, though the proxy has accepted the account.
	mustExec(t, direct, "SET GLOBAL secure_auth = ON")
	sameRefusal("secure_auth ON again", pass, gomysql.ER_SERVER_IS_IN_SECURE_AUTH_MODE)
}
