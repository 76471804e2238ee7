package proxy

import (
	"context"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/backend"
	"switchyard/internal/mysqltest"
)

// TestBlockedAccountTakesNoRetriedLogin: a login refused for the first
// account the client's address may use is tried against the name's other
// accounts; one of them that is blocked (max_password_errors) must not take
// it, and keeps its block. Before, the retry took the login as the blocked
// account and ended its block (found in review).
func TestBlockedAccountTakesNoRetriedLogin(t *testing.T) {
	read := backend.Accounts{MaxPasswordErrors: 1, List: []backend.Account{
		{User: "carol", Host: "127.0.0.1", Plugin: "mysql_native_password", AuthString: nativeHash("near-pw")},
		{User: "carol", Host: "%", Plugin: "mysql_native_password", AuthString: nativeHash("any-pw")},
	}}
	accounts := func(context.Context) (backend.Accounts, error) { return read, nil }
	h := newHarness(t, harnessConfig{listener: ListenerOptions{Accounts: accounts}})
	a := h.srv.Listener.accounts
	all := a.find(context.Background(), "carol", "127.0.0.1:5000", time.Time{})
	if len(all) != 2 || all[1].account.host != "%" {
		t.Fatalf("accounts of carol: %v", all)
	}
	a.passwordRefused(all[1]) // carol@'%' blocked, as after a wrong password from elsewhere
	c := h.dial(t)
	err := c.Login(mysqltest.Login{User: "carol", Pass: "any-pw", Plugin: mysql.AUTH_NATIVE_PASSWORD})
	if code, _, _ := mysqltest.ServerError(err); code != mysql.ER_ACCESS_DENIED_ERROR {
		t.Fatalf("login with the blocked account's password: %v, want 1045", err)
	}
	if !a.blocked(all[1]) {
		t.Fatal("the blocked account took the login and its block ended")
	}
}
