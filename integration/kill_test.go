package integration

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"switchyard/integration/harness"
)

// sessionID is the connection id a go-sql-driver connection's session has
// through the proxy.
func sessionID(t *testing.T, c *sql.Conn) uint64 {
	t.Helper()
	var id uint64
	if err := c.QueryRowContext(context.Background(), "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// sleepOn runs SELECT SLEEP(secs) on c in the background; the channel gets
// its outcome: the value (1 when interrupted, as MariaDB answers a killed
// SLEEP) or the error.
func sleepOn(c *sql.Conn, secs int, hint string) chan error {
	done := make(chan error, 1)
	go func() {
		var v int
		err := c.QueryRowContext(context.Background(), fmt.Sprintf("%sSELECT SLEEP(%d) AS slept", hint, secs)).Scan(&v)
		if err == nil && v != 0 {
			err = fmt.Errorf("SLEEP returned %d: interrupted", v)
		}
		done <- err
	}()
	return done
}

// serverThreadRunning waits for a statement containing text to run on a
// server of the cluster and returns that server thread's id.
func serverThreadRunning(t *testing.T, text string) uint64 {
	t.Helper()
	ctx := context.Background()
	var dbs []*sql.DB
	for _, s := range cluster.Servers() {
		db, err := s.DB(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		dbs = append(dbs, db)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, db := range dbs {
			var id uint64
			err := db.QueryRowContext(ctx, "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE ? AND INFO NOT LIKE '%PROCESSLIST%'", "%"+text+"%").Scan(&id)
			if err == nil {
				return id
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no server thread runs %q", text)
	return 0
}

// TestKill: KILL through switchyard takes switchyard's connection ids and
// acts on switchyard's sessions; no form of KILL reaches a server, where it
// could interrupt another client's statement on a shared connection.
func TestKill(t *testing.T) {
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info"})
	db := appDB(t, p, "multiStatements=true")
	ctx := context.Background()
	conn := func() *sql.Conn {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	t.Run("KILL QUERY interrupts the session's statement", func(t *testing.T) {
		victim, killer := conn(), conn()
		id := sessionID(t, victim)
		done := sleepOn(victim, 60, "")
		serverThreadRunning(t, "SLEEP(60)")
		if _, err := killer.ExecContext(ctx, fmt.Sprintf("KILL QUERY %d", id)); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err == nil || !strings.Contains(err.Error(), "interrupted") {
			t.Fatalf("the killed statement: %v; want it interrupted", err)
		}
		if _, err := victim.ExecContext(ctx, "SELECT 1"); err != nil {
			t.Fatalf("the session after KILL QUERY: %v", err)
		}
	})

	t.Run("KILL ends the session", func(t *testing.T) {
		victim, killer := conn(), conn()
		id := sessionID(t, victim)
		if _, err := killer.ExecContext(ctx, fmt.Sprintf("KILL %d", id)); err != nil {
			t.Fatal(err)
		}
		if _, err := victim.ExecContext(ctx, "SELECT 1"); err == nil {
			t.Fatal("the killed session still answers")
		}
		var me *mysql.MySQLError
		_, err := killer.ExecContext(ctx, "KILL 4000000000")
		if !errors.As(err, &me) || me.Number != 1094 {
			t.Fatalf("KILL of an unknown id: %v, want 1094", err)
		}
	})

	t.Run("no KILL reaches a server", func(t *testing.T) {
		victim, attacker := conn(), conn()
		done := sleepOn(victim, 3, "/* switchyard:route=primary */ ") // where the attacker's KILL would go
		thread := serverThreadRunning(t, "SLEEP(3)")
		for _, q := range []string{
			fmt.Sprintf("SELECT 1; KILL QUERY %d", thread),
			fmt.Sprintf("EXECUTE IMMEDIATE 'KILL QUERY %d'", thread),
			fmt.Sprintf("PREPARE s FROM 'KILL QUERY %d'", thread),
			fmt.Sprintf("/*M!100000 KILL QUERY %d */", thread), // the proxy's id space: no such session
			fmt.Sprintf("BEGIN NOT ATOMIC KILL QUERY %d; END", thread),
			fmt.Sprintf("BEGIN NOT ATOMIC IF 1 THEN KILL QUERY %d; END IF; END", thread),
			// BEGIN as an alias: the token scan takes the view for a
			// compound body running to the end (found in review).
			fmt.Sprintf("CREATE OR REPLACE VIEW sy_smuggle AS SELECT 1 AS begin /*M!100000 */; KILL QUERY %d", thread),
		} {
			rows, err := attacker.QueryContext(ctx, q)
			if err == nil {
				for rows.NextResultSet() {
				}
				err = rows.Err()
				rows.Close()
			}
			if err == nil {
				t.Errorf("%s: no error", q)
			}
		}
		if err := <-done; err != nil {
			t.Fatalf("another client's statement was interrupted: %v", err)
		}
	})

	t.Run("stored bodies keep the server's CONNECTION_ID and KILL", func(t *testing.T) {
		// A routine runs on the server, later, for any caller: its
		// CONNECTION_ID() is the server's thread, and KILL QUERY of it
		// interrupts the routine's own statement, as on MariaDB (mtr
		// sp_notembedded). Rewritten when created, the body would keep the
		// creating session's id for ever.
		c := conn()
		for _, q := range []string{
			"DROP FUNCTION IF EXISTS sy_conn_id", "DROP PROCEDURE IF EXISTS sy_kill_self",
			"CREATE FUNCTION sy_conn_id() RETURNS BIGINT NO SQL RETURN CONNECTION_ID()",
			"CREATE PROCEDURE sy_kill_self() BEGIN DECLARE a INT; SET a = CONNECTION_ID(); KILL QUERY a; SELECT 'not reached'; END",
		} {
			if _, err := c.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		t.Cleanup(func() {
			_, _ = db.ExecContext(ctx, "DROP FUNCTION IF EXISTS sy_conn_id")
			_, _ = db.ExecContext(ctx, "DROP PROCEDURE IF EXISTS sy_kill_self")
		})
		var name, mode, body string
		var cs, cc, coll any
		if err := c.QueryRowContext(ctx, "SHOW CREATE FUNCTION sy_conn_id").Scan(&name, &mode, &body, &cs, &cc, &coll); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(body, "CONNECTION_ID()") {
			t.Fatalf("the stored function's body was rewritten: %s", body)
		}
		for i := 0; i < 2; i++ {
			var me *mysql.MySQLError
			if _, err := c.ExecContext(ctx, "CALL sy_kill_self()"); !errors.As(err, &me) || me.Number != 1317 {
				t.Fatalf("CALL of a procedure that kills its own query: %v, want 1317 (query interrupted)", err)
			}
		}
		if _, err := c.ExecContext(ctx, "SELECT 1"); err != nil {
			t.Fatalf("the session after its routine interrupted itself: %v", err)
		}
	})

	t.Run("mariadb CLI: CONNECTION_ID and Ctrl-C", func(t *testing.T) {
		out, err := mariadbCLI(t, p, cluster.AppUser, cluster.AppPassword, "-e", "status; SELECT CONNECTION_ID() AS id")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		handshake := regexp.MustCompile(`Connection id:\s+(\d+)`).FindStringSubmatch(out)
		selected := regexp.MustCompile(`(?m)^(\d+)$`).FindStringSubmatch(out)
		if handshake == nil || selected == nil || handshake[1] != selected[1] {
			t.Fatalf("CONNECTION_ID() does not match the handshake's id:\n%s", out)
		}

		// Ctrl-C in the CLI sends KILL QUERY <its connection id> from a
		// second connection: the statement stops, the CLI says so.
		host, port, _ := strings.Cut(p.Addr(), ":")
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(cctx, "mariadb", "--no-defaults", "-h", host, "-P", port, "-u", cluster.AppUser,
			"-p"+cluster.AppPassword, "--batch", "--sigint-ignore=0", "-e", "SELECT SLEEP(60) AS slept")
		var buf strings.Builder
		cmd.Stdout, cmd.Stderr = &buf, &buf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		serverThreadRunning(t, "SLEEP(60)")
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
		if got := buf.String(); !strings.Contains(got, "Query execution was interrupted") && !strings.Contains(got, "slept\n1") {
			t.Fatalf("Ctrl-C did not interrupt the query:\n%s", got)
		}
	})
}
