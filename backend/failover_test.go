package backend

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"switchyard/internal/fakemysql"
	"switchyard/internal/mysqltest"
)

// Failover, fencing and rejoin over fake servers that act out the
// replication statements the failover sends (actor), round by round of
// the monitor's checks.

// actor is a fake server that answers the topology statements of
// failover.go as MariaDB would, and records them.
type actor struct {
	f *fakemysql.Server

	mu       sync.Mutex
	control  []string // the statements of failover.go it ran, in order
	readOnly bool
	slavePos string // @@gtid_slave_pos; "": @@gtid_current_pos
	lockBusy bool   // GET_LOCK times out: another switchyard holds it
	replica  *fakemysql.ReplicaStatus
	// The user lock of GET_LOCK, as MariaDB keeps it: one connection
	// holds it until it releases it or goes away; freed is closed then.
	lockHolder uint32
	freed      chan struct{}
}

var lockTimeoutRE = regexp.MustCompile(`GET_LOCK\('[^']*', ([0-9.]+)\)`)

// getLock answers GET_LOCK: 1 once the connection holds the lock, 0 when
// the timeout passed first.
func (s *actor) getLock(c *fakemysql.Conn, q string) *fakemysql.Result {
	secs, _ := strconv.ParseFloat(lockTimeoutRE.FindStringSubmatch(q)[1], 64)
	deadline := time.Now().Add(time.Duration(secs * float64(time.Second)))
	answer := func(v string) *fakemysql.Result {
		return &fakemysql.Result{Columns: []string{"l"}, Rows: row(v)}
	}
	for {
		s.mu.Lock()
		s.control = append(s.control, q)
		if s.lockBusy {
			s.mu.Unlock()
			return answer("0")
		}
		if s.lockHolder == 0 || s.lockHolder == c.ID() {
			s.lockHolder, s.freed = c.ID(), make(chan struct{})
			s.mu.Unlock()
			go func() {
				<-c.Done()
				s.releaseLock(c.ID())
			}()
			return answer("1")
		}
		freed := s.freed
		s.control = s.control[:len(s.control)-1] // one GET_LOCK, however long it waits
		s.mu.Unlock()
		select {
		case <-freed:
		case <-time.After(time.Until(deadline)):
			s.mu.Lock()
			s.control = append(s.control, q)
			s.mu.Unlock()
			return answer("0")
		}
	}
}

func (s *actor) releaseLock(id uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lockHolder == id {
		s.lockHolder = 0
		close(s.freed)
	}
}

var (
	changeHostRE = regexp.MustCompile(`MASTER_HOST='([^']*)', MASTER_PORT=(\d+)`)
	controlRE    = regexp.MustCompile(`^(STOP SLAVE|START SLAVE|RESET SLAVE|SET GLOBAL|CHANGE MASTER|SELECT MASTER_GTID_WAIT|SELECT GET_LOCK|DO RELEASE_LOCK)`)
)

func startActor(t *testing.T, readOnly bool, replica *fakemysql.ReplicaStatus, pos string) *actor {
	t.Helper()
	s := &actor{readOnly: readOnly, replica: replica}
	s.f = fakemysql.Start(t, fakemysql.Options{ReadOnly: readOnly, Replica: replica, Handle: s.handle})
	s.f.SetGTIDPos(pos)
	return s
}

func row(vals ...string) [][]sql.NullString {
	r := make([]sql.NullString, len(vals))
	for i, v := range vals {
		r[i] = sql.NullString{String: v, Valid: true}
	}
	return [][]sql.NullString{r}
}

func (s *actor) handle(c *fakemysql.Conn, q string) *fakemysql.Result {
	switch {
	case strings.HasPrefix(q, "SELECT GET_LOCK"):
		return s.getLock(c, q)
	case strings.HasPrefix(q, "DO RELEASE_LOCK"):
		s.releaseLock(c.ID())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if controlRE.MatchString(q) {
		s.control = append(s.control, q)
	}
	switch {
	case q == "SELECT @@read_only, @@gtid_current_pos, @@gtid_slave_pos, @@gtid_binlog_pos":
		pos := s.f.GTIDPos()
		slave := s.slavePos
		if slave == "" {
			slave = pos
		}
		ro := "0"
		if s.readOnly {
			ro = "1"
		}
		return &fakemysql.Result{Columns: []string{"ro", "cur", "slave", "binlog"}, Rows: row(ro, pos, slave, pos)}
	case q == "SET GLOBAL read_only = ON", q == "SET GLOBAL read_only = OFF":
		s.readOnly = strings.HasSuffix(q, "ON")
		s.f.SetReadOnly(s.readOnly)
		return &fakemysql.Result{}
	case q == "STOP SLAVE":
		if s.replica != nil {
			s.replica.IORunning, s.replica.SQLRunning, s.replica.IOConnecting = false, false, false
			s.f.SetReplica(s.replica)
		}
		return &fakemysql.Result{}
	case q == "RESET SLAVE ALL":
		s.replica = nil
		s.f.SetReplica(nil)
		return &fakemysql.Result{}
	case strings.HasPrefix(q, "CHANGE MASTER TO"):
		m := changeHostRE.FindStringSubmatch(q)
		port, _ := strconv.Atoi(m[2])
		s.replica = &fakemysql.ReplicaStatus{SourceHost: m[1], SourcePort: port}
		s.f.SetReplica(s.replica)
		return &fakemysql.Result{}
	case q == "START SLAVE":
		if s.replica != nil {
			s.replica.IORunning, s.replica.SQLRunning = true, true
			s.f.SetReplica(s.replica)
		}
		return &fakemysql.Result{}
	case strings.HasPrefix(q, "SET GLOBAL gtid_slave_pos"):
		return &fakemysql.Result{}
	case strings.HasPrefix(q, "SELECT MASTER_GTID_WAIT"):
		return &fakemysql.Result{Columns: []string{"w"}, Rows: row("0")}
	case strings.HasPrefix(q, "DO RELEASE_LOCK"):
		return &fakemysql.Result{}
	case strings.HasPrefix(q, "SELECT COUNT(*) FROM information_schema.INNODB_TRX"):
		return &fakemysql.Result{Columns: []string{"n"}, Rows: row("0")}
	}
	return nil
}

// statements returns the control statements s ran, and forgets them.
func (s *actor) statements() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.control
	s.control = nil
	return out
}

// crash makes the server unreachable, as a kill -9 would.
func (s *actor) crash() {
	s.f.SetDown(true)
	s.f.KillConnections()
}

// lost is what a replica's status says once its IO thread lost primary.
func lost(primary *fakemysql.Server) *fakemysql.ReplicaStatus {
	r := replicaOf(primary, -1)
	r.IORunning, r.IOConnecting = false, true
	return r
}

// failoverCluster is a primary (db1) and two replicas (db2 at pos2, db3 at
// pos3) with automatic, cooperative failover after 2 failed checks.
func failoverCluster(t *testing.T, pos2, pos3 string, fo FailoverOptions) (*Cluster, []*actor) {
	t.Helper()
	p := startActor(t, false, nil, pos3)
	r2 := startActor(t, true, replicaOf(p.f, 0), pos2)
	r3 := startActor(t, true, replicaOf(p.f, 0), pos3)
	c := clusterOver(t, Options{Failover: fo}, p.f, r2.f, r3.f)
	c.SetProbing(true)
	c.topo.serving.Store(true) // as Probe does
	return c, []*actor{p, r2, r3}
}

// rounds runs n rounds of checks and what follows them, as Probe does.
func rounds(c *Cluster, fm *failoverWatch, conns map[*Server]*Conn, n int) {
	for range n {
		checks := c.probeAll(context.Background(), probeOpt, conns)
		c.afterChecks(context.Background(), probeOpt, fm, checks)
	}
}

// rig is a failoverCluster checked once, with what its rounds keep.
type rig struct {
	c         *Cluster
	p, r2, r3 *actor
	fm        failoverWatch
	conns     map[*Server]*Conn
}

func newRig(t *testing.T, pos2, pos3 string, fo FailoverOptions) *rig {
	t.Helper()
	c, fakes := failoverCluster(t, pos2, pos3, fo)
	r := &rig{c: c, p: fakes[0], r2: fakes[1], r3: fakes[2], conns: map[*Server]*Conn{}}
	t.Cleanup(func() { closeAll(r.conns) })
	r.rounds(1)
	return r
}

func (r *rig) rounds(n int) { rounds(r.c, &r.fm, r.conns, n) }

// primaryDies crashes db1 and makes both replicas' IO threads lose it.
func (r *rig) primaryDies() {
	r.p.crash()
	r.r2.f.SetReplica(lost(r.p.f))
	r.r3.f.SetReplica(lost(r.p.f))
}

func allEvents(c *Cluster) []string {
	var out []string
	for _, e := range c.Events() {
		out = append(out, e.Kind+":"+e.Server)
	}
	return out
}

func closeAll(conns map[*Server]*Conn) {
	for _, cn := range conns {
		cn.Close()
	}
}

var autoFailover = FailoverOptions{Auto: true, FailureThreshold: 2, ReplicationUser: "repl", ReplicationPassword: "pw", Cooperative: true}

// TestFailoverPromotesTheMostAdvancedReplica: the primary fails two checks
// in a row (the threshold) while its replicas' IO threads lost it too; the
// replica that received most is promoted (STOP SLAVE, RESET SLAVE ALL,
// read_only=OFF after it applied what it received), writes go to it, the
// other replica replicates from it, and the old primary is fenced.
func TestFailoverPromotesTheMostAdvancedReplica(t *testing.T) {
	r := newRig(t, "0-1-10", "0-1-12", autoFailover)
	c, p, r2, r3 := r.c, r.p, r.r2, r.r3
	if got, err := c.Primary(); err != nil || got.Name != "db1" {
		t.Fatalf("primary %v, %v", got, err)
	}
	r.primaryDies()
	r2.replica, r3.replica = lost(p.f), lost(p.f)
	r.rounds(1)
	if s := r3.statements(); len(s) != 0 {
		t.Fatalf("failover after one failed check (threshold 2): %v", s)
	}
	r.rounds(1)

	got, err := c.Primary()
	if err != nil || got.Name != "db3" {
		t.Fatalf("primary after the failover: %v, %v", got, err)
	}
	want := []string{"SELECT GET_LOCK", "SELECT MASTER_GTID_WAIT('0-1-12'", "STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = OFF", "DO RELEASE_LOCK"}
	if s := r3.statements(); !prefixes(s, want) {
		t.Fatalf("db3 ran %q, want %q", s, want)
	}
	host, port, _ := net.SplitHostPort(r3.f.Addr())
	wantRepoint := []string{"SELECT GET_LOCK", "SET GLOBAL read_only = ON", "STOP SLAVE",
		"CHANGE MASTER TO MASTER_HOST='" + host + "', MASTER_PORT=" + port + ", MASTER_USER='repl', MASTER_PASSWORD='pw', MASTER_USE_GTID=slave_pos",
		"START SLAVE", "DO RELEASE_LOCK"}
	if s := r2.statements(); !prefixes(s, wantRepoint) {
		t.Fatalf("db2 ran %q, want %q", s, wantRepoint)
	}
	if !c.Server("db1").Fenced() || c.Server("db3").Fenced() {
		t.Fatalf("fenced: db1 %v, db3 %v", c.Server("db1").Fenced(), c.Server("db3").Fenced())
	}
	kinds := allEvents(c)
	for _, k := range []string{"fenced:db1", "failover_started:db1", "failover_candidate:db3", "promoted:db3", "repointed:db2", "failover_done:db3"} {
		if !slices.Contains(kinds, k) {
			t.Errorf("no %s event: %v", k, kinds)
		}
	}
	// The next rounds see db2 replicating from db3: no split brain, reads
	// on db2.
	r.rounds(1)
	if c.SplitBrain() != "" || names(c.Replicas(nil))[0] != "db2" {
		t.Fatalf("after the failover: split brain %q, read pool %v", c.SplitBrain(), names(c.Replicas(nil)))
	}
}

// prefixes reports whether each statement of got starts with want's.
func prefixes(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if !strings.HasPrefix(got[i], want[i]) {
			return false
		}
	}
	return true
}

// TestFailoverWaitsForReplicasToConfirm: a primary only the proxy cannot
// reach (its replicas still receive from it) is not failed over, however
// many checks it fails; the reason is logged once.
func TestFailoverWaitsForReplicasToConfirm(t *testing.T) {
	r := newRig(t, "0-1-10", "0-1-12", autoFailover)
	c, p, r2, r3 := r.c, r.p, r.r2, r.r3
	p.crash()
	r2.f.SetReplica(lost(p.f)) // db3 still receives
	r.rounds(5)
	if s := append(r2.statements(), r3.statements()...); len(s) != 0 {
		t.Fatalf("failover without the replicas' confirmation: %v", s)
	}
	n := 0
	for _, e := range c.Events() {
		if e.Kind == "failover_blocked" {
			n++
			if !strings.Contains(e.Detail, "db3 still receives") {
				t.Errorf("blocked: %s", e.Detail)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d failover_blocked events, want 1: %v", n, allEvents(c))
	}
	// Once db3 loses it too, the failover goes ahead.
	r3.f.SetReplica(lost(p.f))
	r.rounds(1)
	if got, err := c.Primary(); err != nil || got.Name != "db3" {
		t.Fatalf("primary once confirmed: %v, %v", got, err)
	}
}

// TestFailoverAutoOff: with failover.auto false a dead primary is an
// event, once; nothing is promoted and writes fail at once.
func TestFailoverAutoOff(t *testing.T) {
	fo := autoFailover
	fo.Auto = false
	r := newRig(t, "0-1-10", "0-1-12", fo)
	c, r2, r3 := r.c, r.r2, r.r3
	r.primaryDies()
	r.rounds(4)
	if s := append(r2.statements(), r3.statements()...); len(s) != 0 {
		t.Fatalf("auto off, yet: %v", s)
	}
	if k := allEvents(c); !slices.Contains(k, "failover_needed:db1") || slices.Index(k, "failover_needed:db1") != slices.IndexFunc(k, func(s string) bool { return strings.HasPrefix(s, "failover_needed") }) {
		t.Fatalf("events %v", k)
	}
	start := time.Now()
	if _, err := c.WaitPrimary(context.Background()); !errors.Is(err, ErrNoPrimary) || time.Since(start) > time.Second {
		t.Fatalf("WaitPrimary without failover: %v after %v; want an immediate no-primary error", err, time.Since(start))
	}
}

// TestWaitPrimaryHoldsUntilPromotion: statements that need the primary
// wait while the primary is down and failover.auto may replace it, and go
// on with the new one; without a promotion they fail after hold_timeout,
// saying so.
func TestWaitPrimaryHoldsUntilPromotion(t *testing.T) {
	fo := autoFailover
	fo.HoldTimeout = time.Minute
	r := newRig(t, "0-1-10", "0-1-12", fo)
	c := r.c
	r.primaryDies()
	r.rounds(1) // down, one failure: no failover yet
	got := make(chan string, 1)
	go func() {
		s, err := c.WaitPrimary(context.Background())
		if err != nil {
			got <- err.Error()
			return
		}
		got <- s.Name
	}()
	select {
	case g := <-got:
		t.Fatalf("WaitPrimary returned %q before the failover", g)
	case <-time.After(50 * time.Millisecond):
	}
	r.rounds(1)
	select {
	case g := <-got:
		if g != "db3" {
			t.Fatalf("WaitPrimary: %s", g)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("WaitPrimary still waits after the promotion")
	}

	// No promotion in time (one failed check of three): the wait ends
	// with the reason and how long it waited.
	short := newRig(t, "0-1-10", "0-1-12", FailoverOptions{Auto: true, HoldTimeout: 100 * time.Millisecond})
	short.p.crash()
	short.rounds(1)
	_, err := short.c.WaitPrimary(context.Background())
	var npe *NoPrimaryError
	if !errors.As(err, &npe) || !strings.Contains(err.Error(), "waited") || !strings.Contains(err.Error(), "db1 is unreachable") {
		t.Fatalf("WaitPrimary without a promotion: %v", err)
	}
}

// TestStalePrimaryRejoins: the old primary comes back writable after the
// failover; it is set read-only at once and, its history being a prefix of
// the new primary's, made a replica of it; once it replicates it is back
// in service.
func TestStalePrimaryRejoins(t *testing.T) {
	r := newRig(t, "0-1-10", "0-1-12", autoFailover)
	c, p, r3 := r.c, r.p, r.r3
	r.primaryDies()
	r.rounds(2)
	if got, err := c.Primary(); err != nil || got.Name != "db3" {
		t.Fatalf("primary: %v, %v", got, err)
	}
	p.statements()
	p.f.SetDown(false) // restarted, writable, at 0-1-12 like db3
	r.rounds(1)
	if got, _ := c.Primary(); got == nil || got.Name != "db3" {
		t.Fatalf("primary with the old one back writable: %v", got)
	}
	if c.SplitBrain() != "" {
		t.Fatalf("split brain: %s", c.SplitBrain())
	}
	host, port, _ := net.SplitHostPort(r3.f.Addr())
	stmts := p.statements()
	want := []string{"SET GLOBAL read_only = ON", "SELECT GET_LOCK", "SET GLOBAL read_only = ON", "SET GLOBAL read_only = ON", "STOP SLAVE",
		"SET GLOBAL gtid_slave_pos = '0-1-12'", "CHANGE MASTER TO MASTER_HOST='" + host + "', MASTER_PORT=" + port, "START SLAVE", "DO RELEASE_LOCK"}
	if !prefixes(stmts, want) {
		t.Fatalf("db1 ran %q, want %q", stmts, want)
	}
	if !c.Server("db1").Fenced() {
		t.Fatal("db1 in service before it replicates")
	}
	r.rounds(1)
	if c.Server("db1").Fenced() {
		t.Fatalf("db1 replicates from db3 but is still fenced: %v", allEvents(c))
	}
	r.rounds(1)
	if r := names(c.Replicas(nil)); !slices.Contains(r, "db1") {
		t.Fatalf("read pool %v without the rejoined db1", r)
	}
	if !slices.Contains(allEvents(c), "rejoined:db1") {
		t.Fatalf("events %v", allEvents(c))
	}
}

// TestStalePrimaryWithErrantTransactionsIsHeldOut: the old primary comes
// back with a transaction the new primary never received: it is set
// read-only and held OFFLINE_HARD, the event naming the transaction, and
// is not made a replica.
func TestStalePrimaryWithErrantTransactionsIsHeldOut(t *testing.T) {
	r := newRig(t, "0-1-10", "0-1-12", autoFailover)
	c, p := r.c, r.p
	p.f.SetGTIDPos("0-1-13") // committed, never replicated
	r.primaryDies()
	r.rounds(2)
	p.statements()
	p.f.SetDown(false)
	r.rounds(2)
	s := c.Server("db1")
	if s.Status() != StatusOfflineHard || !s.Fenced() {
		t.Fatalf("db1: %v, fenced %v", s.Status(), s.Fenced())
	}
	for _, q := range p.statements() {
		if strings.HasPrefix(q, "CHANGE MASTER") || strings.HasPrefix(q, "START SLAVE") {
			t.Fatalf("db1 with an errant transaction was made a replica: %s", q)
		}
	}
	if p.readOnly != true {
		t.Fatal("db1 was not set read-only")
	}
	var detail string
	for _, e := range c.Events() {
		if e.Kind == "errant_transactions" {
			detail = e.Detail
		}
	}
	if !strings.Contains(detail, "0-1-13") {
		t.Fatalf("errant event %q does not name 0-1-13", detail)
	}
}

// TestFailoverNeedsTheLockOnAMajority: with failover.cooperative, a
// switchyard that cannot take the topology lock on a majority of the
// servers (another holds it on db2) promotes nothing, and the old primary
// is not fenced.
func TestFailoverNeedsTheLockOnAMajority(t *testing.T) {
	fo := autoFailover
	fo.HoldTimeout = 100 * time.Millisecond
	r := newRig(t, "0-1-10", "0-1-12", fo)
	c, r2, r3 := r.c, r.r2, r.r3
	r.primaryDies()
	r2.lockBusy = true
	r.rounds(2)
	for _, q := range r3.statements() {
		if strings.HasPrefix(q, "STOP SLAVE") || strings.HasPrefix(q, "RESET SLAVE") {
			t.Fatalf("promoted without the lock: %s", q)
		}
	}
	if _, err := c.Primary(); err == nil || c.Server("db1").Fenced() {
		t.Fatalf("primary %v, db1 fenced %v", err, c.Server("db1").Fenced())
	}
	if !slices.Contains(allEvents(c), "failover_failed:db1") {
		t.Fatalf("events %v", allEvents(c))
	}
}

func TestErrantGTIDs(t *testing.T) {
	for _, tc := range []struct {
		have, slave, binlog string
		want                string
	}{
		{"0-1-12", "0-1-12", "0-3-20", ""},                   // replicated up to it, then wrote its own
		{"0-1-13", "0-1-12", "0-3-20", "0-1-13"},             // one the new primary never received
		{"0-1-15", "0-1-12", "0-1-12", "0-1-13..0-1-15"},     // several
		{"0-1-9", "0-1-12", "0-1-12", ""},                    // behind: a prefix
		{"0-2-30", "0-1-12", "0-2-40", ""},                   // another lineage: by sequence
		{"0-2-41", "0-1-12", "0-2-40", "0-2-41"},             // beyond the binlog
		{"0-1-12,5-1-3", "0-1-12", "0-1-12", "5-1-1..5-1-3"}, // a domain it lacks
		{"", "0-1-12", "0-1-12", ""},
	} {
		if got := strings.Join(errantGTIDs(tc.have, tc.slave, tc.binlog), ","); got != tc.want {
			t.Errorf("errantGTIDs(%q, %q, %q) = %q, want %q", tc.have, tc.slave, tc.binlog, got, tc.want)
		}
	}
}

func TestChooseCandidate(t *testing.T) {
	srv := func(id int, name string, weight int) *Server {
		s := &Server{ID: id, Name: name}
		s.apply(ServerSpec{Name: name, Weight: weight})
		return s
	}
	replica := func(s *Server, io, applied string) serverState {
		return serverState{srv: s, readOnly: true, slavePos: applied, current: applied,
			repl: replication{configured: true, sqlRunning: true, ioPos: io}}
	}
	a, b, d := srv(1, "db2", 100), srv(2, "db3", 100), srv(3, "db4", 200)
	for _, tc := range []struct {
		name   string
		states []serverState
		want   string
	}{
		{"received wins", []serverState{replica(a, "0-1-12", "0-1-10"), replica(b, "0-1-11", "0-1-11")}, "db2"},
		{"then applied", []serverState{replica(a, "0-1-12", "0-1-10"), replica(b, "0-1-12", "0-1-11")}, "db3"},
		{"then weight", []serverState{replica(a, "0-1-12", "0-1-12"), replica(d, "0-1-12", "0-1-12")}, "db4"},
		{"then config order", []serverState{replica(a, "0-1-12", "0-1-12"), replica(b, "0-1-12", "0-1-12")}, "db2"},
	} {
		got, why := choose(tc.states)
		if got == nil || got.srv.Name != tc.want {
			t.Errorf("%s: chose %v (%s), want %s", tc.name, got, why, tc.want)
		}
	}
	np := srv(4, "db5", 100)
	np.promotable.Store(false)
	stopped := replica(b, "0-1-20", "0-1-20")
	stopped.repl.sqlRunning = false
	notReplica := replica(d, "0-1-30", "0-1-30")
	notReplica.repl.configured = false
	unreachable := serverState{srv: srv(5, "db6", 100), err: errors.New("refused")}
	got, why := choose([]serverState{replica(np, "0-1-40", "0-1-40"), stopped, notReplica, unreachable, replica(a, "0-1-1", "0-1-1")})
	if got == nil || got.srv.Name != "db2" {
		t.Fatalf("chose %v (%s)", got, why)
	}
	for _, w := range []string{"db5: not promotable", "db3: its SQL thread is stopped", "db4: not replicating", "db6: unreachable"} {
		if !strings.Contains(why, w) {
			t.Errorf("why %q lacks %q", why, w)
		}
	}
}

func TestSameAddressAndRedact(t *testing.T) {
	if !sameAddress("127.0.0.1:3306", "127.0.0.1:03306") || sameAddress("127.0.0.1:3306", "127.0.0.1:3307") || !sameAddress("DB1:1", "db1:1") {
		t.Error("sameAddress")
	}
	q := "CHANGE MASTER TO MASTER_HOST='h', MASTER_PORT=1, MASTER_USER='u', MASTER_PASSWORD='s3cr3t', MASTER_USE_GTID=slave_pos"
	if r := redact(q); strings.Contains(r, "s3cr3t") || !strings.Contains(r, "MASTER_USE_GTID") {
		t.Errorf("redact: %s", r)
	}
}

// TestOperatorFailoverAndSwitchover: Failover and Switchover are served by
// the monitor's goroutine. A switchover to a named replica holds writes,
// sets the primary read-only, promotes the target and makes the old
// primary its replica; a forced failover of that live primary sets it
// read-only and fences it.
func TestOperatorFailoverAndSwitchover(t *testing.T) {
	c, fakes := failoverCluster(t, "0-1-12", "0-1-12", autoFailover)
	p, r2, r3 := fakes[0], fakes[1], fakes[2]
	c.topo.serving.Store(false)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Probe(ctx, ProbeOptions{User: "monitor", Password: "monitor", Interval: 20 * time.Millisecond, Timeout: 5 * time.Second, MaxReplicationLag: 10 * time.Second})
	}()
	defer func() {
		cancel()
		<-done
	}()
	mysqltest.Eventually(t, "the monitor to serve requests", func() bool { return c.topo.serving.Load() })

	if _, err := c.Switchover(ctx, "db9"); err == nil || !strings.Contains(err.Error(), `"db9" is not a replica`) {
		t.Fatalf("switchover to an unknown server: %v", err)
	}
	got, err := c.Switchover(ctx, "db2")
	if err != nil || got.Name != "db2" {
		t.Fatalf("switchover: %v, %v", got, err)
	}
	if s := p.statements(); !slices.Contains(s, "SET GLOBAL read_only = ON") || !slices.ContainsFunc(s, func(q string) bool { return strings.HasPrefix(q, "CHANGE MASTER") }) {
		t.Fatalf("old primary ran %q", s)
	}
	if s := r2.statements(); !slices.Contains(s, "RESET SLAVE ALL") || !slices.Contains(s, "SET GLOBAL read_only = OFF") {
		t.Fatalf("target ran %q", s)
	}
	if s := r3.statements(); !slices.ContainsFunc(s, func(q string) bool { return strings.HasPrefix(q, "CHANGE MASTER") }) {
		t.Fatalf("db3 was not re-pointed: %q", s)
	}
	mysqltest.Eventually(t, "db1 to rejoin as a replica", func() bool { return !c.Server("db1").Fenced() && c.Server("db1").Role() == RoleReplica })
	if pr, err := c.Primary(); err != nil || pr.Name != "db2" {
		t.Fatalf("primary after the switchover: %v, %v", pr, err)
	}
	if k := allEvents(c); !slices.Contains(k, "switchover_started:db1") || !slices.Contains(k, "switchover_done:db2") {
		t.Fatalf("events %v", k)
	}

	// A forced failover of the live primary db2.
	got, err = c.Failover(ctx)
	if err != nil || got.Name == "db2" {
		t.Fatalf("failover: %v, %v", got, err)
	}
	if s := r2.statements(); !slices.Contains(s, "SET GLOBAL read_only = ON") {
		t.Fatalf("the live primary was not set read-only: %q", s)
	}
	if pr, err := c.Primary(); err != nil || pr != got {
		t.Fatalf("primary after the failover: %v, %v", pr, err)
	}
}

func countOf(list []string, v string) int {
	n := 0
	for _, x := range list {
		if x == v {
			n++
		}
	}
	return n
}

// TestTwoSwitchyardsPromoteOnce: two switchyards (two Clusters over the
// same servers) take the primary for dead at the same moment; the topology
// lock lets one promote and the other, once it holds the lock, finds the
// new primary and follows it. (Without the lock both promote.)
func TestTwoSwitchyardsPromoteOnce(t *testing.T) {
	c1, fakes := failoverCluster(t, "0-1-10", "0-1-12", autoFailover)
	p, r2, r3 := fakes[0], fakes[1], fakes[2]
	c2 := clusterOver(t, Options{Failover: autoFailover}, p.f, r2.f, r3.f)
	c2.SetProbing(true)
	c2.topo.serving.Store(true)
	clusters := []*Cluster{c1, c2}
	watches := make([]failoverWatch, 2)
	conns := []map[*Server]*Conn{{}, {}}
	defer closeAll(conns[0])
	defer closeAll(conns[1])
	for i, c := range clusters {
		rounds(c, &watches[i], conns[i], 1)
	}
	p.crash()
	r2.f.SetReplica(lost(p.f))
	r3.f.SetReplica(lost(p.f))
	for i, c := range clusters {
		rounds(c, &watches[i], conns[i], 1) // one failure each: below the threshold
	}
	var wg sync.WaitGroup
	for i, c := range clusters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rounds(c, &watches[i], conns[i], 1)
		}()
	}
	wg.Wait()
	resets := 0
	for _, f := range fakes {
		for _, q := range f.statements() {
			if q == "RESET SLAVE ALL" {
				resets++
			}
		}
	}
	if resets != 1 {
		t.Fatalf("%d promotions by two switchyards; events %v / %v", resets, allEvents(c1), allEvents(c2))
	}
	var kinds []string
	for _, c := range clusters {
		if pr, err := c.Primary(); err != nil || pr.Name != "db3" {
			t.Fatalf("primary %v, %v; events %v", pr, err, allEvents(c))
		}
		kinds = append(kinds, allEvents(c)...)
	}
	// The other followed the promotion it found once it held the lock,
	// or, when its checks came after the promotion, never failed over.
	if n := countOf(kinds, "promoted:db3"); n != 1 {
		t.Fatalf("%d promotion events: %v", n, kinds)
	}
}

// TestNoWaitWithoutCandidate: with nothing to promote (every replica down,
// or none promotable) statements fail at once instead of waiting for a
// failover that cannot come.
func TestNoWaitWithoutCandidate(t *testing.T) {
	fo := autoFailover
	fo.HoldTimeout = time.Minute
	r := newRig(t, "0-1-10", "0-1-12", fo)
	c := r.c
	c.Server("db2").promotable.Store(false)
	c.Server("db3").promotable.Store(false)
	r.p.crash()
	r.rounds(1)
	done := make(chan error, 1)
	go func() {
		_, err := c.WaitPrimary(context.Background())
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrNoPrimary) || strings.Contains(err.Error(), "waited") {
			t.Fatalf("WaitPrimary: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WaitPrimary waits for a failover with nothing to promote")
	}
}
