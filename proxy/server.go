// Package proxy speaks the MySQL protocol to clients. A Listener accepts
// connections, logs users in and runs each connection's command loop; a
// Handler gives each logged-in connection a Session that runs its commands.
// Server is the proxy's data path: a Listener whose sessions route every
// statement (package router decides), borrow server connections (package
// backend lends them) and forward the results back as raw packets.
//
// Files: listener.go (accept, login, command loop, shutdown), clientconn.go
// (framing, writing OK/ERR), auth.go (the connection phase), errors.go
// (what a client sees of an error), server.go (the data path's Handler),
// session.go (a session's state and its commands), route.go (routing a
// statement and running it), conns.go (the server connections a session
// holds), forward.go (relaying a response), stmts.go (prepared statements),
// users.go (accounts), reconfig.go (what a reload swaps), stats.go (the
// admin interface's views of the sessions and statements), results.go
// (whole result sets a Handler answers with).
package proxy

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/backend"
	"switchyard/backend/gtid"
	"switchyard/firewall"
	"switchyard/router"
	"switchyard/wire"
)

// Servers is what sessions need of the topology: backend.Cluster.
type Servers interface {
	Primary() (*backend.Server, error)
	// WaitPrimary is Primary, except that during a failover or switchover
	// it waits (bounded by failover.hold_timeout) for the new primary.
	WaitPrimary(ctx context.Context) (*backend.Server, error)
	Replicas(dst []*backend.Server) []*backend.Server
	LoginServers(dst []*backend.Server) []*backend.Server
	ServerVersion() (string, bool)
	// ResolvesNames: the servers name loopback clients 'localhost'
	// (@@skip_name_resolve off).
	ResolvesNames() bool
	// KillQuery interrupts the statement a connection runs, from another
	// connection (KILL QUERY).
	KillQuery(ctx context.Context, target *backend.Conn) error
	// ThreadOfQuery and KillQueryID find and interrupt a statement by the
	// query id its server gave it (KILL QUERY ID), as target's user.
	ThreadOfQuery(ctx context.Context, target *backend.Conn, qid uint64) (uint32, error)
	KillQueryID(ctx context.Context, target *backend.Conn, qid uint64) error
}

// Pool lends server connections to sessions: backend.Pool.
type Pool interface {
	Acquire(ctx context.Context, srv *backend.Server, req backend.Request) (*backend.Conn, error)
	Release(c *backend.Conn)
	// Renew: what a new login gets changed (accounts, privileges,
	// global variables): sessions that log in after it get no connection
	// opened before (backend.Pool.Renew, Epoch).
	Renew()
	Epoch() uint64
	// PruneStale closes idle connections from before the last Renew of
	// users inUse does not name.
	PruneStale(inUse func(user string) bool)
}

// Options configure a Server. Apart from Servers and Pool, which are
// required, the zero value is the config's defaults.
type Options struct {
	ListenerOptions
	Servers Servers
	Pool    Pool
	// Routing configures the read/write split; Rules are the query rules.
	Routing Routing
	Rules   *router.Rules
	// DisableMultiplexing keeps each session's server connections for the
	// session's life instead of lending them out between statements
	// (pool.multiplexing: false).
	DisableMultiplexing bool
	// MaxPreparedBytesPerSession bounds the statement text a session's
	// open prepared statements hold (limits.max_prepared_bytes_per_session);
	// 0: 64 MiB.
	MaxPreparedBytesPerSession int64
	// MaxParseSize is limits.max_parse_size: longer statements are
	// classified by a token scan, never parsed (router.ParseLimit). Zero
	// is the default, 256 KiB.
	MaxParseSize int
	// StallCheck is how long a response may go without a byte from its
	// server before the proxy asks the server whether it has finished
	// (see forward.go); 0: 5s, negative: never.
	StallCheck time.Duration
}

// Routing is the part of the routing configuration sessions consult. Its
// zero value is the config's defaults.
type Routing struct {
	Reads   string // "" or conf.ReadsReplicas, or conf.ReadsPrimary
	Balance string // "" is least_outstanding
	// NoFallbackToPrimary: a read that no replica can serve fails instead
	// of going to the primary (routing.fallback_to_primary: false).
	NoFallbackToPrimary bool
	// ReadYourWrites is whose writes a read must see: "" or
	// conf.RYWSession, conf.RYWUser, conf.RYWGlobal, or conf.RYWOff.
	ReadYourWrites string
	// GTIDWait bounds how long a read waits on a replica for the writes
	// it must see before it runs on the primary (routing.gtid_wait); 0:
	// 50ms, negative: no wait.
	GTIDWait time.Duration
	// ReadOnlyFunctions are the stored functions known not to write
	// (routing.read_only_functions).
	ReadOnlyFunctions []string
}

// Server is the proxy's data path: a Listener whose sessions route and
// forward client statements.
type Server struct {
	*Listener
	opt     Options
	servers Servers
	pool    Pool
	rules   atomic.Pointer[router.Rules]
	// routing is the routing options with what they build (balancer,
	// classifiers); noMultiplexing is pool.multiplexing false. A reload
	// swaps both (reconfig.go).
	routing        atomic.Pointer[routingSetup]
	noMultiplexing atomic.Bool
	// stats are the admin interface's counters (stats.go).
	stats stats
	// parseLimit bounds the statements parsed at once
	// (limits.max_parse_size); the classifiers share it.
	parseLimit *router.ParseLimit
	// preparedBudget is limits.max_prepared_bytes_per_session, which a
	// reload may change.
	preparedBudget atomic.Int64
	// unparsed counts statements the parser rejected (sent to the primary);
	// pinnedSessions the sessions held on one server connection.
	unparsed       atomic.Int64
	pinnedSessions atomic.Int64
	// hintsIgnored counts replica hints and rules that were not followed
	// because the statement may write; replicaWriteRetries the reads a
	// replica refused as writes (a view over a writing function) and the
	// primary ran instead.
	hintsIgnored        atomic.Int64
	replicaWriteRetries atomic.Int64
	// slowThreshold is slow_log.threshold in nanoseconds, 0: off; firewall
	// the query firewall, nil: off (firewall.go).
	slowThreshold atomic.Int64
	firewall      atomic.Pointer[firewall.Firewall]
	// written is the GTID position of every write acknowledged through
	// the proxy (read_your_writes: global), writtenBy the same per user
	// (user): one entry per user that ran a statement under user, kept for
	// the process's life like the accounts.
	written   gtid.Latest
	writtenMu sync.Mutex
	writtenBy map[string]*gtid.Latest
	// gtidWaits counts the reads that waited on a replica for writes it
	// lacked, by outcome (gtidWaitOK, gtidWaitTimeout, gtidWaitError).
	gtidWaits [numGTIDWaitResults]atomic.Int64
}

// writtenByUser is the position of the writes user's sessions had
// acknowledged, shared by them.
func (s *Server) writtenByUser(user string) *gtid.Latest {
	s.writtenMu.Lock()
	defer s.writtenMu.Unlock()
	l := s.writtenBy[user]
	if l == nil {
		if s.writtenBy == nil {
			s.writtenBy = make(map[string]*gtid.Latest)
		}
		l = &gtid.Latest{}
		s.writtenBy[user] = l
	}
	return l
}

func preparedBudgetOrDefault(n int64) int64 {
	if n <= 0 {
		return 64 << 20
	}
	return n
}

// NewServer returns a server that is not yet accepting.
func NewServer(opt Options) (*Server, error) {
	if opt.Servers == nil || opt.Pool == nil {
		return nil, errors.New("proxy: Options.Servers and Options.Pool are required")
	}
	opt.MaxPreparedBytesPerSession = preparedBudgetOrDefault(opt.MaxPreparedBytesPerSession)
	limit := router.NewParseLimit(opt.MaxParseSize)
	rs, err := newRoutingSetup(opt.Routing, nil, limit)
	if err != nil {
		return nil, err
	}
	s := &Server{opt: opt, servers: opt.Servers, pool: opt.Pool, parseLimit: limit}
	s.routing.Store(rs)
	s.preparedBudget.Store(opt.MaxPreparedBytesPerSession)
	s.noMultiplexing.Store(opt.DisableMultiplexing)
	s.rules.Store(opt.Rules)
	s.stats.init()
	lo := opt.ListenerOptions
	if lo.ResolvesNames == nil {
		lo.ResolvesNames = s.servers.ResolvesNames
	}
	if lo.Version == nil {
		lo.Version = s.serverVersion
	}
	if s.Listener, err = NewListener(lo, s); err != nil {
		return nil, err
	}
	return s, nil
}

// SetRules replaces the query rules; they apply to the next statements.
func (s *Server) SetRules(r *router.Rules) { s.rules.Store(r) }

func (s *Server) serverVersion() string {
	if v, ok := s.servers.ServerVersion(); ok && v != "" {
		return v
	}
	return defaultVersion
}

func (s *Server) multiplexing() bool { return !s.noMultiplexing.Load() }

// Open starts the session of a client that proved who it is. The login is
// checked on a server (does the schema exist, does the server accept the
// user): see loginConn.
func (s *Server) Open(ctx context.Context, c *ClientConn) (Session, error) {
	sess := &session{srv: s, c: c, loginEpoch: s.pool.Epoch()}
	sess.conns = connSet{pool: s.pool, inUse: &sess.inUse}
	sess.st.schema = c.login.Schema
	// Until the listener knows the session, killing the connection reaches
	// its server connections through this.
	defer context.AfterFunc(ctx, sess.Abort)()
	sc, err := sess.loginConn(ctx)
	if err != nil {
		var me *mysql.MyError
		var full *backend.ErrServerFull
		if !errors.As(err, &me) && !errors.As(err, &full) {
			err = wire.Errorf(mysql.ER_UNKNOWN_ERROR, "switchyard cannot reach a server for user %q: %v; check the servers and the proxy log", c.login.User.Name, err)
		} else if me != nil {
			err = me
		}
		sess.Close()
		return nil, err
	}
	c.SetStatus(sc.Status())
	sess.releaseIdle()
	sess.publishLogin()
	return sess, nil
}

// loginConn opens the connection that checks the session's login: to the
// primary, or, when there is none or it cannot be reached, to any server
// that answers (replicas in the read pool first). A login needs a server
// that knows the user and the schema, not one that takes writes, so
// clients keep logging in through a primary outage, even before the
// monitor has noticed it. A server's own refusal (unknown user or schema)
// is final.
func (s *session) loginConn(ctx context.Context) (*backend.Conn, error) {
	sc, err := s.primaryConn(ctx)
	if err == nil || !loginElsewhere(ctx, err) {
		return sc, err
	}
	var tried *backend.Server
	if p, perr := s.srv.servers.Primary(); perr == nil {
		tried = p
	}
	for _, srv := range s.srv.servers.LoginServers(nil) {
		if srv == tried {
			continue
		}
		sc, serr := s.connTo(ctx, srv, false)
		if serr == nil {
			return sc, nil
		}
		if !loginElsewhere(ctx, serr) {
			return nil, serr
		}
	}
	return nil, err
}

// loginElsewhere reports whether a login that failed with err may be
// checked on another server: not after a server's own answer, nor when
// servers[].max_connections is reached, nor once the client is gone.
func loginElsewhere(ctx context.Context, err error) bool {
	var me *mysql.MyError
	var full *backend.ErrServerFull
	return ctx.Err() == nil && !errors.As(err, &me) && !errors.As(err, &full)
}
