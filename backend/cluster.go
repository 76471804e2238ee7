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
	Name    string
	Address string
	Weight  int

	// Counters the admin and metrics views read.
	ConnsOpened atomic.Int64
	ConnErrors  atomic.Int64
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
	for _, s := range specs {
		c.servers = append(c.servers, &Server{Name: s.Name, Address: s.Address, Weight: s.Weight})
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
var ErrNoPrimary = errors.New("no primary server is available")

// Primary returns the server that takes writes.
func (c *Cluster) Primary() (*Server, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if len(c.servers) == 0 {
		return nil, ErrNoPrimary
	}
	return c.servers[0], nil
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
