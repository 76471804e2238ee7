package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"switchyard/bench/internal/sysbenchrun"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
)

// workload is one line of the matrix: a sysbench test in text or prepared
// mode, or the PHP-FPM-style connect-per-request load.
type workload struct {
	test     string // sysbench test name, or phpTest
	prepared bool
}

// phpTest is the PHP-FPM-style workload: each request connects, runs five
// primary-key reads and disconnects, as a PHP page does with mysqli.
const phpTest = "php_connect_5_reads"

func (w workload) php() bool    { return w.test == phpTest }
func (w workload) writes() bool { return strings.Contains(w.test, "write") }

func (w workload) String() string {
	if w.php() {
		return "PHP-style connect + 5 reads"
	}
	mode := "text"
	if w.prepared {
		mode = "prepared"
	}
	return strings.TrimPrefix(w.test, "oltp_") + " " + mode
}

// parseWorkloads reads "point_select:text,read_only:ps,php"; a bare name
// means text.
func parseWorkloads(s string) ([]workload, error) {
	var out []workload
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		name, mode, _ := strings.Cut(item, ":")
		if name == "php" {
			out = append(out, workload{test: phpTest})
			continue
		}
		w := workload{test: "oltp_" + strings.TrimPrefix(name, "oltp_")}
		switch mode {
		case "", "text":
		case "ps", "prepared":
			w.prepared = true
		default:
			return nil, fmt.Errorf("workload %q: mode must be text or ps", item)
		}
		switch w.test {
		case "oltp_point_select", "oltp_read_only", "oltp_read_write", "oltp_write_only", "oltp_update_index", "oltp_insert":
		default:
			return nil, fmt.Errorf("workload %q: unknown sysbench test", item)
		}
		out = append(out, w)
	}
	return out, nil
}

type result struct {
	round, threads int
	work           workload
	target         string
	qps            float64 // queries per second; requests per second for the PHP workload
	queries, errs  int64   // queries (requests for PHP) and errors
	latAvg, latP95 float64 // ms, per sysbench event or PHP request
	cpu            float64 // proxy CPU seconds during the run, NaN if not measured
	cpuPer10k      float64 // proxy CPU seconds per 10,000 queries (requests for PHP)
	peakRSSKB      int     // the proxy's peak RSS during the run, 0 if not measured
	err            error   // the run failed; the numbers above are unset
}

// measure runs one workload once against t and reads t's CPU time and
// peak RSS around it. With profile set, a CPU profile of t is written there.
func measure(ctx context.Context, sb sysbench, t target, w workload, threads int, d time.Duration, profile string) result {
	r := result{threads: threads, work: w, target: t.name, cpu: math.NaN(), cpuPer10k: math.NaN()}
	pid, cpu0, cpuErr := 0, 0.0, error(nil)
	if t.pid != nil {
		pid = t.pid()
		cpu0, cpuErr = cpuSeconds(pid)
		resetPeakRSS(pid)
	}
	profiled := make(chan struct{})
	if profile != "" {
		go func() {
			defer close(profiled)
			if err := takeProfile(ctx, t.pprof, d, profile, t.contention); err != nil {
				logf("bench: profile of %s: %v", t.name, err)
			}
		}()
	} else {
		close(profiled)
	}
	addr := t.readAddr
	if w.writes() {
		addr = t.writeAddr
	}
	var err error
	if w.php() {
		err = runPHPStyle(ctx, sb, addr, threads, d, &r)
	} else {
		var out string
		out, err = sb.run(ctx, w, addr, threads, d, "run")
		if err == nil {
			err = parseRun(out, &r)
		}
	}
	<-profiled
	if err != nil {
		r.err = err
		return r
	}
	if t.pid != nil && cpuErr == nil {
		if cpu1, err := cpuSeconds(pid); err == nil && r.queries > 0 {
			r.cpu = cpu1 - cpu0
			r.cpuPer10k = r.cpu / float64(r.queries) * 1e4
		}
		r.peakRSSKB, _ = statusKB(pid, "VmHWM")
	}
	return r
}

// resetPeakRSS makes the kernel restart pid's VmHWM from its current RSS
// (proc(5): clear_refs, value 5), so each run reports its own peak. Only
// the process's owner or root may; without it the peak is since start.
func resetPeakRSS(pid int) {
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// statusKB reads a kB field (VmRSS, VmHWM) of /proc/PID/status.
func statusKB(pid int, field string) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.Atoi(strings.Fields(rest)[0])
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

type sysbench struct {
	bin, user, password, db string
	tables, tableSize       int
}

// run runs `sysbench TEST COMMAND` against addr; d 0 means no --time
// (prepare).
func (s sysbench) run(ctx context.Context, w workload, addr string, threads int, d time.Duration, command string) (string, error) {
	r := sysbenchrun.Runner{Bin: s.bin, User: s.user, Password: s.password, DB: s.db, Tables: s.tables, TableSize: s.tableSize}
	return r.Run(ctx, w.test, command, addr, threads, d, w.prepared, "--percentile=95")
}

// parseRun reads sysbench's summary; ignored errors (deadlocks sysbench
// retries, in read_write) and reconnects both count as errors.
func parseRun(out string, r *result) error {
	sum, err := sysbenchrun.Parse(out)
	if err != nil {
		return err
	}
	r.queries, r.qps, r.errs, r.latAvg, r.latP95 = sum.Queries, sum.QPS, sum.Errors, sum.LatAvg, sum.LatP95
	return nil
}

// runPHPStyle is the PHP-FPM workload: workers loop for d, each request a
// new connection (greeting, login), five primary-key reads as text
// statements (what mysqli's query() sends), and COM_QUIT. It reports
// requests per second and their latency; CPU is per 10,000 requests.
func runPHPStyle(ctx context.Context, sb sysbench, addr string, workers int, d time.Duration, r *result) error {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = sb.user, sb.password, "tcp", addr, sb.db
	cfg.InterpolateParams = true // text statements, no prepare round trip
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return err
	}
	pool := sql.OpenDB(connector)
	defer pool.Close()
	pool.SetMaxIdleConns(-1) // every request opens a new connection
	pool.SetMaxOpenConns(workers)

	deadline := time.Now().Add(d)
	var requests, failures atomic.Int64
	var firstErr error
	var mu sync.Mutex
	lat := make([][]time.Duration, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				if err := phpRequest(ctx, pool, rng, sb); err != nil {
					failures.Add(1)
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				lat[w] = append(lat[w], time.Since(t0))
				requests.Add(1)
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	n := requests.Load()
	if n == 0 {
		return fmt.Errorf("no PHP-style request succeeded: %v", firstErr)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	var sum time.Duration
	for _, l := range all {
		sum += l
	}
	r.queries, r.errs = n, failures.Load()
	r.qps = float64(n) / d.Seconds()
	r.latAvg = float64(sum) / float64(len(all)) / 1e6
	r.latP95 = float64(all[len(all)*95/100]) / 1e6
	if r.errs > 0 {
		logf("bench: PHP-style against %s: %d failed requests, first: %v", addr, r.errs, firstErr)
	}
	return nil
}

func phpRequest(ctx context.Context, pool *sql.DB, rng *rand.Rand, sb sysbench) error {
	c, err := pool.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	for range 5 {
		var s string
		table := 1 + rng.IntN(sb.tables)
		id := 1 + rng.IntN(sb.tableSize)
		err := c.QueryRowContext(ctx, "SELECT c FROM sbtest"+strconv.Itoa(table)+" WHERE id=?", id).Scan(&s)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
	}
	return nil
}
