package proxy

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/backend"
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

// TestInfileOverMaxPacketSize: a LOCAL INFILE data packet larger than
// limits.max_packet_size ends the session instead of being read whole into
// memory and sent on.
func TestInfileOverMaxPacketSize(t *testing.T) {
	h := newHarness(t, harnessConfig{listener: ListenerOptions{MaxPacketSize: 4 << 10}})
	rc := h.login(t, mysqltest.Login{User: "app", Pass: "secret"})
	h.resetLogs()
	rc.Command(wire.AppendCommand(nil, mysql.COM_QUERY, "LOAD DATA LOCAL INFILE 'rows.csv' INTO TABLE t"))
	if p := rc.Read(); p[0] != wire.InfileHeader {
		t.Fatalf("infile request %x", p)
	}
	rc.Write([]byte(strings.Repeat("1,a\n", 2<<10))) // 8 KiB in one packet
	rc.ExpectClosed()
	for _, c := range h.fake(primaryName).Log() {
		if c.Cmd == mysql.COM_QUERY && strings.HasPrefix(c.Arg, "LOAD DATA") {
			continue
		}
		if strings.Contains(c.Arg, "1,a") {
			t.Fatalf("the oversized packet reached the server: %q", c.Arg[:20])
		}
	}
}

// TestConnectionIDsWrap: clients see 32-bit connection ids, which wrap; the
// listener's books must not mix up two live connections whose ids agree in
// those 32 bits (shutdown would miss one of them).
func TestConnectionIDsWrap(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	first := h.login(t, mysqltest.Login{User: "app", Pass: "secret"})
	h.srv.nextID.Store(1<<32 + uint64(first.Greeting.ConnectionID) - 1)
	second := h.login(t, mysqltest.Login{User: "app", Pass: "secret"})
	if second.Greeting.ConnectionID != first.Greeting.ConnectionID {
		t.Fatalf("ids %d and %d: the test did not make them agree", first.Greeting.ConnectionID, second.Greeting.ConnectionID)
	}
	if n := h.srv.connections(); n != 2 {
		t.Fatalf("%d connections on the books, want 2", n)
	}
}

// TestErrorCodesBlameTheRightSide: a packet too large or out of order gets
// the client-side code (1153, 1156) only when it is the client's own
// packet; the same from a server, wrapped in what the proxy was doing, is
// 1105 with that account.
func TestErrorCodesBlameTheRightSide(t *testing.T) {
	tooLarge := &wire.TooLargeError{Remaining: 10}
	outOfOrder := &wire.SequenceError{Got: 3, Want: 1}
	for _, tc := range []struct {
		err  error
		code uint16
	}{
		{tooLarge, mysql.ER_NET_PACKET_TOO_LARGE},
		{outOfOrder, mysql.ER_NET_PACKETS_OUT_OF_ORDER},
		{fmt.Errorf("bringing session state to server db2: %w", tooLarge), mysql.ER_UNKNOWN_ERROR},
		{fmt.Errorf("bringing session state to server db2: %w", outOfOrder), mysql.ER_UNKNOWN_ERROR},
	} {
		if got := clientError(tc.err); got.Code != tc.code {
			t.Errorf("%v: code %d, want %d", tc.err, got.Code, tc.code)
		}
	}
}

// releaseRecorder is a Pool that records what is given back.
type releaseRecorder struct {
	Pool
	mu       sync.Mutex
	released []*backend.Conn
}

func (r *releaseRecorder) Release(c *backend.Conn) {
	r.mu.Lock()
	r.released = append(r.released, c)
	r.mu.Unlock()
	r.Pool.Release(c)
}

func (r *releaseRecorder) last() *backend.Conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.released) == 0 {
		return nil
	}
	return r.released[len(r.released)-1]
}

// TestForwardedStatusRecorded: a server connection knows the status its
// last forwarded response ended with (inside a transaction or not), so
// that a session ending on it does not pool a connection in a transaction.
func TestForwardedStatusRecorded(t *testing.T) {
	rec := &releaseRecorder{}
	h := newHarness(t, harnessConfig{wrapPool: func(p Pool) Pool { rec.Pool = p; return rec }})
	c := h.session(t, "app", "secret", "shop")
	mustExec(t, c, "SET autocommit = 0")
	mustValue(t, c, "SELECT 'first statement opens a transaction'")
	mustExec(t, c, "COMMIT") // the transaction ends: the connection goes back
	sc := rec.last()
	if sc == nil {
		t.Fatal("no connection given back")
	}
	if st := sc.Status(); st&mysql.SERVER_STATUS_AUTOCOMMIT != 0 || st&mysql.SERVER_STATUS_IN_TRANS != 0 {
		t.Fatalf("released connection's status %#x, want what COMMIT's OK said: autocommit off, no transaction", st)
	}
}

// TestAbortRacingReleaseClosesConnection: once a session is aborted, a
// connection it gives back is closed, not pooled: the abort, under way on
// another goroutine, may still close it under the next session.
func TestAbortRacingReleaseClosesConnection(t *testing.T) {
	rec := &releaseRecorder{}
	h := newHarness(t, harnessConfig{wrapPool: func(p Pool) Pool { rec.Pool = p; return rec }})
	s := &session{srv: h.srv}
	s.conns = connSet{pool: rec, inUse: &s.inUse}
	sc, err := h.pool.Acquire(t.Context(), h.cluster.Servers()[0], backend.Request{Dial: backend.DialOptions{Creds: backend.Credentials{User: "app", Plain: "secret", HasPassword: true}}})
	if err != nil {
		t.Fatal(err)
	}
	s.conns.list = append(s.conns.list, sc)
	s.inUse.conns = append(s.inUse.conns, sc) // registered, as borrow does
	s.inUse.mu.Lock()
	s.inUse.aborted = true // the abort has begun and let go of its lock
	s.inUse.mu.Unlock()
	s.conns.release(sc)
	if rec.last() == sc {
		t.Fatal("a connection of an aborted session went back to the pool")
	}
}
