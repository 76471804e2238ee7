package backend

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/internal/fakemysql"
	"switchyard/internal/mysqltest"
)

// The shared pool of idle server connections: reuse, keys, limits, the
// reaper, liveness checks, and servers[].max_connections.

// poolOver returns a cluster over one fake and a pool dialing through it.
// maxConns caps the server's connections (0: no cap).
func poolOver(t *testing.T, opt PoolOptions, connectTimeout time.Duration, maxConns int) (*fakemysql.Server, *Cluster, *Server, *Pool) {
	t.Helper()
	fake := fakemysql.Start(t, fakemysql.Options{Schemas: []string{"shop", "other"}})
	c := NewCluster([]ServerSpec{{Name: "db1", Address: fake.Addr(), MaxConnections: maxConns}},
		Options{Logger: discardLogger(), ConnectTimeout: connectTimeout})
	p := NewPool(opt, c)
	t.Cleanup(p.Close)
	return fake, c, c.Servers()[0], p
}

func appReq() Request { return Request{Dial: appDial} }

func mustAcquire(t *testing.T, p *Pool, srv *Server, req Request) *Conn {
	t.Helper()
	cn, err := p.Acquire(context.Background(), srv, req)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	return cn
}

// TestPoolReuse: a released connection is handed out again without a new
// login, and the one already in the requested session state is preferred.
func TestPoolReuse(t *testing.T) {
	fake, _, srv, p := poolOver(t, PoolOptions{}, 0, 0)
	c1 := mustAcquire(t, p, srv, appReq())
	p.Release(c1)
	if p.idleCount(srv) != 1 {
		t.Fatalf("%d idle after a release, want 1", p.idleCount(srv))
	}
	accepted := fake.Accepted()
	if got := mustAcquire(t, p, srv, appReq()); got != c1 || fake.Accepted() != accepted {
		t.Fatal("a released connection was not reused; a new one was dialed")
	}

	// Two idle connections, the one released last carries no state: a
	// session in state st gets the other, which needs no replay.
	st := mustState(t, SessionState{}, setA)
	inState := c1
	if err := inState.Sync(st, ""); err != nil {
		t.Fatal(err)
	}
	plain := mustAcquire(t, p, srv, appReq())
	p.Release(inState)
	p.Release(plain)
	if got := mustAcquire(t, p, srv, Request{Dial: appDial, State: st}); got != inState {
		t.Fatal("the connection already in the session's state was not preferred")
	}
	// Without a matching state, the most recently released one comes out.
	if got := mustAcquire(t, p, srv, appReq()); got != plain {
		t.Fatal("remaining idle connection not handed out")
	}
}

// TestPoolKeys: sessions that differ in user, schema, collation or the
// capabilities the server connection is opened with never share
// connections; capabilities the proxy handles itself do not split the pool.
func TestPoolKeys(t *testing.T) {
	monitor := Credentials{User: "monitor", Plain: "monitor", HasPassword: true}
	for _, tc := range []struct {
		name  string
		other DialOptions
		share bool
	}{
		{"another user", DialOptions{Creds: monitor}, false},
		{"another schema", DialOptions{Creds: appCreds, Schema: "shop"}, false},
		{"another collation", DialOptions{Creds: appCreds, Collation: 8}, false},
		{"multi statements", DialOptions{Creds: appCreds, Capabilities: mysql.CLIENT_MULTI_STATEMENTS}, false},
		{"DEPRECATE_EOF (converted by the proxy)", DialOptions{Creds: appCreds, Capabilities: mysql.CLIENT_DEPRECATE_EOF}, true},
		{"compression (per hop)", DialOptions{Creds: appCreds, Capabilities: mysql.CLIENT_COMPRESS}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake, _, srv, p := poolOver(t, PoolOptions{}, 0, 0)
			p.Release(mustAcquire(t, p, srv, appReq()))
			accepted := fake.Accepted()
			cn := mustAcquire(t, p, srv, Request{Dial: tc.other})
			if shared := fake.Accepted() == accepted; shared != tc.share {
				t.Fatalf("shared %v, want %v", shared, tc.share)
			}
			if !tc.share {
				// It is really logged in as asked.
				res, err := cn.Query("SELECT USER(), DATABASE()")
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(res.Rows[0][0].String, tc.other.Creds.User+"@") || res.Rows[0][1].String != tc.other.Schema {
					t.Fatalf("logged in as %v", res.Rows[0])
				}
			}
		})
	}
}

// TestPoolIdleLimits: MaxIdlePerServer closes connections released beyond
// it; a negative value keeps none; MaxLifetime closes old connections when
// they come back.
func TestPoolIdleLimits(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opt      PoolOptions
		acquire  int
		wantIdle int
	}{
		{"max idle 1", PoolOptions{MaxIdlePerServer: 1}, 3, 1},
		{"negative max idle keeps none", PoolOptions{MaxIdlePerServer: -1}, 2, 0},
		{"max lifetime passed", PoolOptions{MaxLifetime: time.Nanosecond}, 2, 0},
		{"no max lifetime", PoolOptions{MaxLifetime: -1}, 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake, _, srv, p := poolOver(t, tc.opt, 0, 0)
			var conns []*Conn
			for range tc.acquire {
				conns = append(conns, mustAcquire(t, p, srv, appReq()))
			}
			time.Sleep(time.Millisecond) // older than a nanosecond, for certain
			for _, cn := range conns {
				p.Release(cn)
			}
			if p.idleCount(srv) != tc.wantIdle {
				t.Fatalf("%d idle, want %d", p.idleCount(srv), tc.wantIdle)
			}
			mysqltest.Eventually(t, "the extra connections to close on the server", func() bool { return fake.Conns() == tc.wantIdle })
			if srv.OpenConns() != tc.wantIdle {
				t.Fatalf("cluster tracks %d connections, want %d", srv.OpenConns(), tc.wantIdle)
			}
		})
	}
}

// TestPoolReap: the reaper closes connections idle past IdleTimeout, and
// every idle connection when its context ends.
func TestPoolReap(t *testing.T) {
	t.Run("idle timeout", func(t *testing.T) {
		fake, _, srv, p := poolOver(t, PoolOptions{IdleTimeout: 20 * time.Millisecond}, 0, 0)
		p.Release(mustAcquire(t, p, srv, appReq()))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { p.Reap(ctx); close(done) }()
		mysqltest.Eventually(t, "the reaper to close the idle connection", func() bool { return p.idleCount(srv) == 0 && fake.Conns() == 0 })
		cancel()
		<-done
	})
	for _, timeout := range []time.Duration{-1, time.Hour} {
		t.Run("context ends, idle timeout "+timeout.String(), func(t *testing.T) {
			fake, _, srv, p := poolOver(t, PoolOptions{IdleTimeout: timeout}, 0, 0)
			a, b := mustAcquire(t, p, srv, appReq()), mustAcquire(t, p, srv, appReq())
			p.Release(a)
			p.Release(b)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { p.Reap(ctx); close(done) }()
			cancel()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Reap did not return when its context ended")
			}
			if p.idleCount(srv) != 0 {
				t.Fatalf("%d idle connections left after Reap ended", p.idleCount(srv))
			}
			mysqltest.Eventually(t, "the server to see them closed", func() bool { return fake.Conns() == 0 })
		})
	}
}

// killPooled kills, on the fake, the server side of a connection and waits
// until the fake is rid of it.
func killPooled(t *testing.T, fake *fakemysql.Server, cn *Conn) {
	t.Helper()
	id, _ := strconv.ParseUint(connID(t, cn), 10, 32)
	before := fake.Conns()
	if !fake.Kill(uint32(id)) {
		t.Fatal("no such connection on the fake")
	}
	mysqltest.Eventually(t, "the fake to drop the killed connection", func() bool { return fake.Conns() == before-1 })
}

// TestPoolDetectsKilled: a connection the server closed while it sat idle
// (KILL, wait_timeout) is found out before use and replaced by a new one:
// when asked to verify (a retry), or when it idled past IdleCheckAfter.
func TestPoolDetectsKilled(t *testing.T) {
	for _, tc := range []struct {
		name   string
		verify bool
		idle   time.Duration
	}{
		{"verify", true, 0},
		{"idle past IdleCheckAfter", false, 2 * IdleCheckAfter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake, _, srv, p := poolOver(t, PoolOptions{}, 0, 0)
			dead := mustAcquire(t, p, srv, appReq())
			killPooled(t, fake, dead)
			p.Release(dead)
			dead.lastUsed = time.Now().Add(-tc.idle) // no other goroutine touches it
			cn := mustAcquire(t, p, srv, Request{Dial: appDial, Verify: tc.verify})
			if cn == dead {
				t.Fatal("the killed connection was handed out")
			}
			if err := cn.Exec("SELECT 1"); err != nil {
				t.Fatalf("replacement connection: %v", err)
			}
			if !dead.closed {
				t.Error("the killed connection was not closed")
			}
		})
	}

	// A connection used just now is trusted without a check: checking
	// every one would cost a system call per statement.
	_, _, srv, p := poolOver(t, PoolOptions{}, 0, 0)
	cn := mustAcquire(t, p, srv, appReq())
	p.Release(cn)
	if got := mustAcquire(t, p, srv, appReq()); got != cn {
		t.Fatal("a healthy, recently used connection was not reused")
	}
	// A broken one in the pool is never handed out.
	cn.MarkBroken()
	sh := p.shard(srv)
	sh.mu.Lock()
	sh.idle = append(sh.idle, cn)
	sh.mu.Unlock()
	if got := mustAcquire(t, p, srv, appReq()); got == cn {
		t.Fatal("a broken connection was handed out")
	}
}

// waitersOn reports whether an Acquire is waiting for a connection to srv to
// come back.
func waitersOn(p *Pool, srv *Server) bool {
	sh := p.shard(srv)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.returned != nil
}

// TestMaxConnectionsWait: at servers[].max_connections a second session
// waits, and gets the first one's connection when it is released.
func TestMaxConnectionsWait(t *testing.T) {
	fake, _, srv, p := poolOver(t, PoolOptions{}, 5*time.Second, 1)
	first := mustAcquire(t, p, srv, appReq())
	got := make(chan *Conn, 1)
	errc := make(chan error, 1)
	go func() {
		cn, err := p.Acquire(context.Background(), srv, appReq())
		if err != nil {
			errc <- err
			return
		}
		got <- cn
	}()
	mysqltest.Eventually(t, "the second Acquire to wait", func() bool { return waitersOn(p, srv) })
	accepted := fake.Accepted()
	p.Release(first)
	select {
	case cn := <-got:
		if cn != first {
			t.Fatal("the waiter did not get the released connection")
		}
	case err := <-errc:
		t.Fatalf("waiting Acquire: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("waiting Acquire not woken by the release")
	}
	if fake.Accepted() != accepted {
		t.Fatal("a new connection was dialed beyond max_connections")
	}
}

// TestMaxConnectionsReleaseNeverMissed: a release that comes while a
// session is between finding no idle connection and starting to wait must
// still wake it. Releases at many points of a waiter's path; a missed one
// shows as ErrServerFull after the connect timeout although a connection
// sat idle. (It did before Acquire registered for releases before its last
// look at the idle connections.)
func TestMaxConnectionsReleaseNeverMissed(t *testing.T) {
	_, _, srv, p := poolOver(t, PoolOptions{}, time.Second, 1)
	cn := mustAcquire(t, p, srv, appReq())
	for i := range 1000 {
		got := make(chan *Conn, 1)
		errc := make(chan error, 1)
		go func() {
			c, err := p.Acquire(context.Background(), srv, appReq())
			if err != nil {
				errc <- err
				return
			}
			got <- c
		}()
		for range i % 7 { // vary where in Acquire the release lands
			runtime.Gosched()
		}
		p.Release(cn)
		select {
		case cn = <-got:
		case err := <-errc:
			t.Fatalf("round %d: a release was missed: %v", i, err)
		}
	}
}

// TestMaxConnectionsFull: when nothing comes back within the connect
// timeout the session gets ErrServerFull, which says which server and limit.
func TestMaxConnectionsFull(t *testing.T) {
	fake, _, srv, p := poolOver(t, PoolOptions{}, 50*time.Millisecond, 1)
	mustAcquire(t, p, srv, appReq()) // held throughout
	_, err := p.Acquire(context.Background(), srv, appReq())
	var full *ErrServerFull
	if !errors.As(err, &full) {
		t.Fatalf("err %v, want *ErrServerFull", err)
	}
	if full.Server != "db1" || full.Max != 1 || full.Waited != 50*time.Millisecond {
		t.Fatalf("ErrServerFull %+v", full)
	}
	if !containsAll(err.Error(), "db1", "max_connections") {
		t.Fatalf("message %q", err)
	}
	if fake.Conns() != 1 {
		t.Fatalf("%d connections on the server, max 1", fake.Conns())
	}
}

// TestMaxConnectionsCancel: the caller's context ends the wait.
func TestMaxConnectionsCancel(t *testing.T) {
	_, _, srv, p := poolOver(t, PoolOptions{}, time.Minute, 1)
	_ = mustAcquire(t, p, srv, appReq())
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := p.Acquire(ctx, srv, appReq())
		errc <- err
	}()
	mysqltest.Eventually(t, "the Acquire to wait", func() bool { return waitersOn(p, srv) })
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancelled Acquire still waiting")
	}
}

// TestMaxConnectionsEvictsOtherKey: an idle connection of another pool key
// holds a slot nobody of that key is using: it is closed to make room.
func TestMaxConnectionsEvictsOtherKey(t *testing.T) {
	fake, _, srv, p := poolOver(t, PoolOptions{}, time.Minute, 1)
	idle := mustAcquire(t, p, srv, appReq())
	p.Release(idle)
	cn, err := p.Acquire(context.Background(), srv, Request{Dial: DialOptions{Creds: appCreds, Schema: "shop"}})
	if err != nil {
		t.Fatal(err)
	}
	if !idle.closed || p.idleCount(srv) != 0 {
		t.Fatal("the other key's idle connection was not closed")
	}
	if res, err := cn.Query("SELECT DATABASE()"); err != nil || res.Rows[0][0].String != "shop" {
		t.Fatalf("new connection: %v %v", res, err)
	}
	mysqltest.Eventually(t, "one connection on the server", func() bool { return fake.Conns() == 1 })
}

// TestMaxConnectionsBrokenFreesSlot: a broken connection is closed on
// release, not pooled, and its slot goes to a waiting session at once.
func TestMaxConnectionsBrokenFreesSlot(t *testing.T) {
	_, _, srv, p := poolOver(t, PoolOptions{}, 5*time.Second, 1)
	broken := mustAcquire(t, p, srv, appReq())
	got := make(chan *Conn, 1)
	go func() {
		cn, err := p.Acquire(context.Background(), srv, appReq())
		if err != nil {
			t.Error(err)
		}
		got <- cn
	}()
	mysqltest.Eventually(t, "the second Acquire to wait", func() bool { return waitersOn(p, srv) })
	broken.MarkBroken()
	p.Release(broken)
	if !broken.closed || p.idleCount(srv) != 0 {
		t.Fatal("a broken connection was pooled")
	}
	select {
	case cn := <-got:
		if cn == nil || cn == broken {
			t.Fatal("the waiter did not get a new connection")
		}
		if err := cn.Exec("SELECT 1"); err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the freed slot did not reach the waiter")
	}
}

// TestMaxConnectionsFailedDialFreesSlot: a connect that fails gives its
// slot back; otherwise a server that was down once would stay full.
func TestMaxConnectionsFailedDialFreesSlot(t *testing.T) {
	fake, _, srv, p := poolOver(t, PoolOptions{}, 50*time.Millisecond, 1)
	fake.SetDown(true)
	for range 2 {
		if _, err := p.Acquire(context.Background(), srv, appReq()); err == nil {
			t.Fatal("Acquire from a down server succeeded")
		} else if errors.As(err, new(*ErrServerFull)) {
			t.Fatalf("slot leaked by the failed dial: %v", err)
		}
	}
	fake.SetDown(false)
	cn := mustAcquire(t, p, srv, appReq())
	if err := cn.Exec("SELECT 1"); err != nil {
		t.Fatal(err)
	}
}

// TestPoolOfflineHardOnRelease: a connection released after its server was
// taken OFFLINE_HARD is closed, not pooled.
func TestPoolOfflineHardOnRelease(t *testing.T) {
	_, c, srv, p := poolOver(t, PoolOptions{}, 0, 0)
	cn := mustAcquire(t, p, srv, appReq())
	srv.untrack(cn) // as if the abort had missed it
	if err := c.SetServerStatus("db1", StatusOfflineHard); err != nil {
		t.Fatal(err)
	}
	p.Release(cn)
	if p.idleCount(srv) != 0 || !cn.closed {
		t.Fatal("a connection to an OFFLINE_HARD server was pooled")
	}
}

// TestPoolConcurrent: many sessions sharing few slots all get through and
// the limit holds (run under -race).
func TestPoolConcurrent(t *testing.T) {
	fake, _, srv, p := poolOver(t, PoolOptions{}, 5*time.Second, 2)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				cn, err := p.Acquire(context.Background(), srv, appReq())
				if err != nil {
					t.Error(err)
					return
				}
				if err := cn.Exec("SELECT 1"); err != nil {
					t.Error(err)
				}
				if n := fake.Conns(); n > 2 {
					t.Errorf("%d connections open, max_connections 2", n)
				}
				p.Release(cn)
			}
		}()
	}
	wg.Wait()
}

// TestPoolNoSchemaSession: a session that logged in without a schema is
// never handed a connection another session moved into a schema, since no
// reset can undo that; a session whose state it already carries may have it.
func TestPoolNoSchemaSession(t *testing.T) {
	fake, _, srv, p := poolOver(t, PoolOptions{}, 0, 0)
	noSchema := Request{Dial: DialOptions{Creds: appCreds}}
	used, ok := SessionState{}.WithUse("USE other")
	if !ok {
		t.Fatal("WithUse refused")
	}
	cn := mustAcquire(t, p, srv, noSchema)
	if err := cn.Exec("USE other"); err != nil {
		t.Fatal(err)
	}
	cn.Ran(used)
	p.Release(cn)
	accepted := fake.Accepted()
	fresh := mustAcquire(t, p, srv, noSchema)
	if fresh == cn || fake.Accepted() == accepted {
		t.Fatal("a session without a schema got the connection another session moved into one")
	}
	res, err := fresh.Query("SELECT DATABASE()")
	if err != nil || res.Rows[0][0].Valid {
		t.Fatalf("fresh connection in schema %+v (%v), want none", res, err)
	}
	withUse := noSchema
	withUse.State = used
	if again := mustAcquire(t, p, srv, withUse); again != cn {
		t.Fatal("the session whose state the connection carries did not get it back")
	}
}
