package backend

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/backend/gtid"
	"switchyard/wire"
)

// The monitor checks every server each interval with its own account:
// whether it answers, its role (@@read_only), its GTID position, its
// replication threads and lag, and what it replicates from. From that it
// keeps the read pool (replicas fit to serve reads) and detects split
// brain. Every change goes through the Cluster's state-change functions,
// which log it once.
//
// The read pool is decided once every server of a round has been checked,
// because a replica's fitness depends on the primary's state: a replica
// whose IO thread lost its source is unfit while the primary answers (its
// lag is unknown and growing), but while the primary is unreachable from
// the proxy too, the replica has everything there is and serves reads with
// the lag it had when the primary went away. The monitor never writes to
// a server to hurry a replica's reconnection (its IO thread retries every
// MASTER_CONNECT_RETRY); when the primary is back, a replica whose IO
// thread has not reconnected yet keeps serving only while its GTID
// position covers the primary's, that is until the primary's first write.

// ProbeOptions configure the monitor.
type ProbeOptions struct {
	User     string
	Password string
	Interval time.Duration
	Timeout  time.Duration
	// MaxReplicationLag: replicas lagging more serve no reads, unless a
	// server sets its own.
	MaxReplicationLag time.Duration
	// HeartbeatTable, "schema.table" or "", is where the monitor writes a
	// timestamp on the primary every interval and reads it back on the
	// replicas: lag to the millisecond instead of Seconds_Behind_Master's
	// whole seconds.
	HeartbeatTable string
}

// Probe checks every server once now and then every interval until ctx
// ends. A panic in a check is logged and the monitor goes on. After each
// round it fails over if the primary is dead and tends fenced servers;
// between rounds it serves Failover and Switchover (failover.go).
func (c *Cluster) Probe(ctx context.Context, opt ProbeOptions) {
	conns := make(map[*Server]*Conn)
	defer func() {
		for _, cn := range conns {
			cn.Close()
		}
	}()
	c.topo.serving.Store(true)
	defer c.topo.serving.Store(false)
	var fm failoverWatch
	t := time.NewTicker(opt.Interval)
	defer t.Stop()
	for {
		checks := c.probeAll(ctx, opt, conns)
		c.afterChecks(ctx, opt, &fm, checks)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case req := <-c.topo.requests:
			c.serveRequest(ctx, opt, &fm, req)
		}
	}
}

// ProbeOnce checks every server once, for startup, so that the first
// clients find roles already known.
func (c *Cluster) ProbeOnce(ctx context.Context, opt ProbeOptions) {
	conns := make(map[*Server]*Conn)
	c.probeAll(ctx, opt, conns)
	for _, cn := range conns {
		cn.Close()
	}
}

// probeAll checks every server in parallel and returns what it found of
// those that answered.
func (c *Cluster) probeAll(ctx context.Context, opt ProbeOptions, conns map[*Server]*Conn) map[*Server]check {
	servers := c.Servers()
	var mu sync.Mutex
	var wg sync.WaitGroup
	checks := make(map[*Server]check, len(servers))
	// Every check of a round carries the round's start, so a primary and a
	// replica checked in the same round were seen at the same moment
	// (judgeReplica compares them).
	round := time.Now()
	for _, s := range servers {
		mu.Lock()
		cn := conns[s]
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.recovered("monitor check of " + s.Name)
			cn, ck, err := c.probeServer(ctx, s, cn, opt, round)
			s.traffic.lastCheck.Store(time.Now().UnixNano())
			mu.Lock()
			if err != nil {
				delete(conns, s)
			} else {
				conns[s] = cn
				checks[s] = ck
			}
			mu.Unlock()
			if err != nil {
				if cn != nil {
					cn.Close()
				}
				c.setHealthy(s, false, err, time.Now())
			}
		}()
	}
	wg.Wait()
	c.checkSplitBrain(servers)
	c.updateReadPool(servers, checks, opt)
	// Split brain has its own events; it says nothing of whether a
	// primary is reachable.
	if _, err := c.Primary(); !errors.Is(err, ErrSplitBrain) {
		c.setNoPrimary(err != nil, err)
	}
	return checks
}

// check is what one check found of a server that answered it.
type check struct {
	at   time.Time
	role Role
	// readOnly is @@read_only: the primary too may be read-only (roleOf).
	readOnly bool
	repl     replication
}

// updateReadPool decides, from this round's checks, which replicas serve
// reads, and why the others do not.
func (c *Cluster) updateReadPool(servers []*Server, checks map[*Server]check, opt ProbeOptions) {
	down := c.unreachablePrimary()
	primary, _ := c.Primary()
	for _, s := range servers {
		ck, ok := checks[s]
		if !ok {
			continue // it did not answer: SHUNNED keeps it out
		}
		if ck.role != RoleReplica {
			c.setFrozen(s, false, "now "+ck.role.String())
			c.setReadable(s, false, "")
			continue
		}
		if s.fenced.Load() {
			c.setFrozen(s, false, "fenced")
			c.setReadable(s, false, "fenced: kept out until it replicates from the primary")
			continue
		}
		maxLag := opt.MaxReplicationLag
		if s.MaxReplicationLag() > 0 {
			maxLag = s.MaxReplicationLag()
		}
		f := c.judgeReplica(s, ck, down, primary, maxLag)
		s.lagMs.Store(f.lagMs)
		c.setFrozen(s, f.frozen, f.frozenWhy)
		c.setReadable(s, f.why == "", f.why)
	}
}

// fitness is the verdict on a replica: the lag it is taken to have (-1:
// unknown), whether that lag is frozen, and what keeps it out of the read
// pool ("" if nothing).
type fitness struct {
	lagMs     int64
	frozen    bool
	frozenWhy string // why the lag froze or thawed, for the log
	why       string
}

// judgeReplica decides whether replica s serves reads after check ck.
// down is the unreachable primary, if the primary is; primary the one that
// takes writes, if one does.
func (c *Cluster) judgeReplica(s *Server, ck check, down, primary *Server, maxLag time.Duration) fitness {
	r := ck.repl
	overLimit := func(lagMs int64) string {
		if lag := time.Duration(lagMs) * time.Millisecond; lag > maxLag {
			return fmt.Sprintf("replication lag %v over %v", lag, maxLag)
		}
		return ""
	}
	switch {
	case !r.configured:
		return fitness{lagMs: -1, why: "read-only but not replicating from anything", frozenWhy: "not replicating"}
	case r.running && r.lagMs >= 0:
		s.replicatedAt.Store(&ck.at)
		s.replicatedLagMs.Store(r.lagMs)
		return fitness{lagMs: r.lagMs, why: overLimit(r.lagMs), frozenWhy: "replicating again"}
	case r.running:
		return fitness{lagMs: -1, why: "replication lag unknown (Seconds_Behind_Master is NULL)", frozenWhy: "replicating again"}
	case !r.sqlRunning:
		// Its SQL thread does not apply what it has: stale whatever the
		// primary does.
		return fitness{lagMs: -1, why: r.stopped, frozenWhy: r.stopped}
	case down != nil:
		// Its IO thread cannot reach a source the proxy cannot reach
		// either: no one writes, so its lag is what it was when the
		// primary went away. It was last measured at replicatedAt; if
		// that was before the primary's last passing check, the replica
		// had stopped replicating first and is behind by the difference
		// too (one interval at most when the replica noticed the loss
		// before the monitor did; much more if it had stopped for
		// another reason).
		at := s.replicatedAt.Load()
		if at == nil {
			return fitness{lagMs: -1, why: fmt.Sprintf("%s, and it was not seen replicating before primary %s became unreachable", r.stopped, down.Name)}
		}
		lagMs := s.replicatedLagMs.Load()
		if up := down.upAt.Load(); up != nil && up.After(*at) {
			lagMs += up.Sub(*at).Milliseconds()
		}
		if why := overLimit(lagMs); why != "" {
			return fitness{lagMs: lagMs, why: fmt.Sprintf("%s while primary %s is unreachable: %s", r.stopped, down.Name, why)}
		}
		return fitness{lagMs: lagMs, frozen: true,
			frozenWhy: fmt.Sprintf("primary %s is unreachable; lag frozen at %v", down.Name, time.Duration(lagMs)*time.Millisecond)}
	case s.frozen.Load() && primary != nil && positionCovers(r.gtid, primary.GTID()):
		// The primary is back and its IO thread has not reconnected yet,
		// but the primary has written nothing it lacks: keep it.
		return fitness{lagMs: s.lagMs.Load(), frozen: true}
	default:
		why := r.stopped
		if s.frozen.Load() {
			why += ": the primary is back and has written since"
		}
		return fitness{lagMs: -1, why: why, frozenWhy: why}
	}
}

// positionCovers reports whether GTID position pos includes every
// transaction of position of: each of of's GTIDs is covered. Anything
// unreadable (MySQL's UUID sets, for one) covers nothing.
func positionCovers(pos, of string) bool {
	for of != "" {
		var g string
		g, of, _ = strings.Cut(of, ",")
		if g = strings.TrimSpace(g); g != "" && !gtid.Covers(pos, g) {
			return false
		}
	}
	return true
}

// checkSplitBrain looks for two writable servers, or replicas that follow
// different sources. Either means the servers disagree on which is the
// primary: writes are refused until an operator settles it, reads go on.
func (c *Cluster) checkSplitBrain(servers []*Server) {
	var writable []string
	sources := map[string]bool{}
	for _, s := range servers {
		if !s.Healthy() || s.fenced.Load() {
			continue // a fenced server is a stale primary, not a rival
		}
		if s.Role() == RolePrimary {
			writable = append(writable, s.Name)
		}
		if src := s.source.Load(); s.Role() == RoleReplica && src != nil && *src != ":" && s.replicating.Load() {
			sources[*src] = true
		}
	}
	why := ""
	switch {
	case len(writable) > 1:
		why = fmt.Sprintf("servers %s are all writable (read_only=OFF)", strings.Join(writable, ", "))
	case len(sources) > 1:
		names := make([]string, 0, len(sources))
		for src := range sources {
			names = append(names, src)
		}
		sort.Strings(names)
		why = fmt.Sprintf("replicas follow different sources (%s)", strings.Join(names, ", "))
	}
	c.setSplitBrain(why)
}

// probeServer checks s on cn (dialed if nil or broken) and records its
// health, role, GTID position and replication state; the caller decides
// the read pool from the returned check once every server is checked.
func (c *Cluster) probeServer(ctx context.Context, s *Server, cn *Conn, opt ProbeOptions, round time.Time) (*Conn, check, error) {
	var ck check
	if cn == nil || cn.Broken() {
		var err error
		cn, err = dial(ctx, s, DialOptions{
			readers: &c.readers,
			Creds:   Credentials{User: opt.User, Plain: opt.Password, HasPassword: opt.Password != ""},
			timeout: opt.Timeout,
			tls:     c.options().TLS,
		})
		if err != nil {
			return nil, ck, err
		}
		c.version.Store(cn.ServerVersion())
		// Read once per monitor connection: it needs a server restart to
		// change.
		if res, err := cn.Query("SELECT @@skip_name_resolve"); err == nil && len(res.Rows) == 1 && len(res.Rows[0]) == 1 && res.Rows[0][0].Valid {
			c.resolvesNames.Store(res.Rows[0][0].String == "0")
		}
	}
	defer func() {
		if r := recover(); r != nil {
			cn.Abort() // nobody else will close it; it stopped at an unknown point
			panic(r)
		}
	}()
	_ = cn.SetDeadline(time.Now().Add(opt.Timeout))
	defer cn.SetDeadline(time.Time{})
	// MariaDB names its GTID positions differently from MySQL 8.
	asked := time.Now()
	res, err := cn.Query("SELECT @@read_only, @@gtid_current_pos")
	s.traffic.checkMicros.Store(time.Since(asked).Microseconds())
	var me *mysql.MyError
	if errors.As(err, &me) && me.Code == mysql.ER_UNKNOWN_SYSTEM_VARIABLE {
		res, err = cn.Query("SELECT @@read_only, @@gtid_executed")
	}
	if err != nil {
		return cn, ck, err
	}
	if len(res.Rows) != 1 || len(res.Rows[0]) != 2 || !res.Rows[0][0].Valid {
		return cn, ck, errors.New("unexpected answer to SELECT @@read_only")
	}
	pos := res.Rows[0][1].String
	s.gtid.Store(&pos)
	s.forgetReached(asked)
	readOnly := res.Rows[0][0].String != "0"
	repl, err := replicationStatus(cn)
	if err != nil {
		return cn, ck, err
	}
	repl.gtid = pos
	role := c.roleOf(s, readOnly, repl)
	if !readOnly && s.checked.Load() && !s.Healthy() && !s.fenced.Load() {
		// It comes back writable while another server is the primary:
		// the primary a failover replaced, restarted writable. It gets
		// nothing from switchyard from now on (tendFenced sets it
		// read-only and rejoins it).
		if p, err := c.Primary(); err == nil && p != s {
			c.fence(s, fmt.Sprintf("came back writable while %s is the primary: a stale primary", p.Name))
		}
	}
	if opt.HeartbeatTable != "" && !s.fenced.Load() {
		switch {
		case role == RolePrimary && !readOnly:
			// Never on a read-only one (the only server kept the primary
			// while read-only): the monitor's account may write past
			// read_only, and its writes there would be errant
			// transactions for the server it is about to replicate from.
			if err := writeHeartbeat(cn, opt.HeartbeatTable); err != nil {
				c.log.Warn("heartbeat write failed", "server", s.Name, "table", opt.HeartbeatTable, "err", err)
			}
		case role == RoleReplica && repl.running:
			repl.lagMs = readHeartbeat(cn, opt.HeartbeatTable)
		}
	}
	if role == RoleReplica {
		c.log.Debug("replica checked", "server", s.Name, "replicating", repl.running, "lag_ms", repl.lagMs, "gtid", pos)
	}
	// The check passed: the server is up before it is anything else, so
	// its events read in that order (up, then role, then the read pool).
	c.setHealthy(s, true, nil, round)
	// The flag before the role: a reload that adds servers in between
	// must find a read-only primary marked as one (Primary skips it then).
	c.setReadOnlyPrimary(s, role == RolePrimary && readOnly)
	c.setRole(s, role)
	s.replicating.Store(repl.running)
	src := repl.source
	s.source.Store(&src)
	if role != RoleReplica {
		s.lagMs.Store(repl.lagMs)
	}
	return cn, check{at: round, role: role, readOnly: readOnly, repl: repl}, nil
}

// roleOf decides the role of s from what a check read: a writable server
// is the primary, a read-only one a replica; except the only server of the
// cluster when it replicates from nothing, which stays the primary while
// read-only. Its clients' writes then go to it, and it refuses those of
// accounts without READ_ONLY ADMIN itself (1290), as it does for clients
// that reach it directly (SET GLOBAL read_only for maintenance, mtr's
// read_only test); with no primary they would get the proxy's 1105
// instead, or not, depending on whether a check fell between the change
// and the write. Nothing else could take those writes: no server
// replicates from it or could be promoted in its place.
//
// A read-only server among others is never the primary: during a
// switchover made by another tool, the old primary is read-only and
// replicates from nothing until it is re-pointed, and writes landing on it
// then would be lost to the new primary. A server that replicates, even
// with its replication stopped, is a replica whatever else is configured.
// switchyard's own failover and switchover need two servers, and a server
// they demote is fenced (Primary skips it) until it replicates.
func (c *Cluster) roleOf(s *Server, readOnly bool, repl replication) Role {
	switch {
	case !readOnly:
		return RolePrimary
	case !repl.configured && c.onlyServer(s):
		return RolePrimary
	}
	return RoleReplica
}

// onlyServer reports whether s is the cluster's only server.
func (c *Cluster) onlyServer(s *Server) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.servers) == 1 && c.servers[0] == s
}

// writeHeartbeat stores the proxy's clock, in microseconds, in the
// heartbeat table on the primary, creating the table on first use.
func writeHeartbeat(cn *Conn, table string) error {
	stmt := fmt.Sprintf("REPLACE INTO %s (id, ts) VALUES (1, %d)", table, time.Now().UnixMicro())
	err := cn.Exec(stmt)
	var me *mysql.MyError
	if errors.As(err, &me) && (me.Code == mysql.ER_NO_SUCH_TABLE || me.Code == mysql.ER_BAD_DB_ERROR) {
		schema, _, _ := strings.Cut(table, ".")
		for _, ddl := range []string{
			"CREATE DATABASE IF NOT EXISTS " + schema,
			"CREATE TABLE IF NOT EXISTS " + table + " (id TINYINT PRIMARY KEY, ts BIGINT NOT NULL)",
		} {
			if err := cn.Exec(ddl); err != nil {
				return err
			}
		}
		err = cn.Exec(stmt)
	}
	return err
}

// readHeartbeat returns the age in milliseconds of the newest heartbeat a
// replica has applied, or -1 when it has none. The timestamp and "now" both
// come from the proxy's clock, so server clocks do not matter.
func readHeartbeat(cn *Conn, table string) int64 {
	res, err := cn.Query("SELECT ts FROM " + table + " WHERE id = 1")
	if err != nil || len(res.Rows) != 1 || len(res.Rows[0]) != 1 || !res.Rows[0][0].Valid {
		return -1
	}
	ts, err := strconv.ParseInt(res.Rows[0][0].String, 10, 64)
	if err != nil {
		return -1
	}
	return max(0, (time.Now().UnixMicro()-ts)/1000)
}

// replication is what a server says of its own replication.
type replication struct {
	source     string // host:port it replicates from
	configured bool   // it replicates from a source
	running    bool   // IO and SQL threads both run
	sqlRunning bool   // the SQL thread runs: it applies what the IO thread fetched
	stopped    string // why not, when configured but not running
	lagMs      int64  // -1: unknown
	gtid       string // the server's GTID position
	ioRunning  bool   // the IO thread is connected to the source
	ioPos      string // Gtid_IO_Pos: what the IO thread received (MariaDB)
	// lastIOErrno and lastIOError are the IO thread's last error.
	lastIOErrno int
	lastIOError string
}

// replicationStatus reads SHOW ALL SLAVES STATUS (MariaDB), falling back to
// SHOW REPLICA STATUS (MySQL 8).
func replicationStatus(cn *Conn) (replication, error) {
	r := replication{lagMs: -1}
	res, err := cn.Query("SHOW ALL SLAVES STATUS")
	if err != nil {
		var me *mysql.MyError
		if !errors.As(err, &me) || me.Code != mysql.ER_PARSE_ERROR {
			return r, err
		}
		if res, err = cn.Query("SHOW REPLICA STATUS"); err != nil {
			return r, err
		}
	}
	if len(res.Rows) == 0 {
		return r, nil
	}
	get := func(names ...string) (string, bool) { return column(res, names...) }
	r.configured = true
	host, _ := get("Master_Host", "Source_Host")
	port, _ := get("Master_Port", "Source_Port")
	r.source = net.JoinHostPort(host, port)
	io, _ := get("Slave_IO_Running", "Replica_IO_Running")
	sqlRunning, _ := get("Slave_SQL_Running", "Replica_SQL_Running")
	r.sqlRunning = sqlRunning == "Yes"
	r.ioRunning = io == "Yes"
	r.running = r.ioRunning && r.sqlRunning
	r.ioPos, _ = get("Gtid_IO_Pos")
	if v, ok := get("Last_IO_Errno"); ok {
		r.lastIOErrno, _ = strconv.Atoi(v)
	}
	r.lastIOError, _ = get("Last_IO_Error")
	if !r.running {
		r.stopped = fmt.Sprintf("replication not running (IO thread %s, SQL thread %s)", orDash(io), orDash(sqlRunning))
	}
	if v, ok := get("Seconds_Behind_Master", "Seconds_Behind_Source"); ok {
		if sec, err := strconv.ParseInt(v, 10, 64); err == nil {
			r.lagMs = sec * 1000
		}
	}
	return r, nil
}

// column returns the first row's value of the first of names that the
// result has and that is not NULL.
func column(res *wire.TextResult, names ...string) (string, bool) {
	for _, n := range names {
		if i := res.ColumnIndex(n); i >= 0 && i < len(res.Rows[0]) && res.Rows[0][i].Valid {
			return res.Rows[0][i].String, true
		}
	}
	return "", false
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
