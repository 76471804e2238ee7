package proxy

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/backend"
	"switchyard/internal/fakemysql"
	"switchyard/internal/mysqltest"
	"switchyard/wire"
)

// preferReplica1 makes least-outstanding balancing pick replica1 first by
// counting one statement in flight on replica2 (the balancer reads that
// counter), until the test ends.
func preferReplica1(t *testing.T, h *harness) {
	h.backend(replica2Name).Outstanding.Add(1)
	t.Cleanup(func() { h.backend(replica2Name).Outstanding.Add(-1) })
}

// TestReplicaFailsBeforeRead: a replica whose connections died (a crash:
// the one idle in the pool too) fails a read before any byte of it reached
// the client; the read runs again on the other replica, and the client
// never notices. Likewise a prepared statement's execution, whether the
// statement was prepared on the dead connection before or is prepared
// there lazily now (the failure then comes in the prepare).
func TestReplicaFailsBeforeRead(t *testing.T) {
	for _, tc := range []struct {
		name string
		// read runs the read whose answer names the server.
		read func(rc *mysqltest.Client, st wire.PrepareOK) string
		// preparedOnPrimary: prepare the statement inside a transaction,
		// so that replica1 has never seen it.
		preparedOnPrimary bool
	}{
		{"text read", func(rc *mysqltest.Client, _ wire.PrepareOK) string { return rc.Value("SELECT name FROM whoami") }, false},
		{"execution", func(rc *mysqltest.Client, st wire.PrepareOK) string {
			return mysqltest.BinaryRows(rc.T, rc.Execute(st.StatementID, 0, true, int64(1)))[0][0]
		}, false},
		{"execution with a lazy prepare", func(rc *mysqltest.Client, st wire.PrepareOK) string {
			return mysqltest.BinaryRows(rc.T, rc.Execute(st.StatementID, 0, true, int64(1)))[0][0]
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessConfig{})
			preferReplica1(t, h)
			rc := h.login(t, mysqltest.Login{User: "app", Pass: "secret"})
			if tc.preparedOnPrimary {
				rc.MustOK(rc.Query("BEGIN"))
			}
			st := rc.Prepare("SELECT name FROM whoami WHERE id = ?")
			if tc.preparedOnPrimary {
				rc.MustOK(rc.Query("COMMIT"))
				if got := rc.Value("SELECT name FROM whoami"); got != replica1Name {
					t.Fatalf("read on %s", got)
				}
			} else if got := tc.read(rc, st); got != replica1Name {
				t.Fatalf("read on %s", got)
			}
			// replica1 crashes and stays down.
			f := h.fake(replica1Name)
			f.SetDown(true)
			f.KillConnections()
			mysqltest.Eventually(t, "replica1's connections to close", func() bool { return f.Conns() == 0 })
			if got := tc.read(rc, st); got != replica2Name {
				t.Fatalf("read after replica1 died on %s", got)
			}
			if h.logs.count("retrying on another server")+h.logs.count("replica unreachable") == 0 {
				t.Fatal("no retry logged")
			}
			f.SetDown(false)
		})
	}
}

// TestServerDiesMidResult: once part of a result went to the client, an
// error cannot be reported in the protocol: the proxy closes the client's
// connection, and does not run the read again elsewhere.
func TestServerDiesMidResult(t *testing.T) {
	h := newHarness(t, harnessConfig{handle: func(server string, c *fakemysql.Conn, q string) *fakemysql.Result {
		if q == "SELECT dies FROM midway" {
			r := rowsResult([]string{"a", "b"}, []string{"1", "2"}, []string{"3", "4"})
			r.CloseAfter = 3 // column count and definitions, no rows
			return r
		}
		return nil
	}})
	rc := h.login(t, mysqltest.Login{User: "app", Pass: "secret"})
	rc.Command(wire.AppendCommand(nil, mysql.COM_QUERY, "SELECT dies FROM midway"))
	got := rc.ExpectClosed()
	for _, p := range got {
		if p[0] == wire.ErrHeader {
			t.Fatalf("an error inside a result: %v", wire.ParseErr(p))
		}
	}
	if ran := h.ran("dies FROM midway"); len(ran) != 1 {
		t.Fatalf("the read ran on %v", ran)
	}
}

// TestServerDiesDuringTransactionStatement: the primary dies while a
// statement of an open transaction runs: whether it committed anything is
// unknown, and the client is told so before its connection closes.
func TestServerDiesDuringTransactionStatement(t *testing.T) {
	h := newHarness(t, harnessConfig{handle: func(server string, c *fakemysql.Conn, q string) *fakemysql.Result {
		if strings.HasPrefix(q, "INSERT INTO slow") {
			return &fakemysql.Result{Delay: time.Minute, Write: true} // cut short when the connection closes
		}
		return nil
	}})
	rc := h.login(t, mysqltest.Login{User: "app", Pass: "secret"})
	rc.MustOK(rc.Query("BEGIN"))
	rc.Command(wire.AppendCommand(nil, mysql.COM_QUERY, "INSERT INTO slow VALUES (1)"))
	mysqltest.Eventually(t, "the statement to reach the primary", func() bool {
		return slices.Contains(h.fake(primaryName).Queries(), "INSERT INTO slow VALUES (1)")
	})
	h.fake(primaryName).KillConnections()
	e := mysqltest.ErrPacket(t, rc.ExpectClosed())
	if e.Code != mysql.ER_UNKNOWN_ERROR || !strings.Contains(e.Message, "may or may not have run") {
		t.Fatalf("error %v", e)
	}
}

// TestHeldConnectionLost: the connection holding a session's transaction
// or pinned state is closed under it between statements. An operator's
// OFFLINE_HARD closes it at once; the next statement fails with an error
// saying the session's state is gone, and the client's connection closes:
// the session cannot go on without its state (a COMMIT would succeed for a
// transaction that is gone). A connection the server closed while idle
// ends the session without a word, as the server's own close would; one
// killed on the server just after its last statement is found broken by
// the next, whose error says it may not have run. None runs the statement
// on another connection.
func TestHeldConnectionLost(t *testing.T) {
	for _, tc := range []struct{ name, hold string }{
		{"OFFLINE_HARD during a transaction", "BEGIN"},
		{"OFFLINE_HARD while pinned", "SET @x = 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessConfig{})
			rc := h.login(t, mysqltest.Login{User: "app", Pass: "secret"})
			rc.MustOK(rc.Query(tc.hold))
			rc.MustOK(rc.Query("INSERT INTO t VALUES (1)"))
			h.setStatus(primaryName, backend.StatusOfflineHard)
			mysqltest.Eventually(t, "the held connection to close on the server", func() bool { return h.fake(primaryName).Conns() == 0 })
			h.setStatus(primaryName, backend.StatusOnline) // back, but the state is gone
			rc.Command(wire.AppendCommand(nil, mysql.COM_QUERY, "COMMIT"))
			e := mysqltest.ErrPacket(t, rc.ExpectClosed())
			if e.Code != mysql.ER_UNKNOWN_ERROR || !strings.Contains(e.Message, errSessionStateLost.Error()) {
				t.Fatalf("statement after OFFLINE_HARD: %v", e)
			}
			if got := h.ran("COMMIT"); len(got) != 0 {
				t.Fatalf("the statement ran on %v", got)
			}
		})
	}
	// A server ends a transaction left idle (idle_transaction_timeout,
	// wait_timeout) by closing its connection without a word: a client of
	// its own finds the connection closed at its next statement. Through
	// the proxy it must find the same, not an error of the proxy's (mtr's
	// transaction_timeout expects 2006, 2013 or 2026, a client library's
	// own errors for a closed connection).
	t.Run("closed by the server while idle", func(t *testing.T) {
		h := newHarness(t, harnessConfig{})
		rc := h.login(t, mysqltest.Login{User: "app", Pass: "secret"})
		rc.MustOK(rc.Query("BEGIN"))
		rc.MustOK(rc.Query("INSERT INTO t VALUES (1)"))
		held, _ := h.connOf(primaryName, "INSERT INTO t VALUES (1)")
		if !h.fake(primaryName).Kill(held) {
			t.Fatal("no such connection")
		}
		mysqltest.Eventually(t, "the primary to close the held connection", func() bool { return h.fake(primaryName).Conns() == 0 })
		// Connections used within backend.IdleCheckAfter are trusted
		// without a check; wait so this one is checked.
		time.Sleep(backend.IdleCheckAfter + 100*time.Millisecond)
		rc.Command(wire.AppendCommand(nil, mysql.COM_QUERY, "INSERT INTO t VALUES (2)"))
		if got := rc.ExpectClosed(); len(got) != 0 {
			t.Fatalf("the client got %x before its connection closed, want nothing, as from the server itself", got)
		}
		if got := h.ran("VALUES (2)"); len(got) != 0 {
			t.Fatalf("the statement ran on %v", got)
		}
	})
	t.Run("killed on the server", func(t *testing.T) {
		h := newHarness(t, harnessConfig{})
		rc := h.login(t, mysqltest.Login{User: "app", Pass: "secret"})
		rc.MustOK(rc.Query("BEGIN"))
		rc.MustOK(rc.Query("INSERT INTO t VALUES (1)"))
		held, _ := h.connOf(primaryName, "INSERT INTO t VALUES (1)")
		if !h.fake(primaryName).Kill(held) {
			t.Fatal("no such connection")
		}
		rc.Command(wire.AppendCommand(nil, mysql.COM_QUERY, "INSERT INTO t VALUES (2)"))
		e := mysqltest.ErrPacket(t, rc.ExpectClosed())
		if e.Code != mysql.ER_UNKNOWN_ERROR || !strings.Contains(e.Message, "lost the connection") {
			t.Fatalf("statement after the kill: %v", e)
		}
		if got := h.ran("VALUES (2)"); len(got) != 0 {
			t.Fatalf("the statement ran on %v", got)
		}
	})
}
