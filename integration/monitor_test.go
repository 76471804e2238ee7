package integration

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"switchyard/integration/harness"
)

const fastMonitor = "monitor:\n  interval: 200ms\n  timeout: 500ms\n"

// readServers runs replica-hinted reads of @@server_id and returns the set
// of servers that answered.
func readServers(t *testing.T, db *sql.DB) map[int]bool {
	t.Helper()
	seen := map[int]bool{}
	for range 12 {
		var id int
		if err := db.QueryRow("/* switchyard:route=replica */ SELECT @@server_id").Scan(&id); err != nil {
			t.Fatalf("read: %v", err)
		}
		seen[id] = true
	}
	return seen
}

func onlyServer(seen map[int]bool, id int) bool { return len(seen) == 1 && seen[id] }

func bothReplicas(seen map[int]bool) bool {
	return len(seen) == 2 && seen[cluster.Replicas[0].ServerID] && seen[cluster.Replicas[1].ServerID]
}

// TestReplicaWithStoppedReplicationLeavesReads stops a replica's SQL
// thread: it stops serving reads until replication runs again.
func TestReplicaWithStoppedReplicationLeavesReads(t *testing.T) {
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", ExtraYAML: fastMonitor})
	db := appDB(t, p, "")
	ctx := context.Background()
	r0, r1 := cluster.Replicas[0], cluster.Replicas[1]
	eventually(t, 10*time.Second, "reads on both replicas", func() bool { return bothReplicas(readServers(t, db)) })

	if err := r0.Exec(ctx, "STOP SLAVE SQL_THREAD"); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = r0.Exec(ctx, "START SLAVE SQL_THREAD")
		_ = cluster.WaitReplicasCaughtUp(ctx)
	}()
	start := time.Now()
	eventually(t, 10*time.Second, r0.Name+" to leave the read pool", func() bool { return onlyServer(readServers(t, db), r1.ServerID) })
	t.Logf("%s left the read pool %v after its SQL thread stopped (monitor interval 200ms)", r0.Name, time.Since(start).Round(10*time.Millisecond))

	if err := r0.Exec(ctx, "START SLAVE SQL_THREAD"); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	eventually(t, 10*time.Second, r0.Name+" to rejoin the read pool", func() bool { return bothReplicas(readServers(t, db)) })
	t.Logf("%s rejoined %v after its SQL thread started", r0.Name, time.Since(start).Round(10*time.Millisecond))
	if !containsLog(p, "replica leaves the read pool") || !containsLog(p, "replica serves reads") {
		t.Errorf("the state changes were not logged")
	}
}

// TestKilledReplicaCostsClientsNothing kills a replica with kill -9 while
// clients read: no statement fails, the replica leaves the read pool, and
// after a restart it comes back by itself.
func TestKilledReplicaCostsClientsNothing(t *testing.T) {
	setupRoutingTable(t)
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", ExtraYAML: fastMonitor})
	db := appDB(t, p, "interpolateParams=true")
	db.SetMaxOpenConns(4)
	ctx := context.Background()
	r0, r1 := cluster.Replicas[0], cluster.Replicas[1]
	eventually(t, 10*time.Second, "reads on both replicas", func() bool { return bothReplicas(readServers(t, db)) })

	var reads, failures atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				var v string
				if err := db.QueryRow("SELECT v FROM route_t WHERE id = ?", 1).Scan(&v); err != nil {
					failures.Add(1)
					t.Errorf("read while a replica was killed: %v", err)
					return
				}
				reads.Add(1)
			}
		}()
	}
	time.Sleep(300 * time.Millisecond) // reads are in flight on both replicas
	r0.Kill()
	defer func() {
		if !r0.Running() {
			_ = r0.Start(ctx)
		}
		_ = cluster.WaitReplicasCaughtUp(ctx)
	}()
	eventually(t, 10*time.Second, r0.Name+" to leave the read pool", func() bool { return onlyServer(readServers(t, db), r1.ServerID) })
	close(stop)
	wg.Wait()
	t.Logf("%d reads while %s was killed, %d failed", reads.Load(), r0.Name, failures.Load())

	if err := r0.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cluster.WaitReplicasCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	eventually(t, 15*time.Second, r0.Name+" to rejoin after its restart", func() bool { return bothReplicas(readServers(t, db)) })
	t.Logf("%s rejoined %v after it was caught up again", r0.Name, time.Since(start).Round(10*time.Millisecond))
}

func containsLog(p *harness.Proxy, s string) bool { return strings.Contains(p.Logs(), s) }

// TestLaggingReplicaLeavesReads delays a replica by 3 s (MASTER_DELAY) with
// a 1 s lag limit: after a write it leaves the read pool, and rejoins once
// it has applied the write.
func TestLaggingReplicaLeavesReads(t *testing.T) {
	setupRoutingTable(t)
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", ExtraYAML: "monitor:\n  interval: 200ms\n  timeout: 500ms\n  max_replication_lag: 1s\n"})
	db := appDB(t, p, "")
	ctx := context.Background()
	r0, r1 := cluster.Replicas[0], cluster.Replicas[1]
	eventually(t, 10*time.Second, "reads on both replicas", func() bool { return bothReplicas(readServers(t, db)) })
	setDelay := func(sec int) {
		t.Helper()
		if err := r0.Exec(ctx, "STOP SLAVE", fmt.Sprintf("CHANGE MASTER TO MASTER_DELAY = %d", sec), "START SLAVE"); err != nil {
			t.Fatal(err)
		}
	}
	setDelay(3)
	defer func() {
		setDelay(0)
		_ = cluster.WaitReplicasCaughtUp(ctx)
	}()
	if err := cluster.Primary.Exec(ctx, "UPDATE "+cluster.Database+".route_t SET v = CONCAT(v, '') WHERE id = 1", "INSERT INTO "+cluster.Database+".route_t VALUES (100, 'lag') ON DUPLICATE KEY UPDATE v = 'lag2'"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	eventually(t, 10*time.Second, r0.Name+" to leave the read pool for its lag", func() bool { return onlyServer(readServers(t, db), r1.ServerID) })
	t.Logf("%s left the read pool %v after a write it applies 3 s late (limit 1 s)", r0.Name, time.Since(start).Round(10*time.Millisecond))
	eventually(t, 20*time.Second, r0.Name+" to rejoin once caught up", func() bool { return bothReplicas(readServers(t, db)) })
	t.Logf("%s rejoined %v after the write", r0.Name, time.Since(start).Round(10*time.Millisecond))
	if !containsLog(p, "replication lag") {
		t.Errorf("the lag was not given as the reason in the log")
	}
}

// TestHeartbeatMeasuresLag injects a 2 s replication delay and reads the
// lag the heartbeat measures: it must be within 500 ms of the delay.
func TestHeartbeatMeasuresLag(t *testing.T) {
	p := startProxy(t, harness.ProxyOptions{ExtraYAML: "monitor:\n  interval: 200ms\n  timeout: 500ms\n  heartbeat_table: switchyard.heartbeat\n"})
	ctx := context.Background()
	r0 := cluster.Replicas[0]
	setDelay := func(sec int) {
		t.Helper()
		if err := r0.Exec(ctx, "STOP SLAVE", fmt.Sprintf("CHANGE MASTER TO MASTER_DELAY = %d", sec), "START SLAVE"); err != nil {
			t.Fatal(err)
		}
	}
	lagRe := regexp.MustCompile(`msg="replica checked" server=` + r0.Name + ` replicating=true lag_ms=(\d+)`)
	lastLag := func() (int, bool) {
		m := lagRe.FindAllStringSubmatch(p.Logs(), -1)
		if len(m) == 0 {
			return 0, false
		}
		n, _ := strconv.Atoi(m[len(m)-1][1])
		return n, true
	}
	eventually(t, 10*time.Second, "a heartbeat lag for "+r0.Name, func() bool {
		lag, ok := lastLag()
		return ok && lag < 1000
	})
	setDelay(2)
	defer func() {
		setDelay(0)
		_ = cluster.WaitReplicasCaughtUp(ctx)
	}()
	// Once the delay is in force every heartbeat arrives about 2 s late:
	// MASTER_DELAY counts from the binlog event's timestamp, which has
	// whole seconds, so an event written late in a second is applied up to
	// 1 s early, and a heartbeat is seen between about 1 and 2 s old (plus
	// up to an interval until it is read).
	var lag int
	eventually(t, 15*time.Second, "the measured lag to reach the injected delay", func() bool {
		var ok bool
		lag, ok = lastLag()
		return ok && lag >= 1000
	})
	// The heartbeat read on a replica is up to one interval old, so single
	// readings saw-tooth above the delay: take the median of the next few.
	time.Sleep(600 * time.Millisecond)
	m := lagRe.FindAllStringSubmatch(p.Logs(), -1)
	var samples []int
	for _, x := range m[max(0, len(m)-3):] {
		n, _ := strconv.Atoi(x[1])
		samples = append(samples, n)
	}
	sort.Ints(samples)
	lag = samples[len(samples)/2]
	t.Logf("heartbeat lag with a 2 s MASTER_DELAY: median %d ms of %v", lag, samples)
	if !regexp.MustCompile(`msg="replica checked" server=` + r0.Name + ` .* gtid=\d+-\d+-\d+`).MatchString(p.Logs()) {
		t.Errorf("the replica's GTID position was not read")
	}
	if lag < 1000 || lag > 2700 {
		t.Fatalf("heartbeat lag %d ms, want 1000-2700 ms for a 2 s delay", lag)
	}
}

// TestSplitBrainRefusesWrites makes a replica writable: with two writable
// servers the proxy refuses writes with a clear error, keeps serving reads,
// and accepts writes again once the replica is read-only.
func TestSplitBrainRefusesWrites(t *testing.T) {
	setupRoutingTable(t)
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", ExtraYAML: fastMonitor})
	db := appDB(t, p, "interpolateParams=true")
	ctx := context.Background()
	r0 := cluster.Replicas[0]
	if err := r0.Exec(ctx, "SET GLOBAL read_only = OFF"); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r0.Exec(ctx, "SET GLOBAL read_only = ON") }()
	var werr error
	eventually(t, 10*time.Second, "writes to be refused", func() bool {
		_, werr = db.Exec("UPDATE route_t SET v = 'uno' WHERE id = 1")
		return werr != nil
	})
	assertMySQLError(t, werr, 1105, "HY000")
	if !strings.Contains(werr.Error(), "split brain") || !strings.Contains(werr.Error(), r0.Name) {
		t.Fatalf("error does not explain the split brain: %v", werr)
	}
	var v string
	if err := db.QueryRow("SELECT v FROM route_t WHERE id = ?", 2).Scan(&v); err != nil {
		t.Fatalf("read during split brain: %v", err)
	}
	if err := r0.Exec(ctx, "SET GLOBAL read_only = ON"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "writes to be accepted again", func() bool {
		_, werr = db.Exec("UPDATE route_t SET v = 'one' WHERE id = 1")
		return werr == nil
	})
	if !containsLog(p, "split brain resolved") {
		t.Errorf("resolution not logged")
	}
}
