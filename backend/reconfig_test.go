package backend

import (
	"context"
	"strings"
	"testing"
	"time"

	"switchyard/internal/mysqltest"
)

// TestReconfigureServers: a reload keeps the servers whose name and
// address stay (their state and connections), changes their settings in
// place, adds new ones and retires the removed, which drain.
func TestReconfigureServers(t *testing.T) {
	c := NewCluster([]ServerSpec{{Name: "db1", Address: "127.0.0.1:1", Weight: 100}, {Name: "db2", Address: "127.0.0.1:2", Weight: 100},
		{Name: "db3", Address: "127.0.0.1:3"}}, Options{Logger: discardLogger()})
	db1, db2, db3 := c.Server("db1"), c.Server("db2"), c.Server("db3")
	if err := c.SetServerStatus("db2", StatusOfflineSoft); err != nil {
		t.Fatal(err)
	}
	ch := c.Reconfigure([]ServerSpec{{Name: "db2", Address: "127.0.0.1:2", Weight: 5, MaxConnections: 7},
		{Name: "db3", Address: "127.0.0.1:33"}, {Name: "db4", Address: "127.0.0.1:4"}})
	if ch.String() != "servers added db3, db4; removed db1, db3; changed db2" && ch.String() != "servers added db3, db4; removed db3, db1; changed db2" {
		t.Errorf("changes: %s", ch)
	}
	if got := c.Server("db2"); got != db2 || got.Weight() != 5 || got.MaxConnections() != 7 || !got.Promotable() || got.Status() != StatusOfflineSoft {
		t.Errorf("db2 not kept and changed in place: weight %d, max %d, status %s", got.Weight(), got.MaxConnections(), got.Status())
	}
	if c.Server("db3") == db3 || c.Server("db3").Address != "127.0.0.1:33" || c.Server("db4").ID != 4 {
		t.Errorf("a new address is a new server with a new id")
	}
	for _, s := range []*Server{db1, db3} {
		if !s.Retired() || s.Status() != StatusOfflineSoft {
			t.Errorf("%s is not draining: retired %v, %s", s.Name, s.Retired(), s.Status())
		}
	}
	// Without a monitor, roles follow the new order.
	if err := c.SetServerStatus("db2", StatusOnline); err != nil {
		t.Fatal(err)
	}
	if p, err := c.Primary(); err != nil || p != db2 {
		t.Errorf("primary %v, %v", p, err)
	}
	var kinds []string
	for _, e := range c.Events() {
		kinds = append(kinds, e.Kind+":"+e.Server)
	}
	if got := strings.Join(kinds, " "); !strings.Contains(got, "server_removed:db1") || !strings.Contains(got, "server_added:db4") ||
		!strings.Contains(got, "server_changed:db2") {
		t.Errorf("events %s", got)
	}
	if ch := c.Reconfigure([]ServerSpec{{Name: "db2", Address: "127.0.0.1:2", Weight: 5, MaxConnections: 7},
		{Name: "db3", Address: "127.0.0.1:33"}, {Name: "db4", Address: "127.0.0.1:4"}}); !ch.Empty() {
		t.Errorf("the same servers again: %s", ch)
	}
}

// TestRetiredServerDrains: a connection to a removed server keeps working
// for the session that holds it and is closed when given back; the pool's
// idle ones close at once, and no new one opens.
func TestRetiredServerDrains(t *testing.T) {
	fake, c, srv, p := poolOver(t, PoolOptions{}, 5*time.Second, 0)
	held := mustAcquire(t, p, srv, appReq())
	idle := mustAcquire(t, p, srv, appReq())
	p.Release(idle)
	ch := c.Reconfigure(nil)
	p.Drop(ch.Retired)
	mysqltest.Eventually(t, "the idle connection to close", func() bool { return fake.Conns() == 1 })
	if _, err := held.Query("SELECT 1"); err != nil {
		t.Fatalf("the held connection stopped working: %v", err)
	}
	p.Release(held)
	mysqltest.Eventually(t, "the released connection to close", func() bool { return fake.Conns() == 0 })
	if _, err := p.Acquire(context.Background(), srv, appReq()); err == nil {
		t.Error("a new connection opened to a removed server")
	}
}

// TestMaxConnectionsChange: a raised cap wakes a session waiting for a
// slot; a lowered one closes nothing but holds new connections back.
func TestMaxConnectionsChange(t *testing.T) {
	fake, c, srv, p := poolOver(t, PoolOptions{}, 5*time.Second, 1)
	first := mustAcquire(t, p, srv, appReq())
	got := make(chan error, 1)
	go func() {
		cn, err := p.Acquire(context.Background(), srv, Request{Dial: DialOptions{Creds: appCreds, Schema: "other"}})
		if err == nil {
			p.Release(cn)
		}
		got <- err
	}()
	mysqltest.Eventually(t, "the second Acquire to wait", func() bool { return waitersOn(p, srv) })
	c.Reconfigure([]ServerSpec{{Name: "db1", Address: fake.Addr(), MaxConnections: 2}})
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("waiter after the cap was raised: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("raising the cap did not wake the waiting session")
	}
	c.Reconfigure([]ServerSpec{{Name: "db1", Address: fake.Addr(), MaxConnections: 1}})
	if fake.Conns() != 2 {
		t.Errorf("lowering the cap closed connections: %d open", fake.Conns())
	}
	p.Release(first)
	if srv.tryTakeSlot() {
		t.Error("a slot was free with 2 connections open and a cap of 1")
	}
}

// TestPoolSetOptions: a lower max_idle_per_server applies to connections
// given back from then on.
func TestPoolSetOptions(t *testing.T) {
	fake, _, srv, p := poolOver(t, PoolOptions{}, 5*time.Second, 0)
	a, b := mustAcquire(t, p, srv, appReq()), mustAcquire(t, p, srv, appReq())
	p.SetOptions(PoolOptions{MaxIdlePerServer: 1})
	p.Release(a)
	p.Release(b)
	if p.idleCount(srv) != 1 {
		t.Errorf("%d idle, want 1", p.idleCount(srv))
	}
	mysqltest.Eventually(t, "the extra connection to close", func() bool { return fake.Conns() == 1 })
}
