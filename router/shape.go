package router

import "strings"

// A statement's shape is the cache's cheap key for statements whose
// literals vary: the text with each number and single-quoted string
// replaced by a marker, each run of whitespace by one space, and everything
// else kept byte for byte (keywords in their case, identifiers, quoted
// identifiers, double-quoted text, comments and hints, operators).
//
// Two texts of the same shape differ only in the values of literals that
// parser.NormalizeDigest replaces by "?" too, and in whitespace, which it
// ignores; so they have the same digest, and the cache may give the second
// what it learned from the first under the rules of its digest tier
// (literal-dependent classes are still classified anew). Shapes are finer
// than digests: case, comments and list lengths still tell them apart, and
// those statements meet at the digest tier as before. A shape costs one
// pass over the text; NormalizeDigest costs about 40 times more (it
// tokenises, lowercases each token, builds a normalised text and hashes
// it), which made it most of the classification of statements sent with
// new literals each time, as PHP and sysbench send them.
//
// Where the lexing would have to guess (a user variable named by a quoted
// string, a marker byte in the text itself) there is no shape, and the
// statement takes the digest path.

const (
	shapeNumber = 0x01 // stands for a number literal
	shapeString = 0x02 // stands for a single-quoted string literal
)

// shapeOf appends the shape of sql to buf; ok is false when sql has none.
func shapeOf(buf []byte, sql string) (_ []byte, ok bool) {
	word := func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '$' || c >= 0x80
	}
	space := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' }
	if strings.IndexByte(sql, shapeNumber) >= 0 || strings.IndexByte(sql, shapeString) >= 0 {
		return buf, false // the markers must mean only what shapeOf put there
	}
	n := len(sql)
	// NormalizeDigest keeps the integers of ORDER BY and GROUP BY lists
	// (column positions); from such a BY on, numbers are kept as written.
	var prevWord, lastWord string
	keepNumbers := false
	// afterNumber: the last token was a number, so a '.' and digits are
	// its fraction; a '.' after a name starts a name (t.1 is a column).
	afterNumber, afterName := false, false
	for i := 0; i < n; {
		c := sql[i]
		number, name := false, false
		switch {
		case space(c):
			nl := false
			for i < n && space(sql[i]) {
				nl = nl || sql[i] == '\n'
				i++
			}
			// A newline ends a line comment: it is not just any space.
			if nl {
				buf = append(buf, '\n')
			} else {
				buf = append(buf, ' ')
			}
			number, name = afterNumber, afterName
		case c == '\'':
			end, ok := quoted(sql, i, '\'')
			if !ok {
				return buf, false
			}
			if afterName && i > 0 && word(sql[i-1]) || strings.IndexByte(sql[i:end], '*') >= 0 {
				// X'..', B'..', N'..', _utf8mb4'..': the parser checks what
				// an introducer's string holds; a string whose value is *
				// ('*', '\*') stays * in a digest. Both kept as written.
				buf = append(buf, sql[i:end]...)
			} else {
				buf = append(buf, shapeString)
			}
			i = end
		case c == '"' || c == '`':
			end, ok := quoted(sql, i, c)
			if !ok {
				return buf, false
			}
			buf = append(buf, sql[i:end]...)
			i = end
			name = c == '`'
		case c == '/' && i+1 < n && sql[i+1] == '*':
			end := indexFrom(sql, i+2, "*/")
			if end < 0 {
				return buf, false
			}
			buf = append(buf, sql[i:end+2]...)
			i = end + 2
		case c == '#' || c == '-' && i+2 < n && sql[i+1] == '-' && (space(sql[i+2]) || sql[i+2] < 0x20):
			end := indexFrom(sql, i, "\n")
			if end < 0 {
				end = n
			}
			buf = append(buf, sql[i:end]...)
			i = end
		case c == '@':
			// A variable: @name, @@name, @@session.name, kept whole.
			j := i + 1
			for j < n && sql[j] == '@' {
				j++
			}
			if j < n && (sql[j] == '\'' || sql[j] == '"' || sql[j] == '`') {
				return buf, false // @'name': a name, not a literal
			}
			for j < n && (word(sql[j]) || sql[j] == '.') {
				j++
			}
			buf = append(buf, sql[i:j]...)
			i = j
		case c >= '0' && c <= '9':
			j := i
			for j < n && sql[j] >= '0' && sql[j] <= '9' {
				j++
			}
			qualified := i > 0 && sql[i-1] == '.' && afterName
			// 1.e5 and 1.abc: the lexer may read the digits as a name.
			nameAfter := j+1 < n && sql[j] == '.' && word(sql[j+1]) && !(sql[j+1] >= '0' && sql[j+1] <= '9')
			switch {
			case j < n && word(sql[j]), qualified, nameAfter, keepNumbers:
				// 1e5, 0x1f, 2abc (another notation, or a name that
				// starts with digits), t.1, ORDER BY 1: kept as written.
				for j < n && word(sql[j]) {
					j++
				}
				buf = append(buf, sql[i:j]...)
				name = true
			default:
				buf = append(buf, shapeNumber)
				number = true
			}
			i = j
		case word(c):
			// Identifiers and keywords, with any digits in them, and
			// introducers such as _utf8mb4 or X before a string.
			j := i
			for j < n && word(sql[j]) {
				j++
			}
			w := sql[i:j]
			buf = append(buf, w...)
			prevWord, lastWord = lastWord, w
			if len(w) == 2 && strings.EqualFold(w, "by") && len(prevWord) == 5 && (strings.EqualFold(prevWord, "order") || strings.EqualFold(prevWord, "group")) {
				keepNumbers = true
			}
			i = j
			name = true
		case c == '.':
			buf = append(buf, c)
			i++
			number, name = afterNumber, afterName
		default:
			buf = append(buf, c)
			i++
		}
		afterNumber, afterName = number, name
	}
	return buf, true
}

// quoted returns the index after the quote that closes the one at sql[i],
// with the lexer's rules: a doubled quote stands for itself and, in
// strings, a backslash escapes the next byte (as the parser reads them).
func quoted(sql string, i int, q byte) (int, bool) {
	for j := i + 1; j < len(sql); j++ {
		switch sql[j] {
		case '\\':
			if q != '`' {
				j++
			}
		case q:
			if j+1 < len(sql) && sql[j+1] == q {
				j++
				continue
			}
			return j + 1, true
		}
	}
	return 0, false
}

// indexFrom is strings.Index from an offset: the index in s, or -1.
func indexFrom(s string, from int, sub string) int {
	if i := strings.Index(s[from:], sub); i >= 0 {
		return from + i
	}
	return -1
}
