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

	"switchyard/wire"
)

// The monitor checks every server each interval with its own account:
// whether it answers, its role (@@read_only), its GTID position, its
// replication threads and lag, and what it replicates from. From that it
// keeps the read pool (replicas fit to serve reads) and detects split
// brain. Every change goes through the Cluster's state-change functions,
// which log it once.

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
// ends. A panic in a check is logged and the monitor goes on.
func (c *Cluster) Probe(ctx context.Context, opt ProbeOptions) {
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
			defer c.recovered("monitor check of " + s.Name)
			cn, err := c.probeServer(ctx, s, cn, opt)
			s.traffic.lastCheck.Store(time.Now().UnixNano())
			mu.Lock()
			if err != nil {
				delete(conns, s)
			} else {
				conns[s] = cn
			}
			mu.Unlock()
			if err != nil {
				if cn != nil {
					cn.Close()
				}
				c.setHealthy(s, false, err)
			}
		}()
	}
	wg.Wait()
	c.checkSplitBrain(servers)
}

// checkSplitBrain looks for two writable servers, or replicas that follow
// different sources. Either means the servers disagree on which is the
// primary: writes are refused until an operator settles it, reads go on.
func (c *Cluster) checkSplitBrain(servers []*Server) {
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
	c.setSplitBrain(why)
}

func (c *Cluster) probeServer(ctx context.Context, s *Server, cn *Conn, opt ProbeOptions) (*Conn, error) {
	if cn == nil || cn.Broken() {
		var err error
		cn, err = dial(ctx, s, DialOptions{
			readers: &c.readers,
			Creds:   Credentials{User: opt.User, Plain: opt.Password, HasPassword: opt.Password != ""},
			timeout: opt.Timeout,
			tls:     c.options().TLS,
		})
		if err != nil {
			return nil, err
		}
		c.version.Store(cn.ServerVersion())
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
		return cn, err
	}
	if len(res.Rows) != 1 || len(res.Rows[0]) != 2 || !res.Rows[0][0].Valid {
		return cn, errors.New("unexpected answer to SELECT @@read_only")
	}
	gtid := res.Rows[0][1].String
	s.gtid.Store(&gtid)
	role := RolePrimary
	if res.Rows[0][0].String != "0" {
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
				c.log.Warn("heartbeat write failed", "server", s.Name, "table", opt.HeartbeatTable, "err", err)
			}
		case RoleReplica:
			if repl.running {
				repl.lagMs = readHeartbeat(cn, opt.HeartbeatTable)
			}
		}
	}
	if role == RoleReplica {
		c.log.Debug("replica checked", "server", s.Name, "replicating", repl.running, "lag_ms", repl.lagMs, "gtid", gtid)
	}
	// The check passed: the server is up before it is anything else, so
	// its events read in that order (up, then role, then the read pool).
	c.setHealthy(s, true, nil)
	c.setRole(s, role)
	s.replicating.Store(repl.running)
	src := repl.source
	s.source.Store(&src)
	s.lagMs.Store(repl.lagMs)
	maxLag := opt.MaxReplicationLag
	if own := s.MaxReplicationLag(); own > 0 {
		maxLag = own
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
	c.setReadable(s, role == RoleReplica && why == "", why)
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
	stopped    string // why not, when configured but not running
	lagMs      int64  // -1: unknown
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
	r.running = io == "Yes" && sqlRunning == "Yes"
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
