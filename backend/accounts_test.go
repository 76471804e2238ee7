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

// TestLoadAccountsWhenTheViewIsBroken: MariaDB's mysql.user is a view
// whose definer, mariadb.sys@localhost, a test or an operator may delete
// (mtr's grant2). The accounts are then read from mysql.global_priv; an
// error of another kind is no reason to, and when both reads fail nothing
// is returned, so the proxy keeps its last good list whole.
func TestLoadAccountsWhenTheViewIsBroken(t *testing.T) {
	noDefiner := mysql.NewError(mysql.ER_NO_SUCH_USER, "The user specified as a definer ('mariadb.sys'@'localhost') does not exist")
	denied := mysql.NewError(mysql.ER_TABLEACCESS_DENIED_ERROR, "SELECT command denied to user 'monitor'@'localhost' for table `mysql`.`global_priv`")
	accounts := &fakemysql.Result{Columns: []string{"User", "Host", "plugin", "authentication_string"},
		Rows: [][]sql.NullString{{nullStr("app"), nullStr("%"), nullStr(""), nullStr("*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9")}}}
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
			f := fakemysql.Start(t, fakemysql.Options{Handle: func(c *fakemysql.Conn, q string) *fakemysql.Result {
				mu.Lock()
				defer mu.Unlock()
				switch {
				case q == accountsQuery:
					asked = append(asked, "view")
					if tc.view != nil {
						return &fakemysql.Result{Err: tc.view}
					}
					return accounts
				case q == globalPrivQuery:
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
			if tc.want == "" && (err != nil || len(accts) != 1 || accts[0].User != "app" || accts[0].AuthString != "*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9") {
				t.Fatalf("accounts %+v, %v", accts, err)
			}
			if tc.want != "" && (err == nil || accts != nil || !strings.Contains(err.Error(), tc.want)) {
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
