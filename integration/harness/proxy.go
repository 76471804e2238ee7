package harness

import (
	"bufio"
	"cmp"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ProxyUser is one entry of the config's users list.
type ProxyUser struct {
	Name          string
	Password      string
	PasswordHash  string // mysql_native_password hash; used when Password is empty
	DefaultSchema string
}

// ProxyOptions configures StartProxy.
type ProxyOptions struct {
	Binary  string   // the switchyard binary (see BuildSwitchyard); required
	Cluster *Cluster // required
	// Servers defaults to Cluster.Servers().
	Servers []*Server
	// Users defaults to the cluster's app user with the cluster's database
	// as default schema.
	Users         []ProxyUser
	AdminUser     string // default "admin"
	AdminPassword string // default "admin"
	// ExtraYAML is added at the top level of the generated config. A
	// top-level mapping that the harness also writes (listen, admin,
	// monitor, failover) is merged key by key, the extra keys winning, so
	// "failover:\n  auto: false\n" keeps the harness's replication user. Any
	// other top-level key in ExtraYAML (users, servers, ...) replaces the
	// harness's entirely.
	ExtraYAML string
	LogLevel  string   // --log-level, default "debug"
	Args      []string // appended to the command line
	Env       []string // added to the environment, e.g. for ${ENV} secrets
	// Dir holds the config and the log; default a new temp dir, removed by
	// Stop unless KeepDir.
	Dir     string
	KeepDir bool
	// StopTimeout bounds the graceful part of Stop (default 10s).
	StopTimeout time.Duration
	// MySQLAddr, AdminAddr and HTTPAddr, if set, are the listen addresses;
	// the default is free ports on 127.0.0.1. A start with fixed addresses
	// is not retried when one is taken.
	MySQLAddr, AdminAddr, HTTPAddr string
}

// Proxy is a running switchyard process.
type Proxy struct {
	opt        ProxyOptions
	dir        string
	ownDir     bool
	configPath string
	logPath    string
	mysqlAddr  string
	adminAddr  string
	httpAddr   string
	proc       *process

	stopOnce  sync.Once
	finalLogs string // the log, kept in memory once Stop removed the dir
}

// BuildSwitchyard builds switchyard/cmd/switchyard into dir and returns the
// binary's path. The module root is found by walking up from the current
// directory to go.mod, so it works from any package's tests.
func BuildSwitchyard(ctx context.Context, dir string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "switchyard")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "switchyard/cmd/switchyard")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build switchyard/cmd/switchyard: %v\n%s", err, b)
	}
	return out, nil
}

// ModuleRoot returns the directory holding go.mod, searching upwards from the
// current directory.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the current directory")
		}
		dir = parent
	}
}

// NativePasswordHash is the mysql_native_password hash of password, in the
// form the config's password_hash expects.
func NativePasswordHash(password string) string {
	h1 := sha1.Sum([]byte(password))
	h2 := sha1.Sum(h1[:])
	return "*" + strings.ToUpper(hex.EncodeToString(h2[:]))
}

func (o *ProxyOptions) defaults() error {
	if o.Binary == "" {
		return errors.New("ProxyOptions.Binary is required")
	}
	if o.Cluster == nil {
		return errors.New("ProxyOptions.Cluster is required")
	}
	if o.Servers == nil {
		o.Servers = o.Cluster.Servers()
	}
	if o.Users == nil {
		o.Users = []ProxyUser{{Name: o.Cluster.AppUser, Password: o.Cluster.AppPassword, DefaultSchema: o.Cluster.Database}}
	}
	if o.AdminUser == "" {
		o.AdminUser = "admin"
	}
	if o.AdminPassword == "" {
		o.AdminPassword = "admin"
	}
	if o.LogLevel == "" {
		o.LogLevel = "debug"
	}
	if o.StopTimeout == 0 {
		o.StopTimeout = 10 * time.Second
	}
	return nil
}

// StartProxy writes a config for the cluster with listen addresses on free
// ports, starts switchyard with it and waits until the MySQL port sends a
// handshake. If the process exits first, the error includes its log tail.
func StartProxy(ctx context.Context, opt ProxyOptions) (_ *Proxy, err error) {
	if err := opt.defaults(); err != nil {
		return nil, err
	}
	p := &Proxy{opt: opt, dir: opt.Dir}
	if p.dir == "" {
		if p.dir, err = os.MkdirTemp("", "sy-proxy-"); err != nil {
			return nil, err
		}
		p.ownDir = true
	} else if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return nil, err
	}
	p.configPath = filepath.Join(p.dir, "switchyard.yaml")
	p.logPath = filepath.Join(p.dir, "switchyard.log")
	defer func() {
		if err != nil {
			p.Stop()
		}
	}()

	// Another process may take a probed port before switchyard binds it;
	// that start then fails and is retried on new ports.
	for attempt := 0; ; attempt++ {
		err = p.start(ctx)
		if err == nil || !errors.Is(err, errAddrInUse) || attempt >= 3 || opt.MySQLAddr != "" {
			return p, err
		}
	}
}

func (p *Proxy) start(ctx context.Context) error {
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	p.mysqlAddr = cmp.Or(p.opt.MySQLAddr, "127.0.0.1:"+strconv.Itoa(ports[0]))
	p.adminAddr = cmp.Or(p.opt.AdminAddr, "127.0.0.1:"+strconv.Itoa(ports[1]))
	p.httpAddr = cmp.Or(p.opt.HTTPAddr, "127.0.0.1:"+strconv.Itoa(ports[2]))
	if err := os.WriteFile(p.configPath, []byte(p.config()), 0o600); err != nil {
		return err
	}
	return p.launch(ctx)
}

// launch starts the binary with the config file as it is on disk and waits
// until the MySQL port sends a handshake.
func (p *Proxy) launch(ctx context.Context) error {
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	logOffset := fileSize(p.logPath)
	args := append([]string{"-c", p.configPath, "--log-level", p.opt.LogLevel}, p.opt.Args...)
	cmd := exec.Command(p.opt.Binary, args...)
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), p.opt.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	p.proc, err = startProcess(cmd)
	logf.Close()
	if err != nil {
		return fmt.Errorf("starting %s: %w", p.opt.Binary, err)
	}

	var lastErr error
	for {
		if p.proc.exited() {
			tail := fileTailFrom(p.logPath, logOffset, 40)
			err := fmt.Errorf("switchyard exited during startup (%v); config %s, log %s:\n%s",
				p.proc.waitErr, p.configPath, p.logPath, tail)
			if strings.Contains(tail, "address already in use") {
				return fmt.Errorf("%w: %w", errAddrInUse, err)
			}
			return err
		}
		if lastErr = probeHandshake(ctx, p.mysqlAddr); lastErr == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			p.proc.kill()
			return fmt.Errorf("switchyard not ready on %s (last error: %v): %w; log %s:\n%s",
				p.mysqlAddr, lastErr, ctx.Err(), p.logPath, fileTailFrom(p.logPath, logOffset, 40))
		case <-p.proc.done:
		case <-time.After(pollInterval):
		}
	}
}

// probeHandshake succeeds once addr sends a MySQL initial handshake packet
// (protocol version 10). Accepting TCP alone is not enough: a listener may
// be bound before the proxy can serve, and an error packet (0xff) means not
// ready either.
func probeHandshake(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline := time.Now().Add(2 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	conn.SetReadDeadline(deadline)
	var hdr [5]byte // 3-byte length, sequence id, first payload byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return fmt.Errorf("reading handshake: %w", err)
	}
	length := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
	switch {
	case length == 0:
		return errors.New("empty first packet")
	case hdr[4] == 0xff:
		return errors.New("server sent an error packet instead of a handshake")
	case hdr[4] != 10:
		return fmt.Errorf("protocol version %d, want 10", hdr[4])
	}
	return nil
}

// yamlStr quotes s as a YAML double-quoted scalar; Go's escapes are a
// subset of YAML's.
func yamlStr(s string) string { return strconv.Quote(s) }

func (p *Proxy) config() string {
	var b strings.Builder
	b.WriteString("# generated by switchyard/integration/harness\n")
	sections := []yamlSection{
		{key: "listen", mapping: [][2]string{
			{"mysql", p.mysqlAddr},
			{"admin", p.adminAddr},
			{"http", p.httpAddr},
		}},
		{key: "admin", mapping: [][2]string{
			{"user", yamlStr(p.opt.AdminUser)},
			{"password", yamlStr(p.opt.AdminPassword)},
		}},
		{key: "users", body: p.usersYAML()},
		{key: "servers", body: p.serversYAML()},
		{key: "monitor", mapping: [][2]string{
			{"user", yamlStr(MonitorUser)},
			{"password", yamlStr(MonitorPassword)},
		}},
		// Idle pooled server connections close after a second, so that
		// tests can see the server sessions a proxy holds return to zero.
		{key: "pool", mapping: [][2]string{
			{"idle_timeout", "1s"},
		}},
		{key: "failover", mapping: [][2]string{
			{"replication_user", yamlStr(ReplUser)},
			{"replication_password", yamlStr(ReplPassword)},
		}},
	}
	b.WriteString(mergeYAML(sections, p.opt.ExtraYAML))
	return b.String()
}

func (p *Proxy) usersYAML() string {
	var b strings.Builder
	for _, u := range p.opt.Users {
		fmt.Fprintf(&b, "  - name: %s\n", yamlStr(u.Name))
		if u.Password != "" || u.PasswordHash == "" {
			fmt.Fprintf(&b, "    password: %s\n", yamlStr(u.Password))
		} else {
			fmt.Fprintf(&b, "    password_hash: %s\n", yamlStr(u.PasswordHash))
		}
		if u.DefaultSchema != "" {
			fmt.Fprintf(&b, "    default_schema: %s\n", yamlStr(u.DefaultSchema))
		}
	}
	return b.String()
}

func (p *Proxy) serversYAML() string {
	var b strings.Builder
	for _, s := range p.opt.Servers {
		fmt.Fprintf(&b, "  - name: %s\n    address: %s\n", yamlStr(s.Name), s.Addr())
	}
	return b.String()
}

// yamlSection is one top-level key of the generated config: either a flat
// mapping of scalars (mergeable) or a pre-rendered indented body.
type yamlSection struct {
	key     string
	mapping [][2]string
	body    string
}

// extraEntry is one top-level key of ExtraYAML with its lines.
type extraEntry struct {
	key   string
	first string   // the "key: ..." line
	child []string // the following indented, blank or comment lines
}

// mergeYAML renders sections followed by extra, merging top-level keys of
// extra into same-named sections so the result never has duplicate keys,
// which YAML parsers reject.
func mergeYAML(sections []yamlSection, extra string) string {
	entries, preamble := splitTopLevel(extra)
	byKey := map[string]*extraEntry{}
	for i := range entries {
		byKey[entries[i].key] = &entries[i]
	}
	used := map[string]bool{}
	var b strings.Builder
	for _, sec := range sections {
		e := byKey[sec.key]
		if e == nil {
			writeSection(&b, sec, nil)
			continue
		}
		used[sec.key] = true
		_, value, _ := strings.Cut(e.first, ":")
		value = strings.TrimSpace(value)
		if sec.mapping == nil || (value != "" && !strings.HasPrefix(value, "#")) {
			// A list, or a flow-style/scalar value: cannot be merged by
			// key, so the test's version replaces ours.
			writeEntry(&b, *e)
			continue
		}
		writeSection(&b, sec, e.child)
	}
	if preamble != "" {
		b.WriteString(preamble)
	}
	for _, e := range entries {
		if !used[e.key] {
			writeEntry(&b, e)
		}
	}
	return b.String()
}

func writeSection(b *strings.Builder, sec yamlSection, extraChild []string) {
	b.WriteString(sec.key + ":\n")
	if sec.mapping == nil {
		b.WriteString(sec.body)
		return
	}
	child := reindent(extraChild, 2)
	overridden := map[string]bool{}
	for _, l := range child {
		if strings.HasPrefix(l, "  ") && !strings.HasPrefix(l, "   ") {
			if k, _, ok := strings.Cut(strings.TrimSpace(l), ":"); ok {
				overridden[strings.TrimSpace(k)] = true
			}
		}
	}
	for _, kv := range sec.mapping {
		if !overridden[kv[0]] {
			fmt.Fprintf(b, "  %s: %s\n", kv[0], kv[1])
		}
	}
	for _, l := range child {
		b.WriteString(l + "\n")
	}
}

func writeEntry(b *strings.Builder, e extraEntry) {
	b.WriteString(e.first + "\n")
	for _, l := range e.child {
		b.WriteString(l + "\n")
	}
}

// splitTopLevel cuts YAML text into its top-level "key:" entries; lines
// before the first key (comments) are returned as preamble.
func splitTopLevel(text string) (entries []extraEntry, preamble string) {
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \t\r")
		topKey := line != "" && line[0] != ' ' && line[0] != '\t' && line[0] != '#' && line[0] != '-' && strings.Contains(line, ":")
		if topKey {
			k, _, _ := strings.Cut(line, ":")
			entries = append(entries, extraEntry{key: strings.Trim(strings.TrimSpace(k), `"'`), first: line})
			continue
		}
		if len(entries) == 0 {
			if line != "" && line != "---" {
				preamble += line + "\n"
			}
			continue
		}
		last := &entries[len(entries)-1]
		last.child = append(last.child, line)
	}
	return entries, preamble
}

// reindent shifts lines so the least-indented non-blank line starts at
// column n, keeping relative indentation; a merged block must use the same
// indentation as the harness's own keys in that mapping.
func reindent(lines []string, n int) []string {
	minIndent := -1
	for _, l := range lines {
		if t := strings.TrimSpace(l); t == "" || t[0] == '#' {
			continue
		}
		ind := len(l) - len(strings.TrimLeft(l, " "))
		if minIndent < 0 || ind < minIndent {
			minIndent = ind
		}
	}
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		t := strings.TrimSpace(l)
		switch {
		case t == "":
		case t[0] == '#':
			out = append(out, strings.Repeat(" ", n)+t)
		default:
			out = append(out, strings.Repeat(" ", n)+l[minIndent:])
		}
	}
	return out
}

// Addr is the client-facing MySQL address (listen.mysql).
func (p *Proxy) Addr() string { return p.mysqlAddr }

// AdminAddr is the admin SQL interface's address (listen.admin).
func (p *Proxy) AdminAddr() string { return p.adminAddr }

// HTTPAddr is the metrics/health/status address (listen.http).
func (p *Proxy) HTTPAddr() string { return p.httpAddr }

// AdminUser and AdminPassword are the admin interface's credentials.
func (p *Proxy) AdminUser() string     { return p.opt.AdminUser }
func (p *Proxy) AdminPassword() string { return p.opt.AdminPassword }

// ConfigPath is the generated config file; tests may rewrite it and send
// SIGHUP to exercise reloads.
func (p *Proxy) ConfigPath() string { return p.configPath }

// LogPath is the file receiving the proxy's stdout and stderr.
func (p *Proxy) LogPath() string { return p.logPath }

// Logs returns everything the proxy has logged so far, also after Stop.
func (p *Proxy) Logs() string {
	if b, err := os.ReadFile(p.logPath); err == nil {
		return string(b)
	}
	return p.finalLogs
}

// LogTail returns the last n lines of the proxy's log.
func (p *Proxy) LogTail(n int) string { return lastLines([]byte(p.Logs()), n) }

// PID is the proxy's process id, or 0 if it is not running.
func (p *Proxy) PID() int {
	if p.proc == nil || p.proc.exited() {
		return 0
	}
	return p.proc.cmd.Process.Pid
}

// Signal sends sig to the proxy, e.g. syscall.SIGHUP to reload.
func (p *Proxy) Signal(sig os.Signal) error {
	if p.proc == nil || p.proc.exited() {
		return errors.New("switchyard is not running")
	}
	return p.proc.cmd.Process.Signal(sig)
}

// Done is closed when the proxy process has exited.
func (p *Proxy) Done() <-chan struct{} { return p.proc.done }

// ExitErr is the process's exit status once Done is closed (nil for exit 0).
func (p *Proxy) ExitErr() error {
	select {
	case <-p.proc.done:
		return p.proc.waitErr
	default:
		return nil
	}
}

// DSN returns a go-sql-driver/mysql DSN for the proxy's MySQL port; params
// is a query string such as "interpolateParams=true", or "".
func (p *Proxy) DSN(user, pass, db, params string) string {
	return withParams(formatDSN(p.mysqlAddr, user, pass, db), params)
}

// AdminDSN returns a DSN for the admin interface as the admin user.
func (p *Proxy) AdminDSN() string {
	return formatDSN(p.adminAddr, p.opt.AdminUser, p.opt.AdminPassword, "")
}

func withParams(dsn, params string) string {
	params = strings.TrimPrefix(params, "?")
	if params == "" {
		return dsn
	}
	if strings.Contains(dsn, "?") {
		return dsn + "&" + params
	}
	return dsn + "?" + params
}

// Stop sends SIGTERM, waits up to StopTimeout for a graceful exit, then
// kills. It returns the process's exit error if the graceful shutdown
// failed, and is safe to call more than once.
func (p *Proxy) Stop() error {
	var err error
	p.stopOnce.Do(func() {
		err = p.stopProcess()
		if p.ownDir && !p.opt.KeepDir {
			if b, rerr := os.ReadFile(p.logPath); rerr == nil {
				p.finalLogs = string(b)
			}
			os.RemoveAll(p.dir)
		}
	})
	return err
}

// stopProcess sends SIGTERM and waits up to StopTimeout for a graceful
// exit, then kills.
func (p *Proxy) stopProcess() error {
	if p.proc == nil || p.proc.exited() {
		return nil
	}
	_ = p.proc.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.proc.done:
		return p.proc.waitErr
	case <-time.After(p.opt.StopTimeout):
		p.proc.kill()
		return fmt.Errorf("switchyard did not exit within %v of SIGTERM; killed", p.opt.StopTimeout)
	}
}
