// Command sysbench compares the throughput and CPU cost of three ways to
// reach the same MariaDB replica: directly, through HAProxy in TCP mode and
// through switchyard, with sysbench oltp_point_select runs interleaved over
// several rounds; it also measures switchyard's RSS per idle client. It
// prints a Markdown section and writes it to --out. `make bench` runs it
// through bench/bench.sh.
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
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"switchyard/bench/internal/idlerss"
	"switchyard/integration/harness"
)

type config struct {
	rounds, tables, tableSize, idleClients int
	duration, warmup, settle               time.Duration
	threads                                []int
	psMode, out, test                      string
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
}

// target is one way to reach the replica; pid is nil for the replica itself,
// whose CPU is not what is being compared.
type target struct {
	name, addr string
	pid        func() int
	// pprof is the proxy's --pprof address when profiles are taken.
	pprof string
}

type result struct {
	round, threads   int
	target           string
	qps              float64
	queries, errs    int64
	latAvg, latP95   float64 // ms
	cpu              float64 // proxy CPU seconds during the run, NaN if not measured
	err              error   // sysbench failed; the numbers above are unset
	cpuPer10kQueries float64
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
		// Room for the idle-client test's connections, which switchyard and
		// HAProxy each pass on to the replica one to one.
		ExtraArgs: []string{"--max-connections=4000"},
		Logf:      logf,
	})
	if err != nil {
		return fail(err)
	}
	defer cluster.Stop()
	replica := cluster.Replicas[0]
	// A workload that writes can only run on the primary: direct and
	// HAProxy then reach the primary, and switchyard splits it itself.
	writes := strings.Contains(cfg.test, "write")
	if writes {
		replica = cluster.Primary
	}
	sb, err := newSysbench(cfg, cluster)
	if err != nil {
		return fail(err)
	}
	logf("bench: sysbench prepare on the primary (%d tables x %d rows)", cfg.tables, cfg.tableSize)
	if _, err := sb.run(ctx, cluster.Primary.Addr(), cfg.tables, 0, "prepare"); err != nil {
		return fail(err)
	}
	if err := cluster.WaitReplicasCaughtUp(startCtx); err != nil {
		return fail(err)
	}

	// The proxies spread reads over both replicas, HAProxy by connection
	// and switchyard by statement; direct goes to one replica. All servers
	// share the same two cores, so the work behind each target is the same.
	backends := []string{cluster.Replicas[0].Addr(), cluster.Replicas[1].Addr()}
	if writes {
		backends = []string{cluster.Primary.Addr()}
	}
	hap, err := startHAProxy(ctx, tmp, "haproxy", backends...)
	if err != nil {
		return fail(err)
	}
	defer hap.stop()
	// startSwitchyard starts a binary under test, listening for profile
	// requests when profiles are taken.
	startSwitchyard := func(binary string, env []string) (*harness.Proxy, string, error) {
		opt := harness.ProxyOptions{Binary: binary, Cluster: cluster, LogLevel: "warn", Env: env}
		addr := ""
		if cfg.profile != "" {
			var err error
			if addr, err = freeAddr(); err != nil {
				return nil, "", err
			}
			opt.Args = []string{"--pprof", addr}
		}
		p, err := harness.StartProxy(startCtx, opt)
		return p, addr, err
	}
	proxy, pprofAddr, err := startSwitchyard(bin, nil)
	if err != nil {
		return fail(err)
	}
	defer proxy.Stop()
	targets := []target{
		{"direct", replica.Addr(), nil, ""},
		{"haproxy", hap.addr, hap.pid, ""},
		{"switchyard", proxy.Addr(), proxy.PID, pprofAddr},
	}
	if cfg.gomaxprocs != "" {
		p2, addr, err := startSwitchyard(bin, []string{"GOMAXPROCS=" + cfg.gomaxprocs})
		if err != nil {
			return fail(err)
		}
		defer p2.Stop()
		targets = append(targets, target{"switchyard-gomaxprocs" + cfg.gomaxprocs, p2.Addr(), p2.PID, addr})
	}
	if cfg.baseline != "" {
		p3, addr, err := startSwitchyard(cfg.baseline, nil)
		if err != nil {
			return fail(fmt.Errorf("baseline %s: %w", cfg.baseline, err))
		}
		defer p3.Stop()
		targets = append(targets, target{"switchyard-baseline", p3.Addr(), p3.PID, addr})
	}

	if cfg.warmup > 0 {
		for _, t := range targets {
			logf("bench: warm-up %s, %v", t.name, cfg.warmup)
			if r := measure(ctx, sb, t, cfg.threads[0], cfg.warmup, ""); r.err != nil {
				return fail(fmt.Errorf("warm-up: %w", r.err))
			}
		}
	}
	var results []result
	for round := 1; round <= cfg.rounds; round++ {
		for _, threads := range cfg.threads {
			for _, t := range targets {
				var profile string
				if cfg.profile != "" && t.pprof != "" {
					profile = filepath.Join(cfg.profile, fmt.Sprintf("%s-%dthreads-round%d.pprof", t.name, threads, round))
				}
				r := measure(ctx, sb, t, threads, cfg.duration, profile)
				if ctx.Err() != nil {
					return fail(ctx.Err())
				}
				r.round = round
				results = append(results, r)
				if r.err != nil {
					logf("bench: round %d, %d threads, %s: FAILED: %v", round, threads, t.name, r.err)
				} else {
					logf("bench: round %d, %d threads, %-10s %6.0f qps, %d errors, proxy CPU %s s",
						round, threads, t.name, r.qps, r.errs, num(r.cpu, 2))
				}
			}
		}
	}
	if proxy.PID() == 0 {
		logf("bench: switchyard exited during the runs (%v); log tail:\n%s", proxy.ExitErr(), proxy.LogTail(30))
	}
	proxy.Stop()
	hap.stop()

	var idle []string
	if cfg.idleClients > 0 {
		// A fresh switchyard process of the given binary each.
		switchyardIdle := func(binary string) func() (idlerss.Result, error) {
			return func() (idlerss.Result, error) {
				p, err := harness.StartProxy(ctx, harness.ProxyOptions{Binary: binary, Cluster: cluster, LogLevel: "warn"})
				if err != nil {
					return idlerss.Result{}, err
				}
				defer p.Stop()
				return measureIdle(ctx, cfg, p.Addr(), p.PID(), cluster)
			}
		}
		idle = append(idle, idleLine("switchyard", switchyardIdle(bin)))
		if cfg.baseline != "" {
			idle = append(idle, idleLine("switchyard-baseline", switchyardIdle(cfg.baseline)))
		}
		idle = append(idle, idleLine("HAProxy (context only: two sockets and buffers per client)", func() (idlerss.Result, error) {
			h, err := startHAProxy(ctx, tmp, "haproxy-idle", replica.Addr())
			if err != nil {
				return idlerss.Result{}, err
			}
			defer h.stop()
			return measureIdle(ctx, cfg, h.addr, h.pid(), cluster)
		}))
		if ctx.Err() != nil {
			return fail(ctx.Err())
		}
	}

	md := report(cfg, results, idle, machineInfo(ctx, replica, loadStart))
	fmt.Print(md)
	if err := os.WriteFile(cfg.out, []byte(md), 0o644); err != nil {
		return fail(err)
	}
	logf("bench: written to %s", cfg.out)
	for _, r := range results {
		if r.err != nil || r.errs > 0 {
			fmt.Fprintln(os.Stderr, "bench: some runs failed or had errors; see the raw table")
			return 1
		}
	}
	return 0
}

func parseFlags() (config, error) {
	var cfg config
	var threads string
	flag.IntVar(&cfg.rounds, "rounds", 3, "interleaved rounds; the report shows medians over them")
	cfg.duration, cfg.warmup = 10*time.Second, 2*time.Second
	flag.Var((*seconds)(&cfg.duration), "duration", "length of each sysbench run: whole seconds, as 10 or 10s")
	flag.Var((*seconds)(&cfg.warmup), "warmup", "unrecorded run per target before the rounds, as --duration; 0 skips it")
	flag.StringVar(&threads, "threads", "8,64", "comma-separated sysbench thread counts")
	flag.StringVar(&cfg.psMode, "ps-mode", "disable", "sysbench --db-ps-mode: disable (plain COM_QUERY) or auto (prepared statements)")
	flag.StringVar(&cfg.gomaxprocs, "gomaxprocs", "", "also measure switchyard run with GOMAXPROCS set to this")
	flag.StringVar(&cfg.baseline, "baseline", "", "also measure this switchyard binary (e.g. built from an earlier commit) in the same rounds")
	flag.StringVar(&cfg.profile, "profile", "", "write a CPU profile of each switchyard target for every measured run into this directory")
	flag.StringVar(&cfg.test, "test", "oltp_point_select", "sysbench test: oltp_point_select, oltp_read_only, ...")
	flag.IntVar(&cfg.tables, "tables", 4, "sysbench tables")
	flag.IntVar(&cfg.tableSize, "table-size", 10000, "rows per table")
	flag.IntVar(&cfg.idleClients, "idle-clients", 2000, "idle clients for the RSS measurement; 0 skips it")
	flag.DurationVar(&cfg.settle, "settle", 3*time.Second, "wait before each RSS reading")
	flag.StringVar(&cfg.out, "out", "bench/results-latest.md", "Markdown file to write")
	flag.Parse()
	if flag.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	for _, s := range strings.Split(threads, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return cfg, fmt.Errorf("bad --threads %q", threads)
		}
		cfg.threads = append(cfg.threads, n)
	}
	whole := func(d time.Duration) bool { return d%time.Second == 0 }
	switch {
	case cfg.rounds < 1:
		return cfg, errors.New("--rounds must be at least 1")
	case cfg.duration < time.Second || !whole(cfg.duration) || !whole(cfg.warmup):
		return cfg, errors.New("--duration and --warmup must be whole seconds (sysbench --time), --duration at least 1s")
	case cfg.psMode != "disable" && cfg.psMode != "auto":
		return cfg, fmt.Errorf("--ps-mode must be disable or auto, not %q", cfg.psMode)
	}
	return cfg, nil
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

// measure runs sysbench once against t and reads t's CPU time around it.
// With profile set, a CPU profile of t is written there, taken over the
// middle of the run.
func measure(ctx context.Context, sb sysbench, t target, threads int, d time.Duration, profile string) result {
	r := result{threads: threads, target: t.name, cpu: math.NaN(), cpuPer10kQueries: math.NaN()}
	pid, cpu0, cpuErr := 0, 0.0, error(nil)
	if t.pid != nil {
		pid = t.pid()
		cpu0, cpuErr = cpuSeconds(pid)
	}
	profiled := make(chan struct{})
	if profile != "" {
		go func() {
			defer close(profiled)
			if err := takeProfile(ctx, t.pprof, d, profile); err != nil {
				logf("bench: profile of %s: %v", t.name, err)
			}
		}()
	} else {
		close(profiled)
	}
	out, err := sb.run(ctx, t.addr, threads, d, "run")
	<-profiled
	if err == nil {
		err = parseRun(out, &r)
	}
	if err != nil {
		r.err = err
		return r
	}
	if t.pid != nil && cpuErr == nil {
		if cpu1, err := cpuSeconds(pid); err == nil {
			r.cpu = cpu1 - cpu0
			r.cpuPer10kQueries = r.cpu / float64(r.queries) * 1e4
		}
	}
	return r
}

// takeProfile writes to path a CPU profile of the Go process serving
// /debug/pprof on addr, over a run of length d: it starts a second in and
// ends a second before the run does.
func takeProfile(ctx context.Context, addr string, d time.Duration, path string) error {
	secs := max(1, int(d/time.Second)-2)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Second):
	}
	req, err := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", resp.Status)
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

type sysbench struct {
	bin, user, password, db string
	cfg                     config
}

func newSysbench(cfg config, c *harness.Cluster) (sysbench, error) {
	bin, err := lookPath("sysbench", "/usr/bin/sysbench")
	return sysbench{bin, c.AppUser, c.AppPassword, c.Database, cfg}, err
}

// run runs `sysbench TEST COMMAND` against addr; d 0 means no
// --time (prepare).
func (s sysbench) run(ctx context.Context, addr string, threads int, d time.Duration, command string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	args := []string{s.cfg.test, "--db-driver=mysql",
		"--mysql-host=" + host, "--mysql-port=" + port,
		"--mysql-user=" + s.user, "--mysql-password=" + s.password, "--mysql-db=" + s.db,
		"--tables=" + strconv.Itoa(s.cfg.tables), "--table-size=" + strconv.Itoa(s.cfg.tableSize),
		"--threads=" + strconv.Itoa(threads), "--db-ps-mode=" + s.cfg.psMode}
	if d > 0 {
		args = append(args, "--time="+strconv.Itoa(int(d/time.Second)))
	}
	out, err := exec.CommandContext(ctx, s.bin, append(args, command)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("sysbench %s against %s: %v: %s", command, addr, err, lastLines(string(out), 5))
	}
	return string(out), nil
}

var (
	reQueries    = regexp.MustCompile(`queries:\s+(\d+)\s+\(([\d.]+) per sec\.\)`)
	reIgnored    = regexp.MustCompile(`ignored errors:\s+(\d+)`)
	reReconnects = regexp.MustCompile(`reconnects:\s+(\d+)`)
	reLatAvg     = regexp.MustCompile(`avg:\s+([\d.]+)`)
	reLatP95     = regexp.MustCompile(`95th percentile:\s+([\d.]+)`)
)

// parseRun reads sysbench's summary; ignored errors and reconnects both
// count as errors, since neither happens in a healthy point-select run.
func parseRun(out string, r *result) error {
	m := reQueries.FindStringSubmatch(out)
	ig, rc := reIgnored.FindStringSubmatch(out), reReconnects.FindStringSubmatch(out)
	avg, p95 := reLatAvg.FindStringSubmatch(out), reLatP95.FindStringSubmatch(out)
	if m == nil || ig == nil || rc == nil || avg == nil || p95 == nil {
		return fmt.Errorf("cannot parse sysbench output: %s", lastLines(out, 10))
	}
	r.queries, _ = strconv.ParseInt(m[1], 10, 64)
	r.qps, _ = strconv.ParseFloat(m[2], 64)
	nIg, _ := strconv.ParseInt(ig[1], 10, 64)
	nRc, _ := strconv.ParseInt(rc[1], 10, 64)
	r.errs = nIg + nRc
	r.latAvg, _ = strconv.ParseFloat(avg[1], 64)
	r.latP95, _ = strconv.ParseFloat(p95[1], 64)
	return nil
}

type haproxy struct {
	addr, log string
	cmd       *exec.Cmd
	done      chan struct{}
}

// haproxyMaxconn leaves room for the idle-client test; HAProxy sizes its
// file descriptor limit from it.
const haproxyMaxconn = 5000

// startHAProxy runs HAProxy in the foreground (-db) as a plain TCP relay to
// backend on a free port and waits until a MySQL greeting comes through.
func startHAProxy(ctx context.Context, dir, name string, backends ...string) (*haproxy, error) {
	bin, err := lookPath("haproxy", "/usr/sbin/haproxy")
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		h, err := tryHAProxy(ctx, bin, dir, name, backends)
		// Another process may take the probed port before HAProxy binds it.
		if err == nil || attempt == 2 || ctx.Err() != nil {
			return h, err
		}
	}
}

func tryHAProxy(ctx context.Context, bin, dir, name string, backends []string) (*haproxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := &haproxy{addr: l.Addr().String(), log: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	l.Close()
	cfgPath := filepath.Join(dir, name+".cfg")
	cfgText := fmt.Sprintf(`global
	maxconn %d
defaults
	mode tcp
	timeout connect 5s
	timeout client 1h
	timeout server 1h
frontend mysql
	bind %s
	default_backend replica
backend replica
	balance roundrobin
%s`, haproxyMaxconn, h.addr, serverLines(backends))
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
	for {
		err := probeGreeting(h.addr)
		if err == nil {
			return h, nil
		}
		select {
		case <-h.done:
			return nil, fmt.Errorf("haproxy exited at startup (%v): %s", h.cmd.ProcessState, lastLines(readFile(h.log), 10))
		case <-ctx.Done():
			h.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			h.stop()
			return nil, fmt.Errorf("haproxy on %s not relaying a MySQL greeting: %v; log: %s", h.addr, err, lastLines(readFile(h.log), 10))
		}
	}
}

// probeGreeting succeeds once addr sends the first bytes of a MySQL initial
// handshake (protocol version 10); HAProxy accepts before it can relay.
func serverLines(addrs []string) string {
	var b strings.Builder
	for i, a := range addrs {
		fmt.Fprintf(&b, "\tserver replica%d %s\n", i+1, a)
	}
	return b.String()
}

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

func measureIdle(ctx context.Context, cfg config, addr string, pid int, c *harness.Cluster) (idlerss.Result, error) {
	return idlerss.Measure(ctx, idlerss.Options{
		Addr: addr, User: c.AppUser, Password: c.AppPassword, DB: c.Database,
		PID: pid, N: cfg.idleClients, Settle: cfg.settle,
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

func report(cfg config, results []result, idle []string, m machine) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("## sysbench %s: direct vs HAProxy vs switchyard (%s)\n\n", cfg.test, m.at)
	p("- Machine: %s, %d CPUs, %s RAM, Linux %s; load average %s at start, %s at end\n",
		m.cpu, m.nproc, m.mem, m.kernel, m.loadStart, m.loadEnd)
	p("- Software: Go %s, MariaDB %s, sysbench %s, HAProxy %s\n", m.goVer, m.mariadb, m.sysbench, m.haproxy)
	p("- Setup: MariaDB primary + 2 replicas over 127.0.0.1; sysbench, the proxies and the servers share the machine's CPUs. " +
		"direct: one replica. HAProxy: `mode tcp`, both replicas, `balance roundrobin` (per connection), default nbthread. " +
		"switchyard: all three servers, reads split over the replicas per statement (least outstanding), log level warn.\n")
	order := "direct, haproxy, switchyard"
	if cfg.gomaxprocs != "" {
		order += ", switchyard-gomaxprocs" + cfg.gomaxprocs
	}
	if cfg.baseline != "" {
		order += ", switchyard-baseline (" + cfg.baseline + ")"
	}
	p("- Workload: %d tables x %d rows, `--db-ps-mode=%s`, threads %s; rounds: %d, interleaved (each round: every thread count, each target in turn: %s), %v per run, after one unrecorded %v warm-up run per target\n",
		cfg.tables, cfg.tableSize, cfg.psMode, joinInts(cfg.threads), cfg.rounds, order, cfg.duration, cfg.warmup)
	p("- Figures are medians over the rounds. Proxy CPU is the process's utime+stime (/proc/PID/stat) across the run, per 10,000 queries.\n")

	for _, threads := range cfg.threads {
		med := map[string][2]float64{} // target → median QPS, median CPU s per 10k queries
		p("\n### %d threads\n\n", threads)
		p("| target | QPS (median) | vs direct | proxy CPU s per 10k queries (median) | errors |\n|---|---:|---:|---:|---|\n")
		names := []string{"direct", "haproxy", "switchyard"}
		if cfg.gomaxprocs != "" {
			names = append(names, "switchyard-gomaxprocs"+cfg.gomaxprocs)
		}
		if cfg.baseline != "" {
			names = append(names, "switchyard-baseline")
		}
		for _, t := range names {
			var qps, cpu []float64
			var errs int64
			failed := 0
			for _, r := range results {
				if r.threads != threads || r.target != t {
					continue
				}
				if r.err != nil {
					failed++
					continue
				}
				qps, cpu, errs = append(qps, r.qps), append(cpu, r.cpuPer10kQueries), errs+r.errs
			}
			med[t] = [2]float64{median(qps), median(cpu)}
			errText := strconv.FormatInt(errs, 10)
			if failed > 0 {
				errText += fmt.Sprintf(", %d of %d runs FAILED", failed, cfg.rounds)
			}
			p("| %s | %s | %s | %s | %s |\n", t, num(med[t][0], 0), num(med[t][0]/med["direct"][0], 2), num(med[t][1], 3), errText)
		}
		for _, t := range names[2:] {
			p("\n%s / haproxy: QPS %s, CPU per query %s. %s / direct: QPS %s.\n", t,
				num(med[t][0]/med["haproxy"][0], 2), num(med[t][1]/med["haproxy"][1], 2),
				t, num(med[t][0]/med["direct"][0], 2))
		}
		if cfg.baseline != "" {
			p("\nswitchyard / switchyard-baseline (%s): QPS %s, CPU per query %s.\n", cfg.baseline,
				num(med["switchyard"][0]/med["switchyard-baseline"][0], 2), num(med["switchyard"][1]/med["switchyard-baseline"][1], 2))
		}
	}

	p("\n### Raw runs\n\n| round | threads | target | QPS | errors | avg latency ms | p95 latency ms | proxy CPU s | CPU s per 10k queries |\n|---:|---:|---|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		if r.err != nil {
			p("| %d | %d | %s | FAILED: %s | | | | | |\n", r.round, r.threads, r.target, strings.ReplaceAll(firstLine(r.err.Error()), "|", `\|`))
			continue
		}
		p("| %d | %d | %s | %.0f | %d | %.2f | %.2f | %s | %s |\n", r.round, r.threads, r.target, r.qps, r.errs,
			r.latAvg, r.latP95, num(r.cpu, 2), num(r.cpuPer10kQueries, 3))
	}
	if len(idle) > 0 {
		p("\n### Idle clients\n\nA fresh process each; one warm-up connection, %v settle, then %d clients that log in, ping once and stay idle, %v settle.\n\n",
			cfg.settle, cfg.idleClients, cfg.settle)
		for _, l := range idle {
			p("- %s\n", l)
		}
	}
	return b.String()
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

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
