package integration

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"switchyard/integration/harness"
)

// TestFirewallLearnThenEnforce runs statements in learn mode, which records
// their digests in the allow-list file; switched to enforce mode by a
// reload, statements of those digests (other literals, text or prepared)
// run and an unseen one is refused with 1148 (42000). A digest removed from
// the file by hand is refused after the next reload.
func TestFirewallLearnThenEnforce(t *testing.T) {
	setupRoutingTable(t)
	allow := filepath.Join(t.TempDir(), "allowlist.yaml")
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info",
		ExtraYAML: "firewall:\n  mode: learn\n  allowlist_file: " + allow + "\n"})
	db := appDB(t, p, "")
	var v string
	if err := db.QueryRow("SELECT v FROM route_t WHERE id = 1").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("UPDATE route_t SET v = ? WHERE id = ?", "fw", 2); err != nil { // prepared
		t.Fatal(err)
	}
	read := func() string { b, _ := os.ReadFile(allow); return string(b) }
	eventually(t, 10*time.Second, "the allow-list file to hold both statements", func() bool {
		f := read()
		return strings.Contains(f, "select `v` from `route_t` where `id` = ?") && strings.Contains(f, "update `route_t` set `v` = ?")
	})

	// reload waits for the reload to be applied: a statement sent before
	// would still be learned, and allowed ever after.
	reload := func(cfg string) {
		t.Helper()
		before := strings.Count(p.Logs(), "event=reload ")
		if err := os.WriteFile(p.ConfigPath(), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := p.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "the reload to be applied", func() bool {
			return strings.Count(p.Logs(), "event=reload ") > before
		})
	}
	cfg, err := os.ReadFile(p.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	reload(strings.Replace(string(cfg), "mode: learn", "mode: enforce", 1))
	refused := func(err error) bool {
		var me *mysql.MySQLError
		return errors.As(err, &me) && me.Number == 1148 && string(me.SQLState[:]) == "42000"
	}
	eventually(t, 10*time.Second, "an unseen statement to be refused with 1148 (42000)", func() bool {
		var n int
		return refused(db.QueryRow("SELECT COUNT(*) FROM route_t").Scan(&n))
	})
	if err := db.QueryRow("SELECT v FROM route_t WHERE id = 2").Scan(&v); err != nil {
		t.Errorf("a learned read with another literal: %v", err)
	}
	if _, err := db.Exec("UPDATE route_t SET v = ? WHERE id = ?", "fw2", 1); err != nil {
		t.Errorf("a learned prepared write: %v", err)
	}
	if _, err := db.Exec("DELETE FROM route_t WHERE id = 999"); !refused(err) {
		t.Errorf("an unseen write: %v, want 1148", err)
	}
	fams := scrape(t, p)
	if v, _ := metricValue(fams, "switchyard_firewall_blocked_total", nil); v < 2 {
		t.Errorf("switchyard_firewall_blocked_total = %v, want at least 2", v)
	}

	// The operator removes the UPDATE from the list.
	var kept []string
	for _, line := range strings.Split(read(), "\n") {
		if !strings.Contains(line, "update `route_t`") {
			kept = append(kept, line)
		}
	}
	if err := os.WriteFile(allow, []byte(strings.Join(kept, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _ = os.ReadFile(p.ConfigPath())
	reload(string(cfg))
	eventually(t, 10*time.Second, "the removed statement to be refused", func() bool {
		_, err := db.Exec("UPDATE route_t SET v = ? WHERE id = ?", "fw3", 1)
		return refused(err)
	})
	if err := db.QueryRow("SELECT v FROM route_t WHERE id = 1").Scan(&v); err != nil {
		t.Errorf("a learned read after the edit: %v", err)
	}
}
