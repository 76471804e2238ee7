package integration

import (
	"context"
	"database/sql"
	"net/http"
	"strings"
	"testing"
	"time"

	"switchyard/integration/harness"
)

// read_only through the proxy: the only server of a cluster that turns
// read-only (mtr's read_only test) keeps taking writes and refuses them
// itself, as it does directly; a replica never gets a write.

// readOnlyProxy starts switchyard over servers with a fast monitor, the
// app user (no READ_ONLY ADMIN) and root (READ_ONLY ADMIN: a read-only
// server takes its writes) listed.
func readOnlyProxy(t *testing.T, servers ...*harness.Server) (p *harness.Proxy, app, root *sql.DB) {
	t.Helper()
	p = startProxy(t, harness.ProxyOptions{LogLevel: "info", ExtraYAML: fastMonitor, Servers: servers,
		Users: []harness.ProxyUser{
			{Name: cluster.AppUser, Password: cluster.AppPassword, DefaultSchema: cluster.Database},
			{Name: "root", Password: cluster.RootPassword(), DefaultSchema: cluster.Database},
		}})
	return p, appDB(t, p, ""), openDB(t, p, "root", cluster.RootPassword(), cluster.Database, "")
}

// monitorSaw waits until the proxy's monitor has checked s since now: a
// write made directly as root moves its GTID position, which the proxy
// reports once a check has read it (runtime_servers.gtid), read_only in the
// same query.
func monitorSaw(t *testing.T, p *harness.Proxy, s *harness.Server, table string) {
	t.Helper()
	direct, err := s.DB(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	mustExec(t, direct, "INSERT INTO "+cluster.Database+"."+table+" VALUES (0)")
	var pos string
	if err := direct.QueryRow("SELECT @@gtid_current_pos").Scan(&pos); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the monitor to check "+s.Name+" at "+pos, func() bool {
		// An empty gtid prints an empty line, which adminRows drops.
		rows := adminRows(t, p, "SELECT gtid FROM runtime_servers WHERE name = '"+s.Name+"'")
		return len(rows) == 2 && len(rows[1]) == 1 && rows[1][0] == pos
	})
}

func countRows(t *testing.T, db *sql.DB, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM " + cluster.Database + "." + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestOnlyServerReadOnlyRefusesWritesItself: SET GLOBAL read_only=1
// through the proxy in front of one server; once the monitor has seen it,
// an ordinary user's write gets the server's 1290, not the proxy's 1105;
// temporary tables and reads work; an account with READ_ONLY ADMIN writes,
// as directly. Before the fix the monitor's check made the server a
// replica and writes got 1105 "no primary".
func TestOnlyServerReadOnlyRefusesWritesItself(t *testing.T) {
	ctx := context.Background()
	srv := cluster.Primary
	p, app, root := readOnlyProxy(t, srv)
	mustExec(t, app, "CREATE OR REPLACE TABLE sy_ro (a INT)")
	t.Cleanup(func() {
		_ = srv.Exec(ctx, "SET GLOBAL read_only = OFF", "DROP TABLE IF EXISTS "+cluster.Database+".sy_ro")
		_ = cluster.WaitReplicasCaughtUp(ctx)
	})
	mustExec(t, root, "SET GLOBAL read_only = ON")
	monitorSaw(t, p, srv, "sy_ro")

	_, err := app.Exec("INSERT INTO sy_ro VALUES (1)")
	assertMySQLError(t, err, 1290, "HY000")
	_, err = app.Exec("CREATE TABLE sy_ro2 (a INT)")
	assertMySQLError(t, err, 1290, "HY000")
	c, err := app.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, q := range []string{"CREATE TEMPORARY TABLE sy_ro_tmp (a INT)", "INSERT INTO sy_ro_tmp VALUES (1)", "DROP TEMPORARY TABLE sy_ro_tmp"} {
		if _, err := c.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s on the read-only server: %v", q, err)
		}
	}
	if n := countRows(t, app, "sy_ro"); n != 1 {
		t.Fatalf("read %d rows, want the 1 written directly", n)
	}
	// No writable primary for /health (SPEC): a load balancer sends
	// writers elsewhere.
	if code, body, err := tryHTTPGet(p.HTTPAddr(), "/health"); err != nil || code != http.StatusServiceUnavailable || !strings.Contains(body, "read-only") {
		t.Fatalf("GET /health with the only server read-only: %d %q %v, want 503 saying read-only", code, body, err)
	}
	mustExec(t, root, "INSERT INTO sy_ro VALUES (2)") // READ_ONLY ADMIN
	mustExec(t, root, "SET GLOBAL read_only = OFF")
	mustExec(t, app, "INSERT INTO sy_ro VALUES (3)")
	if n := countRows(t, app, "sy_ro"); n != 3 {
		t.Fatalf("%d rows, want 3", n)
	}
	monitorSaw(t, p, srv, "sy_ro")
	if code, _, err := tryHTTPGet(p.HTTPAddr(), "/health"); err != nil || code != http.StatusOK {
		t.Fatalf("GET /health with the only server writable again: %d %v, want 200", code, err)
	}
}

// TestReplicaNeverTakesWrites: a replica is never where writes go, even
// when it is the only server the proxy has, replicating or with its
// replication stopped, and even for an account whose writes the replica
// would take (READ_ONLY ADMIN); nor is a read-only primary that is not the
// only server. The writes get the proxy's 1105 and change nothing.
func TestReplicaNeverTakesWrites(t *testing.T) {
	ctx := context.Background()
	primary, replica := cluster.Primary, cluster.Replicas[0]
	direct, err := primary.DB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	mustExec(t, direct, "CREATE OR REPLACE TABLE "+cluster.Database+".sy_ro_rep (a INT)")
	t.Cleanup(func() {
		_ = replica.Exec(ctx, "START SLAVE")
		_ = primary.Exec(ctx, "SET GLOBAL read_only = OFF", "DROP TABLE IF EXISTS "+cluster.Database+".sy_ro_rep")
		_ = cluster.WaitReplicasCaughtUp(ctx)
	})
	if err := cluster.WaitReplicasCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	replicaDB, err := replica.DB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer replicaDB.Close()
	refused := func(db *sql.DB, on string) {
		t.Helper()
		_, err := db.Exec("INSERT INTO sy_ro_rep VALUES (1)")
		assertMySQLError(t, err, 1105, "HY000")
		if n := countRows(t, replicaDB, "sy_ro_rep"); n != 0 {
			t.Fatalf("%s: the replica has %d rows written through the proxy", on, n)
		}
	}

	p, app, root := readOnlyProxy(t, replica)
	refused(root, "only the replica")
	refused(app, "only the replica")
	if err := replica.Exec(ctx, "STOP SLAVE"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the monitor to see replication stopped", func() bool {
		return containsLog(p, "replica leaves the read pool")
	})
	refused(root, "only the replica, replication stopped")
	if err := replica.Exec(ctx, "START SLAVE"); err != nil {
		t.Fatal(err)
	}

	p2, _, root2 := readOnlyProxy(t, primary, replica)
	if err := primary.Exec(ctx, "SET GLOBAL read_only = ON"); err != nil {
		t.Fatal(err)
	}
	monitorSaw(t, p2, primary, "sy_ro_rep")
	if err := cluster.WaitReplicasCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = root2.Exec("INSERT INTO sy_ro_rep VALUES (1)")
	assertMySQLError(t, err, 1105, "HY000")
	if n := countRows(t, direct, "sy_ro_rep"); n != 1 {
		t.Fatalf("the read-only primary of a replica has %d rows, want the 1 written directly", n)
	}
}
