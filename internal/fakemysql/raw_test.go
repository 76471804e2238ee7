package fakemysql

import (
	"bytes"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

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
	g, err := wire.ParseGreeting(rc.read())
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
	rc.seq = 3
	rc.write(wire.AppendCommand(nil, mysql.COM_QUERY, "SELECT 1"))
	e := wire.ParseErr(rc.read())
	if e.Code != mysql.ER_NET_PACKETS_OUT_OF_ORDER || e.Message != "Got packets out of order" {
		t.Fatalf("error %v", e)
	}
	rc.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := rc.br.ReadByte(); err != io.EOF {
		t.Fatalf("connection not closed: %v", err)
	}
	eventually(t, "the connection to close", func() bool { return s.Conns() == 0 })

	// Also during the login.
	rc = dialRaw(t, s, rawCaps)
	rc.read() // greeting
	rc.seq = 2
	rc.write(wire.AppendHandshakeResponse(nil, &wire.HandshakeResponse{Capabilities: rawCaps, User: "app"}))
	if e := wire.ParseErr(rc.read()); e.Code != mysql.ER_NET_PACKETS_OUT_OF_ORDER {
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
		err := rc.login("app", st.pass, "shop", st.plugin)
		if rc.switched != st.switched || rc.sha2Path != st.path || (err == nil) != st.ok {
			t.Fatalf("step %d: switched %v path %q err %v", i, rc.switched, rc.sha2Path, err)
		}
		if err != nil {
			wantCode(t, err, mysql.ER_ACCESS_DENIED_ERROR)
		}
		rc.nc.Close()
	}

	// And a native server switches a caching_sha2 client.
	s = Start(t, Options{})
	rc := dialRaw(t, s, rawCaps)
	if err := rc.login("app", "secret", "", mysql.AUTH_CACHING_SHA2_PASSWORD); err != nil || !rc.switched {
		t.Fatalf("switched %v err %v", rc.switched, err)
	}
}

func TestRawChangeUser(t *testing.T) {
	for _, plugin := range []string{mysql.AUTH_NATIVE_PASSWORD, mysql.AUTH_CACHING_SHA2_PASSWORD} {
		s := Start(t, Options{AuthPlugin: plugin, Schemas: []string{"shop", "other"}})
		rc := loginRaw(t, s, rawCaps|mysql.CLIENT_DEPRECATE_EOF, "app", "secret", "shop")
		rc.okOf(rc.query("SET @v = 'kept'"))
		rc.okOf(rc.query("BEGIN"))

		changeUser := func(user, pass, schema, clientPlugin string) error {
			rc.command(wire.AppendChangeUser(nil, &wire.ChangeUser{
				User: user, AuthData: authResponse(clientPlugin, rc.scramble, pass), Schema: schema,
				Collation: 45, AuthPlugin: clientPlugin,
			}, rc.caps))
			return rc.authResult(pass)
		}
		// Wrong password: ERR 1045, and the session is as it was.
		err := changeUser("monitor", "wrong", "other", plugin)
		wantCode(t, err, mysql.ER_ACCESS_DENIED_ERROR)
		if got := joinRows(textRows(t, rc.query("SELECT USER(), DATABASE(), @v, @@in_transaction"))); got != "app@127.0.0.1,shop,kept,1" {
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
		if !rc.switched {
			t.Fatalf("%s: no auth switch", plugin)
		}
		resp := rc.query("SELECT USER(), DATABASE(), @v, @@in_transaction")
		if got := joinRows(textRows(t, resp)); got != "monitor@127.0.0.1,other,NULL,0" {
			t.Fatalf("%s: after change user: %q", plugin, got)
		}
		if statusOf(t, resp)&mysql.SERVER_STATUS_IN_TRANS != 0 {
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
			ok := rc.prepare("SELECT n, x FROM numbers WHERE n < ?")
			if ok.Params != 1 || ok.Columns != 2 || ok.StatementID != 1 {
				t.Fatalf("prepare %+v", ok)
			}

			// Execute with a read-only cursor: only the definitions come.
			rc.command(executePacket(ok.StatementID, 0x01, int64(10)))
			resp := rc.response(wire.ShapeResult)
			if st := statusOf(t, resp); st&mysql.SERVER_STATUS_CURSOR_EXISTS == 0 {
				t.Fatalf("status %#x", st)
			}
			for _, rp := range resp {
				if rp.kind == wire.KindRow {
					t.Fatal("rows sent with a cursor")
				}
			}
			var fetched []string
			fetch := func(n uint32) uint16 {
				rc.command(fetchPacket(ok.StatementID, n))
				resp := rc.response(wire.ShapeRows)
				for _, rp := range resp {
					if rp.kind == wire.KindRow {
						fetched = append(fetched, strings.Join(binaryRow(t, rp.p, 2), ":"))
					}
				}
				return statusOf(t, resp)
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
			rc.command(fetchPacket(ok.StatementID, 1))
			if e := rc.errOf(rc.response(wire.ShapeRows)); e.Code != mysql.ER_STMT_HAS_NO_OPEN_CURSOR {
				t.Fatalf("fetch after the end: %v", e)
			}

			// COM_STMT_RESET closes a cursor too.
			rc.command(executePacket(ok.StatementID, 0x01, int64(10)))
			rc.response(wire.ShapeResult)
			rc.command(stmtPacket(mysql.COM_STMT_RESET, ok.StatementID))
			rc.okOf(rc.response(wire.ShapeOne))
			rc.command(fetchPacket(ok.StatementID, 1))
			if e := rc.errOf(rc.response(wire.ShapeRows)); e.Code != mysql.ER_STMT_HAS_NO_OPEN_CURSOR {
				t.Fatalf("fetch after reset: %v", e)
			}

			// Without a cursor: the rows in the binary protocol.
			rc.command(executePacket(ok.StatementID, 0, int64(10)))
			resp = rc.response(wire.ShapeResult)
			var n int
			for _, rp := range resp {
				if rp.kind == wire.KindRow {
					n++
				}
			}
			if n != 5 {
				t.Fatalf("%d rows", n)
			}

			// A statement without a result opens no cursor.
			ins := rc.prepare("INSERT INTO t VALUES (?, ?)")
			if ins.Columns != 0 || ins.Params != 2 {
				t.Fatalf("prepare insert %+v", ins)
			}
			rc.command(executePacket(ins.StatementID, 0x01, "a", nil))
			rc.okOf(rc.response(wire.ShapeResult))

			// Closed and unknown statements.
			rc.command(stmtPacket(mysql.COM_STMT_CLOSE, ok.StatementID)) // no response
			rc.command(executePacket(ok.StatementID, 0, int64(1)))
			if e := rc.errOf(rc.response(wire.ShapeResult)); e.Code != mysql.ER_UNKNOWN_STMT_HANDLER {
				t.Fatalf("execute after close: %v", e)
			}
			rc.command(fetchPacket(99, 1))
			if e := rc.errOf(rc.response(wire.ShapeRows)); e.Code != mysql.ER_UNKNOWN_STMT_HANDLER {
				t.Fatalf("fetch of an unknown statement: %v", e)
			}
			rc.command(stmtPacket(mysql.COM_STMT_RESET, 99))
			if e := rc.errOf(rc.response(wire.ShapeOne)); e.Code != mysql.ER_UNKNOWN_STMT_HANDLER {
				t.Fatalf("reset of an unknown statement: %v", e)
			}
		})
	}
}

func TestRawLongDataAndRebind(t *testing.T) {
	s := Start(t, Options{})
	rc := loginRaw(t, s, rawCaps|mysql.CLIENT_DEPRECATE_EOF, "app", "secret", "")
	ok := rc.prepare("SELECT ?, ?")
	long := func(param uint16, data string) {
		p := binary.LittleEndian.AppendUint32([]byte{mysql.COM_STMT_SEND_LONG_DATA}, ok.StatementID)
		p = binary.LittleEndian.AppendUint16(p, param)
		rc.command(append(p, data...))
	}
	long(1, "long ")
	long(1, "data")
	// Parameter 1's value comes from the long data, not the packet.
	p := executePacket(ok.StatementID, 0, "first", "")
	p = p[:len(p)-1] // drop the empty value of parameter 1
	rc.command(p)
	resp := rc.response(wire.ShapeResult)
	var row []string
	for _, rp := range resp {
		if rp.kind == wire.KindRow {
			row = binaryRow(t, rp.p, 2)
		}
	}
	if strings.Join(row, "|") != "first|long data" {
		t.Fatalf("row %q", row)
	}
	// Without new types, the last bound ones apply.
	p = binary.LittleEndian.AppendUint32([]byte{mysql.COM_STMT_EXECUTE}, ok.StatementID)
	p = append(p, 0, 1, 0, 0, 0, 0 /* no NULLs */, 0 /* no types */)
	p = wire.AppendLenencString(p, "x")
	p = wire.AppendLenencString(p, "y")
	rc.command(p)
	rc.response(wire.ShapeResult)
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
			for _, c := range []*rawClient{rc, plain} {
				c.okOf(c.query("SET SESSION session_track_system_variables = CONCAT_WS(',', @@session_track_system_variables, 'last_gtid')"))
			}
			ok := rc.okOf(rc.query("INSERT INTO t VALUES (1)"))
			if gtid, found := wire.LastGTID(ok); !found || gtid != "0-12-42" {
				t.Fatalf("last_gtid %q %v in %x", gtid, found, ok)
			}
			// Not for a client without CLIENT_SESSION_TRACK.
			ok = plain.okOf(plain.query("INSERT INTO t VALUES (1)"))
			if o, _ := wire.ParseOK(ok); o.Status&mysql.SERVER_SESSION_STATE_CHANGED != 0 || len(ok) != 7 {
				t.Fatalf("session state sent to a client without tracking: %x", ok)
			}
			// Reads carry none; a transaction's GTID comes with COMMIT.
			rc.query("SELECT 1")
			rc.okOf(rc.query("START TRANSACTION"))
			ok = rc.okOf(rc.query("UPDATE t SET a = 1"))
			if _, found := wire.LastGTID(ok); found {
				t.Fatal("GTID before COMMIT")
			}
			ok = rc.okOf(rc.query("COMMIT"))
			if gtid, _ := wire.LastGTID(ok); gtid != "0-12-44" {
				t.Fatalf("COMMIT's last_gtid %q", gtid)
			}
			if s.GTIDPos() != "0-12-44" {
				t.Fatalf("GTIDPos %q", s.GTIDPos())
			}
			// COM_RESET_CONNECTION turns tracking off again.
			rc.command([]byte{mysql.COM_RESET_CONNECTION})
			rc.okOf(rc.response(wire.ShapeOne))
			ok = rc.okOf(rc.query("INSERT INTO t VALUES (1)"))
			if _, found := wire.LastGTID(ok); found {
				t.Fatal("last_gtid tracked after reset")
			}
			// Multi-statement responses carry the flag on all but the last.
			rc.command([]byte{mysql.COM_SET_OPTION, 0, 0})
			rc.response(wire.ShapeOne)
			resp := rc.query("SELECT 1; SELECT 2; DO 3")
			var more []bool
			for _, rp := range resp {
				if rp.kind == wire.KindEOF || rp.kind == wire.KindOK || rp.kind == wire.KindErr {
					st, _ := wire.EOFStatus(rp.p)
					more = append(more, rp.kind != wire.KindErr && st&mysql.SERVER_MORE_RESULTS_EXISTS != 0)
				}
			}
			if fmt.Sprint(more) != "[true true false]" {
				t.Fatalf("more results %v", more)
			}
			if e := rc.errOf(resp); e.Code != mysql.ER_PARSE_ERROR {
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

			rc.command([]byte{mysql.COM_PING})
			rc.okOf(rc.response(wire.ShapeOne))

			// COM_SET_OPTION answers EOF, or OK with header 0xfe; it turns
			// multi-statements on and off.
			for _, opt := range []byte{0, 1} {
				rc.command([]byte{mysql.COM_SET_OPTION, opt, 0})
				p := rc.read()
				if deprecate {
					if p[0] != wire.EOFHeader || len(p) != 7 {
						t.Fatalf("set option answer %x", p)
					}
				} else if !wire.IsClassicEOF(p) {
					t.Fatalf("set option answer %x", p)
				}
				resp := rc.query("SELECT 1; SELECT 2")
				if multi := len(textRows(t, resp)) == 2; multi != (opt == 0) {
					t.Fatalf("option %d: %x", opt, resp)
				}
			}
			rc.command([]byte{mysql.COM_SET_OPTION, 9, 0})
			if e := rc.errOf(rc.response(wire.ShapeOne)); e.Code != mysql.ER_UNKNOWN_COM_ERROR {
				t.Fatalf("bad option: %v", e)
			}

			rc.command([]byte{mysql.COM_STATISTICS})
			resp := rc.response(wire.ShapeOne)
			if resp[0].kind != wire.KindOther || !bytes.HasPrefix(resp[0].p, []byte("Uptime: ")) ||
				!bytes.Contains(resp[0].p, []byte("Questions: 2 ")) {
				t.Fatalf("statistics %q", resp[0].p)
			}

			rc.command(wire.AppendCommand(nil, mysql.COM_INIT_DB, "other"))
			rc.okOf(rc.response(wire.ShapeOne))
			rc.command(wire.AppendCommand(nil, mysql.COM_INIT_DB, "nowhere"))
			if e := rc.errOf(rc.response(wire.ShapeOne)); e.Code != mysql.ER_BAD_DB_ERROR || e.State != "42000" {
				t.Fatalf("init db: %v", e)
			}

			rc.command(append(wire.AppendCommand(nil, mysql.COM_FIELD_LIST, "users"), 0))
			resp = rc.response(wire.ShapeFieldList)
			if len(resp) != 3 || resp[2].kind != wire.KindEOF || wire.IsClassicEOF(resp[2].p) == deprecate {
				t.Fatalf("field list %v", resp)
			}
			col, err := wire.ParseColumnDef(resp[0].p)
			if err != nil || col.Name != "id" || col.Table != "users" || col.Schema != "other" {
				t.Fatalf("field %+v %v", col, err)
			}

			// COM_RESET_CONNECTION: variables, transaction and statements
			// go; the current schema stays, as in MariaDB.
			rc.okOf(rc.query("SET @x = 1, sql_mode = ''"))
			rc.okOf(rc.query("BEGIN"))
			st := rc.prepare("SELECT ?")
			rc.command([]byte{mysql.COM_RESET_CONNECTION})
			resp = rc.response(wire.ShapeOne)
			if statusOf(t, resp) != mysql.SERVER_STATUS_AUTOCOMMIT {
				t.Fatalf("status after reset %#x", statusOf(t, resp))
			}
			if got := joinRows(textRows(t, rc.query("SELECT @x, @@sql_mode, DATABASE()"))); got != "NULL,STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION,other" {
				t.Fatalf("after reset: %q", got)
			}
			rc.command(executePacket(st.StatementID, 0, "x"))
			if e := rc.errOf(rc.response(wire.ShapeResult)); e.Code != mysql.ER_UNKNOWN_STMT_HANDLER {
				t.Fatalf("statement after reset: %v", e)
			}

			rc.command([]byte{0x7f})
			if e := rc.errOf(rc.response(wire.ShapeOne)); e.Code != mysql.ER_UNKNOWN_COM_ERROR {
				t.Fatalf("unknown command: %v", e)
			}

			rc.command([]byte{mysql.COM_QUIT})
			eventually(t, "the quit", func() bool { return s.Conns() == 0 })
		})
	}
}

func TestRawShowSlaves(t *testing.T) {
	s := Start(t, Options{ReadOnly: true})
	rc := loginRaw(t, s, rawCaps, "monitor", "monitor", "")
	cols := func(resp []rawPacket) map[string]int {
		m := map[string]int{}
		for _, rp := range resp {
			if rp.kind == wire.KindColumnDef {
				c, err := wire.ParseColumnDef(rp.p)
				if err != nil {
					t.Fatal(err)
				}
				m[c.Name] = len(m)
			}
		}
		return m
	}
	resp := rc.query("SHOW ALL SLAVES STATUS")
	if len(textRows(t, resp)) != 0 || len(cols(resp)) < 5 {
		t.Fatalf("not a replica: %v", textRows(t, resp))
	}
	s.SetReplica(&ReplicaStatus{SourceHost: "db1", SourcePort: 3306, IORunning: true, SQLRunning: true, SecondsBehind: 4})
	s.SetGTIDPos("0-1-9")
	resp = rc.query("show all slaves status;")
	m, rows := cols(resp), textRows(t, resp)
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
	resp = rc.query("SHOW ALL SLAVES STATUS")
	m, rows = cols(resp), textRows(t, resp)
	if rows[0][m["Slave_IO_Running"]] != "No" || rows[0][m["Seconds_Behind_Master"]] != "NULL" {
		t.Fatalf("stopped replica %v", rows)
	}
	if got := joinRows(textRows(t, rc.query("SELECT @@read_only, @@gtid_current_pos"))); got != "1,0-1-9" {
		t.Fatalf("read_only, gtid: %q", got)
	}
	if e := rc.errOf(rc.query("INSERT INTO t VALUES (1)")); e.Code != mysql.ER_OPTION_PREVENTS_STATEMENT {
		t.Fatalf("write on a read-only server: %v", e)
	}
}

func TestRawLocalInfileNotNegotiated(t *testing.T) {
	s := Start(t, Options{})
	rc := loginRaw(t, s, rawCaps, "app", "secret", "shop")
	if e := rc.errOf(rc.query("LOAD DATA LOCAL INFILE 'x' INTO TABLE t")); e.Code != mysql.ER_NOT_ALLOWED_COMMAND {
		t.Fatalf("LOAD DATA LOCAL without CLIENT_LOCAL_FILES: %v", e)
	}
	// With it, the raw exchange: the request, the file, the empty packet.
	rc = loginRaw(t, s, rawCaps|mysql.CLIENT_LOCAL_FILES, "app", "secret", "shop")
	rc.command(wire.AppendCommand(nil, mysql.COM_QUERY, "LOAD DATA LOCAL INFILE '/tmp/data.csv' INTO TABLE t"))
	var w wire.Walker
	w.Reset(wire.ShapeResult, false)
	p := rc.read()
	if kind, err := w.Next(p, len(p)); err != nil || kind != wire.KindInfile || string(p[1:]) != "/tmp/data.csv" {
		t.Fatalf("infile request %q %v", p, err)
	}
	rc.write([]byte("1\n2\n"))
	rc.write([]byte("3\n"))
	rc.write(nil)
	p = rc.read()
	if kind, err := w.Next(p, len(p)); err != nil || kind != wire.KindOK || !w.Done() {
		t.Fatalf("after the file: %x %v", p, err)
	}
	if ok, _ := wire.ParseOK(p); ok.AffectedRows != 3 {
		t.Fatalf("affected rows %d", ok.AffectedRows)
	}
}

func TestCloseLeavesNothing(t *testing.T) {
	noLeaks(t)
	var s *Server
	t.Run("inner", func(t *testing.T) {
		s = Start(t, Options{AuthPlugin: mysql.AUTH_CACHING_SHA2_PASSWORD})
		db := openDB(t, s, "app", "secret", "", "")
		if err := db.Ping(); err != nil {
			t.Fatal(err)
		}
		rc := loginRaw(t, s, rawCaps, "app", "secret", "")
		rc.command(wire.AppendCommand(nil, mysql.COM_QUERY, "SELECT SLEEP(100)"))
		idle := dialRaw(t, s, rawCaps) // in the middle of its login
		idle.read()
		eventually(t, "three connections", func() bool { return s.Conns() == 3 })
		eventually(t, "the SLEEP", func() bool {
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
		if b, err := io.ReadAll(rc.br); err == nil && len(b) > 0 || (errors.As(err, &ne) && ne.Timeout()) {
			t.Fatalf("client connection not closed: %v %q", err, b)
		}
		s.Close() // again: no effect
	})
}
