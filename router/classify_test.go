package router

import (
	"strings"
	"testing"

	"github.com/pingcap/tidb/pkg/parser"
)

func TestClassify(t *testing.T) {
	on, off := true, false
	tests := []struct {
		sql  string
		want Class // only the fields set here are compared, plus Route and Kind
	}{
		{"SELECT * FROM t WHERE id = 1", Class{Kind: Read, Route: Replica}},
		{"select * from t where id = 1 for update", Class{Kind: Read, Route: Primary, Locking: true}},
		{"SELECT * FROM t LOCK IN SHARE MODE", Class{Kind: Read, Route: Primary, Locking: true}},
		{"SELECT 'DELETE FROM t' FROM t -- ; DELETE FROM t", Class{Kind: Read, Route: Replica}},
		{"INSERT INTO t VALUES (1)", Class{Kind: Write, Route: Primary}},
		{"INSERT INTO t VALUES (1) RETURNING id", Class{Kind: Write, Route: Primary, Unparsed: true}},
		{"SET autocommit=0", Class{Kind: Set, Route: Primary, Autocommit: &off}},
		{"SET @@session.autocommit = ON", Class{Kind: Set, Route: Primary, Autocommit: &on}},
		{"SET SESSION autocommit = 'OFF'", Class{Kind: Set, Route: Primary, Autocommit: &off}},
		{"SET @a = 1, autocommit = true", Class{Kind: Set, Route: Primary, Autocommit: &on, SetsUserVar: true}},
		{"SET GLOBAL autocommit = 0", Class{Kind: Admin, Route: Primary, AffectsNewLogins: true}},
		{"SET STATEMENT max_statement_time=1 FOR SET autocommit = 1", Class{Kind: Set, Route: Primary, Autocommit: &on}},
		{"SELECT a INTO @a FROM t", Class{Kind: Read, Route: Primary, Unparsed: true, SetsUserVar: true}},
		{"SELECT @n := COUNT(*) FROM t", Class{Kind: Read, Route: Primary, SetsUserVar: true}},
		{"SELECT @n", Class{Kind: Read, Route: Primary, ReadsUserVar: true}},
		{"CREATE TEMPORARY TABLE t (a INT)", Class{Kind: DDL, Route: Primary, CreatesTempTable: true}},
		{"DROP TEMPORARY TABLE t", Class{Kind: DDL, Route: Primary, DropsTempTable: true}},
		{"ALTER TABLE t ADD c INT", Class{Kind: DDL, Route: Primary, EndsTx: true}},
		{"SELECT GET_LOCK('a', 1)", Class{Kind: Read, Route: Primary, UsesLock: true, SideEffects: true}},
		{"SELECT FOUND_ROWS()", Class{Kind: Read, Route: Primary, UsesFoundRows: true}},
		{"SELECT LAST_INSERT_ID()", Class{Kind: Read, Route: Primary, UsesLastInsertID: true}},
		{"SELECT LAST_INSERT_ID(5)", Class{Kind: Read, Route: Primary, UsesLastInsertID: true, SideEffects: true}},
		{"SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 5", Class{Kind: Read, Route: Replica, CalcFoundRows: true}},
		{"SELECT SLEEP(1)", Class{Kind: Read, Route: Replica}},
		{"SELECT NEXTVAL(s)", Class{Kind: Read, Route: Primary, SideEffects: true}},
		{"SELECT NEXT VALUE FOR s", Class{Kind: Read, Route: Primary, SideEffects: true}},
		{"SELECT shop.f(1)", Class{Kind: Read, Route: Primary, StoredFunc: true}},
		{"BEGIN", Class{Kind: Begin, Route: Primary, StartsTx: true, EndsTx: true}},
		{"START TRANSACTION READ ONLY", Class{Kind: BeginReadOnly, Route: Replica, StartsTx: true, EndsTx: true, ReadOnlyTx: true}},
		{"XA START 'x'", Class{Kind: XA, Route: Primary, Unparsed: true, StartsTx: true}},
		{"COMMIT", Class{Kind: Commit, Route: Primary, EndsTx: true}},
		{"ROLLBACK TO SAVEPOINT a", Class{Kind: Savepoint, Route: Primary}},
		{"BEGIN; INSERT INTO t VALUES (1); COMMIT", Class{Kind: Write, Route: Primary, EndsTx: true, Statements: 3, NotOnlyReads: true}},
		{"COMMIT; START TRANSACTION READ ONLY", Class{Kind: Commit, Route: Replica, EndsTx: true, StartsTx: true, ReadOnlyTx: true, Statements: 2, NotOnlyReads: true}},
		{"SELECT 1; SELECT 2", Class{Kind: Read, Route: Replica, Statements: 2}},
		{"SELECT 1; DELETE FROM t", Class{Kind: Write, Route: Primary, Statements: 2, NotOnlyReads: true}},
		{"SHOW TABLES", Class{Kind: Show, Route: Replica}},
		{"SHOW VARIABLES LIKE 'read_only'", Class{Kind: Show, Route: Primary}},
		{"SHOW WARNINGS", Class{Kind: Show, Route: Primary, UsesFoundRows: true}},
		{"DESC t", Class{Kind: Show, Route: Replica}},
		{"EXPLAIN SELECT * FROM t", Class{Kind: Show, Route: Replica}},
		{"EXPLAIN UPDATE t SET a = 1", Class{Kind: Show, Route: Primary}},
		{"EXPLAIN SELECT GET_LOCK('a', 1)", Class{Kind: Show, Route: Replica}}, // not executed
		{"EXPLAIN ANALYZE DELETE FROM t", Class{Kind: Write, Route: Primary}},
		{"USE Shop", Class{Kind: Use, Route: Primary, Schema: "Shop"}},
		{"USE `a``b`", Class{Kind: Use, Route: Primary, Schema: "a`b"}},
		{"SET NAMES utf8mb4", Class{Kind: Set, Route: Primary}},
		{"LOCK TABLES t WRITE", Class{Kind: LockTables, Route: Primary, EndsTx: true}},
		{"UNLOCK TABLES", Class{Kind: UnlockTables, Route: Primary}},
		{"PREPARE s FROM 'SELECT 1'", Class{Kind: Prepare, Route: Primary}},
		{"EXECUTE s USING @a", Class{Kind: Execute, Route: Primary, ReadsUserVar: true}},
		{"DEALLOCATE PREPARE s", Class{Kind: Deallocate, Route: Primary}},
		{"CALL p(@out)", Class{Kind: Call, Route: Primary, SetsUserVar: true, ReadsUserVar: true}},
		{"/*M!100100 DELETE FROM t */", Class{Kind: Write, Route: Primary, Unparsed: true}},
		{"KILL 5", Class{Kind: Admin, Route: Primary, Kills: true}},
		{"SELECT 1; KILL QUERY 5", Class{Kind: Read, Route: Primary, Statements: 2, NotOnlyReads: true, Kills: true}},
		{"EXECUTE IMMEDIATE 'KILL 5'", Class{Kind: Execute, Route: Primary, Unparsed: true, Kills: true}},
		{"EXECUTE IMMEDIATE 'SELECT 1; KIL\\L 5'", Class{Kind: Execute, Route: Primary, Unparsed: true, Kills: true}},
		{"PREPARE s FROM 'kill 5'", Class{Kind: Prepare, Route: Primary, Kills: true}},
		{"/*M!100000 KILL 5 */", Class{Kind: Admin, Route: Primary, Unparsed: true, Kills: true}},
		// A KILL in a stored body is the server's (bodies.go); one after
		// the body, in the same text, is still the proxy's.
		{"CREATE PROCEDURE p() BEGIN DECLARE a INT; SET a = CONNECTION_ID(); KILL QUERY a; END", Class{Kind: DDL, Route: Primary, Unparsed: true, EndsTx: true, UsesConnectionID: true, RunAlone: true}},
		{"CREATE PROCEDURE p() KILL 5", Class{Kind: DDL, Route: Primary, Unparsed: true, EndsTx: true}},
		{"CREATE PROCEDURE p() BEGIN SELECT 1; END; KILL 5", Class{Kind: DDL, Route: Primary, Statements: 2, EndsTx: true, NotOnlyReads: true, Kills: true}},
		{"CREATE PROCEDURE p() BEGIN DECLARE a INT; IF 1 THEN KILL QUERY a; END IF; END; KILL 5", Class{Kind: DDL, Route: Primary, Unparsed: true, EndsTx: true, Kills: true}},
		{"CREATE PROCEDURE p() BEGIN DECLARE a INT; IF 1 THEN KILL QUERY a; END IF; END", Class{Kind: DDL, Route: Primary, Unparsed: true, EndsTx: true, RunAlone: true}},
		{"CREATE PROCEDURE p() KILL 5; KILL 6", Class{Kind: DDL, Route: Primary, Unparsed: true, Statements: 2, EndsTx: true, NotOnlyReads: true, Kills: true}},
		// An anonymous block runs now, with the ids the client sees: its
		// KILL is the proxy's, which runs KILL only alone.
		{"BEGIN NOT ATOMIC KILL 5; END", Class{Kind: Other, Route: Primary, Unparsed: true, Kills: true}},
		{"BEGIN NOT ATOMIC IF 1 THEN KILL 5; END IF; END", Class{Kind: Other, Route: Primary, Unparsed: true, Kills: true}},
		{"BEGIN NOT ATOMIC l: LOOP KILL 5; END LOOP; END", Class{Kind: Other, Route: Primary, Unparsed: true, Kills: true}},
		{"SELECT CASE WHEN a THEN b ELSE c END FROM t", Class{Kind: Read, Route: Replica}},
		{"SELECT 'KILL 5'", Class{Kind: Read, Route: Replica}},
		{"", Class{Kind: Other, Route: Primary}},
		{"/* nothing */", Class{Kind: Other, Route: Primary}},
		{"not sql at all", Class{Kind: Other, Route: Primary, Unparsed: true}},
	}
	cl := NewClassifier(nil)
	for _, tc := range tests {
		got := cl.Classify(tc.sql)
		want := tc.want
		if want.Statements == 0 && tc.sql != "" && tc.sql != "/* nothing */" {
			want.Statements = 1
		}
		cmp := got
		cmp.Digest, cmp.DigestText, cmp.litDep = "", "", false
		if !sameClass(cmp, want) {
			t.Errorf("%q:\n got  %s %s %s\n want %s %s %s", tc.sql, got.Route, got.Kind, got.Flags(), want.Route, want.Kind, want.Flags())
		}
	}
}

func TestHint(t *testing.T) {
	tests := []struct {
		sql  string
		want Target
	}{
		{"/* switchyard:route=primary */ SELECT 1", Primary},
		{"SELECT /* switchyard:route=replica */ 1", Replica},
		{"SELECT 1 -- switchyard:route=REPLICA", Replica},
		{"SELECT 1 # switchyard:route=primary", Primary},
		{"SELECT 1 /* switchyard : route = replica */", Replica},
		{"SELECT 1 /* switchyard:route=master */", Primary},
		{"SELECT 1 /* app=x switchyard:route=replica trace=y */", Replica},
		{"SELECT 1 /* switchyard:route=nowhere */", NoTarget},
		{"SELECT 1 /* switchyard:routes=replica */", NoTarget},
		{"SELECT '/* switchyard:route=replica */'", NoTarget},
		{"SELECT \"-- switchyard:route=replica\"", NoTarget},
		{"SELECT `/* switchyard:route=replica */` FROM t", NoTarget},
		{"SELECT 1 /* switchyard:route=primary */ /* switchyard:route=replica */", Primary},
		{"/* switchyard:route=replica", Replica}, // unterminated: still a comment to the end
		{"SELECT 1", NoTarget},
	}
	cl := NewClassifier(NewCache(64))
	for _, tc := range tests {
		if got := cl.Classify(tc.sql).Hint; got != tc.want {
			t.Errorf("%q: hint %s, want %s", tc.sql, got, tc.want)
		}
	}
	// The hint is read per statement, never from the cache.
	for range 3 {
		cl.Classify("SELECT * FROM t WHERE id = 1")
		if got := cl.Classify("SELECT * FROM t WHERE id = 1 /* switchyard:route=primary */").Hint; got != Primary {
			t.Fatalf("hint lost through the cache: %s", got)
		}
	}
}

func TestDigest(t *testing.T) {
	cl := NewClassifier(nil)
	a := cl.Classify("SELECT * FROM t WHERE id = 1 /* switchyard:route=primary */")
	b := cl.Classify("select *  from t where id=42")
	if a.Digest != b.Digest || a.DigestText != "select * from `t` where `id` = ?" || len(a.Digest) != 64 {
		t.Errorf("digests %q %q, text %q", a.Digest, b.Digest, a.DigestText)
	}
}

// literalVariants rewrites the literals of sql (and the case of names) so
// that NormalizeDigest usually cannot tell the results from sql.
func literalVariants(sql string) []string {
	var out []string
	for v := range 4 {
		var b strings.Builder
		l := lexer{s: sql}
		last := 0
		for {
			start := l.i
			t := l.next()
			if t.kind == tEOF {
				break
			}
			// next() skipped blanks and comments first: keep them.
			tstart := start + strings.Index(sql[start:], t.text)
			b.WriteString(sql[last:tstart])
			last = l.i
			switch {
			case t.kind == tNumber && v == 0:
				if t.text == "0" {
					b.WriteString("1")
				} else {
					b.WriteString("0")
				}
			case t.kind == tNumber && v == 1:
				b.WriteString("7")
			case t.kind == tString && v == 1:
				b.WriteString("'1'")
			case t.kind == tString && v == 2:
				b.WriteString("'OFF'")
			case (t.kind == tWord || t.kind == tIdent) && v == 3:
				b.WriteString(strings.ToUpper(t.text))
			case t.kind == tWord && v == 2 && (strings.EqualFold(t.text, "on") || strings.EqualFold(t.text, "true")):
				b.WriteString("off")
			default:
				b.WriteString(t.text)
			}
		}
		b.WriteString(sql[last:])
		out = append(out, b.String())
	}
	return out
}

// TestDigestCacheSound checks the claim the digest tier rests on: two
// statements with one digest get one class, unless the class is marked
// literal-dependent, or one of them has a literal the parser (and so the
// server) rejects.
func TestDigestCacheSound(t *testing.T) {
	_, recs := readGolden(t)
	extra := []string{"SET autocommit = 1", "SET @@autocommit = on", "USE shop", "SET autocommit = true, @a = 1",
		"SELECT LAST_INSERT_ID(0)", "SET STATEMENT x=1 FOR SET autocommit = 0"}
	cl := NewClassifier(nil)
	checked := 0
	for _, sql := range append(extra, func() (s []string) {
		for _, r := range recs {
			s = append(s, r.sql)
		}
		return
	}()...) {
		orig := cl.Classify(sql)
		for _, v := range literalVariants(sql) {
			if v == sql {
				continue
			}
			if norm, _ := parser.NormalizeDigest(v); norm != orig.DigestText {
				continue
			}
			checked++
			c := cl.Classify(v)
			if orig.Unparsed != c.Unparsed {
				// A literal the parser rejects (unknown collation, bad hex):
				// the server rejects it too, wherever it is sent.
				continue
			}
			a, b := orig, c
			a.Digest, a.DigestText, b.Digest, b.DigestText, a.Hint, b.Hint = "", "", "", "", 0, 0
			if !sameClass(a, b) && !(orig.litDep && c.litDep) {
				t.Errorf("same digest, different class, not marked literal-dependent:\n %q: %s %s %s\n %q: %s %s %s",
					sql, a.Route, a.Kind, a.Flags(), v, b.Route, b.Kind, b.Flags())
			}
		}
	}
	if checked < 300 {
		t.Errorf("only %d variants shared a digest", checked)
	}
}

// TestReadOnlyFunctions: functions listed as read-only do not keep a read
// on the primary; a bare entry matches any schema, a qualified one only
// calls qualified the same way.
func TestReadOnlyFunctions(t *testing.T) {
	cl := NewClassifierWith(nil, Options{ReadOnlyFunctions: NewFunctionSet([]string{"Price", "shop.tax"})})
	for sql, want := range map[string]Target{
		"SELECT price(1)":             Replica,
		"SELECT PRICE(1), x.price(2)": Replica,
		"SELECT shop.tax(1)":          Replica,
		"SELECT tax(1)":               Primary, // the session's schema is unknown
		"SELECT other.tax(1)":         Primary,
		"SELECT f_write(1)":           Primary,
		"SELECT price(1), f_write(1)": Primary,
		"SELECT NOW(), price(2)":      Replica,
	} {
		c := cl.Classify(sql)
		if c.Route != want || (want == Replica) != c.ReplicaSafe() {
			t.Errorf("%s: route %v, replica-safe %v; want %v", sql, c.Route, c.ReplicaSafe(), want)
		}
	}
}
