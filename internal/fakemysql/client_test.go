package fakemysql

import (
	"database/sql"
	"fmt"
	"testing"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/internal/mysqltest"
)

// Tests with the go-mysql client package, which negotiates differently
// from go-sql-driver: with or without CLIENT_DEPRECATE_EOF, with
// CLIENT_SESSION_TRACK and CLIENT_MULTI_STATEMENTS on request, and reads
// the status flags of every response.

func noDeprecateEOF(c *client.Conn) error {
	c.UnsetCapability(mysql.CLIENT_DEPRECATE_EOF)
	return nil
}

func connect(t *testing.T, s *Server, user, pass, schema string, opts ...client.Option) *client.Conn {
	t.Helper()
	c, err := client.Connect(s.Addr(), user, pass, schema, opts...)
	if err != nil {
		t.Fatalf("connect %s: %v", user, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// eofModes runs f with a client that negotiates CLIENT_DEPRECATE_EOF and
// one that does not.
func eofModes(t *testing.T, f func(t *testing.T, opts ...client.Option)) {
	t.Run("deprecate_eof", func(t *testing.T) { f(t) })
	t.Run("classic_eof", func(t *testing.T) { f(t, noDeprecateEOF) })
}

func TestClientLogin(t *testing.T) {
	eofModes(t, func(t *testing.T, opts ...client.Option) {
		for _, plugin := range []string{mysql.AUTH_NATIVE_PASSWORD, mysql.AUTH_CACHING_SHA2_PASSWORD} {
			s := Start(t, Options{AuthPlugin: plugin})
			for range 2 { // caching_sha2: full, then fast
				c := connect(t, s, "monitor", "monitor", "shop", opts...)
				if err := c.Ping(); err != nil {
					t.Fatal(err)
				}
				c.Quit()
			}
			_, err := client.Connect(s.Addr(), "monitor", "nope", "", opts...)
			code, state, _ := mysqltest.ServerError(err)
			if code != mysql.ER_ACCESS_DENIED_ERROR || state != "28000" {
				t.Fatalf("%s: wrong password: %v", plugin, err)
			}
			_, err = client.Connect(s.Addr(), "monitor", "monitor", "nowhere", opts...)
			wantCode(t, err, mysql.ER_BAD_DB_ERROR)
		}
	})
}

func TestClientTLS(t *testing.T) {
	cert := mysqltest.Certificate()
	serverTLS, clientTLS := cert.Server, cert.Client
	for _, plugin := range []string{mysql.AUTH_NATIVE_PASSWORD, mysql.AUTH_CACHING_SHA2_PASSWORD} {
		s := Start(t, Options{AuthPlugin: plugin, TLS: serverTLS})
		c := connect(t, s, "app", "secret", "", func(c *client.Conn) error {
			c.SetTLSConfig(clientTLS)
			return nil
		})
		r, err := c.Execute("SELECT 'secure'")
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := r.GetString(0, 0); v != "secure" {
			t.Fatalf("%s: %q", plugin, v)
		}
	}
}

func TestClientQueriesAndTransactions(t *testing.T) {
	eofModes(t, func(t *testing.T, opts ...client.Option) {
		s := Start(t, Options{Handle: func(c *Conn, q string) *Result {
			if q == "SELECT caps" {
				return &Result{Columns: []string{"caps"}, Rows: [][]sql.NullString{{str(fmt.Sprint(c.Capabilities()))}}}
			}
			return nil
		}})
		c := connect(t, s, "app", "secret", "shop", opts...)
		r, err := c.Execute("SELECT caps")
		if err != nil {
			t.Fatal(err)
		}
		caps, _ := r.GetUint(0, 0)
		if deprecate := uint32(caps)&mysql.CLIENT_DEPRECATE_EOF != 0; deprecate != (len(opts) == 0) {
			t.Fatalf("negotiated capabilities %#x", caps)
		}
		r, err = c.Execute("SELECT @@autocommit AS ac, 'x', NULL")
		if err != nil {
			t.Fatal(err)
		}
		if r.ColumnNumber() != 3 || r.RowNumber() != 1 {
			t.Fatalf("shape %dx%d", r.ColumnNumber(), r.RowNumber())
		}
		if v, _ := r.GetStringByName(0, "ac"); v != "1" {
			t.Fatalf("ac %q", v)
		}
		if null, _ := r.IsNull(0, 2); !null {
			t.Fatal("NULL column not NULL")
		}
		if !c.IsAutoCommit() || c.IsInTransaction() {
			t.Fatal("status before BEGIN")
		}
		if err := c.Begin(); err != nil {
			t.Fatal(err)
		}
		if !c.IsInTransaction() {
			t.Fatal("not in transaction after BEGIN")
		}
		if _, err := c.Execute("INSERT INTO t VALUES (1)"); err != nil {
			t.Fatal(err)
		}
		if !c.IsInTransaction() || s.GTIDPos() != "" {
			t.Fatalf("in transaction %v, GTID %q before COMMIT", c.IsInTransaction(), s.GTIDPos())
		}
		if err := c.Commit(); err != nil {
			t.Fatal(err)
		}
		if c.IsInTransaction() || s.GTIDPos() != "0-1-1" {
			t.Fatalf("in transaction %v, GTID %q after COMMIT", c.IsInTransaction(), s.GTIDPos())
		}
		if err := c.BeginTx(true, ""); err != nil {
			t.Fatal(err)
		}
		_, err = c.Execute("DELETE FROM t")
		wantCode(t, err, mysql.ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION)
		if err := c.Rollback(); err != nil {
			t.Fatal(err)
		}

		// autocommit=0: a transaction from the first statement on.
		if _, err := c.Execute("SET autocommit = 0"); err != nil {
			t.Fatal(err)
		}
		if c.IsAutoCommit() || c.IsInTransaction() {
			t.Fatal("status after SET autocommit = 0")
		}
		if _, err := c.Execute("SELECT 1"); err != nil {
			t.Fatal(err)
		}
		if !c.IsInTransaction() {
			t.Fatal("no implicit transaction with autocommit = 0")
		}
		if _, err := c.Execute("UPDATE t SET a = 2"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Execute("ROLLBACK"); err != nil {
			t.Fatal(err)
		}
		if c.IsInTransaction() || s.GTIDPos() != "0-1-1" {
			t.Fatalf("after ROLLBACK: in transaction %v, GTID %q", c.IsInTransaction(), s.GTIDPos())
		}
		if _, err := c.Execute("UPDATE t SET a = 3"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Execute("SET autocommit = 1"); err != nil { // commits
			t.Fatal(err)
		}
		if !c.IsAutoCommit() || c.IsInTransaction() || s.GTIDPos() != "0-1-2" {
			t.Fatalf("after SET autocommit = 1: %v %v %q", c.IsAutoCommit(), c.IsInTransaction(), s.GTIDPos())
		}

		if err := c.UseDB("shop"); err != nil {
			t.Fatal(err)
		}
		wantCode(t, c.UseDB("nowhere"), mysql.ER_BAD_DB_ERROR)

		fields, err := c.FieldList("users", "")
		if err != nil {
			t.Fatal(err)
		}
		if len(fields) != 2 || string(fields[0].Name) != "id" || string(fields[1].Table) != "users" {
			t.Fatalf("field list %v", fields)
		}
		if err := c.Ping(); err != nil { // still in step
			t.Fatal(err)
		}
	})
}

func TestClientMultiStatements(t *testing.T) {
	eofModes(t, func(t *testing.T, opts ...client.Option) {
		s := Start(t, Options{})
		opts = append(opts, func(c *client.Conn) error { return c.SetCapability(mysql.CLIENT_MULTI_STATEMENTS) })
		c := connect(t, s, "app", "secret", "shop", opts...)
		var got []string
		var statuses []uint16
		_, err := c.ExecuteMultiple("SELECT 1 AS a; INSERT INTO t VALUES (';'); SELECT 'x;y' /* ; */", func(r *mysql.Result, err error) {
			if err != nil {
				got = append(got, "err")
				return
			}
			statuses = append(statuses, r.Status)
			if r.Resultset != nil && r.ColumnNumber() > 0 {
				v, _ := r.GetString(0, 0)
				got = append(got, v)
			} else {
				got = append(got, "ok")
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || got[0] != "1" || got[1] != "ok" || got[2] != "x;y" {
			t.Fatalf("results %q", got)
		}
		for i, st := range statuses {
			more := st&mysql.SERVER_MORE_RESULTS_EXISTS != 0
			if more != (i < 2) {
				t.Fatalf("result %d status %#x", i, st)
			}
		}
	})
}

func TestClientPrepared(t *testing.T) {
	eofModes(t, func(t *testing.T, opts ...client.Option) {
		s := Start(t, Options{})
		c := connect(t, s, "app", "secret", "shop", opts...)
		st, err := c.Prepare("SELECT ?, ? AS b, '?', ?")
		if err != nil {
			t.Fatal(err)
		}
		if st.ParamNum() != 3 || st.ColumnNum() != 4 {
			t.Fatalf("params %d columns %d", st.ParamNum(), st.ColumnNum())
		}
		r, err := st.Execute(int64(7), "a'b", nil)
		if err != nil {
			t.Fatal(err)
		}
		var row []string
		for i := range 4 {
			if null, _ := r.IsNull(0, i); null {
				row = append(row, "NULL")
				continue
			}
			v, err := r.GetString(0, i)
			if err != nil {
				t.Fatal(err)
			}
			row = append(row, v)
		}
		if got := joinRows([][]string{row}); got != "7,a'b,?,NULL" {
			t.Fatalf("row %q", got)
		}
		// Execute again, and a write through a prepared statement.
		if _, err := st.Execute(int64(8), "c", int64(1)); err != nil {
			t.Fatal(err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		r, err = c.Execute("UPDATE t SET a = ? WHERE b = ?", 1, "x")
		if err != nil {
			t.Fatal(err)
		}
		if r.AffectedRows != 1 {
			t.Fatalf("affected rows %d", r.AffectedRows)
		}
		log := s.Log()
		var exec []string
		for _, cmd := range log {
			if cmd.Cmd == mysql.COM_STMT_EXECUTE {
				exec = append(exec, cmd.Arg)
			}
		}
		want := []string{"SELECT 7, 'a\\'b' AS b, '?', NULL", "SELECT 8, 'c' AS b, '?', 1", "UPDATE t SET a = 1 WHERE b = 'x'"}
		if len(exec) != 3 || exec[0] != want[0] || exec[1] != want[1] || exec[2] != want[2] {
			t.Fatalf("executions %q", exec)
		}
		if err := c.Ping(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestClientSessionTrack(t *testing.T) {
	s := Start(t, Options{ServerID: 3})
	c := connect(t, s, "app", "secret", "shop", func(c *client.Conn) error {
		return c.SetCapability(mysql.CLIENT_SESSION_TRACK)
	})
	r, err := c.Execute("SET SESSION session_track_system_variables = CONCAT_WS(',', @@session_track_system_variables, 'last_gtid')")
	if err != nil {
		t.Fatal(err)
	}
	_ = r
	r, err = c.Execute("INSERT INTO t VALUES (1)")
	if err != nil {
		t.Fatal(err)
	}
	if r.SessionTracking == nil || r.SessionTracking.Variables["last_gtid"] != "0-3-1" {
		t.Fatalf("session tracking %+v", r.SessionTracking)
	}
	r, err = c.Execute("SET NAMES utf8mb4")
	if err != nil {
		t.Fatal(err)
	}
	if r.SessionTracking == nil || r.SessionTracking.Variables["character_set_client"] != "utf8mb4" {
		t.Fatalf("session tracking after SET NAMES %+v", r.SessionTracking)
	}
	r, err = c.Execute("USE shop")
	if err != nil {
		t.Fatal(err)
	}
	if r.SessionTracking == nil || r.SessionTracking.Schema != "shop" {
		t.Fatalf("session tracking after USE %+v", r.SessionTracking)
	}
	r, err = c.Execute("SELECT @@last_gtid")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := r.GetString(0, 0); v != "0-3-1" {
		t.Fatalf("@@last_gtid %q", v)
	}
}
