package proxy

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"switchyard/backend"
	"switchyard/router"
	"switchyard/wire"
)

// What the admin interface shows of the data path: the sessions
// (processlist) with why each is pinned, counters per command and per
// statement kind, and statements by digest. A session publishes its state
// at the start and end of each command under a lock of its own, which the
// admin's reads alone contend for; the counters are atomics, and the digest
// table is a sync.Map whose entries are atomics, so that many sessions
// running the same statement do not queue on one lock.

// maxDigests bounds the digest table: statements of new digests beyond it
// are counted in one overflow row. maxDigestText bounds each digest's text.
const (
	maxDigests    = 10000
	maxDigestText = 1024
	// OverflowDigest is the digest of the row that counts statements of
	// digests past the table's bound.
	OverflowDigest = "(overflow)"
)

// maxKinds bounds the statement kinds counted (router.Kind values).
const maxKinds = 32

type stats struct {
	commands [256]counter
	kinds    [maxKinds]counter
	digests  sync.Map // digestKey -> *digestEntry
	nDigests atomic.Int64
	overflow digestEntry
}

func (st *stats) init() {
	st.overflow.digest, st.overflow.text = OverflowDigest, "statements of digests past the table's bound of 10000"
}

type counter struct{ n, nanos atomic.Int64 }

func (c *counter) add(d time.Duration) {
	c.n.Add(1)
	c.nanos.Add(int64(d))
}

type digestKey struct{ digest, user, schema string }

type digestEntry struct {
	digest, text, user, schema string
	// route is where the last statement ran: a backend.Role plus one, 0
	// when it ran nowhere.
	route            atomic.Int32
	count, sum, rows atomic.Int64
	min, max         atomic.Int64 // nanoseconds
	first, last      atomic.Int64 // Unix nanoseconds
}

func (e *digestEntry) add(took time.Duration, rows int64, now time.Time, route int32) {
	ns := int64(took)
	if e.count.Add(1) == 1 {
		e.first.Store(now.UnixNano())
	}
	e.sum.Add(ns)
	e.rows.Add(rows)
	e.last.Store(now.UnixNano())
	for old := e.min.Load(); (old == 0 || ns < old) && !e.min.CompareAndSwap(old, ns); old = e.min.Load() {
	}
	for old := e.max.Load(); ns > old && !e.max.CompareAndSwap(old, ns); old = e.max.Load() {
	}
	if route != 0 && e.route.Load() != route {
		e.route.Store(route)
	}
}

// digestMemo is the digest entry a session's last statement was counted
// under. Sessions mostly repeat their statements, and the table's lookup
// hashes the key's three strings (the digest alone is 64 characters): about
// 3% of the proxy's instructions for a point select (callgrind). Entries
// are never removed from the table, so a remembered one stays counted.
type digestMemo struct {
	key digestKey
	e   *digestEntry
}

func (st *stats) digest(m *digestMemo, n *stmtNote, user, schema string, took time.Duration, now time.Time) {
	key := digestKey{n.digest, user, schema}
	if m.e != nil && m.key == key {
		m.e.add(took, n.rows, now, n.route)
		return
	}
	v, ok := st.digests.Load(key)
	if !ok {
		if st.nDigests.Load() >= maxDigests {
			st.overflow.add(took, n.rows, now, n.route)
			return
		}
		text := n.digestText
		if len(text) > maxDigestText {
			text = strings.ToValidUTF8(text[:maxDigestText], "") + "..."
		}
		var loaded bool
		v, loaded = st.digests.LoadOrStore(key, &digestEntry{digest: n.digest, text: text, user: user, schema: schema})
		if !loaded {
			st.nDigests.Add(1)
		}
	}
	e := v.(*digestEntry)
	m.key, m.e = key, e
	e.add(took, n.rows, now, n.route)
}

// stmtNote is what the command that runs now tells the stats when it ends:
// set by the session's goroutine, read by it.
type stmtNote struct {
	query              bool // a COM_QUERY that was classified
	kind               router.Kind
	digest, digestText string
	route              int32 // the backend.Role it ran on, plus one; 0: none
	rows               int64
}

// published is a session's state as the processlist shows it, written by
// the session's goroutine and read by the admin's.
type published struct {
	mu      sync.Mutex
	running bool
	since   time.Time // when the command started, or when the session went idle
	info    string    // the statement running, while it runs
	user    string
	schema  string
	server  string // the server of the connection the session holds or used last
	inTx    bool
	pins    router.Pins
}

// publishLogin shows a session that has run no command yet. Nothing else
// sees it before Open returns, so it needs no lock.
func (s *session) publishLogin() {
	p := &s.pub
	p.since, p.schema = time.Now(), s.st.schema
	if u := s.c.login.User; u != nil {
		p.user = u.Name
	}
}

// commandStarted records the start of a command; the statement's text is
// added by the query once it has it.
func (s *session) commandStarted(now time.Time) {
	s.note = stmtNote{}
	p := &s.pub
	p.mu.Lock()
	p.running, p.since = true, now
	p.mu.Unlock()
}

// running publishes the statement the session runs now.
func (s *session) runningStatement(sql string) {
	p := &s.pub
	p.mu.Lock()
	p.info = sql
	p.mu.Unlock()
}

// commandDone counts the command that started at start and publishes the
// session's state after it.
func (s *session) commandDone(cmd byte, start time.Time) {
	now := time.Now()
	took := now.Sub(start)
	st := &s.srv.stats
	st.commands[cmd].add(took)
	n := &s.note
	user := ""
	if u := s.c.login.User; u != nil {
		user = u.Name
	}
	if n.query {
		if n.kind < maxKinds {
			st.kinds[n.kind].add(took)
		}
		if n.digest != "" {
			st.digest(&s.digestMemo, n, user, s.st.schema, took, now)
		}
	}
	server := ""
	if sc := s.conns.held; sc != nil {
		server = sc.Server().Name
	} else if sc := s.conns.last; sc != nil {
		server = sc.Server().Name
	}
	p := &s.pub
	p.mu.Lock()
	p.running, p.since, p.info = false, now, ""
	p.user, p.schema, p.server = user, s.st.schema, server
	p.inTx, p.pins = s.st.inTx, s.st.pins
	p.mu.Unlock()
}

// Process is one client session as the admin's processlist shows it.
type Process struct {
	ID     uint32
	User   string
	Schema string
	Client string
	Server string
	// State is "query" while a command runs, else "idle" or "idle in
	// transaction".
	State string
	Time  time.Duration // in that state
	Info  string        // the statement running
	// Pinned says why the session holds its server connection: "transaction"
	// and the pins' reasons, comma-separated; "" when it holds none.
	Pinned string
}

// Processlist returns the logged-in client sessions.
func (s *Server) Processlist() []Process {
	now := time.Now()
	var out []Process
	for _, c := range s.snapshot() {
		b := c.sess.Load()
		if b == nil {
			continue
		}
		sess, ok := b.Session.(*session)
		if !ok {
			continue
		}
		p := &sess.pub
		p.mu.Lock()
		pr := Process{ID: c.id, User: p.user, Schema: p.schema, Client: c.addr, Server: p.server,
			Time: now.Sub(p.since), Info: p.info}
		running, inTx, pins := p.running, p.inTx, p.pins
		p.mu.Unlock()
		switch {
		case running:
			pr.State = "query"
		case inTx:
			pr.State = "idle in transaction"
		default:
			pr.State = "idle"
		}
		var why []string
		if inTx {
			why = append(why, "transaction")
		}
		for pin := router.Pin(1); pin < router.NumPins; pin++ {
			if pins[pin] > 0 {
				why = append(why, pin.String())
			}
		}
		pr.Pinned = strings.Join(why, ", ")
		out = append(out, pr)
	}
	return out
}

// CommandCount is how many of one command or statement kind ran, and for
// how long in all.
type CommandCount struct {
	Command string
	Total   int64
	Time    time.Duration
}

// Commands returns the counts of protocol commands (COM_PING, ...) and of
// COM_QUERY statements by kind (READ, WRITE, DDL, ...), those that ran.
func (s *Server) Commands() []CommandCount {
	var out []CommandCount
	for k := range s.stats.kinds {
		c := &s.stats.kinds[k]
		if n := c.n.Load(); n > 0 {
			out = append(out, CommandCount{Command: strings.ToUpper(router.Kind(k).String()), Total: n, Time: time.Duration(c.nanos.Load())})
		}
	}
	for cmd := range s.stats.commands {
		c := &s.stats.commands[cmd]
		if n := c.n.Load(); n > 0 {
			out = append(out, CommandCount{Command: wire.CommandName(byte(cmd)), Total: n, Time: time.Duration(c.nanos.Load())})
		}
	}
	return out
}

// Digest is one row of the digest table: statements of one digest run by
// one user in one schema.
type Digest struct {
	Digest, Text, User, Schema string
	// Route is where the last of them ran: primary, replica or unknown.
	Route               string
	Count               int64
	Sum, Min, Max       time.Duration
	Rows                int64
	FirstSeen, LastSeen time.Time
}

// Digests returns the digest table, with the overflow row when statements
// were counted there.
func (s *Server) Digests() []Digest {
	var out []Digest
	row := func(e *digestEntry) {
		d := Digest{Digest: e.digest, Text: e.text, User: e.user, Schema: e.schema, Count: e.count.Load(),
			Sum: time.Duration(e.sum.Load()), Min: time.Duration(e.min.Load()), Max: time.Duration(e.max.Load()),
			Rows: e.rows.Load(), FirstSeen: time.Unix(0, e.first.Load()), LastSeen: time.Unix(0, e.last.Load())}
		if r := e.route.Load(); r != 0 {
			d.Route = backend.Role(r - 1).String()
		}
		out = append(out, d)
	}
	s.stats.digests.Range(func(_, v any) bool {
		if e := v.(*digestEntry); e.count.Load() > 0 {
			row(e)
		}
		return true
	})
	if s.stats.overflow.count.Load() > 0 {
		row(&s.stats.overflow)
	}
	return out
}

// Counters are the data path's own counts.
type Counters struct {
	Unparsed            int64 // statements the parser rejected (sent to the primary)
	PinnedSessions      int64
	HintsIgnored        int64
	ReplicaWriteRetries int64
	Clients             int64
}

// Counters returns the data path's counters.
func (s *Server) Counters() Counters {
	return Counters{Unparsed: s.unparsed.Load(), PinnedSessions: s.pinnedSessions.Load(),
		HintsIgnored: s.hintsIgnored.Load(), ReplicaWriteRetries: s.replicaWriteRetries.Load(), Clients: s.clients.Load()}
}
