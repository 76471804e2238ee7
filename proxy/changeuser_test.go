package proxy

import (
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/internal/mysqltest"
)

// changeUserSession logs in as app, leaves state behind (a replayed SET,
// a pinning user variable) and returns the client and the id of the
// primary connection its state lives on.
func changeUserSession(t *testing.T, h *harness) (*mysqltest.Client, uint32) {
	t.Helper()
	rc := h.login(t, mysqltest.Login{User: "app", Pass: "secret", Schema: "shop"})
	rc.MustOK(rc.Query("SET sql_mode = 'ANSI'"))
	rc.MustOK(rc.Query("SET @x = 'app was here'"))
	h.waitPinned(t, 1)
	id, ok := h.connOf(primaryName, "SET @x")
	if !ok {
		t.Fatal("SET @x did not reach the primary")
	}
	return rc, id
}

// stillApp checks a session whose change of user failed: still app, with
// its state.
func stillApp(t *testing.T, h *harness, rc *mysqltest.Client) {
	t.Helper()
	if got := rc.Value("SELECT USER()"); !strings.HasPrefix(got, "app@") {
		t.Fatalf("after a refused change of user the server sees %s", got)
	}
	if got := rc.Value("SELECT @x"); got != "app was here" {
		t.Fatalf("@x = %s after a refused change of user", got)
	}
	h.waitPinned(t, 1)
	if n := h.userSlots("app"); n != 1 {
		t.Fatalf("app counts %d connections", n)
	}
}

// userSlots is how many connections count against user's max_connections.
func (h *harness) userSlots(user string) int {
	h.srv.userMu.Lock()
	defer h.srv.userMu.Unlock()
	return h.srv.userConns[user]
}

// TestChangeUser: a change of user that works moves the session to fresh
// server connections logged in as the new user (the old ones, with their
// state, are closed); one refused, by the proxy or by the server, leaves
// the session as the old user with its state.
func TestChangeUser(t *testing.T) {
	t.Run("success", func(t *testing.T) {
		h := newHarness(t, harnessConfig{})
		rc, oldConn := changeUserSession(t, h)
		if err := rc.ChangeUser("bob", "bobpw", "other", ""); err != nil {
			t.Fatal(err)
		}
		if got := rc.Value("SELECT USER()"); !strings.HasPrefix(got, "bob@") {
			t.Fatalf("server user %s", got)
		}
		if got := rc.Value("SELECT @x"); got != "NULL" {
			t.Fatalf("@x = %s: the old user's state survived", got)
		}
		if got := rc.Value("SELECT @@sql_mode"); got == "ANSI" {
			t.Fatal("the old user's sql_mode survived")
		}
		if got := rc.Value("SELECT DATABASE()"); got != "other" {
			t.Fatalf("schema %s, want the one named in COM_CHANGE_USER", got)
		}
		h.waitPinned(t, 0)
		mysqltest.Eventually(t, "the old user's connection to close", func() bool {
			log := h.connLog(primaryName, oldConn)
			return log[len(log)-1] == "quit:"
		})
		if h.userSlots("app") != 0 || h.userSlots("bob") != 1 {
			t.Fatalf("slots: app %d, bob %d", h.userSlots("app"), h.userSlots("bob"))
		}
		// The same user again: a fresh session, counted once.
		if err := rc.ChangeUser("bob", "bobpw", "", ""); err != nil {
			t.Fatal(err)
		}
		if h.userSlots("bob") != 1 {
			t.Fatalf("bob counts %d connections", h.userSlots("bob"))
		}
		if got := rc.Value("SELECT DATABASE()"); got != "NULL" {
			t.Fatalf("schema %s after a change without one", got)
		}
	})
	t.Run("inside a transaction", func(t *testing.T) {
		h := newHarness(t, harnessConfig{})
		rc := h.login(t, mysqltest.Login{User: "app", Pass: "secret", Schema: "shop"})
		rc.MustOK(rc.Query("BEGIN"))
		rc.MustOK(rc.Query("INSERT INTO t VALUES (1)"))
		txConn, _ := h.connOf(primaryName, "INSERT")
		if err := rc.ChangeUser("bob", "bobpw", "", ""); err != nil {
			t.Fatal(err)
		}
		if st := rc.MustOK(rc.Query("INSERT INTO t VALUES (2)")); st.Status&mysql.SERVER_STATUS_IN_TRANS != 0 {
			t.Fatal("still in a transaction after the change of user")
		}
		mysqltest.Eventually(t, "the transaction's connection to close", func() bool {
			log := h.connLog(primaryName, txConn)
			return log[len(log)-1] == "quit:"
		})
	})
	refusals := []struct {
		name, user, pass, schema, plugin string
		code                             uint16
		msg                              string
	}{
		{"wrong password", "bob", "nope", "", "", mysql.ER_ACCESS_DENIED_ERROR, "bob"},
		{"unknown user", "nobody", "x", "", "", mysql.ER_ACCESS_DENIED_ERROR, "nobody"},
		{"TLS-required user over plain", "tlsonly", "tlspw", "", "", 3159, "insecure transport"},
		// Refused by the server, after the proxy accepted: rolled back.
		{"account unknown to the servers", "ghost", "ghostpw", "", "", mysql.ER_ACCESS_DENIED_ERROR, "ghost"},
		{"unknown schema", "bob", "bobpw", "nowhere", "", mysql.ER_BAD_DB_ERROR, "nowhere"},
		{"wrong password after an auth switch", "bob", "nope", "", "client_ed25519", mysql.ER_ACCESS_DENIED_ERROR, "bob"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessConfig{})
			rc, _ := changeUserSession(t, h)
			wantErr(t, rc.ChangeUser(tc.user, tc.pass, tc.schema, tc.plugin), tc.code, tc.msg)
			stillApp(t, h, rc)
			if n := h.userSlots(tc.user); n != 0 {
				t.Fatalf("%s counts %d connections after a refused change", tc.user, n)
			}
		})
	}
	t.Run("max_connections of the new user", func(t *testing.T) {
		h := newHarness(t, harnessConfig{})
		h.login(t, mysqltest.Login{User: "limited", Pass: "limpw"})
		rc, _ := changeUserSession(t, h)
		wantErr(t, rc.ChangeUser("limited", "limpw", "", ""), mysql.ER_TOO_MANY_USER_CONNECTIONS, "limited")
		stillApp(t, h, rc)
		if n := h.userSlots("limited"); n != 1 {
			t.Fatalf("limited counts %d connections", n)
		}
	})
	// MariaDB (MDEV-3915, mtr's change_user_notembedded): three refused
	// changes per connection, successful ones in between included; after
	// that every change of user gets 1047 Unknown command, the right
	// password too, and the session stays as it is.
	t.Run("three refusals, then unknown command", func(t *testing.T) {
		h := newHarness(t, harnessConfig{})
		rc, _ := changeUserSession(t, h)
		wantErr(t, rc.ChangeUser("bob", "nope", "", ""), mysql.ER_ACCESS_DENIED_ERROR, "'bob'@'127.0.0.1' (using password: YES)")
		wantErr(t, rc.ChangeUser("nobody", "", "", ""), mysql.ER_ACCESS_DENIED_ERROR, "(using password: NO)")
		if err := rc.ChangeUser("app", "secret", "", ""); err != nil {
			t.Fatal(err)
		}
		wantErr(t, rc.ChangeUser("bob", "nope", "", ""), mysql.ER_ACCESS_DENIED_ERROR, "bob")
		wantErr(t, rc.ChangeUser("bob", "bobpw", "", ""), mysql.ER_UNKNOWN_COM_ERROR, "Unknown command")
		wantErr(t, rc.ChangeUser("app", "secret", "", ""), mysql.ER_UNKNOWN_COM_ERROR, "Unknown command")
		if got := rc.Value("SELECT USER()"); !strings.HasPrefix(got, "app@") {
			t.Fatalf("after refused changes of user the server sees %s", got)
		}
	})
	t.Run("auth switch", func(t *testing.T) {
		h := newHarness(t, harnessConfig{})
		rc := h.login(t, mysqltest.Login{User: "app", Pass: "secret"})
		if err := rc.ChangeUser("hashed", "hashpw", "", "client_ed25519"); err != nil {
			t.Fatal(err)
		}
		if !rc.Switched {
			t.Fatal("no auth switch")
		}
		// The hash-only account's secret came from the switched answer.
		if got := rc.Value("SELECT USER()"); !strings.HasPrefix(got, "hashed@") {
			t.Fatalf("server user %s", got)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		h := newHarness(t, harnessConfig{})
		rc := h.login(t, mysqltest.Login{User: "app", Pass: "secret"})
		rc.Command([]byte{mysql.COM_CHANGE_USER, 'b', 'o', 'b'}) // no NUL after the name
		if e := mysqltest.ErrPacket(t, rc.ExpectClosed()); e.Code != mysql.ER_HANDSHAKE_ERROR {
			t.Fatalf("malformed COM_CHANGE_USER: %v", e)
		}
	})
}
