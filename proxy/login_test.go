package proxy

import (
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/backend"
	"switchyard/internal/mysqltest"
	"switchyard/wire"
)

// TestLoginDriver logs in through go-sql-driver, the way applications do,
// and checks who the servers saw: the proxy logs in to them as the client's
// user, with the secret it learned from the client's login.
func TestLoginDriver(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	cases := []struct {
		name, user, pass, schema string
		params                   []string
		code                     uint16 // 0: the login works
		state                    string
	}{
		{"native", "app", "secret", "shop", nil, 0, ""},
		// The account has only a password hash: SHA1(password) is recovered
		// from the client's native answer and logs in to the servers.
		{"password hash only", "hashed", "hashpw", "", nil, 0, ""},
		{"empty password", "nopw", "", "", nil, 0, ""},
		// caching_sha2_password over a plain connection: full
		// authentication with the password RSA-encrypted under the key the
		// client asks for (go-sql-driver does).
		{"caching_sha2 full auth with RSA", "sha", "shapw", "", nil, 0, ""},
		// Fast authentication now that the proxy knows the password
		// (TestLoginCachingSha2Paths takes each path on purpose).
		{"caching_sha2 over TLS", "sha", "shapw", "", []string{"tls=switchyard-test"}, 0, ""},
		{"user requiring TLS over TLS", "tlsonly", "tlspw", "", []string{"tls=switchyard-test"}, 0, ""},
		{"default schema of the account", "other", "otherpw", "", nil, 0, ""},

		{"wrong password", "app", "nope", "", nil, mysql.ER_ACCESS_DENIED_ERROR, "28000"},
		{"unknown user", "nobody", "x", "", nil, mysql.ER_ACCESS_DENIED_ERROR, "28000"},
		{"password for an account without one", "nopw", "x", "", nil, mysql.ER_ACCESS_DENIED_ERROR, "28000"},
		{"no password for an account with one", "app", "", "", nil, mysql.ER_ACCESS_DENIED_ERROR, "28000"},
		{"wrong caching_sha2 password", "sha", "nope", "", nil, mysql.ER_ACCESS_DENIED_ERROR, "28000"},
		{"hash-only account, wrong password", "hashed", "nope", "", nil, mysql.ER_ACCESS_DENIED_ERROR, "28000"},
		{"user requiring TLS over plain", "tlsonly", "tlspw", "", nil, 3159, ""},
		// The server answers the login: the schema does not exist there.
		{"unknown schema", "app", "secret", "nowhere", nil, mysql.ER_BAD_DB_ERROR, "42000"},
		// The proxy knows the account, the servers do not: their refusal
		// reaches the client unchanged.
		{"account unknown to the servers", "ghost", "ghostpw", "", nil, mysql.ER_ACCESS_DENIED_ERROR, "28000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h.resetLogs()
			db := h.db(t, tc.user, tc.pass, tc.schema, tc.params...)
			var who string
			err := db.QueryRowContext(testCtx(t), "SELECT USER()").Scan(&who)
			if tc.code != 0 {
				wantErr(t, err, tc.code, "")
				if tc.state != "" && errState(err) != tc.state {
					t.Fatalf("SQLSTATE %s, want %s", errState(err), tc.state)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(who, tc.user+"@") {
				t.Fatalf("the server saw user %q, want %s", who, tc.user)
			}
		})
	}
	// The default schema of an account is where its sessions start.
	c := h.session(t, "other", "otherpw", "")
	if got := mustValue(t, c, "SELECT DATABASE()"); got != "other" {
		t.Fatalf("DATABASE() = %s, want the account's default schema", got)
	}
}

// TestLoginCachingSha2Paths follows caching_sha2_password through the raw
// client: a full authentication (RSA with the key asked for, RSA with a
// key the client knows, or the password over TLS) teaches the proxy the
// password, after which a fast answer is accepted; a reload of the accounts
// forgets it.
func TestLoginCachingSha2Paths(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	key := &testCert().Key.PublicKey
	steps := []struct {
		name   string
		login  mysqltest.Login
		path   string
		ok     bool
		reload bool // replace the accounts first
	}{
		{"first login: full auth, client asks for the key", mysqltest.Login{User: "sha", Pass: "shapw"}, "full", true, false},
		{"then fast", mysqltest.Login{User: "sha", Pass: "shapw", Plugin: mysql.AUTH_CACHING_SHA2_PASSWORD}, "fast", true, false},
		{"wrong password fast answer: full auth fails", mysqltest.Login{User: "sha", Pass: "nope", Plugin: mysql.AUTH_CACHING_SHA2_PASSWORD}, "full", false, false},
		{"after a reload: full again, key known", mysqltest.Login{User: "sha", Pass: "shapw", Plugin: mysql.AUTH_CACHING_SHA2_PASSWORD, PubKey: key}, "full", true, true},
		{"fast again", mysqltest.Login{User: "sha", Pass: "shapw", Plugin: mysql.AUTH_CACHING_SHA2_PASSWORD}, "fast", true, false},
		{"after a reload: full over TLS", mysqltest.Login{User: "sha", Pass: "shapw", Plugin: mysql.AUTH_CACHING_SHA2_PASSWORD, TLS: true}, "full", true, true},
		{"wrong password over TLS", mysqltest.Login{User: "sha", Pass: "nope", Plugin: mysql.AUTH_CACHING_SHA2_PASSWORD, TLS: true}, "full", false, false},
		{"fast after TLS", mysqltest.Login{User: "sha", Pass: "shapw", Plugin: mysql.AUTH_CACHING_SHA2_PASSWORD}, "fast", true, false},
		// A native client of a caching_sha2 account is switched to it.
		{"native client switched", mysqltest.Login{User: "sha", Pass: "shapw", Plugin: mysql.AUTH_NATIVE_PASSWORD}, "fast", true, false},
	}
	for _, st := range steps {
		if st.reload {
			if err := h.srv.SetUsers(testUsers); err != nil {
				t.Fatal(err)
			}
		}
		rc := h.dial(t)
		err := rc.Login(st.login)
		if rc.Sha2Path != st.path || (err == nil) != st.ok {
			t.Fatalf("%s: path %q, err %v; want path %q, ok %v", st.name, rc.Sha2Path, err, st.path, st.ok)
		}
		if err != nil {
			wantErr(t, err, mysql.ER_ACCESS_DENIED_ERROR, "")
			continue
		}
		// The proxy logged in to a server with what it learned.
		if got := rc.Value("SELECT USER()"); !strings.HasPrefix(got, "sha@") {
			t.Fatalf("%s: server user %s", st.name, got)
		}
		rc.Conn.Close()
	}

	// An RSA answer that does not decrypt is a wrong password.
	rc := h.dial(t)
	rc.ReadGreeting()
	rc.Write(handshakeResponse(rawCaps, "sha", mysql.CalcCachingSha2Password(rc.Scramble, []byte("bad")), "", mysql.AUTH_CACHING_SHA2_PASSWORD))
	if d, _ := wire.ParseAuthMoreData(rc.Read()); len(d) != 1 || d[0] != wire.CachingSha2FullAuth {
		t.Fatalf("want full authentication, got %x", d)
	}
	rc.Write([]byte("not an RSA ciphertext"))
	if e := wire.ParseErr(rc.Read()); e.Code != mysql.ER_ACCESS_DENIED_ERROR {
		t.Fatalf("garbage RSA answer: %v", e)
	}
}

// TestLoginAuthSwitch: a client answering for a plugin the proxy cannot
// check for the account is switched to the account's; one answering for
// caching_sha2_password keeps it when the account has a plain password (as
// a server lets it), but a hash-only account is always moved to native,
// since a caching_sha2 answer cannot be checked against a native hash.
func TestLoginAuthSwitch(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	cases := []struct {
		user, pass, plugin string
		switched           bool
		sha2Path           string
	}{
		{"app", "secret", mysql.AUTH_CACHING_SHA2_PASSWORD, false, "full"},
		{"app", "secret", mysql.AUTH_CACHING_SHA2_PASSWORD, false, "fast"},
		{"app", "secret", "client_ed25519", true, ""},
		{"hashed", "hashpw", mysql.AUTH_CACHING_SHA2_PASSWORD, true, ""},
		{"hashed", "hashpw", mysql.AUTH_NATIVE_PASSWORD, false, ""},
		{"app", "secret", mysql.AUTH_NATIVE_PASSWORD, false, ""},
		{"nopw", "", mysql.AUTH_CACHING_SHA2_PASSWORD, true, ""},
	}
	for _, tc := range cases {
		rc := h.dial(t)
		if err := rc.Login(mysqltest.Login{User: tc.user, Pass: tc.pass, Plugin: tc.plugin}); err != nil {
			t.Fatalf("%s answering for %s: %v", tc.user, tc.plugin, err)
		}
		if rc.Switched != tc.switched || rc.Sha2Path != tc.sha2Path {
			t.Fatalf("%s answering for %s: switched %v, caching_sha2 path %q", tc.user, tc.plugin, rc.Switched, rc.Sha2Path)
		}
		if got := rc.Value("SELECT USER()"); !strings.HasPrefix(got, tc.user+"@") {
			t.Fatalf("server user %s", got)
		}
		rc.Conn.Close()
	}
}

// TestLoginRequireTLS: with listener-wide RequireTLS every plain login is
// refused with 3159 and TLS logins work.
func TestLoginRequireTLS(t *testing.T) {
	h := newHarness(t, harnessConfig{listener: ListenerOptions{RequireTLS: true}})
	rc := h.dial(t)
	err := rc.Login(mysqltest.Login{User: "app", Pass: "secret"})
	wantErr(t, err, 3159, "insecure transport")
	rc.ExpectClosed()
	rc = h.login(t, mysqltest.Login{User: "app", Pass: "secret", TLS: true})
	if got := rc.Value("SELECT 'ok'"); got != "ok" {
		t.Fatal(got)
	}
	if rc.Compress {
		t.Fatal("compression without asking")
	}
}

// TestLoginConnectionLimits: users[].max_connections (1203, the slot freed
// when the session ends) and the listener's MaxClientConnections (1040).
func TestLoginConnectionLimits(t *testing.T) {
	t.Run("per user", func(t *testing.T) {
		h := newHarness(t, harnessConfig{})
		first := h.login(t, mysqltest.Login{User: "limited", Pass: "limpw"})
		rc := h.dial(t)
		wantErr(t, rc.Login(mysqltest.Login{User: "limited", Pass: "limpw"}), mysql.ER_TOO_MANY_USER_CONNECTIONS, "limited")
		// Other users are not limited by it.
		h.login(t, mysqltest.Login{User: "app", Pass: "secret"})
		first.Command([]byte{mysql.COM_QUIT})
		first.ExpectClosed()
		mysqltest.Eventually(t, "the slot to be given back", func() bool {
			rc := h.dial(t)
			err := rc.Login(mysqltest.Login{User: "limited", Pass: "limpw"})
			rc.Conn.Close()
			return err == nil
		})
	})
	t.Run("clients", func(t *testing.T) {
		h := newHarness(t, harnessConfig{listener: ListenerOptions{MaxClientConnections: 1}})
		h.login(t, mysqltest.Login{User: "app", Pass: "secret"})
		rc := h.dial(t)
		// Refused before the greeting.
		p, err := rc.ReadPacket()
		if err != nil {
			t.Fatal(err)
		}
		if e := wire.ParseErr(p); e.Code != mysql.ER_CON_COUNT_ERROR {
			t.Fatalf("second client: %v", e)
		}
		rc.ExpectClosed()
	})
}

// TestLoginServerFull: a server at servers[].max_connections whose only
// connection is held by a transaction makes a new login wait for one and
// fail with 1040 when none comes free.
func TestLoginServerFull(t *testing.T) {
	h := newHarness(t, harnessConfig{connectTimeout: 300 * time.Millisecond,
		spec: func(i int, s *backend.ServerSpec) { s.MaxConnections = 1 }})
	holder := h.login(t, mysqltest.Login{User: "app", Pass: "secret"})
	holder.MustOK(holder.Query("BEGIN"))
	rc := h.dial(t)
	wantErr(t, rc.Login(mysqltest.Login{User: "app", Pass: "secret"}), mysql.ER_CON_COUNT_ERROR, "max_connections")
	// And once the transaction ends, the connection is free again.
	holder.MustOK(holder.Query("COMMIT"))
	h.login(t, mysqltest.Login{User: "app", Pass: "secret"})
}

// TestLoginHandshakeCorners: what the listener does with clients that do
// not log in properly.
func TestLoginHandshakeCorners(t *testing.T) {
	t.Run("handshake timeout", func(t *testing.T) {
		h := newHarness(t, harnessConfig{listener: ListenerOptions{HandshakeTimeout: 200 * time.Millisecond}})
		rc := h.dial(t)
		rc.ReadGreeting()
		// Says nothing: dropped once the handshake timeout passes.
		rc.ExpectClosed()
		mysqltest.Eventually(t, "the log line", func() bool { return h.logs.count("did not finish the handshake") == 1 })
	})
	t.Run("client without the 4.1 protocol", func(t *testing.T) {
		h := newHarness(t, harnessConfig{})
		rc := h.dial(t)
		rc.ReadGreeting()
		rc.Write(handshakeResponse(mysql.CLIENT_LONG_PASSWORD, "app", nil, "", ""))
		if e := mysqltest.ErrPacket(t, rc.ExpectClosed()); e.Code != mysql.ER_NOT_SUPPORTED_AUTH_MODE {
			t.Fatalf("pre-4.1 client: %v", e)
		}
	})
	t.Run("malformed handshake response", func(t *testing.T) {
		h := newHarness(t, harnessConfig{})
		rc := h.dial(t)
		rc.ReadGreeting()
		rc.Write([]byte{1, 2, 3})
		if e := mysqltest.ErrPacket(t, rc.ExpectClosed()); e.Code != mysql.ER_HANDSHAKE_ERROR {
			t.Fatalf("malformed response: %v", e)
		}
	})
	t.Run("SSL request without TLS configured", func(t *testing.T) {
		h := newHarness(t, harnessConfig{noTLS: true})
		rc := h.dial(t)
		g := rc.ReadGreeting()
		if g.Capabilities&mysql.CLIENT_SSL != 0 {
			t.Fatal("CLIENT_SSL offered without a TLS configuration")
		}
		rc.Write(wire.AppendHandshakeResponse(nil, &wire.HandshakeResponse{Capabilities: rawCaps | mysql.CLIENT_SSL, SSLRequest: true}))
		if e := mysqltest.ErrPacket(t, rc.ExpectClosed()); e.Code != mysql.ER_HANDSHAKE_ERROR || !strings.Contains(e.Message, "TLS") {
			t.Fatalf("SSL request: %v", e)
		}
	})
	t.Run("second SSL request inside TLS", func(t *testing.T) {
		h := newHarness(t, harnessConfig{})
		rc := h.dial(t)
		rc.ReadGreeting()
		rc.Write(wire.AppendHandshakeResponse(nil, &wire.HandshakeResponse{Capabilities: rawCaps | mysql.CLIENT_SSL, SSLRequest: true}))
		if err := rc.UpgradeTLS(); err != nil {
			t.Fatal(err)
		}
		rc.Write(wire.AppendHandshakeResponse(nil, &wire.HandshakeResponse{Capabilities: rawCaps | mysql.CLIENT_SSL, SSLRequest: true}))
		if e := mysqltest.ErrPacket(t, rc.ExpectClosed()); e.Code != mysql.ER_HANDSHAKE_ERROR {
			t.Fatalf("second SSL request: %v", e)
		}
	})
	t.Run("client leaves during login", func(t *testing.T) {
		h := newHarness(t, harnessConfig{})
		rc := h.dial(t)
		rc.ReadGreeting()
		rc.Conn.Close()
		mysqltest.Eventually(t, "the connection to end", func() bool { return h.srv.connections() == 0 })
	})
	t.Run("sequence id out of order during login", func(t *testing.T) {
		h := newHarness(t, harnessConfig{})
		rc := h.dial(t)
		rc.ReadGreeting()
		rc.Seq = 5
		rc.Write(handshakeResponse(rawCaps, "app", nil, "", ""))
		// As MariaDB 10.11: 1156 with the sequence id expected (1).
		rc.Seq = 1
		if e := mysqltest.ErrPacket(t, rc.ExpectClosed()); e.Code != mysql.ER_NET_PACKETS_OUT_OF_ORDER || e.State != "08S01" {
			t.Fatalf("login out of order: %v", e)
		}
	})
}

// TestLoginServerDown: with every server down a client gets an error
// saying the proxy cannot reach one; with the primary down (the monitor
// says so) but the replicas up, the login works on a replica, reads work
// and writes fail.
func TestLoginServerDown(t *testing.T) {
	t.Run("all down", func(t *testing.T) {
		h := newHarness(t, harnessConfig{connectTimeout: 2 * time.Second})
		for _, f := range h.fakes {
			f.SetDown(true)
		}
		rc := h.dial(t)
		wantErr(t, rc.Login(mysqltest.Login{User: "app", Pass: "secret"}), mysql.ER_UNKNOWN_ERROR, "cannot reach a server")
	})
	t.Run("primary down", func(t *testing.T) {
		h := newHarness(t, harnessConfig{probing: true})
		h.fake(primaryName).SetDown(true)
		h.probe()
		if _, err := h.cluster.Primary(); err == nil {
			t.Fatal("the monitor still sees a primary")
		}
		c := h.session(t, "app", "secret", "shop")
		if who := mustValue(t, c, "SELECT name FROM whoami"); who != replica1Name && who != replica2Name {
			t.Fatalf("read served by %s", who)
		}
		_, err := c.ExecContext(testCtx(t), "INSERT INTO t VALUES (1)")
		wantErr(t, err, mysql.ER_UNKNOWN_ERROR, "no writable primary: primary is unreachable since")
		h.fake(primaryName).SetDown(false)
	})
	t.Run("primary unreachable before the monitor noticed", func(t *testing.T) {
		// The monitor last saw the primary up: the login tries it, fails
		// to connect, and is checked on a replica instead; so is a change
		// of user.
		h := newHarness(t, harnessConfig{probing: true})
		h.fake(primaryName).SetDown(true)
		defer h.fake(primaryName).SetDown(false)
		rc := h.login(t, mysqltest.Login{User: "app", Pass: "secret", Schema: "shop"})
		if who := rc.Value("SELECT name FROM whoami"); who != replica1Name && who != replica2Name {
			t.Fatalf("read served by %s", who)
		}
		if err := rc.ChangeUser("bob", "bobpw", "shop", ""); err != nil {
			t.Fatalf("change of user with the primary unreachable: %v", err)
		}
		if got := rc.Value("SELECT USER()"); !strings.HasPrefix(got, "bob@") {
			t.Fatalf("after the change of user the server sees %s", got)
		}
		// A server's own refusal still reaches the client.
		rc2 := h.dial(t)
		wantErr(t, rc2.Login(mysqltest.Login{User: "app", Pass: "secret", Schema: "nosuch"}), mysql.ER_BAD_DB_ERROR, "")
	})
}

// TestAccessDeniedNamesTheClientAsTheServers: a refused loopback client is
// named by its address, as servers with skip_name_resolve name it, and
// 'localhost' when the servers resolve names (MariaDB's default; mtr's
// change_user_notembedded and grant expect it).
func TestAccessDeniedNamesTheClientAsTheServers(t *testing.T) {
	for _, tc := range []struct {
		resolves bool
		host     string
	}{{false, "127.0.0.1"}, {true, "localhost"}} {
		h := newHarness(t, harnessConfig{listener: ListenerOptions{ResolvesNames: func() bool { return tc.resolves }}})
		err := h.db(t, "app", "nope", "").PingContext(testCtx(t))
		wantErr(t, err, mysql.ER_ACCESS_DENIED_ERROR, "Access denied for user 'app'@'"+tc.host+"' (using password: YES)")
	}
}
