package proxy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/backend"
	"switchyard/internal/fakemysql"
	"switchyard/internal/mysqltest"
	"switchyard/wire"
)

// logged reports whether the fake's log has a command cmd whose argument
// contains arg.
func (h *harness) logged(name string, cmd byte, arg string) bool {
	for _, c := range h.fake(name).Log() {
		if c.Cmd == cmd && strings.Contains(c.Arg, arg) {
			return true
		}
	}
	return false
}

// TestPreparedStatements: a statement prepared on the primary (inside a
// transaction) runs later on a replica, which prepares it lazily under its
// own id; parameter types bound by the first execution are sent again by
// the proxy to a connection that never saw them.
func TestPreparedStatements(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	h.setStatus(replica2Name, backend.StatusOfflineSoft)
	rc := h.login(t, mysqltest.Login{User: "app", Pass: "secret", Schema: "shop", Caps: rawCaps | mysql.CLIENT_CONNECT_WITH_DB | mysql.CLIENT_DEPRECATE_EOF})
	rc.MustOK(rc.Query("BEGIN"))
	// Prepared inside the transaction: on the primary.
	sel := rc.Prepare("SELECT name FROM whoami WHERE id = ?")
	rc.MustOK(rc.Query("COMMIT"))
	if !h.logged(primaryName, mysql.COM_STMT_PREPARE, "FROM whoami") || h.logged(replica1Name, mysql.COM_STMT_PREPARE, "FROM whoami") {
		t.Fatal("not prepared on the primary alone")
	}
	ins := rc.Prepare("INSERT INTO t VALUES (?)")
	if sel.StatementID != 1 || ins.StatementID != 2 {
		t.Fatalf("proxy statement ids %d, %d", sel.StatementID, ins.StatementID)
	}
	// The execution is a read: replica1, prepared there first.
	if rows := mysqltest.BinaryRows(t, rc.Execute(sel.StatementID, 0, true, int64(7))); len(rows) != 1 || rows[0][0] != replica1Name {
		t.Fatalf("execution rows %v", rows)
	}
	if !h.logged(replica1Name, mysql.COM_STMT_PREPARE, "FROM whoami") {
		t.Fatal("not prepared lazily on the replica")
	}
	h.ranOn("id = 7", replica1Name)
	// Without types: the server connection reuses what it was sent.
	if rows := mysqltest.BinaryRows(t, rc.Execute(sel.StatementID, 0, false, int64(8))); len(rows) != 1 {
		t.Fatalf("rows %v", rows)
	}
	h.ranOn("id = 8", replica1Name)
	// Without types, on a connection that never saw the statement: the
	// proxy binds the types it kept.
	h.setStatus(replica1Name, backend.StatusOfflineSoft)
	h.setStatus(replica2Name, backend.StatusOnline)
	if rows := mysqltest.BinaryRows(t, rc.Execute(sel.StatementID, 0, false, int64(9))); len(rows) != 1 || rows[0][0] != replica2Name {
		t.Fatalf("execution rows %v", rows)
	}
	h.ranOn("id = 9", replica2Name)
	// The write goes to the primary.
	if ok := rc.MustOK(rc.Execute(ins.StatementID, 0, true, "v")); ok.AffectedRows != 1 {
		t.Fatalf("insert %+v", ok)
	}
	h.ranOn("INSERT INTO t VALUES ('v')", primaryName)
	// A prepared SET changes state the proxy cannot replay from its text:
	// the session is pinned.
	set := rc.Prepare("SET sql_mode = ?")
	rc.MustOK(rc.Execute(set.StatementID, 0, true, "ANSI"))
	h.waitPinned(t, 1)

	// go-sql-driver prepares, executes and closes for a query with
	// arguments.
	c := h.session(t, "app", "secret", "shop")
	if got := mustValue(t, c, "SELECT name FROM whoami WHERE id = ?", 5); got != replica2Name {
		t.Fatalf("driver's prepared read on %s", got)
	}
}

// TestCursor: an execution that opens a cursor runs on the primary and
// pins the session there until the cursor ends: its last row fetched,
// COM_STMT_RESET, COM_STMT_CLOSE, or the next execution of the statement.
func TestCursor(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	for _, caps := range []uint32{rawCaps, rawCaps | mysql.CLIENT_DEPRECATE_EOF} {
		rc := h.login(t, mysqltest.Login{User: "app", Pass: "secret", Caps: caps})
		st := rc.Prepare("SELECT id FROM t3")
		open := func() {
			t.Helper()
			resp := rc.Execute(st.StatementID, mysql.CURSOR_TYPE_READ_ONLY, true)
			if mysqltest.Status(t, resp[len(resp)-1].Payload)&mysql.SERVER_STATUS_CURSOR_EXISTS == 0 {
				t.Fatal("no cursor opened")
			}
			for _, rp := range resp {
				if rp.Kind == wire.KindRow {
					t.Fatal("rows sent with the cursor's definitions")
				}
			}
			h.waitPinned(t, 1)
		}
		open()
		h.ranOn("SELECT id FROM t3", primaryName)
		var got []string
		for {
			resp := rc.Fetch(st.StatementID, 1)
			for _, rp := range resp {
				if rp.Kind == wire.KindRow {
					got = append(got, mysqltest.BinaryRow(t, rp.Payload, 1)[0])
				}
			}
			if mysqltest.Status(t, resp[len(resp)-1].Payload)&mysql.SERVER_STATUS_LAST_ROW_SEND != 0 {
				break
			}
			h.waitPinned(t, 1)
		}
		if strings.Join(got, ",") != "1,2,3" {
			t.Fatalf("fetched %v", got)
		}
		h.waitPinned(t, 0)

		open()
		rc.Command(wire.AppendStmtReset(nil, st.StatementID))
		rc.MustOK(rc.Response(wire.ShapeOne))
		h.waitPinned(t, 0)

		open()
		open() // the second execution closes the first cursor: still one pin
		rc.Command(wire.AppendStmtClose(nil, st.StatementID))
		h.waitPinned(t, 0)
		if e := rc.MustErr(rc.Fetch(st.StatementID, 1)); e.Code != mysql.ER_UNKNOWN_STMT_HANDLER || !strings.Contains(e.Message, "mysqld_stmt_fetch") {
			t.Fatalf("fetch of a closed statement: %v", e)
		}
	}
}

// TestLongData: COM_STMT_SEND_LONG_DATA has no response and pins the
// session to the connection that holds the data until an execution uses it
// (or COM_STMT_RESET or _CLOSE drops it).
func TestLongData(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	rc := h.login(t, mysqltest.Login{User: "app", Pass: "secret"})
	st := rc.Prepare("INSERT INTO t VALUES (?)")
	rc.Command(mysqltest.LongDataPacket(st.StatementID, 0, "chunk1"))
	rc.Command(mysqltest.LongDataPacket(st.StatementID, 0, "chunk2"))
	h.waitPinned(t, 1)
	rc.MustOK(rc.Execute(st.StatementID, 0, true, "ignored"))
	h.ranOn("INSERT INTO t VALUES ('chunk1chunk2')", primaryName)
	h.waitPinned(t, 0)

	rc.Command(mysqltest.LongDataPacket(st.StatementID, 0, "dropped"))
	h.waitPinned(t, 1)
	rc.Command(wire.AppendStmtReset(nil, st.StatementID))
	rc.MustOK(rc.Response(wire.ShapeOne))
	h.waitPinned(t, 0)

	rc.Command(mysqltest.LongDataPacket(st.StatementID, 0, "dropped"))
	h.waitPinned(t, 1)
	rc.Command(wire.AppendStmtClose(nil, st.StatementID))
	h.waitPinned(t, 0)

	// For an unknown statement: no response either; the next command's
	// answer is the first thing the client reads.
	rc.Command(mysqltest.LongDataPacket(99, 0, "x"))
	rc.MustOK(rc.Cmd(mysql.COM_PING, "", wire.ShapeOne))
}

// TestPreparedStatementErrors: what a server would answer for statement
// ids it does not know and malformed executions, and the session goes on.
func TestPreparedStatementErrors(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	rc := h.login(t, mysqltest.Login{User: "app", Pass: "secret"})
	st := rc.Prepare("SELECT name FROM whoami WHERE id = ?")
	cases := []struct {
		name    string
		payload []byte
		shape   wire.Shape
		code    uint16
		msg     string
	}{
		{"execute unknown id", mysqltest.ExecutePacket(99, 0, true, int64(1)), wire.ShapeResult, mysql.ER_UNKNOWN_STMT_HANDLER, "mysqld_stmt_execute"},
		{"fetch unknown id", mysqltest.FetchPacket(99, 1), wire.ShapeRows, mysql.ER_UNKNOWN_STMT_HANDLER, "mysqld_stmt_fetch"},
		{"reset unknown id", wire.AppendStmtReset(nil, 99), wire.ShapeOne, mysql.ER_UNKNOWN_STMT_HANDLER, "mysqld_stmt_reset"},
		{"execute without a statement id", []byte{mysql.COM_STMT_EXECUTE, 1}, wire.ShapeResult, mysql.ER_MALFORMED_PACKET, ""},
		{"execute without flags", []byte{mysql.COM_STMT_EXECUTE, 1, 0, 0, 0}, wire.ShapeResult, mysql.ER_MALFORMED_PACKET, ""},
		{"execute without its parameters", mysqltest.ExecutePacket(1, 0, true), wire.ShapeResult, mysql.ER_MALFORMED_PACKET, ""},
		{"execute without types, none bound before", mysqltest.ExecutePacket(1, 0, false, int64(1)), wire.ShapeResult, mysql.ER_UNKNOWN_ERROR, "parameter types"},
	}
	for _, tc := range cases {
		rc.Command(tc.payload)
		e := rc.MustErr(rc.Response(tc.shape))
		if e.Code != tc.code || !strings.Contains(e.Message, tc.msg) {
			t.Fatalf("%s: %v; want %d %q", tc.name, e, tc.code, tc.msg)
		}
	}
	// The session goes on, and the statement works.
	if rows := mysqltest.BinaryRows(t, rc.Execute(st.StatementID, 0, true, int64(1))); len(rows) != 1 {
		t.Fatalf("rows %v", rows)
	}
	// Closed, then executed: unknown.
	rc.Command(wire.AppendStmtClose(nil, st.StatementID))
	rc.Command(wire.AppendStmtClose(nil, 99)) // unknown: ignored, no answer
	if e := rc.MustErr(rc.Execute(st.StatementID, 0, true, int64(1))); e.Code != mysql.ER_UNKNOWN_STMT_HANDLER {
		t.Fatalf("execution of a closed statement: %v", e)
	}
}

// serverStmts is how many statements the fake has prepared and not
// closed on connections the proxy has not quit (from its log: reset it
// first), and how many connections it has.
func (h *harness) serverStmts(name string) (stmts, conns int) {
	f := h.fake(name)
	byConn := map[uint32]int{}
	for _, c := range f.Log() {
		switch c.Cmd {
		case mysql.COM_STMT_PREPARE:
			byConn[c.ConnID]++
		case mysql.COM_STMT_CLOSE:
			byConn[c.ConnID]--
		case mysql.COM_QUIT:
			byConn[c.ConnID] = 0
		}
	}
	for _, n := range byConn {
		stmts += n
	}
	return stmts, f.Conns()
}

// waitServerStmts waits until no fake has more statements prepared than
// perConn for each of its connections, plus extra.
func (h *harness) waitServerStmts(t *testing.T, perConn, extra int) {
	t.Helper()
	mysqltest.Eventually(t, fmt.Sprintf("at most %d statements per server connection, plus %d", perConn, extra), func() bool {
		for _, name := range fakeNames {
			if n, conns := h.serverStmts(name); n > perConn*conns+extra {
				return false
			}
		}
		return true
	})
}

// prepareErr sends a COM_STMT_PREPARE that must fail and returns its error.
func prepareErr(t *testing.T, rc *mysqltest.Client, q string) *mysql.MyError {
	t.Helper()
	rc.Command(wire.AppendCommand(nil, mysql.COM_STMT_PREPARE, q))
	resp := rc.Response(wire.ShapePrepare)
	if resp[0].Kind != wire.KindErr {
		t.Fatalf("prepare %q succeeded", q)
	}
	return wire.ParseErr(resp[0].Payload)
}

// TestClosedStatementsClosedOnServers: what clients close is closed on the
// servers too, but for the few each connection keeps for reuse, with or
// without multiplexing; a text prepared again on a connection that has it
// is not left twice on the server; a session's end lets go of the
// statements it left open.
func TestClosedStatementsClosedOnServers(t *testing.T) {
	for _, noMux := range []bool{false, true} {
		t.Run(fmt.Sprintf("multiplexing=%v", !noMux), func(t *testing.T) {
			h := newHarness(t, harnessConfig{noMux: noMux})
			rc := h.login(t, mysqltest.Login{User: "app", Pass: "secret"})
			h.resetLogs()
			for i := range 40 {
				st := rc.Prepare(fmt.Sprintf("SELECT %d, ? FROM whoami", i))
				mysqltest.BinaryRows(t, rc.Execute(st.StatementID, 0, true, int64(i)))
				rc.Command(wire.AppendStmtClose(nil, st.StatementID))
			}
			// The same text, prepared and closed over and over.
			for i := range 40 {
				st := rc.Prepare("SELECT ? FROM whoami")
				mysqltest.BinaryRows(t, rc.Execute(st.StatementID, 0, true, int64(i)))
				rc.Command(wire.AppendStmtClose(nil, st.StatementID))
			}
			rc.MustOK(rc.Cmd(mysql.COM_PING, "", wire.ShapeOne))
			h.waitServerStmts(t, 16, 0)

			// Statements left open stay prepared while the session
			// lives, and go with it.
			rc2 := h.login(t, mysqltest.Login{User: "app", Pass: "secret"})
			var open []uint32
			for i := range 40 {
				st := rc2.Prepare(fmt.Sprintf("SELECT %d, ? FROM whoami", 100+i))
				mysqltest.BinaryRows(t, rc2.Execute(st.StatementID, 0, true, int64(i)))
				open = append(open, st.StatementID)
			}
			// Every one still runs.
			for i, id := range open {
				if rows := mysqltest.BinaryRows(t, rc2.Execute(id, 0, true, int64(i))); len(rows) != 1 {
					t.Fatalf("statement %d: rows %v", id, rows)
				}
			}
			rc2.Command(wire.AppendCommand(nil, mysql.COM_QUIT, ""))
			rc2.ExpectClosed()
			h.waitServerStmts(t, 16, 0)
		})
	}
}

// TestPreparedStatementLimits: a session holds at most as many statements
// open as the server it prepares on allows (max_prepared_stmt_count, read
// from the server), and answers a prepare past it as the server would; and
// its statements' texts fit limits.max_prepared_bytes_per_session.
func TestPreparedStatementLimits(t *testing.T) {
	h := newHarness(t, harnessConfig{maxPreparedBytes: 4096,
		handle: func(server string, c *fakemysql.Conn, q string) *fakemysql.Result {
			if q == "SELECT @@max_prepared_stmt_count" {
				return rowsResult([]string{"@@max_prepared_stmt_count"}, []string{"5"})
			}
			return nil
		}})
	rc := h.login(t, mysqltest.Login{User: "app", Pass: "secret"})
	var ids []uint32
	for i := range 5 {
		ids = append(ids, rc.Prepare(fmt.Sprintf("SELECT %d, ? FROM whoami", i)).StatementID)
	}
	e := prepareErr(t, rc, "SELECT 5, ? FROM whoami")
	if e.Code != mysql.ER_MAX_PREPARED_STMT_COUNT_REACHED || e.State != "42000" ||
		e.Message != "Can't create more than max_prepared_stmt_count statements (current value: 5)" {
		t.Fatalf("sixth prepare: %v", e)
	}
	// The session goes on; a closed statement makes room.
	if rows := mysqltest.BinaryRows(t, rc.Execute(ids[2], 0, true, int64(1))); len(rows) != 1 {
		t.Fatalf("rows %v", rows)
	}
	rc.Command(wire.AppendStmtClose(nil, ids[0]))
	rc.Prepare("SELECT 5, ? FROM whoami")

	// Texts: 3000 bytes fit a 4096-byte budget once, not twice.
	text := func(i int) string { return fmt.Sprintf("SELECT %d /* %s */", i, strings.Repeat("x", 3000)) }
	rc2 := h.login(t, mysqltest.Login{User: "app", Pass: "secret"})
	first := rc2.Prepare(text(1))
	e = prepareErr(t, rc2, text(2))
	if e.Code != mysql.ER_UNKNOWN_ERROR || !strings.Contains(e.Message, "limits.max_prepared_bytes_per_session (4096 bytes)") {
		t.Fatalf("prepare past the budget: %v", e)
	}
	rc2.Command(wire.AppendStmtClose(nil, first.StatementID))
	second := rc2.Prepare(text(2))
	if rows := mysqltest.BinaryRows(t, rc2.Execute(second.StatementID, 0, true)); len(rows) != 1 || rows[0][0] != "2" {
		t.Fatalf("rows %v", rows)
	}
}

// TestLongDataNotLeftForOthers: a statement closed with long data pending
// is closed on its server, not kept for reuse: the next session to run the
// same text there must not receive that data.
func TestLongDataNotLeftForOthers(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	rc := h.login(t, mysqltest.Login{User: "app", Pass: "secret"})
	st := rc.Prepare("INSERT INTO t VALUES (?)")
	rc.Command(mysqltest.LongDataPacket(st.StatementID, 0, "stale"))
	h.waitPinned(t, 1)
	rc.Command(wire.AppendStmtClose(nil, st.StatementID))
	h.waitPinned(t, 0)
	rc2 := h.login(t, mysqltest.Login{User: "app", Pass: "secret"})
	st2 := rc2.Prepare("INSERT INTO t VALUES (?)")
	rc2.MustOK(rc2.Execute(st2.StatementID, 0, true, "fresh"))
	h.ranOn("INSERT INTO t VALUES ('fresh')", primaryName)
}
