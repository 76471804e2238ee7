package admin

import (
	"errors"
	"strings"
)

// A small MySQL tokenizer for the admin's statements: enough to recognise
// the admin commands, split statements, and turn MySQL spellings into
// SQLite's before a statement reaches SQLite. MySQL clients escape strings
// with backslashes and may quote them with double quotes; SQLite does
// neither, so every string literal is re-quoted the SQLite way. Comments
// are dropped; `identifiers` pass as they are (SQLite reads backticks).

type tokenKind uint8

const (
	tWord   tokenKind = iota // keyword or plain identifier
	tIdent                   // `quoted identifier`
	tString                  // 'string' or "string", value unescaped
	tNumber
	tVar   // @@system_variable or @user_variable
	tPunct // any other character; ';' separates statements
)

type token struct {
	kind tokenKind
	text string // as written
	val  string // a string's value, a quoted identifier's name, a word upper-cased
	// space: whitespace or a comment came before the token.
	space bool
}

func (t token) is(word string) bool { return t.kind == tWord && t.val == word }

var errUnterminated = errors.New("unterminated string, identifier or comment")

// lex splits sql into tokens.
func lex(sql string) ([]token, error) {
	var out []token
	space := false
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
			space = true
			continue
		case c == '#' || c == '-' && strings.HasPrefix(sql[i:], "--") && (i+2 == len(sql) || sql[i+2] <= ' '):
			for i < len(sql) && sql[i] != '\n' {
				i++
			}
			space = true
			continue
		case c == '/' && strings.HasPrefix(sql[i:], "/*"):
			end := strings.Index(sql[i+2:], "*/")
			if end < 0 {
				return nil, errUnterminated
			}
			i += end + 4
			space = true
			continue
		}
		t := token{space: space}
		space = false
		start := i
		switch {
		case c == '\'' || c == '"':
			val, n, ok := unquote(sql[i:], c, true)
			if !ok {
				return nil, errUnterminated
			}
			t.kind, t.val, i = tString, val, i+n
		case c == '`':
			val, n, ok := unquote(sql[i:], '`', false)
			if !ok {
				return nil, errUnterminated
			}
			t.kind, t.val, i = tIdent, val, i+n
		case c == '@':
			i++
			if i < len(sql) && sql[i] == '@' {
				i++
			}
			for i < len(sql) && (isWordByte(sql[i]) || sql[i] == '.') {
				i++
			}
			t.kind, t.val = tVar, sql[start:i]
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(sql) && sql[i+1] >= '0' && sql[i+1] <= '9':
			for i < len(sql) && (isWordByte(sql[i]) || sql[i] == '.') {
				i++
			}
			t.kind = tNumber
		case isWordByte(c):
			for i < len(sql) && isWordByte(sql[i]) {
				i++
			}
			t.kind, t.val = tWord, strings.ToUpper(sql[start:i])
		default:
			i++
			t.kind = tPunct
		}
		t.text = sql[start:i]
		out = append(out, t)
	}
	return out, nil
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '$' || c >= 0x80
}

// unquote reads a quoted token starting at s[0] == q and returns its
// value and length. A doubled quote stands for itself; escapes: MySQL's
// backslash sequences in strings.
func unquote(s string, q byte, escapes bool) (string, int, bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == q:
			if i+1 < len(s) && s[i+1] == q {
				b.WriteByte(q)
				i++
				continue
			}
			return b.String(), i + 1, true
		case c == '\\' && escapes && i+1 < len(s):
			i++
			switch e := s[i]; e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '0':
				b.WriteByte(0)
			case 'b':
				b.WriteByte('\b')
			case 'Z':
				b.WriteByte(26)
			case '%', '_':
				// Kept escaped, as MySQL does, for LIKE.
				b.WriteByte('\\')
				b.WriteByte(e)
			default:
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, false
}

// splitStatements cuts tokens at top-level semicolons, dropping empty
// statements.
func splitStatements(toks []token) [][]token {
	var out [][]token
	start := 0
	for i, t := range toks {
		if t.kind == tPunct && t.text == ";" {
			if i > start {
				out = append(out, toks[start:i])
			}
			start = i + 1
		}
	}
	if start < len(toks) {
		out = append(out, toks[start:])
	}
	return out
}

// sqliteString quotes s as a SQLite string literal.
func sqliteString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// render writes tokens back as SQLite text: strings re-quoted, and what
// replace returns for a token (a MySQL variable or function) in its place.
// replace gets the tokens and an index and returns the text and how many
// tokens it stands for, or 0 to keep the token.
func render(toks []token, replace func([]token, int) (string, int)) string {
	var b strings.Builder
	for i := 0; i < len(toks); {
		t := toks[i]
		if t.space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		if replace != nil {
			if text, n := replace(toks, i); n > 0 {
				b.WriteString(text)
				i += n
				continue
			}
		}
		if t.kind == tString {
			b.WriteString(sqliteString(t.val))
		} else {
			b.WriteString(t.text)
		}
		i++
	}
	return b.String()
}

// words returns the upper-cased text of leading word tokens, up to n.
func words(toks []token, n int) []string {
	var out []string
	for _, t := range toks {
		if len(out) == n || t.kind != tWord {
			break
		}
		out = append(out, t.val)
	}
	return out
}
