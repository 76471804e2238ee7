package integration

// End-to-end tests of the response shapes the forwarder must read right:
// stored procedures with open cursors, multiple results, errors after result
// sets, OUT parameters of a prepared CALL, execute-time cursors, warnings
// and LOCAL INFILE inside multi-statements, each with and without
// CLIENT_DEPRECATE_EOF and with multiplexing on and off. The oracle is the
// server itself: every client runs the same statements directly against
// the primary and through switchyard, and must see the same answer, in
// bounded time (a misread response used to leave the client waiting
// forever).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	gomysql "github.com/go-sql-driver/mysql"

	"switchyard/integration/harness"
	"switchyard/internal/mysqltest"
	"switchyard/wire"
)

// fsProcedures are created on the primary (they replicate). fs_sig is the
// reproduction from MariaDB's signal.test: the handler's SELECT runs while
// the procedure's cursor is open, so its result's EOF packets carry
// SERVER_STATUS_CURSOR_EXISTS, and the CALL then fails with 1329.
var fsProcedures = []string{
	"CREATE TABLE IF NOT EXISTS fs_empty (a INT)",
	"CREATE TABLE IF NOT EXISTS fs_t (a INT)",
	"DELETE FROM fs_t",
	"INSERT INTO fs_t VALUES (1), (2), (3)",
	"CREATE TABLE IF NOT EXISTS fs_load (a INT, b VARCHAR(20))",
	"DROP PROCEDURE IF EXISTS fs_sig",
	`CREATE PROCEDURE fs_sig(IN unused INT)
BEGIN
  DECLARE x INT;
  DECLARE c CURSOR FOR SELECT a FROM fs_empty;
  DECLARE CONTINUE HANDLER FOR NOT FOUND
  BEGIN
    SELECT "before RESIGNAL";
    RESIGNAL;
    SELECT "after RESIGNAL";
  END;
  OPEN c;
  FETCH c INTO x;
  CLOSE c;
END`,
	"DROP PROCEDURE IF EXISTS fs_cursor_results",
	`CREATE PROCEDURE fs_cursor_results(IN unused INT)
BEGIN
  DECLARE x INT;
  DECLARE c CURSOR FOR SELECT a FROM fs_t ORDER BY a;
  OPEN c;
  FETCH c INTO x;
  SELECT x AS first_row;
  SELECT a FROM fs_t ORDER BY a;
  CLOSE c;
  SELECT 'closed' AS s;
END`,
	"DROP PROCEDURE IF EXISTS fs_for",
	`CREATE PROCEDURE fs_for(IN unused INT)
BEGIN
  FOR r IN (SELECT a FROM fs_t ORDER BY a) DO
    SELECT r.a AS ra, 1/0 AS warns;
  END FOR;
END`,
	"DROP PROCEDURE IF EXISTS fs_loop",
	`CREATE PROCEDURE fs_loop()
BEGIN
  DECLARE done INT DEFAULT 0;
  DECLARE x INT;
  DECLARE c CURSOR FOR SELECT a FROM fs_t ORDER BY a;
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1;
  OPEN c;
  l: LOOP
    FETCH c INTO x;
    IF done THEN LEAVE l; END IF;
    SELECT x AS fetched;
  END LOOP;
  CLOSE c;
END`,
	"DROP PROCEDURE IF EXISTS fs_nested",
	`CREATE PROCEDURE fs_nested()
BEGIN
  DECLARE c CURSOR FOR SELECT a FROM fs_t;
  OPEN c;
  CALL fs_multi();
  CALL fs_cursor_results(0);
  CLOSE c;
  SIGNAL SQLSTATE '01000' SET MESSAGE_TEXT = 'a warning at the end';
END`,
	"DROP PROCEDURE IF EXISTS fs_multi",
	"CREATE PROCEDURE fs_multi() BEGIN SELECT 1 AS a; SELECT 2 AS b, 3 AS c; END",
	"DROP PROCEDURE IF EXISTS fs_err_after",
	"CREATE PROCEDURE fs_err_after() BEGIN SELECT 1 AS a; SELECT * FROM fs_no_such_table; END",
	"DROP PROCEDURE IF EXISTS fs_slow",
	"CREATE PROCEDURE fs_slow() BEGIN SELECT 'first' AS a; DO SLEEP(6); SELECT 'second' AS b; END",
	"DROP PROCEDURE IF EXISTS fs_out",
	"CREATE PROCEDURE fs_out(IN a INT, OUT b INT, INOUT c INT) BEGIN SELECT a AS in_a; SET b = a * 2; SET c = c + 1; END",
}

func fsSetup(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stmts := make([]string, 0, len(fsProcedures)+1)
	stmts = append(stmts, "USE "+cluster.Database)
	stmts = append(stmts, fsProcedures...)
	if err := cluster.Primary.Exec(ctx, stmts...); err != nil {
		t.Fatal(err)
	}
	if err := cluster.WaitReplicasCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestForwardResponseShapes runs every shape through the mariadb CLI
// (classic EOF packets), go-sql-driver (CLIENT_DEPRECATE_EOF, text and
// binary protocol) and the raw client (both, execute-time cursors), each
// against the primary directly and through switchyard, with multiplexing on
// and off.
func TestForwardResponseShapes(t *testing.T) {
	fsSetup(t)
	infile := filepath.Join(t.TempDir(), "fs_load.csv")
	if err := os.WriteFile(infile, []byte("1,one\n2,two\n3,three\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	direct := cluster.Primary.Addr()
	for _, mux := range []bool{true, false} {
		t.Run(fmt.Sprintf("multiplexing=%v", mux), func(t *testing.T) {
			p := startProxy(t, harness.ProxyOptions{LogLevel: "info",
				ExtraYAML: fmt.Sprintf("pool:\n  multiplexing: %v\n", mux)})
			t.Run("mariadb CLI", func(t *testing.T) { fsCompareCLI(t, direct, p.Addr(), infile) })
			t.Run("go-sql-driver", func(t *testing.T) { fsCompareGo(t, direct, p.Addr(), infile) })
			for _, deprecateEOF := range []bool{false, true} {
				t.Run(fmt.Sprintf("raw deprecate_eof=%v", deprecateEOF), func(t *testing.T) {
					fsCompareRaw(t, direct, p.Addr(), deprecateEOF)
				})
			}
			if logs := p.Logs(); strings.Contains(logs, "level=ERROR") {
				t.Errorf("the proxy logged errors for well-formed responses:\n%s", p.LogTail(20))
			}
		})
	}
}

// TestForwardWaitsOnLongStatements: a response that pauses in the middle
// for longer than the proxy's stall check (5s), because the server is busy
// computing the rest, is waited for: the proxy asks MariaDB what the
// connection is doing, sees it working, and relays the rest when it comes.
func TestForwardWaitsOnLongStatements(t *testing.T) {
	fsSetup(t)
	p := startProxy(t, harness.ProxyOptions{LogLevel: "debug"})
	db := appDB(t, p, "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got := fsGoResults(ctx, conn, "CALL fs_slow()")
	if want := "[a]\n  [first]\n[b]\n  [second]\n"; got != want {
		t.Fatalf("CALL fs_slow(): %q, want %q", got, want)
	}
	logs := p.Logs()
	if !strings.Contains(logs, `msg="checked a silent server"`) || !strings.Contains(logs, "command=Query") {
		t.Errorf("the proxy did not check the silent server, or could not:\n%s", p.LogTail(20))
	}
	if strings.Contains(logs, "level=ERROR") {
		t.Errorf("errors logged:\n%s", p.LogTail(20))
	}
}

// fsCLIScript runs in one CLI session; --force goes on after errors. The
// statements between DELIMITER lines are multi-statement queries.
func fsCLIScript(infile string) string {
	return `CALL fs_sig(0);
SELECT 'after sig';
CALL fs_cursor_results(0);
CALL fs_for(0);
CALL fs_loop();
CALL fs_multi();
CALL fs_err_after();
SELECT 'after err';
CALL fs_nested();
SHOW WARNINGS;
PREPARE s FROM 'CALL fs_cursor_results(0)';
EXECUTE s;
DEALLOCATE PREPARE s;
EXECUTE IMMEDIATE 'CALL fs_sig(0)';
DELIMITER //
SELECT 1/0 AS w; SHOW WARNINGS; SELECT 'two' AS s//
SELECT 1 AS a; SELECT * FROM fs_no_such_table; SELECT 3//
CALL fs_sig(0); SELECT 'not reached'//
CALL fs_cursor_results(0); SELECT 'reached'//
DELETE FROM fs_load; LOAD DATA LOCAL INFILE '` + infile + `' INTO TABLE fs_load FIELDS TERMINATED BY ','; SELECT COUNT(*) AS n FROM fs_load//
CALL fs_multi(); LOAD DATA LOCAL INFILE '` + infile + `' INTO TABLE fs_load FIELDS TERMINATED BY ','; SELECT COUNT(*) AS n FROM fs_load//
DELIMITER ;
SELECT 'end';
`
}

// fsCLI runs script through the mariadb CLI against addr and returns its
// output; a CLI still waiting after 20 seconds fails the test.
func fsCLI(t *testing.T, addr, script string) string {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "mariadb", "--no-defaults", "--connect-timeout=10", "-h", host, "-P", port,
		"-u", cluster.AppUser, "-p"+cluster.AppPassword, "--batch", "--force", "--local-infile=1", "-D", cluster.Database)
	cmd.Stdin = strings.NewReader(script)
	out, _ := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("mariadb against %s did not finish within 20s (a client left waiting); output so far:\n%s", addr, out)
	}
	return string(out)
}

func fsCompareCLI(t *testing.T, direct, proxied, infile string) {
	script := fsCLIScript(infile)
	want := fsCLI(t, direct, script)
	got := fsCLI(t, proxied, script)
	if got != want {
		t.Errorf("through switchyard the CLI saw:\n%s\ndirectly:\n%s", got, want)
	}
	for _, s := range []string{"before RESIGNAL", "ERROR 1329 (02000)", "closed", "reached", "end"} {
		if !strings.Contains(want, s) {
			t.Errorf("the server's own answer lacks %q: the test does not test what it says:\n%s", s, want)
		}
	}
}

// fsGoCase is a statement for go-sql-driver; args make it a prepared
// statement (binary protocol).
type fsGoCase struct {
	query string
	args  []any
}

var fsGoCases = []fsGoCase{
	{"CALL fs_sig(0)", nil},
	{"CALL fs_sig(?)", []any{0}},
	{"CALL fs_cursor_results(0)", nil},
	{"CALL fs_cursor_results(?)", []any{0}},
	{"CALL fs_for(?)", []any{0}},
	{"CALL fs_loop()", nil},
	{"CALL fs_multi()", nil},
	{"CALL fs_nested()", nil},
	{"CALL fs_err_after()", nil},
	{"CALL fs_out(?, ?, ?)", []any{3, 0, 1}},
	{"SELECT 1/0 AS w; SHOW WARNINGS; SELECT 'two' AS s", nil},
	{"SELECT 1 AS a; SELECT * FROM fs_no_such_table; SELECT 3", nil},
	{"CALL fs_sig(0); SELECT 'not reached'", nil},
	{"CALL fs_cursor_results(0); SELECT 'reached'", nil},
	{"DELETE FROM fs_load; LOAD DATA LOCAL INFILE 'Reader::fs' INTO TABLE fs_load FIELDS TERMINATED BY ','; SELECT COUNT(*) FROM fs_load", nil},
	{"SELECT a FROM fs_t WHERE a > ? ORDER BY a", []any{1}},
}

func fsCompareGo(t *testing.T, direct, proxied, infile string) {
	gomysql.RegisterReaderHandler("fs", func() io.Reader {
		f, err := os.Open(infile)
		if err != nil {
			return strings.NewReader("")
		}
		return f
	})
	params := "multiStatements=true&readTimeout=10s&writeTimeout=10s&timeout=10s"
	dsn := func(addr string) string {
		return fmt.Sprintf("%s:%s@tcp(%s)/%s?%s", cluster.AppUser, cluster.AppPassword, addr, cluster.Database, params)
	}
	run := func(addr string) []string {
		db, err := sql.Open("mysql", dsn(addr))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var out []string
		for _, c := range fsGoCases {
			out = append(out, c.query+" => "+fsGoResults(ctx, conn, c.query, c.args...))
			// The connection must be where the server is: the next
			// statement gets its own answer.
			if got := fsGoResults(ctx, conn, "SELECT 'in step'"); got != "[in step]\n  [in step]\n" {
				out = append(out, "after "+c.query+": "+got)
			}
		}
		return out
	}
	want := run(direct)
	got := run(proxied)
	for i := range want {
		if i >= len(got) || got[i] != want[i] {
			g := "(nothing)"
			if i < len(got) {
				g = got[i]
			}
			t.Errorf("through switchyard:\n%s\ndirectly:\n%s", g, want[i])
		}
	}
}

// fsGoResults runs q on conn and describes every result set and the error
// that ended it.
func fsGoResults(ctx context.Context, conn *sql.Conn, q string, args ...any) string {
	rows, err := conn.QueryContext(ctx, q, args...)
	if err != nil {
		return "error " + fsErr(err)
	}
	defer rows.Close()
	var b strings.Builder
	for {
		cols, _ := rows.Columns()
		fmt.Fprintf(&b, "%v\n", cols)
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				return b.String() + "scan error " + err.Error()
			}
			row := make([]string, len(vals))
			for i, v := range vals {
				row[i] = v.String
				if !v.Valid {
					row[i] = "NULL"
				}
			}
			fmt.Fprintf(&b, "  %v\n", row)
		}
		if !rows.NextResultSet() {
			break
		}
	}
	if err := rows.Err(); err != nil {
		b.WriteString("error " + fsErr(err))
	}
	return b.String()
}

func fsErr(err error) string {
	var me *gomysql.MySQLError
	if errors.As(err, &me) {
		return fmt.Sprintf("%d (%s) %s", me.Number, string(me.SQLState[:]), me.Message)
	}
	return err.Error()
}

// fsRawCaps are a classic client's capabilities.
const fsRawCaps = mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_PLUGIN_AUTH |
	mysql.CLIENT_MULTI_STATEMENTS | mysql.CLIENT_MULTI_RESULTS | mysql.CLIENT_PS_MULTI_RESULTS |
	mysql.CLIENT_TRANSACTIONS | mysql.CLIENT_LONG_PASSWORD | mysql.CLIENT_LONG_FLAG

// fsCompareRaw runs text queries, prepared CALLs with OUT parameters and
// execute-time cursors with the raw client, which checks every packet
// against what it negotiated, and compares the packets with the server's.
func fsCompareRaw(t *testing.T, direct, proxied string, deprecateEOF bool) {
	caps := uint32(fsRawCaps)
	if deprecateEOF {
		caps |= mysql.CLIENT_DEPRECATE_EOF
	}
	run := func(addr string) []string {
		c := mysqltest.Dial(t, addr, caps, nil)
		_ = c.TCP.SetDeadline(time.Now().Add(20 * time.Second))
		if err := c.Login(mysqltest.Login{User: cluster.AppUser, Pass: cluster.AppPassword, Schema: cluster.Database}); err != nil {
			t.Fatal(err)
		}
		var out []string
		record := func(what string, resp []mysqltest.Packet) {
			var b strings.Builder
			b.WriteString(what + ":")
			for _, p := range resp {
				fmt.Fprintf(&b, " %d:%x", p.Kind, p.Payload)
			}
			out = append(out, b.String())
		}
		for _, q := range []string{"CALL fs_sig(0)", "CALL fs_cursor_results(0)", "CALL fs_for(0)", "CALL fs_nested()",
			"SELECT 1 AS a; SELECT * FROM fs_no_such_table; SELECT 3", "CALL fs_err_after()", "SELECT 'in step'"} {
			record(q, c.Query(q))
		}
		prepare := func(q string) uint32 {
			ok := c.Prepare(q)
			return ok.StatementID
		}
		out1 := prepare("CALL fs_out(?, ?, ?)")
		record("execute fs_out", c.Execute(out1, 0, true, int64(3), int64(0), int64(1)))
		sig := prepare("CALL fs_sig(?)")
		record("execute fs_sig", c.Execute(sig, 0, true, int64(0)))
		// A cursor asked for a CALL: the server opens none, and the
		// procedure's own cursor shows in the status flags.
		record("execute fs_sig with a cursor", c.Execute(sig, wire.CursorFlags, true, int64(0)))
		cr := prepare("CALL fs_cursor_results(?)")
		record("execute fs_cursor_results with a cursor", c.Execute(cr, wire.CursorFlags, true, int64(0)))
		sel := prepare("SELECT a FROM fs_t WHERE a > ? ORDER BY a")
		record("execute with a cursor", c.Execute(sel, wire.CursorFlags, true, int64(0)))
		record("fetch 2", c.Fetch(sel, 2))
		record("fetch 5", c.Fetch(sel, 5))
		record("execute without a cursor", c.Execute(sel, 0, true, int64(0)))
		record("last", c.Query("SELECT 'in step'"))
		return out
	}
	want := run(direct)
	got := run(proxied)
	for i := range want {
		if i >= len(got) || got[i] != want[i] {
			g := "(nothing)"
			if i < len(got) {
				g = got[i]
			}
			t.Errorf("through switchyard:\n%s\ndirectly:\n%s", g, want[i])
		}
	}
}

// Stalled clients and bad framing. A client that starts a packet and stops
// is dropped after limits.net_read_timeout (not the idle timeout, hours);
// one that waits between commands is not. Packets out of order get the
// answer MariaDB gives, byte for byte.

// fsStallProxy starts a proxy whose net_read_timeout is short and whose
// idle and handshake timeouts are far longer than any wait in the test,
// so only net_read_timeout can close a stalled client in time.
func fsStallProxy(t *testing.T) *harness.Proxy {
	return startProxy(t, harness.ProxyOptions{LogLevel: "info", ExtraYAML: "limits:\n" +
		"  net_read_timeout: 300ms\n  handshake_timeout: 60s\n  client_idle_timeout: 60s\n"})
}

// fsLoggedIn is a raw client logged in through addr, with a deadline that
// bounds the test's waits far below the idle and handshake timeouts.
func fsLoggedIn(t *testing.T, addr string) *mysqltest.Client {
	t.Helper()
	c := mysqltest.Dial(t, addr, fsRawCaps|mysql.CLIENT_LOCAL_FILES, nil)
	_ = c.TCP.SetDeadline(time.Now().Add(20 * time.Second))
	if err := c.Login(mysqltest.Login{User: cluster.AppUser, Pass: cluster.AppPassword, Schema: cluster.Database}); err != nil {
		t.Fatal(err)
	}
	return c
}

// fsUntilClosed reads what the proxy sends until it closes the
// connection, failing if it has not within 10 seconds.
func fsUntilClosed(t *testing.T, c *mysqltest.Client) []byte {
	t.Helper()
	_ = c.TCP.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c.Reader)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the connection was not closed: %v (got %x)", err, got)
	}
	return got
}

// fsErrPacket decodes the one ERR packet b holds, with its sequence id.
func fsErrPacket(t *testing.T, b []byte) (*mysql.MyError, uint8) {
	t.Helper()
	if len(b) < wire.HeaderSize || len(b) != wire.HeaderSize+wire.PayloadLen(b) || b[wire.HeaderSize] != wire.ErrHeader {
		t.Fatalf("want one ERR packet, got %x", b)
	}
	return wire.ParseErr(b[wire.HeaderSize:]), b[3]
}

func TestStalledClients(t *testing.T) {
	p := fsStallProxy(t)
	stall := func(name string, sent []byte) {
		t.Run(name, func(t *testing.T) {
			c := fsLoggedIn(t, p.Addr())
			if _, err := c.Conn.Write(sent); err != nil {
				t.Fatal(err)
			}
			e, _ := fsErrPacket(t, fsUntilClosed(t, c))
			if e.Code != mysql.ER_NET_READ_INTERRUPTED || e.State != "08S01" {
				t.Fatalf("stalled client told %v, want 1159 (08S01)", e)
			}
		})
	}
	// A command announced as 1000 bytes, 10 sent; a header cut short.
	stall("payload", append([]byte{0xe8, 0x03, 0, 0, mysql.COM_QUERY}, "SELECT 1 "...))
	stall("header", []byte{0xe8, 0x03})

	t.Run("login", func(t *testing.T) {
		c := mysqltest.Dial(t, p.Addr(), fsRawCaps, nil)
		c.ReadGreeting()
		if _, err := c.Conn.Write([]byte{100, 0, 0, 1, 0x85, 0xa6}); err != nil {
			t.Fatal(err)
		}
		fsUntilClosed(t, c)
	})

	t.Run("idle and slow clients are not stalled ones", func(t *testing.T) {
		c := fsLoggedIn(t, p.Addr())
		time.Sleep(time.Second) // idle between commands, longer than net_read_timeout
		if got := c.Value("SELECT 'after a pause'"); got != "after a pause" {
			t.Fatalf("after an idle second: %q", got)
		}
		// A long statement that trickles in, every piece sooner than
		// net_read_timeout after the last, the whole slower than it.
		q := "SELECT '" + strings.Repeat("x", 2000) + "' AS long_one"
		pkt, _ := wire.AppendPacket(nil, wire.AppendCommand(nil, mysql.COM_QUERY, q), 0)
		c.Seq = 1
		for len(pkt) > 0 {
			n := min(len(pkt), 250)
			if _, err := c.Conn.Write(pkt[:n]); err != nil {
				t.Fatal(err)
			}
			pkt = pkt[n:]
			time.Sleep(100 * time.Millisecond)
		}
		if rows := c.Rows(c.Response(wire.ShapeResult)); len(rows) != 1 || len(rows[0][0]) != 2000 {
			t.Fatalf("trickled statement: %v", rows)
		}
	})
	logs := p.Logs()
	if n := strings.Count(logs, "stopped in the middle of a packet"); n != 2 {
		t.Errorf("%d stalls logged, want 2:\n%s", n, p.LogTail(20))
	}
	if !strings.Contains(logs, "stopped in the middle of a login packet") {
		t.Errorf("the login stall is not logged as one:\n%s", p.LogTail(20))
	}
}

// TestPacketsOutOfOrder compares what the proxy and MariaDB answer to
// packets with the wrong sequence id: a command, a login, LOCAL INFILE
// data. The proxy then closes the connection at once. (MariaDB closes too,
// but in the middle of LOAD DATA only after its own net_read_timeout.)
func TestPacketsOutOfOrder(t *testing.T) {
	p := fsStallProxy(t)
	direct := cluster.Primary.Addr()
	cases := []struct {
		name string
		send func(addr string) *mysqltest.Client
	}{
		{"command", func(addr string) *mysqltest.Client {
			c := fsLoggedIn(t, addr)
			b, _ := wire.AppendPacket(nil, wire.AppendCommand(nil, mysql.COM_QUERY, "SELECT 1"), 5)
			c.Conn.Write(b)
			return c
		}},
		{"login", func(addr string) *mysqltest.Client {
			c := mysqltest.Dial(t, addr, fsRawCaps, nil)
			_ = c.TCP.SetDeadline(time.Now().Add(20 * time.Second))
			c.ReadGreeting()
			c.Seq = 3
			c.Write(wire.AppendHandshakeResponse(nil, &wire.HandshakeResponse{Capabilities: fsRawCaps, MaxPacketSize: 1 << 24,
				Collation: 45, User: cluster.AppUser, AuthData: mysqltest.AuthAnswer("", c.Scramble, cluster.AppPassword),
				AuthPlugin: mysql.AUTH_NATIVE_PASSWORD}))
			return c
		}},
		{"LOCAL INFILE data", func(addr string) *mysqltest.Client {
			c := fsLoggedIn(t, addr)
			c.Command(wire.AppendCommand(nil, mysql.COM_QUERY, "LOAD DATA LOCAL INFILE 'x.csv' INTO TABLE fs_load"))
			if req := c.Read(); req[0] != wire.InfileHeader {
				t.Fatalf("no LOCAL INFILE request: %x", req)
			}
			c.Seq = 9
			c.Write([]byte("1,one\n"))
			return c
		}},
	}
	// firstPacket is the first packet the peer sends, header included.
	firstPacket := func(c *mysqltest.Client) []byte {
		_ = c.TCP.SetReadDeadline(time.Now().Add(10 * time.Second))
		hdr := make([]byte, wire.HeaderSize)
		if _, err := io.ReadFull(c.Reader, hdr); err != nil {
			t.Fatalf("no answer: %v", err)
		}
		p := make([]byte, wire.PayloadLen(hdr))
		if _, err := io.ReadFull(c.Reader, p); err != nil {
			t.Fatalf("answer cut short: %v", err)
		}
		return append(hdr, p...)
	}
	fsSetup(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := firstPacket(tc.send(direct))
			c := tc.send(p.Addr())
			got := firstPacket(c)
			if string(got) != string(want) {
				t.Errorf("through switchyard %x, MariaDB %x", got, want)
			}
			if rest := fsUntilClosed(t, c); len(rest) > 0 {
				t.Errorf("more after the error: %x", rest)
			}
			e, _ := fsErrPacket(t, want)
			if e.Code != mysql.ER_NET_PACKETS_OUT_OF_ORDER {
				t.Errorf("MariaDB answered %v: the test does not test what it says", e)
			}
		})
	}
}

// TestOversizedLoginPacket: before login the proxy accepts far less than
// limits.max_packet_size; a bigger packet is refused with 1153, and the
// log names that limit, not max_packet_size.
func TestOversizedLoginPacket(t *testing.T) {
	p := fsStallProxy(t)
	c := mysqltest.Dial(t, p.Addr(), fsRawCaps, nil)
	c.ReadGreeting()
	size := 200 << 10
	hdr := []byte{byte(size), byte(size >> 8), byte(size >> 16), 1}
	if _, err := c.Conn.Write(append(hdr, make([]byte, size)...)); err != nil {
		t.Fatal(err)
	}
	e, seq := fsErrPacket(t, fsUntilClosed(t, c))
	if e.Code != mysql.ER_NET_PACKET_TOO_LARGE || seq != 2 {
		t.Errorf("oversized login packet: %v, sequence id %d; want 1153 as the answer to packet 1", e, seq)
	}
	logs := p.Logs()
	if !strings.Contains(logs, "login packet larger than the pre-login limit") || !strings.Contains(logs, "limit=65536") {
		t.Errorf("the log does not name the pre-login limit:\n%s", p.LogTail(10))
	}
	if strings.Contains(logs, "max_packet_size") {
		t.Errorf("the log blames limits.max_packet_size for a login packet:\n%s", p.LogTail(10))
	}
}
