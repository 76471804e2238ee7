package router

import (
	"errors"
	"testing"
)

func TestParseKill(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		want Kill
		code uint16 // of the KillError; 0 with msg "": no error
		bad  bool
	}{
		{sql: "KILL 5", want: Kill{ID: 5}},
		{sql: "kill connection 12;", want: Kill{ID: 12}},
		{sql: "KILL QUERY 7", want: Kill{Query: true, ID: 7}},
		{sql: "KILL HARD QUERY 7", want: Kill{Query: true, ID: 7}},
		{sql: "KILL SOFT CONNECTION 8", want: Kill{ID: 8}},
		{sql: "/* ctrl-c */ KILL QUERY 9", want: Kill{Query: true, ID: 9}},
		{sql: "KILL (10)", want: Kill{ID: 10}},
		{sql: "KILL CONNECTION_ID()", want: Kill{Self: true}},
		{sql: "KILL QUERY connection_id()", want: Kill{Query: true, Self: true}},
		{sql: "KILL (SELECT 1) + LASTVAL(s)", code: 1970, bad: true},
		{sql: "KILL f(1)", code: 1970, bad: true},
		{sql: "KILL LASTVAL(s)", code: 1970, bad: true},
		{sql: "KILL (SELECT a FROM t)", code: 1970, bad: true},
		{sql: "KILL NEXT VALUE FOR s", code: 1970, bad: true},
		// Expressions MariaDB evaluates: the proxy has a server evaluate
		// them (mtr's sp-bugs: 0, so 1094 Unknown thread id).
		{sql: "KILL @id", want: Kill{Expr: "@id"}},
		{sql: "KILL QUERY 1 + 1;", want: Kill{Query: true, Expr: "1 + 1"}},
		{sql: "KILL  (('x' IN ( SELECT 1)) MOD 44)", want: Kill{Expr: "(('x' IN ( SELECT 1)) MOD 44)"}},
		{sql: "KILL CONNECTION_ID() + 0", want: Kill{Expr: "CONNECTION_ID() + 0"}},
		{sql: "KILL ABS(-5)", want: Kill{Expr: "ABS(-5)"}},
		{sql: "KILL USER 'app'", want: Kill{ByUser: true, User: KillUser{Name: "app"}}},
		{sql: "kill hard query user test2@nohost", want: Kill{Query: true, ByUser: true, User: KillUser{Name: "test2", Host: "nohost"}}},
		{sql: "KILL SOFT CONNECTION USER test2", want: Kill{ByUser: true, User: KillUser{Name: "test2"}}},
		{sql: "KILL USER 'a b'@'10.0.0.1';", want: Kill{ByUser: true, User: KillUser{Name: "a b", Host: "10.0.0.1"}}},
		{sql: "KILL USER `app`@`%`", want: Kill{ByUser: true, User: KillUser{Name: "app"}}},
		{sql: "KILL USER app @ localhost", want: Kill{ByUser: true, User: KillUser{Name: "app", Host: "localhost"}}},
		{sql: "KILL QUERY USER CURRENT_USER()", want: Kill{Query: true, ByUser: true, User: KillUser{Current: true}}},
		{sql: "KILL USER CURRENT_USER", want: Kill{ByUser: true, User: KillUser{Current: true}}},
		{sql: "KILL USER", code: 1064, bad: true},
		{sql: "KILL USER app, other", code: 1064, bad: true},
		{sql: "KILL QUERY ID 5", want: Kill{Query: true, QueryID: true, ID: 5}},
		{sql: "KILL HARD QUERY ID @id", want: Kill{Query: true, QueryID: true, Expr: "@id"}},
		// MariaDB reads USER after QUERY ID as a column: its 1054.
		{sql: "kill query id user 'foo'", want: Kill{Query: true, QueryID: true, Expr: "user 'foo'"}},
		{sql: "KILL 5; SELECT 1", bad: true},
		{sql: "KILL", code: 1064, bad: true},
		{sql: "SELECT 1; KILL 5", bad: true},
	} {
		got, err := ParseKill(tc.sql)
		var ke *KillError
		switch {
		case tc.bad && !errors.As(err, &ke):
			t.Errorf("%s: %+v, %v; want a KillError", tc.sql, got, err)
		case tc.bad && ke.Code != tc.code:
			t.Errorf("%s: code %d, want %d", tc.sql, ke.Code, tc.code)
		case !tc.bad && (err != nil || got != tc.want):
			t.Errorf("%s: %+v, %v; want %+v", tc.sql, got, err, tc.want)
		}
	}
}

func TestRewriteConnectionID(t *testing.T) {
	for sql, want := range map[string]string{
		"SELECT CONNECTION_ID()":                                              "SELECT 42 AS `CONNECTION_ID()`",
		"select connection_id(), 1":                                           "select 42 AS `connection_id()`, 1",
		"SELECT 1, CONNECTION_ID() FROM t":                                    "SELECT 1, 42 AS `CONNECTION_ID()` FROM t",
		"SELECT CONNECTION_ID() AS id":                                        "SELECT 42 AS id",
		"SELECT CONNECTION_ID() INTO @id":                                     "SELECT 42 AS `CONNECTION_ID()` INTO @id",
		"SELECT * FROM p WHERE id = CONNECTION_ID()":                          "SELECT * FROM p WHERE id = 42",
		"SELECT a FROM t WHERE x IN (1, CONNECTION_ID())":                     "SELECT a FROM t WHERE x IN (1, 42)",
		"SELECT a FROM t ORDER BY a, CONNECTION_ID()":                         "SELECT a FROM t ORDER BY a, 42",
		"SELECT IF(CONNECTION_ID() > 0, 1, 0)":                                "SELECT IF(42 > 0, 1, 0) AS `IF(CONNECTION_ID() > 0, 1, 0)`",
		"select @a - connection_id();":                                        "select @a - 42 AS `@a - connection_id()`;",
		"SELECT @@pseudo_thread_id, 1 + @@session.pseudo_thread_id x":         "SELECT 42 AS `@@pseudo_thread_id`, 1 + 42 x",
		"SELECT CONNECTION_ID() `id`, CONNECTION_ID() 'i', (CONNECTION_ID())": "SELECT 42 `id`, 42 'i', (42) AS `(CONNECTION_ID())`",
		"SELECT CONNECTION_ID() DIV 2 FROM t":                                 "SELECT 42 DIV 2 AS `CONNECTION_ID() DIV 2` FROM t",
		"SELECT DISTINCT CONNECTION_ID()":                                     "SELECT DISTINCT 42 AS `CONNECTION_ID()`",
		"SET @@pseudo_thread_id = 5":                                          "SET @@pseudo_thread_id = 5",
		"SELECT a FROM t WHERE b = (SELECT CONNECTION_ID())":                  "SELECT a FROM t WHERE b = (SELECT 42)",
		"SELECT 'CONNECTION_ID()', `CONNECTION_ID()` /* CONNECTION_ID() */":   "SELECT 'CONNECTION_ID()', `CONNECTION_ID()` /* CONNECTION_ID() */",
		"SELECT 1":           "SELECT 1",
		"DO CONNECTION_ID()": "DO 42",
		// Stored definitions keep the server's CONNECTION_ID() (bodies.go).
		"CREATE FUNCTION f() RETURNS INT RETURN CONNECTION_ID()":                                                      "CREATE FUNCTION f() RETURNS INT RETURN CONNECTION_ID()",
		"create definer=root@localhost procedure p() begin declare a int; set a = connection_id(); kill query a; end": "create definer=root@localhost procedure p() begin declare a int; set a = connection_id(); kill query a; end",
		"CREATE VIEW v AS SELECT CONNECTION_ID()":                                                                     "CREATE VIEW v AS SELECT CONNECTION_ID()",
		"CREATE TRIGGER t BEFORE INSERT ON t1 FOR EACH ROW SET NEW.c = CONNECTION_ID()":                               "CREATE TRIGGER t BEFORE INSERT ON t1 FOR EACH ROW SET NEW.c = CONNECTION_ID()",
		// ... but only those.
		// A text of more statements is rewritten whole: where a body ends
		// is the server's to tell.
		"CREATE PROCEDURE p() BEGIN SELECT CONNECTION_ID(); END; SELECT CONNECTION_ID()": "CREATE PROCEDURE p() BEGIN SELECT 42 AS `CONNECTION_ID()`; END; SELECT 42 AS `CONNECTION_ID()`",
		"SELECT CONNECTION_ID(); CREATE PROCEDURE p() SELECT CONNECTION_ID()":            "SELECT 42 AS `CONNECTION_ID()`; CREATE PROCEDURE p() SELECT 42 AS `CONNECTION_ID()`",
		"CREATE TABLE t AS SELECT CONNECTION_ID() AS id":                                 "CREATE TABLE t AS SELECT 42 AS id",
		"INSERT INTO t VALUES (CONNECTION_ID())":                                         "INSERT INTO t VALUES (42)",
	} {
		if got := RewriteConnectionID(sql, 42); got != want {
			t.Errorf("%s:\n got %s\nwant %s", sql, got, want)
		}
	}
}

func TestDroppedSchema(t *testing.T) {
	for sql, want := range map[string]string{
		"DROP DATABASE shop":                "shop",
		"drop schema if exists `my db`;":    "my db",
		"/* x */ DROP DATABASE IF EXISTS a": "a",
		"DROP TABLE shop":                   "",
		"DROP DATABASE a; DROP DATABASE b":  "",
		"SELECT 1":                          "",
	} {
		if got := DroppedSchema(sql); got != want {
			t.Errorf("DroppedSchema(%q) = %q, want %q", sql, got, want)
		}
	}
}
