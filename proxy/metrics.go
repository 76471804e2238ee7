package proxy

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/backend"
	"switchyard/firewall"
	"switchyard/router"
	"switchyard/wire"
)

// What the proxy counts for the metrics endpoint (package observe reads it
// when scraped), and the slow-query log. Every counter is an atomic in an
// array indexed by what it counts (command byte, route and statement kind,
// errno, pin reason), so counting a statement takes a few atomic adds: no
// lock, no label lookup, no allocation.

// refusal is why a client connection was refused before its session began.
type refusal uint8

const (
	refusedMaxClients    refusal = iota // limits.max_client_connections
	refusedUserMax                      // users[].max_connections
	refusedAccessDenied                 // unknown user or wrong password
	refusedTLSRequired                  // tls.require or users[].require_tls
	refusedProxyProtocol                // a PROXY header missing, malformed or from a peer not listed
	refusedHandshake                    // a broken, oversized or too slow login
	refusedServer                       // no server accepted the login
	numRefusals
)

var refusalNames = [numRefusals]string{"max_client_connections", "user_max_connections", "access_denied",
	"tls_required", "proxy_protocol", "handshake", "server"}

// route is where a statement ran.
type route uint8

const (
	routeNone     route = iota // nowhere: answered or refused by the proxy, or failed before a server
	routePrimary               // on the primary
	routeReplica               // on a replica
	routeFallback              // meant for a replica, ran on the primary (none could serve it)
	numRoutes
)

var routeNames = [numRoutes]string{"none", "primary", "replica", "fallback"}

// gtidWaitResult is how a read's wait on a replica for writes it must see
// ended (session.waitOnReplica).
type gtidWaitResult uint8

const (
	gtidWaitOK      gtidWaitResult = iota // the replica applied them in time; the read ran there
	gtidWaitTimeout                       // not within routing.gtid_wait; the read ran on the primary
	gtidWaitError                         // the wait failed (server error, broken connection); the read ran on the primary
	numGTIDWaitResults
)

var gtidWaitNames = [numGTIDWaitResults]string{"ok", "timeout", "error"}

// Errors are counted by errno up to maxErrno (MariaDB's and MySQL's codes
// are below 5000); higher codes are counted together.
const maxErrno = 5000

// errorOrigin says who wrote an ERR packet a client received.
type errorOrigin uint8

const (
	originProxy  errorOrigin = iota // switchyard wrote it (its own errors, or a server's it passed on)
	originServer                    // relayed from a server inside its response
	numOrigins
)

var originNames = [numOrigins]string{"proxy", "server"}

// pinLabels name router's pin reasons as metric labels.
var pinLabels = [router.NumPins]string{"", "multi_statement_state", "user_variable", "temporary_table", "lock",
	"lock_tables", "text_prepare", "prepared_statement_state", "cursor", "long_data", "state_overflow"}

// metrics are a Listener's counters.
type metrics struct {
	connsTotal atomic.Int64
	refused    [numRefusals]atomic.Int64
	commands   [256]atomic.Int64
	statements [numRoutes][router.NumKinds]atomic.Int64
	errors     [numOrigins][maxErrno + 1]atomic.Int64 // [maxErrno]: every code above
	// pinnedBy counts the sessions pinned now for each reason; pins the
	// times a session was pinned for it.
	pinnedBy    [router.NumPins]atomic.Int64
	pins        [router.NumPins]atomic.Int64
	stallChecks atomic.Int64
	desyncs     atomic.Int64
	slow        atomic.Int64
	// aborted counts the sessions that ended without COM_QUIT: the client
	// went away, timed out or was killed, or the proxy ended it (a server
	// would count them in Aborted_clients); abortedAtFlush is what aborted
	// was at the last FLUSH STATUS through the proxy (status.go).
	aborted        atomic.Int64
	abortedAtFlush atomic.Int64
}

// abortedSinceFlush is what the proxy adds to the Aborted_clients a client
// reads through it: its own clients' aborts since the last FLUSH STATUS
// through it, as a server counts its clients' since its last.
func (m *metrics) abortedSinceFlush() uint64 {
	return uint64(max(m.aborted.Load()-m.abortedAtFlush.Load(), 0))
}

func (m *metrics) refuse(r refusal) { m.refused[r].Add(1) }

func (m *metrics) countError(origin errorOrigin, errno uint16) {
	m.errors[origin][min(int(errno), maxErrno)].Add(1)
}

// refusalOf is the reason to count for a login refused with code.
func refusalOf(code uint16) refusal {
	switch code {
	case mysql.ER_CON_COUNT_ERROR:
		return refusedMaxClients
	case mysql.ER_TOO_MANY_USER_CONNECTIONS:
		return refusedUserMax
	case mysql.ER_ACCESS_DENIED_ERROR:
		return refusedAccessDenied
	case 3159: // ER_SECURE_TRANSPORT_REQUIRED
		return refusedTLSRequired
	}
	return refusedHandshake
}

// observation is what the command running now tells the metrics and the
// slow log when it ends. The session's goroutine sets and reads it.
type observation struct {
	statement bool // a statement ran (COM_QUERY, COM_STMT_EXECUTE), classified as below
	kind      router.Kind
	// digest and digestText identify the statement; sql is its text, for
	// the slow log at debug level only.
	digest, digestText, sql string
	route                   route
	server                  *backend.Server
	rows                    int64
}

// observeStatement records the classified statement the command runs.
func (s *session) observeStatement(class *router.Class, sql string) {
	s.obs = observation{statement: true, kind: class.Kind, digest: class.Digest, digestText: class.DigestText, sql: sql}
}

// observeRun records where the statement ran (sc, nil if nowhere) and the
// rows it returned.
func (s *session) observeRun(d router.Decision, sc *backend.Conn, rows int64) {
	if sc == nil {
		return
	}
	srv := sc.Server()
	s.obs.server, s.obs.rows = srv, rows
	switch {
	case srv.Role() == backend.RoleReplica:
		s.obs.route = routeReplica
	case d.Target == router.Replica:
		s.obs.route = routeFallback
	default:
		s.obs.route = routePrimary
	}
}

// observed counts the command cmd that began at start (zero with the slow
// log off), and logs it if it was a slow statement.
func (s *session) observed(cmd byte, start time.Time) {
	m := &s.srv.metrics
	m.commands[cmd].Add(1)
	o := &s.obs
	if !o.statement {
		return
	}
	if o.kind < router.NumKinds {
		m.statements[o.route][o.kind].Add(1)
	}
	if threshold := time.Duration(s.srv.slowThreshold.Load()); threshold > 0 && !start.IsZero() {
		if took := time.Since(start); took >= threshold {
			s.logSlow(took)
		}
	}
}

// maxSlowDigestText bounds the digest text in a slow log line.
const maxSlowDigestText = 1024

// logSlow logs the statement of s.obs, which took took. At info level the
// line carries the digest text, whose literals are ?, never the statement:
// literals may be personal data or secrets. At debug level a second line
// has the text.
func (s *session) logSlow(took time.Duration) {
	s.srv.metrics.slow.Add(1)
	o := &s.obs
	server := ""
	if o.server != nil {
		server = o.server.Name
	}
	text := truncate(o.digestText, maxSlowDigestText)
	user := ""
	if u := s.c.login.User; u != nil {
		user = u.Name
	}
	log := s.c.Logger()
	log.Info("slow query", "duration", took, "digest", o.digest, "digest_text", text, "user", user,
		"schema", s.st.schema, "server", server, "route", routeNames[o.route], "rows", o.rows)
	if log.Enabled(context.Background(), slog.LevelDebug) {
		log.Debug("slow query text", "digest", o.digest, "sql", o.sql)
	}
}

// countPinned keeps the metrics in step with this session's pins, however
// they changed (pin, unpin, reset, a change of user restoring saved
// state): the pinned sessions in all, and by reason.
func (s *session) countPinned() {
	var now uint32
	for p := router.Pin(1); p < router.NumPins; p++ {
		if s.st.pins[p] > 0 {
			now |= 1 << p
		}
	}
	if now == s.pinsCounted {
		return
	}
	m := &s.srv.metrics
	for p := router.Pin(1); p < router.NumPins; p++ {
		switch bit := uint32(1) << p; {
		case now&bit != 0 && s.pinsCounted&bit == 0:
			m.pinnedBy[p].Add(1)
			m.pins[p].Add(1)
		case now&bit == 0 && s.pinsCounted&bit != 0:
			m.pinnedBy[p].Add(-1)
		}
	}
	switch {
	case now != 0 && s.pinsCounted == 0:
		s.srv.pinnedSessions.Add(1)
	case now == 0 && s.pinsCounted != 0:
		s.srv.pinnedSessions.Add(-1)
	}
	s.pinsCounted = now
}

// SetSlowLog sets the slow-query log's threshold (slow_log.threshold); 0
// turns it off. It applies to the next statements.
func (s *Server) SetSlowLog(threshold time.Duration) { s.slowThreshold.Store(int64(threshold)) }

// Metrics is a snapshot of the data path's counters.
type Metrics struct {
	Clients      int64 // client connections open now
	ClientsTotal int64 // accepted since start
	// ClientsAborted counts the sessions that ended without COM_QUIT
	// (gone, timed out, killed), as a server's Aborted_clients.
	ClientsAborted int64
	MaxClients     int // limits.max_client_connections
	// Refused counts connections refused before their session began, by
	// reason (max_client_connections, access_denied, proxy_protocol, ...).
	Refused map[string]int64
	// Commands counts protocol commands by name (COM_QUERY, ...).
	Commands map[string]int64
	// Statements counts statements that ran, by route (primary, replica,
	// fallback, none) and class (read, write, ddl, ...).
	Statements []StatementCount
	// Errors counts the ERR packets clients received, by errno and origin.
	Errors []ErrorCount
	// PinnedSessions are the sessions held on their server connection now;
	// PinnedBy the same by reason (a session may count under several);
	// Pins the times a session was pinned, by reason.
	PinnedSessions int64
	PinnedBy, Pins map[string]int64
	// Unparsed statements went to the primary because the parser could
	// not read them; HintsIgnored replica hints and rules were not
	// followed because the statement may write; ReplicaWriteRetries reads
	// a replica refused as writes ran on the primary.
	Unparsed, HintsIgnored, ReplicaWriteRetries int64
	// StallChecks are the times a silent server was asked whether it was
	// still working on a response; Desyncs the responses the proxy could
	// not follow (each ended its session).
	StallChecks, Desyncs int64
	SlowQueries          int64
	// GTIDWaits counts the reads that waited on a replica for writes it
	// had not applied yet (read_your_writes, routing.gtid_wait), by
	// result: ok (then read there), timeout and error (then read on the
	// primary).
	GTIDWaits map[string]int64
	Firewall  firewall.Stats
	// Accepting: the listener serves new clients (see Listener.Accepting).
	Accepting bool
}

// StatementCount is one series of Metrics.Statements.
type StatementCount struct {
	Route, Class string
	N            int64
}

// ErrorCount is one series of Metrics.Errors; Errno 0 stands for every
// code above 5000.
type ErrorCount struct {
	Errno  int
	Origin string
	N      int64
}

// Metrics returns the data path's counters now.
func (s *Server) Metrics() Metrics {
	m := &s.metrics
	out := Metrics{Clients: s.clients.Load(), ClientsTotal: m.connsTotal.Load(), ClientsAborted: m.aborted.Load(), MaxClients: s.Listener.lim().MaxClientConnections,
		Refused: map[string]int64{}, Commands: map[string]int64{}, PinnedBy: map[string]int64{}, Pins: map[string]int64{},
		PinnedSessions: s.pinnedSessions.Load(), Unparsed: s.unparsed.Load(), HintsIgnored: s.hintsIgnored.Load(),
		ReplicaWriteRetries: s.replicaWriteRetries.Load(), StallChecks: m.stallChecks.Load(), Desyncs: m.desyncs.Load(),
		SlowQueries: m.slow.Load(), Firewall: s.FirewallStats(), Accepting: s.Accepting()}
	for r := range numRefusals {
		out.Refused[refusalNames[r]] = m.refused[r].Load()
	}
	out.GTIDWaits = make(map[string]int64, numGTIDWaitResults)
	for r := range numGTIDWaitResults {
		out.GTIDWaits[gtidWaitNames[r]] = s.gtidWaits[r].Load()
	}
	for cmd := range m.commands {
		if n := m.commands[cmd].Load(); n > 0 {
			out.Commands[wire.CommandName(byte(cmd))] = n
		}
	}
	for r := range numRoutes {
		for k := range router.NumKinds {
			if n := m.statements[r][k].Load(); n > 0 {
				out.Statements = append(out.Statements, StatementCount{Route: routeNames[r], Class: router.Kind(k).String(), N: n})
			}
		}
	}
	for o := range numOrigins {
		for code := range m.errors[o] {
			if n := m.errors[o][code].Load(); n > 0 {
				errno := code
				if code == maxErrno {
					errno = 0
				}
				out.Errors = append(out.Errors, ErrorCount{Errno: errno, Origin: originNames[o], N: n})
			}
		}
	}
	for p := router.Pin(1); p < router.NumPins; p++ {
		out.PinnedBy[pinLabels[p]] = m.pinnedBy[p].Load()
		out.Pins[pinLabels[p]] = m.pins[p].Load()
	}
	return out
}

// Accepting reports whether the listener serves new clients: it listens,
// is not shutting down, and is below limits.max_client_connections.
func (ln *Listener) Accepting() bool {
	if ln.isClosing() || ln.clients.Load() >= int64(ln.lim().MaxClientConnections) {
		return false
	}
	ln.mu.Lock()
	defer ln.mu.Unlock()
	return len(ln.lns) > 0
}
