package backend

import (
	"context"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// poolKey says which sessions may share a server connection: the same
// login (user and schema) and the same negotiated packet formats. Sessions
// whose keys differ never see each other's connections.
type poolKey struct {
	User         string
	Schema       string
	Collation    uint8
	Capabilities uint32
	ExtCaps      uint32
}

// keyOf is the pool a session that dials with opt draws from.
func keyOf(opt DialOptions) poolKey {
	return poolKey{User: opt.Creds.User, Schema: opt.Schema, Collation: opt.Collation, Capabilities: serverCapabilities(opt.Capabilities),
		ExtCaps: opt.ExtCapabilities & supportedExtCaps}
}

// PoolOptions configure a Pool. Their zero values are the config defaults.
type PoolOptions struct {
	// MaxIdlePerServer bounds the idle connections kept per server; a
	// returned connection beyond it is closed. 0: 64; negative: keep none.
	MaxIdlePerServer int
	// IdleTimeout closes connections idle this long. 0: 5 minutes;
	// negative: never.
	IdleTimeout time.Duration
	// MaxLifetime closes connections this old when they are returned.
	// 0: an hour; negative: never.
	MaxLifetime time.Duration
}

func (o PoolOptions) withDefaults() PoolOptions {
	if o.MaxIdlePerServer == 0 {
		o.MaxIdlePerServer = 64
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 5 * time.Minute
	}
	if o.MaxLifetime == 0 {
		o.MaxLifetime = time.Hour
	}
	return o
}

// A Dialer opens client connections to servers: the Cluster.
type Dialer interface {
	Connect(ctx context.Context, srv *Server, opt DialOptions) (*Conn, error)
	// ConnectTimeout also bounds the wait for a free connection when a
	// server is at servers[].max_connections.
	ConnectTimeout() time.Duration
}

// Request says what connection a session wants from Acquire.
type Request struct {
	Dial DialOptions
	// State is the session state the caller will bring the connection to:
	// a connection that carries it already is preferred.
	State SessionState
	// Verify checks a pooled connection for a server-side close even if it
	// was used just now (a retry after a failure).
	Verify bool
	// Epoch is the pool's Epoch when the session logged in: a pooled
	// connection that logged in before a Renew since serves it no more.
	Epoch uint64
}

// IdleCheckAfter is how long a connection may sit unused before it is
// checked for a server-side close before use.
const IdleCheckAfter = time.Second

// Pool keeps idle server connections for reuse by any session with the
// same poolKey. A connection in the pool is at a packet boundary, holds no
// transaction, and records the session state it carries, so the next user
// can tell whether it must reset it.
//
// Each server's connections are a shard with a lock of its own: every
// statement borrows and returns a connection, and with one lock for all
// servers that lock was the only contended one of the proxy (mutex profile,
// sysbench at 64 threads), which sessions reading from different replicas
// need not share.
type Pool struct {
	// live holds the options; a reload swaps them (SetOptions), and
	// reconfigured wakes the reaper to apply a new idle timeout.
	live         atomic.Pointer[PoolOptions]
	reconfigured chan struct{}
	dial         Dialer
	// shards are read without a lock: a server seen for the first time
	// gets its shard in a copy of the map, made under growMu. A shard
	// stays when its server is retired: a connection given back late still
	// lands where the reaper looks.
	shards atomic.Pointer[map[*Server]*poolShard]
	growMu sync.Mutex
	// accounts counts the changes of what a new login gets (Renew).
	accounts atomic.Uint64
}

// poolShard is one server's part of the pool.
type poolShard struct {
	mu   sync.Mutex
	idle []*Conn // most recently returned last
	// returned is closed (and replaced) when a connection to the server
	// comes back, waking sessions that wait for one; waiters counts those
	// sessions, for the metrics.
	returned chan struct{}
	waiters  int
}

// NewPool returns an empty pool that opens connections with dial.
func NewPool(opt PoolOptions, dial Dialer) *Pool {
	p := &Pool{dial: dial, reconfigured: make(chan struct{}, 1)}
	p.SetOptions(opt)
	return p
}

// shard is srv's part of the pool.
func (p *Pool) shard(srv *Server) *poolShard {
	if all := p.shards.Load(); all != nil {
		if sh := (*all)[srv]; sh != nil {
			return sh
		}
	}
	p.growMu.Lock()
	defer p.growMu.Unlock()
	next := map[*Server]*poolShard{}
	if all := p.shards.Load(); all != nil {
		if sh := (*all)[srv]; sh != nil {
			return sh // added meanwhile
		}
		maps.Copy(next, *all)
	}
	sh := &poolShard{}
	next[srv] = sh
	p.shards.Store(&next)
	return sh
}

// eachShard calls f with every shard, unlocked.
func (p *Pool) eachShard(f func(*poolShard)) {
	if all := p.shards.Load(); all != nil {
		for _, sh := range *all {
			f(sh)
		}
	}
}

// Acquire returns a connection to srv for req: an idle one (preferring one
// in req.State), else a new one if servers[].max_connections allows, else,
// after closing an idle connection of another key to free its slot, or
// waiting up to the connect timeout for one to come back.
func (p *Pool) Acquire(ctx context.Context, srv *Server, req Request) (*Conn, error) {
	key := keyOf(req.Dial)
	sh := p.shard(srv)
	var timer *time.Timer
	var returned, freed <-chan struct{}
	for {
		for {
			c := sh.take(key, req.State, req.Epoch)
			if c == nil {
				break
			}
			if p.usable(c, req.Verify) {
				return c, nil
			}
			c.Close()
		}
		if srv.tryTakeSlot() || sh.evictIdle(key, req.State) && srv.tryTakeSlot() {
			return p.open(ctx, srv, req.Dial)
		}
		if returned == nil {
			// Wait only once a release or a freed slot wakes us, after
			// looking again: one since the look above would not.
			returned, freed = sh.returnedChan(), srv.slots.freed()
			continue
		}
		wait := p.dial.ConnectTimeout()
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
			sh.addWaiter(1)
			defer sh.addWaiter(-1)
		}
		select {
		case <-freed:
			returned = nil
		case <-returned:
			returned = nil
		case <-timer.C:
			return nil, &ErrServerFull{Server: srv.Name, Max: srv.MaxConnections(), Waited: wait}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// usable vets an idle connection before it is handed out: one idle for a
// while, or any when verify is set, is checked for a server-side close.
func (p *Pool) usable(c *Conn, verify bool) bool {
	if c.Broken() {
		return false
	}
	return (!verify && time.Since(c.lastUsed) <= IdleCheckAfter) || c.Alive()
}

// open dials a connection for which a slot is already taken.
func (p *Pool) open(ctx context.Context, srv *Server, opt DialOptions) (*Conn, error) {
	accounts := p.accounts.Load() // as of before the login
	c, err := p.dial.Connect(ctx, srv, opt)
	if err != nil {
		srv.releaseSlot()
		return nil, err
	}
	// The dial set its key (keyOf) before the server tracked it: the admin's
	// stats read the keys of tracked connections.
	c.slot = true
	c.pool = p
	c.accounts = accounts
	return c, nil
}

// Renew is told that what a new login gets changed: accounts or
// privileges (GRANT, CREATE USER, ...) or global variables (SET GLOBAL). A
// server connection keeps the global privileges and the session defaults
// of its login, as MariaDB does for a client's own connection, so a
// session that logs in after the change (its Request.Epoch is newer) gets
// no connection that logged in before it. Sessions that logged in before
// go on with the old ones, as their own connections would directly, and
// need no new login (which a changed password would refuse).
func (p *Pool) Renew() { p.accounts.Add(1) }

// PruneStale closes the idle connections that logged in before the last
// Renew, of the users inUse does not name: only sessions that logged in
// before it may use them, and those users have none left. (Kept, they
// would count as the server's sessions, and list in its processlist,
// until the idle timeout.)
func (p *Pool) PruneStale(inUse func(user string) bool) {
	epoch := p.accounts.Load()
	p.closeWhere(func(c *Conn) bool { return c.accounts < epoch && !inUse(c.key.User) })
}

// Epoch is the number of Renew calls so far: a session records it at its
// login and asks for connections no older (Request.Epoch).
func (p *Pool) Epoch() uint64 { return p.accounts.Load() }

func (sh *poolShard) returnedChan() chan struct{} {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.returned == nil {
		sh.returned = make(chan struct{})
	}
	return sh.returned
}

// take removes an idle connection for key, preferring one already in
// state want, so that nothing needs replaying. It returns nil when there
// is none. A session without a login schema never gets a connection that
// another session moved into a schema: no reset can undo that.
func (sh *poolShard) take(key poolKey, want SessionState, epoch uint64) *Conn {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	list := sh.idle
	best := -1
	for i := len(list) - 1; i >= 0; i-- {
		c := list[i]
		if !c.serves(key, want) || c.accounts < epoch {
			continue
		}
		if c.state.hash == want.hash {
			best = i
			break
		}
		if best < 0 {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	c := list[best]
	sh.idle = append(list[:best], list[best+1:]...)
	return c
}

// serves reports whether an idle connection may be lent for key and want.
func (c *Conn) serves(key poolKey, want SessionState) bool {
	return c.key == key && (key.Schema != "" || c.state.servesNoSchema(want))
}

// Release gives a connection back for reuse, or closes it when it is
// broken or too old. When the server already has enough idle connections,
// the least recently returned one is closed instead.
// Prepared statements no session holds are closed first, beyond the few a
// connection keeps (Conn.TidyStmts).
func (p *Pool) Release(c *Conn) {
	if c.br != nil { // usually given back already, at the end of the response
		c.ReleaseReader()
	}
	opt := p.options()
	sh := p.shard(c.srv)
	for {
		if c.needsTidy() {
			_ = c.TidyStmts() // a failed write marks it broken
		}
		// Its age as of its last use, which was just now: the clock need
		// not be read again on every statement's way back.
		if c.Broken() || (opt.MaxLifetime > 0 && c.lastUsed.Sub(c.created) > opt.MaxLifetime) ||
			c.srv.Status() == StatusOfflineHard || c.srv.Retired() {
			c.Close()
			return
		}
		sh.mu.Lock()
		// A session that released a statement of c since the tidy above
		// found c not idle yet and left the tidying to us.
		if !c.needsTidy() {
			break
		}
		sh.mu.Unlock()
	}
	// A full server's least recently returned idle connection makes room:
	// closing the one just returned instead would let connections of a
	// pool key nobody uses any more (sysbench's, after it ended) keep
	// every slot, and each statement of a key in use would log in anew.
	list := sh.idle
	var evicted *Conn
	if len(list) >= opt.MaxIdlePerServer {
		if len(list) == 0 { // MaxIdlePerServer below 1: keep none
			sh.mu.Unlock()
			c.Close()
			return
		}
		evicted = list[0]
		list = append(list[:0], list[1:]...)
	}
	sh.idle = append(list, c)
	if sh.returned != nil {
		close(sh.returned)
		sh.returned = nil
	}
	sh.mu.Unlock()
	if evicted != nil {
		evicted.Close()
	}
}

// tidyIdle closes the prepared statements due on c (Conn.TidyStmts) if c
// is idle in the pool: a session just released one. A connection in use
// is left to its user, who tidies it when giving it back.
func (p *Pool) tidyIdle(c *Conn) {
	sh := p.shard(c.srv)
	sh.mu.Lock()
	i := slices.Index(sh.idle, c)
	if i < 0 {
		sh.mu.Unlock()
		return
	}
	sh.idle = slices.Delete(sh.idle, i, i+1)
	sh.mu.Unlock()
	p.Release(c) // which tidies it
}

// evictIdle closes the least recently used idle connection of the shard's
// server, to free its slot for a session that needs another pool key. It
// reports whether there was one.
//
// An idle connection the session could use itself (one released since it
// looked) is not evicted: evicting it and dialing another would open one
// connection more than the cap for as long as the close takes to reach the
// server. The caller looks again instead.
func (sh *poolShard) evictIdle(key poolKey, want SessionState) bool {
	sh.mu.Lock()
	list := sh.idle
	if len(list) == 0 || slices.ContainsFunc(list, func(c *Conn) bool { return c.serves(key, want) }) {
		sh.mu.Unlock()
		return false
	}
	c := list[0]
	sh.idle = append(list[:0], list[1:]...)
	sh.mu.Unlock()
	c.Close()
	return true
}

// idleCount returns the number of idle connections to srv.
func (p *Pool) idleCount(srv *Server) int {
	sh := p.shard(srv)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return len(sh.idle)
}

// Reap closes connections idle longer than the idle timeout until ctx
// ends, then closes every idle connection. A reload's new idle timeout
// applies from the next look.
func (p *Pool) Reap(ctx context.Context) {
	for {
		// With no idle timeout the reaper only waits for a reload to set one.
		var tick <-chan time.Time
		idle := p.options().IdleTimeout
		var t *time.Timer
		if idle > 0 {
			t = time.NewTimer(min(idle/2+time.Second, 30*time.Second))
			tick = t.C
		}
		select {
		case <-ctx.Done():
			p.Close()
			return
		case <-p.reconfigured:
		case <-tick:
			p.closeWhere(func(c *Conn) bool { return time.Since(c.lastUsed) > idle })
		}
		if t != nil {
			t.Stop()
		}
	}
}

// Close closes every idle connection, for shutdown.
func (p *Pool) Close() { p.closeWhere(func(*Conn) bool { return true }) }

// closeWhere closes the idle connections drop selects; the sockets are
// closed after the lock is let go.
func (p *Pool) closeWhere(drop func(*Conn) bool) {
	var stale []*Conn
	p.eachShard(func(sh *poolShard) {
		sh.mu.Lock()
		kept := sh.idle[:0]
		for _, c := range sh.idle {
			if drop(c) {
				stale = append(stale, c)
			} else {
				kept = append(kept, c)
			}
		}
		clear(sh.idle[len(kept):]) // no stale pointers past the end
		sh.idle = kept
		sh.mu.Unlock()
	})
	for _, c := range stale {
		c.Close()
	}
}
