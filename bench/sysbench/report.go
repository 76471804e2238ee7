package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"switchyard/bench/internal/chart"
)

type namedConns struct {
	name string
	r    connsResult
	err  error
}

type namedBig struct {
	name string
	r    bigResult
	err  error
}

// extras are the measurements after the rounds.
type extras struct {
	idle     []string
	conns    []namedConns
	connsErr []string
	big      []namedBig
}

type report struct {
	cfg     config
	results []result
	targets []string
	ex      extras
	m       machine
	took    time.Duration
}

// cell is the medians of one workload, thread count and target.
type cell struct {
	qps, p95, cpu, rssMB float64
	errs                 int64
	failed, runs         int
}

func (rep report) cell(w workload, threads int, target string) cell {
	var qps, p95, cpu, rss []float64
	c := cell{}
	for _, r := range rep.results {
		if r.work != w || r.threads != threads || r.target != target {
			continue
		}
		c.runs++
		if r.err != nil {
			c.failed++
			continue
		}
		qps, p95, cpu = append(qps, r.qps), append(p95, r.latP95), append(cpu, r.cpuPer10k)
		if r.peakRSSKB > 0 {
			rss = append(rss, float64(r.peakRSSKB)/1024)
		}
		c.errs += r.errs
	}
	c.qps, c.p95, c.cpu, c.rssMB = median(qps), median(p95), median(cpu), median(rss)
	return c
}

// Markers around the generated section of BENCHMARKS.md.
const (
	beginMarker = "<!-- make bench: generated section begins; edit the runner (bench/sysbench), not this -->"
	endMarker   = "<!-- make bench: generated section ends -->"
)

func (rep report) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	cfg, m := rep.cfg, rep.m
	title := "Latest `make bench`"
	if cfg.quick {
		title = "Latest `make bench --quick` (a check of the runner, not a measurement)"
	}
	p("## %s: direct vs HAProxy vs switchyard (%s)\n\n", title, m.at)
	p("- Machine: %s, %d CPUs, %s RAM, Linux %s; load average %s at start, %s at end (the machine is shared: other work ran too)\n",
		m.cpu, m.nproc, m.mem, m.kernel, m.loadStart, m.loadEnd)
	p("- Software: Go %s, MariaDB %s, sysbench %s, HAProxy %s\n", m.goVer, m.mariadb, m.sysbench, m.haproxy)
	p("- Setup: MariaDB primary + 2 replicas on 127.0.0.1; clients, proxies and servers share the CPUs. " +
		"Read-only workloads: direct = one replica; HAProxy `mode tcp` balances both replicas per connection (round robin); " +
		"switchyard (all three servers) balances reads over the replicas per statement. Workloads that write: direct and HAProxy " +
		"reach the primary; switchyard splits them itself. switchyard runs with log level warn and its defaults otherwise")
	if extra := strings.TrimSpace(cfg.switchyardYAML); extra != "" && extra != strings.TrimSpace(benchYAML) {
		p(", plus `%s`", strings.ReplaceAll(extra, "\n", " "))
	}
	p(".\n")
	p("- Workloads: sysbench %d tables x %d rows, `--db-ps-mode=disable` (text) or `auto` (prepared); the PHP-style load opens a "+
		"connection per request, runs 5 primary-key reads as text statements and disconnects (go-sql-driver, like mysqli's query()). "+
		"%d interleaved round(s): in each, every workload and thread count runs on each target in turn (%s; each round starts one target later), %v per run",
		cfg.tables, cfg.tableSize, cfg.rounds, strings.Join(rep.targets, ", "), cfg.duration)
	if cfg.warmup > 0 {
		p(", after an unrecorded %v warm-up per target", cfg.warmup)
	}
	p(". Whole run: %v.\n", rep.took.Round(time.Minute))
	p("- Figures are medians over the rounds. QPS: sysbench's queries per second (requests per second for PHP-style). p95: latency of a " +
		"sysbench event (a transaction of several statements for read_only and read_write) or of a PHP request. Proxy CPU: utime+stime " +
		"of the process (/proc/PID/stat) over the run, per 10,000 queries (requests). Peak RSS: the proxy's VmHWM during the run " +
		"(reset before each run through /proc/PID/clear_refs).\n")

	p("\n### Goals (issue 14), on this run\n\n")
	p("| goal | worst case in this run | met? |\n|---|---|---|\n")
	rep.goals(p)

	p("\n### sysbench\n\n")
	p("| workload | threads | direct QPS | HAProxy QPS | switchyard QPS | switchyard / direct | switchyard / HAProxy | p95 ms direct / HAProxy / switchyard | CPU s per 10k queries HAProxy / switchyard | CPU ratio | peak RSS MB HAProxy / switchyard | errors |\n")
	p("|---|---:|---:|---:|---:|---:|---:|---|---|---:|---|---|\n")
	for _, w := range cfg.workloads {
		if w.php() {
			continue
		}
		for _, th := range cfg.threads {
			rep.row(p, w, th)
		}
	}
	for _, w := range cfg.workloads {
		if !w.php() {
			continue
		}
		p("\n### PHP-FPM-style: connect, 5 primary-key reads, disconnect\n\n")
		p("| workload | workers | direct req/s | HAProxy req/s | switchyard req/s | switchyard / direct | switchyard / HAProxy | p95 ms direct / HAProxy / switchyard | CPU s per 10k requests HAProxy / switchyard | CPU ratio | peak RSS MB HAProxy / switchyard | errors |\n")
		p("|---|---:|---:|---:|---:|---:|---:|---|---|---:|---|---|\n")
		for _, th := range cfg.phpWorkers {
			rep.row(p, w, th)
		}
	}
	if len(rep.targets) > 3 {
		p("\n### Other switchyard targets, against switchyard\n\n| target | workload | threads | QPS ratio | CPU per query ratio |\n|---|---|---:|---:|---:|\n")
		for _, t := range rep.targets[3:] {
			for _, w := range cfg.workloads {
				for _, th := range cfg.threadsOf(w) {
					a, s := rep.cell(w, th, t), rep.cell(w, th, "switchyard")
					p("| %s | %s | %d | %s | %s |\n", t, w, th, num(a.qps/s.qps, 2), num(a.cpu/s.cpu, 2))
				}
			}
		}
	}
	if cfg.charts != "" {
		dir := filepath.ToSlash(cfg.charts)
		p("\n### Charts\n\n![QPS by threads](%s/qps.png)\n\n![proxy CPU per query](%s/cpu.png)\n", dir, dir)
	}

	if len(rep.ex.idle) > 0 {
		p("\n### Idle clients\n\nA fresh process each; one warm-up connection, %v settle, then clients that log in, ping once and stay idle, %v settle.\n\n",
			cfg.settle, cfg.settle)
		for _, l := range rep.ex.idle {
			p("- %s\n", l)
		}
	}
	if len(rep.ex.conns) > 0 || len(rep.ex.connsErr) > 0 {
		p("\n### Server connections per %d clients\n\n", cfg.connClients)
		p("%d clients connect through a fresh proxy; 32 workers run point selects on clients picked at random for %v; the servers' process lists are sampled every 20 ms.\n\n",
			cfg.connClients, min(cfg.duration, 5*time.Second))
		p("| proxy | statements | peak server sessions of the app user | per 1000 clients |\n|---|---:|---:|---:|\n")
		for _, c := range rep.ex.conns {
			if c.err != nil {
				p("| %s | FAILED: %s | | |\n", c.name, mdEscape(c.err.Error()))
				continue
			}
			p("| %s | %d | %d | %s |\n", c.name, c.r.statements, c.r.peak, num(float64(c.r.peak)*1000/float64(c.r.clients), 0))
		}
		for _, e := range rep.ex.connsErr {
			p("\nFAILED: %s\n", mdEscape(e))
		}
	}
	if len(rep.ex.big) > 0 {
		p("\n### A %d MiB result\n\n", cfg.bigResultMB)
		p("`SELECT REPEAT('x', 1048576) FROM seq_1_to_%d` from a replica through a fresh proxy, read by go-sql-driver as fast as it can.\n\n", cfg.bigResultMB)
		p("| proxy | RSS before MB | peak RSS MB | growth MB | seconds | proxy CPU s |\n|---|---:|---:|---:|---:|---:|\n")
		for _, g := range rep.ex.big {
			if g.err != nil {
				p("| %s | FAILED: %s | | | | |\n", g.name, mdEscape(g.err.Error()))
				continue
			}
			p("| %s | %.1f | %.1f | %.1f | %.1f | %.2f |\n", g.name, float64(g.r.rssBeforeKB)/1024, float64(g.r.hwmKB)/1024,
				float64(g.r.hwmKB-g.r.rssBeforeKB)/1024, g.r.seconds, g.r.cpu)
		}
	}

	p("\n### Raw runs\n\n<details><summary>%d runs</summary>\n\n", len(rep.results))
	p("| round | workload | threads | target | QPS | errors | avg latency ms | p95 latency ms | proxy CPU s | CPU s per 10k | peak RSS MB |\n|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rep.results {
		if r.err != nil {
			p("| %d | %s | %d | %s | FAILED: %s | | | | | | |\n", r.round, r.work, r.threads, r.target, mdEscape(firstLine(r.err.Error())))
			continue
		}
		rss := math.NaN()
		if r.peakRSSKB > 0 {
			rss = float64(r.peakRSSKB) / 1024
		}
		p("| %d | %s | %d | %s | %.0f | %d | %.2f | %.2f | %s | %s | %s |\n", r.round, r.work, r.threads, r.target, r.qps, r.errs,
			r.latAvg, r.latP95, num(r.cpu, 2), num(r.cpuPer10k, 3), num(rss, 1))
	}
	p("\n</details>\n")
	return b.String()
}

func (rep report) row(p func(string, ...any), w workload, th int) {
	d, h, s := rep.cell(w, th, "direct"), rep.cell(w, th, "haproxy"), rep.cell(w, th, "switchyard")
	errText := fmt.Sprintf("%d / %d / %d", d.errs, h.errs, s.errs)
	if f := d.failed + h.failed + s.failed; f > 0 {
		errText += fmt.Sprintf("; %d runs FAILED", f)
	}
	p("| %s | %d | %s | %s | %s | %s | %s | %s / %s / %s | %s / %s | %s | %s / %s | %s |\n", w, th,
		num(d.qps, 0), num(h.qps, 0), num(s.qps, 0), num(s.qps/d.qps, 2), num(s.qps/h.qps, 2),
		num(d.p95, 2), num(h.p95, 2), num(s.p95, 2), num(h.cpu, 3), num(s.cpu, 3), num(s.cpu/h.cpu, 2),
		num(h.rssMB, 1), num(s.rssMB, 1), errText)
}

// goals checks the speed goals against this run's medians and
// names the worst case of each.
func (rep report) goals(p func(string, ...any)) {
	type worst struct {
		v    float64
		what string
	}
	qps, cpu, php := worst{math.Inf(1), ""}, worst{math.Inf(-1), ""}, worst{math.Inf(1), ""}
	for _, w := range rep.cfg.workloads {
		for _, th := range rep.cfg.threadsOf(w) {
			h, s := rep.cell(w, th, "haproxy"), rep.cell(w, th, "switchyard")
			what := fmt.Sprintf("%s, %d threads", w, th)
			if w.php() {
				if r := s.qps / h.qps; r < php.v {
					php = worst{r, what}
				}
				continue
			}
			if r := s.qps / h.qps; r < qps.v {
				qps = worst{r, what}
			}
			if r := s.cpu / h.cpu; r > cpu.v {
				cpu = worst{r, what}
			}
		}
	}
	line := func(goal string, w worst, ok bool) {
		if math.IsInf(w.v, 0) || math.IsNaN(w.v) {
			p("| %s | not measured | – |\n", goal)
			return
		}
		met := "no"
		if ok {
			met = "yes"
		}
		p("| %s | %.2f (%s) | %s |\n", goal, w.v, w.what, met)
	}
	line("switchyard QPS >= 1.0 x HAProxy on every sysbench workload and thread count", qps, qps.v >= 1.0)
	line("switchyard CPU per query <= 1.1 x HAProxy", cpu, cpu.v <= 1.1)
	line("switchyard >= 1.5 x HAProxy on PHP-style connect-per-request", php, php.v >= 1.5)
}

// drawCharts writes qps.png (median QPS by thread count, a panel per
// workload) and cpu.png (proxy CPU per 10k queries).
func (rep report) drawCharts() error {
	if err := os.MkdirAll(rep.cfg.charts, 0o755); err != nil {
		return err
	}
	var qps, cpu []chart.Panel
	for _, w := range rep.cfg.workloads {
		var groups []string
		for _, th := range rep.cfg.threadsOf(w) {
			groups = append(groups, strconv.Itoa(th))
		}
		unit, per := "QPS", "s / 10k queries"
		if w.php() {
			unit, per = "requests/s", "s / 10k requests"
		}
		qp := chart.Panel{Title: w.String() + " (x: threads)", YLabel: unit, Groups: groups}
		cp := chart.Panel{Title: w.String() + " (x: threads)", YLabel: per, Groups: groups}
		for _, t := range rep.targets {
			var q, c []float64
			for _, th := range rep.cfg.threadsOf(w) {
				cl := rep.cell(w, th, t)
				q, c = append(q, cl.qps), append(c, cl.cpu)
			}
			qp.Series = append(qp.Series, chart.Series{Name: t, Values: q})
			if t != "direct" {
				cp.Series = append(cp.Series, chart.Series{Name: t, Values: c})
			}
		}
		qps, cpu = append(qps, qp), append(cpu, cp)
	}
	at := " (" + rep.m.at + ", medians of " + strconv.Itoa(rep.cfg.rounds) + " interleaved rounds)"
	if err := chart.WritePNG(filepath.Join(rep.cfg.charts, "qps.png"), "Throughput: direct vs HAProxy vs switchyard"+at, 3, qps); err != nil {
		return err
	}
	return chart.WritePNG(filepath.Join(rep.cfg.charts, "cpu.png"), "Proxy CPU seconds per 10,000 queries (lower is better)"+at, 3, cpu)
}

// updateSection replaces what lies between the markers in path with md, or
// inserts md with markers before the file's first "## " heading.
func updateSection(path, md string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	section := beginMarker + "\n\n" + md + "\n" + endMarker + "\n"
	if i, j := strings.Index(s, beginMarker), strings.Index(s, endMarker); i >= 0 && j > i {
		s = s[:i] + section + strings.TrimPrefix(s[j+len(endMarker):], "\n")
	} else if k := strings.Index(s, "\n## "); k >= 0 {
		s = s[:k+1] + section + "\n" + s[k+1:]
	} else {
		s += "\n" + section
	}
	return os.WriteFile(path, []byte(s), 0o644)
}

func mdEscape(s string) string { return strings.ReplaceAll(firstLine(s), "|", `\|`) }
