// Package sysbenchrun runs sysbench's OLTP tests against an address and
// reads their summary, for the bench tools (bench/sysbench, bench/ryw).
package sysbenchrun

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Runner is sysbench with the account, schema and tables a bench uses.
type Runner struct {
	// Bin is the sysbench binary; "" finds sysbench on PATH.
	Bin                string
	User, Password, DB string
	Tables, TableSize  int
}

// Run runs `sysbench test ... command` against addr with threads
// threads for d (0: no --time, as for prepare), its statements prepared
// (--db-ps-mode=auto) or as text; extra are more of sysbench's options.
func (r Runner) Run(ctx context.Context, test, command, addr string, threads int, d time.Duration, prepared bool, extra ...string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	ps := "disable"
	if prepared {
		ps = "auto"
	}
	args := []string{test, "--db-driver=mysql", "--mysql-host=" + host, "--mysql-port=" + port,
		"--mysql-user=" + r.User, "--mysql-password=" + r.Password, "--mysql-db=" + r.DB,
		"--tables=" + strconv.Itoa(r.Tables), "--table-size=" + strconv.Itoa(r.TableSize),
		"--threads=" + strconv.Itoa(threads), "--db-ps-mode=" + ps}
	args = append(args, extra...)
	if d > 0 {
		args = append(args, "--time="+strconv.Itoa(int(d/time.Second)))
	}
	bin := r.Bin
	if bin == "" {
		bin = "sysbench"
	}
	out, err := exec.CommandContext(ctx, bin, append(args, command)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("sysbench %s %s against %s: %v: %s", test, command, addr, err, LastLines(string(out), 5))
	}
	return string(out), nil
}

// Summary is what a sysbench run's summary says.
type Summary struct {
	Queries int64
	QPS     float64
	// Errors are ignored errors (deadlocks and duplicate keys sysbench
	// was told to retry or ignore) and reconnects.
	Errors int64
	// LatAvg and LatP95 are the latency of an event, in milliseconds.
	LatAvg, LatP95 float64
}

var (
	reQueries    = regexp.MustCompile(`queries:\s+(\d+)\s+\(([\d.]+) per sec\.\)`)
	reIgnored    = regexp.MustCompile(`ignored errors:\s+(\d+)`)
	reReconnects = regexp.MustCompile(`reconnects:\s+(\d+)`)
	reLatAvg     = regexp.MustCompile(`avg:\s+([\d.]+)`)
	reLatP95     = regexp.MustCompile(`95th percentile:\s+([\d.]+)`)
)

// Parse reads the summary of a run's output.
func Parse(out string) (Summary, error) {
	m := reQueries.FindStringSubmatch(out)
	ig, rc := reIgnored.FindStringSubmatch(out), reReconnects.FindStringSubmatch(out)
	avg, p95 := reLatAvg.FindStringSubmatch(out), reLatP95.FindStringSubmatch(out)
	if m == nil || ig == nil || rc == nil || avg == nil || p95 == nil {
		return Summary{}, fmt.Errorf("cannot parse sysbench output: %s", LastLines(out, 10))
	}
	var s Summary
	s.Queries, _ = strconv.ParseInt(m[1], 10, 64)
	s.QPS, _ = strconv.ParseFloat(m[2], 64)
	nIg, _ := strconv.ParseInt(ig[1], 10, 64)
	nRc, _ := strconv.ParseInt(rc[1], 10, 64)
	s.Errors = nIg + nRc
	s.LatAvg, _ = strconv.ParseFloat(avg[1], 64)
	s.LatP95, _ = strconv.ParseFloat(p95[1], 64)
	return s, nil
}

// LastLines is the last n lines of s.
func LastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
