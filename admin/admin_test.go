package admin

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	driver "github.com/go-sql-driver/mysql"

	"switchyard/backend"
	"switchyard/conf"
	"switchyard/internal/mysqltest"
	"switchyard/proxy"
)

// fakeRuntime stands for cmd/switchyard's: it records what the admin asks.
type fakeRuntime struct {
	mu       sync.Mutex
	cfg      *conf.Config
	applied  []string
	rejected []string
}

func (f *fakeRuntime) Current() *conf.Config {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cfg
}

func (f *fakeRuntime) Apply(cfg *conf.Config, source string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cfg = cfg
	f.applied = append(f.applied, source)
	return nil
}

func (f *fakeRuntime) Reject(source string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rejected = append(f.rejected, source+": "+err.Error())
}

func (f *fakeRuntime) counts() (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.applied), len(f.rejected)
}

var testEnv = map[string]string{"SWITCHYARD_ADMIN_PASSWORD": "adminpw"}

func lookupEnv(k string) (string, bool) { v, ok := testEnv[k]; return v, ok }

type testAdmin struct {
	*Admin
	rt      *fakeRuntime
	path    string
	cluster *backend.Cluster
	db      *sql.DB
}

const smallConfig = `# a small config
listen:
  mysql: 127.0.0.1:6033
  admin: 127.0.0.1:6032
admin:
  user: admin
  password: ${SWITCHYARD_ADMIN_PASSWORD}
users:
  - name: app   # the application
    password: secret
    default_schema: shop
servers:
  # the primary comes first
  - name: db1
    address: 127.0.0.1:3306
  - name: db2
    address: 127.0.0.1:3307
    weight: 100
monitor:
  interval: 1s   # fast
`

// startAdmin runs an admin interface for config on a loopback port and
// returns it with a client pool (go-sql-driver, logged in as the admin).
func startAdmin(t *testing.T, config string) *testAdmin {
	t.Helper()
	mysqltest.CheckGoroutines(t)
	path := filepath.Join(t.TempDir(), "switchyard.yaml")
	if err := os.WriteFile(path, []byte(config), 0o640); err != nil {
		t.Fatal(err)
	}
	cfg, err := conf.Parse(path, []byte(config), lookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	var specs []backend.ServerSpec
	for _, s := range cfg.Servers {
		specs = append(specs, backend.ServerSpec{Name: s.Name, Address: s.Address, Weight: s.Weight, MaxConnections: s.MaxConnections})
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cluster := backend.NewCluster(specs, backend.Options{Logger: log})
	pool := backend.NewPool(backend.PoolOptions{}, cluster)
	data, err := proxy.NewServer(proxy.Options{Servers: cluster, Pool: pool, ListenerOptions: proxy.ListenerOptions{Logger: log}})
	if err != nil {
		t.Fatal(err)
	}
	rt := &fakeRuntime{cfg: cfg}
	a, err := New(Options{ConfigPath: path, Env: lookupEnv, Runtime: rt, Cluster: cluster, Pool: pool, Data: data,
		Listener: proxy.ListenerOptions{Logger: log}, Logger: log, Version: "test"}, []byte(config))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = a.Serve(l)
	}()
	dsn := fmt.Sprintf("admin:%s@tcp(%s)/", testEnv["SWITCHYARD_ADMIN_PASSWORD"], l.Addr())
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Close()
		_ = a.Shutdown(context.Background())
		<-served
	})
	return &testAdmin{Admin: a, rt: rt, path: path, cluster: cluster, db: db}
}

func (ta *testAdmin) exec(t *testing.T, stmts ...string) {
	t.Helper()
	for _, q := range stmts {
		if _, err := ta.db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func (ta *testAdmin) value(t *testing.T, q string, args ...any) string {
	t.Helper()
	var v sql.NullString
	if err := ta.db.QueryRow(q, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v.String
}

// mysqlError asserts err is a MySQL error with code, and returns its message.
func mysqlError(t *testing.T, err error, code uint16) string {
	t.Helper()
	var me *driver.MySQLError
	if !errors.As(err, &me) || me.Number != code {
		t.Fatalf("error %v, want MySQL error %d", err, code)
	}
	return me.Message
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sameConfig compares two configs by their exported content.
func sameConfig(t *testing.T, a, b *conf.Config) bool {
	t.Helper()
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// TestSaveUnchangedKeepsTheFile: saving staged tables nobody edited writes
// a file that means the same and keeps every comment and ${ENV} reference,
// for the annotated example config too.
func TestSaveUnchangedKeepsTheFile(t *testing.T) {
	example, err := os.ReadFile("../switchyard.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, config := range map[string]string{"small": smallConfig, "example": string(example)} {
		t.Run(name, func(t *testing.T) {
			ta := startAdmin(t, config)
			ta.exec(t, "SAVE CONFIG TO FILE")
			saved := readFile(t, ta.path)
			for _, line := range strings.Split(config, "\n") {
				if c := strings.TrimSpace(line); strings.HasPrefix(c, "#") && !strings.Contains(saved, c) {
					t.Errorf("comment %q lost:\n%s", c, saved)
				}
			}
			if !strings.Contains(saved, "${SWITCHYARD_ADMIN_PASSWORD}") || strings.Contains(saved, "adminpw") {
				t.Errorf("the secret's reference was not kept as written:\n%s", saved)
			}
			before, _ := conf.Parse("a", []byte(config), lookupEnv)
			after, err := conf.Parse("b", []byte(saved), lookupEnv)
			if err != nil {
				t.Fatalf("the saved file does not load: %v\n%s", err, saved)
			}
			if !sameConfig(t, before, after) {
				t.Errorf("the saved file means something else:\n%s", saved)
			}
			if os.Getenv("ADMIN_SHOW_SAVED") != "" {
				t.Logf("saved:\n%s", saved)
			}
			if fi, err := os.Stat(ta.path); err != nil || fi.Mode().Perm() != 0o640 {
				t.Errorf("the file's permissions changed: %v %v", fi.Mode(), err)
			}
		})
	}
}

// TestStagedEditsSaveAndLoad: edits of every staged table reach the file,
// and the runtime with LOAD CONFIG TO RUNTIME.
func TestStagedEditsSaveAndLoad(t *testing.T) {
	ta := startAdmin(t, smallConfig)
	ta.exec(t,
		"UPDATE servers SET weight = 50, promotable = 0 WHERE name = 'db2'",
		"INSERT INTO servers (name, address, max_connections) VALUES ('db3', '127.0.0.1:3308', 20)",
		"UPDATE users SET max_connections = 10 WHERE name = 'app'",
		"INSERT INTO users (name, password_hash) VALUES ('report', '*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9')",
		// MySQL clients escape with backslashes: the rule gets \s.
		`INSERT INTO query_rules (name, match, route) VALUES ('reports', '(?i)^\\s*select .* from reports', "replica")`,
		"UPDATE variables SET variable_value = '2s' WHERE variable_name = 'monitor.interval'",
		"UPDATE variables SET variable_value = 'round_robin' WHERE variable_name = 'routing.balance'",
		"UPDATE variables SET variable_value = 'f1, shop.f2' WHERE variable_name = 'routing.read_only_functions'",
		"LOAD CONFIG TO RUNTIME",
		"SAVE CONFIG TO FILE")
	cfg := ta.rt.Current()
	if len(cfg.Servers) != 3 || cfg.Servers[1].Weight != 50 || cfg.Servers[1].Promotable || cfg.Servers[2].MaxConnections != 20 {
		t.Errorf("servers: %+v", cfg.Servers)
	}
	if len(cfg.Users) != 2 || cfg.Users[0].MaxConnections != 10 || cfg.Users[1].PasswordHash == "" {
		t.Errorf("users: %+v", cfg.Users)
	}
	if len(cfg.QueryRules) != 1 || cfg.QueryRules[0].Match != `(?i)^\s*select .* from reports` || cfg.QueryRules[0].Route != "replica" {
		t.Errorf("rules: %+v", cfg.QueryRules)
	}
	if cfg.Monitor.Interval.String() != "2s" || cfg.Routing.Balance != "round_robin" || strings.Join(cfg.Routing.ReadOnlyFunctions, "|") != "f1|shop.f2" {
		t.Errorf("variables: %+v %+v", cfg.Monitor, cfg.Routing)
	}
	saved := readFile(t, ta.path)
	fromFile, err := conf.Parse("saved", []byte(saved), lookupEnv)
	if err != nil {
		t.Fatalf("saved file: %v\n%s", err, saved)
	}
	if !sameConfig(t, cfg, fromFile) {
		t.Errorf("the file and the runtime differ:\n%s", saved)
	}
	for _, keep := range []string{"# the primary comes first", "# the application", "# fast", "# a small config"} {
		if !strings.Contains(saved, keep) {
			t.Errorf("comment %q lost:\n%s", keep, saved)
		}
	}
	// Deleting a row removes its item; a key set to NULL is no longer
	// written, so its default applies.
	ta.exec(t, "DELETE FROM users WHERE name = 'report'", "UPDATE servers SET weight = NULL WHERE name = 'db2'",
		"DELETE FROM query_rules", "SAVE MYSQL SERVERS TO DISK")
	saved = readFile(t, ta.path)
	if strings.Contains(saved, "report") || strings.Contains(saved, "weight") || strings.Contains(saved, "query_rules") {
		t.Errorf("deleted rows or NULL keys are still written:\n%s", saved)
	}
}

// TestInvalidStagedConfigNamesRowAndColumn: LOAD CONFIG TO RUNTIME of an
// invalid staging changes nothing and names the row and column.
func TestInvalidStagedConfigNamesRowAndColumn(t *testing.T) {
	ta := startAdmin(t, smallConfig)
	for _, c := range []struct{ stmts, want string }{
		{"UPDATE servers SET address = 'nowhere' WHERE name = 'db2'", "servers row name 'db2', column address"},
		{"UPDATE servers SET weight = -1 WHERE name = 'db1'", "servers row name 'db1', column weight: must be at least 0"},
		{"INSERT INTO servers (name) VALUES ('db9')", `servers row name 'db9': missing required key "address"`},
		{"UPDATE variables SET variable_value = 'soon' WHERE variable_name = 'limits.shutdown_timeout'", "variables row 'limits.shutdown_timeout'"},
		{"INSERT INTO variables VALUES ('limits.colour', 'blue')", "no such variable limits.colour"},
		{"UPDATE servers SET promotable = 'perhaps' WHERE name = 'db1'", "column promotable"},
		{"INSERT INTO query_rules (name, match, route) VALUES ('bad', '(', 'replica')", "query_rules row rule_id 1 (name 'bad'), column match: invalid regexp"},
	} {
		t.Run(c.want, func(t *testing.T) {
			ta.exec(t, "LOAD CONFIG FROM FILE", c.stmts)
			_, err := ta.db.Exec("LOAD CONFIG TO RUNTIME")
			if msg := mysqlError(t, err, 1105); !strings.Contains(msg, c.want) {
				t.Errorf("error %q, want %q", msg, c.want)
			}
			_, err = ta.db.Exec("SAVE CONFIG TO FILE")
			mysqlError(t, err, 1105)
		})
	}
	if applied, rejected := ta.rt.counts(); applied != 0 || rejected != 7 {
		t.Errorf("applied %d, rejected %d: want 0 and 7", applied, rejected)
	}
	if saved := readFile(t, ta.path); saved != smallConfig {
		t.Errorf("an invalid staging was saved:\n%s", saved)
	}
}

// TestLoadFromFileAndAliases: the file can be reloaded into the staged
// tables, and ProxySQL's spellings do what ours do.
func TestLoadFromFileAndAliases(t *testing.T) {
	ta := startAdmin(t, smallConfig)
	ta.exec(t, "DELETE FROM servers WHERE name = 'db2'", "LOAD MYSQL SERVERS FROM DISK")
	if n := ta.value(t, "SELECT COUNT(*) FROM servers"); n != "2" {
		t.Errorf("LOAD MYSQL SERVERS FROM DISK: %s servers staged", n)
	}
	ta.exec(t, "UPDATE servers SET weight = 7 WHERE name = 'db1'", "LOAD MYSQL SERVERS TO RUNTIME")
	if ta.rt.Current().Servers[0].Weight != 7 {
		t.Errorf("LOAD MYSQL SERVERS TO RUNTIME did not apply")
	}
	ta.exec(t, "UPDATE servers SET weight = 8 WHERE name = 'db1'", "SAVE MYSQL SERVERS TO MEMORY")
	if w := ta.value(t, "SELECT weight FROM servers WHERE name = 'db1'"); w != "7" {
		t.Errorf("SAVE MYSQL SERVERS TO MEMORY: staged weight %s, want the runtime's 7", w)
	}
	ta.exec(t, "SAVE MYSQL VARIABLES TO DISK")
	if !strings.Contains(readFile(t, ta.path), "weight: 7") {
		t.Errorf("SAVE MYSQL VARIABLES TO DISK did not write the staged config")
	}
	ta.exec(t, "RELOAD CONFIG")
	if applied, _ := ta.rt.counts(); applied != 2 {
		t.Errorf("%d applied, want 2", applied)
	}
	os.WriteFile(ta.path, []byte("servers: [}"), 0o600)
	_, err := ta.db.Exec("LOAD CONFIG FROM FILE")
	if msg := mysqlError(t, err, 1105); !strings.Contains(msg, "switchyard.yaml:1:") {
		t.Errorf("broken file: %q", msg)
	}
	if n := ta.value(t, "SELECT COUNT(*) FROM servers"); n != "2" {
		t.Errorf("a broken file changed the staged tables: %s servers", n)
	}
	if _, rejected := ta.rt.counts(); rejected != 1 {
		t.Errorf("the broken file was not recorded")
	}
	// Without a monitor there is no failover: SWITCHOVER says so.
	_, err = ta.db.Exec("SWITCHOVER TO 'db2'")
	if msg := mysqlError(t, err, 1105); !strings.Contains(msg, "need the monitor") {
		t.Errorf("SWITCHOVER without a monitor: %q", msg)
	}
}

// TestReadOnlyTablesAndSchema: the snapshot tables and the schema cannot
// be changed, and nothing reaches files or extensions.
func TestReadOnlyTablesAndSchema(t *testing.T) {
	ta := startAdmin(t, smallConfig)
	for q, code := range map[string]uint16{
		"DELETE FROM runtime_servers":                               1142,
		"UPDATE events SET kind = 'x'":                              1142,
		"INSERT INTO stats_commands VALUES ('x', 1, 1)":             1142,
		"WITH x AS (SELECT 1) DELETE FROM runtime_users":            1142,
		"CREATE TABLE t (a)":                                        1142,
		"DROP TABLE servers":                                        1142,
		"PRAGMA writable_schema = 1":                                1142,
		"ATTACH DATABASE '/tmp/x.db' AS x":                          1142,
		"VACUUM INTO '/tmp/x.db'":                                   1142,
		"SELECT load_extension('/tmp/x.so')":                        1142,
		"SELECT * FROM nosuch":                                      1146,
		"SELECT nosuch FROM servers":                                1054,
		"SELEKT 1":                                                  1064,
		"INSERT INTO servers (name, address) VALUES ('db1', 'x:1')": 1062,
		"BEGIN":                     1235,
		"SELECT @x":                 1235,
		"SELECT @@no_such_variable": 1193,
		"SELECT 1; SELECT 2":        1064,
	} {
		_, err := ta.db.Exec(q)
		var me *driver.MySQLError
		if !errors.As(err, &me) || me.Number != code {
			t.Errorf("%s: %v, want error %d", q, err, code)
		}
	}
	if n := ta.value(t, "SELECT COUNT(*) FROM runtime_servers"); n != "2" {
		t.Errorf("runtime_servers: %s rows", n)
	}
}

// TestClientStatements: what the mariadb CLI, PHP and drivers send on
// connect and for completion is answered.
func TestClientStatements(t *testing.T) {
	ta := startAdmin(t, smallConfig)
	ta.exec(t, "SET NAMES utf8mb4", "SET autocommit = 1", "SET SESSION sql_mode = ''", "USE main", "COMMIT", "ROLLBACK")
	for q, want := range map[string]string{
		"SELECT @@version_comment LIMIT 1":                    "switchyard admin interface",
		"SELECT @@session.max_allowed_packet":                 "67108864",
		"SELECT DATABASE()":                                   "main",
		"select @@version_comment || '!' AS c":                "switchyard admin interface!",
		"SELECT CONCAT('a', \"b\", 'it''s', 'x\\'y')":         "abit'sx'y",
		"SELECT name FROM servers WHERE address LIKE '%3307'": "db2",
	} {
		if got := ta.value(t, q); got != want {
			t.Errorf("%s: %q, want %q", q, got, want)
		}
	}
	var name, create string
	if err := ta.db.QueryRow("SHOW CREATE TABLE `query_rules`").Scan(&name, &create); err != nil || !strings.Contains(create, `"match" TEXT`) {
		t.Errorf("SHOW CREATE TABLE: %q %v", create, err)
	}
	rows, err := ta.db.Query("SHOW TABLES LIKE 'stats\\_%'")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		n++
	}
	rows.Close()
	if n != 6 {
		t.Errorf("SHOW TABLES LIKE 'stats\\_%%': %d tables", n)
	}
	// go-sql-driver prepares statements with arguments.
	if got := ta.value(t, "SELECT name FROM servers WHERE address = ? AND ? = 1", "127.0.0.1:3307", 1); got != "db2" {
		t.Errorf("prepared: %q", got)
	}
	var weight int64
	if err := ta.db.QueryRow("SELECT weight FROM runtime_servers WHERE name = ?", "db2").Scan(&weight); err != nil || weight != 100 {
		t.Errorf("prepared, integer column: %d %v", weight, err)
	}
	ta.exec(t, "SET SERVER 'db2' OFFLINE_SOFT")
	if st := ta.cluster.Server("db2").Status(); st != backend.StatusOfflineSoft {
		t.Errorf("SET SERVER: status %s", st)
	}
	if got := ta.value(t, "SELECT status FROM runtime_servers WHERE name = 'db2'"); got != "OFFLINE_SOFT" {
		t.Errorf("runtime_servers status %q", got)
	}
	_, err = ta.db.Exec("KILL 4242")
	mysqlError(t, err, 1094)
}

// TestResultsAreBounded: a query that would return without end is cut with
// an error, and the admin goes on.
func TestResultsAreBounded(t *testing.T) {
	ta := startAdmin(t, smallConfig)
	// Smaller bounds than the real ones (100,000 rows, 64 MiB), so that
	// the test stays quick under the race detector.
	ta.Admin.db.maxRows = 1000
	if _, err := ta.Admin.db.exec(context.Background(), "PRAGMA max_page_count = 256"); err != nil {
		t.Fatal(err)
	}
	_, err := ta.db.Query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c")
	if msg := mysqlError(t, err, 1105); !strings.Contains(msg, "LIMIT") {
		t.Errorf("unbounded result: %q", msg)
	}
	_, err = ta.db.Exec("INSERT INTO users (name, password) WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT 'u' || x, hex(randomblob(1000)) FROM c")
	mysqlError(t, err, 1114)
	if got := ta.value(t, "SELECT 40 + 2"); got != "42" {
		t.Errorf("after the bounded statements: %q", got)
	}
}
