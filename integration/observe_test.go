package integration

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"switchyard/integration/harness"
)

// httpGet fetches path from the proxy's listen.http and returns the status
// code and body.
func httpGet(t *testing.T, p *harness.Proxy, path string) (int, string) {
	t.Helper()
	code, body, err := tryHTTPGet(p.HTTPAddr(), path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return code, body
}

func tryHTTPGet(addr, path string) (int, string, error) {
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + addr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// scrape reads /metrics and parses it as the Prometheus text format; a body
// that does not parse fails the test.
func scrape(t *testing.T, p *harness.Proxy) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := httpGet(t, p, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: status %d: %s", code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics is not Prometheus text: %v\n%s", err, body)
	}
	return fams
}

// metricValue is the value of the series of name whose labels include
// want (a counter, gauge or histogram count), and whether there is one.
func metricValue(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	total, found := 0.0, false
next:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		found = true
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		case m.Histogram != nil:
			total += float64(m.Histogram.GetSampleCount())
		case m.Untyped != nil:
			total += m.Untyped.GetValue()
		}
	}
	return total, found
}

// TestMetricsMoveWithTraffic scrapes /metrics before and after some
// statements: the text parses, and the counters of connections, statements
// by route and class, errors by errno and latency per server move.
func TestMetricsMoveWithTraffic(t *testing.T) {
	setupRoutingTable(t)
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", ExtraYAML: fastMonitor})
	db := appDB(t, p, "interpolateParams=true") // text statements: COM_QUERY
	eventually(t, 10*time.Second, "reads on both replicas", func() bool { return bothReplicas(readServers(t, db)) })
	before := scrape(t, p)
	get := func(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
		v, _ := metricValue(fams, name, labels)
		return v
	}

	// Reads first: after a write, read-your-writes may keep a session's
	// reads on the primary.
	for range 5 {
		var v string
		if err := db.QueryRow("SELECT v FROM route_t WHERE id = ?", 1).Scan(&v); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		if _, err := db.Exec("UPDATE route_t SET v = ? WHERE id = 2", fmt.Sprint("m", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec("SELECT * FROM no_such_table_metrics"); err == nil {
		t.Fatal("a read of a missing table worked")
	}
	// A connection of its own, so the client connection counter moves.
	extra := appDB(t, p, "")
	if err := extra.Ping(); err != nil {
		t.Fatal(err)
	}
	after := scrape(t, p)

	grew := func(name string, labels map[string]string, by float64) {
		t.Helper()
		b, a := get(before, name, labels), get(after, name, labels)
		if a-b < by {
			t.Errorf("%s%v went from %v to %v, want it up by at least %v", name, labels, b, a, by)
		}
	}
	grew("switchyard_client_connections_total", nil, 1)
	grew("switchyard_statements_total", map[string]string{"route": "replica", "class": "read"}, 5)
	grew("switchyard_statements_total", map[string]string{"route": "primary", "class": "write"}, 5)
	grew("switchyard_commands_total", map[string]string{"command": "COM_QUERY"}, 11)
	grew("switchyard_client_errors_total", map[string]string{"errno": "1146", "origin": "server"}, 1)
	grew("switchyard_statement_duration_seconds", map[string]string{"server": cluster.Primary.Name}, 5)
	grew("switchyard_statement_duration_seconds", nil, 11)
	if v := get(after, "switchyard_client_connections", nil); v < 2 {
		t.Errorf("switchyard_client_connections = %v with two clients open", v)
	}
	for _, s := range cluster.Servers() {
		for _, name := range []string{"switchyard_pool_open_connections", "switchyard_pool_idle_connections",
			"switchyard_pool_borrowed_connections", "switchyard_pool_waiters", "switchyard_server_up"} {
			if _, ok := metricValue(after, name, map[string]string{"server": s.Name}); !ok {
				t.Errorf("no %s for server %s", name, s.Name)
			}
		}
	}
	if v := get(after, "switchyard_server_role", map[string]string{"server": cluster.Primary.Name, "role": "primary"}); v != 1 {
		t.Errorf("switchyard_server_role{server=%s,role=primary} = %v, want 1", cluster.Primary.Name, v)
	}
	for _, r := range cluster.Replicas {
		if v := get(after, "switchyard_server_read_pool", map[string]string{"server": r.Name}); v != 1 {
			t.Errorf("switchyard_server_read_pool{server=%s} = %v, want 1", r.Name, v)
		}
		if _, ok := metricValue(after, "switchyard_server_replication_lag_seconds", map[string]string{"server": r.Name}); !ok {
			t.Errorf("no replication lag for replica %s", r.Name)
		}
	}
	if v := get(after, "switchyard_primary_writable", nil); v != 1 {
		t.Errorf("switchyard_primary_writable = %v, want 1", v)
	}

	code, body := httpGet(t, p, "/status")
	if code != http.StatusOK || !strings.Contains(body, `"role": "primary"`) || !strings.Contains(body, cluster.Replicas[0].Name) ||
		!strings.Contains(body, p.ConfigPath()) {
		t.Errorf("GET /status: %d\n%s", code, body)
	}
}

// TestHealthFollowsPrimary kills the primary of a cluster of its own with
// failover off: /health turns 503 once the monitor sees it gone, and 200
// again once it is back.
func TestHealthFollowsPrimary(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := harness.StartCluster(ctx, harness.ClusterOptions{BaseDir: t.TempDir(), Replicas: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	p, err := harness.StartProxy(ctx, harness.ProxyOptions{Binary: binary, Cluster: c, LogLevel: "info",
		ExtraYAML: fastMonitor + "failover:\n  auto: false\n"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = p.Stop()
		if t.Failed() {
			t.Logf("proxy log tail:\n%s", p.LogTail(40))
		}
	}()
	health := func() int {
		code, _, err := tryHTTPGet(p.HTTPAddr(), "/health")
		if err != nil {
			t.Fatalf("GET /health: %v", err)
		}
		return code
	}
	if code := health(); code != http.StatusOK {
		t.Fatalf("GET /health with the primary up: %d, want 200", code)
	}
	c.Primary.Kill()
	eventually(t, 20*time.Second, "/health to answer 503 with the primary dead", func() bool { return health() == http.StatusServiceUnavailable })
	_, body, _ := tryHTTPGet(p.HTTPAddr(), "/health")
	if !strings.Contains(body, c.Primary.Name) {
		t.Errorf("/health body does not say which primary is gone: %q", body)
	}
	if err := c.Primary.Start(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "/health to answer 200 with the primary back", func() bool { return health() == http.StatusOK })
}

// mysqlConfig is a go-sql-driver config for the app user at addr.
func mysqlConfig(addr string) *mysql.Config {
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr, cfg.User, cfg.Passwd, cfg.DBName = "tcp", addr, cluster.AppUser, cluster.AppPassword, cluster.Database
	cfg.Timeout = 5 * time.Second
	return cfg
}

// connector connects to addr as the app user, from the local address from
// when it is set (a loopback address such as 127.0.0.2, so that a proxy
// in between has a client address to pass on that is not its own).
func connector(t *testing.T, addr string, from net.IP) driver.Connector {
	t.Helper()
	return mustConnector(t, mysqlConfig(addr), from)
}

func mustConnector(t *testing.T, cfg *mysql.Config, from net.IP) driver.Connector {
	t.Helper()
	if from != nil {
		cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: from}}
			return d.DialContext(ctx, network, addr)
		}
	}
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// haproxy is an HAProxy process the test runs.
type haproxy struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// startHAProxy runs haproxy in the foreground with cfg and stops it at the
// end of the test. cfg is everything after the global and defaults sections.
func startHAProxy(t *testing.T, cfg string) *haproxy {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/haproxy"); err != nil {
			t.Fatal("haproxy is not installed (make deps installs it)")
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "haproxy.cfg")
	full := "global\n\tmaxconn 200\ndefaults\n\tmode tcp\n\ttimeout connect 2s\n\ttimeout client 1m\n\ttimeout server 1m\n\ttimeout check 1s\n" + cfg
	if err := os.WriteFile(path, []byte(full), 0o644); err != nil {
		t.Fatal(err)
	}
	h := &haproxy{log: filepath.Join(dir, "haproxy.log"), done: make(chan struct{})}
	logf, err := os.Create(h.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	h.cmd = exec.Command(bin, "-db", "-f", path)
	h.cmd.Stdout, h.cmd.Stderr = logf, logf
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = h.cmd.Wait(); close(h.done) }()
	t.Cleanup(func() {
		_ = h.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-h.done:
		case <-time.After(5 * time.Second):
			_ = h.cmd.Process.Kill()
			<-h.done
		}
		if t.Failed() {
			t.Logf("haproxy log:\n%s", h.logs())
		}
	})
	return h
}

func (h *haproxy) logs() string {
	b, _ := os.ReadFile(h.log)
	return string(b)
}

// TestHAProxyHealthCheck puts HAProxy with option httpchk GET /health in
// front of switchyards: one whose config lists no writable server answers
// 503 and is kept out although its MySQL port accepts; of the two healthy
// ones, the one stopped is marked down and clients go on through the other.
func TestHAProxyHealthCheck(t *testing.T) {
	p1 := startProxy(t, harness.ProxyOptions{LogLevel: "info", ExtraYAML: fastMonitor})
	p2 := startProxy(t, harness.ProxyOptions{LogLevel: "info", ExtraYAML: fastMonitor})
	noPrimary := startProxy(t, harness.ProxyOptions{LogLevel: "debug", ExtraYAML: fastMonitor, Servers: cluster.Replicas})
	front := freeAddr(t)
	server := func(name string, p *harness.Proxy) string {
		_, port, _ := net.SplitHostPort(p.HTTPAddr())
		return fmt.Sprintf("\tserver %s %s check port %s inter 200ms fall 2 rise 1\n", name, p.Addr(), port)
	}
	h := startHAProxy(t, "frontend mysql\n\tbind "+front+"\n\tdefault_backend switchyards\n"+
		"backend switchyards\n\tbalance roundrobin\n\toption httpchk GET /health\n\thttp-check expect status 200\n"+
		server("sy1", p1)+server("sy2", p2)+server("sy3", noPrimary))
	eventually(t, 20*time.Second, "HAProxy to mark sy3 (no writable primary) down with an HTTP status", func() bool {
		return strings.Contains(h.logs(), "switchyards/sy3 is DOWN") && strings.Contains(h.logs(), "503")
	})

	open := func() *sql.DB {
		db := sql.OpenDB(connector(t, front, nil))
		db.SetMaxIdleConns(0) // every query a new connection, so each is balanced anew
		t.Cleanup(func() { db.Close() })
		return db
	}
	db := open()
	query := func() error {
		var id int
		return db.QueryRow("SELECT @@server_id").Scan(&id)
	}
	eventually(t, 20*time.Second, "clients served through HAProxy", func() bool { return query() == nil })
	for i := range 6 {
		if err := query(); err != nil {
			t.Fatalf("query %d through HAProxy with both switchyards up: %v", i, err)
		}
	}
	if err := p1.Stop(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "HAProxy to mark the stopped switchyard down", func() bool {
		return strings.Contains(h.logs(), "switchyards/sy1 is DOWN")
	})
	for i := range 20 {
		if err := query(); err != nil {
			t.Fatalf("query %d through HAProxy after sy1 stopped: %v", i, err)
		}
	}
	if strings.Contains(h.logs(), "switchyards/sy2 is DOWN") {
		t.Errorf("HAProxy marked the healthy switchyard down")
	}
	if strings.Contains(noPrimary.Logs(), "client logged in") {
		t.Errorf("a client reached the switchyard whose /health said 503")
	}
}
