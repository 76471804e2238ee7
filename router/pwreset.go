package router

// AccountName is an account as a statement names it: Host is "%" when the
// statement gives none, as MariaDB takes it.
type AccountName struct{ User, Host string }

// AccountRename is one pair of a RENAME USER.
type AccountRename struct{ From, To AccountName }

// PasswordErrorReset is what a statement, once it has succeeded, does to
// MariaDB's counts of wrong passwords in a row (max_password_errors): the
// server keeps one per account in its privilege cache, which FLUSH
// PRIVILEGES rebuilds (every count reset) and which ALTER USER, GRANT and
// REVOKE of privileges, CREATE OR REPLACE USER and DROP USER rebuild for
// the accounts they name (their counts reset). RENAME USER keeps the
// count under the new name; SET PASSWORD, role grants, CREATE USER of an
// account that exists (IF NOT EXISTS) keep it.
type PasswordErrorReset struct {
	All      bool
	Accounts []AccountName
	// CurrentUser: CURRENT_USER is among the accounts.
	CurrentUser bool
	Renamed     []AccountRename
}

// PasswordErrorResets reads the resets of sql, a statement string that has
// succeeded (router.Class.AffectsNewLogins said it changes accounts). It is
// a token scan; a text with version comments resets nothing.
func PasswordErrorResets(sql string) PasswordErrorReset {
	var r PasswordErrorReset
	if hasVersionComment(sql) {
		// Its content runs or not by the server's version, which the
		// token scan does not know: a text that succeeded may not have
		// run the FLUSH PRIVILEGES it shows.
		return r
	}
	l := lexer{s: sql}
	var stmt []token
	for {
		t := l.next()
		if t.kind == tEOF || t.punct(";") {
			r.statement(stmt)
			if t.kind == tEOF {
				return r
			}
			stmt = stmt[:0]
			continue
		}
		stmt = append(stmt, t)
	}
}

// statement adds the resets of one statement's tokens.
func (r *PasswordErrorReset) statement(w []token) {
	at := func(i int, word string) bool { return i < len(w) && w[i].is(word) }
	switch {
	case at(0, "FLUSH"):
		for _, t := range w[1:] {
			if t.is("PRIVILEGES") {
				r.All = true
			}
		}
	case at(0, "ALTER") && at(1, "USER"):
		i := 2
		if at(i, "IF") && at(i+1, "EXISTS") {
			i += 2
		}
		r.accountList(w[i:])
	case at(0, "DROP") && at(1, "USER"):
		i := 2
		if at(i, "IF") && at(i+1, "EXISTS") {
			i += 2
		}
		r.accountList(w[i:])
	case at(0, "CREATE") && at(1, "OR") && at(2, "REPLACE") && at(3, "USER"):
		r.accountList(w[4:])
	case at(0, "GRANT"):
		// GRANT privileges ON what TO accounts; a role grant has no ON.
		if on := topLevelWord(w, "ON", 1); on > 0 {
			if to := topLevelWord(w, "TO", on+1); to > 0 {
				r.accountList(w[to+1:])
			}
		}
	case at(0, "REVOKE"):
		// REVOKE privileges ON what FROM accounts, or REVOKE ALL
		// [PRIVILEGES], GRANT OPTION FROM accounts; a role revoke has
		// neither.
		from := topLevelWord(w, "FROM", 1)
		if from > 0 && (at(1, "ALL") || topLevelWord(w[:from], "ON", 1) > 0) {
			r.accountList(w[from+1:])
		}
	case at(0, "RENAME") && at(1, "USER"):
		rest := w[2:]
		for len(rest) > 0 {
			from, n := accountName(rest)
			if n == 0 || n >= len(rest) || !rest[n].is("TO") {
				return
			}
			to, m := accountName(rest[n+1:])
			if m == 0 {
				return
			}
			r.Renamed = append(r.Renamed, AccountRename{From: from, To: to})
			rest = rest[n+1+m:]
			if len(rest) == 0 || !rest[0].punct(",") {
				return
			}
			rest = rest[1:]
		}
	}
}

// accountList adds the accounts of a comma-separated list of account
// specifications (an account, then options: IDENTIFIED BY ..., which have
// no comma outside parentheses). Whatever follows the list (REQUIRE, WITH,
// ...) has no comma either.
func (r *PasswordErrorReset) accountList(w []token) {
	for len(w) > 0 {
		if w[0].is("CURRENT_USER") {
			r.CurrentUser = true
		} else if a, n := accountName(w); n > 0 {
			r.Accounts = append(r.Accounts, a)
		}
		next := topLevelPunct(w, ",")
		if next < 0 {
			return
		}
		w = w[next+1:]
	}
}

// accountName reads an account name at the start of w: user, 'user',
// `user`, each optionally followed by @host (quoted or not). n is the
// tokens it took, 0 when w does not start with one.
func accountName(w []token) (a AccountName, n int) {
	if len(w) == 0 {
		return a, 0
	}
	switch w[0].kind {
	case tWord:
		a.User = w[0].text
	case tString:
		a.User = unquoteString(w[0].text)
	case tIdent:
		a.User = unquoteIdent(w[0])
	default:
		return a, 0
	}
	a.Host, n = "%", 1
	switch {
	case len(w) > 1 && w[1].kind == tUserVar:
		a.Host, n = hostPart(w[1].text[1:]), 2
	case len(w) > 2 && w[1].punct("@"):
		switch w[2].kind {
		case tWord, tNumber:
			a.Host, n = w[2].text, 3
		case tString:
			a.Host, n = unquoteString(w[2].text), 3
		case tIdent:
			a.Host, n = unquoteIdent(w[2]), 3
		}
	}
	return a, n
}

// hostPart is the host of an @host token's text (without the @).
func hostPart(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '\'', '"':
		return unquoteString(s)
	case '`':
		return unquoteIdent(token{tIdent, s})
	}
	return s
}

// topLevelWord is the index of the first word w[i] == word, from, outside
// parentheses; -1 when there is none.
func topLevelWord(w []token, word string, from int) int {
	depth := 0
	for i := from; i < len(w); i++ {
		switch {
		case w[i].punct("("):
			depth++
		case w[i].punct(")"):
			depth--
		case depth == 0 && w[i].is(word):
			return i
		}
	}
	return -1
}

// topLevelPunct is topLevelWord for punctuation, from the start.
func topLevelPunct(w []token, p string) int {
	depth := 0
	for i := range w {
		switch {
		case w[i].punct("("):
			depth++
		case w[i].punct(")"):
			depth--
		case depth == 0 && w[i].punct(p):
			return i
		}
	}
	return -1
}
