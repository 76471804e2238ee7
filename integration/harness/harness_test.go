package harness

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requireMariadbd skips without MariaDB (`go test ./...` on a developer's
// machine) and fails where RequireEnv says the tests must run (make test,
// CI): a skipped integration test there looks green while testing nothing.
func requireMariadbd(t *testing.T) {
	t.Helper()
	switch reason, required := Missing(); {
	case reason == "":
	case required:
		t.Fatalf("MariaDB server is required for integration tests (run `make deps`): %s", reason)
	default:
		t.Skipf("no MariaDB server, integration tests skipped (make test runs them): %s", reason)
	}
}

func startTestCluster(t *testing.T, ctx context.Context) *Cluster {
	t.Helper()
	requireMariadbd(t)
	began := time.Now()
	c, err := StartCluster(ctx, ClusterOptions{BaseDir: t.TempDir(), Logf: t.Logf})
	if err != nil {
		t.Fatalf("StartCluster: %v", err)
	}
	t.Logf("StartCluster took %v", time.Since(began).Round(time.Millisecond))
	t.Cleanup(c.Stop)
	return c
}

func openDB(t *testing.T, ctx context.Context, s *Server) *sql.DB {
	t.Helper()
	db, err := s.DB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestClusterLifecycle(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startTestCluster(t, ctx)

	if len(c.Servers()) != 3 || len(c.Replicas) != 2 || c.Primary != c.Servers()[0] {
		t.Fatalf("want primary + 2 replicas, got %d servers, %d replicas", len(c.Servers()), len(c.Replicas))
	}
	ids := map[int]string{}
	ports := map[int]string{}
	for _, s := range c.Servers() {
		db := openDB(t, ctx, s)
		var id int
		var readOnly bool
		var track string
		if err := db.QueryRowContext(ctx, "SELECT @@server_id, @@read_only, @@session_track_system_variables").Scan(&id, &readOnly, &track); err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		if id != s.ServerID {
			t.Errorf("%s: server_id %d, harness says %d", s.Name, id, s.ServerID)
		}
		if other, dup := ids[id]; dup {
			t.Errorf("%s and %s share server_id %d", s.Name, other, id)
		}
		ids[id] = s.Name
		if other, dup := ports[s.Port]; dup {
			t.Errorf("%s and %s share port %d", s.Name, other, s.Port)
		}
		ports[s.Port] = s.Name
		if want := s != c.Primary; readOnly != want {
			t.Errorf("%s: read_only=%v, want %v", s.Name, readOnly, want)
		}
		if !strings.Contains(track, "last_gtid") {
			t.Errorf("%s: session_track_system_variables=%q lacks last_gtid", s.Name, track)
		}
		for _, u := range [][2]string{{c.AppUser, c.AppPassword}, {MonitorUser, MonitorPassword}, {ReplUser, ReplPassword}} {
			udb, err := sql.Open("mysql", s.DSN(u[0], u[1], ""))
			if err != nil {
				t.Fatal(err)
			}
			if err := udb.PingContext(ctx); err != nil {
				t.Errorf("%s: login as %s: %v", s.Name, u[0], err)
			}
			udb.Close()
		}
	}

	// Write through the app user, as the proxy will.
	app, err := sql.Open("mysql", c.Primary.DSN(c.AppUser, c.AppPassword, c.Database))
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	for _, q := range []string{
		"CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(50))",
		"INSERT INTO items VALUES (1, 'widget')",
	} {
		if _, err := app.ExecContext(ctx, q); err != nil {
			t.Fatalf("primary: %s: %v", q, err)
		}
	}
	if err := c.WaitReplicasCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	for _, r := range c.Replicas {
		var name string
		if err := openDB(t, ctx, r).QueryRowContext(ctx, "SELECT name FROM shop.items WHERE id = 1").Scan(&name); err != nil || name != "widget" {
			t.Fatalf("%s: read replicated row: %q, %v", r.Name, name, err)
		}
		// The app user must not bypass read_only, or misrouted writes
		// would go unnoticed.
		rapp, err := sql.Open("mysql", r.DSN(c.AppUser, c.AppPassword, c.Database))
		if err != nil {
			t.Fatal(err)
		}
		_, err = rapp.ExecContext(ctx, "INSERT INTO items VALUES (2, 'misrouted')")
		rapp.Close()
		if err == nil || !strings.Contains(err.Error(), "read-only") {
			t.Errorf("%s: app write on replica: got %v, want a read-only error", r.Name, err)
		}
	}

	// A crashed replica comes back on the same port and resumes
	// replicating, including what it missed while down.
	victim := c.Replicas[1]
	oldPID := victim.PID()
	victim.Kill()
	if victim.Running() || processAlive(oldPID) {
		t.Fatalf("%s still running after Kill", victim.Name)
	}
	if _, err := app.ExecContext(ctx, "INSERT INTO items VALUES (3, 'while down')"); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if err := victim.Start(ctx); err != nil {
		t.Fatalf("restart %s: %v", victim.Name, err)
	}
	t.Logf("%s restarted in %v", victim.Name, time.Since(began).Round(time.Millisecond))
	if victim.PID() == oldPID {
		t.Fatalf("%s: same pid after restart", victim.Name)
	}
	if err := c.WaitReplicasCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	vdb := openDB(t, ctx, victim)
	var n int
	var readOnly bool
	// Separate queries: MariaDB 10.11 reports @@read_only as 0 when it is
	// selected next to an aggregate.
	if err := vdb.QueryRowContext(ctx, "SELECT COUNT(*) FROM shop.items").Scan(&n); err != nil || n != 2 {
		t.Fatalf("%s after restart: %d rows, %v; want 2", victim.Name, n, err)
	}
	if err := vdb.QueryRowContext(ctx, "SELECT @@read_only").Scan(&readOnly); err != nil || !readOnly {
		t.Fatalf("%s after restart: read_only=%v, %v; want read_only", victim.Name, readOnly, err)
	}
	st, err := victim.SlaveStatus(ctx)
	if err != nil || st["Slave_IO_Running"] != "Yes" || st["Slave_SQL_Running"] != "Yes" {
		t.Fatalf("%s not replicating after restart: %v %v", victim.Name, st, err)
	}

	// A clean stop and start works too.
	if err := victim.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := victim.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReplicasCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}

	// Replicas reconnect promptly to a restarted primary (the harness sets
	// MASTER_CONNECT_RETRY=1; the default would stall this for a minute).
	c.Primary.Kill()
	began = time.Now()
	if err := c.Primary.Start(ctx); err != nil {
		t.Fatalf("restart primary: %v", err)
	}
	if _, err := app.ExecContext(ctx, "INSERT INTO items VALUES (4, 'after primary restart')"); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReplicasCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("primary restarted and replicas caught up in %v", time.Since(began).Round(time.Millisecond))

	pids := c.PIDs()
	if len(pids) != 3 {
		t.Fatalf("want 3 running servers, got pids %v", pids)
	}
	c.Stop()
	c.Stop() // must be harmless
	if err := victim.Start(ctx); err == nil {
		t.Errorf("Start after Cluster.Stop succeeded; it would leak a server")
	}
	for _, pid := range pids {
		if processAlive(pid) {
			t.Errorf("mariadbd pid %d survived Cluster.Stop", pid)
		}
	}
	for _, s := range c.Servers() {
		if s.Running() {
			t.Errorf("%s reports running after Stop", s.Name)
		}
	}
}

// processAlive is true for a live process and false for a gone one. Our
// children are reaped by Wait, so no zombie can fake liveness.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func TestGTIDPos(t *testing.T) {
	p, err := ParseGTIDPos("0-1-42,1-2-7")
	if err != nil {
		t.Fatal(err)
	}
	if !p.Contains(GTIDPos{0: 42}) || !p.Contains(GTIDPos{}) || p.Contains(GTIDPos{0: 43}) || p.Contains(GTIDPos{2: 1}) {
		t.Fatalf("Contains misbehaves on %v", p)
	}
	if empty, err := ParseGTIDPos(""); err != nil || len(empty) != 0 {
		t.Fatalf("empty position: %v %v", empty, err)
	}
	if _, err := ParseGTIDPos("0-1"); err == nil {
		t.Fatal("want error for malformed GTID")
	}
}

// BenchmarkStartCluster measures what each integration test pays for its
// cluster: go test ./integration/harness/ -run '^$' -bench StartCluster
func BenchmarkStartCluster(b *testing.B) {
	if _, err := FindMariadbd(); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		began := time.Now()
		c, err := StartCluster(ctx, ClusterOptions{BaseDir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("cluster %d: %v", i, time.Since(began).Round(time.Millisecond))
		c.Stop()
	}
}
