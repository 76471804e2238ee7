// Package proxy speaks the MySQL protocol to clients: it accepts
// connections, logs users in, and runs each client session's command loop,
// forwarding statements to servers and their results back as raw packets.
package proxy

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/backend"
	"switchyard/router"
	"switchyard/wire"
)

// Options configure a Server.
type Options struct {
	Users []User
	// TLS enables client-side TLS; RequireTLS refuses clients that do not
	// upgrade.
	TLS        *tls.Config
	RequireTLS bool
	// RSAKey is used for caching_sha2_password on connections without TLS;
	// nil means generate one on first use.
	RSAKey *rsa.PrivateKey

	HandshakeTimeout     time.Duration
	IdleTimeout          time.Duration
	MaxPacketSize        int
	MaxClientConnections int

	Cluster *backend.Cluster
	Logger  *slog.Logger

	// Routing configures the read/write split; Rules are the query rules.
	Routing Routing
	Rules   *router.Rules

	// Multiplexing lets sessions share pooled server connections between
	// statements; Pool configures the pool.
	Multiplexing bool
	Pool         backend.PoolOptions
}

// Routing is the part of routing configuration sessions consult.
type Routing struct {
	Reads             string // conf.ReadsReplicas or conf.ReadsPrimary
	Balance           string
	FallbackToPrimary bool
	ReadYourWrites    string // conf.RYWOff or conf.RYWSession
}

// defaultVersion is announced until a server has been reached and told its own.
const defaultVersion = "5.5.5-10.11.0-MariaDB-switchyard"

// Server accepts client connections and runs their sessions.
type Server struct {
	opt        Options
	tls        *tls.Config
	requireTLS bool
	log        *slog.Logger
	cluster    *backend.Cluster

	userTab  atomic.Pointer[userTable]
	rules    atomic.Pointer[router.Rules]
	routing  Routing
	balancer *router.Balancer
	// classCache shares statement classifications between sessions; each
	// session has its own parser.
	classCache  *router.Cache
	classifiers sync.Pool
	// pool holds idle server connections that sessions share.
	pool         *backend.Pool
	multiplexing bool
	// unparsed counts statements the parser rejected (sent to the primary).
	unparsed atomic.Int64
	// pinnedSessions counts sessions held on one server connection.
	pinnedSessions atomic.Int64
	sha2Cache      sha2Cache
	key            keyOnce
	writers        writerPool
	deflates       wire.DeflatePool
	cmdBufs        bufPool

	// userConns counts sessions per user, for users[].max_connections.
	userMu    sync.Mutex
	userConns map[string]int

	nextID   atomic.Uint64
	mu       sync.Mutex
	sessions map[uint64]*session
	lns      []net.Listener
	closing  atomic.Bool
	wg       sync.WaitGroup
	clients  atomic.Int64
}

// NewServer validates opt and returns a server that is not yet listening.
func NewServer(opt Options) (*Server, error) {
	if opt.Cluster == nil {
		return nil, errors.New("proxy: no cluster")
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.MaxPacketSize <= 0 {
		opt.MaxPacketSize = 64 << 20
	}
	s := &Server{
		opt:        opt,
		tls:        opt.TLS,
		requireTLS: opt.RequireTLS,
		log:        opt.Logger,
		cluster:    opt.Cluster,
		sessions:   make(map[uint64]*session),
		userConns:  make(map[string]int),
	}
	bal, err := router.NewBalancer(opt.Routing.Balance)
	if err != nil {
		return nil, err
	}
	s.balancer, s.routing = bal, opt.Routing
	s.pool, s.multiplexing = backend.NewPool(opt.Pool), opt.Multiplexing
	s.classCache = router.NewCache(10000)
	s.classifiers.New = func() any { return router.NewClassifier(s.classCache) }
	s.rules.Store(opt.Rules)
	s.key.key = opt.RSAKey
	if s.key.key == nil && opt.TLS != nil && len(opt.TLS.Certificates) > 0 {
		if k, ok := opt.TLS.Certificates[0].PrivateKey.(*rsa.PrivateKey); ok {
			s.key.key = k
		}
	}
	if err := s.SetUsers(opt.Users); err != nil {
		return nil, err
	}
	return s, nil
}

// SetUsers replaces the accounts; sessions already logged in keep theirs.
func (s *Server) SetUsers(users []User) error {
	t, err := newUserTable(users)
	if err != nil {
		return err
	}
	s.userTab.Store(t)
	return nil
}

// takeUserSlot counts a session for u, or reports false when u already has
// users[].max_connections sessions.
func (s *Server) takeUserSlot(u *User) bool {
	s.userMu.Lock()
	defer s.userMu.Unlock()
	if u.MaxConnections > 0 && s.userConns[u.Name] >= u.MaxConnections {
		return false
	}
	s.userConns[u.Name]++
	return true
}

func (s *Server) releaseUserSlot(u *User) {
	s.userMu.Lock()
	defer s.userMu.Unlock()
	if s.userConns[u.Name] <= 1 {
		delete(s.userConns, u.Name)
	} else {
		s.userConns[u.Name]--
	}
}

// PinnedSessions is the number of sessions held on their server connection
// by state that cannot move (see session pins).
func (s *Server) PinnedSessions() int64 { return s.pinnedSessions.Load() }

// Pool is the shared pool of idle server connections.
func (s *Server) Pool() *backend.Pool { return s.pool }

// SetRules replaces the query rules; they apply to the next statements.
func (s *Server) SetRules(r *router.Rules) { s.rules.Store(r) }

// Unparsed is how many statements the parser could not read; they went to
// the primary.
func (s *Server) Unparsed() int64 { return s.unparsed.Load() }

func (s *Server) users() *userTable { return s.userTab.Load() }

func (s *Server) rsaKey() (*rsa.PrivateKey, error) { return s.key.get() }

func (s *Server) offeredCaps() uint32 {
	if s.tls != nil {
		return serverCaps | mysql.CLIENT_SSL
	}
	return serverCaps
}

func (s *Server) serverVersion() string {
	if v, ok := s.cluster.ServerVersion(); ok && v != "" {
		return v
	}
	return defaultVersion
}

// Serve accepts connections on ln until Shutdown or a listener error.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		ln.Close()
		return net.ErrClosed
	}
	s.lns = append(s.lns, ln)
	s.mu.Unlock()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errTooManyFiles) {
				// Out of file descriptors and the like: back off instead
				// of spinning, as net/http does.
				delay = min(max(delay*2, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; retrying", "err", err, "in", delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		s.startSession(nc)
	}
}

func (s *Server) startSession(nc net.Conn) {
	id := s.nextID.Add(1)
	sess := newSession(s, id, nc)
	s.mu.Lock()
	s.sessions[id] = sess
	s.mu.Unlock()
	s.wg.Add(1)
	s.clients.Add(1)
	go sess.run(func() {
		s.mu.Lock()
		delete(s.sessions, id)
		s.mu.Unlock()
		s.clients.Add(-1)
		s.wg.Done()
	})
}

// Shutdown stops accepting, lets running statements and open transactions
// finish until ctx ends, then closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	s.mu.Lock()
	for _, ln := range s.lns {
		ln.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		s.closeIdle()
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			s.mu.Lock()
			for _, sess := range s.sessions {
				sess.abort()
			}
			s.mu.Unlock()
			<-done
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// closeIdle closes sessions that wait for a command outside a transaction.
func (s *Server) closeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sess := range s.sessions {
		sess.closeIfIdle()
	}
}

// Sessions returns the number of open client sessions.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}
