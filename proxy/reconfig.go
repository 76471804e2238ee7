package proxy

import (
	"slices"
	"sync"
	"time"

	"switchyard/router"
)

// Reconfiguring at runtime (a config reload). What a session consults per
// statement (routing, rules) and what the listener consults per connection
// or packet (limits) is held behind atomic pointers and swapped whole, so
// new statements and connections see the new values and nothing a client
// holds is dropped. Users are swapped the same way (SetUsers).

// Limits are the listener options a reload may change. They apply to new
// connections (handshake, max connections, TLS requirement) and to the
// next packet or wait of open ones (packet size, idle timeout).
type Limits struct {
	HandshakeTimeout     time.Duration
	IdleTimeout          time.Duration
	NetReadTimeout       time.Duration
	MaxPacketSize        int
	MaxClientConnections int
	RequireTLS           bool
}

func (o ListenerOptions) limits() *Limits {
	return &Limits{HandshakeTimeout: o.HandshakeTimeout, IdleTimeout: o.IdleTimeout, NetReadTimeout: o.NetReadTimeout, MaxPacketSize: o.MaxPacketSize,
		MaxClientConnections: o.MaxClientConnections, RequireTLS: o.RequireTLS}
}

// lim returns the limits in effect.
func (ln *Listener) lim() *Limits { return ln.live.Load() }

// SetLimits replaces the listener's limits; zero values mean the defaults
// and negative timeouts none, as in ListenerOptions.
func (ln *Listener) SetLimits(l Limits) {
	o := ListenerOptions{HandshakeTimeout: l.HandshakeTimeout, IdleTimeout: l.IdleTimeout, NetReadTimeout: l.NetReadTimeout, MaxPacketSize: l.MaxPacketSize,
		MaxClientConnections: l.MaxClientConnections, RequireTLS: l.RequireTLS}
	ln.live.Store(o.withDefaults().limits())
}

// routingSetup is what the routing options build: the options, the
// balancer, and the classifiers with their shared cache. A reload swaps it
// whole; a statement uses the one it loaded.
type routingSetup struct {
	opt      Routing
	balancer *router.Balancer
	// classCache shares statement classifications between sessions; the
	// classifiers (each a parser, not safe for concurrent use) are
	// borrowed per statement.
	classCache  *router.Cache
	classifiers *sync.Pool
}

// The classifiers parse what the server's ParseLimit allows
// (limits.max_parse_size), which lives as long as the Server: the limit
// counts the parses in progress.

// newRoutingSetup builds the setup for r. The classification cache of prev
// is kept when the functions known not to write are the same, since a
// classification depends on nothing else; the balancer is kept when the
// policy is the same, so round-robin goes on where it was.
func newRoutingSetup(r Routing, prev *routingSetup, limit *router.ParseLimit) (*routingSetup, error) {
	rs := &routingSetup{opt: r}
	if prev != nil && prev.opt.Balance == r.Balance {
		rs.balancer = prev.balancer
	} else {
		b, err := router.NewBalancer(r.Balance)
		if err != nil {
			return nil, err
		}
		rs.balancer = b
	}
	if prev != nil && slices.Equal(prev.opt.ReadOnlyFunctions, r.ReadOnlyFunctions) {
		rs.classCache, rs.classifiers = prev.classCache, prev.classifiers
		return rs, nil
	}
	rs.classCache = router.NewCache(10000)
	classOpt := router.Options{ReadOnlyFunctions: router.NewFunctionSet(r.ReadOnlyFunctions)}
	cache := rs.classCache
	rs.classifiers = &sync.Pool{New: func() any {
		cl := router.NewClassifierWith(cache, classOpt)
		cl.SetParseLimit(limit)
		return cl
	}}
	return rs, nil
}

// routingNow is the routing setup in effect.
func (s *Server) routingNow() *routingSetup { return s.routing.Load() }

// Reconfig is what a reload may change in a Server.
type Reconfig struct {
	Users   []User
	Routing Routing
	Rules   *router.Rules
	Limits  Limits
	// DisableMultiplexing: pool.multiplexing false. Sessions change mode
	// at their next statement.
	DisableMultiplexing bool
	// MaxParseSize and MaxPreparedBytesPerSession as in Options; they
	// apply to the next statement.
	MaxParseSize               int
	MaxPreparedBytesPerSession int64
}

// Reconfigure applies c: everything is built and checked first, so an
// error changes nothing. Connections already logged in keep their user's
// settings; the rest applies to the next statements.
func (s *Server) Reconfigure(c Reconfig) error {
	users, err := newUserTable(c.Users)
	if err != nil {
		return err
	}
	rs, err := newRoutingSetup(c.Routing, s.routingNow(), s.parseLimit)
	if err != nil {
		return err
	}
	s.userTab.Store(users)
	s.routing.Store(rs)
	s.rules.Store(c.Rules)
	s.noMultiplexing.Store(c.DisableMultiplexing)
	s.parseLimit.SetMaxSize(c.MaxParseSize)
	s.preparedBudget.Store(preparedBudgetOrDefault(c.MaxPreparedBytesPerSession))
	s.SetLimits(c.Limits)
	return nil
}
