package conf

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// check validates what decoding cannot: required keys, cross references,
// ranges and formats. It reads positions from d, so it runs after decode.
func (d *decoder) check(c *Config) {
	d.checkListen(c.Listen)
	d.nonEmpty("admin.user", c.Admin.User)
	if t := c.TLS; t != nil {
		switch {
		case t.CertFile == "" && t.KeyFile == "":
			d.report("tls", "needs cert_file and key_file")
		case t.KeyFile == "":
			d.report("tls", "cert_file is set but key_file is missing")
		case t.CertFile == "":
			d.report("tls", "key_file is set but cert_file is missing")
		}
		d.oneOf("tls.min_version", t.MinVersion, TLS12, TLS13)
	}
	d.checkUsers(c)
	if c.UsersFromServers && c.Monitor.User == "" {
		d.report("users_from_servers", "needs monitor.user: the servers' accounts are read with the monitor account")
	}
	d.checkServers(c.Servers)

	d.positive("monitor.interval", c.Monitor.Interval)
	d.positive("monitor.timeout", c.Monitor.Timeout)
	d.notNegative("monitor.max_replication_lag", c.Monitor.MaxReplicationLag)
	if h := c.Monitor.HeartbeatTable; h != "" && !heartbeatRE.MatchString(h) {
		d.report("monitor.heartbeat_table", "%q is not schema.table", h)
	}
	d.atLeast("failover.failure_threshold", c.Failover.FailureThreshold, 1)
	d.notNegative("failover.hold_timeout", c.Failover.HoldTimeout)
	d.oneOf("routing.reads", c.Routing.Reads, ReadsReplicas, ReadsPrimary)
	d.oneOf("routing.balance", c.Routing.Balance, BalanceLeastOutstanding, BalanceRoundRobin, BalanceWeightedRandom)
	d.oneOf("routing.read_your_writes", c.Routing.ReadYourWrites, RYWOff, RYWSession, RYWUser, RYWGlobal)
	d.notNegative("routing.gtid_wait", c.Routing.GTIDWait)
	d.atLeast("pool.max_idle_per_server", c.Pool.MaxIdlePerServer, 0)
	d.notNegative("pool.idle_timeout", c.Pool.IdleTimeout)
	d.notNegative("pool.max_lifetime", c.Pool.MaxLifetime)
	d.atLeast("limits.max_client_connections", c.Limits.MaxClientConnections, 1)
	d.notNegative("limits.client_idle_timeout", c.Limits.ClientIdleTimeout)
	if n := c.Limits.MaxPacketSize; n < 1<<10 || n > 1<<30 {
		d.report("limits.max_packet_size", "must be between 1KiB and 1GiB, got %d bytes", n)
	}
	d.notNegative("limits.shutdown_timeout", c.Limits.ShutdownTimeout)
	d.positive("limits.handshake_timeout", c.Limits.HandshakeTimeout)
	d.positive("limits.connect_timeout", c.Limits.ConnectTimeout)
	d.notNegative("limits.net_read_timeout", c.Limits.NetReadTimeout)
	if n := c.Limits.MaxParseSize; n < 1<<10 || n > 1<<30 {
		d.report("limits.max_parse_size", "must be between 1KiB and 1GiB, got %d bytes", n)
	}
	if n := c.Limits.MaxPreparedBytesPerSession; n < 1<<10 || n > 1<<40 {
		d.report("limits.max_prepared_bytes_per_session", "must be between 1KiB and 1TiB, got %d bytes", n)
	}
	for i, f := range c.Routing.ReadOnlyFunctions {
		if !functionRE.MatchString(f) {
			d.report(fmt.Sprintf("routing.read_only_functions[%d]", i), "%q is not a function name or schema.name", f)
		}
	}
	d.checkRules(c)
	d.oneOf("firewall.mode", c.Firewall.Mode, FirewallOff, FirewallLearn, FirewallEnforce)
	if c.Firewall.Mode != FirewallOff && c.Firewall.AllowlistFile == "" {
		d.report("firewall.allowlist_file", "is required when firewall.mode is %s", c.Firewall.Mode)
	}
	d.notNegative("slow_log.threshold", c.SlowLog.Threshold)
}

// A stored function's name, optionally qualified by its schema.
var functionRE = regexp.MustCompile(`^([A-Za-z0-9_$]+\.)?[A-Za-z0-9_$]+$`)

// Identifier characters only: the monitor writes the name into SQL.
var heartbeatRE = regexp.MustCompile(`^[A-Za-z0-9_$]+\.[A-Za-z0-9_$]+$`)

func (d *decoder) checkListen(l Listen) {
	first := map[string]string{}
	for _, a := range []struct{ key, addr string }{
		{"listen.mysql", l.MySQL}, {"listen.admin", l.Admin}, {"listen.http", l.HTTP},
	} {
		if a.addr == "" {
			if a.key == "listen.mysql" {
				d.report(a.key, "must not be empty")
			}
			continue // admin and http are disabled
		}
		if msg := badAddr(a.addr, true); msg != "" {
			d.report(a.key, "%s", msg)
		} else if other, dup := first[a.addr]; dup {
			d.report(a.key, "same address as %s", other)
		} else {
			first[a.addr] = a.key
		}
	}
}

var hashRE = regexp.MustCompile(`^\*[0-9A-Fa-f]{40}$`)

func (d *decoder) checkUsers(c *Config) {
	names := map[string]string{}
	for i, u := range c.Users {
		p := fmt.Sprintf("users[%d]", i)
		d.name(p, u.Name, "user", names)
		hasPW, hasHash := d.has(p+".password"), d.has(p+".password_hash")
		switch {
		case !hasPW && !hasHash:
			d.report(p, `needs "password" or "password_hash"`)
		case hasPW && hasHash:
			d.report(p, `has both "password" and "password_hash"; keep one`)
		case hasHash && !hashRE.MatchString(u.PasswordHash):
			d.report(p+".password_hash", "must be '*' followed by 40 hex digits (a mysql_native_password hash)")
		case hasHash && u.AuthPlugin == AuthCachingSHA2:
			d.report(p+".password_hash", "cannot be used with auth_plugin %s, which needs the password itself", AuthCachingSHA2)
		}
		d.atLeast(p+".max_connections", u.MaxConnections, 0)
		if u.Reads != "" {
			d.oneOf(p+".reads", u.Reads, ReadsReplicas, ReadsPrimary)
		}
		if u.RequireTLS && c.TLS == nil {
			d.report(p+".require_tls", "is true but tls is not configured")
		}
		d.oneOf(p+".auth_plugin", u.AuthPlugin, AuthNative, AuthCachingSHA2)
	}
}

func (d *decoder) checkServers(servers []Server) {
	if len(servers) == 0 {
		d.report("servers", "at least one server is required")
	}
	names, addrs := map[string]string{}, map[string]string{}
	for i, s := range servers {
		p := fmt.Sprintf("servers[%d]", i)
		d.name(p, s.Name, "server", names)
		if d.required(p, "address") && d.nonEmpty(p+".address", s.Address) {
			if msg := badAddr(s.Address, false); msg != "" {
				d.report(p+".address", "%s", msg)
			} else {
				d.unique(p+".address", normAddr(s.Address), "server address", addrs)
			}
		}
		d.atLeast(p+".weight", s.Weight, 0)
		d.atLeast(p+".max_connections", s.MaxConnections, 1)
		if d.has(p+".max_replication_lag") && s.MaxReplicationLag <= 0 {
			d.report(p+".max_replication_lag", "must be positive, got %s (leave it out to use monitor.max_replication_lag)", s.MaxReplicationLag)
		}
	}
}

func (d *decoder) checkRules(c *Config) {
	names := map[string]string{}
	for i, r := range c.QueryRules {
		p := fmt.Sprintf("query_rules[%d]", i)
		d.name(p, r.Name, "query rule", names)
		d.exactlyOne(p, "match", "digest")
		if d.has(p + ".match") {
			if _, err := regexp.Compile(r.Match); err != nil {
				d.report(p+".match", "invalid regexp: %s", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
			}
		}
		if d.exactlyOne(p, "route", "error") {
			if d.has(p + ".route") {
				d.oneOf(p+".route", r.Route, RoutePrimary, RouteReplica)
			} else {
				d.nonEmpty(p+".error", r.Error)
			}
		}
		// A rule for a user nobody can log in as would silently never match.
		if _, ok := c.UserByName(r.User); r.User != "" && !ok && !d.broken("users") {
			d.report(p+".user", "no user named %q", r.User)
		}
	}
}

// badAddr explains what is wrong with a host:port address, or returns "".
// Listen addresses may leave the host out to mean every interface.
func badAddr(addr string, listen bool) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("%q is not host:port", addr)
	}
	if host == "" && !listen {
		return fmt.Sprintf("%q has no host", addr)
	}
	if strings.ContainsAny(host, " \t/") {
		return fmt.Sprintf("%q has an invalid host", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Sprintf("%q: port must be a number from 1 to 65535", addr)
	}
	return ""
}

// normAddr makes "DB1:03306" and "db1:3306" compare equal. Names are not
// resolved: two spellings of one host are the operator's business.
func normAddr(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	return net.JoinHostPort(strings.ToLower(host), strconv.Itoa(n))
}

// report adds a problem found after decoding, unless decoding already
// complained about the key or one of its parents.
func (d *decoder) report(path, format string, args ...any) {
	if !d.broken(path) {
		d.add(d.line(path), path, format, args...)
	}
}

func (d *decoder) has(path string) bool {
	_, ok := d.lines[path]
	return ok
}

// line is where path was written, or else where its nearest written parent
// was: a missing key is reported at the item that lacks it.
func (d *decoder) line(path string) int {
	for {
		if l, ok := d.lines[path]; ok {
			return l
		}
		if path == "" {
			return 1
		}
		path = parent(path)
	}
}

func (d *decoder) broken(path string) bool {
	for {
		if d.failed[path] {
			return true
		}
		if path == "" {
			return false
		}
		path = parent(path)
	}
}

func parent(path string) string {
	return path[:max(strings.LastIndexAny(path, ".["), 0)]
}

func (d *decoder) required(item, key string) bool {
	if d.has(item + "." + key) {
		return true
	}
	d.report(item, "missing required key %q", key)
	return false
}

func (d *decoder) nonEmpty(path, value string) bool {
	if value == "" {
		d.report(path, "must not be empty")
	}
	return value != ""
}

// name checks an item's required, unique name.
func (d *decoder) name(item, value, what string, seen map[string]string) {
	if d.required(item, "name") && d.nonEmpty(item+".name", value) {
		d.unique(item+".name", value, what+" name", seen)
	}
}

func (d *decoder) unique(path, value, what string, seen map[string]string) {
	if first, dup := seen[value]; dup {
		d.report(path, "duplicate %s %q (first at line %d)", what, value, d.line(first))
	} else {
		seen[value] = path
	}
}

// exactlyOne reports unless item has exactly one of keys a and b.
func (d *decoder) exactlyOne(item, a, b string) bool {
	switch hasA, hasB := d.has(item+"."+a), d.has(item+"."+b); {
	case !hasA && !hasB:
		d.report(item, "needs %q or %q", a, b)
	case hasA && hasB:
		d.report(item, "has both %q and %q; keep one", a, b)
	default:
		return true
	}
	return false
}

func (d *decoder) oneOf(path, value string, allowed ...string) {
	for _, a := range allowed {
		if value == a {
			return
		}
	}
	d.report(path, "%q is not one of %s", value, strings.Join(allowed, ", "))
}

func (d *decoder) atLeast(path string, n, least int) {
	if n < least {
		d.report(path, "must be at least %d, got %d", least, n)
	}
}

func (d *decoder) positive(path string, x time.Duration) {
	if x <= 0 {
		d.report(path, "must be positive, got %s", x)
	}
}

func (d *decoder) notNegative(path string, x time.Duration) {
	if x < 0 {
		d.report(path, "must not be negative, got %s", x)
	}
}
