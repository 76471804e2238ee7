package integration

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"switchyard/integration/harness"
)

// TestUsersFromServers: with users_from_servers, accounts created on the
// servers log in through the proxy without being listed, at once (as mtr
// tests do: CREATE USER, then connect), a changed password works at once
// and the old one stops working, an account whose host pattern excludes
// the client is refused, and so is an unknown user, with MariaDB's error,
// unless an anonymous account takes it.
func TestUsersFromServers(t *testing.T) {
	ctx := context.Background()
	direct, err := cluster.Primary.DB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { direct.Close() }) // after the cleanups below, which use it
	drop := func() {
		for _, u := range []string{"'sy_acct'@'%'", "'sy_acct_far'@'10.255.%'", "'sy_acct_nopw'@'127.0.0.1'"} {
			_, _ = direct.Exec("DROP USER IF EXISTS " + u)
		}
	}
	drop()
	t.Cleanup(drop)
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", ExtraYAML: "users_from_servers: true\n"})

	login := func(user, pass string) (string, error) {
		db, err := sql.Open("mysql", p.DSN(user, pass, cluster.Database, ""))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var who string
		err = db.QueryRow("SELECT CURRENT_USER()").Scan(&who)
		return who, err
	}
	denied := func(user, pass, says string) {
		t.Helper()
		_, err := login(user, pass)
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != 1045 || !strings.Contains(me.Message, says) {
			t.Fatalf("login as %s: %v, want 1045 saying %q", user, err, says)
		}
	}

	// Created after the proxy started: found by the read a login of an
	// unknown name triggers.
	mustExec(t, direct, "CREATE USER 'sy_acct'@'%' IDENTIFIED BY 'first-pw'")
	mustExec(t, direct, "GRANT SELECT ON "+cluster.Database+".* TO 'sy_acct'@'%'")
	if who, err := login("sy_acct", "first-pw"); err != nil || who != "sy_acct@%" {
		t.Fatalf("login of a server account: %q, %v", who, err)
	}
	denied("sy_acct", "wrong", "'sy_acct'@'127.0.0.1' (using password: YES)")

	// A changed password: the proxy's read still has the old hash.
	mustExec(t, direct, "ALTER USER 'sy_acct'@'%' IDENTIFIED BY 'second-pw'")
	if who, err := login("sy_acct", "second-pw"); err != nil || who != "sy_acct@%" {
		t.Fatalf("login with the changed password: %q, %v", who, err)
	}
	denied("sy_acct", "first-pw", "sy_acct")

	// No password, for the loopback address (the test servers skip name
	// resolution, so they see the proxy as 127.0.0.1).
	mustExec(t, direct, "CREATE USER 'sy_acct_nopw'@'127.0.0.1'")
	mustExec(t, direct, "GRANT SELECT ON "+cluster.Database+".* TO 'sy_acct_nopw'@'127.0.0.1'")
	if who, err := login("sy_acct_nopw", ""); err != nil || who != "sy_acct_nopw@127.0.0.1" {
		t.Fatalf("login of a passwordless account: %q, %v", who, err)
	}

	// An account for other hosts only, and a name no server has.
	mustExec(t, direct, "CREATE USER 'sy_acct_far'@'10.255.%' IDENTIFIED BY 'far-pw'")
	denied("sy_acct_far", "far-pw", "sy_acct_far")
	denied("sy_acct_nobody", "x", "sy_acct_nobody")

	// The listed user still logs in as configured.
	if who, err := login(cluster.AppUser, cluster.AppPassword); err != nil || !strings.HasPrefix(who, cluster.AppUser+"@") {
		t.Fatalf("listed user: %q, %v", who, err)
	}

	// A name without an account for the client's address logs in as the
	// anonymous account, as on MariaDB (mtr's grant2, sp-security). (On
	// '%': one for a more specific host would take the monitor's logins
	// too, on the servers themselves.)
	t.Cleanup(func() { _, _ = direct.Exec("DROP USER IF EXISTS ''@'%'") })
	mustExec(t, direct, "CREATE USER ''@'%'")
	mustExec(t, direct, "GRANT SELECT ON "+cluster.Database+".* TO ''@'%'")
	if who, err := login("sy_acct_anybody", ""); err != nil || who != "@%" {
		t.Fatalf("login through the anonymous account: %q, %v", who, err)
	}
	denied("sy_acct_anybody", "a password", "sy_acct_anybody")
}

// TestGrantReachesNewLogins: MariaDB applies global privileges as they
// were when a connection logged in, so a client that logs in after a GRANT
// must not get a pooled server connection from before it (mtr's grant
// test: 1044 on USE after GRANT SELECT ON *.*). Before the fix the second
// login reused the first one's connection and was refused.
func TestGrantReachesNewLogins(t *testing.T) {
	ctx := context.Background()
	direct, err := cluster.Primary.DB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { direct.Close() }) // after drop, which uses it
	drop := func() { _, _ = direct.Exec("DROP USER IF EXISTS 'sy_grantee'@'%'") }
	drop()
	t.Cleanup(drop)
	mustExec(t, direct, "CREATE USER 'sy_grantee'@'%' IDENTIFIED BY 'grantee-pw'")
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", ExtraYAML: "users_from_servers: true\n"})
	// root@127.0.0.1, one of the servers' accounts.
	admin := openDB(t, p, "root", cluster.RootPassword(), "", "")

	grantee := func() *sql.DB {
		db, err := sql.Open("mysql", p.DSN("sy_grantee", "grantee-pw", "", ""))
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxIdleConns(0) // every use a new login
		t.Cleanup(func() { db.Close() })
		return db
	}
	before := grantee()
	var n int
	if err := before.QueryRow("SELECT 1").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if _, err := before.Exec("USE " + cluster.Database); err == nil {
		t.Fatal("USE worked before the grant")
	}
	mustExec(t, admin, "GRANT SELECT ON *.* TO 'sy_grantee'@'%'")
	after := grantee()
	c, err := after.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, "USE "+cluster.Database); err != nil {
		t.Fatalf("USE after GRANT SELECT ON *.*, in a new login: %v", err)
	}
}

// TestGlobalVariableReachesNewLogins: a session's variables start from the
// global values at its login, so a client that logs in after SET GLOBAL
// must not get a pooled server connection from before it (mtr's
// mysql_comments: SET GLOBAL sql_mode, then the mysql CLI). Before the
// fix the new login reused a connection with the old default. One server:
// SET GLOBAL is not replicated, and reads would go to replicas.
func TestGlobalVariableReachesNewLogins(t *testing.T) {
	ctx := context.Background()
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", Servers: []*harness.Server{cluster.Primary}})
	admin := appDB(t, p, "")
	var orig int
	if err := admin.QueryRow("SELECT @@global.div_precision_increment").Scan(&orig); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		direct, err := cluster.Primary.DB(ctx)
		if err == nil {
			_, _ = direct.Exec(fmt.Sprintf("SET GLOBAL div_precision_increment = %d", orig))
			direct.Close()
		}
	})
	// Leave idle pooled connections behind, logged in before the change.
	warm := appDB(t, p, "")
	warm.SetMaxIdleConns(0)
	for i := 0; i < 3; i++ {
		if _, err := warm.Exec("SELECT 1"); err != nil {
			t.Fatal(err)
		}
	}
	want := orig%10 + 1
	mustExec(t, admin, fmt.Sprintf("SET GLOBAL div_precision_increment = %d", want))
	fresh := appDB(t, p, "")
	fresh.SetMaxIdleConns(0)
	for i := 0; i < 3; i++ {
		var got int
		if err := fresh.QueryRow("SELECT @@session.div_precision_increment").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("login %d after SET GLOBAL div_precision_increment = %d has %d", i, want, got)
		}
	}
}

// TestAccountsFollowThePrivilegeCache: a server checks logins against its
// privilege cache, which account statements (GRANT, CREATE USER, ...) and
// FLUSH PRIVILEGES change, not an edit of the mysql tables alone. So a
// client that creates an account through the proxy and then edits its row
// logs in with the password it gave, as directly (mtr sp_notembedded:
// GRANT ... IDENTIFIED BY, then UPDATE mysql.user on the hash, then a
// login). Before the fix the proxy read the accounts at that login, from
// the edited table, and refused it.
func TestAccountsFollowThePrivilegeCache(t *testing.T) {
	ctx := context.Background()
	direct, err := cluster.Primary.DB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { direct.Close() }) // after drop, which uses it
	drop := func() { _, _ = direct.Exec("DROP USER IF EXISTS 'sy_cached'@'%'") }
	drop()
	t.Cleanup(drop)
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", ExtraYAML: "users_from_servers: true\n"})
	admin := openDB(t, p, "root", cluster.RootPassword(), "", "")
	mustExec(t, admin, "CREATE USER 'sy_cached'@'%' IDENTIFIED BY 'cached-pw'")
	mustExec(t, admin, "UPDATE mysql.global_priv SET priv = JSON_SET(priv, '$.authentication_string', '-not-a-hash') WHERE user = 'sy_cached'")
	login := func() error {
		db, err := sql.Open("mysql", p.DSN("sy_cached", "cached-pw", "", ""))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var who string
		return db.QueryRow("SELECT CURRENT_USER()").Scan(&who)
	}
	if err := login(); err != nil {
		t.Fatalf("login with the password the server's privilege cache has: %v", err)
	}
	// After FLUSH PRIVILEGES the server has the edited row: no password
	// matches, as directly.
	mustExec(t, admin, "FLUSH PRIVILEGES")
	var me *mysql.MySQLError
	if err := login(); !errors.As(err, &me) || me.Number != 1045 {
		t.Fatalf("login after FLUSH PRIVILEGES made the edited row count: %v, want 1045", err)
	}
}

// TestAccountsWithoutTheUserView: mtr's grant2 deletes every account at
// host 'localhost', mariadb.sys@localhost among them, the definer of the
// mysql.user view, and creates its own account by INSERT INTO
// mysql.global_priv and FLUSH PRIVILEGES. The view then fails for everyone
// (1449), and the proxy read the accounts through it only: the new account
// got 1045 through the proxy, and works directly. Now the accounts are read
// from mysql.global_priv when the view cannot be read, with the monitor
// account's SELECT on that table (root's in mtr).
func TestAccountsWithoutTheUserView(t *testing.T) {
	ctx := context.Background()
	direct, err := cluster.Primary.DB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { direct.Close() }) // after the cleanups below, which use it
	monitor := "'" + harness.MonitorUser + "'@'%'"
	mustExec(t, direct, "GRANT SELECT ON mysql.global_priv TO "+monitor)
	t.Cleanup(func() { _, _ = direct.Exec("REVOKE SELECT ON mysql.global_priv FROM " + monitor) })
	// As grant2 does: the row goes, and comes back, with FLUSH PRIVILEGES.
	// (RENAME USER away and back left the server's view check failing now
	// and then until a restart, which would fail later tests.)
	var priv string
	if err := direct.QueryRow("SELECT Priv FROM mysql.global_priv WHERE User = 'mariadb.sys' AND Host = 'localhost'").Scan(&priv); err != nil {
		t.Fatal(err)
	}
	mustExec(t, direct, "DELETE FROM mysql.global_priv WHERE User = 'mariadb.sys' AND Host = 'localhost'")
	t.Cleanup(func() {
		if _, err := direct.Exec("INSERT INTO mysql.global_priv (Host, User, Priv) VALUES ('localhost', 'mariadb.sys', ?)", priv); err != nil {
			t.Errorf("restoring mariadb.sys@localhost: %v", err)
		}
		if _, err := direct.Exec("FLUSH PRIVILEGES"); err != nil {
			t.Errorf("restoring mariadb.sys@localhost: %v", err)
		}
		var n int
		if err := direct.QueryRow("SELECT COUNT(*) FROM mysql.user").Scan(&n); err != nil {
			t.Errorf("the mysql.user view after restoring mariadb.sys@localhost: %v", err)
		}
		_ = cluster.WaitReplicasCaughtUp(ctx)
	})
	mustExec(t, direct, "FLUSH PRIVILEGES")
	var n int
	err = direct.QueryRow("SELECT COUNT(*) FROM mysql.user").Scan(&n)
	assertMySQLError(t, err, 1449, "HY000") // the view's definer is gone
	drop := func() { _, _ = direct.Exec("DROP USER IF EXISTS 'sy_noview'@'%'") }
	drop()
	t.Cleanup(drop)
	mustExec(t, direct, "INSERT INTO mysql.global_priv (host, user, priv) VALUES ('%', 'sy_noview', json_object('authentication_string', password('noview-pw')))")
	mustExec(t, direct, "FLUSH PRIVILEGES")

	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", ExtraYAML: "users_from_servers: true\n"})
	db := openDB(t, p, "sy_noview", "noview-pw", "", "")
	var who string
	if err := db.QueryRow("SELECT CURRENT_USER()").Scan(&who); err != nil || who != "sy_noview@%" {
		t.Fatalf("login of an account made by INSERT INTO mysql.global_priv, the mysql.user view broken: %q, %v", who, err)
	}
	bad := openDB(t, p, "sy_noview", "wrong", "", "")
	err = bad.Ping()
	assertMySQLError(t, err, 1045, "28000")
}
