// Package gtid is MariaDB GTID arithmetic: a GTID is "domain-server-seqno",
// a position is one GTID per replication domain, comma-separated, as in
// @@gtid_current_pos or @@gtid_slave_pos. Routing asks whether a replica's
// position covers a session's last write; the monitor and failover compare
// positions. It is pure and has no dependencies, so both the router and the
// backend can use it.
package gtid

import (
	"strconv"
	"strings"
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
