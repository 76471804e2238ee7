package proxy

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/internal/fakemysql"
	"switchyard/internal/mysqltest"
	"switchyard/wire"
)

// killFakes records the KILL QUERY statements the fakes receive and makes
// "slow" statements wait until they are killed.
type killFakes struct {
	mu     sync.Mutex
	killed []string // "server:thread id"
	slowOn chan string
}

func (k *killFakes) handle(server string, c *fakemysql.Conn, q string) *fakemysql.Result {
	switch lq := strings.ToLower(q); {
	case strings.HasPrefix(lq, "kill query "):
		k.mu.Lock()
		k.killed = append(k.killed, server+":"+strings.TrimPrefix(lq, "kill query "))
		k.mu.Unlock()
		return &fakemysql.Result{}
	case strings.Contains(lq, "information_schema.user_privileges"):
		// The proxy asks whether the user may end other users' sessions
		// (CONNECTION ADMIN): app may not.
		return rowsResult([]string{"COUNT(*)"}, []string{"0"})
	case strings.Contains(lq, "where slow"):
		k.slowOn <- fmt.Sprint(server, ":", c.ID())
		return &fakemysql.Result{Columns: []string{"name"}, Rows: rowsResult([]string{"name"}, []string{server}).Rows, Delay: 300 * time.Millisecond}
	}
	return nil
}

func (k *killFakes) kills() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.killed...)
}

// connID is the session's connection id as the client knows it.
func connID(t *testing.T, c *sql.Conn) uint64 {
	t.Helper()
	var id uint64
	if err := c.QueryRowContext(testCtx(t), "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestKill(t *testing.T) {
	k := &killFakes{slowOn: make(chan string, 1)}
	h := newHarness(t, harnessConfig{handle: k.handle})
	a := h.session(t, "app", "secret", "shop")
	b := h.session(t, "app", "secret", "shop")
	other := h.session(t, "bob", "bobpw", "shop")
	ctx := testCtx(t)

	t.Run("CONNECTION_ID is the proxy's", func(t *testing.T) {
		raw := h.login(t, mysqltest.Login{User: "app", Pass: "secret", Schema: "shop"})
		resp := raw.Query("SELECT CONNECTION_ID()")
		if got := raw.Rows(resp); len(got) != 1 || got[0][0] != fmt.Sprint(raw.Greeting.ConnectionID) {
			t.Fatalf("CONNECTION_ID() = %v, the handshake said %d", got, raw.Greeting.ConnectionID)
		}
		col, err := wire.ParseColumnDef(resp[1].Payload)
		if err != nil || col.Name != "CONNECTION_ID()" {
			t.Fatalf("column %+v (%v), want named CONNECTION_ID()", col, err)
		}
	})

	t.Run("errors as MariaDB's", func(t *testing.T) {
		_, err := a.ExecContext(ctx, "KILL 999999")
		wantErr(t, err, mysql.ER_NO_SUCH_THREAD, "Unknown thread id: 999999")
		_, err = a.ExecContext(ctx, fmt.Sprintf("KILL %d", connID(t, other)))
		wantErr(t, err, mysql.ER_KILL_DENIED_ERROR, "You are not owner of thread")
		_, err = a.ExecContext(ctx, "KILL QUERY CONNECTION_ID()")
		wantErr(t, err, mysql.ER_QUERY_INTERRUPTED, "interrupted")
		_, err = a.ExecContext(ctx, "KILL (SELECT 1) + LASTVAL(s)")
		wantErr(t, err, 1970, "KILL does not support subqueries or stored functions")
		if errState(err) != "42000" {
			t.Fatalf("SQLSTATE %s", errState(err))
		}
	})

	t.Run("no KILL reaches a server", func(t *testing.T) {
		h.resetLogs()
		id := connID(t, b)
		for _, q := range []string{
			fmt.Sprintf("SELECT 1; KILL %d", id),
			"/*M!100000 KILL 999999 */", // carried out by the proxy: unknown id
			"/*!50000 KILL 999999 */",
			fmt.Sprintf("EXECUTE IMMEDIATE 'KILL QUERY %d'", id),
			fmt.Sprintf("PREPARE s FROM 'KILL %d'", id),
		} {
			if _, err := a.ExecContext(ctx, q); err == nil {
				t.Errorf("%s: no error", q)
			}
		}
		// A prepared KILL is carried out by the proxy at execution, as
		// mysqltest's --ps-protocol sends every KILL.
		stmt, err := a.PrepareContext(ctx, "KILL 999999")
		if err != nil {
			t.Fatalf("prepared KILL: %v", err)
		}
		_, err = stmt.ExecContext(ctx)
		wantErr(t, err, mysql.ER_NO_SUCH_THREAD, "Unknown thread id: 999999")
		stmt.Close()
		if _, err := a.PrepareContext(ctx, "KILL LASTVAL(s)"); errCode(err) != 1970 {
			t.Errorf("prepared KILL LASTVAL(s): %v, want 1970", err)
		}
		if got := h.ran("KILL"); len(got) != 0 {
			t.Fatalf("KILL reached %v", got)
		}
		if got := mustValue(t, b, "SELECT 1"); got != "1" {
			t.Fatalf("the session named was harmed: %s", got)
		}
	})

	t.Run("KILL QUERY interrupts the statement on its server", func(t *testing.T) {
		id := connID(t, b)
		done := make(chan error, 1)
		go func() {
			_, err := b.ExecContext(context.Background(), "SELECT name FROM whoami WHERE slow")
			done <- err
		}()
		where := <-k.slowOn
		if _, err := a.ExecContext(ctx, fmt.Sprintf("KILL QUERY %d", id)); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := k.kills(); len(got) != 1 || got[0] != where {
			t.Fatalf("KILL QUERY sent as %v, want once for %s", got, where)
		}
		if got := mustValue(t, b, "SELECT 1"); got != "1" {
			t.Fatalf("after KILL QUERY the session is gone: %s", got)
		}
	})

	t.Run("KILL ends the session", func(t *testing.T) {
		id := connID(t, b)
		if _, err := a.ExecContext(ctx, fmt.Sprintf("KILL CONNECTION %d", id)); err != nil {
			t.Fatal(err)
		}
		mysqltest.Eventually(t, "the killed session stops answering", func() bool {
			_, err := b.ExecContext(ctx, "SELECT 1")
			return err != nil
		})
	})

	t.Run("COM_PROCESS_KILL", func(t *testing.T) {
		victim := h.login(t, mysqltest.Login{User: "app", Pass: "secret", Schema: "shop"})
		killer := h.login(t, mysqltest.Login{User: "app", Pass: "secret", Schema: "shop"})
		var id [4]byte
		binary.LittleEndian.PutUint32(id[:], victim.Greeting.ConnectionID)
		killer.MustOK(killer.Cmd(mysql.COM_PROCESS_KILL, string(id[:]), wire.ShapeOne))
		victim.ExpectClosed()
	})

	t.Run("KILL CONNECTION_ID() ends the own session with 1927", func(t *testing.T) {
		c := h.session(t, "app", "secret", "shop")
		_, err := c.ExecContext(ctx, "KILL CONNECTION_ID()")
		wantErr(t, err, 1927, "Connection was killed")
	})
}
