package proxy

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/backend"
	"switchyard/internal/fakemysql"
	"switchyard/internal/mysqltest"
	"switchyard/wire"
)

// BenchmarkPointSelect runs one client's point selects through an
// in-process proxy to a fake replica: the whole per-statement path
// (command loop, classification, routing, borrowing a pooled connection,
// forwarding, giving it back). The fake server and the client run in the
// same process, so ns/op is only for comparing builds; allocs/op is exact.
//
//	go test -run '^$' -bench PointSelect -benchmem ./proxy/
func BenchmarkPointSelect(b *testing.B) {
	for _, bc := range []struct {
		name string
		caps uint32
	}{
		{"classic EOF", 0},
		{"deprecate EOF", mysql.CLIENT_DEPRECATE_EOF},
	} {
		b.Run(bc.name, func(b *testing.B) {
			addr := benchProxy(b)
			c := mysqltest.Dial(b, addr, rawCaps|bc.caps, nil)
			if err := c.Login(mysqltest.Login{User: "app", Pass: "secret", Schema: "shop"}); err != nil {
				b.Fatal(err)
			}
			cmd := wire.AppendCommand(nil, mysql.COM_QUERY, "SELECT 1")
			r := bufio.NewReaderSize(c.Conn, 16<<10)
			var buf []byte
			deprecateEOF := c.Caps&mysql.CLIENT_DEPRECATE_EOF != 0
			b.ReportAllocs()
			for b.Loop() {
				framed, _ := wire.AppendPacket(buf[:0], cmd, 0)
				if _, err := c.Conn.Write(framed); err != nil {
					b.Fatal(err)
				}
				var w wire.Walker
				w.Reset(wire.ShapeResult, deprecateEOF)
				for seq := uint8(1); !w.Done(); {
					var p []byte
					var err error
					if p, seq, err = wire.ReadPacket(r, buf[:0], 1<<20, seq); err != nil {
						b.Fatal(err)
					}
					if _, err := w.Next(p, len(p)); err != nil {
						b.Fatal(err)
					}
					buf = p
				}
			}
		})
	}
}

// benchProxy starts a fake primary and replica and a proxy in front of them.
func benchProxy(b *testing.B) string {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var specs []backend.ServerSpec
	for i, name := range []string{"primary", "replica"} {
		f := fakemysql.Start(b, fakemysql.Options{ReadOnly: i > 0, Replica: map[bool]*fakemysql.ReplicaStatus{
			true: {SourceHost: "127.0.0.1", SourcePort: 3306, IORunning: true, SQLRunning: true}}[i > 0]})
		specs = append(specs, backend.ServerSpec{Name: name, Address: f.Addr(), Weight: 1})
	}
	cl := backend.NewCluster(specs, backend.Options{Logger: log})
	pool := backend.NewPool(backend.PoolOptions{}, cl)
	srv, err := NewServer(Options{ListenerOptions: ListenerOptions{Users: []User{{Name: "app", Password: "secret"}}, Logger: log},
		Servers: cl, Pool: pool})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(ln)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		pool.Close()
	})
	return ln.Addr().String()
}

// BenchmarkPHPRequest is a PHP-FPM request through an in-process proxy:
// connect, log in, five point selects, COM_QUIT, and the proxy's side of
// the connection ending. allocs/op counts the whole request, login
// included (the client's allocations too).
//
//	go test -run '^$' -bench PHPRequest -benchmem ./proxy/
func BenchmarkPHPRequest(b *testing.B) {
	addr := benchProxy(b)
	b.ReportAllocs()
	for b.Loop() {
		c := mysqltest.Dial(b, addr, rawCaps, nil)
		if err := c.Login(mysqltest.Login{User: "app", Pass: "secret", Schema: "shop"}); err != nil {
			b.Fatal(err)
		}
		for range 5 {
			c.Query("SELECT 1")
		}
		c.Command([]byte{mysql.COM_QUIT})
		c.ExpectClosed()
		c.Conn.Close()
	}
}
