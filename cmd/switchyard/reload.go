package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/admin"
	"switchyard/backend"
	"switchyard/conf"
	"switchyard/observe"
	"switchyard/proxy"
)

// Reloading the config: a new config is validated completely (conf's
// checks, then certificates and rules) before anything changes, then
// applied part by part without dropping a client connection. Everything
// that can change without rebinding a port does: servers (added, removed,
// settings), users, rules, routing, pool, monitor, limits, client and
// server TLS certificates. Listen addresses, and turning client TLS on or
// off, need a restart: such changes are reported, and the rest applies.
// Every outcome is an event and a log line.

// live is the running proxy as a reload sees it. It implements
// admin.Runtime.
type live struct {
	path    string
	log     *slog.Logger
	cluster *backend.Cluster
	pool    *backend.Pool
	srv     *proxy.Server
	admin   *admin.Admin // nil when listen.admin is ""
	// certs serves the client TLS certificate a reload may swap; nil
	// without client TLS.
	certs *certSwitch
	// bg is the context of background tasks (the monitor).
	bg context.Context

	// fw runs the firewall in effect; obs counts reloads for /metrics
	// (nil until the HTTP endpoint is set up).
	fw  firewallTask
	obs *observe.Observer

	// mu serialises reloads; cfg is the config in effect.
	mu      sync.Mutex
	cfg     atomic.Pointer[conf.Config]
	monitor *monitorTask
}

// Current is the config in effect.
func (l *live) Current() *conf.Config { return l.cfg.Load() }

// Reject records a reload that failed before it could be applied: one
// event, which is also the log line.
func (l *live) Reject(source string, err error) {
	msg := err.Error()
	var me *mysql.MyError
	if errors.As(err, &me) {
		msg = me.Message // the client's error, without its code
	}
	l.cluster.Note(slog.LevelError, "reload_failed", "", source+": "+oneLine(msg), "reload rejected: the config is invalid; nothing changed")
	if l.obs != nil {
		l.obs.Reloaded(false)
	}
}

func oneLine(s string) string {
	return strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ")
}

// sighup reloads the config file, as RELOAD CONFIG does when the admin
// interface runs (the staged tables then follow the file). A panic is
// logged: it must not end the proxy, whose main goroutine this is.
func (l *live) sighup() {
	defer func() {
		if r := recover(); r != nil {
			l.log.Error("reload panicked; the config may be partly applied", "panic", r, "stack", string(debug.Stack()))
		}
	}()
	if l.admin != nil {
		_ = l.admin.Reload(context.Background(), "SIGHUP") // its outcome is an event and a log line
		return
	}
	l.reloadFile("SIGHUP")
}

// reloadFile is SIGHUP without the admin interface: the file is loaded
// and applied.
func (l *live) reloadFile(source string) {
	cfg, err := conf.Load(l.path)
	if err != nil {
		l.Reject(source, fmt.Errorf("%s: %w", l.path, err))
		return
	}
	_ = l.Apply(cfg, source)
}

// Apply validates what conf cannot (certificates, rules, the admin
// password), then applies cfg. On error nothing has changed.
func (l *live) Apply(cfg *conf.Config, source string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	start := time.Now()
	old := l.Current()
	// Learn mode's allow-list is written before the new config reads it.
	l.fw.flush(l.log)
	parts, err := buildParts(cfg, l.log)
	if err != nil {
		l.Reject(source, err)
		return err
	}
	// What needs a restart keeps its old value, and is reported.
	restart := needsRestart(old, cfg)
	next := *cfg
	next.Listen = old.Listen
	if (old.TLS == nil) != (cfg.TLS == nil) {
		next.TLS = old.TLS
	}
	if err := checkAdminPassword(&next); err != nil {
		l.Reject(source, err)
		return err
	}

	if err := l.srv.Reconfigure(proxyReconfig(&next, parts)); err != nil {
		l.Reject(source, err)
		return err
	}
	// Nothing below can fail.
	changes := l.cluster.Reconfigure(serverSpecs(&next))
	l.pool.Drop(changes.Retired)
	l.cluster.SetOptions(clusterOptions(&next, parts, l.log))
	l.pool.SetOptions(poolOptions(&next))
	if !changes.Empty() || next.Monitor != old.Monitor {
		// A restarted monitor checks every server at once: a new one
		// serves after its first passing check, not a whole interval later.
		l.stopMonitor()
		l.startMonitor(&next)
	}
	l.srv.SetSlowLog(next.SlowLog.Threshold)
	l.fw.set(l.srv, parts.firewall)
	if l.certs != nil && next.TLS != nil && parts.clientTLS != nil {
		l.certs.set(parts.clientTLS)
	}
	if l.admin != nil {
		_ = l.admin.SetCredentials(next.Admin.User, next.Admin.Password) // validated by conf
	}
	l.cfg.Store(&next)

	detail := fmt.Sprintf("%s: %s; %d users, %d query rules; took %v", source, changes, len(next.Users), len(next.QueryRules),
		time.Since(start).Round(time.Microsecond))
	level := slog.LevelInfo
	if len(restart) > 0 {
		detail += "; needs a restart to apply: " + strings.Join(restart, ", ")
		level = slog.LevelWarn
	}
	l.cluster.Note(level, "reload", "", detail, "config reloaded")
	if l.obs != nil {
		l.obs.Reloaded(true)
	}
	return nil
}

// needsRestart lists the changes a reload cannot apply.
func needsRestart(old, cfg *conf.Config) []string {
	var keys []string
	if old.Listen.MySQL != cfg.Listen.MySQL {
		keys = append(keys, "listen.mysql")
	}
	if old.Listen.Admin != cfg.Listen.Admin {
		keys = append(keys, "listen.admin")
	}
	if old.Listen.HTTP != cfg.Listen.HTTP {
		keys = append(keys, "listen.http")
	}
	if !slices.Equal(old.Listen.ProxyProtocolNetworks, cfg.Listen.ProxyProtocolNetworks) {
		keys = append(keys, "listen.proxy_protocol_networks")
	}
	if (old.TLS == nil) != (cfg.TLS == nil) {
		keys = append(keys, "tls (turning client TLS on or off)")
	}
	return keys
}

// checkAdminPassword refuses an empty admin password on an admin address
// other machines can reach.
func checkAdminPassword(cfg *conf.Config) error {
	if cfg.Listen.Admin == "" || cfg.Admin.Password != "" || isLoopback(cfg.Listen.Admin) {
		return nil
	}
	return conf.Errors{cfg.Problem("admin.password", fmt.Sprintf("must not be empty: listen.admin %s is reachable from other machines (use a loopback address, or set a password)", cfg.Listen.Admin))}
}

// isLoopback reports whether addr (host:port) listens on loopback only.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func serverSpecs(cfg *conf.Config) []backend.ServerSpec {
	specs := make([]backend.ServerSpec, 0, len(cfg.Servers))
	for _, s := range cfg.Servers {
		specs = append(specs, backend.ServerSpec{Name: s.Name, Address: s.Address, Weight: s.Weight, MaxConnections: s.MaxConnections,
			MaxReplicationLag: s.MaxReplicationLag, NeverPromote: !s.Promotable})
	}
	return specs
}

func clusterOptions(cfg *conf.Config, parts *runtimeParts, log *slog.Logger) backend.Options {
	fo := cfg.Failover
	return backend.Options{ConnectTimeout: cfg.Limits.ConnectTimeout, TLS: parts.backendTLS, Logger: log,
		// GTIDs tell read-your-writes which replica has a session's last
		// write: with one server or read_your_writes off nobody asks.
		NoGTIDTracking: len(cfg.Servers) < 2 || cfg.Routing.ReadYourWrites == conf.RYWOff,
		Failover: backend.FailoverOptions{Auto: fo.Auto, FailureThreshold: fo.FailureThreshold, ReplicationUser: fo.ReplicationUser,
			ReplicationPassword: fo.ReplicationPassword, Cooperative: fo.Cooperative, HoldTimeout: fo.HoldTimeout}}
}

func poolOptions(cfg *conf.Config) backend.PoolOptions {
	maxIdle := cfg.Pool.MaxIdlePerServer
	if maxIdle == 0 {
		maxIdle = -1 // keep none
	}
	return backend.PoolOptions{MaxIdlePerServer: maxIdle, IdleTimeout: noneIfZero(cfg.Pool.IdleTimeout), MaxLifetime: noneIfZero(cfg.Pool.MaxLifetime)}
}

func proxyRouting(cfg *conf.Config) proxy.Routing {
	return proxy.Routing{Reads: cfg.Routing.Reads, Balance: cfg.Routing.Balance,
		NoFallbackToPrimary: !cfg.Routing.FallbackToPrimary, ReadYourWrites: cfg.Routing.ReadYourWrites,
		GTIDWait: noneIfZero(cfg.Routing.GTIDWait), ReadOnlyFunctions: cfg.Routing.ReadOnlyFunctions}
}

func proxyLimits(cfg *conf.Config) proxy.Limits {
	return proxy.Limits{HandshakeTimeout: cfg.Limits.HandshakeTimeout, IdleTimeout: noneIfZero(cfg.Limits.ClientIdleTimeout),
		NetReadTimeout: noneIfZero(cfg.Limits.NetReadTimeout),
		MaxPacketSize:  int(cfg.Limits.MaxPacketSize), MaxClientConnections: cfg.Limits.MaxClientConnections,
		RequireTLS: cfg.TLS != nil && cfg.TLS.Require}
}

func proxyReconfig(cfg *conf.Config, parts *runtimeParts) proxy.Reconfig {
	return proxy.Reconfig{Users: proxyUsers(cfg), Routing: proxyRouting(cfg), Rules: parts.rules,
		Limits: proxyLimits(cfg), DisableMultiplexing: !cfg.Pool.Multiplexing,
		MaxParseSize: int(cfg.Limits.MaxParseSize), MaxPreparedBytesPerSession: cfg.Limits.MaxPreparedBytesPerSession}
}

func probeOptions(cfg *conf.Config) backend.ProbeOptions {
	m := cfg.Monitor
	return backend.ProbeOptions{User: m.User, Password: m.Password, Interval: m.Interval, Timeout: m.Timeout,
		MaxReplicationLag: m.MaxReplicationLag, HeartbeatTable: m.HeartbeatTable}
}

// monitorTask is a running monitor, stopped and started again when a
// reload changes the servers or the monitor's settings.
type monitorTask struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// startMonitor runs the monitor for cfg, or, without monitor.user, takes
// the servers' roles from their order.
func (l *live) startMonitor(cfg *conf.Config) {
	if cfg.Monitor.User == "" {
		l.cluster.SetProbing(false)
		return
	}
	opt := probeOptions(cfg)
	ctx, cancel := context.WithCancel(l.bg)
	t := &monitorTask{cancel: cancel, done: make(chan struct{})}
	l.monitor = t
	if old := l.Current(); old == nil || old.Monitor.User == "" {
		// Roles come from the servers themselves from now on; the first
		// check runs before anything else sees the cluster probing.
		l.cluster.SetProbing(true)
		l.cluster.ProbeOnce(ctx, opt)
	}
	go func() {
		defer close(t.done)
		background(ctx, l.log, "monitor", func() { l.cluster.Probe(ctx, opt) })
	}()
}

// stop stops the monitor for good, after a reload in progress.
func (l *live) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopMonitor()
}

func (l *live) stopMonitor() {
	if t := l.monitor; t != nil {
		t.cancel()
		<-t.done
		l.monitor = nil
	}
}

// certSwitch serves the client TLS certificate of the config in effect:
// the listener's tls.Config hands each handshake the current one, so a
// reload renews the certificate without a restart.
type certSwitch struct{ cur atomic.Pointer[tls.Config] }

func newCertSwitch(first *tls.Config) (*certSwitch, *tls.Config) {
	cs := &certSwitch{}
	cs.cur.Store(first)
	outer := first.Clone()
	outer.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) { return cs.cur.Load(), nil }
	return cs, outer
}

func (cs *certSwitch) set(c *tls.Config) { cs.cur.Store(c) }
