package router

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func TestCacheTiers(t *testing.T) {
	k := NewCache(1024)
	cl := NewClassifier(k)
	cl.Classify("SELECT * FROM t WHERE id = 1") // miss
	cl.Classify("SELECT * FROM t WHERE id = 2") // shape hit, new text
	cl.Classify("SELECT * FROM t WHERE id = 2") // shape hit, seen again: admitted
	cl.Classify("SELECT * FROM t WHERE id = 2") // exact hit
	cl.Classify("select * from t where id = 3") // digest hit: another shape, the same digest
	s := k.Stats()
	// Entries: the digest, two shapes, one exact text.
	if s.Misses != 1 || s.DigestHits != 3 || s.ExactHits != 1 || s.Entries != 4 {
		t.Errorf("stats %+v, want 1 miss, 3 digest hits, 1 exact hit, 4 entries", s)
	}
}

func TestCacheLiteralDependent(t *testing.T) {
	k := NewCache(1024)
	a, b := NewClassifier(k), NewClassifier(k)
	for range 3 {
		for _, tc := range []struct {
			sql string
			on  bool
		}{{"SET autocommit=0", false}, {"SET autocommit=1", true}, {"SET autocommit=1", true}, {"SET autocommit=0", false}} {
			for _, cl := range []*Classifier{a, b} {
				c := cl.Classify(tc.sql)
				if c.Autocommit == nil || *c.Autocommit != tc.on {
					t.Fatalf("%q: autocommit %v", tc.sql, c.Autocommit)
				}
				*c.Autocommit = !tc.on // must not reach the cache
			}
		}
	}
	for _, db := range []string{"Shop", "shop", "SHOP", "shop"} {
		if got := a.Classify("USE " + db).Schema; got != db {
			t.Errorf("USE %s: schema %q", db, got)
		}
	}
}

func TestCacheBounded(t *testing.T) {
	k := NewCache(64)
	cl := NewClassifier(k)
	for i := range 2000 {
		cl.Classify(fmt.Sprintf("SELECT c%d FROM t WHERE id = %d", i, i))
	}
	if n := k.Stats().Entries; n > 64 {
		t.Errorf("%d entries, want at most 64", n)
	}
}

// TestCacheBoundedBytes: long statements fill the cache's byte budget
// before its entry count, so distinct 12 KB statements cannot make a cache
// of 10,000 entries hold 10,000 of their digest texts (120 MB).
func TestCacheBoundedBytes(t *testing.T) {
	const entries = 10000
	k := NewCache(entries)
	cl := NewClassifier(k)
	columns := strings.Repeat("some_long_column_name, ", 12<<10/23)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range 1500 {
		cl.Classify(fmt.Sprintf("SELECT %sc%d FROM t WHERE id = 1", columns, i))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	s := k.Stats()
	budget := entries * bytesPerEntry
	if s.Bytes > budget+2*(entryOverhead+3*maxDigestKey) {
		t.Errorf("the cache holds %d bytes in %d entries; want at most about %d", s.Bytes, s.Entries, budget)
	}
	if held := int64(after.HeapAlloc) - int64(before.HeapAlloc); held > 2*int64(budget) {
		t.Errorf("the heap grew by %d bytes for a cache of %d bytes", held, s.Bytes)
	}
	runtime.KeepAlive(k)
}

// TestCacheConcurrent is for -race: sessions share a cache, each with its
// own parser.
func TestCacheConcurrent(t *testing.T) {
	k := NewCache(128)
	stmts := []string{"SELECT 1", "SELECT * FROM t WHERE id = 3", "SET autocommit=0", "UPDATE t SET a = 1",
		"BEGIN", "COMMIT", "USE shop", "SELECT GET_LOCK('x', 1)"}
	want := make([]Class, len(stmts))
	for i, s := range stmts {
		want[i] = NewClassifier(nil).Classify(s)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			cl := NewClassifier(k)
			for i := range 500 {
				j := (i + g) % len(stmts)
				if c := cl.Classify(stmts[j]); !sameClass(c, want[j]) {
					t.Errorf("%q: cached class differs", stmts[j])
					return
				}
				cl.Classify(fmt.Sprintf("SELECT * FROM t%d", i%300)) // churn
			}
		})
	}
	wg.Wait()
}
