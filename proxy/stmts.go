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

// clientStmt is a statement the client prepared.
type clientStmt struct {
	sql       string
	class     router.Class
	numParams int
	// types are the parameter types from the client's last execution that
	// bound them (2 bytes per parameter).
	types []byte
	// cursorOpen and longData mark server-side state of this statement
	// that pins the session until it ends.
	cursorOpen, longData bool
}

// prepareStmt handles COM_STMT_PREPARE: the statement is classified and
// prepared where it would run, and the client gets a proxy statement id.
func (s *session) prepareStmt(ctx context.Context, buf []byte) error {
	sql := string(buf[wire.HeaderSize+1:])
	class := s.classify(sql)
	d, err := s.decide(&class, sql)
	if err != nil {
		return err
	}
	s.st.nextStmtID++
	id := s.st.nextStmtID
	st := &clientStmt{sql: sql, class: class}
	s.pendingStmt, s.pendingStmtID = st, id
	sc, res, err := s.runRouted(ctx, &class, d, buf, wire.ShapePrepare, nil)
	s.pendingStmt = nil
	if err != nil || sc == nil || !res.ok {
		return err
	}
	if s.st.stmts == nil {
		s.st.stmts = make(map[uint32]*clientStmt)
	}
	s.st.stmts[id] = st
	return nil
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
	sc.RememberPrepared(st.sql, ok.StatementID)
	wire.SetPrepareOKStatementID(p, s.pendingStmtID)
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
	d, err := s.decide(&class, st.sql)
	if err != nil {
		return err
	}
	if cursor {
		d = router.ForCursor(d)
	}
	var out []byte
	prepare := func(sc *backend.Conn) ([]byte, error) {
		serverID, err := sc.Prepared(st.sql)
		if err != nil {
			return nil, err
		}
		out, err = wire.AppendExecute(append(out[:0], make([]byte, wire.HeaderSize)...), p, serverID, st.numParams, st.types)
		return out, err
	}
	sc, res, err := s.runRouted(ctx, &class, d, nil, wire.ExecuteShape(flags), prepare)
	if err != nil || sc == nil {
		return err
	}
	s.apply(sc, router.EffectsOf(&class, res.ok, true), "", res.gtid)
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
	sc, err := s.sessionConn(ctx)
	if err != nil {
		if noResponse {
			return nil
		}
		return err
	}
	serverID, err := sc.Prepared(st.sql)
	if err != nil {
		if noResponse {
			return nil
		}
		return s.prepareFailed(sc, err)
	}
	out := wire.AppendStmtCommand(make([]byte, wire.HeaderSize, len(buf)), p, serverID)
	if noResponse {
		// Long data waits on that connection for the execution.
		if !st.longData {
			st.longData = true
			s.pin(sc, router.PinLongData)
		}
		if err := sc.Write(wire.FrameCommand(out)); err != nil {
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
// response). The statement stays prepared on the connections that have it,
// for the next client that needs it; its cursor or long data, if any, no
// longer pin the session.
func (s *session) closeStmt(p []byte) {
	id, err := wire.StmtID(p)
	st := s.st.stmts[id]
	if err != nil || st == nil {
		return
	}
	if st.cursorOpen {
		s.unpin(router.PinCursor)
	}
	if st.longData {
		s.unpin(router.PinLongData)
	}
	delete(s.st.stmts, id)
}
