package backend

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Role is what a server is in the replication topology, as last seen.
type Role int32

const (
	RoleUnknown Role = iota
	RolePrimary
	RoleReplica
)

func (r Role) String() string {
	switch r {
	case RolePrimary:
		return "primary"
	case RoleReplica:
		return "replica"
	}
	return "unknown"
}

// ProbeOptions configure the topology checks.
type ProbeOptions struct {
	User     string
	Password string
	Interval time.Duration
	Timeout  time.Duration
	Logger   *slog.Logger
}

// Probe checks every server once now and then every interval until ctx
// ends: a server that answers is healthy, and its @@read_only tells its
// role. This is the minimal view routing needs; replication state and lag
// belong to the full monitor.
func (c *Cluster) Probe(ctx context.Context, opt ProbeOptions) {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	conns := make(map[*Server]*Conn)
	defer func() {
		for _, cn := range conns {
			cn.Close()
		}
	}()
	t := time.NewTicker(opt.Interval)
	defer t.Stop()
	for {
		c.probeAll(ctx, opt, conns)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ProbeOnce checks every server once, for startup, so that the first
// clients find roles already known.
func (c *Cluster) ProbeOnce(ctx context.Context, opt ProbeOptions) {
	conns := make(map[*Server]*Conn)
	c.probeAll(ctx, opt, conns)
	for _, cn := range conns {
		cn.Close()
	}
}

func (c *Cluster) probeAll(ctx context.Context, opt ProbeOptions, conns map[*Server]*Conn) {
	servers := c.Servers()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, s := range servers {
		mu.Lock()
		cn := conns[s]
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			cn, err := c.probeServer(ctx, s, cn, opt)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if cn != nil {
					cn.Close()
				}
				delete(conns, s)
				if s.healthy.Swap(false) || s.lastErr.Load() == nil {
					opt.Logger.Warn("server check failed; no new statements go to it", "server", s.Name, "addr", s.Address, "err", err)
				}
				s.lastErr.Store(&probeErr{err})
				return
			}
			conns[s] = cn
			s.lastErr.Store(&probeErr{})
			if !s.healthy.Swap(true) {
				opt.Logger.Info("server is up", "server", s.Name, "role", s.Role().String())
			}
		}()
	}
	wg.Wait()
}

type probeErr struct{ err error }

func (c *Cluster) probeServer(ctx context.Context, s *Server, cn *Conn, opt ProbeOptions) (*Conn, error) {
	if cn == nil || cn.Broken() {
		var err error
		cn, err = Dial(ctx, s, DialOptions{
			Creds:   Credentials{User: opt.User, Plain: opt.Password, HasPassword: opt.Password != ""},
			Timeout: opt.Timeout,
			TLS:     c.opt.TLS,
		})
		if err != nil {
			return nil, err
		}
		c.version.Store(cn.ServerVersion)
	}
	_ = cn.SetDeadline(time.Now().Add(opt.Timeout))
	rows, err := cn.Query("SELECT @@read_only")
	if err != nil {
		return cn, err
	}
	_ = cn.SetDeadline(time.Time{})
	if len(rows) != 1 || len(rows[0]) != 1 || rows[0][0] == nil {
		return cn, errors.New("unexpected answer to SELECT @@read_only")
	}
	role := RolePrimary
	if *rows[0][0] != "0" {
		role = RoleReplica
	}
	if old := Role(s.role.Swap(int32(role))); old != role && old != RoleUnknown {
		opt.Logger.Warn("server changed role", "server", s.Name, "from", old.String(), "to", role.String())
	}
	return cn, nil
}

// serverState is the part of Server the probe writes and routing reads.
type serverState struct {
	role    atomic.Int32
	healthy atomic.Bool
	lastErr atomic.Pointer[probeErr]
	// Outstanding counts statements running on the server through this
	// proxy, for least-outstanding balancing.
	Outstanding atomic.Int64
}

// Role is the server's role as last probed.
func (s *Server) Role() Role { return Role(s.role.Load()) }

// Healthy reports whether the last check of the server succeeded.
func (s *Server) Healthy() bool { return s.healthy.Load() }

// LastError is the error of the last failed check, or nil.
func (s *Server) LastError() error {
	if e := s.lastErr.Load(); e != nil {
		return e.err
	}
	return nil
}
