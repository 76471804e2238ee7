package backend

import (
	"net"
	"sort"
	"sync/atomic"
	"syscall"
	"time"
)

// Counters for the admin interface's stats tables: bytes to and from each
// server, the monitor's last check, and connections by pool.

// traffic is what a server's connections and checks have counted.
type traffic struct {
	sent, recv atomic.Int64
	// lastCheck is when the monitor last checked the server (Unix ns);
	// checkMicros how long its first query took.
	lastCheck   atomic.Int64
	checkMicros atomic.Int64
}

// countingConn counts a client connection's bytes. It keeps the socket's
// SyscallConn, which Conn.Alive peeks through.
type countingConn struct {
	net.Conn
	t *traffic
}

func countTraffic(nc net.Conn, t *traffic) net.Conn { return &countingConn{Conn: nc, t: t} }

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.t.recv.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.t.sent.Add(int64(n))
	return n, err
}

func (c *countingConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, syscall.EINVAL
}

// ServerStats are a server's counters, for the stats_connection_pool table.
type ServerStats struct {
	ServerView
	Weight            int
	MaxConnections    int
	MaxReplicationLag time.Duration
	Promotable        bool
	ConnsOpened       int64 // connections opened for clients
	ConnErrors        int64 // connections that failed to open
	Queries           int64 // commands run for clients
	BytesSent         int64
	BytesRecv         int64
	// LastCheck is when the monitor last checked it (zero: never);
	// CheckLatency how long the check's first query took.
	LastCheck    time.Time
	CheckLatency time.Duration
}

// Stats returns every server's counters, in config order.
func (c *Cluster) Stats() []ServerStats {
	servers := c.Servers()
	probing := c.isProbing()
	out := make([]ServerStats, 0, len(servers))
	for _, s := range servers {
		st := ServerStats{ServerView: s.view(), Weight: s.Weight(), MaxConnections: s.MaxConnections(),
			MaxReplicationLag: s.MaxReplicationLag(), Promotable: s.Promotable(),
			ConnsOpened: s.ConnsOpened.Load(), ConnErrors: s.ConnErrors.Load(), Queries: s.Queries.Load(),
			BytesSent: s.traffic.sent.Load(), BytesRecv: s.traffic.recv.Load(),
			CheckLatency: time.Duration(s.traffic.checkMicros.Load()) * time.Microsecond}
		if ns := s.traffic.lastCheck.Load(); ns != 0 {
			st.LastCheck = time.Unix(0, ns)
		}
		if !probing && st.Status == StatusShunned {
			// Without a monitor nothing checks servers: they serve as
			// configured (see SetProbing), whatever a failed connect said.
			st.Status = StatusOnline
		}
		out = append(out, st)
	}
	return out
}

// PoolKeyStats counts one server's connections of one pool: those lent to
// sessions (Used) and those idle in the pool (Free).
type PoolKeyStats struct {
	Server, User, Schema string
	Used, Free           int
}

// KeyStats counts the connections of every server by pool (user and
// schema; character set and capabilities are summed), sorted.
func (p *Pool) KeyStats(servers []*Server) []PoolKeyStats {
	type key struct{ server, user, schema string }
	counts := map[key]*PoolKeyStats{}
	get := func(s *Server, k poolKey) *PoolKeyStats {
		kk := key{s.Name, k.User, k.Schema}
		st := counts[kk]
		if st == nil {
			st = &PoolKeyStats{Server: s.Name, User: k.User, Schema: k.Schema}
			counts[kk] = st
		}
		return st
	}
	idle := map[*Conn]bool{}
	p.eachShard(func(sh *poolShard) {
		sh.mu.Lock()
		for _, c := range sh.idle {
			idle[c] = true
		}
		sh.mu.Unlock()
	})
	for _, s := range servers {
		s.connMu.Lock()
		for c := range s.conns {
			if idle[c] {
				get(s, c.key).Free++
			} else {
				get(s, c.key).Used++
			}
		}
		s.connMu.Unlock()
	}
	out := make([]PoolKeyStats, 0, len(counts))
	for _, st := range counts {
		out = append(out, *st)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Server != b.Server {
			return a.Server < b.Server
		}
		if a.User != b.User {
			return a.User < b.User
		}
		return a.Schema < b.Schema
	})
	return out
}
