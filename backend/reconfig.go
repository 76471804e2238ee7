package backend

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Reconfiguring at runtime (a config reload): servers are added, removed
// or changed in place, and the cluster's and pool's options swapped,
// without closing a connection a client is using. A removed server drains
// like OFFLINE_SOFT: it takes no new statements, sessions on it finish
// there, and its connections close as they are given back.

// settings are a server's configured values that a reload changes in
// place; each is read on its own by routing, the pool and the monitor.
type settings struct {
	weight     atomic.Int64
	maxLag     atomic.Int64 // time.Duration
	promotable atomic.Bool
	// retired: a reload removed the server, which now drains.
	retired atomic.Bool
}

// Weight is the server's share of reads (0: none).
func (s *Server) Weight() int { return int(s.weight.Load()) }

// MaxReplicationLag is the server's own lag limit; 0 means the monitor's.
func (s *Server) MaxReplicationLag() time.Duration { return time.Duration(s.maxLag.Load()) }

// Promotable reports whether failover may promote the server.
func (s *Server) Promotable() bool { return s.promotable.Load() }

// MaxConnections caps the client connections to the server (0: no cap).
func (s *Server) MaxConnections() int { return s.slots.max() }

// Retired reports whether a reload removed the server: it drains, and its
// connections close when they are given back.
func (s *Server) Retired() bool { return s.retired.Load() }

func (s *Server) apply(spec ServerSpec) {
	s.weight.Store(int64(spec.Weight))
	s.maxLag.Store(int64(spec.MaxReplicationLag))
	s.promotable.Store(!spec.NeverPromote)
	s.slots.setMax(spec.MaxConnections)
}

// spec is the server's configuration as a ServerSpec.
func (s *Server) spec() ServerSpec {
	return ServerSpec{Name: s.Name, Address: s.Address, Weight: s.Weight(), MaxConnections: s.MaxConnections(),
		MaxReplicationLag: s.MaxReplicationLag(), NeverPromote: !s.Promotable()}
}

// newServer builds a server with the next id. Called under c.mu or before
// the cluster is shared.
func (c *Cluster) newServer(spec ServerSpec) *Server {
	srv := &Server{ID: c.nextID, Name: spec.Name, Address: spec.Address}
	c.nextID++
	srv.apply(spec)
	return srv
}

// slotLimit counts a server's open client connections against
// servers[].max_connections, which a reload may raise or lower: a lower cap
// closes nothing, it only holds new connections back until enough have
// closed.
type slotLimit struct {
	mu    sync.Mutex
	limit int // 0: no cap
	used  int
	// wake is closed, and forgotten, when a slot frees or the cap rises,
	// waking the sessions that wait for one.
	wake chan struct{}
}

func (l *slotLimit) tryTake() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.limit > 0 && l.used >= l.limit {
		return false
	}
	l.used++
	return true
}

func (l *slotLimit) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.used--
	l.wakeLocked()
}

func (l *slotLimit) wakeLocked() {
	if l.wake != nil {
		close(l.wake)
		l.wake = nil
	}
}

// freed returns a channel closed when a slot may have come free.
func (l *slotLimit) freed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.wake == nil {
		l.wake = make(chan struct{})
	}
	return l.wake
}

func (l *slotLimit) max() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.limit
}

func (l *slotLimit) setMax(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.limit = max(n, 0)
	l.wakeLocked()
}

// Changes is what Reconfigure did to the servers.
type Changes struct {
	Added, Removed, Changed []string
	// Retired are the removed servers (also those replaced because their
	// address changed), draining: the pool should drop their idle
	// connections (Pool.Drop).
	Retired []*Server
}

// Empty reports whether nothing changed.
func (ch Changes) Empty() bool {
	return len(ch.Added) == 0 && len(ch.Removed) == 0 && len(ch.Changed) == 0
}

func (ch Changes) String() string {
	var parts []string
	for _, p := range []struct {
		what  string
		names []string
	}{{"added", ch.Added}, {"removed", ch.Removed}, {"changed", ch.Changed}} {
		if len(p.names) > 0 {
			parts = append(parts, p.what+" "+strings.Join(p.names, ", "))
		}
	}
	if len(parts) == 0 {
		return "servers unchanged"
	}
	return "servers " + strings.Join(parts, "; ")
}

// Reconfigure makes specs, in their order, the cluster's servers. A server
// whose name and address stay keeps its state and connections and takes
// the new settings; a new name, or a new address for a name, is a new
// server, which serves once the monitor has checked it (at once without a
// monitor); a server no longer listed is retired and drains. Each change
// is logged and kept as an event. The caller has validated specs (unique
// names and addresses).
func (c *Cluster) Reconfigure(specs []ServerSpec) Changes {
	var ch Changes
	var added, changed []*Server
	var changedFrom []ServerSpec
	c.mu.Lock()
	old := make(map[string]*Server, len(c.servers))
	for _, s := range c.servers {
		old[s.Name] = s
	}
	next := make([]*Server, 0, len(specs))
	for _, spec := range specs {
		s, ok := old[spec.Name]
		switch {
		case ok && s.Address == spec.Address:
			delete(old, spec.Name)
			if was := s.spec(); was != spec {
				s.apply(spec)
				changed = append(changed, s)
				changedFrom = append(changedFrom, was)
			}
		default:
			s = c.newServer(spec)
			added = append(added, s)
		}
		next = append(next, s)
	}
	c.servers = next
	if !c.probing {
		c.rolesByOrder()
	}
	c.mu.Unlock()

	for _, s := range old {
		s.retired.Store(true)
		// Nothing new goes to it; what runs there finishes.
		s.adminStatus.Store(int32(StatusOfflineSoft))
		ch.Removed = append(ch.Removed, s.Name)
		ch.Retired = append(ch.Retired, s)
		c.changed(slog.LevelWarn, "server_removed", s, fmt.Sprintf("draining: %d connections open", s.OpenConns()),
			"server removed from the config; it drains like OFFLINE_SOFT")
	}
	for _, s := range added {
		ch.Added = append(ch.Added, s.Name)
		c.changed(slog.LevelInfo, "server_added", s, s.Address, "server added from the config; it serves once checked")
	}
	for i, s := range changed {
		ch.Changed = append(ch.Changed, s.Name)
		c.changed(slog.LevelInfo, "server_changed", s, specDiff(changedFrom[i], s.spec()), "server settings changed")
	}
	return ch
}

// specDiff says which settings changed, e.g. "weight 100 -> 50".
func specDiff(a, b ServerSpec) string {
	var d []string
	add := func(what string, x, y any) {
		if x != y {
			d = append(d, fmt.Sprintf("%s %v -> %v", what, x, y))
		}
	}
	add("weight", a.Weight, b.Weight)
	add("max_connections", a.MaxConnections, b.MaxConnections)
	add("max_replication_lag", a.MaxReplicationLag, b.MaxReplicationLag)
	add("promotable", !a.NeverPromote, !b.NeverPromote)
	return strings.Join(d, ", ")
}

// Options are the cluster's options now.
func (c *Cluster) options() *Options { return c.live.Load() }

// SetOptions replaces the connect timeout and server TLS; they apply to
// connections opened from now on. The logger stays.
func (c *Cluster) SetOptions(opt Options) {
	if opt.ConnectTimeout <= 0 {
		opt.ConnectTimeout = 5 * time.Second
	}
	opt.Logger = c.log
	c.live.Store(&opt)
}

// Note logs an event that is not a server's state change (a reload, say)
// and keeps it with the others for the admin's events table.
func (c *Cluster) Note(level slog.Level, kind, server, detail, msg string) {
	attrs := []any{"event", kind}
	if server != "" {
		attrs = append(attrs, "server", server)
	}
	if detail != "" {
		attrs = append(attrs, "detail", detail)
	}
	c.log.Log(context.Background(), level, msg, attrs...)
	c.event(kind, server, detail)
}

// options are the pool's options now.
func (p *Pool) options() *PoolOptions { return p.live.Load() }

// SetOptions replaces the pool's limits: idle connections beyond a lower
// max_idle_per_server close as they are given back, a new idle timeout
// applies at the reaper's next look, a new max_lifetime to connections as
// they are given back.
func (p *Pool) SetOptions(opt PoolOptions) {
	opt = opt.withDefaults()
	p.live.Store(&opt)
	select {
	case p.reconfigured <- struct{}{}:
	default:
	}
}

// Drop closes the idle connections to servers a reload retired; the ones
// in use close when they are given back.
func (p *Pool) Drop(retired []*Server) {
	if len(retired) == 0 {
		return
	}
	p.closeWhere(func(c *Conn) bool { return c.srv.Retired() })
}
