package fakemysql

import (
	"database/sql"
	"encoding/binary"
	"io"
	"log"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	driver "github.com/go-sql-driver/mysql"

	"switchyard/internal/mysqltest"
	"switchyard/wire"
)

func init() {
	// go-sql-driver logs the broken connections the tests cause on purpose.
	_ = driver.SetLogger(log.New(io.Discard, "", 0))
}

func TestLexHelpers(t *testing.T) {
	q := "SELECT 'a;b', \"c\\\";\" /* ; ? */ -- x; ?\n; ## ?\nSELECT `x;?`, ?;  ;  -- only a comment"
	got := splitStatements(q)
	want := []string{"SELECT 'a;b', \"c\\\";\" /* ; ? */ -- x; ?", "## ?\nSELECT `x;?`, ?"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("split %q", got)
	}
	if n := countParams(q); n != 1 {
		t.Fatalf("params %d", n)
	}
	if s := substitute("SELECT ?, '?', ? -- ?", []string{"1", "'x'"}); s != "SELECT 1, '?', 'x' -- ?" {
		t.Fatalf("substitute %q", s)
	}
	if s := normalize("  /* hint */ select 1 ;; -- end"); s != "select 1" {
		t.Fatalf("normalize %q", s)
	}
	for _, s := range []string{"", "plain", "it's", `back\slash`, "nul\x00 nl\n cr\r z\x1a \"dq\"", "100%_"} {
		if got := unquote(quoteString(s)); got != s {
			t.Errorf("round trip %q: %q", s, got)
		}
	}
	for in, want := range map[string]string{`'a''b'`: "a'b", `"a\tb"`: "a\tb", "`a``b`": "a`b", `'\%\_'`: `\%\_`} {
		if got := unquote(in); got != want {
			t.Errorf("unquote %s = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]bool{"1": true, "-1.5": true, "2e-3": true, "+7": true, "1e": false, ".": false, "1a": false, "": false} {
		if isNumber(in) != want {
			t.Errorf("isNumber(%q) != %v", in, want)
		}
	}
	if v, ok := isQuoted("_utf8mb4'x'"); !ok || v != "x" {
		t.Errorf("introducer: %q %v", v, ok)
	}
	if _, ok := isQuoted("'a' 'b'"); ok {
		t.Error("two strings taken for one")
	}
	if got := splitTop("a, f(b, c), 'd,e'", ','); !reflect.DeepEqual(got, []string{"a", "f(b, c)", "'d,e'"}) {
		t.Errorf("splitTop %q", got)
	}
	if i := findKeyword("x AS `as`, 'from' FROM t", "from"); i != 18 {
		t.Errorf("findKeyword %d", i)
	}
}

// decodeValue reads one parameter value as execute does: wire decodes it,
// literal writes it as SQL.
func decodeValue(b []byte, typ byte, unsigned bool) (string, int, bool) {
	v, n, err := wire.ParseValue(b, typ, unsigned)
	return literal(v), n, err == nil
}

func TestDecodeValue(t *testing.T) {
	le16 := func(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }
	le32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	le64 := func(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
	datetime := append([]byte{11}, le16(2024)...)
	datetime = append(datetime, 2, 29, 13, 4, 5)
	datetime = append(datetime, le32(123)...)
	tm := append([]byte{8, 1}, le32(1)...)
	tm = append(tm, 2, 3, 4)
	for _, c := range []struct {
		b        []byte
		typ      byte
		unsigned bool
		want     string
	}{
		{[]byte{0xff}, mysql.MYSQL_TYPE_TINY, false, "-1"},
		{[]byte{0xff}, mysql.MYSQL_TYPE_TINY, true, "255"},
		{le16(0xfffe), mysql.MYSQL_TYPE_SHORT, false, "-2"},
		{le32(0xffffffff), mysql.MYSQL_TYPE_LONG, true, "4294967295"},
		{le64(math.MaxUint64), mysql.MYSQL_TYPE_LONGLONG, true, "18446744073709551615"},
		{le64(1 << 63), mysql.MYSQL_TYPE_LONGLONG, false, "-9223372036854775808"},
		{le32(math.Float32bits(1.5)), mysql.MYSQL_TYPE_FLOAT, false, "1.5"},
		{le64(math.Float64bits(-0.25)), mysql.MYSQL_TYPE_DOUBLE, false, "-0.25"},
		{wire.AppendLenencString(nil, "12.50"), mysql.MYSQL_TYPE_NEWDECIMAL, false, "12.50"},
		{wire.AppendLenencString(nil, "o'k"), mysql.MYSQL_TYPE_BLOB, false, `'o\'k'`},
		{datetime, mysql.MYSQL_TYPE_DATETIME, false, "'2024-02-29 13:04:05.000123'"},
		{append([]byte{4}, append(le16(1999), 12, 31)...), mysql.MYSQL_TYPE_DATE, false, "'1999-12-31'"},
		{tm, mysql.MYSQL_TYPE_TIME, false, "'-26:03:04'"},
		{nil, mysql.MYSQL_TYPE_NULL, false, "NULL"},
	} {
		got, used, ok := decodeValue(c.b, c.typ, c.unsigned)
		if !ok || got != c.want || used != len(c.b) {
			t.Errorf("type %d %x: %q used %d ok %v, want %q", c.typ, c.b, got, used, ok, c.want)
		}
	}
	if _, _, ok := decodeValue([]byte{1, 2}, mysql.MYSQL_TYPE_LONG, false); ok {
		t.Error("short value decoded")
	}
}

func TestHandleConnAndDelay(t *testing.T) {
	type seen struct {
		id      uint32
		caps    uint32
		inTrans bool
		vars    map[string]string
		mode    string
	}
	seenc := make(chan seen, 1)
	s := Start(t, Options{Handle: func(c *Conn, q string) *Result {
		switch q {
		case "SHOW CONN":
			mode, _ := c.Var("SQL_MODE")
			seenc <- seen{c.ID(), c.Capabilities(), c.InTransaction(), c.Vars(), mode}
			return &Result{}
		case "SLOW":
			return &Result{Delay: time.Hour, Columns: []string{"x"}}
		case "WAIT":
			<-c.Done()
			return &Result{}
		}
		return nil
	}})
	rc := loginRaw(t, s, rawCaps, "app", "secret", "shop")
	rc.OKPacket(rc.Query("SET sql_mode = 'X', @u = 2"))
	rc.OKPacket(rc.Query("START TRANSACTION READ WRITE"))
	rc.OKPacket(rc.Query("SHOW CONN"))
	got := <-seenc
	if got.id != rc.Greeting.ConnectionID || got.caps != rc.Caps || !got.inTrans || got.mode != "X" ||
		!reflect.DeepEqual(got.vars, map[string]string{"sql_mode": "X", "@u": "2"}) {
		t.Fatalf("Handle saw %+v", got)
	}

	// A Delay ends when the connection is killed.
	rc.Command(wire.AppendCommand(nil, mysql.COM_QUERY, "SLOW"))
	mysqltest.Eventually(t, "SLOW", func() bool {
		q := s.Queries()
		return q[len(q)-1] == "SLOW"
	})
	if !s.Kill(rc.Greeting.ConnectionID) || s.Kill(12345) {
		t.Fatal("Kill")
	}
	mysqltest.Eventually(t, "the kill", func() bool { return s.Conns() == 0 })

	// A Handle can wait for the connection to go.
	rc = loginRaw(t, s, rawCaps, "app", "secret", "shop")
	rc.Command(wire.AppendCommand(nil, mysql.COM_QUERY, "WAIT"))
	mysqltest.Eventually(t, "WAIT", func() bool {
		q := s.Queries()
		return q[len(q)-1] == "WAIT"
	})
	s.KillConnections()
	mysqltest.Eventually(t, "the kill", func() bool { return s.Conns() == 0 })
}

func TestSetAndDDL(t *testing.T) {
	s := Start(t, Options{})
	rc := loginRaw(t, s, rawCaps|mysql.CLIENT_SESSION_TRACK, "app", "secret", "")
	rc.OKPacket(rc.Query("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"))
	rc.OKPacket(rc.Query("SET CHARACTER SET latin1"))
	rc.OKPacket(rc.Query("SET @@global.max_connections = 10, `weird name` = 1"))
	rc.OKPacket(rc.Query("SET wait_timeout = 5"))
	rc.OKPacket(rc.Query("SET wait_timeout = DEFAULT"))
	if e := rc.MustErr(rc.Query("SET autocommit = 'maybe'")); e.Code != mysql.ER_WRONG_VALUE_FOR_VAR {
		t.Fatalf("bad autocommit: %v", e)
	}
	if e := rc.MustErr(rc.Query("SET = 1")); e.Code != mysql.ER_PARSE_ERROR {
		t.Fatalf("bad SET: %v", e)
	}
	got := joinRows(mysqltest.TextRows(t, rc.Query("SELECT @@tx_isolation, @@character_set_client, @@max_connections, @@wait_timeout, @@session.`weird name`")))
	if got != "READ-COMMITTED,latin1,10,28800,1" {
		t.Fatalf("variables %q", got)
	}
	// session_track_system_variables: a list replaces, '*' tracks all.
	rc.OKPacket(rc.Query("SET session_track_system_variables = 'wait_timeout'"))
	ok := rc.OKPacket(rc.Query("SET wait_timeout = 7, autocommit = 1"))
	if o, _ := wire.ParseOK(ok); o.Status&mysql.SERVER_SESSION_STATE_CHANGED == 0 || !strings.Contains(string(ok), "wait_timeout") ||
		strings.Contains(string(ok), "autocommit") {
		t.Fatalf("tracked %q", ok)
	}
	rc.OKPacket(rc.Query("SET session_track_system_variables = '*'"))
	ok = rc.OKPacket(rc.Query("SET @@sql_mode = ''"))
	if !strings.Contains(string(ok), "sql_mode") {
		t.Fatalf("'*' does not track sql_mode: %q", ok)
	}

	// DDL: CREATE DATABASE makes a schema; DDL commits the transaction.
	rc.OKPacket(rc.Query("CREATE DATABASE IF NOT EXISTS fresh"))
	rc.OKPacket(rc.Query("USE fresh"))
	rc.OKPacket(rc.Query("BEGIN"))
	rc.OKPacket(rc.Query("INSERT INTO t VALUES (1)"))
	resp := rc.Query("CREATE TABLE t2 (a INT)")
	if mysqltest.EndStatus(t, resp)&mysql.SERVER_STATUS_IN_TRANS != 0 || s.GTIDPos() != "0-1-3" {
		t.Fatalf("after DDL: status %#x GTID %q", mysqltest.EndStatus(t, resp), s.GTIDPos())
	}
	rc.OKPacket(rc.Query("DROP SCHEMA fresh"))
	if e := rc.MustErr(rc.Query("USE fresh")); e.Code != mysql.ER_BAD_DB_ERROR {
		t.Fatalf("USE of a dropped schema: %v", e)
	}
	if e := rc.MustErr(rc.Query("  ")); e.Code != mysql.ER_EMPTY_QUERY {
		t.Fatalf("empty query: %v", e)
	}
	// Rows of a Handle's result are fitted to the columns.
	if r := fitRow([]sql.NullString{str("a"), str("b")}, 1); len(r) != 1 || r[0].String != "a" {
		t.Fatalf("fitRow %v", r)
	}
}
