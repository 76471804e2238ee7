package backend

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/internal/fakemysql"
	"switchyard/internal/mysqltest"
)

// Session state replay: SessionState as a value, and Conn.Sync bringing a
// server connection to a session's state with the fewest commands.

// mustState builds a state from commands, in order.
func mustState(t *testing.T, base SessionState, cmds ...stateEntry) SessionState {
	t.Helper()
	st := base
	for _, e := range cmds {
		var ok bool
		if st, ok = st.With(e.Cmd, e.Args); !ok {
			t.Fatalf("With(%v) refused", e)
		}
	}
	return st
}

var (
	setA     = stateEntry{mysql.COM_QUERY, "SET @a = 1"}
	useOther = stateEntry{mysql.COM_INIT_DB, "other"}
	setNames = stateEntry{mysql.COM_QUERY, "SET NAMES latin1"}
	setB     = stateEntry{mysql.COM_QUERY, "SET @b = 2"}
)

// describe renders entries as the fake's commands() does.
func describe(entries ...stateEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, mysqltest.CommandName(e.Cmd)+" "+e.Args)
	}
	return out
}

// TestSync covers the three ways a connection is brought to a session's
// state, checked against what the server received.
func TestSync(t *testing.T) {
	full := mustState(t, SessionState{}, setA, useOther, setNames)
	prefix := mustState(t, SessionState{}, setA)
	foreign := mustState(t, SessionState{}, setB)
	for _, tc := range []struct {
		name    string
		carries SessionState // what the connection has run already
		want    []string     // what Sync must send
	}{
		{"fresh connection replays every entry in order", SessionState{}, describe(setA, useOther, setNames)},
		{"a prefix replays only the rest", prefix, describe(useOther, setNames)},
		{"the same state sends nothing", full, nil},
		{"another session's state is reset first",
			foreign, append([]string{"RESET_CONNECTION ", "INIT_DB shop"}, describe(setA, useOther, setNames)...)},
		{"a longer state is reset too", mustState(t, full, setB),
			append([]string{"RESET_CONNECTION ", "INIT_DB shop"}, describe(setA, useOther, setNames)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := fakemysql.Start(t, fakemysql.Options{Schemas: []string{"shop", "other"}})
			cn := mustDial(t, serverAt(fake.Addr()), DialOptions{Creds: appCreds, Schema: "shop"})
			if err := cn.Sync(tc.carries, "shop"); err != nil {
				t.Fatal(err)
			}
			fake.ResetLog()
			if err := cn.Sync(full, "shop"); err != nil {
				t.Fatal(err)
			}
			if got := commands(fake.Log()); !slices.Equal(got, tc.want) {
				t.Fatalf("server saw %q, want %q", got, tc.want)
			}
			// The server really is in the session's state, and nothing of
			// the other session's is left.
			res, err := cn.Query("SELECT @a, @b, DATABASE(), @@character_set_client")
			if err != nil {
				t.Fatal(err)
			}
			row := res.Rows[0]
			if row[0].String != "1" || row[1].Valid || row[2].String != "other" || row[3].String != "latin1" {
				t.Fatalf("server session after Sync: %v", row)
			}
			fake.ResetLog()
			if err := cn.Sync(full, "shop"); err != nil || len(fake.Log()) != 0 {
				t.Fatalf("second Sync to the same state sent %q (%v)", commands(fake.Log()), err)
			}
		})
	}
}

// TestSyncToFreshState: the zero SessionState is a fresh login's: a clean
// connection needs nothing, one carrying state is reset back to the login
// schema (none: no COM_INIT_DB).
func TestSyncToFreshState(t *testing.T) {
	fake := fakemysql.Start(t, fakemysql.Options{Schemas: []string{"shop", "other"}})
	for _, login := range []string{"", "shop"} {
		cn := mustDial(t, serverAt(fake.Addr()), DialOptions{Creds: appCreds, Schema: login})
		fake.ResetLog()
		if err := cn.Sync(SessionState{}, login); err != nil || len(fake.Log()) != 0 {
			t.Fatalf("login schema %q: fresh connection to fresh state sent %q (%v)", login, commands(fake.Log()), err)
		}
		// Without a login schema no reset could undo a USE (see
		// TestSyncResetWithoutLoginSchema), so that state has none.
		other := mustState(t, SessionState{}, useOther, setA)
		if login == "" {
			other = mustState(t, SessionState{}, setA, setB)
		}
		if err := cn.Sync(other, login); err != nil {
			t.Fatal(err)
		}
		fake.ResetLog()
		if err := cn.Sync(SessionState{}, login); err != nil {
			t.Fatal(err)
		}
		want := []string{"RESET_CONNECTION "}
		if login != "" {
			want = append(want, "INIT_DB "+login)
		}
		if got := commands(fake.Log()); !slices.Equal(got, want) {
			t.Fatalf("login schema %q: server saw %q, want %q", login, got, want)
		}
	}
}

// TestSyncRefused: an entry the server refuses now (the client ran it
// successfully elsewhere) means the connection cannot serve the session:
// Sync returns the server's error and does not record the state.
func TestSyncRefused(t *testing.T) {
	fake := fakemysql.Start(t, fakemysql.Options{Schemas: []string{"shop", "other"}})
	cn := mustDial(t, serverAt(fake.Addr()), appDial)
	st := mustState(t, SessionState{}, setA, stateEntry{mysql.COM_INIT_DB, "gone"}, setB)
	err := cn.Sync(st, "")
	var me *mysql.MyError
	if !errors.As(err, &me) || me.Code != mysql.ER_BAD_DB_ERROR {
		t.Fatalf("err %v, want the server's ERR 1049", err)
	}
	if len(cn.state.entries) != 0 {
		t.Fatalf("connection recorded as carrying %v after a failed replay", cn.state.entries)
	}

	// A reset the server refuses fails Sync as well.
	s := startScripted(t, func(s *scripted, p *peer) {
		if !p.loginOK() {
			return
		}
		if _, err := p.command(); err == nil {
			p.write(appendErr(mysql.ER_UNKNOWN_COM_ERROR, "Unknown command"))
		}
		_, _ = p.command()
	})
	cn2 := mustDial(t, serverAt(s.addr()), appDial)
	cn2.Ran(mustState(t, SessionState{}, setB))
	if err := cn2.Sync(mustState(t, SessionState{}, setA), ""); !errors.As(err, &me) || me.Code != mysql.ER_UNKNOWN_COM_ERROR {
		t.Fatalf("refused reset: err %v", err)
	}

	// So does a login schema that is gone by the time of the reset.
	cn3 := mustDial(t, serverAt(fake.Addr()), appDial)
	cn3.Ran(mustState(t, SessionState{}, setB))
	if err := cn3.Sync(SessionState{}, "gone"); !errors.As(err, &me) || me.Code != mysql.ER_BAD_DB_ERROR {
		t.Fatalf("missing login schema: err %v", err)
	}
}

// TestRanAndForgetState: Ran records a command the session ran on the
// connection itself, so Sync sends nothing; ForgetState records that the
// server dropped the state, so Sync replays it all.
func TestRanAndForgetState(t *testing.T) {
	fake := fakemysql.Start(t, fakemysql.Options{})
	cn := mustDial(t, serverAt(fake.Addr()), appDial)
	st := mustState(t, SessionState{}, setA)
	if err := cn.Exec("SET @a = 1"); err != nil {
		t.Fatal(err)
	}
	cn.Ran(st)
	fake.ResetLog()
	if err := cn.Sync(st, ""); err != nil || len(fake.Log()) != 0 {
		t.Fatalf("after Ran, Sync sent %q (%v)", commands(fake.Log()), err)
	}
	cn.ForgetState()
	if err := cn.Sync(st, ""); err != nil {
		t.Fatal(err)
	}
	if got := commands(fake.Log()); !slices.Equal(got, describe(setA)) {
		t.Fatalf("after ForgetState, Sync sent %q", got)
	}
}

// TestWith: the replay log as a value.
func TestWith(t *testing.T) {
	t.Run("an identical command moves to the end", func(t *testing.T) {
		st := mustState(t, SessionState{}, setA, setNames, setA)
		if !slices.Equal(st.entries, []stateEntry{setNames, setA}) {
			t.Fatalf("entries %v, want [SET NAMES, SET @a]", st.entries)
		}
		if st.hash != mustState(t, SessionState{}, setNames, setA).hash {
			t.Fatal("the same entries hash differently")
		}
	})
	t.Run("a command is not moved past what changes its meaning", func(t *testing.T) {
		// USE of a latin1 name after SET NAMES latin1: replayed before a
		// repeated SET NAMES, the name would be read in the login's
		// character set. So the repetition is added, not moved.
		useLatin1 := stateEntry{mysql.COM_QUERY, "USE `caf\xe9`"}
		st := mustState(t, SessionState{}, setNames, useLatin1, setNames)
		if !slices.Equal(st.entries, []stateEntry{setNames, useLatin1, setNames}) {
			t.Fatalf("entries %q", describe(st.entries...))
		}
		// Under ANSI_QUOTES a double-quoted string is a name.
		ansi := stateEntry{mysql.COM_QUERY, "SET sql_mode = 'ANSI_QUOTES'"}
		quoted := stateEntry{mysql.COM_QUERY, `SET SESSION lc_time_names = "en_US"`}
		st = mustState(t, SessionState{}, quoted, ansi, quoted)
		if !slices.Equal(st.entries, []stateEntry{quoted, ansi, quoted}) {
			t.Fatalf("entries %q", describe(st.entries...))
		}
		// Plain ASCII moves past them; the same command twice in a row is
		// one entry.
		st = mustState(t, SessionState{}, setNames, setA, setNames, setNames)
		if !slices.Equal(st.entries, []stateEntry{setA, setNames}) {
			t.Fatalf("entries %q", describe(st.entries...))
		}
	})
	t.Run("full at 64 entries", func(t *testing.T) {
		st := SessionState{}
		for i := range maxStateEntries {
			st = mustState(t, st, stateEntry{mysql.COM_QUERY, fmt.Sprintf("SET @v%d = 1", i)})
		}
		next, ok := st.With(mysql.COM_QUERY, "SET @one_more = 1")
		if ok {
			t.Fatal("a 65th entry accepted")
		}
		if len(next.entries) != maxStateEntries || next.hash != st.hash {
			t.Fatal("a refused With changed the state")
		}
		// Repeating one already there does not grow the log: still fine.
		again, ok := st.With(mysql.COM_QUERY, "SET @v0 = 1")
		if !ok || len(again.entries) != maxStateEntries || again.entries[maxStateEntries-1].Args != "SET @v0 = 1" {
			t.Fatalf("repeat at the limit: ok %v, %d entries", ok, len(again.entries))
		}
	})
	t.Run("zero value is a fresh login", func(t *testing.T) {
		var zero SessionState
		if len(zero.entries) != 0 || zero.hash != 0 {
			t.Fatal("zero state not empty")
		}
		if !zero.extends(mustState(t, zero, setA)) || mustState(t, zero, setA).extends(zero) {
			t.Fatal("the empty state must be a prefix of every state, and not the reverse")
		}
		if mustState(t, zero, setA).hash == 0 {
			t.Fatal("a non-empty state hashes like the fresh one")
		}
	})
	t.Run("a saved copy is a snapshot", func(t *testing.T) {
		base := mustState(t, SessionState{}, setA, setNames)
		saved := base
		left := mustState(t, base, setB)
		right := mustState(t, base, useOther)
		_ = mustState(t, base, setA) // reorders a copy, not base
		if !slices.Equal(saved.entries, []stateEntry{setA, setNames}) || saved.hash != base.hash {
			t.Fatalf("saved copy changed: %v", saved.entries)
		}
		if !slices.Equal(left.entries, []stateEntry{setA, setNames, setB}) ||
			!slices.Equal(right.entries, []stateEntry{setA, setNames, useOther}) {
			t.Fatalf("states built from one base share entries: %v / %v", left.entries, right.entries)
		}
	})
	t.Run("order matters", func(t *testing.T) {
		ab := mustState(t, SessionState{}, setA, setB)
		ba := mustState(t, SessionState{}, setB, setA)
		if ab.hash == ba.hash || ab.extends(ba) {
			t.Fatal("states differing in order taken as the same")
		}
	})
}

// TestSyncResetWithoutLoginSchema: a session that logged in without a
// schema must not find itself in the schema another session chose with USE.
// COM_RESET_CONNECTION keeps the current schema (MariaDB's
// THD::change_user does not touch it; the fake does the same), and with no
// login schema Sync sends no COM_INIT_DB after it, so the other session's
// schema stays.
// Sync refuses such a connection rather than hand it over in the wrong
// schema, and the pool never offers it to such a session.
func TestSyncResetWithoutLoginSchema(t *testing.T) {
	fake := fakemysql.Start(t, fakemysql.Options{Schemas: []string{"shop", "other"}})
	cn := mustDial(t, serverAt(fake.Addr()), appDial)
	other := mustState(t, SessionState{}, useOther)
	if err := cn.Sync(other, ""); err != nil {
		t.Fatal(err)
	}
	if err := cn.Sync(SessionState{}, ""); !errors.Is(err, errSchemaStays) {
		t.Fatalf("Sync to no schema from another session's USE: %v, want errSchemaStays", err)
	}
	if err := cn.Sync(mustState(t, other, setA), ""); err != nil {
		t.Fatalf("the same session's state grown by one entry: %v", err)
	}
	used, ok := SessionState{}.WithUse("USE other")
	if !ok || !used.schemaChanged || used.servesNoSchema(SessionState{}) {
		t.Fatalf("USE is not recorded as selecting a schema: %+v", used)
	}
	if set, _ := (SessionState{}).With(mysql.COM_QUERY, "SET NAMES utf8mb4"); set.schemaChanged || !set.servesNoSchema(SessionState{}) {
		t.Fatal("SET recorded as selecting a schema")
	}
}

// TestReadOnlyState: a replica's connections carry the session's state and
// then read-only transactions; one that ran a client's state change since
// gets only that guard again, and one made read-only that now serves the
// primary is reset and replayed without it.
func TestReadOnlyState(t *testing.T) {
	st := mustState(t, SessionState{}, setA)
	ro := st.ReadOnly()
	if !ro.Same(st.ReadOnly()) || ro.Same(st) || !ro.ReadOnly().Same(ro) {
		t.Fatal("ReadOnly is not one state, idempotent, different from the session's")
	}
	if got := describe(ro.entries...); !slices.Equal(got, describe(setA, readOnlyEntry)) {
		t.Fatalf("read-only state %q", got)
	}
	fake := fakemysql.Start(t, fakemysql.Options{Schemas: []string{"shop", "other"}})
	cn := mustDial(t, serverAt(fake.Addr()), DialOptions{Creds: appCreds, Schema: "shop"})
	fake.ResetLog()
	if err := cn.Sync(ro, "shop"); err != nil {
		t.Fatal(err)
	}
	if got := commands(fake.Log()); !slices.Equal(got, describe(setA, readOnlyEntry)) {
		t.Fatalf("fresh replica connection got %q", got)
	}
	// The client's next SET ran here (Ran): only the guard is replayed.
	next := mustState(t, st, setB)
	cn.Ran(next)
	fake.ResetLog()
	if err := cn.Sync(next.ReadOnly(), "shop"); err != nil {
		t.Fatal(err)
	}
	if got := commands(fake.Log()); !slices.Equal(got, describe(readOnlyEntry)) {
		t.Fatalf("after a client's SET the connection got %q, want only the guard", got)
	}
	// The server became the primary: the guard must go, by a reset.
	fake.ResetLog()
	if err := cn.Sync(next, "shop"); err != nil {
		t.Fatal(err)
	}
	if got := commands(fake.Log()); !slices.Equal(got, append([]string{"RESET_CONNECTION ", "INIT_DB shop"}, describe(setA, setB)...)) {
		t.Fatalf("a read-only connection serving the primary got %q", got)
	}
	// The guard is not the client's: a full log still gets it.
	full := SessionState{}
	for i := range maxStateEntries {
		full = mustState(t, full, stateEntry{mysql.COM_QUERY, fmt.Sprintf("SET @v%d = 1", i)})
	}
	if got := full.ReadOnly(); len(got.entries) != maxStateEntries+1 || got.entries[maxStateEntries] != readOnlyEntry {
		t.Fatalf("a full log's read-only state has %d entries", len(got.entries))
	}
}

// Only the last schema selection is replayed: an earlier one may name a
// schema dropped since (mtr's grant test: USE of a dropped database
// replayed, 1049, before the USE test that followed).
func TestLastSchemaSelectionWins(t *testing.T) {
	st := mustState(t, SessionState{}, setNames)
	st, _ = st.WithUse("USE dropped")
	st = mustState(t, st, setA)
	st, _ = st.WithUse("/* c */ use `test`")
	want := []stateEntry{setNames, setA, {mysql.COM_QUERY, "/* c */ use `test`"}}
	if !slices.Equal(st.entries, want) {
		t.Fatalf("entries %v, want %v", st.entries, want)
	}
	st = mustState(t, st, useOther)
	if want := []stateEntry{setNames, setA, useOther}; !slices.Equal(st.entries, want) {
		t.Fatalf("after COM_INIT_DB: entries %v, want %v", st.entries, want)
	}
	for sql, want := range map[string]bool{"USE x": true, "use\tx": true, "USEFUL": false, "SET @use = 1": false, "/*!40000 USE x */": false} {
		if got := selectsSchema(stateEntry{mysql.COM_QUERY, sql}); got != want {
			t.Errorf("selectsSchema(%q) = %v", sql, got)
		}
	}
}
