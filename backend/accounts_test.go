package backend

import (
	"context"
	"database/sql"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/internal/fakemysql"
)

// LoadAccounts reads, with the accounts, what max_password_errors needs:
// the limit and who is exempt (SUPER from mysql.user, CONNECTION ADMIN from
// mysql.global_priv when the monitor may read it); a MariaDB without the
// variable (before 10.4) and MySQL have no limit.
func TestLoadAccountsPasswordErrors(t *testing.T) {
	str := func(s string) sql.NullString { return sql.NullString{String: s, Valid: true} }
	row := func(user, host, super string, extra ...string) []sql.NullString {
		r := []sql.NullString{str(user), str(host), str("mysql_native_password"), str(""), str(super)}
		for _, e := range extra {
			r = append(r, str(e))
		}
		return r
	}
	for _, tc := range []struct {
		name, version  string
		hasVariable    bool // @@max_password_errors exists
		globalPriv     bool // the monitor may read mysql.global_priv
		wantMax        uint64
		wantAdminUsers string
	}{
		{"MariaDB 10.11", "10.11.99-MariaDB-fake", true, true, 2, "s@%,c@localhost"},
		{"MariaDB, no global_priv grant", "10.11.99-MariaDB-fake", true, false, 2, "s@%"},
		{"MariaDB 10.3", "10.3.39-MariaDB", false, false, 0, "s@%"},
		{"MySQL", "8.0.36", false, false, 0, "s@%"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := fakemysql.Start(t, fakemysql.Options{Version: tc.version, Handle: func(c *fakemysql.Conn, q string) *fakemysql.Result {
				switch {
				case q == mariadbAccountsQuery && !tc.hasVariable:
					return &fakemysql.Result{Err: mysql.NewError(mysql.ER_UNKNOWN_SYSTEM_VARIABLE, "Unknown system variable 'max_password_errors'")}
				case q == mariadbAccountsQuery:
					return &fakemysql.Result{Columns: []string{"User", "Host", "plugin", "authentication_string", "Super_priv", "@@global.max_password_errors"},
						Rows: [][]sql.NullString{row("u", "%", "N", "2"), row("s", "%", "Y", "2"), row("c", "localhost", "N", "2")}}
				case q == accountsQuery:
					return &fakemysql.Result{Columns: []string{"User", "Host", "plugin", "authentication_string", "Super_priv"},
						Rows: [][]sql.NullString{row("u", "%", "N"), row("s", "%", "Y"), row("c", "localhost", "N")}}
				case q == connectionAdminQuery && !tc.globalPriv:
					return &fakemysql.Result{Err: mysql.NewError(mysql.ER_TABLEACCESS_DENIED_ERROR, "SELECT command denied")}
				case q == connectionAdminQuery:
					return &fakemysql.Result{Columns: []string{"User", "Host"}, Rows: [][]sql.NullString{{str("c"), str("localhost")}}}
				}
				return nil
			}})
			c := clusterOver(t, Options{}, fake)
			accts, err := c.loadAccountsFrom(context.Background(), c.Servers()[0], Credentials{User: "monitor", Plain: "monitor", HasPassword: true}, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			var admins []string
			for _, a := range accts.List {
				if a.ConnectionAdmin {
					admins = append(admins, a.User+"@"+a.Host)
				}
			}
			if len(accts.List) != 3 || accts.MaxPasswordErrors != tc.wantMax || strings.Join(admins, ",") != tc.wantAdminUsers {
				t.Fatalf("%d accounts, max_password_errors %d, exempt-capable %v; want 3, %d, %s",
					len(accts.List), accts.MaxPasswordErrors, admins, tc.wantMax, tc.wantAdminUsers)
			}
		})
	}
}

// TestLoadAccountsWhenTheViewIsBroken: MariaDB's mysql.user is a view
// whose definer, mariadb.sys@localhost, a test or an operator may delete
// (mtr's grant2). The accounts are then read from mysql.global_priv; an
// error of another kind is no reason to, and when both reads fail nothing
// is returned, so the proxy keeps its last good list whole.
func TestLoadAccountsWhenTheViewIsBroken(t *testing.T) {
	noDefiner := mysql.NewError(mysql.ER_NO_SUCH_USER, "The user specified as a definer ('mariadb.sys'@'localhost') does not exist")
	denied := mysql.NewError(mysql.ER_TABLEACCESS_DENIED_ERROR, "SELECT command denied to user 'monitor'@'localhost' for table `mysql`.`global_priv`")
	accounts := &fakemysql.Result{Columns: []string{"User", "Host", "plugin", "authentication_string", "Super_priv", "@@global.max_password_errors"},
		Rows: [][]sql.NullString{{nullStr("app"), nullStr("%"), nullStr(""), nullStr("*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9"), nullStr("N"), nullStr("0")}}}
	for _, tc := range []struct {
		name             string
		view, globalPriv *mysql.MyError
		want             string // the error, or "" for the account
		askedGlobalPriv  bool
	}{
		{"view readable", nil, nil, "", false},
		{"definer gone", noDefiner, nil, "", true},
		{"view invalid", mysql.NewError(mysql.ER_VIEW_INVALID, "View 'mysql.user' references invalid table(s)"), nil, "", true},
		{"both fail", noDefiner, denied, "reading mysql.global_priv instead", true},
		{"view denied", denied, nil, "SELECT command denied", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex // the fake answers on its own goroutines
			var asked []string
			f := fakemysql.Start(t, fakemysql.Options{Version: "10.11.99-MariaDB-fake", Handle: func(c *fakemysql.Conn, q string) *fakemysql.Result {
				mu.Lock()
				defer mu.Unlock()
				switch {
				case q == mariadbAccountsQuery:
					asked = append(asked, "view")
					if tc.view != nil {
						return &fakemysql.Result{Err: tc.view}
					}
					return accounts
				case q == mariadbGlobalPrivQuery:
					asked = append(asked, "global_priv")
					if tc.globalPriv != nil {
						return &fakemysql.Result{Err: tc.globalPriv}
					}
					return accounts
				}
				return nil
			}})
			c := clusterOver(t, Options{}, f)
			accts, err := c.LoadAccounts(context.Background(), Credentials{User: "monitor", Plain: "monitor", HasPassword: true}, 5*time.Second)
			if tc.want == "" && (err != nil || len(accts.List) != 1 || accts.List[0].User != "app" || accts.List[0].AuthString != "*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9") {
				t.Fatalf("accounts %+v, %v", accts, err)
			}
			if tc.want != "" && (err == nil || accts.List != nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("accounts %+v, %v; want none and an error saying %q", accts, err, tc.want)
			}
			mu.Lock()
			defer mu.Unlock()
			if got := strings.Contains(strings.Join(asked, ","), "global_priv"); got != tc.askedGlobalPriv {
				t.Fatalf("asked %v", asked)
			}
		})
	}
}
