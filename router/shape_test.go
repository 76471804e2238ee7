package router

import (
	"strings"
	"testing"

	"github.com/pingcap/tidb/pkg/parser"
)

func shapeText(t testing.TB, sql string) (string, bool) {
	t.Helper()
	b, ok := shapeOf(nil, sql)
	return string(b), ok
}

func TestShapeOf(t *testing.T) {
	same := [][2]string{
		{"SELECT c FROM sbtest1 WHERE id=5", "SELECT c FROM sbtest1 WHERE id=123"},
		{"SELECT c FROM t WHERE id BETWEEN 1 AND 100", "SELECT c FROM t WHERE id BETWEEN 50 AND 149"},
		{"SELECT * FROM t WHERE s = 'a''b\\'c'", "SELECT * FROM t WHERE s = ''"},
		{"SELECT 1.5, -2", "SELECT 10.25, -7"},
		{"SELECT  1 \tFROM dual", "SELECT 2 FROM dual"},
		{"INSERT INTO t VALUES (1, 'x'), (2, 'y')", "INSERT INTO t VALUES (3, 'z'), (4, '')"},
	}
	for _, p := range same {
		a, aok := shapeText(t, p[0])
		b, bok := shapeText(t, p[1])
		if !aok || !bok || a != b {
			t.Errorf("%q and %q: shapes %q (%v) and %q (%v), want the same", p[0], p[1], a, aok, b, bok)
		}
	}
	different := [][2]string{
		{"SELECT c FROM t1 WHERE id=5", "SELECT c FROM t2 WHERE id=5"}, // digits in names are names
		{"SELECT a FROM t", "select a from t"},                         // case is kept
		{"SELECT 1 /* a */", "SELECT 1 /* b */"},                       // comments are kept
		{"/* switchyard:route=replica */ SELECT 1", "SELECT 1"},        // so are hints
		{"SELECT @a1", "SELECT @a2"},                                   // variables are names
		{"SELECT 1e5", "SELECT 1e6"},                                   // other notations kept
		{"SELECT \"a\"", "SELECT \"b\""},                               // double quotes kept
		{"SELECT `1`", "SELECT `2`"},                                   // quoted names kept
		{"SELECT 1 -- 2\n", "SELECT 1 -- 3\n"},                         // line comments kept
		{"SELECT 1 # 2\n, 3", "SELECT 1 # 2, 3\n"},                     // a line comment ends at the newline
		{"SELECT x IN (1, 2)", "SELECT x IN (1, 2, 3)"},                // list lengths kept
		{"SET autocommit=0", "SET autocommit = 0"},                     // spacing between tokens kept
		{"SELECT 1 ", "SELECT 1"},                                      // trailing space kept
		{"SELECT 1-1", "SELECT 1- 1"},
		{"SELECT 1 -- c\nFROM t", "SELECT 1 -- c FROM t"},            // a newline ends a comment
		{"SELECT a FROM t ORDER BY 1", "SELECT a FROM t ORDER BY 2"}, // column positions are kept
		{"SELECT a FROM t GROUP BY (1, 2)", "SELECT a FROM t GROUP BY (1, 3)"},
		{"SELECT t.1 FROM t", "SELECT t.2 FROM t"}, // t.1 is a column
	}
	for _, p := range different {
		a, aok := shapeText(t, p[0])
		b, bok := shapeText(t, p[1])
		if aok && bok && a == b {
			t.Errorf("%q and %q: the same shape %q", p[0], p[1], a)
		}
	}
	for _, sql := range []string{"SELECT 'open", "SELECT `open", "SELECT 1 /* open", "SELECT @'x'", "SELECT '\x01'", "SELECT \x02", "SELECT 1 /* \x01 */"} {
		if s, ok := shapeText(t, sql); ok {
			t.Errorf("%q: shape %q, want none", sql, s)
		}
	}
}

// canonical replaces a shape's markers by fixed literals, giving a text of
// the same shape: the statement as if sent with other values.
func canonical(shape string) string {
	return strings.NewReplacer(string(rune(shapeNumber)), "7", string(rune(shapeString)), "'00'").Replace(shape)
}

// TestShapeImpliesDigest is the property the cache relies on: the golden
// corpus, each statement sent again with other literal values (the same
// shape), has the same digest and, unless its class depends on literals,
// the same class.
func TestShapeImpliesDigest(t *testing.T) {
	_, recs := readGolden(t)
	cl := NewClassifier(nil)
	for _, r := range recs {
		checkShapeDigest(t, cl, r.sql)
	}
}

func checkShapeDigest(t *testing.T, cl *Classifier, sql string) {
	t.Helper()
	shape, ok := shapeText(t, sql)
	if !ok || len(sql) > maxExactKey {
		return
	}
	other := canonical(shape)
	if s2, ok := shapeText(t, other); !ok || s2 != shape {
		t.Fatalf("%q: its variant %q has shape %q, want %q", sql, other, s2, shape)
	}
	d1, _ := parser.NormalizeDigest(sql)
	d2, _ := parser.NormalizeDigest(other)
	if d1 != d2 {
		t.Fatalf("%q and %q have one shape but digests %q and %q", sql, other, d1, d2)
	}
	c1, c2 := cl.analyze(sql), cl.analyze(other)
	if !c1.litDep && !c2.litDep && !sameClass(c1, c2) {
		t.Fatalf("%q and %q have one shape but classes\n %+v\n %+v", sql, other, c1, c2)
	}
}

func FuzzShapeImpliesDigest(f *testing.F) {
	_, recs := readGolden(f)
	for _, r := range recs {
		f.Add(r.sql)
	}
	for _, s := range []string{"SELECT 1e+5", "SELECT .5", "SELECT 0x1F, X'0F', b'01', _utf8mb4'x'", "SELECT @@session.x1, @v:=1",
		"SELECT 1--1", "SELECT 'a\\'b'", "SELECT \"a\\\"b\"", "SELECT -- c\n1"} {
		f.Add(s)
	}
	cl := NewClassifier(nil)
	f.Fuzz(func(t *testing.T, sql string) {
		checkShapeDigest(t, cl, sql)
	})
}
