package fakemysql

import (
	"bytes"
	"database/sql"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/backend/gtid"
	"switchyard/wire"
)

// stmtKind says how a statement takes part in transactions.
type stmtKind uint8

const (
	kindControl stmtKind = iota // SET, USE, SHOW, BEGIN, COMMIT, ...: no implicit transaction
	kindData                    // reads and writes: start a transaction when autocommit is off
	kindDDL                     // commits implicitly before and after
)

// comQuery answers COM_QUERY; false: the connection failed.
func (c *Conn) comQuery(q string) bool {
	stmts := []string{q}
	if c.caps&mysql.CLIENT_MULTI_STATEMENTS != 0 {
		stmts = splitStatements(q)
	}
	if len(stmts) == 0 || normalize(stmts[0]) == "" {
		c.writeErr(mysql.NewError(mysql.ER_EMPTY_QUERY, "Query was empty"))
		return true
	}
	for i, st := range stmts {
		res, ok := c.eval(st, false)
		if !ok {
			return false
		}
		if res.Err != nil {
			c.writeErr(res.Err)
			return true
		}
		if res.Raw != nil {
			for _, p := range res.Raw {
				c.writePacket(p)
			}
			return true
		}
		status := c.status()
		if i < len(stmts)-1 {
			status |= mysql.SERVER_MORE_RESULTS_EXISTS
		}
		start := len(c.out)
		if len(res.Columns) == 0 {
			c.writeOK(res.AffectedRows, res.InsertID, status, res.Info)
		} else {
			c.writeTextResult(res, status)
			c.state = c.state[:0]
		}
		if res.PauseAfter > 0 {
			rest := append([]byte(nil), c.out[start+packetsLen(c.out[start:], res.PauseAfter):]...)
			c.out = c.out[:len(c.out)-len(rest)]
			if c.flush() != nil || c.sleep(res.Delay) {
				return false
			}
			c.out = append(c.out, rest...)
		}
		if res.CloseAfter > 0 {
			// Dies in the middle of the answer: what is queued before it,
			// and the first packets of it, go out; then the connection ends.
			c.out = c.out[:start+packetsLen(c.out[start:], res.CloseAfter)]
			c.flush()
			return false
		}
	}
	return true
}

// packetsLen is the length of the first n packets in b (all of b when it
// holds fewer).
func packetsLen(b []byte, n int) int {
	at := 0
	for ; n > 0 && at+wire.HeaderSize <= len(b); n-- {
		at = min(len(b), at+wire.HeaderSize+wire.PayloadLen(b[at:]))
	}
	return at
}

// eval runs one statement through Options.Handle and the built-ins, then
// applies its effect on transactions and GTIDs. prepared says it comes from
// COM_STMT_EXECUTE. The result is never nil; false: the connection failed
// (during LOAD DATA LOCAL INFILE).
func (c *Conn) eval(text string, prepared bool) (*Result, bool) {
	var res *Result
	kind := kindData
	if h := c.s.opt.Handle; h != nil {
		if r := h(c, text); r != nil {
			cp := *r
			res = &cp
			if res.PauseAfter == 0 {
				c.sleep(res.Delay)
			}
		}
	}
	if res == nil {
		var ok bool
		if res, kind, ok = c.builtin(text, prepared); !ok {
			return nil, false
		}
	}
	if res.Err != nil {
		return res, true
	}
	if res.Write {
		switch {
		case c.s.isReadOnly():
			return errResult(readOnlyError()), true
		case kind != kindDDL && c.inTrans && c.trxReadOnly:
			return errResult(mysql.NewError(mysql.ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION,
				"Cannot execute statement in a READ ONLY transaction")), true
		}
		if kind == kindDDL {
			c.commit()
			c.gtid()
		} else if c.inTrans || !c.autocommit {
			c.inTrans, c.trxDirty = true, true
		} else {
			c.gtid()
		}
	}
	if kind == kindData && !c.autocommit {
		c.inTrans = true
	}
	return res, true
}

func errResult(e *mysql.MyError) *Result { return &Result{Err: e} }

func readOnlyError() *mysql.MyError {
	return mysql.NewError(mysql.ER_OPTION_PREVENTS_STATEMENT,
		"The MariaDB server is running with the --read-only option so it cannot execute this statement")
}

func parseError(text string) *mysql.MyError {
	near := text
	if len(near) > 80 {
		near = near[:80]
	}
	return mysql.NewError(mysql.ER_PARSE_ERROR, fmt.Sprintf(
		"You have an error in your SQL syntax; check the manual that corresponds to your MariaDB server version for the right syntax to use near '%s' at line 1", near))
}

// gtid gives the write just committed its GTID.
func (c *Conn) gtid() {
	c.lastGTID = c.s.newGTID()
	if c.tracks("last_gtid") {
		c.trackVar("last_gtid", c.lastGTID)
	}
}

// commit ends the transaction, giving it a GTID if it wrote.
func (c *Conn) commit() {
	if c.trxDirty {
		c.gtid()
	}
	c.inTrans, c.trxDirty, c.trxReadOnly = false, false, false
}

func (c *Conn) rollback() {
	c.inTrans, c.trxDirty, c.trxReadOnly = false, false, false
}

func (c *Conn) tracks(name string) bool { return c.trackAll || c.tracked[name] }

// trackVar adds a system variable change to the next OK packet's session
// state.
func (c *Conn) trackVar(name, value string) {
	c.state = wire.AppendSystemVariable(c.state, name, value)
}

// trackSchema adds a schema change to the next OK packet's session state
// (session_track_schema is on by default in MariaDB).
func (c *Conn) trackSchema(schema string) {
	c.state = wire.AppendSchemaChange(c.state, schema)
}

// builtin answers the statements the fake knows. false: the connection
// failed.
func (c *Conn) builtin(text string, prepared bool) (*Result, stmtKind, bool) {
	norm := normalize(text)
	n := 0
	for n < len(norm) && isIdentChar(norm[n]) {
		n++
	}
	first := strings.ToLower(norm[:n])
	switch first {
	case "select":
		return c.selectStmt(norm), kindData, true
	case "show":
		return c.show(norm), kindControl, true
	case "set":
		return c.set(norm), kindControl, true
	case "use":
		name, ok := identifier(strings.TrimSpace(norm[3:]))
		if !ok {
			return errResult(parseError(norm)), kindControl, true
		}
		if e := c.use(name); e != nil {
			return errResult(e), kindControl, true
		}
		return &Result{}, kindControl, true
	case "begin", "start":
		return c.begin(norm), kindControl, true
	case "commit":
		c.commit()
		return &Result{}, kindControl, true
	case "rollback":
		if _, ok := hasWords(norm, "rollback", "to"); ok {
			return &Result{}, kindControl, true
		}
		if _, ok := hasWords(norm, "rollback", "work", "to"); ok {
			return &Result{}, kindControl, true
		}
		c.rollback()
		return &Result{}, kindControl, true
	case "savepoint", "release":
		return &Result{}, kindControl, true
	case "insert", "update", "delete", "replace":
		return &Result{AffectedRows: 1, Write: true}, kindData, true
	case "create", "drop", "alter", "truncate", "rename":
		return c.ddl(norm), kindDDL, true
	case "load":
		if prepared {
			return errResult(mysql.NewError(mysql.ER_UNSUPPORTED_PS,
				"This command is not supported in the prepared statement protocol yet")), kindControl, true
		}
		if rest, ok := hasWords(norm, "load", "data", "local", "infile"); ok {
			return c.loadDataLocal(norm, rest)
		}
	}
	return errResult(parseError(norm)), kindControl, true
}

// use changes the current schema (USE, COM_INIT_DB).
func (c *Conn) use(name string) *mysql.MyError {
	if !c.s.hasSchema(name) {
		return mysql.NewError(mysql.ER_BAD_DB_ERROR, fmt.Sprintf("Unknown database '%s'", name))
	}
	c.schema = name
	c.trackSchema(name)
	return nil
}

func (c *Conn) begin(norm string) *Result {
	rest, ok := hasWord(norm, "begin")
	if ok {
		rest, _ = hasWord(rest, "work")
	} else if rest, ok = hasWords(norm, "start", "transaction"); !ok {
		return errResult(parseError(norm))
	}
	readOnly := false
	for _, opt := range splitTop(rest, ',') {
		switch strings.Join(strings.Fields(strings.ToLower(opt)), " ") {
		case "":
		case "read only":
			readOnly = true
		case "read write", "with consistent snapshot":
		default:
			return errResult(parseError(norm))
		}
	}
	c.commit() // BEGIN commits an open transaction
	c.inTrans, c.trxReadOnly = true, readOnly
	return &Result{}
}

// ddl answers CREATE, DROP, ALTER, TRUNCATE and RENAME; CREATE and DROP
// DATABASE change the schemas that exist.
func (c *Conn) ddl(norm string) *Result {
	res := &Result{Write: true}
	for _, op := range []string{"create", "drop"} {
		rest, ok := hasWord(norm, op)
		if !ok {
			continue
		}
		if r, ok := hasWord(rest, "database"); ok {
			rest = r
		} else if r, ok := hasWord(rest, "schema"); ok {
			rest = r
		} else {
			break
		}
		rest, _ = hasWords(rest, "if", "not", "exists")
		rest, _ = hasWords(rest, "if", "exists")
		name, ok := identifier(strings.Fields(rest + " ")[0])
		if !ok {
			return errResult(parseError(norm))
		}
		if !c.s.isReadOnly() {
			c.s.setSchema(name, op == "create")
		}
		res.AffectedRows = 1
	}
	return res
}

// loadDataLocal runs LOAD DATA LOCAL INFILE '<name>' ...: it asks the
// client for the file and counts its lines. false: the connection failed.
func (c *Conn) loadDataLocal(norm, rest string) (*Result, stmtKind, bool) {
	if c.caps&mysql.CLIENT_LOCAL_FILES == 0 {
		return errResult(mysql.NewError(mysql.ER_NOT_ALLOWED_COMMAND,
			"The used command is not allowed with this MariaDB version")), kindData, true
	}
	segs := lex(rest)
	if len(segs) == 0 || segs[0].kind != segQuoted {
		return errResult(parseError(norm)), kindData, true
	}
	if c.s.isReadOnly() {
		return errResult(readOnlyError()), kindData, true
	}
	name := unquote(segs[0].text)
	c.writePacket(append([]byte{wire.InfileHeader}, name...))
	if c.flush() != nil {
		return nil, kindData, false
	}
	lines := 0
	for {
		p, err := c.readPacket()
		if err != nil {
			return nil, kindData, false
		}
		if len(p) == 0 {
			break
		}
		lines += bytes.Count(p, []byte{'\n'})
	}
	return &Result{
		AffectedRows: uint64(lines),
		Info:         fmt.Sprintf("Records: %d  Deleted: 0  Skipped: 0  Warnings: 0", lines),
		Write:        true,
	}, kindData, true
}

// show answers SHOW ALL SLAVES STATUS (and SHOW SLAVE/REPLICA STATUS).
func (c *Conn) show(norm string) *Result {
	words := strings.Join(strings.Fields(strings.ToLower(norm)), " ")
	switch words {
	case "show all slaves status", "show slave status", "show replica status", "show all replicas status":
	default:
		return errResult(parseError(norm))
	}
	res := &Result{Columns: []string{
		"Connection_name", "Slave_SQL_State", "Slave_IO_State", "Master_Host", "Master_User", "Master_Port",
		"Slave_IO_Running", "Slave_SQL_Running", "Last_Errno", "Last_Error", "Seconds_Behind_Master",
		"Last_IO_Errno", "Last_IO_Error", "Last_SQL_Errno", "Last_SQL_Error", "Using_Gtid", "Gtid_IO_Pos",
		"Gtid_Slave_Pos",
	}}
	c.s.mu.Lock()
	r, pos := copyReplica(c.s.replica), c.s.gtidPos
	c.s.mu.Unlock()
	if r == nil {
		return res
	}
	yes := func(b bool) sql.NullString {
		if b {
			return str("Yes")
		}
		return str("No")
	}
	behind := sql.NullString{}
	if r.SecondsBehind >= 0 && r.IORunning && r.SQLRunning {
		behind = str(strconv.Itoa(r.SecondsBehind))
	}
	ioState, sqlState := "", ""
	ioRunning := yes(r.IORunning)
	switch {
	case r.IORunning:
		ioState = "Waiting for master to send event"
	case r.IOConnecting:
		ioState, ioRunning = "Connecting to master", str("Connecting")
	}
	if r.SQLRunning {
		sqlState = "Slave has read all relay log; waiting for more updates"
	}
	res.Rows = [][]sql.NullString{{
		str(""), str(sqlState), str(ioState), str(r.SourceHost), str("repl"), str(strconv.Itoa(r.SourcePort)),
		ioRunning, yes(r.SQLRunning), str("0"), str(""), behind,
		str("0"), str(""), str("0"), str(""), str("Slave_Pos"), str(pos),
		str(pos),
	}}
	return res
}

func str(s string) sql.NullString { return sql.NullString{String: s, Valid: true} }

// set answers SET: variables (session, global and user ones, all kept per
// connection), NAMES, CHARACTER SET and TRANSACTION.
func (c *Conn) set(norm string) *Result {
	rest, _ := hasWord(norm, "set")
	if r, ok := hasWord(rest, "names"); ok {
		cs, collate, _ := strings.Cut(strings.ToLower(r), " collate ")
		cs = unquoteValue(strings.TrimSpace(cs))
		for _, v := range []string{"character_set_client", "character_set_connection", "character_set_results"} {
			c.setVar(v, cs)
		}
		if collate = strings.TrimSpace(collate); collate != "" {
			c.setVar("collation_connection", unquoteValue(collate))
		}
		return &Result{}
	}
	for _, kws := range [][]string{{"character", "set"}, {"charset"}} {
		if r, ok := hasWords(rest, kws...); ok {
			cs := unquoteValue(strings.ToLower(strings.TrimSpace(r)))
			c.setVar("character_set_client", cs)
			c.setVar("character_set_results", cs)
			return &Result{}
		}
	}
	tx := rest
	for _, scope := range []string{"session", "global", "local"} {
		if r, ok := hasWord(tx, scope); ok {
			tx = r
			break
		}
	}
	if r, ok := hasWord(tx, "transaction"); ok {
		if lvl, ok := hasWords(r, "isolation", "level"); ok {
			lvl = strings.ToUpper(strings.Join(strings.Fields(lvl), "-"))
			c.setVar("transaction_isolation", lvl)
			c.setVar("tx_isolation", lvl)
		}
		return &Result{}
	}
	for _, a := range splitTop(rest, ',') {
		if e := c.assign(a); e != nil {
			return errResult(e)
		}
	}
	return &Result{}
}

// assign runs one "name = value" of SET.
func (c *Conn) assign(a string) *mysql.MyError {
	target, value, ok := cutAssign(a)
	if !ok {
		return parseError(a)
	}
	name := ""
	switch {
	case strings.HasPrefix(target, "@@"):
		name = strings.TrimPrefix(target, "@@")
		for _, scope := range []string{"session.", "global.", "local."} {
			if len(name) > len(scope) && strings.EqualFold(name[:len(scope)], scope) {
				name = name[len(scope):]
				break
			}
		}
	case strings.HasPrefix(target, "@"):
		n, ok := identifier(unquoteValue(target[1:]))
		if !ok {
			return parseError(a)
		}
		name = "@" + n
	default:
		name = target
		for _, scope := range []string{"session", "global", "local"} {
			if r, ok := hasWord(name, scope); ok {
				name = r
				break
			}
		}
	}
	if !strings.HasPrefix(name, "@") {
		n, ok := identifier(name)
		if !ok {
			return parseError(a)
		}
		name = n
	}
	name = strings.ToLower(name)
	switch name {
	case "autocommit":
		on, ok := boolValue(value)
		if !ok {
			return mysql.NewError(mysql.ER_WRONG_VALUE_FOR_VAR,
				fmt.Sprintf("Variable 'autocommit' can't be set to the value of '%s'", value))
		}
		if on && !c.autocommit {
			c.commit() // turning autocommit on commits
		}
		c.autocommit = on
		if c.tracks(name) {
			c.trackVar(name, onOff(on))
		}
		return nil
	case "session_track_system_variables":
		c.setTracked(value)
		c.setVar(name, c.trackedList())
		return nil
	}
	if strings.EqualFold(value, "default") || strings.EqualFold(value, "null") {
		delete(c.vars, name)
		return nil
	}
	c.setVar(name, unquoteValue(value))
	return nil
}

// setVar records a variable and reports it in the session state when it is
// tracked.
func (c *Conn) setVar(name, value string) {
	c.vars[name] = value
	if !strings.HasPrefix(name, "@") && c.tracks(name) {
		c.trackVar(name, value)
	}
}

// cutAssign splits "target = value" (or :=) at the first top-level '='.
func cutAssign(a string) (target, value string, ok bool) {
	for _, seg := range lexOffsets(a) {
		if seg.kind != segCode {
			continue
		}
		if i := strings.IndexByte(a[seg.start:seg.end], '='); i >= 0 {
			i += seg.start
			t := strings.TrimSpace(a[:i])
			t = strings.TrimSpace(strings.TrimSuffix(t, ":"))
			v := strings.TrimSpace(a[i+1:])
			return t, v, t != "" && v != ""
		}
	}
	return "", "", false
}

// unquoteValue returns the value of a quoted string or identifier, or s.
func unquoteValue(s string) string {
	if v, ok := isQuoted(s); ok {
		return v
	}
	if len(s) >= 2 && s[0] == '`' && s[len(s)-1] == '`' {
		return unquote(s)
	}
	return s
}

func boolValue(v string) (bool, bool) {
	switch strings.ToLower(unquoteValue(v)) {
	case "1", "on", "true":
		return true, true
	case "0", "off", "false":
		return false, true
	}
	return false, false
}

func onOff(b bool) string {
	if b {
		return "ON"
	}
	return "OFF"
}

// setTracked sets session_track_system_variables from the expression of a
// SET: the names in its string literals, plus the current list when it
// refers to @@session_track_system_variables (as in CONCAT_WS(',',
// @@session_track_system_variables, 'last_gtid')); '*' tracks everything.
func (c *Conn) setTracked(expr string) {
	names := map[string]bool{}
	all := false
	if strings.Contains(strings.ToLower(expr), "@@session_track_system_variables") ||
		strings.Contains(strings.ToLower(expr), "@@session.session_track_system_variables") {
		for n := range c.tracked {
			names[n] = true
		}
		all = c.trackAll
	}
	var lists []string
	for _, s := range lex(expr) {
		if s.kind == segQuoted && s.text[0] != '`' {
			lists = append(lists, unquote(s.text))
		}
	}
	if len(lists) == 0 { // an unquoted name
		if n, ok := identifier(strings.TrimSpace(expr)); ok && !strings.EqualFold(n, "default") {
			lists = append(lists, n)
		} else if strings.EqualFold(strings.TrimSpace(expr), "default") {
			lists = append(lists, defaultTracked)
		}
	}
	for _, l := range lists {
		if l == "," { // CONCAT_WS's separator
			continue
		}
		for _, n := range strings.Split(l, ",") {
			n = strings.ToLower(strings.TrimSpace(n))
			switch n {
			case "":
			case "*":
				all = true
			default:
				names[n] = true
			}
		}
	}
	c.tracked, c.trackAll = names, all
}

func (c *Conn) trackedList() string {
	if c.trackAll {
		return "*"
	}
	l := make([]string, 0, len(c.tracked))
	for n := range c.tracked {
		l = append(l, n)
	}
	sort.Strings(l)
	return strings.Join(l, ",")
}

// defaultVars are the values of system variables a session did not set.
var defaultVars = map[string]string{
	"character_set_client":           "utf8mb4",
	"character_set_connection":       "utf8mb4",
	"character_set_results":          "utf8mb4",
	"collation_connection":           "utf8mb4_general_ci",
	"max_allowed_packet":             "16777216",
	"sql_mode":                       "STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION",
	"time_zone":                      "SYSTEM",
	"tx_isolation":                   "REPEATABLE-READ",
	"transaction_isolation":          "REPEATABLE-READ",
	"tx_read_only":                   "0",
	"transaction_read_only":          "0",
	"wait_timeout":                   "28800",
	"interactive_timeout":            "28800",
	"version_comment":                "fakemysql",
	"gtid_domain_id":                 "0",
	"gtid_strict_mode":               "0",
	"session_track_schema":           "ON",
	"session_track_state_change":     "OFF",
	"session_track_transaction_info": "OFF",
	"lower_case_table_names":         "0",
	"auto_increment_increment":       "1",
}

// sysVar is the value of @@name for this session.
func (c *Conn) sysVar(name string) sql.NullString {
	name = strings.ToLower(name)
	switch name {
	case "autocommit":
		return str(boolNum(c.autocommit))
	case "in_transaction":
		return str(boolNum(c.inTrans))
	case "read_only":
		return str(boolNum(c.s.isReadOnly()))
	case "gtid_current_pos", "gtid_binlog_pos":
		return str(c.s.GTIDPos())
	case "last_gtid":
		return str(c.lastGTID)
	case "server_id":
		return str(strconv.FormatUint(uint64(c.s.opt.ServerID), 10))
	case "version":
		return str(c.s.opt.Version)
	case "session_track_system_variables":
		return str(c.trackedList())
	}
	if v, ok := c.vars[name]; ok {
		return str(v)
	}
	if v, ok := defaultVars[name]; ok {
		return str(v)
	}
	return sql.NullString{}
}

func boolNum(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// selectStmt answers SELECT of a list of literals, variables and a few
// functions (DATABASE(), CONNECTION_ID(), SLEEP(n), ...), optionally FROM
// DUAL.
func (c *Conn) selectStmt(norm string) *Result {
	list, _ := hasWord(norm, "select")
	// One row at most, and a LIMIT of 0 is not worth modelling. (Looked
	// for only when the word is there: the proxy's benchmarks count the
	// fake's allocations too.)
	if strings.Contains(list, "LIMIT") || strings.Contains(list, "limit") {
		if i := findKeyword(list, "limit"); i >= 0 && isNumber(strings.TrimSpace(list[i+len("limit"):])) {
			list = strings.TrimSpace(list[:i])
		}
	}
	if i := findKeyword(list, "from"); i >= 0 {
		if !strings.EqualFold(strings.TrimSpace(list[i+len("from"):]), "dual") {
			return errResult(parseError(norm))
		}
		list = strings.TrimSpace(list[:i])
	}
	res := &Result{}
	var row []sql.NullString
	for _, item := range splitTop(list, ',') {
		expr, name := item, ""
		if i := findKeyword(item, "as"); i > 0 {
			expr = strings.TrimSpace(item[:i])
			name = unquoteValue(strings.TrimSpace(item[i+2:]))
		}
		v, colName, ok := c.evalExpr(expr)
		if !ok {
			return errResult(parseError(norm))
		}
		if name == "" {
			name = colName
		}
		res.Columns = append(res.Columns, name)
		row = append(row, v)
	}
	res.Rows = [][]sql.NullString{row}
	return res
}

// evalExpr evaluates one item of a SELECT list and names its column as
// MariaDB would.
func (c *Conn) evalExpr(e string) (sql.NullString, string, bool) {
	if e == "" {
		return sql.NullString{}, "", false
	}
	if v, ok := isQuoted(e); ok {
		return str(v), v, true
	}
	if isNumber(e) {
		return str(e), e, true
	}
	le := strings.ToLower(e)
	if le == "null" {
		return sql.NullString{}, "NULL", true
	}
	if strings.HasPrefix(e, "@@") {
		name := e[2:]
		for _, scope := range []string{"session.", "local.", "global."} {
			if strings.HasPrefix(strings.ToLower(name), scope) {
				name = name[len(scope):]
				break
			}
		}
		n, ok := identifier(name)
		if !ok {
			return sql.NullString{}, "", false
		}
		return c.sysVar(n), e, true
	}
	if strings.HasPrefix(e, "@") {
		n, ok := identifier(unquoteValue(e[1:]))
		if !ok {
			return sql.NullString{}, "", false
		}
		v, set := c.vars["@"+strings.ToLower(n)]
		return sql.NullString{String: v, Valid: set}, e, true
	}
	fn, args, ok := strings.Cut(le, "(")
	if !ok || !strings.HasSuffix(args, ")") {
		return sql.NullString{}, "", false
	}
	fn, args = strings.TrimSpace(fn), strings.TrimSpace(strings.TrimSuffix(args, ")"))
	switch fn {
	case "database", "schema":
		if args == "" {
			if c.schema == "" {
				return sql.NullString{}, e, true
			}
			return str(c.schema), e, true
		}
	case "connection_id":
		if args == "" {
			return str(strconv.FormatUint(uint64(c.id), 10)), e, true
		}
	case "user", "session_user", "system_user":
		if args == "" {
			return str(c.user + "@" + c.host), e, true
		}
	case "current_user":
		if args == "" {
			return str(c.user + "@%"), e, true
		}
	case "version":
		if args == "" {
			return str(c.s.opt.Version), e, true
		}
	case "master_gtid_wait":
		// As on a replica: 0 once @@gtid_current_pos covers the position,
		// -1 when the timeout passes first.
		parts := splitTop(args, ',')
		if len(parts) != 2 {
			return sql.NullString{}, "", false
		}
		pos, ok := isQuoted(strings.TrimSpace(parts[0]))
		secs, err := strconv.ParseFloat(strings.TrimSpace(parts[1]), 64)
		if !ok || err != nil || secs < 0 {
			return sql.NullString{}, "", false
		}
		deadline := time.Now().Add(time.Duration(secs * float64(time.Second)))
		for !gtid.CoversAll(c.s.GTIDPos(), pos) {
			if time.Now().After(deadline) || c.sleep(time.Millisecond) {
				return str("-1"), e, true
			}
		}
		return str("0"), e, true
	case "sleep":
		secs, err := strconv.ParseFloat(args, 64)
		if err != nil || secs < 0 {
			return sql.NullString{}, "", false
		}
		if c.sleep(time.Duration(secs * float64(time.Second))) {
			return str("1"), e, true
		}
		return str("0"), e, true
	}
	return sql.NullString{}, "", false
}
