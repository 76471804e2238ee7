package router

import (
	"testing"

	"switchyard/conf"
)

func TestRules(t *testing.T) {
	rs, err := NewRules([]conf.QueryRule{
		{Name: "no-drop", Match: `(?i)^\s*drop\s+(table|database)`, Error: "DROP is not allowed through the proxy"},
		{Name: "reports-app", Match: `(?i)^\s*select .* from reports`, User: "app", Route: conf.RouteReplica},
		{Name: "reports-shop", Match: `(?i)^\s*select .* from reports`, Schema: "shop", Route: conf.RoutePrimary},
		{Name: "by-digest", Digest: "SELECT * FROM orders WHERE id = 5", Route: conf.RoutePrimary},
		{Name: "by-normalized-digest", Digest: "select `a` from `t` where `b` in ( ... )", Route: conf.RouteReplica},
	})
	if err != nil {
		t.Fatal(err)
	}
	cl := NewClassifier(nil)
	tests := []struct {
		sql, user, schema string
		want              string // rule name, "" for none
	}{
		{"DROP TABLE users", "app", "shop", "no-drop"},
		{"  drop database shop", "", "", "no-drop"},
		{"DROP INDEX i ON t", "app", "shop", ""},
		{"SELECT * FROM reports WHERE day = 1", "app", "shop", "reports-app"},
		{"SELECT * FROM reports WHERE day = 1", "other", "shop", "reports-shop"},
		{"SELECT * FROM reports WHERE day = 1", "other", "crm", ""},
		{"select * from orders where id=77", "x", "y", "by-digest"},
		{"SELECT a FROM t WHERE b IN (1, 2, 3)", "x", "y", "by-normalized-digest"},
		{"SELECT a FROM t WHERE c IN (1, 2, 3)", "x", "y", ""},
	}
	for _, tc := range tests {
		c := cl.Classify(tc.sql)
		r, ok := rs.Match(tc.sql, c.DigestText, tc.user, tc.schema)
		got := ""
		if ok {
			got = r.Name
		}
		if got != tc.want {
			t.Errorf("%q user=%s schema=%s: rule %q, want %q", tc.sql, tc.user, tc.schema, got, tc.want)
		}
	}
	if r, _ := rs.Match("DROP TABLE t", "", "", ""); r.Error == "" || r.Route != NoTarget || r.Index != 0 {
		t.Errorf("error rule compiled as %+v", r)
	}
	var none *Rules
	if _, ok := none.Match("SELECT 1", "select ?", "", ""); ok || none.Len() != 0 {
		t.Error("nil Rules matched")
	}
}

func TestRulesInvalid(t *testing.T) {
	for _, q := range []conf.QueryRule{
		{Name: "bad-re", Match: "(", Route: conf.RoutePrimary},
		{Name: "both", Match: "x", Digest: "x", Route: conf.RoutePrimary},
		{Name: "neither", Route: conf.RoutePrimary},
		{Name: "no-route", Match: "x"},
	} {
		if _, err := NewRules([]conf.QueryRule{q}); err == nil {
			t.Errorf("%s: no error", q.Name)
		}
	}
}
