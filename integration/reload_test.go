package integration

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"switchyard/integration/harness"
)

// Reloading the config file: SIGHUP and the admin interface's commands.

const noDropRule = `query_rules:
  - name: no-drop
    match: '(?i)^\s*drop\s'
    error: "DROP is not allowed through the proxy"
`

// rewriteConfig replaces the proxy's config file with edit's result.
func rewriteConfig(t *testing.T, p *harness.Proxy, edit func(string) string) {
	t.Helper()
	b, err := os.ReadFile(p.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.ConfigPath(), []byte(edit(string(b))), 0o600); err != nil {
		t.Fatal(err)
	}
}

// sighupAndWait sends SIGHUP and waits for the reload's outcome (an event of
// kind, "reload" or "reload_failed") to show in the events table.
func sighupAndWait(t *testing.T, p *harness.Proxy, kind string) {
	t.Helper()
	q := "SELECT COUNT(*) FROM events WHERE kind = '" + kind + "'"
	before := adminInt(t, p, q)
	if err := p.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "a "+kind+" event after SIGHUP", func() bool { return adminInt(t, p, q) > before })
}

// TestReloadSIGHUPAppliesNewRule: a rule added to the file applies to new
// statements after SIGHUP, with a reload event; the client's session stays.
func TestReloadSIGHUPAppliesNewRule(t *testing.T) {
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info"})
	db := appDB(t, p, "")
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("DROP TABLE IF EXISTS reload_no_such_table"); err != nil {
		t.Fatal(err)
	}
	before := sessionIDOf(t, db)
	rewriteConfig(t, p, func(s string) string { return s + noDropRule })
	sighupAndWait(t, p, "reload")
	_, err := db.Exec("DROP TABLE IF EXISTS reload_no_such_table")
	if err == nil || !strings.Contains(err.Error(), "DROP is not allowed through the proxy") {
		t.Fatalf("DROP after the reload: %v", err)
	}
	if after := sessionIDOf(t, db); after != before {
		t.Errorf("the client's session changed across the reload: %d, then %d", before, after)
	}
	if n := adminInt(t, p, "SELECT COUNT(*) FROM runtime_query_rules WHERE name = 'no-drop'"); n != 1 {
		t.Errorf("runtime_query_rules has %d no-drop rules", n)
	}
	if n := adminInt(t, p, "SELECT COUNT(*) FROM query_rules WHERE name = 'no-drop'"); n != 1 {
		t.Errorf("the staged query_rules have %d no-drop rules: SIGHUP loads the file into them too", n)
	}
}

func sessionIDOf(t *testing.T, db *sql.DB) uint64 {
	t.Helper()
	var id uint64
	if err := db.QueryRow("SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestReloadBrokenFileChangesNothing: SIGHUP, RELOAD CONFIG or LOAD CONFIG
// FROM FILE with a broken file change nothing, and the error, with the
// file and line, is in events, the log and the admin client's answer.
func TestReloadBrokenFileChangesNothing(t *testing.T) {
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", ExtraYAML: noDropRule})
	db := appDB(t, p, "")
	rewriteConfig(t, p, func(s string) string {
		return strings.Replace(s, "DROP is not allowed", "changed message", 1) + "colour: blue\n"
	})
	sighupAndWait(t, p, "reload_failed")
	detail := adminValue(t, p, "SELECT detail FROM events WHERE kind = 'reload_failed' ORDER BY time DESC LIMIT 1")
	if !strings.Contains(detail, "switchyard.yaml:") || !strings.Contains(detail, "colour: unknown key") {
		t.Errorf("event detail %q, want the file, line and problem", detail)
	}
	if !containsLog(p, "colour: unknown key") {
		t.Errorf("the problem is not in the log:\n%s", p.LogTail(20))
	}
	_, err := db.Exec("DROP TABLE IF EXISTS reload_no_such_table")
	if err == nil || !strings.Contains(err.Error(), "DROP is not allowed through the proxy") {
		t.Errorf("the old rule after a rejected reload: %v", err)
	}
	for _, cmd := range []string{"RELOAD CONFIG", "LOAD CONFIG FROM FILE", "LOAD MYSQL QUERY RULES FROM DISK"} {
		if out := adminExpectError(t, p, cmd); !strings.Contains(out, "colour: unknown key") || !strings.Contains(out, "switchyard.yaml:") {
			t.Errorf("%s: %s", cmd, out)
		}
	}
	if msg := adminValue(t, p, "SELECT error FROM query_rules"); msg != "DROP is not allowed through the proxy" {
		t.Errorf("the staged rule changed: %q", msg)
	}
	if n := adminInt(t, p, "SELECT COUNT(*) FROM runtime_servers"); n != 3 {
		t.Errorf("runtime_servers: %d rows", n)
	}
	// A staged change that fails validation names its row and column, and
	// changes nothing either.
	out := adminExpectError(t, p, "UPDATE servers SET address = 'nowhere' WHERE name = 'db2'; LOAD CONFIG TO RUNTIME")
	if !strings.Contains(out, "servers") || !strings.Contains(out, "db2") || !strings.Contains(out, "address") {
		t.Errorf("invalid staged row: %s", out)
	}
	if addr := adminValue(t, p, "SELECT address FROM runtime_servers WHERE name = 'db2'"); addr != cluster.Replicas[0].Addr() {
		t.Errorf("db2's runtime address became %q", addr)
	}
}

// TestReloadUnderSysbenchLoad: reloads that change servers, weights,
// routing, pool and limits while sysbench reads and writes through the
// proxy cost the clients no error and no reconnect.
func TestReloadUnderSysbenchLoad(t *testing.T) {
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", ExtraYAML: fastMonitor})
	host, port, _ := strings.Cut(p.Addr(), ":")
	args := []string{"--db-driver=mysql", "--mysql-host=" + host, "--mysql-port=" + port,
		"--mysql-user=" + cluster.AppUser, "--mysql-password=" + cluster.AppPassword, "--mysql-db=" + cluster.Database,
		"--tables=1", "--table-size=1000", "--mysql-ignore-errors=none"}
	sysbench := func(test string, extra ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "sysbench", append(append([]string{test}, args...), extra...)...).CombinedOutput()
		return string(out), err
	}
	for _, step := range []string{"cleanup", "prepare"} {
		if out, err := sysbench("oltp_point_select", step); err != nil {
			t.Fatalf("sysbench %s: %v\n%s", step, err, out)
		}
	}
	defer sysbench("oltp_point_select", "cleanup")
	if err := cluster.WaitReplicasCaughtUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	original, err := os.ReadFile(p.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	outs := make([]string, 2)
	errs := make([]error, 2)
	done := make(chan struct{})
	for i, run := range [][]string{
		{"oltp_point_select", "--threads=8", "--time=8", "run"},
		{"oltp_insert", "--threads=4", "--time=8", "run"},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = sysbench(run[0], run[1:]...)
		}()
	}
	go func() { wg.Wait(); close(done) }()

	r1 := cluster.Replicas[1]
	steps := []func(){
		func() {
			rewriteConfig(t, p, func(s string) string {
				s = strings.Replace(s, "pool:\n", "pool:\n  max_idle_per_server: 8\n", 1)
				return s + "routing:\n  balance: round_robin\n  read_only_functions: [f1]\nlimits:\n  max_client_connections: 5000\n"
			})
			sighupAndWait(t, p, "reload")
		},
		func() {
			adminRows(t, p, "DELETE FROM servers WHERE name = '"+r1.Name+"'; LOAD CONFIG TO RUNTIME")
		},
		func() {
			adminRows(t, p, fmt.Sprintf("INSERT INTO servers (name, address, weight) VALUES ('%s', '%s', 50); LOAD CONFIG TO RUNTIME", r1.Name, r1.Addr()))
		},
		func() {
			adminRows(t, p, "UPDATE variables SET variable_value = '300ms' WHERE variable_name = 'monitor.interval'; LOAD MYSQL VARIABLES TO RUNTIME")
		},
		func() {
			if err := os.WriteFile(p.ConfigPath(), original, 0o600); err != nil {
				t.Error(err)
			}
			sighupAndWait(t, p, "reload")
		},
	}
	reloads := 0
	time.Sleep(time.Second) // sysbench connects and runs first
loop:
	for i := 0; ; i++ {
		select {
		case <-done:
			break loop
		default:
		}
		steps[i%len(steps)]()
		reloads++
		time.Sleep(200 * time.Millisecond)
	}
	for i, out := range outs {
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "queries:") || strings.Contains(line, "ignored errors:") {
				t.Logf("sysbench run %d: %s", i, strings.Join(strings.Fields(line), " "))
			}
		}
		if errs[i] != nil {
			t.Errorf("sysbench run %d failed during reloads: %v\n%s", i, errs[i], out)
			continue
		}
		if !regexp.MustCompile(`ignored errors:\s+0\s`).MatchString(out) || !regexp.MustCompile(`reconnects:\s+0\s`).MatchString(out) {
			t.Errorf("sysbench run %d saw errors or reconnects:\n%s", i, out)
		}
	}
	if reloads < len(steps) {
		t.Errorf("only %d reloads ran during the load", reloads)
	}
	t.Logf("%d reloads under sysbench load", reloads)
	if n := adminInt(t, p, "SELECT COUNT(*) FROM events WHERE kind = 'reload_failed'"); n != 0 {
		t.Errorf("%d reloads failed", n)
	}
}

// TestReloadWithoutAdminInterface: with no admin interface (listen.admin
// ""), SIGHUP still reloads the file, and a broken file is rejected in the
// log.
func TestReloadWithoutAdminInterface(t *testing.T) {
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", ExtraYAML: "listen:\n  admin: \"\"\n"})
	db := appDB(t, p, "")
	rewriteConfig(t, p, func(s string) string { return s + "colour: blue\n" })
	if err := p.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the rejected reload in the log", func() bool { return containsLog(p, "colour: unknown key") })
	rewriteConfig(t, p, func(s string) string { return strings.Replace(s, "colour: blue\n", noDropRule, 1) })
	if err := p.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the new rule to apply", func() bool {
		_, err := db.Exec("DROP TABLE IF EXISTS reload_no_such_table")
		return err != nil && strings.Contains(err.Error(), "DROP is not allowed through the proxy")
	})
	if !containsLog(p, "config reloaded") {
		t.Errorf("the reload is not in the log:\n%s", p.LogTail(20))
	}
}
