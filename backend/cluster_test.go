package backend

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"switchyard/conf"
)

func testCluster() *Cluster {
	c := NewCluster([]ServerSpec{{Name: "db1", Address: "127.0.0.1:1"}, {Name: "db2", Address: "127.0.0.1:2"}, {Name: "db3", Address: "127.0.0.1:3"}}, Options{Logger: discardLogger()})
	c.SetProbing(true)
	for i, s := range c.Servers() {
		s.healthy.Store(true)
		if i == 0 {
			s.role.Store(int32(RolePrimary))
		} else {
			s.role.Store(int32(RoleReplica))
			s.readable.Store(true)
		}
	}
	return c
}

func names(servers []*Server) []string {
	var out []string
	for _, s := range servers {
		out = append(out, s.Name)
	}
	return out
}

func TestOperatorStatusesAndShunning(t *testing.T) {
	c := testCluster()
	if got := names(c.Replicas(nil)); len(got) != 2 {
		t.Fatalf("replicas %v, want db2 and db3", got)
	}
	if err := c.SetServerStatus("db2", StatusOfflineSoft); err != nil {
		t.Fatal(err)
	}
	if got := names(c.Replicas(nil)); len(got) != 1 || got[0] != "db3" {
		t.Fatalf("with db2 OFFLINE_SOFT: replicas %v, want [db3]", got)
	}
	if err := c.SetServerStatus("db1", StatusOfflineHard); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Primary(); err == nil {
		t.Fatal("an OFFLINE_HARD primary still takes writes")
	}
	if err := c.SetServerStatus("db1", StatusOnline); err != nil {
		t.Fatal(err)
	}
	if p, err := c.Primary(); err != nil || p.Name != "db1" {
		t.Fatalf("back ONLINE: primary %v, %v", p, err)
	}
	if err := c.SetServerStatus("db1", StatusShunned); err == nil {
		t.Fatal("SHUNNED set by hand")
	}
	if err := c.SetServerStatus("nope", StatusOnline); err == nil {
		t.Fatal("unknown server accepted")
	}
	c.Servers()[2].healthy.Store(false)
	if st := c.Servers()[2].Status(); st != StatusShunned {
		t.Fatalf("failing server status %v, want SHUNNED", st)
	}
	if got := names(c.Replicas(nil)); len(got) != 0 {
		t.Fatalf("replicas %v, want none (db2 offline, db3 shunned)", got)
	}
	snap := c.Snapshot()
	if len(snap) != 3 || snap[1].Status != StatusOfflineSoft || snap[2].Status != StatusShunned || snap[0].Role != RolePrimary {
		t.Fatalf("snapshot %+v", snap)
	}
	var kinds []string
	for _, e := range c.Events() {
		kinds = append(kinds, e.Kind+":"+e.Server)
	}
	if len(kinds) != 3 {
		t.Fatalf("events %v, want three status changes", kinds)
	}
}

func TestSplitBrainDetection(t *testing.T) {
	c := testCluster()
	c.checkSplitBrain(c.Servers())
	if c.SplitBrain() != "" {
		t.Fatalf("split brain reported for a sane cluster: %s", c.SplitBrain())
	}
	c.Servers()[1].role.Store(int32(RolePrimary))
	c.checkSplitBrain(c.Servers())
	if c.SplitBrain() == "" {
		t.Fatal("two writable servers not reported")
	}
	if _, err := c.Primary(); err == nil {
		t.Fatal("writes accepted during split brain")
	}
	c.Servers()[1].role.Store(int32(RoleReplica))
	a, b := "127.0.0.1:1", "127.0.0.1:9"
	c.Servers()[1].source.Store(&a)
	c.Servers()[2].source.Store(&b)
	c.Servers()[1].replicating.Store(true)
	c.Servers()[2].replicating.Store(true)
	c.checkSplitBrain(c.Servers())
	if c.SplitBrain() == "" {
		t.Fatal("replicas following different sources not reported")
	}
	c.Servers()[2].source.Store(&a)
	c.checkSplitBrain(c.Servers())
	if c.SplitBrain() != "" {
		t.Fatalf("still reported after it was resolved: %s", c.SplitBrain())
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// logRecorder keeps the messages a slog logger wrote.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, r.Message)
	return nil
}
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecorder) WithGroup(string) slog.Handler      { return h }

func (h *logRecorder) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

// TestStateChangesLoggedOnce: a primary that dies under client traffic is
// noticed first by failed connects, then by the monitor; it is logged down
// once, whoever noticed first, and up once when it answers again.
func TestStateChangesLoggedOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	rec := &logRecorder{}
	c := NewCluster([]ServerSpec{{Name: "db1", Address: dead}}, Options{Logger: slog.New(rec), ConnectTimeout: time.Second})
	c.SetProbing(true)
	s := c.Servers()[0]
	c.setHealthy(s, true, nil, time.Now())
	c.setRole(s, RolePrimary)
	for range shunAfterDialFailures + 2 {
		if _, err := c.Connect(context.Background(), s, DialOptions{}); err == nil {
			t.Fatal("connected to a dead address")
		}
	}
	if s.Status() != StatusShunned {
		t.Fatalf("status %v after %d failed connects, want SHUNNED", s.Status(), shunAfterDialFailures+2)
	}
	c.setHealthy(s, false, errors.New("monitor: connection refused"), time.Now()) // the monitor's check
	if n := rec.count("server is down; no new statements go to it"); n != 1 {
		t.Fatalf("server down logged %d times, want once: %q", n, rec.msgs)
	}
	c.setHealthy(s, true, nil, time.Now())
	c.setHealthy(s, true, nil, time.Now())
	if n := rec.count("server is up"); n != 2 { // once at the start, once now
		t.Fatalf("server up logged %d times, want twice: %q", n, rec.msgs)
	}
	kinds := []string{}
	for _, e := range c.Events() {
		kinds = append(kinds, e.Kind)
	}
	if want := []string{"server_up", "server_down", "server_up"}; !slices.Equal(kinds, want) {
		t.Fatalf("events %v, want %v", kinds, want)
	}
}

// TestFirstCheckFailureLogged: a server that is down from the start is
// logged as down at its first check.
func TestFirstCheckFailureLogged(t *testing.T) {
	rec := &logRecorder{}
	c := NewCluster([]ServerSpec{{Name: "db1", Address: "127.0.0.1:1"}}, Options{Logger: slog.New(rec)})
	c.setHealthy(c.Servers()[0], false, errors.New("refused"), time.Now())
	c.setHealthy(c.Servers()[0], false, errors.New("refused"), time.Now())
	if n := rec.count("server is down; no new statements go to it"); n != 1 {
		t.Fatalf("logged %d times, want once", n)
	}
}

// TestZeroPoolOptionsAreConfigDefaults: a Pool from zero options keeps as
// many idle connections, as long, as the config's defaults say.
func TestZeroPoolOptionsAreConfigDefaults(t *testing.T) {
	def := conf.Default().Pool
	got := PoolOptions{}.withDefaults()
	if got.MaxIdlePerServer != def.MaxIdlePerServer || got.IdleTimeout != def.IdleTimeout || got.MaxLifetime != def.MaxLifetime {
		t.Errorf("zero PoolOptions: %+v; config defaults %+v", got, def)
	}
	if c := NewCluster(nil, Options{}); c.ConnectTimeout() != conf.Default().Limits.ConnectTimeout {
		t.Errorf("zero cluster Options: connect timeout %v, config default %v", c.ConnectTimeout(), conf.Default().Limits.ConnectTimeout)
	}
}

// TestRolesWithoutMonitor: without a monitor the first server is the
// primary and the others replicas, and their roles say so, since routing
// asks whether a session is held on a replica; with one, roles are unknown
// until it has looked.
func TestRolesWithoutMonitor(t *testing.T) {
	c := NewCluster([]ServerSpec{{Name: "db1"}, {Name: "db2"}, {Name: "db3"}}, Options{Logger: discardLogger()})
	want := []Role{RolePrimary, RoleReplica, RoleReplica}
	for i, s := range c.Servers() {
		if s.Role() != want[i] {
			t.Errorf("%s: role %v without a monitor, want %v", s.Name, s.Role(), want[i])
		}
	}
	c.SetProbing(true)
	for _, s := range c.Servers() {
		if s.Role() != RoleUnknown {
			t.Errorf("%s: role %v before the monitor looked", s.Name, s.Role())
		}
	}
	c.SetProbing(false)
	if c.Servers()[1].Role() != RoleReplica {
		t.Error("roles not restored when the monitor is turned off")
	}
}
