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

// firstServerOnlyID is the smallest id information_schema.PROCESSLIST
// shows through switchyard for a server connection no session holds: the
// handshake's ids, switchyard's, are 32 bits.
const firstServerOnlyID = 1 << 32

// TestProcesslistShowsSessionIDs: information_schema.PROCESSLIST read
// through switchyard shows a server connection a session holds under that
// session's id, the one of its handshake and CONNECTION_ID() (mtr's
// user_var, trigger_notembedded, lock_multi): a client finds its own row,
// and another client finds its statement there and interrupts exactly it
// with KILL QUERY of the id it read. Rows of connections no session holds
// (the pool's idle ones, the monitor's) carry ids no session can have,
// which KILL refuses as unknown.
func TestProcesslistShowsSessionIDs(t *testing.T) {
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info"})
	ctx := context.Background()
	db := appDB(t, p, "")
	ours := map[uint64]bool{} // the ids of the test's sessions
	conn := func() *sql.Conn {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		ours[sessionID(t, c)] = true
		return c
	}

	t.Run("a client finds its own row", func(t *testing.T) {
		c := conn()
		id := sessionID(t, c)
		var got uint64
		var user string
		// Text protocol, and prepared (the driver prepares a statement
		// with arguments), executed twice: each execution maps anew.
		if err := c.QueryRowContext(ctx, "SELECT ID, USER FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()").Scan(&got, &user); err != nil {
			t.Fatalf("own row by CONNECTION_ID(): %v", err)
		}
		if got != id || user != cluster.AppUser {
			t.Fatalf("own row: id %d user %q, want %d %q", got, user, id, cluster.AppUser)
		}
		stmt, err := c.PrepareContext(ctx, "SELECT ID FROM information_schema.processlist AS p WHERE p.ID = ?")
		if err != nil {
			t.Fatal(err)
		}
		defer stmt.Close()
		for i := 0; i < 2; i++ {
			if err := stmt.QueryRowContext(ctx, id).Scan(&got); err != nil {
				t.Fatalf("own row, prepared, execution %d: %v", i+1, err)
			}
			if got != id {
				t.Fatalf("own row, prepared: id %d, want %d", got, id)
			}
		}
		for _, show := range []string{"SHOW PROCESSLIST", "SHOW FULL PROCESSLIST"} {
			rows, err := c.QueryContext(ctx, show)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for rows.Next() {
				var rid uint64
				var user, host, command string
				var schema, state, info sql.NullString
				var tm int64
				var progress float64
				if err := rows.Scan(&rid, &user, &host, &schema, &command, &tm, &state, &info, &progress); err != nil {
					t.Fatalf("%s: %v", show, err)
				}
				found = found || rid == id
			}
			rows.Close()
			if !found {
				t.Fatalf("%s: no row with the session's id %d", show, id)
			}
		}
		var pseudo uint64
		if err := c.QueryRowContext(ctx, "SELECT COUNT(*) FROM INFORMATION_SCHEMA.PROCESSLIST WHERE ID = @@pseudo_thread_id").Scan(&pseudo); err != nil || pseudo != 1 {
			t.Fatalf("rows with ID = @@pseudo_thread_id: %d, %v; want 1", pseudo, err)
		}
	})

	t.Run("KILL QUERY of an id read there interrupts exactly that statement", func(t *testing.T) {
		holder, waiter, finder := conn(), conn(), conn()
		var got sql.NullInt64
		if err := holder.QueryRowContext(ctx, "SELECT GET_LOCK('plist_lock', 0)").Scan(&got); err != nil || got.Int64 != 1 {
			t.Fatalf("GET_LOCK: %v %v", got, err)
		}
		waiterID := sessionID(t, waiter)
		done := make(chan error, 1)
		go func() {
			// MariaDB answers an interrupted GET_LOCK with NULL.
			var v sql.NullInt64
			err := waiter.QueryRowContext(ctx, "SELECT GET_LOCK('plist_lock', 60) AS waited").Scan(&v)
			if err == nil && v.Valid {
				err = fmt.Errorf("GET_LOCK returned %d, not NULL", v.Int64)
			}
			done <- err
		}()
		var id uint64
		// A statement that starts while the list is read may show, for
		// that read, under its server-only id (router.ServerOnlyIDBase).
		eventually(t, 10*time.Second, "the waiting GET_LOCK in the process list", func() bool {
			err := finder.QueryRowContext(ctx, "SELECT ID FROM information_schema.PROCESSLIST WHERE STATE = 'User lock' AND INFO LIKE 'SELECT GET_LOCK(%'").Scan(&id)
			return err == nil && id < firstServerOnlyID
		})
		if id != waiterID {
			t.Fatalf("the waiting statement's row has id %d; the waiting session is %d", id, waiterID)
		}
		if _, err := finder.ExecContext(ctx, fmt.Sprintf("KILL QUERY %d", id)); err != nil {
			t.Fatalf("KILL QUERY %d: %v", id, err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("the interrupted GET_LOCK: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("KILL QUERY did not interrupt the waiting GET_LOCK")
		}
		if err := holder.QueryRowContext(ctx, "SELECT RELEASE_LOCK('plist_lock')").Scan(&got); err != nil || got.Int64 != 1 {
			t.Fatalf("the lock holder after the KILL: %v %v, want it still holding the lock", got, err)
		}
	})

	t.Run("IS_USED_LOCK names the session holding the lock", func(t *testing.T) {
		// mtr's change_user: SELECT IS_USED_LOCK(l) = CONNECTION_ID()
		// after GET_LOCK(l) is 1, and the column is named as written.
		holder, other := conn(), conn()
		var got sql.NullInt64
		if err := holder.QueryRowContext(ctx, "SELECT GET_LOCK('plist_used', 0)").Scan(&got); err != nil || got.Int64 != 1 {
			t.Fatalf("GET_LOCK: %v %v", got, err)
		}
		defer holder.ExecContext(ctx, "DO RELEASE_LOCK('plist_used')")
		rows, err := holder.QueryContext(ctx, "SELECT IS_USED_LOCK('plist_used') = CONNECTION_ID()")
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			if err := rows.Scan(&got); err != nil {
				t.Fatal(err)
			}
		}
		rows.Close()
		if got.Int64 != 1 || len(cols) != 1 || cols[0] != "IS_USED_LOCK('plist_used') = CONNECTION_ID()" {
			t.Fatalf("IS_USED_LOCK = CONNECTION_ID() in the holder: %v, column %q; want 1 named as written", got, cols)
		}
		var holderSeen sql.NullInt64
		if err := other.QueryRowContext(ctx, "SELECT IS_USED_LOCK('plist_used')").Scan(&holderSeen); err != nil {
			t.Fatal(err)
		}
		if uint64(holderSeen.Int64) != sessionID(t, holder) {
			t.Fatalf("IS_USED_LOCK seen by another session: %v, want the holder's id %d", holderSeen, sessionID(t, holder))
		}
		// Each call becomes a text the size of the proxy's connections: a
		// statement with too many is refused, not multiplied.
		many := "SELECT 1"
		for i := 0; i < 65; i++ {
			many += ", IS_USED_LOCK('plist_used')"
		}
		var me *mysql.MySQLError
		if _, err := other.ExecContext(ctx, many); !errors.As(err, &me) || me.Number != 1105 {
			t.Fatalf("65 calls of IS_USED_LOCK: %v, want switchyard's 1105", err)
		}
		if err := other.QueryRowContext(ctx, "SELECT 1").Scan(&got); err != nil {
			t.Fatalf("the session after a refused statement: %v", err)
		}
	})

	t.Run("rows no session holds have ids no session can have", func(t *testing.T) {
		c := conn()
		own := sessionID(t, c)
		rows, err := c.QueryContext(ctx, "SELECT ID, COMMAND FROM information_schema.PROCESSLIST")
		if err != nil {
			t.Fatal(err)
		}
		var foreign []uint64
		seenOwn := false
		for rows.Next() {
			var id uint64
			var command string
			if err := rows.Scan(&id, &command); err != nil {
				t.Fatal(err)
			}
			switch {
			case id == own:
				seenOwn = true
			case id >= firstServerOnlyID:
				foreign = append(foreign, id)
			case !ours[id]:
				t.Errorf("row with id %d (%s): neither this session nor one no session can have", id, command)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		if !seenOwn {
			t.Fatalf("no row of the reading session %d", own)
		}
		if len(foreign) == 0 {
			t.Fatal("no row of a connection the proxy holds for no session (the monitor's, the pool's)")
		}
		var me *mysql.MySQLError
		if _, err := c.ExecContext(ctx, fmt.Sprintf("KILL %d", foreign[0])); !errors.As(err, &me) || me.Number != 1094 {
			t.Fatalf("KILL %d: %v, want 1094", foreign[0], err)
		}
	})
}

// TestProcesslistPreparedCountsItsText: a prepared statement that reads
// the process list keeps the text it last ran as on the server, which
// holds the mapping of the proxy's connections: that text counts against
// limits.max_prepared_bytes_per_session like the client's, so preparing
// and running such statements cannot keep memory past it. Before, only the
// client's short text counted (found in review).
func TestProcesslistPreparedCountsItsText(t *testing.T) {
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", ExtraYAML: "limits:\n  max_prepared_bytes_per_session: 1KiB\n"})
	ctx := context.Background()
	c, err := appDB(t, p, "").Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var refused error
	for i := 0; i < 4 && refused == nil; i++ {
		stmt, err := c.PrepareContext(ctx, fmt.Sprintf("SELECT ID FROM information_schema.PROCESSLIST WHERE ID = ? + %d", i))
		if err != nil {
			refused = err
			break
		}
		defer stmt.Close()
		var id uint64
		if err := stmt.QueryRowContext(ctx, 0).Scan(&id); err != nil && !errors.Is(err, sql.ErrNoRows) {
			refused = err
		}
	}
	var me *mysql.MySQLError
	if !errors.As(refused, &me) || me.Number != 1105 || !strings.Contains(me.Message, "max_prepared_bytes_per_session") {
		t.Fatalf("4 prepared process list reads in a 1 KiB budget: %v; want the budget's refusal", refused)
	}
}
