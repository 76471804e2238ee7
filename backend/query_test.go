package backend

import (
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/internal/fakemysql"
	"switchyard/wire"
)

// The proxy's own commands on a server connection: Query, Exec, Command and
// Prepared, and what a server error or a broken response does to the
// connection.

func nullStr(s string) sql.NullString { return sql.NullString{String: s, Valid: true} }

// TestQueryResultSets: result sets are decoded with their column names and
// NULLs told apart from empty strings; with several result sets the last
// one is returned; a statement without a result set reports its OK.
func TestQueryResultSets(t *testing.T) {
	fake := fakemysql.Start(t, fakemysql.Options{Handle: func(c *fakemysql.Conn, q string) *fakemysql.Result {
		if q == "SELECT grid" {
			return &fakemysql.Result{Columns: []string{"id", "name"}, Rows: [][]sql.NullString{
				{nullStr("1"), nullStr("")},
				{nullStr("2"), {}},
			}}
		}
		return nil
	}})
	cn := mustDial(t, serverAt(fake.Addr()), DialOptions{Creds: appCreds, Capabilities: mysql.CLIENT_MULTI_STATEMENTS | mysql.CLIENT_MULTI_RESULTS})

	res, err := cn.Query("SELECT grid")
	if err != nil {
		t.Fatal(err)
	}
	var cols []string
	for _, c := range res.Columns {
		cols = append(cols, string(c.Name))
	}
	if !slices.Equal(cols, []string{"id", "name"}) {
		t.Fatalf("columns %q", cols)
	}
	want := [][]sql.NullString{{nullStr("1"), nullStr("")}, {nullStr("2"), {}}}
	if len(res.Rows) != 2 || !slices.Equal(res.Rows[0], want[0]) || !slices.Equal(res.Rows[1], want[1]) {
		t.Fatalf("rows %v, want %v (NULL and '' told apart)", res.Rows, want)
	}
	if res.ColumnIndex("name") != 1 {
		t.Errorf("ColumnIndex(name) = %d", res.ColumnIndex("name"))
	}

	res, err = cn.Query("SELECT 1 AS one; SELECT 'x' AS two, NULL AS three")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Columns) != 2 || string(res.Columns[0].Name) != "two" || res.Rows[0][0] != nullStr("x") || res.Rows[0][1].Valid {
		t.Fatalf("multi-result: got %+v, want the last result set", res)
	}

	res, err = cn.Query("INSERT INTO t VALUES (1)")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Columns) != 0 || res.AffectedRows != 1 {
		t.Fatalf("OK result: %+v, want no columns and 1 affected row", res)
	}
	if err := cn.Exec("BEGIN"); err != nil {
		t.Fatal(err)
	}
	if cn.Status()&mysql.SERVER_STATUS_IN_TRANS == 0 {
		t.Errorf("status %#x after BEGIN: the OK's status flags were not kept", cn.Status())
	}
}

// TestQueryServerError: the server's refusal of a statement is a
// *mysql.MyError and leaves the connection at a packet boundary, usable.
func TestQueryServerError(t *testing.T) {
	fake := fakemysql.Start(t, fakemysql.Options{})
	cn := mustDial(t, serverAt(fake.Addr()), appDial)
	for _, run := range []func() error{
		func() error { _, err := cn.Query("SELEKT 1"); return err },
		func() error { return cn.Exec("SELEKT 1") },
		func() error { return cn.Command(mysql.COM_QUERY, "SELEKT 1") },
	} {
		err := run()
		var me *mysql.MyError
		if !errors.As(err, &me) || me.Code != mysql.ER_PARSE_ERROR {
			t.Fatalf("err %v, want ERR 1064", err)
		}
		if cn.Broken() {
			t.Fatal("a server error marked the connection broken")
		}
		if res, err := cn.Query("SELECT 'still here'"); err != nil || res.Rows[0][0].String != "still here" {
			t.Fatalf("connection unusable after a server error: %v", err)
		}
	}
}

// TestBrokenResponses: a response that breaks the protocol leaves the
// connection at an unknown point: the command fails with an error that is
// not a server error, and the connection is marked broken so that it is
// closed instead of reused.
func TestBrokenResponses(t *testing.T) {
	colDef := func(name string) []byte {
		return wire.AppendColumnDef(nil, &wire.Column{Name: name, Charset: 45, Type: mysql.MYSQL_TYPE_VAR_STRING})
	}
	eof := wire.AppendEOF(nil, wire.EOF{Status: mysql.SERVER_STATUS_AUTOCOMMIT})
	responses := []struct {
		name string
		send func(p *peer)
	}{
		{"closed without an answer", func(p *peer) {}},
		{"truncated packet", func(p *peer) { p.writeRaw([]byte{20, 0, 0, 1, 0, 0, 0}) }},
		{"wrong sequence id", func(p *peer) { p.seq = 7; p.ok() }},
		{"empty packet", func(p *peer) { p.write(nil) }},
		{"row with a value missing", func(p *peer) {
			p.write(wire.AppendLenenc(nil, 2))
			p.write(colDef("a"))
			p.write(colDef("b"))
			p.write(eof)
			p.write(wire.AppendTextRow(nil, []sql.NullString{nullStr("1")}))
			p.write(eof)
		}},
		{"no EOF after the definitions", func(p *peer) {
			p.write(wire.AppendLenenc(nil, 1))
			p.write(colDef("a"))
			p.write(wire.AppendTextRow(nil, []sql.NullString{nullStr("1")}))
		}},
	}
	commands := []struct {
		name string
		run  func(cn *Conn) error
	}{
		{"Query", func(cn *Conn) error { _, err := cn.Query("SELECT 1"); return err }},
		{"Command COM_INIT_DB", func(cn *Conn) error { return cn.Command(mysql.COM_INIT_DB, "shop") }},
		{"Prepared", func(cn *Conn) error { _, err := prepared(cn, "SELECT ?"); return err }},
	}
	for _, cmd := range commands {
		for _, resp := range responses {
			t.Run(cmd.name+"/"+resp.name, func(t *testing.T) {
				s := startScripted(t, func(s *scripted, p *peer) {
					if !p.loginOK() {
						return
					}
					if _, err := p.command(); err != nil {
						return
					}
					resp.send(p)
				})
				cn := mustDial(t, serverAt(s.addr()), appDial)
				err := cmd.run(cn)
				var me *mysql.MyError
				if err == nil || errors.As(err, &me) {
					t.Fatalf("err %v, want a protocol error", err)
				}
				if !cn.Broken() {
					t.Fatal("connection not marked broken after a broken response")
				}
			})
		}
	}
}

// TestCommandWrongShape: COM_INIT_DB, COM_SET_OPTION and COM_RESET_CONNECTION
// are answered with one OK, EOF or ERR packet. A result set instead (or any
// other packet) is not success: the rest of it is still unread, so the
// connection must be marked broken rather than trusted.
func TestCommandWrongShape(t *testing.T) {
	s := startScripted(t, func(s *scripted, p *peer) {
		if !p.loginOK() {
			return
		}
		if _, err := p.command(); err != nil {
			return
		}
		p.write(wire.AppendLenenc(nil, 1)) // a result set's column count
		p.write(wire.AppendColumnDef(nil, &wire.Column{Name: "a", Charset: 45, Type: mysql.MYSQL_TYPE_VAR_STRING}))
		p.write(wire.AppendEOF(nil, wire.EOF{}))
		p.write(wire.AppendEOF(nil, wire.EOF{}))
		_, _ = p.command()
	})
	cn := mustDial(t, serverAt(s.addr()), appDial)
	if err := cn.Command(mysql.COM_INIT_DB, "shop"); err == nil {
		t.Fatal("a result set answering COM_INIT_DB was taken for success")
	}
	if !cn.Broken() {
		t.Fatal("connection not marked broken")
	}
}

// setOption is COM_SET_OPTION's argument: its payload after the command
// byte.
func setOption(opt uint16) string {
	return string(wire.AppendSetOption(nil, opt)[1:])
}

// TestCommand: the one-packet commands the proxy replays. COM_INIT_DB
// changes the schema or fails with the server's error; COM_SET_OPTION is
// answered with an EOF, which counts as success.
func TestCommand(t *testing.T) {
	fake := fakemysql.Start(t, fakemysql.Options{Schemas: []string{"shop", "other"}})
	cn := mustDial(t, serverAt(fake.Addr()), DialOptions{Creds: appCreds, Schema: "shop"})

	if err := cn.Command(mysql.COM_INIT_DB, "other"); err != nil {
		t.Fatal(err)
	}
	if res, _ := cn.Query("SELECT DATABASE()"); res.Rows[0][0].String != "other" {
		t.Fatalf("schema %q after COM_INIT_DB other", res.Rows[0][0].String)
	}
	err := cn.Command(mysql.COM_INIT_DB, "nosuch")
	var me *mysql.MyError
	if !errors.As(err, &me) || me.Code != mysql.ER_BAD_DB_ERROR || cn.Broken() {
		t.Fatalf("COM_INIT_DB nosuch: %v (broken %v), want ERR 1049 on a usable connection", err, cn.Broken())
	}

	fake.ResetLog()
	if err := cn.Command(mysql.COM_SET_OPTION, setOption(1)); err != nil { // multi statements off
		t.Fatalf("COM_SET_OPTION: %v", err)
	}
	if err := cn.Command(mysql.COM_SET_OPTION, setOption(9)); !errors.As(err, &me) || cn.Broken() {
		t.Fatalf("unknown COM_SET_OPTION: %v (broken %v), want the server's error", err, cn.Broken())
	}
	if got, want := commands(fake.Log()), []string{"SET_OPTION 1", "SET_OPTION 9"}; !slices.Equal(got, want) {
		t.Fatalf("server saw %q, want %q", got, want)
	}
	if err := cn.Exec("SELECT 1"); err != nil {
		t.Fatalf("connection unusable after COM_SET_OPTION: %v", err)
	}
}

// TestResetConnection: COM_RESET_CONNECTION drops the server's prepared
// statements and session state, so the connection forgets them too; and
// since the reset also drops the last_gtid tracker that read-your-writes
// needs, it is turned back on when it was on.
func TestResetConnection(t *testing.T) {
	fake := fakemysql.Start(t, fakemysql.Options{})
	c := clusterOver(t, Options{}, fake)
	cn := mustConnect(t, c, c.Servers()[0], appDial)
	if !cn.trackGTID {
		t.Fatal("Connect did not turn on last_gtid tracking")
	}
	ps, err := prepared(cn, "SELECT ?")
	if err != nil {
		t.Fatal(err)
	}
	ps.Hold()
	st, _ := SessionState{}.With(mysql.COM_QUERY, "SET @a = 1")
	if err := cn.Sync(st, ""); err != nil {
		t.Fatal(err)
	}

	fake.ResetLog()
	if err := cn.Command(mysql.COM_RESET_CONNECTION, ""); err != nil {
		t.Fatal(err)
	}
	if all, unheld := cn.PreparedCount(); all != 0 || unheld != 0 {
		t.Errorf("%d prepared statements (%d unheld) remembered after the reset", all, unheld)
	}
	ps.Release() // held across the reset: nothing to count or close
	if all, unheld := cn.PreparedCount(); all != 0 || unheld != 0 || cn.needsTidy() {
		t.Errorf("a release after the reset counted: %d statements, %d unheld", all, unheld)
	}
	if len(cn.state.entries) != 0 || cn.state.hash != 0 {
		t.Errorf("session state remembered after the reset: %+v", cn.state)
	}
	got := commands(fake.Log())
	if len(got) != 2 || got[0] != "RESET_CONNECTION " || !strings.Contains(got[1], "last_gtid") {
		t.Fatalf("server saw %q, want the reset, then last_gtid tracking turned back on", got)
	}
	res, err := cn.Query("SELECT @@session_track_system_variables")
	if err != nil || !strings.Contains(res.Rows[0][0].String, "last_gtid") {
		t.Fatalf("last_gtid not tracked after the reset: %v %v", res, err)
	}

	// A connection that never tracked GTIDs is not made to.
	plain := mustDial(t, serverAt(fake.Addr()), appDial)
	fake.ResetLog()
	if err := plain.Command(mysql.COM_RESET_CONNECTION, ""); err != nil {
		t.Fatal(err)
	}
	if got := commands(fake.Log()); len(got) != 1 {
		t.Fatalf("server saw %q, want the reset alone", got)
	}
}

// TestTrackLastGTIDUnsupported: a server without MariaDB's last_gtid
// tracker (it refuses the SET) is still usable; reads after writes then go
// to the primary.
func TestTrackLastGTIDUnsupported(t *testing.T) {
	fake := fakemysql.Start(t, fakemysql.Options{Handle: func(c *fakemysql.Conn, q string) *fakemysql.Result {
		if strings.Contains(q, "session_track_system_variables") {
			return &fakemysql.Result{Err: mysql.NewError(mysql.ER_UNKNOWN_SYSTEM_VARIABLE, "Unknown system variable")}
		}
		return nil
	}})
	c := clusterOver(t, Options{}, fake)
	cn := mustConnect(t, c, c.Servers()[0], appDial)
	if cn.trackGTID {
		t.Fatal("tracking recorded as on though the server refused it")
	}
	if err := cn.Exec("SELECT 1"); err != nil {
		t.Fatal(err)
	}
}

// prepared is Conn.Prepared for a text given once.
func prepared(cn *Conn, sql string) (*PreparedStmt, error) {
	return cn.Prepared(KeyOf([]byte(sql)), sql)
}

// mustPrepared is prepared failing the test on an error.
func mustPrepared(t *testing.T, cn *Conn, sql string) *PreparedStmt {
	t.Helper()
	ps, err := prepared(cn, sql)
	if err != nil {
		t.Fatalf("prepare %q: %v", sql, err)
	}
	return ps
}

// serverStmts is the number of statements the fake has prepared and not
// closed, from its command log since the last reset.
func serverStmts(fake *fakemysql.Server) int {
	n := 0
	for _, c := range fake.Log() {
		switch c.Cmd {
		case mysql.COM_STMT_PREPARE:
			n++
		case mysql.COM_STMT_CLOSE:
			n--
		}
	}
	return n
}

// roundTrip runs a statement on cn, so that the fake has handled what was
// sent before (COM_STMT_CLOSE has no answer to wait for).
func roundTrip(t *testing.T, cn *Conn) {
	t.Helper()
	if _, err := cn.Query("SELECT 'in sync'"); err != nil {
		t.Fatalf("connection out of step: %v", err)
	}
}

// closed returns the statement ids the fake was told to close.
func closed(fake *fakemysql.Server) []string {
	var ids []string
	for _, c := range fake.Log() {
		if c.Cmd == mysql.COM_STMT_CLOSE {
			ids = append(ids, c.Arg)
		}
	}
	return ids
}

// TestPrepared: a statement is prepared once per connection and its id
// reused; another connection prepares its own.
func TestPrepared(t *testing.T) {
	fake := fakemysql.Start(t, fakemysql.Options{})
	cn := mustDial(t, serverAt(fake.Addr()), appDial)
	other := mustDial(t, serverAt(fake.Addr()), appDial)

	first := mustPrepared(t, cn, "SELECT 0")
	fake.ResetLog()
	if again := mustPrepared(t, cn, "SELECT 0"); again != first {
		t.Fatalf("second Prepared: %+v; want the cached %+v", again, first)
	}
	if log := fake.Log(); len(log) != 0 {
		t.Fatalf("cached statement sent %q", commands(log))
	}
	mustPrepared(t, other, "SELECT 0")
	if got := commands(fake.Log()); !slices.Equal(got, []string{"STMT_PREPARE SELECT 0"}) {
		t.Fatalf("other connection: server saw %q", got)
	}
	if _, err := cn.Query("SELECT 'in sync'"); err != nil {
		t.Fatalf("connection out of step: %v", err)
	}
}

// TestUnheldStatementsClosed: statements that sessions hold stay prepared
// however many there are; of those no session holds, the connection keeps
// the keepUnheld most recently used and closes the others on the server.
func TestUnheldStatementsClosed(t *testing.T) {
	fake := fakemysql.Start(t, fakemysql.Options{})
	cn := mustDial(t, serverAt(fake.Addr()), appDial)
	var held []*PreparedStmt
	for i := range 3 * keepUnheld {
		ps := mustPrepared(t, cn, fmt.Sprintf("SELECT %d", i))
		ps.Hold()
		held = append(held, ps)
	}
	if err := cn.TidyStmts(); err != nil {
		t.Fatal(err)
	}
	if ids := closed(fake); len(ids) != 0 {
		t.Fatalf("held statements closed: %q", ids)
	}
	// Released oldest first; statement 0 is then used again (a session
	// finds it cached), so it is the most recently used of all.
	for _, ps := range held {
		ps.Release()
	}
	if again := mustPrepared(t, cn, "SELECT 0"); again != held[0] {
		t.Fatal("a released statement was not found cached")
	}
	if !cn.needsTidy() {
		t.Fatal("no tidy due with 48 statements unheld")
	}
	if err := cn.TidyStmts(); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, cn)
	var want []string
	for _, ps := range held[1 : 2*keepUnheld+1] {
		want = append(want, strconv.Itoa(int(ps.ID())))
	}
	if got := closed(fake); !slices.Equal(got, want) {
		t.Fatalf("closed %q; want the least recently used %q", got, want)
	}
	if all, unheld := cn.PreparedCount(); all != keepUnheld || unheld != keepUnheld || serverStmts(fake) != keepUnheld {
		t.Fatalf("%d cached, %d unheld, %d on the server; want %d each", all, unheld, serverStmts(fake), keepUnheld)
	}
	// A closed one is prepared anew when it runs again.
	fake.ResetLog()
	mustPrepared(t, cn, "SELECT 1")
	if got := commands(fake.Log()); !slices.Equal(got, []string{"STMT_PREPARE SELECT 1"}) {
		t.Fatalf("closed statement run again: server saw %q", got)
	}
}

// TestRememberPrepared: a statement the client prepared through the
// connection is recorded, so executing it later needs no new prepare; a
// second prepare of the same text (clients' prepares are forwarded as they
// are) is a duplicate on the server, closed at the next tidy, and the
// statement sessions already hold is kept.
func TestRememberPrepared(t *testing.T) {
	fake := fakemysql.Start(t, fakemysql.Options{})
	cn := mustDial(t, serverAt(fake.Addr()), appDial)
	key := KeyOf([]byte("SELECT ?"))
	ps := cn.RememberPrepared(key, 41)
	ps.Hold()
	if dup := cn.RememberPrepared(key, 42); dup != ps || dup.ID() != 41 {
		t.Fatalf("prepared again: got id %d; want the held 41", dup.ID())
	}
	fake.ResetLog()
	if got, err := cn.Prepared(key, "SELECT ?"); err != nil || got != ps {
		t.Fatalf("Prepared: %v, %v; want the remembered statement", got, err)
	}
	if len(fake.Log()) != 0 {
		t.Fatalf("server saw %q for a remembered statement", commands(fake.Log()))
	}
	if !cn.needsTidy() {
		t.Fatal("the duplicate is not due to be closed")
	}
	if err := cn.TidyStmts(); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, cn)
	if got := closed(fake); !slices.Equal(got, []string{"42"}) {
		t.Fatalf("server saw %q, want the duplicate closed", got)
	}
	cn.ForgetPrepared()
	fake.ResetLog()
	if _, err := cn.Prepared(key, "SELECT ?"); err != nil {
		t.Fatal(err)
	}
	if got := commands(fake.Log()); !slices.Equal(got, []string{"STMT_PREPARE SELECT ?"}) {
		t.Fatalf("after ForgetPrepared the server saw %q", got)
	}
}

// TestRememberPreparedReplacesUnheld: a client's prepare of a text the
// connection keeps but no session holds replaces the kept statement. The
// client asked the server for a new statement, and a statement is not the
// same after it ran: MariaDB resolves and rewrites it at its first
// execution, whose notes (1276, "resolved in SELECT #1") and EXPLAIN
// EXTENDED text the client must see as directly (mtr's type_datetime with
// --ps-protocol). The old one is closed at the next tidy.
func TestRememberPreparedReplacesUnheld(t *testing.T) {
	fake := fakemysql.Start(t, fakemysql.Options{})
	cn := mustDial(t, serverAt(fake.Addr()), appDial)
	key := KeyOf([]byte("SELECT ?"))
	old := cn.RememberPrepared(key, 41)
	old.Hold()
	old.Release() // a client statement that ran and was closed
	ps := cn.RememberPrepared(key, 42)
	if ps.ID() != 42 {
		t.Fatalf("prepared again: got id %d; want the new 42", ps.ID())
	}
	fake.ResetLog()
	if got, err := cn.Prepared(key, "SELECT ?"); err != nil || got != ps {
		t.Fatalf("Prepared: %v, %v; want the new statement", got, err)
	}
	if len(fake.Log()) != 0 {
		t.Fatalf("server saw %q for a remembered statement", commands(fake.Log()))
	}
	if err := cn.TidyStmts(); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, cn)
	if got := closed(fake); !slices.Equal(got, []string{"41"}) {
		t.Fatalf("server saw %q, want the replaced statement closed", got)
	}
	if all, unheld := cn.PreparedCount(); all != 1 || unheld != 1 {
		t.Fatalf("%d cached, %d unheld; want the new one alone", all, unheld)
	}
}

// TestDiscard: a statement that carries one session's state is taken off
// the connection and closed on the server, even while held; whoever held
// it prepares the text anew.
func TestDiscard(t *testing.T) {
	fake := fakemysql.Start(t, fakemysql.Options{})
	cn := mustDial(t, serverAt(fake.Addr()), appDial)
	ps := mustPrepared(t, cn, "INSERT INTO t VALUES (?)")
	ps.Hold()
	ps.Hold() // two sessions
	ps.Discard()
	ps.Release()
	if err := cn.TidyStmts(); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, cn)
	if got := closed(fake); !slices.Equal(got, []string{strconv.Itoa(int(ps.ID()))}) {
		t.Fatalf("closed %q, want the discarded statement", got)
	}
	if again := mustPrepared(t, cn, "INSERT INTO t VALUES (?)"); again == ps {
		t.Fatal("a discarded statement was found cached")
	}
	ps.Release()
	if all, unheld := cn.PreparedCount(); all != 1 || unheld != 1 {
		t.Fatalf("%d cached, %d unheld; want the new one alone", all, unheld)
	}
}

// TestIdleConnectionTidied: statements released while their connection
// is idle in the pool are closed on the server at once, by the goroutine
// that released them, and the connection stays pooled.
func TestIdleConnectionTidied(t *testing.T) {
	fake, _, srv, p := poolOver(t, PoolOptions{}, 0, 0)
	cn := mustAcquire(t, p, srv, appReq())
	var held []*PreparedStmt
	for i := range keepUnheld + 4 {
		ps := mustPrepared(t, cn, fmt.Sprintf("SELECT %d", i))
		ps.Hold()
		held = append(held, ps)
	}
	p.Release(cn)
	var wg sync.WaitGroup
	for _, ps := range held {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ps.Release()
		}()
	}
	wg.Wait()
	if all, unheld := cn.PreparedCount(); all != keepUnheld || unheld != keepUnheld {
		t.Fatalf("%d cached, %d unheld after every session let go; want %d", all, unheld, keepUnheld)
	}
	if p.idleCount(srv) != 1 {
		t.Fatalf("%d idle connections after the tidy, want 1", p.idleCount(srv))
	}
	if got := mustAcquire(t, p, srv, appReq()); got != cn {
		t.Fatal("the tidied connection was not reused")
	}
	roundTrip(t, cn)
	if n := serverStmts(fake); n != keepUnheld {
		t.Fatalf("%d statements on the server after every session let go; want %d", n, keepUnheld)
	}
	p.Release(cn)
}

// TestReleaseAll: a session that ends lets go of all its statements at
// once; each idle connection concerned is tidied, down to keepUnheld.
func TestReleaseAll(t *testing.T) {
	fake, _, srv, p := poolOver(t, PoolOptions{}, 0, 0)
	a := mustAcquire(t, p, srv, appReq())
	b := mustAcquire(t, p, srv, appReq())
	var held []*PreparedStmt
	for i := range 100 {
		cn := a
		if i%4 == 0 {
			cn = b
		}
		ps := mustPrepared(t, cn, fmt.Sprintf("SELECT %d", i))
		ps.Hold()
		held = append(held, ps)
	}
	p.Release(a)
	p.Release(b)
	ReleaseAll(append(held, nil))
	for _, cn := range []*Conn{a, b} {
		if all, unheld := cn.PreparedCount(); all != keepUnheld || unheld != keepUnheld {
			t.Fatalf("%d cached, %d unheld; want %d", all, unheld, keepUnheld)
		}
	}
	a, b = mustAcquire(t, p, srv, appReq()), mustAcquire(t, p, srv, appReq())
	roundTrip(t, a)
	roundTrip(t, b)
	if n := serverStmts(fake); n != 2*keepUnheld {
		t.Fatalf("%d statements on the server; want %d", n, 2*keepUnheld)
	}
	p.Release(a)
	p.Release(b)
}

// TestReleaseTidiesInUseConnection: statements released while another
// goroutine uses their connection are closed when it goes back to the
// pool; the releases never touch the connection themselves.
func TestReleaseTidiesInUseConnection(t *testing.T) {
	fake, _, srv, p := poolOver(t, PoolOptions{}, 0, 0)
	cn := mustAcquire(t, p, srv, appReq())
	var held []*PreparedStmt
	for i := range 2 * keepUnheld {
		ps := mustPrepared(t, cn, fmt.Sprintf("SELECT %d", i))
		ps.Hold()
		held = append(held, ps)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		// The connection's user, busy with it meanwhile.
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := prepared(cn, fmt.Sprintf("SELECT 'busy %d'", i%4)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for _, ps := range held {
		ps.Release()
	}
	close(stop)
	<-done
	p.Release(cn)
	cn = mustAcquire(t, p, srv, appReq())
	roundTrip(t, cn)
	p.Release(cn)
	if n := serverStmts(fake); n != keepUnheld {
		t.Fatalf("%d statements on the server after the connection came back; want %d", n, keepUnheld)
	}
}

// TestMaxPreparedStmts: the server's max_prepared_stmt_count is read once
// and kept; a server that does not say is taken to have the default.
func TestMaxPreparedStmts(t *testing.T) {
	fake := fakemysql.Start(t, fakemysql.Options{Handle: func(c *fakemysql.Conn, q string) *fakemysql.Result {
		if q == "SELECT @@max_prepared_stmt_count" {
			return &fakemysql.Result{Columns: []string{"@@max_prepared_stmt_count"}, Rows: [][]sql.NullString{{nullStr("60")}}}
		}
		return nil
	}})
	srv := serverAt(fake.Addr())
	cn := mustDial(t, srv, appDial)
	other := mustDial(t, srv, appDial)
	fake.ResetLog()
	for _, c := range []*Conn{cn, other, cn} {
		if n, err := c.MaxPreparedStmts(); err != nil || n != 60 {
			t.Fatalf("MaxPreparedStmts: %d, %v; want 60", n, err)
		}
	}
	if got := commands(fake.Log()); len(got) != 1 {
		t.Fatalf("server saw %q; want one read for the server", got)
	}

	silent := fakemysql.Start(t, fakemysql.Options{Handle: func(c *fakemysql.Conn, q string) *fakemysql.Result {
		if strings.Contains(q, "max_prepared_stmt_count") {
			return &fakemysql.Result{Err: mysql.NewError(mysql.ER_SPECIFIC_ACCESS_DENIED_ERROR, "denied")}
		}
		return nil
	}})
	cn = mustDial(t, serverAt(silent.Addr()), appDial)
	if n, err := cn.MaxPreparedStmts(); err != nil || n != DefaultMaxPreparedStmts {
		t.Fatalf("server refusing to say: %d, %v; want the default %d", n, err, DefaultMaxPreparedStmts)
	}
	if _, err := cn.Query("SELECT 'in sync'"); err != nil {
		t.Fatalf("connection out of step: %v", err)
	}
}

// TestPreparedServerError: a statement the server refuses to prepare gives
// its error, caches nothing, and leaves the connection usable. (The fake
// prepares any text, so a scripted server refuses.)
func TestPreparedServerError(t *testing.T) {
	s := startScripted(t, func(s *scripted, p *peer) {
		if !p.loginOK() {
			return
		}
		for {
			cmd, err := p.command()
			if err != nil {
				return
			}
			switch cmd[0] {
			case mysql.COM_STMT_PREPARE:
				p.write(wire.AppendErr(nil, mysql.NewError(mysql.ER_NO_SUCH_TABLE, "Table 'shop.nope' doesn't exist")))
			case mysql.COM_QUERY:
				p.ok()
			default:
				return
			}
		}
	})
	cn := mustDial(t, serverAt(s.addr()), appDial)
	_, err := prepared(cn, "SELECT * FROM nope")
	var me *mysql.MyError
	if !errors.As(err, &me) || me.Code != mysql.ER_NO_SUCH_TABLE {
		t.Fatalf("err %v, want ERR 1146", err)
	}
	if all, _ := cn.PreparedCount(); cn.Broken() || all != 0 {
		t.Fatalf("broken %v, %d cached: a refused prepare must leave the connection clean", cn.Broken(), all)
	}
	if err := cn.Exec("DO 1"); err != nil {
		t.Fatalf("connection unusable after a refused prepare: %v", err)
	}
}

// TestWriteToClosedConnection: a command that cannot be sent marks the
// connection broken.
func TestWriteToClosedConnection(t *testing.T) {
	fake := fakemysql.Start(t, fakemysql.Options{})
	cn := mustDial(t, serverAt(fake.Addr()), appDial)
	cn.nc.Close() // the socket is gone under the connection
	for name, run := range map[string]func() error{
		"Query":    func() error { _, err := cn.Query("SELECT 1"); return err },
		"Command":  func() error { return cn.Command(mysql.COM_INIT_DB, "shop") },
		"Prepared": func() error { _, err := prepared(cn, "SELECT 1"); return err },
	} {
		cn.broken.Store(false)
		if err := run(); err == nil || !cn.Broken() {
			t.Errorf("%s on a closed socket: err %v, broken %v", name, err, cn.Broken())
		}
	}
}

// TestWaitGTID: MASTER_GTID_WAIT on the server: nil once it has applied
// the position, ErrGTIDWaitTimeout when it has not in time; a position
// that is not one is refused before anything is sent; the connection stays
// usable through all three.
func TestWaitGTID(t *testing.T) {
	f := fakemysql.Start(t, fakemysql.Options{})
	f.SetGTIDPos("0-1-10")
	cn := mustDial(t, serverAt(f.Addr()), appDial)
	if err := cn.WaitGTID("0-1-9", time.Second); err != nil {
		t.Fatalf("a position the server has: %v", err)
	}
	if err := cn.WaitGTID("0-1-11", 20*time.Millisecond); !errors.Is(err, ErrGTIDWaitTimeout) {
		t.Fatalf("a position the server lacks: %v, want a timeout", err)
	}
	if err := cn.WaitGTID("0-1-5'); DROP TABLE t; -- ", time.Second); err == nil || errors.Is(err, ErrGTIDWaitTimeout) {
		t.Fatalf("a malformed position: %v", err)
	}
	if cn.Broken() || connID(t, cn) == "" {
		t.Fatal("the connection is unusable after the waits")
	}
}

// TestReached: what reads learn of a replica's position lasts until the
// monitor reads it again.
func TestReached(t *testing.T) {
	s := &Server{}
	s.Reached("0-1-5")
	s.Reached("0-1-4") // less: nothing new
	s.Reached("1-2-3")
	if got := s.ReachedGTID(); got != "0-1-5,1-2-3" {
		t.Fatalf("reached %q", got)
	}
	s.forgetReached(time.Now().Add(-time.Hour)) // a reading from before the waits
	if s.ReachedGTID() == "" {
		t.Fatal("a reading older than the waits forgot them")
	}
	s.forgetReached(time.Now().Add(time.Millisecond))
	if got := s.ReachedGTID(); got != "" {
		t.Fatalf("after the monitor's next reading: %q", got)
	}
}
