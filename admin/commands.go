package admin

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"go.yaml.in/yaml/v3"

	"switchyard/backend"
	"switchyard/conf"
	"switchyard/wire"
)

// The admin commands and the session statements MySQL clients send, each
// recognised by its words before SQLite sees the statement.

// ok is the result of a statement that returns no rows.
func ok() *wire.TextResult { return &wire.TextResult{} }

// statement runs one statement of an admin client.
func (s *session) statement(ctx context.Context, toks []token) (*wire.TextResult, error) {
	w := words(toks, 8)
	if len(w) == 0 {
		return s.sqlite(ctx, toks)
	}
	a := s.a
	exact := func(want ...string) bool { return len(toks) == len(want) && len(w) == len(want) && equalWords(w, want) }
	switch {
	case exact("LOAD", "CONFIG", "TO", "RUNTIME"):
		return a.LoadToRuntime(ctx, "LOAD CONFIG TO RUNTIME")
	case exact("LOAD", "CONFIG", "FROM", "FILE"):
		return a.LoadFromFile(ctx)
	case exact("SAVE", "CONFIG", "TO", "FILE"):
		return a.SaveToFile(ctx)
	case exact("SAVE", "CONFIG", "FROM", "RUNTIME"):
		return a.SaveFromRuntime(ctx)
	case exact("RELOAD", "CONFIG"):
		return a.reload(ctx, "RELOAD CONFIG")
	}
	if op, ok := proxySQLAlias(toks, w); ok {
		return op(a, ctx)
	}
	switch w[0] {
	case "SET":
		if len(w) > 1 && w[1] == "SERVER" {
			return s.setServer(toks)
		}
		// SET NAMES, SET autocommit, SET SESSION ...: the admin has no
		// session state to change.
		return ok(), nil
	case "USE":
		if len(toks) == 2 {
			s.schema = toks[1].text
			if toks[1].kind != tWord {
				s.schema = toks[1].val
			}
			return ok(), nil
		}
	case "KILL":
		return s.killStatement(ctx, toks)
	case "SWITCHOVER", "FAILOVER":
		return s.promote(ctx, toks, w[0] == "SWITCHOVER")
	case "SHOW":
		return s.show(ctx, toks, w)
	case "DESCRIBE", "DESC":
		if len(toks) == 2 {
			return s.describe(toks[1])
		}
	case "EXPLAIN":
		if len(toks) == 2 {
			return s.describe(toks[1])
		}
	case "BEGIN", "START", "SAVEPOINT", "RELEASE", "XA", "LOCK", "UNLOCK":
		return nil, wire.Errorf(mysql.ER_NOT_SUPPORTED_YET, "the admin interface has no transactions or locks: each statement applies at once, and a staged change reaches the proxy only with LOAD CONFIG TO RUNTIME")
	case "COMMIT", "ROLLBACK":
		// Nothing is ever pending; clients that wrap statements in a
		// transaction finish it with these.
		return ok(), nil
	case "VACUUM", "ATTACH", "DETACH", "PRAGMA", "REINDEX", "ANALYZE", "CREATE", "DROP", "ALTER", "TRUNCATE", "RENAME":
		return nil, wire.Errorf(mysql.ER_TABLEACCESS_DENIED_ERROR, "%s is not available on the admin interface: its tables are fixed", w[0])
	case "SELECT":
		if r, ok := s.selectVariables(toks); ok {
			return r, nil
		}
	}
	return s.sqlite(ctx, toks)
}

func equalWords(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// proxySQLAlias reads ProxySQL's spellings, such as LOAD MYSQL SERVERS TO
// RUNTIME or SAVE MYSQL USERS TO DISK. Memory is the staged tables, disk
// (and ProxySQL's config file) the config file. Whatever module they name,
// they act on the whole config: it is validated and applied as one.
func proxySQLAlias(toks []token, w []string) (func(*Admin, context.Context) (*wire.TextResult, error), bool) {
	if len(w) != len(toks) || len(w) < 5 || (w[0] != "LOAD" && w[0] != "SAVE") || (w[1] != "MYSQL" && w[1] != "ADMIN") {
		return nil, false
	}
	for _, m := range w[2 : len(w)-2] {
		switch m {
		case "SERVERS", "USERS", "QUERY", "RULES", "VARIABLES":
		default:
			return nil, false
		}
	}
	dir, target := w[len(w)-2], w[len(w)-1]
	switch target {
	case "RUN":
		target = "RUNTIME"
	case "MEM":
		target = "MEMORY"
	}
	switch w[0] + " " + dir + " " + target {
	case "LOAD TO RUNTIME", "LOAD FROM MEMORY":
		source := strings.Join(w, " ")
		return func(a *Admin, ctx context.Context) (*wire.TextResult, error) { return a.LoadToRuntime(ctx, source) }, true
	case "SAVE TO DISK", "SAVE FROM MEMORY":
		return (*Admin).SaveToFile, true
	case "LOAD FROM DISK", "LOAD TO MEMORY", "LOAD FROM CONFIG":
		return (*Admin).LoadFromFile, true
	case "SAVE TO MEMORY", "SAVE FROM RUNTIME":
		return (*Admin).SaveFromRuntime, true
	}
	return nil, false
}

// LoadToRuntime validates the staged tables as a whole and applies them;
// on error nothing changes, and the error names rows and columns.
func (a *Admin) LoadToRuntime(ctx context.Context, source string) (*wire.TextResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	doc, rows, err := a.buildDocument(ctx)
	var cfg *conf.Config
	if err == nil {
		cfg, _, err = a.validate(doc, rows)
	}
	if err != nil {
		err = asClientError(err)
		a.opt.Runtime.Reject(source, err)
		return nil, err
	}
	if err := a.opt.Runtime.Apply(cfg, source); err != nil {
		return nil, a.stagedError(err, rows)
	}
	a.staged, a.running = doc, cloneNode(doc)
	return ok(), nil
}

// LoadFromFile replaces the staged tables with the config file's content,
// if the file is valid; the runtime does not change.
func (a *Admin) LoadFromFile(ctx context.Context) (*wire.TextResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := a.loadFile(ctx, "LOAD CONFIG FROM FILE"); err != nil {
		return nil, err
	}
	a.log.Info("staged tables loaded from the config file", "file", a.opt.ConfigPath)
	return ok(), nil
}

// loadFile reads and validates the config file and loads it into the
// staged tables; a file that does not load changes nothing and is
// recorded (Runtime.Reject).
func (a *Admin) loadFile(ctx context.Context, source string) (*conf.Config, error) {
	data, err := os.ReadFile(a.opt.ConfigPath)
	var cfg *conf.Config
	if err == nil {
		cfg, err = conf.Parse(a.opt.ConfigPath, data, a.opt.Env)
	}
	var doc *yaml.Node
	if err == nil {
		doc, err = parseDocument(data)
	}
	if err != nil {
		err = wire.Errorf(mysql.ER_UNKNOWN_ERROR, "the config file does not load; nothing changed:\n%v", err)
		a.opt.Runtime.Reject(source, err)
		return nil, err
	}
	if err := a.fillStaged(ctx, doc); err != nil {
		return nil, err
	}
	a.staged = doc
	return cfg, nil
}

// Reload is RELOAD CONFIG, what SIGHUP does: LOAD CONFIG FROM FILE, then
// LOAD CONFIG TO RUNTIME. Its outcome is an event and a log line.
func (a *Admin) Reload(ctx context.Context, source string) error {
	_, err := a.reload(ctx, source)
	return err
}

func (a *Admin) reload(ctx context.Context, source string) (*wire.TextResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	cfg, err := a.loadFile(ctx, source)
	if err != nil {
		return nil, err
	}
	if err := a.opt.Runtime.Apply(cfg, source); err != nil {
		return nil, asClientError(err)
	}
	a.running = cloneNode(a.staged)
	return ok(), nil
}

// SaveToFile validates the staged tables and writes them to the config
// file, which keeps its comments, atomically.
func (a *Admin) SaveToFile(ctx context.Context) (*wire.TextResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	doc, rows, err := a.buildDocument(ctx)
	var text []byte
	if err == nil {
		_, text, err = a.validate(doc, rows)
	}
	if err != nil {
		return nil, asClientError(err)
	}
	if err := writeFileAtomically(a.opt.ConfigPath, text); err != nil {
		return nil, wire.Errorf(mysql.ER_ERROR_ON_WRITE, "cannot write the config file: %v", err)
	}
	a.staged = doc
	a.log.Info("staged config saved to the config file", "file", a.opt.ConfigPath)
	return ok(), nil
}

// SaveFromRuntime replaces the staged tables with the config in effect.
func (a *Admin) SaveFromRuntime(ctx context.Context) (*wire.TextResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	doc := cloneNode(a.running)
	if err := a.fillStaged(ctx, doc); err != nil {
		return nil, err
	}
	a.staged = doc
	return ok(), nil
}

// asClientError makes err something the client reads as a MySQL error.
func asClientError(err error) error {
	var me *mysql.MyError
	if errors.As(err, &me) {
		return me
	}
	return wire.Errorf(mysql.ER_UNKNOWN_ERROR, "%v", err)
}

// setServer is SET SERVER 'name' ONLINE | OFFLINE_SOFT | OFFLINE_HARD.
func (s *session) setServer(toks []token) (*wire.TextResult, error) {
	usage := wire.Errorf(mysql.ER_PARSE_ERROR, "usage: SET SERVER 'name' ONLINE | OFFLINE_SOFT | OFFLINE_HARD")
	if len(toks) != 4 || toks[3].kind != tWord {
		return nil, usage
	}
	name := toks[2].val
	if toks[2].kind == tWord || toks[2].kind == tNumber {
		name = toks[2].text
	}
	var st backend.Status
	switch toks[3].val {
	case "ONLINE":
		st = backend.StatusOnline
	case "OFFLINE_SOFT":
		st = backend.StatusOfflineSoft
	case "OFFLINE_HARD":
		st = backend.StatusOfflineHard
	default:
		return nil, usage
	}
	if err := s.a.opt.Cluster.SetServerStatus(name, st); err != nil {
		return nil, wire.Errorf(mysql.ER_UNKNOWN_ERROR, "SET SERVER: %v", err)
	}
	s.c.Logger().Info("server status set from the admin interface", "server", name, "status", st.String())
	return ok(), nil
}

// promote runs SWITCHOVER [TO 'name'] (planned: no acknowledged write
// lost, clients pause) or FAILOVER (forced promotion of the best replica)
// and answers with the new primary as a one-row result.
func (s *session) promote(ctx context.Context, toks []token, switchover bool) (*wire.TextResult, error) {
	target := ""
	switch {
	case switchover && len(toks) == 3 && toks[1].kind == tWord && toks[1].val == "TO":
		target = toks[2].val
		if toks[2].kind == tWord || toks[2].kind == tNumber {
			target = toks[2].text
		}
	case len(toks) != 1:
		return nil, wire.Errorf(mysql.ER_PARSE_ERROR, "usage: SWITCHOVER [TO 'name'] | FAILOVER")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var p *backend.Server
	var err error
	what := "FAILOVER"
	if switchover {
		what = "SWITCHOVER"
		p, err = s.a.opt.Cluster.Switchover(ctx, target)
	} else {
		p, err = s.a.opt.Cluster.Failover(ctx)
	}
	if err != nil {
		return nil, wire.Errorf(mysql.ER_UNKNOWN_ERROR, "%s failed: %v", what, err)
	}
	s.c.Logger().Info(strings.ToLower(what)+" done from the admin interface", "primary", p.Name)
	return &wire.TextResult{Columns: []wire.Column{{Name: "primary"}}, Rows: [][]sql.NullString{{{String: p.Name, Valid: true}}}}, nil
}

// killStatement is KILL [CONNECTION | QUERY] id, for any client session.
func (s *session) killStatement(ctx context.Context, toks []token) (*wire.TextResult, error) {
	rest := toks[1:]
	query := false
	if len(rest) > 0 && (rest[0].is("CONNECTION") || rest[0].is("QUERY")) {
		query = rest[0].is("QUERY")
		rest = rest[1:]
	}
	if len(rest) != 1 || rest[0].kind != tNumber {
		return nil, wire.Errorf(mysql.ER_PARSE_ERROR, "usage: KILL [CONNECTION | QUERY] id, with the id of stats_processlist")
	}
	id, err := strconv.ParseUint(rest[0].text, 10, 64)
	if err != nil {
		return nil, wire.Errorf(mysql.ER_NO_SUCH_THREAD, "Unknown thread id: %s", rest[0].text)
	}
	return s.kill(ctx, id, query)
}

func (s *session) kill(ctx context.Context, id uint64, query bool) (*wire.TextResult, error) {
	if err := s.a.opt.Data.Kill(ctx, id, query, ""); err != nil {
		return nil, err
	}
	return ok(), nil
}

// sessionVariables are the system variables clients read on connect.
func (a *Admin) sessionVariable(name string) (string, bool) {
	switch strings.ToLower(name) {
	case "version":
		return a.opt.Version + "-switchyard-admin", true
	case "version_comment":
		return "switchyard admin interface", true
	case "max_allowed_packet":
		return "67108864", true
	case "autocommit", "auto_increment_increment", "auto_increment_offset":
		return "1", true
	case "tx_isolation", "transaction_isolation":
		return "REPEATABLE-READ", true
	case "tx_read_only", "transaction_read_only", "lower_case_table_names", "performance_schema", "query_cache_size", "sql_auto_is_null":
		return "0", true
	case "character_set_client", "character_set_connection", "character_set_results", "character_set_server", "character_set_database":
		return "utf8mb4", true
	case "collation_connection", "collation_server", "collation_database":
		return "utf8mb4_general_ci", true
	case "sql_mode", "init_connect":
		return "", true
	case "time_zone", "system_time_zone":
		return "SYSTEM", true
	case "wait_timeout", "interactive_timeout":
		return "28800", true
	case "net_write_timeout":
		return "60", true
	case "net_buffer_length":
		return "16384", true
	case "license":
		return "GPL", true
	case "hostname":
		h, _ := os.Hostname()
		return h, true
	case "port":
		return "", true
	}
	return "", false
}

var sessionVariableNames = []string{"autocommit", "auto_increment_increment", "auto_increment_offset",
	"character_set_client", "character_set_connection", "character_set_database", "character_set_results",
	"character_set_server", "collation_connection", "collation_database", "collation_server", "hostname",
	"init_connect", "interactive_timeout", "license", "lower_case_table_names", "max_allowed_packet",
	"net_buffer_length", "net_write_timeout", "performance_schema", "query_cache_size", "sql_auto_is_null", "sql_mode",
	"system_time_zone", "time_zone", "transaction_isolation", "transaction_read_only", "tx_isolation", "tx_read_only",
	"version", "version_comment", "wait_timeout"}

// sysVarName strips @@ and a SESSION., GLOBAL. or LOCAL. scope.
func sysVarName(v string) string {
	v = strings.TrimPrefix(v, "@@")
	for _, p := range []string{"session.", "global.", "local."} {
		if len(v) > len(p) && strings.EqualFold(v[:len(p)], p) {
			return v[len(p):]
		}
	}
	return v
}

// selectVariables answers SELECT @@a [AS x], @@b ... [LIMIT n] directly:
// what clients send on connect.
func (s *session) selectVariables(toks []token) (*wire.TextResult, bool) {
	r := &wire.TextResult{}
	row := []sql.NullString{}
	i := 1
	for {
		if i >= len(toks) || toks[i].kind != tVar || !strings.HasPrefix(toks[i].val, "@@") {
			return nil, false
		}
		name := toks[i].text
		val, known := s.a.sessionVariable(sysVarName(toks[i].val))
		if !known {
			return nil, false
		}
		i++
		if i+1 < len(toks) && toks[i].is("AS") {
			name = toks[i+1].text
			if toks[i+1].kind != tWord {
				name = toks[i+1].val
			}
			i += 2
		}
		r.Columns = append(r.Columns, wire.Column{Name: name, OrgName: name, Charset: 33, Length: 1 << 10, Type: mysql.MYSQL_TYPE_VAR_STRING})
		row = append(row, sql.NullString{String: val, Valid: true})
		if i < len(toks) && toks[i].kind == tPunct && toks[i].text == "," {
			i++
			continue
		}
		break
	}
	if i+1 < len(toks) && toks[i].is("LIMIT") && toks[i+1].kind == tNumber {
		i += 2
	}
	if i != len(toks) {
		return nil, false
	}
	r.Rows = [][]sql.NullString{row}
	return r, true
}

// sqlite runs a statement on the admin database after turning MySQL's
// spellings into SQLite's, refreshing the snapshot tables it reads first.
func (s *session) sqlite(ctx context.Context, toks []token) (*wire.TextResult, error) {
	var bad error
	text := render(toks, func(ts []token, i int) (string, int) {
		t := ts[i]
		switch {
		case t.kind == tVar && strings.HasPrefix(t.val, "@@"):
			val, known := s.a.sessionVariable(sysVarName(t.val))
			if !known {
				bad = wire.Errorf(mysql.ER_UNKNOWN_SYSTEM_VARIABLE, "Unknown system variable '%s'", sysVarName(t.val))
				return "NULL", 1
			}
			return sqliteString(val) + alias(ts, i, 1, t.text), 1
		case t.kind == tVar:
			bad = wire.Errorf(mysql.ER_NOT_SUPPORTED_YET, "user variables (%s) are not available on the admin interface", t.text)
			return "NULL", 1
		case t.kind == tWord && i+2 < len(ts) && ts[i+1].text == "(" && ts[i+2].text == ")" && !ts[i+1].space:
			val, known := s.function(t.val)
			if !known {
				return "", 0
			}
			return val + alias(ts, i, 3, t.text+"()"), 3
		}
		return "", 0
	})
	if bad != nil {
		return nil, bad
	}
	a := s.a
	a.mu.Lock()
	defer a.mu.Unlock()
	p, err := a.db.prepare(ctx, text)
	if err != nil {
		return nil, err
	}
	defer p.stmt.Close()
	if err := a.refresh(ctx, p.reads); err != nil {
		return nil, wire.Errorf(mysql.ER_UNKNOWN_ERROR, "%v", err)
	}
	return a.db.run(ctx, p)
}

// function is the value of a MySQL function without arguments that SQLite
// lacks, as SQL text.
func (s *session) function(name string) (string, bool) {
	switch name {
	case "DATABASE", "SCHEMA":
		return sqliteString(s.schema), true
	case "USER", "CURRENT_USER", "SESSION_USER", "SYSTEM_USER":
		return sqliteString(s.c.Login().User.Name + "@" + hostOf(s.c.RemoteAddr())), true
	case "VERSION":
		v, _ := s.a.sessionVariable("version")
		return sqliteString(v), true
	case "CONNECTION_ID":
		return strconv.FormatUint(uint64(s.c.ID()), 10), true
	case "NOW", "SYSDATE", "CURRENT_TIMESTAMP":
		return sqliteString(time.Now().Format("2006-01-02 15:04:05")), true
	case "UNIX_TIMESTAMP":
		return strconv.FormatInt(time.Now().Unix(), 10), true
	}
	return "", false
}

func hostOf(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		return strings.Trim(addr[:i], "[]")
	}
	return addr
}

// alias names a replaced select expression as MySQL would (its text), when
// it stands alone in the select list: followed by a comma, FROM, LIMIT,
// the end, ..., and not already named by AS.
func alias(ts []token, i, n int, name string) string {
	next := i + n
	if next < len(ts) {
		t := ts[next]
		switch {
		case t.kind == tPunct && t.text == ",":
		case t.kind == tWord && (t.val == "FROM" || t.val == "LIMIT" || t.val == "WHERE" || t.val == "ORDER" ||
			t.val == "GROUP" || t.val == "UNION" || t.val == "HAVING"):
		default:
			return ""
		}
	}
	if i > 0 {
		if p := ts[i-1]; !(p.kind == tPunct && p.text == "," || p.is("SELECT") || p.is("DISTINCT") || p.is("ALL")) {
			return ""
		}
	}
	return ` AS "` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// show answers the SHOW statements clients and operators use.
func (s *session) show(ctx context.Context, toks []token, w []string) (*wire.TextResult, error) {
	rest := toks[1:]
	skip := func(words ...string) {
		for len(rest) > 0 {
			found := false
			for _, word := range words {
				if rest[0].is(word) {
					found = true
				}
			}
			if !found {
				return
			}
			rest = rest[1:]
		}
	}
	skip("FULL", "GLOBAL", "SESSION", "LOCAL")
	if len(rest) == 0 {
		return nil, wire.Errorf(mysql.ER_PARSE_ERROR, "You have an error in your SQL syntax near 'SHOW'")
	}
	kind := rest[0].val
	rest = rest[1:]
	like := func() (func(string) bool, error) {
		switch {
		case len(rest) == 0:
			return func(string) bool { return true }, nil
		case len(rest) == 2 && rest[0].is("LIKE") && rest[1].kind == tString:
			re := likePattern(rest[1].val)
			return re.MatchString, nil
		}
		return nil, wire.Errorf(mysql.ER_PARSE_ERROR, "the admin interface reads SHOW ... [LIKE 'pattern'] only")
	}
	switch kind {
	case "TABLES":
		if len(rest) >= 2 && (rest[0].is("FROM") || rest[0].is("IN")) {
			rest = rest[2:]
		}
		match, err := like()
		if err != nil {
			return nil, err
		}
		var names [][]string
		for _, t := range s.a.schema.tables {
			if match(t.name) {
				names = append(names, []string{t.name})
			}
		}
		return textTable([]string{"Tables_in_main"}, names), nil
	case "DATABASES", "SCHEMAS":
		return textTable([]string{"Database"}, [][]string{{"main"}}), nil
	case "CREATE":
		if len(rest) == 2 && rest[0].is("TABLE") {
			t := s.a.schema.lookup(tableName(rest[1]))
			if t == nil {
				return nil, wire.Errorf(mysql.ER_NO_SUCH_TABLE, "Table 'main.%s' doesn't exist", tableName(rest[1]))
			}
			return textTable([]string{"Table", "Create Table"}, [][]string{{t.name, t.create()}}), nil
		}
	case "COLUMNS", "FIELDS":
		if len(rest) == 2 && (rest[0].is("FROM") || rest[0].is("IN")) {
			return s.describe(rest[1])
		}
	case "VARIABLES":
		match, err := like()
		if err != nil {
			return nil, err
		}
		var rows [][]string
		for _, n := range sessionVariableNames {
			if match(n) {
				v, _ := s.a.sessionVariable(n)
				rows = append(rows, []string{n, v})
			}
		}
		return textTable([]string{"Variable_name", "Value"}, rows), nil
	case "STATUS":
		match, err := like()
		if err != nil {
			return nil, err
		}
		c := s.a.opt.Data.Counters()
		var rows [][]string
		for _, kv := range [][2]string{{"Threads_connected", strconv.FormatInt(c.Clients, 10)},
			{"Uptime", strconv.Itoa(int(time.Since(s.a.started).Seconds()))}} {
			if match(kv[0]) {
				rows = append(rows, kv[:])
			}
		}
		return textTable([]string{"Variable_name", "Value"}, rows), nil
	case "WARNINGS", "ERRORS":
		return textTable([]string{"Level", "Code", "Message"}, nil), nil
	case "ENGINES", "CHARSET", "COLLATION", "PLUGINS", "TRIGGERS", "EVENTS":
		return textTable([]string{"Name"}, nil), nil
	case "PROCESSLIST":
		var rows [][]string
		for _, p := range s.a.opt.Data.Processlist() {
			rows = append(rows, []string{strconv.FormatUint(uint64(p.ID), 10), p.User, p.Client, p.Schema,
				p.State, strconv.FormatInt(int64(p.Time.Seconds()), 10), p.Pinned, p.Info})
		}
		return textTable([]string{"Id", "User", "Host", "db", "Command", "Time", "State", "Info"}, rows), nil
	}
	return nil, wire.Errorf(mysql.ER_NOT_SUPPORTED_YET, "SHOW %s is not available on the admin interface; the admin tables (SHOW TABLES) hold what it knows", strings.Join(w[1:], " "))
}

// describe answers DESCRIBE table with the table's columns.
func (s *session) describe(name token) (*wire.TextResult, error) {
	t := s.a.schema.lookup(tableName(name))
	if t == nil {
		return nil, wire.Errorf(mysql.ER_NO_SUCH_TABLE, "Table 'main.%s' doesn't exist", name.text)
	}
	var rows [][]string
	for _, c := range t.columns {
		rows = append(rows, []string{c.name, strings.ToLower(strings.Fields(c.typ)[0]), "YES", "", "", ""})
	}
	return textTable([]string{"Field", "Type", "Null", "Key", "Default", "Extra"}, rows), nil
}

// tableName is the admin table a token names: case-insensitively, as
// the tables' names are lower-case.
func tableName(t token) string {
	if t.kind == tIdent || t.kind == tString {
		return strings.ToLower(t.val)
	}
	return strings.ToLower(t.text)
}

// textTable builds a result of text columns.
func textTable(cols []string, rows [][]string) *wire.TextResult {
	r := &wire.TextResult{}
	for _, c := range cols {
		r.Columns = append(r.Columns, wire.Column{Schema: "main", Name: c, OrgName: c, Charset: 33, Length: 1 << 16, Type: mysql.MYSQL_TYPE_VAR_STRING})
	}
	for _, row := range rows {
		out := make([]sql.NullString, len(row))
		for i, v := range row {
			out[i] = sql.NullString{String: v, Valid: true}
		}
		r.Rows = append(r.Rows, out)
	}
	return r
}

// likePattern turns a LIKE pattern into a case-insensitive regexp.
func likePattern(p string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("(?is)^")
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '\\' && i+1 < len(p):
			i++
			b.WriteString(regexp.QuoteMeta(p[i : i+1]))
		case c == '%':
			b.WriteString(".*")
		case c == '_':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(p[i : i+1]))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

func nullString() sql.NullString { return sql.NullString{} }
