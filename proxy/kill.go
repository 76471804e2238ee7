package proxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/backend"
	"switchyard/router"
	"switchyard/wire"
)

// KILL. Clients know switchyard's connection ids (the handshake's, and
// CONNECTION_ID(), which the proxy rewrites), not the servers', so the
// proxy carries KILL out itself: KILL [CONNECTION] ends a session, KILL
// QUERY interrupts the statement the session runs on a server right now by
// a KILL QUERY of that server thread, sent from a side connection. A KILL
// is never passed on to a server in any form: there its id would name some
// other connection, perhaps another client's on a shared pooled one.

// queryKiller is a Session that can interrupt its running statement.
type queryKiller interface {
	KillQuery(ctx context.Context) error
	// runningOn is the server connection its statement runs on now, or
	// nil.
	runningOn() *backend.Conn
}

// errConnectionKilled is what MariaDB tells a client whose connection was
// killed (ER_CONNECTION_KILLED, MariaDB only).
var errConnectionKilled = &mysql.MyError{Code: 1927, State: "70100", Message: "Connection was killed"}

// Kill carries out KILL for a client of user (asUser "" acts for the
// admin: any session): it ends the session of connection id, or with
// query set interrupts the statement that session runs. Errors are
// MariaDB's: 1094 for an id no session has, 1095 for another user's.
func (ln *Listener) Kill(ctx context.Context, id uint64, query bool, asUser string) error {
	c := ln.find(id)
	if c == nil {
		return wire.Errorf(mysql.ER_NO_SUCH_THREAD, "Unknown thread id: %d", id)
	}
	b := c.sess.Load() // set after login: the login is complete
	if b == nil {
		return wire.Errorf(mysql.ER_NO_SUCH_THREAD, "Unknown thread id: %d", id)
	}
	if owner, _ := c.accountName(); asUser != "" && owner != asUser {
		return wire.Errorf(mysql.ER_KILL_DENIED_ERROR, "You are not owner of thread %d", id)
	}
	if !query {
		c.Logger().Info("session killed by KILL", "by", userOrAdmin(asUser))
		c.kill()
		return nil
	}
	if k, ok := b.Session.(queryKiller); ok {
		return k.KillQuery(ctx)
	}
	return nil
}

func userOrAdmin(u string) string {
	if u == "" {
		return "admin"
	}
	return u
}

// find returns the connection a client knows as id: the low 32 bits of the
// listener's own number, which is what handshakes announce.
func (ln *Listener) find(id uint64) *conn {
	if id > 0xffffffff {
		return nil
	}
	ln.mu.Lock()
	defer ln.mu.Unlock()
	if c, ok := ln.conns[id]; ok {
		return c
	}
	var found *conn
	var foundKey uint64
	for key, c := range ln.conns { // past 2^32 connections, ids wrap: the newest
		if uint32(key) == uint32(id) && key > foundKey {
			found, foundKey = c, key
		}
	}
	return found
}

// running is the statement a session runs on a server now, as KILL QUERY
// from another goroutine sees it. A KILL QUERY in flight holds the session
// back from reusing or giving up the connection until it has landed, so it
// can only ever interrupt this session's statement.
type running struct {
	mu   sync.Mutex
	sc   *backend.Conn
	kill chan struct{} // open while a KILL QUERY for sc is on its way
	// since is when the statement was sent (abandoned.go).
	since time.Time
}

// start records that sc runs the session's statement, sent at since, once
// an earlier KILL QUERY has landed.
func (r *running) start(sc *backend.Conn, since time.Time) {
	r.mu.Lock()
	for r.kill != nil {
		ch := r.kill
		r.mu.Unlock()
		<-ch
		r.mu.Lock()
	}
	r.sc, r.since = sc, since
	r.mu.Unlock()
}

// stop records that the statement is over, once a KILL QUERY on its way
// has landed.
func (r *running) stop() {
	r.mu.Lock()
	r.sc, r.since = nil, time.Time{}
	ch := r.kill
	r.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

func (s *session) runningOn() *backend.Conn {
	s.running.mu.Lock()
	defer s.running.mu.Unlock()
	return s.running.sc
}

// KillQuery interrupts the statement the session runs on a server now, if
// any (MariaDB answers OK for a session that runs none, too).
func (s *session) KillQuery(ctx context.Context) error {
	r := &s.running
	r.mu.Lock()
	sc := r.sc
	if sc == nil || r.kill != nil {
		r.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	r.kill = ch
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.kill = nil
		r.mu.Unlock()
		close(ch)
	}()
	s.c.Logger().Info("interrupting the session's statement (KILL QUERY)", "server", sc.Server().Name)
	return s.srv.servers.KillQuery(ctx, sc)
}

// killStatement carries out a KILL statement the client sent; class says
// it kills (router.Class.Kills).
func (s *session) killStatement(ctx context.Context, sql string) error {
	k, err := parseKill(sql)
	if err != nil {
		return err
	}
	return s.carryOutKill(ctx, k)
}

// parseKill is router.ParseKill with its refusals as the errors the
// client gets.
func parseKill(sql string) (router.Kill, error) {
	k, err := router.ParseKill(sql)
	var ke *router.KillError
	if errors.As(err, &ke) {
		if ke.Code != 0 {
			return k, &mysql.MyError{Code: ke.Code, State: "42000", Message: ke.Message}
		}
		return k, wire.Errorf(mysql.ER_UNKNOWN_ERROR, "%s", ke.Message)
	}
	return k, err
}

// carryOutKill runs a KILL the client sent as a statement or prepared.
func (s *session) carryOutKill(ctx context.Context, k router.Kill) error {
	if k.ByUser {
		return s.killUser(ctx, k.User, k.Query)
	}
	var err error
	id := k.ID
	switch {
	case k.Self:
		id = uint64(s.c.ID())
	case k.Expr != "":
		if id, err = s.evalKillID(ctx, k.Expr); err != nil {
			return err
		}
	}
	if k.QueryID {
		return s.killQueryID(ctx, id)
	}
	return s.kill(ctx, id, k.Query)
}

// killUser is KILL [QUERY] USER: it ends (or interrupts the statements of)
// every session of this switchyard logged in as that user, from that
// client host if one is named, and answers with their number as affected
// rows, as MariaDB counts its threads. A server must not run it: there it
// would end the pooled connections of that server user, which other
// clients' sessions use. Another user's sessions need the privilege
// MariaDB asks for (CONNECTION ADMIN or SUPER), and without it the error
// is MariaDB's.
func (s *session) killUser(ctx context.Context, u router.KillUser, query bool) error {
	own := s.c.login.User.Name
	if u.Current {
		u = router.KillUser{Name: own}
	}
	targets := s.c.ln.sessionsOfAccount(u.Name, u.Host)
	if len(targets) > 0 && u.Name != own {
		may, err := s.mayKillOthers(ctx)
		if err != nil {
			return err
		}
		if !may {
			host := u.Host
			if host == "" {
				host = "%"
			}
			return &mysql.MyError{Code: mysql.ER_KILL_DENIED_ERROR, State: "HY000",
				Message: fmt.Sprintf("Operation KILL USER failed for %s@%s", u.Name, host)}
		}
	}
	self := false
	for _, c := range targets {
		switch {
		case c.ClientConn == s.c:
			self = true // its own statement is this KILL
		case query:
			if b := c.sess.Load(); b != nil {
				if k, ok := b.Session.(queryKiller); ok {
					if err := k.KillQuery(ctx); err != nil {
						s.c.Logger().Warn("KILL QUERY USER: could not interrupt a session's statement", "session", c.ID(), "err", err)
					}
				}
			}
		default:
			c.Logger().Info("session killed by KILL USER", "by", own)
			c.kill()
		}
	}
	if err := s.c.WritePacket(wire.AppendOK(make([]byte, wire.HeaderSize, 16),
		wire.OK{AffectedRows: uint64(len(targets)), Status: s.c.status})); err != nil {
		return EndSession(errClientWrite{err})
	}
	if self && !query {
		// MariaDB answers the KILL, then the connection ends.
		return EndSession(errors.New("killed by its own KILL USER"))
	}
	return nil
}

// killQueryID is KILL QUERY ID: it interrupts the statement a server
// numbered qid, if a session of this switchyard runs it. A query id names
// one statement of one server, but servers number theirs apart, so the
// servers the proxy's sessions run statements on now are asked, each as
// the user of a session running there (who sees its own threads), which
// thread runs qid; the session on that thread owns it. The KILL QUERY ID
// then goes to that server as the owner, who may interrupt its own
// statement. Errors are MariaDB's: 1957 for a query no session runs, 1979
// for another user's without CONNECTION ADMIN.
//
// The caller's own user's sessions are searched first. Other users' are
// searched only for a caller who may kill their statements: each search
// logs in as that user, and any account could otherwise have the proxy
// log in as every user with a statement running, at every KILL QUERY ID.
// Without the privilege the caller's server answers the KILL QUERY ID
// itself, with its own check: 1979 for another user's statement, 1957 for
// none.
func (s *session) killQueryID(ctx context.Context, qid uint64) error {
	type group struct {
		server *backend.Server
		user   string
	}
	type running struct {
		c  *conn
		sc *backend.Conn
	}
	own := s.c.login.User.Name
	byGroup := map[group][]running{}
	var ownGroups, otherGroups []group
	for _, c := range s.c.ln.loggedIn() {
		b := c.sess.Load()
		if b == nil || c.ClientConn == s.c {
			continue
		}
		if k, ok := b.Session.(queryKiller); ok {
			if sc := k.runningOn(); sc != nil {
				user, _ := c.accountName()
				g := group{sc.Server(), user}
				if byGroup[g] == nil {
					if g.user == own {
						ownGroups = append(ownGroups, g)
					} else {
						otherGroups = append(otherGroups, g)
					}
				}
				byGroup[g] = append(byGroup[g], running{c, sc})
			}
		}
	}
	// search looks for qid among the sessions of groups; found reports
	// that it was found, and err how its KILL went.
	search := func(groups []group) (found bool, err error) {
		for _, g := range groups {
			list := byGroup[g]
			thread, err := s.srv.servers.ThreadOfQuery(ctx, list[0].sc, qid)
			if err != nil {
				s.c.Logger().Warn("KILL QUERY ID: could not read a server's process list", "server", list[0].sc.Server().Name, "err", err)
				continue
			}
			for _, r := range list {
				if thread == 0 || r.sc.ThreadID() != thread {
					continue
				}
				s.c.Logger().Info("interrupting another session's statement (KILL QUERY ID)", "session", r.c.ID(), "server", r.sc.Server().Name)
				if err := s.srv.servers.KillQueryID(ctx, r.sc, qid); err != nil {
					var me *mysql.MyError
					if errors.As(err, &me) {
						return true, me // the statement is over: the server's 1957
					}
					return true, err
				}
				return true, s.c.WriteOK()
			}
		}
		return false, nil
	}
	if found, err := search(ownGroups); found {
		return err
	}
	if len(otherGroups) > 0 {
		may, err := s.mayKillOthers(ctx)
		if err != nil {
			return err
		}
		if may {
			if found, err := search(otherGroups); found {
				return err
			}
			return &mysql.MyError{Code: errNoSuchQuery, State: "HY000", Message: fmt.Sprintf("Unknown query id: %d", qid)}
		}
	}
	return s.killQueryIDOnServer(ctx, qid)
}

// killQueryIDOnServer sends KILL QUERY ID qid on the session's own
// connection, as the session's user: query ids are the servers' own, and
// the server applies its own rules (a statement of the same user, not
// through this proxy, is interrupted, as directly).
func (s *session) killQueryIDOnServer(ctx context.Context, qid uint64) error {
	if _, err := s.queryOnSessionConn(ctx, fmt.Sprintf("KILL QUERY ID %d", qid)); err != nil {
		return err
	}
	return s.c.WriteOK()
}

// MariaDB's errors for KILL QUERY ID (not MySQL's: no constants in the
// protocol library).
const (
	errNoSuchQuery     = 1957
	errKillQueryDenied = 1979
)

// mayKillOthers asks the server whether the session's account may end
// other users' sessions: MariaDB's CONNECTION ADMIN, or SUPER, granted to
// the account (privileges of roles are not seen).
func (s *session) mayKillOthers(ctx context.Context) (bool, error) {
	// GRANTEE is 'user'@'host'; CURRENT_USER() is user@host, and only the
	// host cannot hold an @.
	const host = "SUBSTRING_INDEX(CURRENT_USER(), '@', -1)"
	res, err := s.queryOnSessionConn(ctx, "SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES"+
		" WHERE PRIVILEGE_TYPE IN ('SUPER', 'CONNECTION ADMIN') AND GRANTEE = CONCAT('''', "+
		"LEFT(CURRENT_USER(), CHAR_LENGTH(CURRENT_USER()) - CHAR_LENGTH("+host+") - 1), '''@''', "+host+", '''')")
	if err != nil {
		return false, err
	}
	return len(res.Rows) == 1 && len(res.Rows[0]) == 1 && res.Rows[0][0].String != "0", nil
}

// evalKillID has the server evaluate a KILL's id expression, on the
// connection the session's state is on (it may read the session's user
// variables), as MariaDB evaluates it before killing. An error is the
// server's own (a syntax error, an unknown column); a value that is not a
// whole number names no thread, as on the server.
func (s *session) evalKillID(ctx context.Context, expr string) (uint64, error) {
	res, err := s.queryOnSessionConn(ctx, "SELECT "+router.RewriteConnectionID(expr, uint64(s.c.ID())))
	var me *mysql.MyError
	if errors.As(err, &me) {
		if i := strings.LastIndex(me.Message, " in '"); me.Code == mysql.ER_BAD_FIELD_ERROR && i > 0 {
			// The server evaluated a SELECT; evaluating the KILL itself,
			// it names the KILL as where the column is missing.
			return 0, &mysql.MyError{Code: me.Code, State: me.State, Message: me.Message[:i] + " in 'KILL'"}
		}
	}
	if err != nil {
		return 0, err
	}
	if len(res.Rows) != 1 || len(res.Rows[0]) != 1 || !res.Rows[0][0].Valid {
		return 0, nil
	}
	v := strings.TrimSpace(res.Rows[0][0].String)
	if id, err := strconv.ParseUint(v, 10, 64); err == nil {
		return id, nil
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 && f < 1<<63 {
		return uint64(math.Round(f)), nil
	}
	return 0, nil
}

// processKill handles COM_PROCESS_KILL: KILL CONNECTION of a 4-byte id.
func (s *session) processKill(ctx context.Context, p []byte) error {
	if len(p) < 5 {
		return wire.Errorf(mysql.ER_MALFORMED_PACKET, "Malformed communication packet")
	}
	return s.kill(ctx, uint64(binary.LittleEndian.Uint32(p[1:5])), false)
}

// kill is KILL [QUERY] id from this session: on itself as MariaDB does it
// (the connection is ended with 1927, a query "interrupted" is this very
// statement, 1317), on another session of the same user through the
// listener.
func (s *session) kill(ctx context.Context, id uint64, query bool) error {
	if id == uint64(s.c.ID()) {
		if query {
			return mysql.NewDefaultError(mysql.ER_QUERY_INTERRUPTED)
		}
		return EndSessionTelling(errConnectionKilled)
	}
	asUser := s.c.login.User.Name
	if owner, ok := s.c.ln.ownerOf(id); ok && owner != asUser {
		// Another user's session: MariaDB lets CONNECTION ADMIN end it.
		may, err := s.mayKillOthers(ctx)
		if err != nil {
			return err
		}
		if may {
			asUser = ""
		}
	}
	if err := s.c.ln.Kill(ctx, id, query, asUser); err != nil {
		return err
	}
	return s.c.WriteOK()
}

// sessionsOfAccount returns the logged-in sessions of user name, from
// client host (as MariaDB names it: clientHost) unless host is "".
func (ln *Listener) sessionsOfAccount(name, host string) []*conn {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	var found []*conn
	for _, c := range ln.conns {
		if user, ok := c.accountName(); c.sess.Load() == nil || !ok || user != name {
			continue
		}
		if host == "" || clientHost(c.addr) == host {
			found = append(found, c)
		}
	}
	return found
}

// loggedIn returns the sessions that completed their login.
func (ln *Listener) loggedIn() []*conn {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	found := make([]*conn, 0, len(ln.conns))
	for _, c := range ln.conns {
		if c.sess.Load() != nil {
			found = append(found, c)
		}
	}
	return found
}

// ownerOf returns the user of the logged-in session a client knows as id.
func (ln *Listener) ownerOf(id uint64) (string, bool) {
	c := ln.find(id)
	if c == nil || c.sess.Load() == nil {
		return "", false
	}
	return c.accountName()
}
