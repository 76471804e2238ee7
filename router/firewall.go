package router

import (
	"strings"

	"github.com/pingcap/tidb/pkg/parser"
)

// FirewallKey is what the query firewall knows a statement by: its digest
// text, which stands for every statement that differs only in literals.
// Two kinds of statement need more:
//
//   - Where a literal is SQL the server will run (text PREPARE ... FROM
//     '...', EXECUTE IMMEDIATE '...'), the digest hides what runs, so the
//     key is the exact text.
//   - A statement classified by the token scan has the digest of its
//     beginning only. One of at most maxParse bytes (scanned because other
//     big statements were being parsed at the time) is normalized whole, so
//     its key does not depend on the load. A longer one keeps the digest of
//     its beginning, which is only a safe key for a single statement: ok is
//     false for several (the end of the string could be anything).
//
// ok is false when the statement has no key the firewall may trust.
func FirewallKey(c *Class, sql string, maxParse int) (key string, ok bool) {
	text := c.DigestText
	if strings.Contains(text, "prepare ") || strings.Contains(text, "execute `immediate`") {
		return strings.TrimSpace(sql), true
	}
	if !strings.HasSuffix(text, truncatedMark) {
		return text, true
	}
	if maxParse <= 0 {
		maxParse = DefaultMaxParseSize
	}
	if len(sql) <= maxParse {
		norm, _ := parser.NormalizeDigest(sql)
		return norm, true
	}
	return text, c.Statements <= 1
}
