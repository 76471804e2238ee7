package router

import (
	"strconv"
	"strings"
)

// KILL and CONNECTION_ID() through a proxy. Clients see the proxy's
// connection ids, which mean nothing to a server (where they name some
// other connection, perhaps another client's on a shared pooled
// connection). So the proxy carries out KILL itself, and CONNECTION_ID()
// is replaced by the id the client knows before the statement goes on.

// Kill is a KILL statement the proxy can carry out.
type Kill struct {
	// Query: KILL QUERY (interrupt the statement); else KILL [CONNECTION]
	// (end the session).
	Query bool
	// ID is the connection id named; Self means CONNECTION_ID(), the
	// session's own.
	ID   uint64
	Self bool
	// Expr is the id when it is an expression (@id, 2 + 1, (SELECT 1)):
	// the proxy has a server evaluate it (SELECT Expr), as the server would
	// before killing. It may call CONNECTION_ID(), which must be rewritten
	// first.
	Expr string
	// QueryID: KILL QUERY ID, where ID or Expr is a server's query id (its
	// process list's QUERY_ID), not a connection id.
	QueryID bool
	// ByUser: KILL [CONNECTION|QUERY] USER, of every session of User.
	ByUser bool
	User   KillUser
}

// KillUser is the account KILL ... USER names.
type KillUser struct {
	// Name is the user name; Host the client host the session must have,
	// "" for any (no host given, MariaDB's '%').
	Name, Host string
	// Current: CURRENT_USER, the killing session's own user.
	Current bool
}

// KillError says why a KILL cannot be carried out, with the MariaDB code
// that fits (0: the generic 1105).
type KillError struct {
	Code    uint16
	Message string
}

func (e *KillError) Error() string { return e.Message }

// MariaDB's ER_SUBQUERIES_NOT_SUPPORTED, which it answers for a KILL
// whose id expression reads a table or sequence or calls a stored
// function; ER_PARSE_ERROR.
const (
	errSubqueriesNotSupported = 1970
	errParse                  = 1064
)

// ParseKill reads sql, a single KILL statement: KILL [HARD|SOFT]
// [CONNECTION|QUERY|QUERY ID] id, where id is a number or CONNECTION_ID(),
// possibly in parentheses, or an expression (Kill.Expr), or KILL
// [HARD|SOFT] [CONNECTION|QUERY] USER user. What MariaDB refuses, and
// several statements in one string, get a KillError.
func ParseKill(sql string) (Kill, error) {
	l := lexer{s: sql}
	var toks []token
	var starts []int // each token's offset in sql
	for t := l.next(); t.kind != tEOF; t = l.next() {
		toks = append(toks, t)
		starts = append(starts, l.i-len(t.text))
		if len(toks) > 256 {
			return Kill{}, &KillError{Message: "switchyard: KILL's connection id expression is too long"}
		}
	}
	for len(toks) > 0 && toks[len(toks)-1].punct(";") {
		toks = toks[:len(toks)-1]
	}
	var k Kill
	for _, t := range toks {
		if t.punct(";") {
			return k, &KillError{Message: "switchyard carries out KILL itself and runs it only as a statement of its own"}
		}
	}
	i := 0
	next := func() token {
		if i < len(toks) {
			i++
			return toks[i-1]
		}
		return token{}
	}
	peek := func() token {
		if i < len(toks) {
			return toks[i]
		}
		return token{}
	}
	if !next().is("KILL") {
		return k, &KillError{Message: "switchyard carries out KILL itself and runs it only as a statement of its own"}
	}
	if peek().is("HARD") || peek().is("SOFT") {
		next()
	}
	switch {
	case peek().is("CONNECTION"):
		next()
	case peek().is("QUERY"):
		next()
		k.Query = true
		if peek().is("ID") {
			next()
			k.QueryID = true
		}
	}
	if !k.QueryID && peek().is("USER") {
		// After QUERY ID, USER is a column name to MariaDB (KILL QUERY ID
		// user 'x' is its 1054): the expression below.
		next()
		return killUser(k, toks[i:])
	}
	exprAt := i
	depth := 0
	for peek().punct("(") {
		next()
		depth++
	}
	simple := true
	switch t := next(); {
	case t.kind == tNumber:
		id, err := strconv.ParseUint(t.text, 10, 64)
		if err != nil {
			simple = false
			break
		}
		k.ID = id
	case t.is("CONNECTION_ID") && next().punct("(") && next().punct(")"):
		k.Self = true
	default:
		simple = false
	}
	for ; simple && depth > 0; depth-- {
		if !next().punct(")") {
			simple = false
		}
	}
	if simple && i == len(toks) {
		return k, nil
	}
	if exprAt >= len(toks) {
		return Kill{}, &KillError{Code: errParse, Message: "You have an error in your SQL syntax; KILL needs a connection id"}
	}
	if err := killExprError(toks[exprAt:]); err != nil {
		return Kill{}, err
	}
	last := len(toks) - 1 // trailing semicolons are gone from toks
	return Kill{Query: k.Query, QueryID: k.QueryID, Expr: sql[starts[exprAt] : starts[last]+len(toks[last].text)]}, nil
}

// killUser reads the account of KILL ... USER: name, 'name', `name`, each
// with an optional @host in the same forms, or CURRENT_USER[()].
func killUser(k Kill, toks []token) (Kill, error) {
	errSyntax := &KillError{Code: errParse, Message: "You have an error in your SQL syntax; KILL USER needs an account name"}
	k.ByUser = true
	name := func(t token) (string, bool) {
		switch t.kind {
		case tString:
			return unquoteString(t.text), true
		case tWord, tIdent:
			return unquoteIdent(t), true
		}
		return "", false
	}
	if len(toks) == 0 {
		return Kill{}, errSyntax
	}
	if toks[0].is("CURRENT_USER") {
		rest := toks[1:]
		if len(rest) == 2 && rest[0].punct("(") && rest[1].punct(")") {
			rest = nil
		}
		if len(rest) != 0 {
			return Kill{}, errSyntax
		}
		k.User.Current = true
		return k, nil
	}
	n, ok := name(toks[0])
	if !ok {
		return Kill{}, errSyntax
	}
	k.User.Name = n
	switch rest := toks[1:]; {
	case len(rest) == 0:
	case len(rest) == 1 && rest[0].kind == tUserVar:
		// The lexer reads @host, @'host' and @`host` as a user variable.
		h := token{kind: tWord, text: rest[0].text[1:]}
		switch {
		case strings.HasPrefix(h.text, "'") || strings.HasPrefix(h.text, `"`):
			h.kind = tString
		case strings.HasPrefix(h.text, "`"):
			h.kind = tIdent
		}
		k.User.Host, _ = name(h)
	case len(rest) == 2 && rest[0].punct("@"):
		if k.User.Host, ok = name(rest[1]); !ok {
			return Kill{}, errSyntax
		}
	default:
		return Kill{}, errSyntax
	}
	if k.User.Host == "%" {
		k.User.Host = ""
	}
	return k, nil
}

// killExprError refuses, with MariaDB's own error, an id expression that
// MariaDB refuses: one that reads a table (a subquery with FROM), a
// sequence or calls a stored function. Other expressions, subqueries
// without tables included, the server evaluates.
func killExprError(toks []token) error {
	for i, t := range toks {
		fn := t.kind == tWord && i+1 < len(toks) && toks[i+1].punct("(")
		if t.is("FROM") || t.is("NEXTVAL") || t.is("LASTVAL") || t.is("SETVAL") ||
			(t.is("NEXT") || t.is("PREVIOUS")) && i+1 < len(toks) && toks[i+1].is("VALUE") ||
			fn && !isBuiltin(strings.ToLower(t.text)) && !isKeywordBeforeParen(t) {
			return &KillError{Code: errSubqueriesNotSupported, Message: "KILL does not support subqueries or stored functions"}
		}
	}
	return nil
}

// isKeywordBeforeParen: words that precede a parenthesis in an expression
// without being function calls.
func isKeywordBeforeParen(t token) bool {
	for _, w := range []string{"SELECT", "IN", "EXISTS", "AND", "OR", "NOT", "XOR", "DIV", "MOD", "IS", "LIKE",
		"BETWEEN", "CASE", "WHEN", "THEN", "ELSE", "ANY", "ALL", "SOME", "DISTINCT", "BINARY", "INTERVAL", "ROW"} {
		if t.is(w) {
			return true
		}
	}
	return false
}

// RewriteConnectionID returns sql with every call CONNECTION_ID(), and every
// read of @@pseudo_thread_id (the same id as a variable), replaced by id,
// outside strings and comments; a text that is one stored definition
// (SoleBody) is left as it is: its body is the server's (bodies.go), and
// it must run alone (Class.RunAlone). An item of the outermost select list
// in which one was replaced, and which has no alias, gets its text as
// written as one, so the result's column is named as the server would
// name it (`@a - connection_id()`, not `@a - 42`).
func RewriteConnectionID(sql string, id uint64) string {
	if SoleBody(sql) {
		return sql
	}
	return rewriteConnectionID(sql, id)
}

func rewriteConnectionID(sql string, id uint64) string {
	num := strconv.FormatUint(id, 10)
	return rewriteCalls(sql, func(l *lexer, t token) (string, bool) {
		switch {
		case t.kind == tSysVar && isPseudoThreadID(t.text):
			// @@pseudo_thread_id is CONNECTION_ID() as a variable; an
			// assignment to it stays as it is.
			save := *l
			nt := l.next()
			*l = save
			return num, !nt.punct("=") && !nt.punct(":=")
		case t.is("CONNECTION_ID"):
			save := *l
			if l.next().punct("(") && l.next().punct(")") {
				return num, true
			}
			*l = save
		}
		return "", false
	})
}

// rewriteCalls returns sql with the expressions replace finds replaced.
// replace is given each token t, with l just after it; when it returns ok,
// the expression from t to where it left l becomes the text it returned.
// An item of the outermost select list in which something was replaced,
// and which has no alias, gets its text as written as one, so that the
// result's column is named as the server would name it.
func rewriteCalls(sql string, replace func(l *lexer, t token) (string, bool)) string {
	var b strings.Builder
	l := lexer{s: sql}
	last := 0 // sql[:last] is written
	depth := 0
	selectList := false
	// The outermost select list's item being read: where it starts and
	// ends in sql, whether something was put in it, whether it has an
	// alias (AS), and its last two tokens (an alias without AS).
	type selectItem struct {
		open, replaced, named bool
		start, end            int
		prev, last            token
	}
	var item selectItem
	endItem := func() {
		// item.end >= last: nothing after the item was written yet.
		if item.open && item.replaced && !item.named && !implicitAlias(item.prev, item.last) && item.end-item.start <= maxAliasLen &&
			item.end >= last {
			b.WriteString(sql[last:item.end])
			b.WriteString(" AS ")
			b.WriteString(quoteIdent(sql[item.start:item.end]))
			last = item.end
		}
		item = selectItem{}
	}
	for t := l.next(); t.kind != tEOF; t = l.next() {
		start := l.i - len(t.text)
		if depth == 0 {
			switch {
			case t.is("SELECT") || t.is("DISTINCT") || t.is("ALL") && selectList && !item.open:
				endItem()
				selectList = true
				continue
			case selectList && t.punct(","):
				endItem()
				continue
			case t.is("FROM") || t.is("INTO") || t.is("WHERE") || t.is("GROUP") || t.is("ORDER") ||
				t.is("HAVING") || t.is("LIMIT") || t.is("UNION") || t.is("EXCEPT") || t.is("INTERSECT") ||
				t.is("WINDOW") || t.is("FOR") || t.punct(";"):
				endItem()
				selectList = false
			}
		}
		switch {
		case t.punct("("):
			depth++
		case t.punct(")"):
			depth--
		}
		inItem := selectList && depth >= 0
		if !inItem && item.open {
			endItem() // a parenthesis closed around the select list
		}
		if inItem && !item.open {
			item = selectItem{open: true, start: start}
		}
		text, replaced := replace(&l, t)
		end := l.i
		if replaced {
			b.WriteString(sql[last:start])
			b.WriteString(text)
			last = end
		}
		if inItem {
			item.replaced = item.replaced || replaced
			item.named = item.named || depth == 0 && t.is("AS")
			item.end = end
			if replaced {
				// The call's tokens count as one operand.
				t = token{kind: tPunct, text: ")"}
			}
			item.prev, item.last = item.last, t
		}
	}
	endItem()
	if last == 0 {
		return sql
	}
	b.WriteString(sql[last:])
	return b.String()
}

// maxAliasLen is the longest alias MariaDB accepts for a column; a longer
// item keeps the name the server gives the replaced text.
const maxAliasLen = 256

// implicitAlias reports whether a select item ending in tokens prev, last
// ends in an alias without AS (`CONNECTION_ID() id`): a name after an
// operand, not after an operator.
func implicitAlias(prev, last token) bool {
	switch last.kind {
	case tWord:
		if isAnyOf(last, []string{"END", "NULL", "TRUE", "FALSE", "UNKNOWN"}) {
			return false
		}
	case tIdent, tString:
	default:
		return false
	}
	switch prev.kind {
	case tPunct:
		return prev.text == ")"
	case tWord:
		return !isAnyOf(prev, []string{"AND", "OR", "XOR", "NOT", "DIV", "MOD", "IS", "LIKE", "IN", "BETWEEN", "REGEXP",
			"RLIKE", "BINARY", "INTERVAL", "CASE", "WHEN", "THEN", "ELSE", "COLLATE", "ESCAPE", "SOUNDS", "SELECT", "DISTINCT"})
	}
	return prev.kind != tEOF
}

// isPseudoThreadID reports whether a system variable token reads the
// session's pseudo_thread_id (not a SET of it: a read has no '=' after,
// which the caller's statement kind decides; global has no such value).
func isPseudoThreadID(tok string) bool {
	name := strings.ToLower(strings.TrimPrefix(tok, "@@"))
	name = strings.TrimPrefix(strings.TrimPrefix(name, "session."), "local.")
	return name == "pseudo_thread_id"
}
