package proxy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/backend"
	"switchyard/wire"
)

// A session holds a server connection only while it needs one: during a
// statement, for a transaction, while pinned, or until the statement after
// one whose outcome the next may read (LAST_INSERT_ID, FOUND_ROWS). In
// between, with pool.multiplexing on, its connections go back to a shared
// pool and any session with the same login may use them.
//
// Statements that change session state (SET, SET NAMES, USE, ...) run where
// they are routed and are logged. Before a connection runs anything for a
// session it is brought to the session's state: it replays the log entries
// it has not run, or, when it carries another session's state, it is reset
// (COM_RESET_CONNECTION) and replays the whole log. Session state that
// cannot be replayed (user variables, temporary tables, locks, prepared
// statements) pins the session to its connection instead.

// serverConn is one of the connections a session holds.
type serverConn struct {
	conn *backend.Conn
}

// stateEntry is a command that changed session state, kept for replay.
type stateEntry = backend.StateEntry

var errSessionStateLost = errors.New("the server closed the connection that held this session's transaction or session state; reconnect")

// maxStateLog bounds the replay log; a session that changes its state more
// often than this is pinned to its connection rather than replayed.
const maxStateLog = 64

// idleCheckAfter is how long a connection may sit unused before it is
// checked for a server-side close before use.
const idleCheckAfter = time.Second

// poolKey is which pooled connections this session may use.
func (s *session) poolKey() backend.PoolKey {
	return backend.PoolKey{User: s.creds.User, Schema: s.loginSchema, Collation: s.collation, Capabilities: backend.ServerCapabilities(s.caps)}
}

// connTo returns a connection to srv for the session, from those it holds,
// the pool, or a new one, brought to the session's state. verify checks a
// connection for a server-side close even if it was used just now.
func (s *session) connTo(srv *backend.Server, verify bool) (*serverConn, error) {
	sc := s.connFor(srv)
	if sc != nil && (verify || time.Since(sc.conn.LastUsed) > idleCheckAfter) && !sc.conn.Alive() {
		s.logger().Debug("server closed an idle connection; reconnecting", "server", srv.Name)
		held := sc == s.current
		s.dropConn(sc)
		if held {
			// State lived on that connection and is gone: the client must
			// learn it, as it would from the server itself.
			return nil, errSessionStateLost
		}
		sc = nil
	}
	if sc != nil && sc.conn.Broken() {
		s.dropConn(sc)
		sc = nil
	}
	if sc == nil {
		be, err := s.borrow(srv, verify)
		if err != nil {
			return nil, err
		}
		sc = &serverConn{conn: be}
		s.conns = append(s.conns, sc)
	}
	if err := s.syncState(sc.conn); err != nil {
		s.dropConn(sc)
		return nil, fmt.Errorf("bringing session state to server %s: %w", srv.Name, err)
	}
	return sc, nil
}

// borrow takes a pooled connection to srv that is still alive, or opens one.
// A connection idle for a while, or any when verify is set, is first checked
// for a server-side close.
func (s *session) borrow(srv *backend.Server, verify bool) (*backend.Conn, error) {
	alive := func(c *backend.Conn) bool {
		return (!verify && time.Since(c.LastUsed) <= idleCheckAfter) || c.Alive()
	}
	return s.srv.pool.Acquire(context.Background(), s.srv.cluster, srv, s.poolKey(), s.stateHash, backend.DialOptions{
		Creds:        s.creds,
		Schema:       s.loginSchema,
		Collation:    s.collation,
		Capabilities: s.caps,
	}, alive)
}

// syncState brings c to the session's logged state.
func (s *session) syncState(c *backend.Conn) error {
	if c.StateHash == s.stateHash && len(c.State) == len(s.stateLog) {
		return nil
	}
	if !isPrefix(c.State, s.stateLog) {
		// Another session's state: start from a clean login state.
		if err := c.Command(mysql.COM_RESET_CONNECTION, ""); err != nil {
			return err
		}
		if s.loginSchema != "" {
			if err := c.Command(mysql.COM_INIT_DB, s.loginSchema); err != nil {
				return err
			}
		}
		c.State = c.State[:0]
	}
	for _, e := range s.stateLog[len(c.State):] {
		if err := c.Command(e.Cmd, e.Payload); err != nil {
			// The server refused state the client already has: this
			// connection cannot serve the session.
			return err
		}
		c.State = append(c.State, e)
	}
	c.StateHash = s.stateHash
	return nil
}

func isPrefix(a, b []stateEntry) bool {
	if len(a) > len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// releaseIdle gives back to the pool the connections the session does not
// need to keep: all but the one a transaction or pin holds, and the last
// one while the next statement may read its outcome.
func (s *session) releaseIdle() {
	if !s.srv.multiplexing || len(s.conns) == 0 {
		return
	}
	for i := 0; i < len(s.conns); {
		sc := s.conns[i]
		if sc == s.current || (sc == s.last && s.holdLast) {
			i++
			continue
		}
		s.conns = append(s.conns[:i], s.conns[i+1:]...)
		if s.last == sc {
			s.last = nil
		}
		sc.conn.ReleaseReader()
		s.srv.pool.Put(sc.conn)
	}
}

// dropConn closes a connection and forgets it.
func (s *session) dropConn(sc *serverConn) {
	for i, c := range s.conns {
		if c == sc {
			s.conns = append(s.conns[:i], s.conns[i+1:]...)
			break
		}
	}
	if s.current == sc {
		s.current = nil
	}
	if s.last == sc {
		s.last = nil
	}
	_ = sc.conn.Close()
}

// connFor is the session's connection to srv, or nil.
func (s *session) connFor(srv *backend.Server) *serverConn {
	for _, sc := range s.conns {
		if sc.conn.Server == srv {
			return sc
		}
	}
	return nil
}

// closeConns ends the session's use of its connections: clean ones go back
// to the pool, those holding a transaction or pinned state are closed.
func (s *session) closeConns() {
	dirty := s.inTx.Load() || s.pinned != "" || !s.srv.multiplexing
	for len(s.conns) > 0 {
		sc := s.conns[len(s.conns)-1]
		if dirty || sc.conn.Broken() || sc.conn.Status&mysql.SERVER_STATUS_IN_TRANS != 0 {
			s.dropConn(sc)
			continue
		}
		s.conns = s.conns[:len(s.conns)-1]
		sc.conn.ReleaseReader()
		s.srv.pool.Put(sc.conn)
	}
	s.current, s.last = nil, nil
}

// logState records a successful state-changing command, which sc has
// already run. A command identical to an earlier one replaces it, so a
// client that repeats SET NAMES per request does not grow the log.
func (s *session) logState(sc *serverConn, cmd byte, payload string) {
	e := stateEntry{Cmd: cmd, Payload: payload}
	for i, old := range s.stateLog {
		if old == e {
			// Connections that ran the old order replay it again when they
			// are next used, which for SET and USE is harmless.
			s.stateLog = append(s.stateLog[:i], s.stateLog[i+1:]...)
			break
		}
	}
	if len(s.stateLog) >= maxStateLog {
		s.pin(sc, "session state changed too often to replay")
		return
	}
	s.stateLog = append(s.stateLog, e)
	s.stateHash = backend.HashState(s.stateLog)
	// sc has run every entry; its state is the log's.
	sc.conn.State = append(sc.conn.State[:0], s.stateLog...)
	sc.conn.StateHash = s.stateHash
}

// Reasons a session is pinned that end when the client undoes them.
const (
	pinTempTable = "temporary table"
	pinLockTable = "LOCK TABLES"
	pinPrepare   = "prepared statement (text protocol)"
	pinCursor    = "cursor"
	pinLongData  = "prepared statement long data"
)

// pin keeps the session on sc for reason, counted: the connection carries
// state that is not in the log. Some reasons end (unpin) when the client
// drops that state; the others last as long as the session.
func (s *session) pin(sc *serverConn, reason string) {
	if len(s.pins) == 0 {
		s.logger().Debug("session pinned to its server connection", "reason", reason, "server", sc.conn.Server.Name)
		s.srv.pinnedSessions.Add(1)
	}
	if s.pins == nil {
		s.pins = make(map[string]int, 1)
	}
	s.pins[reason]++
	s.pinned = reason
	s.current = sc
}

// unpin drops one count of reason. When no reason is left the session is
// free to move between connections again.
func (s *session) unpin(reason string) {
	if s.pins[reason] == 0 {
		return
	}
	if s.pins[reason]--; s.pins[reason] == 0 {
		delete(s.pins, reason)
	}
	if len(s.pins) > 0 {
		for r := range s.pins {
			s.pinned = r
			break
		}
		return
	}
	s.pinned = ""
	s.srv.pinnedSessions.Add(-1)
	if !s.inTx.Load() {
		s.current = nil
	}
	s.logger().Debug("session no longer pinned", "reason", reason)
}

// clearPins forgets every pin (the server connection was reset or closed).
func (s *session) clearPins() {
	if len(s.pins) > 0 {
		s.srv.pinnedSessions.Add(-1)
	}
	s.pins, s.pinned = nil, ""
}

// resetState forgets session state after COM_RESET_CONNECTION or a change
// of user: the servers have dropped it too.
func (s *session) resetState() {
	s.stateLog = s.stateLog[:0]
	s.stateHash = 0
	s.stmts = nil
	for _, sc := range s.conns {
		sc.conn.State, sc.conn.StateHash = sc.conn.State[:0], 0
	}
	s.clearPins()
	s.current = nil
	s.inTx.Store(false)
	s.autocommitOff = false
	// hasWritten stays: the session's earlier writes may still be on their
	// way to the replicas.
}

// primaryConn returns the session's connection to the primary.
func (s *session) primaryConn() (*serverConn, error) {
	p, err := s.srv.cluster.Primary()
	if err != nil {
		return nil, err
	}
	return s.connTo(p, false)
}

// proxyError turns a failure to reach a server into the error the client
// sees: a server's own error as it is, anything else as 1105 saying what
// failed.
func proxyError(err error) *mysql.MyError {
	if me, ok := err.(*mysql.MyError); ok {
		return me
	}
	var full *backend.ErrServerFull
	if errors.As(err, &full) {
		return wire.Errorf(mysql.ER_CON_COUNT_ERROR, "switchyard: %v; raise servers[].max_connections or retry", full)
	}
	return wire.Errorf(mysql.ER_UNKNOWN_ERROR, "switchyard: %v", err)
}
