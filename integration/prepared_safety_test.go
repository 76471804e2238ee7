package integration

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/integration/harness"
	"switchyard/internal/mysqltest"
	"switchyard/wire"
)

// Prepared statements must never exhaust a server's
// max_prepared_stmt_count, which all its sessions share, nor the proxy's
// memory: what clients closed is closed on the servers too (but for a few
// kept for reuse), a session cannot hold more statements open than a
// server would let it, and statement texts are freed with their statement.

// setMaxPreparedStmts sets max_prepared_stmt_count on servers for the
// test, restoring each server's value when it ends.
func setMaxPreparedStmts(t *testing.T, n int, servers ...*harness.Server) {
	t.Helper()
	ctx := context.Background()
	for _, s := range servers {
		// Connections of earlier tests may still be ending on the server,
		// their statements still counted: the limit and the counts this
		// test reads are its own only once they are gone.
		eventually(t, 10*time.Second, "no statement left prepared on "+s.Name+" by earlier tests", func() bool {
			return preparedOnServer(t, s) == 0
		})
		db, err := s.DB(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var old int
		err = db.QueryRow("SELECT @@GLOBAL.max_prepared_stmt_count").Scan(&old)
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Exec(ctx, fmt.Sprintf("SET GLOBAL max_prepared_stmt_count = %d", n)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := s.Exec(context.Background(), fmt.Sprintf("SET GLOBAL max_prepared_stmt_count = %d", old)); err != nil {
				t.Errorf("restoring max_prepared_stmt_count on %s: %v", s.Name, err)
			}
		})
	}
}

// preparedOnServer is the number of statements prepared on s now, by
// every session (Prepared_stmt_count).
func preparedOnServer(t *testing.T, s *harness.Server) int {
	t.Helper()
	db, err := s.DB(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var name string
	var n int
	if err := db.QueryRow("SHOW GLOBAL STATUS LIKE 'Prepared_stmt_count'").Scan(&name, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// directPrepare prepares a statement on s over a direct connection: the
// server still has room for its own clients.
func directPrepare(t *testing.T, s *harness.Server) {
	t.Helper()
	db, err := s.DB(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := db.Prepare("SELECT ? + 1")
	if err != nil {
		t.Fatalf("a client connected directly to %s cannot prepare: %v", s.Name, err)
	}
	st.Close()
}

// TestClosedStatementsDoNotExhaustServer: four clients prepare, execute and
// close 150 distinct statements each through a multiplexing proxy, against
// a primary that allows 400 prepared statements in all. None may fail, and
// a client connected directly must still be able to prepare afterwards.
func TestClosedStatementsDoNotExhaustServer(t *testing.T) {
	setMaxPreparedStmts(t, 400, cluster.Primary)
	// Reads on the primary too, so that every statement counts against
	// its limit; idle connections stay pooled, as in production.
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info",
		ExtraYAML: "routing:\n  reads: primary\npool:\n  idle_timeout: 5m\n"})
	db := appDB(t, p, "interpolateParams=false")
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := db.Conn(ctx)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			for i := range 150 {
				n := w*1000 + i
				st, err := conn.PrepareContext(ctx, fmt.Sprintf("SELECT ? + %d", n))
				if err != nil {
					errs <- fmt.Errorf("client %d, prepare %d: %w", w, i+1, err)
					return
				}
				var got int
				err = st.QueryRowContext(ctx, 1).Scan(&got)
				st.Close()
				if err != nil || got != n+1 {
					errs <- fmt.Errorf("client %d, execution %d: got %d, %v; want %d", w, i+1, got, err, n+1)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// No client statement is open now: what stays prepared is the few
	// each pooled connection keeps for reuse.
	prepared, conns := preparedOnServer(t, cluster.Primary), serverConnections(t, cluster.AppUser)
	t.Logf("after 600 closed statements: %d prepared on the primary over %d proxy connections", prepared, conns)
	if prepared > 16*conns {
		t.Errorf("%d statements still prepared on the primary over %d connections; want at most 16 per connection", prepared, conns)
	}
	directPrepare(t, cluster.Primary)
}

// TestRepeatedPrepareOfOneText: go-sql-driver runs a query with arguments
// as prepare, execute, close; the same text prepared again on a connection
// that has it already must not stay prepared twice. 1000 such queries
// against a primary that allows 400 statements: none fails, and one
// statement per connection is left.
func TestRepeatedPrepareOfOneText(t *testing.T) {
	setMaxPreparedStmts(t, 400, cluster.Primary)
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info",
		ExtraYAML: "routing:\n  reads: primary\npool:\n  idle_timeout: 5m\n"})
	db := appDB(t, p, "interpolateParams=false")
	db.SetMaxOpenConns(2)
	for i := range 1000 {
		var got int
		if err := db.QueryRow("SELECT ? + 1", i).Scan(&got); err != nil || got != i+1 {
			t.Fatalf("query %d: %d, %v", i+1, got, err)
		}
	}
	prepared, conns := preparedOnServer(t, cluster.Primary), serverConnections(t, cluster.AppUser)
	t.Logf("after 1000 queries of one text: %d prepared on the primary over %d proxy connections", prepared, conns)
	if prepared > conns {
		t.Errorf("%d statements prepared on the primary for one text over %d connections", prepared, conns)
	}
}

// TestSessionPreparesBoundedByServerLimit: a session cannot hold more
// statements open than the server's max_prepared_stmt_count, however the
// proxy spreads them over servers; past it the proxy answers as the server
// would (1461), and closing one makes room again.
func TestSessionPreparesBoundedByServerLimit(t *testing.T) {
	const limit = 60
	setMaxPreparedStmts(t, limit, cluster.Servers()...)
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info"})
	db := appDB(t, p, "interpolateParams=false")
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var open []*sql.Stmt
	defer func() {
		for _, st := range open {
			st.Close()
		}
	}()
	for i := range limit {
		st, err := conn.PrepareContext(ctx, fmt.Sprintf("SELECT ? + %d", i))
		if err != nil {
			t.Fatalf("prepare %d of %d: %v", i+1, limit, err)
		}
		open = append(open, st)
	}
	st, err := conn.PrepareContext(ctx, "SELECT ? + 1000")
	if err == nil {
		st.Close()
		t.Fatalf("prepare %d with max_prepared_stmt_count = %d succeeded", limit+1, limit)
	}
	assertMySQLError(t, err, 1461, "42000")
	if want := fmt.Sprintf("(current value: %d)", limit); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	// The session goes on: its statements work, and a closed one makes
	// room for another.
	var got int
	if err := open[7].QueryRowContext(ctx, 1).Scan(&got); err != nil || got != 8 {
		t.Fatalf("statement 8 after the refusal: %d, %v", got, err)
	}
	open[0].Close()
	open = open[1:]
	st, err = conn.PrepareContext(ctx, "SELECT ? + 1000")
	if err != nil {
		t.Fatalf("prepare after closing one: %v", err)
	}
	open = append(open, st)
	for _, s := range cluster.Servers() {
		directPrepare(t, s)
	}
}

// proxyHeapAlloc is the proxy's live heap after a garbage collection, read
// from its pprof endpoint.
func proxyHeapAlloc(t *testing.T, pprofAddr string) int64 {
	t.Helper()
	resp, err := http.Get("http://" + pprofAddr + "/debug/pprof/heap?gc=1&debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var n int64
		if _, err := fmt.Sscanf(sc.Text(), "# HeapAlloc = %d", &n); err == nil {
			return n
		}
	}
	t.Fatalf("no HeapAlloc in the heap profile (%v)", sc.Err())
	return 0
}

// TestPreparedStatementTextsFreed: a session's statement texts leave the
// proxy's heap when the statements are closed and when the session ends,
// even though the server connections they ran on stay pooled; and a
// session's open statements hold at most
// limits.max_prepared_bytes_per_session of text (64MiB by default).
func TestPreparedStatementTextsFreed(t *testing.T) {
	pprofAddr := freeAddr(t)
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", Args: []string{"--pprof", pprofAddr},
		ExtraYAML: "pool:\n  idle_timeout: 5m\n"})
	eventually(t, 10*time.Second, "the pprof endpoint", func() bool {
		c, err := net.Dial("tcp", pprofAddr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	db := appDB(t, p, "interpolateParams=false")
	ctx := context.Background()
	// A statement of 1 MB that is cheap for the server to parse: the
	// bulk is a comment.
	filler := strings.Repeat("x", 1<<20)
	text := func(i int) string { return fmt.Sprintf("SELECT %d /* %s */", i, filler) }
	if st, err := db.Prepare("SELECT 1"); err != nil {
		t.Fatal(err)
	} else {
		st.Close()
	}
	base := proxyHeapAlloc(t, pprofAddr)
	const slack = 24 << 20 // far below the 64 MB and more that leaked texts hold
	heapBack := func(what string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			last := proxyHeapAlloc(t, pprofAddr)
			if last <= base+slack {
				t.Logf("%s: heap %d MiB, %d MiB at the start", what, last>>20, base>>20)
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: heap still %d MiB after 20s, %d MiB at the start", what, last>>20, base>>20)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	// 200 statements of 1 MB, each closed after use.
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		st, err := conn.PrepareContext(ctx, text(i))
		if err != nil {
			t.Fatalf("prepare %d: %v", i+1, err)
		}
		var got int
		err = st.QueryRowContext(ctx).Scan(&got)
		st.Close()
		if err != nil || got != i {
			t.Fatalf("execution %d: %d, %v", i+1, got, err)
		}
	}
	heapBack("heap back after 200 statements of 1 MB were closed, the session still open")
	conn.Close()

	// Statements of 1 MB kept open: the session's budget stops them with
	// an error naming the setting; then the client goes away without
	// closing them (a raw client: database/sql would close them first).
	rc := mysqltest.Dial(t, p.Addr(), mysql.CLIENT_PROTOCOL_41|mysql.CLIENT_SECURE_CONNECTION|
		mysql.CLIENT_PLUGIN_AUTH|mysql.CLIENT_TRANSACTIONS|mysql.CLIENT_LONG_FLAG, nil)
	if err := rc.Login(mysqltest.Login{User: cluster.AppUser, Pass: cluster.AppPassword, Schema: cluster.Database}); err != nil {
		t.Fatal(err)
	}
	var open int
	var refused *mysql.MyError
	for i := range 200 {
		rc.Command(wire.AppendCommand(nil, mysql.COM_STMT_PREPARE, text(i)))
		resp := rc.Response(wire.ShapePrepare)
		if resp[0].Kind == wire.KindErr {
			refused = wire.ParseErr(resp[0].Payload)
			break
		}
		open++
	}
	if refused == nil {
		t.Fatalf("200 statements of 1 MB held open by one session; want the 64MiB budget to refuse some")
	}
	if refused.Code != 1105 || refused.State != "HY000" || !strings.Contains(refused.Message, "limits.max_prepared_bytes_per_session") {
		t.Errorf("refusal %d (%s) %q; want 1105 (HY000) naming limits.max_prepared_bytes_per_session", refused.Code, refused.State, refused.Message)
	}
	if open < 32 || open > 64 {
		t.Errorf("%d statements of 1 MB accepted under a 64MiB budget", open)
	}
	t.Logf("%d statements of 1 MB open, then: %v", open, refused)
	rc.Command(wire.AppendCommand(nil, mysql.COM_QUIT, ""))
	rc.TCP.Close()
	heapBack("heap back after a session with 1 MB statements open ended")
}

// TestPreparedStatementFollowsSchema: a server statement prepared for one
// session is not reused for another whose session selected another
// schema on the same pooled connection: the names in it mean other
// tables there.
func TestPreparedStatementFollowsSchema(t *testing.T) {
	ctx := context.Background()
	if err := cluster.Primary.Exec(ctx,
		"CREATE DATABASE IF NOT EXISTS scope_other",
		"CREATE OR REPLACE TABLE "+cluster.Database+".scope_t (v VARCHAR(10))",
		"CREATE OR REPLACE TABLE scope_other.scope_t (v VARCHAR(10))",
		"INSERT INTO "+cluster.Database+".scope_t VALUES ('shop')",
		"INSERT INTO scope_other.scope_t VALUES ('other')",
	); err != nil {
		t.Fatal(err)
	}
	// One server, so both sessions use the one pooled connection.
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", Servers: []*harness.Server{cluster.Primary}})
	db := appDB(t, p, "")
	db.SetMaxIdleConns(0)
	run := func(use string) string {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if use != "" {
			if _, err := c.ExecContext(ctx, "USE "+use); err != nil {
				t.Fatal(err)
			}
		}
		st, err := c.PrepareContext(ctx, "SELECT v FROM scope_t")
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		var v string
		if err := st.QueryRowContext(ctx).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if got := run(""); got != "shop" {
		t.Fatalf("first session read %q, want shop", got)
	}
	if got := run("scope_other"); got != "other" {
		t.Fatalf("a session in schema scope_other read %q from a statement prepared for another session", got)
	}
}
