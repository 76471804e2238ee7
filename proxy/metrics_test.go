package proxy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/firewall"
	"switchyard/internal/mysqltest"
	"switchyard/router"
	"switchyard/wire"
)

func statementCount(m Metrics, route, class string) int64 {
	for _, s := range m.Statements {
		if s.Route == route && s.Class == class {
			return s.N
		}
	}
	return 0
}

func errorCount(m Metrics, errno int, origin string) int64 {
	for _, e := range m.Errors {
		if e.Errno == errno && e.Origin == origin {
			return e.N
		}
	}
	return 0
}

// TestMetricsCount runs reads, a write, a server error, a refused login
// and a pinned session, and reads the counters they moved.
func TestMetricsCount(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	c := h.login(t, mysqltest.Login{User: "app", Pass: "secret", Schema: "shop"})
	for range 3 {
		c.Value("SELECT 1")
	}
	c.MustOK(c.Query("INSERT INTO t VALUES (1)"))
	if e := c.QueryErr("THIS IS NOT SQL"); e.Code != mysql.ER_PARSE_ERROR {
		t.Fatalf("got %v", e)
	}
	c.MustOK(c.Query("SET @v = 1")) // pins the session: a user variable
	if err := h.dial(t).Login(mysqltest.Login{User: "app", Pass: "wrong"}); err == nil {
		t.Fatal("a wrong password logged in")
	}

	// The refusal is counted once the client has its answer.
	mysqltest.Eventually(t, "the refused login counted", func() bool { return h.srv.Metrics().Refused["access_denied"] == 1 })
	m := h.srv.Metrics()
	if m.Clients < 1 || m.ClientsTotal < 2 || m.Refused["access_denied"] != 1 {
		t.Errorf("clients %d, total %d, refused %v", m.Clients, m.ClientsTotal, m.Refused)
	}
	if n := statementCount(m, "replica", "read"); n != 3 {
		t.Errorf("replica reads: %d, want 3 (%+v)", n, m.Statements)
	}
	if n := statementCount(m, "primary", "write"); n != 1 {
		t.Errorf("primary writes: %d, want 1 (%+v)", n, m.Statements)
	}
	if m.Commands["COM_QUERY"] != 6 {
		t.Errorf("commands %v, want 6 COM_QUERY", m.Commands)
	}
	if errorCount(m, mysql.ER_PARSE_ERROR, "server") != 1 || errorCount(m, mysql.ER_ACCESS_DENIED_ERROR, "proxy") != 1 {
		t.Errorf("errors %+v", m.Errors)
	}
	if m.PinnedSessions != 1 || m.PinnedBy["user_variable"] != 1 || m.Pins["user_variable"] != 1 {
		t.Errorf("pinned %d, by reason %v, pins %v", m.PinnedSessions, m.PinnedBy, m.Pins)
	}
	if _, count, _ := h.backend(primaryName).Latency.Snapshot(); count < 2 {
		t.Errorf("primary latency histogram counted %d commands", count)
	}
	if !m.Accepting {
		t.Error("a serving listener says it does not accept clients")
	}
	c.TCP.Close()
	h.waitPinned(t, 0)
	if m := h.srv.Metrics(); m.PinnedBy["user_variable"] != 0 || m.Pins["user_variable"] != 1 {
		t.Errorf("after the session ended: by reason %v, pins %v", m.PinnedBy, m.Pins)
	}
}

// TestPinLabels: every pin reason has a label.
func TestPinLabels(t *testing.T) {
	seen := map[string]bool{}
	for p := router.Pin(1); p < router.NumPins; p++ {
		if l := pinLabels[p]; l == "" || seen[l] {
			t.Errorf("pin %v: label %q missing or repeated", p, l)
		}
		seen[pinLabels[p]] = true
	}
}

// TestSlowLogNeverLogsLiterals: a statement slower than the threshold is
// logged at info with its digest text, user and server; its literal only
// in the debug line. (Whether the quick statement is logged too depends on
// how loaded the machine is, so only what each line says is checked.)
func TestSlowLogNeverLogsLiterals(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	h.srv.SetSlowLog(50 * time.Millisecond)
	c := h.login(t, mysqltest.Login{User: "app", Pass: "secret", Schema: "shop"})
	c.Value("SELECT 'fast-secret-literal'")
	c.Rows(c.Query("SELECT SLEEP(0.2), 'slow-secret-literal'"))
	if n := h.logs.count("INFO slow query duration"); n < 1 || int64(n) != h.srv.Metrics().SlowQueries {
		t.Fatalf("%d slow query lines, %d counted, want as many and at least 1:\n%s", n, h.srv.Metrics().SlowQueries, h.logs.dump())
	}
	slowSeen := false
	for _, line := range strings.Split(h.logs.dump(), "\n") {
		if strings.HasPrefix(line, "INFO") && strings.Contains(line, "secret-literal") {
			t.Errorf("a literal at info level: %s", line)
		}
		if !strings.Contains(line, "INFO slow query") {
			continue
		}
		if !strings.Contains(line, "user=app") || !strings.Contains(line, "server=") || !strings.Contains(line, "rows=1") {
			t.Errorf("slow query line: %s", line)
		}
		slowSeen = slowSeen || strings.Contains(line, "digest_text=select `sleep` ( ? ) , ?")
	}
	if !slowSeen {
		t.Errorf("no slow query line for the SLEEP:\n%s", h.logs.dump())
	}
	if n := h.logs.count("DEBUG slow query text"); n != h.logs.count("INFO slow query duration") || !strings.Contains(h.logs.dump(), "sql=SELECT SLEEP(0.2), 'slow-secret-literal'") {
		t.Errorf("debug lines missing:\n%s", h.logs.dump())
	}
}

// TestFirewallEnforce: in enforce mode, statements and prepares not on the
// user's allow-list are refused with 1148 (42000) before any server sees
// them; the others run.
func TestFirewallEnforce(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	path := filepath.Join(t.TempDir(), "allow.yaml")
	allow := "app:\n  - SELECT 1\n  - select * from `t` where `id` = ?\n\"*\":\n  - SELECT 2 AS two\n"
	if err := os.WriteFile(path, []byte(allow), 0o600); err != nil {
		t.Fatal(err)
	}
	fw, err := firewall.New(firewall.Options{Mode: firewall.Enforce, File: path})
	if err != nil {
		t.Fatal(err)
	}
	h.srv.SetFirewall(fw)
	c := h.login(t, mysqltest.Login{User: "app", Pass: "secret", Schema: "shop"})
	c.Value("SELECT 1")
	c.Value("SELECT 3")        // the same digest as SELECT 1
	c.Value("SELECT 9 AS two") // allowed for every user
	h.resetLogs()
	for _, q := range []string{"SELECT 1, 2", "DELETE FROM t", "PREPARE s FROM 'SELECT 1'"} {
		e := c.QueryErr(q)
		if e.Code != mysql.ER_NOT_ALLOWED_COMMAND || e.State != "42000" || !strings.Contains(e.Message, "firewall") {
			t.Errorf("%s: %v, want 1148 (42000)", q, e)
		}
	}
	if got := h.ran("DELETE FROM t"); len(got) != 0 {
		t.Errorf("a refused statement reached %v", got)
	}
	c.Command(wire.AppendCommand(nil, mysql.COM_STMT_PREPARE, "SELECT * FROM t"))
	if e := c.MustErr(c.Response(wire.ShapePrepare)); e.Code != mysql.ER_NOT_ALLOWED_COMMAND {
		t.Errorf("an unlisted prepare: %v", e)
	}
	c.Prepare("SELECT * FROM t WHERE id = ?")
	other := h.login(t, mysqltest.Login{User: "bob", Pass: "bobpw", Schema: "shop"})
	other.Value("SELECT 2 AS two")
	if e := other.QueryErr("SELECT 1"); e.Code != mysql.ER_NOT_ALLOWED_COMMAND {
		t.Errorf("another user ran app's statement: %v", e)
	}
	if st := h.srv.FirewallStats(); st.Blocked != 5 || st.Mode != firewall.Enforce {
		t.Errorf("stats %+v, want 5 blocked", st)
	}
	h.srv.SetFirewall(nil)
	c.Rows(c.Query("SELECT 1, 2"))
}

// TestFirewallKey: statements whose literal is SQL are keyed by their
// text, so learning one does not allow every other.
func TestFirewallKey(t *testing.T) {
	cl := router.NewClassifier(nil)
	for _, c := range []struct{ sql, key string }{
		{"SELECT * FROM t WHERE id = 5", "select * from `t` where `id` = ?"},
		{"PREPARE s FROM 'DROP TABLE t'", "PREPARE s FROM 'DROP TABLE t'"},
		{"  EXECUTE IMMEDIATE 'SELECT 1' ", "EXECUTE IMMEDIATE 'SELECT 1'"},
	} {
		class := cl.Classify(c.sql)
		if key, ok := router.FirewallKey(&class, c.sql, 0); key != c.key || !ok {
			t.Errorf("%s: key %q %v, want %q", c.sql, key, ok, c.key)
		}
	}
}
