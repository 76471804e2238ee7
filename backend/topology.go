package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Role is what a server is in the replication topology, as last seen.
type Role int32

const (
	RoleUnknown Role = iota
	RolePrimary
	RoleReplica
)

func (r Role) String() string {
	switch r {
	case RolePrimary:
		return "primary"
	case RoleReplica:
		return "replica"
	}
	return "unknown"
}

// ProbeOptions configure the topology checks.
type ProbeOptions struct {
	User     string
	Password string
	Interval time.Duration
	Timeout  time.Duration
	// MaxReplicationLag: replicas lagging more serve no reads, unless a
	// server sets its own.
	MaxReplicationLag time.Duration
	// HeartbeatTable, "schema.table" or "", is where the probe writes a
	// timestamp on the primary every interval and reads it back on the
	// replicas: lag to the millisecond instead of Seconds_Behind_Master's
	// whole seconds.
	HeartbeatTable string
	Logger         *slog.Logger
}

// Probe checks every server once now and then every interval until ctx
// ends: a server that answers is healthy, and its @@read_only tells its
// role. This is the minimal view routing needs; replication state and lag
// belong to the full monitor.
func (c *Cluster) Probe(ctx context.Context, opt ProbeOptions) {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	conns := make(map[*Server]*Conn)
	defer func() {
		for _, cn := range conns {
			cn.Close()
		}
	}()
	t := time.NewTicker(opt.Interval)
	defer t.Stop()
	for {
		c.probeAll(ctx, opt, conns)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
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

func (c *Cluster) probeAll(ctx context.Context, opt ProbeOptions, conns map[*Server]*Conn) {
	servers := c.Servers()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, s := range servers {
		mu.Lock()
		cn := conns[s]
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			cn, err := c.probeServer(ctx, s, cn, opt)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if cn != nil {
					cn.Close()
				}
				delete(conns, s)
				if s.healthy.Swap(false) || s.lastErr.Load() == nil {
					opt.Logger.Warn("server check failed; no new statements go to it", "server", s.Name, "addr", s.Address, "err", err)
					c.event("server_down", s.Name, err.Error())
				}
				s.lastErr.Store(&probeErr{err})
				return
			}
			conns[s] = cn
			s.lastErr.Store(&probeErr{})
			if !s.healthy.Swap(true) {
				opt.Logger.Info("server is up", "server", s.Name, "role", s.Role().String())
				c.event("server_up", s.Name, s.Role().String())
			}
		}()
	}
	wg.Wait()
	c.checkSplitBrain(servers, opt.Logger)
}

// checkSplitBrain looks for two writable servers, or replicas that follow
// different sources. Either means the servers disagree on which is the
// primary: writes are refused until an operator settles it, reads go on.
func (c *Cluster) checkSplitBrain(servers []*Server, log *slog.Logger) {
	var writable []string
	sources := map[string]bool{}
	for _, s := range servers {
		if !s.Healthy() {
			continue
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
	old := c.splitBrain.Load()
	switch {
	case why != "" && (old == nil || *old != why):
		c.splitBrain.Store(&why)
		log.Error("split brain: writes are refused until one primary remains", "reason", why)
		c.event("split_brain", "", why)
	case why == "" && old != nil:
		c.splitBrain.Store(nil)
		log.Info("split brain resolved: writes accepted again")
		c.event("split_brain_resolved", "", "")
	}
}

// SplitBrain returns why the servers disagree on the primary, or "".
func (c *Cluster) SplitBrain() string {
	if why := c.splitBrain.Load(); why != nil {
		return *why
	}
	return ""
}

type probeErr struct{ err error }

func (c *Cluster) probeServer(ctx context.Context, s *Server, cn *Conn, opt ProbeOptions) (*Conn, error) {
	if cn == nil || cn.Broken() {
		var err error
		cn, err = Dial(ctx, s, DialOptions{
			Readers: &c.readers,
			Creds:   Credentials{User: opt.User, Plain: opt.Password, HasPassword: opt.Password != ""},
			Timeout: opt.Timeout,
			TLS:     c.opt.TLS,
		})
		if err != nil {
			return nil, err
		}
		c.version.Store(cn.ServerVersion)
	}
	_ = cn.SetDeadline(time.Now().Add(opt.Timeout))
	defer cn.SetDeadline(time.Time{})
	// MariaDB names its GTID positions differently from MySQL 8.
	rows, err := cn.Query("SELECT @@read_only, @@gtid_current_pos")
	var me *mysql.MyError
	if errors.As(err, &me) && me.Code == mysql.ER_UNKNOWN_SYSTEM_VARIABLE {
		rows, err = cn.Query("SELECT @@read_only, @@gtid_executed")
	}
	if err != nil {
		return cn, err
	}
	if len(rows) != 1 || len(rows[0]) != 2 || rows[0][0] == nil {
		return cn, errors.New("unexpected answer to SELECT @@read_only")
	}
	gtid := ""
	if rows[0][1] != nil {
		gtid = *rows[0][1]
	}
	s.gtid.Store(&gtid)
	role := RolePrimary
	if *rows[0][0] != "0" {
		role = RoleReplica
	}
	repl, err := replicationStatus(cn)
	if err != nil {
		return cn, err
	}
	if opt.HeartbeatTable != "" {
		switch role {
		case RolePrimary:
			if err := writeHeartbeat(cn, opt.HeartbeatTable); err != nil {
				opt.Logger.Warn("heartbeat write failed", "server", s.Name, "table", opt.HeartbeatTable, "err", err)
			}
		case RoleReplica:
			if repl.running {
				repl.lagMs = readHeartbeat(cn, opt.HeartbeatTable)
			}
		}
	}
	if role == RoleReplica {
		opt.Logger.Debug("replica checked", "server", s.Name, "replicating", repl.running, "lag_ms", repl.lagMs, "gtid", gtid)
	}
	if old := Role(s.role.Swap(int32(role))); old != role && old != RoleUnknown {
		opt.Logger.Warn("server changed role", "server", s.Name, "from", old.String(), "to", role.String())
		c.event("role", s.Name, fmt.Sprintf("%s -> %s", old, role))
	}
	s.replicating.Store(repl.running)
	src := repl.source
	s.source.Store(&src)
	s.lagMs.Store(repl.lagMs)
	maxLag := opt.MaxReplicationLag
	if s.MaxReplicationLag > 0 {
		maxLag = s.MaxReplicationLag
	}
	why := ""
	switch {
	case role != RoleReplica:
	case !repl.configured:
		why = "read-only but not replicating from anything"
	case !repl.running:
		why = repl.stopped
	case repl.lagMs < 0:
		why = "replication lag unknown (Seconds_Behind_Master is NULL)"
	case time.Duration(repl.lagMs)*time.Millisecond > maxLag:
		why = fmt.Sprintf("replication lag %v over %v", time.Duration(repl.lagMs)*time.Millisecond, maxLag)
	}
	c.setReadable(s, role == RoleReplica && why == "", why, opt.Logger)
	return cn, nil
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
	rows, err := cn.Query("SELECT ts FROM " + table + " WHERE id = 1")
	if err != nil || len(rows) != 1 || len(rows[0]) != 1 || rows[0][0] == nil {
		return -1
	}
	var ts int64
	if _, err := fmt.Sscan(*rows[0][0], &ts); err != nil {
		return -1
	}
	return max(0, (time.Now().UnixMicro()-ts)/1000)
}

// replication is what a server says of its own replication.
type replication struct {
	source     string // host:port it replicates from
	configured bool   // it replicates from a source
	running    bool   // IO and SQL threads both run
	stopped    string // why not, when configured but not running
	lagMs      int64  // -1: unknown
}

// replicationStatus reads SHOW ALL SLAVES STATUS (MariaDB), falling back to
// SHOW REPLICA STATUS (MySQL 8).
func replicationStatus(cn *Conn) (replication, error) {
	r := replication{lagMs: -1}
	cols, rows, err := cn.QueryNamed("SHOW ALL SLAVES STATUS")
	if err != nil {
		var me *mysql.MyError
		if !errors.As(err, &me) || me.Code != mysql.ER_PARSE_ERROR {
			return r, err
		}
		if cols, rows, err = cn.QueryNamed("SHOW REPLICA STATUS"); err != nil {
			return r, err
		}
	}
	if len(rows) == 0 {
		return r, nil
	}
	get := func(names ...string) (string, bool) {
		for _, n := range names {
			for i, c := range cols {
				if c == n && i < len(rows[0]) && rows[0][i] != nil {
					return *rows[0][i], true
				}
			}
		}
		return "", false
	}
	r.configured = true
	host, _ := get("Master_Host", "Source_Host")
	port, _ := get("Master_Port", "Source_Port")
	r.source = net.JoinHostPort(host, port)
	io, _ := get("Slave_IO_Running", "Replica_IO_Running")
	sqlRunning, _ := get("Slave_SQL_Running", "Replica_SQL_Running")
	r.running = io == "Yes" && sqlRunning == "Yes"
	if !r.running {
		r.stopped = fmt.Sprintf("replication not running (IO thread %s, SQL thread %s)", orDash(io), orDash(sqlRunning))
	}
	if v, ok := get("Seconds_Behind_Master", "Seconds_Behind_Source"); ok {
		var sec int64
		if _, err := fmt.Sscan(v, &sec); err == nil {
			r.lagMs = sec * 1000
		}
	}
	return r, nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// setReadable records whether s may serve reads, logging and recording an
// event when that changes.
func (c *Cluster) setReadable(s *Server, ok bool, why string, log *slog.Logger) {
	was := s.readable.Swap(ok)
	switch {
	case was && !ok:
		log.Warn("replica leaves the read pool", "server", s.Name, "reason", why)
		c.event("replica_out", s.Name, why)
	case !was && ok:
		log.Info("replica serves reads", "server", s.Name)
		c.event("replica_in", s.Name, "")
	}
	if why != "" {
		s.why.Store(&why)
	} else {
		s.why.Store(nil)
	}
}

// serverState is the part of Server the probe writes and routing reads.
type serverState struct {
	role    atomic.Int32
	healthy atomic.Bool
	lastErr atomic.Pointer[probeErr]
	// readable: a replica fit to serve reads (replicating, lag known and
	// within the limit); why says what keeps a replica out.
	readable    atomic.Bool
	why         atomic.Pointer[string]
	replicating atomic.Bool
	lagMs       atomic.Int64
	source      atomic.Pointer[string] // what a replica replicates from
	adminStatus atomic.Int32           // an operator's Status setting
	gtid        atomic.Pointer[string] // GTID position as last checked
	// dialFailures counts consecutive failed connects for clients; enough
	// of them shun the server before its next check.
	dialFailures atomic.Int32
	// Outstanding counts statements running on the server through this
	// proxy, for least-outstanding balancing.
	Outstanding atomic.Int64
}

// Role is the server's role as last probed.
func (s *Server) Role() Role { return Role(s.role.Load()) }

// Readable reports whether the server may serve reads now: an ONLINE
// replica whose replication runs with known lag within its limit.
func (s *Server) Readable() bool { return s.Status() == StatusOnline && s.readable.Load() }

// GTID is the server's GTID position as last checked.
func (s *Server) GTID() string {
	if g := s.gtid.Load(); g != nil {
		return *g
	}
	return ""
}

// Lag is the replication lag last measured; false when unknown.
func (s *Server) Lag() (time.Duration, bool) {
	ms := s.lagMs.Load()
	return time.Duration(ms) * time.Millisecond, ms >= 0
}

// Healthy reports whether the last check of the server succeeded.
func (s *Server) Healthy() bool { return s.healthy.Load() }

// LastError is the error of the last failed check, or nil.
func (s *Server) LastError() error {
	if e := s.lastErr.Load(); e != nil {
		return e.err
	}
	return nil
}

// Event is a change in the topology: a server going down or up, changing
// role, leaving or rejoining the read pool.
type Event struct {
	Time   time.Time
	Kind   string
	Server string
	Detail string
}

// maxEvents bounds the events kept.
const maxEvents = 1000

func (c *Cluster) event(kind, server, detail string) {
	c.evMu.Lock()
	defer c.evMu.Unlock()
	if len(c.events) >= maxEvents {
		c.events = append(c.events[:0], c.events[len(c.events)-maxEvents/2:]...)
	}
	c.events = append(c.events, Event{Time: time.Now(), Kind: kind, Server: server, Detail: detail})
}

// Events returns the recorded topology events, oldest first.
func (c *Cluster) Events() []Event {
	c.evMu.Lock()
	defer c.evMu.Unlock()
	return append([]Event(nil), c.events...)
}

// Status is a server's administrative and health state, as ProxySQL names
// them.
type Status int32

const (
	// StatusOnline takes new statements.
	StatusOnline Status = iota
	// StatusShunned fails its checks or connections; it takes nothing new
	// until a check passes again.
	StatusShunned
	// StatusOfflineSoft is drained by an operator: no new statements, but
	// transactions and sessions already on it finish there.
	StatusOfflineSoft
	// StatusOfflineHard is taken out by an operator: its connections close
	// at their next use and nothing new goes to it.
	StatusOfflineHard
)

func (st Status) String() string {
	switch st {
	case StatusShunned:
		return "SHUNNED"
	case StatusOfflineSoft:
		return "OFFLINE_SOFT"
	case StatusOfflineHard:
		return "OFFLINE_HARD"
	}
	return "ONLINE"
}

// Status is the server's state now: an operator's OFFLINE_* setting, else
// SHUNNED while its checks fail, else ONLINE.
func (s *Server) Status() Status {
	if st := Status(s.adminStatus.Load()); st == StatusOfflineSoft || st == StatusOfflineHard {
		return st
	}
	if !s.healthy.Load() {
		return StatusShunned
	}
	return StatusOnline
}

// SetServerStatus applies an operator's setting: StatusOnline (back to what
// the checks say), StatusOfflineSoft or StatusOfflineHard.
func (c *Cluster) SetServerStatus(name string, st Status) error {
	for _, s := range c.Servers() {
		if s.Name == name {
			if st == StatusShunned {
				return fmt.Errorf("SHUNNED is set by the health checks, not by hand")
			}
			if old := Status(s.adminStatus.Swap(int32(st))); old != st {
				c.event("status", s.Name, st.String())
			}
			return nil
		}
	}
	return fmt.Errorf("no server named %q", name)
}

// ServerView is a snapshot of one server for the admin and HTTP views.
type ServerView struct {
	Name, Address string
	Role          Role
	Status        Status
	Readable      bool
	Replicating   bool
	Lag           time.Duration
	LagKnown      bool
	Why           string // what keeps a replica out of the read pool
	GTID          string // gtid_current_pos (MariaDB) or gtid_executed (MySQL)
	LastError     string
	Outstanding   int64
}

// Snapshot describes every server as last checked.
func (c *Cluster) Snapshot() []ServerView {
	var out []ServerView
	for _, s := range c.Servers() {
		v := ServerView{Name: s.Name, Address: s.Address, Role: s.Role(), Status: s.Status(),
			Readable: s.Readable(), Replicating: s.replicating.Load(), Outstanding: s.Outstanding.Load()}
		v.Lag, v.LagKnown = s.Lag()
		if w := s.why.Load(); w != nil {
			v.Why = *w
		}
		if g := s.gtid.Load(); g != nil {
			v.GTID = *g
		}
		if err := s.LastError(); err != nil {
			v.LastError = err.Error()
		}
		out = append(out, v)
	}
	return out
}
