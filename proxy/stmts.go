package proxy

import (
	"context"
	"fmt"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/backend"
	"switchyard/router"
	"switchyard/wire"
)

// Prepared statements under multiplexing. The client sees statement ids
// that the proxy hands out and that stay valid whichever server connection
// runs them. A statement is prepared on a server connection the first time
// it runs there (backend.Conn.Prepared caches it per connection), and an
// execution is rewritten to that connection's statement id, with the
// parameter types always included: the connection may never have seen the
// execution on which the client sent them.
//
// A client statement holds the server statement it last ran as (bound),
// which keeps that one prepared; the others it ran as are released, and
// the connections close them on the server unless they keep them for
// reuse (see backend.PreparedStmt). Closing the client statement, or the
// session's end, releases the last one. So a server holds what clients
// have open, not what they closed.
//
// A session may hold as many statements open as the server it prepares on
// allows one session (its max_prepared_stmt_count), and as many bytes of
// statement text as limits.max_prepared_bytes_per_session.

// clientStmt is a statement the client prepared.
type clientStmt struct {
	sql       string
	key       backend.StmtKey
	class     router.Class
	numParams int
	// size is what the statement counts against the session's byte budget.
	size int64
	// bound is the server statement the client statement last ran as,
	// held; nil before its prepare succeeded.
	bound *backend.PreparedStmt
	// types are the parameter types from the client's last execution that
	// bound them (2 bytes per parameter).
	types []byte
	// cursorOpen and longData mark server-side state of this statement
	// that pins the session until it ends.
	cursorOpen, longData bool
	// serverSQL is the text a statement that reads the process list last
	// ran as on a server (serverText), "" before; key is its key then.
	serverSQL string
	// kill is set for a prepared KILL: the proxy carries it out at each
	// execution (kill.go) and no server ever prepares it.
	kill *router.Kill
}

// bind makes ps the server statement st runs as: st holds it, and lets go
// of the one it held.
func (st *clientStmt) bind(ps *backend.PreparedStmt) {
	if st.bound == ps {
		return
	}
	ps.Hold()
	st.unbind()
	st.bound = ps
}

// unbind lets go of the server statement st holds.
func (st *clientStmt) unbind() {
	if st.bound != nil {
		st.bound.Release()
		st.bound = nil
	}
}

// stmtSize is what a statement counts against the session's byte budget:
// its text and its normalized text, which it keeps for routing. (Parameter
// types, 2 bytes per '?', are bounded by the text.)
func stmtSize(sql string, class *router.Class) int64 {
	return int64(len(sql) + len(class.DigestText))
}

// errStmtBudget is the answer to a prepare that would take the session's
// statement texts past limits.max_prepared_bytes_per_session.
func errStmtBudget(held, size, budget int64) error {
	return wire.Errorf(mysql.ER_UNKNOWN_ERROR, "switchyard: this session's prepared statements hold %d bytes of statement text and this one needs %d more, over limits.max_prepared_bytes_per_session (%d bytes); close statements the session no longer uses, or raise that limit", held, size, budget)
}

// prepareStmt handles COM_STMT_PREPARE: the statement is classified and
// prepared where it would run, and the client gets a proxy statement id.
func (s *session) prepareStmt(ctx context.Context, buf []byte) error {
	text := buf[wire.HeaderSize+1:]
	budget := s.srv.preparedBudget.Load()
	if s.st.stmtBytes+int64(len(text)) > budget {
		// Refused before the text is even copied.
		return errStmtBudget(s.st.stmtBytes, int64(len(text)), budget)
	}
	sql := string(text)
	class := s.classify(sql)
	if err := s.checkFirewall(&class, sql); err != nil {
		return err
	}
	if class.Kills {
		return s.prepareKill(sql, &class, budget)
	}
	if class.UsesConnectionID {
		sql = router.RewriteConnectionID(sql, uint64(s.c.ID()))
		buf = append(buf[:wire.HeaderSize+1:wire.HeaderSize+1], sql...)
	}
	size := stmtSize(sql, &class)
	if s.st.stmtBytes+size > budget {
		return errStmtBudget(s.st.stmtBytes, size, budget)
	}
	d, err := s.decide(&class, sql)
	if err != nil {
		return err
	}
	s.st.nextStmtID++
	id := s.st.nextStmtID
	st := &clientStmt{sql: sql, key: backend.KeyOf(buf[wire.HeaderSize+1:]), class: class, size: size}
	// Checked on the connection chosen, against its server's limit: a
	// server refuses a session past it, whichever server has the others.
	admit := func(sc *backend.Conn) ([]byte, error) {
		limit, err := sc.MaxPreparedStmts()
		if err != nil {
			return nil, err
		}
		if len(s.st.stmts) >= limit {
			return nil, mysql.NewDefaultError(mysql.ER_MAX_PREPARED_STMT_COUNT_REACHED, limit)
		}
		if class.ReadsThreadIDs {
			_, text, err := s.serverText(sc, st, true)
			if err != nil || text == sql {
				return buf, err
			}
			return append(append(make([]byte, 0, wire.HeaderSize+1+len(text)), buf[:wire.HeaderSize+1]...), text...), nil
		}
		return buf, nil
	}
	s.pendingStmt, s.pendingStmtID = st, id
	sc, res, err := s.runRouted(ctx, &class, d, buf, wire.ShapePrepare, admit)
	s.pendingStmt = nil
	if err != nil || sc == nil || !res.ok {
		st.unbind() // a response that failed after its first packet
		return err
	}
	// A duplicate of a statement the connection had is closed now, not
	// when the connection goes back to the pool: without multiplexing it
	// never does.
	_ = sc.TidyStmts() // a failed write marks the connection broken
	if s.st.stmts == nil {
		s.st.stmts = make(map[uint32]*clientStmt)
	}
	s.st.stmts[id] = st
	s.st.stmtBytes += size
	return nil
}

// prepareKill prepares a KILL as MariaDB would, with the same errors for
// the forms it refuses, but in the proxy: a server must never run a KILL
// with the client's ids (kill.go). mysqltest's --ps-protocol and drivers
// that prepare every statement send KILL this way.
func (s *session) prepareKill(sql string, class *router.Class, budget int64) error {
	k, err := parseKill(sql)
	if err != nil {
		return err
	}
	size := stmtSize(sql, class)
	if s.st.stmtBytes+size > budget {
		return errStmtBudget(s.st.stmtBytes, size, budget)
	}
	s.st.nextStmtID++
	id := s.st.nextStmtID
	if s.st.stmts == nil {
		s.st.stmts = make(map[uint32]*clientStmt)
	}
	s.st.stmts[id] = &clientStmt{sql: sql, class: *class, size: size, kill: &k}
	s.st.stmtBytes += size
	return s.c.WritePacket(wire.AppendPrepareOK(make([]byte, wire.HeaderSize, wire.HeaderSize+12), wire.PrepareOK{StatementID: id}))
}

// onPrepareOK is called by the forwarder with the first packet of a
// successful prepare response: it records the server's statement id and
// shows the client the proxy's.
func (s *session) onPrepareOK(sc *backend.Conn, p []byte, ok wire.PrepareOK) {
	st := s.pendingStmt
	if st == nil {
		return
	}
	st.numParams = int(ok.Params)
	st.bind(sc.RememberPrepared(st.key, ok.StatementID))
	wire.SetPrepareOKStatementID(p, s.pendingStmtID)
}

// releaseStmts lets go of the server statements of the client statements
// in stmts, which the session has dropped (its end, a reset, a change of
// user).
func releaseStmts(stmts map[uint32]*clientStmt) {
	bound := make([]*backend.PreparedStmt, 0, len(stmts))
	for _, st := range stmts {
		bound = append(bound, st.bound)
		st.bound = nil
	}
	backend.ReleaseAll(bound)
}

// stmtFor returns the client statement a command names, or the error a
// server gives for an unknown statement.
func (s *session) stmtFor(p []byte, command string) (*clientStmt, error) {
	id, err := wire.StmtID(p)
	if err != nil {
		return nil, mysql.NewDefaultError(mysql.ER_MALFORMED_PACKET)
	}
	st := s.st.stmts[id]
	if st == nil {
		return nil, mysql.NewDefaultError(mysql.ER_UNKNOWN_STMT_HANDLER, 4, fmt.Sprint(id), command)
	}
	return st, nil
}

// executeStmt handles COM_STMT_EXECUTE: it is routed like the statement's
// text would be, prepared on the chosen connection if needed, and sent with
// that connection's statement id.
func (s *session) executeStmt(ctx context.Context, buf []byte) error {
	p := buf[wire.HeaderSize:]
	st, err := s.stmtFor(p, "mysqld_stmt_execute")
	if err != nil {
		return err
	}
	if st.kill != nil {
		return s.carryOutKill(ctx, *st.kill)
	}
	flags, err := wire.ExecuteFlags(p)
	if err != nil {
		return mysql.NewDefaultError(mysql.ER_MALFORMED_PACKET)
	}
	types, err := wire.ExecuteBoundTypes(p, st.numParams)
	if err != nil {
		return mysql.NewDefaultError(mysql.ER_MALFORMED_PACKET)
	}
	if types != nil {
		st.types = append(st.types[:0], types...)
	}
	cursor := flags&wire.CursorFlags != 0
	class := st.class
	s.observeStatement(&class, st.sql)
	d, err := s.decide(&class, st.sql)
	if err != nil {
		return err
	}
	if (class.ShowsSessionStatus || class.ShowsGlobalStatus) && st.numParams == 0 {
		if handled, err := s.executeSessionStatus(ctx, st.sql, class.ShowsGlobalStatus); handled {
			return err
		}
	}
	if cursor {
		d = router.ForCursor(d)
	}
	var out []byte
	prepare := func(sc *backend.Conn) ([]byte, error) {
		// Long data sent waits on the server statement it was sent to.
		key, text, err := s.serverText(sc, st, !st.longData)
		if err != nil {
			return nil, err
		}
		ps, err := sc.Prepared(key, text)
		if err != nil {
			return nil, err
		}
		st.bind(ps)
		out, err = wire.AppendExecute(append(out[:0], make([]byte, wire.HeaderSize)...), p, ps.ID(), st.numParams, st.types)
		return out, err
	}
	sc, res, err := s.runRouted(ctx, &class, d, nil, wire.ExecuteShape(flags), prepare)
	s.observeRun(d, sc, res.rows)
	if class.AffectsNewLogins && sc != nil {
		s.renewLogins(ctx, st.sql, res.ok && resetsAlone(&class))
	}
	s.flushedStatus(&class, st.sql, res.ok && resetsAlone(&class))
	if class.Kind == router.DDL && sc != nil {
		// DROP DATABASE of the current schema leaves the connection in
		// none, which its replay log does not show; statements prepared
		// before would switch back to it when run.
		sc.StateChangedUnlogged()
	}
	if err != nil || sc == nil {
		return err
	}
	s.apply(sc, router.EffectsOf(&class, res.ok, true), st.sql, res) // st.sql: a prepared USE is replayed as text
	if st.longData {
		// The execution consumed the long data.
		st.longData = false
		s.unpin(router.PinLongData)
	}
	if st.cursorOpen {
		// A new execution closes the statement's previous cursor.
		st.cursorOpen = false
		s.unpin(router.PinCursor)
	}
	if cursor && res.ok && res.status&mysql.SERVER_STATUS_CURSOR_EXISTS != 0 {
		st.cursorOpen = true
		s.pin(sc, router.PinCursor)
	}
	return nil
}

// serverText is the text a client statement is prepared as on sc, with
// its key: the client's text, but for a statement that reads the process
// list, which shows the sessions holding the server's connections at that
// moment, the text with the mapping of now (clientViewSQL) when fresh,
// recorded in st; else the one st last ran as, on which its cursor or
// long data waits.
func (s *session) serverText(sc *backend.Conn, st *clientStmt, fresh bool) (backend.StmtKey, string, error) {
	if !st.class.ReadsThreadIDs {
		return st.key, st.sql, nil
	}
	if !fresh && st.serverSQL != "" {
		return st.key, st.serverSQL, nil
	}
	text, err := s.clientViewSQL(sc, st.sql)
	if err != nil {
		return st.key, st.sql, err
	}
	// The text kept counts against limits.max_prepared_bytes_per_session
	// as the client's does, from now until the statement is closed.
	grow := int64(len(text) - len(st.serverSQL))
	if budget := s.srv.preparedBudget.Load(); grow > 0 && s.st.stmtBytes+grow > budget {
		return st.key, st.sql, errStmtBudget(s.st.stmtBytes, grow, budget)
	}
	st.size += grow
	s.st.stmtBytes += grow
	st.key, st.serverSQL = backend.KeyOf([]byte(text)), text
	return st.key, text, nil
}

// stmtCommandName is the name servers give a statement command in their
// errors.
func stmtCommandName(cmd byte) string {
	switch cmd {
	case mysql.COM_STMT_FETCH:
		return "mysqld_stmt_fetch"
	case mysql.COM_STMT_RESET:
		return "mysqld_stmt_reset"
	case mysql.COM_STMT_SEND_LONG_DATA:
		return "mysqld_stmt_send_long_data"
	}
	return "mysqld_stmt_execute"
}

// stmtOnHeldConn runs COM_STMT_FETCH, COM_STMT_RESET or
// COM_STMT_SEND_LONG_DATA, which act on server-side statement state, on the
// connection the session is held on, rewriting the statement id.
// COM_STMT_SEND_LONG_DATA has no response, not even an error.
func (s *session) stmtOnHeldConn(ctx context.Context, buf []byte, shape wire.Shape, noResponse bool) error {
	p := buf[wire.HeaderSize:]
	cmd := p[0]
	st, err := s.stmtFor(p, stmtCommandName(cmd))
	if err != nil {
		if noResponse {
			return nil
		}
		return err
	}
	if st.kill != nil {
		// No server has it: nothing to reset, no cursor, and long data
		// that KILL would ignore.
		switch {
		case noResponse:
			return nil
		case cmd == mysql.COM_STMT_RESET:
			return s.c.WriteOK()
		}
		id, _ := wire.StmtID(p)
		return mysql.NewDefaultError(mysql.ER_STMT_HAS_NO_OPEN_CURSOR, id)
	}
	sc, err := s.sessionConn(ctx)
	if err != nil {
		if noResponse {
			return nil
		}
		return err
	}
	key, text, err := s.serverText(sc, st, false)
	if err != nil {
		if noResponse {
			return nil
		}
		return s.prepareFailed(sc, err)
	}
	ps, err := sc.Prepared(key, text)
	if err != nil {
		if noResponse {
			return nil
		}
		return s.prepareFailed(sc, err)
	}
	st.bind(ps)
	out := wire.AppendStmtCommand(make([]byte, wire.HeaderSize, len(buf)), p, ps.ID())
	if noResponse {
		// Long data waits on that connection for the execution.
		if !st.longData {
			st.longData = true
			s.pin(sc, router.PinLongData)
		}
		if _, err := sc.WriteCommand(out); err != nil {
			return s.serverLost(sc, err, true)
		}
		return nil
	}
	res, err := s.exchange(sc, out, shape)
	if err != nil {
		return s.exchangeFailed(sc, res, err)
	}
	s.after(sc, res)
	if st.cursorOpen && (cmd == mysql.COM_STMT_RESET || res.hasStatus && res.status&mysql.SERVER_STATUS_LAST_ROW_SEND != 0) {
		// The cursor is closed, or has returned its last row.
		st.cursorOpen = false
		s.unpin(router.PinCursor)
	}
	if st.longData && cmd == mysql.COM_STMT_RESET {
		st.longData = false
		s.unpin(router.PinLongData)
	}
	return nil
}

// closeStmt forgets a client statement (COM_STMT_CLOSE, which has no
// response) and releases its server statement, which its connection closes
// unless it keeps it for reuse; its cursor or long data, if any, no longer
// pin the session.
func (s *session) closeStmt(p []byte) {
	id, err := wire.StmtID(p)
	st := s.st.stmts[id]
	if err != nil || st == nil {
		return
	}
	if (st.cursorOpen || st.longData) && st.bound != nil {
		// The server statement carries this session's cursor or long
		// data, which the next session to run it must not meet. The
		// session is held on its connection, so it may say so.
		st.bound.Discard()
	}
	if st.cursorOpen {
		s.unpin(router.PinCursor)
	}
	if st.longData {
		s.unpin(router.PinLongData)
	}
	st.unbind()
	delete(s.st.stmts, id)
	s.st.stmtBytes -= st.size
	// The connections the session holds (all of them without
	// multiplexing) are tidied by nobody else meanwhile.
	for _, sc := range s.conns.list {
		_ = sc.TidyStmts() // a failed write marks the connection broken
	}
}
