package backend

import (
	"context"
	"errors"
	"testing"
	"time"

	"switchyard/internal/fakemysql"
	"switchyard/internal/mysqltest"
)

// Cluster.Connect: client connections are tracked per server so that an
// operator's OFFLINE_HARD closes them at once; repeated failures shun a
// server; the version servers report becomes the proxy's.

// TestConnectTracksConnections: Server.OpenConns counts the client
// connections Connect opened until they are closed, and the server's
// version is known after the first connect.
func TestConnectTracksConnections(t *testing.T) {
	fake := fakemysql.Start(t, fakemysql.Options{Version: "10.11.7-MariaDB-log"})
	c := clusterOver(t, Options{}, fake)
	srv := c.Servers()[0]
	if _, ok := c.ServerVersion(); ok {
		t.Fatal("a server version known before any connection")
	}
	a := mustConnect(t, c, srv, appDial)
	b := mustConnect(t, c, srv, appDial)
	if srv.OpenConns() != 2 || srv.ConnsOpened.Load() != 2 {
		t.Fatalf("OpenConns %d, ConnsOpened %d; want 2, 2", srv.OpenConns(), srv.ConnsOpened.Load())
	}
	if v, ok := c.ServerVersion(); !ok || v != "10.11.7-MariaDB-log" {
		t.Fatalf("ServerVersion %q %v", v, ok)
	}
	a.Close()
	if srv.OpenConns() != 1 {
		t.Fatalf("OpenConns %d after a close, want 1", srv.OpenConns())
	}
	b.Abort()
	b.Close()
	if srv.OpenConns() != 0 {
		t.Fatalf("OpenConns %d after closing both, want 0", srv.OpenConns())
	}
	if snap := c.Snapshot(); snap[0].OpenConns != 0 || snap[0].Address != fake.Addr() {
		t.Fatalf("snapshot %+v", snap[0])
	}
}

// TestOfflineHard: taking a server OFFLINE_HARD closes every client
// connection to it at once, even one blocked in a long statement, and
// refuses new ones until it is back ONLINE.
func TestOfflineHard(t *testing.T) {
	release := make(chan struct{})
	fake := fakemysql.Start(t, fakemysql.Options{Handle: func(c *fakemysql.Conn, q string) *fakemysql.Result {
		if q == "SELECT blocked" {
			// Hold the statement until the test lets go (the fake only
			// notices a closed client when it answers).
			select {
			case <-release:
			case <-c.Done():
			}
			return &fakemysql.Result{Columns: []string{"x"}}
		}
		return nil
	}})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	c := clusterOver(t, Options{}, fake)
	srv := c.Servers()[0]
	idle := mustConnect(t, c, srv, appDial)
	busy := mustConnect(t, c, srv, appDial)
	errc := make(chan error, 1)
	go func() { _, err := busy.Query("SELECT blocked"); errc <- err }()
	mysqltest.Eventually(t, "the statement to reach the server", func() bool {
		q := fake.Queries()
		return len(q) > 0 && q[len(q)-1] == "SELECT blocked"
	})

	if err := c.SetServerStatus("db1", StatusOfflineHard); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("the blocked statement succeeded on an aborted connection")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the blocked statement still runs after OFFLINE_HARD")
	}
	if !idle.Broken() || !busy.Broken() || srv.OpenConns() != 2 {
		// Aborted connections stay tracked until their users close them.
		t.Fatalf("broken idle %v busy %v, tracked %d", idle.Broken(), busy.Broken(), srv.OpenConns())
	}
	close(release)
	mysqltest.Eventually(t, "the server to see both connections gone", func() bool { return fake.Conns() == 0 })
	if ev := c.Events(); len(ev) != 1 || ev[0].Kind != "status" || ev[0].Detail != "OFFLINE_HARD: closed 2 client connections" {
		t.Fatalf("events %+v", ev)
	}

	if _, err := c.Connect(context.Background(), srv, appDial); err == nil {
		t.Fatal("connected to an OFFLINE_HARD server")
	}
	if srv.OpenConns() != 2 {
		t.Fatalf("refused connection tracked: %d", srv.OpenConns())
	}
	mysqltest.Eventually(t, "the refused connection to be closed", func() bool { return fake.Conns() == 0 })

	if err := c.SetServerStatus("db1", StatusOnline); err != nil {
		t.Fatal(err)
	}
	cn := mustConnect(t, c, srv, appDial)
	if err := cn.Exec("SELECT 1"); err != nil {
		t.Fatalf("back ONLINE: %v", err)
	}
}

// TestOfflineSoft: a drained server takes no new statements from routing
// but keeps its connections, and new ones may still be opened for sessions
// that live there; setting the same status twice records one event.
func TestOfflineSoft(t *testing.T) {
	primary := fakemysql.Start(t, fakemysql.Options{})
	replica := fakemysql.Start(t, fakemysql.Options{})
	c := clusterOver(t, Options{}, primary, replica)
	srv := c.Servers()[1]
	cn := mustConnect(t, c, srv, appDial)
	for range 2 {
		if err := c.SetServerStatus("db2", StatusOfflineSoft); err != nil {
			t.Fatal(err)
		}
	}
	if srv.Status() != StatusOfflineSoft || cn.Broken() {
		t.Fatalf("status %v, connection broken %v", srv.Status(), cn.Broken())
	}
	if err := cn.Exec("SELECT 1"); err != nil {
		t.Fatal(err)
	}
	if r := c.Replicas(nil); len(r) != 0 {
		t.Fatalf("replicas %v: a drained server still takes reads", names(r))
	}
	mustConnect(t, c, srv, appDial)
	if err := c.SetServerStatus("db2", StatusOnline); err != nil {
		t.Fatal(err)
	}
	if r := c.Replicas(nil); len(r) != 1 {
		t.Fatalf("replicas %v after ONLINE", names(r))
	}
	if n := len(c.Events()); n != 2 {
		t.Fatalf("%d events, want 2 (OFFLINE_SOFT once, ONLINE)", n)
	}
}

// TestConnectFailuresShun: three failed connects in a row shun a server the
// monitor watches, before its next check; the server's refusal of a login
// (a wrong password) is no sign the server is down; a success in between
// starts the count again; without a monitor nothing is shunned.
func TestConnectFailuresShun(t *testing.T) {
	wrong := DialOptions{Creds: Credentials{User: "app", Plain: "wrong", HasPassword: true}}
	for _, tc := range []struct {
		name    string
		probing bool
		steps   string // d: connect to the down server, w: wrong password, o: success
		shunned bool
	}{
		{"three in a row", true, "ddd", true},
		{"two", true, "dd", false},
		{"success in between", true, "ddodd", false},
		{"wrong passwords", true, "wwww", false},
		{"no monitor", false, "dddd", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := fakemysql.Start(t, fakemysql.Options{})
			c := clusterOver(t, Options{}, fake)
			c.SetProbing(tc.probing)
			srv := c.Servers()[0]
			c.setHealthy(srv, true, nil, time.Now())
			for _, step := range tc.steps {
				var err error
				switch step {
				case 'd':
					fake.SetDown(true)
					_, err = c.Connect(context.Background(), srv, appDial)
					fake.SetDown(false)
				case 'w':
					_, err = c.Connect(context.Background(), srv, wrong)
				case 'o':
					var cn *Conn
					cn, err = c.Connect(context.Background(), srv, appDial)
					if err == nil {
						cn.Close()
						err = errors.New("ok")
					}
				}
				if err == nil {
					t.Fatalf("step %c succeeded", step)
				}
			}
			if shunned := srv.Status() == StatusShunned; shunned != tc.shunned {
				t.Fatalf("status %v after %q, want shunned %v", srv.Status(), tc.steps, tc.shunned)
			}
			if tc.shunned && srv.LastError() == nil {
				t.Fatal("a shunned server without its error")
			}
		})
	}
}

// TestWithoutMonitor: with no monitor the first server is the primary and
// the others replicas, unless an operator took them offline.
func TestWithoutMonitor(t *testing.T) {
	c := NewCluster([]ServerSpec{{Name: "a", Address: "x:1"}, {Name: "b", Address: "x:2"}, {Name: "c", Address: "x:3"}}, Options{Logger: discardLogger()})
	if p, err := c.Primary(); err != nil || p.Name != "a" {
		t.Fatalf("primary %v %v", p, err)
	}
	if got := names(c.Replicas(nil)); len(got) != 2 || got[0] != "b" || got[1] != "c" {
		t.Fatalf("replicas %v", got)
	}
	_ = c.SetServerStatus("c", StatusOfflineSoft)
	_ = c.SetServerStatus("a", StatusOfflineSoft)
	if _, err := c.Primary(); !errors.Is(err, ErrNoPrimary) {
		t.Fatalf("drained primary: %v", err)
	}
	if got := names(c.Replicas(nil)); len(got) != 1 || got[0] != "b" {
		t.Fatalf("replicas %v", got)
	}
	if c.Server("b") == nil || c.Server("nope") != nil {
		t.Fatal("Server by name")
	}
	empty := NewCluster(nil, Options{})
	if _, err := empty.Primary(); !errors.Is(err, ErrNoPrimary) || len(empty.Replicas(nil)) != 0 {
		t.Fatal("an empty cluster has servers")
	}
}

// TestNames: roles and statuses print as the admin views show them.
func TestNames(t *testing.T) {
	for got, want := range map[string]string{
		RolePrimary.String(): "primary", RoleReplica.String(): "replica", RoleUnknown.String(): "unknown",
		StatusOnline.String(): "ONLINE", StatusShunned.String(): "SHUNNED",
		StatusOfflineSoft.String(): "OFFLINE_SOFT", StatusOfflineHard.String(): "OFFLINE_HARD",
	} {
		if got != want {
			t.Errorf("%q, want %q", got, want)
		}
	}
}

// TestEventsBounded: the event log keeps the newest events within its
// bound, oldest first.
func TestEventsBounded(t *testing.T) {
	c := NewCluster(nil, Options{Logger: discardLogger()})
	for i := range maxEvents + 10 {
		c.event("k", "s", time.Duration(i).String())
	}
	ev := c.Events()
	if len(ev) > maxEvents || len(ev) < maxEvents/2 {
		t.Fatalf("%d events kept", len(ev))
	}
	if last := ev[len(ev)-1].Detail; last != time.Duration(maxEvents+9).String() {
		t.Fatalf("newest event %q lost", last)
	}
	for i := 1; i < len(ev); i++ {
		if ev[i].Time.Before(ev[i-1].Time) {
			t.Fatal("events not oldest first")
		}
	}
}
