// Command instructions counts the machine instructions switchyard executes
// per statement, with valgrind's callgrind. On a shared, noisy machine CPU
// time moves by tens of percent between runs; an instruction count of the
// same work moves by about a percent, so two builds can be compared with a
// small workload. It starts a MariaDB primary and two
// replicas, runs each binary under callgrind (Go's signal-based preemption
// off, which callgrind cannot follow), warms it up, then for each workload
// zeroes the counters, runs the statements from one client (--clients for
// more at once) and reads the
// total back. Instructions spent in the kernel (socket reads and writes)
// are not counted: this measures the proxy's own code.
//
//	go run ./bench/instructions --baseline /path/to/older/switchyard
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"switchyard/integration/harness"
)

type workload struct {
	name   string
	params string // go-sql-driver DSN parameters
	run    func(ctx context.Context, db *sql.DB, i int) error
}

// onlyWorkloads, when set by --only, filters workloads() by name.
var onlyWorkloads string

// clients is how many clients run each workload at once (--clients).
var clients = 1

// workloads are the statements counted, each from its own client.
func workloads() []workload {
	all := allWorkloads()
	if onlyWorkloads == "" {
		return all
	}
	var out []workload
	for _, w := range all {
		if strings.Contains(w.name, onlyWorkloads) {
			out = append(out, w)
		}
	}
	return out
}

func allWorkloads() []workload {
	return []workload{
		{"point select (text protocol, to a replica)", "interpolateParams=true", func(ctx context.Context, db *sql.DB, i int) error {
			var c string
			return db.QueryRowContext(ctx, "SELECT c FROM sbtest1 WHERE id = ?", i%1000+1).Scan(&c)
		}},
		{"point select (prepared, to a replica)", "interpolateParams=false", func(ctx context.Context, db *sql.DB, i int) error {
			var c string
			return db.QueryRowContext(ctx, "SELECT c FROM sbtest1 WHERE id = ?", i%1000+1).Scan(&c)
		}},
		{"update by primary key (to the primary)", "interpolateParams=true", func(ctx context.Context, db *sql.DB, i int) error {
			_, err := db.ExecContext(ctx, "UPDATE sbtest1 SET k = k + 1 WHERE id = ?", i%1000+1)
			return err
		}},
		// oltp_read_only's range selects: 100 rows each, and a different
		// text every time (the literals change), as sysbench sends them.
		{"range select of 100 rows (text protocol, to a replica)", "interpolateParams=true", func(ctx context.Context, db *sql.DB, i int) error {
			return drain(db.QueryContext(ctx, "SELECT c FROM sbtest1 WHERE id BETWEEN ? AND ?", i%900+1, i%900+100))
		}},
		{"range select of 100 rows (prepared, to a replica)", "interpolateParams=false", func(ctx context.Context, db *sql.DB, i int) error {
			return drain(db.QueryContext(ctx, "SELECT c FROM sbtest1 WHERE id BETWEEN ? AND ?", i%900+1, i%900+100))
		}},
		// A PHP-FPM request: a new connection (greeting, login), five point
		// selects, COM_QUIT. Counted per request, not per statement.
		{"PHP-style request: connect, 5 point selects, quit (per request)", "interpolateParams=true", func(ctx context.Context, db *sql.DB, i int) error {
			db.SetMaxIdleConns(-1) // every request logs in anew
			c, err := db.Conn(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			for k := range 5 {
				var s string
				if err := c.QueryRowContext(ctx, "SELECT c FROM sbtest1 WHERE id = ?", (i*5+k)%1000+1).Scan(&s); err != nil {
					return err
				}
			}
			return nil
		}},
	}
}

// drain reads every row of a result and closes it.
func drain(rows *sql.Rows, err error) error {
	if err != nil {
		return err
	}
	for rows.Next() {
		var c sql.RawBytes
		if err := rows.Scan(&c); err != nil {
			rows.Close()
			return err
		}
	}
	if err := rows.Close(); err != nil {
		return err
	}
	return rows.Err()
}

func main() {
	baseline := flag.String("baseline", "", "also count this switchyard binary (e.g. built from an earlier commit)")
	queries := flag.Int("queries", 3000, "statements per workload")
	out := flag.String("out", "bench/instructions-latest.md", "Markdown file to write")
	dumps := flag.String("dumps", "", "keep callgrind's dumps in this directory, for callgrind_annotate")
	collect := flag.String("collect", "", "count only inside functions matching this callgrind --toggle-collect pattern, e.g. '*session*query*'")
	only := flag.String("only", "", "count only the workloads whose name contains this, e.g. range")
	flag.IntVar(&clients, "clients", 1, "clients running each workload's statements at once (more than one counts the cost of concurrency: handoffs, lock contention)")
	flag.Parse()
	if *only != "" {
		onlyWorkloads = *only
	}
	if err := run(*baseline, *queries, *out, *dumps, *collect); err != nil {
		fmt.Fprintln(os.Stderr, "instructions:", err)
		os.Exit(1)
	}
}

func run(baseline string, queries int, out, dumps, collect string) error {
	for _, tool := range []string{"valgrind", "callgrind_control"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found: install Debian's valgrind", tool)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	tmp, err := os.MkdirTemp("", "sy-instructions-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin, err := harness.BuildSwitchyard(ctx, tmp)
	if err != nil {
		return err
	}
	cluster, err := harness.StartCluster(ctx, harness.ClusterOptions{})
	if err != nil {
		return err
	}
	defer cluster.Stop()
	if err := prepare(ctx, cluster); err != nil {
		return err
	}
	binaries := []string{bin}
	if baseline != "" {
		binaries = append(binaries, baseline)
	}
	counts := make([][]float64, len(binaries)) // per binary, per workload: instructions per statement
	for i, b := range binaries {
		dir := tmp
		if dumps != "" {
			dir = filepath.Join(dumps, fmt.Sprintf("%d-%s", i, filepath.Base(b)))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
		}
		if counts[i], err = count(ctx, cluster, b, dir, queries, collect); err != nil {
			return fmt.Errorf("%s: %w", b, err)
		}
	}
	var md strings.Builder
	fmt.Fprintf(&md, "## Instructions per statement, callgrind (%s)\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&md, "%d client(s), %d statements per workload after a warm-up, counted by `valgrind --tool=callgrind` in the proxy process (user space only; `GODEBUG=asyncpreemptoff=1`). `go run ./bench/instructions --baseline BIN`.\n\n", clients, queries)
	fmt.Fprintf(&md, "| workload | switchyard |")
	if baseline != "" {
		fmt.Fprintf(&md, " baseline (%s) | switchyard / baseline |", filepath.Base(baseline))
	}
	fmt.Fprintf(&md, "\n|---|---:|")
	if baseline != "" {
		fmt.Fprintf(&md, "---:|---:|")
	}
	md.WriteString("\n")
	for w, wl := range workloads() {
		fmt.Fprintf(&md, "| %s | %.0f |", wl.name, counts[0][w])
		if baseline != "" {
			fmt.Fprintf(&md, " %.0f | %.3f |", counts[1][w], counts[0][w]/counts[1][w])
		}
		md.WriteString("\n")
	}
	fmt.Print(md.String())
	return os.WriteFile(out, []byte(md.String()), 0o644)
}

// prepare creates a sysbench-like table of 1000 rows on the primary and
// waits for the replicas to have it.
func prepare(ctx context.Context, c *harness.Cluster) error {
	db, err := c.Primary.DB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	stmts := []string{
		"CREATE TABLE IF NOT EXISTS " + c.Database + ".sbtest1 (id INT PRIMARY KEY, k INT NOT NULL, c CHAR(120) NOT NULL, pad CHAR(60) NOT NULL)",
		"DELETE FROM " + c.Database + ".sbtest1",
		"INSERT INTO " + c.Database + ".sbtest1 SELECT seq, seq, REPEAT('c', 120), REPEAT('p', 60) FROM " + c.Database + ".seq_1_to_1000",
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return c.WaitReplicasCaughtUp(ctx)
}

// count runs binary under callgrind and returns its instructions per
// statement for each workload.
func count(ctx context.Context, c *harness.Cluster, binary, dir string, queries int, collect string) ([]float64, error) {
	wrapper := filepath.Join(dir, "switchyard-under-callgrind")
	toggle := ""
	if collect != "" {
		toggle = fmt.Sprintf("--toggle-collect='%s' ", collect)
	}
	script := fmt.Sprintf("#!/bin/sh\nGODEBUG=asyncpreemptoff=1 exec valgrind --tool=callgrind %s--callgrind-out-file=%s/cg.%%p %s \"$@\"\n", toggle, dir, binary)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		return nil, err
	}
	startCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	// Background work (monitor checks, the pool's reaper) would be counted
	// with the statements, in proportion to the wall time callgrind takes:
	// after the first check at start, none runs during the counts.
	p, err := harness.StartProxy(startCtx, harness.ProxyOptions{Binary: wrapper, Cluster: c, LogLevel: "warn", StopTimeout: time.Minute,
		ExtraYAML: "monitor:\n  interval: 1h\n  timeout: 10s\npool:\n  idle_timeout: 1h\n"})
	if err != nil {
		return nil, err
	}
	defer p.Stop()
	pid := strconv.Itoa(p.PID())
	var perStatement []float64
	for _, w := range workloads() {
		db, err := sql.Open("mysql", p.DSN(c.AppUser, c.AppPassword, c.Database, w.params))
		if err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(clients)
		if err := runConcurrently(ctx, w, db, 300); err != nil { // warm-up: connections, caches, prepared statements
			db.Close()
			return nil, fmt.Errorf("%s: %w", w.name, err)
		}
		if err := exec.CommandContext(ctx, "callgrind_control", "--zero", pid).Run(); err != nil {
			db.Close()
			return nil, fmt.Errorf("callgrind_control --zero: %w", err)
		}
		if err := runConcurrently(ctx, w, db, queries); err != nil {
			db.Close()
			return nil, fmt.Errorf("%s: %w", w.name, err)
		}
		db.Close()
		ir, err := dumpTotal(ctx, dir, pid)
		if err != nil {
			return nil, err
		}
		perStatement = append(perStatement, float64(ir)/float64(queries))
		fmt.Fprintf(os.Stderr, "instructions: %s: %s: %.0f per statement\n", filepath.Base(binary), w.name, perStatement[len(perStatement)-1])
	}
	return perStatement, nil
}

// runConcurrently runs n of w's statements (requests) from clients
// goroutines, each taking the next index, and returns the first error.
func runConcurrently(ctx context.Context, w workload, db *sql.DB, n int) error {
	var next atomic.Int64
	errs := make(chan error, clients)
	for range clients {
		go func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					errs <- nil
					return
				}
				if err := w.run(ctx, db, i); err != nil {
					next.Store(int64(n)) // the others stop too
					errs <- err
					return
				}
			}
		}()
	}
	var first error
	for range clients {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

var totalsRE = regexp.MustCompile(`(?m)^(?:totals|summary):\s+(\d+)`)

// dumpTotal asks callgrind for a dump and returns its instruction total.
func dumpTotal(ctx context.Context, dir, pid string) (int64, error) {
	before, _ := filepath.Glob(filepath.Join(dir, "cg."+pid+".*"))
	if err := exec.CommandContext(ctx, "callgrind_control", "--dump", pid).Run(); err != nil {
		return 0, fmt.Errorf("callgrind_control --dump: %w", err)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		after, _ := filepath.Glob(filepath.Join(dir, "cg."+pid+".*"))
		if len(after) > len(before) {
			newest := after[len(after)-1]
			for _, f := range after {
				if !contains(before, f) {
					newest = f
				}
			}
			b, err := os.ReadFile(newest)
			if err != nil {
				return 0, err
			}
			m := totalsRE.FindSubmatch(b)
			if m == nil {
				continue // still being written
			}
			return strconv.ParseInt(string(m[1]), 10, 64)
		}
	}
	return 0, errors.New("callgrind wrote no dump")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
