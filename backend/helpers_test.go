package backend

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/internal/fakemysql"
	"switchyard/internal/mysqltest"
	"switchyard/wire"
)

// Shared helpers of the backend tests (beyond internal/mysqltest's):
// clusters over fake servers, the test certificate's configurations, and a
// scripted server for the answers the fake never gives (auth switches,
// malformed packets, a failing prepare).

// appCreds log in as the fake's default application user.
var appCreds = Credentials{User: "app", Plain: "secret", HasPassword: true}

// appDial is the DialOptions of a plain application session.
var appDial = DialOptions{Creds: appCreds}

// clusterOver builds a cluster whose servers db1, db2, ... are the given
// fakes, with a quiet logger and a 5 s connect timeout.
func clusterOver(t *testing.T, opt Options, fakes ...*fakemysql.Server) *Cluster {
	t.Helper()
	specs := make([]ServerSpec, len(fakes))
	for i, f := range fakes {
		specs[i] = ServerSpec{Name: "db" + string(rune('1'+i)), Address: f.Addr()}
	}
	if opt.Logger == nil {
		opt.Logger = discardLogger()
	}
	return NewCluster(specs, opt)
}

// mustConnect opens a client connection through the cluster and closes it
// at the end of the test.
func mustConnect(t *testing.T, c *Cluster, srv *Server, opt DialOptions) *Conn {
	t.Helper()
	cn, err := c.Connect(context.Background(), srv, opt)
	if err != nil {
		t.Fatalf("connect to %s: %v", srv.Name, err)
	}
	t.Cleanup(func() { cn.Close() })
	return cn
}

// mustDial logs in to srv directly (no cluster bookkeeping).
func mustDial(t *testing.T, srv *Server, opt DialOptions) *Conn {
	t.Helper()
	if opt.timeout == 0 {
		opt.timeout = 5 * time.Second
	}
	cn, err := dial(context.Background(), srv, opt)
	if err != nil {
		t.Fatalf("dial %s: %v", srv.Name, err)
	}
	t.Cleanup(func() { cn.Close() })
	return cn
}

// serverAt is a bare Server for dial, outside any cluster.
func serverAt(addr string) *Server { return &Server{Name: "db1", Address: addr} }

// connID is the fake server's id of the connection, from CONNECTION_ID().
func connID(t *testing.T, cn *Conn) string {
	t.Helper()
	res, err := cn.Query("SELECT CONNECTION_ID()")
	if err != nil {
		t.Fatalf("SELECT CONNECTION_ID(): %v", err)
	}
	return res.Rows[0][0].String
}

// commands returns the commands a fake received, as "cmd arg" strings with
// the command's name, leaving out logins: what a test expects to see sent.
func commands(log []fakemysql.Command) []string {
	var out []string
	for _, c := range log {
		if c.Cmd == mysql.COM_CONNECT {
			continue
		}
		out = append(out, mysqltest.CommandName(c.Cmd)+" "+c.Arg)
	}
	return out
}

// selfSignedTLS returns the test certificate's server configuration and
// a client configuration that trusts it and names no server: the backend
// names it after the server's address.
func selfSignedTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	c := mysqltest.Certificate()
	c.Client.ServerName = ""
	return c.Server, c.Client
}

// scripted is a server that answers each connection with a script: what
// the fake cannot be made to say (auth switches, clear passwords, broken
// packets, a refused prepare).
type scripted struct {
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []string
}

// startScripted listens on 127.0.0.1 and runs script for each connection;
// a script reports what it did not like through s.fail, checked at cleanup.
func startScripted(t *testing.T, script func(s *scripted, p *peer)) *scripted {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scripted{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer nc.Close()
				script(s, &peer{nc: nc, br: bufio.NewReader(nc)})
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
		for _, e := range s.errs {
			t.Error("scripted server: " + e)
		}
	})
	return s
}

func (s *scripted) addr() string { return s.ln.Addr().String() }

func (s *scripted) fail(msg string) {
	s.mu.Lock()
	s.errs = append(s.errs, msg)
	s.mu.Unlock()
}

// peer is the server's end of one scripted connection.
type peer struct {
	nc  net.Conn
	br  *bufio.Reader
	seq uint8 // sequence id of the next packet either way
}

func (p *peer) write(payload []byte) {
	out, next := wire.AppendPacket(nil, payload, p.seq)
	p.seq = next
	_, _ = p.nc.Write(out)
}

// writeRaw sends bytes as they are, for broken framing.
func (p *peer) writeRaw(b []byte) { _, _ = p.nc.Write(b) }

func (p *peer) read() ([]byte, error) {
	_ = p.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	pkt, next, err := wire.ReadPacket(p.br, nil, 1<<24, p.seq)
	p.seq = next
	return pkt, err
}

// scriptSalt is the scramble the scripted server sends in its greeting.
var scriptSalt = []byte("abcdefghijklmnopqrst")

// greet sends a greeting announcing plugin with caps (0: a usual MariaDB
// set) and reads the handshake response.
func (p *peer) greet(plugin string, caps uint32) (*wire.HandshakeResponse, error) {
	if caps == 0 {
		caps = mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_PLUGIN_AUTH |
			mysql.CLIENT_TRANSACTIONS | mysql.CLIENT_CONNECT_WITH_DB | mysql.CLIENT_LONG_FLAG |
			mysql.CLIENT_SESSION_TRACK | mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | mysql.CLIENT_MULTI_RESULTS
	}
	p.seq = 0
	p.write(wire.AppendGreeting(nil, &wire.Greeting{
		ServerVersion: "8.0.99-scripted", ConnectionID: 7, Capabilities: caps, Collation: 45,
		Status: mysql.SERVER_STATUS_AUTOCOMMIT, AuthData: scriptSalt, AuthPlugin: plugin,
	}))
	pkt, err := p.read()
	if err != nil {
		return nil, err
	}
	return wire.ParseHandshakeResponse(pkt)
}

// ok sends an OK packet.
func (p *peer) ok() { p.write(wire.AppendOK(nil, wire.OK{Status: mysql.SERVER_STATUS_AUTOCOMMIT})) }

// loginOK greets with native password and accepts whatever comes back.
func (p *peer) loginOK() bool {
	if _, err := p.greet(mysql.AUTH_NATIVE_PASSWORD, 0); err != nil {
		return false
	}
	p.ok()
	return true
}

// command reads the next command packet.
func (p *peer) command() ([]byte, error) {
	p.seq = 0
	return p.read()
}

// containsAll reports whether s contains every one of subs.
func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// appendErr is an ERR packet's payload.
func appendErr(code uint16, msg string) []byte { return wire.AppendErr(nil, mysql.NewError(code, msg)) }
