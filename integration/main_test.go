// Package integration runs switchyard end to end: real MariaDB servers
// started by the harness, the real switchyard binary, and real clients (the
// mariadb CLI, go-sql-driver/mysql, PHP). Nothing here is mocked.
package integration

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"switchyard/integration/harness"
)

// One cluster and one binary serve the whole package: starting them is the
// slow part, and tests that change a server's state restore it.
var (
	cluster *harness.Cluster
	binary  string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	switch reason, required := harness.Missing(); {
	case reason == "":
	case required:
		fmt.Fprintf(os.Stderr, "integration tests need a MariaDB server (%s=%s): %s\n", harness.RequireEnv, os.Getenv(harness.RequireEnv), reason)
		return 1
	default:
		fmt.Fprintf(os.Stderr, "integration tests skipped: %s\n(make test installs MariaDB and runs them; set %s=1 to make this a failure)\n", reason, harness.RequireEnv)
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "switchyard-it-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary, err = harness.BuildSwitchyard(ctx, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "build switchyard:", err)
		return 1
	}
	cluster, err = harness.StartCluster(ctx, harness.ClusterOptions{
		// Room for the many-clients tests, and for the tests that run
		// with pool.multiplexing off.
		ExtraArgs: []string{"--max-connections=3000"},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start cluster (run `make deps` if mariadbd is missing):", err)
		return 1
	}
	defer cluster.Stop()
	return m.Run()
}

// startProxy starts switchyard in front of the shared cluster and stops it
// when the test ends, failing the test if the proxy logged a panic.
func startProxy(t *testing.T, opt harness.ProxyOptions) *harness.Proxy {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opt.Binary = binary
	opt.Cluster = cluster
	reviveServers(t, ctx)
	p, err := harness.StartProxy(ctx, opt)
	if err != nil {
		t.Fatalf("start proxy: %v", err)
	}
	t.Cleanup(func() {
		_ = p.Stop()
		logs := p.Logs()
		if strings.Contains(logs, "panic") {
			t.Errorf("proxy log has a panic:\n%s", logs)
		}
		if t.Failed() {
			t.Logf("proxy log tail:\n%s", p.LogTail(40))
		}
	})
	return p
}

// reviveServers restarts any server of the shared cluster that died, so
// one crash fails the test that saw it, not every test after it. The
// server's error log tail is logged: a crash is worth reading about.
func reviveServers(t *testing.T, ctx context.Context) {
	t.Helper()
	for _, s := range cluster.Servers() {
		if s.Running() {
			continue
		}
		t.Logf("server %s is not running; restarting it. Its error log ends:\n%s", s.Name, s.ErrorLogTail(30))
		if err := s.Start(ctx); err != nil {
			t.Fatalf("restart %s: %v", s.Name, err)
		}
	}
	if err := cluster.WaitReplicasCaughtUp(ctx); err != nil {
		t.Fatalf("replicas not caught up: %v", err)
	}
}

// openDB opens a go-sql-driver pool through the proxy, closed at test end.
func openDB(t *testing.T, p *harness.Proxy, user, pass, db, params string) *sql.DB {
	t.Helper()
	d, err := sql.Open("mysql", p.DSN(user, pass, db, params))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func appDB(t *testing.T, p *harness.Proxy, params string) *sql.DB {
	return openDB(t, p, cluster.AppUser, cluster.AppPassword, cluster.Database, params)
}

// mariadbCLI runs the mariadb client against the proxy and returns its
// combined output.
func mariadbCLI(t *testing.T, p *harness.Proxy, user, pass string, args ...string) (string, error) {
	t.Helper()
	host, port, _ := strings.Cut(p.Addr(), ":")
	full := append([]string{"--no-defaults", "-h", host, "-P", port, "-u", user, "-p" + pass, "--batch"}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "mariadb", full...).CombinedOutput()
	return string(out), err
}

// primaryServerID is the server_id of the cluster's primary, read directly.
func primaryServerID(t *testing.T) int {
	t.Helper()
	return cluster.Primary.ServerID
}

// serverConnections counts the sessions of user on the primary, read
// directly from the server, to check that the proxy closes what it opens.
func serverConnections(t *testing.T, user string) int {
	t.Helper()
	db, err := cluster.Primary.DB(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = ?", user).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// procStatusKB reads a field such as VmRSS or VmHWM of a process, in KiB.
func procStatusKB(t *testing.T, pid int, field string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field+":") {
			var kb int
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, field+":")), "%d", &kb)
			return kb
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
