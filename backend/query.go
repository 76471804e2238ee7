package backend

import (
	"bufio"
	"cmp"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/backend/gtid"
	"switchyard/wire"
)

// The proxy's own commands on a server connection: health checks, state
// replay, lazy prepares. Client traffic never goes through here; it is
// forwarded raw by the proxy.

// sendCommand writes a one-packet command.
func (c *Conn) sendCommand(cmd byte, args string) error {
	pkt := wire.AppendCommand(make([]byte, wire.HeaderSize, wire.HeaderSize+1+len(args)), cmd, args)
	if err := c.Write(wire.FrameCommand(pkt)); err != nil {
		return err
	}
	return nil
}

// failed marks the connection broken unless err is the server's own error
// answer, after which the connection is still at a packet boundary.
func (c *Conn) failed(err error) error {
	var me *mysql.MyError
	if err != nil && !errors.As(err, &me) {
		c.broken.Store(true)
	}
	return err
}

// Query runs a statement and returns its (last) result set. It materialises
// the whole result (up to wire.MaxTextRows rows), so it is for the proxy's
// own small queries.
func (c *Conn) Query(sql string) (*wire.TextResult, error) {
	return c.query(sql, wire.ReadTextResult)
}

// Exec runs a statement whose result the proxy does not need; whatever the
// server answers is read and dropped.
func (c *Conn) Exec(sql string) error {
	_, err := c.query(sql, wire.SkipResult)
	return err
}

func (c *Conn) query(sql string, read func(*bufio.Reader, bool, int) (*wire.TextResult, error)) (*wire.TextResult, error) {
	if err := c.sendCommand(mysql.COM_QUERY, sql); err != nil {
		return nil, err
	}
	br := c.Reader()
	defer c.ReleaseReader()
	res, err := read(br, c.caps&mysql.CLIENT_DEPRECATE_EOF != 0, maxServerPacket)
	if err != nil {
		return nil, c.failed(err)
	}
	c.SetStatus(res.Status)
	return res, nil
}

// Command runs a command whose response the proxy only needs to know
// succeeded: a statement (COM_QUERY), or a command answered with one OK,
// EOF or ERR packet (COM_INIT_DB, COM_SET_OPTION, COM_RESET_CONNECTION).
func (c *Conn) Command(cmd byte, args string) error {
	if cmd == mysql.COM_QUERY {
		return c.Exec(args)
	}
	if err := c.sendCommand(cmd, args); err != nil {
		return err
	}
	br := c.Reader()
	defer c.ReleaseReader()
	p, _, err := wire.ReadPacket(br, nil, maxServerPacket, 1)
	var w wire.Walker
	w.Reset(wire.ShapeOne, false)
	var kind wire.Kind
	if err == nil {
		kind, err = w.Next(p, len(p))
	}
	if err == nil && kind == wire.KindOther {
		// Not an OK, EOF or ERR: whatever it starts is still unread.
		err = wire.ErrMalformed
	}
	if err != nil {
		return c.failed(err)
	}
	if kind == wire.KindErr {
		return wire.ParseErr(p)
	}
	if st, ok := w.Status(); ok {
		c.SetStatus(st)
	}
	if cmd == mysql.COM_RESET_CONNECTION {
		c.ForgetPrepared()
		c.state = SessionState{}
		if c.trackGTID {
			// The reset put session_track_system_variables back.
			return c.trackLastGTID()
		}
	}
	return nil
}

// trackLastGTID asks the server to report each transaction's GTID in its OK
// packets (MariaDB's last_gtid session tracker), which read-your-writes
// uses. A server without the tracker is left as it is.
func (c *Conn) trackLastGTID() error {
	err := c.Exec("SET SESSION session_track_system_variables = CONCAT_WS(',', @@session_track_system_variables, 'last_gtid')")
	var me *mysql.MyError
	if errors.As(err, &me) {
		return nil // not MariaDB, or too old: no GTIDs, reads after writes use the primary
	}
	if err == nil {
		c.trackGTID = true
	}
	return err
}

// Prepared statements on server connections. The proxy prepares a
// statement on whichever connection runs it, and many sessions share a
// connection, so the server statements are the connection's, shared by
// the sessions that run the same text there. Each is reference-counted: a
// session holds it while one of its open statements last ran there (Hold,
// Release). What no session holds is closed on the server, except the
// keepUnheld most recently used, kept for the next session that runs the
// same text: so what the proxy keeps prepared on a server is what its
// clients have open, plus a few per connection, and never what they closed
// (the server's max_prepared_stmt_count is shared by all its sessions).
//
// A connection knows its statements by key (SHA-256 of the text), not by
// text: a statement of megabytes is held by the session that prepared it
// and freed with it, not by every pooled connection it ran on.

// keepUnheld is how many statements no session holds a connection keeps
// prepared for reuse, the least recently used closed first.
const keepUnheld = 16

// StmtKey identifies a statement text on server connections.
type StmtKey [sha256.Size]byte

// KeyOf is the key of a statement text.
func KeyOf(text []byte) StmtKey { return sha256.Sum256(text) }

// stmtScope is what a server statement depends on: its text, and the
// session state of the connection when it was prepared. The schema
// selected then decides which tables its names mean, so a connection
// brought to another session's state (USE other) must prepare the text
// anew rather than run what it prepared for the first one.
type stmtScope struct {
	text    StmtKey
	state   uint64
	entries int
	// unlogged counts the changes of session state the replay log does not
	// show (StateChangedUnlogged).
	unlogged uint64
}

func (c *Conn) scopeOf(key StmtKey) stmtScope {
	return stmtScope{text: key, state: c.state.hash, entries: len(c.state.entries), unlogged: c.unlogged}
}

// StateChangedUnlogged records that the session using c changed its state
// in a way the replay log does not hold (a prepared SET, state set inside
// a multi-statement string; the session is pinned to c for it). A
// statement prepared before may depend on it (character_set_connection
// converts literals at prepare time), so none prepared before is reused.
func (c *Conn) StateChangedUnlogged() { c.unlogged++ }

// PreparedStmt is a statement prepared on one server connection.
type PreparedStmt struct {
	conn *Conn
	id   uint32
	key  stmtScope
	// Guarded by conn.stmts.mu: holds by sessions; dropped once the
	// connection no longer has it (closed, reset, evicted); used, the
	// cache's clock at its last use, for least-recently-used eviction.
	refs    int
	dropped bool
	used    uint64
}

// ID is the server's statement id.
func (ps *PreparedStmt) ID() uint32 { return ps.id }

// stmtCache is a connection's prepared statements. Its lock lets sessions
// release statements from their own goroutines while another uses the
// connection; no I/O happens under it.
type stmtCache struct {
	mu    sync.Mutex
	byKey map[stmtScope]*PreparedStmt
	// unheld are the entries of byKey no session holds, apart so that a
	// tidy looks at them alone, however many sessions hold.
	unheld map[*PreparedStmt]struct{}
	clock  uint64
	// closing are server statements to close at the next tidy: duplicates
	// of a text the connection had already (a client's own prepare is
	// forwarded as it is).
	closing []uint32
}

// Hold records that a session's statement runs as ps, keeping it prepared
// until Release. Only the goroutine using ps's connection may call it (it
// got ps from that connection just now).
func (ps *PreparedStmt) Hold() {
	sc := &ps.conn.stmts
	sc.mu.Lock()
	delete(sc.unheld, ps)
	ps.refs++
	sc.mu.Unlock()
}

// Release gives up a Hold. Any goroutine may call it. When that leaves the
// connection more statements than it keeps unheld and the connection is
// idle in its pool, the surplus is closed on the server now; a connection
// in use is tidied when it is given back.
func (ps *PreparedStmt) Release() {
	if ps.release() && ps.conn.pool != nil {
		ps.conn.pool.tidyIdle(ps.conn)
	}
}

// ReleaseAll releases every statement of stmts (nil ones skipped), then
// tidies each idle connection concerned once: a session that ends with
// thousands of statements open costs each connection one tidy.
func ReleaseAll(stmts []*PreparedStmt) {
	var due []*Conn
	for _, ps := range stmts {
		if ps != nil && ps.release() && !slices.Contains(due, ps.conn) {
			due = append(due, ps.conn)
		}
	}
	for _, c := range due {
		if c.pool != nil {
			c.pool.tidyIdle(c)
		}
	}
}

// release drops one hold and reports whether the connection now has
// statements to close.
func (ps *PreparedStmt) release() (due bool) {
	sc := &ps.conn.stmts
	sc.mu.Lock()
	defer sc.mu.Unlock()
	ps.refs--
	if ps.refs == 0 && !ps.dropped {
		sc.clock++
		ps.used = sc.clock
		sc.addUnheld(ps)
	}
	return len(sc.unheld) > keepUnheld
}

// addUnheld records that no session holds ps. Called with mu held.
func (sc *stmtCache) addUnheld(ps *PreparedStmt) {
	if sc.unheld == nil {
		sc.unheld = make(map[*PreparedStmt]struct{})
	}
	sc.unheld[ps] = struct{}{}
}

// Discard takes ps off its connection, to be closed on the server at the
// next tidy: it carries state of the session that ran it (long data, an
// open cursor) that the next session to run the text must not meet. Those
// that still hold it prepare the text again when they next run here. Only
// the goroutine using the connection may call it.
func (ps *PreparedStmt) Discard() {
	sc := &ps.conn.stmts
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if ps.dropped {
		return
	}
	ps.dropped = true
	delete(sc.byKey, ps.key)
	delete(sc.unheld, ps)
	sc.closing = append(sc.closing, ps.id)
}

// lookup returns the connection's statement for key, or nil.
func (c *Conn) lookup(key StmtKey) *PreparedStmt {
	sc := &c.stmts
	sc.mu.Lock()
	defer sc.mu.Unlock()
	ps := sc.byKey[c.scopeOf(key)]
	if ps != nil {
		sc.clock++
		ps.used = sc.clock
	}
	return ps
}

// Prepared returns the connection's statement for sql (whose key is key),
// preparing it first if needed. The response's definitions are read and
// dropped: the client got its own when it prepared the statement. The
// statement is unheld until the caller holds it.
func (c *Conn) Prepared(key StmtKey, sql string) (*PreparedStmt, error) {
	if ps := c.lookup(key); ps != nil {
		return ps, nil
	}
	// Close what is due first: the server counts every statement.
	if err := c.TidyStmts(); err != nil {
		return nil, err
	}
	if err := c.sendCommand(mysql.COM_STMT_PREPARE, sql); err != nil {
		return nil, err
	}
	br := c.Reader()
	defer c.ReleaseReader()
	var w wire.Walker
	w.Reset(wire.ShapePrepare, c.caps&mysql.CLIENT_DEPRECATE_EOF != 0)
	var p []byte
	for seq := uint8(1); !w.Done(); {
		var err error
		if p, seq, err = wire.ReadPacket(br, p[:0], maxServerPacket, seq); err != nil {
			return nil, c.failed(err)
		}
		kind, err := w.Next(p, len(p))
		switch {
		case err != nil:
			return nil, c.failed(err)
		case kind == wire.KindErr:
			return nil, wire.ParseErr(p)
		case kind == wire.KindOther:
			return nil, c.failed(wire.ErrMalformed)
		}
	}
	return c.RememberPrepared(key, w.PrepareOK().StatementID), nil
}

// RememberPrepared records that the server prepared the statement of key
// as id on this connection (a client's prepare, forwarded through it) and
// returns the connection's statement for key, unheld until the caller
// holds it. If the connection had it already and a session holds that one
// (it may have a cursor open on it), it is kept and id is closed at the
// next tidy; if none holds it, id replaces it, as the client asked for a
// new statement: MariaDB resolves and rewrites a statement at its first
// execution, so one that ran already answers differently (no notes of the
// resolution, EXPLAIN EXTENDED's rewritten text). It does no I/O: it is
// called while the prepare response is still being relayed.
func (c *Conn) RememberPrepared(key StmtKey, id uint32) *PreparedStmt {
	sc := &c.stmts
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.clock++
	scope := c.scopeOf(key)
	if ps := sc.byKey[scope]; ps != nil {
		if ps.refs > 0 {
			sc.closing = append(sc.closing, id)
			ps.used = sc.clock
			return ps
		}
		ps.dropped = true
		delete(sc.unheld, ps)
		sc.closing = append(sc.closing, ps.id)
	}
	if sc.byKey == nil {
		sc.byKey = make(map[stmtScope]*PreparedStmt)
	}
	ps := &PreparedStmt{conn: c, id: id, key: scope, used: sc.clock}
	sc.byKey[scope] = ps
	sc.addUnheld(ps)
	return ps
}

// needsTidy reports whether TidyStmts has statements to close.
func (c *Conn) needsTidy() bool {
	sc := &c.stmts
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return len(sc.closing) > 0 || len(sc.unheld) > keepUnheld
}

// TidyStmts closes on the server the statements due: duplicates, and the
// least recently used of those no session holds beyond keepUnheld. Only
// the goroutine using the connection may call it, between commands.
// COM_STMT_CLOSE has no response; the packets go out in one write.
func (c *Conn) TidyStmts() error {
	sc := &c.stmts
	sc.mu.Lock()
	ids := sc.closing
	sc.closing = nil
	if surplus := len(sc.unheld) - keepUnheld; surplus > 0 {
		oldest := make([]*PreparedStmt, 0, len(sc.unheld))
		for ps := range sc.unheld {
			oldest = append(oldest, ps)
		}
		slices.SortFunc(oldest, func(a, b *PreparedStmt) int { return cmp.Compare(a.used, b.used) })
		for _, ps := range oldest[:surplus] {
			ps.dropped = true
			delete(sc.byKey, ps.key)
			delete(sc.unheld, ps)
			ids = append(ids, ps.id)
		}
	}
	sc.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	out := make([]byte, 0, len(ids)*(wire.HeaderSize+5))
	var payload [5]byte
	for _, id := range ids {
		out, _ = wire.AppendPacket(out, wire.AppendStmtClose(payload[:0], id), 0)
	}
	return c.Write(out)
}

// ForgetPrepared drops the record of prepared statements, after the server
// dropped them (COM_RESET_CONNECTION). Sessions that held them prepare
// them again when they next run here.
func (c *Conn) ForgetPrepared() {
	sc := &c.stmts
	sc.mu.Lock()
	for _, ps := range sc.byKey {
		ps.dropped = true
	}
	sc.byKey, sc.unheld, sc.closing = nil, nil, nil
	sc.mu.Unlock()
}

// PreparedCount is the number of statements the connection has prepared
// on the server, and how many of them no session holds.
func (c *Conn) PreparedCount() (all, unheld int) {
	sc := &c.stmts
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return len(sc.byKey) + len(sc.closing), len(sc.unheld)
}

// ClientReset records that a client's COM_RESET_CONNECTION, forwarded raw,
// ran on the connection: its prepared statements and session state are
// gone, and so is the GTID tracking the proxy had asked for, which it asks
// for again. An error means the connection does not report GTIDs now.
func (c *Conn) ClientReset() error {
	c.ForgetPrepared()
	c.state = SessionState{}
	if c.trackGTID {
		return c.trackLastGTID()
	}
	return nil
}

// ErrGTIDWaitTimeout says MASTER_GTID_WAIT gave up: the server had not
// applied the position within the timeout.
var ErrGTIDWaitTimeout = errors.New("the server did not apply the GTID position in time")

// gtidWaitGrace is how much longer than the wait itself the proxy waits
// for the server's answer before it takes the connection for broken.
const gtidWaitGrace = time.Second

// WaitGTID waits, on the server, until it has applied GTID position pos,
// for at most timeout (MASTER_GTID_WAIT): nil once it has, or
// ErrGTIDWaitTimeout. It runs on a connection a session is about to read
// on, so it changes nothing the session can see there: a SELECT without
// tables adds no warning and clears none (MariaDB keeps the list for a
// statement that uses no table), the function sets no session variable,
// the LIMIT overrides a session's sql_select_limit, and the FOUND_ROWS()
// and ROW_COUNT() it sets are replaced by the read that follows. A server
// error comes back as *mysql.MyError and leaves the connection usable; a
// server that does not answer within timeout and a grace period breaks
// it.
func (c *Conn) WaitGTID(pos string, timeout time.Duration) error {
	if !gtid.Valid(pos) {
		return fmt.Errorf("not a GTID position: %q", pos)
	}
	q := make([]byte, 0, 64+len(pos))
	q = append(q, "SELECT MASTER_GTID_WAIT('"...)
	q = append(q, pos...)
	q = append(q, "', "...)
	q = strconv.AppendFloat(q, timeout.Seconds(), 'f', 6, 64)
	q = append(q, ") LIMIT 1"...)
	if err := c.nc.SetReadDeadline(time.Now().Add(timeout + gtidWaitGrace)); err != nil {
		c.broken.Store(true)
		return err
	}
	res, err := c.Query(string(q))
	if derr := c.nc.SetReadDeadline(time.Time{}); derr != nil && err == nil {
		err = derr
	}
	if err != nil {
		return c.failed(err)
	}
	if len(res.Rows) != 1 || len(res.Rows[0]) != 1 || !res.Rows[0][0].Valid {
		return errors.New("unexpected answer to MASTER_GTID_WAIT")
	}
	if res.Rows[0][0].String != "0" {
		return ErrGTIDWaitTimeout
	}
	return nil
}

// DefaultMaxPreparedStmts is MariaDB's and MySQL's default
// max_prepared_stmt_count, assumed for a server that does not say.
const DefaultMaxPreparedStmts = 16382

// maxPreparedStmtsAge is how long a server's max_prepared_stmt_count is
// trusted before it is read again: an operator may change it at run time.
const maxPreparedStmtsAge = 30 * time.Second

// MaxPreparedStmts is the server's max_prepared_stmt_count, the most
// statements a session can have prepared there (its sessions share it).
// The value is kept on the Server; it is read on this connection when
// unknown or older than maxPreparedStmtsAge, by one caller at a time (the
// others use the value they find, or the default while there is none). A
// server that refuses to say gets DefaultMaxPreparedStmts; an error means
// the connection broke.
func (c *Conn) MaxPreparedStmts() (int, error) {
	s := c.srv
	now := time.Now().UnixNano()
	at := s.maxPreparedAt.Load()
	if now-at < int64(maxPreparedStmtsAge) || !s.maxPreparedAt.CompareAndSwap(at, now) {
		if n := s.maxPrepared.Load(); n > 0 {
			return int(n - 1), nil
		}
		return DefaultMaxPreparedStmts, nil
	}
	n := int64(DefaultMaxPreparedStmts)
	res, err := c.Query("SELECT @@max_prepared_stmt_count")
	var me *mysql.MyError
	switch {
	case errors.As(err, &me):
	case err != nil:
		s.maxPreparedAt.Store(at) // not read: the next caller tries again
		return 0, err
	case len(res.Rows) == 1 && len(res.Rows[0]) == 1:
		if v, perr := strconv.ParseInt(res.Rows[0][0].String, 10, 32); perr == nil && v >= 0 {
			n = v
		}
	}
	// Stored plus one, so that zero (a limit of 0 is valid) means unknown.
	s.maxPrepared.Store(n + 1)
	return int(n), nil
}
