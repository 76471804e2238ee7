// Package fakemysql is an in-process fake MySQL/MariaDB server for unit
// tests of the proxy: whole client sessions run against it without a real
// database. It speaks the client/server protocol as MariaDB 10.11 does, with
// every packet built and parsed by package wire.
//
// Protocol:
//
//   - Login with mysql_native_password or caching_sha2_password (fast
//     authentication once the server saw a full one of that user and
//     password; full authentication in the clear over TLS, else with the
//     password RSA-OAEP encrypted under the server's public key, which a
//     client asks for with 0x02), an auth switch when the client answered
//     for another plugin, optional TLS, COM_CHANGE_USER.
//   - What the client negotiated is honoured: CLIENT_DEPRECATE_EOF,
//     CLIENT_SESSION_TRACK (schema changes, tracked system variables,
//     last_gtid), CLIENT_MULTI_STATEMENTS, CLIENT_LOCAL_FILES. Compression
//     and query attributes are not offered.
//   - Sequence ids are checked on every packet read: a wrong one is answered
//     with ERR 1156 and the connection is closed.
//   - Commands: COM_QUIT, COM_PING, COM_QUERY, COM_INIT_DB, COM_FIELD_LIST,
//     COM_STATISTICS, COM_SET_OPTION, COM_RESET_CONNECTION, COM_CHANGE_USER,
//     COM_STMT_PREPARE, _EXECUTE (binary result rows, read-only cursors),
//     _FETCH, _RESET, _SEND_LONG_DATA and _CLOSE; others get ERR 1047.
//
// Statements, after Options.Handle declined (nil result); case-insensitive,
// comments and a trailing ';' ignored; anything else gets ERR 1064:
//
//   - SELECT of a list of literals ('str', 42, NULL), @@[session.]variables,
//     @user_variables, DATABASE(), CONNECTION_ID(), USER(), CURRENT_USER(),
//     VERSION(), SLEEP(n) and MASTER_GTID_WAIT('pos', timeout) (waits for
//     @@gtid_current_pos to cover pos, which SetGTIDPos sets), with AS
//     aliases, optionally FROM DUAL, optionally LIMIT n;
//   - SET of session, global and user variables (all kept per connection),
//     SET NAMES, SET CHARACTER SET, SET [SESSION] TRANSACTION ...;
//     SET autocommit; SET session_track_system_variables (the names in its
//     string literals, plus the current list when the expression refers to
//     @@session_track_system_variables, as CONCAT_WS(',',
//     @@session_track_system_variables, 'last_gtid') does; '*' tracks all);
//   - USE db; BEGIN, START TRANSACTION [READ ONLY | READ WRITE], COMMIT,
//     ROLLBACK, SAVEPOINT, RELEASE SAVEPOINT, ROLLBACK TO;
//   - SHOW ALL SLAVES STATUS (also SHOW SLAVE STATUS, SHOW REPLICA STATUS);
//   - writes: INSERT, UPDATE, DELETE, REPLACE (1 row affected); CREATE, DROP,
//     ALTER, TRUNCATE, RENAME (0 rows, implicit commit; CREATE/DROP
//     DATABASE also change the schemas that exist); LOAD DATA LOCAL INFILE
//     (as many rows as the file has lines).
//
// Choices where MariaDB's behaviour was not copied, or was unclear:
//
//   - Every result column is MYSQL_TYPE_VAR_STRING (utf8mb4_general_ci),
//     in the text and the binary protocol alike.
//   - SET GLOBAL is stored like SET SESSION; unknown variables can be set
//     and read back; one never set reads as NULL, except those in
//     defaultVars and the live ones (autocommit, in_transaction, read_only,
//     gtid_current_pos, last_gtid, server_id, version, ...).
//   - Options.Handle sees each statement of a multi-statement query on its
//     own, and a prepared statement's execution as its text with the
//     parameters substituted as literals.
//   - A write inside a transaction gets its GTID at COMMIT (or at the
//     implicit commit of DDL, BEGIN or SET autocommit=1), as in MariaDB.
//   - COM_STMT_FETCH answers like MariaDB's materialized cursor: a fetch
//     that fills its row count ends with SERVER_STATUS_CURSOR_EXISTS even
//     when no row is left; the next fetch sends no row and an EOF with
//     SERVER_STATUS_LAST_ROW_SEND, and closes the cursor.
//   - COM_SET_OPTION answers an EOF packet, or an OK packet with header 0xfe
//     to a CLIENT_DEPRECATE_EOF client, as MariaDB's my_eof does.
//   - COM_RESET_CONNECTION keeps the current schema, as MariaDB's
//     THD::change_user, which it runs, does: it does not go back to the
//     login schema.
//   - A failed COM_CHANGE_USER leaves the session logged in as before.
//   - MariaDB's executable comments (/*! ... */) are ignored like comments.
package fakemysql

import (
	"crypto/rsa"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Options configure a fake server. The zero value is a usable primary.
type Options struct {
	// Users maps user names to passwords ("" = no password). nil:
	// {"app": "secret", "monitor": "monitor"}.
	Users map[string]string
	// AuthPlugin is announced in the greeting and used for every user:
	// mysql_native_password (default) or caching_sha2_password.
	AuthPlugin string
	// OldPasswords are accounts with a mysql_old_password, by name, with
	// their passwords ("" = none): they log in as on MariaDB with
	// @@secure_auth OFF (an old-style switch for a client that answered
	// for native password, a full one for others).
	OldPasswords map[string]string
	// Version is the server version: default "10.11.99-MariaDB-fake".
	Version string
	// ServerID is @@server_id and the server id of the GTIDs the server
	// generates (domain 0): default 1.
	ServerID uint32
	// ReadOnly is @@read_only: writes then fail with
	// ER_OPTION_PREVENTS_STATEMENT (1290). SetReadOnly changes it.
	ReadOnly bool
	// Schemas are the databases that exist. nil: {"shop"}. USE, COM_INIT_DB
	// or a login schema naming another one fail with 1049.
	Schemas []string
	// Replica, when set, makes SHOW ALL SLAVES STATUS return one row from
	// it. SetReplica changes it.
	Replica *ReplicaStatus
	// TLS, when set, has CLIENT_SSL offered and the upgrade work.
	TLS *tls.Config
	// Handle is consulted first for every statement of a COM_QUERY and for
	// every prepared statement execution; a nil result leaves the statement
	// to the built-ins. It runs on the connection's goroutine, so calls for
	// different connections are concurrent.
	Handle func(c *Conn, query string) *Result
}

// ReplicaStatus is what SHOW ALL SLAVES STATUS reports of a replica.
type ReplicaStatus struct {
	SourceHost            string
	SourcePort            int
	IORunning, SQLRunning bool
	// IOConnecting reports the IO thread as Connecting (retrying a source
	// it lost) rather than No when IORunning is false.
	IOConnecting bool
	// SecondsBehind is Seconds_Behind_Master; -1: NULL. It is NULL too
	// while a replication thread is stopped, as in MariaDB.
	SecondsBehind int
}

// Result is the answer to one statement.
type Result struct {
	// Columns are the result set's column names; none: an OK packet.
	Columns []string
	Rows    [][]sql.NullString
	// AffectedRows and InsertID go into the OK packet.
	AffectedRows, InsertID uint64
	// Info is the OK packet's info text, such as "Records: 3  Deleted: 0
	// Skipped: 0  Warnings: 0".
	Info string
	// Err, when set, is sent as an ERR packet instead.
	Err *mysql.MyError
	// Delay is waited before answering; the wait ends early when the
	// connection is closed, by the server or by the client, or the server
	// is closed.
	Delay time.Duration
	// PauseAfter, when positive, moves the Delay of a COM_QUERY's answer
	// into it: its first PauseAfter packets go out at once, the rest after
	// the Delay, as from a server that streams rows it computes slowly.
	PauseAfter int
	// Write says the statement counts as a write: it is refused on a
	// read-only server, and gets a new GTID (at once, or at COMMIT inside a
	// transaction), reported as last_gtid where that is tracked.
	Write bool
	// CloseAfter, when positive, makes the server send only the first
	// CloseAfter packets of the answer to a COM_QUERY and then close the
	// connection without a word, as a server that dies in the middle of a
	// result set would.
	CloseAfter int
	// Raw, when set, is sent instead of the answer to a COM_QUERY: these
	// payloads as packets, numbered on from the command, after which the
	// connection waits for the next command as usual, whatever the
	// payloads were. It is how tests play a server that breaks the
	// protocol: a response cut short, more packets than one response.
	Raw [][]byte
}

// Command is one command the server received.
type Command struct {
	ConnID uint32
	// Cmd is the command byte (mysql.COM_QUERY, ...); mysql.COM_CONNECT
	// stands for a successful login.
	Cmd byte
	// Arg is the command's argument: the statement text (for
	// COM_STMT_EXECUTE with the parameters substituted), the schema of
	// COM_INIT_DB, the table of COM_FIELD_LIST, the user of COM_CONNECT and
	// COM_CHANGE_USER, the statement id of the other statement commands, the
	// option of COM_SET_OPTION.
	Arg string
}

// Server is a running fake server.
type Server struct {
	t       testing.TB
	opt     Options
	ln      net.Listener
	started time.Time

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	keyOnce sync.Once
	key     *rsa.PrivateKey
	keyPEM  []byte

	mu        sync.Mutex
	conns     map[*Conn]struct{}
	log       []Command
	accepted  int
	nextID    uint32
	down      bool
	shut      bool // Close has begun
	readOnly  bool
	replica   *ReplicaStatus
	schemas   map[string]bool
	gtidSeq   uint64
	gtidPos   string
	sha2Cache map[string]bool // user NUL password that passed a full caching_sha2 auth
	questions uint64
}

// Start starts a fake server listening on 127.0.0.1 on a free port; it is
// closed by t's cleanup.
func Start(t testing.TB, opt Options) *Server {
	t.Helper()
	users := map[string]string{"app": "secret", "monitor": "monitor"}
	if opt.Users != nil {
		users = make(map[string]string, len(opt.Users))
		for u, p := range opt.Users {
			users[u] = p
		}
	}
	opt.Users = users
	switch opt.AuthPlugin {
	case "":
		opt.AuthPlugin = mysql.AUTH_NATIVE_PASSWORD
	case mysql.AUTH_NATIVE_PASSWORD, mysql.AUTH_CACHING_SHA2_PASSWORD:
	default:
		t.Fatalf("fakemysql: unsupported auth plugin %q", opt.AuthPlugin)
	}
	if opt.Version == "" {
		opt.Version = "10.11.99-MariaDB-fake"
	}
	if opt.ServerID == 0 {
		opt.ServerID = 1
	}
	if opt.Schemas == nil {
		opt.Schemas = []string{"shop"}
	}
	schemas := make(map[string]bool, len(opt.Schemas))
	for _, s := range opt.Schemas {
		schemas[s] = true
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fakemysql: listen: %v", err)
	}
	s := &Server{
		t:         t,
		opt:       opt,
		ln:        ln,
		started:   time.Now(),
		done:      make(chan struct{}),
		conns:     make(map[*Conn]struct{}),
		readOnly:  opt.ReadOnly,
		replica:   copyReplica(opt.Replica),
		schemas:   schemas,
		sha2Cache: make(map[string]bool),
	}
	s.wg.Add(1)
	go s.acceptLoop()
	t.Cleanup(s.Close)
	return s
}

func copyReplica(r *ReplicaStatus) *ReplicaStatus {
	if r == nil {
		return nil
	}
	c := *r
	return &c
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops listening, closes every connection and returns when all of
// the server's goroutines have ended. It may be called more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.shut = true // no new connections from the accept loop
		for c := range s.conns {
			c.close()
		}
		s.mu.Unlock()
		s.ln.Close()
		close(s.done)
	})
	s.wg.Wait()
}

func (s *Server) closed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if s.closed() || errors.Is(err, net.ErrClosed) {
				return
			}
			select { // a transient failure (out of file descriptors, ...)
			case <-s.done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			continue
		}
		s.mu.Lock()
		s.accepted++
		if s.down || s.shut {
			s.mu.Unlock()
			nc.Close()
			continue
		}
		s.nextID++
		c := newConn(s, nc, s.nextID)
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go c.serve()
	}
}

func (s *Server) removeConn(c *Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *Server) record(c Command) {
	s.mu.Lock()
	s.log = append(s.log, c)
	if c.Cmd == mysql.COM_QUERY {
		s.questions++
	}
	s.mu.Unlock()
}

// Log returns every command received so far, in order.
func (s *Server) Log() []Command {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Command(nil), s.log...)
}

// Queries returns the texts of the COM_QUERY commands received so far, in
// order.
func (s *Server) Queries() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var q []string
	for _, c := range s.log {
		if c.Cmd == mysql.COM_QUERY {
			q = append(q, c.Arg)
		}
	}
	return q
}

// ResetLog forgets the commands received so far.
func (s *Server) ResetLog() {
	s.mu.Lock()
	s.log = nil
	s.mu.Unlock()
}

// Conns is the number of connections open now (logging in or logged in).
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Accepted is the number of connections ever accepted, including those
// closed at once while the server was down.
func (s *Server) Accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// KillConnections closes every open connection from the server's side,
// without a word, as a crash or a restart would; clients see a broken
// connection. Statements waiting (SLEEP, Result.Delay) end at once.
func (s *Server) KillConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.close()
	}
}

// Kill closes the connection with the given id, as KILL CONNECTION would,
// and reports whether there was one.
func (s *Server) Kill(id uint32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.id == id {
			c.close()
			return true
		}
	}
	return false
}

// SetDown makes the server, while down, accept connections and close them
// at once, as if nothing listened. Open connections are not touched: call
// KillConnections too for a crash.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

// SetReadOnly changes @@read_only.
func (s *Server) SetReadOnly(ro bool) {
	s.mu.Lock()
	s.readOnly = ro
	s.mu.Unlock()
}

func (s *Server) isReadOnly() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readOnly
}

// SetReplica changes what SHOW ALL SLAVES STATUS reports; nil: not a
// replica.
func (s *Server) SetReplica(r *ReplicaStatus) {
	s.mu.Lock()
	s.replica = copyReplica(r)
	s.mu.Unlock()
}

// GTIDPos is @@gtid_current_pos: "" before the first write, then the last
// GTID, "0-<server_id>-<seq>".
func (s *Server) GTIDPos() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gtidPos
}

// SetGTIDPos sets @@gtid_current_pos, as replication would on a replica.
// When pos ends in a sequence number, the server's next own GTID follows
// it.
func (s *Server) SetGTIDPos(pos string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gtidPos = pos
	if i := strings.LastIndexByte(pos, '-'); i >= 0 {
		if n, err := strconv.ParseUint(pos[i+1:], 10, 64); err == nil {
			s.gtidSeq = n
		}
	}
}

// newGTID allocates the GTID of a committed write.
func (s *Server) newGTID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gtidSeq++
	s.gtidPos = fmt.Sprintf("0-%d-%d", s.opt.ServerID, s.gtidSeq)
	return s.gtidPos
}

func (s *Server) hasSchema(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.schemas[name]
}

func (s *Server) setSchema(name string, exists bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if exists {
		s.schemas[name] = true
	} else {
		delete(s.schemas, name)
	}
}
