package proxy

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/backend"
	"switchyard/conf"
	"switchyard/internal/fakemysql"
	"switchyard/internal/mysqltest"
	"switchyard/wire"
)

// logIndex returns the position of the first entry of log containing s, or
// -1.
func logIndex(log []string, s string) int {
	return slices.IndexFunc(log, func(e string) bool { return strings.Contains(e, s) })
}

// TestStateReplayedBeforeStatements: SET and USE run on the primary; a
// read on a replica connection that has not seen them gets them replayed
// first, in order, on that connection.
func TestStateReplayedBeforeStatements(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	h.setStatus(replica2Name, backend.StatusOfflineSoft) // one replica: its log tells the story
	c := h.session(t, "app", "secret", "shop")
	mustExec(t, c, "SET sql_mode = 'ANSI'")
	mustExec(t, c, "USE other")
	h.ranOn("SET sql_mode = 'ANSI'", primaryName)
	if got := mustValue(t, c, "SELECT @@sql_mode"); got != "ANSI" {
		t.Fatalf("sql_mode on the replica: %s", got)
	}
	if got := mustValue(t, c, "SELECT DATABASE()"); got != "other" {
		t.Fatalf("schema on the replica: %s", got)
	}
	id, ok := h.connOf(replica1Name, "SELECT @@sql_mode")
	if !ok {
		t.Fatal("the read did not reach replica1")
	}
	log := h.connLog(replica1Name, id)
	set, use, sel := logIndex(log, "SET sql_mode = 'ANSI'"), logIndex(log, "USE other"), logIndex(log, "SELECT @@sql_mode")
	if set < 0 || use < set || sel < use {
		t.Fatalf("replica connection's commands: %q", log)
	}
	// The replay happens once: the connection now carries the state.
	mustValue(t, c, "SELECT 'again'")
	if log := h.connLog(replica1Name, id); strings.Count(strings.Join(log, "\n"), "SET sql_mode") != 1 {
		t.Fatalf("state replayed again on a connection that had it: %q", log)
	}
}

// TestStateReplicasRefuse: session state that the replicas refuse to
// replay (a variable only the primary has, say) keeps the session's reads
// on the primary instead of failing them.
func TestStateReplicasRefuse(t *testing.T) {
	h := newHarness(t, harnessConfig{handle: func(server string, c *fakemysql.Conn, q string) *fakemysql.Result {
		if server != primaryName && strings.HasPrefix(q, "SET primary_only") {
			return &fakemysql.Result{Err: mysql.NewError(mysql.ER_UNKNOWN_SYSTEM_VARIABLE, "Unknown system variable 'primary_only'")}
		}
		return nil
	}})
	c := h.session(t, "app", "secret", "shop")
	if got := mustValue(t, c, "SELECT name FROM whoami"); !isReplica(got) {
		t.Fatalf("read on %s", got)
	}
	mustExec(t, c, "SET primary_only = 1")
	if got := mustValue(t, c, "SELECT name FROM whoami"); got != primaryName {
		t.Fatalf("read on %s, which refuses the session's state", got)
	}
	if n := h.logs.count("bringing session state to server"); n == 0 {
		t.Fatal("the refusal was not logged")
	}
}

// TestPooledConnectionTakesThisSessionsState: a connection another session
// left in the pool with its state is reset (COM_RESET_CONNECTION) and gets
// this session's state before it serves it.
func TestPooledConnectionTakesThisSessionsState(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	h.setStatus(replica2Name, backend.StatusOfflineSoft)
	a := h.session(t, "app", "secret", "shop")
	b := h.session(t, "app", "secret", "shop")
	mustExec(t, a, "SET sql_mode = 'ANSI'")
	if got := mustValue(t, a, "SELECT @@sql_mode AS a1"); got != "ANSI" {
		t.Fatal(got)
	}
	idA, _ := h.connOf(replica1Name, "a1")
	mustExec(t, b, "SET sql_mode = 'TRADITIONAL'")
	if got := mustValue(t, b, "SELECT @@sql_mode AS b1"); got != "TRADITIONAL" {
		t.Fatalf("session B sees sql_mode %s", got)
	}
	idB, _ := h.connOf(replica1Name, "b1")
	if idA != idB {
		t.Fatalf("B did not reuse A's idle connection (%d, %d)", idA, idB)
	}
	log := h.connLog(replica1Name, idB)
	a1, reset, set, b1 := logIndex(log, "a1"), logIndex(log, "reset_connection:"), logIndex(log, "TRADITIONAL"), logIndex(log, "b1")
	if !(a1 < reset && reset < set && set < b1) {
		t.Fatalf("connection's commands: %q", log)
	}
	// And A, back on it, gets its own state again.
	if got := mustValue(t, a, "SELECT @@sql_mode AS a2"); got != "ANSI" {
		t.Fatalf("session A sees sql_mode %s", got)
	}
}

// TestPooledConnectionSchemaAfterReset: a session that logged in without a
// schema must not inherit the schema another session chose with USE on the
// pooled connection it gets. COM_RESET_CONNECTION keeps the current schema
// (MariaDB's THD::change_user; the fake does the same) and nothing
// unselects one, so the pool must not hand such a connection to such a
// session: DATABASE() would say the other schema, and unqualified table
// names would resolve there.
func TestPooledConnectionSchemaAfterReset(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	h.setStatus(replica2Name, backend.StatusOfflineSoft)
	a := h.session(t, "app", "secret", "")
	b := h.session(t, "app", "secret", "")
	mustExec(t, a, "USE other")
	if got := mustValue(t, a, "SELECT DATABASE() AS a1"); got != "other" {
		t.Fatal(got)
	}
	// a's session ends; its connections (in schema other) go back to the
	// pool before it is unregistered.
	a.Close()
	mysqltest.Eventually(t, "a's session to end", func() bool { return h.srv.connections() == 1 })
	if got := mustValue(t, b, "SELECT DATABASE() AS b1"); got != "NULL" {
		t.Fatalf("a session without a schema runs in %s, another session's", got)
	}
}

// TestPins: state that cannot be replayed holds the session on the
// connection that has it (even reads stay there instead of going to a
// replica), counted in the pinned-sessions counter, until the client drops
// it; a session that ends pinned has that connection closed, not pooled.
func TestPins(t *testing.T) {
	cases := []struct {
		name  string
		pin   []string
		unpin string // "": lasts as long as the session
	}{
		{"user variable", []string{"SET @x = 1"}, ""},
		{"temporary table", []string{"CREATE TEMPORARY TABLE tmp (a INT)"}, "DROP TEMPORARY TABLE tmp"},
		{"LOCK TABLES", []string{"LOCK TABLES t WRITE"}, "UNLOCK TABLES"},
		{"text PREPARE", []string{"PREPARE s FROM 'SELECT 1'"}, "DEALLOCATE PREPARE s"},
		{"GET_LOCK", []string{"SELECT GET_LOCK('l', 1)"}, ""},
		{"multi-statement SET", []string{"SET sql_mode = 'ANSI'; SELECT 1"}, ""},
		{"state changed too often to replay", func() []string {
			var sets []string
			for i := range 70 {
				sets = append(sets, fmt.Sprintf("SET @@session.v%d = %d", i, i))
			}
			return sets
		}(), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessConfig{routing: Routing{ReadYourWrites: conf.RYWOff}})
			c := h.session(t, "app", "secret", "shop", "multiStatements=true")
			for _, q := range tc.pin {
				mustExec(t, c, q)
			}
			last := tc.pin[len(tc.pin)-1]
			pinnedOn, ok := h.connOf(primaryName, last)
			if !ok {
				t.Fatalf("%s did not run on the primary", last)
			}
			h.waitPinned(t, 1)
			for i := range 3 {
				q := fmt.Sprintf("SELECT name FROM whoami WHERE n = %d", i)
				if got := mustValue(t, c, q); got != primaryName {
					t.Fatalf("read of a pinned session on %s", got)
				}
				if id, _ := h.connOf(primaryName, q); id != pinnedOn {
					t.Fatalf("read on connection %d, the pin is on %d", id, pinnedOn)
				}
			}
			if tc.unpin == "" {
				c.Close()
				h.waitPinned(t, 0)
				mysqltest.Eventually(t, "the pinned connection to be closed", func() bool {
					log := h.connLog(primaryName, pinnedOn)
					return len(log) > 0 && log[len(log)-1] == "quit:"
				})
				return
			}
			mustExec(t, c, tc.unpin)
			h.waitPinned(t, 0)
			if got := mustValue(t, c, "SELECT name FROM whoami"); !isReplica(got) {
				t.Fatalf("read after %s on %s", tc.unpin, got)
			}
		})
	}
}

// TestMultiplexing: with multiplexing a session's connections go back to
// the pool between statements and the next session uses them; with it
// disabled each session keeps its own for its whole life, and they are
// closed when it ends.
func TestMultiplexing(t *testing.T) {
	for _, noMux := range []bool{false, true} {
		t.Run(fmt.Sprintf("disabled=%v", noMux), func(t *testing.T) {
			h := newHarness(t, harnessConfig{noMux: noMux})
			a := h.session(t, "app", "secret", "shop")
			b := h.session(t, "app", "secret", "shop")
			mustExec(t, a, "INSERT INTO t VALUES (1)")
			mustValue(t, a, "SELECT 'a done'") // the INSERT's connection is no longer held for LAST_INSERT_ID
			idA, _ := h.connOf(primaryName, "VALUES (1)")
			mustExec(t, b, "INSERT INTO t VALUES (2)")
			idB, _ := h.connOf(primaryName, "VALUES (2)")
			if shared := idA == idB; shared == noMux {
				t.Fatalf("A on %d, B on %d", idA, idB)
			}
			if !noMux {
				return
			}
			// A still holds its connection; closing A closes it.
			if log := h.connLog(primaryName, idA); log[len(log)-1] == "quit:" {
				t.Fatal("A's connection closed while A is open")
			}
			a.Close()
			mysqltest.Eventually(t, "A's connection to close", func() bool {
				log := h.connLog(primaryName, idA)
				return log[len(log)-1] == "quit:"
			})
		})
	}
}

// TestHoldLast: after a write the session keeps its connection until its
// next statement, which may read the write's outcome (LAST_INSERT_ID):
// another session cannot take it in between.
func TestHoldLast(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	a := h.session(t, "app", "secret", "shop")
	b := h.session(t, "app", "secret", "shop")
	mustExec(t, a, "INSERT INTO t VALUES (1)")
	idA, _ := h.connOf(primaryName, "VALUES (1)")
	mustExec(t, b, "INSERT INTO t VALUES (2)")
	idB, _ := h.connOf(primaryName, "VALUES (2)")
	if idA == idB {
		t.Fatal("another session ran on the connection the write's session holds")
	}
	// The fakes answer LAST_INSERT_ID() with the id of the connection.
	if got := mustValue(t, a, "SELECT LAST_INSERT_ID()"); got != fmt.Sprint(idA) {
		t.Fatalf("LAST_INSERT_ID() ran on connection %s, the INSERT on %d", got, idA)
	}
}

// TestResetConnection: COM_RESET_CONNECTION resets every server connection
// the session holds and the session's own state: no replay, no pins.
func TestResetConnection(t *testing.T) {
	for _, noMux := range []bool{false, true} {
		t.Run(fmt.Sprintf("multiplexing disabled=%v", noMux), func(t *testing.T) {
			h := newHarness(t, harnessConfig{noMux: noMux})
			h.setStatus(replica2Name, backend.StatusOfflineSoft)
			rc := h.login(t, mysqltest.Login{User: "app", Pass: "secret", Schema: "shop"})
			rc.MustOK(rc.Query("SET sql_mode = 'ANSI'"))
			if got := rc.Value("SELECT @@sql_mode AS r1"); got != "ANSI" {
				t.Fatal(got)
			}
			rc.MustOK(rc.Query("SET @x = 1"))
			h.waitPinned(t, 1)
			rc.MustOK(rc.Cmd(mysql.COM_RESET_CONNECTION, "", wire.ShapeOne))
			h.waitPinned(t, 0)
			primaryID, _ := h.connOf(primaryName, "SET @x")
			if log := h.connLog(primaryName, primaryID); logIndex(log, "reset_connection:") < 0 {
				t.Fatalf("primary connection not reset: %q", log)
			}
			replicaID, _ := h.connOf(replica1Name, "r1")
			replicaReset := logIndex(h.connLog(replica1Name, replicaID), "reset_connection:") >= 0
			if replicaReset != noMux {
				// With multiplexing the replica connection was back in the
				// pool: not the session's to reset.
				t.Fatalf("replica connection reset: %v", replicaReset)
			}
			if got := rc.Value("SELECT @x"); got != "NULL" {
				t.Fatalf("@x = %s after reset", got)
			}
			if got := rc.Value("SELECT @@sql_mode AS r2"); got == "ANSI" {
				t.Fatal("sql_mode survived the reset")
			}
			if n := strings.Count(strings.Join(h.fake(replica1Name).Queries(), "\n"), "SET sql_mode"); n != 1 {
				t.Fatalf("SET replayed %d times on the replica", n)
			}
		})
	}
}

// TestServerClosedIdleConnection: a server that closes a connection while
// it sits idle (wait_timeout, a restart) is noticed before the next
// statement, which runs on a new connection without the client noticing:
// for the pool's connections and for one a session keeps.
func TestServerClosedIdleConnection(t *testing.T) {
	for _, noMux := range []bool{false, true} {
		t.Run(fmt.Sprintf("multiplexing disabled=%v", noMux), func(t *testing.T) {
			h := newHarness(t, harnessConfig{noMux: noMux})
			rc := h.login(t, mysqltest.Login{User: "app", Pass: "secret", Schema: "shop"})
			rc.MustOK(rc.Query("INSERT INTO t VALUES (1)"))
			rc.Value("SELECT 'next'") // ends the hold on the write's connection
			before, _ := h.connOf(primaryName, "VALUES (1)")
			h.fake(primaryName).KillConnections()
			mysqltest.Eventually(t, "the primary to close its connections", func() bool { return h.fake(primaryName).Conns() == 0 })
			// Connections used within backend.IdleCheckAfter are trusted
			// without a check; wait so this one is checked.
			time.Sleep(backend.IdleCheckAfter + 100*time.Millisecond)
			if ok := rc.MustOK(rc.Query("INSERT INTO t VALUES (2)")); ok.AffectedRows != 1 {
				t.Fatalf("write after the close: %+v", ok)
			}
			if after, _ := h.connOf(primaryName, "VALUES (2)"); after == before {
				t.Fatal("ran on the closed connection")
			}
		})
	}
}

// TestResetConnectionKeepsSchema: COM_RESET_CONNECTION keeps the current
// schema (MariaDB's reset does), on every connection of the session, and a
// connection it leaves in the pool is not handed to another session as if
// it were at the login schema.
func TestResetConnectionKeepsSchema(t *testing.T) {
	for _, noMux := range []bool{false, true} {
		t.Run(fmt.Sprintf("multiplexing disabled=%v", noMux), func(t *testing.T) {
			h := newHarness(t, harnessConfig{noMux: noMux})
			a := h.login(t, mysqltest.Login{User: "app", Pass: "secret", Schema: "shop"})
			if got := a.Value("SELECT DATABASE()"); got != "shop" { // a replica connection at the login schema
				t.Fatal(got)
			}
			a.MustOK(a.Query("USE other"))
			a.MustOK(a.Cmd(mysql.COM_RESET_CONNECTION, "", wire.ShapeOne))
			for range 2 {
				if got := a.Value("SELECT DATABASE()"); got != "other" {
					t.Fatalf("schema on a replica after the reset: %s", got)
				}
				if got := a.Value("SELECT DATABASE() /* switchyard:route=primary */"); got != "other" {
					t.Fatalf("schema on the primary after the reset: %s", got)
				}
			}
			b := h.login(t, mysqltest.Login{User: "app", Pass: "secret", Schema: "shop"})
			if got := b.Value("SELECT DATABASE() /* switchyard:route=primary */"); got != "shop" {
				t.Fatalf("another session logged in to shop runs in %s", got)
			}
			if got := b.Value("SELECT DATABASE()"); got != "shop" {
				t.Fatalf("another session logged in to shop reads in %s", got)
			}
		})
	}
}
