package backend

// What the metrics endpoint reads of the pool and the cluster, when it is
// scraped (never on a statement's path).

// PoolStats are the connections to one server as the pool sees them.
type PoolStats struct {
	Open     int // client connections open to the server, idle or lent
	Idle     int // waiting in the pool
	Borrowed int // lent to sessions
	// Waiters are sessions waiting for a connection because the server is
	// at servers[].max_connections.
	Waiters int
}

// Stats counts the connections to srv.
func (p *Pool) Stats(srv *Server) PoolStats {
	open := srv.OpenConns()
	sh := p.shard(srv)
	sh.mu.Lock()
	idle, waiters := len(sh.idle), sh.waiters
	sh.mu.Unlock()
	// A connection returned between the two looks may count as idle and
	// not open yet: never report fewer than none borrowed.
	return PoolStats{Open: max(open, idle), Idle: idle, Borrowed: max(open-idle, 0), Waiters: waiters}
}

func (sh *poolShard) addWaiter(n int) {
	sh.mu.Lock()
	sh.waiters += n
	sh.mu.Unlock()
}

// EventCounts returns how many events of each kind (server_down, role,
// replica_out, ...) happened since start.
func (c *Cluster) EventCounts() map[string]int64 {
	c.evMu.Lock()
	defer c.evMu.Unlock()
	out := make(map[string]int64, len(c.eventCounts))
	for k, n := range c.eventCounts {
		out[k] = n
	}
	return out
}

// IsProbing reports whether roles come from the monitor (see SetProbing).
func (c *Cluster) IsProbing() bool { return c.isProbing() }

// View describes the server as last checked.
func (s *Server) View() ServerView { return s.view() }
