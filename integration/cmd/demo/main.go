// Command demo starts a MariaDB primary with two replicas and switchyard in
// front of them, prints how to connect, and tears everything down on
// SIGINT/SIGTERM. It is what `make demo` runs after building switchyard;
// with --failover (`make demo-failover`) it also kills the primary under
// writes, shows the failover and the old primary's rejoin, then a
// switchover (failover.go).
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"switchyard/integration/harness"
)

func main() {
	os.Exit(run())
}

func run() int {
	binary := flag.String("switchyard", "", "path of the switchyard binary (required)")
	replicas := flag.Int("replicas", 2, "number of replicas")
	keep := flag.Bool("keep", false, "keep data dirs, config and logs after exit")
	extra := flag.String("extra-yaml", "", "file whose YAML is merged into the generated proxy config")
	failover := flag.Bool("failover", false, "semi-synchronous replication; kill the primary under writes, show the failover, the rejoin and a switchover")
	flag.Parse()
	if *binary == "" {
		fmt.Fprintln(os.Stderr, "demo: --switchyard PATH is required (make demo builds it)")
		return 2
	}
	if abs, err := filepath.Abs(*binary); err == nil {
		*binary = abs
	}
	if _, err := os.Stat(*binary); err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		return 2
	}
	var extraYAML string
	if *extra != "" {
		b, err := os.ReadFile(*extra)
		if err != nil {
			fmt.Fprintf(os.Stderr, "demo: %v\n", err)
			return 2
		}
		extraYAML = string(b)
	}
	if *replicas <= 0 {
		*replicas = -1 // harness: negative means none
	}

	// A signal during startup cancels it; the deferred stops still run.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	began := time.Now()
	if *failover {
		extraYAML = failoverYAML + extraYAML
	}
	cluster, err := harness.StartCluster(startCtx, harness.ClusterOptions{Replicas: *replicas, KeepDirs: *keep, Logf: logf, SemiSync: *failover})
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: starting MariaDB cluster: %v\n", err)
		return 1
	}
	defer cluster.Stop()
	logf("demo: MariaDB cluster up in %v", time.Since(began).Round(time.Millisecond))

	proxy, err := harness.StartProxy(startCtx, harness.ProxyOptions{
		Binary:    *binary,
		Cluster:   cluster,
		ExtraYAML: extraYAML,
		// Kept next to the cluster so one directory holds everything.
		Dir: filepath.Join(cluster.Dir, "switchyard"),
	})
	if err != nil {
		// The error carries the proxy's log tail.
		fmt.Fprintf(os.Stderr, "demo: starting switchyard: %v\n", err)
		return 1
	}
	defer func() {
		if err := proxy.Stop(); err != nil {
			logf("demo: switchyard shutdown: %v", err)
		}
	}()

	printInfo(cluster, proxy, *keep)
	if *failover {
		if err := demoFailover(ctx, cluster, proxy, logf); err != nil && ctx.Err() == nil {
			fmt.Fprintf(os.Stderr, "demo: failover: %v; last log lines:\n%s\n", err, proxy.LogTail(40))
			return 1
		}
		logf("\ndemo: the proxy's log (%s) has every step as an event; switchyard keeps running", proxy.LogPath())
	}

	select {
	case <-ctx.Done():
		logf("\ndemo: shutting down")
		return 0
	case <-proxy.Done():
		fmt.Fprintf(os.Stderr, "demo: switchyard exited unexpectedly (%v); last log lines:\n%s\n", proxy.ExitErr(), proxy.LogTail(40))
		return 1
	}
}

func printInfo(c *harness.Cluster, p *harness.Proxy, keep bool) {
	host, port := splitAddr(p.Addr())
	_, adminPort := splitAddr(p.AdminAddr())
	fmt.Printf(`
switchyard is running in front of a MariaDB primary with %d replica(s).

Connect through the proxy:
  mariadb -h %s -P %s -u %s -p%s %s

Writes and transactions go to the primary, plain reads to the replicas
(see it with: /* switchyard:route=replica */ SELECT @@server_id; the mariadb
client strips comments unless started with --comments).
The admin interface (%s) and the HTTP endpoint (%s) are
configured but not built yet.

Servers (direct, as root):
`, len(c.Replicas), host, port, c.AppUser, c.AppPassword, c.Database,
		net.JoinHostPort(host, adminPort), p.HTTPAddr())
	for _, s := range c.Servers() {
		role := "replica"
		if s == c.Primary {
			role = "primary"
		}
		_, sport := splitAddr(s.Addr())
		fmt.Printf("  %-4s %-8s mariadb -h 127.0.0.1 -P %s -u root -p%s   (error log %s)\n",
			s.Name, role, sport, s.RootPassword(), s.ErrorLog)
	}
	kept := "removed on exit; use --keep to keep them"
	if keep {
		kept = "kept after exit"
	}
	fmt.Printf(`
Proxy config: %s
Proxy log:    %s
Files:        %s (%s)

Press Ctrl-C to stop everything.
`, p.ConfigPath(), p.LogPath(), c.Dir, kept)
}

func splitAddr(addr string) (host, port string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, ""
	}
	return host, port
}
