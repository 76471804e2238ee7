package integration

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"switchyard/integration/harness"
)

// The admin SQL interface, driven the way operators drive it: the mariadb
// CLI on listen.admin.

// adminCLI runs sql on the admin interface with the mariadb CLI in batch
// mode and returns its combined output.
func adminCLI(p *harness.Proxy, user, pass, sql string) (string, error) {
	host, port, _ := strings.Cut(p.AdminAddr(), ":")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "mariadb", "--no-defaults", "-h", host, "-P", port,
		"-u", user, "-p"+pass, "--batch", "-e", sql).CombinedOutput()
	return string(out), err
}

// adminRows runs sql on the admin interface and returns the rows of its
// last result, the column names first, failing the test on an error.
func adminRows(t *testing.T, p *harness.Proxy, sql string) [][]string {
	t.Helper()
	out, err := adminCLI(p, p.AdminUser(), p.AdminPassword(), sql)
	if err != nil {
		t.Fatalf("admin %q: %v\n%s", sql, err, out)
	}
	var rows [][]string
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if line != "" {
			rows = append(rows, strings.Split(line, "\t"))
		}
	}
	return rows
}

// adminExpectError runs sql on the admin interface and returns the CLI's
// error line, failing the test if the statement succeeded.
func adminExpectError(t *testing.T, p *harness.Proxy, sql string) string {
	t.Helper()
	out, err := adminCLI(p, p.AdminUser(), p.AdminPassword(), sql)
	if err == nil {
		t.Fatalf("admin %q succeeded, want an error:\n%s", sql, out)
	}
	return out
}

// adminValue runs a query with one column and one row and returns the value.
func adminValue(t *testing.T, p *harness.Proxy, sql string) string {
	t.Helper()
	rows := adminRows(t, p, sql)
	if len(rows) != 2 || len(rows[1]) != 1 {
		t.Fatalf("admin %q: want one value, got %q", sql, rows)
	}
	return rows[1][0]
}

// adminInt runs a query with one integer value and returns it.
func adminInt(t *testing.T, p *harness.Proxy, sql string) int {
	t.Helper()
	v := adminValue(t, p, sql)
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("admin %q: %q is not an integer", sql, v)
	}
	return n
}

// adminTables are the tables SPEC.md lists, with the columns it names.
var adminTables = map[string][]string{
	"servers":               {"name", "address"},
	"users":                 {"name"},
	"query_rules":           {"name"},
	"variables":             {"variable_name", "variable_value"},
	"runtime_servers":       {"name", "address", "role", "status", "weight", "max_connections", "lag_ms", "gtid", "last_check", "last_error"},
	"runtime_users":         {"name"},
	"runtime_query_rules":   {"name"},
	"runtime_variables":     {"variable_name", "variable_value"},
	"stats_connection_pool": {"server", "role", "status", "conn_used", "conn_free", "conn_ok", "conn_err", "queries", "bytes_sent", "bytes_recv", "latency_us"},
	"stats_query_digest":    {"digest", "digest_text", "schema", "user", "route", "count_star", "sum_time_us", "min_time_us", "max_time_us", "rows_sent", "first_seen", "last_seen"},
	"stats_commands":        {"command", "total", "total_time_us"},
	"stats_processlist":     {"id", "user", "schema", "client", "server", "state", "time_ms", "info", "pinned"},
	"events":                {"time", "kind", "server", "detail"},
}

// TestAdminEveryTableAnswers: every table of SPEC.md answers with its
// columns, SQL works over them (WHERE, JOIN, aggregates), the stats follow
// the traffic, runtime tables are read-only, and the session commands that
// clients send on connect work, through the mariadb CLI and go-sql-driver.
func TestAdminEveryTableAnswers(t *testing.T) {
	setupRoutingTable(t)
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info"})
	db := appDB(t, p, "")
	for range 3 {
		var v string
		if err := db.QueryRow("SELECT v FROM route_t WHERE id = 2").Scan(&v); err != nil {
			t.Fatal(err)
		}
	}
	// A session pinned by a user variable, idle on its connection.
	pinned, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer pinned.Close()
	if _, err := pinned.ExecContext(context.Background(), "SET @answer = 42"); err != nil {
		t.Fatal(err)
	}
	pinnedID := sessionID(t, pinned)

	tables := adminRows(t, p, "SHOW TABLES")
	var names []string
	for _, r := range tables[1:] {
		names = append(names, r[0])
	}
	// go-sql-driver, as monitoring scripts would use it: it reads the
	// columns of empty tables too, which the CLI does not print.
	adb, err := sql.Open("mysql", p.AdminDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer adb.Close()
	for table, cols := range adminTables {
		if !slices.Contains(names, table) {
			t.Errorf("SHOW TABLES lacks %s: %v", table, names)
			continue
		}
		adminRows(t, p, "SELECT * FROM "+table)
		rows, err := adb.Query("SELECT * FROM " + table)
		if err != nil {
			t.Fatalf("go-sql-driver: SELECT * FROM %s: %v", table, err)
		}
		got, _ := rows.Columns()
		rows.Close()
		for _, c := range cols {
			if !slices.Contains(got, c) {
				t.Errorf("%s has no column %s: %v", table, c, got)
			}
		}
		if create := adminRows(t, p, "SHOW CREATE TABLE "+table); len(create) != 2 || !strings.Contains(create[1][1], "CREATE TABLE") {
			t.Errorf("SHOW CREATE TABLE %s: %q", table, create)
		}
	}

	roles := adminRows(t, p, "SELECT role, COUNT(*) AS n FROM runtime_servers WHERE status = 'ONLINE' GROUP BY role ORDER BY role")
	if fmt.Sprint(roles[1:]) != "[[primary 1] [replica 2]]" {
		t.Errorf("roles: %v", roles)
	}
	joined := adminRows(t, p, "SELECT s.name, r.role FROM servers s JOIN runtime_servers r ON r.name = s.name ORDER BY s.name")
	if len(joined) != 4 || joined[1][0] != "db1" || joined[1][1] != "primary" {
		t.Errorf("join of staged and runtime servers: %v", joined)
	}
	if n := adminInt(t, p, "SELECT SUM(count_star) FROM stats_query_digest WHERE digest_text = 'select `v` from `route_t` where `id` = ?'"); n < 3 {
		t.Errorf("digest count %d, want at least 3", n)
	}
	if n := adminInt(t, p, "SELECT SUM(total) FROM stats_commands WHERE command = 'READ'"); n < 3 {
		t.Errorf("stats_commands READ total %d, want at least 3", n)
	}
	pin := adminValue(t, p, fmt.Sprintf("SELECT pinned FROM stats_processlist WHERE id = %d", pinnedID))
	if !strings.Contains(pin, "user variable") {
		t.Errorf("pinned reason %q, want user variable", pin)
	}
	if n := adminValue(t, p, "SELECT SUM(conn_ok) > 0 FROM stats_connection_pool WHERE server = 'db1'"); n != "1" {
		t.Errorf("no connections counted for db1")
	}
	if got := adminValue(t, p, "SELECT @@version_comment LIMIT 1"); !strings.Contains(got, "switchyard") {
		t.Errorf("@@version_comment = %q", got)
	}
	adminRows(t, p, "SET NAMES utf8mb4; SET autocommit = 1; SELECT DATABASE(), USER()")

	for _, q := range []string{"DELETE FROM runtime_servers", "UPDATE stats_commands SET total = 0",
		"DROP TABLE servers", "CREATE TABLE x (a INT)"} {
		if out := adminExpectError(t, p, q); !strings.Contains(out, "ERROR") {
			t.Errorf("%s: %s", q, out)
		}
	}
	if n := adminValue(t, p, "SELECT COUNT(*) FROM runtime_servers"); n != "3" {
		t.Errorf("runtime_servers has %s rows after refused writes", n)
	}

	var n int
	if err := adb.QueryRow("SELECT COUNT(*) FROM runtime_servers WHERE role = ?", "replica").Scan(&n); err != nil || n != 2 {
		t.Errorf("go-sql-driver: %d replicas, err %v", n, err)
	}
	host, port, _ := strings.Cut(p.AdminAddr(), ":")
	php := cmdsRunPHP(t, "admin.php", "SY_HOST="+host, "SY_PORT="+port, "SY_USER="+p.AdminUser(), "SY_PASS="+p.AdminPassword())
	if got := fmt.Sprint(php["replicas"], php["primaries"], php["staged"]); got != "[db2 db3] 1 3" {
		t.Errorf("PHP read %s, want [db2 db3] 1 3", got)
	}
}

// TestAdminLoginOnlyWithAdminCredentials: a wrong admin password, and the
// application's account, get 1045 on the admin port.
func TestAdminLoginOnlyWithAdminCredentials(t *testing.T) {
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info"})
	for _, c := range [][2]string{{p.AdminUser(), "wrong"}, {cluster.AppUser, cluster.AppPassword}} {
		out, err := adminCLI(p, c[0], c[1], "SELECT 1")
		if err == nil || !strings.Contains(out, "ERROR 1045 (28000)") {
			t.Errorf("login as %s: err %v, output %q; want ERROR 1045", c[0], err, out)
		}
	}
	adb, err := sql.Open("mysql", strings.Replace(p.AdminDSN(), ":"+p.AdminPassword()+"@", ":nope@", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer adb.Close()
	assertMySQLError(t, adb.Ping(), 1045, "28000")
}

// replicaTx opens a read-only transaction on db until one lands on the
// server with id want, and returns its connection.
func replicaTx(t *testing.T, db *sql.DB, want int) *sql.Conn {
	t.Helper()
	ctx := context.Background()
	var tried []*sql.Conn
	defer func() {
		for _, c := range tried {
			// Back to db's pool outside any transaction.
			_, _ = c.ExecContext(ctx, "ROLLBACK")
			c.Close()
		}
	}()
	for range 40 {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.ExecContext(ctx, "START TRANSACTION READ ONLY"); err != nil {
			t.Fatal(err)
		}
		var id int
		if err := c.QueryRowContext(ctx, "SELECT @@server_id").Scan(&id); err != nil {
			t.Fatal(err)
		}
		if id == want {
			return c
		}
		// Kept open (and so busy) while we look: the next one goes elsewhere.
		tried = append(tried, c)
	}
	t.Fatalf("no read-only transaction landed on server_id %d", want)
	return nil
}

// TestAdminServerStatus: OFFLINE_SOFT on a replica drains it (new reads
// move, an open transaction on it finishes), OFFLINE_HARD cuts it at once,
// ONLINE brings it back.
func TestAdminServerStatus(t *testing.T) {
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", ExtraYAML: fastMonitor})
	db := appDB(t, p, "")
	r0, r1 := cluster.Replicas[0], cluster.Replicas[1]
	defer adminCLI(p, p.AdminUser(), p.AdminPassword(), "SET SERVER '"+r0.Name+"' ONLINE")
	eventually(t, 10*time.Second, "reads on both replicas", func() bool { return bothReplicas(readServers(t, db)) })
	ctx := context.Background()

	tx := replicaTx(t, db, r0.ServerID)
	adminRows(t, p, "SET SERVER '"+r0.Name+"' OFFLINE_SOFT")
	if st := adminValue(t, p, "SELECT status FROM runtime_servers WHERE name = '"+r0.Name+"'"); st != "OFFLINE_SOFT" {
		t.Fatalf("status %s", st)
	}
	if seen := readServers(t, db); !onlyServer(seen, r1.ServerID) {
		t.Errorf("reads after OFFLINE_SOFT went to %v, want only %s", seen, r1.Name)
	}
	var id int
	if err := tx.QueryRowContext(ctx, "SELECT @@server_id").Scan(&id); err != nil || id != r0.ServerID {
		t.Errorf("the open transaction on the drained replica: id %d, err %v", id, err)
	}
	if _, err := tx.ExecContext(ctx, "COMMIT"); err != nil {
		t.Errorf("COMMIT of the drained transaction: %v", err)
	}
	tx.Close()

	adminRows(t, p, "SET SERVER '"+r0.Name+"' ONLINE")
	eventually(t, 10*time.Second, "reads on both replicas again", func() bool { return bothReplicas(readServers(t, db)) })

	tx = replicaTx(t, db, r0.ServerID)
	defer tx.Close()
	adminRows(t, p, "SET SERVER '"+r0.Name+"' OFFLINE_HARD")
	if err := tx.QueryRowContext(ctx, "SELECT @@server_id").Scan(&id); err == nil {
		t.Errorf("a transaction on an OFFLINE_HARD server went on (server_id %d)", id)
	}
	if seen := readServers(t, db); !onlyServer(seen, r1.ServerID) {
		t.Errorf("reads after OFFLINE_HARD went to %v", seen)
	}
	adminRows(t, p, "SET SERVER '"+r0.Name+"' ONLINE")
	eventually(t, 10*time.Second, "reads on both replicas after ONLINE", func() bool { return bothReplicas(readServers(t, db)) })
	if out := adminExpectError(t, p, "SET SERVER 'nosuch' OFFLINE_SOFT"); !strings.Contains(out, "nosuch") {
		t.Errorf("unknown server: %s", out)
	}
	if n := adminInt(t, p, "SELECT COUNT(*) FROM events WHERE kind = 'status' AND server = '"+r0.Name+"'"); n < 4 {
		t.Errorf("status events: %d, want 4", n)
	}
}

// TestAdminAddAndRemoveServer: a server INSERTed into the staged table and
// loaded gets traffic; deleted and loaded, it drains: new reads leave it,
// a transaction open on it finishes.
func TestAdminAddAndRemoveServer(t *testing.T) {
	r0, r1 := cluster.Replicas[0], cluster.Replicas[1]
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", ExtraYAML: fastMonitor,
		Servers: []*harness.Server{cluster.Primary, r0}})
	db := appDB(t, p, "")
	if seen := readServers(t, db); !onlyServer(seen, r0.ServerID) {
		t.Fatalf("reads before the new server: %v", seen)
	}
	adminRows(t, p, fmt.Sprintf("INSERT INTO servers (name, address) VALUES ('%s', '%s'); LOAD CONFIG TO RUNTIME", r1.Name, r1.Addr()))
	eventually(t, 10*time.Second, "reads on the added server", func() bool { return bothReplicas(readServers(t, db)) })

	tx := replicaTx(t, db, r1.ServerID)
	defer tx.Close()
	adminRows(t, p, "DELETE FROM servers WHERE name = '"+r1.Name+"'; LOAD CONFIG TO RUNTIME")
	if n := adminValue(t, p, "SELECT COUNT(*) FROM runtime_servers"); n != "2" {
		t.Errorf("runtime_servers has %s rows after the removal", n)
	}
	for range 3 {
		if seen := readServers(t, db); !onlyServer(seen, r0.ServerID) {
			t.Fatalf("reads after the removal went to %v", seen)
		}
	}
	ctx := context.Background()
	var id int
	if err := tx.QueryRowContext(ctx, "SELECT @@server_id").Scan(&id); err != nil || id != r1.ServerID {
		t.Errorf("transaction on the removed server: id %d, err %v", id, err)
	}
	if _, err := tx.ExecContext(ctx, "COMMIT"); err != nil {
		t.Errorf("COMMIT on the removed server: %v", err)
	}
	events := adminRows(t, p, "SELECT kind, server FROM events WHERE kind IN ('server_added', 'server_removed') ORDER BY time")
	if fmt.Sprint(events[1:]) != fmt.Sprintf("[[server_added %[1]s] [server_removed %[1]s]]", r1.Name) {
		t.Errorf("events: %v", events)
	}
}

// TestAdminSaveConfigThenRestart: staged changes loaded and saved to the
// file survive a restart unchanged; the file keeps its comments and passes
// --check.
func TestAdminSaveConfigThenRestart(t *testing.T) {
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", Dir: t.TempDir()})
	adminRows(t, p, `UPDATE servers SET weight = 50, max_connections = 200 WHERE name = 'db3';
INSERT INTO query_rules (name, match, error) VALUES ('no-drop', '(?i)^\\s*drop\\s', 'DROP is not allowed through the proxy');
UPDATE variables SET variable_value = 'round_robin' WHERE variable_name = 'routing.balance';
UPDATE variables SET variable_value = '2s' WHERE variable_name = 'monitor.interval';
LOAD CONFIG TO RUNTIME; SAVE CONFIG TO FILE`)
	snapshot := func() string {
		return fmt.Sprint(
			adminRows(t, p, "SELECT name, address, weight, max_connections FROM runtime_servers ORDER BY name"),
			adminRows(t, p, "SELECT * FROM runtime_query_rules"),
			adminRows(t, p, "SELECT * FROM runtime_users"),
			adminRows(t, p, "SELECT * FROM runtime_variables ORDER BY variable_name"),
			adminRows(t, p, "SELECT * FROM servers"))
	}
	before := snapshot()
	for _, want := range []string{"db3 127.0.0.1", "50", "200", "no-drop", "round_robin", "monitor.interval\t2s"} {
		if !strings.Contains(strings.ReplaceAll(before, " ", "\t"), strings.ReplaceAll(want, " ", "\t")) && !strings.Contains(before, want) {
			t.Errorf("runtime before the restart lacks %q:\n%s", want, before)
		}
	}
	file, err := os.ReadFile(p.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(file), "# generated by switchyard/integration/harness") {
		t.Errorf("the saved file lost its comment:\n%s", file)
	}
	if out, err := exec.Command(binary, "--check", "-c", p.ConfigPath()).CombinedOutput(); err != nil {
		t.Fatalf("--check of the saved file: %v\n%s\n%s", err, out, file)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if after := snapshot(); after != before {
		t.Errorf("runtime after the restart differs:\nbefore %s\nafter  %s\nfile:\n%s", before, after, file)
	}
	_, err = appDB(t, p, "").Exec("DROP TABLE no_such_table")
	if err == nil || !strings.Contains(err.Error(), "DROP is not allowed through the proxy") {
		t.Errorf("the saved rule after the restart: %v", err)
	}
}

// TestAdminProcesslistAndKill: stats_processlist shows a running statement
// and a session idle in a transaction; KILL QUERY from the admin interrupts
// the statement of any user's session, KILL ends the session.
func TestAdminProcesslistAndKill(t *testing.T) {
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info"})
	db := appDB(t, p, "")
	ctx := context.Background()
	victim, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	id := sessionID(t, victim)
	done := sleepOn(victim, 60, "")
	serverThreadRunning(t, "SLEEP(60)")
	row := adminRows(t, p, fmt.Sprintf("SELECT user, state, info FROM stats_processlist WHERE id = %d", id))
	if len(row) != 2 || row[1][0] != cluster.AppUser || row[1][1] != "query" || !strings.Contains(row[1][2], "SLEEP(60)") {
		t.Errorf("processlist of the sleeping session: %q", row)
	}
	adminRows(t, p, fmt.Sprintf("KILL QUERY %d", id))
	if err := <-done; err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("the statement after the admin's KILL QUERY: %v", err)
	}
	if _, err := victim.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := victim.ExecContext(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	row = adminRows(t, p, fmt.Sprintf("SELECT state, pinned, server FROM stats_processlist WHERE id = %d", id))
	if len(row) != 2 || row[1][0] != "idle in transaction" || row[1][1] != "transaction" || row[1][2] != cluster.Primary.Name {
		t.Errorf("processlist of the session in a transaction: %q", row)
	}
	adminRows(t, p, fmt.Sprintf("KILL %d", id))
	if _, err := victim.ExecContext(ctx, "SELECT 1"); err == nil {
		t.Error("the session killed from the admin interface still answers")
	}
	if out := adminExpectError(t, p, fmt.Sprintf("KILL %d", id)); !strings.Contains(out, "1094") {
		t.Errorf("KILL of a gone session: %s", out)
	}
}
