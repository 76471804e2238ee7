package router

import "strings"

// Stored definitions. The body of a procedure, function, trigger, event,
// view or package is kept by the server and run later by the server, on
// whichever connection calls it: CONNECTION_ID() there is the server's
// thread id and a KILL there kills by the server's ids, as everything inside
// the server sees them. So the proxy rewrites neither in a definition: a
// rewritten CONNECTION_ID() would be stored as a constant (the creating
// client's id, for every later caller), and refusing a KILL in a body made
// MariaDB's self-interrupting routines (KILL QUERY of its own CONNECTION_ID())
// impossible. A KILL as a statement of its own stays the proxy's.

// definesBody reports whether stmt, one statement, is CREATE or ALTER of
// something whose body the server stores and runs later.
func definesBody(stmt string) bool {
	l := lexer{s: stmt}
	t := l.next()
	if t.punct("(") {
		t = l.next()
	}
	if !t.is("CREATE") && !t.is("ALTER") {
		return false
	}
	// CREATE [OR REPLACE] [ALGORITHM = x] [DEFINER = user] [SQL SECURITY x]
	// [AGGREGATE] [IF NOT EXISTS] PROCEDURE ...: the object's keyword comes
	// within the first few words.
	for i := 0; i < 24; i++ {
		t = l.next()
		switch {
		case t.kind == tEOF || t.punct("(") || t.punct(";"):
			return false
		case t.is("PROCEDURE"), t.is("FUNCTION"), t.is("TRIGGER"), t.is("EVENT"), t.is("VIEW"), t.is("PACKAGE"):
			return true
		case t.is("TABLE"), t.is("INDEX"), t.is("DATABASE"), t.is("SCHEMA"), t.is("USER"), t.is("ROLE"),
			t.is("SEQUENCE"), t.is("SERVER"), t.is("TABLESPACE"), t.is("LOGFILE"):
			return false
		}
	}
	return false
}

// statementSpans calls fn with each statement of sql, split where MariaDB
// ends it: at a ';' outside the BEGIN ... END blocks of a compound body
// (the token scan's block count).
func statementSpans(sql string, fn func(stmt string)) {
	l := lexer{s: sql}
	noInner := func(string) Class { return Class{} }
	for {
		start := l.i
		_, more := lexStatement(&l, noInner, true)
		fn(sql[start:l.i])
		if !more {
			return
		}
	}
}

// killsOutsideBodies reports whether sql runs a KILL other than inside a
// stored definition's body (textKills for each other statement).
func killsOutsideBodies(sql string) bool {
	kills := false
	statementSpans(sql, func(stmt string) {
		kills = kills || !definesBody(stmt) && textKills(stmt)
	})
	return kills
}

// SoleBody reports whether sql is one statement, by the token scan's
// count, that defines a stored body. The count can be wrong (BEGIN and END
// may be aliases), so what relies on it runs the text alone
// (Class.RunAlone), where the server refuses anything after the first
// statement.
func SoleBody(sql string) bool {
	n, body := 0, false
	statementSpans(sql, func(stmt string) {
		if strings.TrimSpace(stmt) == "" || strings.TrimSpace(stmt) == ";" {
			return
		}
		n++
		body = definesBody(stmt)
	})
	return n == 1 && body
}
