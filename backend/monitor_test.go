package backend

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/internal/fakemysql"
	"switchyard/internal/mysqltest"
)

// The monitor: roles from @@read_only, replication state and lag, the read
// pool, split brain, shunning and recovery, the heartbeat table.

// probeOpt are the monitor settings of these tests: the fake's monitor
// account, a 10 s lag limit.
var probeOpt = ProbeOptions{User: "monitor", Password: "monitor", Interval: time.Hour, Timeout: 5 * time.Second, MaxReplicationLag: 10 * time.Second}

// replicaOf is a running replica of primary lagging secs (-1: NULL).
func replicaOf(primary *fakemysql.Server, secs int) *fakemysql.ReplicaStatus {
	host, port, _ := net.SplitHostPort(primary.Addr())
	p, _ := strconv.Atoi(port)
	return &fakemysql.ReplicaStatus{SourceHost: host, SourcePort: p, IORunning: true, SQLRunning: true, SecondsBehind: secs}
}

func probingCluster(t *testing.T, fakes ...*fakemysql.Server) *Cluster {
	t.Helper()
	c := clusterOver(t, Options{}, fakes...)
	c.SetProbing(true)
	return c
}

// TestProbeRolesAndReadPool: one check of a primary and replicas in every
// state sets each server's role, GTID, lag, and whether and why it serves
// reads; only the fit replicas are in the read pool.
func TestProbeRolesAndReadPool(t *testing.T) {
	primary := fakemysql.Start(t, fakemysql.Options{})
	primary.SetGTIDPos("0-1-42")
	stopped := replicaOf(primary, 3)
	stopped.IORunning = false
	replicas := []struct {
		name     string
		status   *fakemysql.ReplicaStatus
		maxLag   time.Duration // the server's own limit (0: the monitor's)
		readable bool
		lag      time.Duration // -1: unknown
		why      string
	}{
		{"within limit", replicaOf(primary, 2), 0, true, 2 * time.Second, ""},
		{"over limit", replicaOf(primary, 30), 0, false, 30 * time.Second, "replication lag 30s over 10s"},
		{"own limit allows", replicaOf(primary, 30), time.Minute, true, 30 * time.Second, ""},
		{"own limit forbids", replicaOf(primary, 5), 2 * time.Second, false, 5 * time.Second, "replication lag 5s over 2s"},
		{"lag NULL", replicaOf(primary, -1), 0, false, -1, "replication lag unknown"},
		{"IO thread stopped", stopped, 0, false, -1, "replication not running (IO thread No, SQL thread Yes)"},
		{"not replicating", nil, 0, false, -1, "read-only but not replicating from anything"},
	}
	fakes := []*fakemysql.Server{primary}
	for _, r := range replicas {
		f := fakemysql.Start(t, fakemysql.Options{ReadOnly: true, Replica: r.status})
		f.SetGTIDPos("0-1-40")
		fakes = append(fakes, f)
	}
	c := probingCluster(t, fakes...)
	for i, r := range replicas {
		c.Servers()[i+1].maxLag.Store(int64(r.maxLag))
	}
	c.ProbeOnce(context.Background(), probeOpt)

	p, err := c.Primary()
	if err != nil || p != c.Servers()[0] {
		t.Fatalf("primary %v, %v", p, err)
	}
	if p.Role() != RolePrimary || p.Readable() || p.GTID() != "0-1-42" || p.Status() != StatusOnline {
		t.Fatalf("primary: role %v readable %v gtid %q status %v", p.Role(), p.Readable(), p.GTID(), p.Status())
	}
	var wantReaders []string
	for i, r := range replicas {
		s := c.Servers()[i+1]
		v := c.Snapshot()[i+1]
		t.Run(r.name, func(t *testing.T) {
			if v.Name != s.Name || v.Address != fakes[i+1].Addr() || v.LastError != "" {
				t.Errorf("snapshot %+v", v)
			}
			if v.Role != RoleReplica || v.Status != StatusOnline || v.GTID != "0-1-40" {
				t.Errorf("role %v status %v gtid %q", v.Role, v.Status, v.GTID)
			}
			if v.LagKnown != (r.lag >= 0) || r.lag >= 0 && v.Lag != r.lag {
				t.Errorf("snapshot lag %v known %v, want %v", v.Lag, v.LagKnown, r.lag)
			}
			if v.Readable != r.readable || !strings.HasPrefix(v.Why, r.why) || (r.why == "") != (v.Why == "") {
				t.Errorf("readable %v why %q; want %v %q", v.Readable, v.Why, r.readable, r.why)
			}
			lag, known := s.Lag()
			if r.lag < 0 && known || r.lag >= 0 && (!known || lag != r.lag) {
				t.Errorf("lag %v known %v, want %v", lag, known, r.lag)
			}
			if v.Replicating != (r.status != nil && r.status.IORunning && r.status.SQLRunning) {
				t.Errorf("replicating %v", v.Replicating)
			}
		})
		if r.readable {
			wantReaders = append(wantReaders, s.Name)
		}
	}
	if got := names(c.Replicas(nil)); strings.Join(got, ",") != strings.Join(wantReaders, ",") {
		t.Fatalf("read pool %v, want %v", got, wantReaders)
	}
	if c.SplitBrain() != "" {
		t.Fatalf("split brain reported: %s", c.SplitBrain())
	}
	if v, ok := c.ServerVersion(); !ok || v == "" {
		t.Error("the monitor's connections did not record the server version")
	}
	// ProbeOnce leaves no connection behind.
	for i, f := range fakes {
		mysqltest.Eventually(t, "monitor connections closed on db"+strconv.Itoa(i+1), func() bool { return f.Conns() == 0 })
	}
}

// TestProbeReplicaChanges: a replica moves in and out of the read pool as
// its replication changes, and each move is one event.
func TestProbeReplicaChanges(t *testing.T) {
	primary := fakemysql.Start(t, fakemysql.Options{})
	replica := fakemysql.Start(t, fakemysql.Options{ReadOnly: true, Replica: replicaOf(primary, 0)})
	c := probingCluster(t, primary, replica)
	srv := c.Servers()[1]
	steps := []struct {
		status   *fakemysql.ReplicaStatus
		readable bool
	}{
		{replicaOf(primary, 0), true},
		{replicaOf(primary, 60), false},
		{replicaOf(primary, 60), false},
		{replicaOf(primary, 1), true},
	}
	for i, st := range steps {
		replica.SetReplica(st.status)
		c.ProbeOnce(context.Background(), probeOpt)
		if srv.Readable() != st.readable {
			t.Fatalf("step %d: readable %v, want %v", i, srv.Readable(), st.readable)
		}
	}
	var kinds []string
	for _, e := range c.Events() {
		if e.Server == "db2" {
			kinds = append(kinds, e.Kind)
		}
	}
	// The first check records it up, then fit for reads.
	if strings.Join(kinds, ",") != "server_up,replica_in,replica_out,replica_in" {
		t.Fatalf("db2 events %v", kinds)
	}
}

// TestProbeShunAndRecover: a server that fails its check is SHUNNED and
// takes nothing; when it answers again it is back. The primary going down
// leaves no primary; the monitor's persistent connection is replaced.
func TestProbeShunAndRecover(t *testing.T) {
	primary := fakemysql.Start(t, fakemysql.Options{})
	replica := fakemysql.Start(t, fakemysql.Options{ReadOnly: true, Replica: replicaOf(primary, 0)})
	c := probingCluster(t, primary, replica)
	conns := map[*Server]*Conn{} // as Probe keeps them between rounds
	defer func() {
		for _, cn := range conns {
			cn.Close()
		}
	}()
	ctx := context.Background()
	c.probeAll(ctx, probeOpt, conns)
	if _, err := c.Primary(); err != nil || len(c.Replicas(nil)) != 1 {
		t.Fatalf("healthy cluster: primary %v, replicas %v", err, names(c.Replicas(nil)))
	}

	for _, f := range []*fakemysql.Server{primary, replica} { // a crash
		f.SetDown(true)
		f.KillConnections()
	}
	c.probeAll(ctx, probeOpt, conns)
	for _, s := range c.Servers() {
		if s.Status() != StatusShunned || s.LastError() == nil || s.Healthy() {
			t.Fatalf("%s: status %v, error %v after failing its check", s.Name, s.Status(), s.LastError())
		}
		if s.view().LastError == "" {
			t.Fatalf("%s: snapshot without the error", s.Name)
		}
	}
	if _, err := c.Primary(); !errors.Is(err, ErrNoPrimary) {
		t.Fatalf("primary with every server down: %v", err)
	}
	if len(c.Replicas(nil)) != 0 || len(conns) != 0 {
		t.Fatalf("replicas %v, monitor connections kept %d", names(c.Replicas(nil)), len(conns))
	}

	for _, f := range []*fakemysql.Server{primary, replica} {
		f.SetDown(false)
	}
	c.probeAll(ctx, probeOpt, conns)
	if p, err := c.Primary(); err != nil || p.Name != "db1" || len(c.Replicas(nil)) != 1 {
		t.Fatalf("recovered: primary %v %v, replicas %v", p, err, names(c.Replicas(nil)))
	}
	for _, s := range c.Servers() {
		if s.LastError() != nil {
			t.Fatalf("%s: error %v kept after recovery", s.Name, s.LastError())
		}
	}
	accepted := primary.Accepted()
	c.probeAll(ctx, probeOpt, conns)
	if primary.Accepted() != accepted {
		t.Fatal("the monitor dialed again instead of reusing its connection")
	}
}

// TestSplitBrainFromProbe: two writable servers are split brain: writes
// are refused until one of them is read-only again; a primary demoted to a
// replica is a role change.
func TestSplitBrainFromProbe(t *testing.T) {
	a := fakemysql.Start(t, fakemysql.Options{})
	b := fakemysql.Start(t, fakemysql.Options{})
	c := probingCluster(t, a, b)
	c.ProbeOnce(context.Background(), probeOpt)
	why := c.SplitBrain()
	if !containsAll(why, "db1", "db2", "writable") {
		t.Fatalf("split brain %q", why)
	}
	if _, err := c.Primary(); !errors.Is(err, ErrSplitBrain) {
		t.Fatalf("Primary during split brain: %v", err)
	}
	b.SetReadOnly(true)
	b.SetReplica(replicaOf(a, 0))
	c.ProbeOnce(context.Background(), probeOpt)
	if p, err := c.Primary(); err != nil || p.Name != "db1" || c.SplitBrain() != "" {
		t.Fatalf("after db2 went read-only: primary %v %v, split brain %q", p, err, c.SplitBrain())
	}
	var kinds []string
	for _, e := range c.Events() {
		kinds = append(kinds, e.Kind)
	}
	// The read pool is decided once the round's checks and the split
	// brain verdict are in.
	want := "server_up,server_up,split_brain,role,split_brain_resolved,replica_in"
	if got := strings.Join(kinds, ","); got != want {
		t.Fatalf("events %s, want %s", got, want)
	}
}

// TestProbeMySQLFlavour: a MySQL 8 server has @@gtid_executed instead of
// @@gtid_current_pos and SHOW REPLICA STATUS instead of SHOW ALL SLAVES
// STATUS; the monitor falls back to both.
func TestProbeMySQLFlavour(t *testing.T) {
	primary := fakemysql.Start(t, fakemysql.Options{})
	replica := fakemysql.Start(t, fakemysql.Options{ReadOnly: true, Replica: replicaOf(primary, 1),
		Handle: func(c *fakemysql.Conn, q string) *fakemysql.Result {
			switch q {
			case "SELECT @@read_only, @@gtid_current_pos":
				return &fakemysql.Result{Err: mysql.NewError(mysql.ER_UNKNOWN_SYSTEM_VARIABLE, "Unknown system variable 'gtid_current_pos'")}
			case "SELECT @@read_only, @@gtid_executed":
				return &fakemysql.Result{Columns: []string{"@@read_only", "@@gtid_executed"}, Rows: [][]sql.NullString{{nullStr("1"), nullStr("3e11fa47:1-5")}}}
			case "SHOW ALL SLAVES STATUS":
				return &fakemysql.Result{Err: mysql.NewError(mysql.ER_PARSE_ERROR, "You have an error in your SQL syntax")}
			}
			return nil
		}})
	c := probingCluster(t, primary, replica)
	c.ProbeOnce(context.Background(), probeOpt)
	s := c.Servers()[1]
	if s.Status() != StatusOnline || s.Role() != RoleReplica || s.GTID() != "3e11fa47:1-5" || !s.Readable() {
		t.Fatalf("MySQL replica: status %v role %v gtid %q readable %v (%v)", s.Status(), s.Role(), s.GTID(), s.Readable(), s.LastError())
	}
	if lag, _ := s.Lag(); lag != time.Second {
		t.Fatalf("lag %v from SHOW REPLICA STATUS", lag)
	}
	q := strings.Join(replica.Queries(), "\n")
	if !strings.Contains(q, "SHOW REPLICA STATUS") {
		t.Fatalf("no fallback to SHOW REPLICA STATUS: %s", q)
	}
}

// TestProbeBadAnswers: a server whose answers the monitor cannot use fails
// its check rather than being given a role.
func TestProbeBadAnswers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		handle func(q string) *fakemysql.Result
		want   string
	}{
		{"no row for @@read_only", func(q string) *fakemysql.Result {
			if strings.HasPrefix(q, "SELECT @@read_only") {
				return &fakemysql.Result{Columns: []string{"a", "b"}}
			}
			return nil
		}, "unexpected answer"},
		{"NULL @@read_only", func(q string) *fakemysql.Result {
			if strings.HasPrefix(q, "SELECT @@read_only") {
				return &fakemysql.Result{Columns: []string{"a", "b"}, Rows: [][]sql.NullString{{{}, nullStr("")}}}
			}
			return nil
		}, "unexpected answer"},
		{"replica status refused", func(q string) *fakemysql.Result {
			if q == "SHOW ALL SLAVES STATUS" {
				return &fakemysql.Result{Err: mysql.NewError(mysql.ER_SPECIFIC_ACCESS_DENIED_ERROR, "Access denied; you need the REPLICATION CLIENT privilege")}
			}
			return nil
		}, "REPLICATION CLIENT"},
		{"both GTID variables refused", func(q string) *fakemysql.Result {
			if strings.HasPrefix(q, "SELECT @@read_only") {
				return &fakemysql.Result{Err: mysql.NewError(mysql.ER_UNKNOWN_SYSTEM_VARIABLE, "Unknown system variable")}
			}
			return nil
		}, "Unknown system variable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := fakemysql.Start(t, fakemysql.Options{Handle: func(c *fakemysql.Conn, q string) *fakemysql.Result { return tc.handle(q) }})
			c := probingCluster(t, fake)
			c.ProbeOnce(context.Background(), probeOpt)
			s := c.Servers()[0]
			if s.Status() != StatusShunned || s.LastError() == nil || !strings.Contains(s.LastError().Error(), tc.want) {
				t.Fatalf("status %v, error %v; want SHUNNED with %q", s.Status(), s.LastError(), tc.want)
			}
		})
	}
	// The monitor's login refused: shunned too, with the server's error.
	fake := fakemysql.Start(t, fakemysql.Options{})
	c := probingCluster(t, fake)
	bad := probeOpt
	bad.Password = "wrong"
	c.ProbeOnce(context.Background(), bad)
	var me *mysql.MyError
	if s := c.Servers()[0]; s.Status() != StatusShunned || !errors.As(s.LastError(), &me) || me.Code != mysql.ER_ACCESS_DENIED_ERROR {
		t.Fatalf("monitor login refused: status %v error %v", s.Status(), s.LastError())
	}
}

// heartbeatFakes starts a primary and a replica whose heartbeat statements
// are answered by hb: what the replica's table holds (0: no row).
type heartbeat struct {
	mu      sync.Mutex
	written []string // REPLACE statements the primary got
	replica int64    // ts the replica returns, µs; 0: no row
	missing bool     // the primary's table does not exist yet
}

func (h *heartbeat) primary(c *fakemysql.Conn, q string) *fakemysql.Result {
	h.mu.Lock()
	defer h.mu.Unlock()
	if strings.HasPrefix(q, "REPLACE INTO hb.heartbeat") {
		h.written = append(h.written, q)
		if h.missing {
			return &fakemysql.Result{Err: mysql.NewError(mysql.ER_NO_SUCH_TABLE, "Table 'hb.heartbeat' doesn't exist")}
		}
	}
	if strings.HasPrefix(q, "CREATE TABLE IF NOT EXISTS hb.heartbeat") {
		h.missing = false
	}
	return nil
}

func (h *heartbeat) replicaHandle(c *fakemysql.Conn, q string) *fakemysql.Result {
	h.mu.Lock()
	defer h.mu.Unlock()
	if q == "SELECT ts FROM hb.heartbeat WHERE id = 1" {
		res := &fakemysql.Result{Columns: []string{"ts"}}
		if h.replica != 0 {
			res.Rows = [][]sql.NullString{{nullStr(strconv.FormatInt(h.replica, 10))}}
		}
		return res
	}
	return nil
}

// TestHeartbeat: with a heartbeat table the monitor writes its clock to the
// primary (creating the table the first time) and measures a replica's lag
// as the age of the heartbeat it has applied, to the millisecond, instead
// of Seconds_Behind_Master.
func TestHeartbeat(t *testing.T) {
	hb := &heartbeat{missing: true}
	primary := fakemysql.Start(t, fakemysql.Options{Handle: hb.primary})
	replica := fakemysql.Start(t, fakemysql.Options{ReadOnly: true, Replica: replicaOf(primary, 0), Handle: hb.replicaHandle})
	c := probingCluster(t, primary, replica)
	opt := probeOpt
	opt.HeartbeatTable = "hb.heartbeat"

	before := time.Now().UnixMicro()
	hb.replica = before - 2500*1000 // applied 2.5 s ago
	c.ProbeOnce(context.Background(), opt)
	after := time.Now().UnixMicro()

	// The primary: REPLACE refused (no table), the table created, REPLACE again.
	q := primary.Queries()
	var ddl []string
	for _, s := range q {
		if strings.HasPrefix(s, "CREATE") {
			ddl = append(ddl, s)
		}
	}
	if len(ddl) != 2 || ddl[0] != "CREATE DATABASE IF NOT EXISTS hb" || !strings.HasPrefix(ddl[1], "CREATE TABLE IF NOT EXISTS hb.heartbeat (id TINYINT PRIMARY KEY, ts BIGINT NOT NULL)") {
		t.Fatalf("table not created: %q", ddl)
	}
	if len(hb.written) != 2 {
		t.Fatalf("heartbeat writes %q, want one refused and one after creating the table", hb.written)
	}
	_, rest, _ := strings.Cut(hb.written[1], "VALUES (1, ")
	ts, err := strconv.ParseInt(strings.TrimSuffix(rest, ")"), 10, 64)
	if err != nil || ts < before || ts > after {
		t.Fatalf("heartbeat %q: want the proxy's clock in µs between %d and %d", hb.written[1], before, after)
	}

	s := c.Servers()[1]
	lag, known := s.Lag()
	if !known || lag < 2500*time.Millisecond || lag > 2500*time.Millisecond+time.Duration(after-before)*time.Microsecond+time.Millisecond {
		t.Fatalf("lag %v (known %v), want 2.5 s as the heartbeat's age, not Seconds_Behind_Master's 0", lag, known)
	}
	if !s.Readable() {
		t.Fatalf("replica 2.5 s behind with a 10 s limit not readable: %s", s.view().Why)
	}

	// No heartbeat applied yet: the lag is unknown, no reads.
	hb.mu.Lock()
	hb.replica = 0
	hb.mu.Unlock()
	c.ProbeOnce(context.Background(), opt)
	if _, known := s.Lag(); known || s.Readable() {
		t.Fatalf("replica without a heartbeat: lag known %v, readable %v", known, s.Readable())
	}
	if n := len(hb.written); n != 3 {
		t.Fatalf("%d heartbeat writes, want one more per check", n)
	}
}

// TestHeartbeatWriteFailureIsNotDown: a primary that refuses the heartbeat
// (read-only table, no privilege) is still up; the failure is logged.
func TestHeartbeatWriteFailureIsNotDown(t *testing.T) {
	rec := &logRecorder{}
	fake := fakemysql.Start(t, fakemysql.Options{Handle: func(c *fakemysql.Conn, q string) *fakemysql.Result {
		if strings.HasPrefix(q, "REPLACE") {
			return &fakemysql.Result{Err: mysql.NewError(mysql.ER_TABLEACCESS_DENIED_ERROR, "REPLACE command denied")}
		}
		return nil
	}})
	c := clusterOver(t, Options{Logger: slog.New(rec)}, fake)
	c.SetProbing(true)
	opt := probeOpt
	opt.HeartbeatTable = "hb.heartbeat"
	c.ProbeOnce(context.Background(), opt)
	if p, err := c.Primary(); err != nil || p.Name != "db1" {
		t.Fatalf("primary %v %v", p, err)
	}
	if rec.count("heartbeat write failed") != 1 {
		t.Fatalf("failure not logged: %q", rec.msgs)
	}
}

// TestProbeStops: Probe checks every interval, reusing its connections,
// and when its context ends it returns, closing them, with no goroutine
// left behind.
func TestProbeStops(t *testing.T) {
	primary := fakemysql.Start(t, fakemysql.Options{})
	replica := fakemysql.Start(t, fakemysql.Options{ReadOnly: true, Replica: replicaOf(primary, 0)})
	c := probingCluster(t, primary, replica)
	start := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	opt := probeOpt
	opt.Interval = 5 * time.Millisecond
	go func() { c.Probe(ctx, opt); close(done) }()
	checks := func() int {
		n := 0
		for _, q := range primary.Queries() {
			if strings.HasPrefix(q, "SELECT @@read_only") {
				n++
			}
		}
		return n
	}
	mysqltest.Eventually(t, "three rounds of checks", func() bool { return checks() >= 3 })
	if primary.Accepted() != 1 || replica.Accepted() != 1 {
		t.Fatalf("monitor dialed %d/%d times, want one connection per server kept", primary.Accepted(), replica.Accepted())
	}
	if _, err := c.Primary(); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Probe still running after its context ended")
	}
	mysqltest.Eventually(t, "the monitor's connections to close", func() bool { return primary.Conns() == 0 && replica.Conns() == 0 })
	mysqltest.Eventually(t, "goroutines back to where they were", func() bool { return runtime.NumGoroutine() <= start })
}

// panicky is a log handler that panics on one message: a bug in a check.
type panicky struct {
	logRecorder
	on string
}

func (h *panicky) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.on {
		panic("boom")
	}
	return h.logRecorder.Handle(ctx, r)
}

// TestProbePanicIsContained: a check that panics is logged; the checks of
// the other servers complete and the monitor returns normally. The
// panicking check's connection is closed: the monitor would otherwise leak
// one per interval for as long as the check panics.
func TestProbePanicIsContained(t *testing.T) {
	primary := fakemysql.Start(t, fakemysql.Options{})
	replica := fakemysql.Start(t, fakemysql.Options{ReadOnly: true, Replica: replicaOf(primary, 0)})
	h := &panicky{on: "replica checked"} // logged only by a replica's check
	c := clusterOver(t, Options{Logger: slog.New(h)}, primary, replica)
	c.SetProbing(true)
	c.ProbeOnce(context.Background(), probeOpt)
	if h.count("background task panicked") != 1 {
		t.Fatalf("panic not logged once: %q", h.msgs)
	}
	if p, err := c.Primary(); err != nil || p.Name != "db1" {
		t.Fatalf("the primary's check did not complete: %v %v", p, err)
	}
	mysqltest.Eventually(t, "the panicking check's connection to close", func() bool { return replica.Conns() == 0 })

	// Under Probe, a kept connection whose check panicked is not reused:
	// the next round dials afresh and the server is not thought down.
	conns := map[*Server]*Conn{}
	defer func() {
		for _, cn := range conns {
			cn.Close()
		}
	}()
	h.on = ""
	c.probeAll(context.Background(), probeOpt, conns)
	kept := conns[c.Servers()[1]]
	h.on = "replica checked"
	c.probeAll(context.Background(), probeOpt, conns)
	if !kept.Broken() {
		t.Fatal("the connection of a panicked check is still trusted")
	}
	h.on = ""
	c.probeAll(context.Background(), probeOpt, conns)
	if s := c.Servers()[1]; s.Status() != StatusOnline || conns[s] == kept || conns[s] == nil {
		t.Fatalf("after a panicked check: status %v, connection replaced %v", s.Status(), conns[s] != kept)
	}
	mysqltest.Eventually(t, "one monitor connection on the replica", func() bool { return replica.Conns() == 1 })
}

// lostSource is what a replica of primary reports once primary is gone:
// its IO thread retries (Connecting), its SQL thread has applied what it
// had, and Seconds_Behind_Master is NULL.
func lostSource(primary *fakemysql.Server) *fakemysql.ReplicaStatus {
	r := replicaOf(primary, -1)
	r.IORunning, r.IOConnecting = false, true
	return r
}

// outageCluster is a primary and one replica, both at GTID 0-1-10, the
// replica lagging 2 s, checked once; probe runs one more round.
func outageCluster(t *testing.T) (primary, replica *fakemysql.Server, c *Cluster, probe func()) {
	t.Helper()
	primary = fakemysql.Start(t, fakemysql.Options{})
	replica = fakemysql.Start(t, fakemysql.Options{ReadOnly: true, Replica: replicaOf(primary, 2)})
	primary.SetGTIDPos("0-1-10")
	replica.SetGTIDPos("0-1-10")
	c = probingCluster(t, primary, replica)
	conns := map[*Server]*Conn{} // as Probe keeps them between rounds
	t.Cleanup(func() {
		for _, cn := range conns {
			cn.Close()
		}
	})
	probe = func() { c.probeAll(context.Background(), probeOpt, conns) }
	probe()
	if !c.Servers()[1].Readable() {
		t.Fatal("the replica does not serve reads to begin with")
	}
	return primary, replica, c, probe
}

func crash(f *fakemysql.Server) {
	f.SetDown(true)
	f.KillConnections()
}

func eventKinds(c *Cluster, server string) []string {
	var kinds []string
	for _, e := range c.Events() {
		if e.Server == server {
			kinds = append(kinds, e.Kind)
		}
	}
	return kinds
}

// TestReplicaServesReadsWhilePrimaryUnreachable: with the primary down, a
// replica whose IO thread is Connecting keeps serving reads with the lag
// it had (2 s), round after round; writes get an error naming the primary;
// a replica whose SQL thread stops too leaves the read pool.
func TestReplicaServesReadsWhilePrimaryUnreachable(t *testing.T) {
	primary, replica, c, probe := outageCluster(t)
	srv := c.Servers()[1]
	crash(primary)
	replica.SetReplica(lostSource(primary))
	for round := range 3 {
		probe()
		v := c.Snapshot()[1]
		if !srv.Readable() || !v.LagFrozen || !v.LagKnown || v.Lag != 2*time.Second || v.Why != "" {
			t.Fatalf("round %d: readable %v, frozen %v, lag %v (known %v), why %q; want readable with its 2s lag frozen",
				round, srv.Readable(), v.LagFrozen, v.Lag, v.LagKnown, v.Why)
		}
		if got := names(c.Replicas(nil)); len(got) != 1 || got[0] != "db2" {
			t.Fatalf("round %d: read pool %v", round, got)
		}
	}
	_, err := c.Primary()
	var npe *NoPrimaryError
	if !errors.Is(err, ErrNoPrimary) || !errors.As(err, &npe) || !containsAll(err.Error(), "no writable primary: db1 is unreachable since", "writes fail until") {
		t.Fatalf("Primary with the primary down: %v", err)
	}
	if me := npe.MyError(); me.Code != mysql.ER_UNKNOWN_ERROR || me.State != "HY000" {
		t.Fatalf("client error %d (%s)", me.Code, me.State)
	}
	if got := strings.Join(eventKinds(c, "db2"), ","); got != "server_up,replica_in,replica_lag_frozen" {
		t.Fatalf("db2 events %s: the freeze is one event", got)
	}
	if got := strings.Join(eventKinds(c, ""), ","); got != "no_primary" {
		t.Fatalf("cluster events %s", got)
	}

	// Not applying what it has is another matter.
	st := lostSource(primary)
	st.SQLRunning = false
	replica.SetReplica(st)
	probe()
	if v := c.Snapshot()[1]; srv.Readable() || v.LagFrozen || !strings.Contains(v.Why, "SQL thread No") {
		t.Fatalf("SQL thread stopped too: readable %v, frozen %v, why %q", srv.Readable(), v.LagFrozen, v.Why)
	}
}

// TestReplicaWithoutSourceWhilePrimaryUp: while the proxy reaches the
// primary, a replica whose IO thread stopped (STOP SLAVE, an error) or
// cannot reach the primary (a partition between them) is out: its lag is
// unknown and growing. Nothing freezes.
func TestReplicaWithoutSourceWhilePrimaryUp(t *testing.T) {
	for _, tc := range []struct {
		name string
		io   func(*fakemysql.ReplicaStatus)
		why  string
	}{
		{"IO thread stopped", func(r *fakemysql.ReplicaStatus) { r.IOConnecting = false }, "IO thread No"},
		{"IO thread connecting", func(r *fakemysql.ReplicaStatus) {}, "IO thread Connecting"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			primary, replica, c, probe := outageCluster(t)
			st := lostSource(primary)
			tc.io(st)
			replica.SetReplica(st)
			probe()
			probe()
			v := c.Snapshot()[1]
			if v.Readable || v.LagFrozen || v.LagKnown || !strings.Contains(v.Why, tc.why) {
				t.Fatalf("readable %v, frozen %v, lag known %v, why %q", v.Readable, v.LagFrozen, v.LagKnown, v.Why)
			}
			if _, err := c.Primary(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestReplicaStoppedBeforePrimaryWentAway: a replica that had stopped
// replicating before the primary died has not got everything: it stays
// out, whether it was never seen replicating or stopped long before.
func TestReplicaStoppedBeforePrimaryWentAway(t *testing.T) {
	t.Run("never seen replicating", func(t *testing.T) {
		primary := fakemysql.Start(t, fakemysql.Options{})
		st := lostSource(primary)
		st.IOConnecting = false
		replica := fakemysql.Start(t, fakemysql.Options{ReadOnly: true, Replica: st})
		c := probingCluster(t, primary, replica)
		c.ProbeOnce(context.Background(), probeOpt)
		crash(primary)
		c.ProbeOnce(context.Background(), probeOpt)
		if v := c.Snapshot()[1]; v.Readable || v.LagFrozen || !strings.Contains(v.Why, "not seen replicating before primary db1 became unreachable") {
			t.Fatalf("readable %v, frozen %v, why %q", v.Readable, v.LagFrozen, v.Why)
		}
	})
	t.Run("stopped an hour before", func(t *testing.T) {
		primary, replica, c, probe := outageCluster(t)
		srv := c.Servers()[1]
		replica.SetReplica(lostSource(primary))
		probe() // the primary is up: out
		// As if that had been an hour ago and the primary had been checked
		// since.
		hourAgo := time.Now().Add(-time.Hour)
		srv.replicatedAt.Store(&hourAgo)
		crash(primary)
		probe()
		if v := c.Snapshot()[1]; v.Readable || v.LagFrozen || !containsAll(v.Why, "while primary db1 is unreachable", "over 10s") || v.Lag < time.Hour {
			t.Fatalf("readable %v, frozen %v, lag %v, why %q", v.Readable, v.LagFrozen, v.Lag, v.Why)
		}
	})
}

// TestReplicaAfterPrimaryReturns: once the primary answers again, a
// replica whose IO thread has not reconnected yet keeps serving while it
// has everything the primary has, leaves at the primary's first write, and
// is back once it replicates.
func TestReplicaAfterPrimaryReturns(t *testing.T) {
	primary, replica, c, probe := outageCluster(t)
	srv := c.Servers()[1]
	crash(primary)
	replica.SetReplica(lostSource(primary))
	probe()
	primary.SetDown(false)
	probe()
	if _, err := c.Primary(); err != nil {
		t.Fatal(err)
	}
	if v := c.Snapshot()[1]; !srv.Readable() || !v.LagFrozen {
		t.Fatalf("primary back, nothing written: readable %v, frozen %v, why %q", srv.Readable(), v.LagFrozen, v.Why)
	}
	primary.SetGTIDPos("0-1-11") // a write the replica has not got
	probe()
	if v := c.Snapshot()[1]; srv.Readable() || v.LagFrozen || !strings.Contains(v.Why, "the primary is back and has written since") {
		t.Fatalf("primary wrote: readable %v, frozen %v, why %q", srv.Readable(), v.LagFrozen, v.Why)
	}
	replica.SetReplica(replicaOf(primary, 0))
	replica.SetGTIDPos("0-1-11")
	probe()
	if !srv.Readable() {
		t.Fatalf("replicating again: why %q", c.Snapshot()[1].Why)
	}
	want := "server_up,replica_in,replica_lag_frozen,replica_lag_unfrozen,replica_out,replica_in"
	if got := strings.Join(eventKinds(c, "db2"), ","); got != want {
		t.Fatalf("db2 events %s, want %s", got, want)
	}
	if got := strings.Join(eventKinds(c, ""), ","); got != "no_primary,primary_back" {
		t.Fatalf("cluster events %s", got)
	}
}

// TestNoPrimaryErrorSaysWhy: an operator's OFFLINE_SOFT primary is named
// as such; with no primary ever seen the error stays the generic one.
func TestNoPrimaryErrorSaysWhy(t *testing.T) {
	_, _, c, _ := outageCluster(t)
	if err := c.SetServerStatus("db1", StatusOfflineSoft); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Primary(); !errors.Is(err, ErrNoPrimary) || !containsAll(err.Error(), "db1 is OFFLINE_SOFT", "set ONLINE") {
		t.Fatalf("OFFLINE_SOFT primary: %v", err)
	}
	// A replica of a source outside the cluster: never a primary.
	replica := fakemysql.Start(t, fakemysql.Options{ReadOnly: true, Replica: &fakemysql.ReplicaStatus{SourceHost: "192.0.2.1", SourcePort: 3306}})
	c2 := probingCluster(t, replica)
	c2.ProbeOnce(context.Background(), probeOpt)
	var npe *NoPrimaryError
	if _, err := c2.Primary(); !errors.Is(err, ErrNoPrimary) || errors.As(err, &npe) {
		t.Fatalf("no primary ever: %v", err)
	}
}

func TestPositionCovers(t *testing.T) {
	for _, tc := range []struct {
		pos, of string
		want    bool
	}{
		{"0-1-10", "0-1-10", true},
		{"0-1-11", "0-1-10", true},
		{"0-1-9", "0-1-10", false},
		{"0-1-10,1-2-6", "1-2-5,0-1-10", true},
		{"0-1-10,1-2-4", "0-1-10,1-2-5", false},
		{"0-1-10", "0-1-10,1-2-5", false}, // a domain it has never seen
		{"0-1-10", "", true},              // the primary has written nothing
		{"3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5", "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5", false},
	} {
		if got := positionCovers(tc.pos, tc.of); got != tc.want {
			t.Errorf("positionCovers(%q, %q) = %v, want %v", tc.pos, tc.of, got, tc.want)
		}
	}
}

// TestSoleReadOnlyServerKeepsWrites: the only server of the cluster turns
// read-only (SET GLOBAL read_only=1, as mtr's read_only test does through
// the proxy) while it replicates from nothing. Directly, its clients' writes
// get the server's own refusal (1290) unless they have READ_ONLY ADMIN; so
// through the proxy it stays the place writes go, however soon after the
// change the monitor checks it. Before, the check that saw read_only=1 made
// it a replica and left no primary: writes got the proxy's 1105.
func TestSoleReadOnlyServerKeepsWrites(t *testing.T) {
	f := fakemysql.Start(t, fakemysql.Options{})
	c := probingCluster(t, f)
	conns := map[*Server]*Conn{}
	t.Cleanup(func() {
		for _, cn := range conns {
			cn.Close()
		}
	})
	probe := func() { c.probeAll(context.Background(), probeOpt, conns) }
	probe()
	srv := c.Servers()[0]
	f.SetReadOnly(true)
	probe() // the check lands between SET GLOBAL read_only=1 and the write
	if p, err := c.Primary(); err != nil || p != srv {
		t.Fatalf("after the monitor saw read_only=1: primary %v, %v; want %s, which refuses writes itself", p, err, srv.Name)
	}
	if srv.Role() != RolePrimary || srv.Readable() || !srv.ReadOnly() {
		t.Fatalf("role %v, readable %v, read-only %v", srv.Role(), srv.Readable(), srv.ReadOnly())
	}
	f.SetReadOnly(false)
	probe()
	if p, err := c.Primary(); err != nil || p != srv || srv.ReadOnly() {
		t.Fatalf("writable again: primary %v, %v, read-only %v", p, err, srv.ReadOnly())
	}
	if got := strings.Join(eventKinds(c, "db1"), ","); got != "server_up,read_only,writable" {
		t.Fatalf("db1 events %s", got)
	}
	if got := eventKinds(c, ""); len(got) != 0 {
		t.Fatalf("cluster events %v: writes never lacked a primary", got)
	}

	// A fenced server (a primary a failover or switchover replaced) gets
	// nothing, read-only or not.
	f.SetReadOnly(true)
	probe()
	srv.fenced.Store(true)
	if p, err := c.Primary(); err == nil {
		t.Fatalf("fenced read-only server %s takes writes", p.Name)
	}
	srv.fenced.Store(false)

	// A reload that adds a server ends the exception at once, before the
	// next check.
	other := fakemysql.Start(t, fakemysql.Options{ReadOnly: true, Replica: replicaOf(f, 0)})
	c.Reconfigure([]ServerSpec{{Name: "db1", Address: f.Addr()}, {Name: "db2", Address: other.Addr()}})
	if p, err := c.Primary(); !errors.Is(err, ErrNoPrimary) {
		t.Fatalf("read-only db1 among two servers: primary %v, %v; want none", p, err)
	}
	probe()
	if p, err := c.Primary(); !errors.Is(err, ErrNoPrimary) || srv.Role() != RoleReplica {
		t.Fatalf("checked among two servers: primary %v, %v, db1 %v; want none", p, err, srv.Role())
	}
}

// TestReadOnlyServerThatIsNoPrimary: the rule above never makes a write
// target of a server that replicates, running or stopped (a replica of a
// source outside the cluster), nor of a read-only server that is not the
// only one (the primary of its replicas set read-only: a switchover made
// by an outside tool would look the same, and writes landing on the old
// primary then would be lost to the new one).
func TestReadOnlyServerThatIsNoPrimary(t *testing.T) {
	outside := fakemysql.Start(t, fakemysql.Options{})
	stopped := replicaOf(outside, 0)
	stopped.IORunning, stopped.SQLRunning = false, false
	for _, tc := range []struct {
		name    string
		replica *fakemysql.ReplicaStatus
	}{
		{"replicating", replicaOf(outside, 0)},
		{"replication stopped", stopped},
	} {
		t.Run("only server, "+tc.name, func(t *testing.T) {
			f := fakemysql.Start(t, fakemysql.Options{ReadOnly: true, Replica: tc.replica})
			c := probingCluster(t, f)
			c.ProbeOnce(context.Background(), probeOpt)
			if p, err := c.Primary(); !errors.Is(err, ErrNoPrimary) {
				t.Fatalf("primary %v, %v; want none", p, err)
			}
			if c.Servers()[0].Role() != RoleReplica {
				t.Fatalf("role %v", c.Servers()[0].Role())
			}
		})
	}
	t.Run("primary of a replica, set read-only", func(t *testing.T) {
		primary := fakemysql.Start(t, fakemysql.Options{})
		replica := fakemysql.Start(t, fakemysql.Options{ReadOnly: true, Replica: replicaOf(primary, 0)})
		c := probingCluster(t, primary, replica)
		c.ProbeOnce(context.Background(), probeOpt)
		primary.SetReadOnly(true)
		c.ProbeOnce(context.Background(), probeOpt)
		if p, err := c.Primary(); !errors.Is(err, ErrNoPrimary) {
			t.Fatalf("primary %v, %v; want none", p, err)
		}
	})
}

// TestSoleReadOnlyServerGetsNoHeartbeat: the only server, kept the primary
// while read-only, is not written to by the monitor (whose account may
// write past read_only): its heartbeat writes would be errant transactions
// once it replicates from a new primary. Before, it got REPLACE INTO the
// heartbeat table every check.
func TestSoleReadOnlyServerGetsNoHeartbeat(t *testing.T) {
	f := fakemysql.Start(t, fakemysql.Options{ReadOnly: true})
	c := probingCluster(t, f)
	opt := probeOpt
	opt.HeartbeatTable = "hb.heartbeat"
	c.ProbeOnce(context.Background(), opt)
	if !c.Servers()[0].ReadOnly() {
		t.Fatalf("the only server, read-only, is not flagged a read-only primary")
	}
	for _, q := range f.Queries() {
		if u := strings.ToUpper(q); strings.HasPrefix(u, "REPLACE") || strings.HasPrefix(u, "CREATE") || strings.HasPrefix(u, "INSERT") {
			t.Errorf("the monitor wrote to a read-only server: %s", q)
		}
	}
}
