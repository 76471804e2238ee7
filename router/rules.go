package router

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/pingcap/tidb/pkg/parser"

	"switchyard/conf"
)

// Rule is a compiled query rule.
type Rule struct {
	Name   string
	Index  int    // position in the config, from 0
	Route  Target // Primary or Replica; NoTarget for an error rule
	Error  string // non-empty: answer with this, send nothing
	User   string // "" matches every user
	Schema string // "" matches every schema

	re     *regexp.Regexp
	digest [2]string // as written and normalized, compared with Class.DigestText
}

// Rules are the query rules in file order.
type Rules struct {
	list []Rule
}

// NewRules compiles rules. A digest rule's text may be copied from
// stats_query_digest or written as SQL ("SELECT * FROM t WHERE id = 1"),
// which is normalized the way statements are. Both forms are kept because
// normalizing is not idempotent: "( ... )" becomes "( . . . )".
func NewRules(rules []conf.QueryRule) (*Rules, error) {
	rs := &Rules{list: make([]Rule, 0, len(rules))}
	for i, q := range rules {
		r := Rule{Name: q.Name, Index: i, Error: q.Error, User: q.User, Schema: q.Schema}
		switch {
		case q.Error != "":
		case q.Route == conf.RoutePrimary:
			r.Route = Primary
		case q.Route == conf.RouteReplica:
			r.Route = Replica
		default:
			return nil, fmt.Errorf("query rule %q: route %q: want %s or %s", q.Name, q.Route, conf.RoutePrimary, conf.RouteReplica)
		}
		switch {
		case q.Match != "" && q.Digest == "":
			re, err := regexp.Compile(q.Match)
			if err != nil {
				return nil, fmt.Errorf("query rule %q: match: %v", q.Name, err)
			}
			r.re = re
		case q.Digest != "" && q.Match == "":
			norm, _ := parser.NormalizeDigest(q.Digest)
			r.digest = [2]string{strings.TrimSpace(q.Digest), norm}
		default:
			return nil, fmt.Errorf("query rule %q: needs exactly one of match and digest", q.Name)
		}
		rs.list = append(rs.list, r)
	}
	return rs, nil
}

// Len is the number of rules.
func (rs *Rules) Len() int {
	if rs == nil {
		return 0
	}
	return len(rs.list)
}

// Match returns the first rule, in file order, that matches the statement:
// its regexp against sql, or its digest against digestText, and its user and
// schema filters. A nil *Rules matches nothing.
func (rs *Rules) Match(sql, digestText, user, schema string) (*Rule, bool) {
	if rs == nil {
		return nil, false
	}
	for i := range rs.list {
		r := &rs.list[i]
		if r.User != "" && r.User != user || r.Schema != "" && r.Schema != schema {
			continue
		}
		if r.re != nil && r.re.MatchString(sql) || r.re == nil && (r.digest[0] == digestText || r.digest[1] == digestText) {
			return r, true
		}
	}
	return nil, false
}
