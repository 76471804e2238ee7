package admin

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/go-mysql-org/go-mysql/mysql"
	"modernc.org/sqlite"

	"switchyard/wire"
)

// The admin database: one in-memory SQLite database on one connection,
// shared by every admin session under the Admin's lock. The staged tables
// are shared state, as in ProxySQL (what one operator stages, another can
// see and load), and the lock also makes refreshing a snapshot table and
// reading it one step.
//
// SQLite's authorizer enforces the rules while a statement is prepared:
// the staged tables take INSERT, UPDATE and DELETE; the snapshot tables
// only the admin's own refresh; nothing creates, drops or alters a table,
// attaches a file, runs a PRAGMA or a transaction. It also reports which
// tables a statement reads, so that only those are refreshed.

// Bounds on what one admin statement may cost. The admin is trusted with
// the proxy, but a mistyped query must not take its memory.
const (
	maxDBPages    = 16384    // pages of 4 KiB: 64 MiB for the whole database
	maxValueBytes = 16 << 20 // the longest string or blob
	maxResultRows = wire.MaxTextRows
	maxResultSize = 64 << 20
)

type db struct {
	sqlDB  *sql.DB
	conn   *sql.Conn
	schema *schema
	// internal lets the admin's own statements (refresh, staging) through
	// the authorizer.
	internal atomic.Bool
	// maxRows bounds a result's rows (maxResultRows; tests lower it).
	maxRows int
	// What the authorizer saw of the statement being prepared.
	reads  map[string]bool
	writes bool
	denied string
}

func openDB(ctx context.Context, s *schema) (*db, error) {
	sqlDB, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		return nil, err
	}
	// One connection: an in-memory database belongs to the connection
	// that opened it.
	sqlDB.SetMaxOpenConns(1)
	d := &db{sqlDB: sqlDB, schema: s, maxRows: maxResultRows}
	if d.conn, err = sqlDB.Conn(ctx); err != nil {
		sqlDB.Close()
		return nil, err
	}
	setup := []string{fmt.Sprintf("PRAGMA max_page_count = %d", maxDBPages)}
	for _, t := range s.tables {
		setup = append(setup, t.create())
	}
	for _, q := range setup {
		if _, err := d.conn.ExecContext(ctx, q); err != nil {
			d.close()
			return nil, fmt.Errorf("admin database: %s: %w", q, err)
		}
	}
	if _, err := sqlite.Limit(d.conn, 0 /* SQLITE_LIMIT_LENGTH */, maxValueBytes); err != nil {
		d.close()
		return nil, err
	}
	err = d.conn.Raw(func(dc any) error {
		r, ok := dc.(sqlite.AuthorizerRegisterer)
		if !ok {
			return errors.New("the SQLite driver has no authorizer")
		}
		return r.RegisterAuthorizer(d.authorize)
	})
	if err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

func (d *db) close() {
	if d.conn != nil {
		d.conn.Close()
	}
	d.sqlDB.Close()
}

const readOnlyHint = "; edit the staged tables (servers, users, query_rules, variables) and LOAD CONFIG TO RUNTIME"

func (d *db) authorize(action sqlite.AuthorizerActionCode, arg1, arg2, _, _ string) sqlite.AuthorizerReturnCode {
	if d.internal.Load() {
		return sqlite.AuthorizerOK
	}
	switch action {
	case sqlite.AuthSelect, sqlite.AuthRecursive:
		return sqlite.AuthorizerOK
	case sqlite.AuthRead:
		if d.reads != nil {
			d.reads[arg1] = true
		}
		return sqlite.AuthorizerOK
	case sqlite.AuthFunction:
		if strings.EqualFold(arg2, "load_extension") {
			d.denied = "load_extension is not available"
			return sqlite.AuthorizerDeny
		}
		return sqlite.AuthorizerOK
	case sqlite.AuthInsert, sqlite.AuthUpdate, sqlite.AuthDelete:
		switch t := d.schema.lookup(arg1); {
		case t != nil && t.kind == staged:
			d.writes = true
			return sqlite.AuthorizerOK
		case t != nil:
			d.denied = fmt.Sprintf("%s is read-only: it shows the running proxy%s", arg1, readOnlyHint)
		default:
			d.denied = fmt.Sprintf("%s cannot be changed%s", arg1, readOnlyHint)
		}
		return sqlite.AuthorizerDeny
	}
	d.denied = "the admin tables cannot be created, dropped or altered, and PRAGMA, ATTACH and transactions are not available"
	return sqlite.AuthorizerDeny
}

// exec runs one of the admin's own statements, past the authorizer.
func (d *db) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	d.internal.Store(true)
	defer d.internal.Store(false)
	return d.conn.ExecContext(ctx, q, args...)
}

// query runs one of the admin's own queries, past the authorizer.
func (d *db) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	d.internal.Store(true)
	defer d.internal.Store(false)
	return d.conn.QueryContext(ctx, q, args...)
}

// prepared is a client's statement, prepared: what it reads and whether
// it writes are known.
type prepared struct {
	stmt   *sql.Stmt
	reads  []string
	writes bool
}

// prepare compiles a client's statement under the authorizer.
func (d *db) prepare(ctx context.Context, q string) (*prepared, error) {
	d.reads, d.writes, d.denied = map[string]bool{}, false, ""
	defer func() { d.reads = nil }()
	stmt, err := d.conn.PrepareContext(ctx, q)
	if err != nil {
		if d.denied != "" {
			return nil, wire.Errorf(mysql.ER_TABLEACCESS_DENIED_ERROR, "%s", d.denied)
		}
		return nil, sqliteError(err)
	}
	p := &prepared{stmt: stmt, writes: d.writes}
	for t := range d.reads {
		p.reads = append(p.reads, t)
	}
	return p, nil
}

// run executes a prepared client statement and returns its result.
func (d *db) run(ctx context.Context, p *prepared) (*wire.TextResult, error) {
	if p.writes {
		res, err := p.stmt.ExecContext(ctx)
		if err != nil {
			return nil, sqliteError(err)
		}
		n, _ := res.RowsAffected()
		id, _ := res.LastInsertId()
		return &wire.TextResult{AffectedRows: uint64(max(n, 0)), LastInsertID: uint64(max(id, 0))}, nil
	}
	rows, err := p.stmt.QueryContext(ctx)
	if err != nil {
		return nil, sqliteError(err)
	}
	defer rows.Close()
	r, err := textResult(rows, d.maxRows)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// textResult reads rows into a result set for the client, bounded in rows
// and bytes.
func textResult(rows *sql.Rows, maxRows int) (*wire.TextResult, error) {
	types, err := rows.ColumnTypes()
	if err != nil {
		return nil, sqliteError(err)
	}
	r := &wire.TextResult{Columns: make([]wire.Column, len(types))}
	// A column is numeric if its declared type is, or, for computed
	// columns, if every value is.
	numeric := make([]byte, len(types))
	for i, t := range types {
		switch decl := strings.ToUpper(t.DatabaseTypeName()); {
		case strings.Contains(decl, "INT"):
			numeric[i] = mysql.MYSQL_TYPE_LONGLONG
		case strings.Contains(decl, "REAL"), strings.Contains(decl, "FLOA"), strings.Contains(decl, "DOUB"):
			numeric[i] = mysql.MYSQL_TYPE_DOUBLE
		case decl == "":
			numeric[i] = 0xff // not known yet
		}
	}
	vals := make([]any, len(types))
	ptrs := make([]any, len(types))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	size := 0
	for rows.Next() {
		if len(r.Rows) == maxRows {
			return nil, wire.Errorf(mysql.ER_UNKNOWN_ERROR, "the result has more than %d rows; add a WHERE or a LIMIT", maxRows)
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, sqliteError(err)
		}
		row := make([]sql.NullString, len(vals))
		for i, v := range vals {
			row[i], numeric[i] = textValue(v, numeric[i])
			size += len(row[i].String) + 1
		}
		if size > maxResultSize {
			return nil, wire.Errorf(mysql.ER_UNKNOWN_ERROR, "the result is larger than %d MiB; add a WHERE or a LIMIT", maxResultSize>>20)
		}
		r.Rows = append(r.Rows, row)
	}
	if err := rows.Err(); err != nil {
		return nil, sqliteError(err)
	}
	for i, t := range types {
		c := wire.Column{Schema: "main", Name: t.Name(), OrgName: t.Name(),
			Charset: 33, Length: 1 << 16, Type: mysql.MYSQL_TYPE_VAR_STRING}
		switch numeric[i] {
		case mysql.MYSQL_TYPE_LONGLONG, 0xff: // 0xff: only NULLs, or no rows
			if numeric[i] == mysql.MYSQL_TYPE_LONGLONG || len(r.Rows) == 0 {
				c.Type, c.Charset, c.Length, c.Flags = mysql.MYSQL_TYPE_LONGLONG, 63, 21, mysql.NUM_FLAG|mysql.BINARY_FLAG
			}
		case mysql.MYSQL_TYPE_DOUBLE:
			c.Type, c.Charset, c.Length, c.Flags, c.Decimals = mysql.MYSQL_TYPE_DOUBLE, 63, 22, mysql.NUM_FLAG|mysql.BINARY_FLAG, 31
		}
		r.Columns[i] = c
	}
	return r, nil
}

// textValue renders a SQLite value in the text protocol and updates what
// its column is known to hold: a numeric column turns to text at its
// first text value.
func textValue(v any, typ byte) (sql.NullString, byte) {
	switch x := v.(type) {
	case nil:
		return sql.NullString{}, typ
	case int64:
		if typ == 0xff {
			typ = mysql.MYSQL_TYPE_LONGLONG
		}
		return sql.NullString{String: strconv.FormatInt(x, 10), Valid: true}, typ
	case float64:
		if typ == 0xff || typ == mysql.MYSQL_TYPE_LONGLONG {
			typ = mysql.MYSQL_TYPE_DOUBLE
		}
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return sql.NullString{}, typ
		}
		return sql.NullString{String: strconv.FormatFloat(x, 'g', -1, 64), Valid: true}, typ
	case []byte:
		return sql.NullString{String: string(x), Valid: true}, 0
	case string:
		return sql.NullString{String: x, Valid: true}, 0
	case bool:
		if x {
			return sql.NullString{String: "1", Valid: true}, typ
		}
		return sql.NullString{String: "0", Valid: true}, typ
	}
	return sql.NullString{String: fmt.Sprint(v), Valid: true}, 0
}

// sqliteError gives a SQLite error the MySQL code that fits, so clients
// see a familiar errno and SQLSTATE.
func sqliteError(err error) error {
	var me *mysql.MyError
	if errors.As(err, &me) {
		return me
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return wire.Errorf(mysql.ER_QUERY_INTERRUPTED, "Query execution was interrupted (the admin statement ran longer than %v)", statementTimeout)
	}
	msg := trimSQLitePrefix(err.Error())
	switch {
	case strings.Contains(msg, "syntax error"), strings.Contains(msg, "incomplete input"), strings.Contains(msg, "unrecognized token"):
		return &mysql.MyError{Code: mysql.ER_PARSE_ERROR, State: "42000", Message: "You have an error in your SQL syntax: " + msg}
	case strings.Contains(msg, "no such table"):
		return &mysql.MyError{Code: mysql.ER_NO_SUCH_TABLE, State: "42S02", Message: msg + "; SHOW TABLES lists the admin tables"}
	case strings.Contains(msg, "no such column"):
		return &mysql.MyError{Code: mysql.ER_BAD_FIELD_ERROR, State: "42S22", Message: msg}
	case strings.Contains(msg, "no such function"):
		return &mysql.MyError{Code: mysql.ER_SP_DOES_NOT_EXIST, State: "42000", Message: msg}
	case strings.Contains(msg, "UNIQUE constraint failed"):
		return &mysql.MyError{Code: mysql.ER_DUP_ENTRY, State: "23000", Message: msg}
	case strings.Contains(msg, "NOT NULL constraint failed"):
		return &mysql.MyError{Code: mysql.ER_BAD_NULL_ERROR, State: "23000", Message: msg}
	case strings.Contains(msg, "database or disk is full"), strings.Contains(msg, "too big"):
		return wire.Errorf(mysql.ER_RECORD_FILE_FULL, "the admin database is full (it holds at most %d MiB): %s", maxDBPages*4>>10, msg)
	case strings.Contains(msg, "interrupted"):
		return wire.Errorf(mysql.ER_QUERY_INTERRUPTED, "Query execution was interrupted (the admin statement ran longer than %v)", statementTimeout)
	}
	return wire.Errorf(mysql.ER_UNKNOWN_ERROR, "%s", msg)
}

// trimSQLitePrefix drops the driver's "SQL logic error: " style prefix and
// the result code it appends: the rest is the message a person reads.
func trimSQLitePrefix(msg string) string {
	if i := strings.LastIndex(msg, " ("); i > 0 && strings.HasSuffix(msg, ")") {
		if _, err := strconv.Atoi(msg[i+2 : len(msg)-1]); err == nil {
			msg = msg[:i]
		}
	}
	for _, p := range []string{"SQL logic error: ", "constraint failed: ", "interrupted: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return msg
}
