// Package backend owns the database servers: their addresses, connections to
// them and, as the project grows, pools, health monitoring and failover.
package backend

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Server is one configured database server.
type Server struct {
	// ID is the server's position in the config, stable for its lifetime.
	ID                int
	Name              string
	Address           string
	Weight            int
	MaxConnections    int
	MaxReplicationLag time.Duration
	// slots holds a token per open client connection when MaxConnections
	// caps them.
	slots chan struct{}

	// Counters the admin and metrics views read.
	ConnsOpened atomic.Int64
	ConnErrors  atomic.Int64

	serverState
}

// Options configure a Cluster.
type Options struct {
	ConnectTimeout time.Duration
	TLS            *tls.Config
}

// Cluster is the set of servers behind the proxy.
type Cluster struct {
	opt     Options
	mu      sync.RWMutex
	servers []*Server
	probing bool

	readers ReaderPool

	evMu   sync.Mutex
	events []Event
	// splitBrain says why writes are refused, when the servers disagree on
	// which is the primary.
	splitBrain atomic.Pointer[string]

	version atomic.Value // string: the version a server reported last
}

// ServerSpec is the configuration of one server.
type ServerSpec struct {
	Name    string
	Address string
	Weight  int
	// MaxConnections caps the connections the proxy opens to the server
	// for clients (0: no cap).
	MaxConnections int
	// MaxReplicationLag overrides the monitor's limit for this server (0: none).
	MaxReplicationLag time.Duration
}

// NewCluster builds a cluster over specs. Roles are not configured: the
// probe discovers them (see SetProbing for running without one).
func NewCluster(specs []ServerSpec, opt Options) *Cluster {
	c := &Cluster{opt: opt}
	for i, s := range specs {
		srv := &Server{ID: i, Name: s.Name, Address: s.Address, Weight: s.Weight, MaxConnections: s.MaxConnections, MaxReplicationLag: s.MaxReplicationLag}
		if s.MaxConnections > 0 {
			srv.slots = make(chan struct{}, s.MaxConnections)
		}
		c.servers = append(c.servers, srv)
	}
	return c
}

// Servers returns the configured servers.
func (c *Cluster) Servers() []*Server {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return append([]*Server(nil), c.servers...)
}

// ErrNoPrimary says no server can take writes.
var ErrNoPrimary = errors.New("no primary server is available: no healthy server has read_only=OFF")

// shunAfterDialFailures is how many connects in a row may fail before a
// server is shunned without waiting for its next check.
const shunAfterDialFailures = 3

// ErrSplitBrain says the servers disagree on which is the primary.
var ErrSplitBrain = errors.New("split brain")

// SetProbing tells the cluster whether roles come from probes. Without
// probes (no monitor account configured) the first server is taken as the
// primary and the others as replicas, all assumed healthy.
func (c *Cluster) SetProbing(on bool) {
	c.mu.Lock()
	c.probing = on
	c.mu.Unlock()
}

// Primary returns the server that takes writes: the first healthy server,
// in config order, that is writable.
func (c *Cluster) Primary() (*Server, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.probing {
		if len(c.servers) == 0 || c.servers[0].adminStatus.Load() != int32(StatusOnline) {
			return nil, ErrNoPrimary
		}
		return c.servers[0], nil
	}
	if why := c.SplitBrain(); why != "" {
		return nil, fmt.Errorf("%w, writes are refused until one primary remains: %s", ErrSplitBrain, why)
	}
	for _, s := range c.servers {
		if s.Status() == StatusOnline && s.Role() == RolePrimary {
			return s, nil
		}
	}
	return nil, ErrNoPrimary
}

// Replicas appends to dst the servers that may serve reads now.
func (c *Cluster) Replicas(dst []*Server) []*Server {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.probing {
		for _, s := range c.servers[min(1, len(c.servers)):] {
			if s.adminStatus.Load() == int32(StatusOnline) {
				dst = append(dst, s)
			}
		}
		return dst
	}
	for _, s := range c.servers {
		if s.Readable() && s.Role() == RoleReplica {
			dst = append(dst, s)
		}
	}
	return dst
}

// Connect opens a connection to srv with the cluster's timeouts and TLS.
func (c *Cluster) Connect(ctx context.Context, srv *Server, opt DialOptions) (*Conn, error) {
	opt.Timeout = c.opt.ConnectTimeout
	opt.TLS = c.opt.TLS
	opt.Readers = &c.readers
	conn, err := Dial(ctx, srv, opt)
	if err != nil {
		srv.ConnErrors.Add(1)
		var me *mysql.MyError
		if !errors.As(err, &me) && srv.dialFailures.Add(1) == shunAfterDialFailures && c.probing && srv.healthy.Swap(false) {
			// The server cannot be reached: stop sending it new work now
			// rather than at its next check, which readmits it.
			c.event("server_down", srv.Name, "repeated connection errors: "+err.Error())
		}
		return nil, err
	}
	srv.dialFailures.Store(0)
	if err := conn.TrackGTID(); err != nil {
		conn.Close()
		return nil, err
	}
	srv.ConnsOpened.Add(1)
	c.version.Store(conn.ServerVersion)
	return conn, nil
}

// ConnectTimeout is how long opening a connection, or waiting for a free
// one, may take.
func (c *Cluster) ConnectTimeout() time.Duration {
	if c.opt.ConnectTimeout <= 0 {
		return 5 * time.Second
	}
	return c.opt.ConnectTimeout
}

// ErrServerFull says every connection servers[].max_connections allows is
// in use and none came free in time.
type ErrServerFull struct {
	Server string
	Max    int
	Waited time.Duration
}

func (e *ErrServerFull) Error() string {
	return fmt.Sprintf("all %d connections to server %s (servers[].max_connections) are in use; waited %v for one", e.Max, e.Server, e.Waited)
}

// tryTakeSlot reserves one of srv's connection slots if one is free.
func (s *Server) tryTakeSlot() bool {
	if s.slots == nil {
		return true
	}
	select {
	case s.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (s *Server) releaseSlot() {
	if s.slots != nil {
		<-s.slots
	}
}

// ServerVersion is the version string the servers report, once one has been
// reached; clients see it as the proxy's own.
func (c *Cluster) ServerVersion() (string, bool) {
	v, ok := c.version.Load().(string)
	return v, ok
}
