// Package gtid is MariaDB GTID arithmetic: a GTID is "domain-server-seqno",
// a position is one GTID per replication domain, comma-separated, as in
// @@gtid_current_pos or @@gtid_slave_pos. Routing asks whether a replica's
// position covers a session's last write; the monitor and failover compare
// positions. It has no dependencies, so both the router and the backend
// can use it; apart from Latest, which sessions share, it is pure.
package gtid

import (
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
)

// GTID is one MariaDB global transaction id.
type GTID struct {
	Domain uint32
	Server uint32
	Seq    uint64
}

// Parse decodes "domain-server-seqno".
func Parse(s string) (GTID, bool) {
	d, rest, ok1 := strings.Cut(strings.TrimSpace(s), "-")
	srv, n, ok2 := strings.Cut(rest, "-")
	if !ok1 || !ok2 {
		return GTID{}, false
	}
	dom, err1 := strconv.ParseUint(d, 10, 32)
	sid, err2 := strconv.ParseUint(srv, 10, 32)
	seq, err3 := strconv.ParseUint(n, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return GTID{}, false
	}
	return GTID{Domain: uint32(dom), Server: uint32(sid), Seq: seq}, true
}

func (g GTID) String() string {
	return strconv.FormatUint(uint64(g.Domain), 10) + "-" + strconv.FormatUint(uint64(g.Server), 10) + "-" +
		strconv.FormatUint(g.Seq, 10)
}

// Covers reports whether position pos includes the transaction gtid: pos's
// entry for the same replication domain has reached its sequence number.
// Malformed input covers nothing, so a read waits for the primary rather
// than risk stale data.
func Covers(pos, gtid string) bool {
	want, ok := Parse(gtid)
	if !ok {
		return false
	}
	for pos != "" {
		var entry string
		entry, pos, _ = strings.Cut(pos, ",")
		if g, ok := Parse(entry); ok && g.Domain == want.Domain {
			return g.Seq >= want.Seq
		}
	}
	return false
}

// Position is a parsed GTID position: the last GTID of each replication
// domain. Malformed entries are left out.
type Position map[uint32]GTID

// ParsePosition reads a position such as "0-1-42,1-2-7".
func ParsePosition(s string) Position {
	p := Position{}
	for s != "" {
		var entry string
		entry, s, _ = strings.Cut(s, ",")
		if g, ok := Parse(entry); ok {
			p[g.Domain] = g
		}
	}
	return p
}

// String writes the position with its domains in ascending order, as
// MariaDB does.
func (p Position) String() string {
	domains := make([]uint32, 0, len(p))
	for d := range p {
		domains = append(domains, d)
	}
	slices.Sort(domains)
	var b strings.Builder
	for i, d := range domains {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(p[d].String())
	}
	return b.String()
}

// Compare orders positions by how far they got: 1 when a has reached b in
// every domain and gone further in one, -1 the other way round, 0 when
// they are equal or each is ahead in some domain (histories that diverged,
// which no order ranks).
func Compare(a, b string) int {
	pa, pb := ParsePosition(a), ParsePosition(b)
	ahead, behind := false, false
	for d, g := range pa {
		if o, ok := pb[d]; !ok || g.Seq > o.Seq {
			ahead = true
		} else if g.Seq < o.Seq {
			behind = true
		}
	}
	for d := range pb {
		if _, ok := pa[d]; !ok {
			behind = true
		}
	}
	switch {
	case ahead && !behind:
		return 1
	case behind && !ahead:
		return -1
	}
	return 0
}

// Max is the position that has, in each domain, the further of a's and
// b's GTIDs: what a server has received when a is what it applied and b
// what its IO thread fetched.
func Max(a, b string) string {
	pa := ParsePosition(a)
	for d, g := range ParsePosition(b) {
		if o, ok := pa[d]; !ok || g.Seq > o.Seq {
			pa[d] = g
		}
	}
	return pa.String()
}

// CoversAll reports whether position pos includes every transaction of
// position need: each of need's GTIDs is covered (Covers). An empty need
// asks for nothing; a malformed entry in it is covered by nothing. It does
// not allocate: routing calls it for every replica on every read that must
// see earlier writes.
func CoversAll(pos, need string) bool {
	for need != "" {
		var g string
		g, need, _ = strings.Cut(need, ",")
		if g = strings.TrimSpace(g); g != "" && !Covers(pos, g) {
			return false
		}
	}
	return true
}

// Latest is a position made of the highest GTID noted in each replication
// domain: what a read must wait for to see every write whose GTID was
// noted. It is safe for concurrent use. Reading it takes one atomic load
// and never allocates; a Note that raises it allocates the new position
// (copy on write), one that does not leaves it as it is.
type Latest struct {
	pos atomic.Pointer[string]
}

// Position is the position now; "" before anything was noted.
func (l *Latest) Position() string {
	if p := l.pos.Load(); p != nil {
		return *p
	}
	return ""
}

// Note raises the position to include g ("domain-server-seqno"). A
// malformed g is ignored: nothing could wait for it.
func (l *Latest) Note(g string) {
	want, ok := Parse(g)
	if !ok {
		return
	}
	for {
		old := l.pos.Load()
		cur := ""
		if old != nil {
			cur = *old
		}
		if Covers(cur, g) {
			return
		}
		next := withGTID(cur, want)
		if l.pos.CompareAndSwap(old, &next) {
			return
		}
	}
}

// withGTID is position pos with g as its entry for g's domain, domains in
// ascending order as MariaDB writes them.
func withGTID(pos string, g GTID) string {
	b := make([]byte, 0, len(pos)+24)
	placed := false
	for pos != "" {
		var entry string
		entry, pos, _ = strings.Cut(pos, ",")
		e, ok := Parse(entry)
		if !ok || e.Domain == g.Domain {
			continue
		}
		if !placed && e.Domain > g.Domain {
			b = appendGTID(b, g)
			placed = true
		}
		b = appendGTID(b, e)
	}
	if !placed {
		b = appendGTID(b, g)
	}
	return string(b)
}

func appendGTID(b []byte, g GTID) []byte {
	if len(b) > 0 {
		b = append(b, ',')
	}
	b = strconv.AppendUint(b, uint64(g.Domain), 10)
	b = append(b, '-')
	b = strconv.AppendUint(b, uint64(g.Server), 10)
	b = append(b, '-')
	return strconv.AppendUint(b, g.Seq, 10)
}

// Valid reports whether pos is a well-formed, non-empty position: GTIDs
// separated by commas, nothing else, so that it can be quoted in SQL.
func Valid(pos string) bool {
	for {
		entry, rest, more := strings.Cut(pos, ",")
		if _, ok := Parse(entry); !ok || strings.TrimSpace(entry) != entry {
			return false
		}
		if !more {
			return true
		}
		pos = rest
	}
}
