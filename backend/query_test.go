package backend

import (
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

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
		{"Prepared", func(cn *Conn) error { _, err := cn.Prepared("SELECT ?"); return err }},
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
	if _, err := cn.Prepared("SELECT ?"); err != nil {
		t.Fatal(err)
	}
	st, _ := SessionState{}.With(mysql.COM_QUERY, "SET @a = 1")
	if err := cn.Sync(st, ""); err != nil {
		t.Fatal(err)
	}

	fake.ResetLog()
	if err := cn.Command(mysql.COM_RESET_CONNECTION, ""); err != nil {
		t.Fatal(err)
	}
	if len(cn.prepared) != 0 || len(cn.prepOrder) != 0 {
		t.Errorf("prepared statements remembered after the reset: %v", cn.prepared)
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

// TestPrepared: statements are prepared once per connection and the id
// reused; the cache holds 128, and the 129th distinct statement closes the
// oldest on the server (COM_STMT_CLOSE), which is prepared anew when needed.
func TestPrepared(t *testing.T) {
	fake := fakemysql.Start(t, fakemysql.Options{})
	cn := mustDial(t, serverAt(fake.Addr()), appDial)
	other := mustDial(t, serverAt(fake.Addr()), appDial)

	first, err := cn.Prepared("SELECT 0")
	if err != nil {
		t.Fatal(err)
	}
	fake.ResetLog()
	if id, err := cn.Prepared("SELECT 0"); err != nil || id != first {
		t.Fatalf("second Prepared: id %d, %v; want the cached %d", id, err, first)
	}
	if log := fake.Log(); len(log) != 0 {
		t.Fatalf("cached statement sent %q", commands(log))
	}
	// The cache is per connection: another connection prepares its own.
	if _, err := other.Prepared("SELECT 0"); err != nil {
		t.Fatal(err)
	}
	if got := commands(fake.Log()); !slices.Equal(got, []string{"STMT_PREPARE SELECT 0"}) {
		t.Fatalf("other connection: server saw %q", got)
	}

	for i := 1; i < maxPreparedPerConn; i++ {
		if _, err := cn.Prepared(fmt.Sprintf("SELECT %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	fake.ResetLog()
	if _, err := cn.Prepared("SELECT 'one too many'"); err != nil {
		t.Fatal(err)
	}
	want := []string{"STMT_CLOSE " + strconv.Itoa(int(first)), "STMT_PREPARE SELECT 'one too many'"}
	if got := commands(fake.Log()); !slices.Equal(got, want) {
		t.Fatalf("129th statement: server saw %q, want %q", got, want)
	}
	if len(cn.prepared) != maxPreparedPerConn {
		t.Errorf("%d statements cached, want %d", len(cn.prepared), maxPreparedPerConn)
	}
	fake.ResetLog()
	if _, err := cn.Prepared("SELECT 0"); err != nil {
		t.Fatal(err)
	}
	if got := commands(fake.Log()); len(got) != 2 || got[1] != "STMT_PREPARE SELECT 0" {
		t.Fatalf("evicted statement not prepared again: server saw %q", got)
	}
	if _, err := cn.Query("SELECT 'in sync'"); err != nil {
		t.Fatalf("connection out of step after evictions: %v", err)
	}
}

// TestRememberPrepared: a statement the client prepared through the
// connection is recorded, so executing it later needs no new prepare.
func TestRememberPrepared(t *testing.T) {
	fake := fakemysql.Start(t, fakemysql.Options{})
	cn := mustDial(t, serverAt(fake.Addr()), appDial)
	cn.RememberPrepared("SELECT ?", 41)
	cn.RememberPrepared("SELECT ?", 42) // prepared again: the new id wins
	fake.ResetLog()
	if id, err := cn.Prepared("SELECT ?"); err != nil || id != 42 {
		t.Fatalf("id %d, %v; want the remembered 42", id, err)
	}
	if len(fake.Log()) != 0 || len(cn.prepOrder) != 1 {
		t.Fatalf("server saw %q, order %q", commands(fake.Log()), cn.prepOrder)
	}
	cn.ForgetPrepared()
	if _, err := cn.Prepared("SELECT ?"); err != nil {
		t.Fatal(err)
	}
	if got := commands(fake.Log()); !slices.Equal(got, []string{"STMT_PREPARE SELECT ?"}) {
		t.Fatalf("after ForgetPrepared the server saw %q", got)
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
	_, err := cn.Prepared("SELECT * FROM nope")
	var me *mysql.MyError
	if !errors.As(err, &me) || me.Code != mysql.ER_NO_SUCH_TABLE {
		t.Fatalf("err %v, want ERR 1146", err)
	}
	if cn.Broken() || len(cn.prepared) != 0 {
		t.Fatalf("broken %v, cached %v: a refused prepare must leave the connection clean", cn.Broken(), cn.prepared)
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
		"Prepared": func() error { _, err := cn.Prepared("SELECT 1"); return err },
	} {
		cn.broken.Store(false)
		if err := run(); err == nil || !cn.Broken() {
			t.Errorf("%s on a closed socket: err %v, broken %v", name, err, cn.Broken())
		}
	}
}
