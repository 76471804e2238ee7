package router

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the headers of testdata/golden.sql")

const goldenFile = "testdata/golden.sql"

type goldenRecord struct {
	line   int // of the header, from 1
	header string
	sql    string
}

// readGolden splits the corpus: a record is a "-- route:" header line and
// the statement after it; "--- " lines are notes.
func readGolden(t testing.TB) (lines []string, recs []goldenRecord) {
	data, err := os.ReadFile(goldenFile)
	if err != nil {
		t.Fatal(err)
	}
	lines = strings.Split(string(data), "\n")
	var body []string
	flush := func() {
		if len(recs) > 0 {
			recs[len(recs)-1].sql = strings.TrimRight(strings.Join(body, "\n"), "\n")
		}
		body = body[:0]
	}
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "-- route:"):
			flush()
			recs = append(recs, goldenRecord{line: i + 1, header: l})
		case strings.HasPrefix(l, "--- "):
		default:
			body = append(body, l)
		}
	}
	flush()
	return lines, recs
}

func goldenHeader(c Class) string {
	h := fmt.Sprintf("-- route: %s | kind: %s", c.Route, c.Kind)
	if f := c.Flags(); f != "" {
		h += " | flags: " + f
	}
	return h
}

func TestGolden(t *testing.T) {
	lines, recs := readGolden(t)
	if len(recs) < 300 {
		t.Errorf("golden corpus has %d records, want at least 300", len(recs))
	}
	plain, cached := NewClassifier(nil), NewClassifier(NewCache(1024))
	for _, r := range recs {
		c := plain.Classify(r.sql)
		got := goldenHeader(c)
		// Three passes through the cache: miss, digest hit, exact hit.
		for range 3 {
			if cc := cached.Classify(r.sql); !sameClass(c, cc) {
				t.Errorf("%s:%d: cached class differs:\n uncached %+v\n cached   %+v", goldenFile, r.line, c, cc)
			}
		}
		if *update {
			lines[r.line-1] = got
			continue
		}
		if got != r.header {
			t.Errorf("%s:%d: %q\n got  %s\n want %s", goldenFile, r.line, r.sql, got, r.header)
		}
	}
	if *update {
		if err := os.WriteFile(goldenFile, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func sameClass(a, b Class) bool {
	if (a.Autocommit == nil) != (b.Autocommit == nil) || a.Autocommit != nil && *a.Autocommit != *b.Autocommit {
		return false
	}
	a.Autocommit, b.Autocommit = nil, nil
	return a == b
}
