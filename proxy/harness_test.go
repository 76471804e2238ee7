package proxy

// The test harness: a proxy.Server on 127.0.0.1:0 in front of three
// in-process fake servers (internal/fakemysql), the first the primary and
// the others replicas (no monitor: backend's config-order roles, unless a
// test turns probing on). Its cleanup shuts the proxy down and checks that
// nothing was left behind: client connections, pinned-session counts,
// per-user connection slots, server connections outside the pool, and
// goroutines.

import (
	"context"
	"crypto/sha1"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	driver "github.com/go-sql-driver/mysql"

	"switchyard/backend"
	"switchyard/conf"
	"switchyard/internal/fakemysql"
	"switchyard/internal/mysqltest"
	"switchyard/router"
)

// The fake servers, in config order.
const (
	primaryName  = "primary"
	replica1Name = "replica1"
	replica2Name = "replica2"
)

var fakeNames = []string{primaryName, replica1Name, replica2Name}

// nativeHash is a mysql_native_password hash, as password_hash holds it.
func nativeHash(pw string) string {
	s1 := sha1.Sum([]byte(pw))
	s2 := sha1.Sum(s1[:])
	return "*" + strings.ToUpper(hex.EncodeToString(s2[:]))
}

// testUsers are the proxy's accounts; fakeUsers the servers' (the proxy
// logs in to them as the client's user).
var testUsers = []User{
	{Name: "app", Password: "secret"},
	{Name: "bob", Password: "bobpw"},
	{Name: "sha", Password: "shapw", AuthPlugin: mysql.AUTH_CACHING_SHA2_PASSWORD},
	{Name: "hashed", PasswordHash: nativeHash("hashpw")},
	{Name: "nopw"},
	{Name: "tlsonly", Password: "tlspw", RequireTLS: true},
	{Name: "limited", Password: "limpw", MaxConnections: 1},
	{Name: "reporter", Password: "reppw", Reads: conf.ReadsPrimary},
	{Name: "other", Password: "otherpw", DefaultSchema: "other"},
	// ghost is an account of the proxy's that no server knows.
	{Name: "ghost", Password: "ghostpw"},
}

var fakeUsers = map[string]string{
	"app": "secret", "bob": "bobpw", "sha": "shapw", "hashed": "hashpw", "nopw": "", "tlsonly": "tlspw",
	"limited": "limpw", "reporter": "reppw", "other": "otherpw", "monitor": "monitor",
}

// fakeOldPasswords are the servers' accounts with old passwords
// (mysql_old_password), by name.
var fakeOldPasswords = map[string]string{"legacy": "oldpw", "legacy_nopw": ""}

type harnessConfig struct {
	listener ListenerOptions // Users nil: testUsers; TLS nil: the test certificate unless noTLS
	noTLS    bool
	routing  Routing
	rules    []conf.QueryRule
	noMux    bool // DisableMultiplexing
	// probing: roles, health and GTID positions come from the monitor
	// (ProbeOnce at start and whenever the test calls probe), not from
	// config order.
	probing bool
	// handle answers statements on the fakes before the harness's own
	// handler (whoami, LOCK TABLES, ...); server is the fake's name.
	handle         func(server string, c *fakemysql.Conn, q string) *fakemysql.Result
	spec           func(i int, s *backend.ServerSpec)
	connectTimeout time.Duration
	wrapPool       func(Pool) Pool
	// allowPanic: the test provokes a session panic on purpose.
	allowPanic bool
	// maxPreparedBytes is Options.MaxPreparedBytesPerSession.
	maxPreparedBytes int64
	// stallCheck is Options.StallCheck.
	stallCheck time.Duration
}

type harness struct {
	t       *testing.T
	cfg     harnessConfig
	fakes   []*fakemysql.Server
	cluster *backend.Cluster
	pool    *backend.Pool
	srv     *Server
	addr    string
	logs    *logSink

	serveDone chan struct{}
	serveErr  error
}

// newHarness starts the fakes, the cluster, the pool and the proxy, and
// registers a cleanup that shuts everything down and checks for leaks.
// Clients a test opens after this are closed first (cleanups run last in,
// first out).
func newHarness(t *testing.T, cfg harnessConfig) *harness {
	t.Helper()
	mysqltest.CheckGoroutines(t) // first registered, so its check runs last
	h := &harness{t: t, cfg: cfg, logs: &logSink{}, serveDone: make(chan struct{})}
	log := slog.New(h.logs)
	for i, name := range fakeNames {
		o := fakemysql.Options{Users: fakeUsers, OldPasswords: fakeOldPasswords, Schemas: []string{"shop", "other"}, ServerID: uint32(i + 1), Handle: h.handler(name)}
		if i > 0 {
			o.ReadOnly = true
			o.Replica = &fakemysql.ReplicaStatus{SourceHost: "127.0.0.1", SourcePort: 3306, IORunning: true, SQLRunning: true}
		}
		h.fakes = append(h.fakes, fakemysql.Start(t, o))
	}
	specs := make([]backend.ServerSpec, len(h.fakes))
	for i, f := range h.fakes {
		specs[i] = backend.ServerSpec{Name: fakeNames[i], Address: f.Addr(), Weight: 1}
		if cfg.spec != nil {
			cfg.spec(i, &specs[i])
		}
	}
	ct := cfg.connectTimeout
	if ct == 0 {
		ct = 5 * time.Second
	}
	h.cluster = backend.NewCluster(specs, backend.Options{ConnectTimeout: ct, Logger: log})
	if cfg.probing {
		h.cluster.SetProbing(true)
		h.probe()
	}
	h.pool = backend.NewPool(backend.PoolOptions{}, h.cluster)
	var pool Pool = h.pool
	if cfg.wrapPool != nil {
		pool = cfg.wrapPool(pool)
	}
	lo := cfg.listener
	if lo.Users == nil {
		lo.Users = testUsers
	}
	if lo.TLS == nil && !cfg.noTLS {
		lo.TLS = testCert().Server
	}
	lo.Logger = log
	var rules *router.Rules
	if cfg.rules != nil {
		var err error
		if rules, err = router.NewRules(cfg.rules); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := NewServer(Options{ListenerOptions: lo, Servers: h.cluster, Pool: pool, Routing: cfg.routing,
		Rules: rules, DisableMultiplexing: cfg.noMux, MaxPreparedBytesPerSession: cfg.maxPreparedBytes, StallCheck: cfg.stallCheck})
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = l.Addr().String()
	go func() {
		h.serveErr = srv.Serve(l)
		close(h.serveDone)
	}()
	t.Cleanup(h.close)
	return h
}

// probe runs the monitor once over every server.
func (h *harness) probe() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h.cluster.ProbeOnce(ctx, backend.ProbeOptions{User: "monitor", Password: "monitor", Interval: time.Second,
		Timeout: 5 * time.Second, MaxReplicationLag: time.Minute})
}

// fake returns the fake server with the given name.
func (h *harness) fake(name string) *fakemysql.Server {
	for i, n := range fakeNames {
		if n == name {
			return h.fakes[i]
		}
	}
	h.t.Fatalf("no fake server %q", name)
	return nil
}

func (h *harness) backend(name string) *backend.Server { return h.cluster.Server(name) }

// setStatus applies an operator's server status, for the rest of the
// harness's life unless the test sets it back.
func (h *harness) setStatus(name string, st backend.Status) {
	h.t.Helper()
	if err := h.cluster.SetServerStatus(name, st); err != nil {
		h.t.Fatal(err)
	}
}

// resetLogs forgets what the fakes received so far.
func (h *harness) resetLogs() {
	for _, f := range h.fakes {
		f.ResetLog()
	}
}

// ran returns the names of the fakes whose logs hold a COM_QUERY (or, for
// prepared statements, a COM_STMT_EXECUTE) containing text.
func (h *harness) ran(text string) []string {
	var where []string
	for i, f := range h.fakes {
		for _, c := range f.Log() {
			if (c.Cmd == mysql.COM_QUERY || c.Cmd == mysql.COM_STMT_EXECUTE) && strings.Contains(c.Arg, text) {
				where = append(where, fakeNames[i])
				break
			}
		}
	}
	return where
}

// ranOn fails the test unless exactly the named fake ran the statement.
func (h *harness) ranOn(text string, names ...string) {
	h.t.Helper()
	got := h.ran(text)
	if strings.Join(got, ",") != strings.Join(names, ",") {
		h.t.Fatalf("%q ran on %v, want %v", text, got, names)
	}
}

// connOf returns the fake's connection id that last ran a command whose
// argument contains text, and whether there is one.
func (h *harness) connOf(name, text string) (uint32, bool) {
	log := h.fake(name).Log()
	for i := len(log) - 1; i >= 0; i-- {
		if strings.Contains(log[i].Arg, text) && log[i].Cmd != mysql.COM_CONNECT {
			return log[i].ConnID, true
		}
	}
	return 0, false
}

// connLog returns the commands one fake connection received, as
// "cmd:arg" strings, cmd named as cmdName does ("query:SELECT 1",
// "reset_connection:", "quit:").
func (h *harness) connLog(name string, id uint32) []string {
	var out []string
	for _, c := range h.fake(name).Log() {
		if c.ConnID == id {
			out = append(out, cmdName(c.Cmd)+":"+c.Arg)
		}
	}
	return out
}

// cmdName is mysqltest.CommandName in lower case.
func cmdName(cmd byte) string { return strings.ToLower(mysqltest.CommandName(cmd)) }

// handler is the fakes' Options.Handle: the test's, then the statements the
// fake does not know that the tests use.
func (h *harness) handler(name string) func(c *fakemysql.Conn, q string) *fakemysql.Result {
	return func(c *fakemysql.Conn, q string) *fakemysql.Result {
		if h.cfg.handle != nil {
			if r := h.cfg.handle(name, c, q); r != nil {
				return r
			}
		}
		lq := strings.ToLower(q)
		switch {
		case strings.Contains(lq, "from whoami"):
			// Says which server answered (and on which connection).
			return rowsResult([]string{"name"}, []string{name})
		case strings.HasPrefix(lq, "lock tables"), strings.HasPrefix(lq, "unlock tables"),
			strings.HasPrefix(lq, "prepare "), strings.HasPrefix(lq, "deallocate prepare"):
			return &fakemysql.Result{}
		case strings.Contains(lq, "get_lock("):
			return rowsResult([]string{"l"}, []string{"1"})
		case strings.Contains(lq, "last_insert_id()"):
			// The id of the connection that answers: the statement before
			// it ran there if this is the same number.
			return rowsResult([]string{"id"}, []string{fmt.Sprint(c.ID())})
		case strings.Contains(lq, "from t3"):
			return rowsResult([]string{"id"}, []string{"1"}, []string{"2"}, []string{"3"})
		case strings.Contains(lq, "from big"):
			// Bigger than the proxy's and the servers' read buffers.
			return rowsResult([]string{"b"}, []string{strings.Repeat("b", 100<<10)})
		}
		return nil
	}
}

func rowsResult(cols []string, rows ...[]string) *fakemysql.Result {
	r := &fakemysql.Result{Columns: cols}
	for _, row := range rows {
		var vals []sql.NullString
		for _, v := range row {
			vals = append(vals, sql.NullString{String: v, Valid: true})
		}
		r.Rows = append(r.Rows, vals)
	}
	return r
}

// waitPinned waits for the pinned-sessions counter to read n. The session
// updates it after the response has gone out, so a client that just read
// the response may be ahead of it.
func (h *harness) waitPinned(t testing.TB, n int64) {
	t.Helper()
	mysqltest.Eventually(t, fmt.Sprintf("%d pinned sessions", n), func() bool { return h.srv.pinnedSessions.Load() == n })
}

// shutdown runs the proxy's Shutdown with a timeout and returns its error.
func (h *harness) shutdown(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return h.srv.Shutdown(ctx)
}

// close is the cleanup: shutdown, then the checks that nothing leaked.
func (h *harness) close() {
	t := h.t
	if err := h.shutdown(10 * time.Second); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	select {
	case <-h.serveDone:
		// net.ErrClosed: Shutdown came before Serve began, which then
		// refuses to.
		if h.serveErr != nil && !errors.Is(h.serveErr, net.ErrClosed) {
			t.Errorf("Serve: %v", h.serveErr)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("Serve did not return after Shutdown")
	}
	if n := h.srv.connections(); n != 0 {
		t.Errorf("%d client connections left after Shutdown", n)
	}
	if n := h.srv.pinnedSessions.Load(); n != 0 {
		t.Errorf("pinned sessions counter is %d after every session ended", n)
	}
	h.srv.userMu.Lock()
	if len(h.srv.userConns) != 0 {
		t.Errorf("users[].max_connections slots still taken: %v", h.srv.userConns)
	}
	h.srv.userMu.Unlock()
	// No session is left, so every server connection still open must be
	// idle in the pool: no server may have more open than the proxy knows
	// of (it may have fewer: OFFLINE_HARD aborts idle connections, which
	// the pool closes when it next looks), and once the pool is closed
	// none may be left, on either side.
	mysqltest.Eventually(t, "the servers' connections to be the proxy's", func() bool {
		for i, f := range h.fakes {
			if f.Conns() > h.backend(fakeNames[i]).OpenConns() {
				return false
			}
		}
		return true
	})
	h.pool.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var open []string
		for i, f := range h.fakes {
			if n, m := f.Conns(), h.backend(fakeNames[i]).OpenConns(); n != 0 || m != 0 {
				open = append(open, fmt.Sprintf("%s: %d on the server, %d in the proxy", fakeNames[i], n, m))
			}
		}
		if len(open) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("server connections left outside the pool: %v", open)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !h.cfg.allowPanic {
		if n := h.logs.count("session panic"); n > 0 {
			t.Errorf("%d sessions panicked", n)
		}
	}
	if t.Failed() {
		t.Logf("proxy log:\n%s", h.logs.dump())
	}
}

// logSink is a slog handler that keeps every record, Debug included (so
// the debug-only paths run too).
type logSink struct {
	mu   sync.Mutex
	recs []string
}

func (l *logSink) Enabled(context.Context, slog.Level) bool { return true }

func (l *logSink) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key != "stack" {
			fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		}
		return true
	})
	l.mu.Lock()
	if len(l.recs) < 100000 {
		l.recs = append(l.recs, b.String())
	}
	l.mu.Unlock()
	return nil
}

func (l *logSink) WithAttrs(attrs []slog.Attr) slog.Handler { return &attrSink{l, attrs} }
func (l *logSink) WithGroup(string) slog.Handler            { return l }

// count returns how many records contain s.
func (l *logSink) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.recs {
		if strings.Contains(r, s) {
			n++
		}
	}
	return n
}

func (l *logSink) dump() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	recs := l.recs
	if len(recs) > 300 {
		recs = recs[len(recs)-300:]
	}
	return strings.Join(recs, "\n")
}

// attrSink is a logSink seen through Logger.With.
type attrSink struct {
	*logSink
	attrs []slog.Attr
}

func (a *attrSink) Handle(ctx context.Context, r slog.Record) error {
	r.AddAttrs(a.attrs...)
	return a.logSink.Handle(ctx, r)
}

func (a *attrSink) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &attrSink{a.logSink, append(append([]slog.Attr(nil), a.attrs...), attrs...)}
}

// testCert is the test certificate (mysqltest.Certificate), its client
// configuration registered for go-sql-driver as "switchyard-test". The
// listener uses its key for caching_sha2_password's RSA exchange too.
func testCert() mysqltest.Cert {
	registerCert.Do(func() {
		if err := driver.RegisterTLSConfig("switchyard-test", mysqltest.Certificate().Client); err != nil {
			panic(err)
		}
	})
	return mysqltest.Certificate()
}

var registerCert sync.Once

// rawCaps are the capabilities a raw client asks for unless told otherwise.
const rawCaps = mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_PLUGIN_AUTH |
	mysql.CLIENT_TRANSACTIONS | mysql.CLIENT_MULTI_RESULTS | mysql.CLIENT_PS_MULTI_RESULTS | mysql.CLIENT_LONG_FLAG |
	mysql.CLIENT_MULTI_STATEMENTS | mysql.CLIENT_LOCAL_FILES

// dial connects a raw client (mysqltest.Client) to the proxy without
// logging in; it asks for rawCaps and trusts the test certificate.
func (h *harness) dial(t testing.TB) *mysqltest.Client {
	t.Helper()
	return mysqltest.Dial(t, h.addr, rawCaps, testCert().Client)
}

// login dials and logs in, failing the test on a refusal.
func (h *harness) login(t testing.TB, l mysqltest.Login) *mysqltest.Client {
	t.Helper()
	rc := h.dial(t)
	if err := rc.Login(l); err != nil {
		t.Fatalf("login as %s: %v", l.User, err)
	}
	return rc
}

// dsn is a go-sql-driver DSN for the proxy; params are extra DSN
// parameters ("tls=switchyard-test", "multiStatements=true", ...).
func (h *harness) dsn(user, pass, schema string, params ...string) string {
	p := append([]string{"timeout=10s", "readTimeout=30s", "writeTimeout=30s"}, params...)
	return fmt.Sprintf("%s:%s@tcp(%s)/%s?%s", user, pass, h.addr, schema, strings.Join(p, "&"))
}

// db opens a go-sql-driver pool on the proxy, closed at cleanup.
func (h *harness) db(t testing.TB, user, pass, schema string, params ...string) *sql.DB {
	t.Helper()
	testCert() // registers the driver's TLS config
	db, err := sql.Open("mysql", h.dsn(user, pass, schema, params...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// session opens one client session (one proxy connection) through
// go-sql-driver. database/sql does not retry on another connection
// behind an *sql.Conn, so the session's errors reach the test.
func (h *harness) session(t testing.TB, user, pass, schema string, params ...string) *sql.Conn {
	t.Helper()
	db := h.db(t, user, pass, schema, params...)
	// Closing the *sql.Conn closes the client connection (the session
	// ends) instead of keeping it idle in database/sql's pool.
	db.SetMaxIdleConns(0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// testCtx bounds a client call; it ends with the test.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// mustValue runs a query that returns one value.
func mustValue(t testing.TB, c *sql.Conn, q string, args ...any) string {
	t.Helper()
	var v sql.NullString
	if err := c.QueryRowContext(testCtx(t), q, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if !v.Valid {
		return "NULL"
	}
	return v.String
}

// mustExec runs a statement, failing the test on an error.
func mustExec(t testing.TB, c *sql.Conn, q string, args ...any) sql.Result {
	t.Helper()
	r, err := c.ExecContext(testCtx(t), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return r
}

// errCode returns the MySQL error number in err (go-sql-driver's or
// go-mysql's error type), or 0.
func errCode(err error) uint16 {
	code, _, _ := mysqltest.ServerError(err)
	return code
}

func errState(err error) string {
	_, state, _ := mysqltest.ServerError(err)
	return state
}

// wantErr fails the test unless err carries code (and, when given, a
// message containing msg).
func wantErr(t testing.TB, err error, code uint16, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want %d", code)
	}
	if got := errCode(err); got != code {
		t.Fatalf("error %v: code %d, want %d", err, got, code)
	}
	if msg != "" && !strings.Contains(err.Error(), msg) {
		t.Fatalf("error %q does not say %q", err, msg)
	}
}
