// Command sysbench is `make bench`: it compares three ways to reach the
// same MariaDB servers (directly, through HAProxy in TCP mode and through
// switchyard) over a matrix of workloads (sysbench oltp_point_select,
// oltp_read_only and oltp_read_write, text and prepared, at several thread
// counts, and a PHP-FPM-style connect-per-request load), in interleaved
// rounds with medians; then what idle clients, many clients and a huge
// result cost the proxies. It writes a Markdown report (--out), replaces
// the generated section of BENCHMARKS.md with it (--update) and draws PNG
// charts (--charts). --quick is a short run for checking the runner.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"switchyard/bench/internal/idlerss"
	"switchyard/bench/internal/sysbenchrun"
	"switchyard/integration/harness"
)

type config struct {
	rounds, tables, tableSize int
	duration, warmup, settle  time.Duration
	workloads                 []workload
	threads, phpWorkers       []int
	// idleClients is the idle-client count for switchyard; HAProxy, whose
	// every client is also a server connection, gets at most
	// haproxyIdleClients.
	idleClients, haproxyIdleClients int
	connClients                     int // clients for "server connections per clients"
	bigResultMB                     int // size of the big result, MiB
	out, update, charts             string
	quick                           bool
	// gomaxprocs, when set, adds a target: switchyard run with the
	// GOMAXPROCS environment variable set to it.
	gomaxprocs string
	// baseline, when set, adds a target: another switchyard binary (an
	// earlier commit's), so a change is measured against what it changed
	// in the same interleaved rounds.
	baseline string
	// profile, when set, is a directory where a CPU profile of each
	// switchyard target is written for every measured run.
	profile string
	// contention, with profile, also samples lock contention and blocking
	// in the switchyard under test (--pprof-contention) and writes its
	// mutex and block profiles beside the CPU profile. A baseline binary
	// may predate that flag, so it gets CPU profiles only.
	contention bool
	// switchyardYAML is merged into the config of every switchyard
	// measured in the rounds (see harness.ProxyOptions.ExtraYAML).
	switchyardYAML string
}

// benchYAML undoes what the test harness sets for tests' sake: idle server
// connections closing after a second (the default is 5 minutes).
const benchYAML = "pool:\n  idle_timeout: 5m\n"

// target is one way to reach the servers: readAddr for read-only
// workloads, writeAddr for those that write. pid is nil for direct, whose
// CPU is not what is being compared.
type target struct {
	name, readAddr, writeAddr string
	pid                       func() int
	// pprof is the proxy's --pprof address when profiles are taken;
	// contention: it samples contention too (config.contention).
	pprof      string
	contention bool
}

func main() {
	// HAProxy is started from this goroutine with Pdeathsig, which fires
	// when the forking *thread* exits; locked, the main goroutine keeps the
	// main thread, which lives as long as the process.
	runtime.LockOSThread()
	os.Exit(run())
}

func run() int {
	cfg, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	// Ctrl-C cancels ctx; every deferred Stop below still runs.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fail := func(err error) int {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "bench: interrupted; cleaning up")
			return 130
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	loadStart := loadAvg()
	began := time.Now()

	tmp, err := os.MkdirTemp("", "sy-bench-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tmp)
	logf("bench: building switchyard")
	bin, err := harness.BuildSwitchyard(ctx, tmp)
	if err != nil {
		return fail(err)
	}
	startCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cluster, err := harness.StartCluster(startCtx, harness.ClusterOptions{
		// Room for the idle-client and many-clients measurements, which
		// HAProxy passes on to a replica one to one.
		ExtraArgs: []string{"--max-connections=" + strconv.Itoa(max(4000, cfg.haproxyIdleClients+cfg.connClients+600))},
		Logf:      logf,
	})
	if err != nil {
		return fail(err)
	}
	defer cluster.Stop()
	sbBin, err := lookPath("sysbench", "/usr/bin/sysbench")
	if err != nil {
		return fail(err)
	}
	sb := sysbench{sbBin, cluster.AppUser, cluster.AppPassword, cluster.Database, cfg.tables, cfg.tableSize}
	logf("bench: sysbench prepare on the primary (%d tables x %d rows)", cfg.tables, cfg.tableSize)
	if _, err := sb.run(ctx, workload{test: "oltp_read_write"}, cluster.Primary.Addr(), cfg.tables, 0, "prepare"); err != nil {
		return fail(err)
	}
	if err := cluster.WaitReplicasCaughtUp(startCtx); err != nil {
		return fail(err)
	}

	// Reads: direct goes to one replica, the proxies spread them over both
	// (HAProxy per connection, switchyard per statement). Writes: direct
	// and HAProxy reach the primary, switchyard splits the workload itself.
	replicas := []string{cluster.Replicas[0].Addr(), cluster.Replicas[1].Addr()}
	hap, err := startHAProxy(ctx, tmp, "haproxy", replicas, []string{cluster.Primary.Addr()})
	if err != nil {
		return fail(err)
	}
	defer hap.stop()
	// startSwitchyard starts a binary under test, listening for profile
	// requests when profiles are taken.
	startSwitchyard := func(binary string, env []string, contention bool) (*harness.Proxy, string, error) {
		opt := harness.ProxyOptions{Binary: binary, Cluster: cluster, LogLevel: "warn", Env: env, ExtraYAML: cfg.switchyardYAML}
		addr := ""
		if cfg.profile != "" {
			var err error
			if addr, err = freeAddr(); err != nil {
				return nil, "", err
			}
			opt.Args = []string{"--pprof", addr}
			if contention {
				opt.Args = append(opt.Args, "--pprof-contention")
			}
		}
		p, err := harness.StartProxy(startCtx, opt)
		return p, addr, err
	}
	proxy, pprofAddr, err := startSwitchyard(bin, nil, cfg.contention)
	if err != nil {
		return fail(err)
	}
	defer proxy.Stop()
	targets := []target{
		{"direct", cluster.Replicas[0].Addr(), cluster.Primary.Addr(), nil, "", false},
		{"haproxy", hap.readAddr, hap.writeAddr, hap.pid, "", false},
		{"switchyard", proxy.Addr(), proxy.Addr(), proxy.PID, pprofAddr, cfg.contention},
	}
	if cfg.gomaxprocs != "" {
		p2, addr, err := startSwitchyard(bin, []string{"GOMAXPROCS=" + cfg.gomaxprocs}, cfg.contention)
		if err != nil {
			return fail(err)
		}
		defer p2.Stop()
		targets = append(targets, target{"switchyard-gomaxprocs" + cfg.gomaxprocs, p2.Addr(), p2.Addr(), p2.PID, addr, cfg.contention})
	}
	if cfg.baseline != "" {
		p3, addr, err := startSwitchyard(cfg.baseline, nil, false)
		if err != nil {
			return fail(fmt.Errorf("baseline %s: %w", cfg.baseline, err))
		}
		defer p3.Stop()
		targets = append(targets, target{"switchyard-baseline", p3.Addr(), p3.Addr(), p3.PID, addr, false})
	}

	if cfg.warmup > 0 {
		for _, t := range targets {
			logf("bench: warm-up %s, %v", t.name, cfg.warmup)
			if r := measure(ctx, sb, t, cfg.workloads[0], cfg.threads[0], cfg.warmup, ""); r.err != nil {
				return fail(fmt.Errorf("warm-up: %w", r.err))
			}
		}
	}
	var results []result
	for round := 1; round <= cfg.rounds; round++ {
		for _, w := range cfg.workloads {
			for _, threads := range cfg.threadsOf(w) {
				// Each round starts at another target, so that none
				// always runs right after the same one (a machine still
				// busy from the previous run, caches warmed by it).
				for i := range targets {
					t := targets[(i+round-1)%len(targets)]
					var profile string
					if cfg.profile != "" && t.pprof != "" {
						profile = filepath.Join(cfg.profile, fmt.Sprintf("%s-%s-%dthreads-round%d.pprof",
							t.name, strings.ReplaceAll(w.String(), " ", "-"), threads, round))
					}
					r := measure(ctx, sb, t, w, threads, cfg.duration, profile)
					if ctx.Err() != nil {
						return fail(ctx.Err())
					}
					r.round = round
					results = append(results, r)
					if r.err != nil {
						logf("bench: round %d, %s, %d threads, %s: FAILED: %v", round, w, threads, t.name, r.err)
					} else {
						logf("bench: round %d, %-22s %3d threads, %-10s %7.0f qps, p95 %6.2f ms, %d errors, proxy CPU %s s",
							round, w, threads, t.name, r.qps, r.latP95, r.errs, num(r.cpu, 2))
					}
				}
			}
		}
	}
	if proxy.PID() == 0 {
		logf("bench: switchyard exited during the runs (%v); log tail:\n%s", proxy.ExitErr(), proxy.LogTail(30))
	}
	proxy.Stop()
	hap.stop()

	ex := extras{}
	// A fresh process of a switchyard binary for each measurement below.
	freshSwitchyard := func(binary string) (*harness.Proxy, error) {
		// Room for every idle client and the warm-up connection.
		limits := fmt.Sprintf("limits:\n  max_client_connections: %d\n", max(10000, cfg.idleClients+100))
		return harness.StartProxy(ctx, harness.ProxyOptions{Binary: binary, Cluster: cluster, LogLevel: "warn", ExtraYAML: limits})
	}
	if cfg.idleClients > 0 {
		switchyardIdle := func(binary string) func() (idlerss.Result, error) {
			return func() (idlerss.Result, error) {
				p, err := freshSwitchyard(binary)
				if err != nil {
					return idlerss.Result{}, err
				}
				defer p.Stop()
				return measureIdle(ctx, cfg, cfg.idleClients, p.Addr(), p.PID(), cluster)
			}
		}
		ex.idle = append(ex.idle, idleLine("switchyard", switchyardIdle(bin)))
		if cfg.baseline != "" {
			ex.idle = append(ex.idle, idleLine("switchyard-baseline", switchyardIdle(cfg.baseline)))
		}
		ex.idle = append(ex.idle, idleLine("HAProxy (context only: two sockets and buffers per client, and a server connection each)", func() (idlerss.Result, error) {
			h, err := startHAProxy(ctx, tmp, "haproxy-idle", replicas[:1], nil)
			if err != nil {
				return idlerss.Result{}, err
			}
			defer h.stop()
			return measureIdle(ctx, cfg, min(cfg.idleClients, cfg.haproxyIdleClients), h.readAddr, h.pid(), cluster)
		}))
	}
	if cfg.connClients > 0 && ctx.Err() == nil {
		logf("bench: server connections for %d clients", cfg.connClients)
		d := min(cfg.duration, 5*time.Second)
		if p, err := freshSwitchyard(bin); err != nil {
			ex.connsErr = append(ex.connsErr, "switchyard: "+err.Error())
		} else {
			r, err := serverConnsPerClients(ctx, cluster, sb, p.Addr(), cfg.connClients, d)
			p.Stop()
			ex.conns = append(ex.conns, namedConns{"switchyard", r, err})
		}
		if h, err := startHAProxy(ctx, tmp, "haproxy-conns", replicas, nil); err != nil {
			ex.connsErr = append(ex.connsErr, "haproxy: "+err.Error())
		} else {
			r, err := serverConnsPerClients(ctx, cluster, sb, h.readAddr, cfg.connClients, d)
			h.stop()
			ex.conns = append(ex.conns, namedConns{"haproxy", r, err})
		}
	}
	if cfg.bigResultMB > 0 && ctx.Err() == nil {
		logf("bench: a %d MiB result through each proxy", cfg.bigResultMB)
		if p, err := freshSwitchyard(bin); err != nil {
			ex.big = append(ex.big, namedBig{name: "switchyard", err: err})
		} else {
			r, err := streamBigResult(ctx, sb, p.Addr(), p.PID(), cfg.bigResultMB)
			p.Stop()
			ex.big = append(ex.big, namedBig{"switchyard", r, err})
		}
		if h, err := startHAProxy(ctx, tmp, "haproxy-big", replicas[:1], nil); err != nil {
			ex.big = append(ex.big, namedBig{name: "haproxy", err: err})
		} else {
			r, err := streamBigResult(ctx, sb, h.readAddr, h.pid(), cfg.bigResultMB)
			h.stop()
			ex.big = append(ex.big, namedBig{"haproxy", r, err})
		}
	}
	if ctx.Err() != nil {
		return fail(ctx.Err())
	}

	names := []string{}
	for _, t := range targets {
		names = append(names, t.name)
	}
	rep := report{cfg: cfg, results: results, targets: names, ex: ex,
		m: machineInfo(ctx, cluster.Replicas[0], loadStart), took: time.Since(began)}
	md := rep.markdown()
	fmt.Print(md)
	if err := os.WriteFile(cfg.out, []byte(md), 0o644); err != nil {
		return fail(err)
	}
	logf("bench: written to %s", cfg.out)
	if cfg.charts != "" {
		if err := rep.drawCharts(); err != nil {
			return fail(err)
		}
		logf("bench: charts in %s", cfg.charts)
	}
	if cfg.update != "" {
		if err := updateSection(cfg.update, md); err != nil {
			return fail(err)
		}
		logf("bench: %s updated", cfg.update)
	}
	for _, r := range results {
		// Deadlocks that sysbench retries are part of read_write at high
		// concurrency on every path, direct included; anything else is not.
		if r.err != nil || (r.errs > 0 && !r.work.writes()) {
			fmt.Fprintln(os.Stderr, "bench: some runs failed or had errors; see the raw table")
			return 1
		}
	}
	return 0
}

// threadsOf is the thread (or PHP worker) counts a workload runs at.
func (c config) threadsOf(w workload) []int {
	if w.php() {
		return c.phpWorkers
	}
	return c.threads
}

const fullWorkloads = "point_select:text,point_select:ps,read_only:text,read_only:ps,read_write:text,read_write:ps,php"

func parseFlags() (config, error) {
	var cfg config
	var threads, phpWorkers, workloads string
	flag.BoolVar(&cfg.quick, "quick", false, "a short run to check the runner: 1 round of 3s, 8 threads, point_select text, read_only prepared and PHP-style, small extras; other flags still override")
	flag.IntVar(&cfg.rounds, "rounds", 3, "interleaved rounds; the report shows medians over them")
	cfg.duration, cfg.warmup = 10*time.Second, 2*time.Second
	flag.Var((*seconds)(&cfg.duration), "duration", "length of each run: whole seconds, as 10 or 10s")
	flag.Var((*seconds)(&cfg.warmup), "warmup", "unrecorded run per target before the rounds, as --duration; 0 skips it")
	flag.StringVar(&workloads, "workloads", fullWorkloads, "comma-separated NAME:text|ps (sysbench oltp_NAME) and php (connect, 5 reads, disconnect)")
	flag.StringVar(&threads, "threads", "8,64,256", "comma-separated sysbench thread counts")
	flag.StringVar(&phpWorkers, "php-workers", "8,64", "comma-separated concurrent workers of the PHP-style workload")
	flag.StringVar(&cfg.gomaxprocs, "gomaxprocs", "", "also measure switchyard run with GOMAXPROCS set to this")
	flag.StringVar(&cfg.baseline, "baseline", "", "also measure this switchyard binary (e.g. built from an earlier commit) in the same rounds")
	flag.StringVar(&cfg.profile, "profile", "", "write a CPU profile of each switchyard target for every measured run into this directory")
	flag.BoolVar(&cfg.contention, "contention", false, "with --profile, also write mutex and block profiles of switchyard (not of --baseline), which then samples them (--pprof-contention) at some cost in CPU")
	flag.IntVar(&cfg.tables, "tables", 4, "sysbench tables")
	flag.IntVar(&cfg.tableSize, "table-size", 10000, "rows per table")
	flag.IntVar(&cfg.idleClients, "idle-clients", 10000, "idle clients for the RSS measurement; 0 skips it")
	flag.IntVar(&cfg.haproxyIdleClients, "haproxy-idle-clients", 2000, "at most this many idle clients for HAProxy (each is also a server connection)")
	flag.IntVar(&cfg.connClients, "conn-clients", 1000, "clients for the server-connections measurement; 0 skips it")
	flag.IntVar(&cfg.bigResultMB, "big-result-mb", 1024, "size in MiB of the big result streamed through each proxy; 0 skips it")
	flag.DurationVar(&cfg.settle, "settle", 3*time.Second, "wait before each RSS reading")
	flag.StringVar(&cfg.out, "out", "bench/results-latest.md", "Markdown file to write")
	yamlFile := flag.String("switchyard-yaml", "", "a YAML file merged into the config of every switchyard in the rounds, e.g. to measure a setting")
	flag.StringVar(&cfg.update, "update", "", "also replace the generated section of this file (BENCHMARKS.md) with the report")
	flag.StringVar(&cfg.charts, "charts", "bench/charts", "directory for the PNG charts; empty: none")
	flag.Parse()
	if flag.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if cfg.quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		quick := map[string]string{"rounds": "1", "duration": "3", "warmup": "0", "threads": "8", "php-workers": "8",
			"workloads": "point_select:text,read_only:ps,php", "idle-clients": "300", "conn-clients": "100",
			"big-result-mb": "64", "settle": "1s", "out": "bench/results-quick.md", "charts": filepath.Join(os.TempDir(), "sy-bench-quick-charts")}
		for name, v := range quick {
			if !set[name] {
				if err := flag.Set(name, v); err != nil {
					return cfg, err
				}
			}
		}
		if !set["workloads"] {
			workloads = quick["workloads"]
		}
		if !set["threads"] {
			threads = quick["threads"]
		}
		if !set["php-workers"] {
			phpWorkers = quick["php-workers"]
		}
	}
	cfg.switchyardYAML = benchYAML
	if *yamlFile != "" {
		b, err := os.ReadFile(*yamlFile)
		if err != nil {
			return cfg, err
		}
		if strings.Contains("\n"+string(b), "\npool:") {
			cfg.switchyardYAML = "" // the file says what the pool does
		}
		cfg.switchyardYAML += string(b)
	}
	var err error
	if cfg.workloads, err = parseWorkloads(workloads); err != nil {
		return cfg, err
	}
	if cfg.threads, err = parseInts("--threads", threads); err != nil {
		return cfg, err
	}
	if cfg.phpWorkers, err = parseInts("--php-workers", phpWorkers); err != nil {
		return cfg, err
	}
	whole := func(d time.Duration) bool { return d%time.Second == 0 }
	switch {
	case cfg.rounds < 1:
		return cfg, errors.New("--rounds must be at least 1")
	case cfg.duration < time.Second || !whole(cfg.duration) || !whole(cfg.warmup):
		return cfg, errors.New("--duration and --warmup must be whole seconds (sysbench --time), --duration at least 1s")
	}
	return cfg, nil
}

func parseInts(name, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad %s %q", name, s)
		}
		out = append(out, n)
	}
	return out, nil
}

// seconds is a duration flag that also takes a bare number of seconds, as
// sysbench's --time does.
type seconds time.Duration

func (s *seconds) String() string { return time.Duration(*s).String() }

func (s *seconds) Set(v string) error {
	if n, err := strconv.Atoi(v); err == nil {
		*s = seconds(time.Duration(n) * time.Second)
		return nil
	}
	d, err := time.ParseDuration(v)
	*s = seconds(d)
	return err
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }

// takeProfile writes to path a CPU profile of the Go process serving
// /debug/pprof on addr, over a run of length d: it starts a second in and
// ends a second before the run does. With contention, the mutex and block
// profiles of the same span go beside it (-mutex.pprof, -block.pprof).
func takeProfile(ctx context.Context, addr string, d time.Duration, path string, contention bool) error {
	secs := max(1, int(d/time.Second)-2)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Second):
	}
	kinds := map[string]string{"profile": path}
	if contention {
		base := strings.TrimSuffix(path, ".pprof")
		kinds["mutex"], kinds["block"] = base+"-mutex.pprof", base+"-block.pprof"
	}
	errs := make(chan error, len(kinds))
	for kind, out := range kinds {
		go func() {
			errs <- fetchProfile(ctx, fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", addr, kind, secs), out)
		}()
	}
	var first error
	for range kinds {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// fetchProfile writes the profile url serves to path.
func fetchProfile(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// cpuSeconds is utime+stime of pid, all threads included. /proc counts in
// clock ticks of USER_HZ, which the kernel fixes at 100 on every Linux
// architecture Go supports (sysconf(_SC_CLK_TCK) needs cgo).
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name in parentheses may contain spaces; fields 14 and 15
	// (utime, stime) are the 12th and 13th after its closing parenthesis.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return float64(utime+stime) / 100, nil
}

type haproxy struct {
	readAddr, writeAddr, log string
	cmd                      *exec.Cmd
	done                     chan struct{}
}

// haproxyMaxconn leaves room for the idle-client and many-clients
// measurements; HAProxy sizes its file descriptor limit from it.
const haproxyMaxconn = 5000

// startHAProxy runs HAProxy in the foreground (-db) as a plain TCP relay:
// one frontend balancing reads over the replicas (per connection, round
// robin), one to the primary for workloads that write (none if writes is
// nil). It waits until a MySQL greeting comes through each.
func startHAProxy(ctx context.Context, dir, name string, reads, writes []string) (*haproxy, error) {
	bin, err := lookPath("haproxy", "/usr/sbin/haproxy")
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		h, err := tryHAProxy(ctx, bin, dir, name, reads, writes)
		// Another process may take the probed port before HAProxy binds it.
		if err == nil || attempt == 2 || ctx.Err() != nil {
			return h, err
		}
	}
}

func tryHAProxy(ctx context.Context, bin, dir, name string, reads, writes []string) (*haproxy, error) {
	h := &haproxy{log: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	var err error
	if h.readAddr, err = freeAddr(); err != nil {
		return nil, err
	}
	cfgText := fmt.Sprintf(`global
	maxconn %d
defaults
	mode tcp
	timeout connect 5s
	timeout client 1h
	timeout server 1h
frontend reads
	bind %s
	default_backend replicas
backend replicas
	balance roundrobin
%s`, haproxyMaxconn, h.readAddr, serverLines("replica", reads))
	if writes != nil {
		if h.writeAddr, err = freeAddr(); err != nil {
			return nil, err
		}
		cfgText += fmt.Sprintf(`frontend writes
	bind %s
	default_backend primary
backend primary
%s`, h.writeAddr, serverLines("primary", writes))
	}
	cfgPath := filepath.Join(dir, name+".cfg")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		return nil, err
	}
	logFile, err := os.Create(h.log)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	h.cmd = exec.Command(bin, "-db", "-f", cfgPath)
	h.cmd.Stdout, h.cmd.Stderr = logFile, logFile
	// Own process group, so Ctrl-C reaches only us and we stop it in
	// order; Pdeathsig takes it down if we are killed outright.
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := h.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { h.cmd.Wait(); close(h.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for _, addr := range []string{h.readAddr, h.writeAddr} {
		for addr != "" {
			err := probeGreeting(addr)
			if err == nil {
				break
			}
			select {
			case <-h.done:
				return nil, fmt.Errorf("haproxy exited at startup (%v): %s", h.cmd.ProcessState, sysbenchrun.LastLines(readFile(h.log), 10))
			case <-ctx.Done():
				h.stop()
				return nil, ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				h.stop()
				return nil, fmt.Errorf("haproxy on %s not relaying a MySQL greeting: %v; log: %s", addr, err, sysbenchrun.LastLines(readFile(h.log), 10))
			}
		}
	}
	return h, nil
}

func serverLines(prefix string, addrs []string) string {
	var b strings.Builder
	for i, a := range addrs {
		fmt.Fprintf(&b, "\tserver %s%d %s\n", prefix, i+1, a)
	}
	return b.String()
}

// probeGreeting succeeds once addr sends the first bytes of a MySQL initial
// handshake (protocol version 10); HAProxy accepts before it can relay.
func probeGreeting(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(time.Second))
	var hdr [5]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return err
	}
	if hdr[4] != 10 {
		return fmt.Errorf("first packet starts with %#x, not a greeting", hdr[4])
	}
	return nil
}

func (h *haproxy) pid() int {
	select {
	case <-h.done:
		return 0
	default:
		return h.cmd.Process.Pid
	}
}

// stop kills HAProxy: it holds no state worth a graceful shutdown.
func (h *haproxy) stop() {
	if h.pid() != 0 {
		h.cmd.Process.Kill()
	}
	<-h.done
}

func measureIdle(ctx context.Context, cfg config, n int, addr string, pid int, c *harness.Cluster) (idlerss.Result, error) {
	return idlerss.Measure(ctx, idlerss.Options{
		Addr: addr, User: c.AppUser, Password: c.AppPassword, DB: c.Database,
		PID: pid, N: n, Settle: cfg.settle,
	})
}

func idleLine(name string, f func() (idlerss.Result, error)) string {
	logf("bench: idle clients: %s", name)
	r, err := f()
	if err != nil {
		return fmt.Sprintf("%s: FAILED: %v", name, err)
	}
	return fmt.Sprintf("%s: **%d bytes** RSS per idle client (VmRSS %d kB → %d kB with %d idle clients)",
		name, r.BytesPerClient(), r.BeforeKB, r.AfterKB, r.N)
}

type machine struct {
	cpu, mem, kernel, loadStart, loadEnd  string
	nproc                                 int
	goVer, mariadb, sysbench, haproxy, at string
}

func machineInfo(ctx context.Context, replica *harness.Server, loadStart string) machine {
	m := machine{
		cpu: "unknown", nproc: runtime.NumCPU(), goVer: runtime.Version(),
		kernel:    strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")),
		loadStart: loadStart, loadEnd: loadAvg(), at: time.Now().UTC().Format("2006-01-02 15:04 UTC"),
	}
	if v := procField("/proc/cpuinfo", "model name"); v != "" {
		m.cpu = v
	}
	if kb, err := strconv.Atoi(strings.Fields(procField("/proc/meminfo", "MemTotal") + " 0")[0]); err == nil {
		m.mem = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
	}
	if db, err := replica.DB(ctx); err == nil {
		db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&m.mariadb)
		db.Close()
	}
	m.sysbench = strings.TrimSpace(strings.TrimPrefix(cmdOutput("sysbench", "--version"), "sysbench"))
	if f := strings.Fields(cmdOutput("haproxy", "-v")); len(f) > 2 {
		m.haproxy = f[2]
	}
	return m
}

func median(xs []float64) float64 {
	xs = slices.DeleteFunc(slices.Clone(xs), math.IsNaN)
	if len(xs) == 0 {
		return math.NaN()
	}
	slices.Sort(xs)
	n := len(xs)
	return (xs[(n-1)/2] + xs[n/2]) / 2
}

func num(x float64, prec int) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "–"
	}
	return strconv.FormatFloat(x, 'f', prec, 64)
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}

func lookPath(name, fallback string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	if _, err := os.Stat(fallback); err == nil {
		return fallback, nil
	}
	return "", fmt.Errorf("%s not found on PATH or at %s; `make deps` installs it", name, fallback)
}

func cmdOutput(name string, args ...string) string {
	bin, err := lookPath(name, "/usr/sbin/"+name)
	if err != nil {
		return "unknown"
	}
	out, _ := exec.Command(bin, args...).Output()
	return firstLine(string(out))
}

// procField returns the value of the first "key: value" line of a /proc file.
func procField(path, key string) string {
	for _, line := range strings.Split(readFile(path), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func loadAvg() string {
	f := strings.Fields(readFile("/proc/loadavg"))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
