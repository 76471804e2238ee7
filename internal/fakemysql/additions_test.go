package fakemysql

import (
	"bytes"
	"database/sql"
	"io"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/internal/mysqltest"
	"switchyard/wire"
)

// TestRawCloseAfter: a Result with CloseAfter sends that many packets of its
// answer and closes the connection, as a server dying mid-result would;
// the statements of a multi-statement query before it are answered whole.
func TestRawCloseAfter(t *testing.T) {
	s := Start(t, Options{Handle: func(c *Conn, q string) *Result {
		if q == "SELECT dies" {
			return &Result{Columns: []string{"a"}, Rows: [][]sql.NullString{{str("1")}, {str("2")}}, CloseAfter: 2}
		}
		return nil
	}})
	rc := loginRaw(t, s, rawCaps|mysql.CLIENT_MULTI_STATEMENTS, "app", "secret", "")
	rc.Command(wire.AppendCommand(nil, mysql.COM_QUERY, "SELECT 'first'; SELECT dies"))
	var w wire.Walker
	w.Reset(wire.ShapeResult, false)
	for i := 0; i < 5; i++ { // column count, definition, EOF, row, EOF (more results)
		p := rc.Read()
		if _, err := w.Next(p, len(p)); err != nil {
			t.Fatal(err)
		}
	}
	if p := rc.Read(); !bytes.Equal(p, []byte{1}) {
		t.Fatalf("column count %x", p)
	}
	if _, err := wire.ParseColumnDef(rc.Read()); err != nil {
		t.Fatal(err)
	}
	rc.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := rc.Reader.ReadByte(); err != io.EOF {
		t.Fatalf("connection not closed after 2 packets: %v", err)
	}
	mysqltest.Eventually(t, "the connection to close", func() bool { return s.Conns() == 0 })
}

func TestPacketsLen(t *testing.T) {
	b, seq := wire.AppendPacket(nil, []byte("ab"), 1)
	b, _ = wire.AppendPacket(b, []byte("cde"), seq)
	for n, want := range map[int]int{0: 0, 1: 6, 2: 13, 3: 13} {
		if got := packetsLen(b, n); got != want {
			t.Errorf("packetsLen(%d) = %d, want %d", n, got, want)
		}
	}
	if got := packetsLen(b[:11], 2); got != 11 { // the second packet cut short
		t.Errorf("truncated: %d, want 11", got)
	}
}

// TestRawHangupEndsSleep: a statement waiting (SLEEP, Result.Delay) ends
// when the client closes its connection, and the server closes its end;
// bytes the client sent ahead are no hang-up.
func TestRawHangupEndsSleep(t *testing.T) {
	s := Start(t, Options{})
	rc := loginRaw(t, s, rawCaps, "app", "secret", "")
	rc.Command(wire.AppendCommand(nil, mysql.COM_QUERY, "SELECT SLEEP(100)"))
	mysqltest.Eventually(t, "the SLEEP", func() bool {
		q := s.Queries()
		return len(q) > 0 && q[len(q)-1] == "SELECT SLEEP(100)"
	})
	rc.Conn.Close()
	mysqltest.Eventually(t, "the server to close the connection", func() bool { return s.Conns() == 0 })

	// A command sent behind the sleeping one waits its turn.
	rc = loginRaw(t, s, rawCaps, "app", "secret", "")
	rc.Command(wire.AppendCommand(nil, mysql.COM_QUERY, "SELECT SLEEP(0.1)"))
	ping, _ := wire.AppendPacket(nil, []byte{mysql.COM_PING}, 0)
	if _, err := rc.Conn.Write(ping); err != nil {
		t.Fatal(err)
	}
	if got := joinRows(mysqltest.TextRows(t, rc.Response(wire.ShapeResult))); got != "0" {
		t.Fatalf("SLEEP cut short: %s", got)
	}
	rc.Seq = 1
	rc.OKPacket(rc.Response(wire.ShapeOne))
}

// TestRawPackets: a Result with Raw sends exactly those packets, and the
// connection goes on reading commands.
func TestRawPackets(t *testing.T) {
	s := Start(t, Options{Handle: func(c *Conn, q string) *Result {
		if q == "SELECT raw" {
			return &Result{Raw: [][]byte{{1}, {'x'}}}
		}
		return nil
	}})
	rc := loginRaw(t, s, rawCaps, "app", "secret", "")
	rc.Command(wire.AppendCommand(nil, mysql.COM_QUERY, "SELECT raw"))
	if p := rc.Read(); !bytes.Equal(p, []byte{1}) {
		t.Fatalf("first packet %x", p)
	}
	if p := rc.Read(); !bytes.Equal(p, []byte{'x'}) {
		t.Fatalf("second packet %x", p)
	}
	if got := joinRows(mysqltest.TextRows(t, rc.Query("SELECT 1"))); got != "1" {
		t.Fatalf("next query: %q", got)
	}
}

// TestPauseAfter: a Result with PauseAfter sends that many packets at
// once; the rest waits for its Delay (a minute: the client reads the first
// packets and leaves, which ends the wait).
func TestPauseAfter(t *testing.T) {
	s := Start(t, Options{Handle: func(c *Conn, q string) *Result {
		if q == "SELECT paused" {
			return &Result{Columns: []string{"a"}, Rows: [][]sql.NullString{{str("1")}}, PauseAfter: 2, Delay: time.Minute}
		}
		return nil
	}})
	rc := loginRaw(t, s, rawCaps, "app", "secret", "")
	rc.Command(wire.AppendCommand(nil, mysql.COM_QUERY, "SELECT paused"))
	if p := rc.Read(); !bytes.Equal(p, []byte{1}) {
		t.Fatalf("column count %x", p)
	}
	if _, err := wire.ParseColumnDef(rc.Read()); err != nil {
		t.Fatal(err)
	}
	rc.Conn.Close()
	mysqltest.Eventually(t, "the connection to close", func() bool { return s.Conns() == 0 })
}
