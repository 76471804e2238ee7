package fakemysql

import (
	"database/sql"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/wire"
)

// Prepared statements and the binary protocol. wire has no encoder of
// binary result rows nor a decoder of COM_STMT_EXECUTE's parameter values:
// both are here.

// executeHeader is the size of COM_STMT_EXECUTE's fixed part: command,
// statement id, flags, iteration count.
const executeHeader = 1 + 4 + 1 + 4

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
	flags, err := wire.ExecuteFlags(p)
	var e *mysql.MyError
	var vals []string
	if err != nil {
		e = malformed()
	} else {
		vals, e = st.decodeParams(p)
	}
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
			c.writePacket(appendBinaryRow(nil, fitRow(r, len(res.Columns))))
		}
		c.writeEOF(status)
	}
	c.state = c.state[:0]
	return true
}

// fetch answers COM_STMT_FETCH from the statement's open cursor.
func (c *Conn) fetch(p []byte) {
	id, err := wire.StmtID(p)
	if err != nil || len(p) < 9 {
		c.writeErr(malformed())
		return
	}
	st := c.stmts[id]
	if st == nil {
		c.writeErr(unknownStmt(id, "mysqld_stmt_fetch"))
		return
	}
	cur := st.cursor
	if cur == nil {
		c.writeErr(mysql.NewError(mysql.ER_STMT_HAS_NO_OPEN_CURSOR,
			fmt.Sprintf("The statement (%d) has no open cursor.", id)))
		return
	}
	n := int(min(binary.LittleEndian.Uint32(p[5:9]), math.MaxInt32))
	k := min(n, len(cur.rows))
	for _, r := range cur.rows[:k] {
		c.writePacket(appendBinaryRow(nil, r))
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
	id, err := wire.StmtID(p)
	st := c.stmts[id]
	if err != nil || len(p) < 7 || st == nil {
		return
	}
	param := int(binary.LittleEndian.Uint16(p[5:7]))
	if param >= st.params {
		return
	}
	if st.long == nil {
		st.long = map[int][]byte{}
	}
	st.long[param] = append(st.long[param], p[7:]...)
}

// appendBinaryRow appends a binary-protocol row of VAR_STRING values:
// header 0x00, the NULL bitmap (offset 2), the non-NULL values as
// length-encoded strings.
func appendBinaryRow(b []byte, row []sql.NullString) []byte {
	b = append(b, wire.OKHeader)
	at := len(b)
	b = append(b, make([]byte, (len(row)+7+2)/8)...)
	for i, v := range row {
		if !v.Valid {
			b[at+(i+2)/8] |= 1 << ((i + 2) % 8)
			continue
		}
		b = wire.AppendLenencString(b, v.String)
	}
	return b
}

// decodeParams returns the parameters of a COM_STMT_EXECUTE payload as SQL
// literals. Types come from this execution or, when it binds none, from the
// last one that did.
func (st *stmt) decodeParams(p []byte) ([]string, *mysql.MyError) {
	n := st.params
	if n == 0 {
		return nil, nil
	}
	types, err := wire.ExecuteBoundTypes(p, n)
	if err != nil {
		return nil, malformed()
	}
	pos := executeHeader + (n+7)/8
	nulls := p[executeHeader:pos]
	pos++ // new-params-bound flag
	if types != nil {
		st.types = append(st.types[:0], types...)
		pos += 2 * n
	}
	r := p[pos:]
	vals := make([]string, n)
	for i := range n {
		if nulls[i/8]&(1<<(i%8)) != 0 {
			vals[i] = "NULL"
			continue
		}
		if d, ok := st.long[i]; ok {
			vals[i] = quoteString(string(d))
			continue
		}
		if st.types == nil {
			return nil, mysql.NewError(mysql.ER_WRONG_ARGUMENTS, "Incorrect arguments to mysqld_stmt_execute")
		}
		v, used, ok := decodeValue(r, st.types[2*i], st.types[2*i+1]&mysql.PARAM_UNSIGNED != 0)
		if !ok {
			return nil, malformed()
		}
		vals[i], r = v, r[used:]
	}
	return vals, nil
}

// decodeValue decodes one binary-protocol value of type typ as an SQL
// literal, and returns the bytes it used.
func decodeValue(b []byte, typ byte, unsigned bool) (string, int, bool) {
	fixed := func(n int) (uint64, bool) {
		if len(b) < n {
			return 0, false
		}
		var v uint64
		for i := n - 1; i >= 0; i-- {
			v = v<<8 | uint64(b[i])
		}
		return v, true
	}
	integer := func(n int) (string, int, bool) {
		v, ok := fixed(n)
		if !ok {
			return "", 0, false
		}
		if unsigned {
			return strconv.FormatUint(v, 10), n, true
		}
		shift := 64 - 8*n
		return strconv.FormatInt(int64(v<<shift)>>shift, 10), n, true
	}
	switch typ {
	case mysql.MYSQL_TYPE_NULL:
		return "NULL", 0, true
	case mysql.MYSQL_TYPE_TINY:
		return integer(1)
	case mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_YEAR:
		return integer(2)
	case mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_INT24:
		return integer(4)
	case mysql.MYSQL_TYPE_LONGLONG:
		return integer(8)
	case mysql.MYSQL_TYPE_FLOAT:
		v, ok := fixed(4)
		return strconv.FormatFloat(float64(math.Float32frombits(uint32(v))), 'g', -1, 32), 4, ok
	case mysql.MYSQL_TYPE_DOUBLE:
		v, ok := fixed(8)
		return strconv.FormatFloat(math.Float64frombits(v), 'g', -1, 64), 8, ok
	case mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_TIMESTAMP, mysql.MYSQL_TYPE_NEWDATE:
		if len(b) < 1 || len(b) < 1+int(b[0]) {
			return "", 0, false
		}
		return dateLiteral(b[1 : 1+int(b[0])]), 1 + int(b[0]), true
	case mysql.MYSQL_TYPE_TIME:
		if len(b) < 1 || len(b) < 1+int(b[0]) {
			return "", 0, false
		}
		return timeLiteral(b[1 : 1+int(b[0])]), 1 + int(b[0]), true
	}
	s, n, err := wire.LenencString(b)
	if err != nil {
		return "", 0, false
	}
	if (typ == mysql.MYSQL_TYPE_DECIMAL || typ == mysql.MYSQL_TYPE_NEWDECIMAL) && isNumber(string(s)) {
		return string(s), n, true
	}
	return quoteString(string(s)), n, true
}

func dateLiteral(d []byte) string {
	var y, mo, da, h, mi, s, us int
	if len(d) >= 4 {
		y, mo, da = int(binary.LittleEndian.Uint16(d)), int(d[2]), int(d[3])
	}
	if len(d) >= 7 {
		h, mi, s = int(d[4]), int(d[5]), int(d[6])
	}
	if len(d) >= 11 {
		us = int(binary.LittleEndian.Uint32(d[7:]))
	}
	switch {
	case len(d) >= 11 && us != 0:
		return fmt.Sprintf("'%04d-%02d-%02d %02d:%02d:%02d.%06d'", y, mo, da, h, mi, s, us)
	case len(d) >= 7:
		return fmt.Sprintf("'%04d-%02d-%02d %02d:%02d:%02d'", y, mo, da, h, mi, s)
	}
	return fmt.Sprintf("'%04d-%02d-%02d'", y, mo, da)
}

func timeLiteral(d []byte) string {
	if len(d) < 8 {
		return "'00:00:00'"
	}
	sign := ""
	if d[0] == 1 {
		sign = "-"
	}
	hours := int(binary.LittleEndian.Uint32(d[1:]))*24 + int(d[5])
	if len(d) >= 12 {
		if us := binary.LittleEndian.Uint32(d[8:]); us != 0 {
			return fmt.Sprintf("'%s%02d:%02d:%02d.%06d'", sign, hours, d[6], d[7], us)
		}
	}
	return fmt.Sprintf("'%s%02d:%02d:%02d'", sign, hours, d[6], d[7])
}
