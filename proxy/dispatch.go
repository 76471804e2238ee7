package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"sync"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/wire"
)

// writerPool holds client write buffers: a session borrows one for each
// response, so an idle session holds none, and a response leaves in as few
// writes as its size allows.
type writerPool struct{ p sync.Pool }

func (w *writerPool) get(s *session) *bufio.Writer {
	bw, _ := w.p.Get().(*bufio.Writer)
	if bw == nil {
		return bufio.NewWriterSize(s.conn, 16<<10)
	}
	bw.Reset(s.conn)
	return bw
}

func (w *writerPool) put(bw *bufio.Writer) {
	bw.Reset(nil)
	w.p.Put(bw)
}

// bufPool recycles command buffers. Buffers that grew past 64 KiB for a
// rare big statement are dropped instead of kept.
type bufPool struct{ p sync.Pool }

func (b *bufPool) get() []byte {
	if p, ok := b.p.Get().(*[]byte); ok {
		return (*p)[:wire.HeaderSize]
	}
	return make([]byte, wire.HeaderSize, 4096)
}

func (b *bufPool) put(buf []byte) {
	if buf == nil || cap(buf) > 64<<10 {
		return
	}
	b.p.Put(&buf)
}

// dispatch runs one command; buf holds it with 4 bytes of header room. A
// returned error ends the session.
func (s *session) dispatch(buf []byte) error {
	cmd := buf[wire.HeaderSize]
	switch cmd {
	case mysql.COM_QUIT:
		return errQuit
	case mysql.COM_QUERY, mysql.COM_STMT_EXECUTE:
		return s.forwardCommand(buf, shapeResult)
	case mysql.COM_INIT_DB:
		if err := s.forwardCommand(buf, shapeOne); err != nil {
			return err
		}
		if s.lastOK {
			s.schema = string(buf[wire.HeaderSize+1:])
		}
		return nil
	case mysql.COM_PING:
		// The proxy answers for itself: a ping checks that the client's
		// connection works, and the session's server is checked on use.
		return s.sendOK()
	case mysql.COM_FIELD_LIST:
		return s.forwardCommand(buf, shapeFieldList)
	case mysql.COM_STATISTICS, mysql.COM_SET_OPTION, mysql.COM_STMT_RESET:
		return s.forwardCommand(buf, shapeOne)
	case mysql.COM_RESET_CONNECTION:
		return s.forwardCommand(buf, shapeOne)
	case mysql.COM_STMT_PREPARE:
		return s.forwardCommand(buf, shapePrepare)
	case mysql.COM_STMT_FETCH:
		return s.forwardCommand(buf, shapeRows)
	case mysql.COM_STMT_CLOSE, mysql.COM_STMT_SEND_LONG_DATA:
		return s.sendCommand(buf)
	case mysql.COM_CHANGE_USER:
		return s.changeUser(buf[wire.HeaderSize+1:])
	}
	s.sendError(wire.Errorf(mysql.ER_UNKNOWN_COM_ERROR, "Unknown command %d: switchyard does not forward it", cmd))
	return nil
}

// sendCommand writes a command to the session's server connection.
func (s *session) sendCommand(buf []byte) error {
	if s.be == nil {
		if err := s.connectBackend(); err != nil {
			var me *mysql.MyError
			if !errors.As(err, &me) {
				me = wire.Errorf(mysql.ER_UNKNOWN_ERROR, "switchyard cannot reach a server: %v", err)
			}
			s.sendError(me)
			return nil
		}
	}
	payload := len(buf) - wire.HeaderSize
	var err error
	if payload < wire.MaxPayload {
		wire.PutHeader(buf, payload, 0)
		err = s.be.Write(buf)
	} else {
		framed, _ := wire.AppendPacket(nil, buf[wire.HeaderSize:], 0)
		err = s.be.Write(framed)
	}
	if err != nil {
		return s.serverLost(err, false)
	}
	return nil
}

// forwardCommand sends a command and relays the server's response.
func (s *session) forwardCommand(buf []byte, shape respShape) error {
	s.lastOK = false
	if err := s.sendCommand(buf); err != nil || s.be == nil {
		return err
	}
	bw := s.srv.writers.get(s)
	f := forwarder{
		br:  s.be.Reader(),
		bw:  bw,
		cr:  s.br,
		be:  s.be,
		eof: s.caps&mysql.CLIENT_DEPRECATE_EOF != 0,
	}
	err := f.forward(shape)
	if err == nil {
		err = bw.Flush()
		if err != nil {
			err = errClientWrite{err}
		}
	}
	s.srv.writers.put(bw)
	if err != nil {
		var cw errClientWrite
		if errors.As(err, &cw) {
			// The client is gone mid-response: the server connection is
			// somewhere inside a result and cannot be reused.
			s.be.MarkBroken()
			return err
		}
		return s.serverLost(err, f.wrote)
	}
	s.be.ReleaseReader()
	s.status = f.status
	s.inTx.Store(f.status&mysql.SERVER_STATUS_IN_TRANS != 0)
	s.lastOK = f.ok
	return nil
}

// serverLost ends the session after its server connection broke. If the
// client has seen nothing of the response yet it gets an error saying so;
// either way the connection closes, as it would if the client were talking
// to the server directly, because whether the statement ran is unknown.
func (s *session) serverLost(err error, wroteSome bool) error {
	name := "?"
	if s.be != nil {
		name = s.be.Server.Name
		s.be.MarkBroken()
	}
	if !wroteSome {
		s.sendError(wire.Errorf(mysql.ER_UNKNOWN_ERROR,
			"switchyard lost the connection to server %s during the statement; it may or may not have run. Reconnect and check", name))
	}
	return fmt.Errorf("server %s: %w", name, err)
}

// changeUser handles COM_CHANGE_USER: it authenticates the new user against
// the proxy's accounts and moves the session to a fresh server connection
// logged in as that user, so no state of the previous user survives.
func (s *session) changeUser(p []byte) error {
	r, err := parseChangeUser(p, s.caps)
	if err != nil {
		s.sendError(err.(*mysql.MyError))
		return errQuit
	}
	// A refused change leaves the session as it was, logged in as the
	// previous user, as MariaDB does.
	oldUser := s.user
	s.user = r.User
	u := s.srv.users().lookup(r.User)
	if u != nil && !s.tls && (s.srv.requireTLS || u.RequireTLS) {
		s.user = oldUser
		s.sendError(wire.Errorf(3159, "Connections using insecure transport are prohibited: user %q must connect with TLS", r.User))
		return nil
	}
	seq := s.seq - 1
	creds, seq, err := s.authenticate(u, r.AuthPlugin, r.AuthData, seq)
	s.user = oldUser
	if err != nil {
		s.seq = seq + 1
		var me *mysql.MyError
		if !errors.As(err, &me) {
			return err
		}
		s.sendError(me)
		s.logger().Info("change user refused", "to_user", r.User, "code", me.Code)
		return nil
	}
	s.user = r.User
	s.seq = seq + 1
	prevBE, prevCreds, prevSchema, prevColl, prevUser := s.be, s.creds, s.schema, s.collation, s.userCfg
	s.be, s.creds, s.schema, s.userCfg = nil, creds, r.Schema, u
	if r.Schema == "" {
		s.schema = u.DefaultSchema
	}
	if r.Collation != 0 {
		s.collation = r.Collation
	}
	if err := s.connectBackend(); err != nil {
		s.be, s.creds, s.schema, s.collation, s.userCfg, s.user = prevBE, prevCreds, prevSchema, prevColl, prevUser, oldUser
		var me *mysql.MyError
		if !errors.As(err, &me) {
			me = wire.Errorf(mysql.ER_UNKNOWN_ERROR, "switchyard cannot reach a server for user %q: %v", r.User, err)
		}
		s.sendError(me)
		return nil
	}
	if prevBE != nil {
		_ = prevBE.Close()
	}
	s.inTx.Store(false)
	s.log = nil // rebuilt with the new user name
	return s.sendOK()
}

// ChangeUser is the decoded COM_CHANGE_USER payload (after the command byte).
type ChangeUser struct {
	User       string
	AuthData   []byte
	Schema     string
	Collation  uint8
	AuthPlugin string
}

func parseChangeUser(p []byte, caps uint32) (*ChangeUser, error) {
	r := &ChangeUser{}
	i := indexNUL(p)
	if i < 0 {
		return nil, errBadHandshake
	}
	r.User, p = string(p[:i]), p[i+1:]
	if caps&mysql.CLIENT_SECURE_CONNECTION != 0 {
		if len(p) < 1 || int(p[0]) > len(p)-1 {
			return nil, errBadHandshake
		}
		n := int(p[0])
		r.AuthData, p = p[1:1+n], p[1+n:]
	} else {
		i := indexNUL(p)
		if i < 0 {
			return nil, errBadHandshake
		}
		r.AuthData, p = p[:i], p[i+1:]
	}
	if i := indexNUL(p); i >= 0 {
		r.Schema, p = string(p[:i]), p[i+1:]
	} else {
		r.Schema, p = string(p), nil
	}
	if len(p) >= 2 {
		r.Collation, p = p[0], p[2:]
	}
	if caps&mysql.CLIENT_PLUGIN_AUTH != 0 && len(p) > 0 {
		if i := indexNUL(p); i >= 0 {
			r.AuthPlugin = string(p[:i])
		} else {
			r.AuthPlugin = string(p)
		}
	}
	return r, nil
}

func indexNUL(p []byte) int {
	for i, b := range p {
		if b == 0 {
			return i
		}
	}
	return -1
}
