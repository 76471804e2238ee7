// Command switchyard is the MySQL/MariaDB proxy: it reads its config file,
// listens for clients and forwards their statements to the servers.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"switchyard/admin"
	"switchyard/backend"
	"switchyard/conf"
	"switchyard/firewall"
	"switchyard/observe"
	"switchyard/proxy"
	"switchyard/router"
)

// version is set at build time with -ldflags "-X main.version=..."; without
// it the module build information is used.
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("switchyard", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.StringP("config", "c", "./switchyard.yaml", "config file")
	check := fs.Bool("check", false, "validate the config file and exit: 0 when valid, else 1 with one line per problem")
	showVersion := fs.Bool("version", false, "print the version and exit")
	logLevel := fs.String("log-level", "info", "debug|info|warn|error")
	logFormat := fs.String("log-format", "text", "text|json")
	pprofAddr := fs.String("pprof", "", "serve Go profiling endpoints (/debug/pprof/) on this address; for diagnosing the proxy itself")
	pprofContention := fs.Bool("pprof-contention", false, "with --pprof, also sample lock contention and blocking (/debug/pprof/mutex and /debug/pprof/block); costs some CPU")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, "switchyard", buildVersion())
		return 0
	}
	logger, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		fmt.Fprintln(stderr, "switchyard:", err)
		return 2
	}

	cfg, rt, file, err := loadConfig(*configPath, logger)
	if err != nil {
		var problems conf.Errors
		if errors.As(err, &problems) {
			for _, p := range problems {
				fmt.Fprintln(stderr, p.String())
			}
		} else {
			fmt.Fprintf(stderr, "%s: %v\n", *configPath, err)
		}
		return 1
	}
	if *check {
		fmt.Fprintf(stdout, "%s: ok\n", *configPath)
		return 0
	}
	if *pprofAddr != "" {
		if *pprofContention {
			// Go samples neither unless asked. One contended lock in
			// contentionSample, and blocking events in proportion to their
			// length (one per blockSampleNanos of waiting), keep the
			// sampling's own cost small under a benchmark's load.
			runtime.SetMutexProfileFraction(contentionSample)
			runtime.SetBlockProfileRate(blockSampleNanos)
		}
		go background(context.Background(), logger, "pprof", func() {
			logger.Info("pprof listening", "addr", *pprofAddr)
			if err := http.ListenAndServe(*pprofAddr, nil); err != nil {
				logger.Error("pprof stopped", "err", err)
			}
		})
	}
	if err := serve(*configPath, cfg, rt, file, logger); err != nil {
		logger.Error("switchyard stopped", "err", err)
		return 1
	}
	return 0
}

// Sampling rates of --pprof-contention (see runtime.SetMutexProfileFraction
// and runtime.SetBlockProfileRate).
const (
	contentionSample = 10
	blockSampleNanos = 10_000
)

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	return "dev"
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opt := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opt)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opt)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// runtimeParts are what a config needs beyond its text: loaded certificates.
// Building them is part of validation, so --check catches a missing key file.
type runtimeParts struct {
	clientTLS  *tls.Config
	backendTLS *tls.Config
	rules      *router.Rules
	firewall   *firewall.Firewall
}

// loadConfig reads, parses and validates the config file, and returns
// its text too: the admin interface keeps it to write the file back with
// its comments.
func loadConfig(path string, log *slog.Logger) (*conf.Config, *runtimeParts, []byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, nil, err
	}
	cfg, err := conf.Parse(path, data, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	rt, err := buildParts(cfg, log)
	if err != nil {
		return nil, nil, nil, err
	}
	return cfg, rt, data, nil
}

// buildParts loads what cfg names beyond its text (certificates) and
// checks what conf cannot: the rules compile, an admin interface others can
// reach has a password. Its problems name the file and line.
func buildParts(cfg *conf.Config, log *slog.Logger) (*runtimeParts, error) {
	rt := &runtimeParts{}
	var problems conf.Errors
	if cfg.TLS != nil {
		cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			problems = append(problems, cfg.Problem("tls.cert_file", fmt.Sprintf("cannot load certificate: %v", err)))
		} else {
			rt.clientTLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tlsVersion(cfg.TLS.MinVersion)}
		}
	}
	if cfg.BackendTLS != nil {
		bt := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: !cfg.BackendTLS.Verify}
		if cfg.BackendTLS.CAFile != "" {
			pem, err := os.ReadFile(cfg.BackendTLS.CAFile)
			pool := x509.NewCertPool()
			if err != nil || !pool.AppendCertsFromPEM(pem) {
				problems = append(problems, cfg.Problem("backend_tls.ca_file", fmt.Sprintf("cannot load CA certificates from %q", cfg.BackendTLS.CAFile)))
			}
			bt.RootCAs = pool
		}
		rt.backendTLS = bt
	}
	rules, err := router.NewRules(cfg.QueryRules)
	if err != nil {
		problems = append(problems, cfg.Problem("query_rules", err.Error()))
	}
	rt.rules = rules
	var adminProblem conf.Errors
	if errors.As(checkAdminPassword(cfg), &adminProblem) {
		problems = append(problems, adminProblem...)
	}
	if rt.firewall, err = newFirewall(cfg, log); err != nil {
		problems = append(problems, cfg.Problem("firewall.allowlist_file", err.Error()))
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return rt, nil
}

// tlsVersion is the crypto/tls constant of tls.min_version.
func tlsVersion(v string) uint16 {
	if v == conf.TLS13 {
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}

func proxyUsers(cfg *conf.Config) []proxy.User {
	users := make([]proxy.User, 0, len(cfg.Users))
	for _, u := range cfg.Users {
		users = append(users, proxy.User{
			Name:           u.Name,
			Password:       u.Password,
			PasswordHash:   u.PasswordHash,
			DefaultSchema:  u.DefaultSchema,
			RequireTLS:     u.RequireTLS,
			AuthPlugin:     u.AuthPlugin,
			MaxConnections: u.MaxConnections,
			Reads:          u.Reads,
		})
	}
	return users
}

// background runs task until it returns or ctx ends. A panic in it is
// logged and the task started again after a second, so a bug in a
// background task neither takes the process down nor stops the task for
// good.
func background(ctx context.Context, log *slog.Logger, name string, task func()) {
	for {
		panicked := func() (panicked bool) {
			defer func() {
				if r := recover(); r != nil {
					log.Error("background task panicked; restarting it", "task", name, "panic", r, "stack", string(debug.Stack()))
					panicked = true
				}
			}()
			task()
			return false
		}()
		if !panicked {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// noneIfZero turns the config's "0 means none" into the proxy's "negative
// means none" (its zero values are the config defaults).
func noneIfZero(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

func serve(path string, cfg *conf.Config, rt *runtimeParts, file []byte, log *slog.Logger) error {
	cluster := backend.NewCluster(serverSpecs(cfg), clusterOptions(cfg, rt, log))
	pool := backend.NewPool(poolOptions(cfg), cluster)
	ctx, stopBackground := context.WithCancel(context.Background())
	defer stopBackground()
	l := &live{path: path, log: log, cluster: cluster, pool: pool, bg: ctx}
	if cfg.Monitor.User == "" {
		log.Warn("monitor.user is not set: the first server is taken as the primary and the others as replicas, unchecked; no failover")
	} else if cfg.Failover.Auto && cfg.Failover.ReplicationUser == "" {
		log.Warn("failover.replication_user is not set: replicas re-pointed by a failover keep the account they had, and a former primary cannot rejoin as a replica")
	}
	// Roles come from the servers themselves: the first check runs before
	// clients are accepted so they find the primary known.
	l.startMonitor(cfg)
	defer l.stop()
	clientTLS := rt.clientTLS
	if clientTLS != nil {
		l.certs, clientTLS = newCertSwitch(rt.clientTLS)
	}
	lim := proxyLimits(cfg)
	var accounts proxy.AccountSource
	if cfg.UsersFromServers {
		creds := backend.Credentials{User: cfg.Monitor.User, Plain: cfg.Monitor.Password, HasPassword: cfg.Monitor.Password != ""}
		accounts = func(ctx context.Context) (backend.Accounts, error) {
			return cluster.LoadAccounts(ctx, creds, cfg.Monitor.Timeout)
		}
	}
	srv, err := proxy.NewServer(proxy.Options{
		ListenerOptions: proxy.ListenerOptions{
			Users:                 proxyUsers(cfg),
			Accounts:              accounts,
			TLS:                   clientTLS,
			RequireTLS:            lim.RequireTLS,
			HandshakeTimeout:      lim.HandshakeTimeout,
			IdleTimeout:           lim.IdleTimeout,
			NetReadTimeout:        lim.NetReadTimeout,
			MaxPacketSize:         lim.MaxPacketSize,
			MaxClientConnections:  lim.MaxClientConnections,
			Logger:                log,
			ProxyProtocolNetworks: cfg.Listen.ProxyProtocolNetworks,
		},
		Servers:                    cluster,
		Pool:                       pool,
		DisableMultiplexing:        !cfg.Pool.Multiplexing,
		MaxPreparedBytesPerSession: cfg.Limits.MaxPreparedBytesPerSession,
		MaxParseSize:               int(cfg.Limits.MaxParseSize),
		Routing:                    proxyRouting(cfg),
		Rules:                      rt.rules,
	})
	if err != nil {
		return err
	}
	srv.SetSlowLog(cfg.SlowLog.Threshold)
	l.fw.set(srv, rt.firewall)
	defer l.fw.stop() // learn mode's last write
	l.obs = observe.New(observeSources(path, srv, cluster, pool, log))
	if err := startHTTP(cfg, l.obs, log); err != nil {
		return err
	}
	defer stopHTTP(l.obs)
	logConfigSummary(log, path, cfg)
	l.srv = srv
	l.cfg.Store(cfg)
	reaped := make(chan struct{})
	go func() {
		defer close(reaped)
		background(ctx, log, "pool reaper", func() { pool.Reap(ctx) }) // closes the idle connections when ctx ends
	}()
	ln, err := net.Listen("tcp", cfg.Listen.MySQL)
	if err != nil {
		return fmt.Errorf("listen.mysql: %w", err)
	}
	var adminLn net.Listener
	if cfg.Listen.Admin != "" {
		l.admin, err = admin.New(admin.Options{ConfigPath: path, Runtime: l, Cluster: cluster, Pool: pool, Data: srv,
			Listener: proxy.ListenerOptions{TLS: clientTLS, Logger: log.With("listener", "admin")}, Logger: log,
			Version: buildVersion()}, file)
		if err != nil {
			ln.Close()
			return fmt.Errorf("admin interface: %w", err)
		}
		if adminLn, err = net.Listen("tcp", cfg.Listen.Admin); err != nil {
			ln.Close()
			return fmt.Errorf("listen.admin: %w", err)
		}
	}
	attrs := []any{"mysql", ln.Addr().String(), "version", buildVersion(), "servers", len(cfg.Servers)}
	if adminLn != nil {
		attrs = append(attrs, "admin", adminLn.Addr().String())
	}
	log.Info("switchyard listening", attrs...)

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	serveErr := make(chan error, 2)
	go func() { serveErr <- srv.Serve(ln) }()
	if adminLn != nil {
		go func() {
			if err := l.admin.Serve(adminLn); err != nil {
				serveErr <- fmt.Errorf("admin interface: %w", err)
			}
		}()
	}
	for {
		select {
		case err := <-serveErr:
			return err
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				l.sighup()
				continue
			}
			if sig == syscall.SIGUSR2 {
				// A planned switchover to the best replica, as the admin
				// interface's SWITCHOVER asks for one.
				go background(ctx, log, "switchover", func() { switchover(ctx, cluster, log) })
				continue
			}
			timeout := l.Current().Limits.ShutdownTimeout
			log.Info("shutting down: waiting for running statements and open transactions", "signal", sig.String(), "timeout", timeout)
			if l.admin != nil {
				_ = l.admin.Shutdown(context.Background())
			}
			sctx, cancel := context.WithTimeout(context.Background(), timeout)
			err := srv.Shutdown(sctx)
			cancel()
			if errors.Is(err, context.DeadlineExceeded) {
				log.Warn("shutdown timeout reached; closed the remaining sessions and their statements")
			}
			// Say goodbye to the servers instead of vanishing.
			l.stop()
			stopBackground()
			<-reaped
			log.Info("switchyard stopped")
			return nil
		}
	}
}

// switchover runs a planned switchover to the best replica (SIGUSR2) and
// logs its outcome; the steps are logged as events by the cluster.
func switchover(ctx context.Context, cluster *backend.Cluster, log *slog.Logger) {
	log.Info("switchover asked for (SIGUSR2)")
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	p, err := cluster.Switchover(ctx, "")
	if err != nil {
		log.Error("switchover failed", "err", err)
		return
	}
	log.Info("switchover finished", "primary", p.Name)
}
