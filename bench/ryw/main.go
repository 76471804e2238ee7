// Command ryw measures what routing.read_your_writes costs: one switchyard
// per mode (off, session, user, global) in front of the same MariaDB
// primary and two replicas, measured in interleaved rounds (each round
// runs every workload against each mode in turn), medians reported.
//
// Workloads:
//   - write-then-read, same connection: UPDATE a row, then SELECT it on
//     the same client connection; one client. Reports loops per second
//     and reads that missed the write.
//   - write-then-read, other connection: UPDATE on one client
//     connection, SELECT on another (open, pooled by the client); one
//     client pair. Only user and global make that read wait.
//   - sysbench oltp_read_write, 8 threads, as usual (its statements run in
//     transactions, so on the primary) and with --skip-trx (autocommit:
//     its reads go to the replicas, right after its writes).
//
// go run ./bench/ryw [--rounds 3] [--duration 10s]; it prints Markdown.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"switchyard/bench/internal/sysbenchrun"
	"switchyard/integration/harness"
)

var modes = []string{"off", "session", "user", "global"}

// workloads, in the order each round runs them.
var workloads = []string{"write-then-read, same connection", "write-then-read, other connection",
	"oltp_read_write (transactions)", "oltp_read_write --skip-trx"}

type sample struct {
	rate  float64 // loops or sysbench queries per second
	stale int     // write-then-read: reads that missed the write
	errs  int     // sysbench: ignored errors and reconnects
}

func main() {
	rounds := flag.Int("rounds", 3, "interleaved rounds")
	duration := flag.Duration("duration", 10*time.Second, "length of each run")
	threads := flag.Int("threads", 8, "sysbench threads")
	flag.Parse()
	if err := run(*rounds, *duration, *threads); err != nil {
		fmt.Fprintln(os.Stderr, "ryw:", err)
		os.Exit(1)
	}
}

func run(rounds int, d time.Duration, threads int) error {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "sy-ryw-")
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
	sb := sysbench{sysbenchrun.Runner{User: cluster.AppUser, Password: cluster.AppPassword, DB: cluster.Database, Tables: 4, TableSize: 10000}}
	if _, err := sb.run(ctx, cluster.Primary.Addr(), 4, 0, false, "prepare"); err != nil {
		return err
	}
	if err := cluster.Primary.Exec(ctx, "CREATE OR REPLACE TABLE "+cluster.Database+".ryw_bench (id INT PRIMARY KEY, v INT NOT NULL)",
		"INSERT INTO "+cluster.Database+".ryw_bench VALUES (1, 0)"); err != nil {
		return err
	}
	if err := cluster.WaitReplicasCaughtUp(ctx); err != nil {
		return err
	}
	proxies := map[string]*harness.Proxy{}
	for _, m := range modes {
		p, err := harness.StartProxy(ctx, harness.ProxyOptions{Binary: bin, Cluster: cluster, LogLevel: "warn",
			// A loaded machine (it is shared) can make a check time out:
			// no failover in the middle of a measurement.
			ExtraYAML: "pool:\n  idle_timeout: 5m\nmonitor:\n  timeout: 5s\nfailover:\n  auto: false\nrouting:\n  read_your_writes: " + m + "\n"})
		if err != nil {
			return err
		}
		defer p.Stop()
		proxies[m] = p
	}
	results := map[string]map[string][]sample{} // workload → mode → rounds
	for _, w := range workloads {
		results[w] = map[string][]sample{}
	}
	next := 1 // the value the next write sets, increasing across runs
	failed := map[string]int{}
	for r := 1; r <= rounds; r++ {
		for _, w := range workloads {
			for _, m := range modes {
				p := proxies[m]
				var s sample
				var err error
				switch w {
				case workloads[0]:
					s, err = writeThenRead(p, cluster, d, true, &next)
				case workloads[1]:
					s, err = writeThenRead(p, cluster, d, false, &next)
				case workloads[2], workloads[3]:
					var out string
					out, err = sb.run(ctx, p.Addr(), threads, d, w == workloads[3], "run")
					if err == nil {
						s, err = parseSysbench(out)
					}
				}
				if err != nil {
					// Counted as failed and left out of the medians.
					fmt.Fprintf(os.Stderr, "round %d %s %s: failed: %v\n", r, w, m, err)
					failed[w+" "+m]++
					continue
				}
				fmt.Fprintf(os.Stderr, "round %d %-36s %-8s %8.1f/s stale %d errors %d\n", r, w, m, s.rate, s.stale, s.errs)
				results[w][m] = append(results[w][m], s)
				if err := cluster.WaitReplicasCaughtUp(ctx); err != nil {
					return err
				}
			}
		}
	}
	fmt.Printf("%d rounds of %v per run, interleaved; medians. sysbench: %d threads, 4 tables x 10000 rows.\n\n", rounds, d, threads)
	fmt.Println("| workload | off | session | user | global | stale reads (off / session / user / global) |")
	fmt.Println("|---|---:|---:|---:|---:|---|")
	for _, w := range workloads {
		row := "| " + w
		var stale []string
		for _, m := range modes {
			row += fmt.Sprintf(" | %.0f", median(results[w][m], func(s sample) float64 { return s.rate }))
			n := 0
			for _, s := range results[w][m] {
				n += s.stale + s.errs
			}
			stale = append(stale, strconv.Itoa(n))
		}
		if strings.HasPrefix(w, "oltp") {
			fmt.Println(row + " | – (errors: " + strings.Join(stale, " / ") + ") |")
		} else {
			fmt.Println(row + " | " + strings.Join(stale, " / ") + " |")
		}
	}
	if len(failed) > 0 {
		fmt.Printf("\nFailed runs, left out: %v\n", failed)
	}
	fmt.Println("\nRaw runs (per second):")
	for _, w := range workloads {
		for _, m := range modes {
			var rs []string
			for _, s := range results[w][m] {
				rs = append(rs, fmt.Sprintf("%.0f", s.rate))
			}
			fmt.Printf("- %s, %s: %s\n", w, m, strings.Join(rs, ", "))
		}
	}
	return nil
}

func median(ss []sample, f func(sample) float64) float64 {
	v := make([]float64, 0, len(ss))
	for _, s := range ss {
		v = append(v, f(s))
	}
	slices.Sort(v)
	if len(v) == 0 {
		return 0
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// writeThenRead loops for d: UPDATE ryw_bench to the next value, then
// SELECT it, on the same connection or on another one.
func writeThenRead(p *harness.Proxy, c *harness.Cluster, d time.Duration, same bool, next *int) (sample, error) {
	db, err := sql.Open("mysql", p.DSN(c.AppUser, c.AppPassword, c.Database, "interpolateParams=true"))
	if err != nil {
		return sample{}, err
	}
	defer db.Close()
	ctx := context.Background()
	wc, err := db.Conn(ctx)
	if err != nil {
		return sample{}, err
	}
	defer wc.Close()
	rc := wc
	if !same {
		if rc, err = db.Conn(ctx); err != nil {
			return sample{}, err
		}
		defer rc.Close()
	}
	var s sample
	loops := 0
	start := time.Now()
	for time.Since(start) < d {
		v := *next
		*next++
		if _, err := wc.ExecContext(ctx, "UPDATE ryw_bench SET v = ? WHERE id = 1", v); err != nil {
			return s, err
		}
		var got int
		if err := rc.QueryRowContext(ctx, "SELECT v FROM ryw_bench WHERE id = 1").Scan(&got); err != nil {
			return s, err
		}
		if got < v {
			s.stale++
		}
		loops++
	}
	s.rate = float64(loops) / time.Since(start).Seconds()
	return s, nil
}

// sysbench runs oltp_read_write on 4 tables of 10,000 rows, as text.
type sysbench struct{ sysbenchrun.Runner }

func (s sysbench) run(ctx context.Context, addr string, threads int, d time.Duration, skipTrx bool, command string) (string, error) {
	var extra []string
	if skipTrx {
		// Without transactions its DELETE and INSERT of a row race between
		// threads: duplicate keys are counted, not fatal.
		extra = []string{"--skip-trx=on", "--mysql-ignore-errors=1062,1213"}
	}
	return s.Run(ctx, "oltp_read_write", command, addr, threads, d, false, extra...)
}

func parseSysbench(out string) (sample, error) {
	sum, err := sysbenchrun.Parse(out)
	if err != nil {
		return sample{}, err
	}
	return sample{rate: sum.QPS, errs: int(sum.Errors)}, nil
}
