package proxy

import (
	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/backend"
	"switchyard/router"
	"switchyard/wire"
)

// The process list as clients see it. A client reading
// information_schema.PROCESSLIST (or SHOW PROCESSLIST) through switchyard
// must find its sessions under the ids it knows, its own row by
// CONNECTION_ID() and another session's statement under the id KILL takes;
// the server numbers its connections by thread ids, which name whichever
// session borrowed a pooled connection last. So just before such a
// statement runs on a server connection, the proxy takes which sessions
// hold which of that server's threads at that moment and has the statement
// read a view of the table with their ids (router.RewriteProcesslist).
// The proxy's idle pooled connections are left out; other threads no
// session holds get ids no session can have, which KILL answers as
// unknown (1094): the proxy never kills by a server's id.

// threadHolder is a Session that can say which server threads it holds.
type threadHolder interface {
	// threadsOn appends the thread ids of the connections to srv the
	// session holds now.
	threadsOn(srv *backend.Server, dst []uint64) []uint64
}

func (s *session) threadsOn(srv *backend.Server, dst []uint64) []uint64 {
	return s.inUse.threadsOn(srv, dst)
}

// threadsOn appends the thread ids of the registered connections to srv.
func (a *aborter) threadsOn(srv *backend.Server, dst []uint64) []uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, sc := range a.conns {
		if sc.Server() == srv {
			dst = append(dst, uint64(sc.ThreadID()))
		}
	}
	return dst
}

// processlistView is what sc's server's process list must show now: the
// threads sessions hold, with their ids, and the proxy's other connections
// there, left out. Held threads are taken first: a connection a session
// takes from the pool in between is then left out for this read, never
// shown under another id. At most one entry per connection the proxy has
// open to the server.
func (s *session) processlistView(sc *backend.Conn) (router.ProcesslistView, error) {
	cols, err := sc.ProcesslistColumns()
	if err != nil {
		return router.ProcesslistView{}, err
	}
	v := router.ProcesslistView{Columns: cols}
	srv := sc.Server()
	var buf []uint64
	held := map[uint64]bool{}
	for _, c := range s.c.ln.loggedIn() {
		b := c.sess.Load()
		if b == nil {
			continue
		}
		h, ok := b.Session.(threadHolder)
		if !ok {
			continue
		}
		buf = h.threadsOn(srv, buf[:0])
		for _, t := range buf {
			v.Held = append(v.Held, router.ThreadSession{Thread: t, Session: uint64(c.ID())})
			held[t] = true
		}
	}
	for _, t := range srv.ThreadIDs(buf[:0]) {
		if !held[t] {
			v.Idle = append(v.Idle, t)
		}
	}
	return v, nil
}

// clientViewSQL is sql, which mentions the process list, IS_USED_LOCK() or
// the status tables, as it must run on sc: its references to
// information_schema.PROCESSLIST read the client's view
// (router.RewriteProcesslist), SHOW [FULL] PROCESSLIST becomes the same
// read, IS_USED_LOCK() names the session holding the lock
// (router.RewriteUsedLock), and the status tables count the proxy's
// clients' aborts in Aborted_clients (router.RewriteStatusTables). sql
// itself when nothing refers to any of them.
func (s *session) clientViewSQL(sc *backend.Conn, sql string) (string, error) {
	if router.TooManyThreadIDReads(sql) {
		return "", wire.Errorf(mysql.ER_UNKNOWN_ERROR, "switchyard: a statement may read the process list, the status tables or IS_USED_LOCK() at most %d times", router.MaxThreadIDReads)
	}
	text := sql
	if router.MentionsProcesslist(sql) || router.MentionsUsedLock(sql) {
		v, err := s.processlistView(sc)
		if err != nil {
			return "", err
		}
		if show, ok := router.RewriteShowProcesslist(sql, v); ok {
			return show, nil
		}
		text, _ = router.RewriteProcesslist(text, s.st.schema, v)
		text, _ = router.RewriteUsedLock(text, v)
	}
	text, _ = router.RewriteStatusTables(text, s.st.schema, s.c.ln.metrics.abortedSinceFlush())
	return text, nil
}
