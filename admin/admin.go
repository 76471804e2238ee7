// Package admin is switchyard's admin SQL interface: a MySQL-protocol
// listener (proxy.Listener with a Handler of its own) where operators log
// in with the admin: credentials and query and change the proxy in SQL.
//
// SQL runs on an embedded SQLite database (modernc.org/sqlite). Its staged
// tables (servers, users, query_rules, variables) are the config file as
// rows: edited with INSERT, UPDATE and DELETE, validated as a whole by the
// conf package when loaded to the runtime, written back to the file with
// its comments. The runtime_*, stats_* and events tables are read-only
// snapshots of the live proxy, refilled before each statement that reads
// them. Admin commands (LOAD CONFIG TO RUNTIME, SET SERVER, KILL, ...) are
// recognised before SQLite sees a statement.
//
// The config file stays the source of truth: the staged tables live in
// memory only, and a restart loads the file.
//
// Files: admin.go (the Admin, its listener and sessions), commands.go (the
// admin commands and the MySQL session statements), db.go (the SQLite
// database and its authorizer), schema.go (the tables), staged.go (staged
// tables to and from the config document), yamldoc.go (the YAML document),
// variables.go (the variables table), snapshot.go (the read-only tables),
// stmts.go (prepared statements), lex.go (tokenizing MySQL statements).
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"go.yaml.in/yaml/v3"

	"switchyard/backend"
	"switchyard/conf"
	"switchyard/proxy"
	"switchyard/wire"
)

// Runtime is what the admin needs of the running proxy's configuration:
// cmd/switchyard implements it.
type Runtime interface {
	// Current is the config in effect.
	Current() *conf.Config
	// Apply validates cfg beyond conf's checks (certificates, rules) and
	// applies it, all or nothing; source says what asked for it, for the
	// event and the log line every outcome gets.
	Apply(cfg *conf.Config, source string) error
	// Reject records a reload that failed before Apply (a config file that
	// does not load) as an event and a log line.
	Reject(source string, err error)
}

// Options configure an Admin.
type Options struct {
	// ConfigPath is the config file LOAD CONFIG FROM FILE reads and SAVE
	// CONFIG TO FILE replaces.
	ConfigPath string
	// Env resolves ${NAME} in the config (nil: the process environment).
	Env     func(string) (string, bool)
	Runtime Runtime
	Cluster *backend.Cluster
	Pool    *backend.Pool
	// Data is the data path: its sessions, counters and KILL.
	Data *proxy.Server
	// Listener configures the admin's own listener; its Users are replaced
	// by the admin account (SetCredentials).
	Listener proxy.ListenerOptions
	Logger   *slog.Logger
	// Version is what SELECT VERSION() and the greeting report.
	Version string
}

// statementTimeout bounds one admin statement.
const statementTimeout = 30 * time.Second

// Admin serves the admin interface.
type Admin struct {
	opt      Options
	log      *slog.Logger
	ln       *proxy.Listener
	schema   *schema
	vars     []variable
	defaults map[string]string
	started  time.Time

	// mu serialises admin statements: the database has one connection,
	// and the staged tables with their document are shared by every admin
	// session, and by SIGHUP.
	mu sync.Mutex
	db *db
	// staged is the document the staged tables were loaded from (their
	// comments and what they do not hold); running is the one last applied
	// (SAVE CONFIG FROM RUNTIME).
	staged, running *yaml.Node
}

// New builds the admin interface with the staged tables loaded from file,
// the text of the config file now in effect.
func New(opt Options, file []byte) (*Admin, error) {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Env == nil {
		opt.Env = os.LookupEnv
	}
	a := &Admin{opt: opt, log: opt.Logger, schema: newSchema(), vars: configVariables(), started: time.Now()}
	a.defaults = defaultValues(a.vars)
	doc, err := parseDocument(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", opt.ConfigPath, err)
	}
	if a.db, err = openDB(context.Background(), a.schema); err != nil {
		return nil, err
	}
	a.staged, a.running = doc, cloneNode(doc)
	if err := a.fillStaged(context.Background(), doc); err != nil {
		a.db.close()
		return nil, err
	}
	lo := opt.Listener
	lo.Users = nil
	if opt.Version != "" {
		v := "5.5.5-" + opt.Version
		lo.Version = func() string { return v }
	}
	if a.ln, err = proxy.NewListener(lo, a); err != nil {
		a.db.close()
		return nil, err
	}
	cur := opt.Runtime.Current()
	if err := a.SetCredentials(cur.Admin.User, cur.Admin.Password); err != nil {
		a.db.close()
		return nil, err
	}
	return a, nil
}

// SetCredentials replaces the admin account; sessions logged in stay.
func (a *Admin) SetCredentials(user, password string) error {
	return a.ln.SetUsers([]proxy.User{{Name: user, Password: password, AuthPlugin: conf.AuthNative}})
}

// Serve accepts admin clients on l until Shutdown.
func (a *Admin) Serve(l net.Listener) error { return a.ln.Serve(l) }

// Shutdown closes the admin sessions (they hold nothing worth waiting for)
// and the database.
func (a *Admin) Shutdown(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	cancel() // admin sessions have no transactions to finish
	err := a.ln.Shutdown(ctx)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.db.close()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

func (a *Admin) current() *conf.Config { return a.opt.Runtime.Current() }

// Open starts an admin session; the listener has checked the password.
func (a *Admin) Open(_ context.Context, c *proxy.ClientConn) (proxy.Session, error) {
	c.Logger().Info("admin logged in")
	return &session{a: a, c: c, schema: "main"}, nil
}

// session is one admin client.
type session struct {
	a      *Admin
	c      *proxy.ClientConn
	schema string
	// stmts are the client's prepared statements (stmts.go).
	stmts    map[uint32]*adminStmt
	nextStmt uint32
}

func (s *session) Busy() bool { return false }
func (s *session) Abort()     {}
func (s *session) Close()     {}

// Command runs one command of the admin client.
func (s *session) Command(ctx context.Context, buf []byte) error {
	p := buf[wire.HeaderSize:]
	switch p[0] {
	case mysql.COM_QUIT:
		return proxy.ErrQuit
	case mysql.COM_PING, mysql.COM_RESET_CONNECTION:
		return s.c.WriteOK()
	case mysql.COM_INIT_DB:
		s.schema = string(p[1:])
		return s.c.WriteOK()
	case mysql.COM_QUERY:
		return s.query(ctx, string(p[1:]))
	case mysql.COM_FIELD_LIST:
		return s.fieldList(p)
	case mysql.COM_STATISTICS:
		msg := fmt.Sprintf("Uptime: %d  switchyard admin interface", int(time.Since(s.a.started).Seconds()))
		return s.c.WritePacket(append(make([]byte, wire.HeaderSize), msg...))
	case mysql.COM_SET_OPTION:
		return s.writeEOF()
	case mysql.COM_PROCESS_KILL:
		if len(p) < 5 {
			return wire.Errorf(mysql.ER_MALFORMED_PACKET, "Malformed communication packet")
		}
		id := uint64(p[1]) | uint64(p[2])<<8 | uint64(p[3])<<16 | uint64(p[4])<<24
		if _, err := s.kill(ctx, id, false); err != nil {
			return err
		}
		return s.c.WriteOK()
	case mysql.COM_STMT_PREPARE:
		return s.prepare(p)
	case mysql.COM_STMT_EXECUTE:
		return s.execute(ctx, p)
	case mysql.COM_STMT_CLOSE:
		if id, err := wire.StmtID(p); err == nil {
			delete(s.stmts, id)
		}
		return nil // no response, as on a server
	case mysql.COM_STMT_RESET:
		return s.c.WriteOK()
	case mysql.COM_CHANGE_USER:
		return proxy.EndSessionTelling(wire.Errorf(mysql.ER_NOT_SUPPORTED_YET, "COM_CHANGE_USER is not supported by the admin interface; reconnect"))
	}
	return wire.Errorf(mysql.ER_UNKNOWN_COM_ERROR, "Unknown command %d on the admin interface", p[0])
}

// fieldList answers COM_FIELD_LIST (the mariadb CLI's completion) with the
// columns of an admin table.
func (s *session) fieldList(p []byte) error {
	name, _, err := wire.ParseFieldList(p)
	if err != nil {
		return wire.Errorf(mysql.ER_MALFORMED_PACKET, "Malformed communication packet")
	}
	t := s.a.schema.lookup(name)
	if t == nil {
		return wire.Errorf(mysql.ER_NO_SUCH_TABLE, "Table 'main.%s' doesn't exist", name)
	}
	for _, c := range t.columns {
		col := wire.Column{Schema: "main", Table: t.name, OrgTable: t.name, Name: c.name, OrgName: c.name,
			Charset: 33, Length: 1 << 16, Type: mysql.MYSQL_TYPE_VAR_STRING}
		if err := s.c.WritePacket(wire.AppendFieldListColumn(make([]byte, wire.HeaderSize), &col, nullString())); err != nil {
			return err
		}
	}
	return s.writeEOF()
}

// writeEOF ends a field list, or answers COM_SET_OPTION, as a server does:
// with an EOF packet, or its OK form for a client with
// CLIENT_DEPRECATE_EOF.
func (s *session) writeEOF() error {
	eof := wire.EOF{Status: s.c.Status()}
	if s.c.Capabilities()&mysql.CLIENT_DEPRECATE_EOF != 0 {
		return s.c.WritePacket(wire.AppendEOFAsOK(make([]byte, wire.HeaderSize), eof))
	}
	return s.c.WritePacket(wire.AppendEOF(make([]byte, wire.HeaderSize), eof))
}

// query runs one COM_QUERY: admin commands and session statements are
// answered here, the rest goes to SQLite.
func (s *session) query(ctx context.Context, text string) error {
	toks, err := lex(text)
	if err != nil {
		return wire.Errorf(mysql.ER_PARSE_ERROR, "You have an error in your SQL syntax: %v", err)
	}
	stmts := splitStatements(toks)
	switch len(stmts) {
	case 0:
		return wire.Errorf(mysql.ER_EMPTY_QUERY, "Query was empty")
	case 1:
	default:
		return wire.Errorf(mysql.ER_PARSE_ERROR, "the admin interface runs one statement at a time; send them one by one")
	}
	ctx, cancel := context.WithTimeout(ctx, statementTimeout)
	defer cancel()
	res, err := s.statement(ctx, stmts[0])
	if err != nil {
		return err
	}
	return s.c.WriteResult(res)
}
