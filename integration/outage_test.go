package integration

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"switchyard/integration/harness"
)

// TestReadsAndLoginsSurviveDeadPrimary kills the primary of a cluster of
// its own (the shared one's primary serves every other test): plain reads
// go on on the replicas, whose IO threads now only retry, a new client
// logs in, and a write gets an error that says there is no writable
// primary and why. Once the primary is back, writes work again and the
// replicas serve reads again as soon as they replicate.
func TestReadsAndLoginsSurviveDeadPrimary(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c, err := harness.StartCluster(ctx, harness.ClusterOptions{BaseDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	primary, r0, r1 := c.Primary, c.Replicas[0], c.Replicas[1]
	if err := primary.Exec(ctx,
		"CREATE TABLE "+c.Database+".outage_t (id INT PRIMARY KEY, v VARCHAR(20))",
		"INSERT INTO "+c.Database+".outage_t VALUES (1, 'before')"); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReplicasCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	// Without failover: this is what clients see until someone restarts
	// the primary or promotes a replica.
	p, err := harness.StartProxy(ctx, harness.ProxyOptions{Binary: binary, Cluster: c, LogLevel: "info", ExtraYAML: fastMonitor + "failover:\n  auto: false\n"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = p.Stop()
		if strings.Contains(p.Logs(), "panic") {
			t.Errorf("proxy log has a panic:\n%s", p.Logs())
		}
		if t.Failed() {
			t.Logf("proxy log tail:\n%s", p.LogTail(60))
		}
	}()
	open := func() *sql.DB {
		db, err := sql.Open("mysql", p.DSN(c.AppUser, c.AppPassword, c.Database, ""))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	db := open()
	replicasServing := func(db *sql.DB) map[int]bool {
		seen := map[int]bool{}
		for range 12 {
			var id int
			if err := db.QueryRow("/* switchyard:route=replica */ SELECT @@server_id").Scan(&id); err != nil {
				t.Fatalf("replica read: %v", err)
			}
			seen[id] = true
		}
		return seen
	}
	both := func(seen map[int]bool) bool { return len(seen) == 2 && seen[r0.ServerID] && seen[r1.ServerID] }
	plainRead := func(db *sql.DB) error {
		var v string
		return db.QueryRow("SELECT v FROM outage_t WHERE id = 1").Scan(&v)
	}
	eventually(t, 10*time.Second, "reads on both replicas", func() bool { return both(replicasServing(db)) })

	primary.Kill()
	killed := time.Now()
	// Right after the kill (the proxy may not have noticed yet) and later:
	// reads are served and new clients log in.
	if err := plainRead(db); err != nil {
		t.Fatalf("plain read right after the kill: %v", err)
	}
	if err := plainRead(open()); err != nil {
		t.Fatalf("new login and read right after the kill: %v", err)
	}
	var werr error
	eventually(t, 15*time.Second, "writes to be refused for want of a primary", func() bool {
		_, werr = db.Exec("UPDATE outage_t SET v = 'during' WHERE id = 1")
		return werr != nil && strings.Contains(werr.Error(), "no writable primary")
	})
	t.Logf("writes refused %v after the kill: %v", time.Since(killed).Round(10*time.Millisecond), werr)
	assertMySQLError(t, werr, 1105, "HY000")
	for _, want := range []string{primary.Name, "unreachable since", "writes fail until"} {
		if !strings.Contains(werr.Error(), want) {
			t.Fatalf("write error %q does not say %q", werr, want)
		}
	}

	// Plain reads, over ten monitor intervals: every one is served.
	var reads int
	for until := time.Now().Add(2 * time.Second); time.Now().Before(until); reads++ {
		if err := plainRead(db); err != nil {
			t.Fatalf("plain read %d with the primary dead: %v", reads, err)
		}
		time.Sleep(5 * time.Millisecond) // the machine is shared
	}
	t.Logf("%d plain reads with the primary dead, none failed", reads)
	if !both(replicasServing(db)) {
		t.Fatalf("reads are not served by both replicas while the primary is dead")
	}
	for _, r := range []*harness.Server{r0, r1} {
		st, err := r.SlaveStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s meanwhile: Slave_IO_Running=%s Seconds_Behind_Master=%q", r.Name, st["Slave_IO_Running"], st["Seconds_Behind_Master"])
	}
	fresh := open()
	if err := plainRead(fresh); err != nil {
		t.Fatalf("new login and read with the primary dead: %v", err)
	}
	// What a PHP app sends after connecting changes replayed session state
	// only: any server runs it.
	conn, err := fresh.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"SET NAMES utf8mb4", "SET SESSION sql_mode = 'STRICT_ALL_TABLES'", "USE " + c.Database} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s with the primary dead: %v", q, err)
		}
	}
	var mode string
	if err := conn.QueryRowContext(ctx, "SELECT @@sql_mode").Scan(&mode); err != nil || mode != "STRICT_ALL_TABLES" {
		t.Fatalf("session state with the primary dead: %q, %v", mode, err)
	}
	conn.Close()

	if err := primary.Start(ctx); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	eventually(t, 90*time.Second, "writes to work again", func() bool {
		_, werr = db.Exec("UPDATE outage_t SET v = 'after' WHERE id = 1")
		return werr == nil
	})
	t.Logf("writes work again %v after the primary restarted", time.Since(restarted).Round(10*time.Millisecond))
	// Both replicas serve reads again, with the write: they replicate.
	eventually(t, 90*time.Second, "both replicas to serve reads with the write", func() bool {
		seen := map[int]bool{}
		for range 12 {
			var id int
			var v string
			if err := db.QueryRow("/* switchyard:route=replica */ SELECT @@server_id, v FROM outage_t WHERE id = 1").Scan(&id, &v); err != nil {
				t.Fatalf("replica read: %v", err)
			}
			seen[id] = seen[id] || v == "after"
		}
		return both(seen)
	})
	t.Logf("both replicas serve reads with the new write %v after the primary restarted", time.Since(restarted).Round(10*time.Millisecond))
	// A replica that served the write may still count as frozen until the
	// next check sees its IO thread back: the events follow within rounds.
	eventually(t, 30*time.Second, "the replicas' lag to be unfrozen", func() bool {
		logs := p.Logs()
		return strings.Contains(logs, "event=replica_lag_unfrozen server="+r0.Name) &&
			strings.Contains(logs, "event=replica_lag_unfrozen server="+r1.Name)
	})
	logs := p.Logs()
	var events []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, " event=") {
			events = append(events, l)
		}
	}
	t.Logf("topology events:\n%s", strings.Join(events, "\n"))
	for _, r := range []*harness.Server{r0, r1} {
		for _, ev := range []string{"event=replica_lag_frozen server=" + r.Name, "event=replica_lag_unfrozen server=" + r.Name} {
			if !strings.Contains(logs, ev) {
				t.Errorf("the log lacks %q", ev)
			}
		}
	}
	if !strings.Contains(logs, "event=no_primary") || !strings.Contains(logs, "event=primary_back") {
		t.Errorf("the primary's loss and return were not logged")
	}
}
