// Package backend owns the database servers: their settings and state, the
// connections to them (login, the proxy's own queries, session-state
// replay), the shared pool, and the monitor that discovers roles, health and
// replication lag, and failover and switchover.
//
// Files: cluster.go (the set of servers, roles for routing, state changes
// and their log), server.go (one server), conn.go and auth.go (a server
// connection and its login), query.go (the proxy's own commands), state.go
// (session-state replay), pool.go (shared idle connections), monitor.go
// (health, role and lag checks), failover.go (failover, switchover,
// fencing and rejoin), reconfig.go (servers and options changed by a
// reload), stats.go (counters for the admin interface), gtid/ (GTID
// arithmetic).
package backend

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/wire"
)

// Options configure a Cluster. The zero value is usable.
type Options struct {
	// ConnectTimeout bounds dialing and logging in to a server, and the
	// wait for a free connection at servers[].max_connections. 0: 5s.
	ConnectTimeout time.Duration
	// TLS, when set, encrypts every server connection (backend_tls).
	TLS    *tls.Config
	Logger *slog.Logger
	// Failover configures failover and switchover; they need the monitor
	// (Probe).
	Failover FailoverOptions
	// NoGTIDTracking: client connections do not ask servers to report
	// GTIDs (the last_gtid session tracker), which only read-your-writes
	// with replicas needs. Without it a new connection runs one statement
	// less, and clients see session_track_system_variables, and SHOW
	// PROFILES, as on a direct connection.
	NoGTIDTracking bool
}

// Cluster is the set of servers behind the proxy.
type Cluster struct {
	// live holds the options; a reload swaps them (SetOptions).
	live    atomic.Pointer[Options]
	log     *slog.Logger
	mu      sync.RWMutex
	servers []*Server
	probing bool
	// nextID numbers servers, those a reload adds too.
	nextID int

	readers readerPool

	evMu   sync.Mutex
	events []Event
	// eventCounts counts every event by kind since start, also those
	// dropped from events, for the metrics.
	eventCounts map[string]int64
	// splitBrain says why writes are refused, when the servers disagree on
	// which is the primary.
	splitBrain atomic.Pointer[string]
	// noPrimary: the monitor's last round found no server to write to.
	noPrimary atomic.Bool

	version atomic.Value // string: the version a server reported last
	// resolvesNames: a server said @@skip_name_resolve is off, so it names
	// loopback clients 'localhost' (ResolvesNames).
	resolvesNames atomic.Bool

	fopt FailoverOptions
	// topo is what the monitor shares about topology changes (failover.go).
	topo topology
}

// ServerSpec is the configuration of one server.
type ServerSpec struct {
	Name    string
	Address string
	Weight  int
	// MaxConnections caps the connections the proxy opens to the server
	// for clients (0: no cap).
	MaxConnections int
	// MaxReplicationLag overrides the monitor's limit for this server (0: none).
	MaxReplicationLag time.Duration
	// NeverPromote: failover and switchover never make it the primary
	// (servers[].promotable: false).
	NeverPromote bool
}

// NewCluster builds a cluster over specs. Roles are not configured: the
// monitor discovers them (see SetProbing for running without one).
func NewCluster(specs []ServerSpec, opt Options) *Cluster {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.ConnectTimeout <= 0 {
		opt.ConnectTimeout = 5 * time.Second
	}
	c := &Cluster{log: opt.Logger, fopt: opt.Failover.withDefaults()}
	c.live.Store(&opt)
	c.topo.requests = make(chan topoRequest)
	for _, s := range specs {
		c.servers = append(c.servers, c.newServer(s))
	}
	c.rolesByOrder()
	return c
}

// rolesByOrder gives the servers the roles routing assumes without a
// monitor: the first is the primary, the others replicas. Routing asks a
// server's role (is the session held on a replica?) also then.
func (c *Cluster) rolesByOrder() {
	for i, s := range c.servers {
		role := RoleReplica
		if i == 0 {
			role = RolePrimary
		}
		s.role.Store(int32(role))
	}
}

// Servers returns the configured servers.
func (c *Cluster) Servers() []*Server {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return append([]*Server(nil), c.servers...)
}

// Server returns the server called name, or nil.
func (c *Cluster) Server(name string) *Server {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, s := range c.servers {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// ErrNoPrimary says no server can take writes. A *NoPrimaryError, which
// says why, matches it too.
var ErrNoPrimary = errors.New("no primary server is available: no healthy server has read_only=OFF")

// NoPrimaryError says that the server last seen as the primary cannot take
// writes now, and why. errors.Is(err, ErrNoPrimary) holds for it.
type NoPrimaryError struct {
	Server string
	// Why, after the server's name: "is unreachable since ...".
	Why string
	// Until says what ends it.
	Until string
	// down: the server is unreachable (not taken offline by an operator),
	// so a failover may replace it.
	down bool
}

func (e *NoPrimaryError) Error() string {
	return fmt.Sprintf("no writable primary: %s %s; writes fail until %s", e.Server, e.Why, e.Until)
}

func (e *NoPrimaryError) Is(target error) bool { return target == ErrNoPrimary }

// MyError is what a client is told: 1105 (HY000), as MariaDB has no code
// for "the primary is gone" and the message says what is wrong.
func (e *NoPrimaryError) MyError() *mysql.MyError {
	return wire.Errorf(mysql.ER_UNKNOWN_ERROR, "switchyard: %s", e.Error())
}

// noPrimaryError says why s, the server seen last as the primary, takes no
// writes.
func noPrimaryError(s *Server) error {
	if st := s.Status(); st == StatusOfflineSoft || st == StatusOfflineHard {
		return &NoPrimaryError{Server: s.Name, Why: "is " + st.String() + " (set by an operator)",
			Until: "it is set ONLINE or another server is made the primary"}
	}
	since, ok := s.DownSince()
	if !ok {
		return ErrNoPrimary
	}
	return &NoPrimaryError{Server: s.Name,
		Why:   fmt.Sprintf("is unreachable since %s (%v)", since.UTC().Format("2006-01-02 15:04:05 UTC"), time.Since(since).Round(time.Second)),
		Until: "it or a promoted replica is back", down: true}
}

// ErrSplitBrain says the servers disagree on which is the primary.
var ErrSplitBrain = errors.New("split brain")

// shunAfterDialFailures is how many connects in a row may fail before a
// server is shunned without waiting for its next check.
const shunAfterDialFailures = 3

// SetProbing tells the cluster whether roles come from the monitor.
// Without it (no monitor account configured) the first server is taken as
// the primary and the others as replicas, all assumed healthy.
func (c *Cluster) SetProbing(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.probing = on
	if !on {
		c.rolesByOrder()
		return
	}
	for _, s := range c.servers {
		s.role.Store(int32(RoleUnknown)) // until the monitor has looked
	}
}

// Primary returns the server that takes writes: the first healthy server,
// in config order, that is writable and not fenced (a stale primary); or
// the only server, read-only but replicating from nothing (roleOf).
// During a switchover there is none until the new primary takes writes.
func (c *Cluster) Primary() (*Server, error) {
	if sw := c.topo.switching.Load(); sw != nil {
		return nil, sw
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.probing {
		if len(c.servers) == 0 {
			return nil, ErrNoPrimary
		}
		if c.servers[0].adminStatus.Load() != int32(StatusOnline) {
			return nil, noPrimaryError(c.servers[0])
		}
		return c.servers[0], nil
	}
	if why := c.SplitBrain(); why != "" {
		return nil, fmt.Errorf("%w, writes are refused until one primary remains: %s", ErrSplitBrain, why)
	}
	var last *Server
	for _, s := range c.servers {
		if s.Role() != RolePrimary || s.readOnlyPrimary.Load() && len(c.servers) > 1 {
			// A read-only primary is the only server's privilege
			// (roleOf); a reload that added servers since its last check
			// ends it now.
			continue
		}
		if s.Status() == StatusOnline && !s.fenced.Load() {
			return s, nil
		}
		if last == nil {
			last = s
		}
	}
	if last != nil {
		// A server keeps the role it was last seen in: this one was the
		// primary when it went down or was taken offline.
		return nil, noPrimaryError(last)
	}
	return nil, ErrNoPrimary
}

// unreachablePrimary returns the server last seen as the primary when it
// does not answer and no other server is the primary: the replicas then
// have everything there is. Nil otherwise, including when the primary is
// up but a replica cannot reach it.
func (c *Cluster) unreachablePrimary() *Server {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var down *Server
	for _, s := range c.servers {
		if s.Role() != RolePrimary || s.fenced.Load() {
			continue
		}
		if s.Healthy() {
			return nil
		}
		if down == nil {
			down = s
		}
	}
	return down
}

// LoginServers appends to dst the servers a client's login may be checked
// on when the primary cannot take it: the read pool first, then every
// other ONLINE server. Logins need a server that knows the user and the
// schema, not one that takes writes, so they go on through a primary
// outage.
func (c *Cluster) LoginServers(dst []*Server) []*Server {
	dst = c.Replicas(dst)
	n := len(dst)
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, s := range c.servers {
		if s.Status() == StatusOnline && !s.fenced.Load() && !slices.Contains(dst[:n], s) {
			dst = append(dst, s)
		}
	}
	return dst
}

// Replicas appends to dst the servers that may serve reads now.
func (c *Cluster) Replicas(dst []*Server) []*Server {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.probing {
		for _, s := range c.servers[min(1, len(c.servers)):] {
			if s.adminStatus.Load() == int32(StatusOnline) {
				dst = append(dst, s)
			}
		}
		return dst
	}
	for _, s := range c.servers {
		if s.Readable() && s.Role() == RoleReplica {
			dst = append(dst, s)
		}
	}
	return dst
}

// Connect opens a client connection to srv with the cluster's timeouts and
// TLS. Repeated failures to reach a server shun it before its next check.
func (c *Cluster) Connect(ctx context.Context, srv *Server, opt DialOptions) (*Conn, error) {
	opt.timeout = c.options().ConnectTimeout
	opt.tls = c.options().TLS
	opt.readers = &c.readers
	opt.trackGTID = !c.options().NoGTIDTracking
	opt.traffic = &srv.traffic
	conn, err := dial(ctx, srv, opt)
	if err != nil {
		srv.ConnErrors.Add(1)
		var me *mysql.MyError
		if !errors.As(err, &me) && c.isProbing() {
			// The server cannot be reached: stop sending it new work now
			// rather than at its next check, which readmits it. With
			// automatic failover one failure is enough for the primary:
			// statements that need it then wait for the monitor to confirm
			// it dead and promote a replica, rather than fail one by one.
			n := srv.dialFailures.Add(1)
			if n == shunAfterDialFailures || c.fopt.Auto && srv.Role() == RolePrimary && n < shunAfterDialFailures {
				c.setHealthy(srv, false, fmt.Errorf("%d connections in a row failed: %w", n, err), time.Now())
			}
		}
		return nil, err
	}
	srv.dialFailures.Store(0)
	if !srv.track(conn) {
		conn.Close()
		return nil, fmt.Errorf("server %s was taken %s", srv.Name, StatusOfflineHard)
	}
	srv.ConnsOpened.Add(1)
	c.version.Store(conn.ServerVersion())
	return conn, nil
}

func (c *Cluster) isProbing() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.probing
}

// ConnectTimeout is how long opening a connection, or waiting for a free
// one, may take.
func (c *Cluster) ConnectTimeout() time.Duration { return c.options().ConnectTimeout }

// ServerVersion is the version string the servers report, once one has been
// reached; clients see it as the proxy's own.
func (c *Cluster) ServerVersion() (string, bool) {
	v, ok := c.version.Load().(string)
	return v, ok
}

// ResolvesNames reports whether the servers resolve client host names
// (@@skip_name_resolve off, as a monitor connection last read it): a
// server then names a loopback client 'localhost' in its messages, as the
// proxy does too. False until a server said so.
func (c *Cluster) ResolvesNames() bool { return c.resolvesNames.Load() }

// SetServerStatus applies an operator's setting: StatusOnline (back to what
// the checks say), StatusOfflineSoft (drain) or StatusOfflineHard (its
// client connections close now).
func (c *Cluster) SetServerStatus(name string, st Status) error {
	if st == StatusShunned {
		return fmt.Errorf("SHUNNED is set by the health checks, not by hand")
	}
	s := c.Server(name)
	if s == nil {
		return fmt.Errorf("no server named %q", name)
	}
	if old := Status(s.adminStatus.Swap(int32(st))); old != st {
		detail := st.String()
		if st == StatusOfflineHard {
			detail = fmt.Sprintf("%s: closed %d client connections", st, s.abortConns())
		}
		c.changed(slog.LevelWarn, "status", s, detail, "server status set by an operator")
	}
	return nil
}

// Snapshot describes every server as last checked.
func (c *Cluster) Snapshot() []ServerView {
	var out []ServerView
	for _, s := range c.Servers() {
		out = append(out, s.view())
	}
	return out
}

// The state changes of servers. Each is made by one function that swaps
// the value and, only when it changed, logs once and records an event:
// whoever notices a change first (the monitor, a failed connect) reports it.

// setHealthy records whether s answers, as seen at at; err says why not.
func (c *Cluster) setHealthy(s *Server, ok bool, err error, at time.Time) {
	if err != nil {
		s.lastErr.Store(&probeErr{err})
	} else {
		s.lastErr.Store(&probeErr{})
	}
	if ok {
		s.upAt.Store(&at)
		s.downSince.Store(nil)
	} else {
		s.downSince.CompareAndSwap(nil, &at) // the first failure dates it
	}
	first := !s.checked.Swap(true)
	switch was := s.healthy.Swap(ok); {
	case (was || first) && !ok:
		c.changed(slog.LevelWarn, "server_down", s, err.Error(), "server is down; no new statements go to it")
	case !was && ok:
		c.changed(slog.LevelInfo, "server_up", s, s.Role().String(), "server is up")
	}
}

// setRole records the role s was seen in.
func (c *Cluster) setRole(s *Server, role Role) {
	if old := Role(s.role.Swap(int32(role))); old != role && old != RoleUnknown {
		c.changed(slog.LevelWarn, "role", s, fmt.Sprintf("%s -> %s", old, role), "server changed role")
	}
}

// setReadOnlyPrimary records whether s is the primary with read_only ON
// (roleOf).
func (c *Cluster) setReadOnlyPrimary(s *Server, on bool) {
	switch was := s.readOnlyPrimary.Swap(on); {
	case !was && on:
		c.changed(slog.LevelWarn, "read_only", s, "read_only=ON",
			"the only server is read-only: writes still go to it, and it refuses those of accounts without READ_ONLY ADMIN itself")
	case was && !on && s.Role() == RolePrimary:
		c.changed(slog.LevelInfo, "writable", s, "read_only=OFF", "the only server is writable again")
	}
}

// setReadable records whether s may serve reads; why says what keeps it out.
func (c *Cluster) setReadable(s *Server, ok bool, why string) {
	switch was := s.readable.Swap(ok); {
	case was && !ok:
		c.changed(slog.LevelWarn, "replica_out", s, why, "replica leaves the read pool")
	case !was && ok:
		c.changed(slog.LevelInfo, "replica_in", s, "", "replica serves reads")
	}
	if why != "" {
		s.why.Store(&why)
	} else {
		s.why.Store(nil)
	}
}

// setFrozen records whether replica s serves reads with the lag it had
// when the primary became unreachable; detail says why it starts or ends.
func (c *Cluster) setFrozen(s *Server, on bool, detail string) {
	switch was := s.frozen.Swap(on); {
	case !was && on:
		c.changed(slog.LevelWarn, "replica_lag_frozen", s, detail, "replica keeps serving reads with the lag it had when the primary became unreachable")
	case was && !on:
		c.changed(slog.LevelInfo, "replica_lag_unfrozen", s, detail, "replica's lag is no longer frozen")
	}
}

// setNoPrimary records whether any server takes writes; err says why not.
func (c *Cluster) setNoPrimary(none bool, err error) {
	switch was := c.noPrimary.Swap(none); {
	case !was && none:
		c.changed(slog.LevelError, "no_primary", nil, err.Error(), "no writable primary: writes fail")
	case was && !none:
		c.changed(slog.LevelInfo, "primary_back", nil, "", "a writable primary is back: writes accepted again")
	}
}

// setSplitBrain records why the servers disagree on the primary, or "".
func (c *Cluster) setSplitBrain(why string) {
	old := c.splitBrain.Load()
	switch {
	case why != "" && (old == nil || *old != why):
		c.splitBrain.Store(&why)
		c.changed(slog.LevelError, "split_brain", nil, why, "split brain: writes are refused until one primary remains")
	case why == "" && old != nil:
		c.splitBrain.Store(nil)
		c.changed(slog.LevelInfo, "split_brain_resolved", nil, "", "split brain resolved: writes accepted again")
	}
}

// SplitBrain returns why the servers disagree on the primary, or "".
func (c *Cluster) SplitBrain() string {
	if why := c.splitBrain.Load(); why != nil {
		return *why
	}
	return ""
}

// changed logs a state change once and keeps it as an event.
func (c *Cluster) changed(level slog.Level, kind string, s *Server, detail, msg string) {
	attrs := []any{"event", kind}
	name := ""
	if s != nil {
		name = s.Name
		attrs = append(attrs, "server", s.Name, "addr", s.Address)
	}
	if detail != "" {
		attrs = append(attrs, "detail", detail)
	}
	c.log.Log(context.Background(), level, msg, attrs...)
	c.event(kind, name, detail)
}

// recovered, deferred in a background goroutine, logs a panic and ends the
// goroutine there instead of the process.
func (c *Cluster) recovered(task string) {
	if r := recover(); r != nil {
		c.log.Error("background task panicked", "task", task, "panic", r, "stack", string(debug.Stack()))
	}
}

// Event is a change in the topology: a server going down or up, changing
// role, leaving or rejoining the read pool, an operator's status change.
type Event struct {
	Time   time.Time
	Kind   string
	Server string
	Detail string
}

// maxEvents bounds the events kept.
const maxEvents = 4096

func (c *Cluster) event(kind, server, detail string) {
	c.evMu.Lock()
	defer c.evMu.Unlock()
	if len(c.events) >= maxEvents {
		c.events = append(c.events[:0], c.events[len(c.events)-maxEvents/2:]...)
	}
	c.events = append(c.events, Event{Time: time.Now(), Kind: kind, Server: server, Detail: detail})
	if c.eventCounts == nil {
		c.eventCounts = make(map[string]int64)
	}
	c.eventCounts[kind]++
}

// Events returns the recorded topology events, oldest first.
func (c *Cluster) Events() []Event {
	c.evMu.Lock()
	defer c.evMu.Unlock()
	return append([]Event(nil), c.events...)
}
