package integration

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"switchyard/integration/harness"
)

// maxServerSessions samples, on every server directly, how many sessions
// the app user has, and remembers the highest count per server until stop.
// It runs on its own goroutine, so it reports problems with t.Error, never
// t.Fatal, and always returns.
func maxServerSessions(t *testing.T, stop <-chan struct{}) map[string]int {
	ctx := context.Background()
	dbs := map[string]*sql.DB{}
	for _, s := range cluster.Servers() {
		db, err := s.DB(ctx)
		if err != nil {
			t.Errorf("sampling sessions on %s: %v", s.Name, err)
			continue
		}
		defer db.Close()
		dbs[s.Name] = db
	}
	peak := map[string]int{}
	for {
		for name, db := range dbs {
			var n int
			if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = ?", cluster.AppUser).Scan(&n); err == nil && n > peak[name] {
				peak[name] = n
			}
		}
		select {
		case <-stop:
			return peak
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestManyIdleClientsShareFewServerConnections opens 1000 client
// connections that run autocommit point selects now and then: the servers
// see only as many connections as statements run at once.
func TestManyIdleClientsShareFewServerConnections(t *testing.T) {
	setupRoutingTable(t)
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", ExtraYAML: "limits:\n  max_client_connections: 2000\n"})
	db := appDB(t, p, "interpolateParams=true")
	db.SetMaxIdleConns(1000)
	db.SetMaxOpenConns(1000)
	ctx := context.Background()
	conns := make([]*sql.Conn, 1000)
	for i := range conns {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		if err := c.PingContext(ctx); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		conns[i] = c
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	stop := make(chan struct{})
	peakCh := make(chan map[string]int)
	go func() { peakCh <- maxServerSessions(t, stop) }()

	var queries, failures atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(2 * time.Second)
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for time.Now().Before(deadline) {
				// Each worker owns every 32nd client: a connection serves
				// one statement at a time.
				c := conns[(r.IntN(len(conns)/32))*32+w]
				var v string
				if err := c.QueryRowContext(ctx, "SELECT v FROM route_t WHERE id = ?", r.IntN(3)+1).Scan(&v); err != nil {
					failures.Add(1)
					t.Error(err)
					return
				}
				queries.Add(1)
			}
		}()
	}
	wg.Wait()
	close(stop)
	peak := <-peakCh
	t.Logf("%d point selects over 1000 clients; peak server sessions: %v", queries.Load(), peak)
	if failures.Load() > 0 || queries.Load() < 100 {
		t.Fatalf("%d queries, %d failures", queries.Load(), failures.Load())
	}
	for name, n := range peak {
		if n > 64 {
			t.Errorf("server %s had %d sessions for 1000 clients; want at most 64", name, n)
		}
	}
}

// TestSessionStateStaysPrivateUnderMultiplexing interleaves clients with
// different session state over shared server connections: each must only
// ever see its own.
func TestSessionStateStaysPrivateUnderMultiplexing(t *testing.T) {
	if err := cluster.Primary.Exec(context.Background(), "CREATE DATABASE IF NOT EXISTS other"); err != nil {
		t.Fatal(err)
	}
	if err := cluster.WaitReplicasCaughtUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info"})
	type profile struct {
		schema, sqlMode, tz, charset string
	}
	profiles := []profile{
		{"shop", "ANSI_QUOTES", "+01:00", "latin1"},
		{"other", "STRICT_TRANS_TABLES", "-05:00", "utf8mb4"},
		{"shop", "", "+09:30", "utf8mb3"},
	}
	ctx := context.Background()
	var conns []*sql.Conn
	for i, pr := range profiles {
		db := appDB(t, p, "")
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for _, q := range []string{
			"USE " + pr.schema,
			fmt.Sprintf("SET sql_mode = '%s'", pr.sqlMode),
			fmt.Sprintf("SET time_zone = '%s'", pr.tz),
			"SET NAMES " + pr.charset,
		} {
			if _, err := c.ExecContext(ctx, q); err != nil {
				t.Fatalf("client %d: %s: %v", i, q, err)
			}
		}
		conns = append(conns, c)
	}
	for round := range 2100 {
		i := round % len(profiles)
		if round%7 == 3 {
			i = (round / 7) % len(profiles)
		}
		pr := profiles[i]
		var schema, mode, tz, cs string
		err := conns[i].QueryRowContext(ctx, "SELECT DATABASE(), @@sql_mode, @@time_zone, @@character_set_client").Scan(&schema, &mode, &tz, &cs)
		if err != nil {
			t.Fatalf("round %d client %d: %v", round, i, err)
		}
		if schema != pr.schema || mode != pr.sqlMode || tz != pr.tz || cs != pr.charset {
			t.Fatalf("round %d: client %d sees schema=%q sql_mode=%q time_zone=%q charset=%q; want %+v", round, i, schema, mode, tz, cs, pr)
		}
	}
}

// TestPinnedStateSurvivesOtherClients keeps a temporary table and user
// variables in one session while other sessions churn through the pool.
func TestPinnedStateSurvivesOtherClients(t *testing.T) {
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info"})
	ctx := context.Background()
	c, err := appDB(t, p, "").Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, q := range []string{"CREATE TEMPORARY TABLE tmp_pin (id INT)", "INSERT INTO tmp_pin VALUES (1),(2)", "SET @counter = 10"} {
		if _, err := c.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	others := appDB(t, p, "")
	others.SetMaxOpenConns(8)
	for i := range 50 {
		var one int
		if err := others.QueryRow("SELECT 1").Scan(&one); err != nil {
			t.Fatal(err)
		}
		var n, counter int
		if err := c.QueryRowContext(ctx, "SELECT COUNT(*), @counter FROM tmp_pin").Scan(&n, &counter); err != nil || n != 2 || counter != 10+i {
			t.Fatalf("round %d: temp table rows %d, @counter %d (%v); want 2, %d", i, n, counter, err, 10+i)
		}
		if _, err := c.ExecContext(ctx, "SET @counter = @counter + 1"); err != nil {
			t.Fatal(err)
		}
	}
}

func TestConnectionLimits(t *testing.T) {
	users := fmt.Sprintf("users:\n  - name: %s\n    password: %s\n    default_schema: %s\n    max_connections: 2\n",
		cluster.AppUser, cluster.AppPassword, cluster.Database)
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", ExtraYAML: users})
	db := appDB(t, p, "")
	ctx := context.Background()
	c1, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Conn(ctx)
	assertMySQLError(t, err, 1203, "42000")
	c1.Close()
	c2.Close()
	db.Close()
	// Closing frees the user's slots.
	if err := appDB(t, p, "").Ping(); err != nil {
		t.Fatalf("login after the others left: %v", err)
	}
}

// scanConcurrently runs q from n goroutines at once, scanning one integer,
// and returns their errors.
func scanConcurrently(db *sql.DB, n int, q string) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var x int
			errs[i] = db.QueryRow(q).Scan(&x)
		}()
	}
	wg.Wait()
	return errs
}

func TestServerConnectionCapQueuesThenFails(t *testing.T) {
	var servers string
	for _, s := range cluster.Servers() {
		servers += fmt.Sprintf("  - name: %s\n    address: %s\n    max_connections: 1\n", s.Name, s.Addr())
	}
	extra := "servers:\n" + servers + "limits:\n  connect_timeout: 5s\n"
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", ExtraYAML: extra})
	db := appDB(t, p, "")
	db.SetMaxOpenConns(6)

	// Six clients each hold a replica for 200 ms; with one connection per
	// replica they queue, and all finish within the wait limit.
	stop := make(chan struct{})
	peakCh := make(chan map[string]int)
	go func() { peakCh <- maxServerSessions(t, stop) }()
	errs := scanConcurrently(db, 6, "SELECT SLEEP(0.2)")
	close(stop)
	for _, err := range errs {
		if err != nil {
			t.Fatalf("queued read: %v", err)
		}
	}
	peak := <-peakCh
	for name, n := range peak {
		if n > 1 {
			t.Errorf("server %s had %d sessions with max_connections 1", name, n)
		}
	}

	// A wait longer than limits.connect_timeout ends in error 1040.
	p2 := startProxy(t, harness.ProxyOptions{LogLevel: "info", ExtraYAML: "servers:\n" + servers + "limits:\n  connect_timeout: 300ms\n"})
	db2 := appDB(t, p2, "")
	db2.SetMaxOpenConns(4)
	full := 0
	for _, err := range scanConcurrently(db2, 4, "SELECT SLEEP(1)") {
		if err != nil {
			assertMySQLError(t, err, 1040, "08004")
			full++
		}
	}
	if full == 0 {
		t.Fatal("four 1 s reads on two single-connection replicas with a 300 ms wait: none was refused")
	}
}

// TestPreparedStatementsUnderMultiplexing runs go-sql-driver's server-side
// prepared statements (interpolateParams=false) from many sessions that
// share server connections: reads spread over the replicas, writes go to
// the primary, every answer is right.
func TestPreparedStatementsUnderMultiplexing(t *testing.T) {
	setupRoutingTable(t)
	enableUserStats(t)
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info"})
	db := appDB(t, p, "interpolateParams=false")
	db.SetMaxOpenConns(16)
	stmt, err := db.Prepare("SELECT v FROM route_t WHERE id = ?")
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	before := selectCounts(t)
	want := map[int]string{}
	for id := 1; id <= 3; id++ {
		var v string
		if err := db.QueryRow("/* switchyard:route=primary */ SELECT v FROM route_t WHERE id = ?", id).Scan(&v); err != nil {
			t.Fatal(err)
		}
		want[id] = v
	}
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 30 {
				id := (w+i)%3 + 1
				var v string
				if err := stmt.QueryRow(id).Scan(&v); err != nil {
					t.Error(err)
					return
				}
				if v != want[id] {
					t.Errorf("id %d: got %q, want %q", id, v, want[id])
					return
				}
			}
		}()
	}
	wg.Wait()
	d := delta(selectCounts(t), before)
	t.Logf("SELECTs by server: %v", d)
	if d[cluster.Replicas[0].Name] == 0 || d[cluster.Replicas[1].Name] == 0 {
		t.Errorf("prepared reads did not spread over both replicas: %v", d)
	}
	// A prepared write goes to the primary (a replica would refuse it).
	ins, err := db.Prepare("UPDATE route_t SET v = ? WHERE id = ?")
	if err != nil {
		t.Fatal(err)
	}
	defer ins.Close()
	if _, err := ins.Exec("three", 3); err != nil {
		t.Fatalf("prepared write: %v", err)
	}
}

// TestSysbenchReadWritePrepared runs sysbench oltp_read_write with server
// prepared statements and 64 threads through the proxy: no errors.
func TestSysbenchReadWritePrepared(t *testing.T) {
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info"})
	host, port, _ := strings.Cut(p.Addr(), ":")
	args := []string{"--db-driver=mysql", "--mysql-host=" + host, "--mysql-port=" + port,
		"--mysql-user=" + cluster.AppUser, "--mysql-password=" + cluster.AppPassword, "--mysql-db=" + cluster.Database,
		"--tables=4", "--table-size=10000", "--db-ps-mode=auto"}
	run := func(extra ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "sysbench", append(append([]string{"oltp_read_write"}, args...), extra...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("sysbench %v: %v\n%s", extra, err, out)
		}
		return string(out)
	}
	run("cleanup")
	run("prepare")
	// sysbench's default --mysql-ignore-errors retries InnoDB deadlocks
	// (1213), which 64 threads on small tables meet through any path;
	// any other error stops the run and fails it.
	out := run("--threads=64", "--time=5", "run")
	if !strings.Contains(out, "reconnects:                          0") {
		t.Fatalf("sysbench reconnected:\n%s", out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "ignored errors:") {
			t.Log(strings.TrimSpace(line))
		}
	}
	var tps float64
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "transactions:") {
			fmt.Sscanf(line[strings.Index(line, "(")+1:], "%f", &tps)
		}
	}
	t.Logf("oltp_read_write, prepared, 64 threads: %.0f transactions/s", tps)
	if tps <= 0 {
		t.Fatalf("no transactions:\n%s", out)
	}
	run("cleanup")
}

// TestOKPacketsForClientsWithoutSessionTracking: server connections track
// session state; PHP's mysqlnd does not ask for it, so the proxy rewrites
// OK packets for it. The UPDATE info string must arrive intact.
func TestOKPacketsForClientsWithoutSessionTracking(t *testing.T) {
	setupRoutingTable(t)
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info"})
	host, port, _ := strings.Cut(p.Addr(), ":")
	script := `$m = new mysqli($argv[1], $argv[3], $argv[4], $argv[5], (int)$argv[2]);
$m->query("UPDATE route_t SET v = v WHERE id IN (1, 2)");
echo $m->affected_rows, "|", $m->info, "|";
$m->query("SET time_zone = '+02:00'");
echo $m->query("SELECT @@time_zone")->fetch_row()[0];`
	out, err := exec.Command("php", "-r", script, "--", host, port, cluster.AppUser, cluster.AppPassword, cluster.Database).CombinedOutput()
	if err != nil {
		t.Fatalf("php: %v\n%s", err, out)
	}
	if got, want := string(out), "0|Rows matched: 2  Changed: 0  Warnings: 0|+02:00"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestCompressedClients: clients that ask for the compressed protocol get
// it, for small and large results, from go-sql-driver and the mariadb CLI.
func TestCompressedClients(t *testing.T) {
	setupRoutingTable(t)
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info"})
	db := appDB(t, p, "compress=true")
	db.SetMaxOpenConns(2)
	var v string
	if err := db.QueryRow("SELECT v FROM route_t WHERE id = ?", 2).Scan(&v); err != nil {
		t.Fatalf("compressed prepared read: %v", err)
	}
	var n int
	var big string
	if err := db.QueryRow("SELECT COUNT(*), REPEAT('z', 3000000) FROM seq_1_to_1000").Scan(&n, &big); err != nil || n != 1000 || len(big) != 3000000 {
		t.Fatalf("compressed large row: %d, %d bytes, %v", n, len(big), err)
	}
	if _, err := db.Exec("UPDATE route_t SET v = ? WHERE id = ?", "two", 2); err != nil {
		t.Fatalf("compressed write: %v", err)
	}
	out, err := mariadbCLI(t, p, cluster.AppUser, cluster.AppPassword, "--compress", cluster.Database, "-e", "SELECT COUNT(*) AS c FROM seq_1_to_50000")
	if err != nil || !strings.Contains(out, "50000") {
		t.Fatalf("mariadb --compress: %v\n%s", err, out)
	}

	// The Compression status is the client's connection's, as a server
	// would show it, not that of the proxy's (uncompressed) server
	// connection (mtr's compress), in SHOW STATUS and SESSION_STATUS, as
	// text and prepared.
	plain := appDB(t, p, "")
	for _, q := range []string{
		"SHOW STATUS LIKE 'Compression'",
		"SELECT * FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'COMPRESSION'",
	} {
		for _, tc := range []struct {
			db   *sql.DB
			want string
		}{{db, "ON"}, {plain, "OFF"}} {
			var name, value string
			if err := tc.db.QueryRow(q).Scan(&name, &value); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			if value != tc.want {
				t.Errorf("%s: %s, want %s", q, value, tc.want)
			}
			stmt, err := tc.db.Prepare(q)
			if err != nil {
				t.Fatal(err)
			}
			err = stmt.QueryRow().Scan(&name, &value)
			stmt.Close()
			if err != nil {
				t.Fatalf("%s prepared: %v", q, err)
			}
			if value != tc.want {
				t.Errorf("%s prepared: %s, want %s", q, value, tc.want)
			}
		}
	}
}

// TestPinsEndWithTheirState: a temporary table pins the session to the
// primary; dropping it frees the session to use replicas again.
func TestPinsEndWithTheirState(t *testing.T) {
	setupRoutingTable(t)
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info"})
	ctx := context.Background()
	c, err := appDB(t, p, "").Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	id := func() int {
		var v int
		if err := c.QueryRowContext(ctx, "/* switchyard:route=replica */ SELECT @@server_id").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	steps := []struct {
		stmt   string // run before reading @@server_id; "" runs nothing
		pinned bool   // the read must then go to the primary
	}{
		{"", false},
		{"CREATE TEMPORARY TABLE pin_t (id INT)", true},
		{"DROP TEMPORARY TABLE pin_t", false},
		{"LOCK TABLES route_t READ", true},
		{"UNLOCK TABLES", false},
	}
	for _, st := range steps {
		if st.stmt != "" {
			if _, err := c.ExecContext(ctx, st.stmt); err != nil {
				t.Fatalf("%s: %v", st.stmt, err)
			}
		}
		v := id()
		if st.pinned && v != cluster.Primary.ServerID || !st.pinned && !replicaIDs()[v] {
			t.Fatalf("after %q: replica-hinted read ran on server %d; pinned=%v expected", st.stmt, v, st.pinned)
		}
	}
}

// TestMultiplexingOff: with pool.multiplexing false every session keeps its
// own server connection, as a plain connection-per-client proxy.
func TestMultiplexingOff(t *testing.T) {
	setupRoutingTable(t)
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", ExtraYAML: "pool:\n  multiplexing: false\n"})
	before := serverConnections(t, cluster.AppUser)
	db := appDB(t, p, "")
	db.SetMaxIdleConns(10)
	ctx := context.Background()
	var conns []*sql.Conn
	for i := range 10 {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// No pinning state: with multiplexing on, these sessions would
		// hold no server connection between statements.
		if _, err := c.ExecContext(ctx, fmt.Sprintf("SET time_zone = '+0%d:00'", i)); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	if n := serverConnections(t, cluster.AppUser); n < before+10 {
		t.Fatalf("%d sessions on the primary with 10 clients and multiplexing off, want at least %d", n, before+10)
	}
	for i, c := range conns {
		var tz string
		if err := c.QueryRowContext(ctx, "SELECT @@time_zone").Scan(&tz); err != nil || tz != fmt.Sprintf("+0%d:00", i) {
			t.Fatalf("client %d sees time_zone %q (%v)", i, tz, err)
		}
		c.Close()
	}
	db.Close()
	eventually(t, 10*time.Second, "the sessions' server connections to close", func() bool {
		return serverConnections(t, cluster.AppUser) <= before
	})
}
