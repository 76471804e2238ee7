package proxy

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	driver "github.com/go-sql-driver/mysql"

	"switchyard/backend"
	"switchyard/internal/mysqltest"
	"switchyard/wire"
)

// TestOversizedPacket: a command larger than MaxPacketSize gets ERR 1153
// and the connection closes, after the proxy read (and dropped) the rest
// of the packet, so that a client still sending it reads the error rather
// than a connection reset.
func TestOversizedPacket(t *testing.T) {
	h := newHarness(t, harnessConfig{listener: ListenerOptions{MaxPacketSize: 64 << 10}})
	rc := h.login(t, mysqltest.Login{User: "app", Pass: "secret"})
	// Bigger than the socket buffers on both sides: the write completes
	// only if the proxy reads it.
	payload := append([]byte{mysql.COM_QUERY}, strings.Repeat("x", 8<<20)...)
	pkt, _ := wire.AppendPacket(nil, payload, 0)
	wrote := make(chan error, 1)
	go func() {
		_, err := rc.TCP.Write(pkt)
		wrote <- err
	}()
	rc.Seq = 1
	if e := wire.ParseErr(rc.Read()); e.Code != mysql.ER_NET_PACKET_TOO_LARGE {
		t.Fatalf("oversized command: %v", e)
	}
	if err := <-wrote; err != nil {
		t.Fatalf("the packet was not drained: %v", err)
	}
	rc.ExpectClosed()
}

// TestProtocolErrors: packets out of order end the session with 1156; an
// empty command or an unknown command byte is answered with 1047, and the
// session goes on.
func TestProtocolErrors(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	t.Run("sequence id", func(t *testing.T) {
		rc := h.login(t, mysqltest.Login{User: "app", Pass: "secret"})
		rc.Seq = 3
		rc.Write(wire.AppendCommand(nil, mysql.COM_QUERY, "SELECT 1"))
		// As MariaDB 10.11: the error carries the sequence id expected
		// (0, a command's), and the connection closes.
		hdr := make([]byte, wire.HeaderSize)
		if _, err := io.ReadFull(rc.Reader, hdr); err != nil {
			t.Fatal(err)
		}
		p := make([]byte, wire.PayloadLen(hdr))
		if _, err := io.ReadFull(rc.Reader, p); err != nil {
			t.Fatal(err)
		}
		if e := wire.ParseErr(p); e.Code != mysql.ER_NET_PACKETS_OUT_OF_ORDER || e.State != "08S01" || e.Message != "Got packets out of order" || hdr[3] != 0 {
			t.Fatalf("command with sequence id 3: %v, sequence id %d", e, hdr[3])
		}
		rc.Seq = hdr[3] + 1
		rc.ExpectClosed()
	})
	for _, tc := range []struct {
		name    string
		payload []byte
	}{
		{"empty command", nil},
		{"unknown command", []byte{0x7f, 1, 2}},
		{"COM_BINLOG_DUMP", []byte{mysql.COM_BINLOG_DUMP}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := h.login(t, mysqltest.Login{User: "app", Pass: "secret"})
			rc.Command(tc.payload)
			if e := rc.MustErr(rc.Response(wire.ShapeOne)); e.Code != mysql.ER_UNKNOWN_COM_ERROR {
				t.Fatalf("%s: %v", tc.name, e)
			}
			rc.MustOK(rc.Cmd(mysql.COM_PING, "", wire.ShapeOne))
		})
	}
	t.Run("malformed compressed frame", func(t *testing.T) {
		rc := h.login(t, mysqltest.Login{User: "app", Pass: "secret", Caps: rawCaps | mysql.CLIENT_COMPRESS})
		// A frame that says it is deflated and is not.
		_, _ = rc.Conn.Write([]byte{5, 0, 0, 0, 9, 0, 0, 'h', 'e', 'l', 'l', 'o'})
		rc.Compress = false // what comes back, if anything, is not worth decoding
		_ = rc.TCP.SetReadDeadline(time.Now().Add(15 * time.Second))
		if _, err := io.ReadAll(rc.TCP); err != nil && !isDisconnect(err) {
			t.Fatalf("read: %v", err)
		}
		mysqltest.Eventually(t, "the log line", func() bool { return h.logs.count("client read failed") == 1 })
	})
}

// TestIdleTimeout: a client idle longer than IdleTimeout is closed.
func TestIdleTimeout(t *testing.T) {
	h := newHarness(t, harnessConfig{listener: ListenerOptions{IdleTimeout: 200 * time.Millisecond}})
	rc := h.login(t, mysqltest.Login{User: "app", Pass: "secret"})
	rc.ExpectClosed()
	mysqltest.Eventually(t, "the log line", func() bool { return h.logs.count("closed idle client") == 1 })
}

// TestIdleTimeoutFromLastCommand: the idle timeout counts from the last
// command, though the deadline set for an earlier wait is kept (it fires
// early and is set again): a client that sends a command more often than
// the timeout stays, for longer than the timeout in all, and is closed once
// it goes quiet.
func TestIdleTimeoutFromLastCommand(t *testing.T) {
	const idle = 1500 * time.Millisecond
	h := newHarness(t, harnessConfig{listener: ListenerOptions{IdleTimeout: idle}})
	rc := h.login(t, mysqltest.Login{User: "app", Pass: "secret"})
	for start := time.Now(); time.Since(start) < 2*idle; {
		time.Sleep(idle / 5)
		rc.MustOK(rc.Cmd(mysql.COM_PING, "", wire.ShapeOne))
	}
	if n := h.logs.count("closed idle client"); n != 0 {
		t.Fatalf("a client sending commands was closed as idle")
	}
	rc.ExpectClosed()
	mysqltest.Eventually(t, "the log line", func() bool { return h.logs.count("closed idle client") == 1 })
}

// TestLoadDataLocalInfile: the server's request for the client's file,
// the file's packets (sequence ids continuing the client's) and the OK,
// relayed between them; a client that numbers its packets wrong loses its
// connection.
func TestLoadDataLocalInfile(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	for _, caps := range []uint32{rawCaps, rawCaps | mysql.CLIENT_DEPRECATE_EOF | mysql.CLIENT_COMPRESS} {
		rc := h.login(t, mysqltest.Login{User: "app", Pass: "secret", Caps: caps})
		rc.Command(wire.AppendCommand(nil, mysql.COM_QUERY, "LOAD DATA LOCAL INFILE 'rows.csv' INTO TABLE t"))
		if p := rc.Read(); p[0] != wire.InfileHeader || string(p[1:]) != "rows.csv" {
			t.Fatalf("infile request %x", p)
		}
		rc.Write([]byte("1,a\n2,b\n"))
		rc.Write([]byte("3,c\n"))
		rc.Write(nil)
		resp := rc.Response(wire.ShapeOne)
		if ok := rc.MustOK(resp); ok.AffectedRows != 3 {
			t.Fatalf("LOAD DATA: %+v", ok)
		}
		h.ranOn("LOAD DATA LOCAL INFILE", primaryName)
	}
	rc := h.login(t, mysqltest.Login{User: "app", Pass: "secret"})
	rc.Command(wire.AppendCommand(nil, mysql.COM_QUERY, "LOAD DATA LOCAL INFILE 'rows.csv' INTO TABLE t"))
	rc.Read()
	rc.Seq = 7
	rc.Write([]byte("1,a\n"))
	// Answered as a server would: 1156 with the sequence id expected.
	rc.Seq = 2
	if e := mysqltest.ErrPacket(t, rc.ExpectClosed()); e.Code != mysql.ER_NET_PACKETS_OUT_OF_ORDER {
		t.Fatalf("LOCAL INFILE data out of order: %v", e)
	}

	// go-sql-driver's LOCAL INFILE from a registered reader.
	driver.RegisterReaderHandler("rows", func() io.Reader { return strings.NewReader("1\n2\n3\n4\n") })
	defer driver.DeregisterReaderHandler("rows")
	c := h.session(t, "app", "secret", "shop")
	r := mustExec(t, c, "LOAD DATA LOCAL INFILE 'Reader::rows' INTO TABLE t")
	if n, _ := r.RowsAffected(); n != 4 {
		t.Fatalf("rows affected %d", n)
	}
}

// TestLargeResults: a row bigger than the read and write buffers is
// streamed through, for plain and compressed clients.
func TestLargeResults(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	for _, caps := range []uint32{rawCaps, rawCaps | mysql.CLIENT_COMPRESS | mysql.CLIENT_DEPRECATE_EOF} {
		rc := h.login(t, mysqltest.Login{User: "app", Pass: "secret", Caps: caps})
		if got := rc.Value("SELECT b FROM big"); got != strings.Repeat("b", 100<<10) {
			t.Fatalf("big row of %d bytes", len(got))
		}
		rc.MustOK(rc.Cmd(mysql.COM_PING, "", wire.ShapeOne))
	}
	c := h.session(t, "app", "secret", "shop", "compress=true")
	if got := mustValue(t, c, "SELECT b FROM big"); len(got) != 100<<10 {
		t.Fatalf("big row of %d bytes through go-sql-driver with compression", len(got))
	}
}

// panicPool is a Pool whose Acquire panics while armed: a bug in a session
// that must end that session only.
type panicPool struct {
	Pool
	armed atomic.Bool
}

func (p *panicPool) Acquire(ctx context.Context, srv *backend.Server, req backend.Request) (*backend.Conn, error) {
	if req.Dial.Creds.User == "bob" && p.armed.Load() {
		panic("test panic in Acquire")
	}
	return p.Pool.Acquire(ctx, srv, req)
}

// TestSessionPanic: a panic in a session, at login or in a command, closes
// that client's connection and nothing else.
func TestSessionPanic(t *testing.T) {
	pp := &panicPool{}
	h := newHarness(t, harnessConfig{allowPanic: true, wrapPool: func(p Pool) Pool { pp.Pool = p; return pp }})
	other := h.session(t, "app", "secret", "shop")
	mustValue(t, other, "SELECT 1")

	pp.armed.Store(true)
	rc := h.dial(t)
	rc.ReadGreeting()
	rc.Write(handshakeResponse(rawCaps, "bob", mysql.CalcNativePassword(rc.Scramble, []byte("bobpw")), "", mysql.AUTH_NATIVE_PASSWORD))
	rc.ExpectClosed()
	if got := mustValue(t, other, "SELECT 'still here'"); got != "still here" {
		t.Fatal(got)
	}

	pp.armed.Store(false)
	bob := h.login(t, mysqltest.Login{User: "bob", Pass: "bobpw"})
	pp.armed.Store(true)
	bob.Command(wire.AppendCommand(nil, mysql.COM_QUERY, "SELECT name FROM whoami"))
	bob.ExpectClosed()
	pp.armed.Store(false)
	if got := mustValue(t, other, "SELECT 'still here'"); got != "still here" {
		t.Fatal(got)
	}
	mysqltest.Eventually(t, "the panics to be logged", func() bool { return h.logs.count("session panic") == 2 })
}

// TestDriverSmoke runs an ordinary application's statements through
// go-sql-driver, with multi-statements and interpolated parameters, to
// make sure the realistic path works end to end.
func TestDriverSmoke(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	db := h.db(t, "app", "secret", "shop", "multiStatements=true", "interpolateParams=true")
	ctx := testCtx(t)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO t VALUES (?)", 1); err != nil {
		t.Fatal(err)
	}
	var who string
	if err := tx.QueryRowContext(ctx, "SELECT name FROM whoami WHERE id = ?", 1).Scan(&who); err != nil || who != primaryName {
		t.Fatalf("read in a transaction on %s (%v)", who, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	rows, err := db.QueryContext(ctx, "SELECT 1; SELECT 2")
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for {
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			got = append(got, v)
		}
		if !rows.NextResultSet() {
			break
		}
	}
	rows.Close()
	if len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("multi-statement results %v", got)
	}
	if err := db.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	var n sql.NullString
	err = db.QueryRowContext(ctx, "SELECT nothing FROM nowhere").Scan(&n)
	if errCode(err) != mysql.ER_PARSE_ERROR {
		t.Fatalf("the server's error: %v", err)
	}
	if errors.Is(err, driver.ErrInvalidConn) {
		t.Fatal("an error answer broke the connection")
	}
}
