package router

import (
	"fmt"
	"testing"

	"github.com/pingcap/tidb/pkg/parser"
)

// Typical statements; %d is where applications vary a literal.
var benchStatements = []struct{ name, sql string }{
	{"point-select", "SELECT id, name, email FROM users WHERE id = %d"},
	{"wp-option", "SELECT option_value FROM wp_options WHERE option_name = 'option_%d' LIMIT 1"},
	{"insert", "INSERT INTO `wp_postmeta` (`post_id`, `meta_key`, `meta_value`) VALUES (%d, '_edit_lock', '1700000000:1')"},
	{"laravel-eager", "select `posts`.*, (select count(*) from `comments` where `posts`.`id` = `comments`.`post_id` and `comments`.`deleted_at` is null) as `comments_count` from `posts` where `posts`.`user_id` in (%d, 2, 3, 4, 5, 6, 7, 8, 9, 10) and `posts`.`deleted_at` is null order by `created_at` desc limit 15 offset 0"},
}

// BenchmarkClassify compares:
//   - nocache: parse every time (plus NormalizeDigest for the digest);
//   - digest-hit: the literal changes every time, so only the digest tier
//     hits and NormalizeDigest still runs;
//   - exact-hit: the same text again, which skips NormalizeDigest too.
func BenchmarkClassify(b *testing.B) {
	for _, s := range benchStatements {
		variants := make([]string, 1024)
		for i := range variants {
			variants[i] = fmt.Sprintf(s.sql, i+1)
		}
		b.Run(s.name+"/nocache", func(b *testing.B) {
			cl := NewClassifier(nil)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				cl.Classify(variants[i%len(variants)])
				i++
			}
		})
		b.Run(s.name+"/digest-hit", func(b *testing.B) {
			cl := NewClassifier(NewCache(4096))
			cl.Classify(variants[0])
			b.ReportAllocs()
			i := 1
			for b.Loop() {
				cl.Classify(variants[i%len(variants)])
				i++
			}
		})
		b.Run(s.name+"/exact-hit", func(b *testing.B) {
			cl := NewClassifier(NewCache(4096))
			cl.Classify(variants[0])
			cl.Classify(variants[0])
			b.ReportAllocs()
			for b.Loop() {
				cl.Classify(variants[0])
			}
		})
	}
}

// BenchmarkNormalizeDigest is the lexer pass a digest-tier hit still pays.
func BenchmarkNormalizeDigest(b *testing.B) {
	for _, s := range benchStatements {
		sql := fmt.Sprintf(s.sql, 42)
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				parser.NormalizeDigest(sql)
			}
		})
	}
}
