package integration

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"switchyard/integration/harness"
)

// Failover, switchover and fencing, each on a cluster of its own: these
// tests kill and promote servers, which the shared cluster's other users
// could not survive.

// failoverMonitor is the setting: checks every 500 ms, a primary
// taken for dead after 3 failed checks in a row.
const failoverMonitor = "monitor:\n  interval: 500ms\n  timeout: 500ms\nfailover:\n  failure_threshold: 3\n"

// startOwnCluster starts a primary and two replicas for one test.
func startOwnCluster(t *testing.T, ctx context.Context, semiSync bool) *harness.Cluster {
	t.Helper()
	c, err := harness.StartCluster(ctx, harness.ClusterOptions{BaseDir: t.TempDir(), SemiSync: semiSync, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

// startOwnProxy starts switchyard in front of c, stopped at the test's end
// with its log checked for panics.
func startOwnProxy(t *testing.T, ctx context.Context, c *harness.Cluster, extraYAML string) *harness.Proxy {
	t.Helper()
	p, err := harness.StartProxy(ctx, harness.ProxyOptions{Binary: binary, Cluster: c, LogLevel: "info", ExtraYAML: extraYAML})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.Stop()
		if strings.Contains(p.Logs(), "panic") {
			t.Errorf("proxy log has a panic:\n%s", p.Logs())
		}
		if t.Failed() {
			t.Logf("proxy log tail:\n%s", p.LogTail(80))
		}
	})
	return p
}

// readOnly reads @@read_only of s directly.
func readOnly(ctx context.Context, s *harness.Server) (bool, error) {
	db, err := s.DB(ctx)
	if err != nil {
		return false, err
	}
	defer db.Close()
	var ro int
	err = db.QueryRowContext(ctx, "SELECT @@read_only").Scan(&ro)
	return ro == 1, err
}

// waitPromoted waits for one server other than old to be writable and
// returns it, with the others.
func waitPromoted(t *testing.T, ctx context.Context, c *harness.Cluster, old *harness.Server) (*harness.Server, []*harness.Server) {
	t.Helper()
	var primary *harness.Server
	eventually(t, 30*time.Second, "a replica to be promoted (read_only=OFF)", func() bool {
		for _, s := range c.Servers() {
			if s == old {
				continue
			}
			if ro, err := readOnly(ctx, s); err == nil && !ro {
				primary = s
				return true
			}
		}
		return false
	})
	var others []*harness.Server
	for _, s := range c.Servers() {
		if s != old && s != primary {
			if ro, err := readOnly(ctx, s); err != nil || !ro {
				t.Fatalf("%s: read_only=%v (%v) while %s was promoted: two writable servers", s.Name, ro, err, primary.Name)
			}
			others = append(others, s)
		}
	}
	return primary, others
}

// waitReplicating waits until replica r replicates from primary with both
// threads running.
func waitReplicating(t *testing.T, ctx context.Context, r, primary *harness.Server, timeout time.Duration) {
	t.Helper()
	var last map[string]string
	deadline := time.Now().Add(timeout)
	for {
		st, err := r.SlaveStatus(ctx)
		if err == nil && st != nil && st["Master_Port"] == strconv.Itoa(primary.Port) &&
			st["Slave_IO_Running"] == "Yes" && st["Slave_SQL_Running"] == "Yes" {
			return
		}
		last = st
		if time.Now().After(deadline) {
			t.Fatalf("%s does not replicate from %s after %v: %v (status %v)", r.Name, primary.Name, timeout, err, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// proxyEvents returns the proxy's log lines of topology events of kind.
func proxyEvents(p *harness.Proxy, kind string) []string {
	var out []string
	for _, l := range strings.Split(p.Logs(), "\n") {
		if strings.Contains(l, " event="+kind+" ") || strings.HasSuffix(l, " event="+kind) {
			out = append(out, l)
		}
	}
	return out
}

// writeLoad inserts rows through the proxy from several goroutines and
// remembers which inserts were acknowledged, and when.
type writeLoad struct {
	mu     sync.Mutex
	acked  []int64
	ackAt  []time.Time
	errs   []string
	failed atomic.Int64
	stop   chan struct{}
	wg     sync.WaitGroup
}

func startWrites(db *sql.DB, writers int) *writeLoad {
	w := &writeLoad{stop: make(chan struct{})}
	for i := range writers {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for n := int64(1); ; n++ {
				select {
				case <-w.stop:
					return
				default:
				}
				id := int64(i+1)*1_000_000 + n
				_, err := db.Exec("INSERT INTO fo_t (id, w) VALUES (?, ?)", id, i)
				w.mu.Lock()
				if err == nil {
					w.acked = append(w.acked, id)
					w.ackAt = append(w.ackAt, time.Now())
				} else {
					w.failed.Add(1)
					if len(w.errs) < 20 {
						w.errs = append(w.errs, err.Error())
					}
				}
				w.mu.Unlock()
				if err != nil {
					time.Sleep(20 * time.Millisecond) // no busy loop while nothing takes writes
				}
			}
		}()
	}
	return w
}

func (w *writeLoad) halt() {
	close(w.stop)
	w.wg.Wait()
}

// firstAckAfter is when the first write acknowledged after t was, if any.
func (w *writeLoad) firstAckAfter(t time.Time) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, at := range w.ackAt {
		if at.After(t) {
			return at, true
		}
	}
	return time.Time{}, false
}

func (w *writeLoad) ackedCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// readLoad runs plain reads (routed to replicas) through the proxy and
// counts the failures.
type readLoad struct {
	reads, failed atomic.Int64
	mu            sync.Mutex
	errs          []string
	stop          chan struct{}
	wg            sync.WaitGroup
}

func startReads(db *sql.DB) *readLoad {
	r := &readLoad{stop: make(chan struct{})}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			select {
			case <-r.stop:
				return
			default:
			}
			var n int
			if err := db.QueryRow("SELECT COUNT(*) FROM fo_t WHERE id < 10").Scan(&n); err != nil {
				r.failed.Add(1)
				r.mu.Lock()
				if len(r.errs) < 10 {
					r.errs = append(r.errs, err.Error())
				}
				r.mu.Unlock()
			} else {
				r.reads.Add(1)
			}
			time.Sleep(2 * time.Millisecond) // the machine is shared
		}
	}()
	return r
}

func (r *readLoad) halt() {
	close(r.stop)
	r.wg.Wait()
}

// rowsOn returns the ids of fo_t on s, read directly.
func rowsOn(t *testing.T, ctx context.Context, c *harness.Cluster, s *harness.Server) map[int64]bool {
	t.Helper()
	db, err := s.DB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "SELECT id FROM "+c.Database+".fo_t")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	ids := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids[id] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestFailoverPromotesReplicaUnderWrites kills -9 the primary of a
// semi-synchronous cluster while clients write and read through the
// proxy: a replica is promoted, writes resume on it, no acknowledged write
// is missing there, reads never fail, the other replica follows the new
// primary, and the old primary, restarted writable (MariaDB's default),
// is fenced (read_only=ON) and rejoins as a replica.
func TestFailoverPromotesReplicaUnderWrites(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := startOwnCluster(t, ctx, true)
	old := c.Primary
	if err := old.Exec(ctx, "CREATE TABLE "+c.Database+".fo_t (id BIGINT PRIMARY KEY, w INT)"); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReplicasCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	p := startOwnProxy(t, ctx, c, failoverMonitor)
	wdb, err := sql.Open("mysql", p.DSN(c.AppUser, c.AppPassword, c.Database, "interpolateParams=true"))
	if err != nil {
		t.Fatal(err)
	}
	defer wdb.Close()
	wdb.SetMaxOpenConns(4)
	rdb, err := sql.Open("mysql", p.DSN(c.AppUser, c.AppPassword, c.Database, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	eventually(t, 15*time.Second, "reads on both replicas", func() bool {
		seen := map[int]bool{}
		for range 12 {
			var id int
			if err := rdb.QueryRow("/* switchyard:route=replica */ SELECT @@server_id").Scan(&id); err != nil {
				t.Fatalf("replica read: %v", err)
			}
			seen[id] = true
		}
		return len(seen) == 2 && !seen[old.ServerID]
	})

	// A transaction left open on the primary when it dies, on a client of
	// its own: its session ends with its error.
	txdb, err := sql.Open("mysql", p.DSN(c.AppUser, c.AppPassword, c.Database, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer txdb.Close()
	tx, err := txdb.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("INSERT INTO fo_t (id, w) VALUES (98000000, -1)"); err != nil {
		t.Fatal(err)
	}
	writes := startWrites(wdb, 4)
	reads := startReads(rdb)
	eventually(t, 15*time.Second, "writes acknowledged before the kill", func() bool { return writes.ackedCount() >= 50 })
	old.Kill()
	killed := time.Now()
	var resumed time.Time
	eventually(t, 30*time.Second, "writes to be acknowledged again after the kill", func() bool {
		var ok bool
		resumed, ok = writes.firstAckAfter(killed)
		return ok
	})
	t.Logf("writes resumed %v after the kill -9 of %s (monitor interval 500ms, failure_threshold 3)", resumed.Sub(killed).Round(10*time.Millisecond), old.Name)
	time.Sleep(time.Second) // writes go on on the new primary
	// The open transaction ends with an error that says what became of it.
	cerr := tx.Commit()
	t.Logf("COMMIT of the transaction open on %s: %v", old.Name, cerr)
	if cerr == nil || !strings.Contains(cerr.Error(), "failed and was replaced by a failover") || !strings.Contains(cerr.Error(), "did not commit") {
		t.Errorf("COMMIT of a transaction open on the dead primary: %v", cerr)
	}
	writes.halt()
	reads.halt()
	t.Logf("%d writes acknowledged, %d failed (in flight at the kill, or before the proxy noticed): %q", writes.ackedCount(), writes.failed.Load(), writes.errs)
	t.Logf("%d reads, %d failed", reads.reads.Load(), reads.failed.Load())
	if reads.failed.Load() > 0 {
		t.Errorf("reads failed during the failover: %q", reads.errs)
	}

	primary, others := waitPromoted(t, ctx, c, old)
	t.Logf("%s was promoted", primary.Name)
	for _, r := range others {
		waitReplicating(t, ctx, r, primary, 30*time.Second)
	}
	c.Primary, c.Replicas = primary, others
	if err := c.WaitReplicasCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	have := rowsOn(t, ctx, c, primary)
	if have[98000000] {
		t.Errorf("the transaction open on the dead primary was committed on %s", primary.Name)
	}
	var missing []int64
	for _, id := range writes.acked {
		if !have[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d acknowledged writes are missing on the new primary %s: %v", len(missing), primary.Name, missing[:min(len(missing), 20)])
	}
	t.Logf("all %d acknowledged writes are on %s", len(writes.acked), primary.Name)
	for _, ev := range []string{"failover_started", "promoted", "failover_done"} {
		if len(proxyEvents(p, ev)) == 0 {
			t.Errorf("no %s event in the proxy log", ev)
		}
	}
	for _, l := range proxyEvents(p, "promoted") {
		t.Logf("promotion: %s", l)
	}

	// The old primary restarts writable, as MariaDB does unless told
	// otherwise; a crashed semi-synchronous primary restarts with
	// init_rpl_role=SLAVE, which drops from its binlog the transaction no
	// replica acknowledged (it was never acknowledged to a client either).
	old.StartArgs = append(old.StartArgs, "--init-rpl-role=SLAVE")
	if err := old.Start(ctx); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	waitReplicating(t, ctx, old, primary, 30*time.Second)
	t.Logf("%s rejoined as a replica of %s %v after its restart", old.Name, primary.Name, time.Since(restarted).Round(10*time.Millisecond))
	if ro, err := readOnly(ctx, old); err != nil || !ro {
		t.Fatalf("%s after rejoining: read_only=%v, %v", old.Name, ro, err)
	}
	// Writes through the proxy land on the new primary and reach every
	// replica, the old primary included.
	if _, err := wdb.Exec("INSERT INTO fo_t (id, w) VALUES (?, ?)", 99_000_000, -1); err != nil {
		t.Fatalf("write after the rejoin: %v", err)
	}
	c.Replicas = append(others, old)
	if err := c.WaitReplicasCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	if !rowsOn(t, ctx, c, old)[99_000_000] {
		t.Fatalf("the write after the rejoin did not reach %s", old.Name)
	}
	// The monitor sees it replicate at its next check.
	eventually(t, 10*time.Second, "the rejoined event", func() bool { return len(proxyEvents(p, "rejoined")) > 0 })
}

// TestFailoverHoldsOutOldPrimaryWithErrantTransaction: the old primary
// committed a transaction no replica received; after the failover it comes
// back writable and is fenced (read_only=ON), and since its history is not
// a prefix of the new primary's it is held OFFLINE_HARD with an event
// naming the errant transaction instead of rejoining.
func TestFailoverHoldsOutOldPrimaryWithErrantTransaction(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := startOwnCluster(t, ctx, false)
	old := c.Primary
	if err := old.Exec(ctx, "CREATE TABLE "+c.Database+".fo_t (id BIGINT PRIMARY KEY, w INT)"); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReplicasCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	p := startOwnProxy(t, ctx, c, "monitor:\n  interval: 200ms\n  timeout: 500ms\n")
	db := appDB(t, p, "")
	if _, err := db.Exec("INSERT INTO fo_t VALUES (1, 1)"); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReplicasCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	// The replicas stop receiving; the primary commits one more
	// transaction, which only it will ever have, and dies.
	for _, r := range c.Replicas {
		if err := r.Exec(ctx, "STOP SLAVE IO_THREAD"); err != nil {
			t.Fatal(err)
		}
	}
	if err := old.Exec(ctx, "INSERT INTO "+c.Database+".fo_t VALUES (2, 2)"); err != nil {
		t.Fatal(err)
	}
	var errant string
	{
		odb, err := old.DB(ctx)
		if err != nil {
			t.Fatal(err)
		}
		err = odb.QueryRowContext(ctx, "SELECT @@gtid_binlog_pos").Scan(&errant)
		odb.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	old.Kill()
	primary, others := waitPromoted(t, ctx, c, old)
	for _, r := range others {
		waitReplicating(t, ctx, r, primary, 30*time.Second)
	}
	// Writes through the proxy go to the new primary.
	eventually(t, 30*time.Second, "a write through the proxy", func() bool {
		_, err := db.Exec("INSERT INTO fo_t VALUES (3, 3)")
		return err == nil
	})

	if err := old.Start(ctx); err != nil { // writable: harness primaries restart with read_only=OFF
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the errant transaction to be reported", func() bool {
		return len(proxyEvents(p, "errant_transactions")) > 0
	})
	ev := proxyEvents(p, "errant_transactions")[0]
	t.Logf("%s", ev)
	if !strings.Contains(ev, "server="+old.Name) || !strings.Contains(ev, errant) {
		t.Fatalf("the event does not name %s and its errant transaction %s: %s", old.Name, errant, ev)
	}
	if ro, err := readOnly(ctx, old); err != nil || !ro {
		t.Fatalf("%s with an errant transaction: read_only=%v, %v; want it fenced", old.Name, ro, err)
	}
	if st, err := old.SlaveStatus(ctx); err != nil || (st != nil && st["Slave_SQL_Running"] == "Yes") {
		t.Fatalf("%s with an errant transaction replicates: %v, %v", old.Name, st, err)
	}
	if len(proxyEvents(p, "status")) == 0 || !strings.Contains(strings.Join(proxyEvents(p, "status"), "\n"), "OFFLINE_HARD") {
		t.Fatalf("%s was not held OFFLINE_HARD", old.Name)
	}
	// Nothing written through the proxy reaches the fenced server.
	if _, err := db.Exec("INSERT INTO fo_t VALUES (4, 4)"); err != nil {
		t.Fatalf("write with the old primary held out: %v", err)
	}
	if ids := rowsOn(t, ctx, c, old); ids[3] || ids[4] {
		t.Fatalf("writes through the proxy reached the fenced %s: %v", old.Name, ids)
	}
	if ids := rowsOn(t, ctx, c, primary); !ids[3] || !ids[4] || ids[2] {
		t.Fatalf("rows on the new primary %s: %v", primary.Name, ids)
	}
}

// TestTwoProxiesPromoteOnce: two switchyards in front of one cluster
// (failover.cooperative, the default) both see the primary die; exactly
// one promotes, and both then write to the new primary.
func TestTwoProxiesPromoteOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := startOwnCluster(t, ctx, false)
	old := c.Primary
	if err := old.Exec(ctx, "CREATE TABLE "+c.Database+".fo_t (id BIGINT PRIMARY KEY, w INT)"); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReplicasCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	const monitor = "monitor:\n  interval: 200ms\n  timeout: 500ms\n"
	proxies := []*harness.Proxy{startOwnProxy(t, ctx, c, monitor), startOwnProxy(t, ctx, c, monitor)}
	dbs := []*sql.DB{appDB(t, proxies[0], ""), appDB(t, proxies[1], "")}
	for i, db := range dbs {
		if _, err := db.Exec("INSERT INTO fo_t VALUES (?, 0)", i+1); err != nil {
			t.Fatal(err)
		}
	}
	old.Kill()
	primary, _ := waitPromoted(t, ctx, c, old)
	for i, db := range dbs {
		eventually(t, 30*time.Second, fmt.Sprintf("a write through proxy %d", i+1), func() bool {
			_, err := db.Exec("INSERT INTO fo_t VALUES (?, 1)", 100+i)
			return err == nil
		})
	}
	// Both proxies' monitors have seen it all by now; give a late one a
	// few intervals to (wrongly) promote too.
	time.Sleep(time.Second)
	promotions := 0
	for i, p := range proxies {
		evs := proxyEvents(p, "promoted")
		promotions += len(evs)
		t.Logf("proxy %d: %d promotions; events:\n%s", i+1, len(evs), strings.Join(append(proxyEvents(p, "failover_started"), append(evs, proxyEvents(p, "failover_followed")...)...), "\n"))
	}
	if promotions != 1 {
		t.Fatalf("%d promotions by two proxies, want exactly 1", promotions)
	}
	ids := rowsOn(t, ctx, c, primary)
	if !ids[100] || !ids[101] {
		t.Fatalf("writes through both proxies are not on the new primary %s: %v", primary.Name, ids)
	}
	writable := 0
	for _, s := range c.Servers() {
		if s == old {
			continue
		}
		if ro, err := readOnly(ctx, s); err == nil && !ro {
			writable++
		}
	}
	if writable != 1 {
		t.Fatalf("%d writable servers after the failover", writable)
	}
}

// TestSwitchoverUnderSysbench switches the primary over (SIGUSR2, until
// the admin interface's SWITCHOVER) while sysbench runs read-write
// transactions through the proxy: the transactions pause and go on on the
// new primary, none fails, and the old primary replicates from the new one.
func TestSwitchoverUnderSysbench(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := startOwnCluster(t, ctx, false)
	old := c.Primary
	p := startOwnProxy(t, ctx, c, "monitor:\n  interval: 200ms\n  timeout: 500ms\n")
	host, port, _ := strings.Cut(p.Addr(), ":")
	args := []string{"oltp_read_write", "--db-driver=mysql", "--mysql-host=" + host, "--mysql-port=" + port,
		"--mysql-user=" + c.AppUser, "--mysql-password=" + c.AppPassword, "--mysql-db=" + c.Database,
		"--tables=2", "--table-size=1000", "--db-ps-mode=auto",
		// Deadlocks between sysbench's own threads happen through any
		// path (InnoDB rolls the victim back and sysbench runs it again);
		// any other error fails the run.
		"--mysql-ignore-errors=1213"}
	sysbench := func(extra ...string) *exec.Cmd {
		return exec.CommandContext(ctx, "sysbench", append(append([]string(nil), args...), extra...)...)
	}
	if out, err := sysbench("prepare").CombinedOutput(); err != nil {
		t.Fatalf("sysbench prepare: %v\n%s", err, out)
	}
	if err := c.WaitReplicasCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	run := sysbench("--threads=4", "--time=8", "--report-interval=1", "run")
	var out strings.Builder
	run.Stdout, run.Stderr = &out, &out
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	asked := time.Now()
	if err := p.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the switchover to finish", func() bool { return len(proxyEvents(p, "switchover_done")) > 0 })
	t.Logf("switchover done %v after it was asked for: %s", time.Since(asked).Round(10*time.Millisecond), proxyEvents(p, "switchover_done")[0])
	err := run.Wait()
	t.Logf("sysbench:\n%s", out.String())
	if err != nil {
		t.Fatalf("sysbench failed during the switchover: %v", err)
	}
	text := out.String()
	if !strings.Contains(text, "reconnects:                          0") {
		t.Fatalf("sysbench reconnected during the switchover")
	}
	if m := regexp.MustCompile(`ignored errors:\s+(\d+)`).FindStringSubmatch(text); m != nil {
		t.Logf("deadlocks between sysbench's threads (retried by sysbench): %s", m[1])
	}
	primary, others := waitPromoted(t, ctx, c, old)
	for _, r := range others {
		waitReplicating(t, ctx, r, primary, 30*time.Second)
	}
	waitReplicating(t, ctx, old, primary, 30*time.Second)
	c.Primary, c.Replicas = primary, append(others, old)
	if err := c.WaitReplicasCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	// No acknowledged write lost: every server has the same rows.
	sums := map[string]string{}
	for _, s := range c.Servers() {
		db, err := s.DB(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var tbl, sum string
		err = db.QueryRowContext(ctx, "CHECKSUM TABLE "+c.Database+".sbtest1").Scan(&tbl, &sum)
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
		sums[s.Name] = sum
	}
	vals := make([]string, 0, len(sums))
	for _, v := range sums {
		vals = append(vals, v)
	}
	sort.Strings(vals)
	if vals[0] != vals[len(vals)-1] {
		t.Fatalf("servers differ after the switchover: %v", sums)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("test deadline")
	}
}

// TestAdminSwitchoverAndFailover: the admin interface's SWITCHOVER TO and
// FAILOVER change the primary, answer with its name, and writes through
// the proxy go to it.
func TestAdminSwitchoverAndFailover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := startOwnCluster(t, ctx, false)
	p := startOwnProxy(t, ctx, c, "monitor:\n  interval: 200ms\n  timeout: 500ms\n")
	db, err := sql.Open("mysql", p.DSN(c.AppUser, c.AppPassword, c.Database, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	writeLandsOn := func(want *harness.Server) {
		t.Helper()
		var id int
		if err := db.QueryRow("/* switchyard:route=primary */ SELECT @@server_id").Scan(&id); err != nil || id != want.ServerID {
			t.Fatalf("the primary through the proxy is server %d (%v), want %s (%d)", id, err, want.Name, want.ServerID)
		}
		if _, err := db.Exec("CREATE TABLE IF NOT EXISTS admin_sw (id INT)"); err != nil {
			t.Fatalf("a write after the change of primary: %v", err)
		}
	}
	old, target := c.Primary, c.Replicas[1]
	out, err := adminCLI(p, "admin", "admin", "SWITCHOVER TO '"+target.Name+"'")
	if err != nil || !strings.Contains(out, target.Name) {
		t.Fatalf("SWITCHOVER TO %s: %v\n%s", target.Name, err, out)
	}
	primary, others := waitPromoted(t, ctx, c, old)
	if primary != target {
		t.Fatalf("SWITCHOVER TO %s promoted %s", target.Name, primary.Name)
	}
	writeLandsOn(target)
	waitReplicating(t, ctx, old, target, 30*time.Second)
	c.Primary, c.Replicas = target, append(others, old)

	out, err = adminCLI(p, "admin", "admin", "FAILOVER")
	if err != nil {
		t.Fatalf("FAILOVER: %v\n%s", err, out)
	}
	next, _ := waitPromoted(t, ctx, c, target)
	if !strings.Contains(out, next.Name) {
		t.Fatalf("FAILOVER answered %q; the new primary is %s", out, next.Name)
	}
	writeLandsOn(next)
}
