package backend

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/internal/sockpeek"
	"switchyard/wire"
)

// Credentials are what the proxy knows of a user's secret. Plain is empty when
// the config holds only a mysql_native_password hash; Stage1 (SHA1(password))
// is then recovered from the client's own login, which is all a native-password
// login to the server needs.
type Credentials struct {
	User   string
	Plain  string
	Stage1 []byte
	// HasPassword is false for an account with an empty password.
	HasPassword bool
	// OldHash is the stored hash of an account with a mysql_old_password
	// (users_from_servers), which is all its login needs; nil for others.
	OldHash *wire.OldPasswordHash
}

// DialOptions describe the session a new server connection should start with.
type DialOptions struct {
	Creds     Credentials
	Schema    string
	Collation uint8
	// Capabilities the client negotiated; the server connection uses the
	// subset that both the server and the proxy's forwarding support, so that
	// packets can pass through unchanged.
	Capabilities uint32
	// ExtCapabilities are the MariaDB extended capabilities the client
	// negotiated (wire.MariaDBExtendedMetadata), asked of a MariaDB server
	// so that its packets pass through unchanged.
	ExtCapabilities uint32

	// Set by the Cluster: TLS towards the server, the login's time limit,
	// and where read buffers are borrowed (nil: each response its own).
	tls     *tls.Config
	timeout time.Duration
	readers *readerPool
	// trackGTID asks the server to report GTIDs (client connections).
	trackGTID bool
	// traffic, when set, counts the connection's bytes (client connections).
	traffic *traffic
}

// Capabilities the proxy never asks a server for: compression and TLS are
// handled per hop, connection attributes are the proxy's own business.
const strippedCaps = mysql.CLIENT_SSL | mysql.CLIENT_COMPRESS | mysql.CLIENT_CONNECT_ATTRS |
	mysql.CLIENT_ZSTD_COMPRESSION_ALGORITHM | mysql.CLIENT_OPTIONAL_RESULTSET_METADATA |
	mysql.CLIENT_QUERY_ATTRIBUTES | mysql.CLIENT_SSL_VERIFY_SERVER_CERT | mysql.CLIENT_REMEMBER_OPTIONS |
	mysql.CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS

// serverCapabilities are the client capabilities that matter to a server
// connection: the ones it is opened with. Sessions whose capabilities agree
// on these may share connections.
// Session tracking is always asked for: the proxy reads the session state
// changes (and, for read-your-writes, the GTID) that OK packets then carry,
// and strips them for clients that did not ask.
//
// CLIENT_DEPRECATE_EOF is never asked for: the proxy converts classic EOF
// packets for clients that negotiated it, so clients with and without it
// share server connections.
func serverCapabilities(client uint32) uint32 {
	return (client | requiredCaps | mysql.CLIENT_SESSION_TRACK) &^ (strippedCaps | mysql.CLIENT_DEPRECATE_EOF)
}

// requiredCaps are what the proxy's own decoding of OK/ERR/handshake assumes.
const requiredCaps = mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION |
	mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_TRANSACTIONS

// maxServerPacket bounds the packets of the proxy's own queries and of the
// login: they are small, and a server is not trusted to allocate for us.
const maxServerPacket = 1 << 24

// Conn is one connection to a server. It is used by one goroutine at a
// time (a session, the pool, the monitor) and is not safe for concurrent
// use, except Abort and Broken, which any goroutine may call, and the
// release of its prepared statements (PreparedStmt.Release).
type Conn struct {
	nc  net.Conn
	br  *bufio.Reader
	srv *Server

	caps    uint32 // negotiated with the server
	extCaps uint32 // MariaDB's extended ones
	version string
	// threadID is the server's id for this connection (its greeting's
	// connection id), as its process list shows it.
	threadID uint32
	// status is the server status flags from the last terminating packet;
	// inTx mirrors its SERVER_STATUS_IN_TRANS for other goroutines.
	status uint16
	inTx   atomic.Bool

	// broken is set when the connection can no longer be trusted to be at a
	// packet boundary, or was aborted; it is then closed instead of reused.
	broken atomic.Bool
	closed bool
	// slot: the connection holds one of its server's max_connections slots.
	slot     bool
	lastUsed time.Time
	created  time.Time
	// key is the pool the connection belongs to; state the session state
	// it carries.
	key   poolKey
	state SessionState
	// stmts are the statements prepared on the connection (query.go);
	// pool is the pool it belongs to, which tidies them while it is idle.
	stmts     stmtCache
	pool      *Pool
	readers   *readerPool
	trackGTID bool // the session tracks last_gtid
	// creds are those the connection logged in with: a KILL QUERY for the
	// statement it runs comes from another connection of the same user
	// (Cluster.KillQuery).
	creds      Credentials
	peeker     *sockpeek.Peeker // nil over TLS
	peekerMade bool
	// unlogged scopes prepared statements (stmtScope).
	unlogged uint64
	// accounts is the pool's count of Renew calls when the
	// connection logged in (Pool.Renew).
	accounts uint64
}

// readerPool holds the read buffers of server connections: a connection
// only needs one while a response is being read, so idle connections hold
// none. A Cluster owns one and hands it to the connections it opens.
type readerPool struct{ p sync.Pool }

func (rp *readerPool) get() *bufio.Reader {
	if rp != nil {
		if br, ok := rp.p.Get().(*bufio.Reader); ok {
			return br
		}
	}
	return bufio.NewReaderSize(nil, 32<<10)
}

func (rp *readerPool) put(br *bufio.Reader) {
	br.Reset(nil)
	if rp != nil {
		rp.p.Put(br)
	}
}

// dial opens a connection to srv and logs in as opt.Creds. A server's own
// refusal comes back as *mysql.MyError.
func dial(ctx context.Context, srv *Server, opt DialOptions) (*Conn, error) {
	if opt.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opt.timeout)
		defer cancel()
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", srv.Address)
	if err != nil {
		return nil, fmt.Errorf("connect to server %s (%s): %w", srv.Name, srv.Address, err)
	}
	if opt.traffic != nil {
		nc = countTraffic(nc, opt.traffic)
	}
	c := &Conn{nc: nc, srv: srv, created: time.Now(), readers: opt.readers, key: keyOf(opt)}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	err = c.login(opt)
	if err == nil && opt.trackGTID {
		// Still under the dial's deadline and context: a server that
		// logs us in and then stalls cannot hold the caller.
		err = c.trackLastGTID()
	}
	if !stop() || err != nil {
		nc.Close()
		if err == nil {
			err = ctx.Err()
		}
		var me *mysql.MyError
		if errors.As(err, &me) {
			return nil, me
		}
		return nil, fmt.Errorf("log in to server %s (%s): %w", srv.Name, srv.Address, err)
	}
	_ = nc.SetDeadline(time.Time{})
	c.lastUsed = time.Now()
	return c, nil
}

// Server is the server the connection goes to.
func (c *Conn) Server() *Server { return c.srv }

// Capabilities are the capabilities negotiated with the server.
func (c *Conn) Capabilities() uint32 { return c.caps }

// Status is the server status flags the last response ended with.
func (c *Conn) Status() uint16 { return c.status }

// SetStatus records the status flags a response forwarded by the proxy
// ended with, so the connection knows, for one, whether it is inside a
// transaction.
func (c *Conn) SetStatus(st uint16) {
	c.status = st
	c.inTx.Store(st&mysql.SERVER_STATUS_IN_TRANS != 0)
}

// InTx reports whether the connection's last response said a transaction
// is open; unlike Status, any goroutine may ask (a switchover waits for
// the transactions open on the old primary).
func (c *Conn) InTx() bool { return c.inTx.Load() }

// ThreadID is the server's id for this connection (CONNECTION_ID() there).
func (c *Conn) ThreadID() uint32 { return c.threadID }

// ServerVersion is the version the server announced.
func (c *Conn) ServerVersion() string { return c.version }

// LastUsed is when the connection last finished a command.
func (c *Conn) LastUsed() time.Time { return c.lastUsed }

func (c *Conn) writePacket(withHeader []byte, seq uint8) error {
	wire.PutHeader(withHeader, len(withHeader)-wire.HeaderSize, seq)
	_, err := c.nc.Write(withHeader)
	return err
}

// acquireReader attaches a pooled read buffer for the duration of a response.
func (c *Conn) acquireReader() {
	if c.br == nil {
		c.br = c.readers.get()
		c.br.Reset(c.nc)
	}
}

// ReleaseReader gives the read buffer back once a response is complete. A
// buffer still holding unread bytes stays: they belong to this connection.
func (c *Conn) ReleaseReader() { c.ReleaseReaderAt(time.Now()) }

// ReleaseReaderAt is ReleaseReader for a response that was complete at
// now, for a caller that read the clock already.
func (c *Conn) ReleaseReaderAt(now time.Time) {
	c.lastUsed = now
	if c.br != nil && c.br.Buffered() == 0 {
		c.readers.put(c.br)
		c.br = nil
	}
}

// Reader returns the buffered reader for a response; call ReleaseReader when
// the response has been read to its end.
func (c *Conn) Reader() *bufio.Reader {
	c.acquireReader()
	return c.br
}

// Write sends bytes that are already framed as packets.
func (c *Conn) Write(framed []byte) error {
	_, err := c.nc.Write(framed)
	if err != nil {
		c.broken.Store(true)
	}
	return err
}

// WriteCommand sends a command built with wire.HeaderSize bytes of room
// before its payload, split into packets as the protocol requires but not
// copied (wire.CommandPackets); next is the sequence id of the answer's
// first packet.
func (c *Conn) WriteCommand(buf []byte) (next uint8, err error) {
	if len(buf)-wire.HeaderSize < wire.MaxPayload {
		// One packet, as nearly every command is: a plain write, without
		// the net.Buffers that cost two allocations and a writev per
		// statement.
		wire.PutHeader(buf, len(buf)-wire.HeaderSize, 0)
		return 1, c.Write(buf)
	}
	packets, next := wire.CommandPackets(buf)
	if _, err := packets.WriteTo(c.nc); err != nil {
		c.broken.Store(true)
		return 0, err
	}
	return next, nil
}

// SetDeadline bounds the next reads and writes on the connection.
func (c *Conn) SetDeadline(t time.Time) error { return c.nc.SetDeadline(t) }

// SetReadDeadline bounds the next reads on the connection.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.nc.SetReadDeadline(t) }

// MarkBroken records that the connection is no longer at a packet boundary.
func (c *Conn) MarkBroken() { c.broken.Store(true) }

// Broken reports whether the connection must be closed instead of reused.
func (c *Conn) Broken() bool { return c.broken.Load() }

// Abort closes the socket at once, from any goroutine: shutdown, an
// operator's OFFLINE_HARD, a session that is killed. Whoever uses the
// connection sees its reads and writes fail and closes it as broken.
func (c *Conn) Abort() {
	c.broken.Store(true)
	_ = c.nc.Close()
}

// Close closes the connection, sending COM_QUIT first when it is healthy so
// the server logs an orderly disconnect instead of an aborted one.
func (c *Conn) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	if c.slot {
		c.srv.releaseSlot()
	}
	c.srv.untrack(c)
	if !c.broken.Load() {
		_ = c.nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		_ = c.writePacket(wire.AppendCommand(make([]byte, wire.HeaderSize, wire.HeaderSize+1), mysql.COM_QUIT, ""), 0)
	}
	if c.br != nil {
		c.readers.put(c.br)
		c.br = nil
	}
	return c.nc.Close()
}

// Alive reports whether the server has not closed the connection or sent
// anything unasked, checked without blocking. A server closes connections
// it kills or that idle past wait_timeout; finding that out before sending a
// statement lets the proxy reconnect instead of failing the statement.
func (c *Conn) Alive() bool {
	if c.broken.Load() {
		return false
	}
	if c.br != nil && c.br.Buffered() > 0 {
		return false
	}
	if data, closed := c.peekSocket(); data || closed {
		// Closed, failed, or data nobody asked for (an error packet
		// before a close): the connection cannot be trusted.
		c.broken.Store(true)
		return false
	}
	return true
}

// Unread reports, without blocking, whether the server sent bytes that
// nobody has read: after a response was read to what the proxy took for
// its end, any means the two disagree on where it ended. Over TLS only
// what is buffered is seen (records may arrive unasked).
func (c *Conn) Unread() bool {
	if c.br != nil && c.br.Buffered() > 0 {
		return true
	}
	data, _ := c.peekSocket()
	return data
}

// peekSocket looks at the socket without blocking or consuming: data
// waiting, or the connection closed or failed. TLS connections report
// neither (records may arrive unasked; the connection is trusted). The
// forwarder calls it after every response: the Peeker is made once.
func (c *Conn) peekSocket() (data, closed bool) {
	if !c.peekerMade {
		c.peeker, c.peekerMade = sockpeek.New(c.nc), true
	}
	return c.peeker.Peek()
}
