package router

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// conservative says what makes scan, the classification of a statement
// too big to parse, no less safe than parsed, the parser's: the same
// session effects, a replica only where the parser says replica, and every
// flag that keeps a statement on the primary or pins it. (Of the number of
// statements only "several" counts: it pins session state they set.)
func conservative(scan, parsed Class) error {
	switch {
	case parsed.Route == Primary && scan.Route != Primary:
		return fmt.Errorf("route %s, the parser's %s", scan.Route, parsed.Route)
	case scan.Kind != parsed.Kind && !(scan.Kind == Write && parsed.Kind == Read):
		return fmt.Errorf("kind %s, the parser's %s", scan.Kind, parsed.Kind)
	case (scan.Statements > 1) != (parsed.Statements > 1) || scan.StartsTx != parsed.StartsTx || scan.EndsTx != parsed.EndsTx ||
		scan.ReadOnlyTx != parsed.ReadOnlyTx || scan.DropsTempTable != parsed.DropsTempTable ||
		scan.Schema != parsed.Schema || scan.Hint != parsed.Hint:
		return fmt.Errorf("session effects [%s], the parser's [%s]", scan.Flags(), parsed.Flags())
	case (scan.Autocommit == nil) != (parsed.Autocommit == nil) ||
		scan.Autocommit != nil && *scan.Autocommit != *parsed.Autocommit:
		return fmt.Errorf("autocommit differs: [%s], the parser's [%s]", scan.Flags(), parsed.Flags())
	}
	// StoredFunc counts in reads only (their route, and whether they
	// wrote); the scan does not guess it elsewhere.
	flags := func(c Class) []bool {
		return []bool{c.Locking, c.SideEffects, c.StoredFunc && parsed.Kind == Read, c.ServerVar, c.SetsUserVar,
			c.ReadsUserVar, c.CreatesTempTable, c.UsesLock, c.UsesFoundRows, c.UsesLastInsertID, c.CalcFoundRows}
	}
	s, p := flags(scan), flags(parsed)
	for i := range p {
		if p[i] && !s[i] {
			return fmt.Errorf("flags [%s] lack some of the parser's [%s]", scan.Flags(), parsed.Flags())
		}
	}
	return nil
}

// TestScanClassifyAgreesWithParser runs the scan over the golden corpus:
// wherever the parser reads a statement, the scan's class must be the
// same or more conservative. (What the parser rejects it classifies by a
// token scan too, to the primary; the scan may send such a read to a
// replica when it proves it safe, e.g. FOR SYSTEM_TIME.)
func TestScanClassifyAgreesWithParser(t *testing.T) {
	_, recs := readGolden(t)
	cl := NewClassifier(nil)
	same := 0
	for _, r := range recs {
		parsed := cl.Classify(r.sql)
		if parsed.Unparsed {
			continue
		}
		scan := scanClassify(r.sql)
		scan.Hint = findHint(r.sql)
		if err := conservative(scan, parsed); err != nil {
			t.Errorf("%s:%d: %q: %v", goldenFile, r.line, r.sql, err)
		}
		if scan.Route == parsed.Route {
			same++
		}
	}
	t.Logf("%d of %d parsed statements routed alike by the scan", same, len(recs))
}

// bigPad returns n bytes of what makes statements big in practice.
func bigPad(kind string, n int) string {
	switch kind {
	case "ids": // an IN list
		return "1" + strings.Repeat(",123457", n/7)
	case "rows": // a multi-row VALUES list
		return "(1,'x')" + strings.Repeat(",(2,'abcdefgh')", n/15)
	case "blob": // the inside of a string literal
		return strings.Repeat("x", n)
	case "sum": // the densest expression
		return "1" + strings.Repeat("+1", n/2)
	}
	panic(kind)
}

// TestScanClassifyBigStatements classifies statements over
// limits.max_parse_size as the proxy does (token scan) and, for
// comparison, with the parser: the scan's class is the one in the table,
// never less conservative than the parser's, and its digest covers the
// statement's beginning.
func TestScanClassifyBigStatements(t *testing.T) {
	tests := []struct {
		sql, pad string
		route    Target
		kind     Kind
		flags    string
	}{
		{"SELECT * FROM t WHERE id IN (%s)", "ids", Replica, Read, ""},
		{"SELECT COUNT(*), MAX(a), CONCAT(b, 'x'), CAST(c AS DECIMAL(10,2)) FROM t WHERE id IN (%s) GROUP BY b", "ids", Replica, Read, ""},
		{"select a from t where b like 'x%%' and id in (%s) and exists (select 1 from u where u.id = t.id) order by (a) limit 5", "ids", Replica, Read, ""},
		{"WITH c AS (SELECT id FROM t WHERE id IN (%s)) SELECT * FROM c JOIN u USING (id)", "ids", Replica, Read, ""},
		{"SELECT '%s'", "blob", Replica, Read, ""},
		{"SELECT %s", "sum", Replica, Read, ""},
		{"/* %s */ SELECT 1", "blob", Replica, Read, ""},
		{"SET STATEMENT max_statement_time=10 FOR SELECT * FROM t WHERE id IN (%s)", "ids", Replica, Read, ""},
		{"SELECT * FROM t WHERE id IN (%s) FOR UPDATE", "ids", Primary, Read, "locking"},
		{"SELECT * FROM t WHERE id IN (%s) LOCK IN SHARE MODE", "ids", Primary, Read, "locking"},
		{"SELECT GET_LOCK('x', 1) FROM t WHERE id IN (%s)", "ids", Primary, Read, "side_effects uses_lock"},
		{"SELECT shop.f(id) FROM t WHERE id IN (%s)", "ids", Primary, Read, "stored_func"},
		{"SELECT myfunc(id) FROM t WHERE id IN (%s)", "ids", Primary, Read, "stored_func"},
		{"SELECT `count`(id) FROM t WHERE id IN (%s)", "ids", Primary, Read, "stored_func"},
		{"SELECT @a := id FROM t WHERE id IN (%s)", "ids", Primary, Read, "sets_user_var"},
		{"SELECT id FROM t WHERE id IN (%s) AND a = @x", "ids", Primary, Read, "reads_user_var"},
		{"SELECT @@server_id, id FROM t WHERE id IN (%s)", "ids", Primary, Read, "server_var"},
		{"SELECT LAST_INSERT_ID(), id FROM t WHERE id IN (%s)", "ids", Primary, Read, "uses_last_insert_id"},
		{"SELECT NEXT VALUE FOR s, id FROM t WHERE id IN (%s)", "ids", Primary, Read, "side_effects"},
		{"SELECT SQL_CALC_FOUND_ROWS * FROM t WHERE id IN (%s) LIMIT 10", "ids", Replica, Read, "calc_found_rows"},
		{"SELECT * FROM t WHERE id IN (%s) /* switchyard:route=primary */", "ids", Replica, Read, "hint=primary"},
		{"INSERT INTO t (a, b) VALUES %s", "rows", Primary, Write, ""},
		{"UPDATE t SET b = '%s' WHERE id = 1", "blob", Primary, Write, ""},
		{"DELETE FROM t WHERE id IN (%s)", "ids", Primary, Write, ""},
		{"WITH c AS (SELECT id FROM t WHERE id IN (%s)) DELETE FROM t WHERE id IN (SELECT id FROM c)", "ids", Primary, Write, ""},
		{"BEGIN; INSERT INTO t (a, b) VALUES %s; COMMIT", "rows", Primary, Write, "multi ends_tx not_only_reads"},
		{"SET autocommit = 0; SELECT * FROM t WHERE id IN (%s)", "ids", Primary, Set, "multi autocommit=0 not_only_reads"},
		{"CREATE TEMPORARY TABLE tt AS SELECT * FROM t WHERE id IN (%s)", "ids", Primary, DDL, "creates_temp_table"},
		{"/* %s */ SHOW WARNINGS", "blob", Primary, Show, "uses_found_rows"},
		{"/* %s */ FLUSH TABLES WITH READ LOCK", "blob", Primary, LockTables, "ends_tx"},
		{"/* %s */ COMMIT AND CHAIN", "blob", Primary, Commit, "ends_tx starts_tx"},
	}
	scanner := NewClassifier(NewCache(64)) // default limits: these are all too big to parse
	parser := NewClassifier(nil)
	parser.SetParseLimit(NewParseLimit(1 << 30))
	for _, tc := range tests {
		sql := fmt.Sprintf(tc.sql, bigPad(tc.pad, DefaultMaxParseSize))
		name := tc.sql
		got := scanner.Classify(sql)
		if got.Route != tc.route || got.Kind != tc.kind || got.Flags() != tc.flags {
			t.Errorf("%s:\n got  %s %s [%s]\n want %s %s [%s]", name, got.Route, got.Kind, got.Flags(), tc.route, tc.kind, tc.flags)
		}
		// NormalizeDigest writes "1+1" as "? + ?": at most twice the text.
		if !strings.HasSuffix(got.DigestText, truncatedMark) || len(got.DigestText) > 2*digestPrefix+len(truncatedMark) {
			t.Errorf("%s: digest text %.60q... (%d bytes), want the statement's beginning, marked truncated",
				name, got.DigestText, len(got.DigestText))
		}
		parsed := parser.Classify(sql)
		if parsed.Unparsed || strings.HasSuffix(parsed.DigestText, truncatedMark) {
			t.Errorf("%s: the parser did not read it", name)
			continue
		}
		if err := conservative(got, parsed); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestPrefixDigest(t *testing.T) {
	a, _ := prefixDigest("SELECT * FROM t WHERE id IN (" + bigPad("ids", 1<<20) + ")")
	text, digest := prefixDigest("select *  from t where id in (7" + bigPad("ids", 600<<10) + ", 8)")
	if a != text || !strings.HasPrefix(text, "select * from `t` where `id` in (") || !strings.HasSuffix(text, truncatedMark) {
		t.Errorf("big IN lists: digest texts %.80q and %.80q, want one, from the beginning, marked truncated", a, text)
	}
	if _, d := prefixDigest("select * from t where id in (8" + bigPad("ids", 600<<10) + ")"); d != digest || len(d) != 64 {
		t.Errorf("digests %q and %q differ", d, digest)
	}
	// A literal across the prefix's end is left out whole, not cut.
	if text, _ := prefixDigest("SELECT LENGTH('" + bigPad("blob", 1<<20) + "')"); text != "select `length` ("+truncatedMark {
		t.Errorf("big literal: digest text %.80q", text)
	}
	// Up to digestPrefix, and when only blanks and comments follow it, the
	// digest is NormalizeDigest's.
	for _, sql := range []string{"SELECT * FROM t WHERE a = 'x'", "SELECT 1 /* " + bigPad("blob", 8<<10) + " */"} {
		text, digest := prefixDigest(sql)
		c := NewClassifier(nil).Classify(sql)
		if text != c.DigestText || digest != c.Digest {
			t.Errorf("%.40q: digest %q %q, want %q %q", sql, text, digest, c.DigestText, c.Digest)
		}
	}
}

func TestParseLimit(t *testing.T) {
	pl := NewParseLimit(100 << 10)
	switch {
	case !pl.admit(50 << 10):
		t.Fatal("50 KiB refused with nothing in flight")
	case pl.admit(60 << 10):
		t.Fatal("60 KiB admitted beside 50 KiB: over 100 KiB in flight")
	case !pl.admit(smallStatement):
		t.Fatal("a small statement refused: those are always parsed")
	case pl.admit(101 << 10):
		t.Fatal("101 KiB admitted: over the maximum")
	}
	pl.done(50 << 10)
	pl.done(smallStatement)
	if !pl.admit(100<<10) || pl.inFlight.Load() != 100<<10 {
		t.Fatalf("100 KiB refused, or the accounting is off: %d in flight", pl.inFlight.Load())
	}
	pl.done(100 << 10)

	// A classifier whose limit is taken by another parse scans instead;
	// the route of a plain read is the same either way.
	cl := NewClassifier(NewCache(64))
	cl.SetParseLimit(pl)
	sql := "SELECT * FROM t WHERE id IN (" + bigPad("ids", 10<<10) + ")"
	if c := cl.Classify(sql); c.Route != Replica || strings.HasSuffix(c.DigestText, truncatedMark) {
		t.Fatalf("parsed: %s, digest %.40q", c.Route, c.DigestText)
	}
	pl.admit(95 << 10)
	if c := cl.Classify(sql); c.Route != Replica || !strings.HasSuffix(c.DigestText, truncatedMark) {
		t.Fatalf("with the limit taken: %s, digest %.40q; want a scan", c.Route, c.DigestText)
	}
	pl.done(95 << 10)
	if n := pl.inFlight.Load(); n != 0 {
		t.Fatalf("%d bytes left in flight", n)
	}
}

// heapAfterGC is the live heap, in bytes. Two collections: NormalizeDigest
// keeps its buffers in a sync.Pool of the parser package, which the second
// one empties.
func heapAfterGC() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// TestClassifierKeepsNothingBig: a pooled classifier that parsed a big
// statement must not keep its text, AST, scanner buffers or parse stack
// until it is next used.
func TestClassifierKeepsNothingBig(t *testing.T) {
	cl := NewClassifier(nil)
	cl.Classify("SELECT 1")
	sql := "SELECT " + bigPad("sum", 200<<10) // parsed: under the maximum
	before := heapAfterGC()
	if c := cl.Classify(sql); strings.HasSuffix(c.DigestText, truncatedMark) {
		t.Fatal("the statement was scanned, not parsed")
	}
	kept := heapAfterGC() - before
	runtime.KeepAlive(cl)
	runtime.KeepAlive(sql)
	if kept > 1<<20 {
		t.Errorf("the classifier keeps %d bytes after parsing a %d-byte statement", kept, len(sql))
	}
}

// TestScanAllocations: classifying a statement too big to parse allocates
// a constant amount (the digest of its first 4 KiB), not a multiple of it.
func TestScanAllocations(t *testing.T) {
	for _, pad := range []string{"sum", "ids", "blob"} {
		sql := "SELECT " + bigPad(pad, 2<<20)
		if pad == "ids" {
			sql = "SELECT * FROM t WHERE id IN (" + bigPad(pad, 2<<20) + ")"
		}
		cl := NewClassifier(NewCache(64))
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		const runs = 5
		for range runs {
			cl.Classify(sql)
		}
		runtime.ReadMemStats(&after)
		perStatement := (after.TotalAlloc - before.TotalAlloc) / runs
		t.Logf("%s: %d bytes allocated per %d-byte statement", pad, perStatement, len(sql))
		// The digest of 4 KiB of "1+1+..." is the most: about 50 KB, and
		// up to 270 KB when a collection empties NormalizeDigest's pool.
		if perStatement > 1<<20 {
			t.Errorf("%s: %d bytes allocated per %d-byte statement, want a constant under 1 MiB", pad, perStatement, len(sql))
		}
	}
}

// BenchmarkClassifyBig: a statement over limits.max_parse_size, scanned;
// "parsed" is what the parser would cost for the same text.
func BenchmarkClassifyBig(b *testing.B) {
	for _, size := range []int{256 << 10, 2 << 20} {
		for _, pad := range []string{"sum", "ids"} {
			sql := "SELECT * FROM t WHERE id IN (" + bigPad(pad, size) + ")"
			for _, mode := range []string{"scan", "parsed"} {
				b.Run(fmt.Sprintf("%s/%dKiB/%s", pad, size>>10, mode), func(b *testing.B) {
					cl := NewClassifier(nil)
					if mode == "parsed" {
						cl.SetParseLimit(NewParseLimit(1 << 30))
					} else {
						cl.SetParseLimit(NewParseLimit(size / 2))
					}
					b.SetBytes(int64(len(sql)))
					b.ReportAllocs()
					for b.Loop() {
						cl.Classify(sql)
					}
				})
			}
		}
	}
}
