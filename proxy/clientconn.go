package proxy

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/backend"
	"switchyard/wire"
)

// clientReadBuffer is small on purpose: an idle connection holds it while
// it waits for the next command. Short statements (a point select is ~70
// bytes) arrive in one read; longer ones are read straight into the
// command buffer. 1 KiB cost idle sessions about 0.6 KB of RSS each for no
// gain on the benchmarks.
const clientReadBuffer = 512

// ClientConn is one client connection as the protocol sees it: framing and
// sequence ids, TLS, compression, and writing OK and ERR packets. It knows
// who logged in but nothing of what its commands mean; a Handler's Session
// does. All its methods are called from the connection's own goroutine.
type ClientConn struct {
	ln *Listener
	id uint32
	// raw is the accepted socket: other goroutines close it and set its
	// deadlines (which reach TLS over it too), since nc changes at a TLS
	// upgrade.
	raw net.Conn
	// sock is raw as the proxy reads it, with limits.net_read_timeout.
	sock clientSocket
	nc   net.Conn // &sock, or TLS over it after an upgrade
	br   *bufio.Reader
	out  io.Writer // nc, or compressed framing over it
	addr string
	tls  bool
	// tlsVersion and tlsCipher describe the client's TLS session, for
	// SHOW STATUS (tlsstatus.go).
	tlsVersion, tlsCipher uint16

	// seq is the sequence id the next packet to the client carries.
	seq uint8
	// caps are the capabilities both sides agreed on; extCaps MariaDB's
	// extended ones (auth.go, greetingCaps).
	caps    uint32
	extCaps uint32
	// status is the server status the client was last told of.
	status uint16
	login  Login
	// account is the name of the user the session is logged in as, for
	// other goroutines (KILL, its checks): login is the session's own,
	// replaced by a change of user on its goroutine.
	account atomic.Pointer[string]
	// userName is the name the client gave, for log lines, also when it
	// is no account.
	userName string
	// counted is the account whose users[].max_connections this
	// connection counts against.
	counted *User
	salt    []byte
	log     *slog.Logger

	// pending is the buffered response to the current command, if any;
	// cmdBuf holds the command.
	pending *bufio.Writer
	cmdBuf  *[]byte
	// oversized is what remains of a packet over the size limit.
	oversized *wire.TooLargeError
	// idle is true while the connection waits for a command; shutdown
	// reads it from another goroutine. waitSince is when the wait began.
	idle      atomic.Bool
	waitSince time.Time
}

// Login is who a client logged in as, and what the proxy needs to log in
// to servers on its behalf.
type Login struct {
	User  *User
	Creds backend.Credentials
	// Schema is the schema named at login (or the user's default_schema).
	Schema    string
	Collation uint8
}

func newClientConn(ln *Listener, id uint32, nc net.Conn) *ClientConn {
	c := &ClientConn{ln: ln, id: id, raw: nc, out: nc, addr: nc.RemoteAddr().String(),
		status: mysql.SERVER_STATUS_AUTOCOMMIT}
	c.sock = clientSocket{Conn: nc, netRead: ln.lim().NetReadTimeout}
	c.nc = &c.sock
	return c
}

// clientSocket is the accepted socket as the proxy reads it. Once a
// packet has begun (its header or part of its payload arrived), each read
// may wait only limits.net_read_timeout, so a client that stalls in the
// middle of a packet is dropped after that long. The wait for the first
// byte of a command is bounded by the idle timeout instead, and the whole
// login by the handshake timeout, past which reads are never extended. A
// command that arrives whole in one read, as most do, costs no deadline.
// (A TLS record or compressed frame that arrived in part behind a whole
// one waits under the idle timeout: it costs what an idle connection
// costs.)
type clientSocket struct {
	net.Conn
	netRead time.Duration // 0: none
	limit   time.Time     // zero: none
	// started: bytes arrived since the connection last began to wait for
	// a command, so a timeout is a stall in the middle of a packet.
	started bool
	// idleSet: the read deadline is idleAt (zero: none), set for the wait
	// for a command; whatever sets another clears it.
	idleSet bool
	idleAt  time.Time
}

func (s *clientSocket) Read(p []byte) (int, error) {
	if s.started {
		s.extend()
	}
	n, err := s.Conn.Read(p)
	if n > 0 {
		s.started = true
	}
	return n, err
}

// extend gives the client net_read_timeout from now for its next bytes
// (never past limit).
func (s *clientSocket) extend() {
	s.idleSet = false
	if s.netRead <= 0 {
		_ = s.Conn.SetReadDeadline(s.limit)
		return
	}
	d := time.Now().Add(s.netRead)
	if !s.limit.IsZero() && s.limit.Before(d) {
		d = s.limit
	}
	_ = s.Conn.SetReadDeadline(d)
}

// waitCommand sets the deadline for reading the next command: the idle
// timeout (0: none) while nothing of it has arrived, net_read_timeout when
// the client already sent some of it behind the last one.
//
// An idle deadline set at an earlier wait is kept if it is not later than
// this wait's: it fires early at worst, and rearmIdle then sets it again
// from when this wait began. Setting it for every command cost a timer
// update per statement (about 1.3% of the proxy's CPU, perf, sysbench point
// selects at 64 threads).
func (c *ClientConn) waitCommand(idle time.Duration) {
	if c.br.Buffered() > 0 {
		c.sock.started = true // the next read, if any, extends
		return
	}
	c.sock.started = false
	now := time.Now()
	c.waitSince = now
	var want time.Time
	if idle > 0 {
		want = now.Add(idle)
	}
	s := &c.sock
	if s.idleSet && want.IsZero() == s.idleAt.IsZero() && !s.idleAt.After(want) {
		return
	}
	c.setIdleDeadline(want)
}

func (c *ClientConn) setIdleDeadline(t time.Time) {
	c.sock.idleSet, c.sock.idleAt = true, t
	_ = c.raw.SetReadDeadline(t)
}

// rearmIdle reports whether err is a deadline that fired during the wait
// for a command before the idle timeout (0: none) ran out since the wait
// began (see waitCommand); it then sets the deadline where the timeout
// ends, and the wait goes on.
func (c *ClientConn) rearmIdle(err error, idle time.Duration) bool {
	if c.sock.started || !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	var end time.Time
	if idle > 0 {
		end = c.waitSince.Add(idle)
		if !time.Now().Before(end) {
			return false
		}
	}
	c.setIdleDeadline(end)
	return true
}

// expectData readies the connection for packets the client must send now
// (LOCAL INFILE data): net_read_timeout applies from the first byte.
func (c *ClientConn) expectData() { c.sock.started = true }

// setLimit bounds every read until t (zero: no bound) and sets the
// connection's deadline to t: the login's timeout.
func (c *ClientConn) setLimit(t time.Time) {
	c.sock.limit, c.sock.idleSet = t, false
	_ = c.raw.SetDeadline(t)
}

// stalledMidPacket reports whether a read that timed out was cut by
// net_read_timeout: the client had started a packet, and no overall limit
// had passed.
func (c *ClientConn) stalledMidPacket() bool {
	return c.sock.started && c.sock.netRead > 0 && (c.sock.limit.IsZero() || time.Now().Before(c.sock.limit))
}

// ID is the connection id the client was given in the greeting.
func (c *ClientConn) ID() uint32 { return c.id }

// RemoteAddr is the client's address.
func (c *ClientConn) RemoteAddr() string { return c.addr }

// Capabilities are the capabilities negotiated with the client.
func (c *ClientConn) Capabilities() uint32 { return c.caps }

// TLS reports whether the connection is encrypted.
func (c *ClientConn) TLS() bool { return c.tls }

// Login is who the client is logged in as.
func (c *ClientConn) Login() Login { return c.login }

// SetStatus records the server status flags the next OK packets carry.
func (c *ClientConn) SetStatus(st uint16) { c.status = st }

// Status is the server status the client was last told of.
func (c *ClientConn) Status() uint16 { return c.status }

// Logger is the connection's logger, built on first use: most connections
// never log, and an idle one should not carry one.
func (c *ClientConn) Logger() *slog.Logger {
	if c.log == nil {
		c.log = c.ln.log.With("session", c.id, "client", c.addr, "user", c.userName)
	}
	return c.log
}

// setUserName names the user in the connection's log lines from now on.
func (c *ClientConn) setUserName(name string) { c.userName, c.log = name, nil }

// readCommand reads one command into a pooled buffer with 4 bytes of room
// before the payload, so that it can be sent on to a server in one write
// after the header is filled in. The buffer is taken only once a header has
// arrived: an idle connection holds none. Every command starts at sequence
// id 0; the client's following packets continue from there.
func (c *ClientConn) readCommand() ([]byte, error) {
	if _, err := c.br.Peek(wire.HeaderSize); err != nil {
		return nil, err
	}
	c.cmdBuf = c.ln.cmdBufs.get()
	buf, next, err := wire.ReadPacket(c.br, *c.cmdBuf, c.ln.lim().MaxPacketSize, 0)
	*c.cmdBuf = buf
	c.seq = next
	if err != nil {
		c.readCommandFailed(err)
	}
	return buf, err
}

// readCommandFailed notes what an answer to a refused command needs. (Its
// own function: the targets of errors.As escape, and the path of every
// command should not allocate them.)
func (c *ClientConn) readCommandFailed(err error) {
	var tooLarge *wire.TooLargeError
	var outOfOrder *wire.SequenceError
	switch {
	case errors.As(err, &tooLarge):
		c.oversized = tooLarge
	case errors.As(err, &outOfOrder):
		// MariaDB answers with the sequence id it expected, then closes.
		c.seq = outOfOrder.Want
	}
}

// commandDone gives the command's buffer back.
func (c *ClientConn) commandDone() {
	if c.cmdBuf != nil {
		c.ln.cmdBufs.put(c.cmdBuf)
		c.cmdBuf = nil
	}
}

// discardOversized drops the rest of a packet that exceeded
// limits.max_packet_size, bounded in bytes and time, so that a client still
// writing it reads the error instead of a reset.
func (c *ClientConn) discardOversized() {
	if c.oversized == nil {
		return
	}
	c.setLimit(time.Now().Add(10 * time.Second))
	wire.Discard(c.br, c.oversized, 1<<30)
	c.oversized = nil
}

// WritePacket sends a payload that has wire.HeaderSize bytes of room in
// front, with the next sequence id.
func (c *ClientConn) WritePacket(p []byte) error {
	wire.PutHeader(p, len(p)-wire.HeaderSize, c.seq)
	c.seq++
	_, err := c.writer().Write(p)
	return err
}

// WriteOK answers the current command with an OK packet carrying the
// status last set.
func (c *ClientConn) WriteOK() error {
	return c.WritePacket(wire.AppendOK(make([]byte, wire.HeaderSize, 16), wire.OK{Status: c.status}))
}

// WriteError answers the current command with err as an ERR packet (see
// clientError).
func (c *ClientConn) WriteError(err error) error {
	me := clientError(err)
	c.ln.metrics.countError(originProxy, me.Code)
	return c.WritePacket(wire.AppendErr(make([]byte, wire.HeaderSize, wire.HeaderSize+16+len(me.Message)), me))
}

// WriteResult answers the current command with a whole text result set,
// as the admin interface and proxy-generated answers do.
func (c *ClientConn) WriteResult(r *wire.TextResult) error {
	if r.Status == 0 {
		r.Status = c.status
	}
	if c.extCaps&wire.MariaDBExtendedMetadata != 0 {
		for i := range r.Columns {
			if r.Columns[i].Extended == nil {
				r.Columns[i].Extended = []byte{}
			}
		}
	}
	out, next := wire.AppendTextResult(nil, r, c.seq, c.caps)
	c.seq = next
	_, err := c.writer().Write(out)
	return err
}

// responseWriter buffers the response to the current command: it leaves in
// as few writes as its size allows, sent when the command is done (flush),
// after the session has given back the server connections it no longer
// needs, so a client that has its answer finds them free. The buffer is
// lent for one command, so an idle connection holds none.
func (c *ClientConn) responseWriter() *bufio.Writer {
	if c.pending == nil {
		c.pending = c.ln.writers.get(c.out)
	}
	return c.pending
}

// writer is where packets to the client go now: behind a buffered
// response, if there is one, so that they keep their order.
func (c *ClientConn) writer() io.Writer {
	if c.pending != nil {
		return c.pending
	}
	return c.out
}

// flush sends the buffered response, if any, and gives the buffer back.
func (c *ClientConn) flush() error {
	if c.pending == nil {
		return nil
	}
	err := c.pending.Flush()
	c.ln.writers.put(c.pending)
	c.pending = nil
	return err
}

// close closes the socket; safe from any goroutine.
func (c *ClientConn) close() { _ = c.raw.Close() }

func newClientReader(nc net.Conn) *bufio.Reader { return bufio.NewReaderSize(nc, clientReadBuffer) }

// writerPool holds client write buffers.
type writerPool struct{ p sync.Pool }

func (w *writerPool) get(out io.Writer) *bufio.Writer {
	bw, _ := w.p.Get().(*bufio.Writer)
	if bw == nil {
		return bufio.NewWriterSize(out, 16<<10)
	}
	bw.Reset(out)
	return bw
}

func (w *writerPool) put(bw *bufio.Writer) {
	bw.Reset(nil)
	w.p.Put(bw)
}

// bufPool recycles command buffers, each with wire.HeaderSize bytes of
// room in front. The pointer travels with the buffer, so giving it back
// allocates nothing. Buffers that grew past 64 KiB for a rare big
// statement are dropped instead of kept.
type bufPool struct{ p sync.Pool }

func (b *bufPool) get() *[]byte {
	if p, ok := b.p.Get().(*[]byte); ok {
		*p = (*p)[:wire.HeaderSize]
		return p
	}
	buf := make([]byte, wire.HeaderSize, 4096)
	return &buf
}

func (b *bufPool) put(p *[]byte) {
	if cap(*p) <= 64<<10 {
		b.p.Put(p)
	}
}

// setLogin records the session's login, on its own goroutine.
func (c *ClientConn) setLogin(l Login) {
	c.login = l
	if l.User != nil {
		name := l.User.Name
		c.account.Store(&name)
	}
}

// accountName is the name of the user the session is logged in as, for
// any goroutine; false before its login.
func (c *ClientConn) accountName() (string, bool) {
	if p := c.account.Load(); p != nil {
		return *p, true
	}
	return "", false
}
