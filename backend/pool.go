package backend

import (
	"context"
	"hash/fnv"
	"sync"
	"time"
)

// PoolKey says which sessions may share a server connection: the same
// login (user and schema) and the same negotiated packet formats. Sessions
// whose keys differ never see each other's connections.
type PoolKey struct {
	User         string
	Schema       string
	Collation    uint8
	Capabilities uint32
}

// PoolOptions configure a Pool.
type PoolOptions struct {
	// MaxIdlePerServer bounds the idle connections kept per server; a
	// returned connection beyond it is closed.
	MaxIdlePerServer int
	// IdleTimeout closes connections idle this long (0: never).
	IdleTimeout time.Duration
	// MaxLifetime closes connections this old when they are returned (0: never).
	MaxLifetime time.Duration
}

// Pool keeps idle server connections for reuse by any session with the
// same PoolKey. A connection in the pool is at a packet boundary, holds no
// transaction, and records the session state it carries (Conn.State) so the
// next user can tell whether it must reset it.
type Pool struct {
	opt  PoolOptions
	mu   sync.Mutex
	idle map[*Server][]*Conn // most recently returned last
	// returned is closed (and replaced) when a connection to the server
	// comes back, waking sessions that wait for one.
	returned map[*Server]chan struct{}
}

// NewPool returns an empty pool.
func NewPool(opt PoolOptions) *Pool {
	return &Pool{opt: opt, idle: make(map[*Server][]*Conn), returned: make(map[*Server]chan struct{})}
}

// Acquire returns a connection to srv for key: an idle one (preferring
// state), else a new one if servers[].max_connections allows, else, after
// closing an idle connection of another key to free its slot, or waiting up
// to the cluster's connect timeout for one to come back. alive vets a pooled
// connection before it is handed out.
func (p *Pool) Acquire(ctx context.Context, cl *Cluster, srv *Server, key PoolKey, state uint64, opt DialOptions, alive func(*Conn) bool) (*Conn, error) {
	wait := cl.ConnectTimeout()
	var timer *time.Timer
	for {
		for {
			c := p.Get(srv, key, state)
			if c == nil {
				break
			}
			if alive(c) {
				return c, nil
			}
			c.Close()
		}
		if srv.tryTakeSlot() || p.EvictIdle(srv) && srv.tryTakeSlot() {
			return p.dial(ctx, cl, srv, key, opt)
		}
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		}
		select {
		case srv.slots <- struct{}{}:
			return p.dial(ctx, cl, srv, key, opt)
		case <-p.returnedChan(srv):
		case <-timer.C:
			return nil, &ErrServerFull{Server: srv.Name, Max: srv.MaxConnections, Waited: wait}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// dial opens a connection for which a slot is already taken.
func (p *Pool) dial(ctx context.Context, cl *Cluster, srv *Server, key PoolKey, opt DialOptions) (*Conn, error) {
	c, err := cl.Connect(ctx, srv, opt)
	if err != nil {
		srv.releaseSlot()
		return nil, err
	}
	c.slot = srv.slots != nil
	c.Key = key
	return c, nil
}

func (p *Pool) returnedChan(srv *Server) chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	ch := p.returned[srv]
	if ch == nil {
		ch = make(chan struct{})
		p.returned[srv] = ch
	}
	return ch
}

// Get takes an idle connection to srv for key, preferring one whose session
// state fingerprint equals state, so that nothing needs replaying. It
// returns nil when there is none.
func (p *Pool) Get(srv *Server, key PoolKey, state uint64) *Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	list := p.idle[srv]
	best := -1
	for i := len(list) - 1; i >= 0; i-- {
		c := list[i]
		if c.Key != key {
			continue
		}
		if c.StateHash == state {
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
	p.idle[srv] = append(list[:best], list[best+1:]...)
	return c
}

// Put returns a connection for reuse, or closes it when it is broken, too
// old, or the server already has enough idle connections.
func (p *Pool) Put(c *Conn) {
	if c.broken || (p.opt.MaxLifetime > 0 && time.Since(c.Created) > p.opt.MaxLifetime) {
		c.Close()
		return
	}
	p.mu.Lock()
	list := p.idle[c.Server]
	if len(list) >= p.opt.MaxIdlePerServer {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.idle[c.Server] = append(list, c)
	if ch := p.returned[c.Server]; ch != nil {
		close(ch)
		delete(p.returned, c.Server)
	}
	p.mu.Unlock()
}

// EvictIdle closes the least recently used idle connection to srv, to free
// its slot for a session that needs another pool key. It reports whether
// there was one.
func (p *Pool) EvictIdle(srv *Server) bool {
	p.mu.Lock()
	list := p.idle[srv]
	if len(list) == 0 {
		p.mu.Unlock()
		return false
	}
	c := list[0]
	p.idle[srv] = append(list[:0], list[1:]...)
	p.mu.Unlock()
	c.Close()
	return true
}

// Idle returns the number of idle connections to srv.
func (p *Pool) Idle(srv *Server) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle[srv])
}

// Reap closes connections idle longer than the idle timeout, every
// interval, until ctx ends.
func (p *Pool) Reap(ctx context.Context, interval time.Duration) {
	if p.opt.IdleTimeout <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			p.closeAll()
			return
		case <-t.C:
		}
		var stale []*Conn
		p.mu.Lock()
		for srv, list := range p.idle {
			kept := list[:0]
			for _, c := range list {
				if time.Since(c.LastUsed) > p.opt.IdleTimeout {
					stale = append(stale, c)
				} else {
					kept = append(kept, c)
				}
			}
			p.idle[srv] = kept
		}
		p.mu.Unlock()
		for _, c := range stale {
			c.Close()
		}
	}
}

// Close closes every idle connection, for shutdown.
func (p *Pool) Close() { p.closeAll() }

func (p *Pool) closeAll() {
	p.mu.Lock()
	var all []*Conn
	for srv, list := range p.idle {
		all = append(all, list...)
		delete(p.idle, srv)
	}
	p.mu.Unlock()
	for _, c := range all {
		c.Close()
	}
}

// StateEntry is a command that changed session state (SET, USE,
// COM_INIT_DB, COM_SET_OPTION), kept so it can be replayed on another
// connection.
type StateEntry struct {
	Cmd     byte
	Payload string
}

// HashState fingerprints a state log, so the pool can prefer connections
// that already carry a session's state.
func HashState(log []StateEntry) uint64 {
	if len(log) == 0 {
		return 0
	}
	h := fnv.New64a()
	for _, e := range log {
		h.Write([]byte{e.Cmd})
		h.Write([]byte(e.Payload))
		h.Write([]byte{0})
	}
	return h.Sum64()
}
