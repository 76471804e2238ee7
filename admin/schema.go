package admin

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"switchyard/conf"
)

// The tables of the admin database. The staged tables are the config file
// as rows, editable; the runtime_*, stats_* and events tables are read-only
// and filled from the live objects before each statement that reads them.

type tableKind int

const (
	staged tableKind = iota
	snapshot
)

// column is one column of an admin table.
type column struct {
	name string
	typ  string // SQLite type: INTEGER or TEXT
	// yamlBool: a staged column for a boolean key, written back as
	// true/false.
	yamlBool bool
}

type table struct {
	name    string
	kind    tableKind
	columns []column
	// extra is what follows the columns in CREATE TABLE (constraints).
	extra string
}

func (t *table) create() string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE %s (\n", t.name)
	for i, c := range t.columns {
		if i > 0 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, "  %s %s", quoteIdent(c.name), c.typ)
	}
	if t.extra != "" {
		b.WriteString(",\n  " + t.extra)
	}
	b.WriteString("\n)")
	return b.String()
}

// quoteIdent quotes a column name for SQLite; "match" is a keyword there.
func quoteIdent(name string) string { return `"` + name + `"` }

func (t *table) column(name string) *column {
	for i := range t.columns {
		if t.columns[i].name == name {
			return &t.columns[i]
		}
	}
	return nil
}

// listTable is a staged table for a list section of the config file: one
// row per item, one column per key, NULL for a key the item does not
// write (its default applies).
type listTable struct {
	table
	section string // the config key: servers, users, query_rules
	// order is the ORDER BY that gives the file's order.
	order string
}

// schema is every table of the admin database.
type schema struct {
	servers, users, rules *listTable
	variables             *table
	tables                []*table // all of them, staged first, in SHOW TABLES order
}

func (s *schema) lookup(name string) *table {
	for _, t := range s.tables {
		if t.name == name {
			return t
		}
	}
	return nil
}

func (s *schema) lists() []*listTable { return []*listTable{s.servers, s.users, s.rules} }

// newSchema builds the tables; the staged ones follow the conf package's
// keys, so a key added there is a column here.
func newSchema() *schema {
	s := &schema{
		servers: stagedList("servers", "servers", reflect.TypeFor[conf.Server](), "rowid"),
		users:   stagedList("users", "users", reflect.TypeFor[conf.User](), "rowid"),
		rules:   stagedList("query_rules", "query_rules", reflect.TypeFor[conf.QueryRule](), "rule_id"),
	}
	// Rules apply in order, which rule_id states: a new row goes last
	// unless it is given an id between others'.
	s.rules.columns = append([]column{{name: "rule_id", typ: "INTEGER PRIMARY KEY"}}, s.rules.columns...)
	s.variables = &table{name: "variables", kind: staged,
		columns: []column{{name: "variable_name", typ: "TEXT PRIMARY KEY NOT NULL"}, {name: "variable_value", typ: "TEXT"}}}
	snap := func(name string, cols ...string) *table {
		t := &table{name: name, kind: snapshot}
		for _, c := range cols {
			typ := "TEXT"
			if n, isInt := strings.CutSuffix(c, ":int"); isInt {
				c, typ = n, "INTEGER"
			}
			t.columns = append(t.columns, column{name: c, typ: typ})
		}
		return t
	}
	s.tables = []*table{&s.servers.table, &s.users.table, &s.rules.table, s.variables,
		snap("runtime_servers", "name", "address", "role", "status", "weight:int", "max_connections:int", "lag_ms:int",
			"gtid", "last_check", "last_error", "max_replication_lag_ms:int", "promotable:int", "read_pool", "outstanding:int", "conn_open:int"),
		snap("runtime_users", "name", "password_hash", "default_schema", "max_connections:int", "reads", "require_tls:int", "auth_plugin"),
		snap("runtime_query_rules", "rule_id:int", "name", "match", "digest", "user", "schema", "route", "error"),
		snap("runtime_variables", "variable_name", "variable_value"),
		snap("stats_connection_pool", "server", "role", "status", "conn_used:int", "conn_free:int", "conn_ok:int", "conn_err:int",
			"queries:int", "bytes_sent:int", "bytes_recv:int", "latency_us:int"),
		snap("stats_connection_pool_keys", "server", "user", "schema", "conn_used:int", "conn_free:int"),
		snap("stats_query_digest", "digest", "digest_text", "schema", "user", "route", "count_star:int", "sum_time_us:int",
			"min_time_us:int", "max_time_us:int", "rows_sent:int", "first_seen", "last_seen"),
		snap("stats_commands", "command", "total:int", "total_time_us:int"),
		snap("stats_processlist", "id:int", "user", "schema", "client", "server", "state", "time_ms:int", "info", "pinned"),
		snap("stats_proxy", "variable_name", "variable_value:int"),
		snap("events", "time", "kind", "server", "detail"),
	}
	return s
}

// stagedList builds the staged table for a list section from the config
// struct of its items.
func stagedList(name, section string, item reflect.Type, order string) *listTable {
	t := &listTable{table: table{name: name, kind: staged, extra: `UNIQUE ("name")`}, section: section, order: order}
	for i := range item.NumField() {
		f := item.Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if key == "" || key == "-" {
			continue
		}
		c := column{name: key, typ: "TEXT"}
		switch f.Type.Kind() {
		case reflect.Int, reflect.Int64:
			// Durations and sizes are written with units: text.
			if f.Tag.Get("conf") != "size" && f.Type != reflect.TypeFor[time.Duration]() {
				c.typ = "INTEGER"
			}
		case reflect.Bool:
			c.typ, c.yamlBool = "INTEGER", true
		}
		t.columns = append(t.columns, c)
	}
	return t
}
