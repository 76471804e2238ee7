package fakemysql

import (
	"bufio"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"net"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/wire"
)

// maxPacket bounds what a client may send in one logical packet.
const maxPacket = 64 << 20

// collationUTF8MB4 is utf8mb4_general_ci, the collation the greeting and the
// result columns announce.
const collationUTF8MB4 = 45

// serverCaps are the capabilities the greeting offers (CLIENT_SSL is added
// when Options.TLS is set). Like MariaDB, the server does not set
// CLIENT_MYSQL (CLIENT_LONG_PASSWORD); it offers neither compression nor
// query attributes.
const serverCaps = mysql.CLIENT_FOUND_ROWS | mysql.CLIENT_LONG_FLAG | mysql.CLIENT_CONNECT_WITH_DB |
	mysql.CLIENT_LOCAL_FILES | mysql.CLIENT_IGNORE_SPACE | mysql.CLIENT_PROTOCOL_41 |
	mysql.CLIENT_INTERACTIVE | mysql.CLIENT_IGNORE_SIGPIPE | mysql.CLIENT_TRANSACTIONS |
	mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_MULTI_STATEMENTS | mysql.CLIENT_MULTI_RESULTS |
	mysql.CLIENT_PS_MULTI_RESULTS | mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_CONNECT_ATTRS |
	mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | mysql.CLIENT_SESSION_TRACK | mysql.CLIENT_DEPRECATE_EOF

// Conn is one client connection to the fake server, as Options.Handle sees
// it. Its methods are meant for Handle, which runs on the connection's own
// goroutine; they are not safe to call from elsewhere.
type Conn struct {
	s    *Server
	nc   net.Conn
	rw   net.Conn // nc, or the TLS connection over it
	br   *bufio.Reader
	id   uint32
	host string

	done      chan struct{}
	closeOnce sync.Once

	// Everything below belongs to the connection's goroutine.
	seq      uint8  // the sequence id of the next packet, either way
	out      []byte // packets not yet written
	caps     uint32 // negotiated
	tls      bool
	scramble []byte
	user     string
	schema   string
	login    string // the schema of the login or last COM_CHANGE_USER
	session
	stmts    map[uint32]*stmt
	nextStmt uint32
}

// session is the state COM_RESET_CONNECTION and COM_CHANGE_USER reset.
type session struct {
	vars        map[string]string // set with SET; user variables keep their '@'
	autocommit  bool
	inTrans     bool
	trxReadOnly bool
	trxDirty    bool // a write awaits COMMIT for its GTID
	lastGTID    string
	tracked     map[string]bool // session_track_system_variables
	trackAll    bool
	state       []byte // session-state entries for the next OK packet
}

// defaultTracked is MariaDB 10.11's session_track_system_variables.
const defaultTracked = "autocommit,character_set_client,character_set_connection,character_set_results,redirect_url,time_zone"

func newSession() session {
	se := session{vars: map[string]string{}, autocommit: true, tracked: map[string]bool{}}
	for _, v := range strings.Split(defaultTracked, ",") {
		se.tracked[v] = true
	}
	return se
}

func newConn(s *Server, nc net.Conn, id uint32) *Conn {
	host, _, err := net.SplitHostPort(nc.RemoteAddr().String())
	if err != nil {
		host = nc.RemoteAddr().String()
	}
	return &Conn{
		s: s, nc: nc, rw: nc, br: bufio.NewReaderSize(nc, 16<<10), id: id, host: host,
		done: make(chan struct{}), session: newSession(), stmts: map[uint32]*stmt{},
	}
}

// ID is the connection id (CONNECTION_ID(), the greeting's thread id).
func (c *Conn) ID() uint32 { return c.id }

// User is the user logged in.
func (c *Conn) User() string { return c.user }

// Schema is the current database, "" if none.
func (c *Conn) Schema() string { return c.schema }

// Capabilities are the capability flags negotiated with the client.
func (c *Conn) Capabilities() uint32 { return c.caps }

// TLS reports whether the connection was upgraded to TLS.
func (c *Conn) TLS() bool { return c.tls }

// InTransaction reports whether a transaction is open.
func (c *Conn) InTransaction() bool { return c.inTrans }

// Var returns the value the session set for a variable: a system variable
// by its lower-case name ("sql_mode"), a user variable with its '@'
// ("@x"). Defaults are not included.
func (c *Conn) Var(name string) (string, bool) {
	v, ok := c.vars[strings.ToLower(name)]
	return v, ok
}

// Vars returns a copy of the variables the session set (see Var).
func (c *Conn) Vars() map[string]string { return maps.Clone(c.vars) }

// Done is closed when the connection is closed by the server (Close,
// KillConnections, Kill); Handle can wait on it.
func (c *Conn) Done() <-chan struct{} { return c.done }

func (c *Conn) close() {
	c.closeOnce.Do(func() {
		// The socket first: a statement that wakes up on done must find
		// it closed and answer nothing.
		c.nc.Close()
		close(c.done)
	})
}

func (c *Conn) serve() {
	defer c.s.wg.Done()
	defer c.s.removeConn(c)
	defer c.close()
	defer func() {
		if r := recover(); r != nil {
			c.s.t.Errorf("fakemysql: connection %d panicked: %v\n%s", c.id, r, debug.Stack())
		}
	}()
	if !c.handshake() {
		return
	}
	c.s.record(Command{ConnID: c.id, Cmd: mysql.COM_CONNECT, Arg: c.user})
	for c.command() {
	}
}

// readPacket reads the next packet, which must carry sequence id c.seq. A
// wrong sequence id is answered with ERR 1156 and fails, as does a packet
// over maxPacket (ERR 1153): the caller then closes the connection.
func (c *Conn) readPacket() ([]byte, error) {
	p, next, err := wire.ReadPacket(c.br, nil, maxPacket, c.seq)
	var se *wire.SequenceError
	var tl *wire.TooLargeError
	switch {
	case errors.As(err, &se):
		c.out = c.out[:0]
		c.seq = se.Got + 1
		c.writeErr(mysql.NewError(mysql.ER_NET_PACKETS_OUT_OF_ORDER, "Got packets out of order"))
		c.flush()
		return nil, err
	case errors.As(err, &tl):
		c.out = c.out[:0]
		c.seq = next
		c.writeErr(mysql.NewError(mysql.ER_NET_PACKET_TOO_LARGE, "Got a packet bigger than 'max_allowed_packet' bytes"))
		c.flush()
		return nil, err
	case err != nil:
		return nil, err
	}
	c.seq = next
	return p, nil
}

// writePacket queues one packet.
func (c *Conn) writePacket(payload []byte) {
	c.out, c.seq = wire.AppendPacket(c.out, payload, c.seq)
}

// flush writes the queued packets.
func (c *Conn) flush() error {
	if len(c.out) == 0 {
		return nil
	}
	_, err := c.rw.Write(c.out)
	c.out = c.out[:0]
	return err
}

func (c *Conn) deprecateEOF() bool { return c.caps&mysql.CLIENT_DEPRECATE_EOF != 0 }

// status is the server status of the session.
func (c *Conn) status() uint16 {
	var st uint16
	if c.autocommit {
		st |= mysql.SERVER_STATUS_AUTOCOMMIT
	}
	if c.inTrans {
		st |= mysql.SERVER_STATUS_IN_TRANS
		if c.trxReadOnly {
			st |= mysql.SERVER_STATUS_IN_TRANS_READONLY
		}
	}
	return st
}

// writeOK queues an OK packet, with the pending session-state entries when
// the client tracks session state, and clears them.
func (c *Conn) writeOK(affected, insertID uint64, status uint16, info string) {
	ok := wire.OK{AffectedRows: affected, LastInsertID: insertID, Status: status}
	var p []byte
	switch {
	case c.caps&mysql.CLIENT_SESSION_TRACK != 0 && len(c.state) > 0:
		p = wire.AppendOKWithState(nil, ok, info, c.state)
	case info != "":
		p = wire.AppendOKWithInfo(nil, ok, info)
	default:
		p = wire.AppendOK(nil, ok)
	}
	c.state = c.state[:0]
	c.writePacket(p)
}

func (c *Conn) writeErr(e *mysql.MyError) {
	c.state = c.state[:0]
	c.writePacket(wire.AppendErr(nil, e))
}

// writeEOF queues the packet that ends rows or definitions: a classic EOF,
// or an OK packet with header 0xfe for a CLIENT_DEPRECATE_EOF client.
func (c *Conn) writeEOF(status uint16) {
	if c.deprecateEOF() {
		c.writePacket(wire.AppendEOFAsOK(nil, wire.EOF{Status: status}))
		return
	}
	c.writePacket(wire.AppendEOF(nil, wire.EOF{Status: status}))
}

// columnDefs are the definitions of result columns: all VAR_STRING.
func columnDefs(names []string) []wire.Column {
	cols := make([]wire.Column, len(names))
	for i, n := range names {
		cols[i] = wire.Column{Name: n, Charset: collationUTF8MB4, Length: 1024, Type: mysql.MYSQL_TYPE_VAR_STRING}
	}
	return cols
}

// fitRow pads or cuts row to n values (missing ones are NULL).
func fitRow(row []sql.NullString, n int) []sql.NullString {
	if len(row) == n {
		return row
	}
	out := make([]sql.NullString, n)
	copy(out, row)
	return out
}

// writeTextResult queues a text-protocol result set.
func (c *Conn) writeTextResult(r *Result, status uint16) {
	tr := &wire.TextResult{Columns: columnDefs(r.Columns), Status: status}
	for _, row := range r.Rows {
		tr.Rows = append(tr.Rows, fitRow(row, len(r.Columns)))
	}
	c.out, c.seq = wire.AppendTextResult(c.out, tr, c.seq, c.caps)
}

// writeDefs queues a column count and the column definitions, and the EOF
// after them unless the client negotiated CLIENT_DEPRECATE_EOF (or eof is
// false: the caller sends its own).
func (c *Conn) writeDefs(names []string, status uint16, eof bool) {
	c.writePacket(wire.AppendColumnCount(nil, len(names)))
	cols := columnDefs(names)
	for i := range cols {
		c.writePacket(wire.AppendColumnDef(nil, &cols[i]))
	}
	if eof && !c.deprecateEOF() {
		c.writePacket(wire.AppendEOF(nil, wire.EOF{Status: status}))
	}
}

// command reads and answers one command; false ends the connection.
func (c *Conn) command() bool {
	c.seq = 0
	p, err := c.readPacket()
	if err != nil || len(p) == 0 {
		return false
	}
	c.state = c.state[:0]
	cmd, arg := p[0], p[1:]
	logArg := ""
	switch cmd {
	case mysql.COM_QUERY, mysql.COM_INIT_DB, mysql.COM_STMT_PREPARE:
		logArg = string(arg)
	case mysql.COM_FIELD_LIST:
		logArg, _, _ = wire.ParseFieldList(p)
	case mysql.COM_STMT_FETCH, mysql.COM_STMT_RESET, mysql.COM_STMT_CLOSE, mysql.COM_STMT_SEND_LONG_DATA:
		if id, err := wire.StmtID(p); err == nil {
			logArg = strconv.FormatUint(uint64(id), 10)
		}
	case mysql.COM_SET_OPTION:
		if opt, err := wire.ParseSetOption(p); err == nil {
			logArg = strconv.Itoa(int(opt))
		}
	case mysql.COM_CHANGE_USER:
		if cu, err := wire.ParseChangeUser(p, c.caps); err == nil {
			logArg = cu.User
		}
	}
	if cmd != mysql.COM_STMT_EXECUTE { // logged with its parameters substituted
		c.s.record(Command{ConnID: c.id, Cmd: cmd, Arg: logArg})
	}
	switch cmd {
	case mysql.COM_QUIT:
		return false
	case mysql.COM_PING:
		c.writeOK(0, 0, c.status(), "")
	case mysql.COM_QUERY:
		if !c.comQuery(string(arg)) {
			return false
		}
	case mysql.COM_INIT_DB:
		if e := c.use(string(arg)); e != nil {
			c.writeErr(e)
		} else {
			c.writeOK(0, 0, c.status(), "")
		}
	case mysql.COM_FIELD_LIST:
		c.fieldList(logArg)
	case mysql.COM_STATISTICS:
		c.s.mu.Lock()
		q, threads := c.s.questions, len(c.s.conns)
		c.s.mu.Unlock()
		uptime := max(1, int(time.Since(c.s.started)/time.Second))
		c.writePacket(fmt.Appendf(nil, "Uptime: %d  Threads: %d  Questions: %d  Slow queries: 0  Opens: 0  Open tables: 0  Queries per second avg: %.3f",
			uptime, threads, q, float64(q)/float64(uptime)))
	case mysql.COM_SET_OPTION:
		c.setOption(p)
	case mysql.COM_RESET_CONNECTION:
		// MariaDB's reset (THD::change_user) keeps the current schema.
		c.resetSession(c.schema)
		c.writeOK(0, 0, c.status(), "")
	case mysql.COM_CHANGE_USER:
		if c.changeUser(p) != nil {
			return false
		}
	case mysql.COM_STMT_PREPARE:
		c.prepare(string(arg))
	case mysql.COM_STMT_EXECUTE:
		if !c.execute(p) {
			return false
		}
	case mysql.COM_STMT_FETCH:
		c.fetch(p)
	case mysql.COM_STMT_RESET:
		c.stmtReset(p)
	case mysql.COM_STMT_SEND_LONG_DATA:
		c.longData(p)
	case mysql.COM_STMT_CLOSE:
		if id, err := wire.StmtID(p); err == nil {
			delete(c.stmts, id)
		}
	default:
		c.writeErr(mysql.NewError(mysql.ER_UNKNOWN_COM_ERROR, "Unknown command"))
	}
	return c.flush() == nil
}

// resetSession drops the session's state as COM_RESET_CONNECTION does: an
// open transaction is rolled back, variables, tracking and prepared
// statements go, and the schema is back to schema.
func (c *Conn) resetSession(schema string) {
	c.session = newSession()
	c.schema = schema
	c.stmts = map[uint32]*stmt{}
	c.nextStmt = 0
}

func (c *Conn) setOption(p []byte) {
	opt, err := wire.ParseSetOption(p)
	if err != nil {
		c.writeErr(malformed())
		return
	}
	switch opt {
	case wire.MultiStatementsOn:
		c.caps |= mysql.CLIENT_MULTI_STATEMENTS
	case wire.MultiStatementsOff:
		c.caps &^= mysql.CLIENT_MULTI_STATEMENTS
	default:
		c.writeErr(mysql.NewError(mysql.ER_UNKNOWN_COM_ERROR, "Unknown command"))
		return
	}
	c.writeEOF(c.status())
}

// fieldList answers COM_FIELD_LIST: two columns for any table of the current
// schema, with their (NULL) defaults.
func (c *Conn) fieldList(table string) {
	if c.schema == "" {
		c.writeErr(mysql.NewError(mysql.ER_NO_DB_ERROR, "No database selected"))
		return
	}
	cols := []wire.Column{
		{Schema: c.schema, Table: table, OrgTable: table, Name: "id", OrgName: "id", Charset: 63, Length: 11,
			Type: mysql.MYSQL_TYPE_LONG, Flags: mysql.NOT_NULL_FLAG | mysql.PRI_KEY_FLAG},
		{Schema: c.schema, Table: table, OrgTable: table, Name: "name", OrgName: "name", Charset: collationUTF8MB4, Length: 1020,
			Type: mysql.MYSQL_TYPE_VAR_STRING},
	}
	for i := range cols {
		c.writePacket(wire.AppendFieldListColumn(nil, &cols[i], sql.NullString{})) // default value: NULL
	}
	c.writeEOF(c.status())
}

// sleep waits d, or less when the connection is closed (by the server, or
// by the client: checked every hangupCheck, as MariaDB checks a sleeping
// connection now and then) or the server is closed; it reports whether it
// was cut short. A client that hung up has its connection closed.
func (c *Conn) sleep(d time.Duration) bool {
	if d <= 0 {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	tick := time.NewTicker(hangupCheck)
	defer tick.Stop()
	for {
		select {
		case <-t.C:
			return false
		case <-c.done:
			return true
		case <-c.s.done:
			return true
		case <-tick.C:
			if c.hungUp() {
				c.close()
				return true
			}
		}
	}
}

// hangupCheck is how often a waiting statement checks for a client that
// closed its connection.
const hangupCheck = 10 * time.Millisecond

// hungUp reports, without blocking or consuming anything, whether the
// client closed its end of the connection (bytes it sent ahead are not a
// hang-up; nor, over TLS, is a close_notify alert not yet followed by the
// close itself).
func (c *Conn) hungUp() bool {
	if c.br.Buffered() > 0 {
		return false
	}
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	gone := false
	var b [1]byte
	err = raw.Read(func(fd uintptr) bool {
		n, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		gone = (rerr == nil && n == 0) || (rerr != nil && rerr != syscall.EAGAIN && rerr != syscall.EWOULDBLOCK)
		return true
	})
	return err != nil || gone
}
