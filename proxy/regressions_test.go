package proxy

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/internal/fakemysql"
	"switchyard/internal/mysqltest"
	"switchyard/wire"
)

// Regressions found by review of the layers redesign (issue 8); each
// failed before its fix.

// TestCursorWriteOnReplicaPinStaysOffReplica: a session pinned on a
// replica (a user variable set inside START TRANSACTION READ ONLY) executes
// a prepared INSERT that asks for a cursor. Decide sends the write to the
// primary (a pin on a replica cannot take it); the cursor rule must not
// turn that into "stay", which was the replica.
func TestCursorWriteOnReplicaPinStaysOffReplica(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	rc := pinnedOnReplica(t, h)
	ok := rc.Prepare("INSERT INTO t VALUES (?)")
	h.resetLogs()
	rc.Execute(ok.StatementID, 1 /* CURSOR_TYPE_READ_ONLY */, true, int64(5))
	h.ranOn("INSERT INTO t", primaryName)
}

// TestReadYourWritesAfterClientReset: a client's COM_RESET_CONNECTION,
// forwarded raw, turns the server connection's last_gtid tracking off; the
// proxy turns it on again, so the session's next write reports its GTID
// and a read waits for a replica that has it (none here: the primary).
func TestReadYourWritesAfterClientReset(t *testing.T) {
	h := newHarness(t, harnessConfig{probing: true})
	rc := h.login(t, mysqltest.Login{User: "app", Pass: "secret", Schema: "shop"})
	rc.MustOK(rc.Query("INSERT INTO t VALUES (1)"))
	first := h.fake(primaryName).GTIDPos()
	h.fake(replica1Name).SetGTIDPos(first)
	h.fake(replica2Name).SetGTIDPos(first)
	h.probe()
	rc.MustOK(rc.Cmd(mysql.COM_RESET_CONNECTION, "", wire.ShapeOne))
	rc.MustOK(rc.Query("INSERT INTO t VALUES (2)"))
	if got := rc.Value("SELECT name FROM whoami"); got != primaryName {
		t.Fatalf("read after the second write ran on %s, which has only %s, not %s", got, first, h.fake(primaryName).GTIDPos())
	}
}

// TestStatementIDsGoOnAfterReset: statement ids keep counting across
// COM_RESET_CONNECTION, as on a server, so a handle the client kept from
// before names no new statement.
func TestStatementIDsGoOnAfterReset(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	rc := h.login(t, mysqltest.Login{User: "app", Pass: "secret", Schema: "shop"})
	before := rc.Prepare("SELECT 1")
	rc.MustOK(rc.Cmd(mysql.COM_RESET_CONNECTION, "", wire.ShapeOne))
	after := rc.Prepare("SELECT 2")
	if before.StatementID == after.StatementID {
		t.Fatalf("statement id %d handed out again after the reset", after.StatementID)
	}
}

// TestShutdownWithServerStalledAfterLogin: a server that logs the proxy in
// and then does not answer its first statement (the request for GTID
// tracking) must not hold shutdown past its deadline.
func TestShutdownWithServerStalledAfterLogin(t *testing.T) {
	var stall atomic.Bool
	release := make(chan struct{})
	h := newHarness(t, harnessConfig{handle: func(server string, c *fakemysql.Conn, q string) *fakemysql.Result {
		if server != primaryName && stall.Load() && strings.Contains(q, "session_track_system_variables") {
			select {
			case <-release:
			case <-c.Done():
			}
		}
		return nil
	}})
	defer close(release)
	rc := h.login(t, mysqltest.Login{User: "app", Pass: "secret", Schema: "shop"})
	stall.Store(true)
	rc.Command(wire.AppendCommand(nil, mysql.COM_QUERY, "SELECT name FROM whoami"))
	mysqltest.Eventually(t, "a replica connection to be opened", func() bool {
		return h.fake(replica1Name).Accepted()+h.fake(replica2Name).Accepted() > 0
	})
	done := make(chan error, 1)
	go func() { done <- h.shutdown(200 * time.Millisecond) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown(200ms) still waiting after 10s behind a stalled server")
	}
}

// TestWriteOnReplicaPinWithoutMonitor: without a monitor the servers after
// the first are replicas by config order, and routing must know a session
// is held on one: a write after a pin made there goes to the primary.
// (Roles were unknown without a monitor, so the pin sent it to the replica.)
func TestWriteOnReplicaPinWithoutMonitor(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	rc := pinnedOnReplica(t, h)
	h.resetLogs()
	rc.MustOK(rc.Query("INSERT INTO t VALUES (7)"))
	h.ranOn("INSERT INTO t", primaryName)
}

// pinnedOnReplica logs a client in and pins its session on a replica: a
// user variable set inside START TRANSACTION READ ONLY.
func pinnedOnReplica(t *testing.T, h *harness) *mysqltest.Client {
	t.Helper()
	rc := h.login(t, mysqltest.Login{User: "app", Pass: "secret", Schema: "shop"})
	rc.MustOK(rc.Query("START TRANSACTION READ ONLY"))
	rc.MustOK(rc.Query("SET @x = 1"))
	rc.MustOK(rc.Query("COMMIT"))
	h.waitPinned(t, 1)
	return rc
}
