package backend

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"switchyard/backend/gtid"
)

// Server is one configured database server: its settings, what the monitor
// last saw of it, and the client connections open to it.
type Server struct {
	// ID is the server's position in the config at startup (servers a
	// reload adds get the next numbers), stable for its lifetime.
	ID      int
	Name    string
	Address string
	// settings a reload may change in place: weight, max_connections,
	// max_replication_lag, promotable (see reconfig.go).
	settings
	// slots counts the open client connections, capped by
	// servers[].max_connections.
	slots slotLimit

	// Counters the admin and metrics views read.
	ConnsOpened atomic.Int64
	ConnErrors  atomic.Int64
	// Outstanding counts statements running on the server through this
	// proxy, for least-outstanding balancing; Queries all that ran there.
	Outstanding atomic.Int64
	Queries     atomic.Int64
	// traffic counts bytes to and from the server and the monitor's view
	// of it, for the admin's stats (stats.go).
	traffic traffic
	// Latency times the commands clients ran there, response included.
	Latency LatencyHistogram

	role atomic.Int32
	// readOnlyPrimary: the server is the primary while read_only is ON,
	// which only the only server of a cluster can be (Cluster.roleOf).
	readOnlyPrimary atomic.Bool
	healthy         atomic.Bool
	checked         atomic.Bool // healthy has been set once: a first failure is news
	lastErr         atomic.Pointer[probeErr]
	// downSince is when the server was first found down, nil while up;
	// upAt is when a check last passed.
	downSince atomic.Pointer[time.Time]
	upAt      atomic.Pointer[time.Time]
	// replicatedAt is when a check last found the replica replicating
	// with a known lag, replicatedLagMs that lag: what the replica had when
	// its source went away, if it did.
	replicatedAt    atomic.Pointer[time.Time]
	replicatedLagMs atomic.Int64
	// frozen: the replica serves reads with the lag it had when the
	// primary became unreachable, though its own replication cannot run.
	frozen atomic.Bool
	// readable: a replica fit to serve reads (replicating, lag known and
	// within the limit); why says what keeps a replica out.
	readable    atomic.Bool
	why         atomic.Pointer[string]
	replicating atomic.Bool
	lagMs       atomic.Int64
	source      atomic.Pointer[string] // what a replica replicates from
	adminStatus atomic.Int32           // an operator's Status setting
	gtid        atomic.Pointer[string] // GTID position as last checked
	// reached is what reads learned of the server's position since the
	// monitor last read it (Reached).
	reached atomic.Pointer[reachedPos]
	// fenced: switchyard sends the server nothing, reads or writes, until
	// it replicates from the primary (failover.go): a former primary, or a
	// replica that missed a failover.
	fenced atomic.Bool
	// dialFailures counts consecutive failed connects for clients; enough
	// of them shun the server before its next check.
	dialFailures atomic.Int32
	// maxPrepared is the server's max_prepared_stmt_count plus one as last
	// read (0: not read yet), maxPreparedAt when, in Unix nanoseconds
	// (Conn.MaxPreparedStmts).
	maxPrepared   atomic.Int64
	maxPreparedAt atomic.Int64
	// processlistColumns: Conn.ProcesslistColumns, nil until read.
	processlistColumns atomic.Pointer[processlistColumns]

	// conns are the client connections open to the server, so that an
	// operator's OFFLINE_HARD can close them at once.
	connMu sync.Mutex
	conns  map[*Conn]struct{}
}

// track registers a client connection; false when the server was taken
// OFFLINE_HARD, in which case the caller must not use it.
func (s *Server) track(c *Conn) bool {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if s.Status() == StatusOfflineHard || s.Retired() {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[*Conn]struct{})
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *Conn) {
	s.connMu.Lock()
	delete(s.conns, c)
	s.connMu.Unlock()
}

// abortConns closes every client connection to the server now, whoever
// uses it. The sockets close after the lock is let go.
func (s *Server) abortConns() int {
	s.connMu.Lock()
	all := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		all = append(all, c)
	}
	s.connMu.Unlock()
	for _, c := range all {
		c.Abort()
	}
	return len(all)
}

// openTransactions counts the client connections to the server inside a
// transaction.
func (s *Server) openTransactions() int {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	n := 0
	for c := range s.conns {
		if c.InTx() {
			n++
		}
	}
	return n
}

// OpenConns is the number of client connections open to the server.
func (s *Server) OpenConns() int {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	return len(s.conns)
}

// tryTakeSlot reserves one of the server's connection slots if one is free.
func (s *Server) tryTakeSlot() bool { return s.slots.tryTake() }

func (s *Server) releaseSlot() { s.slots.release() }

// ErrServerFull says every connection servers[].max_connections allows is
// in use and none came free in time.
type ErrServerFull struct {
	Server string
	Max    int
	Waited time.Duration
}

func (e *ErrServerFull) Error() string {
	return fmt.Sprintf("all %d connections to server %s (servers[].max_connections) are in use; waited %v for one", e.Max, e.Server, e.Waited)
}

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
	// StatusOfflineHard is taken out by an operator: its client
	// connections are closed at once and nothing new goes to it.
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

// Role is the server's role as last probed.
func (s *Server) Role() Role { return Role(s.role.Load()) }

// ReadOnly reports whether the server is the primary with read_only ON:
// writes go to it and it refuses those of accounts without READ_ONLY
// ADMIN itself, as it would directly.
func (s *Server) ReadOnly() bool { return s.readOnlyPrimary.Load() }

// Readable reports whether the server may serve reads now: an ONLINE
// replica whose replication runs with known lag within its limit, or whose
// lag froze within it when the primary became unreachable.
func (s *Server) Readable() bool { return s.Status() == StatusOnline && s.readable.Load() }

// GTID is the server's GTID position as last checked.
func (s *Server) GTID() string {
	if g := s.gtid.Load(); g != nil {
		return *g
	}
	return ""
}

// reachedPos is a GTID position a server was seen to have applied, and
// when.
type reachedPos struct {
	pos string
	at  time.Time
}

// Reached records that the server has applied position pos: a read's
// MASTER_GTID_WAIT for it returned 0 there. Until the monitor next reads
// the server's position, reads that need no more than it do not wait
// again (ReachedGTID), which is what makes read_your_writes global cheap
// between writes.
func (s *Server) Reached(pos string) {
	now := time.Now()
	for {
		old := s.reached.Load()
		next := &reachedPos{pos: pos, at: now}
		if old != nil {
			if gtid.CoversAll(old.pos, pos) {
				return
			}
			next.pos = gtid.Max(old.pos, pos)
		}
		if s.reached.CompareAndSwap(old, next) {
			return
		}
	}
}

// ReachedGTID is the position reads saw the server reach since the
// monitor last read its position (GTID), or "".
func (s *Server) ReachedGTID() string {
	if r := s.reached.Load(); r != nil {
		return r.pos
	}
	return ""
}

// forgetReached drops what reads learned before the monitor's reading
// asked at: that reading includes it, unless the server lost
// transactions (a replica rebuilt from an older backup), and then it is
// no longer true.
func (s *Server) forgetReached(asked time.Time) {
	if r := s.reached.Load(); r != nil && r.at.Before(asked) {
		s.reached.CompareAndSwap(r, nil)
	}
}

// Lag is the replication lag last measured; false when unknown.
func (s *Server) Lag() (time.Duration, bool) {
	ms := s.lagMs.Load()
	return time.Duration(ms) * time.Millisecond, ms >= 0
}

// Healthy reports whether the last check of the server succeeded.
func (s *Server) Healthy() bool { return s.healthy.Load() }

// DownSince is when the server was found down; false while it is up.
func (s *Server) DownSince() (time.Time, bool) {
	if t := s.downSince.Load(); t != nil {
		return *t, true
	}
	return time.Time{}, false
}

// LastError is the error of the last failed check, or nil.
func (s *Server) LastError() error {
	if e := s.lastErr.Load(); e != nil {
		return e.err
	}
	return nil
}

type probeErr struct{ err error }

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
	OpenConns     int
	// LagFrozen: the primary is unreachable and the replica serves reads
	// with the lag it had then (Lag).
	LagFrozen bool
	// Fenced: a former primary, or a replica that missed a failover, kept
	// out of service until it replicates from the primary.
	Fenced bool
	// ReadOnly: the primary has read_only ON (Server.ReadOnly).
	ReadOnly bool
}

func (s *Server) view() ServerView {
	v := ServerView{Name: s.Name, Address: s.Address, Role: s.Role(), Status: s.Status(),
		Readable: s.Readable(), Replicating: s.replicating.Load(), Outstanding: s.Outstanding.Load(),
		GTID: s.GTID(), OpenConns: s.OpenConns(), LagFrozen: s.frozen.Load(), Fenced: s.fenced.Load(),
		ReadOnly: s.readOnlyPrimary.Load()}
	v.Lag, v.LagKnown = s.Lag()
	if w := s.why.Load(); w != nil {
		v.Why = *w
	}
	if err := s.LastError(); err != nil {
		v.LastError = err.Error()
	}
	return v
}

// ThreadIDs appends the server's thread ids of the client connections open
// to it (pooled, idle or in use).
func (s *Server) ThreadIDs(dst []uint64) []uint64 {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	for c := range s.conns {
		dst = append(dst, uint64(c.ThreadID()))
	}
	return dst
}
