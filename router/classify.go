package router

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	_ "github.com/pingcap/tidb/pkg/parser/test_driver" // the parser's literal values
)

// Classifier classifies the statements of one client session. It owns a
// parser, which is not safe for concurrent use; the Cache and ParseLimit it
// is given may be shared by all sessions.
type Classifier struct {
	p     *parser.Parser // nil until needed, and after a statement over smallStatement
	cache *Cache
	limit *ParseLimit
	w     walker
	opt   Options
	// shape is scratch for the shape of a statement (Cache.classify).
	shape []byte
}

// Options are the settings of a Classifier. The zero value is the default.
type Options struct {
	// ReadOnlyFunctions are the stored functions known not to write
	// (routing.read_only_functions): a read calling them may still go to a
	// replica. Every Classifier sharing a Cache must have the same.
	ReadOnlyFunctions *FunctionSet
}

// NewClassifier returns a Classifier with default options using cache,
// which may be nil. It parses statements up to DefaultMaxParseSize until
// SetParseLimit.
func NewClassifier(cache *Cache) *Classifier { return NewClassifierWith(cache, Options{}) }

// NewClassifierWith returns a Classifier with options opt using cache,
// which may be nil.
func NewClassifierWith(cache *Cache, opt Options) *Classifier {
	return &Classifier{cache: cache, opt: opt}
}

// FunctionSet is a set of stored function names, each "name" (in any
// schema) or "schema.name", matched case-insensitively. The nil set is
// empty.
type FunctionSet struct{ names map[string]bool }

// NewFunctionSet returns the set of names.
func NewFunctionSet(names []string) *FunctionSet {
	fs := &FunctionSet{names: make(map[string]bool, len(names))}
	for _, n := range names {
		fs.names[strings.ToLower(n)] = true
	}
	return fs
}

// has reports whether a call of name, qualified by schema ("" when the
// call is not), names a function of the set. A bare entry matches every
// schema; a qualified one only qualified calls, since the schema of a bare
// call is the session's current one, which the classification (shared by
// all sessions) does not know.
func (fs *FunctionSet) has(schema, name string) bool {
	if fs == nil {
		return false
	}
	return fs.names[name] || schema != "" && fs.names[schema+"."+name]
}

// SetParseLimit makes cl parse only what limit allows; nil is
// DefaultMaxParseSize, with no bound on parses at once.
func (cl *Classifier) SetParseLimit(limit *ParseLimit) { cl.limit = limit }

// Classify classifies sql, a COM_QUERY text that may hold several
// statements. It never fails: what cannot be parsed is Unparsed and routed to
// the primary. What the ParseLimit does not let it parse is classified by
// the token scan (scan.go), its digest from its beginning only.
func (cl *Classifier) Classify(sql string) Class {
	var c Class
	if cl.limit.admit(len(sql)) {
		c = cl.classifyParsed(sql)
	} else {
		c = scanClassify(sql)
	}
	c.Hint = findHint(sql)
	if c.UsesConnectionID && SoleBody(sql) {
		c.RunAlone = true // RewriteConnectionID leaves it as it is
	}
	markProcesslist(&c, sql)
	// Only statements of these kinds can change accounts: the common ones
	// are not scanned again.
	if c.Kind == Admin || c.Kind == Set || c.Kind == DDL || c.Statements > 1 || c.Unparsed {
		c.AffectsNewLogins = textAffectsNewLogins(sql)
	}
	return c
}

// markProcesslist flags a statement that may read the process list or
// IS_USED_LOCK(), which show the primary's sessions, or the status tables
// (ReadsThreadIDs).
func markProcesslist(c *Class, sql string) {
	if mentionsClientView(sql) {
		c.ReadsThreadIDs = true
		if c.Route == Replica {
			c.Route = Primary
		}
	}
}

func (cl *Classifier) classifyParsed(sql string) Class {
	defer cl.limit.done(len(sql))
	if cl.cache != nil {
		return cl.cache.classify(cl, sql)
	}
	c := cl.analyze(sql)
	norm, d := parser.NormalizeDigest(sql)
	c.DigestText, c.Digest = norm, d.String()
	return c
}

// analyze is the uncached classification, without digest and hint.
func (cl *Classifier) analyze(sql string) Class {
	// /*M! ... */ is code to MariaDB but a comment to the parser and to
	// NormalizeDigest, so the digest does not describe it either; lexClassify
	// marks its classes literal-dependent.
	if strings.Contains(sql, "/*M!") {
		return lexClassify(sql, cl.analyze)
	}
	stmts, err := cl.parse(sql)
	if err != nil {
		return lexClassify(sql, cl.analyze)
	}
	if len(stmts) == 0 {
		return Class{Kind: Other, Route: Primary}
	}
	var acc Class
	route := NoTarget
	for i, st := range stmts {
		c := cl.statement(st)
		acc = combine(acc, c, i)
		route = mergeRoute(route, &c)
	}
	acc.Statements, acc.Route = len(stmts), route
	if route == NoTarget {
		acc.Route = Primary
	}
	return acc
}

// parse runs the parser. A panic in it must not take the proxy down: the
// statement is then unparsed, and the parser, whose state is unknown,
// replaced.
func (cl *Classifier) parse(sql string) (stmts []ast.StmtNode, err error) {
	defer func() {
		if r := recover(); r != nil {
			stmts, err = nil, fmt.Errorf("parser panic: %v", r)
			cl.p = nil
		}
	}()
	if cl.p == nil {
		cl.p = parser.New()
		cl.p.SetMariaDB(true)
	}
	if len(sql) > smallStatement {
		// The parser keeps what it last read until it reads again: the
		// text, the AST, its scanner's buffers and its parse stack, all
		// of a size with the statement. Reset keeps most of it, so a
		// pooled classifier drops the parser instead (a new one costs
		// about 20 KB and 20µs, little beside such a parse).
		defer func() { cl.p = nil }()
	}
	stmts, _, err = cl.p.ParseSQL(sql)
	return stmts, err
}

func (cl *Classifier) statement(st ast.StmtNode) Class {
	var c Class
	walk := true
	switch x := st.(type) {
	case *ast.SelectStmt, *ast.SetOprStmt, *ast.DoStmt:
		c.Kind = Read
	case *ast.InsertStmt, *ast.UpdateStmt, *ast.DeleteStmt, *ast.LoadDataStmt, *ast.ImportIntoStmt,
		*ast.NonTransactionalDMLStmt:
		c.Kind = Write
	case *ast.ShowStmt:
		showClass(&c, x)
	case *ast.ExplainStmt:
		if x.Analyze { // runs the statement
			c = cl.statement(x.Stmt)
			if c.Kind == Read {
				c.Kind = Show
			}
			return c
		}
		if show, ok := x.Stmt.(*ast.ShowStmt); ok { // DESCRIBE t
			showClass(&c, show)
		} else {
			c.Kind = Show
			switch x.Stmt.(type) {
			case *ast.SelectStmt, *ast.SetOprStmt:
				c.Route = Replica
			}
		}
		walk = false // not executed: its functions and locks do not happen
	case *ast.ExplainForStmt:
		c.Kind = Show // another connection's plan: that connection's server
	case *ast.BeginStmt:
		c.Kind, c.StartsTx, c.EndsTx = Begin, true, true
		if x.ReadOnly {
			c.Kind, c.ReadOnlyTx, c.Route = BeginReadOnly, true, Replica
		}
	case *ast.CommitStmt:
		c.Kind, c.EndsTx, c.StartsTx = Commit, true, x.CompletionType == ast.CompletionTypeChain
	case *ast.RollbackStmt:
		c.Kind, c.EndsTx, c.StartsTx = Rollback, true, x.CompletionType == ast.CompletionTypeChain
		if x.SavepointName != "" {
			c.Kind, c.EndsTx, c.StartsTx = Savepoint, false, false
		}
	case *ast.SavepointStmt, *ast.ReleaseSavepointStmt:
		c.Kind = Savepoint
	case *ast.SetStmt:
		setClass(&c, x)
	case *ast.UseStmt:
		c.Kind, c.Schema, c.litDep = Use, x.DBName, true
	case *ast.LockTablesStmt:
		c.Kind, c.EndsTx = LockTables, true
	case *ast.UnlockTablesStmt:
		c.Kind = UnlockTables
	case *ast.FlushStmt:
		c.Kind, c.EndsTx = Admin, true
		if x.Tp == ast.FlushTables && x.ReadLock {
			c.Kind = LockTables
		}
	case *ast.PrepareStmt:
		c.Kind = Prepare
		if x.SQLVar == nil {
			// PREPARE s FROM 'KILL ...' must not pass either.
			c.Kills = textKills(x.SQLText)
		}
	case *ast.ExecuteStmt:
		c.Kind = Execute
	case *ast.DeallocateStmt:
		c.Kind = Deallocate
	case *ast.CallStmt:
		c.Kind = Call // its procedure is not a stored function in StoredFunc's sense
	case *ast.CreateTableStmt:
		c.Kind, c.EndsTx = DDL, true
		if x.TemporaryKeyword == ast.TemporaryLocal {
			c.CreatesTempTable, c.EndsTx = true, false
		}
		walk = false
	case *ast.DropTableStmt:
		c.Kind, c.EndsTx = DDL, true
		if x.TemporaryKeyword == ast.TemporaryLocal && !x.IsView {
			c.DropsTempTable, c.EndsTx = true, false
		}
		walk = false
	case *ast.OptimizeTableStmt, *ast.RepairTableStmt, *ast.AnalyzeTableStmt, *ast.GrantStmt,
		*ast.RevokeStmt, *ast.GrantRoleStmt, *ast.RevokeRoleStmt, *ast.CreateUserStmt, *ast.AlterUserStmt,
		*ast.DropUserStmt, *ast.RenameUserStmt, *ast.SetPwdStmt:
		c.Kind, c.EndsTx = Admin, true // statements that commit implicitly
		walk = false
	case ast.DDLNode, *ast.ProcedureInfo, *ast.DropProcedureStmt:
		c.Kind, c.EndsTx = DDL, true
		walk = false
	case *ast.KillStmt:
		c.Kind, c.Kills = Admin, true
		walk = false
	case *ast.SetRoleStmt, *ast.SetDefaultRoleStmt, *ast.ShutdownStmt, *ast.BinlogStmt,
		*ast.HelpStmt:
		c.Kind = Admin
		walk = false
	default:
		walk = false
	}
	if walk {
		cl.w = walker{c: c, call: c.Kind == Call, readOnly: cl.opt.ReadOnlyFunctions}
		st.Accept(&cl.w)
		c = cl.w.c
		if c.Kind == Call {
			c.StoredFunc = false
		}
	}
	c.Statements = 1
	c.finish()
	return c
}

// showClass routes SHOW: schema metadata is the same on a replica; server
// state (variables, status, processes, binlogs, replication) is not.
func showClass(c *Class, x *ast.ShowStmt) {
	c.Kind = Show
	switch x.Tp {
	case ast.ShowDatabases, ast.ShowTables, ast.ShowTableStatus, ast.ShowColumns, ast.ShowIndex,
		ast.ShowCreateTable, ast.ShowCreateView, ast.ShowCreateDatabase, ast.ShowCreateSequence,
		ast.ShowCreateProcedure, ast.ShowCreateUser, ast.ShowTriggers, ast.ShowEvents, ast.ShowProcedureStatus,
		ast.ShowFunctionStatus, ast.ShowCharset, ast.ShowCollation, ast.ShowEngines, ast.ShowPlugins,
		ast.ShowPrivileges, ast.ShowGrants:
		c.Route = Replica
	case ast.ShowWarnings, ast.ShowErrors:
		c.UsesFoundRows = true
	case ast.ShowStatus:
		c.ShowsSessionStatus, c.ShowsGlobalStatus = !x.GlobalScope, x.GlobalScope
	}
}

func setClass(c *Class, x *ast.SetStmt) {
	c.Kind = Set
	global := true
	for _, v := range x.Variables {
		if !v.IsGlobal {
			global = false
		}
		switch {
		case !v.IsSystem && v.Name != ast.SetNames && v.Name != ast.SetCharset:
			c.SetsUserVar = true
		case v.IsSystem && !v.IsGlobal && strings.EqualFold(v.Name, "autocommit"):
			on := autocommitValue(v.Value)
			c.Autocommit = &on
			c.litDep = true
		}
	}
	if global && len(x.Variables) > 0 {
		c.Kind = Admin // server-wide, not session state to replay
	}
}

// autocommitValue reads the value of SET autocommit; anything but a clear
// 1/ON/TRUE/DEFAULT counts as 0, which keeps the session on the primary.
func autocommitValue(e ast.ExprNode) bool {
	switch v := e.(type) {
	case *ast.DefaultExpr:
		return true
	case *ast.ColumnNameExpr: // ON, OFF parse as names
		return v.Name.Name.L == "on" || v.Name.Name.L == "true"
	case ast.ValueExpr:
		switch x := v.GetValue().(type) {
		case int64:
			return x != 0
		case uint64:
			return x != 0
		case string:
			if n, err := strconv.ParseInt(x, 10, 64); err == nil {
				return n != 0
			}
			return strings.EqualFold(x, "on") || strings.EqualFold(x, "true")
		}
	}
	return false
}

// walker collects what expressions reveal: functions, variables, locking
// and INTO clauses, in subqueries too.
type walker struct {
	c        Class
	call     bool // CALL arguments: @var may be an OUT parameter
	readOnly *FunctionSet
}

func (w *walker) Enter(n ast.Node) (ast.Node, bool) {
	c := &w.c
	switch x := n.(type) {
	case *ast.SelectStmt:
		if x.LockInfo != nil && x.LockInfo.LockType != ast.SelectLockNone {
			c.Locking = true
		}
		if x.SelectStmtOpts != nil && x.SelectStmtOpts.CalcFoundRows {
			c.CalcFoundRows = true
		}
		if x.SelectIntoOpt != nil {
			c.SideEffects = true
			if x.SelectIntoOpt.Tp == ast.SelectIntoVars {
				c.SetsUserVar = true
			}
		}
	case *ast.FuncCallExpr:
		switch {
		case x.Schema.L != "":
			c.StoredFunc = c.StoredFunc || !w.readOnly.has(x.Schema.L, x.FnName.L)
		case isBuiltin(x.FnName.L) || !w.readOnly.has("", x.FnName.L):
			funcFlags(c, x.FnName.L, len(x.Args) == 0, false)
		}
	case *ast.VariableExpr:
		switch {
		case x.IsSystem:
			sysVarFlags(c, x.Name)
		case x.Value != nil:
			c.SetsUserVar = true
		case w.call:
			c.SetsUserVar, c.ReadsUserVar = true, true
		default:
			c.ReadsUserVar = true
		}
	case *ast.PrepareStmt:
		if x.SQLVar != nil {
			c.ReadsUserVar = true
		}
	case *ast.TableName:
		if x.Schema.L == "information_schema" && x.Name.L == "session_status" {
			c.ShowsSessionStatus = true
		}
	}
	return n, false
}

func (w *walker) Leave(n ast.Node) (ast.Node, bool) { return n, true }

// funcFlags sets what calling the lowercase function name implies. The
// token scan cannot tell functions from other names before '(' (tables,
// types, keywords), so lexical callers skip the stored-function guess.
func funcFlags(c *Class, name string, noArgs, lexical bool) {
	switch name {
	case "get_lock", "release_lock", "release_all_locks":
		c.UsesLock, c.SideEffects = true, true
	case "is_used_lock", "is_free_lock": // locks live on the primary
		c.UsesLock = true
	case "nextval", "setval":
		c.SideEffects = true
	case "lastval":
		c.UsesLastInsertID = true
	case "last_insert_id":
		c.UsesLastInsertID = true
		c.SideEffects = c.SideEffects || !noArgs // LAST_INSERT_ID(expr) sets the value
	case "found_rows", "row_count":
		c.UsesFoundRows = true
	case "connection_id":
		c.UsesConnectionID = true
	default:
		if !lexical && !isBuiltin(name) {
			c.StoredFunc = true
		}
	}
}

// sysVarFlags sets what reading @@name implies.
func sysVarFlags(c *Class, name string) {
	name = strings.ToLower(name)
	switch name {
	case "warning_count", "error_count":
		c.UsesFoundRows = true
	case "identity", "last_insert_id", "insert_id":
		c.UsesLastInsertID = true
	case "pseudo_thread_id":
		c.UsesConnectionID = true
	case "read_only", "super_read_only", "innodb_read_only", "server_id", "server_uuid", "hostname", "port",
		"log_bin", "last_gtid", "gtid_binlog_pos", "gtid_binlog_state", "gtid_current_pos", "gtid_slave_pos",
		"gtid_executed", "gtid_purged", "rpl_semi_sync_master_enabled", "rpl_semi_sync_slave_enabled":
		c.ServerVar = true
	}
}
