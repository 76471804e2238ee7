package fakemysql

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	driver "github.com/go-sql-driver/mysql"

	"switchyard/internal/mysqltest"
)

// Tests with github.com/go-sql-driver/mysql, which negotiates
// CLIENT_DEPRECATE_EOF, and uses server-side prepared statements unless
// interpolateParams is set.

func TestDriverLoginNative(t *testing.T) {
	s := Start(t, Options{})
	db := openDB(t, s, "app", "secret", "shop", "")
	var v string
	if err := db.QueryRow("SELECT 1").Scan(&v); err != nil || v != "1" {
		t.Fatalf("SELECT 1: %q %v", v, err)
	}
	var schema sql.NullString
	if err := db.QueryRow("SELECT DATABASE()").Scan(&schema); err != nil || schema.String != "shop" {
		t.Fatalf("DATABASE(): %v %v", schema, err)
	}

	bad := openDB(t, s, "app", "wrong", "", "")
	err := bad.Ping()
	code, state, msg := mysqltest.ServerError(err)
	if code != mysql.ER_ACCESS_DENIED_ERROR || state != "28000" ||
		msg != "Access denied for user 'app'@'127.0.0.1' (using password: YES)" {
		t.Fatalf("wrong password: %v (%d %s %q)", err, code, state, msg)
	}
	wantCode(t, openDB(t, s, "nobody", "x", "", "").Ping(), mysql.ER_ACCESS_DENIED_ERROR)
	wantCode(t, openDB(t, s, "app", "secret", "nowhere", "").Ping(), mysql.ER_BAD_DB_ERROR)
}

func TestDriverEmptyPassword(t *testing.T) {
	for _, plugin := range []string{mysql.AUTH_NATIVE_PASSWORD, mysql.AUTH_CACHING_SHA2_PASSWORD} {
		s := Start(t, Options{AuthPlugin: plugin, Users: map[string]string{"root": ""}})
		if err := openDB(t, s, "root", "", "", "").Ping(); err != nil {
			t.Fatalf("%s: empty password: %v", plugin, err)
		}
		wantCode(t, openDB(t, s, "root", "x", "", "").Ping(), mysql.ER_ACCESS_DENIED_ERROR)
	}
}

func TestDriverCachingSha2(t *testing.T) {
	s := Start(t, Options{AuthPlugin: mysql.AUTH_CACHING_SHA2_PASSWORD})
	// The first login takes the full path (public key and RSA), the next
	// ones the fast path; both must work.
	for i := range 3 {
		db := openDB(t, s, "app", "secret", "", "")
		if err := db.Ping(); err != nil {
			t.Fatalf("login %d: %v", i, err)
		}
		db.Close()
	}
	wantCode(t, openDB(t, s, "app", "wrong", "", "").Ping(), mysql.ER_ACCESS_DENIED_ERROR)
	wantCode(t, openDB(t, s, "monitor", "wrong", "", "").Ping(), mysql.ER_ACCESS_DENIED_ERROR)
}

func TestDriverTLS(t *testing.T) {
	cert := mysqltest.Certificate()
	serverTLS, clientTLS := cert.Server, cert.Client
	if err := driver.RegisterTLSConfig("fakemysql", clientTLS); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { driver.DeregisterTLSConfig("fakemysql") })
	for _, plugin := range []string{mysql.AUTH_NATIVE_PASSWORD, mysql.AUTH_CACHING_SHA2_PASSWORD} {
		var tlsSeen atomic.Bool
		s := Start(t, Options{AuthPlugin: plugin, TLS: serverTLS, Handle: func(c *Conn, q string) *Result {
			if q == "SELECT 'tls'" {
				tlsSeen.Store(c.TLS())
			}
			return nil
		}})
		db := openDB(t, s, "app", "secret", "shop", "tls=fakemysql")
		var v string
		if err := db.QueryRow("SELECT 'tls'").Scan(&v); err != nil || v != "tls" {
			t.Fatalf("%s over TLS: %q %v", plugin, v, err)
		}
		if !tlsSeen.Load() {
			t.Fatalf("%s: connection not upgraded", plugin)
		}
		wantCode(t, openDB(t, s, "app", "wrong", "", "tls=fakemysql").Ping(), mysql.ER_ACCESS_DENIED_ERROR)
	}
}

func TestDriverQueries(t *testing.T) {
	s := Start(t, Options{ServerID: 7, Schemas: []string{"shop", "other"}})
	db := openDB(t, s, "app", "secret", "shop", "")
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	exec := func(q string) {
		t.Helper()
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	one := func(q string) sql.NullString {
		t.Helper()
		var v sql.NullString
		if err := conn.QueryRowContext(ctx, q).Scan(&v); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return v
	}

	exec("SET SESSION sql_mode = 'ANSI_QUOTES', @@session.wait_timeout = 10, @x := 'it''s'")
	exec("SET @@time_zone = '+00:00'")
	exec("SET NAMES latin1")
	for q, want := range map[string]string{
		"SELECT @@sql_mode":                       "ANSI_QUOTES",
		"select @@SESSION.wait_timeout;":          "10",
		"SELECT @x":                               "it's",
		"SELECT @@time_zone":                      "+00:00",
		"SELECT @@character_set_results":          "latin1",
		"SELECT @@autocommit":                     "1",
		"SELECT @@server_id":                      "7",
		"  /* hint */ SELECT 'a\\'b' ; ":          "a'b",
		"SELECT -42":                              "-42",
		"SELECT @@version":                        "10.11.99-MariaDB-fake",
		"SELECT @@read_only":                      "0",
		"SELECT @@max_allowed_packet":             "16777216",
		"SELECT DATABASE()":                       "shop",
		"SELECT 'x' AS y FROM DUAL":               "x",
		"SELECT @@session_track_system_variables": defaultTracked,
	} {
		if v := one(q); !v.Valid || v.String != want {
			t.Errorf("%s = %v, want %q", q, v, want)
		}
	}
	if v := one("SELECT @@never_set"); v.Valid {
		t.Errorf("@@never_set = %v, want NULL", v)
	}
	var id uint32
	if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil || id == 0 {
		t.Fatalf("CONNECTION_ID(): %d %v", id, err)
	}

	exec("USE other")
	if v := one("SELECT DATABASE()"); v.String != "other" {
		t.Fatalf("after USE: %v", v)
	}
	_, err = conn.ExecContext(ctx, "USE nowhere")
	wantCode(t, err, mysql.ER_BAD_DB_ERROR)

	var a, b, c sql.NullString
	if err := conn.QueryRowContext(ctx, "SELECT @@read_only, @@gtid_current_pos, NULL").Scan(&a, &b, &c); err != nil ||
		a.String != "0" || b.String != "" || c.Valid {
		t.Fatalf("read_only/gtid: %v %v %v %v", a, b, c, err)
	}
	res, err := conn.ExecContext(ctx, "INSERT INTO t VALUES (1)")
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("affected rows %d", n)
	}
	if got := s.GTIDPos(); got != "0-7-1" {
		t.Fatalf("GTIDPos %q", got)
	}
	if v := one("SELECT @@gtid_current_pos"); v.String != "0-7-1" {
		t.Fatalf("gtid_current_pos %v", v)
	}

	_, err = conn.ExecContext(ctx, "SELECT * FROM t")
	code, state, msg := mysqltest.ServerError(err)
	if code != mysql.ER_PARSE_ERROR || state != "42000" || !strings.Contains(msg, "near 'SELECT * FROM t'") {
		t.Fatalf("unknown query: %v", err)
	}
	if _, err := conn.ExecContext(ctx, "SELECT 1; SELECT 2"); err == nil {
		t.Fatal("two statements without multiStatements succeeded")
	}

	s.SetReadOnly(true)
	_, err = conn.ExecContext(ctx, "UPDATE t SET a = 1")
	wantCode(t, err, mysql.ER_OPTION_PREVENTS_STATEMENT)
	if v := one("SELECT @@read_only"); v.String != "1" {
		t.Fatalf("read_only after SetReadOnly: %v", v)
	}

	qs := s.Queries()
	if qs[0] != "SET SESSION sql_mode = 'ANSI_QUOTES', @@session.wait_timeout = 10, @x := 'it''s'" {
		t.Fatalf("first query logged %q", qs[0])
	}
	s.ResetLog()
	if len(s.Log()) != 0 {
		t.Fatal("log not reset")
	}
}

func TestDriverMultiStatements(t *testing.T) {
	s := Start(t, Options{})
	db := openDB(t, s, "app", "secret", "", "multiStatements=true")
	rows, err := db.Query("SELECT 1; SET @a = 5; SELECT 'two', @a;")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var sets [][]string
	for {
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]string, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			sets = append(sets, vals)
		}
		if !rows.NextResultSet() {
			break
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if got := joinRows(sets); got != "1;two,5" {
		t.Fatalf("result sets %q", got)
	}

	// An error stops the statements after it.
	_, err = db.Exec("INSERT INTO t VALUES (1); SELECT nonsense FROM t; INSERT INTO t VALUES (2)")
	wantCode(t, err, mysql.ER_PARSE_ERROR)
	if got := s.GTIDPos(); got != "0-1-1" {
		t.Fatalf("GTIDPos %q after a failed multi-statement", got)
	}
}

func TestDriverPrepared(t *testing.T) {
	for _, interpolate := range []bool{false, true} {
		s := Start(t, Options{})
		params := "interpolateParams=false"
		if interpolate {
			params = "interpolateParams=true"
		}
		db := openDB(t, s, "app", "secret", "shop", params)
		var n int64
		var str string
		var null sql.NullString
		var f float64
		err := db.QueryRow("SELECT ?, ?, ?, ?", int64(-42), "it's a \"test\"\\", nil, 2.5).Scan(&n, &str, &null, &f)
		if err != nil {
			t.Fatalf("interpolate=%v: %v", interpolate, err)
		}
		if n != -42 || str != "it's a \"test\"\\" || null.Valid || f != 2.5 {
			t.Fatalf("interpolate=%v: %d %q %v %v", interpolate, n, str, null, f)
		}
		if _, err := db.Exec("INSERT INTO t VALUES (?)", "x"); err != nil {
			t.Fatal(err)
		}
		var cmds []string
		for _, c := range s.Log() {
			switch c.Cmd {
			case mysql.COM_QUERY:
				cmds = append(cmds, "query:"+c.Arg)
			case mysql.COM_STMT_PREPARE:
				cmds = append(cmds, "prepare:"+c.Arg)
			case mysql.COM_STMT_EXECUTE:
				cmds = append(cmds, "execute:"+c.Arg)
			}
		}
		got := strings.Join(cmds, "|")
		want := `prepare:SELECT ?, ?, ?, ?|execute:SELECT -42, 'it\'s a \"test\"\\', NULL, 2.5|prepare:INSERT INTO t VALUES (?)|execute:INSERT INTO t VALUES ('x')`
		if interpolate {
			want = `query:SELECT -42, 'it\'s a \"test\"\\', NULL, 2.5|query:INSERT INTO t VALUES ('x')`
		}
		if got != want {
			t.Fatalf("interpolate=%v: commands\n%s\nwant\n%s", interpolate, got, want)
		}
	}
}

func TestDriverHandle(t *testing.T) {
	var seen atomic.Value
	s := Start(t, Options{Handle: func(c *Conn, q string) *Result {
		switch {
		case strings.HasPrefix(q, "SELECT id, name FROM users"):
			seen.Store(c.User() + "/" + c.Schema() + "/" + q)
			return &Result{
				Columns: []string{"id", "name"},
				Rows: [][]sql.NullString{
					{{String: "1", Valid: true}, {String: "ann", Valid: true}},
					{{String: "2", Valid: true}, {}},
				},
			}
		case q == "CALL fail()":
			return &Result{Err: mysql.NewError(mysql.ER_LOCK_DEADLOCK, "Deadlock found when trying to get lock; try restarting transaction")}
		case q == "UPSERT":
			return &Result{AffectedRows: 3, InsertID: 9, Write: true}
		}
		return nil
	}})
	for _, params := range []string{"interpolateParams=false", "interpolateParams=true"} {
		db := openDB(t, s, "app", "secret", "shop", params)
		rows, err := db.Query("SELECT id, name FROM users WHERE id > ?", 0)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			var id int
			var name sql.NullString
			if err := rows.Scan(&id, &name); err != nil {
				t.Fatal(err)
			}
			got = append(got, strings.TrimSpace(strings.Join([]string{string(rune('0' + id)), name.String}, " ")))
		}
		rows.Close()
		if strings.Join(got, ",") != "1 ann,2" {
			t.Fatalf("%s: rows %q", params, got)
		}
		if seen.Load() != "app/shop/SELECT id, name FROM users WHERE id > 0" {
			t.Fatalf("Handle saw %q", seen.Load())
		}
		_, err = db.Exec("CALL fail()")
		wantCode(t, err, mysql.ER_LOCK_DEADLOCK)
		res, err := db.Exec("UPSERT")
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 3 {
			t.Fatalf("affected %d", n)
		}
		if id, _ := res.LastInsertId(); id != 9 {
			t.Fatalf("insert id %d", id)
		}
	}
	if s.GTIDPos() != "0-1-2" {
		t.Fatalf("GTIDPos %q", s.GTIDPos())
	}
}

func TestDriverLoadDataLocal(t *testing.T) {
	s := Start(t, Options{})
	driver.RegisterReaderHandler("fake", func() io.Reader {
		return strings.NewReader(strings.Repeat("a,b\n", 10000) + "c,d\n")
	})
	t.Cleanup(func() { driver.DeregisterReaderHandler("fake") })
	db := openDB(t, s, "app", "secret", "shop", "")
	res, err := db.Exec("LOAD DATA LOCAL INFILE 'Reader::fake' INTO TABLE t FIELDS TERMINATED BY ','")
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 10001 {
		t.Fatalf("affected rows %d", n)
	}
	if s.GTIDPos() != "0-1-1" {
		t.Fatalf("GTIDPos %q", s.GTIDPos())
	}
	// The connection is still in step.
	var v int
	if err := db.QueryRow("SELECT 5").Scan(&v); err != nil || v != 5 {
		t.Fatalf("after LOAD DATA: %d %v", v, err)
	}
}

func TestDriverKillConnections(t *testing.T) {
	s := Start(t, Options{})
	db := openDB(t, s, "app", "secret", "", "")
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	mysqltest.Eventually(t, "one connection", func() bool { return s.Conns() == 1 })
	s.KillConnections()
	mysqltest.Eventually(t, "no connection", func() bool { return s.Conns() == 0 })
	var v int
	err = conn.QueryRowContext(ctx, "SELECT 1").Scan(&v)
	if err == nil {
		t.Fatal("query on a killed connection succeeded")
	}
	if !errors.Is(err, driver.ErrInvalidConn) && !strings.Contains(err.Error(), "bad connection") &&
		!strings.Contains(err.Error(), "EOF") && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("unexpected error %v", err)
	}

	// A statement waiting in SLEEP is cut short by KillConnections.
	done := make(chan error, 1)
	go func() {
		var v int
		done <- db.QueryRow("SELECT SLEEP(60)").Scan(&v)
	}()
	mysqltest.Eventually(t, "the SLEEP", func() bool {
		q := s.Queries()
		return len(q) > 0 && q[len(q)-1] == "SELECT SLEEP(60)"
	})
	s.KillConnections()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("SLEEP not interrupted")
	}

	// While down, connections are refused.
	s.SetDown(true)
	accepted := s.Accepted()
	if err := openDB(t, s, "app", "secret", "", "").Ping(); err == nil {
		t.Fatal("login to a down server succeeded")
	}
	if s.Accepted() <= accepted {
		t.Fatal("the down server did not accept")
	}
	s.SetDown(false)
	if err := openDB(t, s, "app", "secret", "", "").Ping(); err != nil {
		t.Fatal(err)
	}
}
