package router

import "strings"

// A small MySQL tokenizer. The parser's own scanner is not exported, and we
// need two things it does not give: our hint comments (NormalizeDigest and
// the parser drop comments), and a token view of statements the parser
// rejects (MariaDB syntax), so that they still get a Kind and conservative
// flags.

type tokKind uint8

const (
	tEOF     tokKind = iota
	tWord            // keyword or unquoted identifier
	tIdent           // `quoted identifier`
	tString          // '...' or "..."
	tNumber          // 12, 1.5e3, 0x1F
	tUserVar         // @name, @'name', @`name`
	tSysVar          // @@name, @@session.name
	tPunct           // one byte, or ":="
)

type token struct {
	kind tokKind
	text string // a slice of the input: no allocation
}

func (t token) is(word string) bool { return t.kind == tWord && equalFoldASCII(t.text, word) }

// equalFoldASCII reports whether a and b are equal ignoring the case of
// ASCII letters only, as MariaDB matches keywords. strings.EqualFold also
// folds other letters ('ſ' is 's', 'K' (Kelvin) is 'k'): a word that
// matched a keyword that way would be one the server does not see, and one
// the byte-wise counts (processlist.go) would miss.
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
func (t token) punct(p string) bool { return t.kind == tPunct && t.text == p }

type lexer struct {
	s       string
	i       int
	version bool // inside /*! ... */ or /*M! ... */, whose content MariaDB executes
	hint    Target
}

func isWordByte(c byte) bool {
	return c == '_' || c == '$' || c >= 0x80 || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func (l *lexer) next() token {
	for l.i < len(l.s) {
		c := l.s[l.i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			l.i++
			continue
		case c == '#':
			l.lineComment(l.i + 1)
			continue
		case c == '-' && strings.HasPrefix(l.s[l.i:], "--") &&
			(l.i+2 == len(l.s) || l.s[l.i+2] <= ' '):
			l.lineComment(l.i + 2)
			continue
		case c == '*' && l.version && strings.HasPrefix(l.s[l.i:], "*/"):
			l.version = false
			l.i += 2
			continue
		case c == '/' && strings.HasPrefix(l.s[l.i:], "/*"):
			rest := l.s[l.i+2:]
			if strings.HasPrefix(rest, "!") || strings.HasPrefix(rest, "M!") {
				l.i += 2 + strings.IndexByte(rest, '!') + 1
				for l.i < len(l.s) && l.s[l.i] >= '0' && l.s[l.i] <= '9' {
					l.i++
				}
				l.version = true
				continue
			}
			end := strings.Index(rest, "*/")
			if end < 0 {
				end = len(rest)
				l.i = len(l.s)
			} else {
				l.i += 2 + end + 2
			}
			l.sawComment(rest[:end])
			continue
		}
		start := l.i
		switch {
		case c == '\'' || c == '"':
			l.quoted(c)
			return token{tString, l.s[start:l.i]}
		case c == '`':
			l.quoted(c)
			return token{tIdent, l.s[start:l.i]}
		case c == '@':
			if strings.HasPrefix(l.s[l.i:], "@@") {
				l.i += 2
				for l.i < len(l.s) && (isWordByte(l.s[l.i]) || l.s[l.i] == '.') {
					l.i++
				}
				return token{tSysVar, l.s[start:l.i]}
			}
			l.i++
			if l.i < len(l.s) && (l.s[l.i] == '\'' || l.s[l.i] == '"' || l.s[l.i] == '`') {
				l.quoted(l.s[l.i])
			} else {
				for l.i < len(l.s) && (isWordByte(l.s[l.i]) || l.s[l.i] == '.') {
					l.i++
				}
			}
			if l.i == start+1 {
				return token{tPunct, "@"}
			}
			return token{tUserVar, l.s[start:l.i]}
		case c >= '0' && c <= '9':
			for l.i < len(l.s) && (isWordByte(l.s[l.i]) || l.s[l.i] == '.') {
				l.i++
			}
			return token{tNumber, l.s[start:l.i]}
		case isWordByte(c):
			for l.i < len(l.s) && isWordByte(l.s[l.i]) {
				l.i++
			}
			return token{tWord, l.s[start:l.i]}
		case c == ':' && strings.HasPrefix(l.s[l.i:], ":="):
			l.i += 2
			return token{tPunct, ":="}
		}
		l.i++
		return token{tPunct, l.s[start:l.i]}
	}
	return token{}
}

// quoted skips a quoted string starting at l.i; backslash escapes and
// doubled quotes both stay inside. An unterminated string runs to the end.
func (l *lexer) quoted(q byte) {
	l.i++
	for l.i < len(l.s) {
		c := l.s[l.i]
		l.i++
		switch {
		case c == '\\' && q != '`':
			l.i++
		case c == q:
			if l.i < len(l.s) && l.s[l.i] == q {
				l.i++
				continue
			}
			return
		}
	}
	l.i = len(l.s)
}

func (l *lexer) lineComment(from int) {
	end := strings.IndexByte(l.s[from:], '\n')
	if end < 0 {
		end = len(l.s) - from
	}
	l.sawComment(l.s[from : from+end])
	l.i = from + end
}

const hintWord = "switchyard"

// sawComment reads a hint: switchyard:route=primary|replica, spaces allowed
// around ':' and '=', master/slave accepted as synonyms.
func (l *lexer) sawComment(body string) {
	for l.hint == NoTarget {
		i := strings.Index(body, hintWord)
		if i < 0 {
			return
		}
		body = body[i+len(hintWord):]
		v, ok := strings.CutPrefix(strings.TrimLeft(body, " \t"), ":")
		if !ok {
			continue
		}
		if v, ok = strings.CutPrefix(strings.TrimLeft(v, " \t"), "route"); !ok {
			continue
		}
		if v, ok = strings.CutPrefix(strings.TrimLeft(v, " \t"), "="); !ok {
			continue
		}
		v = strings.TrimLeft(v, " \t")
		n := 0
		for n < len(v) && isWordByte(v[n]) {
			n++
		}
		switch {
		case strings.EqualFold(v[:n], "primary"), strings.EqualFold(v[:n], "master"):
			l.hint = Primary
		case strings.EqualFold(v[:n], "replica"), strings.EqualFold(v[:n], "slave"):
			l.hint = Replica
		}
	}
}

// findHint returns the first switchyard route hint in a comment of sql.
func findHint(sql string) Target {
	if !strings.Contains(sql, hintWord) {
		return NoTarget
	}
	l := lexer{s: sql}
	for l.next().kind != tEOF {
	}
	return l.hint
}

// lexClassify classifies what the parser rejected, from tokens: Unparsed,
// routed to the primary, flags erring towards pinning. The exception is
// MariaDB's SET STATEMENT ... FOR <statement>, which the parser lacks: inner
// classifies the statement, which usually parses.
func lexClassify(sql string, inner func(string) Class) Class {
	return tokenClassify(sql, inner, false)
}

// tokenClassify is lexClassify, or with scanOnly the classification of a
// statement too big to parse (scan.go): the same token scan, stricter about
// names before '(' and DML keywords inside a read, so that what it does
// not flag is known safe on a replica and the statements are not Unparsed.
func tokenClassify(sql string, inner func(string) Class, scanOnly bool) Class {
	var acc Class
	route := NoTarget
	l := lexer{s: sql}
	for n := 0; ; {
		c, more := lexStatement(&l, inner, scanOnly)
		if c.Statements > 0 {
			acc = combine(acc, c, n)
			route = mergeRoute(route, &c)
			n += c.Statements
			acc.Statements = n
		}
		if !more {
			break
		}
	}
	if acc.Statements == 0 {
		return Class{Kind: Other, Route: Primary}
	}
	acc.Route = route
	if acc.Unparsed || route == NoTarget {
		acc.Route = Primary
	}
	// The token scan and NormalizeDigest's lexer do not agree on every odd
	// input, so a digest does not pin down this class: cache it by text only.
	acc.litDep = true
	return acc
}

// lexStatement classifies tokens up to the next top-level ';'. It returns
// more=false at the end of input.
func lexStatement(l *lexer, inner func(string) Class, scanOnly bool) (c Class, more bool) {
	var w [6]token // the first tokens, which decide the Kind
	var p1, p2 token
	n := 0
	compound := false // CREATE PROCEDURE ... BEGIN ...; ...; END: the body's ';' do not split
	intoVars := false
	readOnly := false // READ ONLY among START TRANSACTION's characteristics
	dml := false      // scanOnly: INSERT, UPDATE, DELETE or REPLACE as a statement keyword
	readLock := false // scanOnly: READ LOCK, as in FLUSH TABLES ... WITH READ LOCK
	// scanOnly: a name before '(' that may be a stored function. Only a
	// read's route depends on it, and in other statements such names are
	// mostly tables and columns (INSERT INTO t (a, b)).
	storedFunc := false
	// scanOnly: BEGIN and CASE blocks of a compound statement not yet
	// ENDed; at zero the compound statement is over and ';' splits again.
	blocks := 0
	depth := 0
	stmtStart := l.i
	for {
		t := l.next()
		if t.kind == tEOF {
			more = false
			break
		}
		if t.punct(";") && (!compound || scanOnly && blocks == 0) {
			more = true
			break
		}
		if n < len(w) {
			w[n] = t
			if n == 1 && w[0].is("SET") && t.is("STATEMENT") {
				return setStatement(l, inner)
			}
			if n == 1 && w[0].is("BEGIN") && t.is("NOT") {
				compound = true // BEGIN NOT ATOMIC ... END
				blocks = 1
			}
		}
		if n > 0 && w[0].is("CREATE") && t.is("BEGIN") {
			compound = true // a routine or trigger body: its ';' do not end the statement
		}
		if scanOnly && compound {
			switch {
			case t.is("BEGIN"), t.is("CASE") && !p1.is("END"):
				blocks++
			case t.is("END"):
				// END IF, END LOOP, ... close blocks not counted.
				save := *l
				if nt := l.next(); !nt.is("IF") && !nt.is("LOOP") && !nt.is("WHILE") && !nt.is("REPEAT") && !nt.is("FOR") {
					blocks--
				}
				*l = save
			}
		}
		n++
		switch t.kind {
		case tWord:
			switch {
			case t.is("SQL_CALC_FOUND_ROWS"):
				c.CalcFoundRows = true
			case (t.is("UPDATE") || t.is("SHARE")) && p1.is("FOR"), t.is("SHARE") && p1.is("IN") && p2.is("LOCK"):
				c.Locking = true
			case (t.is("OUTFILE") || t.is("DUMPFILE")) && p1.is("INTO"):
				c.SideEffects = true
			case t.is("FOR") && p1.is("VALUE") && p2.is("NEXT"):
				c.SideEffects = true
			case t.is("FOR") && p1.is("VALUE") && p2.is("PREVIOUS"):
				c.UsesLastInsertID = true
			case t.is("ONLY") && p1.is("READ"):
				readOnly = true
			case t.is("TEMPORARY") && n <= 4 && w[0].is("CREATE"):
				c.CreatesTempTable = true
			case t.is("TEMPORARY") && n == 2 && w[0].is("DROP"):
				c.DropsTempTable = true
			case scanOnly && (t.is("UPDATE") || t.is("DELETE")):
				dml = true // WITH ... UPDATE/DELETE reads first; FOR UPDATE was the case above
			case scanOnly && t.is("LOCK") && p1.is("READ"):
				readLock = true
			case scanOnly && (t.is("INSERT") || t.is("REPLACE")):
				save := *l
				dml = dml || !l.next().punct("(") // INSERT(...) and REPLACE(...) are string functions
				*l = save
			}
		case tUserVar:
			save := *l
			nt := l.next()
			*l = save
			switch {
			case nt.punct(":="), p1.is("INTO"), intoVars && p1.punct(","),
				w[0].is("SET") && nt.punct("=") && depth == 0:
				c.SetsUserVar = true
			case w[0].is("CALL"): // OUT parameters
				c.SetsUserVar, c.ReadsUserVar = true, true
			default:
				c.ReadsUserVar = true
			}
		case tSysVar:
			sysVarFlags(&c, sysVarName(t.text[2:]))
		case tPunct:
			switch t.text {
			case "@": // a user variable with an empty name
				c.ReadsUserVar = c.ReadsUserVar || scanOnly
			case "(":
				depth++
				switch {
				case p1.kind == tWord && !p2.punct("."):
					save := *l
					empty := l.next().punct(")")
					*l = save
					var buf [32]byte
					name := string(lowerASCII(buf[:0], p1.text)) // does not escape: no allocation
					switch {
					case !scanOnly:
						funcFlags(&c, name, empty, true)
					case syntaxBeforeParen(name):
					case isBuiltin(name):
						funcFlags(&c, name, empty, true)
					default:
						storedFunc = true
					}
				case scanOnly && (p1.kind == tWord || p1.kind == tIdent || p1.kind == tNumber):
					storedFunc = true // schema.f(...), `f`(...), 1f(...)
				}
			case ")":
				depth--
			}
		}
		if t.is("INTO") {
			intoVars = true
		} else if t.kind != tUserVar && !t.punct(",") {
			intoVars = false
		}
		p2, p1 = p1, t
	}
	if n == 0 {
		return c, more
	}
	c.Statements, c.Unparsed = 1, !scanOnly
	lexKind(&c, w, readOnly)
	c.Kills = textKills(l.s[stmtStart:l.i])
	if c.Kills && c.Kind == DDL && definesBody(l.s[stmtStart:l.i]) {
		// A KILL in a stored body is the server's (bodies.go). Without
		// scanOnly a compound body runs to the end of the input, where
		// more statements may follow it.
		c.Kills = !scanOnly && killsOutsideBodies(l.s[stmtStart:l.i])
		c.RunAlone = !c.Kills
	}
	if scanOnly {
		scanKind(&c, w, readOnly, readLock)
		if dml && c.Kind == Read {
			c.Kind = Write
		}
		c.StoredFunc = storedFunc && c.Kind == Read
	}
	if c.Kind == Set {
		lexAutocommit(&c, l.s[stmtStart:])
	}
	c.finish()
	return c, more
}

// textKills reports whether sql, run as it is, would run a KILL: a
// statement of it starts with KILL (version comments count, as MariaDB
// runs their content), also one inside a compound statement (BEGIN NOT
// ATOMIC ... END, IF ... THEN, loops, labels), or runs a literal text that
// does (EXECUTE IMMEDIATE, PREPARE ... FROM).
func textKills(sql string) bool {
	l := lexer{s: sql}
	first := true
	for prev, t := (token{}), l.next(); t.kind != tEOF; prev, t = t, l.next() {
		switch {
		case t.punct(";"), t.punct(":"), t.is("BEGIN"), t.is("ATOMIC"), t.is("THEN"), t.is("ELSE"), t.is("DO"),
			t.is("LOOP"), t.is("REPEAT"):
			// What may follow is a statement of a compound one.
			first = true
			continue
		case first && t.is("KILL"):
			return true
		case t.kind == tString && (prev.is("IMMEDIATE") || prev.is("FROM")) && textKills(unquoteString(t.text)):
			return true
		}
		first = false
	}
	return false
}

// textAffectsNewLogins reports whether a statement of sql changes what a
// new login gets: accounts or privileges (GRANT, REVOKE, CREATE [OR
// REPLACE] / ALTER / DROP / RENAME USER or ROLE, SET PASSWORD, SET DEFAULT
// ROLE, FLUSH ... PRIVILEGES) or a global variable (SET GLOBAL x, SET
// @@global.x). Version comments count, as MariaDB runs their content.
func textAffectsNewLogins(sql string) bool {
	l := lexer{s: sql}
	var words []token // the statement's first words
	flush, set := false, false
	for t := l.next(); ; t = l.next() {
		end := t.kind == tEOF || t.punct(";")
		if !end && len(words) < 4 {
			words = append(words, t)
		}
		if flush && t.is("PRIVILEGES") ||
			set && (t.is("GLOBAL") || t.kind == tSysVar && len(t.text) > 9 && strings.EqualFold(t.text[:9], "@@global.")) {
			return true
		}
		if len(words) == 1 {
			flush, set = words[0].is("FLUSH"), words[0].is("SET")
		}
		if end || len(words) == 4 {
			if affectsNewLogins(words) {
				return true
			}
		}
		if t.kind == tEOF {
			return false
		}
		if end {
			words, flush, set = words[:0], false, false
		}
	}
}

func affectsNewLogins(w []token) bool {
	at := func(i int, word string) bool { return i < len(w) && w[i].is(word) }
	userOrRole := func(i int) bool { return at(i, "USER") || at(i, "ROLE") }
	switch {
	case at(0, "GRANT"), at(0, "REVOKE"):
		return true
	case at(0, "CREATE"):
		return userOrRole(1) || at(1, "OR") && at(2, "REPLACE") && userOrRole(3)
	case at(0, "ALTER"), at(0, "DROP"), at(0, "RENAME"):
		return userOrRole(1)
	case at(0, "SET"):
		return at(1, "PASSWORD") || at(1, "DEFAULT") && at(2, "ROLE")
	}
	return false
}

// unquoteString returns the text of a string literal token: quotes
// stripped, doubled quotes and backslash escapes undone.
func unquoteString(lit string) string {
	if len(lit) < 2 {
		return ""
	}
	q := lit[0]
	body := lit[1 : len(lit)-1]
	var b strings.Builder
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c == '\\' && i+1 < len(body):
			i++
			b.WriteByte(body[i])
		case c == q && i+1 < len(body) && body[i+1] == q:
			i++
			b.WriteByte(q)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// lexKind sets Kind and the transaction flags from the first words.
func lexKind(c *Class, w [6]token, readOnly bool) {
	shift := func(k int) {
		var s [6]token
		copy(s[:], w[k:])
		w = s
	}
	if w[0].punct("(") {
		shift(1)
	}
	// MariaDB's ANALYZE [FORMAT=JSON] <statement> runs the statement.
	if w[0].is("ANALYZE") && !w[1].is("TABLE") && !w[1].is("LOCAL") && !w[1].is("NO_WRITE_TO_BINLOG") {
		if w[1].is("FORMAT") {
			shift(4)
		} else {
			shift(1)
		}
	}
	first := w[0]
	switch {
	case first.is("SELECT"), first.is("WITH"), first.is("VALUES"), first.is("TABLE"), first.is("DO"):
		c.Kind = Read
	case first.is("INSERT"), first.is("REPLACE"), first.is("UPDATE"), first.is("DELETE"), first.is("LOAD"):
		c.Kind = Write
	case first.is("DROP") && w[1].is("PREPARE"):
		c.Kind = Deallocate
	case first.is("CREATE"), first.is("ALTER"), first.is("DROP"), first.is("RENAME"), first.is("TRUNCATE"):
		c.Kind = DDL
		c.EndsTx = !c.CreatesTempTable && !c.DropsTempTable
	case first.is("BEGIN") && !w[1].is("NOT"):
		c.Kind, c.StartsTx, c.EndsTx = Begin, true, true
	case first.is("START") && w[1].is("TRANSACTION"):
		c.Kind, c.StartsTx, c.EndsTx = Begin, true, true
		if readOnly {
			c.Kind, c.ReadOnlyTx, c.Route = BeginReadOnly, true, Replica
		}
	case first.is("COMMIT"):
		c.Kind, c.EndsTx = Commit, true
	case first.is("ROLLBACK") && (w[1].is("TO") || w[2].is("TO")):
		c.Kind = Savepoint
	case first.is("ROLLBACK"):
		c.Kind, c.EndsTx = Rollback, true
	case first.is("SAVEPOINT"), first.is("RELEASE"):
		c.Kind = Savepoint
	case first.is("XA"):
		c.Kind = XA
		c.StartsTx = w[1].is("START") || w[1].is("BEGIN")
		c.EndsTx = w[1].is("COMMIT") || w[1].is("ROLLBACK")
	case first.is("SET") && (w[1].is("GLOBAL") || w[1].kind == tSysVar && strings.HasPrefix(strings.ToLower(w[1].text), "@@global.")):
		c.Kind = Admin
	case first.is("SET"):
		c.Kind = Set
	case first.is("USE"):
		c.Kind, c.litDep = Use, true
		c.Schema = unquoteIdent(w[1])
	case first.is("SHOW"), first.is("DESC"), first.is("DESCRIBE"), first.is("EXPLAIN"):
		c.Kind = Show
	case first.is("LOCK"):
		c.Kind, c.EndsTx = LockTables, true
	case first.is("UNLOCK"):
		c.Kind = UnlockTables
	case first.is("PREPARE"):
		c.Kind = Prepare
	case first.is("EXECUTE"):
		c.Kind = Execute
	case first.is("DEALLOCATE"):
		c.Kind = Deallocate
	case first.is("CALL"):
		c.Kind = Call
	case first.is("GRANT"), first.is("REVOKE"), first.is("FLUSH"), first.is("RESET"), first.is("ANALYZE"),
		first.is("OPTIMIZE"), first.is("REPAIR"), first.is("CHECK"), first.is("CACHE"), first.is("PURGE"),
		first.is("CHANGE"), first.is("START"), first.is("STOP"), first.is("INSTALL"), first.is("UNINSTALL"):
		c.Kind, c.EndsTx = Admin, true // statements that commit implicitly
	case first.is("KILL"), first.is("CHECKSUM"), first.is("SHUTDOWN"), first.is("BINLOG"), first.is("HELP"):
		c.Kind = Admin
	}
}

// setStatement handles MariaDB's SET STATEMENT var=value[, ...] FOR <stmt>:
// the variables last for that one statement, so it is the statement that
// counts. The rest of the input is the statement.
func setStatement(l *lexer, inner func(string) Class) (Class, bool) {
	depth := 0
	for {
		t := l.next()
		switch {
		case t.kind == tEOF:
			c := Class{Kind: Set, Statements: 1, Unparsed: true}
			c.finish()
			return c, false
		case t.punct("("):
			depth++
		case t.punct(")"):
			depth--
		case t.is("FOR") && depth == 0:
			rest := l.s[l.i:]
			l.i = len(l.s)
			c := inner(rest)       // the rest of the input: it may hold more statements
			if c.Statements == 0 { // FOR with nothing after it
				c = Class{Kind: Set, Statements: 1, Unparsed: true}
				c.finish()
			}
			return c, false
		}
	}
}

// lexAutocommit finds autocommit assignments in an unparsed SET.
func lexAutocommit(c *Class, sql string) {
	l := lexer{s: sql}
	var prev token
	for t := l.next(); t.kind != tEOF && !t.punct(";"); t = l.next() {
		isAC := t.is("autocommit") ||
			t.kind == tSysVar && strings.EqualFold(sysVarName(t.text[2:]), "autocommit") &&
				!strings.HasPrefix(strings.ToLower(t.text), "@@global.")
		if !isAC || prev.is("GLOBAL") {
			prev = t
			continue
		}
		eq := l.next()
		if !eq.punct("=") && !eq.punct(":=") {
			prev = eq
			continue
		}
		v := l.next()
		on := false // anything but a clear 1/ON/TRUE counts as 0: the safe side
		switch {
		case v.kind == tNumber && v.text == "1", v.is("ON"), v.is("TRUE"), v.is("DEFAULT"),
			v.kind == tString && len(v.text) >= 2 && (v.text[1:len(v.text)-1] == "1" || strings.EqualFold(v.text[1:len(v.text)-1], "ON")):
			on = true
		}
		c.Autocommit = &on
		c.litDep = true
		prev = v
	}
}

func unquoteIdent(t token) string {
	switch t.kind {
	case tWord:
		return t.text
	case tIdent:
		if len(t.text) >= 2 {
			return strings.ReplaceAll(t.text[1:len(t.text)-1], "``", "`")
		}
	}
	return ""
}

// sysVarName strips the scope from session.name / global.name / local.name.
func sysVarName(s string) string {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// lowerASCII appends s in lower case to dst. Only ASCII letters change:
// the names it is for are ASCII, and others match none of them either way.
func lowerASCII(dst []byte, s string) []byte {
	for i := range len(s) {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// DroppedSchema returns the schema a DROP DATABASE / DROP SCHEMA statement
// names, or "" for any other statement. MariaDB leaves a session whose
// current schema it drops in no schema, which the proxy must follow.
func DroppedSchema(sql string) string {
	l := lexer{s: sql}
	if !l.next().is("DROP") {
		return ""
	}
	if t := l.next(); !t.is("DATABASE") && !t.is("SCHEMA") {
		return ""
	}
	t := l.next()
	if t.is("IF") {
		if !l.next().is("EXISTS") {
			return ""
		}
		t = l.next()
	}
	name := unquoteIdent(t)
	for next := l.next(); next.kind != tEOF; next = l.next() {
		if !next.punct(";") {
			return "" // more than the one statement
		}
	}
	return name
}
