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
	"runtime/debug"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"switchyard/backend"
	"switchyard/conf"
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

	cfg, rt, err := loadConfig(*configPath)
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
		go background(context.Background(), logger, "pprof", func() {
			logger.Info("pprof listening", "addr", *pprofAddr)
			if err := http.ListenAndServe(*pprofAddr, nil); err != nil {
				logger.Error("pprof stopped", "err", err)
			}
		})
	}
	if err := serve(*configPath, cfg, rt, logger); err != nil {
		logger.Error("switchyard stopped", "err", err)
		return 1
	}
	return 0
}

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
}

func loadConfig(path string) (*conf.Config, *runtimeParts, error) {
	cfg, err := conf.Load(path)
	if err != nil {
		return nil, nil, err
	}
	rt := &runtimeParts{}
	var problems conf.Errors
	if cfg.TLS != nil {
		cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			problems = append(problems, cfg.Problem("tls.cert_file", fmt.Sprintf("cannot load certificate: %v", err)))
		} else {
			rt.clientTLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
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
	if len(problems) > 0 {
		return nil, nil, problems
	}
	return cfg, rt, nil
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

func serve(path string, cfg *conf.Config, rt *runtimeParts, log *slog.Logger) error {
	specs := make([]backend.ServerSpec, 0, len(cfg.Servers))
	for _, s := range cfg.Servers {
		specs = append(specs, backend.ServerSpec{Name: s.Name, Address: s.Address, Weight: s.Weight, MaxConnections: s.MaxConnections, MaxReplicationLag: s.MaxReplicationLag})
	}
	cluster := backend.NewCluster(specs, backend.Options{ConnectTimeout: cfg.Limits.ConnectTimeout, TLS: rt.backendTLS, Logger: log,
		// GTIDs tell read-your-writes which replica has a session's last
		// write: with one server or read_your_writes off nobody asks.
		NoGTIDTracking: len(specs) < 2 || cfg.Routing.ReadYourWrites == conf.RYWOff})
	maxIdle := cfg.Pool.MaxIdlePerServer
	if maxIdle == 0 {
		maxIdle = -1 // keep none
	}
	pool := backend.NewPool(backend.PoolOptions{MaxIdlePerServer: maxIdle, IdleTimeout: noneIfZero(cfg.Pool.IdleTimeout),
		MaxLifetime: noneIfZero(cfg.Pool.MaxLifetime)}, cluster)
	ctx, stopBackground := context.WithCancel(context.Background())
	defer stopBackground()
	if cfg.Monitor.User != "" {
		// Roles come from the servers themselves; the first check runs
		// before clients are accepted so they find the primary known.
		probe := backend.ProbeOptions{User: cfg.Monitor.User, Password: cfg.Monitor.Password,
			Interval: cfg.Monitor.Interval, Timeout: cfg.Monitor.Timeout, MaxReplicationLag: cfg.Monitor.MaxReplicationLag,
			HeartbeatTable: cfg.Monitor.HeartbeatTable}
		cluster.SetProbing(true)
		cluster.ProbeOnce(ctx, probe)
		go background(ctx, log, "monitor", func() { cluster.Probe(ctx, probe) })
	} else {
		log.Warn("monitor.user is not set: the first server is taken as the primary and the others as replicas, unchecked")
	}
	var accounts proxy.AccountSource
	if cfg.UsersFromServers {
		creds := backend.Credentials{User: cfg.Monitor.User, Plain: cfg.Monitor.Password, HasPassword: cfg.Monitor.Password != ""}
		accounts = func(ctx context.Context) ([]backend.Account, error) {
			return cluster.LoadAccounts(ctx, creds, cfg.Monitor.Timeout)
		}
	}
	srv, err := proxy.NewServer(proxy.Options{
		ListenerOptions: proxy.ListenerOptions{
			Users:                proxyUsers(cfg),
			Accounts:             accounts,
			TLS:                  rt.clientTLS,
			RequireTLS:           cfg.TLS != nil && cfg.TLS.Require,
			HandshakeTimeout:     cfg.Limits.HandshakeTimeout,
			IdleTimeout:          noneIfZero(cfg.Limits.ClientIdleTimeout),
			MaxPacketSize:        int(cfg.Limits.MaxPacketSize),
			MaxClientConnections: cfg.Limits.MaxClientConnections,
			Logger:               log,
		},
		Servers:                    cluster,
		Pool:                       pool,
		DisableMultiplexing:        !cfg.Pool.Multiplexing,
		MaxPreparedBytesPerSession: cfg.Limits.MaxPreparedBytesPerSession,
		MaxParseSize:               int(cfg.Limits.MaxParseSize),
		Routing: proxy.Routing{Reads: cfg.Routing.Reads, Balance: cfg.Routing.Balance,
			NoFallbackToPrimary: !cfg.Routing.FallbackToPrimary, ReadYourWrites: cfg.Routing.ReadYourWrites,
			ReadOnlyFunctions: cfg.Routing.ReadOnlyFunctions},
		Rules: rt.rules,
	})
	if err != nil {
		return err
	}
	reaped := make(chan struct{})
	go func() {
		defer close(reaped)
		background(ctx, log, "pool reaper", func() { pool.Reap(ctx) }) // closes the idle connections when ctx ends
	}()
	ln, err := net.Listen("tcp", cfg.Listen.MySQL)
	if err != nil {
		return fmt.Errorf("listen.mysql: %w", err)
	}
	log.Info("switchyard listening", "mysql", ln.Addr().String(), "version", buildVersion(), "servers", len(specs))

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	for {
		select {
		case err := <-serveErr:
			return err
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				reload(path, cfg, srv, log)
				continue
			}
			log.Info("shutting down: waiting for running statements and open transactions", "signal", sig.String(), "timeout", cfg.Limits.ShutdownTimeout)
			sctx, cancel := context.WithTimeout(context.Background(), cfg.Limits.ShutdownTimeout)
			err := srv.Shutdown(sctx)
			cancel()
			if errors.Is(err, context.DeadlineExceeded) {
				log.Warn("shutdown timeout reached; closed the remaining sessions and their statements")
			}
			// Say goodbye to the servers instead of vanishing.
			stopBackground()
			<-reaped
			log.Info("switchyard stopped")
			return nil
		}
	}
}

// reload re-reads the config file. It is validated whole first; an invalid
// file changes nothing. Only the parts this version can change live are
// applied; the others are reported as needing a restart.
func reload(path string, old *conf.Config, srv *proxy.Server, log *slog.Logger) {
	start := time.Now()
	cfg, rt, err := loadConfig(path)
	if err != nil {
		log.Error("reload rejected: config is invalid; nothing changed", "file", path, "problems", err.Error())
		return
	}
	if err := srv.SetUsers(proxyUsers(cfg)); err != nil {
		log.Error("reload rejected; nothing changed", "err", err)
		return
	}
	srv.SetRules(rt.rules)
	if cfg.Listen.MySQL != old.Listen.MySQL || cfg.Listen.Admin != old.Listen.Admin || cfg.Listen.HTTP != old.Listen.HTTP {
		log.Warn("reload: listen addresses changed; they take effect after a restart")
	}
	log.Info("config reloaded: users apply to new logins, query rules to new statements", "file", path, "took", time.Since(start))
}
