package admin

import (
	"context"
	"strconv"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/wire"
)

// Prepared statements on the admin interface, for drivers that prepare
// every statement with arguments (go-sql-driver without
// interpolateParams). The admin prepares nothing in SQLite: an execution
// puts its values into the statement's text as literals and runs it as a
// text statement, answered in the binary protocol.

// maxStmts bounds the statements one admin session keeps prepared.
const maxStmts = 256

type adminStmt struct {
	toks   []token
	params int
	types  []byte // the parameter types bound last
}

func (s *session) prepare(p []byte) error {
	toks, err := lex(string(p[1:]))
	if err != nil {
		return wire.Errorf(mysql.ER_PARSE_ERROR, "You have an error in your SQL syntax: %v", err)
	}
	if len(splitStatements(toks)) != 1 {
		return wire.Errorf(mysql.ER_PARSE_ERROR, "the admin interface prepares one statement at a time")
	}
	if len(s.stmts) >= maxStmts {
		return wire.Errorf(mysql.ER_MAX_PREPARED_STMT_COUNT_REACHED, "an admin session may keep %d prepared statements; close some", maxStmts)
	}
	st := &adminStmt{toks: toks}
	for _, t := range toks {
		if t.kind == tPunct && t.text == "?" {
			st.params++
		}
	}
	if s.stmts == nil {
		s.stmts = map[uint32]*adminStmt{}
	}
	s.nextStmt++
	s.stmts[s.nextStmt] = st
	return s.c.WritePrepareResponse(wire.PrepareOK{StatementID: s.nextStmt, Params: uint16(st.params)})
}

func (s *session) execute(ctx context.Context, p []byte) error {
	id, err := wire.StmtID(p)
	if err != nil {
		return wire.Errorf(mysql.ER_MALFORMED_PACKET, "Malformed communication packet")
	}
	st := s.stmts[id]
	if st == nil {
		return wire.Errorf(mysql.ER_UNKNOWN_STMT_HANDLER, "Unknown prepared statement handler (%d) given to mysqld_stmt_execute", id)
	}
	ex, err := wire.ParseStmtExecute(p, st.params, st.types, nil)
	if err != nil {
		return wire.Errorf(mysql.ER_MALFORMED_PACKET, "Malformed communication packet: %v", err)
	}
	if ex.BindTypes {
		st.types = st.types[:0]
		for _, v := range ex.Params {
			flag := byte(0)
			if v.Unsigned {
				flag = 0x80
			}
			st.types = append(st.types, v.Type, flag)
		}
	}
	toks := make([]token, 0, len(st.toks))
	next := 0
	for _, t := range st.toks {
		if t.kind == tPunct && t.text == "?" && next < len(ex.Params) {
			t = literal(ex.Params[next], t.space)
			next++
		}
		toks = append(toks, t)
	}
	ctx, cancel := context.WithTimeout(ctx, statementTimeout)
	defer cancel()
	res, err := s.statement(ctx, toks)
	if err != nil {
		return err
	}
	if len(res.Columns) == 0 {
		return s.c.WriteResult(res)
	}
	rows := make([][]wire.Value, len(res.Rows))
	for i, row := range res.Rows {
		vals := make([]wire.Value, len(row))
		for j, v := range row {
			vals[j] = binaryValue(res.Columns[j].Type, v.String, v.Valid)
		}
		rows[i] = vals
	}
	return s.c.WriteBinaryResult(res.Columns, rows)
}

// literal is a parameter's value as a token of the statement.
func literal(v wire.Value, space bool) token {
	switch {
	case v.Null:
		return token{kind: tWord, text: "NULL", val: "NULL", space: space}
	case v.Type == mysql.MYSQL_TYPE_TINY || v.Type == mysql.MYSQL_TYPE_SHORT || v.Type == mysql.MYSQL_TYPE_LONG ||
		v.Type == mysql.MYSQL_TYPE_LONGLONG || v.Type == mysql.MYSQL_TYPE_INT24 ||
		v.Type == mysql.MYSQL_TYPE_FLOAT || v.Type == mysql.MYSQL_TYPE_DOUBLE:
		return token{kind: tNumber, text: v.String(), space: space}
	}
	return token{kind: tString, val: v.String(), space: space}
}

// binaryValue is a text value as the binary protocol sends a column of
// type typ.
func binaryValue(typ byte, s string, valid bool) wire.Value {
	if !valid {
		return wire.Value{Type: typ, Null: true}
	}
	switch typ {
	case mysql.MYSQL_TYPE_LONGLONG:
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return wire.Value{Type: typ, Int: n}
		}
	case mysql.MYSQL_TYPE_DOUBLE:
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return wire.Value{Type: typ, Float: f}
		}
	}
	return wire.Value{Type: mysql.MYSQL_TYPE_VAR_STRING, Bytes: []byte(s)}
}
