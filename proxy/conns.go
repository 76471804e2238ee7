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

// A session may hold one connection per server: writes go to the primary,
// reads to replicas. Statements that change session state (SET, USE, ...)
// run where they are routed and are logged; another connection of the
// session replays the log entries it has not seen before it runs anything,
// so every connection of a session shows the client the same state.
// Session state that cannot be replayed (user variables, temporary tables,
// locks, prepared statements) pins the session to one connection instead.

// serverConn is one of a session's server connections.
type serverConn struct {
	conn *backend.Conn
	// applied counts the session-state log entries this connection has run.
	applied int
}

// stateEntry is a command that changed session state, kept for replay.
type stateEntry struct {
	cmd     byte
	payload string
}

var errSessionStateLost = errors.New("the server closed the connection that held this session's transaction or session state; reconnect")

// maxStateLog bounds the replay log; a session that changes its state more
// often than this is pinned to its connection rather than replayed.
const maxStateLog = 64

// idleCheckAfter is how long a connection may sit unused before it is
// checked for a server-side close before use.
const idleCheckAfter = time.Second

// connTo returns the session's connection to srv, opening it and bringing
// its session state up to date as needed. verify checks an existing
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
	if sc == nil || sc.conn.Broken() {
		if sc != nil {
			s.dropConn(sc)
		}
		be, err := s.srv.cluster.Connect(context.Background(), srv, backend.DialOptions{
			Creds:        s.creds,
			Schema:       s.loginSchema,
			Collation:    s.collation,
			Capabilities: s.caps,
		})
		if err != nil {
			return nil, err
		}
		sc = &serverConn{conn: be}
		s.conns = append(s.conns, sc)
	}
	for sc.applied < len(s.stateLog) {
		e := s.stateLog[sc.applied]
		if err := sc.conn.Command(e.cmd, e.payload); err != nil {
			// The server refused state the client already has: this
			// connection cannot serve the session.
			s.dropConn(sc)
			return nil, fmt.Errorf("replaying session state on server %s: %w", srv.Name, err)
		}
		sc.applied++
	}
	return sc, nil
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

// closeConns closes every server connection of the session.
func (s *session) closeConns() {
	for len(s.conns) > 0 {
		s.dropConn(s.conns[len(s.conns)-1])
	}
}

// logState records a successful state-changing command, which sc has
// already run. A command identical to an earlier one replaces it, so a
// client that repeats SET NAMES per request does not grow the log.
func (s *session) logState(sc *serverConn, cmd byte, payload string) {
	for i, e := range s.stateLog {
		if e.cmd == cmd && e.payload == payload {
			copy(s.stateLog[i:], s.stateLog[i+1:])
			s.stateLog = s.stateLog[:len(s.stateLog)-1]
			for _, other := range s.conns {
				// Entries after i moved down: a connection replays them
				// again, which for SET and USE is harmless.
				other.applied = min(other.applied, i)
			}
			break
		}
	}
	if len(s.stateLog) >= maxStateLog {
		s.pin(sc, "session state changed too often to replay")
		return
	}
	s.stateLog = append(s.stateLog, stateEntry{cmd: cmd, payload: payload})
	if sc.applied == len(s.stateLog)-1 {
		sc.applied = len(s.stateLog)
	}
}

// pin keeps the session on sc from now on, for reason.
func (s *session) pin(sc *serverConn, reason string) {
	if s.pinned == "" {
		s.logger().Debug("session pinned to its server connection", "reason", reason, "server", sc.conn.Server.Name)
	}
	s.pinned = reason
	s.current = sc
}

// resetState forgets session state after COM_RESET_CONNECTION or a change
// of user: the servers have dropped it too.
func (s *session) resetState() {
	s.stateLog = s.stateLog[:0]
	for _, sc := range s.conns {
		sc.applied = 0
	}
	s.pinned = ""
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
	return wire.Errorf(mysql.ER_UNKNOWN_ERROR, "switchyard: %v", err)
}
