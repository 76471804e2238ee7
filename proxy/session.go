package proxy

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/backend"
	"switchyard/backend/gtid"
	"switchyard/router"
	"switchyard/wire"
)

// session is the data path's Session: one client's state and its commands.
// All its fields are owned by the connection's goroutine, except txOpen
// and the aborter, which other goroutines read or trigger.
type session struct {
	srv *Server
	c   *ClientConn
	// st is everything the session knows of itself, as one value.
	st sessionState
	// conns are the server connections the session holds now; inUse lets
	// another goroutine close them (shutdown, later KILL).
	conns connSet
	inUse aborter
	// txOpen mirrors st.inTx for Busy.
	txOpen atomic.Bool
	// pinsCounted are the pin reasons, as bits, this session is counted
	// under in the metrics (countPinned).
	pinsCounted uint32
	// obs is what the command running now tells the metrics (metrics.go).
	obs observation

	// pendingStmt is the statement being prepared, with the id it gets.
	pendingStmt   *clientStmt
	pendingStmtID uint32
	// Scratch for picking a replica and rewriting OK packets without
	// allocating.
	replicaBuf []*backend.Server
	candBuf    []router.Candidate
	okScratch  [64]byte
	// roState is st.replay made read-only (readOnlyState), computed from
	// roFrom.
	roFrom, roState backend.SessionState
	roValid         bool
	// running is the statement the session runs on a server, for KILL
	// QUERY from other sessions.
	running running
	// catchReadOnly is set while a read routed to a replica is exchanged
	// (forwarder.catchReadOnly).
	catchReadOnly bool
	// pub is the session's state for the admin's processlist; note what
	// the current command tells the admin's stats (stats.go).
	pub        published
	note       stmtNote
	digestMemo digestMemo
	// failedChangeUser counts refused COM_CHANGE_USER attempts: like
	// MariaDB (MDEV-3915), a connection gets three, successful changes
	// included, and then only "Unknown command", so a client cannot try
	// passwords at the speed of a round trip.
	failedChangeUser int
	// loginEpoch is the pool's Epoch at the session's login (or change of
	// user): its connections logged in no earlier (backend.Pool.Renew).
	loginEpoch uint64
	// written is the position of the writes of the user writtenFor
	// (userWritten).
	written    *gtid.Latest
	writtenFor string
}

// sessionState is a session's state as a value: a change of user saves it
// by assignment and restores it the same way if the change fails.
type sessionState struct {
	// schema is the current schema, which USE and COM_INIT_DB change; the
	// login's schema (ClientConn.Login) is where new connections start.
	schema string
	// replay is the state every connection must carry before it runs the
	// session's statements (SET, USE, ...).
	replay backend.SessionState
	// pins count the state that holds the session on its connection.
	pins          router.Pins
	autocommitOff bool
	// inTx: the server reports an open transaction.
	inTx bool
	// holdLast keeps the last statement's connection until the next
	// statement, which may read its outcome (LAST_INSERT_ID, FOUND_ROWS).
	holdLast bool
	// hasWritten: the session has changed data, so read-your-writes keeps
	// its reads off replicas that may not have it; lastGTID is the GTID of
	// its last write, when the server reports it.
	hasWritten bool
	lastGTID   string
	// stmts are the client's prepared statements by the ids the proxy
	// gave out. A change of user replaces the map, never edits it.
	stmts      map[uint32]*clientStmt
	nextStmtID uint32
	// stmtBytes is what stmts count against
	// limits.max_prepared_bytes_per_session.
	stmtBytes int64
	// multiStatements is the client's last COM_SET_OPTION: 0 none (its
	// CLIENT_MULTI_STATEMENTS capability says), setOptionOn, setOptionOff.
	multiStatements uint8
}

const (
	setOptionOn uint8 = iota + 1
	setOptionOff
)

// Busy reports whether the session is inside a transaction.
func (s *session) Busy() bool { return s.txOpen.Load() }

// Abort closes the server connections the session is using.
func (s *session) Abort() { s.inUse.abort() }

// Close ends the session's use of its server connections: clean ones go
// back to the pool, those holding a transaction or pinned state are closed.
func (s *session) Close() {
	releaseStmts(s.st.stmts)
	s.st.stmts, s.st.stmtBytes = nil, 0
	s.closeConns()
	s.st.pins = router.Pins{}
	s.countPinned()
	s.pruneStaleAtEnd()
}

// Command runs one client command.
func (s *session) Command(ctx context.Context, buf []byte) error {
	start := time.Now()
	s.commandStarted(start)
	s.obs = observation{}
	err := s.command(ctx, buf)
	s.releaseIdle()
	s.commandDone(buf[wire.HeaderSize], start)
	s.observed(buf[wire.HeaderSize], start)
	return err
}

func (s *session) command(ctx context.Context, buf []byte) error {
	p := buf[wire.HeaderSize:]
	switch cmd := p[0]; cmd {
	case mysql.COM_QUIT:
		return ErrQuit
	case mysql.COM_QUERY:
		return s.query(ctx, buf)
	case mysql.COM_PING:
		// The proxy answers for itself: a ping checks that the client's
		// connection works, and servers are checked on use.
		return s.c.WriteOK()
	case mysql.COM_INIT_DB:
		sc, ok, err := s.onSessionConn(ctx, buf, wire.ShapeOne)
		if err == nil && ok {
			s.st.schema = string(p[1:])
			s.logState(sc, cmd, s.st.schema)
		}
		return err
	case mysql.COM_SET_OPTION:
		sc, ok, err := s.onSessionConn(ctx, buf, wire.ShapeOne)
		if err == nil && ok {
			s.logState(sc, cmd, string(p[1:]))
			if len(p) >= 3 {
				// MYSQL_OPTION_MULTI_STATEMENTS_ON is 0, _OFF 1.
				s.st.multiStatements = setOptionOn + min(p[1], 1)
			}
		}
		return err
	case mysql.COM_FIELD_LIST:
		_, _, err := s.onSessionConn(ctx, buf, wire.ShapeFieldList)
		return err
	case mysql.COM_STATISTICS:
		_, _, err := s.onSessionConn(ctx, buf, wire.ShapeOne)
		return err
	case mysql.COM_RESET_CONNECTION:
		return s.resetConnection(ctx, buf)
	case mysql.COM_STMT_PREPARE:
		return s.prepareStmt(ctx, buf)
	case mysql.COM_STMT_EXECUTE:
		return s.executeStmt(ctx, buf)
	case mysql.COM_STMT_FETCH:
		return s.stmtOnHeldConn(ctx, buf, wire.ShapeRows, false)
	case mysql.COM_STMT_RESET:
		return s.stmtOnHeldConn(ctx, buf, wire.ShapeOne, false)
	case mysql.COM_STMT_SEND_LONG_DATA:
		return s.stmtOnHeldConn(ctx, buf, wire.ShapeOne, true)
	case mysql.COM_STMT_CLOSE:
		s.closeStmt(p)
		return nil
	case mysql.COM_CHANGE_USER:
		return s.changeUser(ctx, p)
	case mysql.COM_PROCESS_KILL:
		return s.processKill(ctx, p)
	default:
		return wire.Errorf(mysql.ER_UNKNOWN_COM_ERROR, "Unknown command %d: switchyard does not forward it", cmd)
	}
}

// query routes and runs one COM_QUERY.
func (s *session) query(ctx context.Context, buf []byte) error {
	sql := string(buf[wire.HeaderSize+1:])
	s.runningStatement(sql)
	class := s.classify(sql)
	s.note = stmtNote{query: true, kind: class.Kind, digest: class.Digest, digestText: class.DigestText}
	s.observeStatement(&class, sql)
	if err := s.checkFirewall(&class, sql); err != nil {
		return err
	}
	if class.Kills {
		return s.killStatement(ctx, sql)
	}
	if class.UsesConnectionID {
		sql = router.RewriteConnectionID(sql, uint64(s.c.ID()))
		buf = append(buf[:wire.HeaderSize+1:wire.HeaderSize+1], sql...)
	}
	d, err := s.decide(&class, sql)
	if err != nil {
		return err
	}
	if class.ShowsSessionStatus || class.ShowsGlobalStatus {
		return s.showSessionStatus(ctx, sql, class.ShowsGlobalStatus)
	}
	var prepare func(*backend.Conn) ([]byte, error)
	if class.ReadsThreadIDs {
		// The process list shows the sessions holding that server's
		// connections at that moment: taken on the connection chosen.
		prepare = func(sc *backend.Conn) ([]byte, error) {
			text, err := s.clientViewSQL(sc, sql)
			if err != nil || text == sql {
				return buf, err
			}
			return append(append(make([]byte, 0, wire.HeaderSize+1+len(text)), buf[:wire.HeaderSize+1]...), text...), nil
		}
	}
	alone := class.RunAlone && s.multiStatements()
	if alone {
		// The server alone can tell where a stored body ends: with
		// multi-statements off for this text, what follows the body is a
		// syntax error, not a statement it runs (router.Class.RunAlone).
		inner := prepare
		prepare = func(sc *backend.Conn) ([]byte, error) {
			if err := sc.Command(mysql.COM_SET_OPTION, "\x01\x00"); err != nil {
				return nil, err
			}
			if inner != nil {
				return inner(sc)
			}
			return buf, nil
		}
	}
	sc, res, err := s.runRouted(ctx, &class, d, buf, wire.ShapeResult, prepare)
	if alone && sc != nil && !sc.Broken() {
		if rerr := sc.Command(mysql.COM_SET_OPTION, "\x00\x00"); rerr != nil {
			// The connection would run the session's next texts one
			// statement only.
			sc.MarkBroken()
		}
	}
	if sc != nil {
		s.note.route, s.note.rows = int32(sc.Server().Role())+1, res.rows
	}
	s.observeRun(d, sc, res.rows)
	if class.AffectsNewLogins && sc != nil {
		s.renewLogins(ctx, sql, res.ok && resetsAlone(&class))
	}
	s.flushedStatus(&class, sql, res.ok && resetsAlone(&class))
	if class.Kind == router.DDL && sc != nil {
		// DROP DATABASE of the current schema leaves the connection in
		// none, which its replay log does not show; statements prepared
		// before would switch back to it when run.
		sc.StateChangedUnlogged()
	}
	if err != nil || sc == nil {
		return err
	}
	if class.Kind == router.DDL && res.ok && s.st.schema != "" && router.DroppedSchema(sql) == s.st.schema {
		// The session is in no schema now: no replay may select the
		// dropped one again.
		s.st.schema = ""
		s.record(sc, s.st.replay.WithoutSchema(), true)
	}
	s.apply(sc, router.EffectsOf(&class, res.ok, false), sql, res)
	return nil
}

// apply updates the session with what a statement that ran on sc changed
// (router.EffectsOf). sql is its text, for replay; res what its response
// said: the GTID the server reported for it, and whether it left warnings
// or an error, which the session keeps sc for until the next statement,
// so that a SHOW WARNINGS there lists them (it may have run on a replica).
func (s *session) apply(sc *backend.Conn, e router.Effects, sql string, res exchangeResult) {
	s.st.holdLast = e.HoldLast || res.diagnostics
	s.st.hasWritten = s.st.hasWritten || e.Wrote
	switch gtid := res.gtid; {
	case gtid != "":
		s.st.lastGTID = gtid
		s.noteWritten(gtid)
	case e.Wrote:
		// A write whose GTID the server did not report (inside a
		// transaction until COMMIT, a write that changed nothing, a
		// connection that stopped tracking it): replicas that have the
		// previous one may still lack it, so reads go to the primary.
		s.st.lastGTID = ""
	}
	switch {
	case e.Replay && e.Schema != "":
		next, ok := s.st.replay.WithUse(sql)
		s.record(sc, next, ok)
		s.st.schema = e.Schema
	case e.Replay:
		s.logState(sc, mysql.COM_QUERY, sql)
	}
	if e.Pin == router.PinPreparedSet || e.Pin == router.PinMultiStatementState {
		sc.StateChangedUnlogged()
	}
	s.pin(sc, e.Pin)
	s.unpin(e.Unpin)
	if e.Autocommit != nil {
		s.st.autocommitOff = !*e.Autocommit
	}
}

// after updates the session from the status a command's response ended
// with on sc.
func (s *session) after(sc *backend.Conn, res exchangeResult) {
	s.conns.last = sc
	if !res.hasStatus {
		return
	}
	s.c.SetStatus(res.status)
	s.setInTx(res.status&mysql.SERVER_STATUS_IN_TRANS != 0)
	switch {
	case s.st.inTx:
		s.conns.held = sc
	case !s.st.pins.Any():
		s.conns.held = nil
	}
	if res.ok {
		// Every connection of the session has replayed its SETs, so the
		// flags of whichever ran the statement tell the session's mode.
		s.st.autocommitOff = res.status&mysql.SERVER_STATUS_AUTOCOMMIT == 0
	}
}

func (s *session) setInTx(on bool) {
	s.st.inTx = on
	s.txOpen.Store(on)
}

// logState records a successful state-changing command, which sc has
// already run. A session whose state changed too often to replay is pinned
// to its connection instead.
func (s *session) logState(sc *backend.Conn, cmd byte, args string) {
	next, ok := s.st.replay.With(cmd, args)
	s.record(sc, next, ok)
}

// record makes next the session's replayable state, which sc carries now;
// !ok: it could not grow (too many entries), so the session is pinned.
func (s *session) record(sc *backend.Conn, next backend.SessionState, ok bool) {
	if !ok {
		s.pin(sc, router.PinStateOverflow)
		return
	}
	s.st.replay = next
	sc.Ran(next) // sc has run every entry
}

// pin keeps the session on sc for reason, counted: the connection carries
// state that is not in the replay log. Some reasons end (unpin) when the
// client drops that state; the others last as long as the session.
func (s *session) pin(sc *backend.Conn, reason router.Pin) {
	if reason == router.NoPin {
		return
	}
	if !s.st.pins.Any() {
		s.c.Logger().Debug("session pinned to its server connection", "reason", reason.String(), "server", sc.Server().Name)
	}
	s.st.pins.Add(reason)
	s.conns.held = sc
	s.countPinned()
}

// unpin drops one count of reason. When no reason is left the session is
// free to move between connections again.
func (s *session) unpin(reason router.Pin) {
	if !s.st.pins.Remove(reason) {
		return
	}
	if s.st.pins.Any() {
		s.countPinned() // one reason less
		return
	}
	if !s.st.inTx {
		s.conns.held = nil
	}
	s.countPinned()
	s.c.Logger().Debug("session no longer pinned", "reason", reason.String())
}

// resetState forgets session state after COM_RESET_CONNECTION or a change
// of user: the servers have dropped it too. hasWritten stays: the
// session's earlier writes may still be on their way to the replicas.
func (s *session) resetState() {
	// Statement ids go on counting, as on a server: a handle the client
	// kept from before must not name a new statement.
	s.st = sessionState{schema: s.st.schema, hasWritten: s.st.hasWritten, lastGTID: s.st.lastGTID, nextStmtID: s.st.nextStmtID}
	s.setInTx(false)
	for _, sc := range s.conns.list {
		sc.ForgetState()
	}
	s.conns.held = nil
	s.countPinned()
}

// resetConnection runs COM_RESET_CONNECTION on every server connection of
// the session, since each holds part of its state, and answers with the
// response of the one the session is on.
func (s *session) resetConnection(ctx context.Context, buf []byte) error {
	main, err := s.sessionConn(ctx)
	if err != nil {
		return err
	}
	for _, sc := range append([]*backend.Conn(nil), s.conns.list...) {
		if sc == main {
			continue
		}
		if err := sc.Command(mysql.COM_RESET_CONNECTION, ""); err != nil {
			s.conns.drop(sc)
		}
	}
	res, err := s.exchange(main, buf, wire.ShapeOne)
	if err != nil {
		return s.exchangeFailed(main, res, err)
	}
	s.after(main, res)
	if res.ok {
		releaseStmts(s.st.stmts)
		if err := main.ClientReset(); err != nil {
			// It cannot report GTIDs again: read-your-writes would trust
			// what it does not say.
			s.conns.drop(main)
		}
		s.resetState()
		if s.st.schema != s.c.login.Schema {
			// The reset kept the current schema (as MariaDB does): it is
			// state the session's other connections must carry, and a
			// connection back in the pool must not pass for one at the
			// login schema.
			s.logState(main, mysql.COM_INIT_DB, s.st.schema)
			for _, sc := range append([]*backend.Conn(nil), s.conns.list...) {
				if sc != main && sc.Sync(s.st.replay, s.c.login.Schema) != nil {
					s.conns.drop(sc)
				}
			}
		}
	}
	return nil
}

// maxFailedChangeUser is how many refused changes of user a connection
// gets (MariaDB's limit).
const maxFailedChangeUser = 3

// changeUser handles COM_CHANGE_USER: it authenticates the new user against
// the proxy's accounts and moves the session to fresh server connections
// logged in as that user, so no state of the previous user survives. A
// refused change leaves the session as it was, logged in as the previous
// user, as MariaDB does.
func (s *session) changeUser(ctx context.Context, p []byte) error {
	if s.failedChangeUser >= maxFailedChangeUser {
		return mysql.NewDefaultError(mysql.ER_UNKNOWN_COM_ERROR)
	}
	cu, err := wire.ParseChangeUser(p, s.c.Capabilities())
	if err != nil {
		return EndSessionTelling(errBadHandshake)
	}
	login, err := s.c.changeUser(cu)
	if err != nil {
		s.failedChangeUser++
		return err
	}
	// The old connections close only once the new login worked.
	saved, savedConns, savedLogin, savedEpoch := s.st, s.conns, s.c.login, s.loginEpoch
	s.conns = s.conns.fresh()
	s.c.setLogin(login)
	s.loginEpoch = s.srv.pool.Epoch()
	s.st.schema = login.Schema
	s.resetState()
	sc, err := s.loginConn(ctx)
	if err != nil {
		s.closeConns()
		s.st, s.conns, s.loginEpoch = saved, savedConns, savedEpoch
		s.c.setLogin(savedLogin)
		s.setInTx(s.st.inTx)
		s.countPinned()
		s.c.abandonLogin(login)
		return err
	}
	// The server's own change of user ends the previous session (its
	// user locks, temporary tables, transaction) before its OK; a closed
	// connection's session ends some time after. A reset ends it now, so
	// the next statement finds those locks free (mtr's change_user).
	savedConns.resetAll()
	savedConns.closeAll(true)
	releaseStmts(saved.stmts)
	s.c.commitLogin(login)
	s.c.SetStatus(sc.Status())
	return s.c.WriteOK()
}

// multiStatements reports whether the client's texts may hold several
// statements now: its capability, or its last COM_SET_OPTION.
func (s *session) multiStatements() bool {
	switch s.st.multiStatements {
	case setOptionOn:
		return true
	case setOptionOff:
		return false
	}
	return s.c.caps&mysql.CLIENT_MULTI_STATEMENTS != 0
}
