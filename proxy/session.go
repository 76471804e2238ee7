package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/backend"
	"switchyard/router"
	"switchyard/wire"
)

var errTooManyFiles = syscall.EMFILE

// clientReadBuffer is small on purpose: an idle session holds it while it
// waits for the next command. Short statements (a point select is ~70
// bytes) arrive in one read; longer ones are read straight into the command
// buffer. 1 KiB cost idle sessions about 0.6 KB of RSS each for no gain on
// the benchmarks.
const clientReadBuffer = 512

// session is one client connection. All its fields are owned by the one
// goroutine that runs it, except those marked atomic.
type session struct {
	srv  *Server
	id   uint64
	conn net.Conn
	br   *bufio.Reader
	// out is where bytes to the client go: the connection, or the
	// compressed framing on top of it once the client asked for it.
	out        io.Writer
	log        *slog.Logger
	clientAddr string
	tls        bool

	salt    []byte
	user    string
	userCfg *User
	// countedUser is the account whose max_connections this session counts
	// against, once logged in.
	countedUser *User
	creds       backend.Credentials
	caps        uint32
	collation   uint8
	schema      string

	// seq is the sequence id the next packet to the client carries.
	seq uint8

	// The session's server connections (see conns.go): by server, the one
	// the session is held on (transaction or pin), and the one its last
	// statement ran on.
	conns   []*serverConn
	current *serverConn
	last    *serverConn
	// stmts are the client's prepared statements by the ids the proxy gave
	// out; pendingStmt is the one being prepared.
	stmts         map[uint32]*clientStmt
	nextStmtID    uint32
	pendingStmt   *clientStmt
	pendingStmtID uint32

	stateLog  []stateEntry
	stateHash uint64
	// holdLast keeps the last statement's connection until the next
	// statement, which may read its outcome (LAST_INSERT_ID, FOUND_ROWS).
	holdLast bool
	pinned   string         // a reason the session is pinned, "" when free
	pins     map[string]int // every pin reason, counted
	// loginSchema is the schema new server connections start in; schema is
	// the current one, which USE and COM_INIT_DB change.
	loginSchema   string
	autocommitOff bool
	// hasWritten: the session has changed data, so read-your-writes keeps
	// its reads off replicas that may not have it. lastGTID is the GTID of
	// its last write, when the server reports it; needGTID is what the
	// statement being routed needs a replica to have applied.
	hasWritten bool
	lastGTID   string
	needGTID   string
	status     uint16
	// Scratch for picking a replica without allocating.
	replicaBuf []*backend.Server
	candBuf    []router.Candidate
	// oversized is the unread payload of a packet over the size limit, and
	// oversizedMore whether continuation packets follow it.
	oversized     int
	oversizedMore bool

	// idle is true while the session waits for a command; inTx while the
	// server reports an open transaction. Shutdown reads both.
	idle atomic.Bool
	inTx atomic.Bool
}

func newSession(srv *Server, id uint64, nc net.Conn) *session {
	s := &session{
		srv:        srv,
		id:         id,
		conn:       nc,
		out:        nc,
		clientAddr: nc.RemoteAddr().String(),
	}
	return s
}

// logger returns the session's logger, built on first use: most sessions
// never log, and an idle session should not carry one.
func (s *session) logger() *slog.Logger {
	if s.log == nil {
		s.log = s.srv.log.With("session", s.id, "client", s.clientAddr, "user", s.user)
	}
	return s.log
}

func (s *session) id32() uint32 { return uint32(s.id) }

// run logs the client in and then serves its commands. A panic ends this
// session only. The command loop runs on a goroutine of its own, started
// after login: login needs a deep stack (crypto, TLS) that an idle session
// would otherwise keep for its whole life, and idle sessions are most of them.
func (s *session) run(done func()) {
	loop := false
	defer func() {
		if r := recover(); r != nil {
			s.logger().Error("session panic; closing this session", "panic", r, "stack", string(debug.Stack()))
		}
		if !loop {
			s.close()
			done()
		}
	}()
	if !s.handshake() {
		return
	}
	loop = true
	go func() {
		defer func() {
			if r := recover(); r != nil {
				s.logger().Error("session panic; closing this session", "panic", r, "stack", string(debug.Stack()))
			}
			s.close()
			done()
		}()
		s.loop()
	}()
}

// handshake runs the connection phase up to the OK packet; false means the
// session is over.
func (s *session) handshake() bool {
	s.br = bufio.NewReaderSize(s.conn, clientReadBuffer)
	if max := s.srv.opt.MaxClientConnections; max > 0 && s.srv.clients.Load() > int64(max) {
		e := wire.Errorf(mysql.ER_CON_COUNT_ERROR, "Too many connections: switchyard allows %d clients (limits.max_client_connections)", max)
		_ = s.writePacket(wire.AppendErr(make([]byte, 4, 128), e), 0)
		s.logger().Warn("refused client: too many connections", "limit", max)
		return false
	}
	if t := s.srv.opt.HandshakeTimeout; t > 0 {
		_ = s.conn.SetDeadline(time.Now().Add(t))
	}
	if err := s.login(); err != nil {
		s.logLoginError(err)
		return false
	}
	s.loginSchema = s.schema
	// The login is checked on a server (does the schema exist, does the
	// server accept the user): the primary, or a replica while there is no
	// primary, so reads keep working through a primary outage.
	sc, err := s.primaryConn()
	if errors.Is(err, backend.ErrNoPrimary) || errors.Is(err, backend.ErrSplitBrain) {
		if srv, ok := s.pickReplica(-1); ok {
			sc, err = s.connTo(srv, false)
		}
	}
	if err != nil {
		var me *mysql.MyError
		var full *backend.ErrServerFull
		switch {
		case errors.As(err, &me):
		case errors.As(err, &full):
			me = proxyError(err)
		default:
			me = wire.Errorf(mysql.ER_UNKNOWN_ERROR, "switchyard cannot reach a server for user %q: %v; check the servers and the proxy log", s.user, err)
		}
		_ = s.writePacket(wire.AppendErr(make([]byte, 4, 64+len(me.Message)), me), s.seq)
		s.logger().Warn("login failed at the server", "err", err)
		return false
	}
	_ = s.conn.SetDeadline(time.Time{})
	s.status = sc.conn.Status
	ok := wire.AppendOK(make([]byte, 4, 16), 0, 0, s.status, 0)
	if err := s.writePacket(ok, s.seq); err != nil {
		return false
	}
	if s.caps&mysql.CLIENT_COMPRESS != 0 && s.br.Buffered() == 0 {
		// Everything after the login's OK travels in compressed frames.
		cw := wire.NewCompressed(s.conn, s.srv.opt.MaxPacketSize+wire.MaxPayload, &s.srv.deflates)
		s.br.Reset(cw)
		s.out = cw
	} else {
		s.caps &^= mysql.CLIENT_COMPRESS
	}
	s.releaseIdle()
	if s.srv.log.Enabled(context.Background(), slog.LevelDebug) {
		s.logger().Debug("client logged in", "schema", s.schema, "tls", s.tls)
	}
	return true
}

func (s *session) logLoginError(err error) {
	var le *loginError
	switch {
	case errors.As(err, &le):
		s.logger().Info("login refused", "code", le.Code, "msg", le.Message)
	case isDisconnect(err):
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.logger().Info("client did not finish the handshake in time; closed", "timeout", s.srv.opt.HandshakeTimeout)
	default:
		s.logger().Info("login failed", "err", err)
	}
}

// schemaName is the session's current schema, for query rules.
func (s *session) schemaName() string { return s.schema }

// loop reads and runs commands until the client leaves or the session ends.
func (s *session) loop() {
	for {
		s.idle.Store(true)
		if t := s.srv.opt.IdleTimeout; t > 0 {
			_ = s.conn.SetReadDeadline(time.Now().Add(t))
		}
		if s.srv.closing.Load() && !s.inTx.Load() {
			return
		}
		buf, err := s.readCommand()
		s.idle.Store(false)
		if err != nil {
			s.srv.cmdBufs.put(buf)
			s.logReadError(err)
			return
		}
		if len(buf) <= wire.HeaderSize {
			// An empty command is a protocol error, as on a real server.
			s.sendError(wire.Errorf(mysql.ER_UNKNOWN_COM_ERROR, "Empty command packet"))
			s.srv.cmdBufs.put(buf)
			continue
		}
		err = s.dispatch(buf)
		s.srv.cmdBufs.put(buf)
		if err == nil {
			s.releaseIdle()
		}
		if err != nil {
			if !errors.Is(err, errQuit) {
				s.logCommandError(err)
			}
			return
		}
	}
}

var errQuit = errors.New("client quit")

func (s *session) logReadError(err error) {
	switch {
	case isDisconnect(err):
	case errors.Is(err, wire.ErrTooLarge):
		// Read the rest of the packet first: a client still writing it
		// would otherwise get a reset instead of the error.
		s.discardOversized()
		s.sendError(mysql.NewDefaultError(mysql.ER_NET_PACKET_TOO_LARGE))
		s.logger().Warn("closed client: packet larger than limits.max_packet_size", "limit", s.srv.opt.MaxPacketSize)
	case errors.Is(err, os.ErrDeadlineExceeded):
		if !s.srv.closing.Load() {
			s.logger().Info("closed idle client", "idle_timeout", s.srv.opt.IdleTimeout)
		}
	default:
		s.logger().Info("client read failed", "err", err)
	}
}

func (s *session) logCommandError(err error) {
	if isDisconnect(err) {
		return
	}
	s.logger().Warn("session ended", "err", err)
}

// isDisconnect is true for the ordinary ways a peer goes away, which are
// not worth a log line.
func isDisconnect(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, net.ErrClosed)
}

// discardOversized drops the rest of a packet that exceeded
// limits.max_packet_size, bounded in bytes and time.
func (s *session) discardOversized() {
	_ = s.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	budget := int64(1 << 30)
	rest, more := s.oversized, s.oversizedMore
	for budget > 0 {
		n, err := io.CopyN(io.Discard, s.br, min(int64(rest), budget))
		budget -= n
		if err != nil || !more {
			return
		}
		var hdr [wire.HeaderSize]byte
		if _, err := io.ReadFull(s.br, hdr[:]); err != nil {
			return
		}
		rest = wire.PayloadLen(hdr[:])
		more = rest == wire.MaxPayload
	}
}

// readCommand reads one command into a pooled buffer with 4 bytes of room
// before the payload, so that it can be sent on to a server in one write
// after the header is filled in. The buffer is taken only once a header has
// arrived: an idle session holds none.
func (s *session) readCommand() ([]byte, error) {
	var hdr [wire.HeaderSize]byte
	if _, err := io.ReadFull(s.br, hdr[:]); err != nil {
		return nil, err
	}
	limit := s.srv.opt.MaxPacketSize
	buf := s.srv.cmdBufs.get()
	for {
		n := wire.PayloadLen(hdr[:])
		s.seq = hdr[3] + 1
		if len(buf)-wire.HeaderSize+n > limit {
			s.oversized, s.oversizedMore = n, n == wire.MaxPayload
			return buf, wire.ErrTooLarge
		}
		start := len(buf)
		if cap(buf)-start < n {
			nb := make([]byte, start+n)
			copy(nb, buf)
			buf = nb
		} else {
			buf = buf[:start+n]
		}
		if _, err := io.ReadFull(s.br, buf[start:]); err != nil {
			return buf, noEOF(err)
		}
		if n < wire.MaxPayload {
			return buf, nil
		}
		if _, err := io.ReadFull(s.br, hdr[:]); err != nil {
			return buf, noEOF(err)
		}
	}
}

// writePacket sends a payload that has 4 bytes of header room in front.
func (s *session) writePacket(p []byte, seq uint8) error {
	wire.PutHeader(p, len(p)-wire.HeaderSize, seq)
	_, err := s.out.Write(p)
	return err
}

// sendError answers the current command with an error from the proxy itself.
func (s *session) sendError(e *mysql.MyError) {
	_ = s.writePacket(wire.AppendErr(make([]byte, 4, 64+len(e.Message)), e), s.seq)
}

func (s *session) sendOK() error {
	return s.writePacket(wire.AppendOK(make([]byte, 4, 16), 0, 0, s.status, 0), s.seq)
}

// closeIfIdle ends a session that waits for a command outside a transaction;
// used by shutdown. The read deadline wakes the session's blocked read; a
// session between commands sees the closing flag itself.
func (s *session) closeIfIdle() {
	if s.idle.Load() && !s.inTx.Load() {
		_ = s.conn.SetReadDeadline(time.Now())
	}
}

// abort closes the session from outside its goroutine.
func (s *session) abort() {
	_ = s.conn.Close()
}

func (s *session) close() {
	defer s.clearPins()
	if s.countedUser != nil {
		s.srv.releaseUserSlot(s.countedUser)
		s.countedUser = nil
	}
	s.closeConns()
	_ = s.conn.Close()
}
