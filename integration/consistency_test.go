package integration

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"switchyard/integration/harness"
)

// Read-your-writes across connections (routing.read_your_writes user and
// global): a write acknowledged on one connection is seen by a read on a
// new connection, even when the replicas have not applied it yet.

// rywLagging creates shop.ryw_t and makes every replica apply writes to it
// measurably late: a trigger of the replica's own (not binlogged, and run
// for replicated row events by slave_run_triggers_for_rbr) sleeps for
// each updated row, 3 ms usually, 200 ms when the new value is a multiple
// of 100, longer than the default gtid_wait (50ms), and 2 s from
// rywLongLag on. The replicas keep replicating within
// monitor.max_replication_lag, so they stay in the read pool. The cleanup
// waits for the replicas, then takes it all away again.
func rywLagging(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	table := cluster.Database + ".ryw_t"
	if err := cluster.Primary.Exec(ctx, "CREATE OR REPLACE TABLE "+table+" (id INT PRIMARY KEY, v INT NOT NULL)",
		"INSERT INTO "+table+" VALUES (1, 0)"); err != nil {
		t.Fatal(err)
	}
	if err := cluster.WaitReplicasCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := cluster.WaitReplicasCaughtUp(ctx); err != nil {
			t.Errorf("replicas catching up: %v", err)
		}
		for _, r := range cluster.Replicas {
			if err := r.Exec(ctx, "STOP SLAVE SQL_THREAD", "SET GLOBAL slave_run_triggers_for_rbr = NO", "START SLAVE SQL_THREAD"); err != nil {
				t.Errorf("restore %s: %v", r.Name, err)
			}
		}
		// The trigger goes with the table.
		if err := cluster.Primary.Exec(ctx, "DROP TABLE IF EXISTS "+table); err != nil {
			t.Error(err)
		}
		if err := cluster.WaitReplicasCaughtUp(ctx); err != nil {
			t.Errorf("replicas catching up: %v", err)
		}
	})
	for _, r := range cluster.Replicas {
		if err := r.Exec(ctx,
			// A local GTID on a replica would break strict-mode replication.
			"SET SESSION sql_log_bin = 0",
			fmt.Sprintf("CREATE TRIGGER %s.ryw_lag BEFORE UPDATE ON %s FOR EACH ROW "+
				"SET @ryw_lag = SLEEP(CASE WHEN NEW.v >= %d THEN 2 WHEN NEW.v %% 100 = 0 THEN 0.2 ELSE 0.003 END)",
				cluster.Database, table, rywLongLag),
			"STOP SLAVE SQL_THREAD", "SET GLOBAL slave_run_triggers_for_rbr = YES", "START SLAVE SQL_THREAD"); err != nil {
			t.Fatal(err)
		}
	}
}

// rywLongLag: from this value on, a replica takes 2 s to apply a write.
const rywLongLag = 1000000

// rywLoop writes v = i on the writer's connection and reads v back on a
// new connection of reader, for i from first to last; it returns how many
// reads saw an older value.
func rywLoop(t *testing.T, writer, reader *sql.DB, first, last int) (stale int) {
	t.Helper()
	for i := first; i <= last; i++ {
		if _, err := writer.Exec("UPDATE ryw_t SET v = ? WHERE id = 1", i); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		var v int
		if err := reader.QueryRow("SELECT v FROM ryw_t WHERE id = 1").Scan(&v); err != nil {
			t.Fatalf("read after write %d: %v", i, err)
		}
		switch {
		case v > i:
			t.Fatalf("read %d after writing %d: a value from the future", v, i)
		case v < i:
			stale++
		}
	}
	return stale
}

// freshConns is a pool that keeps no idle connection: each statement runs
// on a new client connection, a new session of the proxy.
func freshConns(t *testing.T, p *harness.Proxy, user, pass string) *sql.DB {
	db := openDB(t, p, user, pass, cluster.Database, "")
	db.SetMaxIdleConns(0)
	return db
}

// gtidWaits reads switchyard_gtid_waits_total by result.
func gtidWaits(t *testing.T, p *harness.Proxy) map[string]float64 {
	t.Helper()
	fams := scrape(t, p)
	out := map[string]float64{}
	for _, r := range []string{"ok", "timeout", "error"} {
		out[r], _ = metricValue(fams, "switchyard_gtid_waits_total", map[string]string{"result": r})
	}
	return out
}

// TestReadYourWritesGlobal: with the replicas lagging, 1,000 times a write
// on one connection and a read on a new one: under read_your_writes global
// no read is stale. The reads wait on a replica for the write and run
// there once it is applied (a few ms), or on the primary when it takes
// longer than gtid_wait; both happen. Under session (the new connection
// never wrote) the same loop reads stale data, which proves the loop can
// fail.
func TestReadYourWritesGlobal(t *testing.T) {
	rywLagging(t)
	const writes = 1000

	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", ExtraYAML: "routing:\n  read_your_writes: global\n"})
	writer := appDB(t, p, "interpolateParams=true")
	writer.SetMaxOpenConns(1)
	start := time.Now()
	stale := rywLoop(t, writer, freshConns(t, p, cluster.AppUser, cluster.AppPassword), 1, writes)
	waits := gtidWaits(t, p)
	t.Logf("global: %d writes, each read on a new connection: %d stale, waits %v, in %v", writes, stale, waits, time.Since(start).Round(time.Millisecond))
	if stale != 0 {
		t.Errorf("global: %d of %d reads on a new connection missed the write acknowledged before", stale, writes)
	}
	if waits["ok"] == 0 || waits["timeout"] == 0 {
		t.Errorf("global: waits %v: want reads served by a replica after waiting and reads sent to the primary after a timeout", waits)
	}

	// The same with read_your_writes session: nothing makes a new
	// connection wait for another's write.
	ps := startProxy(t, harness.ProxyOptions{LogLevel: "info", ExtraYAML: "routing:\n  read_your_writes: session\n"})
	sw := appDB(t, ps, "interpolateParams=true")
	sw.SetMaxOpenConns(1)
	const sessionWrites = 200
	stale = rywLoop(t, sw, freshConns(t, ps, cluster.AppUser, cluster.AppPassword), writes+1, writes+sessionWrites)
	t.Logf("session: %d writes, each read on a new connection: %d stale", sessionWrites, stale)
	if stale == 0 {
		t.Errorf("session: no stale read in %d: the replicas did not lag, so the global half proved nothing", sessionWrites)
	}
}

// TestReadYourWritesUser: under read_your_writes user, a new connection of
// the user that wrote waits for the write; one of another user does not
// wait for it (and, the replicas being 2 s behind, reads the old value).
func TestReadYourWritesUser(t *testing.T) {
	cmdsSecondUser(t)
	rywLagging(t)
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", ExtraYAML: fmt.Sprintf(`users:
  - name: %q
    password: %q
    default_schema: %q
  - name: %q
    password: %q
    default_schema: %q
routing:
  read_your_writes: user
`, cluster.AppUser, cluster.AppPassword, cluster.Database, cmdsUser2, cmdsPass2, cluster.Database)})
	writer := appDB(t, p, "interpolateParams=true")
	if _, err := writer.Exec("UPDATE ryw_t SET v = ? WHERE id = 1", rywLongLag); err != nil {
		t.Fatal(err)
	}
	before := gtidWaits(t, p)
	other := freshConns(t, p, cmdsUser2, cmdsPass2)
	for range 5 {
		var v int
		if err := other.QueryRow("SELECT v FROM ryw_t WHERE id = 1").Scan(&v); err != nil {
			t.Fatal(err)
		}
	}
	if after := gtidWaits(t, p); after["ok"]+after["timeout"]+after["error"] != before["ok"]+before["timeout"]+before["error"] {
		t.Errorf("another user's reads waited for app's write: waits %v, before %v", after, before)
	}
	var v int
	if err := freshConns(t, p, cluster.AppUser, cluster.AppPassword).QueryRow("SELECT v FROM ryw_t WHERE id = 1").Scan(&v); err != nil || v != rywLongLag {
		t.Fatalf("app's read on a new connection after app's write: %d (%v), want %d", v, err, rywLongLag)
	}
	if after := gtidWaits(t, p); after["timeout"] != before["timeout"]+1 {
		t.Errorf("app's read did not wait for app's write: waits %v, before %v", after, before)
	}
}
