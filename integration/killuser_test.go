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

// queryIDRunning waits for a statement containing text to run on the
// primary and returns the query id the server gave it, as a client reads
// it from the process list (mtr's kill test reads QUERY_ID for KILL QUERY
// ID).
func queryIDRunning(t *testing.T, text string) uint64 {
	t.Helper()
	ctx := context.Background()
	db, err := cluster.Primary.DB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var qid uint64
	eventually(t, 10*time.Second, "a server thread to run "+text, func() bool {
		err := db.QueryRowContext(ctx, "SELECT QUERY_ID FROM information_schema.PROCESSLIST WHERE INFO LIKE ? AND INFO NOT LIKE '%PROCESSLIST%'", "%"+text+"%").Scan(&qid)
		return err == nil
	})
	return qid
}

// TestKillUserAndQueryID: KILL [QUERY] USER and KILL QUERY ID are carried
// out by the proxy with MariaDB's semantics (mtr's kill test): KILL USER
// acts on that user's switchyard sessions only and answers with their
// number; KILL QUERY ID interrupts the statement the server numbered so,
// whichever session runs it; another user's sessions or statements need
// CONNECTION ADMIN, else MariaDB's errors (1095, 1979); an unknown query id
// is 1957. Before, both forms were refused with 1105.
func TestKillUserAndQueryID(t *testing.T) {
	ctx := context.Background()
	const plainUser, plainPass = "kill_plain", "kill-plain-pw"
	if err := cluster.Primary.Exec(ctx,
		fmt.Sprintf("CREATE OR REPLACE USER '%s'@'%%' IDENTIFIED BY '%s'", plainUser, plainPass),
		fmt.Sprintf("GRANT SELECT ON `%s`.* TO '%s'@'%%'", cluster.Database, plainUser),
	); err != nil {
		t.Fatal(err)
	}
	defer cluster.Primary.Exec(ctx, fmt.Sprintf("DROP USER IF EXISTS '%s'@'%%'", plainUser))
	if err := cluster.WaitReplicasCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", ExtraYAML: "users_from_servers: true\n"})
	conn := func(db *sql.DB) *sql.Conn {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	appPool := appDB(t, p, "")
	plainPool := openDB(t, p, plainUser, plainPass, cluster.Database, "")
	app, app2, bystander := conn(appPool), conn(appPool), conn(appPool)
	plain1, plain2 := conn(plainPool), conn(plainPool)
	wantErr := func(err error, code uint16, text string) {
		t.Helper()
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != code || !strings.Contains(me.Message, text) {
			t.Fatalf("%v, want error %d saying %q", err, code, text)
		}
	}
	affected := func(c *sql.Conn, q string) int64 {
		t.Helper()
		res, err := c.ExecContext(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		n, _ := res.RowsAffected()
		return n
	}
	interrupted := func(done chan error) {
		t.Helper()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "interrupted") {
				t.Fatalf("the statement: %v; want it interrupted", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the statement was not interrupted")
		}
	}
	const primary = "/* switchyard:route=primary */ "

	// KILL QUERY ID, of the user's own statement on another session.
	done := sleepOn(plain1, 61, primary)
	qid := queryIDRunning(t, "SLEEP(61)")
	if _, err := plain2.ExecContext(ctx, fmt.Sprintf("KILL QUERY ID %d", qid)); err != nil {
		t.Fatalf("KILL QUERY ID of the user's own statement: %v", err)
	}
	interrupted(done)
	_, err := plain2.ExecContext(ctx, "KILL QUERY ID 0")
	wantErr(err, 1957, "Unknown query id: 0")
	// After QUERY ID, MariaDB reads USER as a column of the expression.
	_, err = plain2.ExecContext(ctx, "kill query id user 'foo'")
	wantErr(err, 1054, "Unknown column 'user' in 'KILL'")

	// Another user's statement: refused without CONNECTION ADMIN, carried
	// out with it.
	done = sleepOn(app, 62, primary)
	qid = queryIDRunning(t, "SLEEP(62)")
	_, err = plain2.ExecContext(ctx, fmt.Sprintf("KILL QUERY ID %d", qid))
	wantErr(err, 1979, fmt.Sprintf("You are not owner of query %d", qid))
	if _, err := plain1.ExecContext(ctx, "SET @qid = ?", qid); err != nil {
		t.Fatal(err)
	}
	_, err = plain1.ExecContext(ctx, "KILL QUERY ID @qid")
	wantErr(err, 1979, "You are not owner of query")
	// Searching for it costs the servers no login as the other users:
	// before, every KILL QUERY ID logged in as each user that had a
	// statement running (a login storm any account could cause, each
	// taking one of that user's max_user_connections; found in review).
	direct, err := cluster.Primary.DB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	direct.SetMaxOpenConns(1)
	logins := func() int {
		t.Helper()
		var name string
		var n int
		if err := direct.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE 'Connections'").Scan(&name, &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := logins()
	for range 10 {
		_, err = plain2.ExecContext(ctx, fmt.Sprintf("KILL QUERY ID %d", qid))
		wantErr(err, 1979, "You are not owner of query")
	}
	if n := logins() - before; n >= 10 {
		t.Fatalf("10 refused KILL QUERY ID made %d server logins", n)
	}
	if _, err := app2.ExecContext(ctx, fmt.Sprintf("KILL QUERY ID %d", qid)); err != nil {
		t.Fatalf("KILL QUERY ID with CONNECTION ADMIN: %v", err)
	}
	interrupted(done)

	// KILL USER: refused for another user's sessions without the
	// privilege; with it, that user's sessions and no others.
	_, err = plain1.ExecContext(ctx, "KILL USER "+cluster.AppUser)
	wantErr(err, 1095, "Operation KILL USER failed for "+cluster.AppUser+"@%")
	if n := affected(app, fmt.Sprintf("KILL USER %s@nohost", plainUser)); n != 0 {
		t.Fatalf("KILL USER of a host without sessions: %d affected, want 0", n)
	}
	done = sleepOn(plain1, 63, primary)
	queryIDRunning(t, "SLEEP(63)")
	if n := affected(app, fmt.Sprintf("KILL QUERY USER '%s'", plainUser)); n != 2 {
		t.Fatalf("KILL QUERY USER: %d affected, want the user's 2 sessions", n)
	}
	interrupted(done)
	if _, err := plain2.ExecContext(ctx, "SELECT 1"); err != nil {
		t.Fatalf("a session after KILL QUERY USER: %v", err)
	}
	if n := affected(app, fmt.Sprintf("KILL HARD CONNECTION USER %s@localhost", plainUser)); n != 2 {
		t.Fatalf("KILL CONNECTION USER: %d affected, want the user's 2 sessions", n)
	}
	for _, c := range []*sql.Conn{plain1, plain2} {
		if _, err := c.ExecContext(ctx, "SELECT 1"); err == nil {
			t.Fatal("a session of the killed user still answers")
		}
	}
	if _, err := bystander.ExecContext(ctx, "SELECT 1"); err != nil {
		t.Fatalf("another user's session after KILL USER: %v", err)
	}
}
