package router

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/pingcap/tidb/pkg/parser"
)

// Cache remembers classifications across sessions so a repeated statement is
// not parsed again. It has two tiers in one bounded map:
//
//   - by digest text: statements that differ only in literals share an
//     entry, unless their class depends on a literal (SET autocommit = 0/1,
//     USE with its case-sensitive name) or came from the token scan of an
//     unparsed statement; those are re-parsed. A literal
//     the parser rejects (a bad collation name) may get the class of its
//     valid siblings; the server rejects it wherever it goes.
//   - by shape (shape.go): the text with its literals replaced, a key
//     computed in one pass. Statements of one shape have one digest, so a
//     shape hit is a digest hit without NormalizeDigest; it holds the same
//     entry as the digest.
//   - by exact text: a hit skips NormalizeDigest too. BenchmarkClassify:
//     uncached 5-22µs, digest hit 1.3-4.8µs (almost all of it
//     NormalizeDigest), exact hit 65-240ns with no allocation. Only texts
//     seen twice in a row for their digest get in, so statements whose
//     literals vary (the common case without server-side prepares) do not
//     flood it.
//
// A full shard evicts arbitrary entries: statement shapes are few and
// long-lived, so the working set usually fits and LRU bookkeeping on every
// hit would cost more than it saves. Full is a number of entries or of
// bytes (bytesPerEntry on average): a client sending thousands of distinct
// 16 KB statements must not make the cache hold thousands of their texts.
type Cache struct {
	seed     maphash.Seed
	perShard int
	bytes    int // the budget of one shard
	shards   [cacheShards]cacheShard

	exactHits, digestHits, misses atomic.Uint64
}

const (
	cacheShards = 16
	// Longer texts are not kept by exact text (memory) and longer digests not
	// at all: such statements are rare and slow to parse either way.
	maxExactKey  = 4 << 10
	maxDigestKey = 16 << 10
	// bytesPerEntry is the average an entry may cost: a few hundred bytes
	// of text for typical statements, so the byte budget only binds when
	// texts are long.
	bytesPerEntry = 1 << 10
	// entryOverhead is what an entry costs besides its texts: map slot,
	// entry, Class.
	entryOverhead = 256
)

type cacheShard struct {
	mu    sync.RWMutex
	m     map[cacheKey]*cacheEntry
	bytes int // cost of the entries in m
}

type cacheKey struct {
	text string
	tier tier
}

type tier uint8

const (
	digestTier tier = iota
	exactTier
	shapeTier
)

type cacheEntry struct {
	c Class // a digest entry with c.litDep holds only the digest strings
	// last is the hash of the latest text seen with this digest: the
	// doorkeeper of the exact tier.
	last atomic.Uint64
}

// NewCache returns a cache holding about entries classifications.
func NewCache(entries int) *Cache {
	perShard := max(entries/cacheShards, 1)
	k := &Cache{seed: maphash.MakeSeed(), perShard: perShard, bytes: perShard * bytesPerEntry}
	for i := range k.shards {
		k.shards[i].m = make(map[cacheKey]*cacheEntry)
	}
	return k
}

// CacheStats counts lookups since the cache was made. Bytes is what its
// entries hold (texts plus an estimate of their overhead).
type CacheStats struct {
	ExactHits, DigestHits, Misses uint64
	Entries, Bytes                int
}

func (k *Cache) Stats() CacheStats {
	s := CacheStats{ExactHits: k.exactHits.Load(), DigestHits: k.digestHits.Load(), Misses: k.misses.Load()}
	for i := range k.shards {
		sh := &k.shards[i]
		sh.mu.RLock()
		s.Entries += len(sh.m)
		s.Bytes += sh.bytes
		sh.mu.RUnlock()
	}
	return s
}

func (k *Cache) get(key cacheKey, h uint64) *cacheEntry {
	sh := &k.shards[h%cacheShards]
	sh.mu.RLock()
	e := sh.m[key]
	sh.mu.RUnlock()
	return e
}

// cost is what an entry holds in memory. The digest text of an exact
// entry is shared with its digest entry; counting it twice errs on the
// safe side.
func (key cacheKey) cost(e *cacheEntry) int {
	return entryOverhead + len(key.text) + len(e.c.DigestText) + len(e.c.Digest) + len(e.c.Schema)
}

func (k *Cache) put(key cacheKey, h uint64, e *cacheEntry) {
	cost := key.cost(e)
	sh := &k.shards[h%cacheShards]
	sh.mu.Lock()
	if old, ok := sh.m[key]; ok {
		sh.bytes -= key.cost(old)
		delete(sh.m, key)
	}
	for old, oe := range sh.m {
		if len(sh.m) < k.perShard && sh.bytes+cost <= k.bytes {
			break
		}
		sh.bytes -= old.cost(oe)
		delete(sh.m, old)
	}
	sh.m[key] = e
	sh.bytes += cost
	sh.mu.Unlock()
}

func (k *Cache) classify(cl *Classifier, sql string) Class {
	exactOK := len(sql) <= maxExactKey
	var h uint64
	if exactOK {
		h = maphash.String(k.seed, sql)
		if e := k.get(cacheKey{sql, exactTier}, h); e != nil {
			k.exactHits.Add(1)
			return e.c.clone()
		}
	}
	var shape string
	var sh uint64
	if exactOK {
		b, ok := shapeOf(cl.shape[:0], sql)
		cl.shape = b[:0]
		if ok {
			// Looked up through a view of the classifier's scratch
			// buffer, which the lookup does not keep: a shape hit, the
			// common case for texts with new literals, allocates nothing.
			// Only a shape that may become a key is copied.
			view := unsafe.String(unsafe.SliceData(b), len(b))
			sh = maphash.String(k.seed, view)
			if e := k.get(cacheKey{view, shapeTier}, sh); e != nil {
				return k.digestHit(cl, sql, e, h, exactOK)
			}
			shape = string(b)
		}
	}
	norm, d := parser.NormalizeDigest(sql)
	if len(norm) > maxDigestKey {
		k.misses.Add(1)
		c := cl.analyze(sql)
		c.DigestText, c.Digest = norm, d.String()
		return c
	}
	dh := maphash.String(k.seed, norm)
	if e := k.get(cacheKey{norm, digestTier}, dh); e != nil {
		if shape != "" {
			k.put(cacheKey{shape, shapeTier}, sh, e)
		}
		return k.digestHit(cl, sql, e, h, exactOK)
	}
	k.misses.Add(1)
	c := cl.analyze(sql)
	c.DigestText, c.Digest = norm, d.String()
	e := &cacheEntry{c: c.clone()}
	if c.litDep {
		e.c = Class{litDep: true, DigestText: c.DigestText, Digest: c.Digest}
	}
	e.last.Store(h)
	k.put(cacheKey{norm, digestTier}, dh, e)
	if shape != "" {
		k.put(cacheKey{shape, shapeTier}, sh, e)
	}
	return c
}

// digestHit is the class of sql from the digest (or shape) entry e: the
// entry's, or, if its class depends on literals, sql's own with the
// entry's digest. A text seen twice in a row for its entry (h is its hash)
// joins the exact tier.
func (k *Cache) digestHit(cl *Classifier, sql string, e *cacheEntry, h uint64, exactOK bool) Class {
	again := exactOK && e.last.Swap(h) == h
	c := e.c
	if c.litDep {
		k.misses.Add(1)
		c = cl.analyze(sql)
		c.DigestText, c.Digest = e.c.DigestText, e.c.Digest
	} else {
		k.digestHits.Add(1)
	}
	if again {
		k.put(cacheKey{sql, exactTier}, h, &cacheEntry{c: c.clone()})
	}
	return c.clone()
}

// clone copies c so that the caller cannot change a cached *Autocommit.
func (c Class) clone() Class {
	if c.Autocommit != nil {
		v := *c.Autocommit
		c.Autocommit = &v
	}
	return c
}
