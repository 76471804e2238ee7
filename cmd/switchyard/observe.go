package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"switchyard/backend"
	"switchyard/conf"
	"switchyard/firewall"
	"switchyard/observe"
	"switchyard/proxy"
)

// Wiring of the HTTP endpoint, the query firewall and the slow log, and the
// startup summary of the config.

// newFirewall builds the firewall of cfg, reading its allow-list file: a
// file enforce mode cannot read is a problem of the config.
func newFirewall(cfg *conf.Config, log *slog.Logger) (*firewall.Firewall, error) {
	mode, err := firewall.ParseMode(cfg.Firewall.Mode)
	if err != nil {
		return nil, err
	}
	return firewall.New(firewall.Options{Mode: mode, File: cfg.Firewall.AllowlistFile, Logger: log})
}

// firewallTask runs the firewall in effect: learn mode writes its
// allow-list file in the background, and a last time when it is replaced
// or switchyard stops.
type firewallTask struct {
	mu     sync.Mutex
	fw     *firewall.Firewall
	cancel context.CancelFunc
	done   chan struct{}
}

// set makes fw the firewall in effect on srv, after the previous one has
// written what it learned.
func (t *firewallTask) set(srv *proxy.Server, fw *firewall.Firewall) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopLocked()
	srv.SetFirewall(fw)
	ctx, cancel := context.WithCancel(context.Background())
	t.fw, t.cancel, t.done = fw, cancel, make(chan struct{})
	go func(done chan struct{}) {
		defer close(done)
		fw.Run(ctx)
	}(t.done)
}

// flush writes what learn mode learned so far: before a reload reads the
// allow-list file again.
func (t *firewallTask) flush(log *slog.Logger) {
	t.mu.Lock()
	fw := t.fw
	t.mu.Unlock()
	if fw == nil {
		return
	}
	if err := fw.Flush(); err != nil {
		log.Error("firewall: cannot write the allow-list before the reload", "err", err)
	}
}

// stop ends the firewall's background writing, after a last write.
func (t *firewallTask) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopLocked()
}

func (t *firewallTask) stopLocked() {
	if t.cancel != nil {
		t.cancel()
		<-t.done
		t.cancel = nil
	}
}

// startHTTP serves /metrics, /health and /status on listen.http; "" turns
// it off (the observer still counts, for a later merge of reload code).
func startHTTP(cfg *conf.Config, obs *observe.Observer, log *slog.Logger) error {
	if cfg.Listen.HTTP == "" {
		return nil
	}
	l, err := net.Listen("tcp", cfg.Listen.HTTP)
	if err != nil {
		return fmt.Errorf("listen.http: %w", err)
	}
	log.Info("http endpoint listening: /metrics, /health, /status", "http", l.Addr().String())
	go func() {
		if err := obs.Serve(l); err != nil {
			log.Error("http endpoint stopped", "err", err)
		}
	}()
	return nil
}

// stopHTTP stops the endpoint once the proxy has stopped: /health answers
// 503 through the shutdown, so that load balancers stop sending clients.
func stopHTTP(obs *observe.Observer) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = obs.Shutdown(ctx)
}

// observeSources are what the endpoint reports on.
func observeSources(path string, srv *proxy.Server, cluster *backend.Cluster, pool *backend.Pool, log *slog.Logger) observe.Sources {
	return observe.Sources{Proxy: srv, Cluster: cluster, Pool: pool, Version: buildVersion(), ConfigFile: path, Logger: log}
}

// logConfigSummary logs, once at startup, what the config puts in effect:
// enough to tell from a log which settings a process ran with. It names
// users but never logs a password or a hash.
func logConfigSummary(log *slog.Logger, path string, cfg *conf.Config) {
	servers := make([]string, 0, len(cfg.Servers))
	for _, s := range cfg.Servers {
		servers = append(servers, s.Name+"="+s.Address)
	}
	users := make([]string, 0, len(cfg.Users))
	for _, u := range cfg.Users {
		users = append(users, u.Name)
	}
	monitor := "off (first server is the primary)"
	if cfg.Monitor.User != "" {
		monitor = fmt.Sprintf("user %s every %v, max lag %v", cfg.Monitor.User, cfg.Monitor.Interval, cfg.Monitor.MaxReplicationLag)
	}
	firewallMode := cfg.Firewall.Mode
	if cfg.Firewall.Mode != conf.FirewallOff {
		firewallMode += " (" + cfg.Firewall.AllowlistFile + ")"
	}
	slow := "off"
	if cfg.SlowLog.Threshold > 0 {
		slow = cfg.SlowLog.Threshold.String()
	}
	proxyNets := make([]string, 0, len(cfg.Listen.ProxyProtocolNetworks))
	for _, p := range cfg.Listen.ProxyProtocolNetworks {
		proxyNets = append(proxyNets, p.String())
	}
	log.Info("config in effect", "file", path,
		"listen_mysql", cfg.Listen.MySQL, "listen_admin", cfg.Listen.Admin, "listen_http", cfg.Listen.HTTP,
		"proxy_protocol_networks", strings.Join(proxyNets, ","),
		"servers", strings.Join(servers, ","), "users", strings.Join(users, ","), "monitor", monitor,
		"tls", cfg.TLS != nil, "tls_required", cfg.TLS != nil && cfg.TLS.Require, "backend_tls", cfg.BackendTLS != nil,
		"reads", cfg.Routing.Reads, "balance", cfg.Routing.Balance, "read_your_writes", cfg.Routing.ReadYourWrites, "gtid_wait", cfg.Routing.GTIDWait,
		"multiplexing", cfg.Pool.Multiplexing, "max_client_connections", cfg.Limits.MaxClientConnections,
		"query_rules", len(cfg.QueryRules), "firewall", firewallMode, "slow_log", slow)
}
