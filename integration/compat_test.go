package integration

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"switchyard/integration/harness"
)

// Behaviour a client sees from MariaDB itself, found by mtr through the
// proxy (bench/mtr, COMPATIBILITY.md).

// TestExtendedMetadata: a MariaDB client that asks for extended metadata
// (MARIADB_CLIENT_EXTENDED_METADATA) gets it through the proxy as from the
// server: the mariadb CLI shows a JSON column as "BLOB (format=json)"
// (mtr's mysql-metadata). Before the fix the proxy offered no extended
// capabilities and the CLI showed "BLOB".
func TestExtendedMetadata(t *testing.T) {
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info"})
	db := appDB(t, p, "")
	mustExec(t, db, "CREATE OR REPLACE TABLE ext_meta (js JSON)")
	defer db.Exec("DROP TABLE IF EXISTS ext_meta")
	for _, q := range []string{"SELECT js FROM ext_meta", "SELECT 1 AS plain; SELECT js FROM ext_meta"} {
		out, err := mariadbCLI(t, p, cluster.AppUser, cluster.AppPassword, "-vvv", "--column-type-info", cluster.Database, "-e", q)
		if err != nil {
			t.Fatalf("%s: %v\n%s", q, err, out)
		}
		if !strings.Contains(out, "BLOB (format=json)") {
			t.Fatalf("%s: the JSON column's type info says no format:\n%s", q, out)
		}
	}
}

// TestKillExpressions: KILL of an expression is evaluated as the server
// evaluates it (mtr's sp-bugs: KILL (('x' IN (SELECT 1)) MOD 44) is KILL 0,
// 1094), refused with the server's 1970 where the server refuses it
// (parser: KILL LASTVAL(s)), and an id in a user variable kills that
// session. Before, every expression got 1105 or 1970.
func TestKillExpressions(t *testing.T) {
	ctx := context.Background()
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info"})
	db := appDB(t, p, "")
	killer, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer killer.Close()
	wantCode := func(q string, code uint16) {
		t.Helper()
		_, err := killer.ExecContext(ctx, q)
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != code {
			t.Fatalf("%s: %v, want error %d", q, err, code)
		}
	}
	wantCode("KILL (('x' IN ( SELECT 1)) MOD 44)", 1094)
	wantCode("KILL LASTVAL(s)", 1970)
	wantCode("KILL (SELECT 1) + LASTVAL(s)", 1970)
	wantCode("KILL no_such_column + 1", 1054) // the server's own error

	victim, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	id := sessionID(t, victim)
	if _, err := killer.ExecContext(ctx, fmt.Sprintf("SET @victim = %d", id)); err != nil {
		t.Fatal(err)
	}
	if _, err := killer.ExecContext(ctx, "KILL @victim + 0"); err != nil {
		t.Fatalf("KILL @victim + 0: %v", err)
	}
	// KILL returns once the session is told to end; its socket closes
	// right after.
	deadline := time.Now().Add(30 * time.Second)
	for victim.PingContext(ctx) == nil {
		if time.Now().After(deadline) {
			t.Fatal("the session named by @victim is still alive")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSessionTrackingUntouched: with one server there is no replica for
// read-your-writes to choose, so the proxy does not add its last_gtid
// session tracker: a client sees session_track_system_variables, and runs
// no statement in its SHOW PROFILES, as directly (mtr's
// mysqltest_tracking_info, nested_profiling). Before, every server
// connection had last_gtid appended.
func TestSessionTrackingUntouched(t *testing.T) {
	ctx := context.Background()
	direct, err := cluster.Primary.DB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	var want string
	if err := direct.QueryRow("SELECT @@session_track_system_variables").Scan(&want); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", Servers: []*harness.Server{cluster.Primary}})
	var got string
	if err := appDB(t, p, "").QueryRow("SELECT @@session_track_system_variables").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("session_track_system_variables through the proxy %q, directly %q", got, want)
	}
}

// TestPreparedKill: a KILL sent as a prepared statement (mysqltest's
// --ps-protocol, drivers that prepare everything) is carried out by the
// proxy as the text one is. Before, its prepare got 1105.
func TestPreparedKill(t *testing.T) {
	ctx := context.Background()
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info"})
	db := appDB(t, p, "")
	victim, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	killer, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer killer.Close()
	stmt, err := killer.PrepareContext(ctx, fmt.Sprintf("KILL %d", sessionID(t, victim)))
	if err != nil {
		t.Fatalf("prepare KILL: %v", err)
	}
	defer stmt.Close()
	if _, err := stmt.ExecContext(ctx); err != nil {
		t.Fatalf("execute KILL: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for victim.PingContext(ctx) == nil {
		if time.Now().After(deadline) {
			t.Fatal("the session named by the prepared KILL is still alive")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWideResult: a result set of more than 65,536 columns, which MariaDB
// sends for a select list that long (mtr's mysql test: 68,001 literals),
// reaches the client. Before, the proxy took the column count for a broken
// packet and dropped the connection.
func TestWideResult(t *testing.T) {
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info"})
	db := appDB(t, p, "")
	const n = 68001
	q := "SELECT " + strings.Repeat("'a',", n-1) + "'b'"
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil || len(cols) != n {
		t.Fatalf("%d columns, %v; want %d", len(cols), err, n)
	}
	vals := make([]any, n)
	for i := range vals {
		vals[i] = new(string)
	}
	if !rows.Next() {
		t.Fatalf("no row: %v", rows.Err())
	}
	if err := rows.Scan(vals...); err != nil || *vals[n-1].(*string) != "b" {
		t.Fatalf("last value %q, %v", *vals[n-1].(*string), err)
	}
}

// TestUseOfDroppedSchemaNotReplayed: a session that selected a schema and
// dropped it (then selected another, or not) goes on working on any server
// connection (mtr's grant test). Before, the replay of the session's state
// on another connection ran the old USE too and failed with 1049.
func TestUseOfDroppedSchemaNotReplayed(t *testing.T) {
	ctx := context.Background()
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info"})
	c, err := appDB(t, p, "").Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, q := range []string{"CREATE DATABASE IF NOT EXISTS sy_dropme", "USE sy_dropme", "DROP DATABASE sy_dropme",
		"USE " + cluster.Database, "CREATE DATABASE IF NOT EXISTS sy_dropme2", "USE sy_dropme2",
		// Dropping the current schema leaves the session in none:
		// nothing may select it again.
		"DROP DATABASE sy_dropme2"} {
		if _, err := c.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// Another session takes the connection the session's state is on, so
	// the session's next statement replays its state on another one.
	other, err := appDB(t, p, "").Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	defer other.ExecContext(ctx, "ROLLBACK")
	var n int
	if err := other.QueryRowContext(ctx, "SELECT 1 FOR UPDATE").Scan(&n); err != nil {
		t.Fatal(err)
	}
	var db sql.NullString
	if err := c.QueryRowContext(ctx, "/* switchyard:route=primary */ SELECT DATABASE()").Scan(&db); err != nil || db.String == "sy_dropme2" {
		t.Fatalf("schema %v, %v; want none (or the login schema)", db, err)
	}
	if _, err := c.ExecContext(ctx, "USE "+cluster.Database); err != nil {
		t.Fatal(err)
	}
}

// TestPreparedAgainIsNew: a client that prepares a statement it prepared
// and closed before gets a new statement, as directly: MariaDB resolves and
// rewrites a statement at its first execution, so the notes of that
// (1276 "resolved in SELECT #1") and EXPLAIN EXTENDED's text (1003) come
// from the first execution of each prepare (mtr's type_datetime with
// --ps-protocol). Before, the proxy kept the server statement of the
// first prepare and ran the second on it: no 1276, and the 1003 text of a
// statement rewritten for the data of the first run.
func TestPreparedAgainIsNew(t *testing.T) {
	ctx := context.Background()
	const q = "EXPLAIN EXTENDED SELECT * FROM ps_again WHERE id IN (SELECT id FROM ps_again AS x1 WHERE (ps_again.d IS NULL))"
	notes := func(db *sql.DB) []string {
		t.Helper()
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for _, s := range []string{"CREATE OR REPLACE TABLE ps_again (id INT NOT NULL, d DATE NOT NULL)",
			"INSERT INTO ps_again VALUES (1, '2007-04-25')"} {
			if _, err := c.ExecContext(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		var seen []string
		for round := range 2 {
			if round == 1 {
				if _, err := c.ExecContext(ctx, "INSERT INTO ps_again VALUES (2, '2007-04-26')"); err != nil {
					t.Fatal(err)
				}
			}
			st, err := c.PrepareContext(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			rows, err := st.QueryContext(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
			}
			rows.Close()
			w, err := c.QueryContext(ctx, "SHOW WARNINGS")
			if err != nil {
				t.Fatal(err)
			}
			for w.Next() {
				var level, msg string
				var code int
				if err := w.Scan(&level, &code, &msg); err != nil {
					t.Fatal(err)
				}
				seen = append(seen, fmt.Sprintf("round %d: %d %s", round+1, code, msg))
			}
			w.Close()
			st.Close()
		}
		return seen
	}
	direct, err := sql.Open("mysql", cluster.Primary.DSN(cluster.AppUser, cluster.AppPassword, cluster.Database))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	want := notes(direct)
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", Servers: []*harness.Server{cluster.Primary}})
	got := notes(appDB(t, p, ""))
	mustExec(t, direct, "DROP TABLE IF EXISTS ps_again")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("warnings through switchyard:\n%s\ndirectly:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
