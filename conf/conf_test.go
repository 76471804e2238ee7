package conf

import (
	"errors"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// specExample is the config example from SPEC.md, verbatim.
const specExample = `
listen:
  mysql: 127.0.0.1:6033          # client-facing MySQL protocol
  admin: 127.0.0.1:6032          # admin SQL interface (MySQL protocol)
  http: 127.0.0.1:6070           # /metrics, /health, /status
  proxy_protocol_networks: []    # e.g. [10.0.0.0/8]: accept HAProxy PROXY protocol v1/v2 headers from these peers, and see the real client address
admin:
  user: admin
  password: ${SWITCHYARD_ADMIN_PASSWORD}
tls:                              # client-facing TLS; optional
  cert_file: server.pem
  key_file: server-key.pem
  require: false                  # true: refuse clients that do not upgrade to TLS
backend_tls:                      # proxy-to-server TLS; optional
  ca_file: ca.pem
  verify: true
users_from_servers: false         # true: also accept the servers' own accounts (mysql_native_password), loaded with the monitor account and refreshed
users:                            # clients authenticate against this list; the same credentials are used towards the servers
  - name: app
    password: secret              # or password_hash: "*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9" (mysql_native_password hash)
    default_schema: shop
    max_connections: 500
    reads: replicas               # per-user override of routing.reads
    require_tls: false
servers:                          # roles are discovered by the monitor, never configured
  - name: db1
    address: 127.0.0.1:3306
    weight: 100
    max_connections: 300
    max_replication_lag: 5s       # optional per-server override of monitor.max_replication_lag
    promotable: true              # false: never promoted by failover
  - name: db2
    address: 127.0.0.1:3307
monitor:
  user: monitor
  password: monitor
  interval: 1s
  timeout: 1s
  max_replication_lag: 10s        # replicas lagging more serve no reads
  heartbeat_table: ""             # e.g. switchyard.heartbeat: sub-second lag from a heartbeat row the proxy writes on the primary
failover:
  auto: true
  failure_threshold: 3            # consecutive failed checks of the primary before failover
  replication_user: repl
  replication_password: repl
  cooperative: true               # several switchyard instances agree through server-side locks; only one promotes
  hold_timeout: 5s                # statements that need the primary wait this long for a promotion before failing
routing:
  reads: replicas                 # replicas | primary
  balance: least_outstanding      # least_outstanding | round_robin | weighted_random
  fallback_to_primary: true       # no eligible replica: read from the primary (false: error)
  read_your_writes: session       # off | session | user | global: whose writes a read must see (see Routing)
  gtid_wait: 50ms                 # how long a read may wait on a replica for a GTID (MASTER_GTID_WAIT) before it goes to the primary
  read_only_functions: []         # stored functions known not to write: reads that call them may go to replicas
pool:
  multiplexing: true
  max_idle_per_server: 64
  idle_timeout: 5m
  max_lifetime: 1h
limits:
  max_client_connections: 10000
  client_idle_timeout: 8h
  max_packet_size: 64MiB
  shutdown_timeout: 30s
  net_read_timeout: 30s           # a client that started a packet and stalls this long is disconnected
  max_parse_size: 256KiB          # longer statements are classified by a token scan, never fully parsed
query_rules:                      # first match wins, in file order
  - name: reports-to-replicas
    match: '(?i)^\s*select .* from reports'   # RE2 on the query text; or digest: exact normalized text
    user: app                     # optional filters: user, schema
    route: replica                # primary | replica
  - name: no-drop
    match: '(?i)^\s*drop\s+(table|database)'
    error: "DROP is not allowed through the proxy"   # answer with this error, send nothing to a server
`

func env(vars ...string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		for i := 0; i+1 < len(vars); i += 2 {
			if vars[i] == name {
				return vars[i+1], true
			}
		}
		return "", false
	}
}

// specConfig is what specExample must parse to.
func specConfig() *Config {
	c := Default()
	c.Admin.Password = "s3cret"
	c.Listen.ProxyProtocolNetworks = []netip.Prefix{}
	c.Routing.ReadOnlyFunctions = []string{}
	c.TLS = &TLS{CertFile: "server.pem", KeyFile: "server-key.pem", MinVersion: TLS12}
	c.BackendTLS = &BackendTLS{CAFile: "ca.pem", Verify: true}
	c.Users = []User{{Name: "app", Password: "secret", DefaultSchema: "shop", MaxConnections: 500,
		Reads: "replicas", AuthPlugin: AuthNative}}
	c.Servers = []Server{
		{Name: "db1", Address: "127.0.0.1:3306", Weight: 100, MaxConnections: 300,
			MaxReplicationLag: 5 * time.Second, Promotable: true},
		{Name: "db2", Address: "127.0.0.1:3307", Weight: 100, MaxConnections: 1000, Promotable: true},
	}
	c.Monitor.User, c.Monitor.Password = "monitor", "monitor"
	c.Failover.ReplicationUser, c.Failover.ReplicationPassword = "repl", "repl"
	c.QueryRules = []QueryRule{
		{Name: "reports-to-replicas", Match: `(?i)^\s*select .* from reports`, User: "app", Route: "replica"},
		{Name: "no-drop", Match: `(?i)^\s*drop\s+(table|database)`, Error: "DROP is not allowed through the proxy"},
	}
	return c
}

func TestSpecExample(t *testing.T) {
	c, err := Parse("switchyard.yaml", []byte(specExample), env("SWITCHYARD_ADMIN_PASSWORD", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	if want := specConfig(); !reflect.DeepEqual(withoutPositions(c), want) {
		t.Errorf("got\n%+v\nwant\n%+v", c, want)
	}
}

// The shipped example must stay valid and say what the SPEC example says.
func TestExampleFile(t *testing.T) {
	t.Setenv("SWITCHYARD_ADMIN_PASSWORD", "s3cret")
	c, err := Load("../switchyard.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if want := specConfig(); !reflect.DeepEqual(withoutPositions(c), want) {
		t.Errorf("got\n%+v\nwant\n%+v", c, want)
	}
}

const oneServer = "servers: [{name: db1, address: 127.0.0.1:3306}]\n"

func TestDefaults(t *testing.T) {
	c, err := Parse("t.yaml", []byte(oneServer+"users: [{name: u, password: p}]\nbackend_tls: {}\n"), env())
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Servers = []Server{{Name: "db1", Address: "127.0.0.1:3306", Weight: 100, MaxConnections: 1000, Promotable: true}}
	want.Users = []User{{Name: "u", Password: "p", AuthPlugin: AuthNative}}
	want.BackendTLS = &BackendTLS{Verify: true}
	if !reflect.DeepEqual(withoutPositions(c), want) {
		t.Errorf("got\n%+v\nwant\n%+v", c, want)
	}
	if c.Limits.MaxPacketSize != 64<<20 || c.Limits.HandshakeTimeout != 10*time.Second ||
		c.Limits.ConnectTimeout != 5*time.Second || c.Pool.IdleTimeout != 5*time.Minute ||
		c.Limits.MaxPreparedBytesPerSession != 64<<20 {
		t.Errorf("wrong defaults: %+v", c.Limits)
	}
	if u, ok := c.UserByName("u"); !ok || u != &c.Users[0] {
		t.Errorf("UserByName(u) = %v, %v", u, ok)
	}
	if _, ok := c.UserByName("nobody"); ok {
		t.Error("UserByName(nobody) found someone")
	}
}

// Values that are valid but not the defaults, including the ways of writing
// them that must be accepted.
func TestFirewallAndSlowLog(t *testing.T) {
	c, err := Parse("t.yaml", []byte(oneServer+"firewall:\n  mode: off\nslow_log: {threshold: 250ms}\n"), env())
	if err != nil {
		t.Fatal(err)
	}
	if c.Firewall.Mode != FirewallOff || c.SlowLog.Threshold != 250*time.Millisecond {
		t.Errorf("firewall %+v, slow log %+v", c.Firewall, c.SlowLog)
	}
	c, err = Parse("t.yaml", []byte(oneServer+"firewall: {mode: enforce, allowlist_file: /etc/switchyard/allow.yaml}\n"), env())
	if err != nil {
		t.Fatal(err)
	}
	if c.Firewall != (Firewall{Mode: FirewallEnforce, AllowlistFile: "/etc/switchyard/allow.yaml"}) {
		t.Errorf("firewall %+v", c.Firewall)
	}
}

func TestValues(t *testing.T) {
	src := `
listen:
  admin: ""
  http:
  mysql: ${HOST}:${PORT}
  proxy_protocol_networks: [10.1.2.3/8, 192.168.1.10, "::1"]
failover: {auto: false, cooperative: FALSE, failure_threshold: "${N}", hold_timeout: 1500ms}
routing: {fallback_to_primary: false, reads: primary, read_your_writes: global, gtid_wait: 0s}
pool: {multiplexing: false, max_lifetime: 0}
backend_tls: {verify: false}
limits: {max_packet_size: 1048576}
users:
  - {name: a, password: "", reads: primary, auth_plugin: caching_sha2_password}
  - {name: b, password_hash: "*6bb4837eb74329105ee4568dda7dc67ed2ca2ad9", max_connections: 0}
servers:
  - &base {name: db1, address: "db.example:3306", weight: 0, promotable: false}
  - <<: *base
    name: db2
    address: "[::1]:3307"
query_rules:
  - {name: r, digest: "SELECT ?", schema: shop, route: primary}
`
	c, err := Parse("t.yaml", []byte(src), env("HOST", "0.0.0.0", "PORT", "3306", "N", "5"))
	if err != nil {
		t.Fatal(err)
	}
	l := c.Listen
	if l.MySQL != "0.0.0.0:3306" || l.Admin != "" || l.HTTP != "" {
		t.Errorf("listen = %+v", l)
	}
	wantNets := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("192.168.1.10/32"), netip.MustParsePrefix("::1/128")}
	if !reflect.DeepEqual(l.ProxyProtocolNetworks, wantNets) {
		t.Errorf("networks = %v", l.ProxyProtocolNetworks)
	}
	if f := c.Failover; f.Auto || f.Cooperative || f.FailureThreshold != 5 || f.HoldTimeout != 1500*time.Millisecond {
		t.Errorf("failover = %+v", f)
	}
	if r := c.Routing; r.FallbackToPrimary || r.Reads != "primary" || r.Balance != BalanceLeastOutstanding ||
		r.ReadYourWrites != RYWGlobal || r.GTIDWait != 0 {
		t.Errorf("routing = %+v", r)
	}
	if p := c.Pool; p.Multiplexing || p.MaxLifetime != 0 || p.IdleTimeout != 5*time.Minute {
		t.Errorf("pool = %+v", p)
	}
	if c.BackendTLS.Verify || c.Limits.MaxPacketSize != 1<<20 {
		t.Errorf("backend_tls = %+v, limits = %+v", c.BackendTLS, c.Limits)
	}
	wantServers := []Server{
		{Name: "db1", Address: "db.example:3306", Weight: 0, MaxConnections: 1000, Promotable: false},
		{Name: "db2", Address: "[::1]:3307", Weight: 0, MaxConnections: 1000, Promotable: false},
	}
	if !reflect.DeepEqual(c.Servers, wantServers) {
		t.Errorf("servers = %+v", c.Servers)
	}
	if u := c.Users; u[0].Password != "" || u[0].AuthPlugin != AuthCachingSHA2 || u[1].Password != "" {
		t.Errorf("users = %+v", u)
	}
}

func TestSizes(t *testing.T) {
	for in, want := range map[string]int64{
		"65536": 65536, "2048B": 2048, "512KiB": 512 << 10, "64MiB": 64 << 20, "1GiB": 1 << 30,
		"64 mib": 64 << 20, "2KB": 2000, "64MB": 64e6, "1GB": 1e9,
	} {
		src := oneServer + "limits: {max_packet_size: " + in + "}\n"
		c, err := Parse("t.yaml", []byte(src), env())
		if err != nil {
			t.Errorf("%s: %v", in, err)
		} else if c.Limits.MaxPacketSize != want {
			t.Errorf("%s: got %d, want %d", in, c.Limits.MaxPacketSize, want)
		}
	}
}

func TestProblems(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string // every problem, in order
	}{
		{"yaml syntax", "listen:\n  mysql: [\n", []string{
			`t.yaml:2: invalid YAML: did not find expected node content`}},
		{"yaml tab", "listen:\n\tmysql: x\n", []string{
			`t.yaml:2: invalid YAML: found character that cannot start any token`}},
		{"unknown anchor", oneServer + "admin:\n  user: *nope\n", []string{
			`t.yaml:3: invalid YAML: unknown anchor "nope" referenced`}},
		{"two documents", oneServer + "---\n" + oneServer, []string{
			`t.yaml:2: only one YAML document is allowed`}},
		{"empty file", "", []string{`t.yaml:1: servers: at least one server is required`}},
		{"not a mapping", "- a\n", []string{`t.yaml:1: expected a mapping, got a list`}},

		{"firewall without a file", oneServer + "firewall:\n  mode: learn\n", []string{
			`t.yaml:2: firewall.allowlist_file: is required when firewall.mode is learn`}},
		{"tls min version", oneServer + "tls: {cert_file: a.pem, key_file: b.pem, min_version: \"1.1\"}\n", []string{
			`t.yaml:2: tls.min_version: "1.1" is not one of 1.2, 1.3`}},
		{"firewall mode", oneServer + "firewall: {mode: block, allowlist_file: a.yaml}\nslow_log: {threshold: -1s}\n", []string{
			`t.yaml:2: firewall.mode: "block" is not one of off, learn, enforce`,
			`t.yaml:3: slow_log.threshold: must not be negative, got -1s`}},
		{"unknown key close", "sever:\n  - name: db1\n", []string{
			`t.yaml:1: sever: unknown key (did you mean "servers"?)`,
			`t.yaml:1: servers: at least one server is required`}},
		{"unknown nested key", oneServer + "servers[0]: x\nlimits:\n  max_packet_sise: 5\n  colour: red\n", []string{
			`t.yaml:2: "servers[0]": unknown key`,
			`t.yaml:4: limits.max_packet_sise: unknown key (did you mean "max_packet_size"?)`,
			`t.yaml:5: limits.colour: unknown key`}},
		{"unknown item key", "servers:\n  - name: db1\n    adress: 127.0.0.1:3306\n    Weight: 5\n", []string{
			`t.yaml:2: servers[0]: missing required key "address"`,
			`t.yaml:3: servers[0].adress: unknown key (did you mean "address"?)`,
			`t.yaml:4: servers[0].Weight: unknown key (did you mean "weight"?)`}},
		{"duplicate key", oneServer + "limits:\n  max_packet_size: 1MiB\n  max_packet_size: 2MiB\n", []string{
			`t.yaml:4: limits.max_packet_size: duplicate key (first at line 3)`}},

		{"mapping for string", oneServer + "admin:\n  user: {name: x}\n", []string{
			`t.yaml:3: admin.user: expected a string, got a mapping`}},
		{"list for mapping", "servers:\n  name: db1\n", []string{
			`t.yaml:2: servers: expected a list, got a mapping`}},
		{"scalar for mapping", oneServer + "limits: 5\n", []string{
			`t.yaml:2: limits: expected a mapping, got "5"`}},
		{"bad integer", oneServer + "pool:\n  max_idle_per_server: abc\nlimits: {max_client_connections: 1.5}\n", []string{
			`t.yaml:3: pool.max_idle_per_server: "abc" is not an integer`,
			`t.yaml:4: limits.max_client_connections: "1.5" is not an integer`}},
		{"long value", oneServer + "limits: {max_client_connections: " + strings.Repeat("x", 100) + "}\n", []string{
			`t.yaml:2: limits.max_client_connections: "` + strings.Repeat("x", 77) + `..." is not an integer`}},
		{"huge integer", oneServer + "failover: {failure_threshold: 99999999999999999999}\n", []string{
			`t.yaml:2: failover.failure_threshold: "99999999999999999999" is out of range`}},
		{"bad bool", oneServer + "failover:\n  auto: yes\n  cooperative: [true]\n", []string{
			`t.yaml:3: failover.auto: "yes" is not a boolean (true or false)`,
			`t.yaml:4: failover.cooperative: expected a boolean, got a list`}},
		{"missing value", oneServer + "monitor:\n  interval:\nfailover: {auto: }\n", []string{
			`t.yaml:3: monitor.interval: missing value`,
			`t.yaml:4: failover.auto: missing value`}},
		{"bad network", oneServer + "listen:\n  proxy_protocol_networks: [10.0.0.0/33, 1.2.3.4, x]\n", []string{
			`t.yaml:3: listen.proxy_protocol_networks[0]: "10.0.0.0/33" is not an IP network (e.g. 10.0.0.0/8) or address`,
			`t.yaml:3: listen.proxy_protocol_networks[2]: "x" is not an IP network (e.g. 10.0.0.0/8) or address`}},

		{"no servers", "servers: []\n", []string{`t.yaml:1: servers: at least one server is required`}},
		{"server without name and address", "servers:\n  - weight: 5\n  - {}\n", []string{
			`t.yaml:2: servers[0]: missing required key "name"`,
			`t.yaml:2: servers[0]: missing required key "address"`,
			`t.yaml:3: servers[1]: missing required key "name"`,
			`t.yaml:3: servers[1]: missing required key "address"`}},
		{"empty name", "servers:\n  - name: \"\"\n    address: a:1\n", []string{
			`t.yaml:2: servers[0].name: must not be empty`}},
		{"user requirements", oneServer + `users:
  - password: x
  - name: b
  - name: c
    password: x
    password_hash: "*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9"
`, []string{
			`t.yaml:3: users[0]: missing required key "name"`,
			`t.yaml:4: users[1]: needs "password" or "password_hash"`,
			`t.yaml:5: users[2]: has both "password" and "password_hash"; keep one`}},
		{"rule requirements", oneServer + `query_rules:
  - route: primary
    match: x
  - name: b
    error: no
  - name: c
    match: x
    digest: y
    route: primary
    error: no
  - name: d
    digest: y
    error: ""
`, []string{
			`t.yaml:3: query_rules[0]: missing required key "name"`,
			`t.yaml:5: query_rules[1]: needs "match" or "digest"`,
			`t.yaml:7: query_rules[2]: has both "match" and "digest"; keep one`,
			`t.yaml:7: query_rules[2]: has both "route" and "error"; keep one`,
			`t.yaml:14: query_rules[3].error: must not be empty`}},

		{"duplicate names", `servers:
  - {name: db1, address: "a:1"}
  - {name: db1, address: "A:0001"}
users:
  - {name: u, password: p}
  - {name: u, password: p}
query_rules:
  - {name: r, digest: x, route: primary}
  - {name: r, digest: y, route: primary}
`, []string{
			`t.yaml:3: servers[1].name: duplicate server name "db1" (first at line 2)`,
			`t.yaml:3: servers[1].address: duplicate server address "a:1" (first at line 2)`,
			`t.yaml:6: users[1].name: duplicate user name "u" (first at line 5)`,
			`t.yaml:9: query_rules[1].name: duplicate query rule name "r" (first at line 8)`}},

		{"bad addresses", `servers:
  - name: db1
    address: 127.0.0.1
  - {name: db2, address: "db2:0"}
  - {name: db3, address: "db3:65536"}
  - {name: db4, address: "db4:mysql"}
  - {name: db5, address: ":3306"}
  - {name: db6, address: ""}
listen:
  mysql: localhost
  admin: ":6033"
  http: ":6033"
`, []string{
			`t.yaml:3: servers[0].address: "127.0.0.1" is not host:port`,
			`t.yaml:4: servers[1].address: "db2:0": port must be a number from 1 to 65535`,
			`t.yaml:5: servers[2].address: "db3:65536": port must be a number from 1 to 65535`,
			`t.yaml:6: servers[3].address: "db4:mysql": port must be a number from 1 to 65535`,
			`t.yaml:7: servers[4].address: ":3306" has no host`,
			`t.yaml:8: servers[5].address: must not be empty`,
			`t.yaml:10: listen.mysql: "localhost" is not host:port`,
			`t.yaml:12: listen.http: same address as listen.admin`}},
		{"empty mysql listener", oneServer + "listen: {mysql: \"\"}\n", []string{
			`t.yaml:2: listen.mysql: must not be empty`}},

		{"bad durations", oneServer + `monitor:
  interval: 5
  timeout: 0s
  max_replication_lag: -1s
pool: {idle_timeout: soon}
limits: {handshake_timeout: "1x"}
`, []string{
			`t.yaml:3: monitor.interval: "5" is not a duration (e.g. 500ms, 2s, 5m)`,
			`t.yaml:4: monitor.timeout: must be positive, got 0s`,
			`t.yaml:5: monitor.max_replication_lag: must not be negative, got -1s`,
			`t.yaml:6: pool.idle_timeout: "soon" is not a duration (e.g. 500ms, 2s, 5m)`,
			`t.yaml:7: limits.handshake_timeout: "1x" is not a duration (e.g. 500ms, 2s, 5m)`}},
		{"server lag override", "servers:\n  - {name: db1, address: \"a:1\", max_replication_lag: 0s}\n", []string{
			`t.yaml:2: servers[0].max_replication_lag: must be positive, got 0s (leave it out to use monitor.max_replication_lag)`}},
		{"bad sizes", oneServer + "limits:\n  max_packet_size: 64XB\n", []string{
			`t.yaml:3: limits.max_packet_size: "64XB" is not a size (e.g. 65536, 512KiB, 64MiB)`}},
		{"size out of range", oneServer + "limits:\n  max_packet_size: 2GiB\n", []string{
			`t.yaml:3: limits.max_packet_size: must be between 1KiB and 1GiB, got 2147483648 bytes`}},
		{"parse size out of range", oneServer + "limits:\n  max_parse_size: 100\n  net_read_timeout: -1s\n", []string{
			`t.yaml:3: limits.max_parse_size: must be between 1KiB and 1GiB, got 100 bytes`,
			`t.yaml:4: limits.net_read_timeout: must not be negative, got -1s`}},
		{"prepared bytes out of range", oneServer + "limits:\n  max_prepared_bytes_per_session: 512\n", []string{
			`t.yaml:3: limits.max_prepared_bytes_per_session: must be between 1KiB and 1TiB, got 512 bytes`}},
		{"read-only functions", oneServer + "routing:\n  read_only_functions: [shop.f_price, price, \"a b\", x.y.z]\n", []string{
			`t.yaml:3: routing.read_only_functions[2]: "a b" is not a function name or schema.name`,
			`t.yaml:3: routing.read_only_functions[3]: "x.y.z" is not a function name or schema.name`}},
		{"size overflow", oneServer + "limits:\n  max_packet_size: 99999999999GiB\n", []string{
			`t.yaml:3: limits.max_packet_size: "99999999999GiB" is not a size (e.g. 65536, 512KiB, 64MiB)`}},

		{"enums", oneServer + `routing:
  reads: replica
  balance: random
  read_your_writes: on
users:
  - {name: u, password: p, reads: all, auth_plugin: sha256_password}
query_rules:
  - {name: r, match: x, route: secondary}
`, []string{
			`t.yaml:3: routing.reads: "replica" is not one of replicas, primary`,
			`t.yaml:4: routing.balance: "random" is not one of least_outstanding, round_robin, weighted_random`,
			`t.yaml:5: routing.read_your_writes: "on" is not one of off, session, user, global`,
			`t.yaml:7: users[0].reads: "all" is not one of replicas, primary`,
			`t.yaml:7: users[0].auth_plugin: "sha256_password" is not one of mysql_native_password, caching_sha2_password`,
			`t.yaml:9: query_rules[0].route: "secondary" is not one of primary, replica`}},

		{"password hash", oneServer + `users:
  - name: a
    password_hash: 6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9
  - name: b
    password_hash: "*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD"
  - name: c
    password_hash: "*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9"
    auth_plugin: caching_sha2_password
`, []string{
			`t.yaml:4: users[0].password_hash: must be '*' followed by 40 hex digits (a mysql_native_password hash)`,
			`t.yaml:6: users[1].password_hash: must be '*' followed by 40 hex digits (a mysql_native_password hash)`,
			`t.yaml:8: users[2].password_hash: cannot be used with auth_plugin caching_sha2_password, which needs the password itself`}},
		{"bad regexp", oneServer + "query_rules:\n  - name: r\n    match: '(?i)^select (a'\n    route: replica\n", []string{
			"t.yaml:4: query_rules[0].match: invalid regexp: missing closing ): `(?i)^select (a`"}},
		{"rule for unknown user", oneServer + "users: [{name: app, password: p}]\nquery_rules:\n  - {name: r, match: x, user: apx, route: replica}\n", []string{
			`t.yaml:4: query_rules[0].user: no user named "apx"`}},

		{"negative numbers", oneServer + `users: [{name: u, password: p, max_connections: -1}]
failover: {failure_threshold: 0, hold_timeout: -1s}
pool: {max_idle_per_server: -1}
limits: {max_client_connections: -5, client_idle_timeout: -1s, shutdown_timeout: -2s}
routing: {gtid_wait: -50ms}
`, []string{
			`t.yaml:2: users[0].max_connections: must be at least 0, got -1`,
			`t.yaml:3: failover.failure_threshold: must be at least 1, got 0`,
			`t.yaml:3: failover.hold_timeout: must not be negative, got -1s`,
			`t.yaml:4: pool.max_idle_per_server: must be at least 0, got -1`,
			`t.yaml:5: limits.max_client_connections: must be at least 1, got -5`,
			`t.yaml:5: limits.client_idle_timeout: must not be negative, got -1s`,
			`t.yaml:5: limits.shutdown_timeout: must not be negative, got -2s`,
			`t.yaml:6: routing.gtid_wait: must not be negative, got -50ms`}},
		{"duplicate section", oneServer + "limits: {}\n" + oneServer, []string{
			`t.yaml:3: servers: duplicate key (first at line 1)`}},
		{"negative server numbers", "servers:\n  - {name: db1, address: \"a:1\", weight: -1, max_connections: 0}\n", []string{
			`t.yaml:2: servers[0].weight: must be at least 0, got -1`,
			`t.yaml:2: servers[0].max_connections: must be at least 1, got 0`}},

		{"tls key missing", oneServer + "tls:\n  cert_file: a.pem\n", []string{
			`t.yaml:2: tls: cert_file is set but key_file is missing`}},
		{"tls cert missing", oneServer + "tls:\n  key_file: a.pem\n  require: true\n", []string{
			`t.yaml:2: tls: key_file is set but cert_file is missing`}},
		{"tls empty", oneServer + "tls: {}\n", []string{
			`t.yaml:2: tls: needs cert_file and key_file`}},
		{"require_tls without tls", oneServer + "users:\n  - {name: u, password: p, require_tls: true}\n", []string{
			`t.yaml:3: users[0].require_tls: is true but tls is not configured`}},

		{"env unset", oneServer + "admin:\n  password: ${PW}\n  user: ${A}-${B}-${C}\n", []string{
			`t.yaml:3: admin.password: environment variable PW is not set`,
			`t.yaml:4: admin.user: environment variable A is not set`,
			`t.yaml:4: admin.user: environment variable C is not set`}},
		{"env malformed", oneServer + "admin:\n  password: ${PW\n  user: ${1X}\n", []string{
			`t.yaml:3: admin.password: unterminated ${ in "${PW"`,
			`t.yaml:4: admin.user: ${1X}: not a valid environment variable name`}},
		{"env value converted", oneServer + "limits:\n  max_client_connections: ${B}\n", []string{
			`t.yaml:3: limits.max_client_connections: "b" is not an integer`}},

		{"merge errors", "x: &x {a: 1}\nservers:\n  - <<: [*x, 5]\n    name: db1\n    address: a:1\n", []string{
			`t.yaml:1: x: unknown key`,
			`t.yaml:1: servers[0].a: unknown key`,
			`t.yaml:3: servers[0].<<: a merge needs a mapping or a list of mappings, got "5"`}},
		{"odd keys", oneServer + "admin:\n  ? [a]\n  : b\n  \"we\\nird\": c\n", []string{
			`t.yaml:3: admin: a key must be a string, not a list`,
			`t.yaml:5: admin."we\nird": unknown key`}},
		{"heartbeat table", oneServer + "monitor: {heartbeat_table: \"hb; drop table x\"}\n", []string{
			`t.yaml:2: monitor.heartbeat_table: "hb; drop table x" is not schema.table`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("t.yaml", []byte(tc.src), env("B", "b"))
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("got %v, %v; want Errors", c, err)
			}
			if c != nil {
				t.Error("config returned with errors")
			}
			got := strings.Split(err.Error(), "\n")
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// One file with a problem in nearly every section gets all of them reported,
// sorted by line, with no follow-on complaints about keys already reported.
func TestAllProblemsReported(t *testing.T) {
	src := `listen:
  mysql: 127.0.0.1
  htp: x
admin:
  password: ${NOPE}
users:
  - name: app
servers:
  - name: db1
    address: 127.0.0.1:3306
    weight: heavy
  - name: db1
    address: 127.0.0.1:3306
monitor:
  interval: 1
routing:
  reads: everywhere
limits:
  max_packet_size: lots
query_rules:
  - name: r
    match: '('
    route: replica
`
	_, err := Parse("switchyard.yaml", []byte(src), env())
	want := []string{
		`switchyard.yaml:2: listen.mysql: "127.0.0.1" is not host:port`,
		`switchyard.yaml:3: listen.htp: unknown key (did you mean "http"?)`,
		`switchyard.yaml:5: admin.password: environment variable NOPE is not set`,
		`switchyard.yaml:7: users[0]: needs "password" or "password_hash"`,
		`switchyard.yaml:11: servers[0].weight: "heavy" is not an integer`,
		`switchyard.yaml:12: servers[1].name: duplicate server name "db1" (first at line 9)`,
		`switchyard.yaml:13: servers[1].address: duplicate server address "127.0.0.1:3306" (first at line 10)`,
		`switchyard.yaml:15: monitor.interval: "1" is not a duration (e.g. 500ms, 2s, 5m)`,
		`switchyard.yaml:17: routing.reads: "everywhere" is not one of replicas, primary`,
		`switchyard.yaml:19: limits.max_packet_size: "lots" is not a size (e.g. 65536, 512KiB, 64MiB)`,
		"switchyard.yaml:22: query_rules[0].match: invalid regexp: missing closing ): `(`",
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("got %v, want Errors", err)
	}
	var got []string
	for _, p := range errs {
		got = append(got, p.String())
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if p := errs[0]; p.File != "switchyard.yaml" || p.Line != 2 || p.Key != "listen.mysql" {
		t.Errorf("first problem = %#v", p)
	}
}

func TestTooManyProblems(t *testing.T) {
	var b strings.Builder
	for i := range 1000 {
		b.WriteString("k" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + ": 1\n")
	}
	_, err := Parse("t.yaml", []byte(b.String()), env())
	errs := err.(Errors)
	if len(errs) != maxProblems+1 || !strings.Contains(errs[len(errs)-1].Msg, "too many problems") {
		t.Errorf("got %d problems, last %v", len(errs), errs[len(errs)-1])
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.yaml")
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v", err)
	}
}

func FuzzParse(f *testing.F) {
	// Small seeds on purpose: the fuzzer minimizes every interesting input,
	// and minimizing something the size of the example config takes most of
	// a short run.
	f.Add([]byte(oneServer))
	f.Add([]byte("listen: {mysql: ':1', admin: '', http: ~, proxy_protocol_networks: [::1/64]}\n" +
		"tls: {cert_file: c, key_file: k}\nbackend_tls: {verify: false}\n"))
	f.Add([]byte("users:\n  - {name: u, password_hash: '*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9', reads: primary}\n" +
		"query_rules:\n  - {name: r, match: '^(a|b)', user: u, route: replica}\n"))
	f.Add([]byte("monitor: {interval: 2s, heartbeat_table: a.b}\nlimits: {max_packet_size: 1 MiB}\n" +
		"routing: {reads: primary, balance: round_robin}\nfailover: {auto: false, failure_threshold: 2}\n"))
	f.Add([]byte("a: &a {<<: *a}\nservers: [*a, {<<: [*a, *a]}]\n"))
	f.Add([]byte("limits: {max_packet_size: ${X}MiB}\nservers:\n  - {name: ${X}, address: \"h:${X}\"}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.yaml", data, env("X", "1"))
		if err == nil {
			if c == nil {
				t.Fatal("nil config without error")
			}
			return
		}
		errs, ok := err.(Errors)
		if !ok || len(errs) == 0 {
			t.Fatalf("error %T %v is not a non-empty Errors", err, err)
		}
		for _, p := range errs {
			if p.Line < 1 || strings.Contains(p.String(), "\n") {
				t.Fatalf("bad problem %q", p)
			}
		}
	})
}

// withoutPositions drops where keys were written, so that configs parsed
// from files compare equal to configs built in code.
func withoutPositions(c *Config) *Config {
	d := *c
	d.file, d.lines = "", nil
	return &d
}

func TestProblemNamesTheLineOfTheKey(t *testing.T) {
	c, err := Parse("f.yaml", []byte("servers:\n  - name: a\n    address: 127.0.0.1:1\ntls:\n  cert_file: c\n  key_file: k\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Problem("tls.cert_file", "unreadable").String(); got != "f.yaml:5: tls.cert_file: unreadable" {
		t.Errorf("got %q", got)
	}
	// A key not written falls back to its nearest written parent.
	if got := c.Problem("tls.require", "x").Line; got != 4 {
		t.Errorf("line %d, want 4", got)
	}
}
