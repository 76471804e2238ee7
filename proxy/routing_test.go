package proxy

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/backend"
	"switchyard/conf"
	"switchyard/internal/fakemysql"
)

func isReplica(name string) bool { return name == replica1Name || name == replica2Name }

// TestRouting: where statements go, as the router decides and the session
// applies it, seen in the fakes' logs. Each case runs in the same session,
// one after the other. Read-your-writes is off: TestReadYourWrites covers
// what a write changes.
func TestRouting(t *testing.T) {
	h := newHarness(t, harnessConfig{routing: Routing{ReadYourWrites: conf.RYWOff}, rules: []conf.QueryRule{
		{Name: "forced", Match: `(?i)from whoami where forced`, Route: conf.RoutePrimary},
		{Name: "ids to replicas", Match: `@@server_id AS by_rule`, Route: conf.RouteReplica},
		{Name: "nodrop", Match: `(?i)^drop table`, Error: "dropping tables is not allowed here"},
	}})
	c := h.session(t, "app", "secret", "shop")
	// where runs q and returns the server the fakes' logs say ran it.
	where := func(t *testing.T, q string) string {
		t.Helper()
		h.resetLogs()
		if _, err := c.ExecContext(testCtx(t), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		got := h.ran(q)
		if len(got) != 1 {
			t.Fatalf("%s ran on %v", q, got)
		}
		return got[0]
	}
	t.Run("read to a replica", func(t *testing.T) {
		if got := where(t, "SELECT name FROM whoami"); !isReplica(got) {
			t.Fatalf("read on %s", got)
		}
	})
	t.Run("write to the primary", func(t *testing.T) {
		if got := where(t, "INSERT INTO t VALUES (1)"); got != primaryName {
			t.Fatalf("write on %s", got)
		}
	})
	t.Run("reads balanced over both replicas", func(t *testing.T) {
		seen := map[string]bool{}
		for range 6 {
			seen[mustValue(t, c, "SELECT name FROM whoami")] = true
		}
		if !seen[replica1Name] || !seen[replica2Name] || seen[primaryName] {
			t.Fatalf("reads went to %v", seen)
		}
	})
	t.Run("transaction on the primary", func(t *testing.T) {
		mustExec(t, c, "BEGIN")
		if got := mustValue(t, c, "SELECT name FROM whoami"); got != primaryName {
			t.Fatalf("read in a transaction on %s", got)
		}
		mustExec(t, c, "COMMIT")
		if got := mustValue(t, c, "SELECT name FROM whoami"); !isReplica(got) {
			t.Fatalf("read after the transaction on %s", got)
		}
	})
	t.Run("read-only transaction on one replica", func(t *testing.T) {
		h.resetLogs()
		mustExec(t, c, "START TRANSACTION READ ONLY")
		first := mustValue(t, c, "SELECT name FROM whoami WHERE n = 1")
		second := mustValue(t, c, "SELECT name FROM whoami WHERE n = 2")
		if !isReplica(first) || second != first {
			t.Fatalf("read-only transaction's reads on %s and %s", first, second)
		}
		id1, _ := h.connOf(first, "n = 1")
		id2, _ := h.connOf(first, "n = 2")
		begin, _ := h.connOf(first, "START TRANSACTION READ ONLY")
		if id1 != id2 || id1 != begin {
			t.Fatalf("read-only transaction on connections %d, %d, %d", begin, id1, id2)
		}
		mustExec(t, c, "COMMIT")
		h.ranOn("COMMIT", first)
	})
	t.Run("hints", func(t *testing.T) {
		if got := where(t, "/* switchyard:route=primary */ SELECT name FROM whoami"); got != primaryName {
			t.Fatalf("primary hint: %s", got)
		}
		// @@server_id reads a per-server variable: the primary, unless
		// a hint says otherwise.
		if got := where(t, "SELECT @@server_id"); got != primaryName {
			t.Fatalf("server variable read on %s", got)
		}
		if got := where(t, "SELECT @@server_id /* switchyard:route=replica */"); !isReplica(got) {
			t.Fatalf("replica hint: %s", got)
		}
		// A write is never sent to a replica, hint or not.
		if got := where(t, "/* switchyard:route=replica */ INSERT INTO t VALUES (2)"); got != primaryName {
			t.Fatalf("write with a replica hint on %s", got)
		}
	})
	t.Run("query rules", func(t *testing.T) {
		if got := where(t, "SELECT name FROM whoami WHERE forced = 1"); got != primaryName {
			t.Fatalf("primary rule: %s", got)
		}
		if got := where(t, "SELECT @@server_id AS by_rule"); !isReplica(got) {
			t.Fatalf("replica rule: %s", got)
		}
		h.resetLogs()
		_, err := c.ExecContext(testCtx(t), "DROP TABLE t")
		wantErr(t, err, mysql.ER_UNKNOWN_ERROR, `dropping tables is not allowed here (query rule "nodrop")`)
		if got := h.ran("DROP TABLE"); len(got) != 0 {
			t.Fatalf("a statement an error rule refused reached %v", got)
		}
		// A prepare is matched as its statement would be.
		_, err = c.PrepareContext(testCtx(t), "DROP TABLE t")
		wantErr(t, err, mysql.ER_UNKNOWN_ERROR, "dropping tables is not allowed here")
		// Rules are replaced whole; the next statements see the new ones.
		h.srv.SetRules(nil)
		if got := where(t, "SELECT name FROM whoami WHERE forced = 1"); !isReplica(got) {
			t.Fatalf("after the rules were dropped: %s", got)
		}
	})
	t.Run("autocommit off", func(t *testing.T) {
		// Every statement opens a transaction: the primary, and the
		// transaction stays there until it ends.
		mustExec(t, c, "SET autocommit = 0")
		if got := mustValue(t, c, "SELECT name FROM whoami"); got != primaryName {
			t.Fatalf("read with autocommit=0 on %s", got)
		}
		mustExec(t, c, "COMMIT")
		if got := mustValue(t, c, "SELECT name FROM whoami"); got != primaryName {
			t.Fatalf("read with autocommit=0 after COMMIT on %s", got)
		}
		mustExec(t, c, "SET autocommit = 1")
		if got := mustValue(t, c, "SELECT name FROM whoami"); !isReplica(got) {
			t.Fatalf("read with autocommit=1 on %s", got)
		}
	})
	t.Run("KILL not forwarded", func(t *testing.T) {
		h.resetLogs()
		_, err := c.ExecContext(testCtx(t), "KILL 5")
		wantErr(t, err, mysql.ER_NO_SUCH_THREAD, "Unknown thread id: 5")
		if got := h.ran("KILL"); len(got) != 0 {
			t.Fatalf("KILL reached %v", got)
		}
	})
	t.Run("unparsed statement to the primary", func(t *testing.T) {
		before := h.srv.unparsed.Load()
		h.resetLogs()
		_, err := c.ExecContext(testCtx(t), "FLOOB 1")
		wantErr(t, err, mysql.ER_PARSE_ERROR, "") // the server's own answer
		h.ranOn("FLOOB 1", primaryName)
		if h.srv.unparsed.Load() != before+1 {
			t.Fatal("unparsed statement not counted")
		}
	})
	t.Run("per-user reads=primary", func(t *testing.T) {
		r := h.session(t, "reporter", "reppw", "shop")
		if got := mustValue(t, r, "SELECT name FROM whoami"); got != primaryName {
			t.Fatalf("reporter's read on %s", got)
		}
	})
}

// TestRoutingOptions: routing.reads, fallback_to_primary and balance.
func TestRoutingOptions(t *testing.T) {
	t.Run("reads primary", func(t *testing.T) {
		h := newHarness(t, harnessConfig{routing: Routing{Reads: conf.ReadsPrimary}})
		c := h.session(t, "app", "secret", "shop")
		if got := mustValue(t, c, "SELECT name FROM whoami"); got != primaryName {
			t.Fatalf("read on %s", got)
		}
	})
	t.Run("fallback to the primary", func(t *testing.T) {
		h := newHarness(t, harnessConfig{})
		c := h.session(t, "app", "secret", "shop")
		h.setStatus(replica1Name, backend.StatusOfflineSoft)
		h.setStatus(replica2Name, backend.StatusOfflineSoft)
		if got := mustValue(t, c, "SELECT name FROM whoami"); got != primaryName {
			t.Fatalf("read without replicas on %s", got)
		}
	})
	t.Run("no fallback", func(t *testing.T) {
		h := newHarness(t, harnessConfig{routing: Routing{NoFallbackToPrimary: true}})
		c := h.session(t, "app", "secret", "shop")
		h.setStatus(replica1Name, backend.StatusOfflineSoft)
		h.setStatus(replica2Name, backend.StatusOfflineSoft)
		var v string
		err := c.QueryRowContext(testCtx(t), "SELECT name FROM whoami").Scan(&v)
		wantErr(t, err, mysql.ER_UNKNOWN_ERROR, "no replica can serve this read")
		// A read that waits for the session's own write is still served:
		// that is read-your-writes, not a fallback.
		mustExec(t, c, "INSERT INTO t VALUES (1)")
		if got := mustValue(t, c, "SELECT name FROM whoami"); got != primaryName {
			t.Fatalf("read after a write on %s", got)
		}
	})
	t.Run("round robin", func(t *testing.T) {
		h := newHarness(t, harnessConfig{routing: Routing{Balance: conf.BalanceRoundRobin}})
		c := h.session(t, "app", "secret", "shop")
		a, b := mustValue(t, c, "SELECT name FROM whoami"), mustValue(t, c, "SELECT name FROM whoami")
		if !isReplica(a) || !isReplica(b) || a == b {
			t.Fatalf("round robin read on %s then %s", a, b)
		}
	})
	t.Run("bad balance", func(t *testing.T) {
		h := newHarness(t, harnessConfig{})
		if _, err := NewServer(Options{Servers: h.cluster, Pool: h.pool, Routing: Routing{Balance: "nope"}}); err == nil {
			t.Fatal("unknown routing.balance accepted")
		}
		if _, err := NewServer(Options{Servers: h.cluster}); err == nil {
			t.Fatal("a server without a pool accepted")
		}
		if _, err := NewServer(Options{Servers: h.cluster, Pool: h.pool,
			ListenerOptions: ListenerOptions{Users: []User{{Name: "x", PasswordHash: "*XYZ"}}}}); err == nil {
			t.Fatal("a bad password hash accepted")
		}
	})
}

// TestReadYourWrites: after a write, a read goes where the write is
// visible: to a replica whose GTID position covers the write's GTID (the
// monitor reads positions), else to the primary; after a write whose GTID
// the server did not report, always to the primary.
func TestReadYourWrites(t *testing.T) {
	h := newHarness(t, harnessConfig{probing: true,
		handle: func(server string, c *fakemysql.Conn, q string) *fakemysql.Result {
			if strings.HasPrefix(q, "UPDATE nogtid") {
				return &fakemysql.Result{AffectedRows: 1} // not a write to the fake: no GTID
			}
			return nil
		}})
	c := h.session(t, "app", "secret", "shop")
	if got := mustValue(t, c, "SELECT name FROM whoami"); !isReplica(got) {
		t.Fatalf("read before any write on %s", got)
	}
	mustExec(t, c, "INSERT INTO t VALUES (1)")
	gtid := h.fake(primaryName).GTIDPos()
	if gtid == "" {
		t.Fatal("the write got no GTID")
	}
	// No replica is known to have the write yet.
	if got := mustValue(t, c, "SELECT name FROM whoami"); got != primaryName {
		t.Fatalf("read after the write on %s, before any replica had it", got)
	}
	// replica2 applies it and the monitor sees that.
	h.fake(replica2Name).SetGTIDPos(gtid)
	h.probe()
	for range 3 {
		if got := mustValue(t, c, "SELECT name FROM whoami"); got != replica2Name {
			t.Fatalf("read after the write on %s; only replica2 has it", got)
		}
	}

	// A write whose GTID the server does not report: only the primary is
	// sure to have it, even though replica2 is up to date.
	c2 := h.session(t, "app", "secret", "shop")
	mustExec(t, c2, "UPDATE nogtid SET a = 1")
	if got := mustValue(t, c2, "SELECT name FROM whoami"); got != primaryName {
		t.Fatalf("read after a write without GTID on %s", got)
	}
}

// TestReadYourWritesAcrossSessions: under read_your_writes global, a
// session that never wrote must see what another session's write
// acknowledged. No replica is known to have it, so the read waits on one
// (MASTER_GTID_WAIT, up to gtid_wait) and runs there once the replica has
// applied it, or on the primary when the wait times out; a wait that
// succeeded spares the next reads theirs until the monitor reads the
// replica's position again. Under user, only the user's own writes are
// waited for.
func TestReadYourWritesAcrossSessions(t *testing.T) {
	// applying: a replica asked to wait applies the primary's writes
	// first (replication catching up during the wait).
	var applying atomic.Bool
	var hp atomic.Pointer[harness]
	waitHandler := func(server string, c *fakemysql.Conn, q string) *fakemysql.Result {
		if h := hp.Load(); h != nil && server != primaryName && strings.Contains(q, "MASTER_GTID_WAIT") && applying.Load() {
			h.fake(server).SetGTIDPos(h.fake(primaryName).GTIDPos())
		}
		return nil
	}
	waits := func(h *harness) map[string]int64 { return h.srv.Metrics().GTIDWaits }
	read := func(t *testing.T, h *harness, user, pass string) string {
		c := h.session(t, user, pass, "shop")
		defer c.Close()
		return mustValue(t, c, "SELECT name FROM whoami")
	}

	t.Run("global", func(t *testing.T) {
		h := newHarness(t, harnessConfig{probing: true, handle: waitHandler,
			routing: Routing{ReadYourWrites: conf.RYWGlobal, GTIDWait: 30 * time.Millisecond}})
		hp.Store(h)
		if got := read(t, h, "app", "secret"); !isReplica(got) {
			t.Fatalf("a read before any write ran on %s", got)
		}
		writer := h.session(t, "bob", "bobpw", "shop")
		mustExec(t, writer, "INSERT INTO t VALUES (1)")

		applying.Store(true)
		waited := read(t, h, "app", "secret")
		if !isReplica(waited) {
			t.Fatalf("a read that waited for the write ran on %s", waited)
		}
		if w := waits(h); w["ok"] != 1 || w["timeout"] != 0 || w["error"] != 0 {
			t.Fatalf("waits %v, want one ok", w)
		}
		if !strings.Contains(h.fake(waited).GTIDPos(), "0-1-") {
			t.Fatalf("%s served the read without the write (position %q)", waited, h.fake(waited).GTIDPos())
		}
		// The replica is known to have the write now: no more waiting,
		// and only it can serve the read.
		applying.Store(false)
		for range 3 {
			if got := read(t, h, "app", "secret"); got != waited {
				t.Fatalf("a read after the wait ran on %s, want %s (the replica that has the write)", got, waited)
			}
		}
		if w := waits(h); w["ok"] != 1 || w["timeout"] != 0 {
			t.Fatalf("waits %v after reads the earlier wait covered, want still one ok", w)
		}

		// A write no replica applies in time: the read waits, then runs
		// on the primary.
		mustExec(t, writer, "INSERT INTO t VALUES (2)")
		if got := read(t, h, "app", "secret"); got != primaryName {
			t.Fatalf("a read whose wait timed out ran on %s", got)
		}
		if w := waits(h); w["ok"] != 1 || w["timeout"] != 1 || w["error"] != 0 {
			t.Fatalf("waits %v, want one ok and one timeout", w)
		}

		// gtid_wait 0: no wait, straight to the primary.
		if err := h.srv.Reconfigure(Reconfig{Users: testUsers, Routing: Routing{ReadYourWrites: conf.RYWGlobal, GTIDWait: -1}}); err != nil {
			t.Fatal(err)
		}
		if got := read(t, h, "app", "secret"); got != primaryName {
			t.Fatalf("with no wait a read ran on %s", got)
		}
		if w := waits(h); w["ok"]+w["timeout"]+w["error"] != 2 {
			t.Fatalf("waits %v with gtid_wait off", w)
		}

		// Replicas seconds behind (as the monitor saw them): no wait,
		// which could only time out, and the read runs on the primary.
		if err := h.srv.Reconfigure(Reconfig{Users: testUsers, Routing: Routing{ReadYourWrites: conf.RYWGlobal, GTIDWait: 30 * time.Millisecond}}); err != nil {
			t.Fatal(err)
		}
		for _, r := range []string{replica1Name, replica2Name} {
			h.fake(r).SetReplica(&fakemysql.ReplicaStatus{SourceHost: "127.0.0.1", SourcePort: 3306, IORunning: true, SQLRunning: true, SecondsBehind: 5})
		}
		h.probe()
		mustExec(t, writer, "INSERT INTO t VALUES (3)")
		if got := read(t, h, "app", "secret"); got != primaryName {
			t.Fatalf("with the replicas 5 s behind a read ran on %s", got)
		}
		if w := waits(h); w["ok"]+w["timeout"]+w["error"] != 2 {
			t.Fatalf("waits %v: a read waited on replicas 5 s behind", w)
		}
	})

	t.Run("user", func(t *testing.T) {
		applying.Store(false)
		h := newHarness(t, harnessConfig{probing: true, handle: waitHandler,
			routing: Routing{ReadYourWrites: conf.RYWUser, GTIDWait: 30 * time.Millisecond}})
		hp.Store(h)
		bob := h.session(t, "bob", "bobpw", "shop")
		mustExec(t, bob, "INSERT INTO t VALUES (1)")
		// Another user's write: app's reads do not wait for it.
		if got := read(t, h, "app", "secret"); !isReplica(got) {
			t.Fatalf("app's read after bob's write ran on %s", got)
		}
		if w := waits(h); w["ok"]+w["timeout"]+w["error"] != 0 {
			t.Fatalf("app's read waited for bob's write: %v", w)
		}
		// bob's own fresh session does.
		if got := read(t, h, "bob", "bobpw"); got != primaryName {
			t.Fatalf("bob's read after bob's write, which no replica applies, ran on %s", got)
		}
		if w := waits(h); w["timeout"] != 1 {
			t.Fatalf("waits %v, want bob's read to have waited", w)
		}
	})
}
