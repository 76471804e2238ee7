// Command demo runs the deployment switchyard is built for, on loopback:
// a MariaDB primary with two replicas, two web servers (nginx + PHP-FPM)
// each with its own switchyard beside it, and HAProxy balancing the web
// servers on 127.0.0.1:8080. A small PHP app writes every visit through
// mysqli and lists the recent ones through PDO, and shows which web server,
// which switchyard and which database servers answered.
//
// It runs in the foreground; Ctrl-C or SIGTERM stops every process it
// started. `make demo` builds switchyard and runs it; `make demo-failover`
// runs it with --failover, which asks the running demo (SIGUSR1) to kill
// the primary.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"switchyard/integration/harness"
)

// Default ports, each moved by --port-offset. None is a port a system
// service usually holds (80, 3306, 6033), so the demo runs beside them.
const (
	portHAProxy    = 8080  // the site, as a browser sees it
	portWeb        = 8081  // web1; web2 is portWeb+1
	portSwitchyard = 16033 // web1's switchyard; web2's is +100
	portAdmin      = 16032 // web1's switchyard admin interface; web2's is +100
	portHTTP       = 16070 // web1's switchyard /health, /metrics; web2's is +100
	portMariaDB    = 13306 // db1 (the primary); db2, db3 follow
)

func main() {
	os.Exit(run())
}

type options struct {
	binary, dir, check, extraYAML string
	offset                        int
	keep, failover                bool
}

func run() int {
	var o options
	flag.StringVar(&o.binary, "switchyard", "", "path of the switchyard binary (required; make demo builds it)")
	flag.IntVar(&o.offset, "port-offset", 0, "added to every port the demo listens on (HAProxy 8080, web servers 8081-8082, switchyards 16032-16170, MariaDB 13306-13308)")
	flag.StringVar(&o.dir, "dir", filepath.Join(os.TempDir(), "switchyard-demo"), "directory for configs, logs and data (emptied at start, removed at exit unless --keep)")
	flag.StringVar(&o.check, "check", "web", "what HAProxy's health check asks: web (GET /health on the web server) or switchyard (GET /health on the web server's switchyard)")
	flag.StringVar(&o.extraYAML, "extra-yaml", "", "file whose YAML is merged into both switchyard configs")
	flag.BoolVar(&o.keep, "keep", false, "keep the directory after exit")
	flag.BoolVar(&o.failover, "failover", false, "do not start a demo: tell the running one (same --dir) to kill its primary")
	flag.Parse()
	if o.failover {
		return signalDemo(o.dir)
	}
	if o.binary == "" {
		fmt.Fprintln(os.Stderr, "demo: --switchyard PATH is required (make demo builds it)")
		return 2
	}
	if o.check != "web" && o.check != "switchyard" {
		fmt.Fprintf(os.Stderr, "demo: --check must be web or switchyard, not %q\n", o.check)
		return 2
	}
	if abs, err := filepath.Abs(o.binary); err == nil {
		o.binary = abs
	}
	if _, err := os.Stat(o.binary); err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		return 2
	}
	if err := runDemo(o); err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		return 1
	}
	return 0
}

// layout is every address and path of one demo run.
type layout struct {
	dir                           string
	haproxy                       string
	web, proxyMySQL, admin, httpL [2]string
	mariadb                       []int
}

func newLayout(o options) layout {
	addr := func(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port+o.offset)) }
	l := layout{dir: o.dir, haproxy: addr(portHAProxy)}
	for i := range 2 {
		l.web[i] = addr(portWeb + i)
		l.proxyMySQL[i] = addr(portSwitchyard + 100*i)
		l.admin[i] = addr(portAdmin + 100*i)
		l.httpL[i] = addr(portHTTP + 100*i)
	}
	for i := range 3 {
		l.mariadb = append(l.mariadb, portMariaDB+i+o.offset)
	}
	return l
}

// portsFree fails naming the first port something else holds, so a clash
// is one clear line instead of a process dying halfway through startup.
func (l layout) portsFree() error {
	addrs := []string{l.haproxy}
	for i := range 2 {
		addrs = append(addrs, l.web[i], l.proxyMySQL[i], l.admin[i], l.httpL[i])
	}
	for _, p := range l.mariadb {
		addrs = append(addrs, net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	}
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return fmt.Errorf("%s is taken (%v); is another demo running? Move every port with --port-offset N (make demo DEMO_FLAGS=--port-offset=100)", a, err)
		}
		ln.Close()
	}
	return nil
}

func pidFile(dir string) string { return filepath.Join(dir, "demo.pid") }

func runDemo(o options) error {
	tools, err := findTools()
	if err != nil {
		return err
	}
	l := newLayout(o)
	if err := l.portsFree(); err != nil {
		return err
	}
	if b, err := os.ReadFile(pidFile(o.dir)); err == nil {
		if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid > 0 && syscall.Kill(pid, 0) == nil {
			return fmt.Errorf("a demo (pid %d) already uses %s; stop it or pass another --dir", pid, o.dir)
		}
	}
	if err := os.RemoveAll(o.dir); err != nil {
		return err
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	if !o.keep {
		defer os.RemoveAll(o.dir)
	}
	if err := os.WriteFile(pidFile(o.dir), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return err
	}
	defer os.Remove(pidFile(o.dir))
	var extraYAML string
	if o.extraYAML != "" {
		b, err := os.ReadFile(o.extraYAML)
		if err != nil {
			return err
		}
		extraYAML = string(b)
	}

	// A signal during startup cancels it; the deferred stops still run.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// SIGUSR1 (make demo-failover) kills the primary; caught from the start
	// so an early one does not kill the demo itself.
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	startCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()

	began := time.Now()
	// Semi-synchronous, so that the failover make demo-failover causes
	// loses no acknowledged visit.
	cluster, err := harness.StartCluster(startCtx, harness.ClusterOptions{
		BaseDir: o.dir, KeepDirs: o.keep, Ports: l.mariadb, Logf: logf, SemiSync: true,
	})
	if err != nil {
		return fmt.Errorf("starting MariaDB: %w", err)
	}
	defer cluster.Stop()
	if err := cluster.Primary.Exec(startCtx, "CREATE TABLE "+cluster.Database+`.visits (
		id BIGINT AUTO_INCREMENT PRIMARY KEY,
		created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
		web_server VARCHAR(32) NOT NULL,
		switchyard VARCHAR(32) NOT NULL,
		client VARCHAR(64) NOT NULL,
		written_on INT NOT NULL)`); err != nil {
		return fmt.Errorf("creating the visits table: %w", err)
	}
	if err := cluster.WaitReplicasCaughtUp(startCtx); err != nil {
		return err
	}
	logf("demo: MariaDB up in %v", time.Since(began).Round(time.Millisecond))

	var stack stack
	defer stack.stopAll(logf)
	var proxies [2]*harness.Proxy
	for i := range 2 {
		p, err := harness.StartProxy(startCtx, harness.ProxyOptions{
			Binary: o.binary, Cluster: cluster, LogLevel: "info",
			Dir:       filepath.Join(o.dir, fmt.Sprintf("switchyard-web%d", i+1)),
			MySQLAddr: l.proxyMySQL[i], AdminAddr: l.admin[i], HTTPAddr: l.httpL[i],
			// Cooperative failover between the two switchyards once it
			// exists; until then the keys are accepted and not in effect.
			ExtraYAML: "failover:\n  auto: true\n  cooperative: true\n" + extraYAML,
		})
		if err != nil {
			return fmt.Errorf("starting switchyard %d: %w", i+1, err)
		}
		proxies[i] = p
		stack.add(fmt.Sprintf("switchyard-web%d", i+1), proxyProc{p})
	}

	appDir, err := writeApp(o.dir)
	if err != nil {
		return err
	}
	var serverNames []string
	for _, s := range cluster.Servers() {
		serverNames = append(serverNames, fmt.Sprintf("%d=%s", s.ServerID, s.Name))
	}
	for i := range 2 {
		w := webServer{
			name: fmt.Sprintf("web%d", i+1), dir: filepath.Join(o.dir, fmt.Sprintf("web%d", i+1)),
			listen: l.web[i], appDir: appDir, switchyard: proxies[i], cluster: cluster,
			serverNames: strings.Join(serverNames, ","),
		}
		if err := w.start(startCtx, tools, &stack); err != nil {
			return err
		}
	}
	hap, err := startHAProxy(startCtx, tools.haproxy, o.dir, l, o.check)
	if err != nil {
		return err
	}
	stack.add("haproxy", hap)

	if err := selfCheck(startCtx, l.haproxy, cluster); err != nil {
		hint := ""
		if o.check == "switchyard" {
			hint = "; --check switchyard needs switchyard's HTTP endpoint (listen.http /health), which this build may not serve yet"
		}
		return fmt.Errorf("the stack is up but the page is not right: %w (logs in %s; --keep keeps them)%s", err, o.dir, hint)
	}
	printInfo(o, l, cluster, proxies, tools)
	logf("demo: everything up in %v; press Ctrl-C to stop", time.Since(began).Round(time.Millisecond))

	for {
		select {
		case <-ctx.Done():
			logf("\ndemo: stopping every process")
			return nil
		case <-usr1:
			primary := cluster.Primary
			if !primary.Running() {
				logf("demo: the primary %s is already down", primary.Name)
				continue
			}
			primary.Kill()
			logf("demo: killed the primary %s (%s) with SIGKILL. Reads keep coming from the replicas; "+
				"writes wait (failover.hold_timeout) while switchyard promotes the most advanced replica, "+
				"then go on there: reload the page. Each switchyard's log shows the failover as events. "+
				"Ctrl-C and make demo again to start afresh.",
				primary.Name, primary.Addr())
		case name := <-stack.exited():
			return fmt.Errorf("%s exited unexpectedly; its log is in %s", name, o.dir)
		}
	}
}

// signalDemo is `make demo-failover`: the demo does the killing, since it
// owns the servers and knows which one is the primary.
func signalDemo(dir string) int {
	b, err := os.ReadFile(pidFile(dir))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 || syscall.Kill(pid, 0) != nil {
		fmt.Fprintf(os.Stderr, "demo: no running demo found (%s); start one with make demo\n", pidFile(dir))
		return 1
	}
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		fmt.Fprintf(os.Stderr, "demo: signalling demo pid %d: %v\n", pid, err)
		return 1
	}
	fmt.Printf("Asked the demo (pid %d) to kill its MariaDB primary; its terminal says what happened.\n"+
		"Reload the page: reads keep working from the replicas; writes wait while a switchyard promotes the\n"+
		"most advanced replica (a few seconds), then the page shows them written on it.\n", pid)
	return 0
}

// selfCheck loads the page through HAProxy until both web servers have
// answered, and checks each answer: a write on the primary, a read on a
// replica. It is what `make demo` promises, checked before it says "up".
func selfCheck(ctx context.Context, site string, c *harness.Cluster) error {
	primary := c.Primary.Name
	seen := map[string]bool{}
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for len(seen) < 2 {
		if time.Now().After(deadline) {
			return fmt.Errorf("after 30s: %v (web servers seen: %v)", last, seen)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := getPage(ctx, "http://"+site+"/")
		if err != nil {
			last = err
			time.Sleep(200 * time.Millisecond)
			continue
		}
		web, write, read := h.Get("X-Web-Server"), h.Get("X-Write-Server"), h.Get("X-Read-Server")
		switch {
		case !strings.HasPrefix(write, primary+" "):
			return fmt.Errorf("%s wrote on %q, not on the primary %s", web, write, primary)
		case strings.HasPrefix(read, primary+" ") || read == "failed" || read == "":
			return fmt.Errorf("%s read from %q, not from a replica", web, read)
		}
		fmt.Fprintf(os.Stderr, "demo: page served by %s through %s: write on %s, read on %s\n",
			web, h.Get("X-Switchyard"), write, read)
		seen[web] = true
	}
	return nil
}

func printInfo(o options, l layout, c *harness.Cluster, proxies [2]*harness.Proxy, tools tools) {
	host, port, _ := net.SplitHostPort(proxies[0].Addr())
	ahost, aport, _ := net.SplitHostPort(proxies[0].AdminAddr())
	fmt.Printf(`
The demo is up: HAProxy -> 2 x (nginx + PHP-FPM -> its own switchyard) -> MariaDB primary + %d replicas.

  Site (HAProxy, alternates web servers):  http://%s/
  web1 directly:                           http://%s/
  web2 directly:                           http://%s/
  The page's facts as headers:             curl -si http://%s/ | grep -i '^x-'

Through web1's switchyard, as the app does:
  mariadb -h %s -P %s -u %s -p%s %s
  (reads go to replicas, writes to the primary; to see it, start mariadb with --comments and run
   /* switchyard:route=replica */ SELECT @@server_id;)
Admin interface of web1's switchyard (web2's: port +100), e.g. SELECT * FROM runtime_servers:
  mariadb -h %s -P %s -u %s -p%s
HAProxy health check: %s

Servers (direct, as root):
`, len(c.Replicas), l.haproxy, l.web[0], l.web[1], l.haproxy,
		host, port, c.AppUser, c.AppPassword, c.Database,
		ahost, aport, proxies[0].AdminUser(), proxies[0].AdminPassword(), checkText(o.check))
	for _, s := range c.Servers() {
		role := "replica"
		if s == c.Primary {
			role = "primary"
		}
		fmt.Printf("  %-4s %-8s mariadb -h 127.0.0.1 -P %d -u root -p%s   (error log %s)\n",
			s.Name, role, s.Port, s.RootPassword(), s.ErrorLog)
	}
	kept := "removed at exit; --keep keeps it"
	if o.keep {
		kept = "kept after exit"
	}
	fmt.Printf(`
Logs (all under %s, %s):
  switchyard:  %s, %s
  nginx:       web1/nginx-error.log, web1/nginx-access.log (web2/ likewise)
  PHP-FPM:     web1/php-fpm.log (web2/ likewise)
  HAProxy:     haproxy.log
Configs: switchyard-web1/switchyard.yaml, web1/nginx.conf, web1/php-fpm.conf, haproxy.cfg (same dir)

make demo-failover (in another terminal) kills the primary: the page keeps reading from the replicas.
Press Ctrl-C to stop everything.
`, o.dir, kept, proxies[0].LogPath(), proxies[1].LogPath())
}

func checkText(check string) string {
	if check == "switchyard" {
		return "GET /health on each web server's switchyard (--check switchyard)"
	}
	return "GET /health on each web server (nginx); --check switchyard asks the switchyard's /health instead"
}

// stack is the demo's processes in start order; stopAll stops them in
// reverse, so traffic stops at the front first.
type stack struct {
	names []string
	procs []stopper
	exit  chan string
}

type stopper interface {
	stop()
	done() <-chan struct{}
}

func (s *stack) add(name string, p stopper) {
	if s.exit == nil {
		s.exit = make(chan string, 16)
	}
	s.names, s.procs = append(s.names, name), append(s.procs, p)
	go func() {
		<-p.done()
		s.exit <- name
	}()
}

// exited yields the name of a process that exited; after stopAll began,
// nobody reads it.
func (s *stack) exited() <-chan string { return s.exit }

func (s *stack) stopAll(logf func(string, ...any)) {
	for i := len(s.procs) - 1; i >= 0; i-- {
		s.procs[i].stop()
	}
	if len(s.procs) > 0 {
		logf("demo: stopped %s", strings.Join(s.names, ", "))
	}
}

type proxyProc struct{ p *harness.Proxy }

func (p proxyProc) stop()                 { _ = p.p.Stop() }
func (p proxyProc) done() <-chan struct{} { return p.p.Done() }

// cmdProc is a process started with harness.StartCommand and stopped with
// the signal its program treats as a quick, clean stop.
type cmdProc struct {
	c   *harness.Command
	sig syscall.Signal
}

func (p cmdProc) stop()                 { p.c.Stop(p.sig, 10*time.Second) }
func (p cmdProc) done() <-chan struct{} { return p.c.Done() }
