package proxy

import (
	"strings"
	"testing"

	"switchyard/backend"
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
