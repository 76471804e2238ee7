package router

import "sync/atomic"

// DefaultMaxParseSize is limits.max_parse_size's default.
const DefaultMaxParseSize = 256 << 10

// smallStatement: statements up to this size are always parsed (when under
// the maximum), and the parser that read one is kept for the next. Their
// parse costs little (a few hundred KB at worst) and is over in well under
// a scheduler time slice, so few are ever in progress at once.
const smallStatement = 4 << 10

// ParseLimit bounds what the parser may cost a process, whose memory for a
// statement is a multiple of its size (scan.go):
//
//   - a statement over the maximum size (limits.max_parse_size) is never
//     parsed;
//   - statements over 4 KiB are parsed only while those being parsed at
//     that moment add up to at most the maximum size, so clients sending
//     big statements at once do not multiply the cost.
//
// A statement that is not parsed is classified by the token scan. One
// ParseLimit is shared by all the classifiers of a process.
type ParseLimit struct {
	maxSize  atomic.Int64 // a reload may change it (SetMaxSize)
	inFlight atomic.Int64 // bytes of statements over smallStatement being parsed
}

// NewParseLimit returns a limit with the given maximum statement size;
// zero or less means DefaultMaxParseSize.
func NewParseLimit(maxSize int) *ParseLimit {
	pl := &ParseLimit{}
	pl.SetMaxSize(maxSize)
	return pl
}

// SetMaxSize changes the maximum statement size (a reload of
// limits.max_parse_size); zero or less means DefaultMaxParseSize. Parses
// in progress finish under the size that admitted them.
func (pl *ParseLimit) SetMaxSize(maxSize int) {
	if maxSize <= 0 {
		maxSize = DefaultMaxParseSize
	}
	pl.maxSize.Store(int64(maxSize))
}

// MaxSize is the size past which statements are not parsed.
func (pl *ParseLimit) MaxSize() int {
	if pl == nil {
		return DefaultMaxParseSize
	}
	return int(pl.maxSize.Load())
}

// admit says whether a statement of n bytes may be parsed now; if it is
// over smallStatement, done(n) must follow its parse. A nil limit admits
// every statement up to DefaultMaxParseSize.
func (pl *ParseLimit) admit(n int) bool {
	if n > pl.MaxSize() {
		return false
	}
	if pl == nil || n <= smallStatement {
		return true
	}
	if pl.inFlight.Add(int64(n)) > pl.maxSize.Load() {
		pl.inFlight.Add(-int64(n))
		return false
	}
	return true
}

// done ends a parse that admit allowed.
func (pl *ParseLimit) done(n int) {
	if pl != nil && n > smallStatement {
		pl.inFlight.Add(-int64(n))
	}
}
