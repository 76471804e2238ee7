package proxy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/backend"
)

// A session holds a server connection only while it needs one: during a
// statement, for a transaction, while pinned, or until the statement after
// one whose outcome the next may read (LAST_INSERT_ID, FOUND_ROWS). In
// between, with multiplexing on, its connections go back to the shared pool
// and any session with the same login may use them. Before a connection
// runs anything for a session it is brought to the session's state
// (backend.Conn.Sync): session state that cannot be replayed (user
// variables, temporary tables, locks, prepared statements) pins the session
// to its connection instead.

// connSet is the server connections a session holds: at most one per
// server, the one it is held on (transaction or pin), and the one its last
// statement ran on. A plain value, so a change of user can set it aside.
type connSet struct {
	list []*backend.Conn
	held *backend.Conn
	last *backend.Conn
}

// forServer is the session's connection to srv, or nil.
func (cs *connSet) forServer(srv *backend.Server) *backend.Conn {
	for _, sc := range cs.list {
		if sc.Server() == srv {
			return sc
		}
	}
	return nil
}

// forget removes sc from the set.
func (cs *connSet) forget(sc *backend.Conn) {
	cs.list = slices.DeleteFunc(cs.list, func(c *backend.Conn) bool { return c == sc })
	if cs.held == sc {
		cs.held = nil
	}
	if cs.last == sc {
		cs.last = nil
	}
}

// aborter lets another goroutine close the server connections a session
// is using: a statement blocked on a server then fails at once.
type aborter struct {
	mu      sync.Mutex
	aborted bool
	conns   []*backend.Conn
}

// add registers sc; if the session was aborted already, sc is aborted too.
func (a *aborter) add(sc *backend.Conn) {
	a.mu.Lock()
	aborted := a.aborted
	if !aborted {
		a.conns = append(a.conns, sc)
	}
	a.mu.Unlock()
	if aborted {
		sc.Abort()
	}
}

func (a *aborter) remove(sc *backend.Conn) {
	a.mu.Lock()
	a.conns = slices.DeleteFunc(a.conns, func(c *backend.Conn) bool { return c == sc })
	a.mu.Unlock()
}

// abort closes every registered connection; the sockets close after the
// lock is let go.
func (a *aborter) abort() {
	a.mu.Lock()
	a.aborted = true
	conns := a.conns
	a.conns = nil
	a.mu.Unlock()
	for _, sc := range conns {
		sc.Abort()
	}
}

var errSessionStateLost = errors.New("the server closed the connection that held this session's transaction or session state; reconnect")

// dialOptions is how the session's new server connections log in.
func (s *session) dialOptions() backend.DialOptions {
	l := s.c.login
	return backend.DialOptions{Creds: l.Creds, Schema: l.Schema, Collation: l.Collation, Capabilities: s.c.caps}
}

// connTo returns a connection to srv for the session, from those it holds,
// the pool, or a new one, brought to the session's state. verify checks a
// connection for a server-side close even if it was used just now.
func (s *session) connTo(ctx context.Context, srv *backend.Server, verify bool) (*backend.Conn, error) {
	sc := s.conns.forServer(srv)
	if sc != nil && (verify || time.Since(sc.LastUsed()) > backend.IdleCheckAfter) && !sc.Alive() {
		s.c.Logger().Debug("server closed an idle connection; reconnecting", "server", srv.Name)
		held := sc == s.conns.held
		s.dropConn(sc)
		if held {
			// State lived on that connection and is gone: the client must
			// learn it, as it would from the server itself.
			return nil, errSessionStateLost
		}
		sc = nil
	}
	if sc != nil && sc.Broken() {
		s.dropConn(sc)
		sc = nil
	}
	if sc == nil {
		be, err := s.srv.pool.Acquire(ctx, srv, backend.Request{Dial: s.dialOptions(), State: s.st.replay, Verify: verify})
		if err != nil {
			return nil, err
		}
		sc = be
		s.conns.list = append(s.conns.list, sc)
		s.inUse.add(sc)
	}
	if err := sc.Sync(s.st.replay, s.c.login.Schema); err != nil {
		s.dropConn(sc)
		return nil, fmt.Errorf("bringing session state to server %s: %w", srv.Name, err)
	}
	return sc, nil
}

// releaseIdle gives back to the pool the connections the session does not
// need to keep: all but the one a transaction or pin holds, and the last
// one while the next statement may read its outcome.
func (s *session) releaseIdle() {
	if !s.srv.multiplexing() || len(s.conns.list) == 0 {
		return
	}
	for i := 0; i < len(s.conns.list); {
		sc := s.conns.list[i]
		if sc == s.conns.held || (sc == s.conns.last && s.st.holdLast) {
			i++
			continue
		}
		s.conns.forget(sc)
		s.inUse.remove(sc)
		s.srv.pool.Release(sc)
	}
}

// dropConn closes a connection and forgets it.
func (s *session) dropConn(sc *backend.Conn) {
	s.conns.forget(sc)
	s.inUse.remove(sc)
	_ = sc.Close()
}

// closeConns ends the session's use of its connections: clean ones go back
// to the pool, those holding a transaction or pinned state are closed.
func (s *session) closeConns() {
	dirty := s.st.inTx || s.st.pins.Any() || !s.srv.multiplexing()
	for len(s.conns.list) > 0 {
		sc := s.conns.list[len(s.conns.list)-1]
		if dirty || sc.Broken() || sc.Status()&mysql.SERVER_STATUS_IN_TRANS != 0 {
			s.dropConn(sc)
			continue
		}
		s.conns.forget(sc)
		s.inUse.remove(sc)
		s.srv.pool.Release(sc)
	}
	s.conns = connSet{}
}

// primaryConn returns the session's connection to the primary.
func (s *session) primaryConn(ctx context.Context) (*backend.Conn, error) {
	p, err := s.srv.servers.Primary()
	if err != nil {
		return nil, err
	}
	return s.connTo(ctx, p, false)
}

// sessionConn is where commands that are not routed run: the connection
// the session is held on, else the primary.
func (s *session) sessionConn(ctx context.Context) (*backend.Conn, error) {
	if s.conns.held != nil {
		return s.conns.held, nil
	}
	return s.primaryConn(ctx)
}
