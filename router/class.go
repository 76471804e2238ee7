package router

import "strings"

// Target is where a statement goes.
type Target uint8

const (
	NoTarget Target = iota // no hint / no route; with Decision.Err: send nothing
	Primary
	Replica
	Stay // the server the session is already on (transaction, pin, previous statement)
)

func (t Target) String() string {
	switch t {
	case Primary:
		return "primary"
	case Replica:
		return "replica"
	case Stay:
		return "stay"
	}
	return "none"
}

// Kind is what a statement does, as far as routing and session tracking care.
type Kind uint8

const (
	Other         Kind = iota // anything not listed: HANDLER, empty statements, ...
	Read                      // SELECT, UNION, TABLE, VALUES, DO
	Write                     // INSERT, UPDATE, DELETE, REPLACE, LOAD DATA, EXPLAIN ANALYZE of a write
	DDL                       // CREATE, ALTER, DROP, RENAME, TRUNCATE (incl. temporary tables)
	Begin                     // BEGIN, START TRANSACTION [READ WRITE], XA is separate
	BeginReadOnly             // START TRANSACTION READ ONLY
	Commit
	Rollback
	Savepoint // SAVEPOINT, ROLLBACK TO, RELEASE SAVEPOINT
	XA
	Set // SET of session or user variables, SET NAMES / CHARACTER SET
	Use
	Show // SHOW, DESCRIBE, EXPLAIN (without ANALYZE)
	LockTables
	UnlockTables
	Prepare // text-protocol PREPARE
	Execute
	Deallocate
	Call
	Admin // GRANT, FLUSH, KILL, SET GLOBAL, ANALYZE TABLE, replication control, ...
	numKinds
)

var kindNames = [numKinds]string{"other", "read", "write", "ddl", "begin", "begin_read_only", "commit",
	"rollback", "savepoint", "xa", "set", "use", "show", "lock_tables", "unlock_tables", "prepare",
	"execute", "deallocate", "call", "admin"}

// NumKinds bounds the values of Kind, for tables indexed by it.
const NumKinds = numKinds

func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "kind?"
}

// Class is what the router knows about one client statement (or one
// multi-statement string). The proxy reads Route through Decide and uses the
// flags to keep its session state: transaction open, autocommit, pins.
type Class struct {
	Kind  Kind
	Route Target // Primary or Replica: where it may run when nothing else (transaction, pin) decides
	Hint  Target // NoTarget, Primary or Replica from a /* switchyard:route=... */ comment

	// Unparsed: the parser rejected it. Route is Primary and the flags come
	// from a token scan, which errs towards the primary and towards pinning.
	Unparsed   bool
	Statements int // statements in the string; 0 for an empty or comment-only string

	Digest     string // hex SHA-256 of DigestText
	DigestText string // parser.NormalizeDigest: literals as ?, lowercased, comments dropped
	Schema     string // USE target, as written

	// Autocommit is set by SET autocommit / @@autocommit / SESSION autocommit.
	// A value that is not a constant counts as 0 (the safe side: stay on the
	// primary). Going from 0 to 1 commits the open transaction; the proxy
	// knows the previous value, so EndsTx does not say it.
	Autocommit *bool
	// StartsTx/EndsTx are the net effect in statement order: apply EndsTx
	// first, then StartsTx. BEGIN and DDL end the open transaction
	// implicitly. UNLOCK TABLES commits only when LOCK TABLES was in effect,
	// which the proxy tracks, so it does not set EndsTx.
	StartsTx, EndsTx bool
	ReadOnlyTx       bool // the transaction it starts is READ ONLY

	Locking     bool // SELECT ... FOR UPDATE / FOR SHARE / LOCK IN SHARE MODE
	SideEffects bool // GET_LOCK & co, NEXTVAL, SETVAL, LAST_INSERT_ID(expr), INTO OUTFILE/DUMPFILE/@var
	StoredFunc  bool // calls a function that is not built in: it may write
	ServerVar   bool // reads a variable that differs per server (@@read_only, @@server_id, @@gtid_*, ...)

	SetsUserVar, ReadsUserVar        bool
	CreatesTempTable, DropsTempTable bool // TEMPORARY keyword only: a plain DROP TABLE may drop one too
	UsesLock                         bool // GET_LOCK, RELEASE_LOCK, RELEASE_ALL_LOCKS, IS_USED_LOCK, IS_FREE_LOCK
	// UsesFoundRows: reads the outcome of the previous statement on the same
	// connection: FOUND_ROWS(), ROW_COUNT(), SHOW WARNINGS/ERRORS, @@warning_count.
	UsesFoundRows bool
	// UsesLastInsertID: LAST_INSERT_ID(), @@identity, @@last_insert_id,
	// LASTVAL / PREVIOUS VALUE FOR: values the session's last write left behind.
	UsesLastInsertID bool
	CalcFoundRows    bool // SQL_CALC_FOUND_ROWS: a FOUND_ROWS() is likely to follow

	// NotOnlyReads: a multi-statement string has a statement that is
	// neither a read nor a SHOW, which its combined Kind may not show.
	NotOnlyReads bool
	// Kills: a KILL statement, anywhere in the string, inside a version
	// comment or a literal EXECUTE IMMEDIATE / PREPARE text. Server thread
	// ids are not the ids clients see, so the proxy must not pass it on.
	Kills bool
	// RunAlone: the text defines a stored body and the proxy leaves part
	// of it to the server (bodies.go): a KILL, CONNECTION_ID(). Where the
	// body ends is the server's to tell (BEGIN and END may be aliases), so
	// the proxy has the server take the text as one statement alone: what
	// follows the body, a KILL by a server's thread id or a CONNECTION_ID()
	// the proxy did not rewrite among it, is then a syntax error, not run.
	RunAlone bool
	// UsesConnectionID: CONNECTION_ID() is called, which the proxy
	// replaces by the id the client knows (RewriteConnectionID).
	UsesConnectionID bool
	// ReadsThreadIDs: the word PROCESSLIST or IS_USED_LOCK occurs
	// (MentionsProcesslist, MentionsUsedLock): the proxy puts its session
	// ids in the process list or the lock holder the statement reads
	// (RewriteProcesslist, RewriteUsedLock), and the statement reads the
	// primary's, where sessions take their locks and run their writes,
	// unless the session is held elsewhere. Also set for the status tables
	// (MentionsStatusTables), in which the proxy adds its clients' aborts
	// to Aborted_clients (RewriteStatusTables).
	ReadsThreadIDs bool
	// AffectsNewLogins: a statement of the string changes what a new login
	// gets: accounts or privileges (GRANT, REVOKE, CREATE/ALTER/DROP/RENAME
	// USER, roles, SET PASSWORD, FLUSH PRIVILEGES), or global variables,
	// the defaults of new sessions (SET GLOBAL). A server connection keeps
	// the global privileges and session defaults of its login, so
	// connections opened before must not serve sessions that log in after.
	AffectsNewLogins bool
	// ShowsSessionStatus: SHOW [SESSION|LOCAL] STATUS or a read of
	// information_schema.SESSION_STATUS, whose Ssl_* and Compression rows
	// describe the connection it runs on: a server connection of the
	// proxy's, not the client's own (the proxy puts the client's in).
	ShowsSessionStatus bool
	// ShowsGlobalStatus: SHOW GLOBAL STATUS, whose Aborted_clients the
	// proxy adds its own clients' aborts to (status.go).
	ShowsGlobalStatus bool

	// litDep: the class depends on something NormalizeDigest hides (a literal,
	// an identifier's case), so it must not be shared by digest.
	litDep bool
}

// ReplicaSafe says whether a hint or rule may send the statement to a
// replica: every statement in it reads, and changes neither data nor
// session state there. Locking reads, server variables and user variables
// read are the user's call. Writes, lock functions, sequences, variable
// assignments, stored functions not known to be read-only (they may
// write), and what the parser could not read (the token scan cannot see
// every function call) are not: a write on a replica breaks its
// replication, so no hint or rule may cause one.
func (c *Class) ReplicaSafe() bool {
	return (c.Kind == Read || c.Kind == Show) && !c.SideEffects && !c.SetsUserVar && !c.UsesLock &&
		!c.CreatesTempTable && !c.StoredFunc && !c.Unparsed && !c.NotOnlyReads && !c.Kills
}

// StateOnly says the statement only changes session state that every
// connection replays (SET of session variables, SET NAMES, USE): any
// server can run it, which matters while there is no primary.
func (c *Class) StateOnly() bool {
	return (c.Kind == Set || c.Kind == Use) && !c.SetsUserVar && c.Autocommit == nil && !c.Unparsed &&
		!c.StartsTx && !c.EndsTx && !c.Kills
}

// finish derives Route from Kind and flags; every path that builds a Class
// ends here so routing has one definition.
func (c *Class) finish() {
	switch c.Kind {
	case Read:
		c.Route = Replica
		if c.Locking || c.SideEffects || c.StoredFunc || c.ServerVar || c.SetsUserVar || c.ReadsUserVar ||
			c.UsesLock || c.UsesFoundRows || c.UsesLastInsertID {
			c.Route = Primary
		}
	case Show, BeginReadOnly: // their builders set Replica when the statement type allows it
		if c.Route != Replica || c.SideEffects || c.StoredFunc || c.ServerVar || c.UsesFoundRows || c.UsesLastInsertID {
			c.Route = Primary
		}
	default:
		c.Route = Primary
	}
	if c.Unparsed {
		c.Route = Primary
	}
}

// mergeRoute adds statement c's route to a multi-statement string's.
// COMMIT, ROLLBACK and savepoints run wherever the transaction is (Decide's
// stickiness), so they do not pull the rest of the string to the primary;
// a string of nothing else goes to the primary.
func mergeRoute(route Target, c *Class) Target {
	switch {
	case c.Kind == Commit || c.Kind == Rollback || c.Kind == Savepoint:
		return route
	case route == NoTarget || c.Route == Primary:
		return c.Route
	}
	return route
}

// combine folds statement b (the n-th, from 0) of a multi-statement string
// into a; the caller sets Route (see mergeRoute).
func combine(a, b Class, n int) Class {
	if n == 0 {
		return b
	}
	readish := func(k Kind) bool { return k == Read || k == Show }
	a.NotOnlyReads = a.NotOnlyReads || b.NotOnlyReads || !readish(a.Kind) || !readish(b.Kind)
	a.Kills = a.Kills || b.Kills
	a.RunAlone = a.RunAlone || b.RunAlone
	a.UsesConnectionID = a.UsesConnectionID || b.UsesConnectionID
	a.AffectsNewLogins = a.AffectsNewLogins || b.AffectsNewLogins
	a.ShowsSessionStatus = false // the proxy answers it only when alone
	a.ShowsGlobalStatus = false
	if a.Kind != b.Kind {
		switch {
		case a.Kind == DDL || b.Kind == DDL:
			a.Kind = DDL
		case a.Kind == Write || b.Kind == Write:
			a.Kind = Write
		}
	}
	// A transaction opened and closed inside the string leaves none behind.
	if b.EndsTx {
		if a.StartsTx {
			a.StartsTx, a.ReadOnlyTx = false, false
		} else {
			a.EndsTx = true
		}
	}
	if b.StartsTx {
		a.StartsTx, a.ReadOnlyTx = true, b.ReadOnlyTx
	}
	if b.Autocommit != nil {
		a.Autocommit = b.Autocommit
	}
	if b.Kind == Use {
		a.Schema = b.Schema
	}
	a.Unparsed = a.Unparsed || b.Unparsed
	a.Locking = a.Locking || b.Locking
	a.SideEffects = a.SideEffects || b.SideEffects
	a.StoredFunc = a.StoredFunc || b.StoredFunc
	a.ServerVar = a.ServerVar || b.ServerVar
	a.SetsUserVar = a.SetsUserVar || b.SetsUserVar
	a.ReadsUserVar = a.ReadsUserVar || b.ReadsUserVar
	a.CreatesTempTable = a.CreatesTempTable || b.CreatesTempTable
	a.DropsTempTable = a.DropsTempTable || b.DropsTempTable
	a.UsesLock = a.UsesLock || b.UsesLock
	a.UsesFoundRows = a.UsesFoundRows || b.UsesFoundRows
	a.UsesLastInsertID = a.UsesLastInsertID || b.UsesLastInsertID
	a.CalcFoundRows = a.CalcFoundRows || b.CalcFoundRows
	a.litDep = a.litDep || b.litDep
	return a
}

// Flags lists the set flags by name, for logs, tests and the golden file.
func (c *Class) Flags() string {
	var b strings.Builder
	add := func(on bool, name string) {
		if on {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(name)
		}
	}
	add(c.Unparsed, "unparsed")
	add(c.Statements > 1, "multi")
	add(c.Hint == Primary, "hint=primary")
	add(c.Hint == Replica, "hint=replica")
	add(c.Autocommit != nil && *c.Autocommit, "autocommit=1")
	add(c.Autocommit != nil && !*c.Autocommit, "autocommit=0")
	add(c.EndsTx, "ends_tx")
	add(c.StartsTx, "starts_tx")
	add(c.ReadOnlyTx, "read_only_tx")
	add(c.Locking, "locking")
	add(c.SideEffects, "side_effects")
	add(c.StoredFunc, "stored_func")
	add(c.ServerVar, "server_var")
	add(c.SetsUserVar, "sets_user_var")
	add(c.ReadsUserVar, "reads_user_var")
	add(c.CreatesTempTable, "creates_temp_table")
	add(c.DropsTempTable, "drops_temp_table")
	add(c.UsesLock, "uses_lock")
	add(c.UsesFoundRows, "uses_found_rows")
	add(c.UsesLastInsertID, "uses_last_insert_id")
	add(c.CalcFoundRows, "calc_found_rows")
	add(c.NotOnlyReads, "not_only_reads")
	add(c.Kills, "kills")
	add(c.RunAlone, "run_alone")
	add(c.UsesConnectionID, "uses_connection_id")
	add(c.ReadsThreadIDs, "reads_thread_ids")
	add(c.AffectsNewLogins, "affects_new_logins")
	add(c.ShowsSessionStatus, "session_status")
	add(c.ShowsGlobalStatus, "global_status")
	if c.Schema != "" {
		add(true, "schema="+c.Schema)
	}
	return b.String()
}
