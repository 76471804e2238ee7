package proxy

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"switchyard/backend"
	"switchyard/router"
	"switchyard/wire"
)

func TestWildMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"%", "", true},
		{"%", "10.1.2.3", true},
		{"10.1.%", "10.1.2.3", true},
		{"10.1.%", "10.2.2.3", false},
		{"10.1._.3", "10.1.2.3", true},
		{"10.1._.3", "10.1.22.3", false},
		{"localhost", "localhost", true},
		{"local\\_host", "local_host", true},
		{"local\\_host", "localxhost", false},
		{"%a%a%a%a%a%a%a%a%b", strings.Repeat("a", 60), false}, // linear, not exponential
		{"", "", true},
		{"", "x", false},
	} {
		if got := wildMatch(tc.pattern, tc.s); got != tc.want {
			t.Errorf("wildMatch(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

// A user's accounts are tried most specific host first, as MariaDB does;
// accounts the proxy cannot check a login for are left out.
func TestServerAccountsMatch(t *testing.T) {
	hash := "*" + strings.Repeat("AB", 20)
	byName, n := indexAccounts([]backend.Account{
		{User: "u", Host: "%", Plugin: "mysql_native_password"},
		{User: "u", Host: "10.1.%", Plugin: "mysql_native_password", AuthString: hash},
		{User: "u", Host: "10.1.2.3", Plugin: "mysql_native_password"},
		{User: "u", Host: "192.168.0.0/255.255.0.0", Plugin: "mysql_native_password", AuthString: hash},
		{User: "sock", Host: "localhost", Plugin: "unix_socket"},
		{User: "old", Host: "%", Plugin: "mysql_old_password", AuthString: "09301740536db389"},
		{User: "oldbad", Host: "%", Plugin: "mysql_old_password", AuthString: "*0930174053"},
		{User: "", Host: "localhost", Plugin: "mysql_native_password"},
		{User: "role", Host: "", Plugin: ""},
	})
	if n != 6 || len(byName) != 5 {
		t.Fatalf("kept %d accounts (%d names), want 6: 4 of u, the old-password one and the anonymous one", n, len(byName))
	}
	a := &serverAccounts{byName: byName}
	for _, tc := range []struct {
		host, ip string
		want     string // the account's pattern, "" none
	}{
		{"10.1.2.3", "10.1.2.3", "10.1.2.3"},
		{"10.1.9.9", "10.1.9.9", "10.1.%"},
		{"192.168.7.1", "192.168.7.1", "192.168.0.0/255.255.0.0"},
		{"localhost", "127.0.0.1", "%"},
	} {
		var u *User
		if m := a.match("u", tc.host, tc.ip); len(m) > 0 {
			u = m[0]
		}
		var got string
		for _, acct := range byName["u"] {
			if acct.user == u {
				got = acct.host.pattern
			}
		}
		if got != tc.want {
			t.Errorf("client %s: account @%q, want @%q", tc.ip, got, tc.want)
		}
	}
	if m := a.match("old", "localhost", "127.0.0.1"); len(m) != 1 || !m[0].oldPassword() || m[0].oldHash != wire.HashOldPassword([]byte("oldpw")) {
		t.Errorf("old-password account: %+v", m)
	}
	if a.match("sock", "localhost", "127.0.0.1") != nil || a.match("oldbad", "localhost", "127.0.0.1") != nil ||
		a.match("nobody", "10.0.0.1", "10.0.0.1") != nil {
		t.Error("matched an account the proxy cannot check")
	}
	// A name without an account falls back to the anonymous one, keeping
	// its own name for the server login.
	if m := a.match("nobody", "localhost", "127.0.0.1"); len(m) != 1 || m[0].Name != "nobody" || !m[0].empty {
		t.Errorf("anonymous fallback: %+v", m)
	}
	// A loopback client matches both 'localhost' and '127.0.0.1' accounts.
	byName, _ = indexAccounts([]backend.Account{
		{User: "root", Host: "localhost", Plugin: "mysql_native_password"},
		{User: "root", Host: "127.0.0.1", Plugin: "mysql_native_password", AuthString: hash},
		{User: "root", Host: "%", Plugin: "mysql_native_password", AuthString: hash},
	})
	a = &serverAccounts{byName: byName}
	if m := a.match("root", "localhost", "127.0.0.1"); len(m) != 3 || m[2].stage2 == nil {
		t.Errorf("a loopback client may use %d of root's 3 accounts", len(m))
	}
}

// The counts of wrong passwords (max_password_errors): an account is
// blocked at the servers' limit, a good login or a reset statement ends
// its run, a read of the accounts keeps the counts of the accounts it
// still has and drops the others', and local accounts with SUPER or
// CONNECTION ADMIN are never blocked.
func TestPasswordErrorCounts(t *testing.T) {
	hash := "*" + strings.Repeat("AB", 20)
	native := func(user, host string, admin bool) backend.Account {
		return backend.Account{User: user, Host: host, Plugin: "mysql_native_password", AuthString: hash, ConnectionAdmin: admin}
	}
	read := backend.Accounts{MaxPasswordErrors: 2, List: []backend.Account{
		native("u", "%", false), native("v", "%", false), native("admin", "localhost", true), native("far", "%", true)}}
	a := newServerAccounts(func(context.Context) (backend.Accounts, error) { return read, nil }, slog.New(slog.DiscardHandler))
	account := func(name string) *User {
		t.Helper()
		m := a.find(context.Background(), name, "127.0.0.1:5000", time.Time{})
		if len(m) == 0 {
			t.Fatalf("no account for %s", name)
		}
		return m[0]
	}
	fresh := func() { a.find(context.Background(), "u", "127.0.0.1:5000", time.Now()) }
	fail := func(name string, n int) {
		for range n {
			a.passwordRefused(account(name))
		}
	}

	fail("u", 1)
	if a.blocked(account("u")) {
		t.Fatal("blocked after one wrong password of two")
	}
	fail("u", 1)
	if !a.blocked(account("u")) {
		t.Fatal("not blocked after two wrong passwords")
	}
	fresh()
	if !a.blocked(account("u")) {
		t.Fatal("a read of the accounts unblocked")
	}
	if a.blocked(account("v")) {
		t.Fatal("another account blocked")
	}
	a.resetPasswordErrors(router.PasswordErrorReset{Accounts: []router.AccountName{{User: "u", Host: "%"}}}, nil)
	if a.blocked(account("u")) {
		t.Fatal("still blocked after ALTER USER u")
	}
	fail("u", 1)
	a.passwordAccepted(account("u"))
	fail("u", 1)
	if a.blocked(account("u")) {
		t.Fatal("a good login did not end the run")
	}
	fail("u", 1)
	fail("v", 2)
	a.resetPasswordErrors(router.PasswordErrorReset{CurrentUser: true}, account("v"))
	if !a.blocked(account("u")) || a.blocked(account("v")) {
		t.Fatal("ALTER USER CURRENT_USER reset another account than the session's")
	}
	a.resetPasswordErrors(router.PasswordErrorReset{Renamed: []router.AccountRename{{From: router.AccountName{User: "u", Host: "%"}, To: router.AccountName{User: "v", Host: "%"}}}}, nil)
	if !a.blocked(account("v")) {
		t.Fatal("RENAME USER did not carry the count")
	}
	a.resetPasswordErrors(router.PasswordErrorReset{All: true}, nil)
	if a.blocked(account("v")) || len(a.passwordErrors) != 0 {
		t.Fatal("FLUSH PRIVILEGES left counts")
	}

	// SUPER or CONNECTION ADMIN exempts a local account only.
	fail("admin", 3)
	fail("far", 2)
	if a.blocked(account("admin")) || !a.blocked(account("far")) {
		t.Fatal("exemption: local admin blocked, or remote admin not")
	}

	// A dropped account's count goes with the read that no longer has it;
	// a raised limit unblocks.
	fail("u", 2)
	read.List = read.List[1:]
	read.MaxPasswordErrors = 3
	fresh()
	if _, ok := a.passwordErrors[accountID{"u", "%"}]; ok {
		t.Fatal("the count of a dropped account stayed")
	}
	if a.blocked(account("far")) {
		t.Fatal("blocked under the raised limit")
	}
	a.passwordRefused(&User{Name: "u", fromServer: true, account: accountID{"u", "%"}})
	if _, ok := a.passwordErrors[accountID{"u", "%"}]; ok {
		t.Fatalf("counted a wrong password of an account the servers no longer have: %v", a.passwordErrors)
	}
}
