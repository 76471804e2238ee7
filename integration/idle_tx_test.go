package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/integration/harness"
	"switchyard/wire"
)

// TestIdleTransactionTimeout: a server ends a transaction left idle past
// idle_transaction_timeout by closing its connection, and the client's next
// statement finds the connection closed (mtr's transaction_timeout accepts
// 2006, 2013 or 2026: what a client library says of a closed connection).
// Through the proxy the client must see what it sees directly: no packet,
// the connection gone. Before the fix the proxy sent its own 1105 "lost
// the connection" first.
func TestIdleTransactionTimeout(t *testing.T) {
	ctx := context.Background()
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", Servers: []*harness.Server{cluster.Primary}})
	db := appDB(t, p, "")
	mustExec(t, db, "CREATE TABLE IF NOT EXISTS idle_tx_t (a INT) ENGINE=InnoDB")
	direct, err := cluster.Primary.DB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()

	// closedAfterIdle runs the transaction through addr, waits until the
	// server has ended its connection, sends the next statement and
	// returns what the client gets before its connection closes.
	closedAfterIdle := func(addr string) []string {
		c := fsLoggedIn(t, addr)
		c.MustOK(c.Query("SET autocommit=0"))
		c.MustOK(c.Query("SET idle_transaction_timeout=1"))
		c.MustOK(c.Query("BEGIN"))
		// The server thread that holds the transaction: the one running
		// this statement, found from the server's side (through the proxy
		// the process list shows the session's id, not the thread's).
		c.Command(wire.AppendCommand(nil, mysql.COM_QUERY, "SELECT SLEEP(1) AS `idle-tx-marker`"))
		var thread uint64
		eventually(t, 10*time.Second, "the marked statement on the server", func() bool {
			return direct.QueryRow("SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE '%idle-tx-marker%' AND ID <> CONNECTION_ID()").Scan(&thread) == nil
		})
		c.Response(wire.ShapeResult)
		eventually(t, 30*time.Second, "the server to end the idle transaction's connection", func() bool {
			var n int
			if err := direct.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?", thread).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n == 0
		})
		// The write may fail: the server may have reset the connection.
		cmd, _ := wire.AppendPacket(nil, wire.AppendCommand(nil, mysql.COM_QUERY, "SELECT * FROM idle_tx_t"), 0)
		// Directly the write fails (the server reset the connection), and
		// a client library says 2006; through the proxy it may succeed and
		// the read find the connection closed, 2013. Both say the
		// connection is gone: what must be the same is what arrives.
		if _, err := c.Conn.Write(cmd); err != nil {
			t.Logf("through %s: the statement's write failed: %v", addr, err)
		}
		var seen []string
		// Whatever arrives before the connection ends (reset or closed).
		_ = c.TCP.SetReadDeadline(time.Now().Add(15 * time.Second))
		got, err := io.ReadAll(c.Reader)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("the connection through %s stayed open after the server ended it (got %x)", addr, got)
		}
		for len(got) >= wire.HeaderSize && len(got) >= wire.HeaderSize+wire.PayloadLen(got) {
			pkt := got[wire.HeaderSize : wire.HeaderSize+wire.PayloadLen(got)]
			got = got[wire.HeaderSize+len(pkt):]
			if len(pkt) > 0 && pkt[0] == wire.ErrHeader {
				e := wire.ParseErr(pkt)
				seen = append(seen, fmt.Sprintf("ERR %d (%s)", e.Code, e.State))
				continue
			}
			seen = append(seen, fmt.Sprintf("%x", pkt))
		}
		if len(got) > 0 {
			seen = append(seen, fmt.Sprintf("a partial packet %x", got))
		}
		return seen
	}
	want := closedAfterIdle(cluster.Primary.Addr())
	got := closedAfterIdle(p.Addr())
	t.Logf("directly: %q; through switchyard: %q", want, got)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after the server ended the idle transaction, the client got %q through switchyard and %q directly", got, want)
	}
}

// TestClientGoneDuringStatement: a client that goes away while its
// statement waits (mtr's dirty_close: a GET_LOCK another session holds)
// has the statement ended on the server, as a server notices its own
// client gone. Before, the proxy kept waiting for the answer nobody would
// read, and the server thread held its place in the lock queue for the
// statement's whole timeout.
func TestClientGoneDuringStatement(t *testing.T) {
	ctx := context.Background()
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", Servers: []*harness.Server{cluster.Primary}})
	direct, err := cluster.Primary.DB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	holder, err := direct.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	var got int
	if err := holder.QueryRowContext(ctx, "SELECT GET_LOCK('sy_dangling', 0)").Scan(&got); err != nil || got != 1 {
		t.Fatalf("GET_LOCK: %d, %v", got, err)
	}
	defer holder.ExecContext(ctx, "DO RELEASE_LOCK('sy_dangling')")
	const waiting = "SELECT GET_LOCK('sy_dangling', 3600)"
	waiters := func() int {
		var n int
		if err := direct.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO = ?", waiting).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	c := fsLoggedIn(t, p.Addr())
	c.Command(wire.AppendCommand(nil, mysql.COM_QUERY, waiting))
	eventually(t, 30*time.Second, "the statement to wait for the lock on the server", func() bool { return waiters() == 1 })
	c.TCP.Close()
	eventually(t, 60*time.Second, "the server to end the statement of the client that went away", func() bool { return waiters() == 0 })
}
