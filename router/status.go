package router

import (
	"strconv"
	"strings"
)

// Aborted clients through a proxy. A server counts in Aborted_clients the
// clients that went away without COM_QUIT, timed out or were killed. Its
// clients are the proxy's connections, which always end with COM_QUIT, so
// the aborts of the proxy's own clients would never show: the proxy counts
// them and adds the count since the last FLUSH STATUS through it to the
// Aborted_clients a client reads through it (SHOW STATUS, and the status
// tables of information_schema, which RewriteStatusTables rewrites).

// MentionsStatusTables reports whether GLOBAL_STATUS or SESSION_STATUS
// occurs in sql, in any case: a cheap superset of the statements
// RewriteStatusTables changes.
func MentionsStatusTables(sql string) bool {
	return mentions(sql, "global_status") || mentions(sql, "session_status")
}

// RewriteStatusTables returns sql with every reference to
// information_schema.GLOBAL_STATUS and SESSION_STATUS (also unqualified
// after FROM or JOIN in schema information_schema) replaced by a derived
// table over it in which ABORTED_CLIENTS is abortedClients more. ok is
// false when nothing was replaced: always when abortedClients is 0.
func RewriteStatusTables(sql, schema string, abortedClients uint64) (string, bool) {
	if abortedClients == 0 {
		return sql, false
	}
	n := strconv.FormatUint(abortedClients, 10)
	out, global := rewriteTableRefs(sql, schema, "GLOBAL_STATUS", func() string { return statusTable("GLOBAL_STATUS", n) })
	out, session := rewriteTableRefs(out, schema, "SESSION_STATUS", func() string { return statusTable("SESSION_STATUS", n) })
	return out, global || session
}

// statusTable is the derived table RewriteStatusTables puts in place of
// information_schema.<table>. The LIMIT keeps MariaDB from merging it into
// the query, which would name the query's columns as it names them.
func statusTable(table, aborted string) string {
	return "(SELECT `VARIABLE_NAME`, CASE `VARIABLE_NAME` WHEN 'ABORTED_CLIENTS' THEN CAST(CAST(`VARIABLE_VALUE` AS UNSIGNED) + " +
		aborted + " AS CHAR) ELSE `VARIABLE_VALUE` END AS `VARIABLE_VALUE` FROM information_schema." + table +
		" LIMIT 18446744073709551615)"
}

// FlushesStatus reports whether a statement of sql is FLUSH [LOCAL |
// NO_WRITE_TO_BINLOG] ... STATUS ..., which resets the server's status
// counters (and the count the proxy adds to Aborted_clients).
func FlushesStatus(sql string) bool {
	if !mentions(sql, "flush") || !mentions(sql, "status") || hasVersionComment(sql) {
		return false
	}
	l := lexer{s: sql}
	first, flush := true, false
	for t := l.next(); t.kind != tEOF; t = l.next() {
		switch {
		case t.punct(";"):
			first, flush = true, false
			continue
		case first:
			flush = t.is("FLUSH")
		case flush && t.is("STATUS"):
			return true
		}
		first = false
	}
	return false
}

// hasVersionComment reports whether sql has a version comment (/*!...*/,
// /*M!...*/), whose content a server runs or not by its version.
func hasVersionComment(sql string) bool {
	return strings.Contains(sql, "/*!") || strings.Contains(sql, "/*M!")
}
