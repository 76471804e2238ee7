package proxy

import (
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/backend"
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
