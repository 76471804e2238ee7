package backend

import (
	"errors"
	"hash/fnv"
	"slices"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Session state replay. A client session's replayable state is the list of
// commands that changed it (SET, SET NAMES, USE, COM_INIT_DB,
// COM_SET_OPTION). Each server connection records which of those it has run;
// before a connection runs anything for a session, Sync brings it to the
// session's state: it replays the entries it lacks, or, when it carries
// another session's state, resets itself (COM_RESET_CONNECTION) and replays
// them all.

// stateEntry is a command that changed session state, kept for replay.
type stateEntry struct {
	Cmd  byte
	Args string
}

// maxStateEntries bounds a session's replay log; a session that changes its
// state more often than this cannot be replayed and must stay on its
// connection instead.
const maxStateEntries = 64

// SessionState is a session's replayable state. It is a value: entries are
// never changed in place, so a copy is a snapshot that later changes do not
// touch. The zero value is a fresh login's state.
type SessionState struct {
	entries []stateEntry
	hash    uint64 // fingerprint of entries, so the pool can prefer a match
	// schemaChanged: an entry selects a schema (USE, COM_INIT_DB). A
	// reset keeps the current schema and no command unselects one, so a
	// connection in this state cannot be brought back to "no schema".
	schemaChanged bool
}

// With returns the state after one more state-changing command. A command
// identical to an earlier one replaces it when moving it to the end
// changes nothing the commands between mean (movable), so a client that
// repeats SET NAMES per request does not grow the log; connections that
// ran the old order replay it again when next used. A schema selection
// replaces the earlier ones. ok is false when the log is full: the state
// cannot be replayed.
func (s SessionState) With(cmd byte, args string) (next SessionState, ok bool) {
	e := stateEntry{Cmd: cmd, Args: args}
	// A schema selection also replaces the earlier ones: only the last
	// counts, and an earlier one may name a schema dropped since, which
	// replaying would fail on.
	if n := len(s.entries); n > 0 && s.entries[n-1] == e {
		return s, true // the same command again: nothing changes
	}
	newSchema := selectsSchema(e)
	moves := true
	if i := slices.Index(s.entries, e); i >= 0 {
		moves = movable(e, s.entries[i+1:])
	}
	entries := slices.DeleteFunc(slices.Clone(s.entries), func(old stateEntry) bool {
		return old == e && moves || newSchema && selectsSchema(old)
	})
	if len(entries) >= maxStateEntries {
		return s, false
	}
	entries = append(entries, e)
	return SessionState{entries: entries, hash: hashState(entries),
		schemaChanged: s.schemaChanged || cmd == mysql.COM_INIT_DB}, true
}

// WithUse is With for a USE statement, which selects a schema like
// COM_INIT_DB but is replayed as the text the client sent.
func (s SessionState) WithUse(sql string) (next SessionState, ok bool) {
	next, ok = s.With(mysql.COM_QUERY, sql)
	next.schemaChanged = next.schemaChanged || ok
	return next, ok
}

// WithoutSchema returns s without its schema selections: the schema they
// selected was dropped, which leaves the session in none. A connection
// cannot be brought back to no schema (see schemaChanged), so one that
// replays the result stays in its login schema.
func (s SessionState) WithoutSchema() SessionState {
	entries := slices.DeleteFunc(slices.Clone(s.entries), selectsSchema)
	return SessionState{entries: entries, hash: hashState(entries), schemaChanged: s.schemaChanged}
}

// movable says whether command e, run again after the commands later,
// may be replayed in their place instead of before them: neither changes
// what the other means. A command that sets the connection's character
// set, collation or sql_mode changes how later text is read (a non-ASCII
// literal or name, a double quote under ANSI_QUOTES, a backslash, `||`);
// the rest is read the same whatever they say.
func movable(e stateEntry, later []stateEntry) bool {
	for _, x := range later {
		if setsMode(e) && !modeNeutral(x) || setsMode(x) && !modeNeutral(e) {
			return false
		}
	}
	return true
}

// setsMode says whether e may change how the server reads later text:
// SET NAMES, SET CHARACTER SET / CHARSET, character_set_* and collation_*
// variables, sql_mode. It may say so of a command that does not.
func setsMode(e stateEntry) bool {
	if e.Cmd != mysql.COM_QUERY {
		return false
	}
	sql := strings.ToLower(e.Args)
	for _, w := range []string{"names", "character", "charset", "collation", "sql_mode"} {
		if strings.Contains(sql, w) {
			return true
		}
	}
	return false
}

// modeNeutral says whether the server reads e the same under any character
// set and sql_mode: plain ASCII without double quotes, backslashes or `||`.
func modeNeutral(e stateEntry) bool {
	if e.Cmd == mysql.COM_SET_OPTION {
		return true
	}
	for i := 0; i < len(e.Args); i++ {
		if c := e.Args[i]; c >= 0x80 || c == '"' || c == '\\' || c == '|' {
			return false
		}
	}
	return true
}

// selectsSchema says whether e selects a schema: COM_INIT_DB, or a USE
// statement (WithUse).
func selectsSchema(e stateEntry) bool {
	if e.Cmd == mysql.COM_INIT_DB {
		return true
	}
	if e.Cmd != mysql.COM_QUERY {
		return false
	}
	sql := e.Args
	for {
		sql = strings.TrimLeft(sql, " \t\r\n")
		if !strings.HasPrefix(sql, "/*") || strings.HasPrefix(sql, "/*!") || strings.HasPrefix(sql, "/*M!") {
			break
		}
		end := strings.Index(sql, "*/")
		if end < 0 {
			return false
		}
		sql = sql[end+2:]
	}
	return len(sql) > 3 && strings.EqualFold(sql[:3], "use") && strings.ContainsRune(" \t\r\n`", rune(sql[3]))
}

// readOnlyEntry makes the connection's transactions read-only, autocommit
// statements included. Connections to a server that is not the primary
// carry it last in their state (see ReadOnly), so the server itself
// refuses a write that reaches a replica, whatever sent it there: a view
// over a stored function that writes, a user with READ_ONLY ADMIN, for
// whom read_only does not apply. Such a write would break the replica's
// replication. It fails with 1792 and changes nothing.
var readOnlyEntry = stateEntry{Cmd: mysql.COM_QUERY, Args: "SET SESSION TRANSACTION READ ONLY"}

// ReadOnly returns the state a connection to a replica must carry for a
// session in state s: s, then read-only transactions. It is a new value
// each time; callers on a hot path keep it while s stays the same.
func (s SessionState) ReadOnly() SessionState {
	entries := slices.DeleteFunc(slices.Clone(s.entries), func(old stateEntry) bool { return old == readOnlyEntry })
	entries = append(entries, readOnlyEntry) // past maxStateEntries too: it is not the client's
	return SessionState{entries: entries, hash: hashState(entries), schemaChanged: s.schemaChanged}
}

// Same reports whether s and t are the same state.
func (s SessionState) Same(t SessionState) bool {
	return s.hash == t.hash && len(s.entries) == len(t.entries)
}

// servesNoSchema reports whether a connection in state s can serve a
// session that logged in without a schema and is in state want: either it
// never selected a schema, or want is where it is headed anyway.
func (s SessionState) servesNoSchema(want SessionState) bool {
	return !s.schemaChanged || s.extends(want)
}

// errSchemaStays says Sync cannot bring a connection back to "no schema".
var errSchemaStays = errors.New("the connection has a schema selected, and a session without one cannot use it")

// extends reports whether s is what has already run of the longer state t.
func (s SessionState) extends(t SessionState) bool {
	return len(s.entries) <= len(t.entries) && slices.Equal(s.entries, t.entries[:len(s.entries)])
}

func hashState(entries []stateEntry) uint64 {
	if len(entries) == 0 {
		return 0
	}
	h := fnv.New64a()
	for _, e := range entries {
		h.Write([]byte{e.Cmd})
		h.Write([]byte(e.Args))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// Sync brings the connection to session state st for a session whose
// connections log in to loginSchema. A command the server refuses (the
// client already ran it successfully elsewhere) means this connection
// cannot serve the session; the error says so.
func (c *Conn) Sync(st SessionState, loginSchema string) error {
	if c.state.hash == st.hash && len(c.state.entries) == len(st.entries) {
		return nil
	}
	if !c.state.extends(st) {
		if loginSchema == "" && !c.state.servesNoSchema(st) {
			return errSchemaStays // the pool does not hand such connections out
		}
		// Another session's state: start from a clean login state.
		if err := c.Command(mysql.COM_RESET_CONNECTION, ""); err != nil {
			return err
		}
		if loginSchema != "" {
			if err := c.Command(mysql.COM_INIT_DB, loginSchema); err != nil {
				return err
			}
		}
	}
	for _, e := range st.entries[len(c.state.entries):] {
		if err := c.Command(e.Cmd, e.Args); err != nil {
			return err
		}
	}
	c.state = st
	return nil
}

// Ran records that the connection carries st: the session's
// state-changing command ran here, after every earlier entry.
func (c *Conn) Ran(st SessionState) { c.state = st }

// ForgetState records that the connection carries no session state, after
// the server dropped it (COM_RESET_CONNECTION run for the client).
func (c *Conn) ForgetState() { c.state = SessionState{} }
