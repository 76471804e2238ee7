package fakemysql

import (
	"strings"
)

// A small lexer for the statements the fake understands: enough to find
// statement boundaries, '?' placeholders, keywords and literals outside
// quotes and comments. It is not a SQL parser.

type segKind uint8

const (
	segCode    segKind = iota
	segQuoted          // '...', "..." or `...`, quotes included
	segComment         // /* ... */ (also /*! ... */), -- ... and # ...
)

type segment struct {
	kind segKind
	text string
}

// lex cuts q into code, quoted and comment segments. An unterminated quote
// or comment runs to the end of q.
func lex(q string) []segment {
	var segs []segment
	start := 0
	code := func(end int) {
		if end > start {
			segs = append(segs, segment{segCode, q[start:end]})
		}
	}
	for i := 0; i < len(q); {
		ch := q[i]
		switch {
		case ch == '\'' || ch == '"' || ch == '`':
			code(i)
			j := i + 1
			for j < len(q) {
				if q[j] == '\\' && ch != '`' {
					j += 2
					continue
				}
				if q[j] == ch {
					if j+1 < len(q) && q[j+1] == ch { // doubled quote
						j += 2
						continue
					}
					j++
					break
				}
				j++
			}
			j = min(j, len(q))
			segs = append(segs, segment{segQuoted, q[i:j]})
			i, start = j, j
		case ch == '/' && i+1 < len(q) && q[i+1] == '*':
			code(i)
			j := len(q)
			if end := strings.Index(q[i+2:], "*/"); end >= 0 {
				j = i + 2 + end + 2
			}
			segs = append(segs, segment{segComment, q[i:j]})
			i, start = j, j
		case ch == '#' || (ch == '-' && i+1 < len(q) && q[i+1] == '-' && (i+2 == len(q) || isSpace(q[i+2]))):
			code(i)
			j := len(q)
			if end := strings.IndexByte(q[i:], '\n'); end >= 0 {
				j = i + end
			}
			segs = append(segs, segment{segComment, q[i:j]})
			i, start = j, j
		default:
			i++
		}
	}
	code(len(q))
	return segs
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func isIdentChar(c byte) bool {
	return c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

// normalize strips comments, surrounding space and trailing ';' from one
// statement.
func normalize(q string) string {
	var b strings.Builder
	for _, s := range lex(q) {
		if s.kind == segComment {
			b.WriteByte(' ')
			continue
		}
		b.WriteString(s.text)
	}
	return strings.TrimSpace(trimSemicolons(strings.TrimSpace(b.String())))
}

func trimSemicolons(s string) string {
	for {
		t := strings.TrimRight(strings.TrimSuffix(s, ";"), " \t\r\n")
		if t == s {
			return s
		}
		s = t
	}
}

// splitStatements cuts a multi-statement query at the ';' outside quotes
// and comments. Pieces that hold nothing but space and comments are dropped.
func splitStatements(q string) []string {
	var out []string
	var cur strings.Builder
	emit := func() {
		if normalize(cur.String()) != "" {
			out = append(out, strings.TrimSpace(cur.String()))
		}
		cur.Reset()
	}
	for _, s := range lex(q) {
		if s.kind != segCode {
			cur.WriteString(s.text)
			continue
		}
		text := s.text
		for {
			i := strings.IndexByte(text, ';')
			if i < 0 {
				cur.WriteString(text)
				break
			}
			cur.WriteString(text[:i])
			emit()
			text = text[i+1:]
		}
	}
	emit()
	return out
}

// countParams counts the '?' placeholders outside quotes and comments.
func countParams(q string) int {
	n := 0
	for _, s := range lex(q) {
		if s.kind == segCode {
			n += strings.Count(s.text, "?")
		}
	}
	return n
}

// substitute replaces the placeholders of q, in order, with vals (SQL
// literals).
func substitute(q string, vals []string) string {
	var b strings.Builder
	k := 0
	for _, s := range lex(q) {
		if s.kind != segCode {
			b.WriteString(s.text)
			continue
		}
		for i := 0; i < len(s.text); i++ {
			if s.text[i] == '?' && k < len(vals) {
				b.WriteString(vals[k])
				k++
				continue
			}
			b.WriteByte(s.text[i])
		}
	}
	return b.String()
}

// splitTop cuts s (already free of comments) at sep outside quotes and
// parentheses.
func splitTop(s string, sep byte) []string {
	var out []string
	depth, start := 0, 0
	for _, seg := range lexOffsets(s) {
		if seg.kind != segCode {
			continue
		}
		for i := seg.start; i < seg.end; i++ {
			switch s[i] {
			case '(':
				depth++
			case ')':
				depth--
			case sep:
				if depth == 0 {
					out = append(out, strings.TrimSpace(s[start:i]))
					start = i + 1
				}
			}
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}

// findKeyword returns the position of the first occurrence of the keyword
// kw (lower case) in s as a whole word, outside quotes and parentheses, or -1.
func findKeyword(s, kw string) int {
	depth := 0
	for _, seg := range lexOffsets(s) {
		if seg.kind != segCode {
			continue
		}
		for i := seg.start; i < seg.end; i++ {
			switch s[i] {
			case '(':
				depth++
				continue
			case ')':
				depth--
				continue
			}
			if depth != 0 || i+len(kw) > seg.end || !strings.EqualFold(s[i:i+len(kw)], kw) {
				continue
			}
			if (i > 0 && isIdentChar(s[i-1])) || (i+len(kw) < len(s) && isIdentChar(s[i+len(kw)])) {
				continue
			}
			return i
		}
	}
	return -1
}

type offsetSeg struct {
	kind       segKind
	start, end int
}

func lexOffsets(s string) []offsetSeg {
	var out []offsetSeg
	pos := 0
	for _, seg := range lex(s) {
		out = append(out, offsetSeg{seg.kind, pos, pos + len(seg.text)})
		pos += len(seg.text)
	}
	return out
}

// hasWord reports whether s starts with the keyword kw (lower case) as a
// whole word, and returns the rest of s after it, trimmed.
func hasWord(s, kw string) (string, bool) {
	if len(s) < len(kw) || !strings.EqualFold(s[:len(kw)], kw) {
		return s, false
	}
	if len(s) > len(kw) && isIdentChar(s[len(kw)]) {
		return s, false
	}
	return strings.TrimSpace(s[len(kw):]), true
}

// hasWords is hasWord for a sequence of keywords separated by space.
func hasWords(s string, kws ...string) (string, bool) {
	rest := s
	for _, kw := range kws {
		var ok bool
		if rest, ok = hasWord(rest, kw); !ok {
			return s, false
		}
	}
	return rest, true
}

// isQuoted reports whether s is exactly one quoted string ('...' or "..."),
// optionally with a character set introducer (_utf8mb4'...', _binary'...')
// or N'...', and returns its value.
func isQuoted(s string) (string, bool) {
	if len(s) > 0 && (s[0] == '_' || s[0] == 'N' || s[0] == 'n') {
		i := 1
		for i < len(s) && isIdentChar(s[i]) {
			i++
		}
		if i < len(s) && (s[i] == '\'' || s[i] == '"') && (s[0] == '_' || i == 1) {
			s = strings.TrimSpace(s[i:])
		}
	}
	if len(s) < 2 || (s[0] != '\'' && s[0] != '"') {
		return "", false
	}
	segs := lex(s)
	if len(segs) != 1 || segs[0].kind != segQuoted || s[len(s)-1] != s[0] {
		return "", false
	}
	return unquote(s), true
}

// unquote returns the value of a quoted string or identifier, quotes
// included in s, undoing doubled quotes and (except for backquotes) the
// backslash escapes of MySQL.
func unquote(s string) string {
	if len(s) == 0 {
		return s
	}
	q := s[0]
	if q != '\'' && q != '"' && q != '`' {
		return s
	}
	body := s[1:]
	if len(body) > 0 && body[len(body)-1] == q {
		body = body[:len(body)-1]
	}
	var b strings.Builder
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c == q && i+1 < len(body) && body[i+1] == q:
			b.WriteByte(q)
			i++
		case c == '\\' && q != '`' && i+1 < len(body):
			i++
			switch body[i] {
			case '0':
				b.WriteByte(0)
			case 'b':
				b.WriteByte('\b')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'Z':
				b.WriteByte(0x1a)
			case '%', '_':
				b.WriteByte('\\')
				b.WriteByte(body[i])
			default:
				b.WriteByte(body[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// quoteString returns s as a single-quoted SQL literal with MySQL's
// backslash escapes; unquote reverses it.
func quoteString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case 0:
			b.WriteString(`\0`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case 0x1a:
			b.WriteString(`\Z`)
		case '\'', '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// identifier returns the name s stands for when s is a plain or backquoted
// identifier (possibly qualified with dots, kept as written).
func identifier(s string) (string, bool) {
	if len(s) >= 2 && s[0] == '`' && s[len(s)-1] == '`' {
		return unquote(s), true
	}
	if s == "" {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		if !isIdentChar(s[i]) && s[i] != '.' {
			return "", false
		}
	}
	return s, true
}

// isNumber reports whether s is a numeric literal (optionally signed,
// decimal point and exponent allowed).
func isNumber(s string) bool {
	if s == "" {
		return false
	}
	i := 0
	if s[0] == '-' || s[0] == '+' {
		i++
	}
	digits, dot, exp := 0, false, false
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot && !exp:
			dot = true
		case (c == 'e' || c == 'E') && digits > 0 && !exp:
			exp = true
			if i+1 < len(s) && (s[i+1] == '-' || s[i+1] == '+') {
				i++
			}
			digits = 0
		default:
			return false
		}
	}
	return digits > 0
}
