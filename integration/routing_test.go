package integration

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"switchyard/integration/harness"
)

// selectCounts reads, on every server directly, how many SELECTs the app
// user has run there (MariaDB's user statistics), so a test can tell where
// plain reads went without changing them.
func selectCounts(t *testing.T) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	out := map[string]int64{}
	for _, s := range cluster.Servers() {
		db, err := s.DB(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var n sql.NullInt64
		err = db.QueryRow("SELECT SELECT_COMMANDS FROM information_schema.USER_STATISTICS WHERE USER = ?", cluster.AppUser).Scan(&n)
		db.Close()
		if err != nil && err != sql.ErrNoRows {
			t.Fatal(err)
		}
		out[s.Name] = n.Int64
	}
	return out
}

func enableUserStats(t *testing.T) {
	t.Helper()
	for _, s := range cluster.Servers() {
		if err := s.Exec(context.Background(), "SET GLOBAL userstat = 1"); err != nil {
			t.Fatal(err)
		}
	}
}

// settledDelta is delta(selectCounts(t), before) once server counts at
// least n SELECTs: a server counts a statement after it has answered it,
// so the last one may show a moment after the client has its rows.
func settledDelta(t *testing.T, before map[string]int64, server string, n int64) map[string]int64 {
	t.Helper()
	d := delta(selectCounts(t), before)
	for deadline := time.Now().Add(5 * time.Second); d[server] < n && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		d = delta(selectCounts(t), before)
	}
	return d
}

func delta(after, before map[string]int64) map[string]int64 {
	d := map[string]int64{}
	for k, v := range after {
		d[k] = v - before[k]
	}
	return d
}

func setupRoutingTable(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if err := cluster.Primary.Exec(ctx,
		"CREATE TABLE IF NOT EXISTS "+cluster.Database+".route_t (id INT PRIMARY KEY, v VARCHAR(20))",
		"REPLACE INTO "+cluster.Database+".route_t VALUES (1,'one'),(2,'two'),(3,'three')",
		"DELETE FROM "+cluster.Database+".route_t WHERE id > 3"); err != nil {
		t.Fatal(err)
	}
	if err := cluster.WaitReplicasCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestPlainReadsSpreadOverReplicas(t *testing.T) {
	setupRoutingTable(t)
	enableUserStats(t)
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info"})
	// Text protocol here; TestPreparedStatementsUnderMultiplexing covers
	// binary prepared statements.
	db := appDB(t, p, "interpolateParams=true")
	db.SetMaxOpenConns(4)
	before := selectCounts(t)
	const reads = 200
	for i := range reads {
		var v string
		if err := db.QueryRow("SELECT v FROM route_t WHERE id = ?", i%3+1).Scan(&v); err != nil {
			t.Fatal(err)
		}
	}
	d := delta(selectCounts(t), before)
	t.Logf("SELECTs by server: %v", d)
	if d[cluster.Primary.Name] != 0 {
		t.Errorf("primary ran %d plain reads, want 0", d[cluster.Primary.Name])
	}
	for _, r := range cluster.Replicas {
		if d[r.Name] < reads/5 {
			t.Errorf("replica %s ran %d of %d reads: reads are not spread", r.Name, d[r.Name], reads)
		}
	}
	if d[cluster.Replicas[0].Name]+d[cluster.Replicas[1].Name] < reads {
		t.Errorf("replicas ran %v, want all %d reads", d, reads)
	}
}

func serverIDs(t *testing.T, db *sql.DB, q string, n int) map[int]int {
	t.Helper()
	seen := map[int]int{}
	for range n {
		var id int
		if err := db.QueryRow(q).Scan(&id); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		seen[id]++
	}
	return seen
}

func replicaIDs() map[int]bool {
	ids := map[int]bool{}
	for _, r := range cluster.Replicas {
		ids[r.ServerID] = true
	}
	return ids
}

func TestHintsTransactionsAndWrites(t *testing.T) {
	setupRoutingTable(t)
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info"})
	db := appDB(t, p, "")

	// A replica hint on a read: both replicas answer, never the primary.
	seen := serverIDs(t, db, "/* switchyard:route=replica */ SELECT @@server_id", 40)
	if len(seen) != 2 || seen[cluster.Primary.ServerID] != 0 {
		t.Fatalf("replica-hinted reads ran on server ids %v, want both replicas only", seen)
	}
	// @@server_id differs per server: unhinted, it is answered by the primary.
	if seen := serverIDs(t, db, "SELECT @@server_id", 5); seen[cluster.Primary.ServerID] != 5 {
		t.Fatalf("unhinted SELECT @@server_id ran on %v, want the primary", seen)
	}
	// A replica hint on a write is ignored: writes only go to the primary
	// (a replica would refuse it: read_only).
	if _, err := db.Exec("/* switchyard:route=replica */ UPDATE route_t SET v = 'uno' WHERE id = 1"); err != nil {
		t.Fatalf("replica-hinted write: %v", err)
	}

	// A read-write transaction runs wholly on the primary, hints or not.
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		var id int
		if err := tx.QueryRow("/* switchyard:route=replica */ SELECT @@server_id").Scan(&id); err != nil {
			t.Fatal(err)
		}
		if id != cluster.Primary.ServerID {
			t.Fatalf("read inside a transaction ran on server %d, want the primary %d", id, cluster.Primary.ServerID)
		}
	}
	if _, err := tx.Exec("UPDATE route_t SET v = 'dos' WHERE id = 2"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}

	// A READ ONLY transaction runs on one replica from start to end. A new
	// session: this one wrote, so read-your-writes keeps its reads on the
	// primary.
	conn, err := appDB(t, p, "").Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	if _, err := conn.ExecContext(ctx, "START TRANSACTION READ ONLY"); err != nil {
		t.Fatal(err)
	}
	var first int
	for i := range 5 {
		var id int
		if err := conn.QueryRowContext(ctx, "SELECT @@server_id").Scan(&id); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = id
		}
		if !replicaIDs()[id] || id != first {
			t.Fatalf("read-only transaction statement %d ran on server %d (first %d); want one replica throughout", i, id, first)
		}
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}

	// autocommit=0: every statement opens or continues a transaction, so
	// the session stays on the primary.
	if _, err := conn.ExecContext(ctx, "SET autocommit = 0"); err != nil {
		t.Fatal(err)
	}
	var id int
	if err := conn.QueryRowContext(ctx, "/* switchyard:route=replica */ SELECT @@server_id").Scan(&id); err != nil || id != cluster.Primary.ServerID {
		t.Fatalf("autocommit=0 read ran on %d (%v), want the primary", id, err)
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
}

func TestQueryRulesAndReadsPrimary(t *testing.T) {
	setupRoutingTable(t)
	enableUserStats(t)
	rules := `query_rules:
  - name: ids-to-replicas
    match: '(?i)server_id'
    route: replica
  - name: route_t-to-primary
    match: '(?i)^\s*select .* from route_t'
    route: primary
  - name: no-drop
    match: '(?i)^\s*drop\s+table'
    error: "DROP is not allowed through the proxy"
`
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", ExtraYAML: rules})
	db := appDB(t, p, "")
	seen := serverIDs(t, db, "SELECT @@server_id", 20)
	if seen[cluster.Primary.ServerID] != 0 || len(seen) == 0 {
		t.Fatalf("rule-routed reads ran on %v, want replicas only", seen)
	}
	before := selectCounts(t)
	for range 20 {
		var v string
		if err := db.QueryRow("SELECT v FROM route_t WHERE id = 3").Scan(&v); err != nil {
			t.Fatal(err)
		}
	}
	d := settledDelta(t, before, cluster.Primary.Name, 20)
	if d[cluster.Primary.Name] != 20 {
		t.Fatalf("rule route=primary: SELECTs by server %v, want 20 on the primary", d)
	}
	_, err := db.Exec("DROP TABLE route_t")
	assertMySQLError(t, err, 1105, "HY000")
	if !strings.Contains(err.Error(), "DROP is not allowed through the proxy") {
		t.Fatalf("error rule message: %v", err)
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM route_t").Scan(&n); err != nil || n != 3 {
		t.Fatalf("table after the refused DROP: %d rows (%v)", n, err)
	}

	// routing.reads: primary turns the split off.
	p2 := startProxy(t, harness.ProxyOptions{LogLevel: "info", ExtraYAML: "routing:\n  reads: primary\n"})
	db2 := appDB(t, p2, "")
	before = selectCounts(t)
	for range 30 {
		var v string
		if err := db2.QueryRow("SELECT v FROM route_t WHERE id = 1").Scan(&v); err != nil {
			t.Fatal(err)
		}
	}
	d = settledDelta(t, before, cluster.Primary.Name, 30)
	if d[cluster.Primary.Name] != 30 {
		t.Fatalf("reads: primary: SELECTs by server %v, want all 30 on the primary", d)
	}
}

func TestReadYourWrites(t *testing.T) {
	setupRoutingTable(t)
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info"})
	db := appDB(t, p, "")
	db.SetMaxOpenConns(1)
	// Make the replicas lag so a stale read would show.
	for _, r := range cluster.Replicas {
		if err := r.Exec(context.Background(), "STOP SLAVE SQL_THREAD"); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		for _, r := range cluster.Replicas {
			_ = r.Exec(context.Background(), "START SLAVE SQL_THREAD")
		}
		_ = cluster.WaitReplicasCaughtUp(context.Background())
	}()
	marker := fmt.Sprintf("ryw-%d", time.Now().UnixNano())
	if _, err := db.Exec("UPDATE route_t SET v = ? WHERE id = 3", marker[:20]); err != nil {
		t.Fatal(err)
	}
	var v string
	if err := db.QueryRow("SELECT v FROM route_t WHERE id = 3").Scan(&v); err != nil || v != marker[:20] {
		t.Fatalf("read after own write saw %q (%v), want %q", v, err, marker[:20])
	}
}

// TestReadRetriedOnBrokenReplicaConnection kills the session's replica
// connections from the server side: the next reads must succeed anyway, on
// another server, without the client seeing an error.
func TestReadRetriedOnBrokenReplicaConnection(t *testing.T) {
	setupRoutingTable(t)
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info"})
	db := appDB(t, p, "")
	db.SetMaxOpenConns(1)
	for range 10 { // open connections to both replicas
		var v string
		if err := db.QueryRow("SELECT v FROM route_t WHERE id = 1").Scan(&v); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	killed := 0
	for _, r := range cluster.Replicas {
		rdb, err := r.DB(ctx)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := rdb.Query("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ?", cluster.AppUser)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for rows.Next() {
			var id int64
			_ = rows.Scan(&id)
			ids = append(ids, id)
		}
		rows.Close()
		for _, id := range ids {
			if _, err := rdb.Exec(fmt.Sprintf("KILL CONNECTION %d", id)); err == nil {
				killed++
			}
		}
		rdb.Close()
	}
	if killed == 0 {
		t.Fatal("no replica connection of the session to kill")
	}
	for i := range 10 {
		var v string
		if err := db.QueryRow("SELECT v FROM route_t WHERE id = 2").Scan(&v); err != nil {
			t.Fatalf("read %d after its replica connections were killed: %v", i, err)
		}
	}
}

func TestFallbackToPrimaryAndWeights(t *testing.T) {
	setupRoutingTable(t)
	enableUserStats(t)
	primaryOnly := []*harness.Server{cluster.Primary}

	// No replica at all: reads fall back to the primary by default...
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", Servers: primaryOnly})
	var v string
	if err := appDB(t, p, "").QueryRow("SELECT v FROM route_t WHERE id = 1").Scan(&v); err != nil {
		t.Fatalf("read with no replica and fallback on: %v", err)
	}
	// ...and are refused with a clear error when fallback_to_primary is off.
	p2 := startProxy(t, harness.ProxyOptions{LogLevel: "info", Servers: primaryOnly, ExtraYAML: "routing:\n  fallback_to_primary: false\n"})
	db2 := appDB(t, p2, "")
	err := db2.QueryRow("SELECT v FROM route_t WHERE id = 1").Scan(&v)
	assertMySQLError(t, err, 1105, "HY000")
	if !strings.Contains(err.Error(), "fallback_to_primary") {
		t.Fatalf("error does not say why: %v", err)
	}
	// Writes still work there.
	if _, err := db2.Exec("UPDATE route_t SET v = 'one' WHERE id = 1"); err != nil {
		t.Fatalf("write with fallback off: %v", err)
	}

	// weighted_random with weight 0 on one replica: it gets no reads.
	servers := fmt.Sprintf("servers:\n  - name: %s\n    address: %s\n  - name: %s\n    address: %s\n    weight: 0\n  - name: %s\n    address: %s\n",
		cluster.Primary.Name, cluster.Primary.Addr(), cluster.Replicas[0].Name, cluster.Replicas[0].Addr(), cluster.Replicas[1].Name, cluster.Replicas[1].Addr())
	p3 := startProxy(t, harness.ProxyOptions{LogLevel: "info", ExtraYAML: servers + "routing:\n  balance: weighted_random\n"})
	db3 := appDB(t, p3, "")
	before := selectCounts(t)
	for range 40 {
		if err := db3.QueryRow("SELECT v FROM route_t WHERE id = 2").Scan(&v); err != nil {
			t.Fatal(err)
		}
	}
	d := settledDelta(t, before, cluster.Replicas[1].Name, 40)
	if d[cluster.Replicas[0].Name] != 0 || d[cluster.Replicas[1].Name] != 40 {
		t.Fatalf("weighted_random with weight 0 on %s: SELECTs by server %v, want all 40 on %s",
			cluster.Replicas[0].Name, d, cluster.Replicas[1].Name)
	}
}

// TestReadYourWritesByGTID: after a write, a session's reads go to the
// primary only until the replicas report (through the monitor) that they
// have applied the session's GTID; then they spread over the replicas again,
// and always see the write.
func TestReadYourWritesByGTID(t *testing.T) {
	setupRoutingTable(t)
	enableUserStats(t)
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", ExtraYAML: "monitor:\n  interval: 200ms\n"})
	db := appDB(t, p, "interpolateParams=true")
	db.SetMaxOpenConns(1)
	marker := fmt.Sprintf("g%d", time.Now().UnixNano()%1e9)
	if _, err := db.Exec("UPDATE route_t SET v = ? WHERE id = 2", marker); err != nil {
		t.Fatal(err)
	}
	var v string
	if err := db.QueryRow("SELECT v FROM route_t WHERE id = 2").Scan(&v); err != nil || v != marker {
		t.Fatalf("read right after the write: %q (%v), want %q", v, err, marker)
	}
	// Once the monitor has seen the replicas apply the write, reads spread
	// over them again, still seeing it.
	eventually(t, 10*time.Second, "reads to return to the replicas after the write", func() bool {
		before := selectCounts(t)
		for range 10 {
			if err := db.QueryRow("SELECT v FROM route_t WHERE id = 2").Scan(&v); err != nil || v != marker {
				t.Fatalf("read after the write: %q (%v), want %q", v, err, marker)
			}
		}
		d := delta(selectCounts(t), before)
		return d[cluster.Primary.Name] == 0
	})
}

// TestWarningsOfAReplicaRead: SHOW WARNINGS after a read lists the
// read's warnings, though the read ran on a replica and SHOW WARNINGS, by
// itself, would go to the primary: the session keeps the read's
// connection until its next statement when the read left warnings (or
// failed). Before, SHOW WARNINGS ran on a primary connection and listed
// nothing; mysqli's get_warnings() and the mariadb CLI's warnings read
// them this way.
func TestWarningsOfAReplicaRead(t *testing.T) {
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info"})
	ctx := context.Background()
	c, err := appDB(t, p, "").Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var level, msg string
	var code int
	if _, err := c.ExecContext(ctx, "SELECT 1/0 AS q"); err != nil {
		t.Fatal(err)
	}
	if err := c.QueryRowContext(ctx, "SHOW WARNINGS").Scan(&level, &code, &msg); err != nil || code != 1365 {
		t.Fatalf("SHOW WARNINGS after SELECT 1/0: %s %d %q (%v), want the division by zero", level, code, msg, err)
	}
	// A failed read's error is listed too.
	if _, err := c.ExecContext(ctx, "SELECT * FROM no_such_table_warnings"); err == nil {
		t.Fatal("a read of a missing table succeeded")
	}
	if err := c.QueryRowContext(ctx, "SHOW WARNINGS").Scan(&level, &code, &msg); err != nil || code != 1146 {
		t.Fatalf("SHOW WARNINGS after a failed read: %s %d %q (%v), want error 1146", level, code, msg, err)
	}
}
