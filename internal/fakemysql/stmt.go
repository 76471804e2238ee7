package fakemysql

import (
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/wire"
)

// Prepared statements: their parameters substituted into the statement's
// text as SQL literals, their results in the binary protocol.

// stmt is a prepared statement of one connection.
type stmt struct {
	id      uint32
	query   string
	params  int
	columns []string       // announced by the prepare response
	types   []byte         // the parameter types bound last (2 bytes each)
	long    map[int][]byte // COM_STMT_SEND_LONG_DATA by parameter
	cursor  *cursor        // open after an execution that asked for one
}

// cursor holds the rows of an execution not yet fetched.
type cursor struct {
	columns []string
	rows    [][]sql.NullString
}

// prepare answers COM_STMT_PREPARE. Any text prepares; its parameters are
// the '?' outside quotes and comments, its columns the items of a SELECT.
func (c *Conn) prepare(q string) {
	c.nextStmt++
	st := &stmt{id: c.nextStmt, query: q, params: countParams(q), columns: prepareColumns(q)}
	c.stmts[st.id] = st
	c.writePacket(wire.AppendPrepareOK(nil, wire.PrepareOK{
		StatementID: st.id, Columns: uint16(len(st.columns)), Params: uint16(st.params),
	}))
	if st.params > 0 {
		param := wire.Column{Name: "?", Charset: 63, Type: mysql.MYSQL_TYPE_VAR_STRING}
		for range st.params {
			c.writePacket(wire.AppendColumnDef(nil, &param))
		}
		if !c.deprecateEOF() {
			c.writePacket(wire.AppendEOF(nil, wire.EOF{Status: c.status()}))
		}
	}
	if len(st.columns) > 0 {
		cols := columnDefs(st.columns)
		for i := range cols {
			c.writePacket(wire.AppendColumnDef(nil, &cols[i]))
		}
		if !c.deprecateEOF() {
			c.writePacket(wire.AppendEOF(nil, wire.EOF{Status: c.status()}))
		}
	}
}

// prepareColumns names the columns of a SELECT's result; other statements
// have none.
func prepareColumns(q string) []string {
	norm := normalize(q)
	list, ok := hasWord(norm, "select")
	if !ok {
		return nil
	}
	if i := findKeyword(list, "from"); i >= 0 {
		list = list[:i]
	}
	var names []string
	for _, item := range splitTop(strings.TrimSpace(list), ',') {
		if i := findKeyword(item, "as"); i > 0 {
			names = append(names, unquoteValue(strings.TrimSpace(item[i+2:])))
			continue
		}
		if v, ok := isQuoted(item); ok {
			item = v
		}
		names = append(names, item)
	}
	if len(names) == 0 {
		names = []string{"?"}
	}
	return names
}

func unknownStmt(id uint32, fn string) *mysql.MyError {
	return mysql.NewError(mysql.ER_UNKNOWN_STMT_HANDLER,
		fmt.Sprintf("Unknown prepared statement handler (%d) given to %s", id, fn))
}

func malformed() *mysql.MyError {
	return mysql.NewError(mysql.ER_MALFORMED_PACKET, "Malformed communication packet.")
}

// execute answers COM_STMT_EXECUTE: the parameters are substituted into the
// statement's text as literals, the text runs like a query, and a result
// set goes out in the binary protocol, or only its definitions when a
// cursor was asked for. false: the connection failed.
func (c *Conn) execute(p []byte) bool {
	id, err := wire.StmtID(p)
	st := c.stmts[id]
	if err != nil || st == nil {
		c.s.record(Command{ConnID: c.id, Cmd: mysql.COM_STMT_EXECUTE})
		c.writeErr(unknownStmt(id, "mysqld_stmt_execute"))
		return true
	}
	flags, vals, e := st.decodeParams(p)
	text := st.query
	if e == nil {
		text = substitute(st.query, vals)
	}
	c.s.record(Command{ConnID: c.id, Cmd: mysql.COM_STMT_EXECUTE, Arg: text})
	if e != nil {
		c.writeErr(e)
		return true
	}
	st.long, st.cursor = nil, nil
	res, ok := c.eval(text, true)
	if !ok {
		return false
	}
	switch {
	case res.Err != nil:
		c.writeErr(res.Err)
	case len(res.Columns) == 0:
		c.writeOK(res.AffectedRows, res.InsertID, c.status(), res.Info)
	case flags&wire.CursorFlags != 0:
		rows := make([][]sql.NullString, len(res.Rows))
		for i, r := range res.Rows {
			rows[i] = fitRow(r, len(res.Columns))
		}
		st.cursor = &cursor{columns: res.Columns, rows: rows}
		c.writeDefs(res.Columns, c.status(), false)
		c.writeEOF(c.status() | mysql.SERVER_STATUS_CURSOR_EXISTS)
	default:
		status := c.status()
		c.writeDefs(res.Columns, status, true)
		for _, r := range res.Rows {
			c.writePacket(wire.AppendBinaryRow(nil, binaryRow(fitRow(r, len(res.Columns)))))
		}
		c.writeEOF(status)
	}
	c.state = c.state[:0]
	return true
}

// fetch answers COM_STMT_FETCH from the statement's open cursor.
func (c *Conn) fetch(p []byte) {
	f, err := wire.ParseStmtFetch(p)
	if err != nil {
		c.writeErr(malformed())
		return
	}
	st := c.stmts[f.StatementID]
	if st == nil {
		c.writeErr(unknownStmt(f.StatementID, "mysqld_stmt_fetch"))
		return
	}
	cur := st.cursor
	if cur == nil {
		c.writeErr(mysql.NewError(mysql.ER_STMT_HAS_NO_OPEN_CURSOR,
			fmt.Sprintf("The statement (%d) has no open cursor.", f.StatementID)))
		return
	}
	n := int(min(f.Rows, math.MaxInt32))
	k := min(n, len(cur.rows))
	for _, r := range cur.rows[:k] {
		c.writePacket(wire.AppendBinaryRow(nil, binaryRow(r)))
	}
	cur.rows = cur.rows[k:]
	if k < n {
		// Like MariaDB: the fetch that runs past the end says so and
		// closes the cursor.
		st.cursor = nil
		c.writeEOF(c.status() | mysql.SERVER_STATUS_LAST_ROW_SEND)
		return
	}
	c.writeEOF(c.status() | mysql.SERVER_STATUS_CURSOR_EXISTS)
}

// stmtReset answers COM_STMT_RESET: the cursor and long data go.
func (c *Conn) stmtReset(p []byte) {
	id, err := wire.StmtID(p)
	if err != nil {
		c.writeErr(malformed())
		return
	}
	st := c.stmts[id]
	if st == nil {
		c.writeErr(unknownStmt(id, "mysqld_stmt_reset"))
		return
	}
	st.cursor, st.long = nil, nil
	c.writeOK(0, 0, c.status(), "")
}

// longData takes COM_STMT_SEND_LONG_DATA, which has no response.
func (c *Conn) longData(p []byte) {
	d, err := wire.ParseStmtSendLongData(p)
	st := c.stmts[d.StatementID]
	if err != nil || st == nil || int(d.Param) >= st.params {
		return
	}
	if st.long == nil {
		st.long = map[int][]byte{}
	}
	st.long[int(d.Param)] = append(st.long[int(d.Param)], d.Data...)
}

// binaryRow is a row of VAR_STRING values (every result column is one),
// as the binary protocol sends them.
func binaryRow(row []sql.NullString) []wire.Value {
	vals := make([]wire.Value, len(row))
	for i, v := range row {
		vals[i] = wire.Value{Type: mysql.MYSQL_TYPE_VAR_STRING, Null: !v.Valid, Bytes: []byte(v.String)}
	}
	return vals
}

// decodeParams decodes a COM_STMT_EXECUTE payload: its flags and its
// parameters as SQL literals. Types come from this execution or, when it
// binds none, from the last one that did; long data stands in for a
// parameter's value.
func (st *stmt) decodeParams(p []byte) (byte, []string, *mysql.MyError) {
	n := st.params
	types, err := wire.ExecuteBoundTypes(p, n)
	if err != nil {
		return 0, nil, malformed()
	}
	if types != nil {
		st.types = append(st.types[:0], types...)
	}
	long := make([]bool, n)
	for i := range long {
		_, long[i] = st.long[i]
	}
	e, err := wire.ParseStmtExecute(p, n, st.types, long)
	switch {
	case errors.Is(err, wire.ErrNoParamTypes):
		return 0, nil, mysql.NewError(mysql.ER_WRONG_ARGUMENTS, "Incorrect arguments to mysqld_stmt_execute")
	case err != nil:
		return 0, nil, malformed()
	}
	vals := make([]string, n)
	for i, v := range e.Params {
		switch {
		case v.Null:
			vals[i] = "NULL"
		case long[i]:
			vals[i] = quoteString(string(st.long[i]))
		default:
			vals[i] = literal(v)
		}
	}
	return e.Flags, vals, nil
}

// literal writes a parameter's value as an SQL literal: integers, floats
// and decimals that are numbers bare, everything else quoted.
func literal(v wire.Value) string {
	if v.Null || v.Type == mysql.MYSQL_TYPE_NULL {
		return "NULL"
	}
	s := v.String()
	if isNumber(s) && (v.Bytes == nil || v.Type == mysql.MYSQL_TYPE_DECIMAL || v.Type == mysql.MYSQL_TYPE_NEWDECIMAL) {
		return s
	}
	return quoteString(s)
}
