package router

import (
	"slices"
	"strconv"
	"strings"
)

// The process list through a proxy. information_schema.PROCESSLIST numbers
// a server's connections by the server's thread ids, but clients know the
// proxy's session ids (the handshake's, CONNECTION_ID(), the ids KILL
// takes), and with pooling a server thread serves whichever session
// borrowed it last. So the proxy rewrites each reference to the table into
// a derived table that shows, in ID, the session id of the session holding
// that connection at that moment; leaves out the proxy's connections no
// session holds (its pool's idle ones: internals, not clients); and shows
// every other connection (the monitor's, other clients of the server)
// under an id no session can have, ServerOnlyIDBase plus the server's
// thread id. Session ids are 32 bits, so the two cannot meet.
//
// The mapping is taken just before the statement runs. A connection a
// session takes from the pool meanwhile is still left out for that read
// (it was idle), never shown under another id; one the proxy opened for a
// session meanwhile shows under its server-only id for that read.

// ServerOnlyIDBase is added to the thread id of a server connection that no
// session holds, in the process list clients read through the proxy.
const ServerOnlyIDBase = 1 << 32

// ThreadSession is a server thread a session holds, with the session's id.
type ThreadSession struct {
	Thread, Session uint64
}

// ProcesslistView is what the proxy puts in place of a server's
// information_schema.PROCESSLIST.
type ProcesslistView struct {
	// Columns are the table's columns on that server, in order.
	Columns []string
	// Held are the threads sessions hold now; Idle the proxy's other
	// connections to the server, which the view leaves out.
	Held []ThreadSession
	Idle []uint64
}

// MentionsProcesslist reports whether the word PROCESSLIST occurs in sql,
// in any case: a cheap superset of the statements RewriteProcesslist or
// RewriteShowProcesslist change.
func MentionsProcesslist(sql string) bool { return mentions(sql, "processlist") }

// MentionsUsedLock reports whether the word IS_USED_LOCK occurs in sql,
// in any case: a cheap superset of the statements RewriteUsedLock changes.
func MentionsUsedLock(sql string) bool { return mentions(sql, "is_used_lock") }

// mentionsClientView reports whether sql mentions the process list,
// IS_USED_LOCK or the status tables (MentionsProcesslist, MentionsUsedLock,
// MentionsStatusTables), in one pass: every statement is checked.
func mentionsClientView(sql string) bool {
	for i := 0; i < len(sql); i++ {
		var word string
		switch sql[i] | 0x20 {
		case 'p':
			word = "processlist"
		case 'i':
			word = "is_used_lock"
		case 'g':
			word = "global_status"
		case 's':
			word = "session_status"
		default:
			continue
		}
		if i+len(word) <= len(sql) && equalFoldASCII(sql[i:i+len(word)], word) {
			return true
		}
	}
	return false
}

// mentions reports whether word, in lower case, occurs in sql in any case.
func mentions(sql, word string) bool { return countWord(sql, word, 1) > 0 }

// countWord counts the occurrences of word, in lower case, in sql in any
// case, up to max.
func countWord(sql, word string, max int) int {
	n := 0
	for i := 0; i+len(word) <= len(sql) && n < max; i++ {
		if sql[i]|0x20 == word[0] && equalFoldASCII(sql[i:i+len(word)], word) {
			n++
		}
	}
	return n
}

// MaxThreadIDReads is how many references to the process list or the
// status tables and calls of IS_USED_LOCK() a statement may have: each
// becomes a text of the size of the proxy's connections to the server
// (RewriteProcesslist, RewriteUsedLock), or of a few hundred bytes
// (RewriteStatusTables), so without a bound the text sent on would grow
// with their product, not with the client's statement.
const MaxThreadIDReads = 64

// TooManyThreadIDReads reports whether sql may have more than
// MaxThreadIDReads of them (it counts the words, a superset).
func TooManyThreadIDReads(sql string) bool {
	n := 0
	for _, w := range []string{"processlist", "is_used_lock", "global_status", "session_status"} {
		n += countWord(sql, w, MaxThreadIDReads+1-n)
	}
	return n > MaxThreadIDReads
}

// rewritesIn: statements whose references to the process list are
// rewritten, by their first word. Others keep the table as it is: a view,
// procedure, trigger or event would keep a mapping of one moment forever,
// and SHOW, DESCRIBE and EXPLAIN describe the table itself.
var rewritesIn = []string{"SELECT", "WITH", "VALUES", "TABLE", "INSERT", "REPLACE", "UPDATE", "DELETE", "SET", "DO"}

// followsTable are the keywords that may follow a table reference without
// being its alias.
var followsTable = []string{"WHERE", "JOIN", "INNER", "CROSS", "LEFT", "RIGHT", "NATURAL", "STRAIGHT_JOIN",
	"FULL", "OUTER", "ON", "USING", "GROUP", "ORDER", "LIMIT", "HAVING", "UNION", "EXCEPT", "INTERSECT", "MINUS",
	"FOR", "LOCK", "USE", "IGNORE", "FORCE", "WINDOW", "INTO", "PROCEDURE", "RETURNING", "SET", "PARTITION",
	"OFFSET", "FETCH", "VALUES", "SELECT", "AND", "OR"}

func isAnyOf(t token, words []string) bool {
	return t.kind == tWord && slices.ContainsFunc(words, func(w string) bool { return equalFoldASCII(t.text, w) })
}

// nameIs reports whether t is the identifier name, quoted or not.
func nameIs(t token, name string) bool {
	switch t.kind {
	case tWord:
		return equalFoldASCII(t.text, name)
	case tIdent:
		return equalFoldASCII(unquoteIdent(t), name)
	}
	return false
}

// RewriteProcesslist returns sql with every reference to
// information_schema.PROCESSLIST (also an unqualified PROCESSLIST after FROM
// or JOIN when schema, the session's current schema, is
// information_schema) replaced by a derived table over it with the
// server's columns (in the table's order, so that SELECT * is unchanged)
// in which ID is the id of the session holding that thread, or
// ServerOnlyIDBase plus the thread id for one no session holds, and
// without the rows of v.Idle. The client's alias stays; without one the
// derived table takes the table's name as written. ok is false when
// nothing was replaced. The text grows by the column list and a few bytes
// per connection the proxy has to the server.
func RewriteProcesslist(sql, schema string, v ProcesslistView) (string, bool) {
	if !slices.ContainsFunc(v.Columns, func(c string) bool { return strings.EqualFold(c, "ID") }) {
		return sql, false
	}
	return rewriteTableRefs(sql, schema, "PROCESSLIST", func() string { return processlistTable(v) })
}

// rewriteTableRefs returns sql with every reference to
// information_schema.<table> (also an unqualified <table> after FROM or
// JOIN when schema, the session's current schema, is information_schema)
// replaced by the derived table derived returns, in statements that start
// with one of rewritesIn. The client's alias stays; without one the
// derived table takes the table's name as written. ok is false when
// nothing was replaced.
func rewriteTableRefs(sql, schema, table string, derived func() string) (string, bool) {
	inSchema := strings.EqualFold(schema, "information_schema")
	var toks []token
	var starts []int
	l := lexer{s: sql}
	for t := l.next(); t.kind != tEOF; t = l.next() {
		toks = append(toks, t)
		starts = append(starts, l.i-len(t.text))
	}
	var b strings.Builder
	last := 0 // sql[:last] is written
	var text string
	rewrites := false // the statement's first word allows it
	first := true
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if t.punct(";") {
			first = true
			continue
		}
		if first {
			if !t.punct("(") { // (SELECT ...) UNION ...: decided by its SELECT
				rewrites = isAnyOf(t, rewritesIn)
				first = false
			}
			continue
		}
		if !rewrites {
			continue
		}
		var name token
		end := i // the last token of the reference
		switch {
		case nameIs(t, "information_schema") && i+2 < len(toks) && toks[i+1].punct(".") && nameIs(toks[i+2], table) &&
			(i == 0 || !toks[i-1].punct(".")):
			name, end = toks[i+2], i+2
		case inSchema && nameIs(t, table) && i > 0 && (toks[i-1].is("FROM") || toks[i-1].is("JOIN")):
			name = t
		default:
			continue
		}
		b.WriteString(sql[last:starts[i]])
		last = starts[end] + len(toks[end].text)
		if end+1 < len(toks) && toks[end+1].punct(".") {
			// A column qualified by the table's full name: the derived
			// table has that name.
			b.WriteString(name.text)
			i = end
			continue
		}
		if text == "" {
			text = derived()
		}
		b.WriteString(text)
		if end+1 == len(toks) || toks[end+1].kind == tPunct || isAnyOf(toks[end+1], followsTable) {
			b.WriteString(" AS ")
			b.WriteString(name.text)
		}
		i = end
	}
	if text == "" {
		return sql, false
	}
	b.WriteString(sql[last:])
	return b.String(), true
}

// processlistTable is the derived table RewriteProcesslist puts in.
func processlistTable(v ProcesslistView) string {
	// The same mapping gives the same text: a prepared statement's server
	// statement is reused while it holds.
	held := slices.Clone(v.Held)
	slices.SortFunc(held, func(a, b ThreadSession) int { return cmpUint(a.Thread, b.Thread) })
	idle := slices.Clone(v.Idle)
	slices.Sort(idle)
	base := strconv.FormatUint(ServerOnlyIDBase, 10)
	var b strings.Builder
	b.WriteString("(SELECT ")
	for i, c := range v.Columns {
		if i > 0 {
			b.WriteString(", ")
		}
		switch {
		case !strings.EqualFold(c, "ID"):
			b.WriteString(quoteIdent(c))
		case len(held) == 0:
			b.WriteString("`ID` + " + base + " AS `ID`")
		default:
			b.WriteString("CASE `ID`")
			for _, t := range held {
				b.WriteString(" WHEN ")
				b.WriteString(strconv.FormatUint(t.Thread, 10))
				b.WriteString(" THEN ")
				b.WriteString(strconv.FormatUint(t.Session, 10))
			}
			b.WriteString(" ELSE `ID` + " + base + " END AS `ID`")
		}
	}
	b.WriteString(" FROM information_schema.PROCESSLIST")
	for i, t := range idle {
		if i == 0 {
			b.WriteString(" WHERE `ID` NOT IN (")
		} else {
			b.WriteString(", ")
		}
		b.WriteString(strconv.FormatUint(t, 10))
	}
	if len(idle) > 0 {
		b.WriteString(")")
	}
	// A LIMIT keeps MariaDB from merging the derived table into the
	// query: merged, the query's columns would be named as the derived
	// table names them (USER), not as the client wrote them (user), as
	// the server names a column of the table itself.
	b.WriteString(" LIMIT 18446744073709551615)")
	return b.String()
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func quoteIdent(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}

// showProcesslistColumns are SHOW PROCESSLIST's columns, each as
// information_schema.PROCESSLIST has it and as SHOW names it.
var showProcesslistColumns = [][2]string{{"ID", "Id"}, {"USER", "User"}, {"HOST", "Host"}, {"DB", "db"},
	{"COMMAND", "Command"}, {"TIME", "Time"}, {"STATE", "State"}, {"INFO", "Info"}, {"PROGRESS", "Progress"}}

// showInfoLength is how much of a statement SHOW PROCESSLIST shows without
// FULL (MariaDB's PROCESS_LIST_WIDTH).
const showInfoLength = 100

// RewriteShowProcesslist turns sql, if it is SHOW [FULL] PROCESSLIST, into
// the same columns read from the table RewriteProcesslist puts in, so that
// it shows the same ids. What differs from the server's own answer: rows
// come in the table's order, and the reading session's row shows the
// statement that reads the table (its INFO, its STATE). ok is false for
// any other statement, or a server whose table lacks one of the columns.
func RewriteShowProcesslist(sql string, v ProcesslistView) (string, bool) {
	l := lexer{s: sql}
	if !l.next().is("SHOW") {
		return sql, false
	}
	t := l.next()
	full := t.is("FULL")
	if full {
		t = l.next()
	}
	if !t.is("PROCESSLIST") {
		return sql, false
	}
	for t = l.next(); t.punct(";"); t = l.next() {
	}
	if t.kind != tEOF {
		return sql, false
	}
	var b strings.Builder
	b.WriteString("SELECT ")
	for i, c := range showProcesslistColumns {
		if !slices.ContainsFunc(v.Columns, func(have string) bool { return strings.EqualFold(have, c[0]) }) {
			return sql, false
		}
		if i > 0 {
			b.WriteString(", ")
		}
		if c[0] == "INFO" && !full {
			b.WriteString("LEFT(`INFO`, " + strconv.Itoa(showInfoLength) + ")")
		} else {
			b.WriteString(quoteIdent(c[0]))
		}
		b.WriteString(" AS ")
		b.WriteString(quoteIdent(c[1]))
	}
	b.WriteString(" FROM ")
	b.WriteString(processlistTable(v))
	b.WriteString(" AS PROCESSLIST")
	return b.String(), true
}

// RewriteUsedLock returns sql with every call IS_USED_LOCK(name), outside
// strings and comments, in the statements that start with one of
// rewritesIn (not in stored definitions, bodies.go), made to answer as
// the process list does (RewriteProcesslist): with the id of the session
// holding the thread that holds the lock, else ServerOnlyIDBase plus the
// thread id, NULL for a free lock. So `IS_USED_LOCK(name) = CONNECTION_ID()`
// is true for the session holding the lock, as directly. ok is false when
// nothing was replaced. The call is evaluated a second time for a thread
// no session holds: if the lock changed hands in between, that answer is
// the new holder's.
func RewriteUsedLock(sql string, v ProcesslistView) (string, bool) {
	if !MentionsUsedLock(sql) {
		return sql, false
	}
	held := slices.Clone(v.Held)
	slices.SortFunc(held, func(a, b ThreadSession) int { return cmpUint(a.Thread, b.Thread) })
	base := strconv.FormatUint(ServerOnlyIDBase, 10)
	rewrite := func(stmt string) string {
		return rewriteCalls(stmt, func(l *lexer, t token) (string, bool) {
			if !t.is("IS_USED_LOCK") {
				return "", false
			}
			save := *l
			if !l.next().punct("(") {
				*l = save
				return "", false
			}
			argsAt, depth := l.i, 1
			for depth > 0 {
				nt := l.next()
				switch {
				case nt.kind == tEOF:
					*l = save
					return "", false
				case nt.punct("("):
					depth++
				case nt.punct(")"):
					depth--
				}
			}
			call := "IS_USED_LOCK(" + l.s[argsAt:l.i]
			var b strings.Builder
			b.WriteString("(CASE ")
			b.WriteString(call)
			for _, h := range held {
				b.WriteString(" WHEN ")
				b.WriteString(strconv.FormatUint(h.Thread, 10))
				b.WriteString(" THEN ")
				b.WriteString(strconv.FormatUint(h.Session, 10))
			}
			b.WriteString(" ELSE ")
			b.WriteString(call)
			b.WriteString(" + " + base + " END)")
			return b.String(), true
		})
	}
	var b strings.Builder
	statementSpans(sql, func(stmt string) {
		if rewritesStatement(stmt) {
			b.WriteString(rewrite(stmt))
		} else {
			b.WriteString(stmt)
		}
	})
	out := b.String()
	return out, out != sql
}

// rewritesStatement reports whether stmt, one statement, starts with one of
// rewritesIn (after opening parentheses), as the statements whose reads of
// server thread ids the proxy maps do. CREATE TABLE ... SELECT keeps the
// server's: the mapped value would change the column type it creates.
func rewritesStatement(stmt string) bool {
	l := lexer{s: stmt}
	t := l.next()
	for t.punct("(") {
		t = l.next()
	}
	return isAnyOf(t, rewritesIn)
}
