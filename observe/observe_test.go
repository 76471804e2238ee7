package observe

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"switchyard/backend"
	"switchyard/internal/fakemysql"
	"switchyard/internal/mysqltest"
	"switchyard/proxy"
)

type fixture struct {
	obs     *Observer
	http    *httptest.Server
	srv     *proxy.Server
	cluster *backend.Cluster
	addr    string
	ln      net.Listener
}

// newFixture runs a proxy over a fake primary and replica, and the
// endpoint over it; serve false leaves the proxy not listening.
func newFixture(t *testing.T, serve bool) *fixture {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var specs []backend.ServerSpec
	for i, name := range []string{"db1", "db2"} {
		f := fakemysql.Start(t, fakemysql.Options{ReadOnly: i > 0, Replica: map[bool]*fakemysql.ReplicaStatus{
			true: {SourceHost: "127.0.0.1", SourcePort: 3306, IORunning: true, SQLRunning: true}}[i > 0]})
		specs = append(specs, backend.ServerSpec{Name: name, Address: f.Addr(), Weight: 1})
	}
	cl := backend.NewCluster(specs, backend.Options{Logger: log})
	pool := backend.NewPool(backend.PoolOptions{}, cl)
	srv, err := proxy.NewServer(proxy.Options{ListenerOptions: proxy.ListenerOptions{
		Users: []proxy.User{{Name: "app", Password: "secret"}}, Logger: log}, Servers: cl, Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	fx := &fixture{srv: srv, cluster: cl}
	if serve {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		fx.ln, fx.addr = l, l.Addr().String()
		go srv.Serve(l)
		mysqltest.Eventually(t, "the proxy to listen", srv.Accepting)
	}
	fx.obs = New(Sources{Proxy: srv, Cluster: cl, Pool: pool, Version: "test-1", ConfigFile: "/etc/switchyard.yaml", Logger: log})
	fx.http = httptest.NewServer(fx.obs.Handler())
	t.Cleanup(func() {
		fx.http.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		pool.Close()
	})
	return fx
}

func (fx *fixture) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(fx.http.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestMetricsParseAndMove(t *testing.T) {
	fx := newFixture(t, true)
	c := mysqltest.Dial(t, fx.addr, mysql.CLIENT_PROTOCOL_41|mysql.CLIENT_SECURE_CONNECTION|mysql.CLIENT_PLUGIN_AUTH|mysql.CLIENT_TRANSACTIONS, nil)
	if err := c.Login(mysqltest.Login{User: "app", Pass: "secret"}); err != nil {
		t.Fatal(err)
	}
	c.Value("SELECT 1")
	fx.obs.Reloaded(true)
	fx.obs.Reloaded(false)
	code, body := fx.get(t, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("not Prometheus text: %v\n%s", err, body)
	}
	for _, want := range []string{
		`switchyard_statements_total{class="read",route="replica"} 1`,
		`switchyard_commands_total{command="COM_QUERY"} 1`,
		`switchyard_client_connections 1`,
		`switchyard_reloads_total{result="ok"} 1`,
		`switchyard_reloads_total{result="rejected"} 1`,
		`switchyard_server_role{role="primary",server="db1"} 1`,
		`switchyard_server_read_pool{server="db2"} 1`,
		`switchyard_pool_open_connections{server="db2"} 1`,
		`switchyard_statement_duration_seconds_count{server="db2"} 1`,
		`switchyard_build_info{version="test-1"} 1`,
		`switchyard_healthy 1`,
		`switchyard_firewall_mode{mode="off"} 1`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("no line %s", want)
		}
	}
	if fams["go_goroutines"] == nil || fams["process_resident_memory_bytes"] == nil {
		t.Error("no Go runtime or process metrics")
	}
	for name := range fams {
		if !strings.HasPrefix(name, "switchyard_") && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
			t.Errorf("metric %s is not prefixed switchyard_", name)
		}
	}
}

func TestHealthAndStatus(t *testing.T) {
	fx := newFixture(t, false)
	if code, body := fx.get(t, "/health"); code != http.StatusServiceUnavailable || !strings.Contains(body, "does not accept clients") {
		t.Errorf("before the proxy listens: %d %q", code, body)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go fx.srv.Serve(l)
	mysqltest.Eventually(t, "the proxy to listen", fx.srv.Accepting)
	if code, body := fx.get(t, "/health"); code != http.StatusOK || !strings.Contains(body, "db1") {
		t.Errorf("serving with a primary: %d %q", code, body)
	}
	if err := fx.cluster.SetServerStatus("db1", backend.StatusOfflineHard); err != nil {
		t.Fatal(err)
	}
	if code, body := fx.get(t, "/health"); code != http.StatusServiceUnavailable || !strings.Contains(body, "OFFLINE_HARD") {
		t.Errorf("primary OFFLINE_HARD: %d %q", code, body)
	}
	code, body := fx.get(t, "/status")
	var st Status
	if err := json.Unmarshal([]byte(body), &st); err != nil || code != http.StatusOK {
		t.Fatalf("status %d: %v\n%s", code, err, body)
	}
	if st.Healthy || st.Primary != "" || len(st.Servers) != 2 || st.Servers[0].Status != "OFFLINE_HARD" ||
		st.Servers[1].Role != "replica" || st.ConfigFile != "/etc/switchyard.yaml" || st.Version != "test-1" || len(st.Events) == 0 {
		t.Errorf("status:\n%s", body)
	}
	if _, body := fx.get(t, "/status"); !strings.Contains(body, `"lag_ms": null`) && !strings.Contains(body, `"lag_ms": 0`) {
		t.Errorf("no lag in the status:\n%s", body)
	}
	if code, _ := fx.get(t, "/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/ served on the endpoint: %d", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = fx.srv.Shutdown(ctx)
	if code, _ := fx.get(t, "/health"); code != http.StatusServiceUnavailable {
		t.Errorf("after shutdown: %d", code)
	}
}
