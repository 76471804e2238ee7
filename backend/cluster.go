// Package backend owns the database servers: their addresses, connections to
// them and, as the project grows, pools, health monitoring and failover.
package backend

import (
	"context"
	"crypto/tls"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Server is one configured database server.
type Server struct {
	// ID is the server's position in the config, stable for its lifetime.
	ID      int
	Name    string
	Address string
	Weight  int

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

	version atomic.Value // string: the version a server reported last
}

// ServerSpec is the configuration of one server.
type ServerSpec struct {
	Name    string
	Address string
	Weight  int
}

// NewCluster builds a cluster over specs. Roles are not configured: until the
// topology monitor exists, the first server is taken as the primary.
func NewCluster(specs []ServerSpec, opt Options) *Cluster {
	c := &Cluster{opt: opt}
	for i, s := range specs {
		c.servers = append(c.servers, &Server{ID: i, Name: s.Name, Address: s.Address, Weight: s.Weight})
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
		if len(c.servers) == 0 {
			return nil, ErrNoPrimary
		}
		return c.servers[0], nil
	}
	for _, s := range c.servers {
		if s.Healthy() && s.Role() == RolePrimary {
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
		if len(c.servers) > 1 {
			dst = append(dst, c.servers[1:]...)
		}
		return dst
	}
	for _, s := range c.servers {
		if s.Healthy() && s.Role() == RoleReplica {
			dst = append(dst, s)
		}
	}
	return dst
}

// Connect opens a connection to srv with the cluster's timeouts and TLS.
func (c *Cluster) Connect(ctx context.Context, srv *Server, opt DialOptions) (*Conn, error) {
	opt.Timeout = c.opt.ConnectTimeout
	opt.TLS = c.opt.TLS
	conn, err := Dial(ctx, srv, opt)
	if err != nil {
		srv.ConnErrors.Add(1)
		return nil, err
	}
	srv.ConnsOpened.Add(1)
	c.version.Store(conn.ServerVersion)
	return conn, nil
}

// ServerVersion is the version string the servers report, once one has been
// reached; clients see it as the proxy's own.
func (c *Cluster) ServerVersion() (string, bool) {
	v, ok := c.version.Load().(string)
	return v, ok
}
