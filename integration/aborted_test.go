package integration

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"switchyard/integration/harness"
	"switchyard/internal/mysqltest"
)

// TestAbortedClients: a server counts in Aborted_clients the clients that
// went away without COM_QUIT or were killed. Through switchyard it never
// sees them (its clients, switchyard's connections, always end with
// COM_QUIT), so switchyard adds its own sessions' aborts since the last
// FLUSH STATUS through it to the Aborted_clients read through it (mtr's
// aborted_clients: FLUSH STATUS, a clean disconnect, then KILL
// CONNECTION_ID(), read from information_schema.GLOBAL_STATUS). Before, the
// count stayed 0.
func TestAbortedClients(t *testing.T) {
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", Servers: []*harness.Server{cluster.Primary},
		ExtraYAML: "users_from_servers: true\n"})
	ctx := context.Background()
	admin := openDB(t, p, "root", cluster.RootPassword(), "", "")
	admin.SetMaxOpenConns(1)
	aborted := func(q string) int {
		t.Helper()
		var n int
		var name string
		var err error
		if q == "" {
			err = admin.QueryRowContext(ctx, "SELECT VARIABLE_VALUE FROM INFORMATION_SCHEMA.GLOBAL_STATUS WHERE VARIABLE_NAME='aborted_clients'").Scan(&n)
		} else {
			err = admin.QueryRowContext(ctx, q).Scan(&name, &n)
		}
		if err != nil {
			t.Fatalf("reading Aborted_clients: %v", err)
		}
		return n
	}
	waitAborted := func(want int, after string) {
		t.Helper()
		eventually(t, 10*time.Second, "Aborted_clients after "+after, func() bool { return aborted("") == want })
	}
	mustExec(t, admin, "FLUSH STATUS")
	if n := aborted(""); n != 0 {
		t.Fatalf("Aborted_clients after FLUSH STATUS: %d", n)
	}

	// A clean disconnect (COM_QUIT) is no abort.
	app := appDB(t, p, "")
	if err := app.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	app.Close()

	// A client that closes its socket without COM_QUIT.
	raw := mysqltest.Dial(t, p.Addr(), fsRawCaps, nil)
	if err := raw.Login(mysqltest.Login{User: cluster.AppUser, Pass: cluster.AppPassword, Schema: cluster.Database}); err != nil {
		t.Fatal(err)
	}
	raw.TCP.Close()
	waitAborted(1, "a client closed its socket without COM_QUIT")

	// A session that kills itself.
	c, err := appDB(t, p, "").Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var me *mysql.MySQLError
	if _, err := c.ExecContext(ctx, "KILL CONNECTION_ID()"); !errors.As(err, &me) || me.Number != 1927 {
		t.Fatalf("KILL CONNECTION_ID(): %v, want 1927", err)
	}
	c.Close()
	waitAborted(2, "KILL CONNECTION_ID()")
	for _, q := range []string{"SHOW GLOBAL STATUS LIKE 'Aborted_clients'", "SHOW STATUS LIKE 'Aborted_clients'",
		"SELECT * FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'ABORTED_CLIENTS'"} {
		if n := aborted(q); n != 2 {
			t.Errorf("%s: %d, want 2", q, n)
		}
	}
	if v, ok := metricValue(scrape(t, p), "switchyard_client_connections_aborted_total", nil); !ok || v != 2 {
		t.Errorf("switchyard_client_connections_aborted_total: %v (%v), want 2", v, ok)
	}

	// FLUSH STATUS through the proxy starts the count again, as the
	// server's.
	mustExec(t, admin, "FLUSH STATUS")
	if n := aborted(""); n != 0 {
		t.Fatalf("Aborted_clients after the second FLUSH STATUS: %d", n)
	}
}
