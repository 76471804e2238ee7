package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/backend"
	"switchyard/conf"
	"switchyard/router"
	"switchyard/wire"
)

// writerPool holds client write buffers: a session borrows one for each
// response, so an idle session holds none, and a response leaves in as few
// writes as its size allows.
type writerPool struct{ p sync.Pool }

func (w *writerPool) get(s *session) *bufio.Writer {
	bw, _ := w.p.Get().(*bufio.Writer)
	if bw == nil {
		return bufio.NewWriterSize(s.out, 16<<10)
	}
	bw.Reset(s.out)
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
	case mysql.COM_QUERY:
		return s.query(buf)
	case mysql.COM_PING:
		// The proxy answers for itself: a ping checks that the client's
		// connection works, and servers are checked on use.
		return s.sendOK()
	case mysql.COM_INIT_DB:
		sc, res, err := s.onSessionConn(buf, shapeOne)
		if err == nil && res.ok {
			s.schema = string(buf[wire.HeaderSize+1:])
			s.logState(sc, cmd, s.schema)
		}
		return err
	case mysql.COM_SET_OPTION:
		sc, res, err := s.onSessionConn(buf, shapeOne)
		if err == nil && res.ok {
			s.logState(sc, cmd, string(buf[wire.HeaderSize+1:]))
		}
		return err
	case mysql.COM_FIELD_LIST:
		_, _, err := s.onSessionConn(buf, shapeFieldList)
		return err
	case mysql.COM_STATISTICS:
		_, _, err := s.onSessionConn(buf, shapeOne)
		return err
	case mysql.COM_RESET_CONNECTION:
		return s.resetConnection(buf)
	case mysql.COM_STMT_PREPARE:
		return s.prepareStmt(buf)
	case mysql.COM_STMT_EXECUTE:
		return s.executeStmt(buf)
	case mysql.COM_STMT_FETCH:
		return s.stmtOnHeldConn(buf, shapeRows, false)
	case mysql.COM_STMT_RESET:
		return s.stmtOnHeldConn(buf, shapeOne, false)
	case mysql.COM_STMT_SEND_LONG_DATA:
		return s.stmtOnHeldConn(buf, shapeOne, true)
	case mysql.COM_STMT_CLOSE:
		s.closeStmt(buf)
		return nil
	case mysql.COM_CHANGE_USER:
		return s.changeUser(buf[wire.HeaderSize+1:])
	}
	s.sendError(wire.Errorf(mysql.ER_UNKNOWN_COM_ERROR, "Unknown command %d: switchyard does not forward it", cmd))
	return nil
}

// sessionConn is where commands that are not routed run: the connection
// the session is held on, else the primary.
func (s *session) sessionConn() (*serverConn, error) {
	if s.current != nil {
		return s.current, nil
	}
	return s.primaryConn()
}

// onSessionConn runs a command on sessionConn and relays the response.
func (s *session) onSessionConn(buf []byte, shape respShape) (*serverConn, exchangeResult, error) {
	sc, err := s.sessionConn()
	if err != nil {
		s.sendError(proxyError(err))
		return nil, exchangeResult{}, nil
	}
	res, err := s.exchange(sc, buf, shape)
	if err != nil {
		return sc, res, s.exchangeFailed(sc, res, err)
	}
	s.after(sc, res)
	s.holdLast = false
	return sc, res, nil
}

// query routes and runs one COM_QUERY.
func (s *session) query(buf []byte) error {
	sql := string(buf[wire.HeaderSize+1:])
	class := s.classify(sql)
	if class.Kind == router.Admin && strings.HasPrefix(class.DigestText, "kill ") {
		// Connection ids differ between the proxy and the servers: passed
		// on, KILL would end whichever server session has that number.
		s.sendError(wire.Errorf(mysql.ER_UNKNOWN_ERROR, "switchyard does not forward KILL: the connection ids clients see are the proxy's, not the servers'"))
		return nil
	}
	d, ok := s.decide(&class, sql)
	if !ok {
		return nil
	}
	sc, res, err := s.runRouted(&class, d, buf, shapeResult, nil)
	if err != nil || sc == nil {
		return err
	}
	s.track(sc, &class, sql, res)
	return nil
}

// classify reads a statement with a borrowed classifier (each is a parser,
// not safe for concurrent use): an idle session should not hold one.
func (s *session) classify(sql string) router.Class {
	cl := s.srv.classifiers.Get().(*router.Classifier)
	class := cl.Classify(sql)
	s.srv.classifiers.Put(cl)
	if class.Unparsed {
		s.srv.unparsed.Add(1)
	}
	return class
}

// decide routes a classified statement; false means the client has been
// answered (an error rule matched).
func (s *session) decide(class *router.Class, sql string) (router.Decision, bool) {
	var rule *router.Rule
	if rules := s.srv.rules.Load(); rules != nil {
		rule, _ = rules.Match(sql, class.DigestText, s.user, s.schemaName())
	}
	d := router.Decide(class, s.routerState(), s.reads(), rule)
	if d.Err != nil {
		s.sendError(wire.Errorf(mysql.ER_UNKNOWN_ERROR, "%s (query rule %q)", d.Err.Message, d.Err.Rule))
		return d, false
	}
	s.needGTID = ""
	if d.Target == router.Replica && d.Reason == router.ByClass && s.hasWritten && s.srv.routing.ReadYourWrites == conf.RYWSession {
		// Read-your-writes: a replica may not have applied this session's
		// writes yet. When the session's last GTID is known, a replica
		// whose position covers it may serve the read; otherwise the read
		// goes to the primary. A hint or a rule that asks for a replica is
		// the user's explicit choice and wins, and with no usable primary a
		// replica's answer beats an error.
		if s.lastGTID != "" {
			s.needGTID = s.lastGTID
		} else if _, err := s.srv.cluster.Primary(); err == nil {
			d.Target = router.Primary
		}
	}
	return d, true
}

// runRouted runs a command on the server the decision names and relays the
// response; a read that fails on a replica before the client saw anything
// runs once more elsewhere. prepare, when set, readies the command for the
// chosen connection and returns what to send. A nil connection with a nil
// error means the client has been answered with an error.
func (s *session) runRouted(class *router.Class, d router.Decision, buf []byte, shape respShape, prepare func(*serverConn) ([]byte, error)) (*serverConn, exchangeResult, error) {
	var res exchangeResult
	sc, err := s.target(d.Target, -1)
	if err != nil {
		s.sendError(proxyError(err))
		return nil, res, nil
	}
	send := buf
	if prepare != nil {
		if send, err = prepare(sc); err != nil {
			return s.prepareFailed(sc, err)
		}
	}
	res, err = s.exchange(sc, send, shape)
	if err != nil && d.Target == router.Replica && !res.wrote && class.ReplicaSafe() && !isClientErr(err) {
		// The replica failed before the client saw anything: run the
		// read once more elsewhere, which the client never notices.
		failed := sc.conn.Server
		s.logger().Info("read failed on a replica; retrying on another server", "server", failed.Name, "err", err)
		s.dropConn(sc)
		if sc, err = s.targetVerified(router.Replica, failed.ID); err != nil {
			s.sendError(proxyError(err))
			return nil, res, nil
		}
		if prepare != nil {
			if send, err = prepare(sc); err != nil {
				return s.prepareFailed(sc, err)
			}
		}
		res, err = s.exchange(sc, send, shape)
	}
	if err != nil {
		return nil, res, s.exchangeFailed(sc, res, err)
	}
	s.after(sc, res)
	if res.gtid != "" {
		s.lastGTID = res.gtid
	}
	return sc, res, nil
}

// prepareFailed answers a command whose preparation on sc failed: a server
// error goes to the client as is; a broken connection ends the session.
func (s *session) prepareFailed(sc *serverConn, err error) (*serverConn, exchangeResult, error) {
	var me *mysql.MyError
	if errors.As(err, &me) {
		s.sendError(me)
		return nil, exchangeResult{}, nil
	}
	if sc.conn.Broken() {
		return nil, exchangeResult{}, s.serverLost(sc, err, false)
	}
	s.sendError(proxyError(err))
	return nil, exchangeResult{}, nil
}

// track updates session state after a statement ran on sc.
func (s *session) track(sc *serverConn, class *router.Class, sql string, res exchangeResult) {
	s.holdLast = class.Kind == router.Write || class.CalcFoundRows
	if !res.ok {
		return
	}
	switch class.Kind {
	case router.DDL:
		// Temporary tables are not replicated: nothing to wait for.
		s.hasWritten = s.hasWritten || !(class.CreatesTempTable || class.DropsTempTable)
	case router.Write, router.Call, router.XA, router.Execute, router.Admin, router.Other:
		s.hasWritten = true
	case router.Read:
		s.hasWritten = s.hasWritten || class.SideEffects || class.StoredFunc
	}
	switch {
	case class.Statements > 1 && (class.Kind == router.Set || class.Kind == router.Use || class.SetsUserVar || class.Autocommit != nil):
		s.pin(sc, "multi-statement that changes session state")
	case class.SetsUserVar:
		s.pin(sc, "user variable")
	case class.CreatesTempTable:
		s.pin(sc, pinTempTable)
	case class.UsesLock:
		s.pin(sc, "lock")
	case class.Kind == router.LockTables:
		s.pin(sc, pinLockTable)
	case class.Kind == router.Prepare:
		s.pin(sc, pinPrepare)
	case (class.Kind == router.Set || class.Kind == router.Use) && sql == "":
		// Set through a prepared statement: its values are not in the
		// text, so it cannot be replayed elsewhere.
		s.pin(sc, "session state set by a prepared statement")
	case class.Kind == router.Set || class.Kind == router.Use:
		s.logState(sc, mysql.COM_QUERY, sql)
		if class.Kind == router.Use {
			s.schema = class.Schema
		}
	}
	// State whose end the proxy can see releases its pin.
	switch {
	case class.DropsTempTable:
		s.unpin(pinTempTable)
	case class.Kind == router.UnlockTables:
		s.unpin(pinLockTable)
	case class.Kind == router.Deallocate:
		s.unpin(pinPrepare)
	}
	if class.Autocommit != nil {
		s.autocommitOff = !*class.Autocommit
	}
}

// routerState is the session as router.Decide sees it.
func (s *session) routerState() router.Session {
	held := s.current
	if held == nil {
		held = s.last
	}
	return router.Session{
		InTx:          s.inTx.Load(),
		AutocommitOff: s.autocommitOff,
		Pinned:        s.pinned != "",
		OnReplica:     held != nil && held.conn.Server.Role() == backend.RoleReplica,
		HasServer:     s.last != nil,
	}
}

// reads is the user's effective routing.reads.
func (s *session) reads() string {
	if s.userCfg != nil && s.userCfg.Reads != "" {
		return s.userCfg.Reads
	}
	return s.srv.routing.Reads
}

// target resolves a routing decision to a server connection. exclude is the
// id of a server not to pick (a replica that just failed), or -1.
func (s *session) target(t router.Target, exclude int) (*serverConn, error) {
	return s.resolve(t, exclude, false)
}

// targetVerified is target for a retry: the connection it returns has just
// been checked for a server-side close.
func (s *session) targetVerified(t router.Target, exclude int) (*serverConn, error) {
	return s.resolve(t, exclude, true)
}

func (s *session) resolve(t router.Target, exclude int, verify bool) (*serverConn, error) {
	for _, sc := range s.conns {
		if sc.conn.Server.Status() == backend.StatusOfflineHard {
			// Taken out by an operator: its connections close now.
			held := sc == s.current
			s.dropConn(sc)
			if held {
				return nil, errSessionStateLost
			}
			break
		}
	}
	switch t {
	case router.Stay:
		if s.current != nil {
			return s.current, nil
		}
		if s.last != nil {
			return s.last, nil
		}
		return s.primaryConn()
	case router.Replica:
		for {
			srv, ok := s.pickReplica(exclude)
			if !ok {
				break
			}
			sc, err := s.connTo(srv, verify)
			if err == nil {
				return sc, nil
			}
			// This replica cannot be reached now: try the others once.
			s.logger().Info("replica unreachable; trying another", "server", srv.Name, "err", err)
			if exclude >= 0 {
				break
			}
			exclude = srv.ID
		}
		// A read waiting for the session's own write goes to the primary
		// whatever fallback_to_primary says: that is read-your-writes.
		if !s.srv.routing.FallbackToPrimary && s.needGTID == "" {
			return nil, wire.Errorf(mysql.ER_UNKNOWN_ERROR, "switchyard: no replica can serve this read and routing.fallback_to_primary is false; retry later or route it to the primary")
		}
	}
	p, err := s.srv.cluster.Primary()
	if err != nil {
		return nil, err
	}
	return s.connTo(p, verify)
}

// pickReplica chooses a replica for a read per routing.balance.
func (s *session) pickReplica(exclude int) (*backend.Server, bool) {
	s.replicaBuf = s.srv.cluster.Replicas(s.replicaBuf[:0])
	s.candBuf = s.candBuf[:0]
	for _, r := range s.replicaBuf {
		w := r.Weight
		if s.needGTID != "" && !wire.GTIDCovers(r.GTID(), s.needGTID) {
			w = 0 // has not applied this session's last write yet
		}
		s.candBuf = append(s.candBuf, router.Candidate{ID: r.ID, Weight: w, Outstanding: r.Outstanding.Load()})
	}
	i, ok := s.srv.balancer.Pick(s.candBuf, exclude)
	if !ok {
		return nil, false
	}
	return s.replicaBuf[i], true
}

// after updates the session from a statement's outcome on sc.
func (s *session) after(sc *serverConn, res exchangeResult) {
	s.last = sc
	if !res.hasStatus {
		return
	}
	s.status = res.status
	inTx := res.status&mysql.SERVER_STATUS_IN_TRANS != 0
	s.inTx.Store(inTx)
	switch {
	case inTx:
		s.current = sc
	case s.pinned == "":
		s.current = nil
	}
	if res.ok {
		// Every connection of the session has replayed its SETs, so the
		// flags of whichever ran the statement tell the session's mode.
		s.autocommitOff = res.status&mysql.SERVER_STATUS_AUTOCOMMIT == 0
	}
}

// exchangeResult is what the proxy learned from relaying one response.
type exchangeResult struct {
	ok        bool // the response did not end with an error
	wrote     bool // some of the response reached the client
	status    uint16
	hasStatus bool   // status holds the server's flags after the command
	gtid      string // the GTID of a transaction the command committed
}

// send writes a command to sc.
func (s *session) send(sc *serverConn, buf []byte) error {
	payload := len(buf) - wire.HeaderSize
	if payload < wire.MaxPayload {
		wire.PutHeader(buf, payload, 0)
		return sc.conn.Write(buf)
	}
	framed, _ := wire.AppendPacket(nil, buf[wire.HeaderSize:], 0)
	return sc.conn.Write(framed)
}

// exchange sends a command on sc and relays the server's response.
func (s *session) exchange(sc *serverConn, buf []byte, shape respShape) (exchangeResult, error) {
	srv := sc.conn.Server
	srv.Outstanding.Add(1)
	defer srv.Outstanding.Add(-1)
	if err := s.send(sc, buf); err != nil {
		return exchangeResult{}, errServerRead{err}
	}
	bw := s.srv.writers.get(s)
	f := forwarder{
		br:        sc.conn.Reader(),
		bw:        bw,
		cr:        s.br,
		be:        sc.conn,
		eof:       s.caps&mysql.CLIENT_DEPRECATE_EOF != 0,
		serverEOF: sc.conn.Capabilities&mysql.CLIENT_DEPRECATE_EOF == 0,
		stripTrack: sc.conn.Capabilities&mysql.CLIENT_SESSION_TRACK != 0 &&
			s.caps&mysql.CLIENT_SESSION_TRACK == 0,
	}
	if shape == shapePrepare && s.pendingStmt != nil {
		f.onPrepareOK = func(p []byte) { s.onPrepareOK(sc, p) }
	}
	err := f.forward(shape)
	if err == nil {
		if err = bw.Flush(); err != nil {
			err = errClientWrite{err}
		}
	}
	s.srv.writers.put(bw)
	res := exchangeResult{ok: !f.failed, wrote: f.wrote, status: f.status, hasStatus: f.hasStatus, gtid: f.gtid}
	if err != nil {
		sc.conn.MarkBroken()
		return res, err
	}
	sc.conn.ReleaseReader()
	return res, nil
}

func isClientErr(err error) bool {
	var cw errClientWrite
	return errors.As(err, &cw)
}

// exchangeFailed handles a failed exchange: a vanished client ends the
// session; a failed server connection ends it too, after telling the
// client if it has seen nothing of the response yet.
func (s *session) exchangeFailed(sc *serverConn, res exchangeResult, err error) error {
	if isClientErr(err) {
		// The server connection is somewhere inside a result: it was
		// marked broken and closes with the session.
		return err
	}
	return s.serverLost(sc, err, res.wrote)
}

// serverLost ends the session after one of its server connections broke,
// as the client's connection would end if it talked to the server itself:
// whether the statement ran is unknown, so the proxy must not go on as if
// nothing happened.
func (s *session) serverLost(sc *serverConn, err error, wroteSome bool) error {
	name := sc.conn.Server.Name
	sc.conn.MarkBroken()
	if !wroteSome {
		s.sendError(wire.Errorf(mysql.ER_UNKNOWN_ERROR,
			"switchyard lost the connection to server %s during the statement; it may or may not have run. Reconnect and check", name))
	}
	return fmt.Errorf("server %s: %w", name, err)
}

// resetConnection runs COM_RESET_CONNECTION on every server connection of
// the session, since each holds part of its state, and answers with the
// primary's response.
func (s *session) resetConnection(buf []byte) error {
	main, err := s.sessionConn()
	if err != nil {
		s.sendError(proxyError(err))
		return nil
	}
	for _, sc := range append([]*serverConn(nil), s.conns...) {
		if sc == main {
			continue
		}
		if err := sc.conn.Command(mysql.COM_RESET_CONNECTION, ""); err != nil {
			s.dropConn(sc)
		}
	}
	res, err := s.exchange(main, buf, shapeOne)
	if err != nil {
		return s.exchangeFailed(main, res, err)
	}
	s.after(main, res)
	if res.ok {
		main.conn.ForgetPrepared()
		s.resetState()
	}
	return nil
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
	if u != s.countedUser {
		if !s.srv.takeUserSlot(u) {
			s.user = oldUser
			s.sendError(mysql.NewDefaultError(mysql.ER_TOO_MANY_USER_CONNECTIONS, u.Name))
			return nil
		}
		// Counted for both until the change is done; the loser is released.
		defer func(prev *User) {
			if s.countedUser == prev {
				s.srv.releaseUserSlot(u)
			} else if prev != nil {
				s.srv.releaseUserSlot(prev)
			}
		}(s.countedUser)
	}
	// The new user gets fresh server connections: nothing of the previous
	// user's session may survive. The old ones close only once the new
	// login worked, so a refused change leaves the session intact.
	prev := struct {
		conns                       []*serverConn
		current, last               *serverConn
		stateLog                    []stateEntry
		creds                       backend.Credentials
		userCfg                     *User
		schema, loginSchema, pinned string
		collation                   uint8
		autocommitOff, inTx         bool
		stateHash                   uint64
		pins                        map[string]int
	}{s.conns, s.current, s.last, s.stateLog, s.creds, s.userCfg, s.schema, s.loginSchema, s.pinned, s.collation, s.autocommitOff, s.inTx.Load(), s.stateHash, s.pins}
	s.conns, s.current, s.last, s.stateLog = nil, nil, nil, nil
	s.creds, s.userCfg, s.schema = creds, u, r.Schema
	if r.Schema == "" {
		s.schema = u.DefaultSchema
	}
	s.loginSchema = s.schema
	if r.Collation != 0 {
		s.collation = r.Collation
	}
	s.resetState()
	sc, err := s.primaryConn()
	if err != nil {
		s.conns, s.current, s.last, s.stateLog = prev.conns, prev.current, prev.last, prev.stateLog
		s.creds, s.userCfg, s.schema, s.loginSchema, s.collation = prev.creds, prev.userCfg, prev.schema, prev.loginSchema, prev.collation
		s.pinned, s.autocommitOff, s.stateHash, s.pins = prev.pinned, prev.autocommitOff, prev.stateHash, prev.pins
		if len(prev.pins) > 0 {
			s.srv.pinnedSessions.Add(1) // resetState counted them out
		}
		s.inTx.Store(prev.inTx)
		s.user = oldUser
		s.sendError(proxyError(err))
		return nil
	}
	for _, old := range prev.conns {
		_ = old.conn.Close()
	}
	s.countedUser = u
	s.status = sc.conn.Status
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
