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

// connSet is the server connections a session has borrowed: at most one
// per server, the one it is held on (transaction or pin), and the one its
// last statement ran on. It is a value apart from the pool and the aborter
// it shares, so a change of user can set it aside and bring it back.
type connSet struct {
	pool  Pool
	inUse *aborter
	list  []*backend.Conn
	held  *backend.Conn
	last  *backend.Conn
}

// fresh is an empty set that borrows from the same pool.
func (cs *connSet) fresh() connSet { return connSet{pool: cs.pool, inUse: cs.inUse} }

// forServer is the set's connection to srv, or nil.
func (cs *connSet) forServer(srv *backend.Server) *backend.Conn {
	for _, sc := range cs.list {
		if sc.Server() == srv {
			return sc
		}
	}
	return nil
}

// borrow returns the set's connection to srv, or borrows one from the pool.
func (cs *connSet) borrow(ctx context.Context, srv *backend.Server, req backend.Request) (*backend.Conn, error) {
	if sc := cs.forServer(srv); sc != nil {
		return sc, nil
	}
	sc, err := cs.pool.Acquire(ctx, srv, req)
	if err != nil {
		return nil, err
	}
	cs.list = append(cs.list, sc)
	cs.inUse.add(sc)
	return sc, nil
}

// forget takes sc out of the set without closing or returning it. aborted
// reports that the session was aborted meanwhile: an abort under way may
// still close sc, so it must not go back to the pool.
func (cs *connSet) forget(sc *backend.Conn) (aborted bool) {
	cs.list = slices.DeleteFunc(cs.list, func(c *backend.Conn) bool { return c == sc })
	if cs.held == sc {
		cs.held = nil
	}
	if cs.last == sc {
		cs.last = nil
	}
	return cs.inUse.remove(sc)
}

// release gives sc back to the pool (which closes it if it is broken).
func (cs *connSet) release(sc *backend.Conn) {
	if cs.forget(sc) {
		_ = sc.Close()
		return
	}
	cs.pool.Release(sc)
}

// drop closes sc: it carries state no other session may see, or is broken.
func (cs *connSet) drop(sc *backend.Conn) {
	cs.forget(sc)
	_ = sc.Close()
}

// releaseIdle gives back every connection but the held one, and the last
// one when keepLast is set.
func (cs *connSet) releaseIdle(keepLast bool) {
	for i := 0; i < len(cs.list); {
		sc := cs.list[i]
		if sc == cs.held || (sc == cs.last && keepLast) {
			i++
			continue
		}
		cs.release(sc)
	}
}

// resetAll runs COM_RESET_CONNECTION on every connection, which ends
// their sessions' state on the servers before the call returns; one that
// fails is left to the caller's close.
func (cs *connSet) resetAll() {
	for _, sc := range cs.list {
		if !sc.Broken() {
			_ = sc.Command(mysql.COM_RESET_CONNECTION, "")
		}
	}
}

// closeAll ends the use of every connection: clean ones go back to the
// pool; with dirty set (a transaction or pinned state), or for one still in
// a transaction, they are closed.
func (cs *connSet) closeAll(dirty bool) {
	for len(cs.list) > 0 {
		sc := cs.list[len(cs.list)-1]
		if dirty || sc.Broken() || sc.Status()&mysql.SERVER_STATUS_IN_TRANS != 0 {
			cs.drop(sc)
		} else {
			cs.release(sc)
		}
	}
	*cs = cs.fresh()
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

// remove unregisters sc and reports whether the session was aborted.
func (a *aborter) remove(sc *backend.Conn) (aborted bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.conns = slices.DeleteFunc(a.conns, func(c *backend.Conn) bool { return c == sc })
	return a.aborted
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

// closedWhileIdle reports whether the server closed sc (or sent something
// unasked before closing it) while it sat idle between the session's
// statements, checked without blocking when it idled past
// backend.IdleCheckAfter, or always with verify.
func closedWhileIdle(sc *backend.Conn, verify bool) bool {
	return !sc.Broken() && (verify || time.Since(sc.LastUsed()) > backend.IdleCheckAfter) && !sc.Alive()
}

// heldClosedByServer ends the session when the server closed the
// connection that held its transaction or pinned state while the session
// sat between statements (idle_transaction_timeout, wait_timeout, a KILL
// on the server). The state is gone, so the session cannot go on (a COMMIT
// would succeed for a transaction that is gone), and the client learns it
// as it would from that server itself: its connection closes without a
// word, and its client library reports a lost connection (2013 or 2006),
// not an error of the proxy's.
func (s *session) heldClosedByServer(verify bool) error {
	held := s.conns.held
	if held == nil || !closedWhileIdle(held, verify) {
		return nil
	}
	s.conns.drop(held)
	return EndSession(fmt.Errorf("server %s: %w", held.Server().Name, errSessionStateLost))
}

// connTo returns a connection to srv for the session, from those it holds,
// the pool, or a new one, brought to the session's state. verify checks a
// connection for a server-side close even if it was used just now.
func (s *session) connTo(ctx context.Context, srv *backend.Server, verify bool) (*backend.Conn, error) {
	if sc := s.conns.forServer(srv); sc != nil {
		held := sc == s.conns.held
		if held {
			if err := s.heldClosedByServer(verify); err != nil {
				return nil, err
			}
		}
		if sc.Broken() || !held && closedWhileIdle(sc, verify) {
			s.conns.drop(sc)
			if held {
				// Closed by the proxy (an operator's OFFLINE_HARD): the
				// session's state is gone with it, and the client is told
				// why before its connection closes.
				return nil, EndSessionTelling(errSessionStateLost)
			}
			s.c.Logger().Debug("server closed an idle connection; reconnecting", "server", srv.Name)
		}
	}
	l := s.c.login
	want := s.st.replay
	if srv.Role() != backend.RolePrimary {
		want = s.readOnlyState()
	}
	sc, err := s.conns.borrow(ctx, srv, backend.Request{
		Dial: backend.DialOptions{Creds: l.Creds, Schema: l.Schema, Collation: l.Collation, Capabilities: s.c.caps,
			ExtCapabilities: s.c.extCaps},
		State:  want,
		Verify: verify,
		Epoch:  s.loginEpoch,
	})
	if err != nil {
		return nil, err
	}
	if err := sc.Sync(want, l.Schema); err != nil {
		s.conns.drop(sc)
		return nil, fmt.Errorf("bringing session state to server %s: %w", srv.Name, err)
	}
	return sc, nil
}

// readOnlyState is the state of the session's connections to servers
// other than the primary: its own, with read-only transactions
// (backend.SessionState.ReadOnly), so that no write runs on a replica.
// Kept while the session's state stays the same: reads borrow a replica
// connection per statement.
func (s *session) readOnlyState() backend.SessionState {
	if !s.roFrom.Same(s.st.replay) || !s.roValid {
		s.roFrom, s.roState, s.roValid = s.st.replay, s.st.replay.ReadOnly(), true
	}
	return s.roState
}

// releaseIdle gives back to the pool the connections the session does not
// need to keep: all but the one a transaction or pin holds, and the last
// one while the next statement may read its outcome.
func (s *session) releaseIdle() {
	if s.srv.multiplexing() {
		s.conns.releaseIdle(s.st.holdLast)
	}
}

// closeConns ends the session's use of its connections: clean ones go back
// to the pool, those holding a transaction or pinned state are closed.
func (s *session) closeConns() {
	s.conns.closeAll(s.st.inTx || s.st.pins.Any() || !s.srv.multiplexing())
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
// the session is held on, else the primary (while there is none, a
// replica: these commands change replayed state or read metadata).
func (s *session) sessionConn(ctx context.Context) (*backend.Conn, error) {
	if s.conns.held != nil {
		return s.conns.held, nil
	}
	return s.primaryOrAny(ctx, -1, false)
}
