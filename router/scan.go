package router

import (
	"github.com/pingcap/tidb/pkg/parser"
)

// Statements too big to parse. The parser's memory is a multiple of the
// statement, up to hundreds of times for dense expressions (BENCHMARKS.md:
// a 2 MB "SELECT 1+1+..." allocates 554 MB to parse and 272 MB more to
// digest), so a statement over limits.max_parse_size, or one that would
// take more than its share of the parsing going on at once (ParseLimit),
// is classified from its tokens alone: one pass over the text, no
// allocation that grows with it.
//
// The classification is the token scan of statements the parser rejects,
// with what a replica needs proven instead of guessed: a read goes to a
// replica only if every name before '(' is a built-in function or a
// keyword that takes parentheses, and nothing else the scan knows (locking,
// INTO, variables, sequences, lock functions, per-server variables) says
// otherwise. Anything else goes where the flags send it, which for an
// unknown name is the primary. Its kinds and flags are never less
// conservative than the parser's (TestScanClassifyAgreesWithParser).

// digestPrefix is how much of a statement too big to parse is normalized
// for its digest: NormalizeDigest keeps a token per literal and operator,
// many times the text for dense expressions.
const digestPrefix = 4 << 10

// truncatedMark ends the digest text of a statement whose digest covers its
// first digestPrefix bytes only. NormalizeDigest drops comments, so no
// statement's full digest text ends like this.
const truncatedMark = " /* truncated */"

// scanClassify classifies sql from its tokens, digest included.
func scanClassify(sql string) Class {
	c := tokenClassify(sql, scanInner, true)
	c.DigestText, c.Digest = prefixDigest(sql)
	markProcesslist(&c, sql)
	return c
}

// scanInner classifies the statement after SET STATEMENT ... FOR, which is
// part of a statement too big to parse too.
func scanInner(sql string) Class { return tokenClassify(sql, scanInner, true) }

// prefixDigest is NormalizeDigest of the statement's tokens within its
// first digestPrefix bytes, marked truncated if more tokens follow.
// Statements that share that beginning share a digest; a big IN list or
// VALUES list usually does.
func prefixDigest(sql string) (text, digest string) {
	cut, more := len(sql), false
	if len(sql) > digestPrefix {
		l := lexer{s: sql}
		for {
			end := l.i
			t := l.next()
			if t.kind == tEOF || l.i > digestPrefix {
				// end is where the last whole token within the prefix ends,
				// so a huge literal or comment is not cut in half.
				cut, more = end, t.kind != tEOF
				break
			}
		}
	}
	text, d := parser.NormalizeDigest(sql[:cut])
	if !more {
		return text, d.String()
	}
	text += truncatedMark
	return text, parser.DigestNormalized(text).String()
}

// syntaxBeforeParen says whether a lowercase word before '(' is SQL syntax
// rather than a function call: IN (...), EXISTS (...), JOIN (...), OVER
// (...), CAST(x AS DECIMAL(10,2)), ... Built-in function names are
// isBuiltin's; a word that is neither is taken for a stored function.
func syntaxBeforeParen(word string) bool {
	switch word {
	case "in", "exists", "any", "all", "some", "and", "or", "not", "xor", "on", "using", "as", "from", "join",
		"straight_join", "lateral", "select", "where", "having", "by", "when", "then", "else", "between", "like",
		"rlike", "regexp", "distinct", "distinctrow", "union", "intersect", "except", "over", "partition",
		"index", "key", "match", "against", "columns", "group", "escape", "values", "decimal", "dec", "numeric",
		"float", "double", "real", "binary", "nchar", "varchar", "varbinary", "datetime", "integer", "int":
		return true
	}
	return false
}

// scanKind refines lexKind for a statement too big to parse where the
// parser would tell more: these statements are small by nature and reach
// the scan only padded (a huge comment), but their class must still be
// the parser's or more conservative.
func scanKind(c *Class, w [6]token, readOnly, readLock bool) {
	switch first := w[0]; {
	case first.is("SHOW") && (w[1].is("WARNINGS") || w[1].is("ERRORS") ||
		w[1].is("COUNT") && (w[5].is("WARNINGS") || w[5].is("ERRORS"))):
		c.UsesFoundRows = true // they read the previous statement's outcome
	case first.is("FLUSH") && readLock:
		c.Kind = LockTables
	case (first.is("EXPLAIN") || first.is("DESCRIBE") || first.is("DESC")) && w[1].is("ANALYZE"):
		// Runs the statement, as MariaDB's ANALYZE <statement> does.
		copy(w[:], w[1:])
		w[5] = token{}
		lexKind(c, w, readOnly)
	case first.punct("(") && w[1].punct("("): // ((SELECT ...) UNION (...)): lexKind skips one
		n := 0
		for n < len(w) && w[n].punct("(") {
			n++
		}
		var rest [6]token
		copy(rest[:], w[n:])
		lexKind(c, rest, readOnly)
	case (first.is("CREATE") || first.is("ALTER") || first.is("DROP") || first.is("RENAME")) &&
		(w[1].is("USER") || w[1].is("ROLE")):
		c.Kind = Admin // and it commits, as DDL does
	case first.is("SET") && w[1].is("PASSWORD"):
		c.Kind, c.EndsTx = Admin, true
	case first.is("SET") && (w[1].is("ROLE") || w[1].is("DEFAULT") && w[2].is("ROLE")):
		c.Kind = Admin
	case first.is("COMMIT") || first.is("ROLLBACK") && c.Kind == Rollback:
		// COMMIT [WORK] AND CHAIN opens the next transaction at once.
		for i := 1; i+1 < len(w); i++ {
			if w[i].is("AND") && w[i+1].is("CHAIN") {
				c.StartsTx = true
			}
		}
	}
}
