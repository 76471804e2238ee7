package proxy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/internal/mysqltest"
	"switchyard/wire"
)

// A Listener with a Handler of the test's own, as the admin interface
// uses one: what the listener does for any handler (login, the command
// loop, what becomes of a session's errors and panics, proxy-made result
// sets, accept errors), apart from the data path.

type testHandler struct {
	sessions atomic.Int64
}

func (h *testHandler) Open(ctx context.Context, c *ClientConn) (Session, error) {
	if c.Login().Schema == "refused" {
		return nil, wire.Errorf(mysql.ER_DBACCESS_DENIED_ERROR, "no access to %s", c.Login().Schema)
	}
	h.sessions.Add(1)
	return &testSession{h: h, c: c}, nil
}

type testSession struct {
	h    *testHandler
	c    *ClientConn
	busy atomic.Bool
}

func (s *testSession) Busy() bool { return s.busy.Load() }
func (s *testSession) Abort()     {}
func (s *testSession) Close()     { s.h.sessions.Add(-1) }

func (s *testSession) Command(ctx context.Context, buf []byte) error {
	p := buf[wire.HeaderSize:]
	if p[0] == mysql.COM_QUIT {
		return ErrQuit
	}
	if p[0] != mysql.COM_QUERY {
		return wire.Errorf(mysql.ER_UNKNOWN_COM_ERROR, "no")
	}
	switch q := string(p[1:]); q {
	case "whoami":
		// A result the handler makes itself, from what the connection
		// knows of its client.
		c := s.c
		l := c.Login()
		r := &wire.TextResult{Columns: []wire.Column{{Name: "id"}, {Name: "addr"}, {Name: "tls"}, {Name: "user"}, {Name: "schema"}, {Name: "caps"}, {Name: "status"}}}
		r.Rows = append(r.Rows, validStrings(fmt.Sprint(c.ID()), c.RemoteAddr(), fmt.Sprint(c.TLS()), l.User.Name, l.Schema,
			fmt.Sprint(c.Capabilities()), fmt.Sprint(c.Status())))
		return c.WriteResult(r)
	case "busy":
		s.busy.Store(true)
		return s.c.WriteOK()
	case "idle":
		s.busy.Store(false)
		return s.c.WriteOK()
	case "fail":
		return errors.New("a plain failure")
	case "end":
		return EndSession(errors.New("ended without a word"))
	case "end telling":
		return EndSessionTelling(wire.Errorf(mysql.ER_UNKNOWN_ERROR, "ended, and told"))
	case "panic":
		panic("test panic in a command")
	}
	return s.c.WriteOK()
}

// newTestListener serves a Listener with the test handler on 127.0.0.1:0.
func newTestListener(t *testing.T, opt ListenerOptions) (*Listener, *testHandler, *logSink, string) {
	t.Helper()
	mysqltest.CheckGoroutines(t)
	logs := &logSink{}
	opt.Logger = slog.New(logs)
	if opt.Users == nil {
		opt.Users = testUsers
	}
	h := &testHandler{}
	ln, err := NewListener(opt, h)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- ln.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := ln.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil && !errors.Is(err, net.ErrClosed) {
			t.Errorf("Serve: %v", err)
		}
		if n := h.sessions.Load(); n != 0 {
			t.Errorf("%d sessions not closed", n)
		}
	})
	return ln, h, logs, l.Addr().String()
}

// dialAddr is harness.dial for any address.
func dialAddr(t testing.TB, addr string) *mysqltest.Client {
	return (&harness{addr: addr}).dial(t)
}

func TestListenerWithOwnHandler(t *testing.T) {
	ln, handler, logs, addr := newTestListener(t, ListenerOptions{TLS: testCert().Server})

	rc := dialAddr(t, addr)
	if err := rc.Login(mysqltest.Login{User: "app", Pass: "secret", Schema: "shop", TLS: true}); err != nil {
		t.Fatal(err)
	}
	if v := rc.Greeting.ServerVersion; v != defaultVersion {
		t.Fatalf("version %q without a Version option", v)
	}
	row := rc.Rows(rc.Query("whoami"))[0]
	if row[2] != "true" || row[3] != "app" || row[4] != "shop" || row[5] != fmt.Sprint(rc.Caps) || row[6] != fmt.Sprint(mysql.SERVER_STATUS_AUTOCOMMIT) {
		t.Fatalf("what the connection knows: %q (negotiated %d)", row, rc.Caps)
	}
	if e := rc.QueryErr("fail"); e.Code != mysql.ER_UNKNOWN_ERROR || e.Message != "switchyard: a plain failure" {
		t.Fatalf("a plain error: %v", e)
	}
	rc.MustOK(rc.Query("goes on"))

	// The handler refuses the login: the client gets its error, not OK.
	refused := dialAddr(t, addr)
	wantErr(t, refused.Login(mysqltest.Login{User: "app", Pass: "secret", Schema: "refused"}), mysql.ER_DBACCESS_DENIED_ERROR, "no access")

	// Errors made with endSession end the session, with or without a word.
	quiet := dialAddr(t, addr)
	if err := quiet.Login(mysqltest.Login{User: "app", Pass: "secret"}); err != nil {
		t.Fatal(err)
	}
	quiet.Command(wire.AppendCommand(nil, mysql.COM_QUERY, "end"))
	if got := quiet.ExpectClosed(); len(got) != 0 {
		t.Fatalf("told %x", got)
	}
	told := dialAddr(t, addr)
	if err := told.Login(mysqltest.Login{User: "app", Pass: "secret"}); err != nil {
		t.Fatal(err)
	}
	told.Command(wire.AppendCommand(nil, mysql.COM_QUERY, "end telling"))
	if e := mysqltest.ErrPacket(t, told.ExpectClosed()); e.Message != "ended, and told" {
		t.Fatalf("told %v", e)
	}

	// A panic ends its own connection only.
	boom := dialAddr(t, addr)
	if err := boom.Login(mysqltest.Login{User: "app", Pass: "secret"}); err != nil {
		t.Fatal(err)
	}
	boom.Command(wire.AppendCommand(nil, mysql.COM_QUERY, "panic"))
	boom.ExpectClosed()
	rc.MustOK(rc.Query("still here"))
	mysqltest.Eventually(t, "the panic to be logged", func() bool { return logs.count("session panic") == 1 })

	// A busy session keeps shutdown waiting until it is idle again.
	rc.MustOK(rc.Query("busy"))
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done <- ln.Shutdown(ctx)
	}()
	mysqltest.Eventually(t, "shutdown to begin", ln.isClosing)
	rc.MustOK(rc.Query("idle"))
	rc.ExpectClosed()
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := handler.sessions.Load(); n != 0 {
		t.Fatalf("%d sessions open after Shutdown", n)
	}
}

// flakyListener fails its first Accepts with the errors it is given.
type flakyListener struct {
	net.Listener
	errs chan error
}

func (l *flakyListener) Accept() (net.Conn, error) {
	select {
	case err := <-l.errs:
		return nil, err
	default:
	}
	return l.Listener.Accept()
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "accept timed out" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// TestServeAcceptErrors: running out of file descriptors and timeouts are
// waited out; any other accept error ends Serve with it.
func TestServeAcceptErrors(t *testing.T) {
	ln, _, logs, _ := newTestListener(t, ListenerOptions{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &flakyListener{Listener: l, errs: make(chan error, 3)}
	broken := errors.New("listener broke")
	fl.errs <- timeoutError{}
	fl.errs <- fmt.Errorf("accept: %w", syscall.EMFILE)
	fl.errs <- broken
	if err := ln.Serve(fl); !errors.Is(err, broken) {
		t.Fatalf("Serve: %v", err)
	}
	if n := logs.count("accept failed; retrying"); n != 2 {
		t.Fatalf("%d retries logged", n)
	}
}

// TestListenerUsers: SetUsers validates the accounts and replaces them for
// the next logins.
func TestListenerUsers(t *testing.T) {
	ln, _, _, addr := newTestListener(t, ListenerOptions{})
	if err := ln.SetUsers([]User{{Name: "x", PasswordHash: "*NOTHEX"}}); err == nil || !strings.Contains(err.Error(), "password_hash") {
		t.Fatalf("bad hash: %v", err)
	}
	if err := ln.SetUsers([]User{{Name: "new", Password: "pw"}}); err != nil {
		t.Fatal(err)
	}
	rc := dialAddr(t, addr)
	wantErr(t, rc.Login(mysqltest.Login{User: "app", Pass: "secret"}), mysql.ER_ACCESS_DENIED_ERROR, "")
	rc = dialAddr(t, addr)
	if err := rc.Login(mysqltest.Login{User: "new", Pass: "pw"}); err != nil {
		t.Fatal(err)
	}
}

func validStrings(vals ...string) []sql.NullString {
	out := make([]sql.NullString, len(vals))
	for i, v := range vals {
		out[i] = sql.NullString{String: v, Valid: true}
	}
	return out
}

// TestNetReadTimeout: a client that stops in the middle of a packet is told
// 1159 and dropped after NetReadTimeout, whether the packet travels plain,
// in TLS records or in compressed frames; one that waits between commands
// is not; and with no idle timeout the wait for a command is unbounded.
func TestNetReadTimeout(t *testing.T) {
	for _, idle := range []time.Duration{time.Minute, -1} {
		_, _, logs, addr := newTestListener(t, ListenerOptions{TLS: testCert().Server, NetReadTimeout: 100 * time.Millisecond,
			IdleTimeout: idle, HandshakeTimeout: time.Minute})
		for _, mode := range []struct {
			name string
			l    mysqltest.Login
		}{
			{"plain", mysqltest.Login{User: "app", Pass: "secret"}},
			{"TLS", mysqltest.Login{User: "app", Pass: "secret", TLS: true}},
			{"compressed", mysqltest.Login{User: "app", Pass: "secret", Caps: rawCaps | mysql.CLIENT_COMPRESS}},
		} {
			t.Run(fmt.Sprintf("%s, idle timeout %v", mode.name, idle), func(t *testing.T) {
				rc := dialAddr(t, addr)
				if err := rc.Login(mode.l); err != nil {
					t.Fatal(err)
				}
				time.Sleep(300 * time.Millisecond) // idle between commands: no stall
				rc.MustOK(rc.Query("after a pause"))

				// A command announced as 100 bytes, 5 of them sent.
				rc.Command(wire.AppendCommand(nil, mysql.COM_QUERY, "SELECT 1"))
				rc.MustOK(rc.Response(wire.ShapeResult))
				rc.Seq = 0
				if rc.Compress {
					// A whole compressed frame holding part of a packet.
					cz := wire.NewCompressed(rc.Conn, 1<<20, nil)
					if _, err := cz.Write([]byte{100, 0, 0, 0, mysql.COM_QUERY, 'S', 'E', 'L', 'E'}); err != nil {
						t.Fatal(err)
					}
					rc.Reader.Reset(cz)
				} else if _, err := rc.Conn.Write([]byte{100, 0, 0, 0, mysql.COM_QUERY, 'S', 'E', 'L', 'E'}); err != nil {
					t.Fatal(err)
				}
				rc.Seq = 1
				if e := mysqltest.ErrPacket(t, rc.ExpectClosed()); e.Code != mysql.ER_NET_READ_INTERRUPTED {
					t.Fatalf("stalled client told %v", e)
				}
			})
		}
		if n := logs.count("stopped in the middle of a packet"); n != 3 {
			t.Errorf("%d stalls logged, want 3:\n%s", n, logs.dump())
		}
	}
}
