package proxy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/backend"
	"switchyard/backend/gtid"
	"switchyard/conf"
	"switchyard/router"
	"switchyard/wire"
)

// Routing a statement and running it. The router decides (it is pure);
// the session applies: it resolves the decision to a server connection,
// sends the command, relays the response, and retries a failed replica
// read elsewhere when the router allows it.

// classify reads a statement with a borrowed classifier: an idle session
// should not hold a parser.
func (s *session) classify(sql string) router.Class {
	classifiers := s.srv.routingNow().classifiers
	cl := classifiers.Get().(*router.Classifier)
	class := cl.Classify(sql)
	classifiers.Put(cl)
	if class.Unparsed {
		s.srv.unparsed.Add(1)
	}
	return class
}

// decide routes a classified statement; an error rule's match comes back
// as the error to send.
func (s *session) decide(class *router.Class, sql string) (router.Decision, error) {
	var rule *router.Rule
	if rules := s.srv.rules.Load(); rules != nil {
		rule, _ = rules.Match(sql, class.DigestText, s.c.login.User.Name, s.st.schema)
	}
	rs := s.routerState()
	d := router.Decide(class, rs, s.reads(), rule)
	if d.Err != nil {
		return d, d.Err
	}
	if d.Overridden {
		s.srv.hintsIgnored.Add(1)
		s.c.Logger().Debug("replica hint or rule ignored: the statement may write, so it runs on the primary",
			"by", d.Reason.String(), "digest", class.Digest)
	}
	mode := s.srv.routingNow().opt.ReadYourWrites
	if d.Target == router.Replica {
		rs.MustSee = s.mustSee(mode)
	}
	d = router.ReadYourWrites(d, rs, mode, s.primaryUp)
	return d, nil
}

// primaryUp reports whether there is a primary to send statements to now.
func (s *session) primaryUp() bool {
	_, err := s.srv.servers.Primary()
	return err == nil
}

// mustSee is the position of the writes others acknowledged that a read
// must see under read_your_writes mode: the user's (user), everyone's
// (global), none otherwise.
func (s *session) mustSee(mode string) string {
	switch mode {
	case conf.RYWGlobal:
		return s.srv.written.Position()
	case conf.RYWUser:
		return s.userWritten().Position()
	}
	return ""
}

// userWritten is the position of the writes of the session's user,
// looked up once per login.
func (s *session) userWritten() *gtid.Latest {
	name := ""
	if u := s.c.login.User; u != nil {
		name = u.Name
	}
	if s.written == nil || s.writtenFor != name {
		s.written, s.writtenFor = s.srv.writtenByUser(name), name
	}
	return s.written
}

// noteWritten records the GTID of a write the session is about to
// acknowledge, for the reads of other sessions under read_your_writes
// user and global: they arrive after the client saw the write succeed.
// Only the position the mode reads is kept up to date, so that the other
// modes pay nothing; a reload that turns user or global on starts from
// the writes acknowledged after it, as a restarted proxy does.
func (s *session) noteWritten(g string) {
	switch s.srv.routingNow().opt.ReadYourWrites {
	case conf.RYWGlobal:
		s.srv.written.Note(g)
	case conf.RYWUser:
		s.userWritten().Note(g)
	}
}

// routerState is the session as the router sees it.
func (s *session) routerState() router.Session {
	held := s.conns.held
	if held == nil {
		held = s.conns.last
	}
	return router.Session{
		InTx:          s.st.inTx,
		AutocommitOff: s.st.autocommitOff,
		Pinned:        s.st.pins.Any(),
		OnReplica:     held != nil && held.Server().Role() == backend.RoleReplica,
		HasServer:     s.conns.last != nil,
		HasWritten:    s.st.hasWritten,
		LastGTID:      s.st.lastGTID,
	}
}

// reads is the user's effective routing.reads.
func (s *session) reads() string {
	if u := s.c.login.User; u != nil && u.Reads != "" {
		return u.Reads
	}
	return s.srv.routingNow().opt.Reads
}

// exchangeResult is what the proxy learned from relaying one response.
type exchangeResult struct {
	ok    bool // the response did not end with an error
	wrote bool // some of the response reached the client
	// readOnlyRefused: a replica refused the read as a write, and the
	// client saw nothing (forwarder.catchReadOnly).
	readOnlyRefused bool
	status          uint16
	hasStatus       bool   // status holds the server's flags after the command
	gtid            string // the GTID of a transaction the command committed
	rows            int64  // rows relayed to the client
	// diagnostics: the response ended with warnings or an error, which
	// SHOW WARNINGS on the same connection lists.
	diagnostics bool
}

// runRouted runs a command on the server the decision names and relays the
// response; a read that fails on a replica before the client saw anything
// runs once more elsewhere (router.RetryElsewhere). prepare, when set,
// readies the command for the chosen connection and returns what to send.
// A nil connection with a nil error means the client was answered.
func (s *session) runRouted(ctx context.Context, class *router.Class, d router.Decision, buf []byte, shape wire.Shape, prepare func(*backend.Conn) ([]byte, error)) (*backend.Conn, exchangeResult, error) {
	var res exchangeResult
	sc, err := s.resolve(ctx, d, -1, false)
	if err != nil {
		return nil, res, err
	}
	send := buf
	if prepare != nil {
		// A connection that breaks while readying the command (a lazy
		// prepare on a replica that died) is retried like one that
		// breaks in the exchange.
		if send, err = prepare(sc); err != nil && !(sc.Broken() && router.RetryElsewhere(d, class, false)) {
			return nil, res, s.prepareFailed(sc, err)
		}
	}
	if err == nil {
		s.catchReadOnly = d.Target == router.Replica
		res, err = s.exchange(sc, send, shape)
		s.catchReadOnly = false
	}
	if err == nil && res.readOnlyRefused {
		// The statement writes although it reads as a read: a view over a
		// stored function that writes. The replica refused it and nothing
		// ran there; the primary runs it, and the session has written.
		s.srv.replicaWriteRetries.Add(1)
		s.c.Logger().Info("a replica refused a read that writes (a view or function the classifier cannot see into); running it on the primary",
			"server", sc.Server().Name, "digest", class.Digest)
		if sc, err = s.resolve(ctx, router.Decision{Target: router.Primary, Reason: d.Reason}, -1, false); err != nil {
			return nil, res, err
		}
		if prepare != nil {
			if send, err = prepare(sc); err != nil {
				return nil, res, s.prepareFailed(sc, err)
			}
		}
		res, err = s.exchange(sc, send, shape)
		s.st.hasWritten = true
	}
	if err != nil && !isClientErr(err) && router.RetryElsewhere(d, class, res.wrote) {
		// The replica failed before the client saw anything: run the
		// read once more elsewhere, which the client never notices.
		failed := sc.Server()
		s.c.Logger().Info("read failed on a replica; retrying on another server", "server", failed.Name, "err", err)
		s.conns.drop(sc)
		if sc, err = s.resolve(ctx, d, failed.ID, true); err != nil {
			return nil, res, err
		}
		if prepare != nil {
			if send, err = prepare(sc); err != nil {
				return nil, res, s.prepareFailed(sc, err)
			}
		}
		res, err = s.exchange(sc, send, shape)
	}
	if err != nil {
		return nil, res, s.exchangeFailed(sc, res, err)
	}
	s.after(sc, res)
	return sc, res, nil
}

// prepareFailed is what becomes of a command whose preparation on sc
// failed: a server error goes to the client as it is; a broken connection
// ends the session.
func (s *session) prepareFailed(sc *backend.Conn, err error) error {
	var me *mysql.MyError
	if errors.As(err, &me) {
		return me
	}
	if sc.Broken() {
		return s.serverLost(sc, err, false)
	}
	return err
}

// resolve turns a routing decision into a server connection. exclude is
// the id of a server not to pick (a replica that just failed), or -1;
// verify checks the connection for a server-side close before use.
func (s *session) resolve(ctx context.Context, d router.Decision, exclude int, verify bool) (*backend.Conn, error) {
	for _, sc := range s.conns.list {
		if sc.Broken() || sc.Server().Status() == backend.StatusOfflineHard {
			// Closed under the session (an operator's OFFLINE_HARD, a
			// dead server): state held there is gone.
			held := sc == s.conns.held
			srv := sc.Server()
			s.conns.drop(sc)
			if held && srv.Fenced() && s.st.inTx {
				return nil, EndSessionTelling(lostInFailover{name: srv.Name})
			}
			if held {
				return nil, EndSessionTelling(errSessionStateLost) // see connTo
			}
			break
		}
	}
	switch d.Target {
	case router.Stay:
		if s.conns.held != nil {
			if err := s.heldClosedByServer(verify); err != nil {
				return nil, err
			}
			return s.conns.held, nil
		}
		if s.conns.last != nil {
			return s.conns.last, nil
		}
		return s.writableConn(ctx, false)
	case router.Replica:
		if sc := s.replicaConn(ctx, d, exclude, verify); sc != nil {
			return sc, nil
		}
		if !router.FallbackToPrimary(d, !s.srv.routingNow().opt.NoFallbackToPrimary) {
			return nil, wire.Errorf(mysql.ER_UNKNOWN_ERROR, "switchyard: no replica can serve this read and routing.fallback_to_primary is false; retry later or route it to the primary")
		}
	}
	if d.AnyServer {
		return s.primaryOrAny(ctx, exclude, verify)
	}
	return s.writableConn(ctx, verify)
}

// replicaConn returns a connection to a replica that may serve the read
// d, or nil: one known to have applied d.NeedGTID, else one that applies
// it within routing.gtid_wait (waitOnReplica). A replica that cannot be
// reached is logged and another tried, once (router.NextReplica).
func (s *session) replicaConn(ctx context.Context, d router.Decision, exclude int, verify bool) *backend.Conn {
	for {
		srv, ok := s.pickReplica(d, exclude)
		if !ok {
			break
		}
		sc, err := s.connTo(ctx, srv, verify)
		if err == nil {
			return sc
		}
		s.c.Logger().Info("replica unreachable; trying another", "server", srv.Name, "err", err)
		if exclude, ok = router.NextReplica(exclude, srv.ID); !ok {
			return nil
		}
	}
	if d.NeedGTID == "" {
		return nil
	}
	return s.waitOnReplica(ctx, d, exclude, verify)
}

// defaultGTIDWait is routing.gtid_wait's default.
const defaultGTIDWait = 50 * time.Millisecond

// waitOnReplica is for a read that must see writes (position
// d.NeedGTID) that no replica is known to have applied: it picks a
// replica as for any read, and waits there, up to routing.gtid_wait, for
// it to apply them (backend.Conn.WaitGTID). It returns the connection
// once they are applied, or nil when the wait is off, timed out or failed:
// the read then goes to the primary. The client has seen nothing yet, so
// it cannot tell. A success is remembered on the server
// (backend.Server.Reached): the reads that follow and need no more do not
// wait until the monitor reads the replica's position again.
func (s *session) waitOnReplica(ctx context.Context, d router.Decision, exclude int, verify bool) *backend.Conn {
	wait := s.srv.routingNow().opt.GTIDWait
	if wait == 0 {
		wait = defaultGTIDWait
	}
	if wait < 0 {
		return nil
	}
	need := d.NeedGTID
	d.NeedGTID = ""
	// A replica further behind than the wait, as the monitor last saw it,
	// would only add gtid_wait to the read's time before the primary runs
	// it: another one is tried, or none.
	behind := func(srv *backend.Server) bool {
		lag, known := srv.Lag()
		return known && lag > wait
	}
	srv, ok := s.pickReplica(d, exclude)
	if ok && behind(srv) && exclude < 0 {
		srv, ok = s.pickReplica(d, srv.ID)
	}
	if !ok || behind(srv) {
		return nil
	}
	sc, err := s.connTo(ctx, srv, verify)
	if err != nil {
		s.c.Logger().Info("replica unreachable; reading from the primary", "server", srv.Name, "err", err)
		return nil
	}
	err = sc.WaitGTID(need, wait)
	switch {
	case err == nil:
		s.srv.gtidWaits[gtidWaitOK].Add(1)
		srv.Reached(need)
		return sc
	case errors.Is(err, backend.ErrGTIDWaitTimeout):
		s.srv.gtidWaits[gtidWaitTimeout].Add(1)
	default:
		s.srv.gtidWaits[gtidWaitError].Add(1)
		s.c.Logger().Info("waiting for a GTID on a replica failed; reading from the primary", "server", srv.Name, "err", err)
		if sc.Broken() {
			s.conns.drop(sc)
		}
	}
	return nil
}

// writableConn returns a connection to the primary. During a failover or
// switchover the primary is waited for (backend.Cluster.WaitPrimary); a
// primary that cannot be reached is shunned by the failed connect, so the
// statement then waits for the failover the monitor is about to make, and
// runs on the new primary instead of failing.
func (s *session) writableConn(ctx context.Context, verify bool) (*backend.Conn, error) {
	p, err := s.srv.servers.WaitPrimary(ctx)
	if err != nil {
		return nil, err
	}
	sc, err := s.connTo(ctx, p, verify)
	var me *mysql.MyError
	var full *backend.ErrServerFull
	var end *sessionEnd // state held on a connection there is gone
	if err == nil || errors.As(err, &me) || errors.As(err, &full) || errors.As(err, &end) || ctx.Err() != nil {
		return sc, err
	}
	// The failed connect shunned the primary if a failover may replace it:
	// this waits for the new one. The same primary again means nothing
	// changed; its error stands.
	next, werr := s.srv.servers.WaitPrimary(ctx)
	if werr != nil {
		return nil, werr
	}
	if next == p {
		return nil, err
	}
	return s.connTo(ctx, next, verify)
}

// primaryOrAny returns a connection to the primary or, while there is
// none, to a replica: for what any server can run (session state that
// every connection replays, metadata), so that a PHP app's SET NAMES
// after connecting works through a primary outage.
func (s *session) primaryOrAny(ctx context.Context, exclude int, verify bool) (*backend.Conn, error) {
	p, err := s.srv.servers.Primary()
	if err == nil {
		return s.connTo(ctx, p, verify)
	}
	if errors.Is(err, backend.ErrNoPrimary) {
		if srv, ok := s.pickReplica(router.Decision{}, exclude); ok {
			return s.connTo(ctx, srv, verify)
		}
	}
	return nil, err
}

// pickReplica chooses a replica for a read per routing.balance, among
// those that have applied what the decision needs.
func (s *session) pickReplica(d router.Decision, exclude int) (*backend.Server, bool) {
	s.replicaBuf = s.srv.servers.Replicas(s.replicaBuf[:0])
	s.candBuf = s.candBuf[:0]
	for _, r := range s.replicaBuf {
		s.candBuf = append(s.candBuf, router.Candidate{ID: r.ID, Weight: r.Weight(), Outstanding: r.Outstanding.Load(),
			GTID: r.GTID(), Reached: r.ReachedGTID()})
	}
	router.RequireGTID(s.candBuf, d.NeedGTID)
	i, ok := s.srv.routingNow().balancer.Pick(s.candBuf, exclude)
	if !ok {
		return nil, false
	}
	return s.replicaBuf[i], true
}

// onSessionConn runs a command that is not routed on sessionConn and
// relays the response; ok says it succeeded.
func (s *session) onSessionConn(ctx context.Context, buf []byte, shape wire.Shape) (*backend.Conn, bool, error) {
	sc, err := s.sessionConn(ctx)
	if err != nil {
		return nil, false, err
	}
	res, err := s.exchange(sc, buf, shape)
	if err != nil {
		return sc, false, s.exchangeFailed(sc, res, err)
	}
	s.after(sc, res)
	s.st.holdLast = false
	return sc, res.ok, nil
}

// queryOnSessionConn runs sql on sessionConn for the proxy itself, reading
// the whole result: a server's error is returned as it is (the client's
// to see), a broken connection as serverLost says.
func (s *session) queryOnSessionConn(ctx context.Context, sql string) (*wire.TextResult, error) {
	sc, err := s.sessionConn(ctx)
	if err != nil {
		return nil, err
	}
	res, err := sc.Query(sql)
	if err != nil {
		var me *mysql.MyError
		if errors.As(err, &me) {
			return nil, me
		}
		return nil, s.serverLost(sc, err, false)
	}
	return res, nil
}

// exchange sends a command on sc and relays the server's response.
func (s *session) exchange(sc *backend.Conn, buf []byte, shape wire.Shape) (exchangeResult, error) {
	srv := sc.Server()
	srv.Outstanding.Add(1)
	defer srv.Outstanding.Add(-1)
	srv.Queries.Add(1)
	start := time.Now()
	s.running.start(sc, start)
	defer s.running.stop()
	next, err := sc.WriteCommand(buf)
	if err != nil {
		return exchangeResult{}, errServerRead{err}
	}
	bw := s.c.responseWriter()
	f := forwarder{
		br:        sc.Reader(),
		bw:        bw,
		cr:        s.c.br,
		be:        sc,
		eof:       s.c.caps&mysql.CLIENT_DEPRECATE_EOF != 0,
		serverEOF: sc.Capabilities()&mysql.CLIENT_DEPRECATE_EOF == 0,
		stripTrack: sc.Capabilities()&mysql.CLIENT_SESSION_TRACK != 0 &&
			s.c.caps&mysql.CLIENT_SESSION_TRACK == 0,
		seq:           next,
		okBuf:         s.okScratch[:0],
		limit:         s.c.ln.lim().MaxPacketSize,
		catchReadOnly: s.catchReadOnly,
		sess:          s,
	}
	if shape == wire.ShapePrepare && s.pendingStmt != nil {
		f.onPrepareOK = func(p []byte, ok wire.PrepareOK) { s.onPrepareOK(sc, p, ok) }
	}
	// The response's last bytes wait in bw until the command is done (see
	// ClientConn.responseWriter).
	err = f.forward(shape)
	end := time.Now()
	srv.Latency.Observe(end.Sub(start))
	s.c.seq = f.seq - f.shift
	res := exchangeResult{ok: !f.failed, wrote: f.wrote, gtid: f.gtid, readOnlyRefused: f.readOnlyRefused, rows: f.rows,
		diagnostics: f.failed || f.w.Warnings() > 0}
	res.status, res.hasStatus = f.status()
	if res.hasStatus {
		sc.SetStatus(res.status)
	}
	if err != nil {
		sc.MarkBroken()
		return res, err
	}
	sc.ReleaseReaderAt(end)
	return res, nil
}

// exchangeFailed handles a failed exchange: a vanished client ends the
// session; a failed server connection ends it too, after telling the
// client if it has seen nothing of the response yet.
func (s *session) exchangeFailed(sc *backend.Conn, res exchangeResult, err error) error {
	if isClientErr(err) {
		// The server connection is somewhere inside a result: it was
		// marked broken and closes with the session.
		return EndSession(err)
	}
	return s.serverLost(sc, err, res.wrote)
}

// serverLost ends the session after one of its server connections broke,
// as the client's connection would end if it talked to the server itself:
// whether the statement ran is unknown, so the proxy must not go on as if
// nothing happened.
func (s *session) serverLost(sc *backend.Conn, err error, wroteSome bool) error {
	name := sc.Server().Name
	sc.MarkBroken()
	err = fmt.Errorf("server %s: %w", name, err)
	if wroteSome {
		return EndSession(err)
	}
	return &sessionEnd{tell: true, err: lostServer{name: name, err: err}}
}

// lostServer is what a client is told when the server connection running
// its statement broke before any of the answer reached it.
type lostServer struct {
	name string
	err  error
}

func (e lostServer) Error() string { return e.err.Error() }
func (e lostServer) Unwrap() error { return e.err }
func (e lostServer) MyError() *mysql.MyError {
	return wire.Errorf(mysql.ER_UNKNOWN_ERROR,
		"switchyard lost the connection to server %s during the statement; it may or may not have run. Reconnect and check", e.name)
}

// lostInFailover is what a client is told when its transaction was open on
// a primary that failed and was replaced between its statements: the
// transaction is gone with that connection, uncommitted. (A COMMIT that
// was running when the primary died is answered by lostServer instead:
// its outcome is unknown.)
type lostInFailover struct{ name string }

func (e lostInFailover) Error() string {
	return fmt.Sprintf("transaction lost: primary %s failed over", e.name)
}

func (e lostInFailover) MyError() *mysql.MyError {
	return wire.Errorf(mysql.ER_UNKNOWN_ERROR,
		"switchyard: this session's transaction was open on primary %s, which failed and was replaced by a failover; the transaction did not commit (its connection to %s is gone). Reconnect and run the transaction again", e.name, e.name)
}
