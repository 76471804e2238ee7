package proxy

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/wire"
)

// A Listener accepts MySQL-protocol clients, logs them in against its
// accounts and runs each connection's command loop, handing the commands
// to its Handler. The proxy's data path is one Listener with the session
// handler (see Server); the admin interface is another with its own.
//
// Each connection runs on one goroutine with a context derived from the
// listener's. Killing a connection (shutdown's timeout, later KILL)
// cancels that context, closes the client's socket and aborts the server
// connections its session is using, so a statement blocked on a server
// cannot hold the connection open.

// A Handler serves the clients of a Listener once they have logged in.
type Handler interface {
	// Open is called once a client has proved who it is, before it is told
	// so: it returns what serves the connection's commands, or an error
	// the client gets instead of the login's OK.
	Open(ctx context.Context, c *ClientConn) (Session, error)
}

// A Session serves the commands of one client connection, one at a time,
// on the connection's goroutine (in the style of Vitess's Handler: the
// listener owns the connection, the session what the commands mean).
type Session interface {
	// Command runs one command. buf holds its payload, command byte
	// first, after wire.HeaderSize bytes of room for forwarding it. The
	// session answers through the ClientConn; an error it returns instead
	// is sent to the client as an ERR packet (clientError) and the
	// connection goes on, unless it is ErrQuit or made with EndSession or
	// EndSessionTelling.
	Command(ctx context.Context, buf []byte) error
	// Busy reports, from any goroutine, whether the session is inside a
	// transaction: a graceful shutdown lets it finish.
	Busy() bool
	// Abort closes the server connections the session is using, from any
	// goroutine.
	Abort()
	// Close releases what the session holds, once, after its last command.
	Close()
}

// ListenerOptions configure a Listener. The zero value is the config's
// defaults; a negative timeout means none.
type ListenerOptions struct {
	Users []User
	// Accounts, when set, reads the servers' accounts, whose clients the
	// listener accepts too (users_from_servers; see accounts.go).
	Accounts AccountSource
	// TLS enables client-side TLS; RequireTLS refuses clients that do not
	// upgrade.
	TLS        *tls.Config
	RequireTLS bool
	// RSAKey is used for caching_sha2_password on connections without TLS;
	// nil means the TLS certificate's key if it is RSA, else one generated
	// on first use.
	RSAKey *rsa.PrivateKey
	// Version is the server version clients are told; nil: a MariaDB 10.11
	// version string.
	Version func() string
	// ResolvesNames says whether the servers name a loopback client
	// 'localhost' in an access-denied message (skip_name_resolve off);
	// nil or false: its address, as with skip_name_resolve.
	ResolvesNames func() bool

	HandshakeTimeout time.Duration // 0: 10s
	IdleTimeout      time.Duration // 0: 8h
	// NetReadTimeout drops a client that started a packet and sends no
	// more of it for this long, at login too. 0: 30s.
	NetReadTimeout       time.Duration
	MaxPacketSize        int // 0: 64 MiB
	MaxClientConnections int // 0: 10000
	// ProxyProtocolNetworks are the peers that must open with a PROXY
	// protocol header, whose client address the connection then takes
	// (listen.proxy_protocol_networks; see proxyproto.go).
	ProxyProtocolNetworks []netip.Prefix
	Logger                *slog.Logger
}

func (o ListenerOptions) withDefaults() ListenerOptions {
	o.HandshakeTimeout = durationDefault(o.HandshakeTimeout, 10*time.Second)
	o.IdleTimeout = durationDefault(o.IdleTimeout, 8*time.Hour)
	o.NetReadTimeout = durationDefault(o.NetReadTimeout, 30*time.Second)
	if o.MaxPacketSize <= 0 {
		o.MaxPacketSize = 64 << 20
	}
	if o.MaxClientConnections <= 0 {
		o.MaxClientConnections = 10000
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Version == nil {
		o.Version = func() string { return defaultVersion }
	}
	return o
}

// durationDefault applies the zero-means-default, negative-means-none rule.
func durationDefault(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

// defaultVersion is announced until a server has been reached and told its own.
const defaultVersion = "5.5.5-10.11.0-MariaDB-switchyard"

// Listener accepts client connections and runs them.
type Listener struct {
	opt ListenerOptions
	// live holds the options a reload may change (reconfig.go).
	live    atomic.Pointer[Limits]
	handler Handler
	log     *slog.Logger

	userTab   atomic.Pointer[userTable]
	accounts  *serverAccounts // nil: users_from_servers is off
	sha2Cache sha2Cache
	key       keyOnce
	writers   writerPool
	deflates  wire.DeflatePool
	cmdBufs   bufPool

	// userConns counts connections per user, for users[].max_connections.
	userMu    sync.Mutex
	userConns map[string]int

	// ctx ends when shutdown gives up waiting: every connection's context
	// derives from it.
	ctx    context.Context
	cancel context.CancelFunc

	// nextID numbers connections for the listener's own books; clients see
	// its low 32 bits as their connection id, which wraps.
	nextID atomic.Uint64
	mu     sync.Mutex // guards conns and lns, and closing's changes
	conns  map[uint64]*conn
	lns    []net.Listener
	// closing is set, under mu, when shutdown begins; registration checks
	// it under mu too, and the command loop reads it without the lock.
	closing atomic.Bool
	wg      sync.WaitGroup
	clients atomic.Int64
	// metrics are the counters metrics.go describes.
	metrics metrics

	// logins runs connections' logins, loops their command loops: each on
	// a goroutine that ran an earlier one, when one is idle (workerPool).
	// Apart, so that an idle connection's loop does not keep the deeper
	// stack a login grows (see conn.run).
	logins workerPool
	loops  workerPool
	// watchOnce starts watchAbandoned with the first Serve; watchers
	// counts it until the listener's context ends.
	watchOnce sync.Once
	watchers  sync.WaitGroup
}

// workerIdle is how long a pooled goroutine waits for its next task
// before it exits.
const workerIdle = 10 * time.Second

// A workerPool runs tasks on goroutines that ran earlier ones, when one is
// idle, else on a new one that then waits workerIdle for more. A new
// goroutine starts on a small stack and grows to what a task needs by
// copying it, each time walking its frames: for a PHP-style request
// (connect, five reads, quit) the login's growth was about a quarter of
// the proxy's instructions and, once logins were pooled, the command
// loop's two growths on its new goroutine still about 14% (callgrind). A
// goroutine that waits here keeps its grown stack; the garbage collector
// shrinks stacks that use little of theirs, as it does any goroutine's.
//
// The most recently idle worker takes the next task (last in, first out):
// its stack is the likeliest to still be in the CPU's caches, and the
// workers a quieter load no longer needs are the ones left to time out.
// Each worker waits on a channel of its own, so handing a task over
// contends on nothing but the pool's mutex, held for a push or a pop.
type workerPool struct {
	mu      sync.Mutex
	idle    []*worker // LIFO
	stopped bool
	workers sync.WaitGroup
}

// A worker is one pooled goroutine; its next task comes on tasks, nil to
// end it.
type worker struct{ tasks chan func() }

// run runs task on the most recently idle worker, or a new one.
func (p *workerPool) run(task func()) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.tasks <- task // buffered: a popped worker's channel is empty
		return
	}
	p.mu.Unlock()
	p.workers.Add(1)
	go p.work(&worker{tasks: make(chan func(), 1)}, task)
}

func (p *workerPool) work(w *worker, task func()) {
	defer p.workers.Done()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for task != nil {
		task()
		task = nil // what it holds is not kept while waiting
		if !p.park(w) {
			return
		}
		idle.Reset(workerIdle)
		select {
		case task = <-w.tasks:
		case <-idle.C:
			if p.unpark(w) {
				return
			}
			task = <-w.tasks // run popped it just now: its task is on the way
		}
	}
}

// park makes w idle, unless the pool has stopped.
func (p *workerPool) park(w *worker) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return false
	}
	p.idle = append(p.idle, w)
	return true
}

// unpark takes w out of the idle workers after its wait timed out; false
// means run took it meanwhile.
func (p *workerPool) unpark(w *worker) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.idle {
		if x == w {
			p.idle = slices.Delete(p.idle, i, i+1)
			return true
		}
	}
	return false
}

// stop ends the idle workers and those that finish their task from now on,
// and waits for them all. Tasks run after stop run on a new goroutine each.
func (p *workerPool) stop() {
	p.mu.Lock()
	p.stopped = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, w := range idle {
		w.tasks <- nil
	}
	p.workers.Wait()
}

// conn is a connection the listener runs: the client side and, once
// logged in, its session.
type conn struct {
	*ClientConn
	cancel context.CancelFunc
	sess   atomic.Pointer[sessionBox]
}

type sessionBox struct{ Session }

// kill ends the connection from any goroutine: its context is cancelled,
// its socket closed and its session's server connections aborted, which
// wakes its goroutine wherever it is blocked. (An AfterFunc on the context
// would do the same for every way a context can end, but costs an idle
// connection a few hundred bytes.)
func (c *conn) kill() {
	c.cancel()
	c.close()
	if b := c.sess.Load(); b != nil {
		b.Abort()
	}
}

// NewListener returns a listener that is not yet accepting.
func NewListener(opt ListenerOptions, h Handler) (*Listener, error) {
	opt = opt.withDefaults()
	ln := &Listener{opt: opt, handler: h, log: opt.Logger, conns: make(map[uint64]*conn), userConns: make(map[string]int)}
	ln.ctx, ln.cancel = context.WithCancel(context.Background())
	ln.live.Store(opt.limits())
	ln.key.key = opt.RSAKey
	ln.accounts = newServerAccounts(opt.Accounts, opt.Logger)
	if ln.key.key == nil && opt.TLS != nil && len(opt.TLS.Certificates) > 0 {
		if k, ok := opt.TLS.Certificates[0].PrivateKey.(*rsa.PrivateKey); ok {
			ln.key.key = k
		}
	}
	if err := ln.SetUsers(opt.Users); err != nil {
		return nil, err
	}
	return ln, nil
}

// SetUsers replaces the accounts; connections already logged in keep theirs.
func (ln *Listener) SetUsers(users []User) error {
	t, err := newUserTable(users)
	if err != nil {
		return err
	}
	ln.userTab.Store(t)
	return nil
}

func (ln *Listener) users() *userTable { return ln.userTab.Load() }

// takeUserSlot counts a connection for u, or reports false when u already
// has users[].max_connections of them.
func (ln *Listener) takeUserSlot(u *User) bool {
	ln.userMu.Lock()
	defer ln.userMu.Unlock()
	if u.MaxConnections > 0 && ln.userConns[u.Name] >= u.MaxConnections {
		return false
	}
	ln.userConns[u.Name]++
	return true
}

func (ln *Listener) releaseUserSlot(u *User) {
	ln.userMu.Lock()
	defer ln.userMu.Unlock()
	if ln.userConns[u.Name] <= 1 {
		delete(ln.userConns, u.Name)
	} else {
		ln.userConns[u.Name]--
	}
}

const errTooManyFiles = syscall.EMFILE

// Serve accepts connections on l until Shutdown or a listener error.
func (ln *Listener) Serve(l net.Listener) error {
	ln.mu.Lock()
	if ln.closing.Load() {
		ln.mu.Unlock()
		l.Close()
		return net.ErrClosed
	}
	ln.lns = append(ln.lns, l)
	ln.mu.Unlock()
	ln.watchOnce.Do(func() {
		ln.watchers.Add(1)
		go ln.watchAbandoned()
	})
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if ln.isClosing() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errTooManyFiles) {
				// Out of file descriptors and the like: back off instead
				// of spinning, as net/http does.
				delay = min(max(delay*2, 5*time.Millisecond), time.Second)
				ln.log.Warn("accept failed; retrying", "err", err, "in", delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		ln.start(nc)
	}
}

func (ln *Listener) isClosing() bool { return ln.closing.Load() }

// start registers a new connection and runs it. Registration happens under
// the lock that shutdown takes to set the closing flag, so no connection
// slips in after shutdown has looked.
func (ln *Listener) start(nc net.Conn) {
	id := ln.nextID.Add(1)
	ctx, cancel := context.WithCancel(ln.ctx)
	c := &conn{ClientConn: newClientConn(ln, uint32(id), nc), cancel: cancel}
	ln.mu.Lock()
	if ln.closing.Load() {
		ln.mu.Unlock()
		cancel()
		nc.Close()
		return
	}
	ln.conns[id] = c
	ln.wg.Add(1)
	ln.mu.Unlock()
	ln.clients.Add(1)
	ln.metrics.connsTotal.Add(1)
	// A login needs a deep stack (handshake, password hashing, the
	// session's first server connection): it runs on a pooled goroutine.
	ln.logins.run(func() {
		c.run(ctx, func() {
			cancel()
			ln.mu.Lock()
			delete(ln.conns, id)
			ln.mu.Unlock()
			ln.clients.Add(-1)
			ln.wg.Done()
		})
	})
}

// run logs the client in and then serves its commands. A panic ends this
// connection only. The command loop runs on another goroutine (of the
// listener's loop workers) than the login: login needs a deep stack
// (crypto, TLS) that an idle connection would otherwise keep for its whole
// life, and idle connections are most of them.
func (c *conn) run(ctx context.Context, done func()) {
	loop := false
	defer func() {
		if r := recover(); r != nil {
			c.Logger().Error("session panic; closing this session", "panic", r, "stack", string(debug.Stack()))
		}
		if !loop {
			c.finish()
			done()
		}
	}()
	sess := c.handshake(ctx)
	if sess == nil {
		return
	}
	loop = true
	c.ln.loops.run(func() {
		defer func() {
			if r := recover(); r != nil {
				c.Logger().Error("session panic; closing this session", "panic", r, "stack", string(debug.Stack()))
			}
			c.finish()
			done()
		}()
		if !c.loop(ctx, sess) {
			c.ln.metrics.aborted.Add(1)
		}
	})
}

// finish closes the session, if any, and the client connection.
func (c *conn) finish() {
	if b := c.sess.Load(); b != nil {
		b.Close()
	}
	if c.counted != nil {
		c.ln.releaseUserSlot(c.counted)
		c.counted = nil
	}
	c.close()
}

// handshake runs the connection phase up to the OK packet; nil means the
// connection is over.
func (c *conn) handshake(ctx context.Context) Session {
	ln := c.ln
	c.br = newClientReader(c.nc)
	if max := ln.lim().MaxClientConnections; ln.clients.Load() > int64(max) {
		_ = c.WriteError(wire.Errorf(mysql.ER_CON_COUNT_ERROR, "Too many connections: switchyard allows %d clients (limits.max_client_connections)", max))
		c.Logger().Warn("refused client: too many connections", "limit", max)
		ln.metrics.refuse(refusedMaxClients)
		return nil
	}
	if t := ln.lim().HandshakeTimeout; t > 0 {
		c.setLimit(time.Now().Add(t))
	}
	if ln.expectsProxyHeader(c.raw.RemoteAddr()) && c.readProxyHeader() != nil {
		return nil
	}
	if err := c.authenticateLogin(); err != nil {
		c.logLoginError(err)
		return nil
	}
	sess, err := ln.handler.Open(ctx, c.ClientConn)
	if err != nil {
		_ = c.WriteError(err)
		c.Logger().Warn("login failed at the server", "err", err)
		ln.metrics.refuse(refusedServer)
		return nil
	}
	c.sess.Store(&sessionBox{sess})
	if ctx.Err() != nil {
		return nil // killed while opening, before kill could see the session
	}
	c.setLimit(time.Time{})
	if err := c.WriteOK(); err != nil {
		return nil
	}
	if c.caps&mysql.CLIENT_COMPRESS != 0 && c.br.Buffered() == 0 {
		// Everything after the login's OK travels in compressed frames.
		cw := wire.NewCompressed(c.nc, ln.lim().MaxPacketSize+wire.MaxPayload, &ln.deflates)
		c.br.Reset(cw)
		c.out = cw
	} else {
		c.caps &^= mysql.CLIENT_COMPRESS
	}
	if ln.log.Enabled(ctx, slog.LevelDebug) {
		c.Logger().Debug("client logged in", "schema", c.login.Schema, "tls", c.tls)
	}
	return sess
}

// logLoginError logs why a login ended, and tells the client what a
// server would have: the packet errors of the connection phase.
func (c *conn) logLoginError(err error) {
	var le *loginError
	var tooLarge *wire.TooLargeError
	if !isDisconnect(err) && !errors.Is(err, errProxyRefused) {
		code := uint16(0)
		if errors.As(err, &le) {
			code = le.Code
		}
		c.ln.metrics.refuse(refusalOf(code))
	}
	switch {
	case errors.As(err, &le):
		c.Logger().Info("login refused", "code", le.Code, "msg", le.Message)
	case isDisconnect(err), errors.Is(err, errProxyRefused):
	case errors.Is(err, os.ErrDeadlineExceeded) && c.stalledMidPacket():
		c.Logger().Info("closed client: it stopped in the middle of a login packet", "net_read_timeout", c.ln.lim().NetReadTimeout)
		c.tellTimeout()
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.Logger().Info("client did not finish the handshake in time; closed", "timeout", c.ln.lim().HandshakeTimeout)
	case errors.As(err, &tooLarge):
		// Not limits.max_packet_size: before login the limit is the
		// proxy's own, far smaller, so an unauthenticated client cannot
		// make it allocate.
		// Told at once, with nothing more read: a login packet this big
		// is no client's mistake.
		c.Logger().Info("closed client: login packet larger than the pre-login limit", "limit", maxLoginPacket)
		_ = c.WriteError(wire.Errorf(mysql.ER_NET_PACKET_TOO_LARGE, "Got a packet bigger than the %d bytes switchyard accepts before login", maxLoginPacket))
	case errors.Is(err, wire.ErrSequence):
		c.Logger().Info("closed client: login packets out of order", "err", err)
		_ = c.WriteError(err) // with the sequence id expected, as MariaDB does
	default:
		c.Logger().Info("login failed", "err", err)
	}
}

// errNetReadTimeout is what a client that stalled in the middle of a packet
// is told, as MariaDB tells it.
var errNetReadTimeout = mysql.NewDefaultError(mysql.ER_NET_READ_INTERRUPTED)

// tellTimeout sends errNetReadTimeout to a client that stopped sending,
// without waiting on it if it does not read either.
func (c *conn) tellTimeout() {
	_ = c.raw.SetWriteDeadline(time.Now().Add(time.Second))
	_ = c.WriteError(errNetReadTimeout)
}

// loop reads and runs commands until the client leaves or the connection
// ends. It reports whether the session ended as a server does not count in
// Aborted_clients: by the client's COM_QUIT, or at a shutdown between
// statements.
func (c *conn) loop(ctx context.Context, sess Session) (quit bool) {
	ln := c.ln
	for {
		c.idle.Store(true)
		idle := ln.lim().IdleTimeout
		c.waitCommand(idle)
		if ln.isClosing() && !sess.Busy() {
			return true
		}
		buf, err := c.readCommand()
		for err != nil && !(ln.isClosing() && !sess.Busy()) && c.rearmIdle(err, idle) {
			buf, err = c.readCommand()
		}
		c.idle.Store(false)
		if err != nil {
			c.ClientConn.commandDone()
			c.readFailed(err)
			return ln.isClosing() && !sess.Busy()
		}
		if len(buf) == wire.HeaderSize {
			// An empty command is a protocol error, as on a real server.
			err = wire.Errorf(mysql.ER_UNKNOWN_COM_ERROR, "Empty command packet")
		} else {
			err = sess.Command(ctx, buf)
		}
		if ferr := c.flush(); ferr != nil && err == nil {
			err = EndSession(errClientWrite{ferr})
		}
		c.ClientConn.commandDone()
		if err != nil && !c.failed(err) {
			return errors.Is(err, ErrQuit)
		}
	}
}

// failed acts on the error a command returned: an error to send, or the
// end of the session. It reports whether the session goes on.
func (c *conn) failed(err error) bool {
	var end *sessionEnd
	switch {
	case errors.Is(err, ErrQuit):
		return false
	case errors.As(err, &end):
		if end.tell {
			_ = c.WriteError(end.err)
		}
		if !isDisconnect(err) {
			c.Logger().Warn("session ended", "err", err)
		}
		return false
	}
	if werr := c.WriteError(err); werr != nil {
		return false
	}
	return true
}

func (c *conn) readFailed(err error) {
	switch {
	case isDisconnect(err):
	case errors.Is(err, wire.ErrTooLarge):
		c.discardOversized()
		_ = c.WriteError(err)
		c.Logger().Warn("closed client: packet larger than limits.max_packet_size", "limit", c.ln.lim().MaxPacketSize)
	case errors.Is(err, wire.ErrSequence):
		_ = c.WriteError(err)
		c.Logger().Warn("closed client: packets out of order", "err", err)
	case errors.Is(err, os.ErrDeadlineExceeded) && c.ln.isClosing():
	case errors.Is(err, os.ErrDeadlineExceeded) && c.stalledMidPacket():
		c.Logger().Info("closed client: it stopped in the middle of a packet", "net_read_timeout", c.ln.lim().NetReadTimeout)
		c.tellTimeout()
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.Logger().Info("closed idle client", "idle_timeout", c.ln.lim().IdleTimeout)
	default:
		c.Logger().Info("client read failed", "err", err)
	}
}

// Shutdown stops accepting, closes idle connections, lets running
// statements and open transactions finish until ctx ends, then cancels
// every connection's context, which closes what is left, and waits for
// the connections' goroutines.
func (ln *Listener) Shutdown(ctx context.Context) error {
	ln.mu.Lock()
	ln.closing.Store(true)
	lns := ln.lns
	ln.lns = nil
	ln.mu.Unlock()
	for _, l := range lns {
		l.Close()
	}
	done := make(chan struct{})
	go func() { ln.wg.Wait(); close(done) }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ln.closeIdle()
		select {
		case <-done:
			ln.cancel()
			ln.logins.stop()
			ln.loops.stop()
			ln.watchers.Wait()
			return nil
		case <-ctx.Done():
			ln.cancel()
			for _, c := range ln.snapshot() {
				c.kill()
			}
			<-done
			ln.logins.stop()
			ln.loops.stop()
			ln.watchers.Wait()
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// snapshot returns the open connections; what is done with them happens
// after the lock is let go.
func (ln *Listener) snapshot() []*conn {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	out := make([]*conn, 0, len(ln.conns))
	for _, c := range ln.conns {
		out = append(out, c)
	}
	return out
}

// closeIdle wakes connections that wait for a command outside a
// transaction; they see the closing flag and end. One between commands sees
// it itself.
func (ln *Listener) closeIdle() {
	for _, c := range ln.snapshot() {
		if !c.idle.Load() {
			continue
		}
		if b := c.sess.Load(); b != nil && b.Busy() {
			continue
		}
		_ = c.raw.SetReadDeadline(time.Now())
	}
}

// connections returns the number of open client connections.
func (ln *Listener) connections() int {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	return len(ln.conns)
}
