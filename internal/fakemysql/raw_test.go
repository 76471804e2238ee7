package fakemysql

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/internal/mysqltest"
	"switchyard/wire"
)

// Tests that build the packets by hand, with wire, for what the client
// libraries do not do (cursors, COM_CHANGE_USER, COM_SET_OPTION, a wrong
// sequence id, ...) and to see the exact packets (session state, EOF
// forms). Every response is walked with wire.Walker.

var withAndWithoutDeprecateEOF = []struct {
	name string
	caps uint32
}{
	{"classic_eof", rawCaps},
	{"deprecate_eof", rawCaps | mysql.CLIENT_DEPRECATE_EOF},
}

func TestRawGreeting(t *testing.T) {
	s := Start(t, Options{Version: "10.11.5-MariaDB-fake"})
	rc := dialRaw(t, s, rawCaps)
	g, err := wire.ParseGreeting(rc.Read())
	if err != nil {
		t.Fatal(err)
	}
	if g.ServerVersion != "10.11.5-MariaDB-fake" || g.AuthPlugin != mysql.AUTH_NATIVE_PASSWORD || len(g.AuthData) != 20 {
		t.Fatalf("greeting %+v", g)
	}
	for _, b := range g.AuthData {
		if b < 0x21 || b > 0x7e {
			t.Fatalf("scramble %q not printable", g.AuthData)
		}
	}
	const want = mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_PLUGIN_AUTH |
		mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | mysql.CLIENT_CONNECT_WITH_DB | mysql.CLIENT_TRANSACTIONS |
		mysql.CLIENT_MULTI_STATEMENTS | mysql.CLIENT_MULTI_RESULTS | mysql.CLIENT_PS_MULTI_RESULTS |
		mysql.CLIENT_SESSION_TRACK | mysql.CLIENT_DEPRECATE_EOF | mysql.CLIENT_LOCAL_FILES | mysql.CLIENT_FOUND_ROWS
	if g.Capabilities&want != want || g.Capabilities&(mysql.CLIENT_SSL|mysql.CLIENT_COMPRESS|mysql.CLIENT_QUERY_ATTRIBUTES) != 0 {
		t.Fatalf("capabilities %#x", g.Capabilities)
	}
	if g.Status != mysql.SERVER_STATUS_AUTOCOMMIT {
		t.Fatalf("status %#x", g.Status)
	}
}

func TestRawSequenceError(t *testing.T) {
	s := Start(t, Options{})
	rc := loginRaw(t, s, rawCaps, "app", "secret", "")
	// A command must start at sequence id 0.
	rc.Seq = 3
	rc.Write(wire.AppendCommand(nil, mysql.COM_QUERY, "SELECT 1"))
	e := wire.ParseErr(rc.Read())
	if e.Code != mysql.ER_NET_PACKETS_OUT_OF_ORDER || e.Message != "Got packets out of order" {
		t.Fatalf("error %v", e)
	}
	rc.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := rc.Reader.ReadByte(); err != io.EOF {
		t.Fatalf("connection not closed: %v", err)
	}
	mysqltest.Eventually(t, "the connection to close", func() bool { return s.Conns() == 0 })

	// Also during the login.
	rc = dialRaw(t, s, rawCaps)
	rc.Read() // greeting
	rc.Seq = 2
	rc.Write(wire.AppendHandshakeResponse(nil, &wire.HandshakeResponse{Capabilities: rawCaps, User: "app"}))
	if e := wire.ParseErr(rc.Read()); e.Code != mysql.ER_NET_PACKETS_OUT_OF_ORDER {
		t.Fatalf("error %v", e)
	}
}

func TestRawAuthSwitchAndSha2Paths(t *testing.T) {
	s := Start(t, Options{AuthPlugin: mysql.AUTH_CACHING_SHA2_PASSWORD})
	steps := []struct {
		plugin, pass string
		switched     bool
		path         string
		ok           bool
	}{
		{mysql.AUTH_NATIVE_PASSWORD, "secret", true, "full", true},        // switch, then full auth over RSA
		{mysql.AUTH_CACHING_SHA2_PASSWORD, "secret", false, "fast", true}, // cached now
		{mysql.AUTH_NATIVE_PASSWORD, "secret", true, "fast", true},
		{mysql.AUTH_CACHING_SHA2_PASSWORD, "wrong", false, "full", false}, // no cache entry for that password
		{mysql.AUTH_CACHING_SHA2_PASSWORD, "secret", false, "fast", true},
	}
	for i, st := range steps {
		rc := dialRaw(t, s, rawCaps)
		err := rc.Login(mysqltest.Login{User: "app", Pass: st.pass, Schema: "shop", Plugin: st.plugin})
		if rc.Switched != st.switched || rc.Sha2Path != st.path || (err == nil) != st.ok {
			t.Fatalf("step %d: switched %v path %q err %v", i, rc.Switched, rc.Sha2Path, err)
		}
		if err != nil {
			wantCode(t, err, mysql.ER_ACCESS_DENIED_ERROR)
		}
		rc.Conn.Close()
	}

	// And a native server switches a caching_sha2 client.
	s = Start(t, Options{})
	rc := dialRaw(t, s, rawCaps)
	if err := rc.Login(mysqltest.Login{User: "app", Pass: "secret", Plugin: mysql.AUTH_CACHING_SHA2_PASSWORD}); err != nil || !rc.Switched {
		t.Fatalf("switched %v err %v", rc.Switched, err)
	}
}

func TestRawChangeUser(t *testing.T) {
	for _, plugin := range []string{mysql.AUTH_NATIVE_PASSWORD, mysql.AUTH_CACHING_SHA2_PASSWORD} {
		s := Start(t, Options{AuthPlugin: plugin, Schemas: []string{"shop", "other"}})
		rc := loginRaw(t, s, rawCaps|mysql.CLIENT_DEPRECATE_EOF, "app", "secret", "shop")
		rc.OKPacket(rc.Query("SET @v = 'kept'"))
		rc.OKPacket(rc.Query("BEGIN"))

		changeUser := rc.ChangeUser
		// Wrong password: ERR 1045, and the session is as it was.
		err := changeUser("monitor", "wrong", "other", plugin)
		wantCode(t, err, mysql.ER_ACCESS_DENIED_ERROR)
		if got := joinRows(mysqltest.TextRows(t, rc.Query("SELECT USER(), DATABASE(), @v, @@in_transaction"))); got != "app@127.0.0.1,shop,kept,1" {
			t.Fatalf("%s: after a failed change user: %q", plugin, got)
		}
		wantCode(t, changeUser("monitor", "monitor", "nowhere", plugin), mysql.ER_BAD_DB_ERROR)

		// With the other plugin, the server switches.
		other := mysql.AUTH_CACHING_SHA2_PASSWORD
		if plugin == other {
			other = mysql.AUTH_NATIVE_PASSWORD
		}
		if err := changeUser("monitor", "monitor", "other", other); err != nil {
			t.Fatalf("%s: change user: %v", plugin, err)
		}
		if !rc.Switched {
			t.Fatalf("%s: no auth switch", plugin)
		}
		resp := rc.Query("SELECT USER(), DATABASE(), @v, @@in_transaction")
		if got := joinRows(mysqltest.TextRows(t, resp)); got != "monitor@127.0.0.1,other,NULL,0" {
			t.Fatalf("%s: after change user: %q", plugin, got)
		}
		if mysqltest.EndStatus(t, resp)&mysql.SERVER_STATUS_IN_TRANS != 0 {
			t.Fatal("transaction survived the change user")
		}
		log := s.Log()
		if last := log[len(log)-2]; last.Cmd != mysql.COM_CHANGE_USER || last.Arg != "monitor" {
			t.Fatalf("log %+v", last)
		}
	}
}

func TestRawCursor(t *testing.T) {
	for _, mode := range withAndWithoutDeprecateEOF {
		t.Run(mode.name, func(t *testing.T) {
			rows := make([][]sql.NullString, 5)
			for i := range rows {
				rows[i] = []sql.NullString{str(fmt.Sprint(i)), {}}
			}
			s := Start(t, Options{Handle: func(c *Conn, q string) *Result {
				if strings.HasPrefix(q, "SELECT n, x FROM numbers") {
					return &Result{Columns: []string{"n", "x"}, Rows: rows}
				}
				return nil
			}})
			rc := loginRaw(t, s, mode.caps, "app", "secret", "shop")
			ok := rc.Prepare("SELECT n, x FROM numbers WHERE n < ?")
			if ok.Params != 1 || ok.Columns != 2 || ok.StatementID != 1 {
				t.Fatalf("prepare %+v", ok)
			}

			// Execute with a read-only cursor: only the definitions come.
			rc.Command(mysqltest.ExecutePacket(ok.StatementID, 0x01, true, int64(10)))
			resp := rc.Response(wire.ShapeCursor)
			if st := mysqltest.EndStatus(t, resp); st&mysql.SERVER_STATUS_CURSOR_EXISTS == 0 {
				t.Fatalf("status %#x", st)
			}
			for _, rp := range resp {
				if rp.Kind == wire.KindRow {
					t.Fatal("rows sent with a cursor")
				}
			}
			var fetched []string
			fetch := func(n uint32) uint16 {
				resp := rc.Fetch(ok.StatementID, n)
				for _, rp := range resp {
					if rp.Kind == wire.KindRow {
						fetched = append(fetched, strings.Join(mysqltest.BinaryRow(t, rp.Payload, 2), ":"))
					}
				}
				return mysqltest.EndStatus(t, resp)
			}
			if st := fetch(2); st&mysql.SERVER_STATUS_CURSOR_EXISTS == 0 || st&mysql.SERVER_STATUS_LAST_ROW_SEND != 0 {
				t.Fatalf("first fetch status %#x", st)
			}
			if st := fetch(3); st&mysql.SERVER_STATUS_LAST_ROW_SEND != 0 {
				t.Fatalf("second fetch status %#x", st)
			}
			if st := fetch(3); st&mysql.SERVER_STATUS_LAST_ROW_SEND == 0 {
				t.Fatalf("last fetch status %#x", st)
			}
			if got := strings.Join(fetched, ","); got != "0:NULL,1:NULL,2:NULL,3:NULL,4:NULL" {
				t.Fatalf("fetched %q", got)
			}
			// The cursor is closed now.
			if e := rc.MustErr(rc.Fetch(ok.StatementID, 1)); e.Code != mysql.ER_STMT_HAS_NO_OPEN_CURSOR {
				t.Fatalf("fetch after the end: %v", e)
			}

			// COM_STMT_RESET closes a cursor too.
			rc.Command(mysqltest.ExecutePacket(ok.StatementID, 0x01, true, int64(10)))
			rc.Response(wire.ShapeCursor)
			rc.Command(wire.AppendStmtReset(nil, ok.StatementID))
			rc.OKPacket(rc.Response(wire.ShapeOne))
			if e := rc.MustErr(rc.Fetch(ok.StatementID, 1)); e.Code != mysql.ER_STMT_HAS_NO_OPEN_CURSOR {
				t.Fatalf("fetch after reset: %v", e)
			}

			// Without a cursor: the rows in the binary protocol.
			rc.Command(mysqltest.ExecutePacket(ok.StatementID, 0, true, int64(10)))
			resp = rc.Response(wire.ShapeExecute)
			var n int
			for _, rp := range resp {
				if rp.Kind == wire.KindRow {
					n++
				}
			}
			if n != 5 {
				t.Fatalf("%d rows", n)
			}

			// A statement without a result opens no cursor.
			ins := rc.Prepare("INSERT INTO t VALUES (?, ?)")
			if ins.Columns != 0 || ins.Params != 2 {
				t.Fatalf("prepare insert %+v", ins)
			}
			rc.Command(mysqltest.ExecutePacket(ins.StatementID, 0x01, true, "a", nil))
			rc.OKPacket(rc.Response(wire.ShapeCursor))

			// Closed and unknown statements.
			rc.Command(wire.AppendStmtClose(nil, ok.StatementID)) // no response
			rc.Command(mysqltest.ExecutePacket(ok.StatementID, 0, true, int64(1)))
			if e := rc.MustErr(rc.Response(wire.ShapeExecute)); e.Code != mysql.ER_UNKNOWN_STMT_HANDLER {
				t.Fatalf("execute after close: %v", e)
			}
			if e := rc.MustErr(rc.Fetch(99, 1)); e.Code != mysql.ER_UNKNOWN_STMT_HANDLER {
				t.Fatalf("fetch of an unknown statement: %v", e)
			}
			rc.Command(wire.AppendStmtReset(nil, 99))
			if e := rc.MustErr(rc.Response(wire.ShapeOne)); e.Code != mysql.ER_UNKNOWN_STMT_HANDLER {
				t.Fatalf("reset of an unknown statement: %v", e)
			}
		})
	}
}

func TestRawLongDataAndRebind(t *testing.T) {
	s := Start(t, Options{})
	rc := loginRaw(t, s, rawCaps|mysql.CLIENT_DEPRECATE_EOF, "app", "secret", "")
	ok := rc.Prepare("SELECT ?, ?")
	long := func(param uint16, data string) {
		rc.Command(mysqltest.LongDataPacket(ok.StatementID, param, data))
	}
	long(1, "long ")
	long(1, "data")
	// Parameter 1's value comes from the long data, not the packet.
	rc.Command(wire.AppendStmtExecute(nil, &wire.StmtExecute{StatementID: ok.StatementID, BindTypes: true,
		Params:   []wire.Value{{Type: mysql.MYSQL_TYPE_VAR_STRING, Bytes: []byte("first")}, {Type: mysql.MYSQL_TYPE_VAR_STRING}},
		LongData: []bool{false, true}}))
	resp := rc.Response(wire.ShapeExecute)
	var row []string
	for _, rp := range resp {
		if rp.Kind == wire.KindRow {
			row = mysqltest.BinaryRow(t, rp.Payload, 2)
		}
	}
	if strings.Join(row, "|") != "first|long data" {
		t.Fatalf("row %q", row)
	}
	// Without new types, the last bound ones apply.
	rc.Command(mysqltest.ExecutePacket(ok.StatementID, 0, false, "x", "y"))
	rc.Response(wire.ShapeExecute)
	log := s.Log()
	if got := log[len(log)-1]; got.Cmd != mysql.COM_STMT_EXECUTE || got.Arg != "SELECT 'x', 'y'" {
		t.Fatalf("last command %+v", got)
	}
}

func TestRawLastGTIDTracking(t *testing.T) {
	for _, mode := range withAndWithoutDeprecateEOF {
		t.Run(mode.name, func(t *testing.T) {
			s := Start(t, Options{ServerID: 12})
			s.SetGTIDPos("0-1-41")
			rc := loginRaw(t, s, mode.caps|mysql.CLIENT_SESSION_TRACK, "app", "secret", "shop")
			plain := loginRaw(t, s, mode.caps, "app", "secret", "shop")
			for _, c := range []*mysqltest.Client{rc, plain} {
				c.OKPacket(c.Query("SET SESSION session_track_system_variables = CONCAT_WS(',', @@session_track_system_variables, 'last_gtid')"))
			}
			ok := rc.OKPacket(rc.Query("INSERT INTO t VALUES (1)"))
			if gtid, found := wire.LastGTID(ok); !found || gtid != "0-12-42" {
				t.Fatalf("last_gtid %q %v in %x", gtid, found, ok)
			}
			// Not for a client without CLIENT_SESSION_TRACK.
			ok = plain.OKPacket(plain.Query("INSERT INTO t VALUES (1)"))
			if o, _ := wire.ParseOK(ok); o.Status&mysql.SERVER_SESSION_STATE_CHANGED != 0 || len(ok) != 7 {
				t.Fatalf("session state sent to a client without tracking: %x", ok)
			}
			// Reads carry none; a transaction's GTID comes with COMMIT.
			rc.Query("SELECT 1")
			rc.OKPacket(rc.Query("START TRANSACTION"))
			ok = rc.OKPacket(rc.Query("UPDATE t SET a = 1"))
			if _, found := wire.LastGTID(ok); found {
				t.Fatal("GTID before COMMIT")
			}
			ok = rc.OKPacket(rc.Query("COMMIT"))
			if gtid, _ := wire.LastGTID(ok); gtid != "0-12-44" {
				t.Fatalf("COMMIT's last_gtid %q", gtid)
			}
			if s.GTIDPos() != "0-12-44" {
				t.Fatalf("GTIDPos %q", s.GTIDPos())
			}
			// COM_RESET_CONNECTION turns tracking off again.
			rc.Command([]byte{mysql.COM_RESET_CONNECTION})
			rc.OKPacket(rc.Response(wire.ShapeOne))
			ok = rc.OKPacket(rc.Query("INSERT INTO t VALUES (1)"))
			if _, found := wire.LastGTID(ok); found {
				t.Fatal("last_gtid tracked after reset")
			}
			// Multi-statement responses carry the flag on all but the last.
			rc.Command(wire.AppendSetOption(nil, wire.MultiStatementsOn))
			rc.Response(wire.ShapeOne)
			resp := rc.Query("SELECT 1; SELECT 2; DO 3")
			var more []bool
			for _, rp := range resp {
				if rp.Kind == wire.KindEOF || rp.Kind == wire.KindOK || rp.Kind == wire.KindErr {
					st, _ := wire.EOFStatus(rp.Payload)
					more = append(more, rp.Kind != wire.KindErr && st&mysql.SERVER_MORE_RESULTS_EXISTS != 0)
				}
			}
			if fmt.Sprint(more) != "[true true false]" {
				t.Fatalf("more results %v", more)
			}
			if e := rc.MustErr(resp); e.Code != mysql.ER_PARSE_ERROR {
				t.Fatalf("DO: %v", e)
			}
		})
	}
}

func TestRawCommands(t *testing.T) {
	for _, mode := range withAndWithoutDeprecateEOF {
		t.Run(mode.name, func(t *testing.T) {
			s := Start(t, Options{Schemas: []string{"shop", "other"}})
			rc := loginRaw(t, s, mode.caps, "app", "secret", "shop")
			deprecate := mode.caps&mysql.CLIENT_DEPRECATE_EOF != 0

			rc.Command([]byte{mysql.COM_PING})
			rc.OKPacket(rc.Response(wire.ShapeOne))

			// COM_SET_OPTION answers EOF, or OK with header 0xfe; it turns
			// multi-statements on and off.
			for _, opt := range []uint16{wire.MultiStatementsOn, wire.MultiStatementsOff} {
				rc.Command(wire.AppendSetOption(nil, opt))
				p := rc.Read()
				if deprecate {
					if p[0] != wire.EOFHeader || len(p) != 7 {
						t.Fatalf("set option answer %x", p)
					}
				} else if !wire.IsClassicEOF(p) {
					t.Fatalf("set option answer %x", p)
				}
				resp := rc.Query("SELECT 1; SELECT 2")
				if multi := len(mysqltest.TextRows(t, resp)) == 2; multi != (opt == 0) {
					t.Fatalf("option %d: %x", opt, resp)
				}
			}
			rc.Command(wire.AppendSetOption(nil, 9))
			if e := rc.MustErr(rc.Response(wire.ShapeOne)); e.Code != mysql.ER_UNKNOWN_COM_ERROR {
				t.Fatalf("bad option: %v", e)
			}

			rc.Command([]byte{mysql.COM_STATISTICS})
			resp := rc.Response(wire.ShapeOne)
			if resp[0].Kind != wire.KindOther || !bytes.HasPrefix(resp[0].Payload, []byte("Uptime: ")) ||
				!bytes.Contains(resp[0].Payload, []byte("Questions: 2 ")) {
				t.Fatalf("statistics %q", resp[0].Payload)
			}

			rc.Command(wire.AppendCommand(nil, mysql.COM_INIT_DB, "other"))
			rc.OKPacket(rc.Response(wire.ShapeOne))
			rc.Command(wire.AppendCommand(nil, mysql.COM_INIT_DB, "nowhere"))
			if e := rc.MustErr(rc.Response(wire.ShapeOne)); e.Code != mysql.ER_BAD_DB_ERROR || e.State != "42000" {
				t.Fatalf("init db: %v", e)
			}

			rc.Command(wire.AppendFieldList(nil, "users", ""))
			resp = rc.Response(wire.ShapeFieldList)
			if len(resp) != 3 || resp[2].Kind != wire.KindEOF || wire.IsClassicEOF(resp[2].Payload) == deprecate {
				t.Fatalf("field list %v", resp)
			}
			col, err := wire.ParseColumnDef(resp[0].Payload)
			if err != nil || col.Name != "id" || col.Table != "users" || col.Schema != "other" {
				t.Fatalf("field %+v %v", col, err)
			}

			// COM_RESET_CONNECTION: variables, transaction and statements
			// go; the current schema stays, as in MariaDB.
			rc.OKPacket(rc.Query("SET @x = 1, sql_mode = ''"))
			rc.OKPacket(rc.Query("BEGIN"))
			st := rc.Prepare("SELECT ?")
			rc.Command([]byte{mysql.COM_RESET_CONNECTION})
			resp = rc.Response(wire.ShapeOne)
			if mysqltest.EndStatus(t, resp) != mysql.SERVER_STATUS_AUTOCOMMIT {
				t.Fatalf("status after reset %#x", mysqltest.EndStatus(t, resp))
			}
			if got := joinRows(mysqltest.TextRows(t, rc.Query("SELECT @x, @@sql_mode, DATABASE()"))); got != "NULL,STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION,other" {
				t.Fatalf("after reset: %q", got)
			}
			rc.Command(mysqltest.ExecutePacket(st.StatementID, 0, true, "x"))
			if e := rc.MustErr(rc.Response(wire.ShapeExecute)); e.Code != mysql.ER_UNKNOWN_STMT_HANDLER {
				t.Fatalf("statement after reset: %v", e)
			}

			rc.Command([]byte{0x7f})
			if e := rc.MustErr(rc.Response(wire.ShapeOne)); e.Code != mysql.ER_UNKNOWN_COM_ERROR {
				t.Fatalf("unknown command: %v", e)
			}

			rc.Command([]byte{mysql.COM_QUIT})
			mysqltest.Eventually(t, "the quit", func() bool { return s.Conns() == 0 })
		})
	}
}

func TestRawShowSlaves(t *testing.T) {
	s := Start(t, Options{ReadOnly: true})
	rc := loginRaw(t, s, rawCaps, "monitor", "monitor", "")
	cols := func(resp []mysqltest.Packet) map[string]int {
		m := map[string]int{}
		for _, rp := range resp {
			if rp.Kind == wire.KindColumnDef {
				c, err := wire.ParseColumnDef(rp.Payload)
				if err != nil {
					t.Fatal(err)
				}
				m[c.Name] = len(m)
			}
		}
		return m
	}
	resp := rc.Query("SHOW ALL SLAVES STATUS")
	if len(mysqltest.TextRows(t, resp)) != 0 || len(cols(resp)) < 5 {
		t.Fatalf("not a replica: %v", mysqltest.TextRows(t, resp))
	}
	s.SetReplica(&ReplicaStatus{SourceHost: "db1", SourcePort: 3306, IORunning: true, SQLRunning: true, SecondsBehind: 4})
	s.SetGTIDPos("0-1-9")
	resp = rc.Query("show all slaves status;")
	m, rows := cols(resp), mysqltest.TextRows(t, resp)
	if len(rows) != 1 {
		t.Fatalf("rows %v", rows)
	}
	for name, want := range map[string]string{"Master_Host": "db1", "Master_Port": "3306", "Slave_IO_Running": "Yes",
		"Slave_SQL_Running": "Yes", "Seconds_Behind_Master": "4", "Gtid_Slave_Pos": "0-1-9"} {
		if got := rows[0][m[name]]; got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	s.SetReplica(&ReplicaStatus{SourceHost: "db1", SourcePort: 3306, IORunning: false, SQLRunning: true, SecondsBehind: 4})
	resp = rc.Query("SHOW ALL SLAVES STATUS")
	m, rows = cols(resp), mysqltest.TextRows(t, resp)
	if rows[0][m["Slave_IO_Running"]] != "No" || rows[0][m["Seconds_Behind_Master"]] != "NULL" {
		t.Fatalf("stopped replica %v", rows)
	}
	if got := joinRows(mysqltest.TextRows(t, rc.Query("SELECT @@read_only, @@gtid_current_pos"))); got != "1,0-1-9" {
		t.Fatalf("read_only, gtid: %q", got)
	}
	if e := rc.MustErr(rc.Query("INSERT INTO t VALUES (1)")); e.Code != mysql.ER_OPTION_PREVENTS_STATEMENT {
		t.Fatalf("write on a read-only server: %v", e)
	}
}

func TestRawLocalInfileNotNegotiated(t *testing.T) {
	s := Start(t, Options{})
	rc := loginRaw(t, s, rawCaps, "app", "secret", "shop")
	if e := rc.MustErr(rc.Query("LOAD DATA LOCAL INFILE 'x' INTO TABLE t")); e.Code != mysql.ER_NOT_ALLOWED_COMMAND {
		t.Fatalf("LOAD DATA LOCAL without CLIENT_LOCAL_FILES: %v", e)
	}
	// With it, the raw exchange: the request, the file, the empty packet.
	rc = loginRaw(t, s, rawCaps|mysql.CLIENT_LOCAL_FILES, "app", "secret", "shop")
	rc.Command(wire.AppendCommand(nil, mysql.COM_QUERY, "LOAD DATA LOCAL INFILE '/tmp/data.csv' INTO TABLE t"))
	var w wire.Walker
	w.Reset(wire.ShapeResult, false)
	p := rc.Read()
	if kind, err := w.Next(p, len(p)); err != nil || kind != wire.KindInfile || string(p[1:]) != "/tmp/data.csv" {
		t.Fatalf("infile request %q %v", p, err)
	}
	rc.Write([]byte("1\n2\n"))
	rc.Write([]byte("3\n"))
	rc.Write(nil)
	p = rc.Read()
	if kind, err := w.Next(p, len(p)); err != nil || kind != wire.KindOK || !w.Done() {
		t.Fatalf("after the file: %x %v", p, err)
	}
	if ok, _ := wire.ParseOK(p); ok.AffectedRows != 3 {
		t.Fatalf("affected rows %d", ok.AffectedRows)
	}
}

func TestCloseLeavesNothing(t *testing.T) {
	mysqltest.CheckGoroutines(t)
	var s *Server
	t.Run("inner", func(t *testing.T) {
		s = Start(t, Options{AuthPlugin: mysql.AUTH_CACHING_SHA2_PASSWORD})
		db := openDB(t, s, "app", "secret", "", "")
		if err := db.Ping(); err != nil {
			t.Fatal(err)
		}
		rc := loginRaw(t, s, rawCaps, "app", "secret", "")
		rc.Command(wire.AppendCommand(nil, mysql.COM_QUERY, "SELECT SLEEP(100)"))
		idle := dialRaw(t, s, rawCaps) // in the middle of its login
		idle.Read()
		mysqltest.Eventually(t, "three connections", func() bool { return s.Conns() == 3 })
		mysqltest.Eventually(t, "the SLEEP", func() bool {
			q := s.Queries()
			return len(q) > 0 && q[len(q)-1] == "SELECT SLEEP(100)"
		})
		start := time.Now()
		s.Close()
		if time.Since(start) > 5*time.Second {
			t.Fatal("Close waited for SLEEP")
		}
		if s.Conns() != 0 {
			t.Fatalf("%d connections after Close", s.Conns())
		}
		if _, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
			t.Fatal("still listening after Close")
		}
		var ne net.Error
		if b, err := io.ReadAll(rc.Reader); err == nil && len(b) > 0 || (errors.As(err, &ne) && ne.Timeout()) {
			t.Fatalf("client connection not closed: %v %q", err, b)
		}
		s.Close() // again: no effect
	})
}
