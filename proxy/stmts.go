package proxy

import (
	"errors"
	"fmt"

	"github.com/go-mysql-org/go-mysql/mysql"

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

// stmtExecuteHeader is statement id (4), flags (1) and iteration count (4).
const stmtExecuteHeader = 9

// cursorFlags are the COM_STMT_EXECUTE flags that open a cursor, whose rows
// are fetched later from the same connection.
const cursorFlags = 0x07

// prepareStmt handles COM_STMT_PREPARE: the statement is classified and
// prepared where it would run, and the client gets a proxy statement id.
func (s *session) prepareStmt(buf []byte) error {
	sql := string(buf[wire.HeaderSize+1:])
	class := s.classify(sql)
	d, ok := s.decide(&class, sql)
	if !ok {
		return nil
	}
	s.nextStmtID++
	id := s.nextStmtID
	st := &clientStmt{sql: sql, class: class}
	s.pendingStmt, s.pendingStmtID = st, id
	sc, res, err := s.runRouted(&class, d, buf, shapePrepare, nil)
	s.pendingStmt = nil
	if err != nil || sc == nil || !res.ok {
		return err
	}
	if s.stmts == nil {
		s.stmts = make(map[uint32]*clientStmt)
	}
	s.stmts[id] = st
	return nil
}

// onPrepareOK is called by the forwarder with the first packet of a
// successful prepare response: it records the server's statement id and
// shows the client the proxy's.
func (s *session) onPrepareOK(sc *serverConn, p []byte) {
	st := s.pendingStmt
	if st == nil || len(p) < 12 {
		return
	}
	serverID := uint32(p[1]) | uint32(p[2])<<8 | uint32(p[3])<<16 | uint32(p[4])<<24
	st.numParams = int(p[7]) | int(p[8])<<8
	sc.conn.RememberPrepared(st.sql, serverID)
	id := s.pendingStmtID
	p[1], p[2], p[3], p[4] = byte(id), byte(id>>8), byte(id>>16), byte(id>>24)
}

// stmtFor returns the client statement a command names, or answers the
// client with the error a server gives for an unknown statement.
func (s *session) stmtFor(buf []byte) (*clientStmt, uint32, bool) {
	p := buf[wire.HeaderSize+1:]
	if len(p) < 4 {
		s.sendError(mysql.NewDefaultError(mysql.ER_MALFORMED_PACKET))
		return nil, 0, false
	}
	id := uint32(p[0]) | uint32(p[1])<<8 | uint32(p[2])<<16 | uint32(p[3])<<24
	st := s.stmts[id]
	if st == nil {
		s.sendError(mysql.NewDefaultError(mysql.ER_UNKNOWN_STMT_HANDLER, 4, fmt.Sprint(id), "mysqld_stmt_execute"))
		return nil, id, false
	}
	return st, id, true
}

// executeStmt handles COM_STMT_EXECUTE: it is routed like the statement's
// text would be, prepared on the chosen connection if needed, and sent with
// that connection's statement id.
func (s *session) executeStmt(buf []byte) error {
	st, _, ok := s.stmtFor(buf)
	if !ok {
		return nil
	}
	payload := buf[wire.HeaderSize+1:]
	if len(payload) < stmtExecuteHeader {
		s.sendError(mysql.NewDefaultError(mysql.ER_MALFORMED_PACKET))
		return nil
	}
	types, err := boundTypes(payload, st.numParams)
	if err != nil {
		s.sendError(mysql.NewDefaultError(mysql.ER_MALFORMED_PACKET))
		return nil
	}
	if types != nil {
		st.types = append(st.types[:0], types...)
	}
	cursor := payload[4]&cursorFlags != 0
	class := st.class
	d, ok := s.decide(&class, st.sql)
	if !ok {
		return nil
	}
	if cursor {
		// A cursor's rows are fetched later from the same connection.
		d.Target = router.Primary
		if s.current != nil {
			d.Target = router.Stay
		}
	}
	var out []byte
	prepare := func(sc *serverConn) ([]byte, error) {
		serverID, err := sc.conn.Prepared(st.sql)
		if err != nil {
			return nil, err
		}
		out, err = rewriteExecute(out[:0], payload, serverID, st.numParams, st.types)
		return out, err
	}
	sc, res, err := s.runRouted(&class, d, nil, shapeResult, prepare)
	if err != nil || sc == nil {
		return err
	}
	s.track(sc, &class, "", res)
	if st.longData {
		// The execution consumed the long data.
		st.longData = false
		s.unpin(pinLongData)
	}
	if st.cursorOpen {
		// A new execution closes the statement's previous cursor.
		st.cursorOpen = false
		s.unpin(pinCursor)
	}
	if cursor && res.ok && res.status&mysql.SERVER_STATUS_CURSOR_EXISTS != 0 {
		st.cursorOpen = true
		s.pin(sc, pinCursor)
	}
	return nil
}

// boundTypes returns the parameter types an execution carries, or nil when
// it relies on earlier ones (new-params-bound flag 0).
func boundTypes(p []byte, numParams int) ([]byte, error) {
	if numParams == 0 {
		return nil, nil
	}
	pos := stmtExecuteHeader + (numParams+7)/8
	if len(p) < pos+1 {
		return nil, wire.ErrMalformed
	}
	if p[pos] != 1 {
		return nil, nil
	}
	if len(p) < pos+1+2*numParams {
		return nil, wire.ErrMalformed
	}
	return p[pos+1 : pos+1+2*numParams], nil
}

// rewriteExecute builds, in dst with 4 bytes of header room, the
// COM_STMT_EXECUTE for server statement id: the client's execution with
// its id replaced and the parameter types always bound.
func rewriteExecute(dst, p []byte, id uint32, numParams int, types []byte) ([]byte, error) {
	if len(p) < stmtExecuteHeader {
		return nil, wire.ErrMalformed
	}
	dst = append(dst[:0], 0, 0, 0, 0, mysql.COM_STMT_EXECUTE, byte(id), byte(id>>8), byte(id>>16), byte(id>>24))
	dst = append(dst, p[4:stmtExecuteHeader]...)
	if numParams == 0 {
		return append(dst, p[stmtExecuteHeader:]...), nil
	}
	pos := stmtExecuteHeader + (numParams+7)/8
	if len(p) < pos+1 {
		return nil, wire.ErrMalformed
	}
	dst = append(dst, p[stmtExecuteHeader:pos]...) // NULL bitmap
	values := p[pos+1:]
	if p[pos] == 1 {
		if len(values) < 2*numParams {
			return nil, wire.ErrMalformed
		}
		values = values[2*numParams:]
	}
	if len(types) != 2*numParams {
		return nil, errNoParamTypes
	}
	dst = append(dst, 1)
	dst = append(dst, types...)
	return append(dst, values...), nil
}

var errNoParamTypes = errors.New("execution without parameter types, and none sent before")

// stmtOnHeldConn runs COM_STMT_FETCH, COM_STMT_RESET or
// COM_STMT_SEND_LONG_DATA, which act on server-side statement state, on the
// connection the session is held on, rewriting the statement id.
func (s *session) stmtOnHeldConn(buf []byte, shape respShape, noResponse bool) error {
	st, _, ok := s.stmtFor(buf)
	if !ok {
		return nil
	}
	sc, err := s.sessionConn()
	if err != nil {
		if !noResponse {
			s.sendError(proxyError(err))
		}
		return nil
	}
	serverID, err := sc.conn.Prepared(st.sql)
	if err != nil {
		if noResponse {
			return nil
		}
		_, _, err = s.prepareFailed(sc, err)
		return err
	}
	p := buf[wire.HeaderSize+1:]
	out := make([]byte, 0, len(buf))
	out = append(out, 0, 0, 0, 0, buf[wire.HeaderSize], byte(serverID), byte(serverID>>8), byte(serverID>>16), byte(serverID>>24))
	out = append(out, p[4:]...)
	if noResponse {
		// Long data waits on that connection for the execution.
		if !st.longData {
			st.longData = true
			s.pin(sc, pinLongData)
		}
		if err := s.send(sc, out); err != nil {
			return s.serverLost(sc, err, false)
		}
		return nil
	}
	res, err := s.exchange(sc, out, shape)
	if err != nil {
		return s.exchangeFailed(sc, res, err)
	}
	s.after(sc, res)
	cmd := buf[wire.HeaderSize]
	if st.cursorOpen && (cmd == mysql.COM_STMT_RESET || res.hasStatus && res.status&mysql.SERVER_STATUS_LAST_ROW_SEND != 0) {
		// The cursor is closed, or has returned its last row.
		st.cursorOpen = false
		s.unpin(pinCursor)
	}
	if st.longData && cmd == mysql.COM_STMT_RESET {
		st.longData = false
		s.unpin(pinLongData)
	}
	return nil
}

// closeStmt forgets a client statement (COM_STMT_CLOSE). The statement
// stays prepared on the connections that have it, for the next client that
// needs it; its cursor or long data, if any, no longer pin the session.
func (s *session) closeStmt(buf []byte) {
	p := buf[wire.HeaderSize+1:]
	if len(p) < 4 {
		return
	}
	id := uint32(p[0]) | uint32(p[1])<<8 | uint32(p[2])<<16 | uint32(p[3])<<24
	st := s.stmts[id]
	if st == nil {
		return
	}
	if st.cursorOpen {
		s.unpin(pinCursor)
	}
	if st.longData {
		s.unpin(pinLongData)
	}
	delete(s.stmts, id)
}
